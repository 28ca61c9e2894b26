"""Bugs the hotplug fuzzer (tests/test_fuzz.py, hotmem.testing) found, one minimal test each.

Each test carries the program the fuzzer printed (shrunk by hand where Hypothesis left noise)
and what the kernel does there. A bug found but not fixed yet gets a strict xfail here and an
entry in hotmem.testing.KNOWN_MODEL_ISSUES (so that fuzzing carries on past it); both go when
it is fixed.
"""
import errno

import pytest

import hotmem
from hotmem.mm.memory_hotplug import MHP_MEMMAP_ON_MEMORY
from hotmem.testing import Driver, MachineConfig

MiB = 1 << 20
DIMM = 0x100000000
STATE = "/sys/devices/system/memory/memory{}/state"


@pytest.fixture(params=["compiled", "python"])
def backend(request):
    return request.param


def test_6_8_remove_of_a_range_missing_a_block_is_refused_not_a_crash(backend):
    """Fuzzer program (6.8, 256 MiB DIMM = two blocks with per-block altmaps):

        d.acpi_hotplug(0x100000000, 0x10000000, node=0)    # -> 0
        d.remove_memory(0x108000000, 0x8000000)            # -> 0   (the DIMM's second block)
        d.acpi_eject(0)                                    # KeyError: 33 (model crash)

    mm/memory_hotplug.c (6.8) memory_blocks_have_altmaps counts the altmaps of the blocks that
    exist (1) against size / memory_block_size_bytes() (2): WARN_ON_ONCE and -EINVAL, so
    try_remove_memory fails and __remove_memory BUG()s. The model compared against the blocks
    that exist, went on, and remove_memory_blocks_and_altmaps indexed the missing block."""
    m = hotmem.Machine(kernel="6.8", boot_memory="256M",
                       cmdline="memory_hotplug.memmap_on_memory=1", backend=backend)
    d = m.acpi_memory_hotplug(DIMM, "256M", node=0)
    m.remove_memory(DIMM + 128 * MiB, 128 * MiB)
    with pytest.raises(hotmem.HotplugError) as e:
        m.acpi_memory_eject(d)
    assert e.value.errno == errno.EINVAL and "would BUG()" in e.value.message
    assert any("memory_blocks_have_altmaps" in w for w in m.warnings)
    assert m.memory_blocks[32].state == "offline" and 32 in m.memory_blocks
    # remove_memory_blocks_and_altmaps itself skips a missing block (WARN_ON_ONCE, continue)
    from hotmem.mm.memory_hotplug import remove_memory_blocks_and_altmaps
    remove_memory_blocks_and_altmaps(m, DIMM, 256 * MiB)
    assert 32 not in m.memory_blocks
    assert any("no memory block at 0x108000000" in w for w in m.warnings)


def test_refused_acpi_eject_offlines_in_two_passes_and_ignores_online_errors(backend):
    """Fuzzer program (5.13, no PSE; shrunk):

        d.acpi_hotplug(0x100000000, 0x10000000, node=0)    # -> 0
        d.write(32, 'state', 'online')                      # -> 0
        d.write(33, 'state', 'online_kernel')               # -> 0
        ... (something unmovable lands in memory33)
        d.inject('notifier', event='MEM_GOING_ONLINE', error=-12)
        d.acpi_eject(0)       # model: ENOMEM from re-onlining memory32; kernel: EBUSY

    drivers/acpi/scan.c (6.1) acpi_scan_try_to_offline: acpi_bus_offline tries every bound
    block (a first pass that carries on past failures, then a second pass over the ones that
    failed); if one still fails, acpi_bus_online runs device_online on those it offlined —
    MMOP_ONLINE, so the default zone — ignoring its errors, and the eject gets -EBUSY. The model
    stopped at the first failing block and let the re-online error escape."""
    m = hotmem.Machine(kernel="6.1", boot_memory="256M",
                       cmdline="memory_hotplug.memmap_on_memory=0", backend=backend)
    d = m.acpi_memory_hotplug(DIMM, "256M", node=0)
    m.sysfs.write(STATE.format(32), "online_kernel")
    m.sysfs.write(STATE.format(33), "online_movable")
    m.inject("unmovable", pfn=DIMM >> 12)                 # memory32 cannot be offlined
    with pytest.raises(hotmem.HotplugError) as e:
        m.acpi_memory_eject(d)
    assert e.value.errno == errno.EBUSY
    # memory33 was offlined by the first pass and onlined again in the default zone: with
    # ZONE_MOVABLE now empty that is the kernel zone
    assert [(m.memory_blocks[b].state, m.memory_blocks[b].zone.name) for b in (32, 33)] == \
        [("online", "Normal"), ("online", "Normal")]
    m.inject("notifier", event="MEM_GOING_ONLINE")        # re-onlining is vetoed now
    with pytest.raises(hotmem.HotplugError) as e:
        m.acpi_memory_eject(d)
    assert e.value.errno == errno.EBUSY                   # not the notifier's -ENOMEM
    assert [m.memory_blocks[b].state for b in (32, 33)] == ["online", "offline"]


