"""s390x kernel page tables in Python (arch/s390/mm/vmem.c, pgalloc.c, pageattr.c; Linux 6.1.166).

s390 tables do not fit the core's ``PageTables`` (one page per table, one entry size for every
level): region and segment ("crst") tables are 2048 entries x 8 B = 16 KiB, an order-2 block
(CRST_ALLOC_ORDER 2), and page tables are 256 entries x 8 B = 2 KiB, two of them sharing a 4 KiB
page (the fragments of pgalloc.c:page_table_alloc). This arch is not a hot path, so the tables
live here as Python dicts; every table is backed by real model memory: memblock before
``slab_is_available()`` (vmem_crst_alloc / vmem_pte_alloc at boot: memblock_alloc(16K, 16K) and
memblock_alloc(2K, 2K)), the page allocator after it (__get_free_pages(GFP_KERNEL, 2) and
page_table_alloc(&init_mm), which hands out 2 KiB halves of order-0 pages kept on
init_mm.context.pgtable_list).

The walks follow vmem.c:modify_pagetable and its modify_{p4d,pud,pmd,pte}_table, including
the 2 GiB region-third (EDAT2) and 1 MiB segment (EDAT1) large mappings of the identity map, the
1 MiB vmemmap blocks (vmemmap_alloc_block(PMD_SIZE)) with the 4 KiB fallback, the try_free_*
of empty tables (never above VMALLOC_START, a PageReserved boot table WARNs once and is kept
while its entry is cleared anyway), and update_page_count (DirectMap4k/1M/2G of
pageattr.c:arch_report_meminfo, kept in ``direct_pages``).

Levels are named as the kernel's walkers name them: "P4D" a region-second table (only when the
kernel space has 4 levels), "PUD" a region-third table, "PMD" a segment table, "PTE" a page table.
Simplifications (said, not hidden):
- sub-PMD vmemmap bookkeeping (vmemmap_use_sub_pmd & co., only reached for sub-section memmaps,
  never by add_memory of whole blocks) is kept as used byte intervals per 1 MiB block instead
  of the kernel's PAGE_UNUSED (0xFD) fill;
- a PTE page shared by a direct-map and a vmemmap table is ledgered under the first user;
- the PP (pending-removal) bits of page_table_free are transient without RCU and not kept;
- pages of init_mm's PTE tables count to NR_PAGETABLE (pgtable_pte_page_ctor in
  page_table_alloc) in ``nr_pagetable``; the /proc/meminfo renderer does not read it yet.
"""
from __future__ import annotations

import errno

from hotmem.mm.page_alloc import GFP_KERNEL, kernel_alloc_pages, kernel_free_pages, numa_node_id
from hotmem.mm.sparse_vmemmap import vmemmap_alloc_block as _buddy

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
CRST_ALLOC_ORDER = 2
CRST_SIZE = PAGE_SIZE << CRST_ALLOC_ORDER       # 2048 entries x 8 bytes
CRST_ENTRIES = 2048
PTE_ENTRIES = 256
PTE_TABLE_SIZE = PTE_ENTRIES * 8                # 2 KiB: half a page
PMD_SHIFT, PUD_SHIFT, P4D_SHIFT = 20, 31, 42
PMD_SIZE, PUD_SIZE, P4D_SIZE = 1 << PMD_SHIFT, 1 << PUD_SHIFT, 1 << P4D_SHIFT
PMD_ORDER = PMD_SHIFT - PAGE_SHIFT             # get_order(PMD_SIZE) = 8

# entry kinds of the model
TABLE, LARGE, PAGE = "T", "L", "P"


class Table:
    """One region, segment or page table: ``entries`` index -> (kind, address)."""

    __slots__ = ("addr", "boot", "entries", "level")

    def __init__(self, level: str, addr: int, boot: bool):
        self.level, self.addr, self.boot = level, addr, boot
        self.entries: dict[int, tuple[str, int]] = {}


