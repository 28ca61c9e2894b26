"""init_mm's kernel page tables on x86-64, Linux 6.1: pure-Python twin of hotmem/_cy/pgtable.pxi.

Every table is a physical page of the model: its pfn comes from a caller-supplied allocator and
its 512 entries are kept exactly as x86 encodes them, ``(pfn << 12) | flags``. Storage: a growable
[slot, 512] uint64 array of entries, a parallel int32 array of child-table slots (-1: none or a
leaf), slot -> pfn / level arrays and a pfn -> slot map. Free slots are reused lowest first.

Sub-PMD vmemmap bookkeeping (arch/x86/mm/init_64.c, 6.1): the static ``unused_pmd_start`` and,
per PMD leaf, which bytes hold PAGE_UNUSED (0xFD). Every memset the kernel does there starts and
ends on a multiple of 64 (page-aligned ranges and the one ``sizeof(struct page)`` = 64 bytes
zeroed by __vmemmap_use_sub_pmd), so one flag per 64-byte chunk (32768 per 2 MiB) is exact.
A freshly allocated 2 MiB block is taken to hold no 0xFD byte (buddy pages are zeroed with
init_on_alloc; altmap memory is treated the same); a record lives as long as its PMD leaf.
"""
import errno as _errno
import heapq
import operator

import numpy as np

from hotmem.errors import HotplugError

__all__ = [
    "PageTables",
    "_PAGE_PRESENT", "_PAGE_RW", "_PAGE_USER", "_PAGE_PWT", "_PAGE_PCD", "_PAGE_ACCESSED",
    "_PAGE_DIRTY", "_PAGE_PSE", "_PAGE_GLOBAL", "_PAGE_PROTNONE", "_PAGE_NX",
    "_PAGE_KNL_ERRATUM_MASK", "PAGE_KERNEL", "PAGE_KERNEL_LARGE", "_KERNPG_TABLE", "_PAGE_TABLE",
    "PTE_PFN_MASK", "PHYSICAL_PMD_PAGE_MASK", "PHYSICAL_PUD_PAGE_MASK", "PAGE_UNUSED",
    "__PAGE_OFFSET_BASE_L4", "__PAGE_OFFSET_BASE_L5", "__VMEMMAP_BASE_L4", "__VMEMMAP_BASE_L5",
    "PGTABLE_LEVEL_NAMES",
]

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

_M64 = (1 << 64) - 1
_PTE_FLAGS_MASK = _M64 & ~PTE_PFN_MASK
_PAGE_SIZE = 1 << 12
_PMD_SIZE = 1 << 21
_PUD_SIZE = 1 << 30
_P4D_SHIFT = 39
_CHUNK_SHIFT = 6                       # sizeof(struct page) = 64
_CHUNKS_PER_PMD = _PMD_SIZE >> _CHUNK_SHIFT
_PG_LEVEL_2M = 1 << 2                  # page_size_mask bits (asm/pgtable_types.h: PG_LEVEL_*)
_PG_LEVEL_1G = 1 << 3
_LEVEL_ID = {n: i for i, n in enumerate(PGTABLE_LEVEL_NAMES)}
_COUNT_INDEX = {"4K": 0, "2M": 1, "1G": 2}
_MAX_PFN = 1 << 40                     # __PHYSICAL_MASK_SHIFT 52
_VA_TOP = _M64 & ~0xFFF                # last page start; end may not pass it


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