def test_the_two_programs_replay_through_the_driver():
    """The fuzzer's own replay of both (every invariant and error-path check runs)."""
    d = Driver(MachineConfig(kernel="6.8", boot_memory="256M"))
    assert d.acpi_hotplug(0x100000000, 0x10000000, node=0) == 0
    assert d.remove_memory(0x108000000, 0x8000000) == 0
    assert d.acpi_eject(0) == errno.EINVAL and "would BUG()" in d.dead
    d = Driver(MachineConfig(kernel="5.13", boot_memory="256M", cpu_flags=("hypervisor",),
                             cmdline="memory_hotplug.memmap_on_memory=1 movable_node"))
    assert d.acpi_hotplug(0x100000000, 0x10000000, node=0) == 0
    assert d.write(32, "state", "online") == 0
    assert d.write(33, "state", "online_kernel") == 0
    assert d.acpi_hotplug(0x118000000, 0x20000000, node=0) == 0   # its memmap pins memory33
    assert d.inject("notifier", event="MEM_GOING_ONLINE", error=-12) == 0
    assert d.acpi_eject(0) == errno.EBUSY
    assert d.m.memory_blocks[32].state == "offline"
    d.clear_injections()
    d.teardown()


@pytest.mark.parametrize("kernel", ["6.6", "6.8"])
def test_6_6_has_no_base_page_fallback_with_an_altmap(backend, kernel):
    """Fuzzer program (6.6 and 6.8 alike):

        d.inject('altmap', nth=1)
        d.inject('altmap', nth=2)
        d.acpi_hotplug(0x100000000, 0x8000000, node=0)
        # WARNING vmemmap_free: free_pagetable of altmap-backed pfn 0x100000 without the altmap

    mm/sparse-vmemmap.c:vmemmap_populate_hugepages (read at 6.6.57 and 6.8.1): when the PMD
    block cannot come from the altmap, ``else if (altmap) return -ENOMEM; /* No fallback */``
    — base pages are only tried without an altmap. The 6.6/6.8 policies set
    basepage_fallback_uses_altmap, so the model mapped altmap pages with PTEs, which x86's
    remove_pte_table then cannot give back (it always uses free_pagetable). Fixed: the field now
    only decides where base pages under an existing PTE table come from."""
    m = hotmem.Machine(kernel=kernel, cmdline="memory_hotplug.memmap_on_memory=1",
                       backend=backend)
    m.inject("altmap")                                    # the 2 MiB block from the altmap fails
    with pytest.raises(hotmem.HotplugError) as e:
        m.add_memory(0, DIMM, 128 * MiB, MHP_MEMMAP_ON_MEMORY)
    assert e.value.errno == errno.ENOMEM
    assert m.accounting()["page tables"]["vmemmap"] == {}
    assert not m.owners.altmap and not any("altmap-backed" in w for w in m.warnings)


def test_6_1_add_pages_raises_max_pfn_even_when_add_pages_fails(backend):
    """Found while writing the fuzzer's error-path checks (reading arch/x86/mm/init_64.c,
    6.1.y): add_pages calls update_end_of_memory_vars after ``WARN_ON_ONCE(ret)`` whatever
    __add_pages returned, so a failed hot-add still raises max_pfn (and /proc/kpageflags
    reads go that far). The model's arch_add_memory returned before updating max_pfn (fixed)."""
    m = hotmem.Machine(kernel="6.1", cmdline="memory_hotplug.memmap_on_memory=1",
                       backend=backend)
    m.inject("altmap")
    with pytest.raises(hotmem.HotplugError):
        m.add_memory(0, DIMM, 128 * MiB, MHP_MEMMAP_ON_MEMORY)
    assert m.max_pfn == (DIMM + 128 * MiB) >> 12


@pytest.mark.parametrize("page_size", ["4K", "16K", "64K"])
def test_arm64_refuses_to_offline_boot_memory(backend, page_size):
    """Fuzzer program (arm64; any kernel version):

        d.write(8, 'state', 'offline')                     # -> 0 (kernel: EPERM)
        d.remove_memory(0x40000000, 0x8000000)             # -> 0
        # WARNING free_hotplug_page_range: pfn 0x4fa00 is PageReserved (a boot page)

    arch/arm64/mm/mmu.c (6.1) registers prevent_bootmem_remove_notifier: at MEM_GOING_OFFLINE
    of a range holding an early section it warns "Boot memory [...] offlining attempted" and
    returns NOTIFY_BAD, which notifier_to_errno turns into -EPERM; boot memory can never be
    offlined, hence never removed (whose vmemmap teardown would free boot memmap pages)."""
    # 1 GiB: whole blocks for every page size (with 64K pages a 256 MiB boot leaves a hole in
    # its 512 MiB block, and offlining fails earlier with EINVAL, "memory holes")
    m = hotmem.Machine(arch="arm64", page_size=page_size, boot_memory="1G",
                       cmdline="memory_hotplug.memmap_on_memory=1", backend=backend)
    first = min(m.memory_blocks)
    with pytest.raises(hotmem.HotplugError) as e:
        m.sysfs.write(STATE.format(first), "offline")
    assert e.value.errno == errno.EPERM
    assert m.memory_blocks[first].state == "online"