class S390PageTables:
    """init_mm's kernel page tables (swapper_pg_dir and below) of an s390 6.1 kernel."""

    def __init__(self, levels: int, top_addr: int, vmalloc_start: int, edat1: bool = True,
                 edat2: bool = True):
        if levels not in (3, 4):
            raise ValueError(f"s390 kernel page tables: {levels} levels (3 or 4)")
        self.levels = levels
        self.top = top_addr
        self.vmalloc_start = vmalloc_start
        self.edat1, self.edat2 = bool(edat1), bool(edat2) and bool(edat1)
        self.tables: dict[int, Table] = {top_addr: Table("P4D" if levels == 4 else "PUD",
                                                         top_addr, True)}
        self.pgtable_list: list[int] = []       # pfns of half-used PTE pages, head first
        self.frag_mask: dict[int, int] = {}     # pfn -> AA bits (1 lower, 2 upper half)
        self.sub_pmd_used: dict[int, list] = {}  # 1 MiB vmemmap block vaddr -> used intervals
        self.direct_pages = {"4k": 0, "1M": 0, "2G": 0}
        self.nr_pagetable = 0
        self.slab_available = False
        self.warned: set[str] = set()
        self.debug_pagealloc = False

    # -- views ---------------------------------------------------------------------------------
    def state(self) -> tuple:
        return (self.top, tuple((a, t.level, t.boot, tuple(sorted(t.entries.items())))
                                for a, t in sorted(self.tables.items())),
                tuple(self.pgtable_list), tuple(sorted(self.frag_mask.items())),
                tuple((k, tuple(v)) for k, v in sorted(self.sub_pmd_used.items())),
                tuple(sorted(self.direct_pages.items())), self.nr_pagetable, self.slab_available)

    def tables_by_level(self) -> dict:
        out: dict = {}
        for t in self.tables.values():
            out[t.level] = out.get(t.level, 0) + 1
        return out

    def walk(self):
        """Read-only walk for hotmem.testing's invariants: every table reached from the top,
        parents before children, as (address, level the walk expects, Table or None when the
        entry dangles, va of its first entry); a table referenced twice is yielded twice."""
        order = ("P4D", "PUD", "PMD", "PTE") if self.levels == 4 else ("PUD", "PMD", "PTE")
        stack = [(self.top, 0, 0)]
        while stack:
            addr, d, va = stack.pop()
            t = self.tables.get(addr)
            yield addr, order[d], t, va
            if t is None or d + 1 >= len(order):
                continue
            shift, _ = _SHIFTS[order[d]]
            for i, e in t.entries.items():
                if e[0] == TABLE:
                    stack.append((e[1], d + 1, va | (i << shift)))

    def lookup(self, vaddr: int):
        """(level, kind, address) of the entry mapping ``vaddr``, or None."""
        t = self.tables[self.top]
        while True:
            shift, n = _SHIFTS[t.level]
            e = t.entries.get((vaddr >> shift) & (n - 1))
            if e is None:
                return None
            if e[0] != TABLE:
                return t.level, e[0], e[1]
            t = self.tables[e[1]]


_SHIFTS = {"P4D": (P4D_SHIFT, CRST_ENTRIES), "PUD": (PUD_SHIFT, CRST_ENTRIES),
           "PMD": (PMD_SHIFT, CRST_ENTRIES), "PTE": (PAGE_SHIFT, PTE_ENTRIES)}


def _addr_end(addr: int, end: int, size: int) -> int:
    nxt = (addr + size) & ~(size - 1)
    return nxt if nxt - 1 < end - 1 else end


def _aligned(x: int, size: int) -> bool:
    return x & (size - 1) == 0


def _kind(direct: bool) -> str:
    return "direct map" if direct else "vmemmap"


def _warn_once(m, site: str, msg: str) -> None:
    pt = m.pgtables
    if site not in pt.warned:
        pt.warned.add(site)
        m.warn(msg)


def _page_reserved(m, pfn: int) -> bool:
    return bool(m.ms.pfn_valid(pfn) and m.ms.page_flags(pfn) >> m.core.PG_reserved & 1)


# -- allocation (vmem.c:vmem_alloc_pages, vmem_crst_alloc, vmem_pte_alloc; pgalloc.c) -----------

def _memblock_name(level: str, direct: bool) -> str:
    """The boot ledger names the machine's generic boot uses for its page tables."""
    return f"pgtable {level}" if direct else f"vmemmap {level} table (boot)"


