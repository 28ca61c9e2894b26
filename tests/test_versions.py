"""Kernel-version policies on x86_64: the v2 RFC, 5.13, 6.1, 6.6, 6.8 and 6.11 on the same scenarios.

Expected numbers are the kernel's formulas written out here (§15 of the reference digest) and the
6.1 reference readings' deltas.
"""
import errno
import os

import pytest

import hotmem
from hotmem import errors
from hotmem.drivers.base import memory as memory_dev
from hotmem.kernel import POLICIES, policy_table
from hotmem.mm.memory_hotplug import MHP_MEMMAP_ON_MEMORY

MiB = 1 << 20
DIMM = 0x100000000
PFN = DIMM >> 12
BLOCK = 32768                       # pages of a 128 MiB block
VMEMMAP = BLOCK * 64 // 4096        # 512
STATE = "/sys/devices/system/memory/memory{}/state"


@pytest.fixture(params=["compiled", "python"])
def backend(request):
    return request.param


def machine(backend, kernel, param="1"):
    cmdline = "" if param is None else f"memory_hotplug.memmap_on_memory={param}"
    # defconfig: hot-added blocks stay offline in every version (Debian's 6.12 onlines them)
    return hotmem.Machine(kernel=kernel, cmdline=cmdline, backend=backend, config="defconfig")


def test_docs_table_is_generated_from_the_policies():
    path = os.path.join(os.path.dirname(__file__), "..", "docs", "kernel-versions.md")
    with open(path) as f:
        assert f.read().endswith(policy_table())
    assert list(POLICIES) == ["v2", "5.13", "6.1", "6.6", "6.8", "6.11", "6.12"]


def test_unknown_version_is_refused():
    with pytest.raises(hotmem.HotplugError) as e:
        hotmem.Machine(kernel="5.12")          # 5.12 has no memmap_on_memory at all (§0)
    assert e.value.errno == errno.EINVAL and "5.12" in str(e.value)


@pytest.mark.parametrize("kernel,flags", [("v2", 0x100000000), ("5.13", 0x100000000),
                                          ("6.1", 0x2100000000), ("6.6", 0x2100000000),
                                          ("6.8", 0x2100000000), ("6.11", 0x2000000000),
                                          ("6.12", 0x2000000000)])
def test_one_block_cycle_in_every_version(backend, kernel, flags):
    """The same 128 MiB DIMM everywhere: same counters; PageVmemmapSelfHosted only from 6.0;
    6.11 hot-plugged memmaps start PageOffline instead of PG_reserved, so the vmemmap pages keep
    only KPF_OWNER_PRIVATE (bit 37)."""
    m = machine(backend, kernel)
    t0 = m.totalram_pages
    d = m.acpi_memory_hotplug(DIMM, "128M", node=0)
    assert m.memory_blocks[32].nr_vmemmap_pages == VMEMMAP
    m.sysfs.write(STATE.format(32), "online_movable")
    z = m.zone(0, "Movable")
    assert (z.spanned_pages, z.present_pages, z.managed_pages) == (BLOCK, BLOCK, BLOCK - VMEMMAP)
    assert m.totalram_pages - t0 == BLOCK - VMEMMAP
    kpf = m.procfs.kpageflags(PFN, 1024)
    assert (kpf[:VMEMMAP] == flags).all() and (kpf[VMEMMAP:] == 0x400).all()
    m.sysfs.write(STATE.format(32), "offline")
    assert not m.zone(0, "Movable").spanned_pages
    m.acpi_memory_eject(d)
    assert 32 not in m.memory_blocks and m.totalram_pages == t0
    assert not m.warnings
    # mem_section_usage: 8 + 32 bytes, plus the leading rcu_head in 6.1.76+ and 6.6+
    assert m.slab.bytes["mem_section_usage"] == 0
    m2 = machine(backend, kernel)
    m2.add_memory(0, DIMM, 128 * MiB)
    assert m2.slab.bytes["mem_section_usage"] == (56 if m2.policy.usage_has_rcu_head else 40)


