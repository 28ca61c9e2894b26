# init_mm's kernel page tables, Linux 6.1 (compiled): the arm64 paths of arch/arm64/mm/mmu.c
# -- vmemmap_populate, __create_pgd_mapping, unmap_hotplug_range, free_empty_tables,
# vmemmap_free, __remove_pgd_mapping -- on the table store (hotmem/_cy/pgtable_store.pxi).
# Twin: hotmem/_py/pgtable_arm64.py.


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



cdef class _Arm64Tables(_X86Tables):
    """arch/arm64/mm/mmu.c (6.1) on the table store (arm64 geometries only). Compiled twin
    of hotmem/_py/pgtable_arm64.py:_Arm64Tables."""

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
            e = self._eget(slot, i)
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
        cdef int sh = self._shifts[d], i, lid, a
        cdef uint64_t mask = self._masks[d], nxt, e, ps = self._page_size
        cdef int64_t c, pfn
        cdef bint leaf_below = d + 1 == self._nlev - 1
        cdef int lsh = self._shifts[self._nlev - 1]
        cdef uint64_t lmask = self._masks[self._nlev - 1]
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
                if leaf_below and c >= _PGT_CBASE:                         # init_pte
                    a = (addr >> lsh) & lmask
                    if self._cl_set_run(c, a, a + <int> ((nxt - addr) >> lsh),
                                        (phys & self._pfn_mask) | D.PAGE_KERNEL):
                        phys += nxt - addr
                        addr = nxt
                        continue
                    c = self._pgt_materialize(slot, i, c)
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
        cdef int sh = self._shifts[d], i, ps = self.page_shift, a, b, k
        cdef uint64_t mask = self._masks[d], nxt, e
        cdef int32_t c
        cdef pgt_leaf_t t
        cdef bint leaf_below = d + 1 == self._nlev - 1
        cdef int lsh = self._shifts[self._nlev - 1]
        cdef uint64_t lmask = self._masks[self._nlev - 1]
        while addr < end:
            nxt = _pgt_addr_end(addr, end, sh)
            i = (addr >> sh) & mask
            e = self._ent[slot, i]
            if not _pgt_none(e):
                c = self._child[slot, i]
                if leaf_below and c >= _PGT_CBASE:                 # unmap_hotplug_pte_range
                    t = self._cl[c - _PGT_CBASE]
                    a = (addr >> lsh) & lmask
                    b = a + <int> ((nxt - addr) >> lsh)
                    if self._cl_clear_run(c, a, b):
                        if free_mapped:
                            for k in range(max(a, t.lo), min(b, t.hi)):
                                self._defer_free(_PGT_FREE_DATA, ((t.e0 + ((<uint64_t> (k - t.lo))
                                                                  << ps)) & self._pfn_mask) >> ps, 1)
                        addr = nxt
                        continue
                    c = self._pgt_materialize(slot, i, c)
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
                    self._defer_free(_PGT_FREE_TABLE, self._tpfn(c), lid)
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
