"""init_mm's kernel page tables, Linux 6.1: pure-Python twin of hotmem/_cy/pgtable.pxi.

Every table is a physical page of the model: its pfn comes from a caller-supplied allocator and
its entries are kept in the model's own encoding, x86-style ``(pfn << PAGE_SHIFT) | flags``
(present, PSE = leaf above the PTE level; page-table contents are not observable, only which
tables exist, what they map and who pays for them). Storage: a growable [slot, width] uint64
array of entries (width = the largest table of the geometry; a table of a smaller level uses the
first PTRS_PER_<level> entries of its row), a parallel int32 array of child-table slots (-1: none
or a leaf), slot -> pfn / level arrays and a pfn -> slot map. Free slots are reused lowest first.

Geometry: ``PageTables(levels, pgd_pfn)`` is x86-64 with 4- or 5-level paging, as before;
``PageTables(levels, pgd_pfn, geometry=g)`` takes any :class:`PageTableGeometry` (arm64 4K/16K/64K,
powerpc radix 64K, ...): per unfolded level its name, entry shift and entries per table, plus the
address bases. A folded level simply is not listed (asm-generic/pgtable-nop4d.h, -nopud.h,
-nopmd.h): the entry above it points straight at the table below.

x86 code (arch/x86/mm/init_64.c, 6.1): vmemmap_populate_hugepages with the sub-PMD bookkeeping,
remove_pagetable, kernel_physical_mapping_init, the DirectMap counters. Sub-PMD bookkeeping: the
static ``unused_pmd_start`` and, per PMD leaf, which bytes hold PAGE_UNUSED (0xFD). Every memset
the kernel does there starts and ends on a multiple of 64 (page-aligned ranges and the one
``sizeof(struct page)`` = 64 bytes zeroed by __vmemmap_use_sub_pmd), so one flag per 64-byte chunk
(32768 per 2 MiB) is exact. A freshly allocated 2 MiB block is taken to hold no 0xFD byte (buddy
pages are zeroed with init_on_alloc; altmap memory is treated the same); a record lives as long
as its PMD leaf.

arm64 code (arch/arm64/mm/mmu.c, 6.1): vmemmap_populate, __create_pgd_mapping as
arch_add_memory calls it, unmap_hotplug_range, free_empty_tables, vmemmap_free and
__remove_pgd_mapping, as the ``arm64_*`` methods. Contiguous-bit (PTE_CONT) hints are not
modelled: they change no table and no page, only TLB behaviour. arm64 keeps no DirectMap
counters (no arch_report_meminfo), so the linear map counts nothing.
"""
import errno as _errno
import heapq
import operator

import numpy as np

from hotmem.defs import (  # noqa: F401  (re-exported: see __all__)
    DIRECT_PAGES_COUNT_INDEX, _KERNPG_TABLE, MAX_TABLE_ENTRIES, NO_BLOCK_MAPPINGS,
    NO_CONT_MAPPINGS, NO_EXEC_MAPPINGS, P4D_SHIFT, PageTableGeometry, _PAGE_ACCESSED,
    _PAGE_DIRTY, _PAGE_GLOBAL, PAGE_KERNEL, PAGE_KERNEL_LARGE, _PAGE_KNL_ERRATUM_MASK, _PAGE_NX,
    _PAGE_PCD, _PAGE_PRESENT, _PAGE_PROTNONE, _PAGE_PSE, _PAGE_PWT, _PAGE_RW, PAGE_SIZE,
    _PAGE_TABLE, PAGE_UNUSED, _PAGE_USER, pgtable_geometry_for, PGTABLE_LEVEL_ID,
    PGTABLE_LEVEL_NAMES, PGT_MAX_PFN, PGT_PHYS_BITS, PG_LEVEL_1G, PG_LEVEL_2M,
    PHYSICAL_PMD_PAGE_MASK, PHYSICAL_PUD_PAGE_MASK, PMD_SIZE, PTE_FLAGS_MASK, PTE_PFN_MASK,
    PUD_SIZE, STRUCT_PAGE_MAX_SHIFT, VMEMMAP_CHUNKS_PER_PMD,
)
from hotmem.defs import __PAGE_OFFSET_BASE_L4  # noqa: F401
from hotmem.defs import __PAGE_OFFSET_BASE_L5  # noqa: F401
from hotmem.defs import __VMEMMAP_BASE_L4  # noqa: F401
from hotmem.defs import __VMEMMAP_BASE_L5  # noqa: F401
from hotmem.errors import HotplugError

_M64 = (1 << 64) - 1

__all__ = [
    "PageTables", "PageTableGeometry",
    "_PAGE_PRESENT", "_PAGE_RW", "_PAGE_USER", "_PAGE_PWT", "_PAGE_PCD", "_PAGE_ACCESSED",
    "_PAGE_DIRTY", "_PAGE_PSE", "_PAGE_GLOBAL", "_PAGE_PROTNONE", "_PAGE_NX",
    "_PAGE_KNL_ERRATUM_MASK", "PAGE_KERNEL", "PAGE_KERNEL_LARGE", "_KERNPG_TABLE", "_PAGE_TABLE",
    "PTE_PFN_MASK", "PHYSICAL_PMD_PAGE_MASK", "PHYSICAL_PUD_PAGE_MASK", "PAGE_UNUSED",
    "__PAGE_OFFSET_BASE_L4", "__PAGE_OFFSET_BASE_L5", "__VMEMMAP_BASE_L4", "__VMEMMAP_BASE_L5",
    "PGTABLE_LEVEL_NAMES", "NO_BLOCK_MAPPINGS", "NO_CONT_MAPPINGS", "NO_EXEC_MAPPINGS",
    "MAX_TABLE_ENTRIES",
]

def _einval(msg):
    return HotplugError(_errno.EINVAL, msg)


def _addr_end(addr, end, shift):
    """include/linux/pgtable.h:p?d_addr_end: next boundary of 1 << shift, or end."""
    boundary = ((addr + (1 << shift)) & _M64) & ~((1 << shift) - 1)
    return boundary if ((boundary - 1) & _M64) < ((end - 1) & _M64) else end


def _entry_none(val):
    """pud_none/pmd_none/pte_none/p4d_none (x86, 6.1): stray A/D bits do not count."""
    return (val & ~_PAGE_KNL_ERRATUM_MASK) == 0


def _as_ints(a, b, what):
    try:
        return operator.index(a), operator.index(b)
    except TypeError:
        raise _einval(f"{what}: addresses must be integers, not {a!r}, {b!r}") from None


def _is_callable_or_none(f):
    return f is None or callable(f)


def _pgtable_range_aligned(start, end, floor, ceiling, mask):
    """arch/arm64/mm/mmu.c:pgtable_range_aligned (6.1): the span of the table (start & mask) lies
    at or above floor and the range ends at or below ceiling & mask (ceiling 0: no limit)."""
    start &= mask
    if start < floor:
        return False
    if ceiling:
        ceiling &= mask
        if not ceiling:
            return False
    return ((end - 1) & _M64) <= ((ceiling - 1) & _M64)


