"""The hotplug lifecycle on x86_64 Linux 6.1 against a real 6.1 kernel's readings.

Expected numbers come from tests/data/kernel-6.1-readings (Debian 6.1.176 under QEMU pc, 1 GiB
boot RAM, DIMMs at 4 GiB) or from the kernel's formulas written out here.
"""
import errno

import pytest

import hotmem
from hotmem.mm.memory_hotplug import MHP_MEMMAP_ON_MEMORY
from readings import load, steps, zone

MiB = 1 << 20
DIMM = 0x100000000                  # first pc-dimm: 4 GiB = pfn 0x100000 = memory block 32
PFN = DIMM >> 12
BLOCK_PAGES = (128 * MiB) >> 12     # 32768
VMEMMAP = BLOCK_PAGES * 64 // 4096  # 512: the block's struct pages in 4 KiB pages


@pytest.fixture(params=["compiled", "python"])
def backend(request):
    return request.param


def machine(backend, mom, extra=""):
    return hotmem.Machine(arch="x86_64", kernel="6.1", boot_memory="1G",
                          cmdline=f"memory_hotplug.memmap_on_memory={mom} {extra}".strip(),
                          paging_levels=4, cpus=1, backend=backend)


def memtotal_kb(m):
    return int(m.procfs.read("/proc/meminfo").split("\n")[0].split()[1])


def directmap2m_kb(m):
    for line in m.procfs.read("/proc/meminfo").splitlines():
        if line.startswith("DirectMap2M:"):
            return int(line.split()[1])


def nr_free_pages(m):
    for line in m.procfs.read("/proc/vmstat").splitlines():
        if line.startswith("nr_free_pages "):
            return int(line.split()[1])


def zone_tuple(m, name):
    z = m.zone(0, name)
    if not z.spanned_pages:
        return None
    return (z.zone_start_pfn, z.spanned_pages, z.present_pages, z.managed_pages)


def reading(scenario, step):
    return {name: r for name, ok, r in steps(scenario)}[step]


# -- boot ---------------------------------------------------------------------------------------

def test_boot_matches_the_reference_baseline(backend):
    m = machine(backend, 1)
    base = reading("d_mom1_128M_online_movable", "baseline")
    assert memtotal_kb(m) == base["key"]["MemTotal_kB"]
    for name in ("DMA", "DMA32"):
        assert zone_tuple(m, name) == zone(base, name)
        b = base["zones_brief"][f"node0/{name}"]
        z = m.zone(0, name)
        assert (z.min_wmark, z.low_wmark, z.high_wmark) == (b["min"], b["low"], b["high"])
    assert zone(base, "Normal") is None and zone_tuple(m, "Normal") is None
    assert m.sysfs.read("/sys/devices/system/memory/block_size_bytes") == "8000000\n"
    assert m.sysfs.read("/sys/devices/system/memory/auto_online_blocks") == "offline\n"
    # boot blocks: memory0 spans DMA and DMA32 -> "none"; the others DMA32
    assert m.sysfs.read("/sys/devices/system/memory/memory0/valid_zones") == "none\n"
    assert m.sysfs.read("/sys/devices/system/memory/memory7/valid_zones") == "DMA32\n"
    assert sorted(m.memory_blocks) == list(range(8))
    # the boot direct map covers the ISA range [0, 0x100) whole (init_mem_mapping maps it
    # "regardless of memory holes") and the e820 RAM pfns [0x100, 0x3ffe0)
    assert directmap2m_kb(m) + 4 * m.pgtables.direct_pages_count("4K") == \
        (0x100 + (0x3ffe0 - 0x100)) * 4


# -- memmap on memory, one 128 MiB block --------------------------------------------------------

