"""arm64's hotplug page-table paths around the core's ``PageTables`` (arch/arm64/mm/mmu.c and
arch/arm64/mm/pageattr.c, Linux 6.1.166).

The walks themselves are the core's ``arm64_*`` methods; this module builds the table geometry
of an arm64 (or any) profile, decides the flags arch_add_memory passes to
__create_pgd_mapping -- can_set_direct_map(), as the 6.1 stable series changed it -- and wires
the hot-add / hot-remove calls with the addresses the kernel uses.

Debian's arm64 6.1 configuration: the Debian packaging leaves RODATA_FULL_DEFAULT_ENABLED at its
Kconfig default (y; debian/config/arm64/config does not set it); KFENCE is not set in the 6.1
line (bookworm's linux-config-6.1 6.1.192 amd64 config: "# CONFIG_KFENCE is not set", from the
common debian/config/config; KFENCE=y with a 0 sample interval came with the later 6.12
packaging); DEBUG_PAGEALLOC is not set. So can_set_direct_map() is true by default and
hot-added memory gets a page-granular linear map (no blocks, no contiguous hints); ``rodata=off``
(and, from 6.1.65, ``rodata=on``) turns it false and blocks are used.
[The arm64 6.1 config itself was not read: the RODATA and KFENCE lines are inferred as said.]
"""
from __future__ import annotations

import errno
import operator

from hotmem.errors import HotplugError
from hotmem.defs import (NO_BLOCK_MAPPINGS, NO_CONT_MAPPINGS, NO_EXEC_MAPPINGS,
                         PageTableGeometry)

__all__ = [
    "arm64_geometry", "can_set_direct_map", "arch_add_memory_flags",
    "create_linear_mapping", "remove_linear_mapping", "vmemmap_range",
    "DEBIAN_RODATA_FULL_DEFAULT_ENABLED", "DEBIAN_KFENCE", "DEBIAN_KFENCE_SAMPLE_INTERVAL",
    "DEBIAN_DEBUG_PAGEALLOC",
]

_M64 = (1 << 64) - 1
STRUCT_PAGE_MAX_SHIFT = 6            # order_base_2(sizeof(struct page)) (asm/memory.h)

# Debian's 6.1 arm64 kernel configuration (see the module docstring).
DEBIAN_RODATA_FULL_DEFAULT_ENABLED = True
DEBIAN_KFENCE = False
DEBIAN_KFENCE_SAMPLE_INTERVAL = 100          # Kconfig default (no effect without KFENCE)
DEBIAN_DEBUG_PAGEALLOC = False


def _einval(msg):
    return HotplugError(errno.EINVAL, msg)


def arm64_geometry(page_shift: int, va_bits: int = 48, pa_bits: int | None = None
                   ) -> PageTableGeometry:
    """The swapper_pg_dir geometry of arm64 for PAGE_SHIFT 12/14/16 and VA_BITS 36..52.

    arch/arm64/include/asm/pgtable-hwdef.h (6.1): ARM64_HW_PGTABLE_LEVELS(va) =
    (va - 4) / (PAGE_SHIFT - 3) levels, an entry at hardware level n maps
    (PAGE_SHIFT - 3) * (4 - n) + 3 bits, PTRS_PER_PTE/PMD/PUD = 1 << (PAGE_SHIFT - 3),
    PTRS_PER_PGD = 1 << (VA_BITS - PGDIR_SHIFT). asm/memory.h (6.1, no KASAN):
    PAGE_OFFSET = -(1 << VA_BITS), PAGE_END = -(1 << (VA_BITS_MIN - 1)),
    VMEMMAP_START = -(1 << (VA_BITS - VMEMMAP_SHIFT)), VMEMMAP_SIZE = (PAGE_END - PAGE_OFFSET)
    >> VMEMMAP_SHIFT with VMEMMAP_SHIFT = PAGE_SHIFT - STRUCT_PAGE_MAX_SHIFT.
    ``pa_bits`` (MAX_PHYSMEM_BITS = CONFIG_ARM64_PA_BITS) defaults to 52 for VA_BITS 52, else 48.
    """
    if page_shift not in (12, 14, 16):
        raise _einval(f"arm64 geometry: PAGE_SHIFT {page_shift!r}: 12, 14 or 16")
    if not isinstance(va_bits, int) or not 36 <= va_bits <= 52:
        raise _einval(f"arm64 geometry: VA_BITS {va_bits!r}: 36..52")
    bits = page_shift - 3
    nlev = (va_bits - 4) // bits
    if not 2 <= nlev <= 4:
        raise _einval(f"arm64 geometry: VA_BITS {va_bits} with PAGE_SHIFT {page_shift} gives "
                      f"{nlev} levels")
    names = {4: ("PGD", "PUD", "PMD", "PTE"), 3: ("PGD", "PMD", "PTE"), 2: ("PGD", "PTE")}[nlev]
    levels = []
    for k, name in enumerate(names):
        hw_level = 4 - nlev + k
        shift = bits * (4 - hw_level) + 3
        ptrs = 1 << (va_bits - shift) if k == 0 else 1 << bits
        levels.append((name, shift, ptrs))
    va_min = 48 if va_bits > 48 else va_bits
    page_offset = -(1 << va_bits) & _M64
    page_end = -(1 << (va_min - 1)) & _M64
    vmemmap_shift = page_shift - STRUCT_PAGE_MAX_SHIFT
    vmemmap_start = -(1 << (va_bits - vmemmap_shift)) & _M64
    vmemmap_end = vmemmap_start + (((page_end - page_offset) & _M64) >> vmemmap_shift)
    if pa_bits is None:
        pa_bits = 52 if va_bits == 52 else 48
    return PageTableGeometry(f"arm64-{1 << (page_shift - 10)}K-{va_bits}bit", "arm64",
                             page_shift, tuple(levels), page_offset, page_end, vmemmap_start,
                             vmemmap_end & _M64, page_offset, pa_bits)


