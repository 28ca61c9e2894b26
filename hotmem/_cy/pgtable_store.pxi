# init_mm's kernel page tables, Linux 6.1 (compiled): the table store and its walks, the base
# of PageTables (hotmem/_cy/pgtable.pxi) -- state, table pages, argument checks, the generic
# vmemmap populate of mm/sparse-vmemmap.c, the deferred frees and inspection. Twin:
# hotmem/_py/pgtable_store.py, which describes the storage and the geometry; the constants and
# PageTableGeometry: hotmem/defs.py (D.*: hotmem/defs.pxd).
import heapq as _pgt_heapq
import operator as _pgt_operator

from hotmem.defs import (
    _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, _PAGE_PWT, _PAGE_PCD, _PAGE_ACCESSED, _PAGE_DIRTY,
    _PAGE_PSE, _PAGE_GLOBAL, _PAGE_PROTNONE, _PAGE_NX, _PAGE_KNL_ERRATUM_MASK, PAGE_KERNEL,
    PAGE_KERNEL_LARGE, _KERNPG_TABLE, _PAGE_TABLE, PTE_PFN_MASK, PHYSICAL_PMD_PAGE_MASK,
    PHYSICAL_PUD_PAGE_MASK, PAGE_UNUSED, __PAGE_OFFSET_BASE_L4, __PAGE_OFFSET_BASE_L5,
    __VMEMMAP_BASE_L4, __VMEMMAP_BASE_L5, PGTABLE_LEVEL_NAMES, PageTableGeometry,
    NO_BLOCK_MAPPINGS, NO_CONT_MAPPINGS, NO_EXEC_MAPPINGS, MAX_TABLE_ENTRIES,
    PGTABLE_LEVEL_ID as _PGT_LEVEL_ID, DIRECT_PAGES_COUNT_INDEX as _PGT_COUNT_INDEX,
    X86_GEOMETRY as _PGT_X86_GEOMETRY, pgtable_geometry_for as _pgt_geometry_for,
)


cdef enum:
    _PGT_FREE_DATA = 0              # deferred free_data(pfn, nr_pages)
    _PGT_FREE_TABLE = 1             # deferred free_table(pfn, level name)
    _PGT_CBASE = 1 << 30            # slots from here on are compact leaf tables

# A leaf (PTE) table of an arm64 geometry is held compact while its entries form one run:
# entries [lo, hi) are e0, e0 + PAGE_SIZE, ... (a linear map, or consecutive memmap pages),
# every other entry is none, no entry points at a table. Its slot is _PGT_CBASE + index into
# _cl. The first write that breaks the run turns it into a dense row (_pgt_materialize, the
# parent's entry relinked to the new slot); what the tables hold is the same either way.
ctypedef struct pgt_leaf_t:
    int64_t pfn                     # the table page; -1: a free compact slot
    uint64_t e0                     # the entry at index lo
    int32_t lo, hi                  # present entries [lo, hi); lo == hi: none


cdef inline object _pgt_einval(str msg):
    return HotplugError(_errno.EINVAL, msg)


cdef inline uint64_t _pgt_addr_end(uint64_t addr, uint64_t end, int shift) noexcept nogil:
    """include/linux/pgtable.h:p?d_addr_end."""
    cdef uint64_t boundary = (addr + (<uint64_t> 1 << shift)) & ~((<uint64_t> 1 << shift) - 1)
    return boundary if boundary - 1 < end - 1 else end


cdef inline bint _pgt_none(uint64_t val) noexcept nogil:
    """pud_none/pmd_none/pte_none/p4d_none (x86, 6.1): stray A/D bits do not count."""
    return (val & ~D._PAGE_KNL_ERRATUM_MASK) == 0


cdef tuple _pgt_as_ints(a, b, str what):
    try:
        return _pgt_operator.index(a), _pgt_operator.index(b)
    except TypeError:
        raise _pgt_einval(f"{what}: addresses must be integers, not {a!r}, {b!r}") from None


