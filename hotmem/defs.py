"""Definitions shared by the compiled core and its pure-Python twin: one source for both.

The kernel's constants and record layouts the core's loops need (include/linux/mmzone.h,
page-flags.h, kernel-page-flags.h, page-isolation.h, mm/page_alloc.c, arch/x86 pgtable_types.h,
arch/arm64/mm/mmu.c, Linux 6.1) and the model's struct page record and page-table geometry.
``hotmem/_py/*`` imports them from here; the compiled core (``hotmem/_core.pyx``) cimports
``hotmem/defs.pxd``, which ``setup.py`` generates from this module (``pxd_source``), so each
value is written once. tests/test_defs.py checks the .pxd and the built core against it.
"""
import errno
import operator
from dataclasses import dataclass

import numpy as np

_M64 = (1 << 64) - 1


def _einval(msg):
    # imported here: setup.py loads this file alone, without the hotmem package
    from hotmem.errors import HotplugError
    return HotplugError(errno.EINVAL, msg)


# ============================================================================ struct page, sections
#: struct page as the model stores it: page->flags, page->private (buddy order), page->_refcount,
#: and the _mapcount/page_type union. 24 bytes per simulated page.
PAGE_DTYPE = np.dtype([("flags", "<u8"), ("private", "<u8"), ("_refcount", "<i4"),
                       ("page_type", "<u4")])

# section_mem_map flag bits (include/linux/mmzone.h, 6.1 with CONFIG_ZONE_DEVICE)
SECTION_MARKED_PRESENT = 1 << 0
SECTION_HAS_MEM_MAP = 1 << 1
SECTION_IS_ONLINE = 1 << 2
SECTION_IS_EARLY = 1 << 3
SECTION_TAINT_ZONE_DEVICE = 1 << 4

# enum pageflags (include/linux/page-flags.h, 6.1; Debian amd64 config: MMU, ARCH_USES_PG_UNCACHED,
# MEMORY_FAILURE, no IDLE_PAGE_TRACKING (so no PG_young/PG_idle), no KASAN_HW_TAGS; bounds.h of
# the Debian build says NR_PAGEFLAGS 25)
(PG_locked, PG_referenced, PG_uptodate, PG_dirty, PG_lru, PG_active, PG_workingset, PG_waiters,
 PG_error, PG_slab, PG_owner_priv_1, PG_arch_1, PG_reserved, PG_private, PG_private_2,
 PG_writeback, PG_head, PG_mappedtodisk, PG_reclaim, PG_swapbacked, PG_unevictable, PG_mlocked,
 PG_uncached, PG_hwpoison, PG_arch_2, NR_PAGEFLAGS) = range(26)
#: PageVmemmapSelfHosted aliases PG_owner_priv_1 (6.0+, include/linux/page-flags.h)
PG_vmemmap_self_hosted = PG_owner_priv_1

# page_type (include/linux/page-flags.h, 6.1): a type is set by *clearing* its bit
PAGE_TYPE_BASE = 0xF0000000
PAGE_MAPCOUNT_RESET = 0xFFFFFFFF  # _mapcount = -1
PG_buddy = 0x00000080
PG_offline = 0x00000100
PG_table = 0x00000200
PG_guard = 0x00000400

# enum migratetype (include/linux/mmzone.h, 6.1, no CMA)
MIGRATE_UNMOVABLE = 0
MIGRATE_MOVABLE = 1
MIGRATE_RECLAIMABLE = 2
MIGRATE_PCPTYPES = 3
MIGRATE_HIGHATOMIC = 3
MIGRATE_ISOLATE = 4
MIGRATE_TYPES = 5
PB_migratetype_mask = 0x7  # PB_migratetype_bits = 3
PB_migrate_skip = 0x8