def test_v2_has_no_switch_and_no_granularity_refusal(backend):
    m = machine(backend, "v2", param="0")              # an unknown parameter to the v2 kernel
    assert m.unknown_params == ["memory_hotplug.memmap_on_memory=0"]
    with pytest.raises(hotmem.HotplugError):
        m.sysfs.read("/sys/module/memory_hotplug/parameters/memmap_on_memory")
    assert m.mhp_supports_memmap_on_memory("128M") and not m.mhp_supports_memmap_on_memory("256M")
    for i in range(2):
        m.add_memory(0, DIMM + i * 128 * MiB, 128 * MiB, MHP_MEMMAP_ON_MEMORY)
    assert [m.memory_blocks[b].nr_vmemmap_pages for b in (32, 33)] == [VMEMMAP, VMEMMAP]
    # v2 sums the blocks' vmemmap pages and removes both blocks in one go ...
    m.remove_memory(0, DIMM, 256 * MiB)
    assert 32 not in m.memory_blocks and not m.warnings
    # ... but release_mem_region_adjustable finds no single resource holding both DIMMs' range,
    # so both "System RAM" entries stay in /proc/iomem (kernel/resource.c, 6.1)
    iomem = m.procfs.read("/proc/iomem")
    assert "100000000-107ffffff : System RAM" in iomem and "108000000-10fffffff : System RAM" in iomem
    m61 = machine(backend, "6.1")
    for i in range(2):
        m61.add_memory(0, DIMM + i * 128 * MiB, 128 * MiB, MHP_MEMMAP_ON_MEMORY)
    with pytest.raises(hotmem.HotplugError) as e:
        m61.remove_memory(0, DIMM, 256 * MiB)          # 6.1: wrong granularity
    assert e.value.errno == errno.EINVAL


def test_v2_stores_the_count_in_the_first_block_only(backend):
    """The v2 create_memory_block_devices(start, size, altmap.alloc) gives the count to the
    first block; with a 256 MiB block size a 256 MiB add would show it (x86 blocks are 128 MiB,
    so this is seen through the model's memory block code directly)."""
    m = machine(backend, "v2")
    alt = m.core.VmemAltmap(base_pfn=PFN, free=2 * BLOCK, alloc=VMEMMAP)
    m.memory.create_memory_block_devices(DIMM, 256 * MiB, alt, None)
    assert [m.memory_blocks[b].nr_vmemmap_pages for b in (32, 33)] == [VMEMMAP, 0]
    m61 = machine(backend, "6.1")
    m61.memory.create_memory_block_devices(DIMM, 256 * MiB, alt, None)
    assert [m61.memory_blocks[b].nr_vmemmap_pages for b in (32, 33)] == [VMEMMAP, VMEMMAP]


def test_v2_onlining_counts_present_in_online_pages(backend):
    """v2 online_pages adds the whole block to present; 5.13+ adds the vmemmap part afterwards in
    memory_block_online. The end state is the same."""
    seen = {}
    for kernel in ("v2", "6.1"):
        m = machine(backend, kernel)
        m.add_memory(0, DIMM, 128 * MiB, MHP_MEMMAP_ON_MEMORY)
        calls = []
        orig = hotmem.mm.memory_hotplug.adjust_present_page_count
        hotmem.mm.memory_hotplug.adjust_present_page_count = \
            lambda m_, pfn, group, n: (calls.append(n), orig(m_, pfn, group, n))
        try:
            m.sysfs.write(STATE.format(32), "online")
            m.sysfs.write(STATE.format(32), "offline")
        finally:
            hotmem.mm.memory_hotplug.adjust_present_page_count = orig
        seen[kernel] = calls
    assert seen["v2"] == [BLOCK, -BLOCK]
    assert seen["6.1"] == [BLOCK - VMEMMAP, VMEMMAP, -VMEMMAP, -(BLOCK - VMEMMAP)]


