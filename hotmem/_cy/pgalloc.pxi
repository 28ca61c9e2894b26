# The page allocations of one hot-plug page-table walk, made in C (compiled). Twin:
# hotmem/_py/pgalloc.py, which describes the model; hotmem/mm/sparse_vmemmap.py builds it
# (pgtable_allocator) and replays its records into the owner ledger and fail_page_alloc.
import operator as _pga_operator

from hotmem.defs import PGTABLE_LEVEL_ID as _PGA_LEVEL_ID, PGTABLE_LEVEL_NAMES as _PGA_LEVEL_NAMES

cdef enum:
    _PGA_TABLE = 0                  # a page-table page from the buddy (order 0)
    _PGA_BUDDY = 1                  # memmap from the buddy
    _PGA_ALTMAP = 2                 # memmap from the altmap

ctypedef struct pga_zone_t:
    int64_t node, low, min, reserve   # watermarks and lowmem_reserve[highest_zoneidx]

ctypedef struct pga_inj_t:
    int64_t kind, order, node, nth, times, seen, failed   # kind 0 page_alloc, 1 altmap
    bint any_order, any_node


cdef class PgtableAllocator:
    """The allocations of one page-table walk, without a Python call per page (see the twin)."""
    cdef PageAllocator _pa
    cdef VmemAltmap _altmap
    cdef object _zonelist_fn        # () -> (zonelist, nofragment), called once, when needed
    cdef list _pz                   # the _PAZone of each zonelist entry (None: not read yet)
    cdef pga_zone_t* _z
    cdef int _nz, _mt
    cdef bint _nofrag, _high, _harder
    cdef int64_t _nid
    cdef pga_inj_t* _inj
    cdef int _ninj
    cdef int64_t* _rec              # (kind, pfn, order or nr_pages, level id) quads
    cdef int64_t _nrec, _cap
    cdef readonly object table, buddy, altmap

    def __init__(self, PageAllocator allocator not None, nid, zonelist_fn, migratetype,
                 alloc_high, alloc_harder, injections, VmemAltmap altmap=None):
        cdef int k
        if not callable(zonelist_fn):
            raise TypeError("PgtableAllocator: zonelist_fn must be callable")
        self._pa = allocator
        self._nid = nid
        self._zonelist_fn = zonelist_fn
        self._ninj = len(injections)
        self._inj = <pga_inj_t*> calloc(self._ninj + 1, sizeof(pga_inj_t))
        if self._inj == NULL:
            raise MemoryError()
        for k, (kind, order, node, nth, times, seen, failed) in enumerate(injections):
            self._inj[k].kind = 0 if kind == "page_alloc" else 1 if kind == "altmap" else -1
            self._inj[k].any_order = order is None
            self._inj[k].order = 0 if order is None else order
            self._inj[k].any_node = node is None
            self._inj[k].node = 0 if node is None else node
            self._inj[k].nth = nth
            self._inj[k].times = times
            self._inj[k].seen = seen
            self._inj[k].failed = failed
        self._mt = migratetype
        self._high = bool(alloc_high)
        self._harder = bool(alloc_harder)
        self._altmap = altmap
        self.table = PgtableAllocSource(self, "table")
        self.buddy = PgtableAllocSource(self, "buddy")
        self.altmap = None if altmap is None else PgtableAllocSource(self, "altmap")

    def __dealloc__(self):
        free(self._z)
        free(self._inj)
        free(self._rec)

    cdef int _read_zonelist(self) except -1:
        """The zonelist and ALLOC_NOFRAGMENT, from Python once, at the first buddy request."""
        cdef int k
        zonelist, nofragment = self._zonelist_fn()
        self._z = <pga_zone_t*> calloc(len(zonelist) + 1, sizeof(pga_zone_t))
        if self._z == NULL:
            raise MemoryError()
        pz = []
        for k, (zoneid, node, low, min_, reserve) in enumerate(zonelist):
            pz.append(self._pa._zone(zoneid))
            self._z[k].node = node
            self._z[k].low = low
            self._z[k].min = min_
            self._z[k].reserve = reserve
        self._nz = len(zonelist)
        self._nofrag = bool(nofragment)
        self._pz = pz
        return 0

    cdef bint _should_fail(self, int64_t kind, int64_t order) noexcept:
        """lib/fault-inject.c:should_fail over the armed injections (see the twin)."""
        cdef int k
        cdef pga_inj_t* j
        for k in range(self._ninj):
            j = &self._inj[k]
            if j.kind != kind or (kind == 0 and (not j.any_order and j.order != order or
                                                 not j.any_node and j.node != self._nid)):
                continue
            j.seen += 1
            if j.seen >= j.nth and j.times > 0:
                j.times -= 1
                j.failed += 1
                return True
        return False

    @cython.cdivision(False)
    cdef bint _watermark_fast(self, _PAZone z, pga_zone_t* zl, int order, bint slow) noexcept:
        """mm/page_alloc.c:zone_watermark_fast / __zone_watermark_ok (6.1), as
        hotmem.mm.page_alloc.zone_watermark_fast."""
        cdef int64_t mark = zl.min if slow else zl.low, min_ = mark
        cdef int o, mt
        if order == 0 and z.nr_free_pages > mark + zl.reserve:
            return True
        if slow and self._high:
            min_ -= min_ // 2
        if slow and self._harder:
            min_ -= min_ // 4
        if z.nr_free_pages - (((<int64_t> 1) << order) - 1) <= min_ + zl.reserve:
            return False
        if order == 0:
            return True
        for o in range(order, self._pa.max_order):
            for mt in range(D.MIGRATE_PCPTYPES):
                if z.nr_free_mt[o * D.MIGRATE_TYPES + mt]:
                    return True
        return False

    cdef int64_t _alloc_pages(self, int order) except -2:
        """alloc_pages_node → __alloc_pages (6.1): the passes of
        hotmem.mm.page_alloc.alloc_pages_node over the precomputed zonelist."""
        cdef int p, k, flags
        cdef int64_t pfn
        cdef _PAZone z
        for p in range(3):
            if p == 0 and not self._nofrag:
                continue
            flags = D.ALLOC_NOFRAGMENT if p == 0 else 0
            for k in range(self._nz):
                if flags and self._z[k].node != self._z[0].node:
                    break
                z = <_PAZone> self._pz[k]
                if not self._watermark_fast(z, &self._z[k], order, p == 2):
                    continue
                pfn = self._pa._do_alloc(z, order, self._mt, 0, flags)
                if pfn >= 0:
                    return pfn
        return -1

    cdef int _record(self, int64_t kind, int64_t pfn, int64_t arg, int64_t lid) except -1:
        cdef int64_t cap
        cdef int64_t* p
        if self._nrec == self._cap:
            cap = 2 * self._cap if self._cap else 16
            p = <int64_t*> realloc(self._rec, 4 * cap * sizeof(int64_t))
            if p == NULL:
                raise MemoryError()
            self._rec = p
            self._cap = cap
        p = self._rec + 4 * self._nrec
        p[0] = kind
        p[1] = pfn
        p[2] = arg
        p[3] = lid
        self._nrec += 1
        return 0

    cdef int64_t _take(self, int kind, int lid, int64_t nr) except -2:
        """One allocation: a table page of level ``lid`` (kernel_alloc_pages order 0), or
        ``nr`` pages of memmap (vmemmap_alloc_block_buf). The pfn, or -1."""
        cdef int order
        cdef int64_t pfn
        if kind == _PGA_ALTMAP:
            if self._should_fail(1, 0):
                return -1
            pfn = c_altmap_alloc_block_buf(<uint64_t> nr, self._altmap)
            if pfn >= 0:
                self._record(_PGA_ALTMAP, pfn, nr, -1)
            return pfn
        order = 0
        while ((<int64_t> 1) << order) < nr:
            order += 1
        if self._should_fail(0, order):
            return -1
        if self._pz is None:
            self._read_zonelist()
        if self._nz == 0:
            return -1
        pfn = self._alloc_pages(order)
        if pfn >= 0:
            self._record(kind, pfn, order, lid)
        return pfn

    def records(self):
        """[(kind, pfn, order or nr_pages, level)] in allocation order: kind "table" (level
        name, order 0), "buddy" (order) or "altmap" (nr_pages, level None)."""
        cdef int64_t k
        cdef int64_t* p
        out = []
        for k in range(self._nrec):
            p = self._rec + 4 * k
            out.append((("table", "buddy", "altmap")[p[0]], p[1], p[2],
                        _PGA_LEVEL_NAMES[p[3]] if p[0] == _PGA_TABLE else None))
        return out

    def injections(self):
        """[(seen, times, failed)] of each injection passed in, as should_fail left them."""
        return [(self._inj[k].seen, self._inj[k].times, self._inj[k].failed)
                for k in range(self._ninj)]


cdef class PgtableAllocSource:
    """One allocator argument of a PageTables walk, backed by a PgtableAllocator: the compiled
    walks call it in C; from Python it is ``f(level_name, node)`` (tables) or ``f(nr, node)``."""
    cdef PgtableAllocator _owner
    cdef int _kind

    def __init__(self, PgtableAllocator owner not None, str kind):
        self._owner = owner
        self._kind = ("table", "buddy", "altmap").index(kind)

    cdef inline int64_t _take(self, int lid, int64_t nr) except -2:
        if (self._kind == _PGA_TABLE) != (lid >= 0):
            raise HotplugError(_errno.EINVAL, "PgtableAllocSource: a table source given for "
                               "data, or a data source for tables")
        return self._owner._take(self._kind, lid, nr)

    def __call__(self, arg, node):
        if isinstance(arg, str):
            return self._take(_PGA_LEVEL_ID[arg], 1)
        return self._take(-1, _pga_operator.index(arg))
