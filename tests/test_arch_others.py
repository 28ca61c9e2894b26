"""arm64, powerpc64 and s390x profiles, and every arch's memmap_on_memory rules by version.

Expected values are written out from the kernel's definitions (the headers and Kconfig named
in each test, Linux 6.1 / 6.6 / 6.8 / 6.9) or computed by hand here, never read back from the
model.  page->flags figures come from the include/generated/bounds.h of Debian's 6.1.176
linux-headers packages for each architecture.
"""
import dataclasses
import errno

import pytest

from hotmem.arch import (arch_supports_memmap_on_memory, get_arch, kconfig_mhp_memmap_on_memory,
                         memmap_on_memory_supported)
from hotmem.arch.arm64 import (ARCH_FORCE_MAX_ORDER as ARM64_ARCH_FORCE_MAX_ORDER,
                               ARM64_MEMSTART_ALIGN, arch_get_mappable_range as arm64_mappable,
                               memory_block_size_bytes as arm64_block_size)
from hotmem.arch.base import memory_block_memmap_on_memory_pages, mhp_memmap_alignment_ok
from hotmem.arch.powerpc64 import (ARCH_FORCE_MAX_ORDER as PPC_ARCH_FORCE_MAX_ORDER,
                                   COHERENT_DEVICE_MEMORY, probe_memory_block_size,
                                   pseries_memory_block_size, update_memory_block_size)
from hotmem.arch.powerpc64 import memory_block_size_bytes as ppc_block_size
from hotmem.arch.s390x import (arch_get_mappable_range as s390_mappable,
                               memory_block_size_bytes as s390_block_size,
                               setup_kernel_memory_layout)
from hotmem.errors import HotplugError
from hotmem.kernel import kernel_version

KiB, MiB, GiB, TiB, PiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40, 1 << 50
U64 = 1 << 64


def _einval(fn, *args, **kw):
    with pytest.raises(HotplugError) as e:
        fn(*args, **kw)
    assert e.value.errno == errno.EINVAL
    return e.value.message


# ============================================ arm64 ===========================================

@pytest.fixture(scope="module")
def a4():
    return get_arch("arm64", page_size="4K")


@pytest.fixture(scope="module")
def a16():
    return get_arch("arm64", page_size="16K")


@pytest.fixture(scope="module")
def a64():
    return get_arch("arm64", page_size="64K")


def test_arm64_pages_and_sections(a4, a16, a64):
    # asm/sparsemem.h: SECTION_SIZE_BITS 29 with 64K pages, else 27.
    for a, shift, bits in ((a4, 12, 27), (a16, 14, 27), (a64, 16, 29)):
        assert a.name == "arm64" and a.page_shift == shift and a.struct_page_size == 64
        assert a.section_size_bits == bits and a.max_physmem_bits == 48   # ARM64_PA_BITS_48
    assert a4.PAGES_PER_SECTION == 128 * MiB // (4 * KiB) == 32768
    assert a16.PAGES_PER_SECTION == 128 * MiB // (16 * KiB) == 8192
    assert a64.PAGES_PER_SECTION == 512 * MiB // (64 * KiB) == 8192
    # No arm64 memory_block_size_bytes(): a block is one section.
    assert arm64_block_size(a4) == arm64_block_size(a16) == 128 * MiB
    assert arm64_block_size(a64) == 512 * MiB
    assert a64.memory_block_sizes == (512 * MiB,)
    assert all(a.arch_keep_memblock for a in (a4, a16, a64))          # select ARCH_KEEP_MEMBLOCK


def _level_shift(page_shift, n):
    # pgtable-hwdef.h: ARM64_HW_PGTABLE_LEVEL_SHIFT(n) = (PAGE_SHIFT - 3) * (4 - n) + 3
    return (page_shift - 3) * (4 - n) + 3


def test_arm64_4k_geometry(a4):
    # VA_BITS 48, 4K -> PGTABLE_LEVELS 4: PMD level 2, PUD level 1, PGD level 0.
    assert a4.paging_levels == 4
    assert (a4.pmd_shift, a4.pud_shift, a4.pgdir_shift) == (
        _level_shift(12, 2), _level_shift(12, 1), _level_shift(12, 0)) == (21, 30, 39)
    assert a4.p4d_shift == 39 and a4.folded("p4d")
    assert (a4.ptrs_per_pte, a4.ptrs_per_pmd, a4.ptrs_per_pud) == (512, 512, 512)
    assert a4.ptrs_per_pgd == 1 << (48 - 39) == 512
    assert a4.PMD_SIZE == 2 * MiB and a4.PUD_SIZE == 1 * GiB


def test_arm64_16k_geometry(a16):
    # 16K, VA_BITS 48 -> 4 levels of 2048 entries; the PGD has only 2 entries (47 -> 48 bits).
    assert a16.paging_levels == 4
    assert (a16.pmd_shift, a16.pud_shift, a16.pgdir_shift) == (
        _level_shift(14, 2), _level_shift(14, 1), _level_shift(14, 0)) == (25, 36, 47)
    assert (a16.ptrs_per_pte, a16.ptrs_per_pmd, a16.ptrs_per_pud) == (2048, 2048, 2048)
    assert a16.ptrs_per_pgd == 1 << (48 - 47) == 2
    assert a16.PMD_SIZE == 32 * MiB and a16.PUD_SIZE == 64 * GiB
    assert a16.table_size("pte") == 2048 * 8 == 16 * KiB                    # one page