@pytest.mark.parametrize("kernel,warns", [("v2", True), ("5.13", True), ("6.1", False)])
def test_rollback_of_a_failed_block_device_creation(backend, kernel, warns):
    """create_memory_block_devices fails: 6.1.y tears down with the altmap; v2/5.13 pass NULL, so
    the altmap's own pages would go to free_pagetable (the model warns and keeps them)."""
    m = machine(backend, kernel)
    free0 = sum(z.nr_free_pages for z in m.pgdats[0].node_zones)

    def fail(*a, **k):               # create_memory_block_devices returns -errno
        return errors.fail(m, errno.ENOMEM, "injected: device_register failed")
    m.memory.create_memory_block_devices = fail
    with pytest.raises(hotmem.HotplugError) as e:
        m.add_memory(0, DIMM, 128 * MiB, MHP_MEMMAP_ON_MEMORY)
    assert e.value.errno == errno.ENOMEM
    assert bool(m.warnings) == warns
    assert sum(z.nr_free_pages for z in m.pgdats[0].node_zones) == free0
    assert m.ms.present_sections()[-1] < 32 and m.pgtables.direct_pages_count("2M") == 510


def test_6_8_splits_a_256M_dimm_into_per_block_altmaps(backend):
    """§15.6: a 256 MiB ACPI DIMM with the parameter on gets no memmap on memory in 6.1 and two
    512-page vmemmaps in 6.8."""
    m61, m68 = machine(backend, "6.1"), machine(backend, "6.8")
    d61 = m61.acpi_memory_hotplug(DIMM, "256M", node=0)
    d68 = m68.acpi_memory_hotplug(DIMM, "256M", node=0)
    assert [m61.memory_blocks[b].nr_vmemmap_pages for b in (32, 33)] == [0, 0]
    assert [m68.memory_blocks[b].nr_vmemmap_pages for b in (32, 33)] == [VMEMMAP, VMEMMAP]
    assert [m68.memory_blocks[b].altmap.base_pfn for b in (32, 33)] == [PFN, PFN + BLOCK]
    assert [m68.memory_blocks[b].altmap.end_pfn for b in (32, 33)] == [PFN + BLOCK - 1,
                                                                      PFN + 2 * BLOCK - 1]
    assert m61.accounting()["memmap"] == {"altmap": {}, "buddy": {0: 2 * VMEMMAP}}
    assert m68.accounting()["memmap"] == {"altmap": {0: 2 * VMEMMAP}, "buddy": {}}
    for m, d in ((m61, d61), (m68, d68)):
        for b in (32, 33):
            m.sysfs.write(STATE.format(b), "online_movable")
    assert m68.zone(0, "Movable").managed_pages == 2 * (BLOCK - VMEMMAP)
    assert m61.zone(0, "Movable").managed_pages == 2 * BLOCK
    for m, d in ((m61, d61), (m68, d68)):
        for b in (32, 33):
            m.sysfs.write(STATE.format(b), "offline")
        m.acpi_memory_eject(d)               # 6.8 removes block by block; no granularity refusal
        assert 32 not in m.memory_blocks and not m.warnings


def test_6_8_refuses_a_range_mixing_blocks_with_and_without_altmap(backend):
    m = machine(backend, "6.8")
    m.add_memory(0, DIMM, 128 * MiB, MHP_MEMMAP_ON_MEMORY)
    m.add_memory(0, DIMM + 128 * MiB, 128 * MiB)
    before = m.snapshot()
    with pytest.raises(hotmem.HotplugError) as e:
        m.remove_memory(0, DIMM, 256 * MiB)
    assert e.value.errno == errno.EINVAL and m.warnings
    assert m.snapshot() == before


def test_6_6_falls_back_silently_and_keeps_the_altmap_in_the_block(backend):
    m66, m61 = machine(backend, "6.6"), machine(backend, "6.1")
    with pytest.raises(hotmem.HotplugError) as e:
        m61.add_memory(0, DIMM, 256 * MiB, MHP_MEMMAP_ON_MEMORY)
    assert e.value.errno == errno.EINVAL
    m66.add_memory(0, DIMM, 256 * MiB, MHP_MEMMAP_ON_MEMORY)     # 6.6: regular memmap instead
    assert [m66.memory_blocks[b].nr_vmemmap_pages for b in (32, 33)] == [0, 0]
    m66.add_memory(0, DIMM + 256 * MiB, 128 * MiB, MHP_MEMMAP_ON_MEMORY)
    mem = m66.memory_blocks[34]
    # altmap {base, end = last pfn, free = the memmap pages}: free is what online/offline use
    base = PFN + 2 * BLOCK
    assert mem.altmap.as_tuple() == (base, base + BLOCK - 1, 0, VMEMMAP, 0, VMEMMAP)
    assert mem.nr_vmemmap_pages == VMEMMAP
    m66.remove_memory(0, DIMM + 256 * MiB, 128 * MiB)
    assert mem.altmap is None and not m66.warnings


