"""The hotplug lifecycle on s390x (Linux 6.1): RAM from 0, SCLP standby memory after it.

Expected numbers are hand computations from the s390 6.1 page-table shapes written out here:
256 MiB sections of 65536 pages whose memmap is 65536 x 64 B = 4 MiB = four 1 MiB segments;
a region-third entry maps 2 GiB, a segment entry 1 MiB, a page-table entry 4 KiB; region and
segment tables are 2048 x 8 B = 16 KiB (4 pages), page tables 256 x 8 B = 2 KiB (half a page).
"""
import errno

import pytest

import hotmem
from hotmem.mm.memory_hotplug import MHP_MEMMAP_ON_MEMORY
from hotmem.mm.page_alloc import GFP_KERNEL, kernel_alloc_pages, kernel_free_pages

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
PAGE = 4 * KiB
SECTION_PAGES = 256 * MiB // PAGE                    # 65536
MEMMAP_PAGES = SECTION_PAGES * 64 // PAGE            # 1024 pages (4 MiB) per 256 MiB
CRST_PAGES = 2048 * 8 // PAGE                        # 4
BLOCK = "/sys/devices/system/memory/memory{}/state"


@pytest.fixture(params=["compiled", "python"])
def backend(request):
    return request.param


def s390(backend, **kw):
    kw.setdefault("boot_memory", "1G")
    kw.setdefault("standby_memory", "1G")
    return hotmem.Machine(arch="s390x", kernel=kw.pop("kernel", "6.1"), backend=backend, **kw)


def test_block_size_follows_the_storage_increment(backend):
    # memory_block_size_bytes = max(MIN_MEMORY_BLOCK_SIZE (one 256 MiB section), sclp.rzm)
    assert s390(backend).block_size_bytes == 256 * MiB
    assert s390(backend, standby_memory={"size": "1G", "rzm": "128M"}).block_size_bytes == 256 * MiB
    m = s390(backend, standby_memory={"size": "2G", "rzm": "1G"})
    assert m.block_size_bytes == 1 * GiB
    assert [(i, b.state) for i, b in sorted(m.memory_blocks.items())] == \
        [(0, "online"), (1, "offline"), (2, "offline")]
    for bad in ({"size": "1G", "rzm": "384M"}, {"size": "1G", "rzm": "512K"},
                {"size": "768M", "rzm": "512M"}, {"size": "1G", "speed": 1}):
        with pytest.raises(hotmem.HotplugError) as e:
            s390(backend, standby_memory=bad)
        assert e.value.errno == errno.EINVAL
    with pytest.raises(hotmem.HotplugError) as e:
        hotmem.Machine(arch="x86_64", standby_memory="1G", backend=backend)
    assert e.value.errno == errno.EINVAL


def test_boot_zones_and_standby_blocks(backend):
    m = s390(backend)
    # setup_memory_end: max_pfn = PFN_DOWN(ident_map_size) = online + standby = 2 GiB
    assert m.max_pfn == 2 * GiB // PAGE
    # paging_init: ZONE_DMA below 2 GiB holds all the boot memory; Normal and Movable empty
    dma, normal, movable = (m.zone(0, n) for n in ("DMA", "Normal", "Movable"))
    assert (dma.zone_start_pfn, dma.spanned_pages, dma.present_pages) == (0, 4 * SECTION_PAGES,
                                                                          4 * SECTION_PAGES)
    assert normal.spanned_pages == movable.spanned_pages == 0
    # memblock kept: the boot memmap (4 sections x 4 MiB of 1 MiB blocks; the sparse buffer is
    # freed whole), swapper_pg_dir's stand-in, one segment table each for the identity map and
    # the vmemmap (16 KiB each), and the 2 KiB page table splitting the lowcore's segment (its
    # page is only partly reserved, so not freed either)
    reserved = 4 * MEMMAP_PAGES + 3 * CRST_PAGES + 1
    assert dma.managed_pages == 4 * SECTION_PAGES - reserved == 258035
    assert m.memblock.reserved_by_name()["pgtable PTE"] == 2 * KiB
    # sclp_add_standby_memory: the four standby blocks exist, offline, each a System RAM resource
    assert [(i, b.state) for i, b in sorted(m.memory_blocks.items())] == \
        [(i, "online") for i in range(4)] + [(i, "offline") for i in range(4, 8)]
    assert m.sysfs.read(BLOCK.format(5)).strip() == "offline"
    # arch_get_memory_phys_device: the block's first storage increment, 1.25 GiB / 256 MiB
    assert m.sysfs.read("/sys/devices/system/memory/memory5/phys_device") == "5\n"
    assert "40000000-4fffffff : System RAM" in m.procfs.read("/proc/iomem")
    assert m.arch_ops.sclp.state() == (256 * MiB, 8, tuple((rn, rn > 4) for rn in range(1, 9)))
    acc = m.accounting()
    # their memmaps came from the buddy in 1 MiB blocks; the identity map (1 MiB segments in the
    # boot segment table) and the vmemmap (same segment table, 2 GiB of vmemmap = 128 GiB of
    # RAM) needed no new table
    assert acc["memmap"] == {"altmap": {}, "buddy": {0: 4 * MEMMAP_PAGES}}
    assert acc["page tables"] == {"direct map": {}, "vmemmap": {}}
    assert m.pgtables.direct_pages == {"4k": 256, "1M": 2 * 1024 - 1, "2G": 0}
    assert "Hugepagesize:       1024 kB" in m.procfs.read("/proc/meminfo")
    assert not m.warnings