# ==================================================================== page allocator (6.1)
# include/linux/mmzone.h (6.1, CONFIG_TRANSPARENT_HUGEPAGE=y)
PAGE_ALLOC_COSTLY_ORDER = 3
NR_LOWORDER_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1)
NR_PCP_THP = 2
NR_PCP_LISTS = NR_LOWORDER_PCP_LISTS + NR_PCP_THP
PCP_BATCH_SCALE_MAX = 5          # mm/Kconfig CONFIG_PCP_BATCH_SCALE_MAX default (6.1.y)
BOOT_PAGESET_HIGH = 0
BOOT_PAGESET_BATCH = 1
ALLOC_NOFRAGMENT = 0x100         # mm/internal.h
FPI_NONE = 0
FPI_TO_TAIL = 1 << 1             # mm/page_alloc.c

#: mm/page_alloc.c:fallbacks[] (6.1), MIGRATE_TYPES terminators dropped
FALLBACKS = {
    MIGRATE_UNMOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE),
    MIGRATE_MOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE),
    MIGRATE_RECLAIMABLE: (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE),
}

# include/linux/page-flags.h (6.1; no LRU_GEN bits in the model's page->flags)
PAGE_FLAGS_CHECK_AT_FREE = ((1 << PG_lru) | (1 << PG_locked) | (1 << PG_private)
                            | (1 << PG_private_2) | (1 << PG_writeback) | (1 << PG_reserved)
                            | (1 << PG_slab) | (1 << PG_active) | (1 << PG_unevictable)
                            | (1 << PG_mlocked))
PAGE_FLAGS_CHECK_AT_PREP = ((1 << NR_PAGEFLAGS) - 1) & ~(1 << PG_hwpoison)

#: the model's bound on a zoneid (page_zone_id: nid << ZONES_WIDTH | zone_idx)
MAX_ZONEID = 1 << 40

# =============================================================== /proc/kpageflags, isolation
# include/uapi/linux/kernel-page-flags.h and include/linux/kernel-page-flags.h (6.1)
(KPF_LOCKED, KPF_ERROR, KPF_REFERENCED, KPF_UPTODATE, KPF_DIRTY, KPF_LRU, KPF_ACTIVE, KPF_SLAB,
 KPF_WRITEBACK, KPF_RECLAIM, KPF_BUDDY, KPF_MMAP, KPF_ANON, KPF_SWAPCACHE, KPF_SWAPBACKED,
 KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL, KPF_HUGE, KPF_UNEVICTABLE, KPF_HWPOISON, KPF_NOPAGE,
 KPF_KSM, KPF_THP, KPF_OFFLINE, KPF_ZERO_PAGE, KPF_IDLE, KPF_PGTABLE) = range(27)
(KPF_RESERVED, KPF_MLOCKED, KPF_MAPPEDTODISK, KPF_PRIVATE, KPF_PRIVATE_2, KPF_OWNER_PRIVATE,
 KPF_ARCH, KPF_UNCACHED, KPF_SOFTDIRTY, KPF_ARCH_2) = range(32, 42)

# include/linux/page-isolation.h (6.1)
MEMORY_OFFLINE = 0x1
REPORT_FAILURE = 0x2

# include/linux/page-flags.h (6.1): a _mapcount below this is a page type, not a map count
PAGE_MAPCOUNT_RESERVE = -128

# (KPF bit, PG bit) pairs copied straight from page->flags by stable_page_flags
STABLE_PAGE_FLAGS_COPY = (
    (KPF_LOCKED, PG_locked), (KPF_SLAB, PG_slab), (KPF_ERROR, PG_error),
    (KPF_DIRTY, PG_dirty), (KPF_UPTODATE, PG_uptodate), (KPF_WRITEBACK, PG_writeback),
    (KPF_LRU, PG_lru), (KPF_REFERENCED, PG_referenced), (KPF_ACTIVE, PG_active),
    (KPF_RECLAIM, PG_reclaim), (KPF_SWAPBACKED, PG_swapbacked),
    (KPF_UNEVICTABLE, PG_unevictable), (KPF_MLOCKED, PG_mlocked),
    (KPF_HWPOISON, PG_hwpoison), (KPF_UNCACHED, PG_uncached), (KPF_RESERVED, PG_reserved),
    (KPF_MAPPEDTODISK, PG_mappedtodisk), (KPF_PRIVATE, PG_private),
    (KPF_PRIVATE_2, PG_private_2), (KPF_OWNER_PRIVATE, PG_owner_priv_1),
    (KPF_ARCH, PG_arch_1), (KPF_ARCH_2, PG_arch_2), (KPF_COMPOUND_HEAD, PG_head),
)

