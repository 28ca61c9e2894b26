"""powerpc64 book3s kernel page tables for memory hotplug: the radix tree of init_mm with its
fragment allocators, and the hash MMU's absence of Linux tables for the kernel maps.

Read in Linux 6.1.166 and 6.6.57: arch/powerpc/mm/book3s64/radix_pgtable.c
(early_map_kernel_page, __map_kernel_page, create_physical_mapping, remove_pagetable and its
remove_p?d_table / free_p?d_table, radix__vmemmap_create_mapping, 6.6 radix__vmemmap_populate,
radix__vmemmap_free), arch/powerpc/mm/book3s64/pgtable.c (pmd_fragment_alloc/free),
arch/powerpc/mm/pgtable-frag.c (pte_fragment_alloc/free), asm/book3s/64/pgalloc.h
(pud_alloc_one: a kmem_cache object; __pud_free), asm/book3s/64/radix-64k.h; the fragment
code of 6.6.57 and 6.8.0 differs from 6.1's only by the struct ptdesc renames.

Why the tables are not the core's ``PageTables``: after boot a radix table is not a page.
With 64K pages a PTE table is 256 bytes (PTE_FRAG_NR = 256 per page) and a PMD table 4 KiB
(PMD_FRAG_NR = 16 per page), handed out in order from a page the mm keeps
(init_mm.context.pte_frag / pmd_frag) and given back only when all of its fragments are freed;
a PUD table is a 4 KiB kmem_cache object. The core keeps one model page per table, so these
tables live here, in a small tree keyed by table id with the shape of the core's
:class:`PageTableGeometry` (PGD 8192 / PUD 512 / PMD 512 / PTE 32 entries). Boot tables are
whole memblock pages (early_alloc_pgtable(PAGE_SIZE)), as the kernel makes them.

Cost model: a fragment page is one buddy page in the owner ledger, named after the map and
level of the table that made the mm allocate it ("direct map PMD table", "vmemmap PTE
table"); later fragments of that page cost nothing. init_mm never drops its current fragment
page (pte_frag_destroy runs only when an mm is torn down), so after a hot-add and hot-remove
the page that served the fragments stays allocated while it still has fragments to hand out:
1 PTE page and 1 PMD page at most, reused by the next hot-add. PUD tables are slab objects
(``m.slab``: their slab pages are not modelled, as for every slab object of the model).
"""
from __future__ import annotations

import errno

from hotmem.errors import HotplugError

#: sizeof(struct vmemmap_backing): list pointer, phys, virt_addr (asm/book3s/64/pgalloc.h)
SIZEOF_VMEMMAP_BACKING = 24


def _addr_end(addr: int, end: int, shift: int) -> int:
    nxt = (addr + (1 << shift)) & ~((1 << shift) - 1)
    return min(end, nxt)


class _Table:
    __slots__ = ("entries", "home", "level")

    def __init__(self, level: str, home: tuple):
        self.level = level
        self.entries: dict = {}          # index -> ("table", tid) | ("leaf", pfn)
        self.home = home                 # ("memblock", pfn) | ("frag", pfn, i) | ("slab", n)