def test_online_a_standby_block_then_give_everything_back(backend):
    m = s390(backend)
    before = m.accounting()
    totalram = m.totalram_pages
    m.sysfs.write(BLOCK.format(4), "online")
    # default_kernel_zone_for_pfn: 1 GiB does not intersect ZONE_DMA's span -> ZONE_NORMAL,
    # even below MAX_DMA_ADDRESS
    z = m.zone(0, "Normal")
    assert (z.zone_start_pfn, z.spanned_pages, z.present_pages, z.managed_pages) == \
        (1 * GiB // PAGE, SECTION_PAGES, SECTION_PAGES, SECTION_PAGES)
    assert m.totalram_pages - totalram == SECTION_PAGES
    # sclp_mem_notifier(MEM_GOING_ONLINE) assigned increment rn 5 ([1 GiB, 1.25 GiB))
    assert dict(m.arch_ops.sclp.state()[2])[5] is False
    m.sysfs.write(BLOCK.format(4), "offline")
    assert dict(m.arch_ops.sclp.state()[2])[5] is True        # MEM_OFFLINE unassigned it
    assert m.zone(0, "Normal").spanned_pages == 0
    m.remove_memory(1 * GiB, 256 * MiB)
    acc = m.accounting()
    assert acc["memmap"]["buddy"] == {0: before["memmap"]["buddy"][0] - MEMMAP_PAGES}
    assert acc["page tables"] == before["page tables"]
    assert m.totalram_pages == totalram and 4 not in m.memory_blocks and not m.warnings


def test_add_memory_beyond_the_standby_storage(backend):
    m = s390(backend)
    tables = m.pgtables.tables_by_level()
    m.add_memory(0, 4 * GiB, "256M")
    acc = m.accounting()
    # identity map: region-third entry 2 ([4 GiB, 6 GiB)) had no segment table: one 16 KiB
    # crst (order 2) from the buddy, then 256 segment entries; the vmemmap of 4 GiB (vmemmap
    # + 64 MiB) is in the boot segment table: four 1 MiB blocks (order 8), no table
    assert acc["page tables"] == {"direct map": {"PMD": CRST_PAGES}, "vmemmap": {}}
    assert acc["memmap"]["buddy"] == {0: 5 * MEMMAP_PAGES}
    assert m.memory_blocks[16].state == "offline"
    m.sysfs.write(BLOCK.format(16), "online_movable")
    z = m.zone(0, "Movable")
    assert (z.zone_start_pfn, z.present_pages, z.managed_pages) == \
        (4 * GiB // PAGE, SECTION_PAGES, SECTION_PAGES)
    m.sysfs.write(BLOCK.format(16), "offline")
    m.remove_memory(4 * GiB, "256M")
    # try_free_pmd_table: the emptied segment table ([4 GiB, 6 GiB) is below VMALLOC_START)
    acc = m.accounting()
    assert acc["page tables"] == {"direct map": {}, "vmemmap": {}}
    assert acc["memmap"]["buddy"] == {0: 4 * MEMMAP_PAGES}
    assert m.pgtables.tables_by_level() == tables and not m.warnings


def test_without_edat_everything_is_4k(backend):
    m = s390(backend, standby_memory="512M", cpu_flags=("edat=off", "edat2=off"))
    # boot: 1 GiB identity map in 4 KiB pages = 262144 PTEs = 1024 page tables of 2 KiB (512
    # pages); 16 MiB of boot memmap in 4 KiB pages and its 16 page tables (8 pages)
    boot = m.memblock.reserved_by_name()
    assert boot["pgtable PTE"] == 1024 * 2 * KiB and boot["memmap"] == 16 * MiB
    assert boot["vmemmap PTE table (boot)"] == 16 * 2 * KiB
    # each 256 MiB standby block: 256 page tables for its identity map (128 pages), 1024 memmap
    # pages in 4 KiB pages and 4 page tables for them (2 pages); PTE pages count as PageTables
    acc = m.accounting()
    assert acc["page tables"] == {"direct map": {"PTE": 2 * 128}, "vmemmap": {"PTE": 2 * 2}}
    assert acc["memmap"]["buddy"] == {0: 2 * MEMMAP_PAGES}
    assert m.pgtables.nr_pagetable == 260
    assert "PageTables:         1040 kB" in m.procfs.read("/proc/meminfo")
    m.sysfs.write(BLOCK.format(5), "online")
    m.sysfs.write(BLOCK.format(5), "offline")
    m.remove_memory(1 * GiB + 256 * MiB, 256 * MiB)
    acc = m.accounting()
    assert acc["page tables"] == {"direct map": {"PTE": 128}, "vmemmap": {"PTE": 2}}
    assert m.pgtables.nr_pagetable == 130 and not m.warnings


@pytest.mark.parametrize("kernel", ["v2", "5.13", "6.1"])
def test_memmap_on_memory_is_refused_before_6_9(backend, kernel):
    m = s390(backend, kernel=kernel, standby_memory="256M",
             cmdline="memory_hotplug.memmap_on_memory=1" if kernel != "v2" else "")
    # no ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE before 6.9 (v2: the weak arch hook says no)
    assert not m.mhp_supports_memmap_on_memory("256M")
    before, sclp = m.snapshot(), m.arch_ops.sclp.state()
    with pytest.raises(hotmem.HotplugError) as e:
        m.add_memory(0, 4 * GiB, "256M", MHP_MEMMAP_ON_MEMORY)
    assert e.value.errno == errno.EINVAL
    assert m.snapshot() == before and m.arch_ops.sclp.state() == sclp


def test_6_6_falls_back_to_a_regular_memmap(backend):
    m = s390(backend, kernel="6.6", standby_memory="256M",
             cmdline="memory_hotplug.memmap_on_memory=1")
    assert not m.mhp_supports_memmap_on_memory("256M")
    m.add_memory(0, 4 * GiB, "256M", MHP_MEMMAP_ON_MEMORY)      # 6.6: silently without altmap
    assert m.memory_blocks[16].nr_vmemmap_pages == 0
    assert m.accounting()["memmap"] == {"altmap": {}, "buddy": {0: 2 * MEMMAP_PAGES}}


def test_bad_ranges(backend):
    m = s390(backend)
    before = m.snapshot()
    with pytest.raises(hotmem.HotplugError) as e:          # the standby block exists already
        m.add_memory(0, 1 * GiB, "256M")
    assert e.value.errno == errno.EEXIST
    vmem_max = m.arch.vmemmap_start                        # arch_get_mappable_range's end
    with pytest.raises(hotmem.HotplugError) as e:
        m.add_memory(0, vmem_max, "256M")
    assert e.value.errno == errno.E2BIG
    assert m.snapshot() == before


def test_a_refused_online_unassigns_the_storage_again(backend):
    m = s390(backend, standby_memory="256M")
    m.inject("notifier", event="MEM_GOING_ONLINE", error=-errno.ENOMEM)
    with pytest.raises(hotmem.HotplugError) as e:
        m.sysfs.write(BLOCK.format(4), "online")
    # sclp's notifier (registered first) assigned rn 5; MEM_CANCEL_ONLINE unassigned it
    assert e.value.errno == errno.ENOMEM
    assert dict(m.arch_ops.sclp.state()[2])[5] is True and m.memory_blocks[4].state == "offline"
    m.clear_injections()
    m.sysfs.write(BLOCK.format(4), "online")
    assert dict(m.arch_ops.sclp.state()[2])[5] is False


def test_offlining_a_block_with_standby_storage_is_refused(backend):
    m = s390(backend, standby_memory="256M")
    # an online boot block whose increment the hypervisor reports as standby (as after a
    # failed sclp_assign_storage): MEM_GOING_OFFLINE says NOTIFY_BAD -> -EPERM
    m.arch_ops.sclp.standby[2] = True
    with pytest.raises(hotmem.HotplugError) as e:
        m.sysfs.write(BLOCK.format(1), "offline")
    assert e.value.errno == errno.EPERM and m.memory_blocks[1].state == "online"


def test_edat2_maps_an_aligned_2g_range_with_one_region_third_entry(backend):
    m = s390(backend, boot_memory="2G", standby_memory=None)
    tables = m.pgtables.tables_by_level()
    m.add_memory(0, 6 * GiB, "2G")                       # eight blocks at once
    # [6 GiB, 8 GiB) is one whole region-third entry: a 2 GiB page, no segment table; the
    # vmemmap of 2 GiB (32 MiB at vmemmap + 96 MiB) sits in the boot segment table
    assert m.pgtables.direct_pages["2G"] == 1
    assert m.accounting()["page tables"] == {"direct map": {}, "vmemmap": {}}
    assert m.accounting()["memmap"]["buddy"] == {0: 8 * MEMMAP_PAGES}
    # removing one block leaves the 2 GiB page in place (modify_pud_table only clears whole,
    # aligned region-third entries)
    m.remove_memory(6 * GiB, "256M")
    assert m.pgtables.direct_pages["2G"] == 1
    m.remove_memory(6 * GiB + 256 * MiB, 2 * GiB - 256 * MiB)
    assert m.pgtables.direct_pages["2G"] == 1             # never a whole aligned 2 GiB again
    assert m.accounting()["memmap"]["buddy"] == {} and m.pgtables.tables_by_level() == tables


def test_four_level_tables_free_what_they_allocate(backend):
    from hotmem.arch import s390x_mmu as mmu
    m = s390(backend, standby_memory=None)
    owned = dict(m.owners.buddy)
    # a region-second top table as a kernel with VMALLOC_END above 4 TiB has (the model's
    # boot of such a machine would need TiBs): a 16 KiB buddy block stands in for it
    top, _ = kernel_alloc_pages(m, 0, GFP_KERNEL, 2, "test top")
    m.pgtables = pt = mmu.S390PageTables(4, top << 12, vmalloc_start=1 << 50)
    pt.slab_available = True
    start = 5 << 40                                      # region-second entry 1
    assert mmu.add_pagetable(m, start, start + 256 * MiB, True) == 0
    # a region-third table (P4D entry) and a segment table: 2 x 4 pages, 256 1 MiB segments
    assert pt.tables_by_level() == {"P4D": 1, "PUD": 1, "PMD": 1}
    assert pt.direct_pages == {"4k": 0, "1M": 256, "2G": 0}
    assert m.accounting()["page tables"]["direct map"] == {"PUD": CRST_PAGES, "PMD": CRST_PAGES}
    assert pt.lookup(start + 3 * MiB) == ("PMD", "L", start + 3 * MiB)
    mmu.remove_pagetable(m, start, start + 256 * MiB, True)
    # try_free_pmd_table and try_free_pud_table: both below VMALLOC_START, both freed
    assert pt.tables_by_level() == {"P4D": 1} and pt.direct_pages["1M"] == 0
    kernel_free_pages(m, top, 2)
    assert m.owners.buddy == owned and not m.warnings


def test_removing_boot_memory_warns_once_and_keeps_the_boot_memmap(backend):
    m = s390(backend, standby_memory="256M")
    boot = m.accounting()["boot"]
    for blk in (1, 2):
        m.sysfs.write(BLOCK.format(blk), "offline")
    assert dict(m.arch_ops.sclp.state()[2])[2] is True       # MEM_OFFLINE unassigned rn 2 and 3
    m.remove_memory(256 * MiB, 512 * MiB)
    # vmemmap_free -> vmem_free_pages on the boot memmap's 1 MiB memblock blocks: PageReserved,
    # WARN_ON_ONCE, kept (eight of them, one warning); the identity map loses 512 segments
    assert len(m.warnings) == 1 and "PageReserved" in m.warnings[0]
    assert m.accounting()["boot"] == boot
    assert m.pgtables.direct_pages == {"4k": 256, "1M": 1024 + 256 - 1 - 512, "2G": 0}


def test_zoneinfo_lists_the_zones_of_the_build(backend):
    """Debian's s390x 6.1 has MAX_NR_ZONES 3 (ZONE_DMA, ZONE_NORMAL, ZONE_MOVABLE), no DMA32."""
    m = s390(backend)
    names = [ln.split()[-1] for ln in m.procfs.read("/proc/zoneinfo").splitlines()
             if ln.startswith("Node")]
    assert names == ["DMA", "Normal", "Movable"]


def test_no_memmap_on_memory_parameter_before_6_9(backend):
    """memory_hotplug.memmap_on_memory exists only with CONFIG_MHP_MEMMAP_ON_MEMORY, which s390
    cannot select before 6.9: its sysfs file is absent (lsmem prints no such line)."""
    m = s390(backend)
    with pytest.raises(hotmem.HotplugError) as e:
        m.sysfs.read("/sys/module/memory_hotplug/parameters/memmap_on_memory")
    assert e.value.errno == errno.ENOENT
    assert m.sysfs.read("/sys/module/memory_hotplug/parameters/online_policy") == "contig-zones\n"


def test_s390x_6_9_and_later_say_they_are_not_modelled(backend):
    """From 6.9 sclp adds standby memory with MHP_MEMMAP_ON_MEMORY | MHP_OFFLINE_INACCESSIBLE:
    the model refuses such a kernel rather than answer with the 6.8 behaviour."""
    with pytest.raises(hotmem.HotplugError) as e:
        s390(backend, kernel="6.11")
    assert e.value.errno == errno.EOPNOTSUPP
