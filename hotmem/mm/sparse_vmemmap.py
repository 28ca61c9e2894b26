"""Populating and freeing the memmap in the virtual memory map (mm/sparse-vmemmap.c, 6.1).

Who pays for a page of the vmemmap: ``vmemmap_alloc_block_buf`` takes memmap data from the altmap
when there is one, else from the buddy on the node's zonelist (after boot) or from memblock (at
boot); page-table pages always come from ``vmemmap_alloc_block_zero`` — never from the altmap.

The compiled page-table walks (x86 and arm64) take their pages from a ``pgtable_allocator``, which
makes the same allocations in the core; the Python functions below serve the other arches' walks.
"""
from __future__ import annotations

from hotmem.fault_inject import should_fail_altmap
from hotmem.mm.mmzone import WMARK_LOW, WMARK_MIN
from hotmem.mm.page_alloc import (GFP_KERNEL, alloc_flags_nofragment, kernel_alloc_pages,
                                  numa_node_id)
from hotmem.mm.vmstat import memmap_pages_add, memmap_pages_of


def vmemmap_alloc_block(m, nr_pages: int, node: int, what: str) -> int:
    """mm/sparse-vmemmap.c:vmemmap_alloc_block (6.1) after boot: alloc_pages_node(node,
    GFP_KERNEL | __GFP_RETRY_MAYFAIL | __GFP_NOWARN, get_order(size)); -1 on failure."""
    order = (nr_pages - 1).bit_length()
    pfn, _ = kernel_alloc_pages(m, node, GFP_KERNEL, order, what)
    return pfn


def vmemmap_alloc_block_buf(m, nr_pages: int, node: int, altmap) -> int:
    """mm/sparse-vmemmap.c:vmemmap_alloc_block_buf (6.1): the altmap, else the buddy."""
    if altmap is not None:
        if should_fail_altmap(m):
            return -1
        pfn = m.core.altmap_alloc_block_buf(nr_pages << m.arch.page_shift, altmap,
                                            m.arch.PAGE_SIZE)
        if pfn >= 0:
            m.owners.note_altmap(pfn, nr_pages)
        return pfn
    return vmemmap_alloc_block(m, nr_pages, node, "memmap")


def pgtable_allocator(m, nid: int, altmap=None, gfp=GFP_KERNEL, tables: str = "vmemmap"):
    """``with pgtable_allocator(...) as a:`` the core's ``PgtableAllocator`` for one hot-plug
    page-table walk. Its ``table`` source is kernel_alloc_pages(nid, gfp, 0, "<tables> <level>
    table") (vmemmap_alloc_block_zero, x86 alloc_low_page, arm64 __pgd_pgtable_alloc), its
    ``buddy`` / ``altmap`` sources are vmemmap_alloc_block_buf without / with ``altmap``: the same
    pfns, in the same order, with the same fail_page_alloc and altmap injection points, but made
    in C. alloc_pages_node's zonelist, watermarks and ALLOC_NOFRAGMENT are read once, at the
    first buddy request (nothing is onlined or offlined during a walk). On leaving (also when the
    walk raises), the allocations are replayed in order into the owner ledger and the injections'
    counters written back. Boot keeps Python callables (memblock, once per boot)."""
    if nid not in m.pgdats:
        nid = numa_node_id(m)
    batch = _BATCHES.get(id(m))
    if batch is not None:
        return batch.allocator(m, nid, altmap, gfp, tables)
    return _new_pgtable_allocs(m, nid, altmap, gfp, tables)


def _new_pgtable_allocs(m, nid: int, altmap, gfp, tables: str):
    hz = gfp.highest_zoneidx

    def zonelist_fn():
        zones = m.zonelists.zonelist(nid, hz)
        return (tuple((z.zoneid, z.node, z.wmark_pages(WMARK_LOW), z.wmark_pages(WMARK_MIN),
                       z.lowmem_reserve[hz]) for z in zones),
                bool(zones) and alloc_flags_nofragment(m, zones[0]))

    injections = [(i["kind"], i["order"], i["node"], i["nth"], i["times"], i["seen"],
                   i["failed"]) for i in m.injections]
    return _PgtableAllocs(m, m.core.PgtableAllocator(m.allocator, nid, zonelist_fn,
                                                     gfp.migratetype, gfp.alloc_high,
                                                     gfp.alloc_harder, injections, altmap),
                          nid, tables)


_TABLE_OWNERS: dict = {}


def _table_owner(tables: str, level: str) -> str:
    """The owner-ledger name of a page-table page, "<tables> <level> table", one string
    object per name (a hot-add of 16 TiB on arm64 4K notes millions of them)."""
    what = _TABLE_OWNERS.get((tables, level))
    if what is None:
        what = _TABLE_OWNERS[(tables, level)] = f"{tables} {level} table"
    return what


