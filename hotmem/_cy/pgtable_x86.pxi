# init_mm's kernel page tables, Linux 6.1 (compiled): the x86-64 paths of arch/x86/mm/init_64.c
# -- vmemmap_populate_hugepages with the sub-PMD bookkeeping, remove_pagetable,
# kernel_physical_mapping_init, the DirectMap counters -- on the table store
# (hotmem/_cy/pgtable_store.pxi). Twin: hotmem/_py/pgtable_x86.py, which describes the sub-PMD
# bookkeeping.


cdef class _X86Tables(_TableStore):
    """arch/x86/mm/init_64.c (6.1) on the table store (x86 geometries only). Compiled twin
    of hotmem/_py/pgtable_x86.py:_X86Tables."""

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
