"""x86_64 profile: every constant and derived figure against a hand computation.

Expected values are written out from the kernel's definitions (Linux 6.1 headers)
or computed by hand here, never read back from the model.
"""
import dataclasses
import errno

import pytest
from hypothesis import given, strategies as st

from hotmem.arch import get_arch, x86_64
from hotmem.arch.base import PageFlagsLayout
from hotmem.arch.x86_64 import (memory_block_size_message, probe_memory_block_size,
                                set_memory_block_size_order)
from hotmem.errors import HotplugError

KiB, MiB, GiB, TiB, PiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40, 1 << 50


@pytest.fixture(params=(4, 5), ids=("4-level", "5-level"))
def arch(request):
    return x86_64(request.param)


@pytest.fixture
def l4():
    return x86_64(4)


@pytest.fixture
def l5():
    return x86_64(5)


# --- base constants (arch/x86/include/asm/*.h, 6.1) ------------------------------------------

def test_page_and_struct_page(arch):
    assert arch.name == "x86_64"
    assert arch.page_shift == 12 and arch.PAGE_SIZE == 4096
    assert arch.struct_page_size == 64
    assert arch.bits_per_long == 64 and arch.sizeof_pte == 8


def test_paging_geometry_4_level(l4):
    assert l4.paging_levels == 4
    assert (l4.pmd_shift, l4.pud_shift, l4.p4d_shift, l4.pgdir_shift) == (21, 30, 39, 39)
    assert (l4.ptrs_per_pte, l4.ptrs_per_pmd, l4.ptrs_per_pud) == (512, 512, 512)
    assert l4.ptrs_per_p4d == 1 and l4.folded("p4d")     # folded into the PGD
    assert l4.ptrs_per_pgd == 512
    assert l4.PMD_SIZE == 2 * MiB and l4.PUD_SIZE == 1 * GiB and l4.PGDIR_SIZE == 512 * GiB
    assert l4.table_size("pmd") == 4096                  # 512 entries x 8 bytes = one page


def test_paging_geometry_5_level(l5):
    assert l5.paging_levels == 5
    assert (l5.pmd_shift, l5.pud_shift, l5.p4d_shift, l5.pgdir_shift) == (21, 30, 39, 48)
    assert l5.ptrs_per_p4d == 512 and not l5.folded("p4d")
    assert l5.P4D_SIZE == 512 * GiB and l5.PGDIR_SIZE == 256 * TiB


def test_sections(arch):
    assert arch.section_size_bits == 27
    assert arch.MIN_MEMORY_BLOCK_SIZE == 128 * MiB
    assert arch.PFN_SECTION_SHIFT == 27 - 12 == 15
    assert arch.PAGES_PER_SECTION == 128 * MiB // 4096 == 32768
    assert arch.subsection_shift == 21
    assert arch.SUBSECTION_SIZE == 2 * MiB
    assert arch.PAGES_PER_SUBSECTION == 2 * MiB // 4096 == 512
    assert arch.SUBSECTIONS_PER_SECTION == 128 // 2 == 64


def test_physmem_4_level(l4):
    assert l4.max_physmem_bits == 46
    assert l4.NR_MEM_SECTIONS == 2 ** (46 - 27) == 524288
    assert l4.physmem_end == 64 * TiB - 1


def test_physmem_5_level(l5):
    assert l5.max_physmem_bits == 52
    assert l5.NR_MEM_SECTIONS == 2 ** (52 - 27) == 33554432
    assert l5.physmem_end == 4 * PiB - 1


def test_buddy_and_pageblock(arch):
    assert arch.max_page_order == 10              # 6.1 MAX_ORDER 11 = orders 0..10
    assert arch.NR_PAGE_ORDERS == 11
    assert arch.MAX_ORDER_NR_PAGES == 1024        # 4 MiB
    # pageblock_order = min(HUGETLB_PAGE_ORDER = PMD_SHIFT - PAGE_SHIFT = 9, MAX_ORDER - 1 = 10)
    assert arch.pageblock_order == min(21 - 12, 11 - 1) == 9
    assert arch.pageblock_nr_pages == 512


def test_memory_block_sizes(arch):
    assert arch.max_memory_block_size == 2 * GiB
    assert arch.memory_block_sizes == (128 * MiB, 256 * MiB, 512 * MiB, 1 * GiB, 2 * GiB)