@pytest.mark.parametrize("online_type,zone_name,scenario", [
    ("online", "Normal", "a_mom1_128M_online"),
    ("online_movable", "Movable", "d_mom1_128M_online_movable"),
])
def test_memmap_on_memory_128M(backend, online_type, zone_name, scenario):
    m = machine(backend, 1)
    base, add, onl = (reading(scenario, s) for s in ("baseline", "add_d1", "online_d1"))
    t0, free0, dm0 = memtotal_kb(m), nr_free_pages(m), directmap2m_kb(m)
    d = m.acpi_memory_hotplug(start=DIMM, size="128M", node=0)
    # add: no zone, no MemTotal change; the memmap came from the block itself
    assert memtotal_kb(m) - t0 == add["key"]["MemTotal_kB"] - base["key"]["MemTotal_kB"] == 0
    assert nr_free_pages(m) - free0 == add["key"]["nr_free_pages"] - base["key"]["nr_free_pages"]
    assert directmap2m_kb(m) - dm0 == (add["meminfo"]["DirectMap2M"] - base["meminfo"]["DirectMap2M"])
    assert zone_tuple(m, zone_name) is None
    assert m.memory_blocks[32].nr_vmemmap_pages == VMEMMAP == 512
    assert m.sysfs.read("/sys/devices/system/memory/memory32/state") == "offline\n"
    assert m.sysfs.read("/sys/devices/system/memory/memory32/phys_index") == "00000020\n"
    assert m.sysfs.read("/sys/devices/system/memory/memory32/valid_zones") == "Normal Movable\n"
    flags = m.procfs.kpageflags(PFN, BLOCK_PAGES)
    assert (flags == 0x100000).all()                       # KPF_NOPAGE while offline
    acc = m.accounting()
    assert acc["memmap"]["altmap"] == {0: 512} and acc["memmap"]["buddy"] == {}

    m.sysfs.write("/sys/devices/system/memory/memory32/state", online_type)
    assert zone_tuple(m, zone_name) == zone(onl, zone_name) == (PFN, BLOCK_PAGES, BLOCK_PAGES,
                                                                BLOCK_PAGES - VMEMMAP)
    assert memtotal_kb(m) - t0 == onl["key"]["MemTotal_kB"] - base["key"]["MemTotal_kB"] == 129024
    assert m.sysfs.read("/sys/devices/system/memory/memory32/valid_zones") == zone_name + "\n"
    assert m.sysfs.read("/sys/devices/system/memory/memory32/online") == "1\n"
    flags = m.procfs.kpageflags(PFN, BLOCK_PAGES)
    real = onl["kpage"]["d1"]["flags_full_rle"][0]
    assert real == [0, 512, "0x2100000000"]                  # RESERVED | OWNER_PRIVATE
    assert (flags[:512] == 0x2100000000).all()
    assert (flags[512:] == 0x400).all()                      # all free in the buddy
    # onlining bypasses the per-CPU lists: every usable page is free and counted
    assert m.zone(0, zone_name).nr_free_pages == BLOCK_PAGES - VMEMMAP
    # /proc/buddyinfo: one order-9 piece that cannot merge with the vmemmap half, 31 order-10
    z = m.zone(0, zone_name)
    assert [m.allocator.nr_free(z.zoneid, o) for o in range(11)] == [0] * 9 + [1, 31]

    with pytest.raises(hotmem.HotplugError) as e:          # writing "online" twice: EINVAL
        m.sysfs.write("/sys/devices/system/memory/memory32/state", "online")
    assert e.value.errno == errno.EINVAL
    m.sysfs.write("/sys/devices/system/memory/memory32/online", "1")   # online_store: fine

    m.sysfs.write("/sys/devices/system/memory/memory32/state", "offline")
    assert zone_tuple(m, zone_name) is None
    assert memtotal_kb(m) == t0
    assert nr_free_pages(m) == free0
    assert (m.procfs.kpageflags(PFN, BLOCK_PAGES) == 0x100000).all()
    m.acpi_memory_eject(d)
    assert directmap2m_kb(m) == dm0 and 32 not in m.memory_blocks
    assert nr_free_pages(m) == free0
    assert "100000000-107ffffff : System RAM" not in m.procfs.read("/proc/iomem")