# ============================================================================== page tables
# arch/x86/include/asm/pgtable_types.h (6.1); SME/encryption (_ENC) bits left out.
_PAGE_PRESENT = 1 << 0
_PAGE_RW = 1 << 1
_PAGE_USER = 1 << 2
_PAGE_PWT = 1 << 3
_PAGE_PCD = 1 << 4
_PAGE_ACCESSED = 1 << 5
_PAGE_DIRTY = 1 << 6
_PAGE_PSE = 1 << 7
_PAGE_GLOBAL = 1 << 8
_PAGE_PROTNONE = _PAGE_GLOBAL
_PAGE_NX = 1 << 63
_PAGE_KNL_ERRATUM_MASK = _PAGE_DIRTY | _PAGE_ACCESSED
PAGE_KERNEL = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_NX | _PAGE_DIRTY | _PAGE_GLOBAL
PAGE_KERNEL_LARGE = PAGE_KERNEL | _PAGE_PSE
_KERNPG_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY
_PAGE_TABLE = _KERNPG_TABLE | _PAGE_USER      # what p?d_populate() writes (asm/pgalloc.h)
__PHYSICAL_MASK = (1 << 52) - 1
PTE_PFN_MASK = __PHYSICAL_MASK & ~0xFFF
PHYSICAL_PMD_PAGE_MASK = __PHYSICAL_MASK & ~((1 << 21) - 1)
PHYSICAL_PUD_PAGE_MASK = __PHYSICAL_MASK & ~((1 << 30) - 1)
PAGE_UNUSED = 0xFD
# arch/x86/include/asm/page_64_types.h, pgtable_64_types.h (nokaslr values)
__PAGE_OFFSET_BASE_L4 = 0xFFFF888000000000
__PAGE_OFFSET_BASE_L5 = 0xFF11000000000000
__VMEMMAP_BASE_L4 = 0xFFFFEA0000000000
__VMEMMAP_BASE_L5 = 0xFFD4000000000000
PGTABLE_LEVEL_NAMES = ("PGD", "P4D", "PUD", "PMD", "PTE")
# unmangled aliases for use inside the class body
_PAGE_OFFSET_L4, _PAGE_OFFSET_L5 = __PAGE_OFFSET_BASE_L4, __PAGE_OFFSET_BASE_L5
_VMEMMAP_BASE_L4, _VMEMMAP_BASE_L5 = __VMEMMAP_BASE_L4, __VMEMMAP_BASE_L5
# arch/arm64/mm/mmu.c (6.1): the flags of __create_pgd_mapping
NO_BLOCK_MAPPINGS = 1 << 0
NO_CONT_MAPPINGS = 1 << 1
NO_EXEC_MAPPINGS = 1 << 2
#: Largest table the model stores (arm64 64K pages: 8192 entries, powerpc radix 64K PGD: 8192).
MAX_TABLE_ENTRIES = 8192