def test_virtual_layout(l4, l5):
    assert l4.vmemmap_start == 0xFFFFEA0000000000
    assert l4.page_offset == 0xFFFF888000000000
    assert l5.vmemmap_start == 0xFFD4000000000000
    assert l5.page_offset == 0xFF11000000000000
    # asm/page_64_types.h: the direct map starts at PGD slot 273 in both modes.
    assert l4.table_index("pgd", l4.page_offset) == (0xFFFF888000000000 >> 39) & 511 == 273
    assert l5.table_index("pgd", l5.page_offset) == (0xFF11000000000000 >> 48) & 511 == 273


def test_page_unused(arch):
    assert arch.page_unused == 0xFD


# --- mem_section table and usage map ----------------------------------------------------------

def test_mem_section_roots_4_level(l4):
    assert l4.sizeof_mem_section == 32                 # PAGE_EXTENSION=y (Debian)
    assert l4.SECTIONS_PER_ROOT == 4096 // 32 == 128
    assert l4.NR_SECTION_ROOTS == 2 ** 19 // 128 == 4096
    assert l4.SECTIONS_PER_ROOT * 128 * MiB == 16 * GiB  # one root page per 16 GiB
    assert l4.SECTION_NR_TO_ROOT(127) == 0 and l4.SECTION_NR_TO_ROOT(128) == 1
    assert l4.SECTION_ROOT_MASK == 127


def test_mem_section_roots_5_level(l5):
    assert l5.NR_SECTION_ROOTS == 2 ** 25 // 128 == 262144


def test_mem_section_without_page_extension():
    a = x86_64(4, page_extension=False)
    assert a.sizeof_mem_section == 16
    assert a.SECTIONS_PER_ROOT == 256
    assert a.NR_SECTION_ROOTS == 2 ** 19 // 256 == 2048


def test_usemap_size(arch):
    # 32768 pages / 512 per pageblock = 64 pageblocks x 4 bits = 256 bits = 4 longs.
    assert arch.SECTION_BLOCKFLAGS_BITS == 64 * 4 == 256
    assert arch.usemap_size() == 256 // 64 * 8 == 32


def test_mem_section_usage_size(arch):
    # subsection_map: 64 bits = one unsigned long (8 B); rcu_head = two pointers (16 B).
    assert arch.sizeof_mem_section_usage(rcu_head=False) == 8
    assert arch.sizeof_mem_section_usage(rcu_head=True) == 16 + 8
    assert arch.mem_section_usage_size(rcu_head=False) == 8 + 32 == 40     # 6.1.0
    assert arch.mem_section_usage_size(rcu_head=True) == 16 + 8 + 32 == 56  # 6.1.76+
    assert arch.mem_section_usage_size(rcu_head=True) <= 64                 # kmalloc-64


# --- memmap and page-table coverage -----------------------------------------------------------

@pytest.mark.parametrize("size, pages", [
    (128 * MiB, 512), (256 * MiB, 1024), (512 * MiB, 2048), (1 * GiB, 4096), (2 * GiB, 8192),
])
def test_memmap_per_block(arch, size, pages):
    # (size / 4 KiB) struct pages of 64 B, in 4 KiB pages: size / 262144.
    assert arch.memmap_size(size) == size // 4096 * 64
    assert arch.memmap_pages(size) == size // 262144 == pages
    assert 100 * arch.memmap_size(size) / size == 1.5625     # 1/64 of the block


def test_memmap_of_a_section_is_one_pmd(arch):
    assert arch.memmap_size(128 * MiB) == 2 * MiB == arch.PMD_SIZE


def test_memmap_on_memory_alignment_tests_pass_for_every_block_size(arch):
    # mhp_supports_memmap_on_memory (6.1): vmemmap_size PMD aligned, remainder pageblock aligned.
    for size in arch.memory_block_sizes:
        vmemmap_size = size // 4096 * 64
        assert vmemmap_size % (2 * MiB) == 0
        assert (size - vmemmap_size) % (512 * 4096) == 0
        assert arch.memmap_size(size) == vmemmap_size