def test_without_memmap_on_memory_the_memmap_costs_1024_free_pages(backend):
    m = machine(backend, 0)
    base, add, rem = (reading("b2_mom0_128M_online_quick", s)
                      for s in ("baseline", "add_d1", "remove_d1"))
    free0, t0 = nr_free_pages(m), memtotal_kb(m)
    d = m.acpi_memory_hotplug(start=DIMM, size="128M", node=0)
    # 512 pages of memmap (order 9) + the refill of the empty order-9 per-CPU list: 2 blocks
    assert free0 - nr_free_pages(m) == base["key"]["nr_free_pages"] - add["key"]["nr_free_pages"]
    assert free0 - nr_free_pages(m) == 2 * 512
    assert m.memory_blocks[32].nr_vmemmap_pages == 0
    assert m.accounting()["memmap"]["buddy"] == {0: 512}
    m.sysfs.write("/sys/devices/system/memory/memory32/state", "online_movable")
    assert zone_tuple(m, "Movable") == zone(reading("b3_mom0_128M_online_movable", "online_d1"),
                                            "Movable")
    assert memtotal_kb(m) - t0 == 131072
    assert (m.procfs.kpageflags(PFN, BLOCK_PAGES) == 0x400).all()
    m.sysfs.write("/sys/devices/system/memory/memory32/state", "offline")
    m.acpi_memory_eject(d)
    # the freed order-9 memmap goes to the per-CPU list: NR_FREE_PAGES does not move
    assert nr_free_pages(m) - free0 == rem["key"]["nr_free_pages"] - base["key"]["nr_free_pages"]
    assert m.accounting()["memmap"]["buddy"] == {}


def test_256M_dimm_gets_no_memmap_on_memory_in_6_1(backend):
    m = machine(backend, 1)
    base, add, onl = (reading("c2_mom1_256M_online_movable", s)
                      for s in ("baseline", "add_d1", "online_d1"))
    free0, t0 = nr_free_pages(m), memtotal_kb(m)
    m.acpi_memory_hotplug(start=DIMM, size="256M", node=0)
    assert [m.memory_blocks[i].nr_vmemmap_pages for i in (32, 33)] == [0, 0]
    assert free0 - nr_free_pages(m) == base["key"]["nr_free_pages"] - add["key"]["nr_free_pages"]
    for i in (32, 33):
        m.sysfs.write(f"/sys/devices/system/memory/memory{i}/state", "online_movable")
    assert zone_tuple(m, "Movable") == zone(onl, "Movable") == (PFN, 65536, 65536, 65536)
    assert memtotal_kb(m) - t0 == onl["key"]["MemTotal_kB"] - base["key"]["MemTotal_kB"]


def test_four_blocks_offlined_out_of_order(backend):
    """§19 of the reference and scenario e: Movable span bookkeeping, block by block."""
    m = machine(backend, 1)
    real = {name: r for name, ok, r in steps("e_mom1_4x128M_movable")}
    t0, dm0 = memtotal_kb(m), directmap2m_kb(m)
    dm_real0 = real["baseline"]["meminfo"]["DirectMap2M"]
    dimms = {}
    for i in range(4):
        name = f"d{i + 1}"
        dimms[name] = m.acpi_memory_hotplug(start=DIMM + i * 128 * MiB, size="128M", node=0)
        assert directmap2m_kb(m) - dm0 == real[f"add_{name}"]["meminfo"]["DirectMap2M"] - dm_real0
        m.sysfs.write(f"/sys/devices/system/memory/memory{32 + i}/state", "online_movable")
        assert zone_tuple(m, "Movable") == zone(real[f"online_{name}"], "Movable")
        assert memtotal_kb(m) - t0 == (real[f"online_{name}"]["key"]["MemTotal_kB"]
                                       - real["baseline"]["key"]["MemTotal_kB"])
    raw = {name: s["readings"][-1]["raw"] for s in load("e_mom1_4x128M_movable")["steps"]
           for name in [s["name"]]}
    assert m.procfs.read("/proc/iomem").rstrip("\n") == raw["online_d4"]["iomem"].rstrip("\n")
    for name in ("d3", "d1", "d4", "d2"):
        blk = 32 + int(name[1]) - 1
        m.sysfs.write(f"/sys/devices/system/memory/memory{blk}/state", "offline")
        assert zone_tuple(m, "Movable") == zone(real[f"offline_{name}"], "Movable")
        m.acpi_memory_eject(dimms[name])
        # /proc/iomem line for line as the real kernel printed it
        assert m.procfs.read("/proc/iomem").rstrip("\n") == raw[f"remove_{name}"]["iomem"].rstrip("\n")
        assert zone_tuple(m, "Movable") == zone(real[f"remove_{name}"], "Movable")
        assert memtotal_kb(m) - t0 == (real[f"remove_{name}"]["key"]["MemTotal_kB"]
                                       - real["baseline"]["key"]["MemTotal_kB"])
        assert directmap2m_kb(m) - dm0 == real[f"remove_{name}"]["meminfo"]["DirectMap2M"] - dm_real0
    # §19 by hand: (131072, 98304, 96768) -> (98304, 65536, 64512) -> (32768, 32768, 32256) -> empty
    assert zone_tuple(m, "Movable") is None