cdef inline bint _pgt_callable_or_none(f):
    return f is None or callable(f)


cdef inline object _pgt_take(f, int lid, object nr, node):
    """One allocation of a walk: in C for a PgtableAllocSource (the hot-plug paths), else the
    caller's Python callable (boot's memblock, tests): ``f(level_name, node)`` for a table of
    level ``lid`` >= 0, ``f(nr, node)`` for ``nr`` pages of data."""
    if type(f) is PgtableAllocSource:
        return (<PgtableAllocSource> f)._take(lid, <int64_t> nr)
    if lid >= 0:
        return _pgt_operator.index(f(PGTABLE_LEVEL_NAMES[lid], node))
    return _pgt_operator.index(f(nr, node))


cdef class _TableStore:
    """The state of PageTables (hotmem/_cy/pgtable.pxi) and the walks every geometry
    shares. Compiled twin of hotmem/_py/pgtable_store.py:_TableStore."""
    cdef readonly int levels, pgdir_shift, max_physmem_bits, page_shift
    cdef readonly int64_t pgd_pfn
    cdef readonly uint64_t page_offset, vmemmap_start
    cdef readonly object geometry
    cdef int _nlev
    cdef int _shifts[5]
    cdef uint64_t _masks[5]
    cdef int _lids[5]
    cdef int _lid_ptrs[5]
    cdef int _width, _pmd_shift, _pud_shift
    cdef bint _x86
    cdef uint64_t _page_size, _pfn_mask, _va_top
    cdef int64_t _max_pfn
    cdef uint64_t _kernel_va_start
    cdef object _ent_arr, _child_arr, _pfn_arr, _lvl_arr
    cdef uint64_t[:, ::1] _ent
    cdef int32_t[:, ::1] _child
    cdef int64_t[::1] _pfn
    cdef int8_t[::1] _lvl
    cdef dict _slot_of
    cdef list _free_slots
    cdef int64_t _nr_slots
    cdef uint64_t _count[3]
    cdef uint64_t _unused_pmd_start
    cdef dict _unused
    cdef int64_t* _fr              # deferred frees, (kind, pfn, nr_pages or level id) triples
    cdef int64_t _fr_n, _fr_cap
    cdef bint _cleaf                # leaf tables start compact (arm64 geometries)
    cdef int _leaf_lid
    cdef pgt_leaf_t* _cl            # compact leaf tables
    cdef int64_t _ncl, _clcap, _ncl_live
    cdef list _cl_free
    cdef int64_t* _hk               # compact tables by pfn: open addressing, linear probing,
    cdef int64_t* _hv               # key -1 = empty (the dense ones are in _slot_of)
    cdef int64_t _hcap, _hn
    cdef int64_t _vp_parent         # _vmemmap_populate_tables: the entry pointing at its result
    cdef int _vp_index

    def __init__(self, levels, pgd_pfn, geometry=None):
        cdef int d
        g = _PGT_X86_GEOMETRY.get(levels) if geometry is None else None
        if g is None:
            g = _pgt_geometry_for(levels, geometry)
        max_pfn = 1 << (D.PGT_PHYS_BITS - g.page_shift)
        if not 0 <= pgd_pfn < max_pfn:
            raise _pgt_einval(f"pgd pfn {pgd_pfn:#x} outside the 52-bit physical space")
        self.geometry = g
        self.levels = levels
        self._nlev = levels
        self.pgd_pfn = pgd_pfn
        self.page_shift = g.page_shift
        self.page_offset = g.page_offset
        self.vmemmap_start = g.vmemmap_start
        self.max_physmem_bits = g.max_physmem_bits
        self._kernel_va_start = g.kernel_va_start
        self._x86 = g.arch == "x86_64"
        shifts, masks, lids, lid_ptrs, self._width, self._pmd_shift, self._pud_shift = g._layout
        for d in range(5):
            self._lid_ptrs[d] = lid_ptrs[d]
        for d in range(levels):
            self._shifts[d] = shifts[d]
            self._masks[d] = masks[d]
            self._lids[d] = lids[d]
        self._page_size = (<uint64_t> 1) << self.page_shift
        self._pfn_mask = (((<uint64_t> 1) << D.PGT_PHYS_BITS) - 1) & ~(self._page_size - 1)
        self._max_pfn = max_pfn
        self._va_top = ~(self._page_size - 1)
        self.pgdir_shift = self._shifts[0]
        self._alloc_arrays(16)
        self._slot_of = {}
        self._free_slots = []
        self._nr_slots = 0
        self._count[0] = self._count[1] = self._count[2] = 0
        self._unused_pmd_start = 0
        self._unused = {}
        self._fr_n = 0
        self._cleaf = not self._x86
        self._leaf_lid = self._lids[levels - 1]
        self._ncl = self._clcap = self._ncl_live = 0
        self._cl_free = []
        self._new_table(pgd_pfn, 0)

    # ------------------------------------------------------------------ table pages
    cdef _alloc_arrays(self, int64_t cap):
        ent = np.zeros((cap, self._width), np.uint64)
        child = np.full((cap, self._width), -1, np.int32)
        pfns = np.full(cap, -1, np.int64)
        lvl = np.full(cap, -1, np.int8)
        if self._ent_arr is not None:
            old = self._ent_arr.shape[0]
            ent[:old] = self._ent_arr
            child[:old] = self._child_arr
            pfns[:old] = self._pfn_arr
            lvl[:old] = self._lvl_arr
        self._ent_arr, self._child_arr, self._pfn_arr, self._lvl_arr = ent, child, pfns, lvl
        self._ent = ent
        self._child = child
        self._pfn = pfns
        self._lvl = lvl

    cdef int64_t _new_table(self, pfn, int lid) except -1:
        if not 0 <= pfn < self._max_pfn:
            raise RuntimeError(f"table allocator returned pfn {pfn:#x}")
        if pfn in self._slot_of or self._h_get(pfn) >= 0:
            raise RuntimeError(f"table allocator returned pfn {pfn:#x}, already a page table")
        if self._cleaf and lid == self._leaf_lid:
            return self._new_leaf(pfn)
        return self._new_dense(pfn, lid)

    cdef int64_t _new_leaf(self, int64_t pfn) except -1:
        """A compact, empty leaf table at ``pfn``."""
        cdef int64_t k, cap
        cdef pgt_leaf_t* p
        if self._cl_free:
            k = _pgt_heapq.heappop(self._cl_free)
        else:
            if self._ncl == self._clcap:
                cap = 2 * self._clcap if self._clcap else 64
                if cap > _PGT_CBASE:
                    raise MemoryError("too many leaf tables")
                p = <pgt_leaf_t*> realloc(self._cl, cap * sizeof(pgt_leaf_t))
                if p == NULL:
                    raise MemoryError()
                self._cl = p
                self._clcap = cap
            k = self._ncl
            self._ncl += 1
        self._cl[k].pfn = pfn
        self._cl[k].e0 = 0
        self._cl[k].lo = self._cl[k].hi = 0
        self._ncl_live += 1
        self._h_put(pfn, _PGT_CBASE + k)
        return _PGT_CBASE + k

    # pfn -> compact slot, in C: a Python dict entry would cost more than the table itself
    cdef inline int64_t _h_home(self, int64_t pfn) noexcept:
        # 8 consecutive pfns (tables taken one after the other) share one line of slots
        return <int64_t> ((((<uint64_t> (pfn >> 3) * <uint64_t> 0x9E3779B97F4A7C15) >> 20) << 3)
                          | ((<uint64_t> pfn) & 7)) & (self._hcap - 1)

    cdef int64_t _h_get(self, int64_t pfn) noexcept:
        cdef int64_t j
        if self._hn == 0:
            return -1
        j = self._h_home(pfn)
        while self._hk[j] != -1:
            if self._hk[j] == pfn:
                return self._hv[j]
            j = (j + 1) & (self._hcap - 1)
        return -1

    cdef int _h_put(self, int64_t pfn, int64_t slot) except -1:
        cdef int64_t j, k, cap, ocap = self._hcap
        cdef int64_t* ok = self._hk
        cdef int64_t* ov = self._hv
        if 2 * (self._hn + 1) > ocap:
            cap = 2 * ocap if ocap else 256
            self._hk = <int64_t*> malloc(cap * sizeof(int64_t))
            self._hv = <int64_t*> malloc(cap * sizeof(int64_t))
            if self._hk == NULL or self._hv == NULL:
                free(self._hk)
                free(self._hv)
                self._hk, self._hv = ok, ov
                raise MemoryError()
            memset(self._hk, 0xff, cap * sizeof(int64_t))
            self._hcap = cap
            self._hn = 0
            for k in range(ocap):
                if ok[k] != -1:
                    self._h_put(ok[k], ov[k])
            free(ok)
            free(ov)
        j = self._h_home(pfn)
        while self._hk[j] != -1:
            j = (j + 1) & (self._hcap - 1)
        self._hk[j] = pfn
        self._hv[j] = slot
        self._hn += 1
        return 0

    cdef void _h_del(self, int64_t pfn) noexcept:
        """Remove ``pfn`` (present), shifting later entries of its probe run back."""
        cdef int64_t j, k, h, m = self._hcap - 1
        j = self._h_home(pfn)
        while self._hk[j] != pfn:
            j = (j + 1) & m
        k = j
        while True:
            k = (k + 1) & m
            if self._hk[k] == -1:
                break
            h = self._h_home(self._hk[k])
            if (k - h) & m >= (k - j) & m:          # its home is not in (j, k]: move it to j
                self._hk[j] = self._hk[k]
                self._hv[j] = self._hv[k]
                j = k
        self._hk[j] = -1
        self._hn -= 1

    cdef int64_t _slot_lookup(self, int64_t pfn) except? -2:
        """The slot of the table page ``pfn``, or -1."""
        slot = self._slot_of.get(pfn)
        if slot is not None:
            return slot
        return self._h_get(pfn)

    cdef int64_t _new_dense(self, pfn, int lid) except -1:
        cdef int64_t slot
        if self._free_slots:
            slot = _pgt_heapq.heappop(self._free_slots)
        else:
            slot = self._nr_slots
            self._nr_slots += 1
            if slot >= self._pfn.shape[0]:
                self._alloc_arrays(2 * self._pfn.shape[0])
        self._pfn[slot] = pfn
        self._lvl[slot] = lid
        self._slot_of[pfn] = slot
        return slot

    cdef _release_table(self, int64_t slot):
        cdef int64_t k
        if slot >= _PGT_CBASE:
            k = slot - _PGT_CBASE
            self._h_del(self._cl[k].pfn)
            self._cl[k].pfn = -1
            self._cl[k].lo = self._cl[k].hi = 0
            self._ncl_live -= 1
            _pgt_heapq.heappush(self._cl_free, k)
            return
        del self._slot_of[self._pfn[slot]]
        self._ent[slot, :] = 0
        self._child[slot, :] = -1
        self._pfn[slot] = -1
        self._lvl[slot] = -1
        _pgt_heapq.heappush(self._free_slots, slot)

    cdef inline void _link(self, int64_t slot, int i, int64_t child) noexcept:
        """p?d_populate(): point entry i of table ``slot`` at table ``child`` (_PAGE_TABLE)."""
        self._ent[slot, i] = (<uint64_t> self._tpfn(child) << self.page_shift) | D._PAGE_TABLE
        self._child[slot, i] = <int32_t> child

    # ------------------------------------------------------------------ compact leaf tables
    cdef inline int64_t _tpfn(self, int64_t slot) noexcept:
        """The pfn of the table in ``slot`` (dense or compact)."""
        if slot >= _PGT_CBASE:
            return self._cl[slot - _PGT_CBASE].pfn
        return self._pfn[slot]

    cdef inline int _tlid(self, int64_t slot) noexcept:
        if slot >= _PGT_CBASE:
            return self._leaf_lid
        return self._lvl[slot]

    cdef inline uint64_t _eget(self, int64_t slot, int i) noexcept:
        """Entry i of the table in ``slot`` (dense or compact)."""
        cdef pgt_leaf_t* t
        if slot >= _PGT_CBASE:
            t = &self._cl[slot - _PGT_CBASE]
            if t.lo <= i < t.hi:
                return t.e0 + ((<uint64_t> (i - t.lo)) << self.page_shift)
            return 0
        return self._ent[slot, i]

    cdef inline int32_t _kid(self, int64_t slot, int i) noexcept:
        if slot >= _PGT_CBASE:
            return -1
        return self._child[slot, i]

    cdef bint _cl_set_run(self, int64_t slot, int a, int b, uint64_t v0) noexcept:
        """Set entries [a, b) of compact ``slot`` to v0, v0 + PAGE_SIZE, ... if the table stays
        one run (True); else change nothing (False)."""
        cdef pgt_leaf_t* t = &self._cl[slot - _PGT_CBASE]
        cdef int ps = self.page_shift
        if t.lo == t.hi:
            t.lo = a
            t.hi = b
            t.e0 = v0
            return True
        if v0 - ((<uint64_t> a) << ps) != t.e0 - ((<uint64_t> t.lo) << ps) or b < t.lo or \
                a > t.hi:
            return False
        if a < t.lo:
            t.e0 = v0
            t.lo = a
        if b > t.hi:
            t.hi = b
        return True

    cdef bint _cl_clear_run(self, int64_t slot, int a, int b) noexcept:
        """Clear entries [a, b) of compact ``slot`` if it stays one run (True); else change
        nothing (False)."""
        cdef pgt_leaf_t* t = &self._cl[slot - _PGT_CBASE]
        if b <= t.lo or a >= t.hi:
            return True
        if a <= t.lo and b >= t.hi:
            t.lo = t.hi = 0
        elif a <= t.lo:
            t.e0 += (<uint64_t> (b - t.lo)) << self.page_shift
            t.lo = b
        elif b >= t.hi:
            t.hi = a
        else:
            return False
        return True

    cdef int64_t _pgt_materialize(self, int64_t parent, int pi, int64_t slot) except -1:
        """Turn compact ``slot`` (entry ``pi`` of table ``parent`` points at it) into a dense
        row holding the same entries; the new slot."""
        cdef pgt_leaf_t t = self._cl[slot - _PGT_CBASE]
        cdef int64_t d
        cdef int i
        self._release_table(slot)
        d = self._new_dense(t.pfn, self._leaf_lid)
        for i in range(t.lo, t.hi):
            self._ent[d, i] = t.e0 + ((<uint64_t> (i - t.lo)) << self.page_shift)
        self._child[parent, pi] = <int32_t> d
        return d

    cdef inline void _clear(self, int64_t slot, int i) noexcept:
        self._ent[slot, i] = 0
        self._child[slot, i] = -1

    cdef bint _table_empty(self, int64_t slot) noexcept:
        cdef int i, n
        if slot >= _PGT_CBASE:
            return self._cl[slot - _PGT_CBASE].lo == self._cl[slot - _PGT_CBASE].hi
        n = self._lid_ptrs[self._lvl[slot]]
        for i in range(n):
            if not _pgt_none(self._ent[slot, i]):
                return False
        return True

    cdef _require_arch(self, str arch, str what):
        if self.geometry.arch != arch:
            raise _pgt_einval(f"{what}: {arch} page-table code on the {self.geometry.name} "
                              "geometry")

    # ------------------------------------------------------------------ argument checks
    cdef tuple _check_va_range(self, start, end, str what):
        start, end = _pgt_as_ints(start, end, what)
        pm = self._page_size - 1
        if start & pm:
            raise _pgt_einval(f"{what}: start {start:#x} not page-aligned")
        if end & pm:
            raise _pgt_einval(f"{what}: end {end:#x} not page-aligned")
        if end <= start:
            raise _pgt_einval(f"{what}: end {end:#x} <= start {start:#x}")
        if start < self._kernel_va_start or end > self._va_top:
            raise _pgt_einval(f"{what}: [{start:#x}, {end:#x}) outside the kernel half of the "
                              f"{self.levels}-level address space")
        return start, end

    cdef int _scan(self, int64_t slot, int d, uint64_t lo, uint64_t hi) noexcept:
        """Leaves met at PUD level and above (bit 0), PMD leaves (bit 1) and PMD tables
        (bit 2) over [lo, hi), existing tables only."""
        cdef int found = 0, sh = self._shifts[d], i
        cdef int pmd_depth = self._nlev - 2
        cdef uint64_t addr = lo, nxt, e
        cdef int32_t c
        while addr < hi:
            nxt = _pgt_addr_end(addr, hi, sh)
            i = (addr >> sh) & self._masks[d]
            e = self._ent[slot, i]
            c = self._child[slot, i]
            if not _pgt_none(e):
                if d < pmd_depth:
                    if c < 0:
                        found |= 1
                    else:
                        found |= self._scan(c, d + 1, addr, nxt)
                elif c < 0:
                    found |= 2
                else:
                    found |= 4
            addr = nxt
        return found

    # ------------------------------------------------------------------ vmemmap populate
    cdef int64_t _vmemmap_populate_tables(self, uint64_t addr, int depth, node,
                                          alloc_table) except? -2:
        """mm/sparse-vmemmap.c:vmemmap_pgd_populate .. vmemmap_pmd_populate (6.1): the slot of
        the table at ``depth`` mapping addr, missing tables allocated on the way; -1 on failure.
        4-level: pgd_none() is always false and the "p4d" step fills the PGD entry with a PUD
        table -- the same allocations as this walk. A folded level allocates nothing."""
        cdef int64_t slot = 0, c
        cdef int d, i
        cdef uint64_t e
        cdef bint none, x86_l5 = self._x86 and self._nlev == 5
        for d in range(depth):
            i = (addr >> self._shifts[d]) & self._masks[d]
            self._vp_parent = slot
            self._vp_index = i
            e = self._ent[slot, i]
            none = (e == 0) if (d == 0 and x86_l5) else _pgt_none(e)
            if none:
                pfn = _pgt_take(alloc_table, self._lids[d + 1], 1, node)
                if pfn < 0:
                    return -1
                c = self._new_table(pfn, self._lids[d + 1])
                self._link(slot, i, c)
                slot = c
            else:
                slot = self._child[slot, i]
        return slot

    cdef int _populate_basepages(self, uint64_t start, uint64_t end, node, alloc_page,
                                 alloc_table) except? -1:
        """mm/sparse-vmemmap.c:vmemmap_populate_range with reuse NULL (6.1)."""
        cdef int depth = self._nlev - 1, i, ps = self.page_shift
        cdef uint64_t addr = start, mask = self._masks[self._nlev - 1]
        cdef int64_t t, pfn
        while addr < end:
            t = self._vmemmap_populate_tables(addr, depth, node, alloc_table)
            if t < 0:
                return -_errno.ENOMEM
            i = (addr >> ps) & mask
            if _pgt_none(self._eget(t, i)):
                pfn = _pgt_take(alloc_page, -1, 1, node)
                if pfn < 0:
                    return -_errno.ENOMEM
                if pfn >= self._max_pfn:
                    raise RuntimeError(f"page allocator returned pfn {pfn:#x}")
                if t >= _PGT_CBASE and \
                        not self._cl_set_run(t, i, i + 1, (<uint64_t> pfn << ps) | D.PAGE_KERNEL):
                    t = self._pgt_materialize(self._vp_parent, self._vp_index, t)
                if t < _PGT_CBASE:
                    self._ent[t, i] = (<uint64_t> pfn << ps) | D.PAGE_KERNEL
            addr += self._page_size
        return 0

    def vmemmap_populate_basepages(self, start, end, node, alloc_page, alloc_table):
        """mm/sparse-vmemmap.c:vmemmap_populate_basepages (6.1): map [start, end) with 4 KiB
        pages from ``alloc_page(1, node)``; page tables from ``alloc_table``. 0 or -ENOMEM
        (partial state is left in place, as the kernel leaves it)."""
        start, end = self._check_va_range(start, end, "vmemmap_populate_basepages")
        if not callable(alloc_page) or not callable(alloc_table):
            raise _pgt_einval("vmemmap_populate_basepages: alloc_page and alloc_table must be "
                              "callable")
        if self._scan(0, 0, start, end) & 3:
            raise _pgt_einval(f"vmemmap_populate_basepages: [{start:#x}, {end:#x}) is mapped by "
                              "a huge leaf; the kernel would use it as a page table")
        return self._populate_basepages(start, end, node, alloc_page, alloc_table)

    # ------------------------------------------------------------------ deferred frees
    # The removal walks only record what they free, in walk order, in a C array; the public
    # method hands the requests to the caller's free_data / free_table after the walk (as the
    # twin does), so no Python code runs inside the loops. Same calls, same order.
    cdef int _defer_free(self, int64_t kind, int64_t pfn, int64_t arg) except -1:
        cdef int64_t cap
        cdef int64_t* p
        if self._fr_n == self._fr_cap:
            cap = 2 * self._fr_cap if self._fr_cap else 64
            p = <int64_t*> realloc(self._fr, 3 * cap * sizeof(int64_t))
            if p == NULL:
                raise MemoryError()
            self._fr = p
            self._fr_cap = cap
        p = self._fr + 3 * self._fr_n
        p[0] = kind
        p[1] = pfn
        p[2] = arg
        self._fr_n += 1
        return 0

    cdef _flush_frees(self, free_data, free_table):
        cdef int64_t k, n = self._fr_n
        cdef int64_t* p
        self._fr_n = 0
        if not n:
            return
        p = <int64_t*> malloc(3 * n * sizeof(int64_t))    # a callback may re-enter this object
        if p == NULL:
            raise MemoryError()
        memcpy(p, self._fr, 3 * n * sizeof(int64_t))
        try:
            for k in range(n):
                if p[3 * k] == _PGT_FREE_TABLE:
                    free_table(p[3 * k + 1], PGTABLE_LEVEL_NAMES[p[3 * k + 2]])
                else:
                    free_data(p[3 * k + 1], p[3 * k + 2])
        finally:
            free(p)

    def __dealloc__(self):
        free(self._fr)
        free(self._cl)
        free(self._hk)
        free(self._hv)

    # ------------------------------------------------------------------ inspection
    def walk(self, va):
        """[(level_name, table_pfn, index, entry)] from the PGD down to the leaf or the first
        empty entry."""
        cdef uint64_t c_va, e
        cdef int64_t slot = 0
        cdef int d, i
        cdef int32_t c
        if not 0 <= va <= 0xFFFFFFFFFFFFFFFF:
            raise _pgt_einval(f"walk: {va!r} is not a 64-bit address")
        c_va = va
        out = []
        for d in range(self._nlev):
            i = (c_va >> self._shifts[d]) & self._masks[d]
            e = self._eget(slot, i)
            out.append((PGTABLE_LEVEL_NAMES[self._lids[d]], self._tpfn(slot), i, e))
            c = self._kid(slot, i)
            if _pgt_none(e) or c < 0:
                break
            slot = c
        return out

    def lookup(self, va):
        """(level_name, entry) of the leaf mapping va, or None."""
        w = self.walk(va)
        name, _, _, e = w[len(w) - 1]
        if _pgt_none(e) or (name != "PTE" and not e & D._PAGE_PSE):
            return None
        return name, e

    def nr_tables(self, level_name):
        """Number of table pages of that level ("PGD" .. "PTE")."""
        cdef int64_t s, n = 0
        lid = _PGT_LEVEL_ID.get(level_name)
        if lid is None:
            raise _pgt_einval(f"nr_tables: unknown level {level_name!r}")
        for s in range(self._nr_slots):
            if self._lvl[s] == lid:
                n += 1
        if self._cleaf and lid == self._leaf_lid:
            n += self._ncl_live
        return n

    def table_pfns(self, level_name):
        """Sorted pfns of the table pages of that level."""
        cdef int64_t s
        lid = _PGT_LEVEL_ID.get(level_name)
        if lid is None:
            raise _pgt_einval(f"table_pfns: unknown level {level_name!r}")
        out = [self._pfn[s] for s in range(self._nr_slots) if self._lvl[s] == lid]
        if self._cleaf and lid == self._leaf_lid:
            out += [self._cl[s].pfn for s in range(self._ncl) if self._cl[s].pfn >= 0]
        return sorted(out)

    def entries(self, table_pfn):
        """A copy of the entries (PTRS_PER_<level> of them) of table page ``table_pfn``."""
        cdef int64_t s
        slot = self._slot_of.get(table_pfn)
        if slot is None and table_pfn in range(self._max_pfn):
            slot = self._h_get(int(table_pfn))
        if slot is None or slot < 0:
            raise _pgt_einval(f"entries: pfn {table_pfn:#x} is not a page table")
        s = slot
        return self._entries_of(s)

    cdef object _entries_of(self, int64_t s):
        """A numpy copy of the entries of the table in slot ``s``."""
        cdef pgt_leaf_t* t
        if s < _PGT_CBASE:
            return self._ent_arr[s, :self._lid_ptrs[self._lvl[s]]].copy()
        t = &self._cl[s - _PGT_CBASE]
        out = np.zeros(self._lid_ptrs[self._leaf_lid], np.uint64)
        if t.hi > t.lo:
            out[t.lo:t.hi] = (np.arange(t.hi - t.lo, dtype=np.uint64)
                              << np.uint64(self.page_shift)) + np.uint64(t.e0)
        return out

    def state(self):
        """A canonical, comparable snapshot (same layout as the twin's)."""
        cdef int64_t s
        cdef int n
        tables = []
        pfns = list(self._slot_of)
        pfns += [self._cl[s].pfn for s in range(self._ncl) if self._cl[s].pfn >= 0]
        for pfn in sorted(pfns):
            s = self._slot_lookup(pfn)
            n = self._lid_ptrs[self._tlid(s)]
            kids = (self._child_arr[s, :n] >= 0) if s < _PGT_CBASE else np.zeros(n, bool)
            tables.append((pfn, PGTABLE_LEVEL_NAMES[self._tlid(s)],
                           self._entries_of(s).tobytes(), np.packbits(kids).tobytes()))
        unused = []
        for va in sorted(self._unused):
            rec = self._unused[va]
            if not rec.any():
                continue
            d = np.diff(np.concatenate(([0], rec.astype(np.int8), [0])))
            starts = np.flatnonzero(d == 1) << D.STRUCT_PAGE_MAX_SHIFT
            ends = np.flatnonzero(d == -1) << D.STRUCT_PAGE_MAX_SHIFT
            unused.append((va, tuple(zip(starts.tolist(), ends.tolist()))))
        geo = self.levels if self._x86 else (self.levels, self.geometry)
        return (geo, self.pgd_pfn, tuple(tables),
                (self._count[0], self._count[1], self._count[2]),
                self._unused_pmd_start, tuple(unused))

    def __repr__(self):
        geo = "" if self._x86 else f", geometry={self.geometry.name}"
        return (f"PageTables(levels={self.levels}, pgd_pfn={self.pgd_pfn:#x}{geo}, "
                f"tables={len(self._slot_of) + self._ncl_live})")