class PageTables:
    """Models init_mm.pgd and the x86-64 kernel page-table code of Linux 6.1.

    ``PageTables(levels, pgd_pfn)``: 4- or 5-level paging, the PGD page being the model page
    ``pgd_pfn``. With 4 levels the P4D is folded: a PGD entry points straight at a PUD table.
    Callbacks: ``alloc_table(level_name, node) -> pfn | -1`` (a zeroed table page of that level),
    ``alloc_block(nr_pages, node) -> first pfn | -1`` (vmemmap_alloc_block_buf; 512 for a PMD
    leaf, 1 for a base page), ``free_table(pfn, level_name)`` (free_pagetable of a table page),
    ``free_data(pfn, nr_pages)`` (free_pagetable / free_hugepage_table of mapped data).
    """

    def __init__(self, levels, pgd_pfn):
        if levels not in (4, 5):
            raise _einval(f"paging levels {levels!r}: x86-64 has 4 or 5")
        if not 0 <= pgd_pfn < _MAX_PFN:
            raise _einval(f"pgd pfn {pgd_pfn:#x} outside the 52-bit physical space")
        self.levels = levels
        self.pgd_pfn = pgd_pfn
        if levels == 4:
            self._shifts = (39, 30, 21, 12)
            self._lids = (0, 2, 3, 4)
            self.page_offset = _PAGE_OFFSET_L4
            self.vmemmap_start = _VMEMMAP_BASE_L4
            self.max_physmem_bits = 46
            self._kernel_va_start = 0xFFFF800000000000
        else:
            self._shifts = (48, 39, 30, 21, 12)
            self._lids = (0, 1, 2, 3, 4)
            self.page_offset = _PAGE_OFFSET_L5
            self.vmemmap_start = _VMEMMAP_BASE_L5
            self.max_physmem_bits = 52
            self._kernel_va_start = 0xFF00000000000000
        self.pgdir_shift = self._shifts[0]
        self._nlev = levels
        cap = 16
        self._ent = np.zeros((cap, 512), np.uint64)
        self._child = np.full((cap, 512), -1, np.int32)
        self._pfn = np.full(cap, -1, np.int64)
        self._lvl = np.full(cap, -1, np.int8)
        self._slot_of = {}
        self._free_slots = []
        self._nr_slots = 0
        self._count = [0, 0, 0]
        self._unused_pmd_start = 0
        self._unused = {}
        self._new_table(pgd_pfn, 0)

    # ------------------------------------------------------------------ table pages
    def _new_table(self, pfn, lid):
        if not 0 <= pfn < _MAX_PFN:
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
                ent = np.zeros((2 * cap, 512), np.uint64)
                ent[:cap] = self._ent
                child = np.full((2 * cap, 512), -1, np.int32)
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
        self._ent[slot, i] = (int(self._pfn[child]) << 12) | _PAGE_TABLE
        self._child[slot, i] = child

    def _clear(self, slot, i):
        self._ent[slot, i] = 0
        self._child[slot, i] = -1

    def _table_empty(self, slot):
        return not np.any(self._ent[slot] & np.uint64(_M64 & ~_PAGE_KNL_ERRATUM_MASK))

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

    # ------------------------------------------------------------------ argument checks
    def _check_va_range(self, start, end, what):
        start, end = _as_ints(start, end, what)
        if start & 0xFFF:
            raise _einval(f"{what}: start {start:#x} not page-aligned")
        if end & 0xFFF:
            raise _einval(f"{what}: end {end:#x} not page-aligned")
        if end <= start:
            raise _einval(f"{what}: end {end:#x} <= start {start:#x}")
        if start < self._kernel_va_start or end > _VA_TOP:
            raise _einval(f"{what}: [{start:#x}, {end:#x}) outside the kernel half of the "
                          f"{self.levels}-level address space")
        return start, end

    def _scan(self, start, end):
        """Leaves and tables met at PUD level and above (bit 0), PMD leaves (bit 1) and PMD
        tables (bit 2) over [start, end), existing tables only."""
        found = 0
        pmd_depth = self._nlev - 2
        stack = [(0, 0, start, end)]
        while stack:
            slot, d, lo, hi = stack.pop()
            sh = self._shifts[d]
            addr = lo
            while addr < hi:
                nxt = _addr_end(addr, hi, sh)
                i = (addr >> sh) & 511
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
            i = (va >> self._shifts[d]) & 511
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
        pmd_va = start & ~(_PMD_SIZE - 1)
        if not self._pmd_leaf_at(pmd_va):
            return
        rec = self._unused.get(pmd_va)
        if rec is None:
            if not unused:
                return
            rec = self._unused[pmd_va] = np.zeros(_CHUNKS_PER_PMD, np.uint8)
        rec[(start - pmd_va) >> _CHUNK_SHIFT:(end - pmd_va) >> _CHUNK_SHIFT] = 1 if unused else 0

    def _drop_unused(self, pmd_va):
        self._unused.pop(pmd_va, None)

    def _vmemmap_flush_unused_pmd(self):
        """arch/x86/mm/init_64.c:vmemmap_flush_unused_pmd (6.1)."""
        u = self._unused_pmd_start
        if not u:
            return
        self._memset_vmemmap(u, (u + _PMD_SIZE - 1) & ~(_PMD_SIZE - 1) & _M64, True)
        self._unused_pmd_start = 0

    def _vmemmap_pmd_is_unused(self, addr, end):
        """arch/x86/mm/init_64.c:vmemmap_pmd_is_unused (6.1)."""
        start = addr & ~(_PMD_SIZE - 1)
        self._vmemmap_flush_unused_pmd()
        self._memset_vmemmap(addr, end, True)
        rec = self._unused.get(start)
        return rec is not None and bool(rec.all())

    def _vmemmap_mark_sub_pmd_used(self, start):
        """arch/x86/mm/init_64.c:__vmemmap_use_sub_pmd (6.1): zero one struct page at start."""
        self._memset_vmemmap(start, start + (1 << _CHUNK_SHIFT), False)

    def _vmemmap_use_sub_pmd(self, start, end):
        """arch/x86/mm/init_64.c:vmemmap_use_sub_pmd (6.1)."""
        if self._unused_pmd_start == start:
            self._unused_pmd_start = 0 if not end & (_PMD_SIZE - 1) else end
            return
        self._vmemmap_flush_unused_pmd()
        self._vmemmap_mark_sub_pmd_used(start)

    def _vmemmap_use_new_sub_pmd(self, start, end):
        """arch/x86/mm/init_64.c:vmemmap_use_new_sub_pmd (6.1)."""
        page = start & ~(_PMD_SIZE - 1)
        self._vmemmap_flush_unused_pmd()
        self._vmemmap_mark_sub_pmd_used(start)
        if start & (_PMD_SIZE - 1):
            self._memset_vmemmap(page, start, True)
        if end & (_PMD_SIZE - 1):
            self._unused_pmd_start = end

    # ------------------------------------------------------------------ vmemmap populate
    def _vmemmap_populate_tables(self, addr, depth, node, alloc_table):
        """mm/sparse-vmemmap.c:vmemmap_pgd_populate .. vmemmap_pmd_populate (6.1): the slot of
        the table at ``depth`` mapping addr, missing tables allocated on the way; -1 on failure.
        4-level: pgd_none() is always false and the "p4d" step fills the PGD entry with a PUD
        table -- the same allocations as this walk."""
        slot = 0
        for d in range(depth):
            i = (addr >> self._shifts[d]) & 511
            e = int(self._ent[slot, i])
            none = (e == 0) if (d == 0 and self._nlev == 5) else _entry_none(e)
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
        for addr in range(start, end, _PAGE_SIZE):
            t = self._vmemmap_populate_tables(addr, depth, node, alloc_table)
            if t < 0:
                return -_errno.ENOMEM
            i = (addr >> 12) & 511
            if _entry_none(int(ent[t, i])):
                pfn = operator.index(alloc_page(1, node))
                if pfn < 0:
                    return -_errno.ENOMEM
                if pfn >= _MAX_PFN:
                    raise RuntimeError(f"page allocator returned pfn {pfn:#x}")
                ent[t, i] = (pfn << 12) | PAGE_KERNEL
        return 0

    def vmemmap_populate_basepages(self, start, end, node, alloc_page, alloc_table):
        """mm/sparse-vmemmap.c:vmemmap_populate_basepages (6.1): map [start, end) with 4 KiB
        pages from ``alloc_page(1, node)``; page tables from ``alloc_table``. 0 or -ENOMEM
        (partial state is left in place, as the kernel leaves it)."""
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
        Returns 0 or -ENOMEM; the kernel does not unwind, nor does this."""
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
                pfn = operator.index(alloc_block(_PMD_SIZE >> 12, node))
                if pfn >= 0:
                    if pfn >= _MAX_PFN or pfn & 511:
                        raise RuntimeError(f"block allocator returned pfn {pfn:#x}")
                    ent[t, i] = ((pfn << 12) & PHYSICAL_PMD_PAGE_MASK) | PAGE_KERNEL_LARGE
                    if (addr | nxt) & (_PMD_SIZE - 1):
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
        (6.1: 5-level paging); P4D tables and PGD entries never."""
        start, end = self._check_va_range(start, end, "remove_pagetable")
        if not callable(free_table) or not _is_callable_or_none(free_data) or \
                (free_data is None and not direct):
            raise _einval("remove_pagetable: free_table (and free_data for the vmemmap) must be "
                          "callable")
        direct = bool(direct)
        free_pud_tables = bool(free_pud_tables)
        addr = start
        sh = self.pgdir_shift
        while addr < end:
            nxt = _addr_end(addr, end, sh)
            i = (addr >> sh) & 511
            if self._nlev == 5:
                if int(self._ent[0, i]) & _PAGE_PRESENT:     # pgd_present
                    self._remove_p4d_table(int(self._child[0, i]), addr, nxt, direct,
                                           free_data, free_table, free_pud_tables)
            else:
                # pgd_present() is 1 and p4d_offset() is the PGD entry itself
                self._remove_p4d_table(0, addr, nxt, direct, free_data, free_table,
                                       free_pud_tables)
            addr = nxt
        # flush_tlb_all()

    def _remove_p4d_table(self, slot, addr, end, direct, free_data, free_table, free_pud_tables):
        """arch/x86/mm/init_64.c:remove_p4d_table (6.1); 4-level: ``slot`` is the PGD."""
        while addr < end:
            nxt = _addr_end(addr, end, _P4D_SHIFT)
            i = (addr >> _P4D_SHIFT) & 511
            if int(self._ent[slot, i]) & _PAGE_PRESENT:
                pud = int(self._child[slot, i])
                self._remove_pud_table(pud, addr, nxt, direct, free_data, free_table)
                if free_pud_tables:
                    self._free_table_if_empty(pud, slot, i, free_table)
            addr = nxt

    def _remove_pud_table(self, slot, addr, end, direct, free_data, free_table):
        """arch/x86/mm/init_64.c:remove_pud_table (6.1)."""
        pages = 0
        while addr < end:
            nxt = _addr_end(addr, end, 30)
            i = (addr >> 30) & 511
            e = int(self._ent[slot, i])
            if e & _PAGE_PRESENT:
                c = int(self._child[slot, i])
                if (e & (_PAGE_PSE | _PAGE_PRESENT)) == (_PAGE_PSE | _PAGE_PRESENT) and \
                        not addr & (_PUD_SIZE - 1) and not nxt & (_PUD_SIZE - 1):
                    self._clear(slot, i)
                    pages += 1
                elif c >= 0:
                    self._remove_pmd_table(c, addr, nxt, direct, free_data, free_table)
                    self._free_table_if_empty(c, slot, i, free_table)
                else:
                    # A 1G leaf only partly covered: the kernel walks its first data page as a
                    # PMD table (pmd_offset on a leaf). Modelled as reading zeros, so
                    # free_pmd_table frees that page as a table and clears the PUD entry.
                    free_table((e & PHYSICAL_PUD_PAGE_MASK) >> 12, "PMD")
                    self._clear(slot, i)
            addr = nxt
        if direct:
            self._update_page_count(2, -pages)

    def _remove_pmd_table(self, slot, addr, end, direct, free_data, free_table):
        """arch/x86/mm/init_64.c:remove_pmd_table (6.1)."""
        pages = 0
        while addr < end:
            nxt = _addr_end(addr, end, 21)
            i = (addr >> 21) & 511
            e = int(self._ent[slot, i])
            if e & (_PAGE_PRESENT | _PAGE_PROTNONE | _PAGE_PSE):      # pmd_present
                if e & _PAGE_PSE:
                    pfn = (e & PHYSICAL_PMD_PAGE_MASK) >> 12
                    if not addr & (_PMD_SIZE - 1) and not nxt & (_PMD_SIZE - 1):
                        if not direct:
                            free_data(pfn, _PMD_SIZE >> 12)          # free_hugepage_table
                        self._clear(slot, i)
                        self._drop_unused(addr)
                        pages += 1
                    elif self._vmemmap_pmd_is_unused(addr, nxt):
                        # reached for the direct map too; the kernel then frees the RAM itself
                        if free_data is not None:
                            free_data(pfn, _PMD_SIZE >> 12)
                        self._clear(slot, i)
                        self._drop_unused(addr & ~(_PMD_SIZE - 1))
                else:
                    c = int(self._child[slot, i])
                    self._remove_pte_table(c, addr, nxt, direct, free_data)
                    self._free_table_if_empty(c, slot, i, free_table)
            addr = nxt
        if direct:
            self._update_page_count(1, -pages)

    def _remove_pte_table(self, slot, addr, end, direct, free_data):
        """arch/x86/mm/init_64.c:remove_pte_table (6.1)."""
        pages = 0
        while addr < end:
            nxt = min((addr + _PAGE_SIZE) & ~0xFFF, end)
            i = (addr >> 12) & 511
            e = int(self._ent[slot, i])
            if e & (_PAGE_PRESENT | _PAGE_PROTNONE):                   # pte_present
                # "[0,1G) is mapped by head_64.S": pte_val() + virtual address, as 6.1 adds them
                if ((e + (addr & ~0xFFF)) & _M64) < 0x40000000:
                    return
                if not direct:
                    free_data((e & PTE_PFN_MASK) >> 12, 1)
                self._clear(slot, i)
                pages += 1
            addr = nxt
        if direct:
            self._update_page_count(0, -pages)

    def _free_table_if_empty(self, slot, parent, i, free_table):
        """arch/x86/mm/init_64.c:free_pte_table / free_pmd_table / free_pud_table (6.1)."""
        if not self._table_empty(slot):
            return
        free_table(int(self._pfn[slot]), PGTABLE_LEVEL_NAMES[int(self._lvl[slot])])
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
        but not yet linked) stays, as in the crashed kernel."""
        if page_size == 4096:
            mask = 0
        elif page_size == _PMD_SIZE:
            mask = _PG_LEVEL_2M
        elif page_size == _PUD_SIZE:
            mask = _PG_LEVEL_2M | _PG_LEVEL_1G
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
            i = (vaddr >> _P4D_SHIFT) & 511
            vaddr_next = ((vaddr & ~((1 << _P4D_SHIFT) - 1)) + (1 << _P4D_SHIFT)) & _M64
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
            paddr_next = (paddr & ~(_PUD_SIZE - 1)) + _PUD_SIZE
            if paddr < paddr_end:
                prot = prot0
                e = int(self._ent[slot, j])
                done = False
                if not _entry_none(e):
                    if (e & (_PAGE_PSE | _PAGE_PRESENT)) != (_PAGE_PSE | _PAGE_PRESENT):
                        paddr_last = self._phys_pmd_init(int(self._child[slot, j]), paddr,
                                                         paddr_end, mask, prot, alloc_table, node)
                        done = True
                    elif mask & _PG_LEVEL_1G:
                        paddr_last = paddr_next
                        done = True
                    else:
                        prot = e & _PTE_FLAGS_MASK & ~_PAGE_PSE      # split the 1G leaf
                if not done:
                    if mask & _PG_LEVEL_1G:
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
            paddr_next = (paddr & ~(_PMD_SIZE - 1)) + _PMD_SIZE
            if paddr < paddr_end:
                new_prot = prot
                e = int(self._ent[slot, j])
                done = False
                if not _entry_none(e):
                    if not e & _PAGE_PSE:
                        paddr_last = self._phys_pte_init(int(self._child[slot, j]), paddr,
                                                         paddr_end, prot)
                        done = True
                    elif mask & _PG_LEVEL_2M:
                        paddr_last = paddr_next
                        done = True
                    else:
                        new_prot = e & _PTE_FLAGS_MASK & ~_PAGE_PSE  # split the 2M leaf
                if not done:
                    if mask & _PG_LEVEL_2M:
                        pages += 1
                        self._ent[slot, j] = (paddr & PHYSICAL_PMD_PAGE_MASK) | prot | _PAGE_PSE
                        self._child[slot, j] = -1
                        paddr_last = paddr_next
                    else:
                        pte = self._alloc_low_page(4, node, alloc_table)
                        paddr_last = self._phys_pte_init(pte, paddr, paddr_end, new_prot)
                        self._drop_unused((self.page_offset + paddr) & ~(_PMD_SIZE - 1) & _M64)
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
            paddr_next = (paddr & ~0xFFF) + _PAGE_SIZE
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
        """arch/x86/mm/pat/set_memory.c:direct_pages_count[PG_LEVEL_4K/2M/1G] ("4K"/"2M"/"1G")."""
        k = _COUNT_INDEX.get(level)
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
            i = (va >> self._shifts[d]) & 511
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
        lid = _LEVEL_ID.get(level_name)
        if lid is None:
            raise _einval(f"nr_tables: unknown level {level_name!r}")
        return int(np.count_nonzero(self._lvl[:self._nr_slots] == lid))

    def table_pfns(self, level_name):
        """Sorted pfns of the table pages of that level."""
        lid = _LEVEL_ID.get(level_name)
        if lid is None:
            raise _einval(f"table_pfns: unknown level {level_name!r}")
        sel = self._lvl[:self._nr_slots] == lid
        return sorted(int(p) for p in self._pfn[:self._nr_slots][sel])

    def entries(self, table_pfn):
        """A copy of the 512 entries of table page ``table_pfn``."""
        slot = self._slot_of.get(table_pfn)
        if slot is None:
            raise _einval(f"entries: pfn {table_pfn:#x} is not a page table")
        return self._ent[slot].copy()

    def state(self):
        """A canonical, comparable snapshot: geometry, every table (pfn, level, entries,
        which entries link a table), the DirectMap counters, unused_pmd_start and the
        PAGE_UNUSED byte ranges of each PMD leaf."""
        tables = []
        for pfn in sorted(self._slot_of):
            s = self._slot_of[pfn]
            tables.append((pfn, PGTABLE_LEVEL_NAMES[int(self._lvl[s])], self._ent[s].tobytes(),
                           np.packbits(self._child[s] >= 0).tobytes()))
        unused = []
        for va in sorted(self._unused):
            rec = self._unused[va]
            if not rec.any():
                continue
            d = np.diff(np.concatenate(([0], rec.astype(np.int8), [0])))
            starts = np.flatnonzero(d == 1) << _CHUNK_SHIFT
            ends = np.flatnonzero(d == -1) << _CHUNK_SHIFT
            unused.append((va, tuple(zip(starts.tolist(), ends.tolist()))))
        return (self.levels, self.pgd_pfn, tuple(tables), tuple(self._count),
                self._unused_pmd_start, tuple(unused))

    def __repr__(self):
        return (f"PageTables(levels={self.levels}, pgd_pfn={self.pgd_pfn:#x}, "
                f"tables={len(self._slot_of)})")