# -- what pins a block --------------------------------------------------------------------------

def test_memmap_of_a_later_dimm_pins_a_normal_block(backend):
    """mom=0: the second DIMM's memmap comes from the first DIMM's Normal memory (the highest
    zone of the zonelist), which then cannot be offlined (EBUSY), as §13 describes."""
    m = machine(backend, 0)
    m.acpi_memory_hotplug(start=DIMM, size="128M", node=0)
    m.sysfs.write("/sys/devices/system/memory/memory32/state", "online")
    m.acpi_memory_hotplug(start=DIMM + 128 * MiB, size="128M", node=0)
    owner = [pfn for pfn, (what, order, _) in m.owners.buddy.items() if what == "memmap"]
    assert len(owner) == 2 and owner[0] < PFN <= owner[1] < PFN + BLOCK_PAGES
    # offline_pages drains the zone's per-CPU lists (zone_pcp_disable) even when it fails:
    # drain first, so that the refused offline must leave everything else as it was
    m.allocator.drain_zone_pages(m.zone(0, "Normal").zoneid)
    before = m.snapshot()
    with pytest.raises(hotmem.HotplugError) as e:
        m.sysfs.write("/sys/devices/system/memory/memory32/state", "offline")
    assert e.value.errno == errno.EBUSY
    assert m.snapshot() == before
    assert m.sysfs.read("/sys/devices/system/memory/memory32/state") == "online\n"


def test_eject_of_an_unofflinable_dimm_is_refused(backend):
    m = machine(backend, 0)
    d1 = m.acpi_memory_hotplug(start=DIMM, size="128M", node=0)
    m.sysfs.write("/sys/devices/system/memory/memory32/state", "online")
    m.acpi_memory_hotplug(start=DIMM + 128 * MiB, size="128M", node=0)
    m.allocator.drain_zone_pages(m.zone(0, "Normal").zoneid)   # see the test above
    before = m.snapshot()
    with pytest.raises(hotmem.HotplugError) as e:
        m.acpi_memory_eject(d1)
    assert e.value.errno == errno.EBUSY
    assert m.snapshot() == before


# -- removal rules ------------------------------------------------------------------------------

def test_remove_rules(backend):
    m = machine(backend, 1)
    m.add_memory(0, DIMM, 128 * MiB, MHP_MEMMAP_ON_MEMORY)
    m.add_memory(0, DIMM + 128 * MiB, 128 * MiB, MHP_MEMMAP_ON_MEMORY)
    m.sysfs.write("/sys/devices/system/memory/memory32/state", "online")
    before = m.snapshot()
    with pytest.raises(hotmem.HotplugError) as e:
        m.remove_memory(0, DIMM, 128 * MiB)                  # online: EBUSY
    assert e.value.errno == errno.EBUSY
    assert m.snapshot() == before
    m.sysfs.write("/sys/devices/system/memory/memory32/state", "offline")
    before = m.snapshot()
    with pytest.raises(hotmem.HotplugError) as e:
        m.remove_memory(0, DIMM, 256 * MiB)                  # memmap_on_memory: one block at a time
    assert e.value.errno == errno.EINVAL
    assert m.snapshot() == before
    m.remove_memory(0, DIMM, 128 * MiB)
    m.remove_memory(0, DIMM + 128 * MiB, 128 * MiB)
    assert not [b for b in m.memory_blocks if b >= 32]