def can_set_direct_map(*, rodata: str | None = None,
                       rodata_full_default_enabled: bool = DEBIAN_RODATA_FULL_DEFAULT_ENABLED,
                       debug_pagealloc: bool = DEBIAN_DEBUG_PAGEALLOC,
                       kfence: bool = DEBIAN_KFENCE,
                       kfence_sample_interval: int = DEBIAN_KFENCE_SAMPLE_INTERVAL,
                       sublevel: int = 166) -> bool:
    """arch/arm64/mm/pageattr.c:can_set_direct_map for a 6.1.``sublevel`` kernel.

    ``rodata``: the ``rodata=`` boot parameter ("full", "on", "off" or None);
    ``rodata_full_default_enabled``: CONFIG_RODATA_FULL_DEFAULT_ENABLED (the initial
    rodata_full); ``debug_pagealloc``: debug_pagealloc_enabled() (CONFIG_DEBUG_PAGEALLOC and
    ``debug_pagealloc=on``); ``kfence``: CONFIG_KFENCE; ``kfence_sample_interval``: the effective
    ``kfence.sample_interval`` (CONFIG_KFENCE_SAMPLE_INTERVAL unless given at boot).
    6.1.0-6.1.64: (rodata_enabled && rodata_full) || debug_pagealloc || IS_ENABLED(KFENCE);
    ``rodata=full`` sets both, ``on``/``off`` only rodata_enabled (init/main.c:set_debug_rodata).
    6.1.65+: rodata_full || debug_pagealloc || (KFENCE && !kfence_early_init) with
    kfence_early_init = !!sample_interval (mmu.c); ``rodata=off`` clears both, ``on`` sets
    rodata_enabled and clears rodata_full (asm/setup.h:arch_parse_debug_rodata)."""
    if rodata not in (None, "full", "on", "off"):
        raise _einval(f"can_set_direct_map: rodata={rodata!r}: full, on or off")
    sublevel = operator.index(sublevel)
    rodata_enabled, rodata_full = True, bool(rodata_full_default_enabled)
    if sublevel >= 65:
        if rodata == "full":
            rodata_enabled = rodata_full = True
        elif rodata == "off":
            rodata_enabled = rodata_full = False
        elif rodata == "on":
            rodata_enabled, rodata_full = True, False
        kfence_late = kfence and not kfence_sample_interval
        return rodata_full or bool(debug_pagealloc) or kfence_late
    if rodata == "full":
        rodata_enabled = rodata_full = True
    elif rodata is not None:
        rodata_enabled = rodata == "on"
    return (rodata_enabled and rodata_full) or bool(debug_pagealloc) or bool(kfence)


def arch_add_memory_flags(can_set_direct_map_: bool) -> int:
    """The flags arch/arm64/mm/mmu.c:arch_add_memory (6.1) gives __create_pgd_mapping:
    NO_EXEC_MAPPINGS, plus NO_BLOCK_MAPPINGS | NO_CONT_MAPPINGS when can_set_direct_map()."""
    flags = NO_EXEC_MAPPINGS
    if can_set_direct_map_:
        flags |= NO_BLOCK_MAPPINGS | NO_CONT_MAPPINGS
    return flags


def create_linear_mapping(pt, profile, start: int, size: int, alloc_table, node, *,
                          can_set_direct_map_: bool) -> None:
    """The linear-map half of arch/arm64/mm/mmu.c:arch_add_memory (6.1):
    __create_pgd_mapping(swapper_pg_dir, start, __phys_to_virt(start), size, pgprot,
    __pgd_pgtable_alloc, flags). ``node`` is where the running CPU allocates (the kernel passes
    no nid: __get_free_page on the local node)."""
    pt.arm64_create_pgd_mapping(start, profile.phys_to_virt(start), size,
                                arch_add_memory_flags(can_set_direct_map_), alloc_table, node)


def remove_linear_mapping(pt, profile, start: int, size: int, free_table) -> None:
    """arch/arm64/mm/mmu.c:__remove_pgd_mapping(swapper_pg_dir, __phys_to_virt(start), size)
    as arch_remove_memory and the failed-add path of arch_add_memory call it (6.1)."""
    pt.arm64_remove_pgd_mapping(profile.phys_to_virt(start), size, free_table)


def vmemmap_range(profile, start_pfn: int, nr_pages: int) -> tuple[int, int]:
    """[start, end) of the vmemmap holding the struct pages of [start_pfn, start_pfn + nr_pages)
    (mm/sparse-vmemmap.c:__populate_section_memmap: pfn_to_page(pfn) .. + nr_pages)."""
    start = profile.pfn_to_page(start_pfn)
    return start, start + nr_pages * profile.struct_page_size
