# init_mm's kernel page tables, Linux 6.1: x86-64 and arm64 (compiled). Twin:
# hotmem/_py/pgtable.py, which describes the storage, the geometry and the sub-PMD bookkeeping;
# the constants and PageTableGeometry: hotmem/defs.py (D.*: hotmem/defs.pxd).
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


cdef inline bint _pgt_range_aligned(uint64_t start, uint64_t end, uint64_t floor,
                                    uint64_t ceiling, uint64_t mask) noexcept nogil:
    """arch/arm64/mm/mmu.c:pgtable_range_aligned (6.1)."""
    start &= mask
    if start < floor:
        return False
    if ceiling:
        ceiling &= mask
        if not ceiling:
            return False
    return end - 1 <= ceiling - 1


cdef class PageTables:
    """Models init_mm.pgd and the kernel page-table code of Linux 6.1 (x86-64 and arm64).

    Compiled twin of hotmem/_py/pgtable.py:PageTables (same methods, results and state).
    """
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
        cdef int64_t slot
        if not 0 <= pfn < self._max_pfn:
            raise RuntimeError(f"table allocator returned pfn {pfn:#x}")
        if pfn in self._slot_of:
            raise RuntimeError(f"table allocator returned pfn {pfn:#x}, already a page table")
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
        del self._slot_of[self._pfn[slot]]
        self._ent[slot, :] = 0
        self._child[slot, :] = -1
        self._pfn[slot] = -1
        self._lvl[slot] = -1
        _pgt_heapq.heappush(self._free_slots, slot)

    cdef inline void _link(self, int64_t slot, int i, int64_t child) noexcept:
        """p?d_populate(): point entry i of table ``slot`` at table ``child`` (_PAGE_TABLE)."""
        self._ent[slot, i] = (<uint64_t> self._pfn[child] << self.page_shift) | D._PAGE_TABLE
        self._child[slot, i] = <int32_t> child

    cdef inline void _clear(self, int64_t slot, int i) noexcept:
        self._ent[slot, i] = 0
        self._child[slot, i] = -1

    cdef bint _table_empty(self, int64_t slot) noexcept:
        cdef int i, n = self._lid_ptrs[self._lvl[slot]]
        for i in range(n):
            if not _pgt_none(self._ent[slot, i]):
                return False
        return True

    cdef int64_t _alloc_low_page(self, int lid, node, alloc_table) except -1:
        """arch/x86/mm/init.c:alloc_low_page after boot (GFP_ATOMIC | __GFP_ZERO)."""
        pfn = _pgt_take(alloc_table, lid, 1, node)
        if pfn < 0:
            # 6.1 does not check: the phys_*_init below it dereferences NULL (oops).
            raise HotplugError(_errno.ENOMEM, f"alloc_low_page for a {PGTABLE_LEVEL_NAMES[lid]} "
                               "table failed: 6.1 would oops on the NULL table")
        return self._new_table(pfn, lid)

    cdef inline void _update_page_count(self, int k, uint64_t pages) noexcept:
        """arch/x86/mm/pat/set_memory.c:update_page_count: unsigned long, wraps."""
        self._count[k] += pages

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

    # ------------------------------------------------------------------ sub-PMD vmemmap
    cdef bint _pmd_leaf_at(self, uint64_t va) noexcept:
        cdef int64_t slot = 0
        cdef int d
        cdef uint64_t e
        for d in range(self._nlev - 2):
            slot = self._child[slot, (va >> self._shifts[d]) & self._masks[d]]
            if slot < 0:
                return False
        e = self._ent[slot, (va >> 21) & 511]
        return not _pgt_none(e) and (e & D._PAGE_PSE) != 0

    cdef _memset_vmemmap(self, uint64_t start, uint64_t end, bint unused):
        """memset(start, PAGE_UNUSED or 0, end - start) inside one PMD leaf, in 64-byte chunks.
        Writes to anything but a PMD leaf are not tracked (no check ever reads them)."""
        cdef uint64_t pmd_va
        if end <= start:
            return
        pmd_va = start & ~(D.PMD_SIZE - 1)
        if not self._pmd_leaf_at(pmd_va):
            return
        rec = self._unused.get(pmd_va)
        if rec is None:
            if not unused:
                return
            rec = np.zeros(D.VMEMMAP_CHUNKS_PER_PMD, np.uint8)
            self._unused[pmd_va] = rec
        rec[(start - pmd_va) >> D.STRUCT_PAGE_MAX_SHIFT:
            (end - pmd_va) >> D.STRUCT_PAGE_MAX_SHIFT] = 1 if unused else 0

    cdef _drop_unused(self, uint64_t pmd_va):
        self._unused.pop(pmd_va, None)

    cdef _vmemmap_flush_unused_pmd(self):
        """arch/x86/mm/init_64.c:vmemmap_flush_unused_pmd (6.1)."""
        cdef uint64_t u = self._unused_pmd_start
        if not u:
            return
        self._memset_vmemmap(u, (u + D.PMD_SIZE - 1) & ~(D.PMD_SIZE - 1), True)
        self._unused_pmd_start = 0

    cdef bint _vmemmap_pmd_is_unused(self, uint64_t addr, uint64_t end) except -1:
        """arch/x86/mm/init_64.c:vmemmap_pmd_is_unused (6.1)."""
        cdef uint64_t start = addr & ~(D.PMD_SIZE - 1)
        self._vmemmap_flush_unused_pmd()
        self._memset_vmemmap(addr, end, True)
        rec = self._unused.get(start)
        return rec is not None and bool(rec.all())

    cdef _vmemmap_mark_sub_pmd_used(self, uint64_t start):
        """arch/x86/mm/init_64.c:__vmemmap_use_sub_pmd (6.1): zero one struct page at start."""
        self._memset_vmemmap(start, start + (1 << D.STRUCT_PAGE_MAX_SHIFT), False)

    cdef _vmemmap_use_sub_pmd(self, uint64_t start, uint64_t end):
        """arch/x86/mm/init_64.c:vmemmap_use_sub_pmd (6.1)."""
        if self._unused_pmd_start == start:
            self._unused_pmd_start = 0 if not end & (D.PMD_SIZE - 1) else end
            return
        self._vmemmap_flush_unused_pmd()
        self._vmemmap_mark_sub_pmd_used(start)

    cdef _vmemmap_use_new_sub_pmd(self, uint64_t start, uint64_t end):
        """arch/x86/mm/init_64.c:vmemmap_use_new_sub_pmd (6.1)."""
        cdef uint64_t page = start & ~(D.PMD_SIZE - 1)
        self._vmemmap_flush_unused_pmd()
        self._vmemmap_mark_sub_pmd_used(start)
        if start & (D.PMD_SIZE - 1):
            self._memset_vmemmap(page, start, True)
        if end & (D.PMD_SIZE - 1):
            self._unused_pmd_start = end

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
            if _pgt_none(self._ent[t, i]):
                pfn = _pgt_take(alloc_page, -1, 1, node)
                if pfn < 0:
                    return -_errno.ENOMEM
                if pfn >= self._max_pfn:
                    raise RuntimeError(f"page allocator returned pfn {pfn:#x}")
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

    def vmemmap_populate_hugepages(self, start, end, node, alloc_block, alloc_table,
                                   fallback_alloc_page, alloc_page=None):
        """arch/x86/mm/init_64.c:vmemmap_populate_hugepages (6.1); see the twin for details.
        Returns 0 or -ENOMEM; the kernel does not unwind, nor does this. x86 only."""
        cdef uint64_t addr, nxt, e, c_end
        cdef int64_t t, pfn
        cdef int depth = self._nlev - 2, i, found
        self._require_arch("x86_64", "vmemmap_populate_hugepages")
        start, end = self._check_va_range(start, end, "vmemmap_populate_hugepages")
        if not (callable(alloc_block) and callable(alloc_table)
                and _pgt_callable_or_none(fallback_alloc_page)
                and _pgt_callable_or_none(alloc_page)):
            raise _pgt_einval("vmemmap_populate_hugepages: allocators must be callable "
                              "(fallback/alloc_page may be None)")
        base_alloc = alloc_page if alloc_page is not None else fallback_alloc_page
        found = self._scan(0, 0, start, end)
        if found & 1:
            raise _pgt_einval(f"vmemmap_populate_hugepages: [{start:#x}, {end:#x}) crosses a "
                              "PUD leaf")
        if found & 4 and base_alloc is None:
            raise _pgt_einval("vmemmap_populate_hugepages: a PMD in the range is a PTE table and "
                              "no base-page allocator was given")
        addr = start
        c_end = end
        while addr < c_end:
            nxt = _pgt_addr_end(addr, c_end, 21)
            t = self._vmemmap_populate_tables(addr, depth, node, alloc_table)
            if t < 0:
                return -_errno.ENOMEM
            i = (addr >> 21) & 511
            e = self._ent[t, i]
            if _pgt_none(e):
                pfn = _pgt_take(alloc_block, -1, 512, node)
                if pfn >= 0:
                    if pfn >= <int64_t> D.PGT_MAX_PFN or pfn & 511:
                        raise RuntimeError(f"block allocator returned pfn {pfn:#x}")
                    self._ent[t, i] = ((<uint64_t> pfn << 12) & D.PHYSICAL_PMD_PAGE_MASK) | \
                        D.PAGE_KERNEL_LARGE
                    if (addr | nxt) & (D.PMD_SIZE - 1):
                        self._vmemmap_use_new_sub_pmd(addr, nxt)
                    addr = nxt
                    continue
                if fallback_alloc_page is None:
                    return -_errno.ENOMEM       # no fallback with an altmap
                page_alloc = fallback_alloc_page
            elif e & D._PAGE_PSE:
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
        """arch/x86/mm/init_64.c:remove_pagetable (6.1); see the twin for details. x86 only."""
        cdef uint64_t addr, nxt, c_end
        cdef int sh = self.pgdir_shift, i
        cdef bint c_direct, c_free_pud, c_has_free_data
        self._require_arch("x86_64", "remove_pagetable")
        start, end = self._check_va_range(start, end, "remove_pagetable")
        if not callable(free_table) or not _pgt_callable_or_none(free_data) or \
                (free_data is None and not direct):
            raise _pgt_einval("remove_pagetable: free_table (and free_data for the vmemmap) must "
                              "be callable")
        c_direct = bool(direct)
        c_free_pud = bool(free_pud_tables)
        c_has_free_data = free_data is not None
        addr = start
        c_end = end
        self._fr_n = 0
        while addr < c_end:
            nxt = _pgt_addr_end(addr, c_end, sh)
            i = (addr >> sh) & 511
            if self._nlev == 5:
                if self._ent[0, i] & D._PAGE_PRESENT:                   # pgd_present
                    self._remove_p4d_table(self._child[0, i], addr, nxt, c_direct,
                                           c_has_free_data, c_free_pud)
            else:
                # pgd_present() is 1 and p4d_offset() is the PGD entry itself
                self._remove_p4d_table(0, addr, nxt, c_direct, c_has_free_data, c_free_pud)
            addr = nxt
        # flush_tlb_all()
        self._flush_frees(free_data, free_table)

    cdef int _remove_p4d_table(self, int64_t slot, uint64_t addr, uint64_t end, bint direct,
                               bint has_free_data, bint free_pud_tables) except -1:
        """arch/x86/mm/init_64.c:remove_p4d_table (6.1); 4-level: ``slot`` is the PGD."""
        cdef uint64_t nxt
        cdef int i
        cdef int64_t pud
        while addr < end:
            nxt = _pgt_addr_end(addr, end, D.P4D_SHIFT)
            i = (addr >> D.P4D_SHIFT) & 511
            if self._ent[slot, i] & D._PAGE_PRESENT:
                pud = self._child[slot, i]
                self._remove_pud_table(pud, addr, nxt, direct, has_free_data)
                if free_pud_tables:
                    self._free_table_if_empty(pud, slot, i)
            addr = nxt
        return 0

    cdef int _remove_pud_table(self, int64_t slot, uint64_t addr, uint64_t end, bint direct,
                               bint has_free_data) except -1:
        """arch/x86/mm/init_64.c:remove_pud_table (6.1)."""
        cdef uint64_t nxt, e, pages = 0
        cdef int i
        cdef int64_t c
        while addr < end:
            nxt = _pgt_addr_end(addr, end, 30)
            i = (addr >> 30) & 511
            e = self._ent[slot, i]
            if e & D._PAGE_PRESENT:
                c = self._child[slot, i]
                if (e & (D._PAGE_PSE | D._PAGE_PRESENT)) == (D._PAGE_PSE | D._PAGE_PRESENT) and \
                        not addr & (D.PUD_SIZE - 1) and not nxt & (D.PUD_SIZE - 1):
                    self._clear(slot, i)
                    pages += 1
                elif c >= 0:
                    self._remove_pmd_table(c, addr, nxt, direct, has_free_data)
                    self._free_table_if_empty(c, slot, i)
                else:
                    # 1G leaf only partly covered: its first data page is walked as a PMD
                    # table; modelled as reading zeros (see the twin).
                    self._defer_free(_PGT_FREE_TABLE, (e & D.PHYSICAL_PUD_PAGE_MASK) >> 12,
                                     3)                       # level id 3: "PMD"
                    self._clear(slot, i)
            addr = nxt
        if direct:
            self._update_page_count(2, -pages)
        return 0

    cdef int _remove_pmd_table(self, int64_t slot, uint64_t addr, uint64_t end, bint direct,
                               bint has_free_data) except -1:
        """arch/x86/mm/init_64.c:remove_pmd_table (6.1)."""
        cdef uint64_t nxt, e, pages = 0, pfn
        cdef int i
        cdef int64_t c
        while addr < end:
            nxt = _pgt_addr_end(addr, end, 21)
            i = (addr >> 21) & 511
            e = self._ent[slot, i]
            if e & (D._PAGE_PRESENT | D._PAGE_PROTNONE | D._PAGE_PSE):           # pmd_present
                if e & D._PAGE_PSE:
                    pfn = (e & D.PHYSICAL_PMD_PAGE_MASK) >> 12
                    if not addr & (D.PMD_SIZE - 1) and not nxt & (D.PMD_SIZE - 1):
                        if not direct:                            # free_hugepage_table
                            self._defer_free(_PGT_FREE_DATA, pfn, 512)
                        self._clear(slot, i)
                        self._drop_unused(addr)
                        pages += 1
                    elif self._vmemmap_pmd_is_unused(addr, nxt):
                        # reached for the direct map too; the kernel then frees the RAM itself
                        if has_free_data:
                            self._defer_free(_PGT_FREE_DATA, pfn, 512)
                        self._clear(slot, i)
                        self._drop_unused(addr & ~(D.PMD_SIZE - 1))
                else:
                    c = self._child[slot, i]
                    self._remove_pte_table(c, addr, nxt, direct)
                    self._free_table_if_empty(c, slot, i)
            addr = nxt
        if direct:
            self._update_page_count(1, -pages)
        return 0

    cdef int _remove_pte_table(self, int64_t slot, uint64_t addr, uint64_t end,
                               bint direct) except -1:
        """arch/x86/mm/init_64.c:remove_pte_table (6.1)."""
        cdef uint64_t nxt, e, pages = 0
        cdef int i
        while addr < end:
            nxt = (addr + 4096) & ~(<uint64_t> 0xFFF)
            if nxt > end:
                nxt = end
            i = (addr >> 12) & 511
            e = self._ent[slot, i]
            if e & (D._PAGE_PRESENT | D._PAGE_PROTNONE):                      # pte_present
                # "[0,1G) is mapped by head_64.S": pte_val() + virtual address, as 6.1 adds them
                if e + (addr & ~(<uint64_t> 0xFFF)) < 0x40000000:
                    return 0
                if not direct:
                    self._defer_free(_PGT_FREE_DATA, (e & D.PTE_PFN_MASK) >> 12, 1)
                self._clear(slot, i)
                pages += 1
            addr = nxt
        if direct:
            self._update_page_count(0, -pages)
        return 0

    cdef int _free_table_if_empty(self, int64_t slot, int64_t parent, int i) except -1:
        """arch/x86/mm/init_64.c:free_pte_table / free_pmd_table / free_pud_table (6.1)."""
        if not self._table_empty(slot):
            return 0
        self._defer_free(_PGT_FREE_TABLE, self._pfn[slot], self._lvl[slot])
        self._release_table(slot)
        self._clear(parent, i)
        return 0

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

    # ------------------------------------------------------------------ direct map
    def kernel_physical_mapping_init(self, paddr_start, paddr_end, page_size, alloc_table, node):
        """arch/x86/mm/init_64.c:kernel_physical_mapping_init (6.1, after boot) for one run of
        split_mem_range; see the twin. Returns the last mapped physical address; a table
        allocation failure raises HotplugError(ENOMEM) (6.1 would oops). x86 only."""
        cdef int mask
        self._require_arch("x86_64", "kernel_physical_mapping_init")
        if page_size == 4096:
            mask = 0
        elif page_size == D.PMD_SIZE:
            mask = (1 << D.PG_LEVEL_2M)
        elif page_size == D.PUD_SIZE:
            mask = (1 << D.PG_LEVEL_2M) | (1 << D.PG_LEVEL_1G)
        else:
            raise _pgt_einval(f"kernel_physical_mapping_init: page size {page_size!r}")
        paddr_start, paddr_end = _pgt_as_ints(paddr_start, paddr_end,
                                              "kernel_physical_mapping_init")
        if paddr_start % page_size or paddr_end % page_size:
            raise _pgt_einval(f"kernel_physical_mapping_init: [{paddr_start:#x}, "
                              f"{paddr_end:#x}) not aligned to {page_size:#x}")
        if not 0 <= paddr_start < paddr_end <= (<uint64_t> 1) << self.max_physmem_bits:
            raise _pgt_einval(f"kernel_physical_mapping_init: [{paddr_start:#x}, "
                              f"{paddr_end:#x}) empty or beyond MAX_PHYSMEM_BITS "
                              f"{self.max_physmem_bits}")
        if not callable(alloc_table):
            raise _pgt_einval("kernel_physical_mapping_init: alloc_table must be callable")
        return self._kernel_physical_mapping_init(paddr_start, paddr_end, mask, D.PAGE_KERNEL,
                                                  alloc_table, node)

    cdef uint64_t _kernel_physical_mapping_init(self, uint64_t paddr_start, uint64_t paddr_end,
                                                int mask, uint64_t prot, alloc_table,
                                                node) except *:
        """arch/x86/mm/init_64.c:__kernel_physical_mapping_init (6.1)."""
        cdef uint64_t po = self.page_offset, paddr_last = paddr_end
        cdef uint64_t vaddr = po + paddr_start, vaddr_end = po + paddr_end, vaddr_next
        cdef int sh = self.pgdir_shift, i
        cdef int64_t p4d
        while vaddr < vaddr_end:
            i = (vaddr >> sh) & 511
            vaddr_next = (vaddr & ~((<uint64_t> 1 << sh) - 1)) + (<uint64_t> 1 << sh)
            if self._ent[0, i]:                                          # pgd_val(*pgd)
                paddr_last = self._phys_p4d_init(self._child[0, i], vaddr - po, vaddr_end - po,
                                                 mask, prot, alloc_table, node)
            else:
                p4d = self._alloc_low_page(self._lids[1], node, alloc_table)
                paddr_last = self._phys_p4d_init(p4d, vaddr - po, vaddr_end - po, mask, prot,
                                                 alloc_table, node)
                self._link(0, i, p4d)     # pgd_populate (5-level) / p4d_populate (4-level)
            vaddr = vaddr_next
        # sync_global_pgds(): other PGDs are not modelled
        return paddr_last

    cdef uint64_t _phys_p4d_init(self, int64_t slot, uint64_t paddr, uint64_t paddr_end,
                                 int mask, uint64_t prot, alloc_table,
                                 node) except *:
        """arch/x86/mm/init_64.c:phys_p4d_init (6.1)."""
        cdef uint64_t po = self.page_offset, paddr_last = paddr_end
        cdef uint64_t vaddr, vaddr_end, vaddr_next
        cdef int i
        cdef int64_t pud
        if self._nlev == 4:
            return self._phys_pud_init(slot, paddr, paddr_end, mask, prot, alloc_table, node)
        vaddr = po + paddr
        vaddr_end = po + paddr_end
        while vaddr < vaddr_end:
            i = (vaddr >> D.P4D_SHIFT) & 511
            vaddr_next = (vaddr & ~((<uint64_t> 1 << D.P4D_SHIFT) - 1)) + \
                (<uint64_t> 1 << D.P4D_SHIFT)
            paddr = vaddr - po
            if paddr < paddr_end:
                if not _pgt_none(self._ent[slot, i]):
                    paddr_last = self._phys_pud_init(self._child[slot, i], paddr,
                                                     vaddr_end - po, mask, prot, alloc_table, node)
                else:
                    pud = self._alloc_low_page(2, node, alloc_table)
                    paddr_last = self._phys_pud_init(pud, paddr, vaddr_end - po, mask, prot,
                                                     alloc_table, node)
                    self._link(slot, i, pud)
            vaddr = vaddr_next
        return paddr_last

    cdef uint64_t _phys_pud_init(self, int64_t slot, uint64_t paddr, uint64_t paddr_end,
                                 int mask, uint64_t prot0, alloc_table,
                                 node) except *:
        """arch/x86/mm/init_64.c:phys_pud_init (6.1, after_bootmem)."""
        cdef uint64_t po = self.page_offset, pages = 0, paddr_last = paddr_end
        cdef uint64_t paddr_next, e, prot
        cdef int i = ((po + paddr) >> 30) & 511, j
        cdef int64_t pmd
        cdef bint done
        while i < 512:
            j = ((po + paddr) >> 30) & 511
            paddr_next = (paddr & ~(D.PUD_SIZE - 1)) + D.PUD_SIZE
            if paddr < paddr_end:
                prot = prot0
                e = self._ent[slot, j]
                done = False
                if not _pgt_none(e):
                    if (e & (D._PAGE_PSE | D._PAGE_PRESENT)) != (D._PAGE_PSE | D._PAGE_PRESENT):
                        paddr_last = self._phys_pmd_init(self._child[slot, j], paddr, paddr_end,
                                                         mask, prot, alloc_table, node)
                        done = True
                    elif mask & (1 << D.PG_LEVEL_1G):
                        paddr_last = paddr_next
                        done = True
                    else:
                        prot = e & D.PTE_FLAGS_MASK & ~D._PAGE_PSE    # split the 1G leaf
                if not done:
                    if mask & (1 << D.PG_LEVEL_1G):
                        pages += 1
                        self._ent[slot, j] = (paddr & D.PHYSICAL_PUD_PAGE_MASK) | prot | D._PAGE_PSE
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

    cdef uint64_t _phys_pmd_init(self, int64_t slot, uint64_t paddr, uint64_t paddr_end,
                                 int mask, uint64_t prot, alloc_table,
                                 node) except *:
        """arch/x86/mm/init_64.c:phys_pmd_init (6.1, after_bootmem)."""
        cdef uint64_t pages = 0, paddr_last = paddr_end, paddr_next, e, new_prot
        cdef int i = (paddr >> 21) & 511, j
        cdef int64_t pte
        cdef bint done
        while i < 512:
            j = (paddr >> 21) & 511
            paddr_next = (paddr & ~(D.PMD_SIZE - 1)) + D.PMD_SIZE
            if paddr < paddr_end:
                new_prot = prot
                e = self._ent[slot, j]
                done = False
                if not _pgt_none(e):
                    if not e & D._PAGE_PSE:
                        paddr_last = self._phys_pte_init(self._child[slot, j], paddr, paddr_end,
                                                         prot)
                        done = True
                    elif mask & (1 << D.PG_LEVEL_2M):
                        paddr_last = paddr_next
                        done = True
                    else:
                        new_prot = e & D.PTE_FLAGS_MASK & ~D._PAGE_PSE   # split the 2M leaf
                if not done:
                    if mask & (1 << D.PG_LEVEL_2M):
                        pages += 1
                        self._ent[slot, j] = (paddr & D.PHYSICAL_PMD_PAGE_MASK) | prot | D._PAGE_PSE
                        self._child[slot, j] = -1
                        paddr_last = paddr_next
                    else:
                        pte = self._alloc_low_page(4, node, alloc_table)
                        paddr_last = self._phys_pte_init(pte, paddr, paddr_end, new_prot)
                        self._drop_unused((self.page_offset + paddr) & ~(D.PMD_SIZE - 1))
                        self._link(slot, j, pte)
            i += 1
            paddr = paddr_next
        self._update_page_count(1, pages)
        return paddr_last

    cdef uint64_t _phys_pte_init(self, int64_t slot, uint64_t paddr, uint64_t paddr_end,
                                 uint64_t prot) noexcept:
        """arch/x86/mm/init_64.c:phys_pte_init (6.1, after_bootmem)."""
        cdef uint64_t pages = 0, paddr_last = paddr_end, paddr_next
        cdef int i = (paddr >> 12) & 511
        cdef uint64_t[:, ::1] ent = self._ent
        with nogil:
            while i < 512:
                paddr_next = (paddr & ~(<uint64_t> 0xFFF)) + 4096
                if paddr < paddr_end and _pgt_none(ent[slot, i]):
                    pages += 1
                    ent[slot, i] = (paddr & D.PTE_PFN_MASK) | prot
                    paddr_last = paddr_next
                i += 1
                paddr = paddr_next
        self._update_page_count(0, pages)
        return paddr_last

    # ------------------------------------------------------------------ arm64 (6.1)
    cdef inline bint _arm64_block_ok(self, int d) noexcept:
        """init_pmd (any PMD entry) / alloc_init_pud (PUD entries with 4K pages) may put a
        block here (arch/arm64/mm/mmu.c, 6.1)."""
        cdef int sh
        if d >= self._nlev - 1:
            return False
        sh = self._shifts[d]
        return sh == self._pmd_shift or (self.page_shift == 12 and sh == self._pud_shift)

    cdef inline uint64_t _arm64_leaf(self, int d, uint64_t phys) noexcept:
        if d == self._nlev - 1:
            return (phys & self._pfn_mask) | D.PAGE_KERNEL
        return (phys & self._pfn_mask) | D.PAGE_KERNEL_LARGE

    cdef tuple _check_arm64_range(self, start, end, uint64_t lo, uint64_t hi, str what,
                                  str where):
        cdef uint64_t s, e
        start, end = self._check_va_range(start, end, what)
        s = start
        e = end
        if s < lo or e - 1 > hi - 1:
            raise _pgt_einval(f"{what}: [{start:#x}, {end:#x}) outside the {where} "
                              f"[{lo:#x}, {hi:#x})")
        return start, end

    def arm64_vmemmap_populate(self, start, end, node, alloc_block, alloc_table,
                               section_memmap_size):
        """arch/arm64/mm/mmu.c:vmemmap_populate (6.1); see the twin for details."""
        cdef uint64_t addr, nxt, c_end, mask, size
        cdef int64_t t, pfn, nr
        cdef int depth, sh, i
        self._require_arch("arm64", "arm64_vmemmap_populate")
        g = self.geometry
        start, end = self._check_arm64_range(start, end, g.vmemmap_start, g.vmemmap_end,
                                             "arm64_vmemmap_populate", "vmemmap")
        if not isinstance(section_memmap_size, int) or section_memmap_size <= 0:
            raise _pgt_einval(f"arm64_vmemmap_populate: section memmap size "
                              f"{section_memmap_size!r}")
        size = section_memmap_size
        if not callable(alloc_block) or not callable(alloc_table):
            raise _pgt_einval("arm64_vmemmap_populate: alloc_block and alloc_table must be "
                              "callable")
        if self.page_shift != 12 or end - start < size:
            if self._scan(0, 0, start, end) & 3:
                raise _pgt_einval(f"arm64_vmemmap_populate: [{start:#x}, {end:#x}) is mapped by "
                                  "a block; vmemmap_populate_basepages would use it as a page "
                                  "table")
            return self._populate_basepages(start, end, node, alloc_block, alloc_table)
        if self._scan(0, 0, start, end) & 1:
            raise _pgt_einval(f"arm64_vmemmap_populate: [{start:#x}, {end:#x}) crosses a PUD "
                              "block")
        depth = self._nlev - 2
        sh = self._shifts[depth]
        mask = self._masks[depth]
        nr = (<int64_t> 1) << (sh - self.page_shift)
        addr = start
        c_end = end
        while addr < c_end:
            nxt = _pgt_addr_end(addr, c_end, sh)
            t = self._vmemmap_populate_tables(addr, depth, node, alloc_table)
            if t < 0:
                return -_errno.ENOMEM
            i = (addr >> sh) & mask
            if _pgt_none(self._ent[t, i]):
                pfn = _pgt_take(alloc_block, -1, nr, node)
                if pfn < 0:
                    if self._populate_basepages(addr, nxt, node, alloc_block, alloc_table):
                        return -_errno.ENOMEM
                    addr = nxt
                    continue
                if pfn >= self._max_pfn or pfn & (nr - 1):
                    raise RuntimeError(f"block allocator returned pfn {pfn:#x}")
                self._ent[t, i] = (<uint64_t> pfn << self.page_shift) | D.PAGE_KERNEL_LARGE
            addr = nxt
        return 0

    def arm64_create_pgd_mapping(self, phys, virt, size, flags, alloc_table, node):
        """arch/arm64/mm/mmu.c:__create_pgd_mapping (6.1) as arch_add_memory calls it; see the
        twin for details."""
        cdef uint64_t c_addr, c_end, c_phys
        cdef int c_flags
        self._require_arch("arm64", "arm64_create_pgd_mapping")
        try:
            phys, virt, size, flags = (_pgt_operator.index(phys), _pgt_operator.index(virt),
                                       _pgt_operator.index(size), _pgt_operator.index(flags))
        except TypeError:
            raise _pgt_einval("arm64_create_pgd_mapping: phys, virt, size and flags must be "
                              "integers") from None
        pm = self._page_size - 1
        if (phys ^ virt) & pm:
            raise _pgt_einval(f"arm64_create_pgd_mapping: phys {phys:#x} and virt {virt:#x} "
                              "differ in their page offset (the kernel WARNs and maps nothing)")
        if size <= 0 or phys < 0 or \
                ((phys + size + pm) & ~pm) > ((<object> 1) << self.max_physmem_bits):
            raise _pgt_einval(f"arm64_create_pgd_mapping: [{phys:#x}, +{size:#x}) empty or "
                              f"beyond MAX_PHYSMEM_BITS {self.max_physmem_bits}")
        if not 0 <= flags < 8:
            raise _pgt_einval(f"arm64_create_pgd_mapping: flags {flags:#x}")
        if not callable(alloc_table):
            raise _pgt_einval("arm64_create_pgd_mapping: alloc_table must be callable")
        phys &= ~pm
        addr = virt & ~pm
        end = (virt + size + pm) & ~pm
        addr, end = self._check_va_range(addr, end, "arm64_create_pgd_mapping")
        c_addr = addr
        c_end = end
        c_phys = phys
        c_flags = flags
        self._arm64_map_check(0, 0, c_addr, c_end, c_phys, c_flags)
        self._arm64_map(0, 0, c_addr, c_end, c_phys, c_flags, alloc_table, node)

    cdef int _arm64_map_check(self, int64_t slot, int d, uint64_t addr, uint64_t end,
                              uint64_t phys, int flags) except -1:
        """What __create_pgd_mapping would BUG on, over existing tables (see the twin)."""
        cdef int sh = self._shifts[d], i
        cdef uint64_t mask = self._masks[d], nxt, e
        cdef int32_t c
        while addr < end:
            nxt = _pgt_addr_end(addr, end, sh)
            i = (addr >> sh) & mask
            e = self._ent[slot, i]
            if not _pgt_none(e):
                if d == self._nlev - 1:
                    if e != self._arm64_leaf(d, phys):
                        raise _pgt_einval(f"arm64_create_pgd_mapping: {addr:#x} is mapped to "
                                          "another page (6.1 BUG_ON in init_pte)")
                elif not (self._arm64_block_ok(d) and not flags & D.NO_BLOCK_MAPPINGS
                          and not (addr | nxt | phys) & (((<uint64_t> 1) << sh) - 1)):
                    c = self._child[slot, i]
                    if c < 0:
                        raise _pgt_einval(f"arm64_create_pgd_mapping: {addr:#x} is inside a "
                                          "block where a table is needed (6.1 BUG_ON(p?d_sect))")
                    self._arm64_map_check(c, d + 1, addr, nxt, phys, flags)
            phys += nxt - addr
            addr = nxt
        return 0

    cdef int _arm64_map(self, int64_t slot, int d, uint64_t addr, uint64_t end, uint64_t phys,
                        int flags, alloc_table, node) except -1:
        """arch/arm64/mm/mmu.c:alloc_init_pud / alloc_init_cont_pmd / init_pmd /
        alloc_init_cont_pte / init_pte (6.1), one depth of the walk."""
        cdef int sh = self._shifts[d], i, lid
        cdef uint64_t mask = self._masks[d], nxt, e, ps = self._page_size
        cdef int64_t c, pfn
        cdef uint64_t[:, ::1] ent = self._ent
        if d == self._nlev - 1:                                            # init_pte
            with nogil:
                while addr < end:
                    ent[slot, (addr >> sh) & mask] = (phys & self._pfn_mask) | D.PAGE_KERNEL
                    phys += ps
                    addr += ps
            return 0
        while addr < end:
            nxt = _pgt_addr_end(addr, end, sh)
            i = (addr >> sh) & mask
            e = ent[slot, i]
            if self._arm64_block_ok(d) and not flags & D.NO_BLOCK_MAPPINGS and \
                    not (addr | nxt | phys) & (((<uint64_t> 1) << sh) - 1):
                if _pgt_none(e):                                           # p?d_set_huge
                    ent[slot, i] = self._arm64_leaf(d, phys)
                    self._child[slot, i] = -1
            else:
                if _pgt_none(e):
                    lid = self._lids[d + 1]
                    pfn = _pgt_take(alloc_table, lid, 1, node)
                    if pfn < 0:
                        raise HotplugError(_errno.ENOMEM, "__pgd_pgtable_alloc: no page for a "
                                           f"{PGTABLE_LEVEL_NAMES[lid]} table (the kernel BUGs)")
                    c = self._new_table(pfn, lid)
                    ent = self._ent                       # the arrays may have grown
                    self._link(slot, i, c)                                  # __p?d_populate
                else:
                    c = self._child[slot, i]
                self._arm64_map(c, d + 1, addr, nxt, phys, flags, alloc_table, node)
                ent = self._ent
            phys += nxt - addr
            addr = nxt
        return 0

    def arm64_unmap_hotplug_range(self, start, end, free_mapped, free_data):
        """arch/arm64/mm/mmu.c:unmap_hotplug_range (6.1); see the twin for details."""
        self._require_arch("arm64", "arm64_unmap_hotplug_range")
        start, end = self._check_va_range(start, end, "arm64_unmap_hotplug_range")
        if free_mapped and not callable(free_data):
            raise _pgt_einval("arm64_unmap_hotplug_range: free_data must be callable when "
                              "free_mapped")
        self._fr_n = 0
        self._arm64_unmap(0, 0, start, end, bool(free_mapped))
        self._flush_frees(free_data, None)

    cdef int _arm64_unmap(self, int64_t slot, int d, uint64_t addr, uint64_t end,
                          bint free_mapped) except -1:
        """arch/arm64/mm/mmu.c:unmap_hotplug_p4d/pud/pmd/pte_range (6.1), one depth."""
        cdef int sh = self._shifts[d], i, ps = self.page_shift
        cdef uint64_t mask = self._masks[d], nxt, e
        cdef int32_t c
        while addr < end:
            nxt = _pgt_addr_end(addr, end, sh)
            i = (addr >> sh) & mask
            e = self._ent[slot, i]
            if not _pgt_none(e):
                c = self._child[slot, i]
                if c >= 0:
                    self._arm64_unmap(c, d + 1, addr, nxt, free_mapped)
                else:                                       # pte, or pud_sect / pmd_sect
                    self._clear(slot, i)
                    if free_mapped:
                        self._defer_free(_PGT_FREE_DATA, (e & self._pfn_mask) >> ps,
                                         (<int64_t> 1) << (sh - ps))
            addr = nxt
        return 0

    def arm64_free_empty_tables(self, start, end, floor, ceiling, free_table):
        """arch/arm64/mm/mmu.c:free_empty_tables (6.1); see the twin for details."""
        self._require_arch("arm64", "arm64_free_empty_tables")
        start, end = self._check_va_range(start, end, "arm64_free_empty_tables")
        floor, ceiling = _pgt_as_ints(floor, ceiling, "arm64_free_empty_tables")
        if not 0 <= floor <= 0xFFFFFFFFFFFFFFFF or not 0 <= ceiling <= 0xFFFFFFFFFFFFFFFF:
            raise _pgt_einval(f"arm64_free_empty_tables: floor {floor:#x} / ceiling "
                              f"{ceiling:#x}")
        if not callable(free_table):
            raise _pgt_einval("arm64_free_empty_tables: free_table must be callable")
        if self._scan(0, 0, start, end) & 3:
            raise _pgt_einval(f"arm64_free_empty_tables: [{start:#x}, {end:#x}) still has a "
                              "block mapping (unmap_hotplug_range first)")
        self._fr_n = 0
        self._arm64_free_empty(0, 0, start, end, floor, ceiling)
        self._flush_frees(None, free_table)

    cdef int _arm64_free_empty(self, int64_t slot, int d, uint64_t addr, uint64_t end,
                               uint64_t floor, uint64_t ceiling) except -1:
        """arch/arm64/mm/mmu.c:free_empty_p4d/pud/pmd/pte_table (6.1): children first, then
        each child table that is empty and wholly inside [floor, ceiling)."""
        cdef int sh, i, lid
        cdef uint64_t mask, nxt, span_mask
        cdef int32_t c
        if d == self._nlev - 1:
            return 0
        sh = self._shifts[d]
        mask = self._masks[d]
        span_mask = ~(((<uint64_t> 1) << sh) - 1)
        lid = self._lids[d + 1]
        while addr < end:
            nxt = _pgt_addr_end(addr, end, sh)
            i = (addr >> sh) & mask
            c = self._child[slot, i]
            if c >= 0:
                self._arm64_free_empty(c, d + 1, addr, nxt, floor, ceiling)
                if lid != 1 and _pgt_range_aligned(addr, nxt, floor, ceiling, span_mask) and \
                        self._table_empty(c):
                    self._clear(slot, i)                                    # p?d_clear
                    self._defer_free(_PGT_FREE_TABLE, self._pfn[c], lid)
                    self._release_table(c)
            addr = nxt
        return 0

    def arm64_vmemmap_free(self, start, end, free_data, free_table):
        """arch/arm64/mm/mmu.c:vmemmap_free (6.1); see the twin for details."""
        self._require_arch("arm64", "arm64_vmemmap_free")
        g = self.geometry
        start, end = self._check_arm64_range(start, end, g.vmemmap_start, g.vmemmap_end,
                                             "arm64_vmemmap_free", "vmemmap")
        if not callable(free_data) or not callable(free_table):
            raise _pgt_einval("arm64_vmemmap_free: free_data and free_table must be callable")
        self._fr_n = 0
        self._arm64_unmap(0, 0, start, end, True)
        self._arm64_free_empty(0, 0, start, end, g.vmemmap_start, g.vmemmap_end)
        self._flush_frees(free_data, free_table)

    def arm64_remove_pgd_mapping(self, start, size, free_table):
        """arch/arm64/mm/mmu.c:__remove_pgd_mapping (6.1); see the twin for details."""
        self._require_arch("arm64", "arm64_remove_pgd_mapping")
        g = self.geometry
        start, size = _pgt_as_ints(start, size, "arm64_remove_pgd_mapping")
        start, end = self._check_arm64_range(start, start + size, g.page_offset, g.page_end,
                                             "arm64_remove_pgd_mapping", "linear map")
        if not callable(free_table):
            raise _pgt_einval("arm64_remove_pgd_mapping: free_table must be callable")
        self._fr_n = 0
        self._arm64_unmap(0, 0, start, end, False)
        self._arm64_free_empty(0, 0, start, end, g.page_offset, g.page_end)
        self._flush_frees(None, free_table)

    # ------------------------------------------------------------------ inspection
    def direct_pages_count(self, level):
        """arch/x86/mm/pat/set_memory.c:direct_pages_count[PG_LEVEL_4K/2M/1G] ("4K"/"2M"/"1G").
        x86 only: arm64 keeps no such counters."""
        self._require_arch("x86_64", "direct_pages_count")
        k = _PGT_COUNT_INDEX.get(level)
        if k is None:
            raise _pgt_einval(f"direct_pages_count: level {level!r}: expected '4K', '2M' or '1G'")
        return self._count[k]

    @property
    def unused_pmd_start(self):
        """arch/x86/mm/init_64.c's static unused_pmd_start (0 when none)."""
        return self._unused_pmd_start

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
            e = self._ent[slot, i]
            out.append((PGTABLE_LEVEL_NAMES[self._lids[d]], self._pfn[slot], i, e))
            c = self._child[slot, i]
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
        return n

    def table_pfns(self, level_name):
        """Sorted pfns of the table pages of that level."""
        cdef int64_t s
        lid = _PGT_LEVEL_ID.get(level_name)
        if lid is None:
            raise _pgt_einval(f"table_pfns: unknown level {level_name!r}")
        return sorted([self._pfn[s] for s in range(self._nr_slots) if self._lvl[s] == lid])

    def entries(self, table_pfn):
        """A copy of the entries (PTRS_PER_<level> of them) of table page ``table_pfn``."""
        cdef int64_t s
        slot = self._slot_of.get(table_pfn)
        if slot is None:
            raise _pgt_einval(f"entries: pfn {table_pfn:#x} is not a page table")
        s = slot
        return self._ent_arr[s, :self._lid_ptrs[self._lvl[s]]].copy()

    def state(self):
        """A canonical, comparable snapshot (same layout as the twin's)."""
        cdef int64_t s
        cdef int n
        tables = []
        for pfn in sorted(self._slot_of):
            s = self._slot_of[pfn]
            n = self._lid_ptrs[self._lvl[s]]
            tables.append((pfn, PGTABLE_LEVEL_NAMES[self._lvl[s]],
                           self._ent_arr[s, :n].tobytes(),
                           np.packbits(self._child_arr[s, :n] >= 0).tobytes()))
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
                f"tables={len(self._slot_of)})")