def test_add_then_remove_restores_the_machine(backend):
    for mom in (0, 1):
        m = machine(backend, mom)
        dma32 = m.zone(0, "DMA32").zoneid
        m.allocator.drain_zone_pages(dma32)
        before = m.snapshot()
        d = m.acpi_memory_hotplug(start=DIMM, size="128M", node=0)
        m.sysfs.write("/sys/devices/system/memory/memory32/state", "online_movable")
        m.sysfs.write("/sys/devices/system/memory/memory32/state", "offline")
        m.acpi_memory_eject(d)
        # without memmap on memory the memmap went back through DMA32's per-CPU lists
        m.allocator.drain_zone_pages(dma32)
        after = m.snapshot()
        # The kernel keeps max_pfn, and the pageblock the order-9 memmap was taken from keeps
        # the MIGRATE_UNMOVABLE type the allocation stole for it (steal_suitable_fallback);
        # everything else (struct pages, free lists, page tables, zones, resources) is as before.
        assert after["max_pfn"] == PFN + BLOCK_PAGES and before["max_pfn"] < after["max_pfn"]
        for key in ("pt", "blocks", "iomem", "owners", "totalram", "fw"):
            assert after[key] == before[key], (mom, key)
        # every free block is back (on its pageblock's list: see the migratetype note below)
        for zid, z in before["alloc"]["zones"].items():
            za = after["alloc"]["zones"][zid]
            assert (za["nr_free_pages"], za["managed"]) == (z["nr_free_pages"], z["managed"])
            blocks = lambda fa: sorted((order, pfn) for (order, _), pfns in fa.items()
                                       for pfn in pfns)
            assert blocks(za["free_area"]) == blocks(z["free_area"])
        # zones and node: spans and counts as before; pgdat->nr_zones keeps the Movable zone
        # (init_currently_empty_zone only raises it) and the watermarks are those recomputed at
        # offline (the boot ones predate the late boot frees, see hotmem/mm/watermark.py)
        spans = lambda snap: [(z[2:7]) for z in snap[0][11]] + [snap[0][1:4]] + [snap[0][5:11]]
        assert spans(after["pgdats"]) == spans(before["pgdats"])
        assert (before["pgdats"][0][4], after["pgdats"][0][4]) == (2, 4)
        assert after["ms"]["memmaps"] == before["ms"]["memmaps"]
        changed = []
        for nr, sec in after["ms"]["sections"].items():
            old = before["ms"]["sections"][nr]
            assert sec[:3] == old[:3]
            changed += [((nr << 15) + (i << 9), b, a) for i, (a, b) in enumerate(zip(sec[3], old[3]))
                        if a != b]
        # only pageblocks an unmovable allocation stole from MIGRATE_MOVABLE, and only when the
        # memmap came from the buddy
        assert all((b, a) == (1, 0) for _, b, a in changed)
        assert bool(changed) == (not mom)


# -- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("call,err", [
    (lambda m: m.add_memory(0, DIMM + 4096, 128 * MiB), errno.EINVAL),      # misaligned
    (lambda m: m.add_memory(0, DIMM, 0), errno.EINVAL),                     # zero size
    (lambda m: m.add_memory(0, DIMM, 64 * MiB), errno.EINVAL),              # not a block multiple
    (lambda m: m.add_memory(0, 1 << 46, 128 * MiB), errno.E2BIG),           # beyond 4-level limit
    (lambda m: m.add_memory(0, 0, 128 * MiB), errno.EEXIST),                # boot RAM is there
    (lambda m: m.add_memory(7, DIMM, 128 * MiB), errno.EINVAL),             # node not possible
    (lambda m: m.add_memory(0, DIMM, 256 * MiB, MHP_MEMMAP_ON_MEMORY), errno.EINVAL),
    (lambda m: m.acpi_memory_hotplug(DIMM + (1 << 30), "128M", node=3), errno.EINVAL),
    (lambda m: m.sysfs.write("/sys/devices/system/memory/memory1/state", "on"), errno.EINVAL),
    (lambda m: m.sysfs.write("/sys/devices/system/memory/memory1/state", "online"), errno.EINVAL),
    (lambda m: m.sysfs.write("/sys/devices/system/memory/memory40/state", "online"), errno.ENOENT),
    (lambda m: m.sysfs.write("/sys/devices/system/memory/block_size_bytes", "1"), errno.EACCES),
    (lambda m: m.remove_memory(0, DIMM + (1 << 30), 128 * MiB), errno.EINVAL),   # not there
    (lambda m: m.remove_memory(0, 0, 128 * MiB), errno.EBUSY),              # boot block, online
])
def test_bad_input_changes_nothing(backend, call, err):
    m = machine(backend, 1)
    m.acpi_memory_hotplug(DIMM, "128M", node=0)
    before = m.snapshot()
    with pytest.raises(hotmem.HotplugError) as e:
        call(m)
    assert e.value.errno == err, e.value
    assert m.snapshot() == before


