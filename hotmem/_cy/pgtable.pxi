# init_mm's kernel page tables on x86-64, Linux 6.1 (compiled). Twin: hotmem/_py/pgtable.py,
# which also defines the constants (shared data, so both backends agree on every bit) and
# describes the storage and the sub-PMD bookkeeping.
import heapq as _pgt_heapq
import operator as _pgt_operator

from hotmem._py.pgtable import (
    _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, _PAGE_PWT, _PAGE_PCD, _PAGE_ACCESSED, _PAGE_DIRTY,
    _PAGE_PSE, _PAGE_GLOBAL, _PAGE_PROTNONE, _PAGE_NX, _PAGE_KNL_ERRATUM_MASK, PAGE_KERNEL,
    PAGE_KERNEL_LARGE, _KERNPG_TABLE, _PAGE_TABLE, PTE_PFN_MASK, PHYSICAL_PMD_PAGE_MASK,
    PHYSICAL_PUD_PAGE_MASK, PAGE_UNUSED, __PAGE_OFFSET_BASE_L4, __PAGE_OFFSET_BASE_L5,
    __VMEMMAP_BASE_L4, __VMEMMAP_BASE_L5, PGTABLE_LEVEL_NAMES,
)

# C-level copies of the bits the walks need (must equal the twin's values).
cdef uint64_t _PGT_PRESENT = 0x1
cdef uint64_t _PGT_PSE = 0x80
cdef uint64_t _PGT_PROTNONE = 0x100
cdef uint64_t _PGT_KNL_ERRATUM = 0x60
cdef uint64_t _PGT_PAGE_KERNEL = 0x8000000000000163ULL
cdef uint64_t _PGT_PAGE_KERNEL_LARGE = 0x80000000000001E3ULL
cdef uint64_t _PGT_PAGE_TABLE = 0x67
cdef uint64_t _PGT_PTE_PFN_MASK = 0x000FFFFFFFFFF000ULL
cdef uint64_t _PGT_PMD_PAGE_MASK = 0x000FFFFFFFE00000ULL
cdef uint64_t _PGT_PUD_PAGE_MASK = 0x000FFFFFC0000000ULL
cdef uint64_t _PGT_PTE_FLAGS_MASK = 0xFFF0000000000FFFULL
cdef uint64_t _PGT_PMD_SIZE = 1 << 21
cdef uint64_t _PGT_PUD_SIZE = 1 << 30
cdef uint64_t _PGT_VA_TOP = 0xFFFFFFFFFFFFF000ULL
cdef int64_t _PGT_MAX_PFN = 1LL << 40
cdef int _PGT_P4D_SHIFT = 39
cdef int _PGT_CHUNK_SHIFT = 6
cdef int _PGT_CHUNKS_PER_PMD = 32768
cdef int _PGT_LEVEL_2M = 1 << 2
cdef int _PGT_LEVEL_1G = 1 << 3
cdef dict _PGT_LEVEL_ID = {n: i for i, n in enumerate(PGTABLE_LEVEL_NAMES)}
cdef dict _PGT_COUNT_INDEX = {"4K": 0, "2M": 1, "1G": 2}


cdef inline object _pgt_einval(str msg):
    return HotplugError(_errno.EINVAL, msg)


cdef inline uint64_t _pgt_addr_end(uint64_t addr, uint64_t end, int shift) noexcept nogil:
    """include/linux/pgtable.h:p?d_addr_end."""
    cdef uint64_t boundary = (addr + (<uint64_t> 1 << shift)) & ~((<uint64_t> 1 << shift) - 1)
    return boundary if boundary - 1 < end - 1 else end


cdef inline bint _pgt_none(uint64_t val) noexcept nogil:
    """pud_none/pmd_none/pte_none/p4d_none (x86, 6.1): stray A/D bits do not count."""
    return (val & ~_PGT_KNL_ERRATUM) == 0


cdef tuple _pgt_as_ints(a, b, str what):
    try:
        return _pgt_operator.index(a), _pgt_operator.index(b)
    except TypeError:
        raise _pgt_einval(f"{what}: addresses must be integers, not {a!r}, {b!r}") from None


cdef inline bint _pgt_callable_or_none(f):
    return f is None or callable(f)