def vmem_crst_alloc(m, level: str, direct: bool) -> int:
    """vmem.c:vmem_crst_alloc (6.1): an order-2 block, memblock_alloc(16K, 16K) at boot, else
    __get_free_pages(GFP_KERNEL, CRST_ALLOC_ORDER) (no node: the running CPU's). The table's
    physical address, or -1."""
    pt = m.pgtables
    if not pt.slab_available:
        name = _memblock_name(level, direct)
        base = m.memblock.alloc_top_down(CRST_SIZE, CRST_SIZE, 0, name)
        m.owners.note_memblock(base >> PAGE_SHIFT, 1 << CRST_ALLOC_ORDER, 0, name)
    else:
        pfn, _ = kernel_alloc_pages(m, numa_node_id(m), GFP_KERNEL, CRST_ALLOC_ORDER,
                                    f"{_kind(direct)} {level} table")
        if pfn < 0:
            return -1
        base = pfn << PAGE_SHIFT
    pt.tables[base] = Table(level, base, not pt.slab_available)
    return base


def page_table_alloc(m, direct: bool) -> int:
    """pgalloc.c:page_table_alloc(&init_mm) (6.1, no PGSTE): the other 2 KiB half of the first
    page on init_mm.context.pgtable_list, else a fresh alloc_page(GFP_KERNEL) whose lower half
    is returned and which goes to the list head (pgtable_pte_page_ctor: NR_PAGETABLE + 1)."""
    pt = m.pgtables
    if pt.pgtable_list:
        pfn = pt.pgtable_list[0]
        mask = pt.frag_mask[pfn]
        if mask != 3:
            bit = mask & 1                      # lower half used -> hand out the upper one
            pt.frag_mask[pfn] = mask | (1 << bit)
            pt.pgtable_list.pop(0)
            return (pfn << PAGE_SHIFT) + bit * PTE_TABLE_SIZE
    pfn, _ = kernel_alloc_pages(m, numa_node_id(m), GFP_KERNEL, 0, f"{_kind(direct)} PTE table")
    if pfn < 0:
        return -1
    pt.nr_pagetable += 1
    pt.frag_mask[pfn] = 1
    pt.pgtable_list.insert(0, pfn)
    return pfn << PAGE_SHIFT


def page_table_free(m, addr: int) -> None:
    """pgalloc.c:page_table_free(&init_mm, table) (6.1): clear the half's bit; a page with its
    other half in use goes (back) to the list head, an unused one leaves the list and is freed
    (pgtable_pte_page_dtor: NR_PAGETABLE - 1)."""
    pt = m.pgtables
    pfn, bit = addr >> PAGE_SHIFT, (addr & (PAGE_SIZE - 1)) // PTE_TABLE_SIZE
    mask = pt.frag_mask[pfn] & ~(1 << bit)
    if pfn in pt.pgtable_list:
        pt.pgtable_list.remove(pfn)
    if mask:
        pt.frag_mask[pfn] = mask
        pt.pgtable_list.insert(0, pfn)
        return
    del pt.frag_mask[pfn]
    pt.nr_pagetable -= 1
    kernel_free_pages(m, pfn, 0)


def vmem_pte_alloc(m, direct: bool) -> int:
    """vmem.c:vmem_pte_alloc (6.1): memblock_alloc(2K, 2K) at boot, else page_table_alloc."""
    pt = m.pgtables
    if not pt.slab_available:
        name = _memblock_name("PTE", direct)
        base = m.memblock.alloc_top_down(PTE_TABLE_SIZE, PTE_TABLE_SIZE, 0, name)
        if base >> PAGE_SHIFT not in m.owners.memblock:
            m.owners.note_memblock(base >> PAGE_SHIFT, 1, 0, name)
    else:
        base = page_table_alloc(m, direct)
        if base < 0:
            return -1
    pt.tables[base] = Table("PTE", base, not pt.slab_available)
    return base


