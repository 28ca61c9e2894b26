"""init_mm's kernel page tables, Linux 6.1: the x86-64 paths (pure-Python twin of
hotmem/_cy/pgtable_x86.pxi), a base of :class:`hotmem._py.pgtable.PageTables`.

x86 code (arch/x86/mm/init_64.c, 6.1): vmemmap_populate_hugepages with the sub-PMD bookkeeping,
remove_pagetable, kernel_physical_mapping_init, the DirectMap counters. Sub-PMD bookkeeping: the
static ``unused_pmd_start`` and, per PMD leaf, which bytes hold PAGE_UNUSED (0xFD). Every memset
the kernel does there starts and ends on a multiple of 64 (page-aligned ranges and the one
``sizeof(struct page)`` = 64 bytes zeroed by __vmemmap_use_sub_pmd), so one flag per 64-byte chunk
(32768 per 2 MiB) is exact. A freshly allocated 2 MiB block is taken to hold no 0xFD byte (buddy
pages are zeroed with init_on_alloc; altmap memory is treated the same); a record lives as long
as its PMD leaf.
"""
import errno as _errno
import operator

import numpy as np

from hotmem._py.pgtable_store import (
    _M64, _addr_end, _as_ints, _einval, _entry_none, _is_callable_or_none, _TableStore,
)
from hotmem.defs import (
    DIRECT_PAGES_COUNT_INDEX, P4D_SHIFT, _PAGE_PRESENT, _PAGE_PROTNONE, _PAGE_PSE, PAGE_KERNEL,
    PAGE_KERNEL_LARGE, PAGE_SIZE, PGTABLE_LEVEL_ID, PGTABLE_LEVEL_NAMES, PGT_MAX_PFN,
    PG_LEVEL_1G, PG_LEVEL_2M, PHYSICAL_PMD_PAGE_MASK, PHYSICAL_PUD_PAGE_MASK, PMD_SIZE,
    PTE_FLAGS_MASK, PTE_PFN_MASK, PUD_SIZE, STRUCT_PAGE_MAX_SHIFT, VMEMMAP_CHUNKS_PER_PMD,
)
from hotmem.errors import HotplugError


class _X86Tables(_TableStore):
    """arch/x86/mm/init_64.c (6.1) on the table store: the vmemmap with its sub-PMD
    bookkeeping, the direct map and the DirectMap counters (x86 geometries only)."""

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
            ent = self._ent             # a new table may have grown the store
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