def test_6_6_warns_when_a_removed_altmap_is_not_empty(backend):
    m = machine(backend, "6.6")
    m.add_memory(0, DIMM, 128 * MiB, MHP_MEMMAP_ON_MEMORY)
    m.memory_blocks[32].altmap.alloc += 1            # as if a page were never given back
    m.remove_memory(0, DIMM, 128 * MiB)
    assert any("Altmap not fully unmapped" in w for w in m.warnings)


def test_6_6_force_mode(backend):
    """On x86 a block's memmap is already pageblock-aligned: force changes nothing but the
    parameter's text (force pads only where the memmap is smaller, e.g. ppc64 64K)."""
    m = machine(backend, "6.6", param="force")
    assert m.sysfs.read("/sys/module/memory_hotplug/parameters/memmap_on_memory") == "force\n"
    d = m.acpi_memory_hotplug(DIMM, "128M", node=0)
    assert m.memory_blocks[32].nr_vmemmap_pages == VMEMMAP
    with pytest.raises(hotmem.HotplugError):
        machine(backend, "6.1", param="force")       # a bool before 6.6
    m.acpi_memory_eject(d)


def test_altmap_block_failure_is_enomem_in_every_version(backend):
    """An altmap that cannot give a 512-aligned 2 MiB block: -ENOMEM, no fallback (6.1 x86 and
    the 6.6+ generic vmemmap_populate_hugepages alike)."""
    from hotmem.mm.sparse_vmemmap import populate_section_memmap
    for kernel in ("6.1", "6.6"):
        m = machine(backend, kernel)
        m.ms.sparse_index_init(32)
        m.ms.alloc_memmap(32)
        alt = m.core.VmemAltmap(base_pfn=PFN + 1, free=600)    # 511 pfns of padding + 512 > 600
        assert populate_section_memmap(m, PFN, BLOCK, 0, alt) == -errno.ENOMEM
        assert alt.alloc == 0


@pytest.mark.parametrize("kernel,from_altmap", [("6.1", False), ("6.6", True)])
def test_base_pages_under_an_existing_pte_table(backend, kernel, from_altmap):
    """A PMD of the vmemmap that is already a PTE table (a sub-section was populated first):
    6.1 x86 fills it from the buddy even with an altmap; 6.6+ generic code from the altmap."""
    from hotmem.mm.sparse_vmemmap import populate_section_memmap
    m = machine(backend, kernel)
    m.ms.sparse_index_init(32)
    m.ms.alloc_memmap(32)
    # one 2 MiB subsection = 512 struct pages = 32 KiB of vmemmap: base pages, PTE table
    assert populate_section_memmap(m, PFN, 512, 0, None) == 0
    assert m.accounting()["page tables"]["vmemmap"] == {"PTE": 1}
    buddy0 = sum(1 for w, _, _ in m.owners.buddy.values() if w == "memmap")
    alt = m.core.VmemAltmap(base_pfn=PFN, free=BLOCK)
    # the whole section's memmap (2 MiB, so the hugepage path): its PMD is a PTE table, whose
    # 8 present PTEs stay and 504 more base pages are mapped
    assert populate_section_memmap(m, PFN, BLOCK, 0, alt) == 0
    buddy = sum(1 for w, _, _ in m.owners.buddy.values() if w == "memmap") - buddy0
    assert (alt.alloc, buddy) == ((504, 0) if from_altmap else (0, 504))


# -- 6.11: nr_memmap_pages / nr_memmap_boot_pages ------------------------------------------------
# mm/sparse-vmemmap.c:__populate_section_memmap (6.11.11) adds DIV_ROUND_UP(nr_pages *
# sizeof(struct page), PAGE_SIZE) on success -- to nr_memmap_boot_pages while SYSTEM_BOOTING, to
# nr_memmap_pages after -- wherever the pages came from (altmap included);
# mm/sparse.c:depopulate_section_memmap takes the same off nr_memmap_pages.