def test_vmemmap_table_coverage(arch):
    # A PMD table maps 512 x 2 MiB = 1 GiB of vmemmap = 16 Mi struct pages = 64 GiB of RAM.
    assert arch.vmemmap_pmd_table_coverage == (512 * 2 * MiB) // 64 * 4096 == 64 * GiB
    # A PUD table maps 512 x 1 GiB = 512 GiB of vmemmap = 8 Gi struct pages = 32 TiB of RAM.
    assert arch.vmemmap_pud_table_coverage == (512 * GiB) // 64 * 4096 == 32 * TiB
    # A PTE table maps 2 MiB of vmemmap = one section's memmap = 128 MiB of RAM.
    assert arch.vmemmap_table_coverage("pte") == 128 * MiB


def test_direct_map_table_coverage(arch):
    assert arch.direct_map_pmd_table_coverage == 512 * 2 * MiB == 1 * GiB
    assert arch.direct_map_pud_table_coverage == 512 * 1 * GiB == 512 * GiB


def test_p4d_coverage_5_level(l5):
    assert l5.direct_map_table_coverage("p4d") == 512 * 512 * GiB == 256 * TiB
    # 256 TiB of vmemmap / 64 B x 4 KiB = 16 PiB of RAM: more than 2^52, so one P4D table.
    assert l5.vmemmap_table_coverage("p4d") == 16 * PiB > 2 ** 52


def test_vmemmap_and_direct_map_addresses(l4):
    pfn = 0x100000                                        # 4 GiB, where QEMU's first DIMM lands
    assert l4.pfn_to_page(pfn) == 0xFFFFEA0000000000 + 0x100000 * 64
    assert l4.page_to_pfn(l4.pfn_to_page(pfn)) == pfn
    assert l4.pfn_to_page(pfn) % (2 * MiB) == 0           # each section's memmap is PMD aligned
    assert l4.phys_to_virt(4 * GiB) == 0xFFFF888000000000 + 4 * GiB
    assert l4.virt_to_phys(l4.phys_to_virt(4 * GiB)) == 4 * GiB
    # vmemmap of 4 GiB: offset 64 MiB into the vmemmap -> PMD entry 32 of PMD table 0.
    assert l4.table_index("pmd", l4.pfn_to_page(pfn)) == (64 * MiB) // (2 * MiB) == 32
    assert l4.table_index("pud", l4.pfn_to_page(pfn)) == 0
    assert l4.table_index("pte", 0x5000) == 5


# --- pfn and section arithmetic ---------------------------------------------------------------

def test_pfn_helpers(l4):
    assert l4.PFN_UP(4097) == 2 and l4.PFN_DOWN(4097) == 1 and l4.PFN_UP(4096) == 1
    assert l4.PFN_PHYS(0x100000) == 4 * GiB and l4.PHYS_PFN(4 * GiB) == 0x100000


def test_section_helpers(l4):
    assert l4.pfn_to_section_nr(0x108000) == 0x108000 // 32768 == 33
    assert l4.section_nr_to_pfn(33) == 33 * 32768 == 0x108000
    assert l4.SECTION_ALIGN_UP(0x100001) == 0x108000
    assert l4.SECTION_ALIGN_UP(0x100000) == 0x100000
    assert l4.SECTION_ALIGN_DOWN(0x107FFF) == 0x100000
    assert l4.SUBSECTION_ALIGN_UP(513) == 1024 and l4.SUBSECTION_ALIGN_DOWN(1023) == 512


def test_pageblock_helpers(l4):
    assert l4.pageblock_align(513) == 1024 and l4.pageblock_align(512) == 512
    assert l4.pageblock_aligned(0x100200) and not l4.pageblock_aligned(0x100201)
    assert l4.pageblock_start_pfn(1023) == 512
    assert l4.pageblock_end_pfn(512) == 1024 and l4.pageblock_end_pfn(511) == 512


# --- page->flags (include/linux/page-flags-layout.h, Debian 6.1 amd64) -------------------------