class PageTables:
    """Models init_mm.pgd and the kernel page-table code of Linux 6.1 (x86-64 and arm64).

    ``PageTables(levels, pgd_pfn)``: x86-64 4- or 5-level paging, the PGD page being the model
    page ``pgd_pfn``. With 4 levels the P4D is folded: a PGD entry points straight at a PUD table.
    ``PageTables(levels, pgd_pfn, geometry=g)``: any :class:`PageTableGeometry` with ``levels``
    unfolded levels.
    Callbacks: ``alloc_table(level_name, node) -> pfn | -1`` (a zeroed table page of that level),
    ``alloc_block(nr_pages, node) -> first pfn | -1`` (vmemmap_alloc_block_buf; 512 for an x86 PMD
    leaf, 1 for a base page), ``free_table(pfn, level_name)`` (free_pagetable of a table page),
    ``free_data(pfn, nr_pages)`` (free_pagetable / free_hugepage_table of mapped data).
    The hot-plug paths pass the sources of a :class:`PgtableAllocator` (hotmem/_py/pgalloc.py) as
    the allocators, which the compiled walks call in C; boot passes Python callables (memblock).
    """

    def __init__(self, levels, pgd_pfn, geometry=None):
        g = pgtable_geometry_for(levels, geometry)
        max_pfn = 1 << (PGT_PHYS_BITS - g.page_shift)
        if not 0 <= pgd_pfn < max_pfn:
            raise _einval(f"pgd pfn {pgd_pfn:#x} outside the 52-bit physical space")
        self.geometry = g
        self.levels = levels
        self.pgd_pfn = pgd_pfn
        self.page_shift = g.page_shift
        self.page_offset = g.page_offset
        self.vmemmap_start = g.vmemmap_start
        self.max_physmem_bits = g.max_physmem_bits
        self._kernel_va_start = g.kernel_va_start
        self._x86 = g.arch == "x86_64"
        (self._shifts, self._masks, self._lids, self._lid_ptrs, self._width, self._pmd_shift,
         self._pud_shift) = g._layout
        self._page_size = 1 << g.page_shift
        self._pfn_mask = ((1 << PGT_PHYS_BITS) - 1) & ~(self._page_size - 1)
        self._max_pfn = max_pfn
        self._va_top = _M64 & ~(self._page_size - 1)
        self.pgdir_shift = self._shifts[0]
        self._nlev = levels
        cap = 16
        self._ent = np.zeros((cap, self._width), np.uint64)
        self._child = np.full((cap, self._width), -1, np.int32)
        self._pfn = np.full(cap, -1, np.int64)
        self._lvl = np.full(cap, -1, np.int8)
        self._slot_of = {}
        self._free_slots = []
        self._nr_slots = 0
        self._count = [0, 0, 0]
        self._unused_pmd_start = 0
        self._unused = {}
        self._frees = []                   # (0, pfn, nr_pages) / (1, pfn, level id)
        self._new_table(pgd_pfn, 0)

    # ------------------------------------------------------------------ table pages
    def _new_table(self, pfn, lid):
        if not 0 <= pfn < self._max_pfn:
            raise RuntimeError(f"table allocator returned pfn {pfn:#x}")
        if pfn in self._slot_of:
            raise RuntimeError(f"table allocator returned pfn {pfn:#x}, already a page table")
        if self._free_slots:
            slot = heapq.heappop(self._free_slots)
        else:
            slot = self._nr_slots
            self._nr_slots += 1
            cap = self._pfn.shape[0]
            if slot >= cap:
                ent = np.zeros((2 * cap, self._width), np.uint64)
                ent[:cap] = self._ent
                child = np.full((2 * cap, self._width), -1, np.int32)
                child[:cap] = self._child
                pfns = np.full(2 * cap, -1, np.int64)
                pfns[:cap] = self._pfn
                lvl = np.full(2 * cap, -1, np.int8)
                lvl[:cap] = self._lvl
                self._ent, self._child, self._pfn, self._lvl = ent, child, pfns, lvl
        self._pfn[slot] = pfn
        self._lvl[slot] = lid
        self._slot_of[pfn] = slot
        return slot

    def _release_table(self, slot):
        del self._slot_of[int(self._pfn[slot])]
        self._ent[slot] = 0
        self._child[slot] = -1
        self._pfn[slot] = -1
        self._lvl[slot] = -1
        heapq.heappush(self._free_slots, slot)

    def _link(self, slot, i, child):
        """p?d_populate(): point entry i of table ``slot`` at table ``child`` (_PAGE_TABLE)."""
        self._ent[slot, i] = (int(self._pfn[child]) << self.page_shift) | _PAGE_TABLE
        self._child[slot, i] = child

    def _clear(self, slot, i):
        self._ent[slot, i] = 0
        self._child[slot, i] = -1

    def _table_empty(self, slot):
        n = self._lid_ptrs[int(self._lvl[slot])]
        return not np.any(self._ent[slot, :n] & np.uint64(_M64 & ~_PAGE_KNL_ERRATUM_MASK))

    def _alloc_low_page(self, lid, node, alloc_table):
        """arch/x86/mm/init.c:alloc_low_page after boot (GFP_ATOMIC | __GFP_ZERO)."""
        pfn = operator.index(alloc_table(PGTABLE_LEVEL_NAMES[lid], node))
        if pfn < 0:
            # 6.1 does not check: the phys_*_init below it dereferences NULL (oops).
            raise HotplugError(_errno.ENOMEM, f"alloc_low_page for a {PGTABLE_LEVEL_NAMES[lid]} "
                               "table failed: 6.1 would oops on the NULL table")
        return self._new_table(pfn, lid)

    def _update_page_count(self, k, pages):
        """arch/x86/mm/pat/set_memory.c:update_page_count: unsigned long, wraps."""
        self._count[k] = (self._count[k] + pages) & _M64

    def _require_arch(self, arch, what):
        if self.geometry.arch != arch:
            raise _einval(f"{what}: {arch} page-table code on the {self.geometry.name} geometry")

    # ------------------------------------------------------------------ argument checks
    def _check_va_range(self, start, end, what):
        start, end = _as_ints(start, end, what)
        pm = self._page_size - 1
        if start & pm:
            raise _einval(f"{what}: start {start:#x} not page-aligned")
        if end & pm:
            raise _einval(f"{what}: end {end:#x} not page-aligned")
        if end <= start:
            raise _einval(f"{what}: end {end:#x} <= start {start:#x}")
        if start < self._kernel_va_start or end > self._va_top:
            raise _einval(f"{what}: [{start:#x}, {end:#x}) outside the kernel half of the "
                          f"{self.levels}-level address space")
        return start, end

    def _scan(self, start, end):
        """Leaves and tables met at PUD level and above (bit 0), PMD leaves (bit 1) and PMD
        tables (bit 2) over [start, end), existing tables only. "PMD" is the level above the
        PTE tables (depth levels - 2)."""
        found = 0
        pmd_depth = self._nlev - 2
        stack = [(0, 0, start, end)]
        while stack:
            slot, d, lo, hi = stack.pop()
            sh = self._shifts[d]
            mask = self._masks[d]
            addr = lo
            while addr < hi:
                nxt = _addr_end(addr, hi, sh)
                i = (addr >> sh) & mask
                e = int(self._ent[slot, i])
                c = int(self._child[slot, i])
                if not _entry_none(e):
                    if d < pmd_depth:
                        if c < 0:
                            found |= 1
                        else:
                            stack.append((c, d + 1, addr, nxt))
                    elif c < 0:
                        found |= 2
                    else:
                        found |= 4
                addr = nxt
        return found

    # ------------------------------------------------------------------ sub-PMD vmemmap
    def _pmd_leaf_at(self, va):
        slot = 0
        for d in range(self._nlev - 2):
            i = (va >> self._shifts[d]) & self._masks[d]
            slot = int(self._child[slot, i])
            if slot < 0:
                return False
        i = (va >> 21) & 511
        e = int(self._ent[slot, i])
        return not _entry_none(e) and bool(e & _PAGE_PSE)
    def _memset_vmemmap(self, start, end, unused):
        """memset(start, PAGE_UNUSED or 0, end - start) inside one PMD leaf, in 64-byte chunks.
        Writes to anything but a PMD leaf are not tracked (no check ever reads them)."""
        if end <= start:
            return
        pmd_va = start & ~(PMD_SIZE - 1)
        if not self._pmd_leaf_at(pmd_va):
            return
        rec = self._unused.get(pmd_va)
        if rec is None:
            if not unused:
                return
            rec = self._unused[pmd_va] = np.zeros(VMEMMAP_CHUNKS_PER_PMD, np.uint8)
        rec[(start - pmd_va) >> STRUCT_PAGE_MAX_SHIFT:(end - pmd_va) >> STRUCT_PAGE_MAX_SHIFT] = 1 if unused else 0

    def _drop_unused(self, pmd_va):
        self._unused.pop(pmd_va, None)

    def _vmemmap_flush_unused_pmd(self):
        """arch/x86/mm/init_64.c:vmemmap_flush_unused_pmd (6.1)."""
        u = self._unused_pmd_start
        if not u:
            return
        self._memset_vmemmap(u, (u + PMD_SIZE - 1) & ~(PMD_SIZE - 1) & _M64, True)
        self._unused_pmd_start = 0

    def _vmemmap_pmd_is_unused(self, addr, end):
        """arch/x86/mm/init_64.c:vmemmap_pmd_is_unused (6.1)."""
        start = addr & ~(PMD_SIZE - 1)
        self._vmemmap_flush_unused_pmd()
        self._memset_vmemmap(addr, end, True)
        rec = self._unused.get(start)
        return rec is not None and bool(rec.all())

    def _vmemmap_mark_sub_pmd_used(self, start):
        """arch/x86/mm/init_64.c:__vmemmap_use_sub_pmd (6.1): zero one struct page at start."""
        self._memset_vmemmap(start, start + (1 << STRUCT_PAGE_MAX_SHIFT), False)

    def _vmemmap_use_sub_pmd(self, start, end):
        """arch/x86/mm/init_64.c:vmemmap_use_sub_pmd (6.1)."""
        if self._unused_pmd_start == start:
            self._unused_pmd_start = 0 if not end & (PMD_SIZE - 1) else end
            return
        self._vmemmap_flush_unused_pmd()
        self._vmemmap_mark_sub_pmd_used(start)

    def _vmemmap_use_new_sub_pmd(self, start, end):
        """arch/x86/mm/init_64.c:vmemmap_use_new_sub_pmd (6.1)."""
        page = start & ~(PMD_SIZE - 1)
        self._vmemmap_flush_unused_pmd()
        self._vmemmap_mark_sub_pmd_used(start)
        if start & (PMD_SIZE - 1):
            self._memset_vmemmap(page, start, True)
        if end & (PMD_SIZE - 1):
            self._unused_pmd_start = end


    # ------------------------------------------------------------------ vmemmap populate
    def _vmemmap_populate_tables(self, addr, depth, node, alloc_table):
        """mm/sparse-vmemmap.c:vmemmap_pgd_populate .. vmemmap_pmd_populate (6.1): the slot of
        the table at ``depth`` mapping addr, missing tables allocated on the way; -1 on failure.
        A folded level allocates nothing (its p?d_none() is 0): the entry above it gets the
        table below. x86 4-level: pgd_none() is always false and the "p4d" step fills the PGD
        entry with a PUD table -- the same allocations as this walk."""
        slot = 0
        x86_l5 = self._x86 and self._nlev == 5
        for d in range(depth):
            i = (addr >> self._shifts[d]) & self._masks[d]
            e = int(self._ent[slot, i])
            none = (e == 0) if (d == 0 and x86_l5) else _entry_none(e)
            if none:
                pfn = operator.index(alloc_table(PGTABLE_LEVEL_NAMES[self._lids[d + 1]], node))
                if pfn < 0:
                    return -1
                c = self._new_table(pfn, self._lids[d + 1])
                self._link(slot, i, c)
                slot = c
            else:
                slot = int(self._child[slot, i])
        return slot

    def _populate_basepages(self, start, end, node, alloc_page, alloc_table):
        """mm/sparse-vmemmap.c:vmemmap_populate_range with reuse NULL (6.1)."""
        depth = self._nlev - 1
        ent = self._ent
        ps = self.page_shift
        mask = self._masks[depth]
        for addr in range(start, end, self._page_size):
            t = self._vmemmap_populate_tables(addr, depth, node, alloc_table)
            if t < 0:
                return -_errno.ENOMEM
            i = (addr >> ps) & mask
            if _entry_none(int(ent[t, i])):
                pfn = operator.index(alloc_page(1, node))
                if pfn < 0:
                    return -_errno.ENOMEM
                if pfn >= self._max_pfn:
                    raise RuntimeError(f"page allocator returned pfn {pfn:#x}")
                ent[t, i] = (pfn << ps) | PAGE_KERNEL
        return 0

    def vmemmap_populate_basepages(self, start, end, node, alloc_page, alloc_table):
        """mm/sparse-vmemmap.c:vmemmap_populate_basepages (6.1): map [start, end) with base pages
        from ``alloc_page(1, node)``; page tables from ``alloc_table``. 0 or -ENOMEM (partial
        state is left in place, as the kernel leaves it). Any geometry."""
        start, end = self._check_va_range(start, end, "vmemmap_populate_basepages")
        if not callable(alloc_page) or not callable(alloc_table):
            raise _einval("vmemmap_populate_basepages: alloc_page and alloc_table must be callable")
        found = self._scan(start, end)
        if found & 3:
            raise _einval(f"vmemmap_populate_basepages: [{start:#x}, {end:#x}) is mapped by a "
                          "huge leaf; the kernel would use it as a page table")
        return self._populate_basepages(start, end, node, alloc_page, alloc_table)

    def vmemmap_populate_hugepages(self, start, end, node, alloc_block, alloc_table,
                                   fallback_alloc_page, alloc_page=None):
        """arch/x86/mm/init_64.c:vmemmap_populate_hugepages (6.1), per 2 MiB step.

        PMD empty: a 512-page block from ``alloc_block`` becomes a PAGE_KERNEL_LARGE leaf (plus
        vmemmap_use_new_sub_pmd for a step not 2 MiB-aligned at both ends); if the block cannot
        be had, ``fallback_alloc_page`` None means -ENOMEM (6.1 with an altmap), else base pages
        for the step from it. PMD a leaf: vmemmap_use_sub_pmd. PMD a PTE table: base pages from
        ``alloc_page`` (default ``fallback_alloc_page``; 6.1: the buddy, 6.6+: the altmap).
        Returns 0 or -ENOMEM; the kernel does not unwind, nor does this. x86 geometries only."""
        self._require_arch("x86_64", "vmemmap_populate_hugepages")
        start, end = self._check_va_range(start, end, "vmemmap_populate_hugepages")
        if not (callable(alloc_block) and callable(alloc_table)
                and _is_callable_or_none(fallback_alloc_page) and _is_callable_or_none(alloc_page)):
            raise _einval("vmemmap_populate_hugepages: allocators must be callable (fallback/"
                          "alloc_page may be None)")
        base_alloc = alloc_page if alloc_page is not None else fallback_alloc_page
        found = self._scan(start, end)
        if found & 1:
            raise _einval(f"vmemmap_populate_hugepages: [{start:#x}, {end:#x}) crosses a PUD leaf")
        if found & 4 and base_alloc is None:
            raise _einval("vmemmap_populate_hugepages: a PMD in the range is a PTE table and no "
                          "base-page allocator was given")
        ent = self._ent
        depth = self._nlev - 2
        addr = start
        while addr < end:
            nxt = _addr_end(addr, end, 21)
            t = self._vmemmap_populate_tables(addr, depth, node, alloc_table)
            if t < 0:
                return -_errno.ENOMEM
            i = (addr >> 21) & 511
            e = int(ent[t, i])
            if _entry_none(e):
                pfn = operator.index(alloc_block(PMD_SIZE >> 12, node))
                if pfn >= 0:
                    if pfn >= PGT_MAX_PFN or pfn & 511:
                        raise RuntimeError(f"block allocator returned pfn {pfn:#x}")
                    ent[t, i] = ((pfn << 12) & PHYSICAL_PMD_PAGE_MASK) | PAGE_KERNEL_LARGE
                    if (addr | nxt) & (PMD_SIZE - 1):
                        self._vmemmap_use_new_sub_pmd(addr, nxt)
                    addr = nxt
                    continue
                if fallback_alloc_page is None:
                    return -_errno.ENOMEM       # no fallback with an altmap
                page_alloc = fallback_alloc_page
            elif e & _PAGE_PSE:
                self._vmemmap_use_sub_pmd(addr, nxt)
                addr = nxt
                continue
            else:
                page_alloc = base_alloc
            if self._populate_basepages(addr, nxt, node, page_alloc, alloc_table):
                return -_errno.ENOMEM
            addr = nxt
        return 0

    # ------------------------------------------------------------------ removal
    def remove_pagetable(self, start, end, direct, free_data, free_table, free_pud_tables):
        """arch/x86/mm/init_64.c:remove_pagetable (6.1). direct=True: the direct map
        (kernel_physical_mapping_remove; leaves cleared, DirectMap counters lowered); False:
        the vmemmap (vmemmap_free; mapped data handed to ``free_data(pfn, nr_pages)``). Empty
        PTE/PMD tables go to ``free_table(pfn, level)``; PUD tables only if ``free_pud_tables``
        (6.1: 5-level paging); P4D tables and PGD entries never. x86 geometries only."""
        self._require_arch("x86_64", "remove_pagetable")
        start, end = self._check_va_range(start, end, "remove_pagetable")
        if not callable(free_table) or not _is_callable_or_none(free_data) or \
                (free_data is None and not direct):
            raise _einval("remove_pagetable: free_table (and free_data for the vmemmap) must be "
                          "callable")
        direct = bool(direct)
        free_pud_tables = bool(free_pud_tables)
        self._frees = []
        addr = start
        sh = self.pgdir_shift
        while addr < end:
            nxt = _addr_end(addr, end, sh)
            i = (addr >> sh) & 511
            if self._nlev == 5:
                if int(self._ent[0, i]) & _PAGE_PRESENT:     # pgd_present
                    self._remove_p4d_table(int(self._child[0, i]), addr, nxt, direct,
                                           free_data is not None, free_pud_tables)
            else:
                # pgd_present() is 1 and p4d_offset() is the PGD entry itself
                self._remove_p4d_table(0, addr, nxt, direct, free_data is not None,
                                       free_pud_tables)
            addr = nxt
        # flush_tlb_all()
        self._flush_frees(free_data, free_table)

    def _remove_p4d_table(self, slot, addr, end, direct, has_free_data, free_pud_tables):
        """arch/x86/mm/init_64.c:remove_p4d_table (6.1); 4-level: ``slot`` is the PGD."""
        while addr < end:
            nxt = _addr_end(addr, end, P4D_SHIFT)
            i = (addr >> P4D_SHIFT) & 511
            if int(self._ent[slot, i]) & _PAGE_PRESENT:
                pud = int(self._child[slot, i])
                self._remove_pud_table(pud, addr, nxt, direct, has_free_data)
                if free_pud_tables:
                    self._free_table_if_empty(pud, slot, i)
            addr = nxt

    def _remove_pud_table(self, slot, addr, end, direct, has_free_data):
        """arch/x86/mm/init_64.c:remove_pud_table (6.1)."""
        pages = 0
        while addr < end:
            nxt = _addr_end(addr, end, 30)
            i = (addr >> 30) & 511
            e = int(self._ent[slot, i])
            if e & _PAGE_PRESENT:
                c = int(self._child[slot, i])
                if (e & (_PAGE_PSE | _PAGE_PRESENT)) == (_PAGE_PSE | _PAGE_PRESENT) and \
                        not addr & (PUD_SIZE - 1) and not nxt & (PUD_SIZE - 1):
                    self._clear(slot, i)
                    pages += 1
                elif c >= 0:
                    self._remove_pmd_table(c, addr, nxt, direct, has_free_data)
                    self._free_table_if_empty(c, slot, i)
                else:
                    # A 1G leaf only partly covered: the kernel walks its first data page as a
                    # PMD table (pmd_offset on a leaf). Modelled as reading zeros, so
                    # free_pmd_table frees that page as a table and clears the PUD entry.
                    self._free_table((e & PHYSICAL_PUD_PAGE_MASK) >> 12,
                                     PGTABLE_LEVEL_ID["PMD"])
                    self._clear(slot, i)
            addr = nxt
        if direct:
            self._update_page_count(2, -pages)

    def _remove_pmd_table(self, slot, addr, end, direct, has_free_data):
        """arch/x86/mm/init_64.c:remove_pmd_table (6.1)."""
        pages = 0
        while addr < end:
            nxt = _addr_end(addr, end, 21)
            i = (addr >> 21) & 511
            e = int(self._ent[slot, i])
            if e & (_PAGE_PRESENT | _PAGE_PROTNONE | _PAGE_PSE):      # pmd_present
                if e & _PAGE_PSE:
                    pfn = (e & PHYSICAL_PMD_PAGE_MASK) >> 12
                    if not addr & (PMD_SIZE - 1) and not nxt & (PMD_SIZE - 1):
                        if not direct:
                            self._free_data(pfn, PMD_SIZE >> 12)    # free_hugepage_table
                        self._clear(slot, i)
                        self._drop_unused(addr)
                        pages += 1
                    elif self._vmemmap_pmd_is_unused(addr, nxt):
                        # reached for the direct map too; the kernel then frees the RAM itself
                        if has_free_data:
                            self._free_data(pfn, PMD_SIZE >> 12)
                        self._clear(slot, i)
                        self._drop_unused(addr & ~(PMD_SIZE - 1))
                else:
                    c = int(self._child[slot, i])
                    self._remove_pte_table(c, addr, nxt, direct)
                    self._free_table_if_empty(c, slot, i)
            addr = nxt
        if direct:
            self._update_page_count(1, -pages)

    def _remove_pte_table(self, slot, addr, end, direct):
        """arch/x86/mm/init_64.c:remove_pte_table (6.1)."""
        pages = 0
        while addr < end:
            nxt = min((addr + PAGE_SIZE) & ~0xFFF, end)
            i = (addr >> 12) & 511
            e = int(self._ent[slot, i])
            if e & (_PAGE_PRESENT | _PAGE_PROTNONE):                   # pte_present
                # "[0,1G) is mapped by head_64.S": pte_val() + virtual address, as 6.1 adds them
                if ((e + (addr & ~0xFFF)) & _M64) < 0x40000000:
                    return
                if not direct:
                    self._free_data((e & PTE_PFN_MASK) >> 12, 1)
                self._clear(slot, i)
                pages += 1
            addr = nxt
        if direct:
            self._update_page_count(0, -pages)

    def _free_table_if_empty(self, slot, parent, i):
        """arch/x86/mm/init_64.c:free_pte_table / free_pmd_table / free_pud_table (6.1)."""
        if not self._table_empty(slot):
            return
        self._free_table(int(self._pfn[slot]), int(self._lvl[slot]))
        self._release_table(slot)
        self._clear(parent, i)

    # ------------------------------------------------------------------ deferred frees
    # The removal walks only record what they free, in walk order; the public method hands the
    # requests to the caller's free_data / free_table after the walk (the compiled core keeps
    # them in a C array, so its loops call no Python code). Same calls, same order.
    def _free_data(self, pfn, nr_pages):
        self._frees.append((0, pfn, nr_pages))

    def _free_table(self, pfn, lid):
        self._frees.append((1, pfn, lid))

    def _flush_frees(self, free_data, free_table):
        reqs, self._frees = self._frees, []
        for kind, pfn, arg in reqs:
            if kind:
                free_table(pfn, PGTABLE_LEVEL_NAMES[arg])
            else:
                free_data(pfn, arg)

    # ------------------------------------------------------------------ direct map
    def kernel_physical_mapping_init(self, paddr_start, paddr_end, page_size, alloc_table, node):
        """arch/x86/mm/init_64.c:kernel_physical_mapping_init (6.1, after boot) for one run of
        split_mem_range: page_size 4096, 2 MiB or 1 GiB (page_size_mask 0, 2M, 2M|1G), prot
        PAGE_KERNEL. Existing entries are reused; missing tables come from alloc_table; new
        leaves are counted into direct_pages_count. Returns the last mapped physical address as
        the kernel does. A table allocation failure raises HotplugError(ENOMEM): 6.1 does not
        check alloc_low_page() and would oops; what was written until then (and tables allocated
        but not yet linked) stays, as in the crashed kernel. x86 geometries only."""
        self._require_arch("x86_64", "kernel_physical_mapping_init")
        if page_size == 4096:
            mask = 0
        elif page_size == PMD_SIZE:
            mask = (1 << PG_LEVEL_2M)
        elif page_size == PUD_SIZE:
            mask = (1 << PG_LEVEL_2M) | (1 << PG_LEVEL_1G)
        else:
            raise _einval(f"kernel_physical_mapping_init: page size {page_size!r}")
        paddr_start, paddr_end = _as_ints(paddr_start, paddr_end, "kernel_physical_mapping_init")
        if paddr_start % page_size or paddr_end % page_size:
            raise _einval(f"kernel_physical_mapping_init: [{paddr_start:#x}, {paddr_end:#x}) "
                          f"not aligned to {page_size:#x}")
        if not 0 <= paddr_start < paddr_end <= 1 << self.max_physmem_bits:
            raise _einval(f"kernel_physical_mapping_init: [{paddr_start:#x}, {paddr_end:#x}) "
                          f"empty or beyond MAX_PHYSMEM_BITS {self.max_physmem_bits}")
        if not callable(alloc_table):
            raise _einval("kernel_physical_mapping_init: alloc_table must be callable")
        return self._kernel_physical_mapping_init(paddr_start, paddr_end, mask, PAGE_KERNEL,
                                                  alloc_table, node)

    def _kernel_physical_mapping_init(self, paddr_start, paddr_end, mask, prot, alloc_table,
                                      node):
        """arch/x86/mm/init_64.c:__kernel_physical_mapping_init (6.1)."""
        po = self.page_offset
        sh = self.pgdir_shift
        paddr_last = paddr_end
        vaddr = po + paddr_start
        vaddr_end = po + paddr_end
        while vaddr < vaddr_end:
            i = (vaddr >> sh) & 511
            vaddr_next = ((vaddr & ~((1 << sh) - 1)) + (1 << sh)) & _M64
            if int(self._ent[0, i]):                                  # pgd_val(*pgd)
                paddr_last = self._phys_p4d_init(int(self._child[0, i]), vaddr - po,
                                                 vaddr_end - po, mask, prot, alloc_table, node)
            else:
                p4d = self._alloc_low_page(self._lids[1], node, alloc_table)
                paddr_last = self._phys_p4d_init(p4d, vaddr - po, vaddr_end - po, mask, prot,
                                                 alloc_table, node)
                self._link(0, i, p4d)     # pgd_populate (5-level) / p4d_populate (4-level)
            vaddr = vaddr_next
        # sync_global_pgds(): other PGDs are not modelled
        return paddr_last

    def _phys_p4d_init(self, slot, paddr, paddr_end, mask, prot, alloc_table, node):
        """arch/x86/mm/init_64.c:phys_p4d_init (6.1)."""
        if self._nlev == 4:
            return self._phys_pud_init(slot, paddr, paddr_end, mask, prot, alloc_table, node)
        po = self.page_offset
        paddr_last = paddr_end
        vaddr = po + paddr
        vaddr_end = po + paddr_end
        while vaddr < vaddr_end:
            i = (vaddr >> P4D_SHIFT) & 511
            vaddr_next = ((vaddr & ~((1 << P4D_SHIFT) - 1)) + (1 << P4D_SHIFT)) & _M64
            paddr = vaddr - po
            if paddr < paddr_end:
                if not _entry_none(int(self._ent[slot, i])):
                    paddr_last = self._phys_pud_init(int(self._child[slot, i]), paddr,
                                                     vaddr_end - po, mask, prot, alloc_table, node)
                else:
                    pud = self._alloc_low_page(2, node, alloc_table)
                    paddr_last = self._phys_pud_init(pud, paddr, vaddr_end - po, mask, prot,
                                                     alloc_table, node)
                    self._link(slot, i, pud)
            vaddr = vaddr_next
        return paddr_last

    def _phys_pud_init(self, slot, paddr, paddr_end, mask, prot0, alloc_table, node):
        """arch/x86/mm/init_64.c:phys_pud_init (6.1, after_bootmem)."""
        po = self.page_offset
        pages = 0
        paddr_last = paddr_end
        i = ((po + paddr) >> 30) & 511
        while i < 512:
            j = ((po + paddr) >> 30) & 511
            paddr_next = (paddr & ~(PUD_SIZE - 1)) + PUD_SIZE
            if paddr < paddr_end:
                prot = prot0
                e = int(self._ent[slot, j])
                done = False
                if not _entry_none(e):
                    if (e & (_PAGE_PSE | _PAGE_PRESENT)) != (_PAGE_PSE | _PAGE_PRESENT):
                        paddr_last = self._phys_pmd_init(int(self._child[slot, j]), paddr,
                                                         paddr_end, mask, prot, alloc_table, node)
                        done = True
                    elif mask & (1 << PG_LEVEL_1G):
                        paddr_last = paddr_next
                        done = True
                    else:
                        prot = e & PTE_FLAGS_MASK & ~_PAGE_PSE      # split the 1G leaf
                if not done:
                    if mask & (1 << PG_LEVEL_1G):
                        pages += 1
                        self._ent[slot, j] = (paddr & PHYSICAL_PUD_PAGE_MASK) | prot | _PAGE_PSE
                        self._child[slot, j] = -1
                        paddr_last = paddr_next
                    else:
                        pmd = self._alloc_low_page(3, node, alloc_table)
                        paddr_last = self._phys_pmd_init(pmd, paddr, paddr_end, mask, prot,
                                                         alloc_table, node)
                        self._link(slot, j, pmd)
            i += 1
            paddr = paddr_next
        self._update_page_count(2, pages)
        return paddr_last

    def _phys_pmd_init(self, slot, paddr, paddr_end, mask, prot, alloc_table, node):
        """arch/x86/mm/init_64.c:phys_pmd_init (6.1, after_bootmem)."""
        pages = 0
        paddr_last = paddr_end
        i = (paddr >> 21) & 511
        while i < 512:
            j = (paddr >> 21) & 511
            paddr_next = (paddr & ~(PMD_SIZE - 1)) + PMD_SIZE
            if paddr < paddr_end:
                new_prot = prot
                e = int(self._ent[slot, j])
                done = False
                if not _entry_none(e):
                    if not e & _PAGE_PSE:
                        paddr_last = self._phys_pte_init(int(self._child[slot, j]), paddr,
                                                         paddr_end, prot)
                        done = True
                    elif mask & (1 << PG_LEVEL_2M):
                        paddr_last = paddr_next
                        done = True
                    else:
                        new_prot = e & PTE_FLAGS_MASK & ~_PAGE_PSE  # split the 2M leaf
                if not done:
                    if mask & (1 << PG_LEVEL_2M):
                        pages += 1
                        self._ent[slot, j] = (paddr & PHYSICAL_PMD_PAGE_MASK) | prot | _PAGE_PSE
                        self._child[slot, j] = -1
                        paddr_last = paddr_next
                    else:
                        pte = self._alloc_low_page(4, node, alloc_table)
                        paddr_last = self._phys_pte_init(pte, paddr, paddr_end, new_prot)
                        self._drop_unused((self.page_offset + paddr) & ~(PMD_SIZE - 1) & _M64)
                        self._link(slot, j, pte)
            i += 1
            paddr = paddr_next
        self._update_page_count(1, pages)
        return paddr_last

    def _phys_pte_init(self, slot, paddr, paddr_end, prot):
        """arch/x86/mm/init_64.c:phys_pte_init (6.1, after_bootmem)."""
        pages = 0
        paddr_last = paddr_end
        i = (paddr >> 12) & 511
        ent = self._ent
        while i < 512:
            paddr_next = (paddr & ~0xFFF) + PAGE_SIZE
            if paddr < paddr_end and _entry_none(int(ent[slot, i])):
                pages += 1
                ent[slot, i] = (paddr & PTE_PFN_MASK) | prot
                paddr_last = paddr_next
            i += 1
            paddr = paddr_next
        self._update_page_count(0, pages)
        return paddr_last


    # ------------------------------------------------------------------ arm64 (6.1)
    def _arm64_block_ok(self, d):
        """May entry depth d hold a block (section) mapping? arch/arm64/mm/mmu.c:init_pmd (any
        PMD entry) and alloc_init_pud (a PUD entry only with pud_sect_supported(): 4K pages)."""
        if d >= self._nlev - 1:
            return False
        sh = self._shifts[d]
        return sh == self._pmd_shift or (self.page_shift == 12 and sh == self._pud_shift)

    def _check_arm64_range(self, start, end, lo, hi, what, where):
        start, end = self._check_va_range(start, end, what)
        if start < lo or ((end - 1) & _M64) > ((hi - 1) & _M64):
            # the kernel WARNs and carries on; the model refuses
            raise _einval(f"{what}: [{start:#x}, {end:#x}) outside the {where} "
                          f"[{lo:#x}, {hi:#x})")
        return start, end

    def arm64_vmemmap_populate(self, start, end, node, alloc_block, alloc_table,
                               section_memmap_size):
        """arch/arm64/mm/mmu.c:vmemmap_populate (6.1) for [start, end) of the vmemmap.

        ``alloc_block(nr_pages, node)`` is vmemmap_alloc_block_buf with the caller's altmap (or
        none): it serves both the PMD blocks (PMD_SIZE >> PAGE_SHIFT pages) and the base pages
        (1), since arm64 passes the altmap to both. ``alloc_table`` gives the zeroed buddy pages
        of vmemmap_p?d_populate (never the altmap). ``section_memmap_size`` is PAGES_PER_SECTION *
        sizeof(struct page). 16K/64K pages (no ARM64_KERNEL_USES_PMD_MAPS) or a range shorter
        than a section's memmap: vmemmap_populate_basepages(altmap). 4K, per PMD: empty -> a
        block from alloc_block, or, if that fails, base pages for the step from alloc_block(1);
        not empty (a block or a PTE table) -> vmemmap_verify only, nothing allocated.
        Returns 0 or -ENOMEM; nothing is unwound (the caller's section_deactivate does that)."""
        self._require_arch("arm64", "arm64_vmemmap_populate")
        g = self.geometry
        start, end = self._check_arm64_range(start, end, g.vmemmap_start, g.vmemmap_end,
                                             "arm64_vmemmap_populate", "vmemmap")
        if not isinstance(section_memmap_size, int) or section_memmap_size <= 0:
            raise _einval(f"arm64_vmemmap_populate: section memmap size "
                          f"{section_memmap_size!r}")
        size = section_memmap_size
        if not callable(alloc_block) or not callable(alloc_table):
            raise _einval("arm64_vmemmap_populate: alloc_block and alloc_table must be callable")
        if self.page_shift != 12 or end - start < size:
            found = self._scan(start, end)
            if found & 3:
                raise _einval(f"arm64_vmemmap_populate: [{start:#x}, {end:#x}) is mapped by a "
                              "block; vmemmap_populate_basepages would use it as a page table")
            return self._populate_basepages(start, end, node, alloc_block, alloc_table)
        if self._scan(start, end) & 1:
            raise _einval(f"arm64_vmemmap_populate: [{start:#x}, {end:#x}) crosses a PUD block")
        ent = self._ent
        depth = self._nlev - 2
        sh = self._shifts[depth]
        mask = self._masks[depth]
        nr = 1 << (sh - self.page_shift)
        addr = start
        while addr < end:
            nxt = _addr_end(addr, end, sh)
            t = self._vmemmap_populate_tables(addr, depth, node, alloc_table)
            if t < 0:
                return -_errno.ENOMEM
            i = (addr >> sh) & mask
            if _entry_none(int(ent[t, i])):
                pfn = operator.index(alloc_block(nr, node))
                if pfn < 0:
                    if self._populate_basepages(addr, nxt, node, alloc_block, alloc_table):
                        return -_errno.ENOMEM
                    addr = nxt
                    continue
                if pfn >= self._max_pfn or pfn & (nr - 1):
                    raise RuntimeError(f"block allocator returned pfn {pfn:#x}")
                ent[t, i] = (pfn << self.page_shift) | PAGE_KERNEL_LARGE   # pmd_set_huge
            addr = nxt
        return 0

    def arm64_create_pgd_mapping(self, phys, virt, size, flags, alloc_table, node):
        """arch/arm64/mm/mmu.c:__create_pgd_mapping (6.1) into swapper_pg_dir, as
        arch_add_memory calls it: ``flags`` NO_EXEC_MAPPINGS, plus NO_BLOCK_MAPPINGS |
        NO_CONT_MAPPINGS when can_set_direct_map(). Tables from ``alloc_table`` =
        __pgd_pgtable_alloc (__get_free_page(GFP_PGTABLE_KERNEL) on the running CPU's node,
        ``node``; no pgtable ctor). Blocks where aligned and allowed: 1 GiB PUD blocks (4K pages
        only), PMD blocks; else PTEs. An existing entry where a block would go is left as it is
        (pmd_set_huge/pud_set_huge refuse an unsafe change). The kernel BUGs on a block where it
        needs a table and on a PTE that would change: refused here (EINVAL) before anything is
        written. A table allocation failure raises ENOMEM (6.1 BUG_ON(!ptr)); what was built
        until then stays. NO_CONT_MAPPINGS: contiguous hints are not modelled either way."""
        self._require_arch("arm64", "arm64_create_pgd_mapping")
        try:
            phys, virt, size, flags = (operator.index(phys), operator.index(virt),
                                       operator.index(size), operator.index(flags))
        except TypeError:
            raise _einval("arm64_create_pgd_mapping: phys, virt, size and flags must be "
                          "integers") from None
        pm = self._page_size - 1
        if (phys ^ virt) & pm:
            raise _einval(f"arm64_create_pgd_mapping: phys {phys:#x} and virt {virt:#x} differ "
                          "in their page offset (the kernel WARNs and maps nothing)")
        if size <= 0 or phys < 0 or ((phys + size + pm) & ~pm) > (1 << self.max_physmem_bits):
            raise _einval(f"arm64_create_pgd_mapping: [{phys:#x}, +{size:#x}) empty or beyond "
                          f"MAX_PHYSMEM_BITS {self.max_physmem_bits}")
        if not 0 <= flags < 8:
            raise _einval(f"arm64_create_pgd_mapping: flags {flags:#x}")
        if not callable(alloc_table):
            raise _einval("arm64_create_pgd_mapping: alloc_table must be callable")
        phys &= ~pm
        addr = virt & ~pm
        end = (virt + size + pm) & ~pm
        addr, end = self._check_va_range(addr, end, "arm64_create_pgd_mapping")
        self._arm64_map_check(0, 0, addr, end, phys, flags)
        self._arm64_map(0, 0, addr, end, phys, flags, alloc_table, node)

    def _arm64_leaf(self, d, phys):
        if d == self._nlev - 1:
            return (phys & self._pfn_mask) | PAGE_KERNEL
        return (phys & self._pfn_mask) | PAGE_KERNEL_LARGE

    def _arm64_map_check(self, slot, d, addr, end, phys, flags):
        """What would BUG in __create_pgd_mapping (alloc_init_cont_pmd/pte: BUG_ON(p?d_sect);
        init_pte: BUG_ON(!pgattr_change_is_safe)), over existing tables only."""
        sh = self._shifts[d]
        mask = self._masks[d]
        while addr < end:
            nxt = _addr_end(addr, end, sh)
            i = (addr >> sh) & mask
            e = int(self._ent[slot, i])
            if not _entry_none(e):
                if d == self._nlev - 1:
                    if e != self._arm64_leaf(d, phys):
                        raise _einval(f"arm64_create_pgd_mapping: {addr:#x} is mapped to another "
                                      "page (6.1 BUG_ON in init_pte)")
                elif not (self._arm64_block_ok(d) and not flags & NO_BLOCK_MAPPINGS
                          and not (addr | nxt | phys) & ((1 << sh) - 1)):
                    c = int(self._child[slot, i])
                    if c < 0:
                        raise _einval(f"arm64_create_pgd_mapping: {addr:#x} is inside a block "
                                      "where a table is needed (6.1 BUG_ON(p?d_sect))")
                    self._arm64_map_check(c, d + 1, addr, nxt, phys, flags)
            phys += nxt - addr
            addr = nxt

    def _arm64_map(self, slot, d, addr, end, phys, flags, alloc_table, node):
        """arch/arm64/mm/mmu.c:alloc_init_pud / alloc_init_cont_pmd / init_pmd /
        alloc_init_cont_pte / init_pte (6.1), one depth of the walk."""
        sh = self._shifts[d]
        mask = self._masks[d]
        last = self._nlev - 1
        while addr < end:
            nxt = _addr_end(addr, end, sh)
            i = (addr >> sh) & mask
            e = int(self._ent[slot, i])
            if d == last:                                                  # init_pte
                self._ent[slot, i] = self._arm64_leaf(d, phys)
            elif self._arm64_block_ok(d) and not flags & NO_BLOCK_MAPPINGS and \
                    not (addr | nxt | phys) & ((1 << sh) - 1):
                if _entry_none(e):                                         # p?d_set_huge
                    self._ent[slot, i] = self._arm64_leaf(d, phys)
                    self._child[slot, i] = -1
            else:
                if _entry_none(e):
                    pfn = operator.index(alloc_table(PGTABLE_LEVEL_NAMES[self._lids[d + 1]], node))
                    if pfn < 0:
                        raise HotplugError(_errno.ENOMEM, "__pgd_pgtable_alloc: no page for a "
                                           f"{PGTABLE_LEVEL_NAMES[self._lids[d + 1]]} table "
                                           "(the kernel BUGs)")
                    c = self._new_table(pfn, self._lids[d + 1])
                    self._link(slot, i, c)                                  # __p?d_populate
                else:
                    c = int(self._child[slot, i])
                self._arm64_map(c, d + 1, addr, nxt, phys, flags, alloc_table, node)
            phys += nxt - addr
            addr = nxt

    def arm64_unmap_hotplug_range(self, start, end, free_mapped, free_data):
        """arch/arm64/mm/mmu.c:unmap_hotplug_range (6.1): clear every PTE and block in
        [start, end) (a block is cleared whole even if the range covers only part of it); with
        ``free_mapped`` hand what they mapped to ``free_data(pfn, nr_pages)`` =
        free_hotplug_page_range (altmap: vmem_altmap_free(nr_pages); else free_pages). Tables
        stay (free_empty_tables frees them)."""
        self._require_arch("arm64", "arm64_unmap_hotplug_range")
        start, end = self._check_va_range(start, end, "arm64_unmap_hotplug_range")
        if free_mapped and not callable(free_data):
            raise _einval("arm64_unmap_hotplug_range: free_data must be callable when "
                          "free_mapped")
        self._frees = []
        self._arm64_unmap(0, 0, start, end, bool(free_mapped))
        self._flush_frees(free_data, None)

    def _arm64_unmap(self, slot, d, addr, end, free_mapped):
        """arch/arm64/mm/mmu.c:unmap_hotplug_p4d/pud/pmd/pte_range (6.1), one depth."""
        sh = self._shifts[d]
        mask = self._masks[d]
        ps = self.page_shift
        while addr < end:
            nxt = _addr_end(addr, end, sh)
            i = (addr >> sh) & mask
            e = int(self._ent[slot, i])
            if not _entry_none(e):
                c = int(self._child[slot, i])
                if c >= 0:
                    self._arm64_unmap(c, d + 1, addr, nxt, free_mapped)
                else:                                   # pte, or pud_sect / pmd_sect
                    self._clear(slot, i)
                    if free_mapped:
                        self._free_data((e & self._pfn_mask) >> ps, 1 << (sh - ps))
            addr = nxt

    def arm64_free_empty_tables(self, start, end, floor, ceiling, free_table):
        """arch/arm64/mm/mmu.c:free_empty_tables (6.1): after unmap_hotplug_range, free each
        PTE/PMD/PUD table met in [start, end) whose entries are all none and whose span lies in
        [floor, ceiling) (pgtable_range_aligned; ceiling 0 = no limit), children first, via
        ``free_table(pfn, level)`` = free_hotplug_pgtable_page (free_pages). P4D tables and the
        PGD are never freed. A block left in the range is refused (EINVAL): the kernel would
        WARN and walk the mapped data as a table."""
        self._require_arch("arm64", "arm64_free_empty_tables")
        start, end = self._check_va_range(start, end, "arm64_free_empty_tables")
        floor, ceiling = _as_ints(floor, ceiling, "arm64_free_empty_tables")
        if not 0 <= floor <= _M64 or not 0 <= ceiling <= _M64:
            raise _einval(f"arm64_free_empty_tables: floor {floor:#x} / ceiling {ceiling:#x}")
        if not callable(free_table):
            raise _einval("arm64_free_empty_tables: free_table must be callable")
        if self._scan(start, end) & 3:
            raise _einval(f"arm64_free_empty_tables: [{start:#x}, {end:#x}) still has a block "
                          "mapping (unmap_hotplug_range first)")
        self._frees = []
        self._arm64_free_empty(0, 0, start, end, floor, ceiling)
        self._flush_frees(None, free_table)

    def _arm64_free_empty(self, slot, d, addr, end, floor, ceiling):
        """arch/arm64/mm/mmu.c:free_empty_p4d/pud/pmd/pte_table (6.1): walk the entries of table
        ``slot`` (depth d) over [addr, end); each child table is walked first, then freed if
        pgtable_range_aligned(its clipped range, its span) and all its entries are none."""
        if d == self._nlev - 1:
            return
        sh = self._shifts[d]
        mask = self._masks[d]
        span_mask = _M64 & ~((1 << sh) - 1)
        while addr < end:
            nxt = _addr_end(addr, end, sh)
            i = (addr >> sh) & mask
            c = int(self._child[slot, i])
            if c >= 0:
                self._arm64_free_empty(c, d + 1, addr, nxt, floor, ceiling)
                if self._lids[d + 1] != 1 and \
                        _pgtable_range_aligned(addr, nxt, floor, ceiling, span_mask) and \
                        self._table_empty(c):
                    self._clear(slot, i)                       # p?d_clear
                    self._free_table(int(self._pfn[c]), self._lids[d + 1])
                    self._release_table(c)
            addr = nxt

    def arm64_vmemmap_free(self, start, end, free_data, free_table):
        """arch/arm64/mm/mmu.c:vmemmap_free (6.1): unmap_hotplug_range(start, end, true,
        altmap) -- every mapped page or block to ``free_data`` -- then free_empty_tables(start,
        end, VMEMMAP_START, VMEMMAP_END)."""
        self._require_arch("arm64", "arm64_vmemmap_free")
        g = self.geometry
        start, end = self._check_arm64_range(start, end, g.vmemmap_start, g.vmemmap_end,
                                             "arm64_vmemmap_free", "vmemmap")
        if not callable(free_data) or not callable(free_table):
            raise _einval("arm64_vmemmap_free: free_data and free_table must be callable")
        self._frees = []
        self._arm64_unmap(0, 0, start, end, True)
        self._arm64_free_empty(0, 0, start, end, g.vmemmap_start, g.vmemmap_end)
        self._flush_frees(free_data, free_table)

    def arm64_remove_pgd_mapping(self, start, size, free_table):
        """arch/arm64/mm/mmu.c:__remove_pgd_mapping (6.1) on swapper_pg_dir: unmap the linear
        map of [start, start + size) without freeing what it maps, then free_empty_tables(start,
        end, PAGE_OFFSET, PAGE_END)."""
        self._require_arch("arm64", "arm64_remove_pgd_mapping")
        g = self.geometry
        start, size = _as_ints(start, size, "arm64_remove_pgd_mapping")
        start, end = self._check_arm64_range(start, start + size, g.page_offset, g.page_end,
                                             "arm64_remove_pgd_mapping", "linear map")
        if not callable(free_table):
            raise _einval("arm64_remove_pgd_mapping: free_table must be callable")
        self._frees = []
        self._arm64_unmap(0, 0, start, end, False)
        self._arm64_free_empty(0, 0, start, end, g.page_offset, g.page_end)
        self._flush_frees(None, free_table)

    # ------------------------------------------------------------------ inspection
    def direct_pages_count(self, level):
        """arch/x86/mm/pat/set_memory.c:direct_pages_count[PG_LEVEL_4K/2M/1G] ("4K"/"2M"/"1G").
        x86 only: arm64 keeps no such counters (no DirectMap lines in its /proc/meminfo)."""
        self._require_arch("x86_64", "direct_pages_count")
        k = DIRECT_PAGES_COUNT_INDEX.get(level)
        if k is None:
            raise _einval(f"direct_pages_count: level {level!r}: expected '4K', '2M' or '1G'")
        return self._count[k]

    @property
    def unused_pmd_start(self):
        """arch/x86/mm/init_64.c's static unused_pmd_start (0 when none)."""
        return self._unused_pmd_start

    def walk(self, va):
        """[(level_name, table_pfn, index, entry)] from the PGD down to the leaf or the first
        empty entry."""
        if not 0 <= va <= _M64:
            raise _einval(f"walk: {va!r} is not a 64-bit address")
        out = []
        slot = 0
        for d in range(self._nlev):
            i = (va >> self._shifts[d]) & self._masks[d]
            e = int(self._ent[slot, i])
            out.append((PGTABLE_LEVEL_NAMES[self._lids[d]], int(self._pfn[slot]), i, e))
            c = int(self._child[slot, i])
            if _entry_none(e) or c < 0:
                break
            slot = c
        return out

    def lookup(self, va):
        """(level_name, entry) of the leaf mapping va, or None."""
        name, _, _, e = self.walk(va)[-1]
        if _entry_none(e) or (name != "PTE" and not e & _PAGE_PSE):
            return None
        return name, e

    def nr_tables(self, level_name):
        """Number of table pages of that level ("PGD" .. "PTE")."""
        lid = PGTABLE_LEVEL_ID.get(level_name)
        if lid is None:
            raise _einval(f"nr_tables: unknown level {level_name!r}")
        return int(np.count_nonzero(self._lvl[:self._nr_slots] == lid))

    def table_pfns(self, level_name):
        """Sorted pfns of the table pages of that level."""
        lid = PGTABLE_LEVEL_ID.get(level_name)
        if lid is None:
            raise _einval(f"table_pfns: unknown level {level_name!r}")
        sel = self._lvl[:self._nr_slots] == lid
        return sorted(int(p) for p in self._pfn[:self._nr_slots][sel])

    def entries(self, table_pfn):
        """A copy of the entries (PTRS_PER_<level> of them) of table page ``table_pfn``."""
        slot = self._slot_of.get(table_pfn)
        if slot is None:
            raise _einval(f"entries: pfn {table_pfn:#x} is not a page table")
        return self._ent[slot, :self._lid_ptrs[int(self._lvl[slot])]].copy()

    def state(self):
        """A canonical, comparable snapshot: geometry (``levels`` for x86, else ``(levels,
        geometry)``), every table (pfn, level, entries, which entries link a table), the
        DirectMap counters, unused_pmd_start and the PAGE_UNUSED byte ranges of each PMD leaf."""
        tables = []
        for pfn in sorted(self._slot_of):
            s = self._slot_of[pfn]
            lid = int(self._lvl[s])
            n = self._lid_ptrs[lid]
            tables.append((pfn, PGTABLE_LEVEL_NAMES[lid], self._ent[s, :n].tobytes(),
                           np.packbits(self._child[s, :n] >= 0).tobytes()))
        unused = []
        for va in sorted(self._unused):
            rec = self._unused[va]
            if not rec.any():
                continue
            d = np.diff(np.concatenate(([0], rec.astype(np.int8), [0])))
            starts = np.flatnonzero(d == 1) << STRUCT_PAGE_MAX_SHIFT
            ends = np.flatnonzero(d == -1) << STRUCT_PAGE_MAX_SHIFT
            unused.append((va, tuple(zip(starts.tolist(), ends.tolist()))))
        geo = self.levels if self._x86 else (self.levels, self.geometry)
        return (geo, self.pgd_pfn, tuple(tables), tuple(self._count),
                self._unused_pmd_start, tuple(unused))

    def __repr__(self):
        geo = "" if self._x86 else f", geometry={self.geometry.name}"
        return (f"PageTables(levels={self.levels}, pgd_pfn={self.pgd_pfn:#x}{geo}, "
                f"tables={len(self._slot_of)})")
