"""init_mm's kernel page tables, Linux 6.1: the arm64 paths (pure-Python twin of
hotmem/_cy/pgtable_arm64.pxi), a base of :class:`hotmem._py.pgtable.PageTables`.

arm64 code (arch/arm64/mm/mmu.c, 6.1): vmemmap_populate, __create_pgd_mapping as
arch_add_memory calls it, unmap_hotplug_range, free_empty_tables, vmemmap_free and
__remove_pgd_mapping, as the ``arm64_*`` methods. Contiguous-bit (PTE_CONT) hints are not
modelled: they change no table and no page, only TLB behaviour. arm64 keeps no DirectMap
counters (no arch_report_meminfo), so the linear map counts nothing.
"""
import errno as _errno
import operator

from hotmem._py.pgtable_store import _M64, _addr_end, _as_ints, _einval, _entry_none
from hotmem._py.pgtable_x86 import _X86Tables
from hotmem.defs import NO_BLOCK_MAPPINGS, PAGE_KERNEL, PAGE_KERNEL_LARGE, PGTABLE_LEVEL_NAMES
from hotmem.errors import HotplugError

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



class _Arm64Tables(_X86Tables):
    """arch/arm64/mm/mmu.c (6.1) on the table store: the vmemmap, the linear map and their
    teardown (arm64 geometries only)."""

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
            ent = self._ent             # a new table may have grown the store
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
