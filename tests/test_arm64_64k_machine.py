"""arm64 with 64K pages (Linux 6.1, VA_BITS 48, 3-level tables; QEMU virt: RAM from 1 GiB), and the
multi-word subsection_map it needs (256 subsections of 2 MiB per 512 MiB section).

Every expected number is a hand computation from the kernel's definitions, written out here:
PAGE_SHIFT 16; SECTION_SIZE_BITS 29 (asm/sparsemem.h) -> 8192 pages per section; SUBSECTION_SHIFT
21 -> 32 pages per subsection, 2^(29-21) = 256 subsections = BITS_TO_LONGS(256) = 4 words;
PMD_SHIFT = (16-3)*1+3 = 29 (a PMD entry maps 512 MiB, a PTE table 8192 x 64 KiB = 512 MiB),
PGDIR_SHIFT = 42 (a PMD table maps 4 TiB); sizeof(struct page) 64 -> 1024 struct pages per
64 KiB page, a section's memmap is 8192 x 64 B = 512 KiB = 8 pages; MAX_ORDER 14 (Kconfig
ARCH_FORCE_MAX_ORDER "14" if ARM64_64K_PAGES), pageblock_order = min(HUGETLB_PAGE_ORDER =
29-16 = 13, MAX_ORDER-1 = 13) = 13.
"""
import errno

import pytest

import hotmem
from hotmem.arch.arm64_init import device_memory_base
from hotmem.errors import HotplugError
from hotmem.mm import sparse
from hotmem.testing import BootFacts, check_invariants

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
PAGE = 64 * KiB
PAGES_PER_SECTION = (512 * MiB) // PAGE            # 8192
PAGES_PER_SUBSECTION = (2 * MiB) // PAGE           # 32
SUBSECTIONS = (512 * MiB) // (2 * MiB)             # 256
STRUCT_PAGE = 64
RAM_BASE = 1 * GiB                                 # QEMU virt
BOOT_PFNS = (1 * GiB) // PAGE                      # 16384: sections 2 and 3


@pytest.fixture(params=["compiled", "python"])
def backend(request):
    return request.param


def machine(backend, cmdline="memory_hotplug.memmap_on_memory=1"):
    return hotmem.Machine(arch="arm64", page_size="64K", boot_memory="1G", cmdline=cmdline,
                          backend=backend)


def state_file(blk):
    return f"/sys/devices/system/memory/memory{blk}/state"


def meminfo_kb(m, key, path="/proc/meminfo"):
    for line in m.procfs.read(path).splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


# -- geometry and boot ---------------------------------------------------------------------------

def test_64k_geometry(backend):
    m = machine(backend)
    assert m.block_size_bytes == 512 * MiB                  # one section, no arch override
    assert m.sysfs.read("/sys/devices/system/memory/block_size_bytes") == "20000000\n"
    assert m.max_order == 14 and m.arch.pageblock_order == 13
    assert m.ms.pages_per_section == PAGES_PER_SECTION
    assert m.ms.subsections_per_section == SUBSECTIONS and m.ms.subsection_map_words == 4
    # 3 levels: PGD entries map 2^42, PTRS_PER_PGD = 2^(48-42) = 64
    assert [lv[:3] for lv in m.pgtables.geometry.levels] == \
        [("PGD", 42, 64), ("PMD", 29, 8192), ("PTE", 16, 8192)]
    # memmap_on_memory: 8192 x 64 B = 512 KiB, not a multiple of PMD_SIZE (512 MiB)
    assert not m.mhp_supports_memmap_on_memory("512M")