SECTION_MEMMAP = 32768 * 64 // 4096          # 128 MiB section: 512 pages of struct pages
BOOT_SECTIONS = (1 << 30) // (128 * MiB)      # QEMU pc, 1 GiB from 0: sections 0..7


def vmstat(m):
    lines = m.procfs.read("/proc/vmstat").splitlines()
    return [ln.split(" ")[0] for ln in lines], dict(ln.split(" ") for ln in lines)


def test_6_11_vmstat_memmap_counters_at_boot(backend):
    m = machine(backend, "6.11")
    names, values = vmstat(m)
    # vmstat_text (6.11): the tail of enum vm_stat_item, right after the dirty thresholds
    at = names.index("nr_dirty_background_threshold")
    assert names[at - 1:at + 4] == ["nr_dirty_threshold", "nr_dirty_background_threshold",
                                    "nr_memmap_pages", "nr_memmap_boot_pages", "pgpgin"]
    assert values["nr_memmap_boot_pages"] == str(BOOT_SECTIONS * SECTION_MEMMAP) == "4096"
    assert values["nr_memmap_pages"] == "0"
    assert m.accounting()["memmap stats"] == {"nr_memmap_pages": 0, "nr_memmap_boot_pages": 4096}
    # before 6.11 the lines do not exist; the list is otherwise the same
    names61, _ = vmstat(machine(backend, "6.1"))
    assert "nr_memmap_pages" not in names61 and "nr_memmap_boot_pages" not in names61
    assert [n for n in names if not n.startswith("nr_memmap")] == names61
    assert "memmap stats" not in machine(backend, "6.8").accounting()


@pytest.mark.parametrize("mom", [False, True])
def test_6_11_hot_add_and_remove_count_the_memmap(backend, mom):
    """A 128 MiB DIMM adds its 512 pages of struct pages to nr_memmap_pages whether they come from
    the buddy (no memmap on memory) or from the DIMM itself (altmap): 6.11 counts both the same.
    Onlining changes nothing; removal gives them back. The boot count never moves."""
    m = machine(backend, "6.11", param="1" if mom else "0")
    boot = BOOT_SECTIONS * SECTION_MEMMAP
    d = m.acpi_memory_hotplug(DIMM, "128M", node=0)
    assert m.memory_blocks[32].nr_vmemmap_pages == (VMEMMAP if mom else 0)
    src = m.accounting()["memmap"]
    assert src == ({"altmap": {0: VMEMMAP}, "buddy": {}} if mom
                   else {"altmap": {}, "buddy": {0: VMEMMAP}})
    _, values = vmstat(m)
    assert (values["nr_memmap_pages"], values["nr_memmap_boot_pages"]) == ("512", str(boot))
    m.sysfs.write(STATE.format(32), "online_movable")
    assert (m.nr_memmap_pages, m.nr_memmap_boot_pages) == (512, boot)
    m.sysfs.write(STATE.format(32), "offline")
    m.acpi_memory_eject(d)
    _, values = vmstat(m)
    assert (values["nr_memmap_pages"], values["nr_memmap_boot_pages"]) == ("0", str(boot))
    assert not m.warnings


def test_6_11_counts_per_section(backend):
    """A 256 MiB DIMM: 6.11 (like 6.8) gives it two per-block altmaps; two sections, 2 × 512.
    Without the parameter the same: the count does not depend on the memmap's source."""
    for param in ("1", "0"):
        m = machine(backend, "6.11", param=param)
        d = m.acpi_memory_hotplug(DIMM, "256M", node=0)
        assert m.nr_memmap_pages == 2 * SECTION_MEMMAP
        m.acpi_memory_eject(d)
        assert m.nr_memmap_pages == 0 and not m.warnings
    m61 = machine(backend, "6.1")
    m61.acpi_memory_hotplug(DIMM, "256M", node=0)
    assert (m61.nr_memmap_pages, m61.nr_memmap_boot_pages) == (0, 0)   # no such counters