def test_arm64_64k_geometry(a64):
    # 64K, VA_BITS 48 -> PGTABLE_LEVELS 3: the PUD is folded into the PGD (level 1).
    assert a64.paging_levels == 3
    assert a64.pmd_shift == _level_shift(16, 2) == 29
    assert a64.pgdir_shift == _level_shift(16, 4 - 3) == 42
    assert a64.folded("pud") and a64.pud_shift == a64.p4d_shift == 42
    assert (a64.ptrs_per_pte, a64.ptrs_per_pmd) == (8192, 8192)
    assert a64.ptrs_per_pgd == 1 << (48 - 42) == 64
    assert a64.PMD_SIZE == 512 * MiB == a64.MIN_MEMORY_BLOCK_SIZE
    assert a64.table_size("pmd") == 8192 * 8 == 64 * KiB


def test_arm64_max_order_and_pageblock(a4, a16, a64):
    # Kconfig ARCH_FORCE_MAX_ORDER: 6.1 14/12/11 (a count of orders), 6.4+ 13/11/10 (largest).
    for a, mo61, mo68, pb in ((a4, 11, 10, 9), (a16, 12, 11, 11), (a64, 14, 13, 13)):
        assert ARM64_ARCH_FORCE_MAX_ORDER(a, "6.1") == mo61 == a.NR_PAGE_ORDERS
        assert ARM64_ARCH_FORCE_MAX_ORDER(a, "6.8") == mo68 == a.max_page_order
        assert ARM64_ARCH_FORCE_MAX_ORDER(a, "6.6") == mo68
        # pageblock_order = min(HUGETLB_PAGE_ORDER = PMD_SHIFT - PAGE_SHIFT, MAX_ORDER - 1)
        assert a.pageblock_order == min(a.pmd_shift - a.page_shift, mo61 - 1) == pb
    assert a4.pageblock_nr_pages == 512
    assert a16.pageblock_nr_pages == 2048 and a16.MAX_ORDER_NR_PAGES == 2048   # 32 MiB
    assert a64.pageblock_nr_pages == 8192 == a64.PAGES_PER_SECTION             # whole section


def test_arm64_virtual_layout(a4, a16, a64):
    # asm/memory.h: PAGE_OFFSET = -(1 << 48); VMEMMAP_START = -(1 << (48 - (PAGE_SHIFT - 6))).
    assert a4.page_offset == a16.page_offset == a64.page_offset == 0xFFFF000000000000
    assert a4.vmemmap_start == U64 - (1 << 42) == 0xFFFFFC0000000000
    assert a16.vmemmap_start == U64 - (1 << 40) == 0xFFFFFF0000000000
    assert a64.vmemmap_start == U64 - (1 << 38) == 0xFFFFFFC000000000
    # VMEMMAP_SIZE = (PAGE_END - PAGE_OFFSET) >> VMEMMAP_SHIFT = 2^47 >> 6 for 4K: ends at -2^41.
    assert a4.vmemmap_start + (2 ** 47 >> 6) == U64 - (1 << 41)


def test_arm64_memstart_and_vmemmap_base(a4, a64):
    # ARM64_MEMSTART_ALIGN: PUD_SIZE (4K), CONT_PMD_SIZE = 32 x 32 MiB (16K), PMD_SIZE (64K).
    assert ARM64_MEMSTART_ALIGN("4K") == 1 * GiB
    assert ARM64_MEMSTART_ALIGN("16K") == 32 * 32 * MiB == 1 * GiB
    assert ARM64_MEMSTART_ALIGN("64K") == 512 * MiB
    # QEMU virt: DRAM at 1 GiB -> memstart_addr = 1 GiB.
    assert a4.phys_offset == a64.phys_offset == 1 * GiB
    # vmemmap = VMEMMAP_START - (memstart_addr >> PAGE_SHIFT): DRAM's first page at VMEMMAP_START.
    assert a4.pfn_to_page(1 * GiB >> 12) == 0xFFFFFC0000000000
    assert a4.pfn_to_page((1 * GiB + 128 * MiB) >> 12) == 0xFFFFFC0000000000 + 32768 * 64
    assert a4.page_to_pfn(0xFFFFFC0000000000 + 64) == (1 * GiB >> 12) + 1
    assert a64.pfn_to_page((1 * GiB >> 16) + 8192) == 0xFFFFFFC000000000 + 8192 * 64
    # __va(x) = (x - PHYS_OFFSET) | PAGE_OFFSET
    assert a4.phys_to_virt(1 * GiB) == 0xFFFF000000000000
    assert a4.phys_to_virt(5 * GiB) == 0xFFFF000000000000 + 4 * GiB
    assert a4.virt_to_phys(0xFFFF000000000000 + 4 * GiB) == 5 * GiB
    # 1.5 GiB of DRAM base: rounded to 1 GiB with 4K/16K pages, kept with 64K (512 MiB).
    assert get_arch("arm64", page_size="4K", dram_start=0x60000000).phys_offset == 1 * GiB
    assert get_arch("arm64", page_size="16K", dram_start=0x60000000).phys_offset == 1 * GiB
    assert get_arch("arm64", page_size="64K", dram_start=0x60000000).phys_offset == 0x60000000