def test_64k_boot(backend):
    m = machine(backend)
    # boot sections 2 and 3 ([1 GiB, 2 GiB)) have all 256 subsections
    for nr in (2, 3):
        assert m.ms.subsection_map(nr) == (1 << SUBSECTIONS) - 1
    # sparse_init: section_map_size() = ALIGN(512 KiB, PMD_SIZE) = 512 MiB, so the node's buffer
    # would be 2 x 512 MiB = all of its RAM, which already holds the PGD and the linear map's
    # tables: memmap_alloc fails and every vmemmap page comes from memblock one by one.
    # Top-down from 2 GiB (pfn 0x8000): PGD 0x7fff, linear-map PMD 0x7ffe, PTE tables 0x7ffd and
    # 0x7ffc (1 GiB / 512 MiB per PTE table), then vmemmap_populate_basepages' walk: PMD table
    # 0x7ffb, PTE table 0x7ffa (one PTE table maps 512 MiB of vmemmap), 16 memmap pages
    # 0x7ff9..0x7fea (2 sections x 512 KiB / 64 KiB).
    by_pfn = {}
    for r in m.memblock.reserved:
        for p in range(r.base // PAGE, r.end // PAGE):
            by_pfn[p] = r.name
    assert by_pfn == {0x7fff: "pgtable PGD", 0x7ffe: "pgtable PMD", 0x7ffd: "pgtable PTE",
                      0x7ffc: "pgtable PTE", 0x7ffb: "vmemmap PMD table (boot)",
                      0x7ffa: "vmemmap PTE table (boot)",
                      **{p: "memmap" for p in range(0x7fea, 0x7ffa)}}
    managed = BOOT_PFNS - 22
    assert m.totalram_pages == managed
    assert meminfo_kb(m, "MemTotal") == managed * 64
    node = m.sysfs.read("/sys/devices/system/node/node0/meminfo").splitlines()[0].split()
    assert node[:3] == ["Node", "0", "MemTotal:"] and int(node[3]) == managed * 64
    # Hugepagesize = HPAGE_SIZE = PMD_SIZE = 512 MiB; VMALLOC_TOTAL = (VMEMMAP_START - 256M) -
    # (_PAGE_END(48) + 128M) with VMEMMAP_START = -2^(48 - (16 - 6)) = -2^38, _PAGE_END(48) = -2^47
    assert meminfo_kb(m, "Hugepagesize") == 512 * 1024
    assert meminfo_kb(m, "VmallocTotal") == ((1 << 47) - (1 << 38) - 384 * MiB) >> 10
    # /proc/buddyinfo: orders 0..13
    assert len(m.procfs.read("/proc/buddyinfo").splitlines()[0].split()) == 4 + 14


def test_64k_boot_with_half_a_section(backend):
    # 256 MiB of RAM at 1 GiB: section 2 has subsections 0..127 only (bits in words 0 and 1)
    m = hotmem.Machine(arch="arm64", page_size="64K", boot_memory="256M", backend=backend)
    facts = BootFacts(m)
    assert m.ms.subsection_map(2) == (1 << 128) - 1
    first = RAM_BASE // PAGE
    assert m.ms.pfn_section_valid(first + 4095) and not m.ms.pfn_section_valid(first + 4096)
    # sparse_init still populates the memmap of the whole section: 512 KiB = 8 pages
    assert m.accounting()["boot"]["memmap"] == 8
    assert m.zone(0, "DMA").present_pages == 4096
    d = m.acpi_memory_hotplug(2 * GiB, "512M")              # 1.25 GiB rounded up to 2 GiB
    m.sysfs.write(state_file(4), "online_movable")
    check_invariants(m, facts)
    m.sysfs.write(state_file(4), "offline")
    m.acpi_memory_eject(d)
    check_invariants(m, facts)
    assert not m.warnings


def test_64k_boot_memory_cannot_be_offlined(backend):
    # arch/arm64/mm/mmu.c:prevent_bootmem_remove_notifier (6.1): MEM_GOING_OFFLINE of an early
    # section -> NOTIFY_BAD -> -EPERM; block 2 is the boot section [1 GiB, 1.5 GiB)
    m = machine(backend)
    assert min(m.memory_blocks) == 2
    total = m.totalram_pages
    with pytest.raises(HotplugError) as e:
        m.sysfs.write(state_file(2), "offline")
    assert e.value.errno == errno.EPERM
    # (the pcp lists were drained and the isolation undone: the page counts are unchanged)
    assert m.memory_blocks[2].state == "online" and m.ms.section_online(2)
    assert m.totalram_pages == total and m.zone(0, "DMA").present_pages == BOOT_PFNS


# -- the hotplug lifecycle -----------------------------------------------------------------------

@pytest.mark.parametrize("size, blocks", [("512M", 1), ("1G", 2)])
def test_64k_dimm_lifecycle(backend, size, blocks):
    m = machine(backend)
    facts = BootFacts(m)                  # the invariants recount everything from the state
    total0 = m.totalram_pages
    base = device_memory_base(m)
    assert base == 2 * GiB                                  # end of RAM rounded up to 1 GiB
    first = base // (512 * MiB)
    assert first == 4
    d = m.acpi_memory_hotplug(base, size, node=0)
    pages = blocks * PAGES_PER_SECTION
    assert sorted(m.memory_blocks)[-blocks:] == list(range(first, first + blocks))
    for blk in range(first, first + blocks):
        assert m.memory_blocks[blk].nr_vmemmap_pages == 0   # memmap_on_memory refused
        assert m.ms.subsection_map(blk) == (1 << SUBSECTIONS) - 1
    acc = m.accounting()
    # memmap from the buddy with base pages: 8 pages of 64 KiB per 512 MiB block
    assert acc["memmap"] == {"altmap": {}, "buddy": {0: 8 * blocks}}
    # linear map (can_set_direct_map(): page granular): 8192 PTEs = one PTE table per 512 MiB;
    # the PMD table (4 TiB) is the boot one
    assert acc["page tables"]["direct map"] == {"PTE": blocks}
    # vmemmap: the new struct pages sit at VMEMMAP_START + (0x8000 - 0x4000) x 64 = +1 MiB ..
    # +1.5 MiB (+2 MiB for 1 GiB), inside the boot PTE table's 512 MiB: no new table
    assert acc["page tables"]["vmemmap"] == {}
    assert acc["slab objects"]["mem_section_usage"] == blocks
    check_invariants(m, facts)
    for blk in range(first, first + blocks):
        m.sysfs.write(state_file(blk), "online_movable")
    check_invariants(m, facts)
    z = m.zone(0, "Movable")
    pfn = base // PAGE
    assert (z.zone_start_pfn, z.spanned_pages, z.present_pages, z.managed_pages) == \
        (pfn, pages, pages, pages)
    assert m.totalram_pages == total0 + pages
    assert meminfo_kb(m, "MemTotal") == (total0 + pages) * 64
    for blk in range(first, first + blocks):
        m.sysfs.write(state_file(blk), "offline")
    assert (z.spanned_pages, z.present_pages, z.managed_pages) == (0, 0, 0)
    check_invariants(m, facts)
    m.acpi_memory_eject(d)
    check_invariants(m, facts)
    acc = m.accounting()
    assert acc["memmap"] == {"altmap": {}, "buddy": {}}
    assert acc["page tables"] == {"direct map": {}, "vmemmap": {}}
    assert acc["slab objects"]["mem_section_usage"] == 0
    for blk in range(first, first + blocks):
        assert blk not in m.memory_blocks and m.ms.subsection_map(blk) == 0
    assert m.totalram_pages == total0 and not m.warnings


def test_64k_rodata_off_maps_blocks(backend):
    # rodata=off: can_set_direct_map() false, so arch_add_memory may use a 512 MiB PMD block:
    # phys 2 GiB -> virt PAGE_OFFSET + 1 GiB, both 512 MiB aligned: no PTE table at all
    m = machine(backend, "memory_hotplug.memmap_on_memory=1 rodata=off")
    d = m.acpi_memory_hotplug(device_memory_base(m), "512M", node=0)
    assert m.accounting()["page tables"]["direct map"] == {}
    m.acpi_memory_eject(d)
    assert m.accounting()["page tables"] == {"direct map": {}, "vmemmap": {}} and not m.warnings


def test_64k_rejects_sub_block_ranges(backend):
    m = machine(backend)
    before = m.snapshot()
    for start, size in ((2 * GiB, 256 * MiB), (2 * GiB + 256 * MiB, 512 * MiB)):
        with pytest.raises(HotplugError) as e:
            m.add_memory(0, start, size)
        assert e.value.errno == errno.EINVAL
    assert m.snapshot() == before


# -- sub-section activation through mm/sparse.c -------------------------------------------------

def test_64k_subsection_activate_deactivate(backend):
    """sparse_add_section / section_deactivate of 2 MiB-aligned pieces of one section whose
    subsection bits lie in the second and third words of the bitmap (subsections 64..191)."""
    m = machine(backend)
    facts = BootFacts(m)
    nr = 6                                                   # [3 GiB, 3.5 GiB): nothing there
    sec = nr * PAGES_PER_SECTION
    lo = sec + 64 * PAGES_PER_SUBSECTION                     # subsections 64..127
    hi = sec + 128 * PAGES_PER_SUBSECTION                    # subsections 128..191
    n = 64 * PAGES_PER_SUBSECTION                            # 2048 pages = 128 MiB each
    mask_lo = ((1 << 128) - 1) & ~((1 << 64) - 1)
    mask_hi = ((1 << 192) - 1) & ~((1 << 128) - 1)
    assert sparse.subsection_mask(m, lo, n) == mask_lo
    assert sparse.subsection_mask(m, lo, 2 * n) == mask_lo | mask_hi
    assert sparse.sparse_add_section(m, 0, lo, n, None) == 0
    assert m.ms.subsection_map(nr) == mask_lo
    assert sparse.sparse_add_section(m, 0, hi, n, None) == 0
    assert m.ms.subsection_map(nr) == mask_lo | mask_hi
    # 2048 struct pages = 128 KiB = 2 vmemmap pages per piece; the pieces start 32-subsection
    # (1024 struct pages = one 64 KiB page) aligned, so they share no vmemmap page
    assert m.accounting()["memmap"]["buddy"] == {0: 4}
    assert m.accounting()["page tables"]["vmemmap"] == {}     # boot PTE table (512 MiB of VA)
    assert m.accounting()["slab objects"]["mem_section_usage"] == 1
    for pfn, valid in ((lo - 1, False), (lo, True), (hi + n - 1, True), (hi + n, False)):
        assert m.ms.pfn_section_valid(pfn) is valid
    # an overlapping piece: fill_subsection_map says -EEXIST, check_section_free refuses
    assert sparse.fill_subsection_map(m, hi + n - PAGES_PER_SUBSECTION, 2 * PAGES_PER_SUBSECTION) \
        == -errno.EEXIST
    assert sparse.check_section_free(m, hi + n - PAGES_PER_SUBSECTION,
                                     2 * PAGES_PER_SUBSECTION) == -errno.EEXIST
    assert m.ms.subsection_map(nr) == mask_lo | mask_hi
    sparse.section_deactivate(m, lo, n, None)
    assert m.ms.subsection_map(nr) == mask_hi
    assert m.accounting()["memmap"]["buddy"] == {0: 2}
    assert m.ms.section_mem_map(nr) & m.core.SECTION_MARKED_PRESENT
    # deactivating it again: "section already deactivated", nothing changes
    sparse.section_deactivate(m, lo, n, None)
    assert m.warnings and m.ms.subsection_map(nr) == mask_hi
    m.warnings.clear()
    sparse.section_deactivate(m, hi, n, None)
    assert m.ms.subsection_map(nr) == 0 and m.ms.section_mem_map(nr) == 0
    assert not m.ms.has_usage(nr) and not m.ms.has_memmap(nr)
    acc = m.accounting()
    assert acc["memmap"]["buddy"] == {} and acc["page tables"]["vmemmap"] == {}
    assert acc["slab objects"]["mem_section_usage"] == 0 and not m.warnings
    check_invariants(m, facts)    # (a partly populated section is beyond what it recounts)


# -- MemSections with a multi-word subsection_map, on both cores --------------------------------

# arm64 64K, PA_BITS 48: 2^(48-29) sections, SECTIONS_PER_ROOT = 64 KiB / 32 B = 2048, so 256
# roots; page->flags of the Debian layout: node at bit 60, zone at bit 58 (2 bits)
GEOM64K = {"nr_section_roots": 256, "sections_per_root": 2048, "pfn_section_shift": 13,
           "pageblock_order": 13, "nodes_pgshift": 60, "zones_pgshift": 58, "zones_width": 2,
           "pfn_subsection_shift": 5}
ZONE_MOVABLE = 3
S = 4                                                     # pfn 0x8000 = 2 GiB
BASE = S << 13


@pytest.fixture
def ms(core):
    m = core.MemSections(**GEOM64K)
    m.sparse_index_init(S)
    m.alloc_usage(S)
    return m


def bits(*idx):
    return sum(1 << i for i in idx)


def test_subsection_map_is_256_bits(ms):
    assert ms.subsections_per_section == 256 and ms.subsection_map_words == 4
    v = bits(0, 63, 64, 127, 128, 200, 255)
    ms.set_subsection_map(S, v)
    assert ms.subsection_map(S) == v
    for i in range(256):
        assert ms.pfn_section_valid(BASE + i * 32 + 31) is bool(v >> i & 1)
    ms.set_subsection_map(S, (1 << 256) - 1)
    assert ms.subsection_map(S) == (1 << 256) - 1


def test_subsection_map_rejects_what_does_not_fit(ms):
    ms.set_subsection_map(S, bits(200))
    for bad in (1 << 256, -1):
        with pytest.raises(HotplugError) as e:
            ms.set_subsection_map(S, bad)
        assert e.value.errno == errno.EINVAL
    assert ms.subsection_map(S) == bits(200)


def test_subsection_maps_of_neighbours_do_not_alias(ms):
    # sections S-1, S, S+1 of one root: each keeps its own high words
    for nr in (S - 1, S + 1):
        ms.alloc_usage(nr)
    ms.set_subsection_map(S - 1, bits(255))
    ms.set_subsection_map(S, bits(64, 65))
    ms.set_subsection_map(S + 1, bits(128))
    assert [ms.subsection_map(nr) for nr in (S - 1, S, S + 1)] == \
        [bits(255), bits(64, 65), bits(128)]
    ms.free_usage(S)                                        # clears every word of S only
    assert ms.subsection_map(S) == 0
    assert ms.subsection_map(S - 1) == bits(255) and ms.subsection_map(S + 1) == bits(128)
    ms.alloc_usage(S)
    assert ms.subsection_map(S) == 0


def test_online_page_and_zone_scans_see_high_subsections(core, ms):
    ms.alloc_memmap(S)
    ms.set_section_flags(S, core.SECTION_MARKED_PRESENT | core.SECTION_HAS_MEM_MAP
                         | core.SECTION_IS_ONLINE)
    ms.memmap_init_range(BASE, 8192, 0, ZONE_MOVABLE, core.MIGRATE_MOVABLE)
    ms.set_subsection_map(S, bits(200))                     # only pfns +6400..+6431
    assert not ms.pfn_to_online_page(BASE + 6399)
    assert ms.pfn_to_online_page(BASE + 6400) and ms.pfn_to_online_page(BASE + 6431)
    assert not ms.pfn_to_online_page(BASE + 6432)
    zoneid = ZONE_MOVABLE                                   # node 0
    # find_smallest_section_pfn steps up by 32 from BASE: BASE + 200 * 32
    assert core.find_smallest_section_pfn(ms, 0, zoneid, BASE, BASE + 8192) == BASE + 6400
    # find_biggest_section_pfn steps down by 32 from BASE + 8191: BASE + 8191 - 55 * 32
    assert core.find_biggest_section_pfn(ms, 0, zoneid, BASE, BASE + 8192) == BASE + 6431
    ms.set_subsection_map(S, bits(0))
    assert core.find_biggest_section_pfn(ms, 0, zoneid, BASE + 32, BASE + 8192) == 0


def test_backends_agree_on_multiword_maps():
    from conftest import compiled_core, python_core
    a, b = compiled_core().MemSections(**GEOM64K), python_core().MemSections(**GEOM64K)
    for m in (a, b):
        for nr in (S, S + 1, 2048 + 3):                     # two roots
            m.sparse_index_init(nr)
            m.alloc_usage(nr)
        m.set_subsection_map(S, bits(1, 70, 250))
        m.set_subsection_map(S + 1, bits(127, 128))
        m.set_subsection_map(2048 + 3, (1 << 256) - 1)
    sa, sb = a.state(), b.state()
    assert sa == sb
    assert sa["sections"][S][1] == bits(1, 70, 250)
    assert sa["sections"][2048 + 3][1] == (1 << 256) - 1


def test_single_word_maps_unchanged(core):
    # x86_64 geometry: 2^(27-21) = 64 subsections, one word, as before
    from test_memmap import GEOM
    m = core.MemSections(**GEOM)
    assert m.subsections_per_section == 64 and m.subsection_map_words == 1
    m.sparse_index_init(32)
    m.alloc_usage(32)
    m.set_subsection_map(32, (1 << 64) - 1)
    assert m.subsection_map(32) == (1 << 64) - 1
    with pytest.raises(HotplugError) as e:
        m.set_subsection_map(32, 1 << 64)
    assert e.value.errno == errno.EINVAL
    assert m.subsection_map(32) == (1 << 64) - 1