def test_page_flags_layout_debian(arch):
    f = arch.page_flags
    # bounds.h of the Debian build: NR_PAGEFLAGS 25, MAX_NR_ZONES 5; config NODES_SHIFT 10.
    assert f.ZONES_SHIFT == 3                     # 5 zones need 3 bits
    assert f.NODES_WIDTH == 10 and not f.NODE_NOT_IN_PAGE_FLAGS
    assert f.NODES_PGSHIFT == 64 - 10 == 54
    assert f.ZONES_PGSHIFT == 54 - 3 == 51
    # LAST_CPUPID = 8 pid bits + NR_CPUS_BITS 13; 3 + 3 (LRU_GEN) + 10 + 21 = 37 <= 64 - 25.
    assert f.LAST_CPUPID_SHIFT == 21 and f.LAST_CPUPID_WIDTH == 21
    assert not f.LAST_CPUPID_NOT_IN_PAGE_FLAGS
    assert f.LAST_CPUPID_PGSHIFT == 51 - 21 == 30
    assert f.LRU_GEN_PGOFF == 30 - 3 == 27
    assert f.LRU_REFS_WIDTH == min(2, 39 - 37) == 2 and f.LRU_REFS_PGOFF == 25
    assert f.LRU_REFS_PGOFF == f.nr_pageflags          # every one of the 64 bits is used
    assert f.ZONEID_SHIFT == 13 and f.ZONEID_PGSHIFT == 51


def test_page_flags_accessors(arch):
    f = arch.page_flags
    flags = (1 << 12) | (1 << 10)                       # PG_reserved | PG_owner_priv_1
    flags = f.set_page_node(f.set_page_zone(flags, 3), 1023)
    assert flags == (1 << 12) | (1 << 10) | (3 << 51) | (1023 << 54)
    assert f.page_zonenum(flags) == 3 and f.page_to_nid(flags) == 1023
    assert f.page_zone_id(flags) == (1023 << 3) | 3
    assert f.page_zonenum(f.set_page_zone(flags, 4)) == 4
    assert f.page_to_nid(f.set_page_zone(flags, 4)) == 1023


def test_page_flags_without_numa_balancing_or_lru_gen():
    f = PageFlagsLayout(nr_pageflags=25, max_nr_zones=5, nodes_shift=10)
    assert f.LAST_CPUPID_WIDTH == 0 and not f.LAST_CPUPID_NOT_IN_PAGE_FLAGS
    assert (f.NODES_PGSHIFT, f.ZONES_PGSHIFT, f.LAST_CPUPID_PGSHIFT) == (54, 51, 0)


def test_page_flags_last_cpupid_that_does_not_fit():
    # 8 + 16 = 24 cpupid bits: 3 + 3 + 10 + 24 = 40 > 39 free bits -> kept outside the flags.
    f = PageFlagsLayout(nr_pageflags=25, max_nr_zones=5, nodes_shift=10, lru_gen_width=3,
                        lru_refs_shift=2, nr_cpus_bits=16, numa_balancing=True)
    assert f.LAST_CPUPID_WIDTH == 0 and f.LAST_CPUPID_NOT_IN_PAGE_FLAGS
    assert f.LRU_REFS_WIDTH == 2
    # 8 + 15 = 23 still fits exactly: 3 + 3 + 10 + 23 = 39.
    g = dataclasses.replace(f, nr_cpus_bits=15)
    assert g.LAST_CPUPID_WIDTH == 23 and g.LRU_REFS_WIDTH == 0


def test_page_flags_refuses_impossible_layouts():
    with pytest.raises(HotplugError) as e:
        PageFlagsLayout(nr_pageflags=25, max_nr_zones=5, nodes_shift=40)
    assert e.value.errno == errno.EINVAL and "40" in e.value.message
    with pytest.raises(HotplugError):
        PageFlagsLayout(nr_pageflags=25, max_nr_zones=9, nodes_shift=10)


# --- the profile as a value -------------------------------------------------------------------

def test_profile_is_frozen(l4):
    with pytest.raises(dataclasses.FrozenInstanceError):
        l4.page_shift = 14


def test_profile_refuses_inconsistent_constants(l4):
    with pytest.raises(HotplugError) as e:
        dataclasses.replace(l4, max_page_order=16)      # 12 + 16 > SECTION_SIZE_BITS 27
    assert e.value.errno == errno.EINVAL and "16" in e.value.message
    with pytest.raises(HotplugError):
        dataclasses.replace(l4, pud_shift=31)           # 21 + log2(512) != 31
    with pytest.raises(HotplugError):
        dataclasses.replace(l4, paging_levels=5)        # P4D folded: only 4 levels


def test_bad_level_name(l4):
    with pytest.raises(HotplugError) as e:
        l4.ptrs_per("pmg")
    assert e.value.errno == errno.EINVAL and "pmg" in e.value.message


