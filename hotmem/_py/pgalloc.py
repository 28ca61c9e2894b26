"""The page allocations of one hot-plug page-table walk: pure-Python twin of hotmem/_cy/pgalloc.pxi.

A walk of ``PageTables`` (vmemmap populate, the x86 direct map, the arm64 linear map) asks for a
page per new page table and for memmap per 2 MiB block or base page. On the hot-plug paths those
requests go to a ``PgtableAllocator`` instead of Python callables: it takes pages from the core
page allocator and the vmem_altmap itself, so the compiled walk makes no Python call per page.
What needs Python policy is fixed once per walk (hotmem.mm.sparse_vmemmap.pgtable_allocator):
the node kernel_alloc_pages would use, the gfp mask's migratetype and ALLOC_HIGH/ALLOC_HARDER, a
copy of the armed fail_page_alloc / altmap injections, and -- read through ``zonelist_fn`` at the
first buddy request, since most walks of a hot-add take nothing from the buddy -- alloc_pages_node's
zonelist with each zone's low and min watermarks and lowmem_reserve, and ALLOC_NOFRAGMENT (nothing
is onlined or offlined during a walk, so none of these changes). What needs Python bookkeeping is done after it: the
allocator records each allocation (kind, pfn, order or nr_pages, level) in order, and the caller
replays the records into the owner ledger and the injections' counters back into them.

``table``, ``buddy`` and ``altmap`` are its sources, each usable wherever a walk takes an
allocator: ``table(level_name, node)`` a zeroed table page (order 0 from the buddy),
``buddy(nr, node)`` / ``altmap(nr, node)`` nr pages of memmap (vmemmap_alloc_block_buf without /
with the altmap; ``altmap`` is None without one). The node argument is ignored: the allocator's
node was chosen when it was built. A failed allocation is -1 (the kernel's NULL).
"""
import errno as _errno
import operator

from hotmem.defs import ALLOC_NOFRAGMENT, MIGRATE_PCPTYPES, PGTABLE_LEVEL_ID
from hotmem.errors import HotplugError
from hotmem._py.altmap import altmap_alloc_block_buf

__all__ = ["PgtableAllocator", "PgtableAllocSource"]

_TABLE, _BUDDY, _ALTMAP = "table", "buddy", "altmap"