def test_overlapping_memory_is_refused(backend):
    m = machine(backend, 0)
    m.acpi_memory_hotplug(DIMM, "256M", node=0)
    before = m.snapshot()
    for call in (lambda: m.acpi_memory_hotplug(DIMM + 128 * MiB, "128M", node=0),   # QEMU refuses
                 lambda: m.add_memory(0, DIMM + 128 * MiB, 128 * MiB)):          # iomem conflict
        with pytest.raises(hotmem.HotplugError) as e:
            call()
        assert e.value.errno == errno.EEXIST
        assert m.snapshot() == before


# -- NUMA and fragmentation ---------------------------------------------------------------------

@pytest.mark.parametrize("mom", [0, 1])
def test_memoryless_node_hot_add(backend, mom):
    """A DIMM on a node without memory or CPUs: without memmap on memory its memmap is paid by
    node 0 (drawback b); with it, by the DIMM itself."""
    m = hotmem.Machine(boot_memory={0: "1G", 1: 0}, cmdline=f"memory_hotplug.memmap_on_memory={mom}",
                       backend=backend)
    assert m.sysfs.read("/sys/devices/system/node/online") == "0\n"
    assert m.sysfs.read("/sys/devices/system/node/possible") == "0-1\n"
    d = m.acpi_memory_hotplug(DIMM, "128M", node=1)
    assert m.sysfs.read("/sys/devices/system/node/online") == "0-1\n"
    acc = m.accounting()["memmap"]
    assert acc == ({"altmap": {1: 512}, "buddy": {}} if mom else {"altmap": {}, "buddy": {0: 512}})
    m.sysfs.write("/sys/devices/system/memory/memory32/state", "online")
    assert m.zone(1, "Normal").managed_pages == BLOCK_PAGES - (512 if mom else 0)
    assert m.sysfs.read("/sys/devices/system/node/has_memory") == "0-1\n"
    m.sysfs.write("/sys/devices/system/memory/memory32/state", "offline")
    m.acpi_memory_eject(d)
    assert m.sysfs.read("/sys/devices/system/node/online") == "0\n"


def test_fragmented_node_falls_back_to_base_pages(backend):
    """Drawback c: with no free order-9 block on the node, each section's memmap is mapped with
    512 base pages and one PTE table; memmap on memory does not care."""
    m = machine(backend, 0)
    for name in ("DMA32", "DMA"):
        m.allocator.fragment(m.zone(0, name).zoneid, 9, 0)
    m.acpi_memory_hotplug(DIMM, "128M", node=0)
    acc = m.accounting()
    assert acc["page tables"]["vmemmap"] == {"PTE": 1}
    memmap_pages = [(what, order) for what, order, _ in m.owners.buddy.values() if what == "memmap"]
    assert memmap_pages == [("memmap", 0)] * 512
    m2 = machine(backend, 1)
    for name in ("DMA32", "DMA"):
        m2.allocator.fragment(m2.zone(0, name).zoneid, 9, 0)
    m2.acpi_memory_hotplug(DIMM, "128M", node=0)
    assert m2.accounting()["memmap"]["altmap"] == {0: 512}
    assert m2.accounting()["page tables"]["vmemmap"] == {}