cdef class PageTables:
    """Models init_mm.pgd and the x86-64 kernel page-table code of Linux 6.1.

    Compiled twin of hotmem/_py/pgtable.py:PageTables (same methods, results and state).
    """
    cdef readonly int levels, pgdir_shift, max_physmem_bits
    cdef readonly int64_t pgd_pfn
    cdef readonly uint64_t page_offset, vmemmap_start
    cdef int _nlev
    cdef int _shifts[5]
    cdef int _lids[5]
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

    def __init__(self, levels, pgd_pfn):
        cdef int d
        if levels not in (4, 5):
            raise _pgt_einval(f"paging levels {levels!r}: x86-64 has 4 or 5")
        if not 0 <= pgd_pfn < _PGT_MAX_PFN:
            raise _pgt_einval(f"pgd pfn {pgd_pfn:#x} outside the 52-bit physical space")
        self.levels = levels
        self._nlev = levels
        self.pgd_pfn = pgd_pfn
        if levels == 4:
            for d, v in enumerate((39, 30, 21, 12)):
                self._shifts[d] = v
            for d, v in enumerate((0, 2, 3, 4)):
                self._lids[d] = v
            self.page_offset = 0xFFFF888000000000ULL
            self.vmemmap_start = 0xFFFFEA0000000000ULL
            self.max_physmem_bits = 46
            self._kernel_va_start = 0xFFFF800000000000ULL
        else:
            for d, v in enumerate((48, 39, 30, 21, 12)):
                self._shifts[d] = v
                self._lids[d] = d
            self.page_offset = 0xFF11000000000000ULL
            self.vmemmap_start = 0xFFD4000000000000ULL
            self.max_physmem_bits = 52
            self._kernel_va_start = 0xFF00000000000000ULL
        self.pgdir_shift = self._shifts[0]
        self._alloc_arrays(16)
        self._slot_of = {}
        self._free_slots = []
        self._nr_slots = 0
        self._count[0] = self._count[1] = self._count[2] = 0
        self._unused_pmd_start = 0
        self._unused = {}
        self._new_table(pgd_pfn, 0)

    # ------------------------------------------------------------------ table pages
    cdef _alloc_arrays(self, int64_t cap):
        ent = np.zeros((cap, 512), np.uint64)
        child = np.full((cap, 512), -1, np.int32)
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
        if not 0 <= pfn < _PGT_MAX_PFN:
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
        self._ent[slot, i] = (<uint64_t> self._pfn[child] << 12) | _PGT_PAGE_TABLE
        self._child[slot, i] = <int32_t> child

    cdef inline void _clear(self, int64_t slot, int i) noexcept:
        self._ent[slot, i] = 0
        self._child[slot, i] = -1

    cdef bint _table_empty(self, int64_t slot) noexcept:
        cdef int i
        for i in range(512):
            if not _pgt_none(self._ent[slot, i]):
                return False
        return True

    cdef int64_t _alloc_low_page(self, int lid, node, alloc_table) except -1:
        """arch/x86/mm/init.c:alloc_low_page after boot (GFP_ATOMIC | __GFP_ZERO)."""
        pfn = _pgt_operator.index(alloc_table(PGTABLE_LEVEL_NAMES[lid], node))
        if pfn < 0:
            # 6.1 does not check: the phys_*_init below it dereferences NULL (oops).
            raise HotplugError(_errno.ENOMEM, f"alloc_low_page for a {PGTABLE_LEVEL_NAMES[lid]} "
                               "table failed: 6.1 would oops on the NULL table")
        return self._new_table(pfn, lid)

    cdef inline void _update_page_count(self, int k, uint64_t pages) noexcept:
        """arch/x86/mm/pat/set_memory.c:update_page_count: unsigned long, wraps."""
        self._count[k] += pages

    # ------------------------------------------------------------------ argument checks
    cdef tuple _check_va_range(self, start, end, str what):
        start, end = _pgt_as_ints(start, end, what)
        if start & 0xFFF:
            raise _pgt_einval(f"{what}: start {start:#x} not page-aligned")
        if end & 0xFFF:
            raise _pgt_einval(f"{what}: end {end:#x} not page-aligned")
        if end <= start:
            raise _pgt_einval(f"{what}: end {end:#x} <= start {start:#x}")
        if start < self._kernel_va_start or end > _PGT_VA_TOP:
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
            i = (addr >> sh) & 511
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
            slot = self._child[slot, (va >> self._shifts[d]) & 511]
            if slot < 0:
                return False
        e = self._ent[slot, (va >> 21) & 511]
        return not _pgt_none(e) and (e & _PGT_PSE) != 0

    cdef _memset_vmemmap(self, uint64_t start, uint64_t end, bint unused):
        """memset(start, PAGE_UNUSED or 0, end - start) inside one PMD leaf, in 64-byte chunks.
        Writes to anything but a PMD leaf are not tracked (no check ever reads them)."""
        cdef uint64_t pmd_va
        if end <= start:
            return
        pmd_va = start & ~(_PGT_PMD_SIZE - 1)
        if not self._pmd_leaf_at(pmd_va):
            return
        rec = self._unused.get(pmd_va)
        if rec is None:
            if not unused:
                return
            rec = np.zeros(_PGT_CHUNKS_PER_PMD, np.uint8)
            self._unused[pmd_va] = rec
        rec[(start - pmd_va) >> _PGT_CHUNK_SHIFT:(end - pmd_va) >> _PGT_CHUNK_SHIFT] = \
            1 if unused else 0

    cdef _drop_unused(self, uint64_t pmd_va):
        self._unused.pop(pmd_va, None)

    cdef _vmemmap_flush_unused_pmd(self):
        """arch/x86/mm/init_64.c:vmemmap_flush_unused_pmd (6.1)."""
        cdef uint64_t u = self._unused_pmd_start
        if not u:
            return
        self._memset_vmemmap(u, (u + _PGT_PMD_SIZE - 1) & ~(_PGT_PMD_SIZE - 1), True)
        self._unused_pmd_start = 0

    cdef bint _vmemmap_pmd_is_unused(self, uint64_t addr, uint64_t end) except -1:
        """arch/x86/mm/init_64.c:vmemmap_pmd_is_unused (6.1)."""
        cdef uint64_t start = addr & ~(_PGT_PMD_SIZE - 1)
        self._vmemmap_flush_unused_pmd()
        self._memset_vmemmap(addr, end, True)
        rec = self._unused.get(start)
        return rec is not None and bool(rec.all())

    cdef _vmemmap_mark_sub_pmd_used(self, uint64_t start):
        """arch/x86/mm/init_64.c:__vmemmap_use_sub_pmd (6.1): zero one struct page at start."""
        self._memset_vmemmap(start, start + (1 << _PGT_CHUNK_SHIFT), False)

    cdef _vmemmap_use_sub_pmd(self, uint64_t start, uint64_t end):
        """arch/x86/mm/init_64.c:vmemmap_use_sub_pmd (6.1)."""
        if self._unused_pmd_start == start:
            self._unused_pmd_start = 0 if not end & (_PGT_PMD_SIZE - 1) else end
            return
        self._vmemmap_flush_unused_pmd()
        self._vmemmap_mark_sub_pmd_used(start)

    cdef _vmemmap_use_new_sub_pmd(self, uint64_t start, uint64_t end):
        """arch/x86/mm/init_64.c:vmemmap_use_new_sub_pmd (6.1)."""
        cdef uint64_t page = start & ~(_PGT_PMD_SIZE - 1)
        self._vmemmap_flush_unused_pmd()
        self._vmemmap_mark_sub_pmd_used(start)
        if start & (_PGT_PMD_SIZE - 1):
            self._memset_vmemmap(page, start, True)
        if end & (_PGT_PMD_SIZE - 1):
            self._unused_pmd_start = end

    # ------------------------------------------------------------------ vmemmap populate
    cdef int64_t _vmemmap_populate_tables(self, uint64_t addr, int depth, node,
                                          alloc_table) except? -2:
        """mm/sparse-vmemmap.c:vmemmap_pgd_populate .. vmemmap_pmd_populate (6.1): the slot of
        the table at ``depth`` mapping addr, missing tables allocated on the way; -1 on failure.
        4-level: pgd_none() is always false and the "p4d" step fills the PGD entry with a PUD
        table -- the same allocations as this walk."""
        cdef int64_t slot = 0, c
        cdef int d, i
        cdef uint64_t e
        cdef bint none
        for d in range(depth):
            i = (addr >> self._shifts[d]) & 511
            e = self._ent[slot, i]
            none = (e == 0) if (d == 0 and self._nlev == 5) else _pgt_none(e)
            if none:
                pfn = _pgt_operator.index(
                    alloc_table(PGTABLE_LEVEL_NAMES[self._lids[d + 1]], node))
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
        cdef int depth = self._nlev - 1, i
        cdef uint64_t addr = start
        cdef int64_t t, pfn
        while addr < end:
            t = self._vmemmap_populate_tables(addr, depth, node, alloc_table)
            if t < 0:
                return -_errno.ENOMEM
            i = (addr >> 12) & 511
            if _pgt_none(self._ent[t, i]):
                pfn = _pgt_operator.index(alloc_page(1, node))
                if pfn < 0:
                    return -_errno.ENOMEM
                if pfn >= _PGT_MAX_PFN:
                    raise RuntimeError(f"page allocator returned pfn {pfn:#x}")
                self._ent[t, i] = (<uint64_t> pfn << 12) | _PGT_PAGE_KERNEL
            addr += 4096
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
        Returns 0 or -ENOMEM; the kernel does not unwind, nor does this."""
        cdef uint64_t addr, nxt, e, c_end
        cdef int64_t t, pfn
        cdef int depth = self._nlev - 2, i, found
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
                pfn = _pgt_operator.index(alloc_block(512, node))
                if pfn >= 0:
                    if pfn >= _PGT_MAX_PFN or pfn & 511:
                        raise RuntimeError(f"block allocator returned pfn {pfn:#x}")
                    self._ent[t, i] = ((<uint64_t> pfn << 12) & _PGT_PMD_PAGE_MASK) | \
                        _PGT_PAGE_KERNEL_LARGE
                    if (addr | nxt) & (_PGT_PMD_SIZE - 1):
                        self._vmemmap_use_new_sub_pmd(addr, nxt)
                    addr = nxt
                    continue
                if fallback_alloc_page is None:
                    return -_errno.ENOMEM       # no fallback with an altmap
                page_alloc = fallback_alloc_page
            elif e & _PGT_PSE:
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
        """arch/x86/mm/init_64.c:remove_pagetable (6.1); see the twin for details."""
        cdef uint64_t addr, nxt, c_end
        cdef int sh = self.pgdir_shift, i
        cdef bint c_direct, c_free_pud
        start, end = self._check_va_range(start, end, "remove_pagetable")
        if not callable(free_table) or not _pgt_callable_or_none(free_data) or \
                (free_data is None and not direct):
            raise _pgt_einval("remove_pagetable: free_table (and free_data for the vmemmap) must "
                              "be callable")
        c_direct = bool(direct)
        c_free_pud = bool(free_pud_tables)
        addr = start
        c_end = end
        while addr < c_end:
            nxt = _pgt_addr_end(addr, c_end, sh)
            i = (addr >> sh) & 511
            if self._nlev == 5:
                if self._ent[0, i] & _PGT_PRESENT:                   # pgd_present
                    self._remove_p4d_table(self._child[0, i], addr, nxt, c_direct, free_data,
                                           free_table, c_free_pud)
            else:
                # pgd_present() is 1 and p4d_offset() is the PGD entry itself
                self._remove_p4d_table(0, addr, nxt, c_direct, free_data, free_table, c_free_pud)
            addr = nxt
        # flush_tlb_all()

    cdef _remove_p4d_table(self, int64_t slot, uint64_t addr, uint64_t end, bint direct,
                           free_data, free_table, bint free_pud_tables):
        """arch/x86/mm/init_64.c:remove_p4d_table (6.1); 4-level: ``slot`` is the PGD."""
        cdef uint64_t nxt
        cdef int i
        cdef int64_t pud
        while addr < end:
            nxt = _pgt_addr_end(addr, end, _PGT_P4D_SHIFT)
            i = (addr >> _PGT_P4D_SHIFT) & 511
            if self._ent[slot, i] & _PGT_PRESENT:
                pud = self._child[slot, i]
                self._remove_pud_table(pud, addr, nxt, direct, free_data, free_table)
                if free_pud_tables:
                    self._free_table_if_empty(pud, slot, i, free_table)
            addr = nxt

    cdef _remove_pud_table(self, int64_t slot, uint64_t addr, uint64_t end, bint direct,
                           free_data, free_table):
        """arch/x86/mm/init_64.c:remove_pud_table (6.1)."""
        cdef uint64_t nxt, e, pages = 0
        cdef int i
        cdef int64_t c
        while addr < end:
            nxt = _pgt_addr_end(addr, end, 30)
            i = (addr >> 30) & 511
            e = self._ent[slot, i]
            if e & _PGT_PRESENT:
                c = self._child[slot, i]
                if (e & (_PGT_PSE | _PGT_PRESENT)) == (_PGT_PSE | _PGT_PRESENT) and \
                        not addr & (_PGT_PUD_SIZE - 1) and not nxt & (_PGT_PUD_SIZE - 1):
                    self._clear(slot, i)
                    pages += 1
                elif c >= 0:
                    self._remove_pmd_table(c, addr, nxt, direct, free_data, free_table)
                    self._free_table_if_empty(c, slot, i, free_table)
                else:
                    # 1G leaf only partly covered: its first data page is walked as a PMD
                    # table; modelled as reading zeros (see the twin).
                    free_table((e & _PGT_PUD_PAGE_MASK) >> 12, "PMD")
                    self._clear(slot, i)
            addr = nxt
        if direct:
            self._update_page_count(2, -pages)

    cdef _remove_pmd_table(self, int64_t slot, uint64_t addr, uint64_t end, bint direct,
                           free_data, free_table):
        """arch/x86/mm/init_64.c:remove_pmd_table (6.1)."""
        cdef uint64_t nxt, e, pages = 0, pfn
        cdef int i
        cdef int64_t c
        while addr < end:
            nxt = _pgt_addr_end(addr, end, 21)
            i = (addr >> 21) & 511
            e = self._ent[slot, i]
            if e & (_PGT_PRESENT | _PGT_PROTNONE | _PGT_PSE):           # pmd_present
                if e & _PGT_PSE:
                    pfn = (e & _PGT_PMD_PAGE_MASK) >> 12
                    if not addr & (_PGT_PMD_SIZE - 1) and not nxt & (_PGT_PMD_SIZE - 1):
                        if not direct:
                            free_data(pfn, 512)                       # free_hugepage_table
                        self._clear(slot, i)
                        self._drop_unused(addr)
                        pages += 1
                    elif self._vmemmap_pmd_is_unused(addr, nxt):
                        # reached for the direct map too; the kernel then frees the RAM itself
                        if free_data is not None:
                            free_data(pfn, 512)
                        self._clear(slot, i)
                        self._drop_unused(addr & ~(_PGT_PMD_SIZE - 1))
                else:
                    c = self._child[slot, i]
                    self._remove_pte_table(c, addr, nxt, direct, free_data)
                    self._free_table_if_empty(c, slot, i, free_table)
            addr = nxt
        if direct:
            self._update_page_count(1, -pages)

    cdef _remove_pte_table(self, int64_t slot, uint64_t addr, uint64_t end, bint direct,
                           free_data):
        """arch/x86/mm/init_64.c:remove_pte_table (6.1)."""
        cdef uint64_t nxt, e, pages = 0
        cdef int i
        while addr < end:
            nxt = (addr + 4096) & ~(<uint64_t> 0xFFF)
            if nxt > end:
                nxt = end
            i = (addr >> 12) & 511
            e = self._ent[slot, i]
            if e & (_PGT_PRESENT | _PGT_PROTNONE):                      # pte_present
                # "[0,1G) is mapped by head_64.S": pte_val() + virtual address, as 6.1 adds them
                if e + (addr & ~(<uint64_t> 0xFFF)) < 0x40000000:
                    return
                if not direct:
                    free_data((e & _PGT_PTE_PFN_MASK) >> 12, 1)
                self._clear(slot, i)
                pages += 1
            addr = nxt
        if direct:
            self._update_page_count(0, -pages)

    cdef _free_table_if_empty(self, int64_t slot, int64_t parent, int i, free_table):
        """arch/x86/mm/init_64.c:free_pte_table / free_pmd_table / free_pud_table (6.1)."""
        if not self._table_empty(slot):
            return
        free_table(self._pfn[slot], PGTABLE_LEVEL_NAMES[self._lvl[slot]])
        self._release_table(slot)
        self._clear(parent, i)

    # ------------------------------------------------------------------ direct map
    def kernel_physical_mapping_init(self, paddr_start, paddr_end, page_size, alloc_table, node):
        """arch/x86/mm/init_64.c:kernel_physical_mapping_init (6.1, after boot) for one run of
        split_mem_range; see the twin. Returns the last mapped physical address; a table
        allocation failure raises HotplugError(ENOMEM) (6.1 would oops)."""
        cdef int mask
        if page_size == 4096:
            mask = 0
        elif page_size == _PGT_PMD_SIZE:
            mask = _PGT_LEVEL_2M
        elif page_size == _PGT_PUD_SIZE:
            mask = _PGT_LEVEL_2M | _PGT_LEVEL_1G
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
        return self._kernel_physical_mapping_init(paddr_start, paddr_end, mask, _PGT_PAGE_KERNEL,
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
            i = (vaddr >> _PGT_P4D_SHIFT) & 511
            vaddr_next = (vaddr & ~((<uint64_t> 1 << _PGT_P4D_SHIFT) - 1)) + \
                (<uint64_t> 1 << _PGT_P4D_SHIFT)
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
            paddr_next = (paddr & ~(_PGT_PUD_SIZE - 1)) + _PGT_PUD_SIZE
            if paddr < paddr_end:
                prot = prot0
                e = self._ent[slot, j]
                done = False
                if not _pgt_none(e):
                    if (e & (_PGT_PSE | _PGT_PRESENT)) != (_PGT_PSE | _PGT_PRESENT):
                        paddr_last = self._phys_pmd_init(self._child[slot, j], paddr, paddr_end,
                                                         mask, prot, alloc_table, node)
                        done = True
                    elif mask & _PGT_LEVEL_1G:
                        paddr_last = paddr_next
                        done = True
                    else:
                        prot = e & _PGT_PTE_FLAGS_MASK & ~_PGT_PSE    # split the 1G leaf
                if not done:
                    if mask & _PGT_LEVEL_1G:
                        pages += 1
                        self._ent[slot, j] = (paddr & _PGT_PUD_PAGE_MASK) | prot | _PGT_PSE
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
            paddr_next = (paddr & ~(_PGT_PMD_SIZE - 1)) + _PGT_PMD_SIZE
            if paddr < paddr_end:
                new_prot = prot
                e = self._ent[slot, j]
                done = False
                if not _pgt_none(e):
                    if not e & _PGT_PSE:
                        paddr_last = self._phys_pte_init(self._child[slot, j], paddr, paddr_end,
                                                         prot)
                        done = True
                    elif mask & _PGT_LEVEL_2M:
                        paddr_last = paddr_next
                        done = True
                    else:
                        new_prot = e & _PGT_PTE_FLAGS_MASK & ~_PGT_PSE   # split the 2M leaf
                if not done:
                    if mask & _PGT_LEVEL_2M:
                        pages += 1
                        self._ent[slot, j] = (paddr & _PGT_PMD_PAGE_MASK) | prot | _PGT_PSE
                        self._child[slot, j] = -1
                        paddr_last = paddr_next
                    else:
                        pte = self._alloc_low_page(4, node, alloc_table)
                        paddr_last = self._phys_pte_init(pte, paddr, paddr_end, new_prot)
                        self._drop_unused((self.page_offset + paddr) & ~(_PGT_PMD_SIZE - 1))
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
                    ent[slot, i] = (paddr & _PGT_PTE_PFN_MASK) | prot
                    paddr_last = paddr_next
                i += 1
                paddr = paddr_next
        self._update_page_count(0, pages)
        return paddr_last

    # ------------------------------------------------------------------ inspection
    def direct_pages_count(self, level):
        """arch/x86/mm/pat/set_memory.c:direct_pages_count[PG_LEVEL_4K/2M/1G] ("4K"/"2M"/"1G")."""
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
            i = (c_va >> self._shifts[d]) & 511
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
        if _pgt_none(e) or (name != "PTE" and not e & _PGT_PSE):
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
        """A copy of the 512 entries of table page ``table_pfn``."""
        slot = self._slot_of.get(table_pfn)
        if slot is None:
            raise _pgt_einval(f"entries: pfn {table_pfn:#x} is not a page table")
        return self._ent_arr[slot].copy()

    def state(self):
        """A canonical, comparable snapshot (same layout as the twin's)."""
        cdef int64_t s
        tables = []
        for pfn in sorted(self._slot_of):
            s = self._slot_of[pfn]
            tables.append((pfn, PGTABLE_LEVEL_NAMES[self._lvl[s]], self._ent_arr[s].tobytes(),
                           np.packbits(self._child_arr[s] >= 0).tobytes()))
        unused = []
        for va in sorted(self._unused):
            rec = self._unused[va]
            if not rec.any():
                continue
            d = np.diff(np.concatenate(([0], rec.astype(np.int8), [0])))
            starts = np.flatnonzero(d == 1) << _PGT_CHUNK_SHIFT
            ends = np.flatnonzero(d == -1) << _PGT_CHUNK_SHIFT
            unused.append((va, tuple(zip(starts.tolist(), ends.tolist()))))
        return (self.levels, self.pgd_pfn, tuple(tables),
                (self._count[0], self._count[1], self._count[2]),
                self._unused_pmd_start, tuple(unused))

    def __repr__(self):
        return (f"PageTables(levels={self.levels}, pgd_pfn={self.pgd_pfn:#x}, "
                f"tables={len(self._slot_of)})")
