"""Kernel-version policies on x86_64: the v2 RFC, 5.13, 6.1, 6.6 and 6.8 on the same scenarios.

Expected numbers are the kernel's formulas written out here (§15 of the reference digest) and the
6.1 reference readings' deltas.
"""
import errno
import os

import pytest

import hotmem
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
    return hotmem.Machine(kernel=kernel, cmdline=cmdline, backend=backend)


def test_docs_table_is_generated_from_the_policies():
    path = os.path.join(os.path.dirname(__file__), "..", "docs", "kernel-versions.md")
    with open(path) as f:
        assert f.read().endswith(policy_table())
    assert list(POLICIES) == ["v2", "5.13", "6.1", "6.6", "6.8"]


def test_unknown_version_is_refused():
    with pytest.raises(hotmem.HotplugError) as e:
        hotmem.Machine(kernel="5.12")          # 5.12 has no memmap_on_memory at all (§0)
    assert e.value.errno == errno.EINVAL and "5.12" in str(e.value)


@pytest.mark.parametrize("kernel,flags", [("v2", 0x100000000), ("5.13", 0x100000000),
                                          ("6.1", 0x2100000000), ("6.6", 0x2100000000),
                                          ("6.8", 0x2100000000)])
def test_one_block_cycle_in_every_version(backend, kernel, flags):
    """The same 128 MiB DIMM everywhere: same counters; PageVmemmapSelfHosted only from 6.0."""
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

    def fail(*a, **k):
        raise hotmem.HotplugError(errno.ENOMEM, "injected: device_register failed")
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