@pytest.mark.parametrize("kernel", ["5.13", "6.1", "6.6"])
def test_powerpc64_hash_removal_unbolts_part_of_a_boot_range(backend, kernel):
    """Fuzzer program (powerpc64 hash; any kernel version):

        d = Driver(MachineConfig(kernel='5.13', boot_memory='512M', arch='powerpc64',
                                 mmu='hash', cmdline='memory_hotplug.memmap_on_memory=1 movable_node'))
        d.write(0, 'state', 'offline')                      # -> 0
        d.remove_memory(0x0, 0x10000000)                    # -> 0
        # invariant: direct map leaf for pfns 0x0+1 maps memory that does not exist

    arch/powerpc/mm/book3s64/hash_utils.c (6.1) hash__remove_section_mapping calls
    htab_remove_mapping, which removes the bolted HPTE of every page of the range whatever
    mapping bolted it. The model only forgot a bolted range equal to the removed one, so the
    first 256 MiB of the 512 MiB boot linear map stayed mapped after its memory was gone."""
    m = hotmem.Machine(arch="powerpc64", mmu="hash", kernel=kernel, boot_memory="512M",
                       cmdline="memory_hotplug.memmap_on_memory=1", backend=backend)
    lm = 0xc000000000000000                          # PAGE_OFFSET: the linear map
    linear = lambda: sorted(b for b in m.pgtables.bolted if b[0] < m.arch.vmemmap_start)
    assert linear() == [(lm, 512 * MiB)]
    m.sysfs.write(STATE.format(0), "offline")
    m.remove_memory(0, 256 * MiB)
    assert linear() == [(lm + 256 * MiB, 256 * MiB)]
    d = Driver(MachineConfig(kernel=kernel, boot_memory="512M", arch="powerpc64", mmu="hash",
                             cmdline="memory_hotplug.memmap_on_memory=1 movable_node"))
    assert d.write(0, "state", "offline") == 0
    assert d.remove_memory(0x0, 0x10000000) == 0       # the invariants hold
    d.teardown()


def test_boot_block_spanning_two_nodes_has_the_last_node_and_no_zone(backend):
    """Fuzzer program (arm64 64K: a 512 MiB block holds two 256 MiB nodes):

        d = Driver(MachineConfig(kernel='6.1', boot_memory=((0, '256M'), (1, '256M')),
                                 arch='arm64', page_size='64K', ...))
        # invariants: "memory2: zone 0 but its pages link to [0, 4]; node 0 but its pages are
        # on [0, 1]"

    drivers/base/node.c:register_mem_block_under_node_early (6.1) calls memory_block_add_nid
    for node 0 and then node 1: the first call takes the zone from node 0
    (early_node_zone_for_memory_block), the second, for another node, sets mem->zone = NULL;
    mem->nid is the last node. valid_zones reads "none" (and the block cannot be offlined)."""
    m = hotmem.Machine(arch="arm64", page_size="64K", boot_memory={0: "256M", 1: "256M"},
                       backend=backend)
    bid = min(m.memory_blocks)
    assert (m.memory_blocks[bid].nid, m.memory_blocks[bid].zone) == (1, None)
    assert m.sysfs.read(f"/sys/devices/system/memory/memory{bid}/valid_zones") == "none\n"


def test_s390x_refused_online_keeps_the_pages_sclp_allocated_and_freed():
    """Fuzzer program (s390x, found in a random run; a bug of the fuzzer's unwinding rule, not of
    the model):

        d.inject('page_alloc', nth=1, times=1)
        d.write(1, 'state', 'online')     # -> EPERM; "online_pages error path ... changed
                                          #    alloc.zones[0].pcp, free_area, nr_free_pages"

    drivers/s390/char/sclp_cmd.c (6.1): MEM_GOING_ONLINE assigns the storage increment with an
    SCLP request whose buffer is get_zeroed_page(GFP_KERNEL | GFP_DMA): the injected failure
    makes it -ENOMEM, sclp_mem_change_state returns -EIO, the notifier NOTIFY_BAD (EPERM), and
    MEM_CANCEL_ONLINE unassigns with another request whose page is allocated and freed — which
    refills a per-CPU list. The kernel's error path restores no free-list layout; every page
    comes back."""
    d = Driver(MachineConfig(kernel="5.13", boot_memory="256M", arch="s390x", cpu_flags=(),
                             cmdline="memory_hotplug.memmap_on_memory=1 movable_node",
                             standby_memory="256M"))
    d.inject("page_alloc", nth=1, times=1)
    assert d.write(1, "state", "online") == errno.EPERM
    assert d.write(1, "state", "online") == 0
    d.teardown()