PTE_FLAGS_MASK = _M64 & ~PTE_PFN_MASK
PAGE_SIZE = 1 << 12                    # x86-64 (the x86 walks below are 4 KiB-page code)
PMD_SIZE = 1 << 21
PUD_SIZE = 1 << 30
P4D_SHIFT = 39
STRUCT_PAGE_MAX_SHIFT = 6              # sizeof(struct page) = 64: memset granule
VMEMMAP_CHUNKS_PER_PMD = PMD_SIZE >> STRUCT_PAGE_MAX_SHIFT
# enum pg_level (arch/x86/include/asm/pgtable_types.h): page_size_mask holds 1 << PG_LEVEL_*
PG_LEVEL_NONE, PG_LEVEL_4K, PG_LEVEL_2M, PG_LEVEL_1G = range(4)
PGTABLE_LEVEL_ID = {n: i for i, n in enumerate(PGTABLE_LEVEL_NAMES)}
DIRECT_PAGES_COUNT_INDEX = {"4K": 0, "2M": 1, "1G": 2}
PGT_PHYS_BITS = 52                     # the model's entries hold 52-bit physical addresses
PGT_MAX_PFN = 1 << 40                  # x86: __PHYSICAL_MASK_SHIFT 52


@dataclass(frozen=True)
class PageTableGeometry:
    """The shape of a kernel page table: what ``PageTables(geometry=...)`` walks.

    ``levels``: the unfolded levels from the top, each ``(name, shift, ptrs)`` -- the level's
    name ("PGD", "P4D", "PUD", "PMD", "PTE"), the log2 of the bytes one of its entries maps
    (PGDIR_SHIFT .. PAGE_SHIFT) and its entries per table (PTRS_PER_*). The first level is the
    PGD, the last the PTE; a folded level is left out. ``page_shift`` is PAGE_SHIFT (a table is
    one page of the model whatever its size). Bases: ``page_offset``/``page_end`` bound the
    direct (linear) map, ``vmemmap_start``/``vmemmap_end`` the vmemmap (the floor and ceiling of
    arm64's free_empty_tables), ``kernel_va_start`` is the lowest address the model accepts,
    ``max_physmem_bits`` MAX_PHYSMEM_BITS. ``arch`` picks which kernel code applies: "x86_64"
    (the x86 methods), "arm64" (the ``arm64_*`` methods) or anything else (generic walks only).
    """

    name: str
    arch: str
    page_shift: int
    levels: tuple
    page_offset: int
    page_end: int
    vmemmap_start: int
    vmemmap_end: int
    kernel_va_start: int
    max_physmem_bits: int

    def __post_init__(self):
        bad = f"geometry {self.name!r}"
        try:
            levels = tuple((str(n), operator.index(s), operator.index(p))
                           for n, s, p in self.levels)
        except (TypeError, ValueError):
            raise _einval(f"{bad}: levels must be (name, shift, ptrs) triples") from None
        object.__setattr__(self, "levels", levels)
        if not 2 <= len(levels) <= 5:
            raise _einval(f"{bad}: {len(levels)} levels, expected 2..5")
        names = [n for n, _, _ in levels]
        if names[0] != "PGD" or names[-1] != "PTE" or \
                any(n not in PGTABLE_LEVEL_ID for n in names) or \
                [PGTABLE_LEVEL_ID[n] for n in names] != \
                sorted({PGTABLE_LEVEL_ID[n] for n in names}):
            raise _einval(f"{bad}: level names {names} must run PGD .. PTE in order")
        if not 9 <= self.page_shift <= 16 or levels[-1][1] != self.page_shift:
            raise _einval(f"{bad}: PTE shift {levels[-1][1]} must be PAGE_SHIFT {self.page_shift}"
                          " (9..16)")
        for d, (n, s, p) in enumerate(levels):
            if p < 1 or p & (p - 1) or p > MAX_TABLE_ENTRIES:
                raise _einval(f"{bad}: {n} has {p} entries: a power of two up to "
                              f"{MAX_TABLE_ENTRIES}")
            if d + 1 < len(levels):
                below = levels[d + 1]
                if s != below[1] + below[2].bit_length() - 1:
                    raise _einval(f"{bad}: {n} shift {s} != {below[0]} shift {below[1]} + "
                                  f"log2({below[2]} entries)")
        if levels[0][1] + levels[0][2].bit_length() - 1 > 64:
            raise _einval(f"{bad}: the PGD maps more than 64 bits")
        for f in ("page_offset", "page_end", "vmemmap_start", "vmemmap_end", "kernel_va_start"):
            v = getattr(self, f)
            if not isinstance(v, int) or not 0 <= v <= _M64 or v & ((1 << self.page_shift) - 1):
                raise _einval(f"{bad}: {f} {v!r} is not a page-aligned 64-bit address")
        if not (self.page_offset < self.page_end or self.page_end == 0) or \
                not (self.vmemmap_start < self.vmemmap_end or self.vmemmap_end == 0):
            raise _einval(f"{bad}: empty linear map or vmemmap range")
        if not self.page_shift < self.max_physmem_bits <= PGT_PHYS_BITS:
            raise _einval(f"{bad}: max_physmem_bits {self.max_physmem_bits} outside "
                          f"{self.page_shift + 1}..{PGT_PHYS_BITS}")
        # what PageTables needs, computed once: (shifts, masks, level ids, ptrs per level id,
        # widest table, PMD_SHIFT, PUD_SHIFT)
        lid_ptrs = [0] * 5
        for n, _, p in levels:
            lid_ptrs[PGTABLE_LEVEL_ID[n]] = p
        object.__setattr__(self, "_layout", (
            tuple(s for _, s, _ in levels), tuple(p - 1 for _, _, p in levels),
            tuple(PGTABLE_LEVEL_ID[n] for n, _, _ in levels), tuple(lid_ptrs),
            max(p for _, _, p in levels), self.shift_of("PMD"), self.shift_of("PUD")))

    @property
    def nr_levels(self):
        return len(self.levels)

    def shift_of(self, level):
        """log2 of the bytes one entry of ``level`` maps; a folded level takes the shift of the
        nearest unfolded level above it (asm-generic/pgtable-nop*.h: PMD_SHIFT = PUD_SHIFT ...)."""
        lid = PGTABLE_LEVEL_ID[level]
        return [s for n, s, _ in self.levels if PGTABLE_LEVEL_ID[n] <= lid][-1]

    def ptrs_of(self, level):
        """Entries per table of ``level`` (1 if folded)."""
        for n, _, p in self.levels:
            if n == level:
                return p
        return 1

    @classmethod
    def x86_64(cls, levels=4):
        """x86-64 4- or 5-level paging (arch/x86/include/asm/pgtable_64_types.h, 6.1, nokaslr):
        512 entries per table; direct map 64 TiB / 32 PiB, vmemmap 1 TiB / 512 TiB of VA."""
        if levels == 4:
            return cls("x86_64-4level", "x86_64", 12,
                       (("PGD", 39, 512), ("PUD", 30, 512), ("PMD", 21, 512), ("PTE", 12, 512)),
                       _PAGE_OFFSET_L4, _PAGE_OFFSET_L4 + (1 << 46), _VMEMMAP_BASE_L4,
                       _VMEMMAP_BASE_L4 + (1 << 40), 0xFFFF800000000000, 46)
        if levels == 5:
            return cls("x86_64-5level", "x86_64", 12,
                       (("PGD", 48, 512), ("P4D", 39, 512), ("PUD", 30, 512), ("PMD", 21, 512),
                        ("PTE", 12, 512)),
                       _PAGE_OFFSET_L5, _PAGE_OFFSET_L5 + (1 << 55), _VMEMMAP_BASE_L5,
                       _VMEMMAP_BASE_L5 + (1 << 49), 0xFF00000000000000, 52)
        raise _einval(f"paging levels {levels!r}: x86-64 has 4 or 5")