def test_arm64_mappable_range(a4):
    # [__pa(PAGE_OFFSET), __pa(PAGE_END - 1)]: the 2^47-byte linear map from memstart_addr.
    assert arm64_mappable(a4) == (1 * GiB, 1 * GiB + 2 ** 47 - 1)
    assert a4.physmem_end == 2 ** 48 - 1


def test_arm64_mem_section_table(a4, a16, a64):
    for a in (a4, a16, a64):
        assert a.sizeof_mem_section == 32                               # PAGE_EXTENSION=y
    # SECTIONS_PER_ROOT = PAGE_SIZE / 32; NR_MEM_SECTIONS = 2^(48 - SECTION_SIZE_BITS)
    assert (a4.SECTIONS_PER_ROOT, a16.SECTIONS_PER_ROOT, a64.SECTIONS_PER_ROOT) == (128, 512, 2048)
    assert a4.NR_MEM_SECTIONS == a16.NR_MEM_SECTIONS == 2 ** 21
    assert a64.NR_MEM_SECTIONS == 2 ** 19
    assert (a4.NR_SECTION_ROOTS, a16.NR_SECTION_ROOTS, a64.NR_SECTION_ROOTS) == (
        2 ** 21 // 128, 2 ** 21 // 512, 2 ** 19 // 2048) == (16384, 4096, 256)


def test_arm64_usage_maps(a4, a16, a64):
    # usemap: (pages per section / pageblock) x 4 bits, in unsigned longs.
    assert a4.usemap_size() == (32768 // 512 * 4) // 64 * 8 == 32
    assert a16.SECTION_BLOCKFLAGS_BITS == 8192 // 2048 * 4 == 16 and a16.usemap_size() == 8
    assert a64.SECTION_BLOCKFLAGS_BITS == 8192 // 8192 * 4 == 4 and a64.usemap_size() == 8
    # subsection_map: 2^(SECTION_SIZE_BITS - 21) bits; 256 bits = 4 longs with 64K pages.
    assert a64.SUBSECTIONS_PER_SECTION == 2 ** (29 - 21) == 256
    assert a64.PAGES_PER_SUBSECTION == 2 * MiB // (64 * KiB) == 32
    assert a64.mem_section_usage_size(rcu_head=True) == 16 + 32 + 8 == 56
    assert a16.mem_section_usage_size(rcu_head=True) == 16 + 8 + 8 == 32


def test_arm64_4k_memmap_is_x86_64s(a4):
    x86 = get_arch("x86_64")
    for size in (128 * MiB, 256 * MiB, 1 * GiB):
        assert a4.memmap_pages(size) == x86.memmap_pages(size) == size // 262144
    assert a4.memmap_size(128 * MiB) == 2 * MiB == a4.PMD_SIZE                # 512 pages
    for k in ("v2", "5.13", "6.1", "6.6", "6.8", "6.9"):
        assert memmap_on_memory_supported(a4, 128 * MiB, k) == \
            memmap_on_memory_supported(x86, 128 * MiB, k) is True


def test_arm64_16k_block(a16):
    # 128 MiB / 16 KiB = 8192 pages x 64 B = 512 KiB = 32 pages; PMD is 32 MiB.
    assert a16.PFN_DOWN(128 * MiB) == 8192
    assert a16.memmap_size(128 * MiB) == 512 * KiB and a16.memmap_pages(128 * MiB) == 32
    assert 512 * KiB % (32 * MiB) != 0                                   # not PMD-aligned
    assert not mhp_memmap_alignment_ok(a16, 512 * KiB)
    # 6.6 force: 32 pages -> one pageblock of 2048 (a quarter of the block), still no PMD.
    assert memory_block_memmap_on_memory_pages(a16, 128 * MiB, force=True) == 2048
    for k in ("5.13", "6.1", "6.6", "6.8"):
        assert not memmap_on_memory_supported(a16, 128 * MiB, k)
    assert not memmap_on_memory_supported(a16, 128 * MiB, "6.8", force=True)


def test_arm64_64k_block(a64):
    # 512 MiB / 64 KiB = 8192 pages x 64 B = 512 KiB = 8 pages; a pageblock is the whole block.
    assert a64.PFN_DOWN(512 * MiB) == 8192
    assert a64.memmap_size(512 * MiB) == 512 * KiB and a64.memmap_pages(512 * MiB) == 8
    assert not memmap_on_memory_supported(a64, 512 * MiB, "6.6")          # 8 % 8192 != 0
    # force: pageblock_align(8) = 8192 = the whole block -> "no effective hotplugged memory".
    assert memory_block_memmap_on_memory_pages(a64, 512 * MiB, force=True) == 8192
    assert not memmap_on_memory_supported(a64, 512 * MiB, "6.6", force=True)


def test_arm64_page_flags_debian(a4, a16, a64):
    f = a4.page_flags
    assert a16.page_flags == f == a64.page_flags                # same config, page size aside
    # bounds.h (arm64): NR_PAGEFLAGS 24, MAX_NR_ZONES 4, NR_CPUS_BITS 8; NODES_SHIFT 4.
    assert f.ZONES_SHIFT == 2 and f.NODES_WIDTH == 4
    assert f.NODES_PGSHIFT == 64 - 4 == 60 and f.ZONES_PGSHIFT == 60 - 2 == 58
    assert f.LAST_CPUPID_WIDTH == 8 + 8 == 16 and f.LAST_CPUPID_PGSHIFT == 58 - 16 == 42
    assert f.LRU_GEN_PGOFF == 42 - 3 == 39
    # 2 + 3 + 4 + 16 = 25 of 40 free bits used: both refs bits fit.
    assert f.LRU_REFS_WIDTH == 2 and f.LRU_REFS_PGOFF == 37
    assert f.ZONEID_SHIFT == 6 and f.ZONEID_PGSHIFT == 58
    flags = f.set_page_node(f.set_page_zone(0, 3), 15)
    assert flags == (3 << 58) | (15 << 60) and f.page_zone_id(flags) == (15 << 2) | 3


# ========================================== powerpc64 ==========================================

@pytest.fixture(scope="module")
def radix():
    return get_arch("powerpc64", mmu="radix", page_size="64K")


@pytest.fixture(scope="module")
def hash_():
    return get_arch("powerpc64", mmu="hash")


def test_ppc_sections(radix, hash_):
    for p in (radix, hash_):
        assert p.name == "powerpc64" and p.page_shift == 16 and p.struct_page_size == 64
        assert p.section_size_bits == 24 and p.MIN_MEMORY_BLOCK_SIZE == 16 * MiB
        assert p.PAGES_PER_SECTION == 16 * MiB // (64 * KiB) == 256
        assert p.SUBSECTIONS_PER_SECTION == 16 // 2 == 8 and p.PAGES_PER_SUBSECTION == 32
        assert p.max_physmem_bits == 51 and p.physmem_end == 2 ** 51 - 1
        assert p.NR_MEM_SECTIONS == 2 ** (51 - 24)
        assert p.SECTIONS_PER_ROOT == 64 * KiB // 32 == 2048
        assert p.NR_SECTION_ROOTS == 2 ** 27 // 2048 == 65536
        assert p.arch_keep_memblock
    assert radix.mmu == "radix" and hash_.mmu == "hash"


def test_ppc_radix_geometry(radix):
    # radix-64k.h: index sizes 5/9/9/13 (pte/pmd/pud/pgd).
    assert radix.paging_levels == 4 and radix.folded("p4d")
    assert (radix.ptrs_per_pte, radix.ptrs_per_pmd, radix.ptrs_per_pud, radix.ptrs_per_pgd) == (
        32, 512, 512, 8192)
    assert (radix.pmd_shift, radix.pud_shift, radix.pgdir_shift) == (16 + 5, 21 + 9, 30 + 9)
    assert radix.PMD_SIZE == 2 * MiB and radix.PUD_SIZE == 1 * GiB
    # RADIX_*_TABLE_SIZE = 8 << index: 256 B (a PTE fragment), 4 KiB, 4 KiB, 64 KiB.
    assert [radix.table_size(lv) for lv in ("pte", "pmd", "pud", "pgd")] == [
        256, 4 * KiB, 4 * KiB, 64 * KiB]
    assert radix.table_span("pgd") == 8192 * 512 * GiB == 4 * PiB          # 52-bit EA


def test_ppc_hash_geometry(hash_):
    # hash-64k.h: index sizes 8/10/10/8.
    assert hash_.paging_levels == 4
    assert (hash_.ptrs_per_pte, hash_.ptrs_per_pmd, hash_.ptrs_per_pud, hash_.ptrs_per_pgd) == (
        256, 1024, 1024, 256)
    assert (hash_.pmd_shift, hash_.pud_shift, hash_.pgdir_shift) == (16 + 8, 24 + 10, 34 + 10)
    assert hash_.PMD_SIZE == 16 * MiB and hash_.PUD_SIZE == 16 * GiB
    # PTE_FRAG_SIZE = 2 x 2 KiB (hash slots); PMD/PUD tables doubled with THP/HUGETLB_PAGE.
    assert hash_.table_size("pte") == 2 * (8 << 8) == 4 * KiB
    assert hash_.table_size("pmd") == (8 << 10) + (8 << 10) == 16 * KiB
    assert hash_.table_size("pud") == 16 * KiB
    assert hash_.table_size("pgd") == 8 << 8 == 2 * KiB
    assert hash_.table_span("pgd") == 256 * 16 * TiB == 4 * PiB


def test_ppc_max_order_and_pageblock(radix, hash_):
    # Kconfig (PPC64 && PPC_64K_PAGES): 6.1 "9" -> orders 0..8; 6.6 "8" = the largest order.
    assert PPC_ARCH_FORCE_MAX_ORDER("6.1") == 9 == radix.NR_PAGE_ORDERS
    assert PPC_ARCH_FORCE_MAX_ORDER("6.6") == PPC_ARCH_FORCE_MAX_ORDER("6.8") == 8
    assert radix.max_page_order == hash_.max_page_order == 8
    assert radix.MAX_ORDER_NR_PAGES == 256 == radix.PAGES_PER_SECTION      # 16 MiB
    # HUGETLB_PAGE_SIZE_VARIABLE: radix huge page 2 MiB -> order 21 - 16 = 5;
    # hash 16 MiB -> order 24 - 16 = 8 = MAX_ORDER - 1.
    assert radix.pageblock_order == 5 and radix.pageblock_nr_pages == 32
    assert hash_.pageblock_order == 8 and hash_.pageblock_nr_pages == 256
    # usemap: radix 256 / 32 = 8 pageblocks x 4 bits = 32 bits; hash 4 bits: one long each.
    assert radix.SECTION_BLOCKFLAGS_BITS == 32 and hash_.SECTION_BLOCKFLAGS_BITS == 4
    assert radix.usemap_size() == hash_.usemap_size() == 8
    assert radix.mem_section_usage_size(rcu_head=True) == 16 + 8 + 8


def test_ppc_virtual_layout(radix, hash_):
    # KERN_VIRT_START 0xc008000000000000 + vmalloc (2^49) + I/O (2^49) = vmemmap.
    for p in (radix, hash_):
        assert p.vmemmap_start == 0xC008000000000000 + 2 * 2 ** 49 == 0xC00C000000000000
        assert p.page_offset == 0xC000000000000000
    assert radix.phys_to_virt(4 * GiB) == 0xC000000100000000
    # pfn of 4 GiB with 64K pages: 65536; its struct page 4 MiB into the vmemmap.
    assert radix.pfn_to_page(4 * GiB >> 16) == 0xC00C000000000000 + 65536 * 64
    assert radix.PHYS_PFN_OFFSET == 0


def test_ppc_radix_256m_block(radix):
    # 256 MiB / 64 KiB = 4096 pages x 64 B = 256 KiB = 4 pages; pageblock 32 pages.
    assert radix.PFN_DOWN(256 * MiB) == 4096
    assert radix.memmap_size(256 * MiB) == 256 * KiB and radix.memmap_pages(256 * MiB) == 4
    assert memory_block_memmap_on_memory_pages(radix, 256 * MiB) == 4
    forced = memory_block_memmap_on_memory_pages(radix, 256 * MiB, force=True)
    assert forced == 32 and forced - 4 == 28                               # pages wasted
    assert round(100 * 28 / 4096, 2) == 0.68                               # % of the block
    assert not memmap_on_memory_supported(radix, 256 * MiB, "6.6")         # 4 % 32 != 0
    assert memmap_on_memory_supported(radix, 256 * MiB, "6.6", force=True)
    assert memmap_on_memory_supported(radix, 256 * MiB, "6.8", force=True)
    # 1 GiB block: 16 pages of memmap, forced to 32 (16 wasted).
    assert radix.memmap_pages(1 * GiB) == 16
    assert memory_block_memmap_on_memory_pages(radix, 1 * GiB, force=True) == 32


def test_ppc_hash_never(hash_):
    assert not arch_supports_memmap_on_memory(hash_, 256 * KiB, "6.6")      # !radix_enabled()
    assert kconfig_mhp_memmap_on_memory(hash_, "6.6")                      # built with radix
    assert not memmap_on_memory_supported(hash_, 256 * MiB, "6.8", force=True)
    assert memmap_on_memory_supported(hash_, 256 * MiB, "v2")


def test_ppc_radix_hook(radix):
    # 6.6+ override: true with 64K pages whatever the memmap's alignment.
    for size in (256 * KiB, 4 * KiB, 2 * MiB):
        assert arch_supports_memmap_on_memory(radix, size, "6.6")
    # 6.1 has no hook: the generic PMD test fails (256 KiB < 2 MiB); and no Kconfig gate.
    assert not arch_supports_memmap_on_memory(radix, 256 * KiB, "6.1")
    assert not kconfig_mhp_memmap_on_memory(radix, "6.1")
    assert not kconfig_mhp_memmap_on_memory(radix, "6.5")
    assert not memmap_on_memory_supported(radix, 256 * MiB, "6.1")


@pytest.mark.parametrize("memory, expected", [
    ((), 1 * GiB),                                      # nothing to scan: stays at 1 GiB
    (((0, 2 * GiB),), 1 * GiB),                         # bit 30 of 2 GiB clear -> stop
    (((0, 1 * GiB),), 256 * MiB),                       # bit 30 set -> /4; bit 28 clear
    (((0, 128 * MiB),), 1 * GiB),                       # a bit test: 128 MiB leaves 1 GiB
    (((0, 3 * GiB),), 256 * MiB),                       # 3 GiB: bit 30 set, bit 28 clear
    (((0, 1 * GiB + 256 * MiB),), 64 * MiB),            # bits 30 and 28 set, bit 26 clear
    (((0, 1 * GiB + 256 * MiB + 64 * MiB),), 16 * MiB),  # never below 16 MiB
    (((0, 2 * GiB), (2 * GiB, 1 * GiB)), 256 * MiB),    # each node may lower it
    ((COHERENT_DEVICE_MEMORY,), 256 * MiB),             # GPU memory caps at 256 MiB
    (((0, 1 * GiB), COHERENT_DEVICE_MEMORY), 256 * MiB),
    ((COHERENT_DEVICE_MEMORY, (0, 1 * GiB + 256 * MiB)), 64 * MiB),
    (((0, 0),), 1 * GiB),                               # a zero-size reg is skipped
])
def test_ppc_probe_without_lmb_size(memory, expected):
    assert probe_memory_block_size(None, memory) == expected


def test_ppc_update_memory_block_size():
    assert update_memory_block_size(1 * GiB, 1 * GiB) == 256 * MiB
    assert update_memory_block_size(256 * MiB, 512 * MiB) == 256 * MiB
    assert update_memory_block_size(16 * MiB, 16 * MiB) == 16 * MiB


def test_ppc_probe_lmb_size():
    assert probe_memory_block_size() == 256 * MiB                     # the default parameter
    assert probe_memory_block_size(1 * GiB, [(0, 1 * GiB)]) == 1 * GiB  # the node is final
    assert probe_memory_block_size(0) == 16 * MiB                     # node without the property
    assert "0x18000000" in _einval(probe_memory_block_size, 384 * MiB)   # memory_dev_init panics
    assert "0x800000" in _einval(probe_memory_block_size, 8 * MiB)       # below 16 MiB
    assert "384" in _einval(probe_memory_block_size, None, [(0, "384M")])


def test_ppc_6_1_block_sizes(radix, hash_):
    assert pseries_memory_block_size(512 * MiB) == 512 * MiB
    # No dynamic-reconfiguration node: the node at memory@0's end gives the size.
    assert pseries_memory_block_size(None, [(0, 512 * MiB), (512 * MiB, 256 * MiB)]) == 256 * MiB
    assert pseries_memory_block_size(None, [(0, 512 * MiB)]) == 16 * MiB
    assert pseries_memory_block_size(None) == 16 * MiB
    assert ppc_block_size(radix, "6.1") == 256 * MiB                  # pseries, lmb 256 MiB
    assert ppc_block_size(radix, "6.1", platform="powernv") == 1 * GiB   # OPAL, radix
    assert ppc_block_size(hash_, "6.1", platform="powernv") == 256 * MiB
    # 6.6: the device-tree probe on powernv too (no lmb-size there: memory nodes).
    assert ppc_block_size(radix, "6.6", platform="powernv", lmb_size=None,
                          memory=[(0, 1 * GiB)]) == 256 * MiB
    assert "'opal'" in _einval(ppc_block_size, radix, "6.6", platform="opal")


def test_ppc_page_flags_debian(radix):
    f = radix.page_flags
    # bounds.h (ppc64el): NR_PAGEFLAGS 24, MAX_NR_ZONES 2, NR_CPUS_BITS 11; NODES_SHIFT 8.
    assert f.ZONES_SHIFT == 1 and f.NODES_PGSHIFT == 56 and f.ZONES_PGSHIFT == 55
    assert f.LAST_CPUPID_WIDTH == 8 + 11 == 19 and f.LAST_CPUPID_PGSHIFT == 55 - 19 == 36
    assert f.LRU_GEN_PGOFF == 33 and f.LRU_REFS_WIDTH == 2 and f.LRU_REFS_PGOFF == 31


# ============================================ s390x ===========================================

@pytest.fixture(scope="module")
def s390():
    return get_arch("s390x")


def test_s390_constants(s390):
    assert s390.name == "s390x" and s390.page_shift == 12 and s390.struct_page_size == 64
    assert s390.section_size_bits == 28 and s390.MIN_MEMORY_BLOCK_SIZE == 256 * MiB
    assert s390.PAGES_PER_SECTION == 65536
    assert s390.max_physmem_bits == 46 and s390.NR_MEM_SECTIONS == 2 ** 18
    assert s390.SECTIONS_PER_ROOT == 128 and s390.NR_SECTION_ROOTS == 2048
    # asm/pgtable.h: segment 1 MiB, region-3 2 GiB; 256-entry page tables, 2048-entry CRSTs.
    assert s390.PMD_SIZE == 1 * MiB and s390.PUD_SIZE == 2 * GiB
    assert s390.ptrs_per_pte == 256 and s390.ptrs_per_pmd == 2048
    assert s390.table_size("pte") == 2 * KiB and s390.table_size("pmd") == 16 * KiB
    # 6.1 MAX_ORDER 11 (no override); pageblock = HPAGE_SHIFT 20 - 12 = 8 (1 MiB).
    assert s390.max_page_order == 10 and s390.pageblock_order == 8
    assert s390.pageblock_nr_pages << 12 == 1 * MiB
    # usemap: 65536 / 256 = 256 pageblocks x 4 = 1024 bits = 16 longs; subsections 128 bits.
    assert s390.usemap_size() == 1024 // 8 == 128
    assert s390.mem_section_usage_size(rcu_head=True) == 16 + 16 + 128
    assert s390.page_offset == 0 and not s390.arch_keep_memblock


def test_s390_layout_1g():
    # setup_vmalloc_size: max(1 GiB / 8, 512 GiB - 2 GiB) = 510 GiB; everything fits under
    # 4 TiB -> vmax 4 TiB, top table region-3 (2 GiB entries), 3 kernel levels.
    lay = setup_kernel_memory_layout(1 * GiB)
    assert lay.vmax == 4 * TiB and lay.rte_size == 2 * GiB and lay.paging_levels == 3
    # 4 TiB - one page, less 256 lowcores of 8 KiB, rounded to 8 KiB then 1 MiB: 4 TiB - 3 MiB.
    assert lay.modules_end == 4 * TiB - 3 * MiB
    assert lay.modules_vaddr == lay.vmalloc_end == 4 * TiB - 3 * MiB - 2 * GiB
    assert lay.vmalloc_end - 510 * GiB == 3584 * GiB - 3 * MiB
    # Below vmalloc: 1/65 of it is struct pages (4096 + 64 per page), about 55.1 GiB, so the
    # vmemmap starts at 3584 GiB - 3 MiB - 55.1 GiB rounded down to 2 GiB = 3528 GiB.
    assert 55 * GiB < (3584 * GiB - 3 * MiB) // 65 < 56 * GiB
    assert lay.vmemmap_start == 3528 * GiB == 0x37200000000
    assert lay.vmemmap_size == 262144 * 64 == 16 * MiB
    assert lay.vmalloc_start == 3584 * GiB - 3 * MiB
    assert lay.ident_map_size == 1 * GiB


def test_s390_profile_levels(s390):
    assert s390.vmemmap_start == 3528 * GiB
    assert s390.paging_levels == 3 and s390.pgdir_shift == 31 and s390.ptrs_per_pgd == 2048
    assert s390.folded("pud") and s390.folded("p4d")
    assert s390_mappable(s390) == (0, 3528 * GiB - 1)
    # 4 TiB of memory: vmemmap + vmalloc + modules > 4 TiB -> region-2 top, 4 levels,
    # vmemmap capped at 2^MAX_PHYSMEM_BITS.
    big = get_arch("s390x", ident_map_size=4 * TiB)
    assert big.paging_levels == 4 and big.pgdir_shift == 42 and big.ptrs_per_pud == 2048
    assert big.vmemmap_start == 2 ** 46


def test_s390_memory_block_size():
    assert s390_block_size() == 256 * MiB
    assert s390_block_size(128 * MiB) == 256 * MiB                  # max(section, rzm)
    assert s390_block_size(1 * GiB) == 1 * GiB
    assert "0x18000000" in _einval(s390_block_size, 384 * MiB)


def test_s390_memmap_on_memory(s390):
    # 256 MiB: 65536 pages x 64 B = 4 MiB = 1024 pages: PMD (1 MiB) and pageblock aligned.
    assert s390.memmap_size(256 * MiB) == 4 * MiB and s390.memmap_pages(256 * MiB) == 1024
    assert mhp_memmap_alignment_ok(s390, 4 * MiB)
    assert not kconfig_mhp_memmap_on_memory(s390, "6.8")
    assert kconfig_mhp_memmap_on_memory(s390, "6.9")
    assert not memmap_on_memory_supported(s390, 256 * MiB, "6.8")
    assert memmap_on_memory_supported(s390, 256 * MiB, "6.9")
    assert memmap_on_memory_supported(s390, 256 * MiB, "6.10")
    assert not arch_supports_memmap_on_memory(s390, 4 * MiB, "v2")   # weak default


def test_s390_page_flags_debian(s390):
    f = s390.page_flags
    # bounds.h (s390x): NR_PAGEFLAGS 23, MAX_NR_ZONES 3; no NUMA, no NUMA_BALANCING.
    assert f.NODES_WIDTH == 0 and f.ZONES_SHIFT == 2 and f.ZONES_PGSHIFT == 62
    assert f.LAST_CPUPID_WIDTH == 0 and f.LRU_GEN_PGOFF == 59 and f.LRU_REFS_PGOFF == 57
    assert f.ZONEID_PGSHIFT == 62 and f.page_to_nid(f.set_page_zone(0, 2)) == 0


# ====================================== every architecture =====================================

VERSIONS = ("v2", "5.12", "5.13", "6.1", "6.5", "6.6", "6.8", "6.9")


@pytest.mark.parametrize("name, opts, expected", [
    ("x86_64", {}, (1, 0, 1, 1, 1, 1, 1, 1)),
    ("arm64", {"page_size": "4K"}, (1, 0, 1, 1, 1, 1, 1, 1)),
    ("arm64", {"page_size": "64K"}, (1, 0, 1, 1, 1, 1, 1, 1)),
    ("powerpc64", {"mmu": "radix"}, (1, 0, 0, 0, 0, 1, 1, 1)),
    ("powerpc64", {"mmu": "hash"}, (1, 0, 0, 0, 0, 1, 1, 1)),
    ("s390x", {}, (1, 0, 0, 0, 0, 0, 0, 1)),
])
def test_kconfig_by_version(name, opts, expected):
    a = get_arch(name, **opts)
    assert tuple(int(kconfig_mhp_memmap_on_memory(a, k)) for k in VERSIONS) == expected


@pytest.mark.parametrize("name, opts, vmemmap_size, expected", [
    # v2 hook | <5.13 | 5.13-6.5 generic PMD + pageblock tests | 6.6+ hook
    ("x86_64", {}, 2 * MiB, (1, 0, 1, 1, 1, 1, 1, 1)),
    ("x86_64", {}, 1 * MiB, (1, 0, 0, 0, 0, 0, 0, 0)),           # half a PMD
    ("arm64", {"page_size": "4K"}, 2 * MiB, (1, 0, 1, 1, 1, 1, 1, 1)),
    ("arm64", {"page_size": "16K"}, 512 * KiB, (1, 0, 0, 0, 0, 0, 0, 0)),
    ("arm64", {"page_size": "16K"}, 32 * MiB, (1, 0, 1, 1, 1, 1, 1, 1)),   # an 8 GiB block
    ("arm64", {"page_size": "64K"}, 512 * KiB, (1, 0, 0, 0, 0, 0, 0, 0)),
    ("powerpc64", {"mmu": "radix"}, 256 * KiB, (1, 0, 0, 0, 0, 1, 1, 1)),
    ("powerpc64", {"mmu": "hash"}, 256 * KiB, (1, 0, 0, 0, 0, 0, 0, 0)),
    ("s390x", {}, 4 * MiB, (0, 0, 1, 1, 1, 1, 1, 1)),
])
def test_arch_supports_by_version(name, opts, vmemmap_size, expected):
    a = get_arch(name, **opts)
    got = tuple(int(arch_supports_memmap_on_memory(a, vmemmap_size, k)) for k in VERSIONS)
    assert got == expected


def test_force_needs_6_6(a4):
    for k in ("v2", "5.13", "6.1", "6.5"):
        assert "force" in _einval(memmap_on_memory_supported, a4, 128 * MiB, k, force=True)
    assert "96" in _einval(memmap_on_memory_supported, a4, 96 * MiB, "6.1")


@pytest.mark.parametrize("text, expected", [
    ("6.1", (6, 1)), ("6.1.166", (6, 1)), ("v6.9", (6, 9)), ("6.10", (6, 10)),
    ("5.13", (5, 13)), ("v2", "v2"),
])
def test_kernel_version(text, expected):
    assert kernel_version(text) == expected


@pytest.mark.parametrize("text", ["6", "six", "6.x", "", "v", "6.1.2.3", None])
def test_kernel_version_refused(text):
    assert repr(text) in _einval(kernel_version, text)


def test_get_arch_options():
    assert get_arch("arm64", page_size="16K").page_shift == 14
    assert get_arch("powerpc64", mmu="radix", page_size="64K").mmu == "radix"
    assert get_arch("s390x").name == "s390x"
    assert get_arch("x86_64").name == "x86_64"
    msg = _einval(get_arch, "arm64")
    assert "'arm64'" in msg and "page_size" in msg
    assert "'8K'" in _einval(get_arch, "arm64", page_size="8K")
    # 4K pages: radix only (Debian 13's -powerpc64le, issue #16); 16K is no book3s64 size
    assert get_arch("powerpc64", mmu="radix", page_size="4K").page_shift == 12
    assert "hash" in _einval(get_arch, "powerpc64", mmu="hash", page_size="4K")
    assert "'16K'" in _einval(get_arch, "powerpc64", mmu="radix", page_size="16K")
    assert "'book3e'" in _einval(get_arch, "powerpc64", mmu="book3e")
    assert "mmu" in _einval(get_arch, "powerpc64")
    assert "paging_levels" in _einval(get_arch, "s390x", paging_levels=4)
    assert "'powerpc'" in _einval(get_arch, "powerpc")
    assert "-1" in _einval(get_arch, "s390x", ident_map_size=-1)
    assert "dram_start" in _einval(get_arch, "arm64", page_size="4K", dram_start=-5)


def test_new_fields_leave_x86_64_alone():
    x = get_arch("x86_64")
    assert (x.phys_offset, x.arch_keep_memblock, x.mmu, x.table_bytes) == (0, False, None, ())
    assert x.pfn_to_page(0x100000) == 0xFFFFEA0000000000 + 0x100000 * 64
    assert x.table_size("pte") == 4096


def test_profiles_are_frozen_and_checked(hash_):
    with pytest.raises(dataclasses.FrozenInstanceError):
        hash_.mmu = "radix"
    assert "'pte'" in _einval(dataclasses.replace, hash_, table_bytes=(("pte", 8),))
    assert "'pmg'" in _einval(dataclasses.replace, hash_, table_bytes=(("pmg", 1 << 20),))
