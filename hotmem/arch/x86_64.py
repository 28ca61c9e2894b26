"""x86-64: the profile of Linux 6.1 (Debian config) and memory block size probing.

Constants from arch/x86/include/asm/{page_types,page_64_types,pgtable_64_types,sparsemem}.h
and arch/x86/kernel/head64.c:check_la57_support (6.1); the memory block size from
arch/x86/mm/init_64.c:probe_memory_block_size (6.1, unchanged in 6.8).
"""
from __future__ import annotations

import errno
import operator

from hotmem.arch.base import ArchProfile, IS_ALIGNED, PageFlagsLayout
from hotmem.errors import HotplugError

PAGE_SHIFT = 12
SECTION_SIZE_BITS = 27                  # asm/sparsemem.h: "128 is convenient right now"
MIN_MEMORY_BLOCK_SIZE = 1 << SECTION_SIZE_BITS
MAX_BLOCK_SIZE = 2 << 30                # arch/x86/mm/init_64.c
MEM_SIZE_FOR_LARGE_BLOCK = 64 << 30     # arch/x86/mm/init_64.c
PAGE_UNUSED = 0xFD                      # arch/x86/mm/init_64.c: fill of unused vmemmap

# asm/pgtable_64_types.h, asm/page_64_types.h: the non-KASLR bases (`nokaslr`).
__VMEMMAP_BASE_L4 = 0xFFFFEA0000000000
__VMEMMAP_BASE_L5 = 0xFFD4000000000000
__PAGE_OFFSET_BASE_L4 = 0xFFFF888000000000
__PAGE_OFFSET_BASE_L5 = 0xFF11000000000000

HUGETLB_PAGE_ORDER = 21 - PAGE_SHIFT    # HPAGE_SHIFT = PMD_SHIFT
MAX_PAGE_ORDER = 10                     # 6.1: MAX_ORDER 11 (no ARCH_FORCE_MAX_ORDER on x86)

# page->flags of Debian's 6.1 amd64 build: include/generated/bounds.h of
# linux-headers-6.1.0-*-amd64 (NR_PAGEFLAGS 25, MAX_NR_ZONES 5, NR_CPUS_BITS 13,
# LRU_GEN_WIDTH 3, __LRU_REFS_WIDTH 2) and its config (NODES_SHIFT=10,
# NUMA_BALANCING=y, LRU_GEN=y, no KASAN tags).  All 64 bits end up used:
# NODE 63..54 | ZONE 53..51 | LAST_CPUPID 50..30 | LRU_GEN 29..27 | LRU_REFS 26..25 | flags 24..0.
DEBIAN_6_1_PAGE_FLAGS = PageFlagsLayout(
    nr_pageflags=25, max_nr_zones=5, nodes_shift=10, lru_gen_width=3, lru_refs_shift=2,
    kasan_tag_width=0, nr_cpus_bits=13, numa_balancing=True)


def x86_64(paging_levels: int = 4, *, page_extension: bool = True) -> ArchProfile:
    """The x86-64 profile for 4- or 5-level paging (LA57 chosen at boot, head64.c, 6.1).

    ``page_extension``: CONFIG_PAGE_EXTENSION (Debian: y) makes struct mem_section
    32 bytes instead of 16 (include/linux/mmzone.h, 6.1).
    """
    if paging_levels not in (4, 5):
        raise HotplugError(errno.EINVAL,
                           f"x86_64: paging_levels {paging_levels!r}: must be 4 or 5")
    l5 = paging_levels == 5
    max_physmem_bits = 52 if l5 else 46
    return ArchProfile(
        name="x86_64",
        paging_levels=paging_levels,
        page_shift=PAGE_SHIFT,
        struct_page_size=64,
        section_size_bits=SECTION_SIZE_BITS,
        max_physmem_bits=max_physmem_bits,
        subsection_shift=21,
        pmd_shift=21,
        pud_shift=30,
        p4d_shift=39,
        pgdir_shift=48 if l5 else 39,
        ptrs_per_pte=512,
        ptrs_per_pmd=512,
        ptrs_per_pud=512,
        ptrs_per_p4d=512 if l5 else 1,
        ptrs_per_pgd=512,
        max_page_order=MAX_PAGE_ORDER,
        pageblock_order=min(HUGETLB_PAGE_ORDER, MAX_PAGE_ORDER),
        max_memory_block_size=MAX_BLOCK_SIZE,
        vmemmap_start=__VMEMMAP_BASE_L5 if l5 else __VMEMMAP_BASE_L4,
        page_offset=__PAGE_OFFSET_BASE_L5 if l5 else __PAGE_OFFSET_BASE_L4,
        # arch/x86/mm/kaslr.c:kernel_randomize_memory presets this before the KASLR check
        # and, with ZONE_DEVICE=y, KASLR does not trim it either.
        physmem_end=(1 << max_physmem_bits) - 1,
        page_unused=PAGE_UNUSED,
        sizeof_mem_section=32 if page_extension else 16,
        sparsemem_extreme=True,
        page_flags=DEBIAN_6_1_PAGE_FLAGS,
    )


def set_memory_block_size_order(order: int) -> int:
    """The block size a platform asks for (arch/x86/mm/init_64.c, 6.1): 1 << order.

    Refused with EINVAL outside MIN_MEMORY_BLOCK_SIZE (128 MiB) .. 64 GiB.
    """
    n = _as_int(order)
    size = 1 << min(n, 64) if n is not None and n >= 0 else 0
    if not MIN_MEMORY_BLOCK_SIZE <= size <= MEM_SIZE_FOR_LARGE_BLOCK:
        raise HotplugError(errno.EINVAL,
                           f"set_memory_block_size_order({order!r}): block size must be "
                           f"2^27 (128 MiB) .. 2^36 (64 GiB)")
    return 1 << n


def probe_memory_block_size(boot_mem_end: int, *, hypervisor: bool,
                            set_order: int | None = None) -> int:
    """memory_block_size_bytes() of x86-64 (arch/x86/mm/init_64.c:probe_memory_block_size, 6.1).

    ``boot_mem_end`` is ``max_pfn << PAGE_SHIFT`` when the size is first asked for
    (the kernel caches the answer); ``hypervisor`` is X86_FEATURE_HYPERVISOR;
    ``set_order`` is a set_memory_block_size_order() call made before (UV platforms).
    """
    if set_order is not None:
        return set_memory_block_size_order(set_order)
    end = _as_int(boot_mem_end)
    if end is None or end < 0 or not IS_ALIGNED(end, 1 << PAGE_SHIFT):
        raise HotplugError(errno.EINVAL,
                           f"boot_mem_end {boot_mem_end!r}: must be max_pfn << PAGE_SHIFT, "
                           "a non-negative multiple of 4096")
    boot_mem_end = end
    if boot_mem_end < MEM_SIZE_FOR_LARGE_BLOCK:
        return MIN_MEMORY_BLOCK_SIZE
    if not hypervisor:
        return MAX_BLOCK_SIZE
    # Largest block size that divides the end of boot memory, never below the minimum.
    bz = MAX_BLOCK_SIZE
    while bz > MIN_MEMORY_BLOCK_SIZE and not IS_ALIGNED(boot_mem_end, bz):
        bz >>= 1
    return bz


def _as_int(x) -> int | None:
    """``x`` as an exact integer (Python or numpy), or None for anything else."""
    if isinstance(x, bool):
        return None
    try:
        return operator.index(x)
    except TypeError:
        return None


def memory_block_size_message(bz: int) -> str:
    """The boot line probe_memory_block_size prints (pr_info, 6.1)."""
    return f"x86/mm: Memory block size: {bz >> 20}MB"