def vmem_free_pages(m, addr: int, order: int) -> None:
    """vmem.c:vmem_free_pages (6.1): nothing before slab; a PageReserved (boot) page
    WARN_ON_ONCEs and is kept; else free_pages."""
    if not m.pgtables.slab_available:
        return
    pfn = addr >> PAGE_SHIFT
    if _page_reserved(m, pfn):
        _warn_once(m, "vmem_free_pages", f"vmem_free_pages: pfn {pfn:#x} is PageReserved "
                   "(boot memory is not expected to be removed)")
        return
    kernel_free_pages(m, pfn, order)


def vmem_pte_free(m, addr: int) -> None:
    """vmem.c:vmem_pte_free (6.1): as vmem_free_pages, through page_table_free."""
    if not m.pgtables.slab_available:
        return
    if _page_reserved(m, addr >> PAGE_SHIFT):
        _warn_once(m, "vmem_pte_free", f"vmem_pte_free: table at {addr:#x} is PageReserved "
                   "(boot memory is not expected to be removed)")
        return
    page_table_free(m, addr)


def vmemmap_alloc_block(m, size: int) -> int:
    """mm/sparse-vmemmap.c:vmemmap_alloc_block(size, NUMA_NO_NODE) (6.1): at boot
    __earlyonly_bootmem_alloc (memblock_alloc_try_nid_raw(size, size, __pa(MAX_DMA_ADDRESS)),
    retried from 0: top-down the same place), after it alloc_pages_node(GFP_KERNEL |
    __GFP_RETRY_MAYFAIL | __GFP_NOWARN, get_order(size)). Physical address or -1."""
    if not m.pgtables.slab_available:
        base = m.memblock.alloc_top_down(size, size, 0, "memmap")
        m.owners.note_memblock(base >> PAGE_SHIFT, size >> PAGE_SHIFT, 0, "memmap (boot)")
        return base
    pfn = _buddy(m, size >> PAGE_SHIFT, -1, "memmap")
    if pfn < 0:
        m.log(f"vmemmap alloc failure: order:{(size >> PAGE_SHIFT).bit_length() - 1}")
        return -1
    return pfn << PAGE_SHIFT


# -- sub-PMD vmemmap bookkeeping (vmem.c:vmemmap_use_sub_pmd & co., simplified) -------------------

def _use(m, start: int, end: int) -> None:
    page = start & ~(PMD_SIZE - 1)
    m.pgtables.sub_pmd_used.setdefault(page, []).append((start, end))


def _unuse(m, start: int, end: int) -> bool:
    """vmemmap_unuse_sub_pmd: True when the whole 1 MiB block is unused afterwards."""
    page = start & ~(PMD_SIZE - 1)
    used = m.pgtables.sub_pmd_used.get(page, [])
    left = []
    for s, e in used:
        if s < start:
            left.append((s, min(e, start)))
        if e > end:
            left.append((max(s, end), e))
    if left:
        m.pgtables.sub_pmd_used[page] = left
        return False
    m.pgtables.sub_pmd_used.pop(page, None)
    return True


# -- the walks (vmem.c:modify_*_table) -----------------------------------------------------------

def _modify_pte_table(m, t: Table, addr: int, end: int, add: bool, direct: bool) -> int:
    pages, rc = 0, -errno.ENOMEM
    try:
        while addr < end:
            i = (addr >> PAGE_SHIFT) & (PTE_ENTRIES - 1)
            e = t.entries.get(i)
            if not add:
                if e is not None:
                    if not direct:
                        vmem_free_pages(m, e[1], 0)
                    del t.entries[i]
                    pages += 1
            elif e is None:
                if not direct:
                    new = vmemmap_alloc_block(m, PAGE_SIZE)
                    if new < 0:
                        return rc
                    t.entries[i] = (PAGE, new)
                else:
                    t.entries[i] = (PAGE, addr)
                pages += 1
            addr += PAGE_SIZE
        rc = 0
        return rc
    finally:
        if direct:
            m.pgtables.direct_pages["4k"] += pages if add else -pages


def _try_free_pte_table(m, pmd: Table, i: int) -> None:
    t = m.pgtables.tables[pmd.entries[i][1]]
    if t.entries:
        return
    vmem_pte_free(m, t.addr)
    del m.pgtables.tables[t.addr]
    del pmd.entries[i]


