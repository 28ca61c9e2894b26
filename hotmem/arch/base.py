"""Architecture profiles: an architecture's memory-model constants held as data.

An :class:`ArchProfile` holds what the kernel takes from the arch headers and the
config (asm/page_types.h, asm/sparsemem.h, asm/pgtable_*types.h, Kconfig) and
derives from it, as properties and methods, the generic macros of
include/linux/mmzone.h, include/linux/pageblock-flags.h, include/linux/pfn.h,
include/linux/page-flags-layout.h and the sizes of mm/sparse.c (Linux 6.1).

Naming: fields are lower case; a derived figure that is a kernel macro keeps the
macro's name (``PAGES_PER_SECTION``); a kernel function keeps the function's
name (``usemap_size()``, ``pfn_to_section_nr(pfn)``).  Everything is an exact
integer; nothing here allocates or changes state.

Page tables: a level that the configuration folds away (x86 P4D with 4-level
paging, arm64 PUD with 64K pages) has ``ptrs_per_<level> == 1`` and the shift of
the level above it, as include/asm-generic/pgtable-nop4d.h and -nopud.h define.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from functools import cached_property

from hotmem.errors import HotplugError

# include/linux/pageblock-flags.h:enum pageblock_bits (6.1): 3 migratetype bits + skip.
NR_PAGEBLOCK_BITS = 4
# include/linux/page-flags-layout.h:LAST__PID_SHIFT (6.1, CONFIG_NUMA_BALANCING).
LAST__PID_SHIFT = 8

PAGE_TABLE_LEVELS = ("pte", "pmd", "pud", "p4d", "pgd")


# --- include/linux/align.h, include/linux/math.h, include/linux/log2.h ------------------------

def ALIGN(x: int, a: int) -> int:
    """Round ``x`` up to a multiple of the power of two ``a`` (include/linux/align.h:ALIGN)."""
    return (x + a - 1) & ~(a - 1)


def ALIGN_DOWN(x: int, a: int) -> int:
    """Round ``x`` down to a multiple of the power of two ``a`` (include/linux/align.h)."""
    return x & ~(a - 1)


def IS_ALIGNED(x: int, a: int) -> bool:
    """True if ``x`` is a multiple of the power of two ``a`` (include/linux/align.h)."""
    return (x & (a - 1)) == 0


def DIV_ROUND_UP(n: int, d: int) -> int:
    """Integer division rounding up (include/linux/math.h:DIV_ROUND_UP)."""
    return -(-n // d)


def is_power_of_2(n: int) -> bool:
    """include/linux/log2.h:is_power_of_2."""
    return n > 0 and (n & (n - 1)) == 0


def ilog2(n: int) -> int:
    """Floor of log2 of a positive ``n`` (include/linux/log2.h:ilog2)."""
    if n <= 0:
        raise HotplugError(errno.EINVAL, f"ilog2({n}): argument must be positive")
    return n.bit_length() - 1


def order_base_2(n: int) -> int:
    """Ceiling of log2 of ``n``; 0 for n <= 1 (include/linux/log2.h:order_base_2)."""
    return 0 if n <= 1 else (n - 1).bit_length()


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise HotplugError(errno.EINVAL, what)


# --- page->flags layout ------------------------------------------------------------------------

@dataclass(frozen=True)
class PageFlagsLayout:
    """Where node, zone and the other fields sit in ``page->flags``.

    Inputs are the config- and build-derived numbers of include/generated/bounds.h
    and Kconfig; the properties follow include/linux/page-flags-layout.h and the
    ``*_PGOFF``/``*_PGSHIFT`` macros of include/linux/mmzone.h (6.1), for
    CONFIG_SPARSEMEM_VMEMMAP (``SECTIONS_WIDTH`` = 0: the section is never stored
    in the flags).  Layout, high bits first:
    ``| NODE | ZONE | LAST_CPUPID | KASAN_TAG | LRU_GEN | LRU_REFS | ... | FLAGS |``.
    """

    nr_pageflags: int           # NR_PAGEFLAGS (bounds.h: __NR_PAGEFLAGS)
    max_nr_zones: int           # MAX_NR_ZONES (bounds.h: __MAX_NR_ZONES)
    nodes_shift: int            # CONFIG_NODES_SHIFT
    lru_gen_width: int = 0      # LRU_GEN_WIDTH (bounds.h; 3 with CONFIG_LRU_GEN)
    lru_refs_shift: int = 0     # __LRU_REFS_WIDTH (bounds.h; 2 with CONFIG_LRU_GEN)
    kasan_tag_width: int = 0    # KASAN_TAG_WIDTH (8 with KASAN_SW/HW_TAGS)
    nr_cpus_bits: int = 0       # NR_CPUS_BITS (bounds.h: order_base_2(CONFIG_NR_CPUS))
    numa_balancing: bool = False  # CONFIG_NUMA_BALANCING: gives LAST_CPUPID a shift
    bits_per_long: int = 64

    def __post_init__(self):
        _require(self.max_nr_zones <= 8,
                 f"MAX_NR_ZONES {self.max_nr_zones}: ZONES_SHIFT \"Too many zones configured\"")
        _require(self.NODES_WIDTH == self.nodes_shift,
                 f"NODES_SHIFT {self.nodes_shift}: "
                 "\"Vmemmap: No space for nodes field in page flags\"")
        _require(self._used_width() <= self.bits_per_long - self.nr_pageflags,
                 f"NR_PAGEFLAGS {self.nr_pageflags}: \"Not enough bits in page flags\"")

    def _used_width(self) -> int:
        return (self.ZONES_WIDTH + self.lru_gen_width + self.SECTIONS_WIDTH + self.NODES_WIDTH
                + self.kasan_tag_width + self.LAST_CPUPID_WIDTH)

    @property
    def ZONES_SHIFT(self) -> int:
        n = self.max_nr_zones
        return 0 if n < 2 else 1 if n <= 2 else 2 if n <= 4 else 3

    @property
    def ZONES_WIDTH(self) -> int:
        return self.ZONES_SHIFT

    @property
    def SECTIONS_WIDTH(self) -> int:
        """0: with SPARSEMEM_VMEMMAP the section is found from the pfn, not the flags."""
        return 0

    @property
    def NODES_WIDTH(self) -> int:
        free = self.bits_per_long - self.nr_pageflags
        need = self.ZONES_WIDTH + self.lru_gen_width + self.SECTIONS_WIDTH + self.nodes_shift
        return self.nodes_shift if need <= free else 0

    @property
    def NODE_NOT_IN_PAGE_FLAGS(self) -> bool:
        return self.nodes_shift != 0 and self.NODES_WIDTH == 0

    @property
    def LAST_CPUPID_SHIFT(self) -> int:
        return LAST__PID_SHIFT + self.nr_cpus_bits if self.numa_balancing else 0

    @property
    def LAST_CPUPID_WIDTH(self) -> int:
        free = self.bits_per_long - self.nr_pageflags
        used = (self.ZONES_WIDTH + self.lru_gen_width + self.SECTIONS_WIDTH + self.NODES_WIDTH
                + self.kasan_tag_width + self.LAST_CPUPID_SHIFT)
        return self.LAST_CPUPID_SHIFT if used <= free else 0

    @property
    def LAST_CPUPID_NOT_IN_PAGE_FLAGS(self) -> bool:
        return self.LAST_CPUPID_SHIFT != 0 and self.LAST_CPUPID_WIDTH == 0

    @property
    def LRU_REFS_WIDTH(self) -> int:
        free = self.bits_per_long - self.nr_pageflags
        return min(self.lru_refs_shift, free - self._used_width())

    # *_PGOFF: where each field would start (mmzone.h).
    @property
    def SECTIONS_PGOFF(self) -> int:
        return self.bits_per_long - self.SECTIONS_WIDTH

    @property
    def NODES_PGOFF(self) -> int:
        return self.SECTIONS_PGOFF - self.NODES_WIDTH

    @property
    def ZONES_PGOFF(self) -> int:
        return self.NODES_PGOFF - self.ZONES_WIDTH

    @property
    def LAST_CPUPID_PGOFF(self) -> int:
        return self.ZONES_PGOFF - self.LAST_CPUPID_WIDTH

    @property
    def KASAN_TAG_PGOFF(self) -> int:
        return self.LAST_CPUPID_PGOFF - self.kasan_tag_width

    @property
    def LRU_GEN_PGOFF(self) -> int:
        return self.KASAN_TAG_PGOFF - self.lru_gen_width

    @property
    def LRU_REFS_PGOFF(self) -> int:
        return self.LRU_GEN_PGOFF - self.LRU_REFS_WIDTH

    # *_PGSHIFT: the shift to use, 0 for an absent field (mmzone.h).
    @property
    def NODES_PGSHIFT(self) -> int:
        return self.NODES_PGOFF if self.NODES_WIDTH else 0

    @property
    def ZONES_PGSHIFT(self) -> int:
        return self.ZONES_PGOFF if self.ZONES_WIDTH else 0

    @property
    def LAST_CPUPID_PGSHIFT(self) -> int:
        return self.LAST_CPUPID_PGOFF if self.LAST_CPUPID_WIDTH else 0

    @property
    def ZONEID_SHIFT(self) -> int:
        # NODE_NOT_IN_PAGE_FLAGS cannot happen under SPARSEMEM_VMEMMAP (checked above).
        return self.NODES_WIDTH + self.ZONES_SHIFT

    @property
    def ZONEID_PGSHIFT(self) -> int:
        pgoff = min(self.NODES_PGOFF, self.ZONES_PGOFF)
        return pgoff if self.ZONEID_SHIFT else 0

    @property
    def NODES_MASK(self) -> int:
        return (1 << self.NODES_WIDTH) - 1

    @property
    def ZONES_MASK(self) -> int:
        return (1 << self.ZONES_WIDTH) - 1

    @property
    def ZONEID_MASK(self) -> int:
        return (1 << self.ZONEID_SHIFT) - 1

    def page_zonenum(self, flags: int) -> int:
        """Zone index stored in a flags word (include/linux/mm.h:page_zonenum, 6.1)."""
        return (flags >> self.ZONES_PGSHIFT) & self.ZONES_MASK

    def page_to_nid(self, flags: int) -> int:
        """Node id stored in a flags word (include/linux/mm.h:page_to_nid, 6.1)."""
        return (flags >> self.NODES_PGSHIFT) & self.NODES_MASK

    def page_zone_id(self, flags: int) -> int:
        """Node:zone id of a flags word (include/linux/mm.h:page_zone_id, 6.1)."""
        return (flags >> self.ZONEID_PGSHIFT) & self.ZONEID_MASK

    def set_page_zone(self, flags: int, zone: int) -> int:
        """``flags`` with the zone field replaced (include/linux/mm.h:set_page_zone, 6.1)."""
        flags &= ~(self.ZONES_MASK << self.ZONES_PGSHIFT)
        return flags | ((zone & self.ZONES_MASK) << self.ZONES_PGSHIFT)

    def set_page_node(self, flags: int, node: int) -> int:
        """``flags`` with the node field replaced (include/linux/mm.h:set_page_node, 6.1)."""
        flags &= ~(self.NODES_MASK << self.NODES_PGSHIFT)
        return flags | ((node & self.NODES_MASK) << self.NODES_PGSHIFT)


# --- the profile -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ArchProfile:
    """One architecture (and paging mode) as constants, with the kernel's derived figures.

    Fields are the arch/config inputs; sizes are in bytes, shifts in bits.
    ``max_page_order`` is the *largest* buddy order (x86: 10): what 6.4+ calls
    MAX_ORDER and 6.8 MAX_PAGE_ORDER; 6.1's MAX_ORDER is one more (11), and the
    kernel-version policy decides which name a version uses.
    """

    name: str
    paging_levels: int
    page_shift: int                # PAGE_SHIFT
    struct_page_size: int          # sizeof(struct page)
    section_size_bits: int         # SECTION_SIZE_BITS (asm/sparsemem.h)
    max_physmem_bits: int          # MAX_PHYSMEM_BITS (asm/sparsemem.h)
    subsection_shift: int          # SUBSECTION_SHIFT (mmzone.h; 21 everywhere in 6.1)
    pmd_shift: int                 # PMD_SHIFT
    pud_shift: int                 # PUD_SHIFT
    p4d_shift: int                 # P4D_SHIFT
    pgdir_shift: int               # PGDIR_SHIFT
    ptrs_per_pte: int              # PTRS_PER_PTE
    ptrs_per_pmd: int              # PTRS_PER_PMD (1: folded)
    ptrs_per_pud: int              # PTRS_PER_PUD (1: folded)
    ptrs_per_p4d: int              # PTRS_PER_P4D (1: folded)
    ptrs_per_pgd: int              # PTRS_PER_PGD
    max_page_order: int            # largest buddy order (6.8 MAX_PAGE_ORDER)
    pageblock_order: int           # pageblock_order (pageblock-flags.h; boot-set where variable)
    max_memory_block_size: int     # largest memory block the arch probes (x86 MAX_BLOCK_SIZE)
    vmemmap_start: int             # VMEMMAP_START (virtual address of pfn 0's struct page)
    page_offset: int               # PAGE_OFFSET (direct map base)
    physmem_end: int               # PHYSMEM_END (last usable physical address, inclusive)
    page_unused: int | None        # PAGE_UNUSED vmemmap fill byte (x86 only; None elsewhere)
    sizeof_mem_section: int        # sizeof(struct mem_section): 16, or 32 with PAGE_EXTENSION
    sparsemem_extreme: bool        # CONFIG_SPARSEMEM_EXTREME: mem_section[] is a table of roots
    page_flags: PageFlagsLayout    # page->flags layout of the reference config
    bits_per_long: int = 64        # BITS_PER_LONG
    sizeof_pte: int = 8            # sizeof(pte_t) (= every level's entry size on 64-bit)
    phys_offset: int = 0           # PHYS_OFFSET: physical address of PAGE_OFFSET and of the
    #                                vmemmap's first struct page (arm64 memstart_addr; 0 elsewhere)
    arch_keep_memblock: bool = False  # CONFIG_ARCH_KEEP_MEMBLOCK: hotplug adds/removes memblock
    mmu: str | None = None         # MMU mode where the arch has several (powerpc64: radix/hash)
    table_bytes: tuple = ()        # ((level, bytes), ...): tables larger than their entries
    #                                (powerpc hash-64k.h keeps hash slots beside the entries)

    def __post_init__(self):
        n = self.name
        _require(self.paging_levels in (2, 3, 4, 5),
                 f"{n}: paging_levels {self.paging_levels} is not 2..5")
        _require(self.page_shift + self.max_page_order <= self.section_size_bits,
                 f"{n}: max_page_order {self.max_page_order}: "
                 "\"Allocator MAX_ORDER exceeds SECTION_SIZE\"")
        _require(self.subsection_shift <= self.section_size_bits,
                 f"{n}: subsection_shift {self.subsection_shift}: "
                 "\"Subsection size exceeds section size\"")
        _require(self.section_size_bits <= self.max_physmem_bits,
                 f"{n}: section_size_bits {self.section_size_bits} > max_physmem_bits")
        _require(0 <= self.pageblock_order <= self.max_page_order,
                 f"{n}: pageblock_order {self.pageblock_order} outside 0..max_page_order")
        _require(is_power_of_2(self.sizeof_mem_section),
                 f"{n}: sizeof_mem_section {self.sizeof_mem_section} is not a power of two "
                 "(SECTION_ROOT_MASK needs one)")
        _require(is_power_of_2(self.struct_page_size),
                 f"{n}: struct_page_size {self.struct_page_size} is not a power of two")
        _require(self.MIN_MEMORY_BLOCK_SIZE <= self.max_memory_block_size
                 and is_power_of_2(self.max_memory_block_size),
                 f"{n}: max_memory_block_size {self.max_memory_block_size:#x} is not a power "
                 "of two >= MIN_MEMORY_BLOCK_SIZE")
        for level, shift, lower, ptrs in (
                ("pmd", self.pmd_shift, self.page_shift, self.ptrs_per_pte),
                ("pud", self.pud_shift, self.pmd_shift, self.ptrs_per_pmd),
                ("p4d", self.p4d_shift, self.pud_shift, self.ptrs_per_pud),
                ("pgd", self.pgdir_shift, self.p4d_shift, self.ptrs_per_p4d)):
            _require(is_power_of_2(ptrs) and shift == lower + ilog2(ptrs),
                     f"{n}: {level} shift {shift} != {lower} + log2({ptrs} entries)")
        levels = 2 + sum(not self.folded(lv) for lv in ("pmd", "pud", "p4d"))
        _require(levels == self.paging_levels,
                 f"{n}: paging_levels {self.paging_levels} but {levels} unfolded levels")
        for level, size in self.table_bytes:
            _require(level in PAGE_TABLE_LEVELS
                     and size >= self.ptrs_per(level) * self.sizeof_pte,
                     f"{n}: table_bytes {level!r}: {size} is not a level's table size")

    # --- pages -----------------------------------------------------------------------------
    @cached_property
    def PAGE_SIZE(self) -> int:
        return 1 << self.page_shift

    @cached_property
    def MAX_ORDER_NR_PAGES(self) -> int:
        """Pages in the largest buddy block (mmzone.h: 1 << (MAX_ORDER - 1) in 6.1)."""
        return 1 << self.max_page_order

    @cached_property
    def NR_PAGE_ORDERS(self) -> int:
        """Number of buddy free lists (6.8 NR_PAGE_ORDERS; 6.1 MAX_ORDER)."""
        return self.max_page_order + 1

    @cached_property
    def pageblock_nr_pages(self) -> int:
        return 1 << self.pageblock_order

    def PFN_UP(self, x: int) -> int:
        """include/linux/pfn.h:PFN_UP."""
        return (x + self.PAGE_SIZE - 1) >> self.page_shift

    def PFN_DOWN(self, x: int) -> int:
        """include/linux/pfn.h:PFN_DOWN."""
        return x >> self.page_shift

    def PFN_PHYS(self, pfn: int) -> int:
        """include/linux/pfn.h:PFN_PHYS."""
        return pfn << self.page_shift

    def PHYS_PFN(self, x: int) -> int:
        """include/linux/pfn.h:PHYS_PFN."""
        return x >> self.page_shift

    def pageblock_align(self, pfn: int) -> int:
        """pageblock-flags.h:pageblock_align (round up)."""
        return ALIGN(pfn, self.pageblock_nr_pages)

    def pageblock_aligned(self, pfn: int) -> bool:
        """pageblock-flags.h:pageblock_aligned."""
        return IS_ALIGNED(pfn, self.pageblock_nr_pages)

    def pageblock_start_pfn(self, pfn: int) -> int:
        """pageblock-flags.h:pageblock_start_pfn."""
        return ALIGN_DOWN(pfn, self.pageblock_nr_pages)

    def pageblock_end_pfn(self, pfn: int) -> int:
        """pageblock-flags.h:pageblock_end_pfn (first pfn of the next pageblock)."""
        return ALIGN(pfn + 1, self.pageblock_nr_pages)

    # --- sections --------------------------------------------------------------------------
    @cached_property
    def MIN_MEMORY_BLOCK_SIZE(self) -> int:
        """include/linux/memory.h:MIN_MEMORY_BLOCK_SIZE = one section."""
        return 1 << self.section_size_bits

    @cached_property
    def memory_block_sizes(self) -> tuple[int, ...]:
        """Every power-of-two block size from MIN_MEMORY_BLOCK_SIZE to the arch maximum."""
        sizes, bz = [], self.MIN_MEMORY_BLOCK_SIZE
        while bz <= self.max_memory_block_size:
            sizes.append(bz)
            bz <<= 1
        return tuple(sizes)

    @cached_property
    def PFN_SECTION_SHIFT(self) -> int:
        return self.section_size_bits - self.page_shift

    @cached_property
    def PAGES_PER_SECTION(self) -> int:
        return 1 << self.PFN_SECTION_SHIFT

    @cached_property
    def SECTIONS_SHIFT(self) -> int:
        """page-flags-layout.h:SECTIONS_SHIFT = MAX_PHYSMEM_BITS - SECTION_SIZE_BITS."""
        return self.max_physmem_bits - self.section_size_bits

    @cached_property
    def NR_MEM_SECTIONS(self) -> int:
        return 1 << self.SECTIONS_SHIFT

    def pfn_to_section_nr(self, pfn: int) -> int:
        """mmzone.h:pfn_to_section_nr."""
        return pfn >> self.PFN_SECTION_SHIFT

    def section_nr_to_pfn(self, nr: int) -> int:
        """mmzone.h:section_nr_to_pfn."""
        return nr << self.PFN_SECTION_SHIFT

    def SECTION_ALIGN_UP(self, pfn: int) -> int:
        return ALIGN(pfn, self.PAGES_PER_SECTION)

    def SECTION_ALIGN_DOWN(self, pfn: int) -> int:
        return ALIGN_DOWN(pfn, self.PAGES_PER_SECTION)

    @cached_property
    def SUBSECTION_SIZE(self) -> int:
        return 1 << self.subsection_shift

    @cached_property
    def PFN_SUBSECTION_SHIFT(self) -> int:
        return self.subsection_shift - self.page_shift

    @cached_property
    def PAGES_PER_SUBSECTION(self) -> int:
        return 1 << self.PFN_SUBSECTION_SHIFT

    @cached_property
    def SUBSECTIONS_PER_SECTION(self) -> int:
        return 1 << (self.section_size_bits - self.subsection_shift)

    def SUBSECTION_ALIGN_UP(self, pfn: int) -> int:
        return ALIGN(pfn, self.PAGES_PER_SUBSECTION)

    def SUBSECTION_ALIGN_DOWN(self, pfn: int) -> int:
        return ALIGN_DOWN(pfn, self.PAGES_PER_SUBSECTION)

    # --- the mem_section table (SPARSEMEM_EXTREME) -----------------------------------------
    @cached_property
    def SECTIONS_PER_ROOT(self) -> int:
        """mmzone.h: PAGE_SIZE / sizeof(struct mem_section) (1 without SPARSEMEM_EXTREME)."""
        return self.PAGE_SIZE // self.sizeof_mem_section if self.sparsemem_extreme else 1

    @cached_property
    def NR_SECTION_ROOTS(self) -> int:
        return DIV_ROUND_UP(self.NR_MEM_SECTIONS, self.SECTIONS_PER_ROOT)

    @cached_property
    def SECTION_ROOT_MASK(self) -> int:
        return self.SECTIONS_PER_ROOT - 1

    def SECTION_NR_TO_ROOT(self, nr: int) -> int:
        return nr // self.SECTIONS_PER_ROOT

    # --- mem_section_usage (mm/sparse.c) ---------------------------------------------------
    @cached_property
    def SECTION_BLOCKFLAGS_BITS(self) -> int:
        """mmzone.h: pageblock flag bits per section."""
        return (1 << (self.PFN_SECTION_SHIFT - self.pageblock_order)) * NR_PAGEBLOCK_BITS

    def BITS_TO_LONGS(self, nbits: int) -> int:
        return DIV_ROUND_UP(nbits, self.bits_per_long)

    def usemap_size(self) -> int:
        """Bytes of a section's pageblock bitmap (mm/sparse.c:usemap_size, 6.1)."""
        return self.BITS_TO_LONGS(self.SECTION_BLOCKFLAGS_BITS) * (self.bits_per_long // 8)

    def sizeof_mem_section_usage(self, *, rcu_head: bool) -> int:
        """sizeof(struct mem_section_usage) (include/linux/mmzone.h, 6.1).

        ``rcu_head``: the leading ``struct rcu_head`` (two pointers) added by the
        stable backport in 6.1.76; absent in 6.1.0..6.1.75.
        """
        pointer = self.bits_per_long // 8
        subsection_map = self.BITS_TO_LONGS(self.SUBSECTIONS_PER_SECTION) * pointer
        return (2 * pointer if rcu_head else 0) + subsection_map

    def mem_section_usage_size(self, *, rcu_head: bool) -> int:
        """Bytes kmalloc'ed per section for its usage map (mm/sparse.c:mem_section_usage_size)."""
        return self.sizeof_mem_section_usage(rcu_head=rcu_head) + self.usemap_size()

    # --- memmap ----------------------------------------------------------------------------
    def memmap_size(self, size: int) -> int:
        """Bytes of struct pages for ``size`` bytes of RAM.

        mm/memory_hotplug.c:mhp_supports_memmap_on_memory's vmemmap_size (6.1);
        memory_block_memmap_size (6.6+).
        """
        return (size // self.PAGE_SIZE) * self.struct_page_size

    def memmap_pages(self, size: int) -> int:
        """Pages of memmap for ``size`` bytes of RAM (PFN_UP of memmap_size)."""
        return self.PFN_UP(self.memmap_size(size))

    @cached_property
    def PHYS_PFN_OFFSET(self) -> int:
        """pfn whose struct page sits at VMEMMAP_START (arm64 asm/memory.h; 0 elsewhere)."""
        return self.phys_offset >> self.page_shift

    def pfn_to_page(self, pfn: int) -> int:
        """vmemmap address of ``pfn``'s struct page (asm-generic/memory_model.h:__pfn_to_page;
        arm64's ``vmemmap`` is VMEMMAP_START less memstart_addr's pfn, asm/pgtable.h)."""
        return self.vmemmap_start + (pfn - self.PHYS_PFN_OFFSET) * self.struct_page_size

    def page_to_pfn(self, page: int) -> int:
        """pfn whose struct page is at vmemmap address ``page`` (memory_model.h:__page_to_pfn)."""
        return (page - self.vmemmap_start) // self.struct_page_size + self.PHYS_PFN_OFFSET

    def phys_to_virt(self, phys: int) -> int:
        """Direct-map address of a physical address (asm/page.h:__va)."""
        return self.page_offset + phys - self.phys_offset

    def virt_to_phys(self, virt: int) -> int:
        """Physical address of a direct-map address (asm/page_64.h:__pa, direct-map case)."""
        return virt - self.page_offset + self.phys_offset

    # --- page tables -----------------------------------------------------------------------
    @cached_property
    def PMD_SIZE(self) -> int:
        return 1 << self.pmd_shift

    @cached_property
    def PUD_SIZE(self) -> int:
        return 1 << self.pud_shift

    @cached_property
    def P4D_SIZE(self) -> int:
        return 1 << self.p4d_shift

    @cached_property
    def PGDIR_SIZE(self) -> int:
        return 1 << self.pgdir_shift

    def ptrs_per(self, level: str) -> int:
        """Entries in one table of ``level`` ("pte", "pmd", "pud", "p4d", "pgd")."""
        return getattr(self, f"ptrs_per_{_level(level)}")

    def entry_shift(self, level: str) -> int:
        """log2 of the bytes one entry of a ``level`` table maps (PAGE_SHIFT for a pte)."""
        return {"pte": self.page_shift, "pmd": self.pmd_shift, "pud": self.pud_shift,
                "p4d": self.p4d_shift, "pgd": self.pgdir_shift}[_level(level)]

    def folded(self, level: str) -> bool:
        """True if the configuration folds ``level`` away (one entry: no table of its own)."""
        return self.ptrs_per(level) == 1

    def table_size(self, level: str) -> int:
        """Bytes of one page table of ``level`` (its entries, unless ``table_bytes`` says more)."""
        return dict(self.table_bytes).get(_level(level), self.ptrs_per(level) * self.sizeof_pte)

    def table_span(self, level: str) -> int:
        """Bytes of virtual address space one table of ``level`` maps."""
        return self.ptrs_per(level) << self.entry_shift(level)

    def table_index(self, level: str, addr: int) -> int:
        """Index of ``addr`` in its ``level`` table (pgtable.h:pte_index .. pgd_index)."""
        return (addr >> self.entry_shift(level)) & (self.ptrs_per(level) - 1)

    def vmemmap_table_coverage(self, level: str) -> int:
        """Bytes of RAM whose struct pages one vmemmap table of ``level`` maps."""
        return self.table_span(level) // self.struct_page_size * self.PAGE_SIZE

    def direct_map_table_coverage(self, level: str) -> int:
        """Bytes of RAM one direct-map table of ``level`` maps (the direct map is 1:1)."""
        return self.table_span(level)

    @cached_property
    def vmemmap_pmd_table_coverage(self) -> int:
        return self.vmemmap_table_coverage("pmd")

    @cached_property
    def vmemmap_pud_table_coverage(self) -> int:
        return self.vmemmap_table_coverage("pud")

    @cached_property
    def direct_map_pmd_table_coverage(self) -> int:
        return self.direct_map_table_coverage("pmd")

    @cached_property
    def direct_map_pud_table_coverage(self) -> int:
        return self.direct_map_table_coverage("pud")


def _level(level: str) -> str:
    if level not in PAGE_TABLE_LEVELS:
        raise HotplugError(errno.EINVAL, f"page-table level {level!r}: "
                           f"expected one of {', '.join(PAGE_TABLE_LEVELS)}")
    return level


# --- the generic memmap_on_memory rules ----------------------------------------------------

def mhp_memmap_alignment_ok(profile: ArchProfile, vmemmap_size: int) -> bool:
    """The arch-dependent tests of mm/memory_hotplug.c:mhp_supports_memmap_on_memory (5.13-6.5,
    read in 6.1): the block's memmap fills whole PMDs and what is left of the block
    (``vmemmap_size`` / sizeof(struct page) pages) fills whole pageblocks."""
    size = vmemmap_size // profile.struct_page_size * profile.PAGE_SIZE
    return (IS_ALIGNED(vmemmap_size, profile.PMD_SIZE)
            and IS_ALIGNED(size - vmemmap_size, profile.pageblock_nr_pages << profile.page_shift))


def memory_block_memmap_on_memory_pages(profile: ArchProfile, block_size: int, *,
                                        force: bool = False) -> int:
    """mm/memory_hotplug.c:memory_block_memmap_on_memory_pages (6.6.57, 6.8.0) for a block of
    ``block_size`` bytes: PFN_UP of its memmap, rounded up to whole pageblocks in "force"
    mode (the pages beyond the memmap are the waste set_memmap_mode reports)."""
    nr_pages = profile.memmap_pages(block_size)
    return profile.pageblock_align(nr_pages) if force else nr_pages


def memory_block_memmap_size(profile: ArchProfile, block_size: int) -> int:
    """mm/memory_hotplug.c:memory_block_memmap_size (6.6.57): bytes of struct pages of a block
    of ``block_size`` bytes."""
    return profile.memmap_size(block_size)


def board_ram_layout(m, base: int):
    """The boot RAM of a QEMU board (virt, pseries): ``e820_ranges=`` if given, else each node's
    RAM back to back from ``base``. Returns (ram ranges as (start, end, nid), reserved ranges,
    whether the layout was calibrated) as the arch boot_layout hooks do."""
    if m.e820_ranges is not None:
        ram = [(s, e, (list(r) + [0])[2]) for r in m.e820_ranges for s, e in [tuple(r)[:2]]]
        return sorted(ram), [], False
    ram, cur = [], base
    for nid in sorted(m.boot_memory):
        size = m.boot_memory[nid]
        if size:
            ram.append((cur, cur + size, nid))
            cur += size
    return ram, [], False