# --- get_arch ---------------------------------------------------------------------------------

def test_get_arch():
    assert get_arch("x86_64") == x86_64(4)
    assert get_arch("x86_64", paging_levels=5).paging_levels == 5


@pytest.mark.parametrize("name", ["arm64", "powerpc", "x86", ""])
def test_get_arch_unknown(name):
    with pytest.raises(HotplugError) as e:
        get_arch(name)
    assert e.value.errno == errno.EINVAL and repr(name) in e.value.message


def test_get_arch_bad_options():
    with pytest.raises(HotplugError) as e:
        get_arch("x86_64", paging_levels=3)
    assert e.value.errno == errno.EINVAL and "3" in e.value.message
    with pytest.raises(HotplugError) as e:
        get_arch("x86_64", page_size=16384)
    assert e.value.errno == errno.EINVAL and "page_size" in e.value.message


# --- probe_memory_block_size (arch/x86/mm/init_64.c, 6.1) -------------------------------------

@pytest.mark.parametrize("boot_mem_end, hypervisor, expected", [
    (1 * GiB, True, 128 * MiB),                       # the QEMU 1 GiB guest [ORACLE: 128MB]
    (64 * GiB - 4096, False, 128 * MiB),              # below 64 GiB: always 128 MiB
    (64 * GiB - 4096, True, 128 * MiB),
    (64 * GiB, False, 2 * GiB),                       # bare metal, >= 64 GiB: MAX_BLOCK_SIZE
    (65 * GiB, False, 2 * GiB),
    (64 * GiB + 4096, False, 2 * GiB),
    (64 * GiB, True, 2 * GiB),                        # 64 GiB = 32 x 2 GiB
    (65 * GiB, True, 1 * GiB),                        # 65 GiB: odd number of GiB
    (64 * GiB + 512 * MiB, True, 512 * MiB),
    (64 * GiB + 256 * MiB, True, 256 * MiB),
    (64 * GiB + 128 * MiB, True, 128 * MiB),
    (64 * GiB + 4096, True, 128 * MiB),               # nothing divides: not below 128 MiB
    (96 * GiB, True, 2 * GiB),
    (1 * TiB + 1 * GiB, True, 1 * GiB),
])
def test_probe_memory_block_size(boot_mem_end, hypervisor, expected):
    assert probe_memory_block_size(boot_mem_end, hypervisor=hypervisor) == expected


@given(pfn=st.integers(min_value=(64 * GiB) >> 12, max_value=(64 * TiB) >> 12))
def test_probe_hypervisor_is_largest_dividing_size(pfn):
    boot_mem_end = pfn << 12
    dividing = [1 << s for s in range(27, 32) if boot_mem_end % (1 << s) == 0]
    expected = max(dividing) if dividing else 128 * MiB
    assert probe_memory_block_size(boot_mem_end, hypervisor=True) == expected


@pytest.mark.parametrize("order", [27, 30, 31, 33, 36])
def test_set_memory_block_size_order(order):
    assert set_memory_block_size_order(order) == 2 ** order
    # A set size wins over the probe, even below 64 GiB of boot memory.
    assert probe_memory_block_size(1 * GiB, hypervisor=False, set_order=order) == 2 ** order


@pytest.mark.parametrize("order", [0, 12, 26, 37, 64, 200, -1])
def test_set_memory_block_size_order_out_of_range(order):
    with pytest.raises(HotplugError) as e:
        probe_memory_block_size(128 * GiB, hypervisor=True, set_order=order)
    assert e.value.errno == errno.EINVAL and repr(order) in e.value.message


@pytest.mark.parametrize("boot_mem_end", [-4096, 64 * GiB + 1, 1.5 * GiB])
def test_probe_bad_boot_mem_end(boot_mem_end):
    with pytest.raises(HotplugError) as e:
        probe_memory_block_size(boot_mem_end, hypervisor=True)
    assert e.value.errno == errno.EINVAL and repr(boot_mem_end) in e.value.message


def test_memory_block_size_message():
    assert memory_block_size_message(128 * MiB) == "x86/mm: Memory block size: 128MB"
    assert memory_block_size_message(2 * GiB) == "x86/mm: Memory block size: 2048MB"