X86_GEOMETRY = {4: PageTableGeometry.x86_64(4), 5: PageTableGeometry.x86_64(5)}


def pgtable_geometry_for(levels, geometry):
    """The geometry PageTables(levels, pgd_pfn, geometry) describes (x86-64 by default)."""
    if geometry is None:
        if levels not in (4, 5):
            raise _einval(f"paging levels {levels!r}: x86-64 has 4 or 5")
        return X86_GEOMETRY[levels]
    if not isinstance(geometry, PageTableGeometry):
        raise _einval(f"geometry {geometry!r} is not a PageTableGeometry")
    if levels != geometry.nr_levels:
        raise _einval(f"paging levels {levels!r}: geometry {geometry.name!r} has "
                      f"{geometry.nr_levels}")
    if geometry.arch == "x86_64" and geometry != X86_GEOMETRY.get(levels):
        raise _einval(f"geometry {geometry.name!r}: an x86_64 geometry must be "
                      "PageTableGeometry.x86_64(4 or 5)")
    return geometry


# ================================================================= the C face: hotmem/defs.pxd
_C_TYPES = {"<u8": "uint64_t", "<i8": "int64_t", "<u4": "uint32_t", "<i4": "int32_t",
            "<u2": "uint16_t", "<i2": "int16_t", "|u1": "uint8_t", "|i1": "int8_t"}


