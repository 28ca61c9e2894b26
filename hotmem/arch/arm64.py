"""arm64: the profile for 4K, 16K and 64K pages (VA_BITS 48) and its memmap_on_memory rules.

Read in Linux 6.1.166 and 6.8.0: arch/arm64/include/asm/{sparsemem,pgtable-hwdef,memory,
kernel-pgtable,pgtable}.h, arch/arm64/Kconfig (PGTABLE_LEVELS, ARCH_FORCE_MAX_ORDER,
ARM64_CONT_PMD_SHIFT), arch/arm64/mm/init.c:arm64_memblock_init, arch/arm64/mm/mmu.c:
arch_get_mappable_range.  arm64 has no memory_block_size_bytes() of its own: a memory block
is one section.  page->flags: include/generated/bounds.h and .config of Debian's
linux-headers-6.1.0-50-arm64 (6.1.176), a 4K-page build.
"""
from __future__ import annotations

import errno

from hotmem.arch.base import ALIGN_DOWN, ArchProfile, PageFlagsLayout
from hotmem.errors import HotplugError
from hotmem.kernel import release_policy

PAGE_SIZES = {"4K": 12, "16K": 14, "64K": 16}   # CONFIG_ARM64_{4K,16K,64K}_PAGES -> PAGE_SHIFT
VA_BITS = 48                                   # CONFIG_ARM64_VA_BITS_48 (Debian)
PA_BITS = 48                                   # CONFIG_ARM64_PA_BITS_48: MAX_PHYSMEM_BITS
STRUCT_PAGE_MAX_SHIFT = 6                      # order_base_2(sizeof(struct page) = 64)
ARM64_CONT_PMD_SHIFT = 5                       # Kconfig: 5 for 16K and 64K pages, 4 for 4K
SECTION_SIZE_BITS = {"4K": 27, "16K": 27, "64K": 29}   # asm/sparsemem.h
# Kconfig PGTABLE_LEVELS for ARM64_VA_BITS_48: 4 unless 64K pages (then 3).
PGTABLE_LEVELS = {"4K": 4, "16K": 4, "64K": 3}
# Kconfig ARCH_FORCE_MAX_ORDER: 6.1 counts orders (MAX_ORDER), 6.4+ names the largest order
# (6.8 MAX_PAGE_ORDER); the allocator is the same.
ARCH_FORCE_MAX_ORDER_6_1 = {"4K": 11, "16K": 12, "64K": 14}
ARCH_FORCE_MAX_ORDER_6_8 = {"4K": 10, "16K": 11, "64K": 13}
# QEMU 'virt' machine: RAM starts at 1 GiB (a property of the board, not of the kernel).
QEMU_VIRT_RAM_BASE = 0x40000000

# page->flags of Debian's 6.1 arm64 build (bounds.h: NR_PAGEFLAGS 24, MAX_NR_ZONES 4 =
# DMA, DMA32, NORMAL, MOVABLE (no ZONE_DEVICE), NR_CPUS_BITS 8 (NR_CPUS=256), LRU_GEN_WIDTH 3,
# __LRU_REFS_WIDTH 2; .config NODES_SHIFT=4, NUMA_BALANCING=y, LRU_GEN=y, no KASAN tags):
# NODE 63..60 | ZONE 59..58 | LAST_CPUPID 57..42 | LRU_GEN 41..39 | LRU_REFS 38..37 | flags 23..0.
DEBIAN_6_1_PAGE_FLAGS = PageFlagsLayout(
    nr_pageflags=24, max_nr_zones=4, nodes_shift=4, lru_gen_width=3, lru_refs_shift=2,
    kasan_tag_width=0, nr_cpus_bits=8, numa_balancing=True)

_MASK64 = (1 << 64) - 1


def _page_shift(page_size) -> int:
    shift = PAGE_SIZES.get(page_size) if isinstance(page_size, str) else None
    if shift is None:
        raise HotplugError(errno.EINVAL, f"arm64: page_size {page_size!r}: must be one of "
                           f"{', '.join(map(repr, PAGE_SIZES))}")
    return shift


def ARM64_HW_PGTABLE_LEVEL_SHIFT(page_shift: int, n: int) -> int:
    """Bits mapped by one entry of a level-``n`` table (asm/pgtable-hwdef.h, 6.1)."""
    return (page_shift - 3) * (4 - n) + 3


def ARM64_MEMSTART_ALIGN(page_size: str) -> int:
    """Alignment of memstart_addr (asm/kernel-pgtable.h in 6.1, arch/arm64/mm/init.c in 6.8):
    PUD_SIZE (4K), CONT_PMD_SIZE (16K) or PMD_SIZE (64K), never below a section."""
    ps = _page_shift(page_size)
    pmd_shift = ARM64_HW_PGTABLE_LEVEL_SHIFT(ps, 2)
    shift = {"4K": ARM64_HW_PGTABLE_LEVEL_SHIFT(ps, 1),        # PUD_SHIFT
             "16K": ARM64_CONT_PMD_SHIFT + pmd_shift,          # CONT_PMD_SHIFT
             "64K": pmd_shift}[page_size]
    return 1 << max(shift, SECTION_SIZE_BITS[page_size])


def memstart_addr(page_size: str, dram_start: int) -> int:
    """arch/arm64/mm/init.c:arm64_memblock_init (6.1): the start of DRAM rounded down to
    ARM64_MEMSTART_ALIGN (no KASLR linear-map randomisation: ``nokaslr``)."""
    if not isinstance(dram_start, int) or isinstance(dram_start, bool) or dram_start < 0:
        raise HotplugError(errno.EINVAL, f"arm64: dram_start {dram_start!r}: must be a "
                           "non-negative physical address")
    return ALIGN_DOWN(dram_start, ARM64_MEMSTART_ALIGN(page_size))