def test_compiled_core_and_twin_leave_identical_machines():
    """The same hotplug program on both backends: every piece of state equal at every step."""
    ms = [machine("compiled", 1, "movable_node"), machine("python", 1, "movable_node")]
    program = [
        lambda m: m.acpi_memory_hotplug(DIMM, "128M", node=0),
        lambda m: m.acpi_memory_hotplug(DIMM + 128 * MiB, "256M", node=0),
        lambda m: m.sysfs.write("/sys/devices/system/memory/memory33/state", "online"),
        lambda m: m.sysfs.write("/sys/devices/system/memory/memory32/state", "online_kernel"),
        lambda m: m.sysfs.write("/sys/devices/system/memory/memory34/state", "online"),
        lambda m: m.sysfs.write("/sys/devices/system/memory/memory33/state", "offline"),
        lambda m: m.sysfs.write("/sys/devices/system/memory/memory32/state", "offline"),
        lambda m: m.remove_memory(0, DIMM, 128 * MiB),
    ]
    for step in program:
        for m in ms:
            step(m)
        a, b = (m.snapshot() for m in ms)
        assert a == b
        assert ms[0].procfs.read("/proc/zoneinfo") == ms[1].procfs.read("/proc/zoneinfo")
    # the twin's kpageflags loop is slow: compare the pages around the block edges once
    for pfn in (PFN, PFN + BLOCK_PAGES, PFN + 2 * BLOCK_PAGES):
        assert (ms[0].procfs.kpageflags(pfn - 64, 1024) == ms[1].procfs.kpageflags(pfn - 64, 1024)).all()


def test_zoneinfo_watermarks_follow_the_real_kernel(backend):
    """Every zone's min/low/high, protection and per-CPU pageset high/batch as /proc/zoneinfo
    printed them at each step of scenario e (free counts are guest noise and left out)."""
    from hotmem.render import parse_zoneinfo
    m = machine(backend, 1)
    raw = {s["name"]: s["readings"][-1]["raw"]["zoneinfo"]
           for s in load("e_mom1_4x128M_movable")["steps"]}

    def fields(text):
        out = {}
        for node in parse_zoneinfo(text):
            for z in node.zones:
                out[z.name] = (z.min, z.low, z.high, z.spanned, z.present, z.managed,
                               tuple(z.protection),
                               tuple((p.high, p.batch) for p in z.pagesets.values()),
                               z.start_pfn if z.populated else None)
        return out

    assert fields(m.procfs.read("/proc/zoneinfo")) == fields(raw["baseline"])
    dimms = {}
    for i in range(4):
        name = f"d{i + 1}"
        dimms[name] = m.acpi_memory_hotplug(start=DIMM + i * 128 * MiB, size="128M", node=0)
        m.sysfs.write(f"/sys/devices/system/memory/memory{32 + i}/state", "online_movable")
        assert fields(m.procfs.read("/proc/zoneinfo")) == fields(raw[f"online_{name}"]), name
    for name in ("d3", "d1", "d4", "d2"):
        m.sysfs.write(f"/sys/devices/system/memory/memory{31 + int(name[1])}/state", "offline")
        assert fields(m.procfs.read("/proc/zoneinfo")) == fields(raw[f"offline_{name}"]), name
        m.acpi_memory_eject(dimms[name])


def test_auto_online_and_movable_node(backend):
    m = hotmem.Machine(cmdline="memory_hotplug.memmap_on_memory=1 memhp_default_state=online "
                               "movable_node", backend=backend)
    assert m.sysfs.read("/sys/devices/system/memory/auto_online_blocks") == "online\n"
    m.acpi_memory_hotplug(DIMM, "128M", node=0)
    # auto-onlined with MMOP_ONLINE; with movable_node the default zone is Movable (§7.1)
    assert m.sysfs.read("/sys/devices/system/memory/memory32/state") == "online\n"
    assert m.sysfs.read("/sys/devices/system/memory/memory32/valid_zones") == "Movable\n"
    m.sysfs.write("/sys/devices/system/memory/auto_online_blocks", "offline")
    m.acpi_memory_hotplug(DIMM + 128 * MiB, "128M", node=0)
    assert m.sysfs.read("/sys/devices/system/memory/memory33/state") == "offline\n"
    # next to an online Movable block, the default for the new block is Movable too
    assert m.sysfs.read("/sys/devices/system/memory/memory33/valid_zones") == "Movable Normal\n"
    node = m.sysfs.read("/sys/devices/system/node/node0/meminfo").splitlines()
    total_kb = int(node[0].split()[3])
    assert total_kb == 4 * sum(z.managed_pages for z in m.pgdats[0].node_zones)