#: module-private helpers and class-body aliases, not definitions of their own
_PY_ONLY = {"_M64", "_PAGE_OFFSET_L4", "_PAGE_OFFSET_L5", "_VMEMMAP_BASE_L4", "_VMEMMAP_BASE_L5"}


def c_constants():
    """(name, value) of every integer definition of this module, in order: the constants
    hotmem/defs.pxd declares for the compiled core (dunder names have no C use and are left out)."""
    return [(k, v) for k, v in globals().items()
            if type(v) is int and not k.startswith("__") and k not in _PY_ONLY
            and -(1 << 63) <= v <= _M64]


def pxd_source():
    """The text of hotmem/defs.pxd: every integer definition as a C constant of the same name
    (an enum when it fits an int, so it can size arrays; else a 64-bit const), ``page_t`` laid
    out as PAGE_DTYPE, and the tables ``_core.c_defs()`` reads back for tests/test_defs.py."""
    consts = c_constants()
    c, decl = [], []
    for k, v in consts:
        if 0 <= v < 1 << 31:
            c.append(f"#define HOTMEM_{k} {v}")
            decl.append(f"    enum: {k} \"HOTMEM_{k}\"")
        elif v < 0:
            c.append(f"#define HOTMEM_{k} ({v}LL)")
            decl.append(f"    const int64_t {k} \"HOTMEM_{k}\"")
        else:
            c.append(f"#define HOTMEM_{k} {v:#x}ULL")
            decl.append(f"    const uint64_t {k} \"HOTMEM_{k}\"")
    names = "".join(f'\n        "{k}",' for k, _ in consts)
    values = "".join(f"\n        (unsigned long long) HOTMEM_{k}," for k, _ in consts)
    fields = [f"    {_C_TYPES[PAGE_DTYPE.fields[n][0].str]} {n}" for n in PAGE_DTYPE.names]
    lines = [
        "# Generated from hotmem/defs.py by setup.py (hotmem.defs.pxd_source()): do not edit.",
        "# The C face of hotmem.defs for the compiled core: cimport hotmem.defs as D.",
        "from libc.stdint cimport int8_t, int16_t, int32_t, int64_t",
        "from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t",
        "",
        "cdef extern from *:",
        '    """',
        *(f"    {x}" for x in c),
        f"    #define HOTMEM_NR_DEFS {len(consts)}",
        f"    static const char *const hotmem_defs_names[] = {{{names}\n    }};",
        f"    static const unsigned long long hotmem_defs_values[] = {{{values}\n    }};",
        '    """',
        *decl,
        '    enum: NR_DEFS "HOTMEM_NR_DEFS"',
        '    const char *const DEFS_NAMES "hotmem_defs_names"[]',
        '    const unsigned long long DEFS_VALUES "hotmem_defs_values"[]',
        "",
        "# struct page as the model stores it (PAGE_DTYPE)",
        "ctypedef struct page_t:",
        *fields,
        "",
    ]
    return "\n".join(lines)