def _modify_pmd_table(m, t: Table, addr: int, end: int, add: bool, direct: bool) -> int:
    pt = m.pgtables
    pages, rc = 0, -errno.ENOMEM
    try:
        while addr < end:
            nxt = _addr_end(addr, end, PMD_SIZE)
            i = (addr >> PMD_SHIFT) & (CRST_ENTRIES - 1)
            e = t.entries.get(i)
            if not add:
                if e is None:
                    addr = nxt
                    continue
                if e[0] == LARGE:
                    if _aligned(addr, PMD_SIZE) and _aligned(nxt, PMD_SIZE):
                        if not direct:
                            pt.sub_pmd_used.pop(addr, None)
                            vmem_free_pages(m, e[1], PMD_ORDER)
                        del t.entries[i]
                        pages += 1
                    elif not direct and _unuse(m, addr, nxt):
                        vmem_free_pages(m, e[1], PMD_ORDER)
                        del t.entries[i]
                    addr = nxt
                    continue
            elif e is None:
                if (_aligned(addr, PMD_SIZE) and _aligned(nxt, PMD_SIZE) and pt.edat1 and direct
                        and not pt.debug_pagealloc):
                    t.entries[i] = (LARGE, addr)
                    pages += 1
                    addr = nxt
                    continue
                if not direct and pt.edat1:
                    new = vmemmap_alloc_block(m, PMD_SIZE)
                    if new >= 0:
                        t.entries[i] = (LARGE, new)
                        if not _aligned(addr, PMD_SIZE) or not _aligned(nxt, PMD_SIZE):
                            _use(m, addr, nxt)
                        addr = nxt
                        continue
                pte = vmem_pte_alloc(m, direct)
                if pte < 0:
                    return rc
                t.entries[i] = (TABLE, pte)
            elif e[0] == LARGE:
                if not direct:
                    _use(m, addr, nxt)
                addr = nxt
                continue
            r = _modify_pte_table(m, pt.tables[t.entries[i][1]], addr, nxt, add, direct)
            if r:
                return r
            if not add:
                _try_free_pte_table(m, t, i)
            addr = nxt
        rc = 0
        return rc
    finally:
        if direct:
            pt.direct_pages["1M"] += pages if add else -pages


def _try_free_crst(m, parent: Table, i: int, start: int, size: int) -> None:
    """try_free_pmd_table / try_free_pud_table: never a table reaching VMALLOC_START."""
    pt = m.pgtables
    if start + size > pt.vmalloc_start:
        return
    t = pt.tables[parent.entries[i][1]]
    if t.entries:
        return
    vmem_free_pages(m, t.addr, CRST_ALLOC_ORDER)
    del pt.tables[t.addr]
    del parent.entries[i]


def _modify_pud_table(m, t: Table, addr: int, end: int, add: bool, direct: bool) -> int:
    pt = m.pgtables
    pages, rc = 0, -errno.ENOMEM
    try:
        while addr < end:
            nxt = _addr_end(addr, end, PUD_SIZE)
            i = (addr >> PUD_SHIFT) & (CRST_ENTRIES - 1)
            e = t.entries.get(i)
            if not add:
                if e is None:
                    addr = nxt
                    continue
                if e[0] == LARGE:
                    if _aligned(addr, PUD_SIZE) and _aligned(nxt, PUD_SIZE):
                        del t.entries[i]
                        pages += 1
                    addr = nxt
                    continue
            elif e is None:
                if (_aligned(addr, PUD_SIZE) and _aligned(nxt, PUD_SIZE) and pt.edat2 and direct
                        and not pt.debug_pagealloc):
                    t.entries[i] = (LARGE, addr)
                    pages += 1
                    addr = nxt
                    continue
                pmd = vmem_crst_alloc(m, "PMD", direct)
                if pmd < 0:
                    return rc
                t.entries[i] = (TABLE, pmd)
            elif e[0] == LARGE:
                addr = nxt
                continue
            r = _modify_pmd_table(m, pt.tables[t.entries[i][1]], addr, nxt, add, direct)
            if r:
                return r
            if not add:
                _try_free_crst(m, t, i, addr & ~(PUD_SIZE - 1), PUD_SIZE)
            addr = nxt
        rc = 0
        return rc
    finally:
        if direct:
            pt.direct_pages["2G"] += pages if add else -pages