class PgtableAllocator:
    """The allocations of one page-table walk, without a Python call per page.

    ``zonelist_fn() -> (zonelist, nofragment)``: ((zoneid, node, low watermark, min watermark,
    lowmem_reserve), ...) in alloc_pages_node's order and ALLOC_NOFRAGMENT, called once, at the
    first buddy request; ``injections``: ((kind, order, node, nth, times, seen, failed), ...) as
    in hotmem.fault_inject (order/node None: any)."""

    def __init__(self, allocator, nid, zonelist_fn, migratetype, alloc_high, alloc_harder,
                 injections, altmap=None):
        if allocator is None:
            raise TypeError("PgtableAllocator: allocator must not be None")
        if not callable(zonelist_fn):
            raise TypeError("PgtableAllocator: zonelist_fn must be callable")
        self._pa = allocator
        self._nid = nid
        self._zonelist_fn = zonelist_fn
        self._z = None
        self._inj = [list(i) for i in injections]
        self._mt = migratetype
        self._high = bool(alloc_high)
        self._harder = bool(alloc_harder)
        self._altmap = altmap
        self._rec = []
        self.table = PgtableAllocSource(self, _TABLE)
        self.buddy = PgtableAllocSource(self, _BUDDY)
        self.altmap = None if altmap is None else PgtableAllocSource(self, _ALTMAP)

    def _read_zonelist(self):
        zonelist, nofragment = self._zonelist_fn()
        z = [tuple(zl) for zl in zonelist]
        for zl in z:
            self._pa.nr_free_pages(zl[0])               # an unknown zone raises, as compiled
        self._nofrag = bool(nofragment)
        self._z = z

    def _should_fail(self, kind, order):
        """lib/fault-inject.c:should_fail as hotmem.fault_inject.should_fail does it: every
        matching injection counts the attempt, the first one due fails it."""
        for j in self._inj:
            jkind, jorder, jnode = j[0], j[1], j[2]
            if jkind != kind or (kind == "page_alloc" and (
                    jorder is not None and jorder != order or
                    jnode is not None and jnode != self._nid)):
                continue
            j[5] += 1
            if j[5] >= j[3] and j[4] > 0:
                j[4] -= 1
                j[6] += 1
                return True
        return False

    def _watermark_fast(self, zl, order, slow):
        """mm/page_alloc.c:zone_watermark_fast / __zone_watermark_ok (6.1), as
        hotmem.mm.page_alloc.zone_watermark_fast."""
        zoneid, _, low, min_mark, reserve = zl
        mark = min_mark if slow else low
        nr_free = self._pa.nr_free_pages(zoneid)
        if not order and nr_free > mark + reserve:
            return True
        min_ = mark
        if slow and self._high:
            min_ -= min_ // 2
        if slow and self._harder:
            min_ -= min_ // 4
        if nr_free - ((1 << order) - 1) <= min_ + reserve:
            return False
        if not order:
            return True
        for o in range(order, self._pa.max_order):
            for mt in range(MIGRATE_PCPTYPES):
                if self._pa.nr_free(zoneid, o, mt):
                    return True
        return False

    def _alloc_pages(self, order):
        """alloc_pages_node → __alloc_pages (6.1): the passes of
        hotmem.mm.page_alloc.alloc_pages_node over the precomputed zonelist."""
        zones = self._z
        for p in range(3):
            if p == 0 and not self._nofrag:
                continue
            flags = ALLOC_NOFRAGMENT if p == 0 else 0
            for zl in zones:
                if flags and zl[1] != zones[0][1]:
                    break
                if not self._watermark_fast(zl, order, p == 2):
                    continue
                pfn = self._pa.alloc_pages(zl[0], order, self._mt, 0, flags)
                if pfn >= 0:
                    return pfn
        return -1

    def _take(self, kind, level, nr):
        """One allocation: a table page of ``level`` (kernel_alloc_pages order 0), or ``nr``
        pages of memmap (vmemmap_alloc_block_buf). The pfn, or -1."""
        if kind == _ALTMAP:
            if self._should_fail("altmap", 0):
                return -1
            pfn = altmap_alloc_block_buf(nr, self._altmap, 1)
            if pfn >= 0:
                self._rec.append((_ALTMAP, pfn, nr, None))
            return pfn
        order = (nr - 1).bit_length()
        if self._should_fail("page_alloc", order):
            return -1
        if self._z is None:
            self._read_zonelist()
        if not self._z:
            return -1
        pfn = self._alloc_pages(order)
        if pfn >= 0:
            self._rec.append((kind, pfn, order, level))
        return pfn

    def records(self):
        """[(kind, pfn, order or nr_pages, level)] in allocation order: kind "table" (level
        name, order 0), "buddy" (order) or "altmap" (nr_pages, level None)."""
        return list(self._rec)

    def injections(self):
        """[(seen, times, failed)] of each injection passed in, as should_fail left them."""
        return [(j[5], j[4], j[6]) for j in self._inj]


class PgtableAllocSource:
    """One allocator argument of a PageTables walk, backed by a PgtableAllocator:
    ``f(level_name, node)`` for tables, ``f(nr, node)`` for memmap."""

    def __init__(self, owner, kind):
        if not isinstance(owner, PgtableAllocator):
            raise TypeError("PgtableAllocSource: owner must be a PgtableAllocator")
        self._owner = owner
        self._kind = kind

    def __call__(self, arg, node):
        is_table = isinstance(arg, str)
        if is_table != (self._kind == _TABLE):
            raise HotplugError(_errno.EINVAL, "PgtableAllocSource: a table source given for "
                               "data, or a data source for tables")
        if is_table:
            PGTABLE_LEVEL_ID[arg]                         # an unknown level raises KeyError
            return self._owner._take(_TABLE, arg, 1)
        return self._owner._take(self._kind, None, operator.index(arg))
