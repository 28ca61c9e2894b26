"""init_mm's kernel page tables, Linux 6.1: the table store and its walks (pure-Python twin of
hotmem/_cy/pgtable_store.pxi), the base of :class:`hotmem._py.pgtable.PageTables`.

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

Here: the state (tables, the DirectMap counters and the sub-PMD records the x86 code keeps), the
table pages, the argument checks, the generic vmemmap populate of mm/sparse-vmemmap.c, the
deferred frees of the removal walks and the inspection methods. The x86 paths are in
pgtable_x86.py, the arm64 paths in pgtable_arm64.py.
"""
import errno as _errno
import heapq
import operator

import numpy as np

from hotmem.defs import (
    _PAGE_KNL_ERRATUM_MASK, _PAGE_PSE, _PAGE_TABLE, PAGE_KERNEL, pgtable_geometry_for,
    PGTABLE_LEVEL_ID, PGTABLE_LEVEL_NAMES, PGT_PHYS_BITS, STRUCT_PAGE_MAX_SHIFT,
)
from hotmem.errors import HotplugError

_M64 = (1 << 64) - 1


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



class _TableStore:
    """The state of :class:`PageTables` (hotmem/_py/pgtable.py) and the walks every
    geometry shares: table pages, argument checks, vmemmap_populate_basepages, deferred
    frees, inspection."""

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
            ent = self._ent             # a new table may have grown the store
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

    # ------------------------------------------------------------------ inspection
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