def arm64(page_size: str, *, dram_start: int = QEMU_VIRT_RAM_BASE,
          page_extension: bool = True) -> ArchProfile:
    """The arm64 profile for ``page_size`` "4K", "16K" or "64K" with VA_BITS 48 (6.1 = 6.8).

    ``page_size`` has no default: it changes every memmap_on_memory answer.
    ``dram_start``: where the board's RAM begins (QEMU virt: 1 GiB); it sets memstart_addr,
    the physical base of the linear map and of the vmemmap.  ``page_extension``:
    CONFIG_PAGE_EXTENSION (Debian: y), 32-byte struct mem_section.
    """
    ps = _page_shift(page_size)
    levels = PGTABLE_LEVELS[page_size]
    ptrs = 1 << (ps - 3)                                    # PTRS_PER_PTE/PMD/PUD
    pgdir_shift = ARM64_HW_PGTABLE_LEVEL_SHIFT(ps, 4 - levels)
    pmd_shift = ARM64_HW_PGTABLE_LEVEL_SHIFT(ps, 2)
    pud_shift = ARM64_HW_PGTABLE_LEVEL_SHIFT(ps, 1) if levels > 3 else pgdir_shift
    max_page_order = ARCH_FORCE_MAX_ORDER_6_8[page_size]
    hugetlb_page_order = pmd_shift - ps                     # HPAGE_SHIFT = PMD_SHIFT
    return ArchProfile(
        name="arm64",
        paging_levels=levels,
        page_shift=ps,
        struct_page_size=1 << STRUCT_PAGE_MAX_SHIFT,
        section_size_bits=SECTION_SIZE_BITS[page_size],
        max_physmem_bits=PA_BITS,
        subsection_shift=21,
        pmd_shift=pmd_shift,
        pud_shift=pud_shift,
        p4d_shift=pgdir_shift,                              # asm-generic/pgtable-nop4d.h
        pgdir_shift=pgdir_shift,
        ptrs_per_pte=ptrs,
        ptrs_per_pmd=ptrs,
        ptrs_per_pud=ptrs if levels > 3 else 1,
        ptrs_per_p4d=1,
        ptrs_per_pgd=1 << (VA_BITS - pgdir_shift),
        max_page_order=max_page_order,
        pageblock_order=min(hugetlb_page_order, max_page_order),
        max_memory_block_size=1 << SECTION_SIZE_BITS[page_size],
        # asm/memory.h: VMEMMAP_START = -(1 << (VA_BITS - VMEMMAP_SHIFT)),
        # PAGE_OFFSET = -(1 << VA_BITS)
        vmemmap_start=-(1 << (VA_BITS - (ps - STRUCT_PAGE_MAX_SHIFT))) & _MASK64,
        page_offset=-(1 << VA_BITS) & _MASK64,
        physmem_end=(1 << PA_BITS) - 1,                     # include/linux/mm.h default
        page_unused=None,
        sizeof_mem_section=32 if page_extension else 16,
        sparsemem_extreme=True,
        page_flags=DEBIAN_6_1_PAGE_FLAGS,
        phys_offset=memstart_addr(page_size, dram_start),
        arch_keep_memblock=True,
    )


def page_size_name(profile: ArchProfile) -> str:
    """"4K", "16K" or "64K" for an arm64 profile."""
    return {v: k for k, v in PAGE_SIZES.items()}[profile.page_shift]


def ARCH_FORCE_MAX_ORDER(profile: ArchProfile, kernel) -> int:
    """The Kconfig value as ``kernel`` spells it: up to 6.3 it counts orders (6.1: 11/12/14;
    FORCE_MAX_ZONEORDER before 6.1), 6.4+ gives the largest order (10/11/13, read in 6.6.57
    and 6.8.0)."""
    inclusive = release_policy(kernel).max_order_inclusive
    table = ARCH_FORCE_MAX_ORDER_6_8 if inclusive else ARCH_FORCE_MAX_ORDER_6_1
    return table[page_size_name(profile)]


def VMALLOC_TOTAL(profile: ArchProfile) -> int:
    """include/linux/vmalloc.h:VMALLOC_TOTAL = VMALLOC_END - VMALLOC_START, in bytes, with
    arm64's asm/pgtable.h and asm/memory.h (6.1, no KASAN): VMALLOC_START = MODULES_END =
    _PAGE_END(VA_BITS_MIN) + SZ_128M, VMALLOC_END = VMEMMAP_START - SZ_256M."""
    modules_end = (-(1 << (min(VA_BITS, 48) - 1)) & _MASK64) + (128 << 20)
    return profile.vmemmap_start - (256 << 20) - modules_end


def memory_block_size_bytes(profile: ArchProfile) -> int:
    """arm64 keeps the generic drivers/base/memory.c:memory_block_size_bytes: one section."""
    return profile.MIN_MEMORY_BLOCK_SIZE


def arch_get_mappable_range(profile: ArchProfile) -> tuple[int, int]:
    """arch/arm64/mm/mmu.c:arch_get_mappable_range (6.1): the physical span of the linear map,
    [__pa(PAGE_OFFSET), __pa(PAGE_END - 1)], inclusive; mhp_get_pluggable_range then caps
    the end at PHYSMEM_END."""
    page_end = -(1 << (VA_BITS - 1)) & _MASK64               # _PAGE_END(VA_BITS_MIN), no KASAN
    return profile.virt_to_phys(profile.page_offset), profile.virt_to_phys(page_end - 1)


def arch_support_memmap_on_memory() -> bool:
    """The RFC v2's arch/arm64/mm/mmu.c:arch_support_memmap_on_memory (digest §15.1): true."""
    return True