class RadixPageTables:
    """init_mm's radix tree (book3s64, 64K pages) over a :class:`PageTableGeometry`.

    ``env`` supplies the allocators (see hotmem/arch/powerpc64_init.py:_TableEnv):
    ``early(level, nid) -> pfn`` (memblock page), ``page(level) -> pfn | -1`` (a GFP_KERNEL
    page for a fragment cache), ``free_page(pfn)``, ``free_reserved_page(pfn)``,
    ``slab(level, +1/-1)``, ``warn(msg)``. ``vmemmap_list`` is init_64.c's list (6.1 radix
    uses it; 6.6+ radix does not).
    """

    def __init__(self, geometry, pgd_pfn: int, env):
        self.geometry = geometry
        self.levels = tuple(n for n, _, _ in geometry.levels)
        self._shifts = tuple(s for _, s, _ in geometry.levels)
        self._masks = tuple(p - 1 for _, _, p in geometry.levels)
        if self.levels != ("PGD", "PUD", "PMD", "PTE"):
            raise HotplugError(errno.EINVAL, f"radix geometry {geometry.name!r}: expected PGD, "
                               "PUD, PMD, PTE")
        self.page_shift = geometry.page_shift
        self.pgd_pfn = pgd_pfn
        self.env = env
        self._tables = {0: _Table("PGD", ("memblock", pgd_pfn))}
        self._next_tid = 1
        self._next_slab = 0
        page = 1 << self.page_shift
        # PTE_FRAG_NR / PMD_FRAG_NR: PAGE_SIZE >> (index size + 3)
        self.frag_nr = {"PTE": page // (8 * (self._masks[3] + 1)),
                        "PMD": page // (8 * (self._masks[2] + 1))}
        self._frag_cur = {"PTE": None, "PMD": None}     # [pfn, next index]
        self._frag_ref: dict = {}                        # pfn -> pt_frag_refcount
        self.page_count = {self.page_shift: 0, self._shifts[2]: 0, self._shifts[1]: 0}
        self.vmemmap_list = VmemmapList(page)

    # -- table allocation / freeing -----------------------------------------------------------
    def _alloc_table(self, level: str, nid: int, early: bool):
        if early:                                    # early_alloc_pgtable(PAGE_SIZE, nid)
            home = ("memblock", self.env.early(level, nid))
        elif level == "PUD":                         # pud_alloc_one: kmem_cache_alloc
            self.env.slab(level, 1)
            self._next_slab += 1
            home = ("slab", self._next_slab)
        else:
            home = self._fragment_alloc(level)
            if home is None:
                return None
        tid = self._next_tid
        self._next_tid += 1
        self._tables[tid] = _Table(level, home)
        return tid

    def _fragment_alloc(self, level: str):
        """pte_fragment_alloc (kernel) / pmd_fragment_alloc on init_mm (6.1 = 6.6):
        the next fragment of the mm's page, else a new page whose refcount is FRAG_NR."""
        cur = self._frag_cur[level]
        nr = self.frag_nr[level]
        if cur is not None:
            pfn, i = cur
            self._frag_cur[level] = [pfn, i + 1] if i + 1 < nr else None
            return ("frag", pfn, i)
        pfn = self.env.page(level)
        if pfn < 0:
            return None
        self._frag_ref[pfn] = nr
        if nr > 1:
            self._frag_cur[level] = [pfn, 1]
        return ("frag", pfn, 0)

    def _free_table(self, tid: int) -> None:
        """pte_free_kernel / pmd_free (pte/pmd_fragment_free) / pud_free (__pud_free): a
        PageReserved (memblock) table goes back with free_reserved_page."""
        t = self._tables.pop(tid)
        kind = t.home[0]
        if kind == "memblock":
            self.env.free_reserved_page(t.home[1])
        elif kind == "slab":
            self.env.slab(t.level, -1)
        else:
            pfn = t.home[1]
            self._frag_ref[pfn] -= 1
            if self._frag_ref[pfn] == 0:
                del self._frag_ref[pfn]
                self.env.free_page(pfn)

    # -- mapping --------------------------------------------------------------------------------
    def _idx(self, va: int, d: int) -> int:
        return (va >> self._shifts[d]) & self._masks[d]

    def map_kernel_page(self, ea: int, pa: int, map_shift: int, nid: int, early: bool) -> int:
        """radix_pgtable.c:__map_kernel_page / early_map_kernel_page (6.1 = 6.6): walk down,
        allocating missing tables, and set the entry at the level of ``map_shift`` (PUD_SHIFT,
        PMD_SHIFT or PAGE_SHIFT). 0 or -ENOMEM."""
        leaf_d = self._shifts.index(map_shift)
        t = self._tables[0]
        for d in range(leaf_d):
            i = self._idx(ea, d)
            e = t.entries.get(i)
            if e is None:
                tid = self._alloc_table(self.levels[d + 1], nid, early)
                if tid is None:
                    return -errno.ENOMEM
                t.entries[i] = ("table", tid)
            elif e[0] == "leaf":
                raise HotplugError(errno.EINVAL, f"map_kernel_page: {ea:#x} lies in a "
                                   f"{self.levels[d]} leaf where a table is needed")
            t = self._tables[t.entries[i][1]]
        t.entries[self._idx(ea, leaf_d)] = ("leaf", pa >> self.page_shift)
        return 0

    def ensure_table(self, ea: int, depth: int, nid: int, early: bool):
        """The table at ``depth`` (1 PUD, 2 PMD, 3 PTE) holding ea, allocating missing ones on
        the way (vmemmap_pud_alloc / vmemmap_pmd_alloc / vmemmap_pte_alloc, 6.6); None when an
        allocation fails."""
        t = self._tables[0]
        for d in range(depth):
            i = self._idx(ea, d)
            e = t.entries.get(i)
            if e is None:
                tid = self._alloc_table(self.levels[d + 1], nid, early)
                if tid is None:
                    return None
                t.entries[i] = ("table", tid)
            elif e[0] == "leaf":
                raise HotplugError(errno.EINVAL, f"{ea:#x} lies in a {self.levels[d]} leaf")
            t = self._tables[t.entries[i][1]]
        return t

    def entry(self, ea: int, depth: int):
        """The entry at ``depth`` for ea (None if it or a table above is missing)."""
        t = self._tables[0]
        for d in range(depth):
            e = t.entries.get(self._idx(ea, d))
            if e is None or e[0] == "leaf":
                return None
            t = self._tables[e[1]]
        return t.entries.get(self._idx(ea, depth))

    def set_entry(self, table: _Table, ea: int, depth: int, pfn: int) -> None:
        table.entries[self._idx(ea, depth)] = ("leaf", pfn)

    def create_physical_mapping(self, start: int, end: int, nid: int, max_mapping_size: int,
                                has_1g: bool, early: bool) -> int:
        """radix_pgtable.c:create_physical_mapping (6.1 with mapping_sz_limit ~0, 6.6): 1G where
        aligned and the gap allows, else 2M, else PAGE_SIZE, the gap capped at
        max_mapping_size (radix_mem_block_size in 6.1, memory_block_size in 6.6). The kernel
        text boundaries of next_boundary() are not modelled (the kernel image is not). 0 or
        the error of __map_kernel_page (what was mapped stays)."""
        page = 1 << self.page_shift
        pud_size, pmd_size = 1 << self._shifts[1], 1 << self._shifts[2]
        addr = (start + page - 1) & ~(page - 1)
        end &= ~(page - 1)
        while addr < end:
            gap = min(end - addr, max_mapping_size)
            if addr % pud_size == 0 and gap >= pud_size and has_1g:
                sh = self._shifts[1]
            elif addr % pmd_size == 0 and gap >= pmd_size:
                sh = self._shifts[2]
            else:
                sh = self.page_shift
            rc = self.map_kernel_page(self.geometry.page_offset + addr, addr, sh, nid, early)
            if rc:
                return rc
            self.page_count[sh] += 1                 # update_page_count(psize, 1)
            addr += 1 << sh
        return 0

    # -- removal --------------------------------------------------------------------------------
    def remove_pagetable(self, start: int, end: int, direct: bool, free_data=None,
                         unused=None) -> None:
        """radix_pgtable.c:remove_pagetable (6.1: ``free_data`` and ``unused`` None; 6.6:
        with !direct, each cleared leaf's memory goes to ``free_data(pfn, order)`` =
        free_vmemmap_pages, and a leaf the range covers only partly is cleared and freed when
        ``unused(aligned_va, size)`` = !vmemmap_populated). Empty PTE/PMD/PUD tables are freed
        (free_p?d_table) as the walk comes back up; the PGD stays."""
        self._remove(0, 0, start, end, direct, free_data, unused)

    def _remove(self, tid, d, addr, end, direct, free_data, unused):
        t = self._tables[tid]
        sh = self._shifts[d]
        size = 1 << sh
        pages = 0
        while addr < end:
            nxt = _addr_end(addr, end, sh)
            i = self._idx(addr, d)
            e = t.entries.get(i)
            if e is not None:
                if e[0] == "leaf":
                    if addr % size == 0 and nxt % size == 0:
                        if not direct and free_data is not None:
                            free_data(e[1], sh - self.page_shift)
                        del t.entries[i]
                        pages += 1
                    elif (not direct and unused is not None and d >= 2
                          and unused(addr & ~(size - 1), size)):
                        free_data(e[1], sh - self.page_shift)
                        del t.entries[i]
                    elif d < 2 or unused is None:
                        self.env.warn(f"remove_{self.levels[d].lower()}_table: unaligned range "
                                      f"[{addr:#x}, {nxt:#x})")
                else:
                    child = e[1]
                    self._remove(child, d + 1, addr, nxt, direct, free_data, unused)
                    if not self._tables[child].entries:          # free_p?d_table
                        self._free_table(child)
                        del t.entries[i]
            addr = nxt
        if direct and d >= 1:
            self.page_count[sh] -= pages                          # update_page_count(-pages)

    # -- inspection -----------------------------------------------------------------------------
    def nr_tables(self, level: str) -> int:
        return sum(1 for t in self._tables.values() if t.level == level)

    def lookup(self, va: int):
        """(level, pfn) of the leaf mapping va, or None."""
        t = self._tables[0]
        for d in range(4):
            e = t.entries.get(self._idx(va, d))
            if e is None:
                return None
            if e[0] == "leaf":
                return self.levels[d], e[1] + ((va & ((1 << self._shifts[d]) - 1))
                                               >> self.page_shift)
            t = self._tables[e[1]]
        return None

    def fragment_pages(self) -> dict:
        """pfn -> pt_frag_refcount of the fragment pages alive (cached or in use)."""
        return dict(self._frag_ref)

    # -- read-only walking API (hotmem.testing's invariants) ---------------------------------
    def walk(self):
        """Every table reached from the PGD, parents before children, as (table id, depth, va
        index path of its first entry, level, home, {index: entry}); a table referenced twice
        is yielded twice and a dangling reference as (tid, depth, va, None, None, None). The
        va is the index path only (the top bits the indexes drop are the caller's)."""
        stack = [(0, 0, 0)]
        while stack:
            tid, d, va = stack.pop()
            t = self._tables.get(tid)
            if t is None:
                yield tid, d, va, None, None, None
                continue
            yield tid, d, va, t.level, t.home, dict(t.entries)
            if d + 1 < len(self.levels):
                for i, e in t.entries.items():
                    if e[0] == "table":
                        stack.append((e[1], d + 1, va | (i << self._shifts[d])))

    def table_levels(self) -> dict:
        """table id -> level of every table the tree keeps (reachable or not)."""
        return {tid: t.level for tid, t in self._tables.items()}

    def fragment_cache(self) -> dict:
        """level -> (pfn, next fragment index) of init_mm's cached fragment page, or None
        (mm->context.pte_frag / pmd_frag)."""
        return {k: None if v is None else tuple(v) for k, v in self._frag_cur.items()}

    def drop_fragment_cache(self) -> list:
        """Test helper, not a kernel path: free init_mm's cached fragment pages that hold no live
        fragment, as pte_frag_destroy would if init_mm were ever torn down
        (arch/powerpc/mm/pgtable-frag.c, 6.1; it runs only from destroy_context for user mms).
        Returns the freed pfns."""
        live = {t.home[1] for t in self._tables.values() if t.home[0] == "frag"}
        out = []
        for level, cur in self._frag_cur.items():
            if cur is None or cur[0] in live:
                continue
            pfn = cur[0]
            self._frag_cur[level] = None
            del self._frag_ref[pfn]
            self.env.free_page(pfn)
            out.append(pfn)
        return out

    def state(self):
        tables = tuple(sorted((t.level, t.home, tuple(sorted(t.entries.items())))
                              for t in self._tables.values()))
        return ("radix", self.geometry.name, tables,
                tuple((k, None if v is None else tuple(v)) for k, v in sorted(
                    self._frag_cur.items())),
                tuple(sorted(self._frag_ref.items())), tuple(sorted(self.page_count.items())),
                self.vmemmap_list.state())

    def __repr__(self):
        return f"RadixPageTables(pgd_pfn={self.pgd_pfn:#x}, tables={len(self._tables)})"


class HashPageTables:
    """The hash MMU keeps the kernel's linear map and vmemmap in bolted HPTEs
    (htab_bolt_mapping), not in Linux page tables: nothing to allocate or free in the guest.
    On pseries the hashed page table itself belongs to the hypervisor (H_RESIZE_HPT_* resize
    it for hotplug), so the guest's cost is zero. Only the PGD page exists."""

    def __init__(self, pgd_pfn: int, page_size: int):
        self.pgd_pfn = pgd_pfn
        self.bolted: set = set()          # (va, size) of bolted kernel mappings
        self.vmemmap_list = VmemmapList(page_size)

    def nr_tables(self, level: str) -> int:
        return 1 if level == "PGD" else 0

    def unbolt(self, va: int, size: int) -> None:
        """hash_utils.c:htab_remove_mapping (6.1 = 6.6): every HPTE of the range goes, whatever
        range bolted it (a boot range keeps the parts outside)."""
        end = va + size
        for v, n in [x for x in self.bolted if x[0] < end and x[0] + x[1] > va]:
            self.bolted.discard((v, n))
            if v < va:
                self.bolted.add((v, va - v))
            if v + n > end:
                self.bolted.add((end, v + n - end))

    def state(self):
        return ("hash", self.pgd_pfn, tuple(sorted(self.bolted)), self.vmemmap_list.state())

    def __repr__(self):
        return f"HashPageTables(bolted={len(self.bolted)})"


class VmemmapList:
    """arch/powerpc/mm/init_64.c's vmemmap_list (6.1 both MMUs; 6.6+ hash only): one
    vmemmap_backing per vmemmap page, carved out of whole pages (PAGE_SIZE /
    sizeof(struct vmemmap_backing) each) that are never freed; freed entries are reused first."""

    def __init__(self, page_size: int):
        self.per_page = page_size // SIZEOF_VMEMMAP_BACKING
        self.entries: dict = {}          # virt -> phys pfn
        self.num_left = 0
        self.num_freed = 0
        self.pages: list = []

    def populate(self, phys_pfn: int, virt: int, alloc_page) -> int:
        """vmemmap_list_populate / vmemmap_list_alloc: 0 or -ENOMEM."""
        if self.num_freed:
            self.num_freed -= 1
        else:
            if not self.num_left:
                pfn = alloc_page()
                if pfn < 0:
                    return -errno.ENOMEM
                self.pages.append(pfn)
                self.num_left = self.per_page
            self.num_left -= 1
        self.entries[virt] = phys_pfn
        return 0

    def free(self, virt: int):
        """vmemmap_list_free: the phys pfn of the entry for ``virt`` (None if none)."""
        pfn = self.entries.pop(virt, None)
        if pfn is not None:
            self.num_freed += 1
        return pfn

    def state(self):
        return (tuple(sorted(self.entries.items())), self.num_left, self.num_freed,
                tuple(self.pages))