def test_6_11_failed_populate_still_subtracts(backend):
    """section_activate: __populate_section_memmap fails (the altmap cannot give the 2 MiB
    block) and adds nothing, then section_deactivate → depopulate_section_memmap subtracts 512
    all the same: the unsigned long in /proc/vmstat wraps to 2**64 - 512."""
    m = machine(backend, "6.11")
    m.inject("altmap")
    with pytest.raises(hotmem.HotplugError) as e:
        m.add_memory(0, DIMM, 128 * MiB, MHP_MEMMAP_ON_MEMORY)
    assert e.value.errno == errno.ENOMEM
    assert m.nr_memmap_pages == -512
    _, values = vmstat(m)
    assert int(values["nr_memmap_pages"]) == (1 << 64) - 512
    assert int(values["nr_memmap_boot_pages"]) == BOOT_SECTIONS * SECTION_MEMMAP


def test_6_11_prepare_online_and_finish_offline(backend):
    """memory_block_online (6.9+) sends MEM_PREPARE_ONLINE first (start/nr after the vmemmap,
    the altmap range apart) and stops on a refusal with nothing changed; memory_block_offline
    ends with MEM_FINISH_OFFLINE. 6.8 sends neither."""
    seen = {}
    for kernel in ("6.8", "6.11"):
        m = machine(backend, kernel)
        m.add_memory(0, DIMM, 128 * MiB, MHP_MEMMAP_ON_MEMORY)
        events = seen[kernel] = []
        orig = memory_dev.memory_notify             # the memory notifier chain

        def record(m_, event, start_pfn, nr_pages, nid, m=m, orig=orig, events=events):
            assert m_ is m
            events.append((event, start_pfn, nr_pages, m.memory_notify_altmap))
            return orig(m_, event, start_pfn, nr_pages, nid)
        memory_dev.memory_notify = record
        try:
            m.sysfs.write(STATE.format(32), "online")
            m.sysfs.write(STATE.format(32), "offline")
            if kernel == "6.11":
                before = m.snapshot()
                m.notifier_errors["MEM_PREPARE_ONLINE"] = -errno.EBUSY   # e.g. s390's sclp refusing
                with pytest.raises(hotmem.HotplugError) as e:
                    m.sysfs.write(STATE.format(32), "online")
                assert e.value.errno == errno.EBUSY
                assert m.snapshot() == before and m.memory_blocks[32].state == "offline"
        finally:
            memory_dev.memory_notify = orig
    assert [e for e, *_ in seen["6.8"]] == ["MEM_GOING_ONLINE", "MEM_ONLINE",
                                             "MEM_GOING_OFFLINE", "MEM_OFFLINE"]
    rest = (PFN + VMEMMAP, BLOCK - VMEMMAP, (PFN, VMEMMAP))
    assert seen["6.11"][0] == ("MEM_PREPARE_ONLINE",) + rest
    assert seen["6.11"][5] == ("MEM_FINISH_OFFLINE",) + rest
    assert seen["6.11"][6] == ("MEM_PREPARE_ONLINE",) + rest
    assert [e for e, *_ in seen["6.11"][1:5]] == [e for e, *_ in seen["6.8"]]


@pytest.mark.parametrize("kw,boot,hot", [
    # arm64 4K: 128 MiB sections of 32768 pages, 32768 × 64 B / 4 KiB = 512 pages each
    (dict(arch="arm64", boot_memory="1G"), 8 * 512, 0),
    # arm64 64K: 512 MiB sections of 8192 pages, DIV_ROUND_UP(8192 × 64 B, 64 KiB) = 8 each
    (dict(arch="arm64", page_size="64K", boot_memory="2G"), 4 * 8, 0),
    # powerpc64 radix 64K: 16 MiB sections of 256 pages, DIV_ROUND_UP(16 KiB, 64 KiB) = 1 each
    (dict(arch="powerpc64", mmu="radix", boot_memory="2G"), 128 * 1, 0),
    # (s390x with 6.9+ is refused: its standby memory then uses memmap on memory, not modelled)
])
def test_6_11_boot_memmap_count_on_other_arches(backend, kw, boot, hot):
    m = hotmem.Machine(kernel="6.11", backend=backend, **kw)
    _, values = vmstat(m)
    assert (int(values["nr_memmap_boot_pages"]), int(values["nr_memmap_pages"])) == (boot, hot)