def _modify_p4d_table(m, t: Table, addr: int, end: int, add: bool, direct: bool) -> int:
    """A region-second table (4-level kernel space): its entries point to region-third tables."""
    pt = m.pgtables
    while addr < end:
        nxt = _addr_end(addr, end, P4D_SIZE)
        i = (addr >> P4D_SHIFT) & (CRST_ENTRIES - 1)
        e = t.entries.get(i)
        if not add:
            if e is None:
                addr = nxt
                continue
        elif e is None:
            pud = vmem_crst_alloc(m, "PUD", direct)
            if pud < 0:
                return -errno.ENOMEM
            t.entries[i] = (TABLE, pud)
        r = _modify_pud_table(m, pt.tables[t.entries[i][1]], addr, nxt, add, direct)
        if r:
            return r
        if not add:
            _try_free_crst(m, t, i, addr & ~(P4D_SIZE - 1), P4D_SIZE)
        addr = nxt
    return 0


def modify_pagetable(m, start: int, end: int, add: bool, direct: bool) -> int:
    """vmem.c:modify_pagetable (6.1). pgd (and, with 3 levels, p4d) are folded into the top
    table; try_free_p4d_table never frees it (its PGDIR_SIZE reaches past VMALLOC_START)."""
    if (start | end) & (PAGE_SIZE - 1):
        m.warn(f"modify_pagetable: unaligned range {start:#x}-{end:#x}")
        return -errno.EINVAL
    pt = m.pgtables
    top = pt.tables[pt.top]
    if pt.levels == 4:
        return _modify_p4d_table(m, top, start, end, add, direct)
    return _modify_pud_table(m, top, start, end, add, direct)


def add_pagetable(m, start: int, end: int, direct: bool) -> int:
    return modify_pagetable(m, start, end, True, direct)


def remove_pagetable(m, start: int, end: int, direct: bool) -> int:
    return modify_pagetable(m, start, end, False, direct)


# -- pageattr.c: the splits of set_memory_4k ---------------------------------------------------------

def set_memory_4k(m, addr: int, numpages: int) -> None:
    """pageattr.c:__set_memory(addr, numpages, SET_MEMORY_4K) (6.1) on the identity map:
    split_pud_page (a segment table of 2048 1 MiB entries) and split_pmd_page (a page table of
    256 4 KiB entries) where a large entry covers the range."""
    pt = m.pgtables
    end = addr + numpages * PAGE_SIZE
    top = pt.tables[pt.top]
    if pt.levels == 4:
        e = top.entries.get((addr >> P4D_SHIFT) & (CRST_ENTRIES - 1))
        if e is None:
            return
        top = pt.tables[e[1]]
    while addr < end:
        nxt = _addr_end(addr, end, PUD_SIZE)
        i = (addr >> PUD_SHIFT) & (CRST_ENTRIES - 1)
        e = top.entries.get(i)
        if e is None:
            return
        if e[0] == LARGE:
            seg = vmem_crst_alloc(m, "PMD", True)
            st = pt.tables[seg]
            for k in range(CRST_ENTRIES):
                st.entries[k] = (LARGE, e[1] + (k << PMD_SHIFT))
            top.entries[i] = (TABLE, seg)
            pt.direct_pages["1M"] += CRST_ENTRIES
            pt.direct_pages["2G"] -= 1
        pmd = pt.tables[top.entries[i][1]]
        a = addr
        while a < nxt:
            n2 = _addr_end(a, nxt, PMD_SIZE)
            j = (a >> PMD_SHIFT) & (CRST_ENTRIES - 1)
            f = pmd.entries.get(j)
            if f is not None and f[0] == LARGE:
                pte = vmem_pte_alloc(m, True)
                ptt = pt.tables[pte]
                for k in range(PTE_ENTRIES):
                    ptt.entries[k] = (PAGE, f[1] + (k << PAGE_SHIFT))
                pmd.entries[j] = (TABLE, pte)
                pt.direct_pages["4k"] += PTE_ENTRIES
                pt.direct_pages["1M"] -= 1
            a = n2
        addr = nxt