class _PgtableAllocs:
    """pgtable_allocator's context: the allocator in, its records replayed out."""

    __slots__ = ("m", "a", "nid", "tables")

    def __init__(self, m, a, nid, tables):
        self.m, self.a, self.nid, self.tables = m, a, nid, tables

    def __enter__(self):
        return self.a

    def __exit__(self, *exc):
        self.replay()
        return False

    def replay(self) -> None:
        m = self.m
        if m.injections:
            for inj, (seen, times, failed) in zip(m.injections, self.a.injections()):
                inj["seen"], inj["times"], inj["failed"] = seen, times, failed
        owners = m.owners
        buddy = owners.buddy
        values: dict = {}                   # (kind, order, level) -> the ledger's value
        for kind, pfn, n, level in self.a.records():
            if kind == "altmap":
                owners.note_altmap(pfn, n)
                continue
            v = values.get((kind, n, level))
            if v is None:
                v = values[(kind, n, level)] = owners.buddy_value(
                    "memmap" if kind == "buddy" else _table_owner(self.tables, level), n,
                    self.nid)
            buddy[pfn] = v                  # Owners.note_buddy


_BATCHES: dict = {}


class _Reuse:
    """The context of a batched pgtable_allocator request: the batch's allocator, no replay."""

    __slots__ = ("a",)

    def __init__(self, a):
        self.a = a

    def __enter__(self):
        return self.a

    def __exit__(self, *exc):
        return False


class pgtable_batch:
    """``with pgtable_batch(m):`` the hot-plug page-table walks inside (one __add_pages: a
    vmemmap_populate per section) share one PgtableAllocator while they ask for the same node,
    altmap, gfp and owner name; its records are replayed into the owner ledger and the
    injections' counters when the batch ends, when a request differs, or on flush() (before
    anything reads the ledger or the buddy from Python: section_activate's error path). The
    allocations are the same, in the same order, as with one allocator per walk: nothing
    between the walks of one __add_pages changes the zones' watermarks or the zonelist, and
    no other code allocates from the buddy or fault injection meanwhile. A model speed-up,
    no kernel counterpart."""

    __slots__ = ("m", "key", "allocs")

    def __init__(self, m):
        self.m, self.key, self.allocs = m, None, None

    def __enter__(self):
        if id(self.m) in _BATCHES:          # nested: the outer batch serves
            return None
        _BATCHES[id(self.m)] = self
        return self

    def __exit__(self, *exc):
        if _BATCHES.get(id(self.m)) is self:
            try:
                self.flush()
            finally:
                del _BATCHES[id(self.m)]
        return False

    def flush(self) -> None:
        allocs, self.allocs, self.key = self.allocs, None, None
        if allocs is not None:
            allocs.replay()

    def allocator(self, m, nid, altmap, gfp, tables):
        k = self.key
        if k is None or k[0] != nid or k[1] is not altmap or k[2] is not gfp or k[3] != tables:
            self.flush()
            self.allocs = _new_pgtable_allocs(m, nid, altmap, gfp, tables)
            self.key = (nid, altmap, gfp, tables)
        return _Reuse(self.allocs.a)


def pgtable_batch_flush(m) -> None:
    """Replay the current pgtable_batch of ``m`` now (no-op without one)."""
    batch = _BATCHES.get(id(m))
    if batch is not None:
        batch.flush()


def populate_section_memmap(m, pfn: int, nr_pages: int, nid: int, altmap) -> int:
    """mm/sparse-vmemmap.c:__populate_section_memmap (6.1) without a dev_pagemap: map the struct
    pages of [pfn, pfn + nr_pages) with the arch's vmemmap_populate. 0 or -ENOMEM.

    6.11: on success, DIV_ROUND_UP(end - start, PAGE_SIZE) goes to nr_memmap_pages -- altmap
    pages included (hot-add runs after boot; the boot memmap is counted in sparse_init).
    6.12.101+ (populate_section_memmap, sparse-vmemmap.c): the same amount, success or not.
    """
    start = m.arch.pfn_to_page(pfn)
    end = m.arch.pfn_to_page(pfn + nr_pages)
    rc = m.arch_ops.vmemmap_populate(m, start, end, nid, altmap)
    # 6.12.101+: mm/sparse-vmemmap.c:populate_section_memmap counts section_nr_vmemmap_pages
    # before looking at the result (the depopulate of a failure takes it off again)
    if rc == 0 or m.policy.memmap_stats_count_failed_populate:
        memmap_pages_add(m, memmap_pages_of(m, nr_pages))
    return rc


def depopulate_section_memmap(m, pfn: int, nr_pages: int, altmap) -> None:
    """mm/sparse.c:depopulate_section_memmap (6.1, VMEMMAP): vmemmap_free of the range.
    6.11 first takes DIV_ROUND_UP(end - start, PAGE_SIZE) off nr_memmap_pages -- also when
    section_activate's populate failed and added nothing, so a failed hot-add leaves the counter
    that much lower."""
    memmap_pages_add(m, -memmap_pages_of(m, nr_pages))
    start = m.arch.pfn_to_page(pfn)
    end = m.arch.pfn_to_page(pfn + nr_pages)
    m.arch_ops.vmemmap_free(m, start, end, altmap)
