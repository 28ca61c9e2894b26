# The page allocator of Linux 6.1 (compiled). Twin and the full description: hotmem/_py/buddy.py;
# constants: hotmem/defs.py (D.*: hotmem/defs.pxd). Free lists are min-heaps of pfns (lowest pfn
# first, the model's one deliberate deviation) validated lazily against a pfn -> (zoneid, order,
# migratetype) hash map; per-CPU lists are ring buffers in exact kernel order.
from libc.stdlib cimport qsort
from hotmem.defs import (
    PAGE_ALLOC_COSTLY_ORDER, NR_LOWORDER_PCP_LISTS, NR_PCP_THP, NR_PCP_LISTS,
    PCP_BATCH_SCALE_MAX, ALLOC_NOFRAGMENT, FPI_NONE, FPI_TO_TAIL, FALLBACKS,
    PAGE_FLAGS_CHECK_AT_FREE, PAGE_FLAGS_CHECK_AT_PREP,
)

cdef uint32_t _PA_BUDDY_MASK = <uint32_t> (D.PAGE_TYPE_BASE | D.PG_buddy)
cdef uint32_t _PA_OFFLINE_MASK = <uint32_t> (D.PAGE_TYPE_BASE | D.PG_offline)
cdef uint32_t _PA_TYPE_BASE = <uint32_t> D.PAGE_TYPE_BASE
cdef uint32_t _PA_MAPCOUNT_RESET = <uint32_t> D.PAGE_MAPCOUNT_RESET
cdef uint64_t _PA_CHECK_AT_FREE = <uint64_t> D.PAGE_FLAGS_CHECK_AT_FREE
cdef uint64_t _PA_CHECK_AT_PREP = <uint64_t> D.PAGE_FLAGS_CHECK_AT_PREP
cdef uint64_t _PA_LRU = (<uint64_t> 1) << D.PG_lru
cdef uint64_t _PA_HWPOISON = (<uint64_t> 1) << D.PG_hwpoison
cdef uint64_t _PA_RESERVED = (<uint64_t> 1) << D.PG_reserved
# fallbacks[] (mm/page_alloc.c, 6.1), two entries per allocatable migratetype
cdef int _pa_fallbacks[D.MIGRATE_PCPTYPES][2]
for _mt, (_f0, _f1) in FALLBACKS.items():
    _pa_fallbacks[_mt][0] = _f0
    _pa_fallbacks[_mt][1] = _f1


# -- C containers ------------------------------------------------------------------------------
ctypedef struct pa_heap_t:
    int64_t* a
    int64_t n
    int64_t cap

ctypedef struct pa_deque_t:
    int64_t* a          # (pfn << 3) | pcppage migratetype
    int64_t head
    int64_t n
    int64_t cap         # 0 or a power of two

ctypedef struct pa_pcp_t:
    int64_t count
    int64_t high
    int64_t batch
    int64_t free_factor
    int64_t saved_high
    int64_t saved_batch
    pa_deque_t lists[D.NR_PCP_LISTS]

ctypedef struct pa_hmap_t:
    int64_t* keys       # -1 = empty slot (pfns are >= 0)
    int64_t* vals
    int64_t cap
    int64_t n


cdef int _pa_heap_push(pa_heap_t* h, int64_t v) except -1:
    cdef int64_t i, parent, cap
    cdef int64_t* na
    if h.n == h.cap:
        cap = h.cap * 2 if h.cap else 16
        na = <int64_t*> realloc(h.a, cap * sizeof(int64_t))
        if na == NULL:
            raise MemoryError()
        h.a = na
        h.cap = cap
    i = h.n
    h.n += 1
    while i > 0:
        parent = (i - 1) >> 1
        if h.a[parent] <= v:
            break
        h.a[i] = h.a[parent]
        i = parent
    h.a[i] = v
    return 0


cdef void _pa_heap_pop(pa_heap_t* h) noexcept nogil:
    cdef int64_t i = 0, c, last
    h.n -= 1
    if h.n <= 0:
        h.n = 0
        return
    last = h.a[h.n]
    while True:
        c = 2 * i + 1
        if c >= h.n:
            break
        if c + 1 < h.n and h.a[c + 1] < h.a[c]:
            c += 1
        if h.a[c] >= last:
            break
        h.a[i] = h.a[c]
        i = c
    h.a[i] = last


cdef int _pa_cmp64(const void* x, const void* y) noexcept nogil:
    cdef int64_t a = (<const int64_t*> x)[0], b = (<const int64_t*> y)[0]
    return (a > b) - (a < b)


cdef int _pa_dq_reserve(pa_deque_t* d) except -1:
    cdef int64_t cap, i
    cdef int64_t* na
    if d.n < d.cap:
        return 0
    cap = d.cap * 2 if d.cap else 16
    na = <int64_t*> malloc(cap * sizeof(int64_t))
    if na == NULL:
        raise MemoryError()
    for i in range(d.n):
        na[i] = d.a[(d.head + i) & (d.cap - 1)]
    free(d.a)
    d.a = na
    d.head = 0
    d.cap = cap
    return 0


cdef inline int _pa_dq_push_front(pa_deque_t* d, int64_t v) except -1:
    _pa_dq_reserve(d)
    d.head = (d.head - 1) & (d.cap - 1)
    d.a[d.head] = v
    d.n += 1
    return 0


cdef inline int _pa_dq_push_back(pa_deque_t* d, int64_t v) except -1:
    _pa_dq_reserve(d)
    d.a[(d.head + d.n) & (d.cap - 1)] = v
    d.n += 1
    return 0


cdef inline int64_t _pa_dq_pop_front(pa_deque_t* d) noexcept nogil:
    cdef int64_t v = d.a[d.head]
    d.head = (d.head + 1) & (d.cap - 1)
    d.n -= 1
    return v


cdef inline int64_t _pa_dq_pop_back(pa_deque_t* d) noexcept nogil:
    d.n -= 1
    return d.a[(d.head + d.n) & (d.cap - 1)]


cdef inline int64_t _pa_dq_at(pa_deque_t* d, int64_t i) noexcept nogil:
    return d.a[(d.head + i) & (d.cap - 1)]


cdef inline uint64_t _pa_hash(int64_t k) noexcept nogil:
    cdef uint64_t h = (<uint64_t> k) * (<uint64_t> 0x9E3779B97F4A7C15)
    return h ^ (h >> 29)


cdef int _pa_hm_resize(pa_hmap_t* m, int64_t cap) except -1:
    cdef int64_t* keys = <int64_t*> malloc(cap * sizeof(int64_t))
    cdef int64_t* vals = <int64_t*> malloc(cap * sizeof(int64_t))
    cdef int64_t i, j, mask = cap - 1
    if keys == NULL or vals == NULL:
        free(keys)
        free(vals)
        raise MemoryError()
    memset(keys, 0xFF, cap * sizeof(int64_t))
    for i in range(m.cap):
        if m.keys[i] >= 0:
            j = <int64_t> (_pa_hash(m.keys[i]) & <uint64_t> mask)
            while keys[j] >= 0:
                j = (j + 1) & mask
            keys[j] = m.keys[i]
            vals[j] = m.vals[i]
    free(m.keys)
    free(m.vals)
    m.keys = keys
    m.vals = vals
    m.cap = cap
    return 0


cdef inline int64_t _pa_hm_find(pa_hmap_t* m, int64_t k) noexcept nogil:
    if m.cap == 0:
        return -1
    cdef int64_t mask = m.cap - 1
    cdef int64_t i = <int64_t> (_pa_hash(k) & <uint64_t> mask)
    while m.keys[i] >= 0:
        if m.keys[i] == k:
            return i
        i = (i + 1) & mask
    return -1


cdef inline int64_t _pa_hm_get(pa_hmap_t* m, int64_t k, int64_t default) noexcept nogil:
    cdef int64_t i = _pa_hm_find(m, k)
    return default if i < 0 else m.vals[i]


cdef int _pa_hm_set(pa_hmap_t* m, int64_t k, int64_t v) except -1:
    if (m.n + 1) * 2 > m.cap:
        _pa_hm_resize(m, m.cap * 2 if m.cap else 64)
    cdef int64_t mask = m.cap - 1
    cdef int64_t i = <int64_t> (_pa_hash(k) & <uint64_t> mask)
    while m.keys[i] >= 0 and m.keys[i] != k:
        i = (i + 1) & mask
    if m.keys[i] < 0:
        m.keys[i] = k
        m.n += 1
    m.vals[i] = v
    return 0


cdef int64_t _pa_hm_pop(pa_hmap_t* m, int64_t k, int64_t default) noexcept nogil:
    """Remove ``k`` (backward-shift deletion) and return its value."""
    cdef int64_t i = _pa_hm_find(m, k)
    if i < 0:
        return default
    cdef int64_t v = m.vals[i], mask = m.cap - 1, j = i, home
    cdef bint inside
    m.keys[i] = -1
    m.n -= 1
    while True:
        j = (j + 1) & mask
        if m.keys[j] < 0:
            break
        home = <int64_t> (_pa_hash(m.keys[j]) & <uint64_t> mask)
        if i <= j:
            inside = i < home <= j
        else:
            inside = home > i or home <= j
        if not inside:
            m.keys[i] = m.keys[j]
            m.vals[i] = m.vals[j]
            m.keys[j] = -1
            i = j
    return v


cdef class _PAZone:
    """The page-allocator part of struct zone (free_area, NR_FREE_PAGES, managed_pages,
    nr_isolate_pageblock, per_cpu_pageset)."""
    cdef int64_t zoneid, nr_free_pages, managed, nr_isolate_pageblock
    cdef int max_order, nr_cpus
    cdef bint pcp_disabled
    cdef int64_t* nr_free_mt      # [order * D.MIGRATE_TYPES + mt]
    cdef pa_heap_t* heaps         # [order * D.MIGRATE_TYPES + mt]
    cdef pa_pcp_t* pcp            # [cpu]

    def __cinit__(self, int64_t zoneid, int max_order, int nr_cpus):
        cdef int c
        self.zoneid = zoneid
        self.max_order = max_order
        self.nr_cpus = nr_cpus
        self.nr_free_mt = <int64_t*> calloc(max_order * D.MIGRATE_TYPES, sizeof(int64_t))
        self.heaps = <pa_heap_t*> calloc(max_order * D.MIGRATE_TYPES, sizeof(pa_heap_t))
        self.pcp = <pa_pcp_t*> calloc(nr_cpus, sizeof(pa_pcp_t))
        if self.nr_free_mt == NULL or self.heaps == NULL or self.pcp == NULL:
            raise MemoryError()
        for c in range(nr_cpus):
            self.pcp[c].high = 0            # BOOT_PAGESET_HIGH
            self.pcp[c].saved_high = 0
            self.pcp[c].batch = 1           # BOOT_PAGESET_BATCH
            self.pcp[c].saved_batch = 1

    def __dealloc__(self):
        cdef int i, c
        if self.heaps != NULL:
            for i in range(self.max_order * D.MIGRATE_TYPES):
                free(self.heaps[i].a)
            free(self.heaps)
        if self.pcp != NULL:
            for c in range(self.nr_cpus):
                for i in range(D.NR_PCP_LISTS):
                    free(self.pcp[c].lists[i].a)
            free(self.pcp)
        free(self.nr_free_mt)


cdef inline object _pa_err(int code, str msg):
    return HotplugError(code, msg)


cdef class PageAllocator:
    """The 6.1 page allocator over the struct pages of ``ms`` (see hotmem/_py/buddy.py).

    ``max_order`` is 6.1's MAX_ORDER (11 on x86_64: orders 0..10).
    """
    cdef readonly MemSections ms
    cdef readonly int max_order, pageblock_order, nr_cpus
    cdef readonly int64_t pageblock_nr_pages
    cdef int _shift, _zshift
    cdef int64_t _mask
    cdef dict _zones
    cdef pa_hmap_t _freeh         # free block head pfn -> zoneid << 7 | order << 3 | mt
    cdef pa_hmap_t _alloc         # pfn -> order handed out by alloc_pages

    def __cinit__(self, MemSections ms, int max_order, int pageblock_order, int nr_cpus):
        memset(&self._freeh, 0, sizeof(pa_hmap_t))
        memset(&self._alloc, 0, sizeof(pa_hmap_t))
        if not 1 <= max_order <= 16:
            raise _pa_err(_errno.EINVAL, f"max_order {max_order} out of range 1..16")
        if pageblock_order != ms.pageblock_order or not 0 <= pageblock_order < max_order:
            raise _pa_err(_errno.EINVAL, f"pageblock_order {pageblock_order}: must equal the "
                          f"memmap's ({ms.pageblock_order}) and be < max_order")
        if max_order - 1 > ms.chunk_shift:
            raise _pa_err(_errno.EINVAL, f"max_order {max_order}: a buddy block must fit a "
                          f"struct page chunk (2^{ms.chunk_shift} pages)")
        if nr_cpus < 1:
            raise _pa_err(_errno.EINVAL, f"nr_cpus {nr_cpus} < 1")
        self.ms = ms
        self.max_order = max_order
        self.pageblock_order = pageblock_order
        self.pageblock_nr_pages = (<int64_t> 1) << pageblock_order
        self.nr_cpus = nr_cpus
        self._shift = ms.pfn_section_shift
        self._mask = ((<int64_t> 1) << self._shift) - 1
        self._zshift = ms.zones_pgshift
        self._zones = {}

    def __dealloc__(self):
        free(self._freeh.keys)
        free(self._freeh.vals)
        free(self._alloc.keys)
        free(self._alloc.vals)

    # -- struct page helpers ---------------------------------------------------------------------
    cdef inline page_t* _page(self, int64_t pfn) noexcept:
        return self.ms.pfn_to_page(pfn)

    cdef inline page_t* _page_w(self, int64_t pfn) noexcept:
        return self.ms.pfn_to_page_w(pfn)

    cdef inline int _mt(self, int64_t pfn) noexcept:
        return self.ms.c_get_pageblock_migratetype(pfn)

    cdef inline bint _page_buddy(self, page_t* p) noexcept nogil:
        """PageBuddy (include/linux/page-flags.h, 6.1 page_type encoding)."""
        return (p.page_type & _PA_BUDDY_MASK) == _PA_TYPE_BASE

    cdef inline void _set_buddy_order(self, int64_t pfn, int order) noexcept:
        """mm/page_alloc.c:set_buddy_order."""
        cdef page_t* p = self._page_w(pfn)
        p.private = order
        p.page_type &= ~D.PG_buddy

    cdef inline int64_t _zoneid_of(self, page_t* p) noexcept:
        return <int64_t> (p.flags >> self._zshift)

    cdef inline bint _zone_spans(self, _PAZone z, int64_t pfn) noexcept:
        """Stand-in for zone_spans_pfn: the pfn has a struct page linked to this zone."""
        cdef page_t* p = self._page(pfn)
        return p != NULL and self._zoneid_of(p) == z.zoneid

    cdef inline int64_t _key(self, _PAZone z, int order, int mt) noexcept:
        return (z.zoneid << 7) | (order << 3) | mt

    # -- free lists ------------------------------------------------------------------------------
    cdef int _compact(self, _PAZone z, int order, int mt) except -1:
        cdef pa_heap_t* h = &z.heaps[order * D.MIGRATE_TYPES + mt]
        cdef int64_t key = self._key(z, order, mt), i, m = 0
        for i in range(h.n):
            if _pa_hm_get(&self._freeh, h.a[i], -1) == key:
                h.a[m] = h.a[i]
                m += 1
        qsort(h.a, m, sizeof(int64_t), _pa_cmp64)
        h.n = 0
        for i in range(m):               # a sorted array is a min-heap
            if h.n == 0 or h.a[h.n - 1] != h.a[i]:
                h.a[h.n] = h.a[i]
                h.n += 1
        return 0

    cdef int _push(self, _PAZone z, int64_t pfn, int order, int mt) except -1:
        cdef int idx = order * D.MIGRATE_TYPES + mt
        _pa_heap_push(&z.heaps[idx], pfn)
        if z.heaps[idx].n > 2 * z.nr_free_mt[idx] + 64:
            self._compact(z, order, mt)
        return 0

    cdef int _add_to_free_list(self, _PAZone z, int64_t pfn, int order, int mt) except -1:
        """mm/page_alloc.c:add_to_free_list / add_to_free_list_tail (position not modelled)."""
        _pa_hm_set(&self._freeh, pfn, self._key(z, order, mt))
        z.nr_free_mt[order * D.MIGRATE_TYPES + mt] += 1
        self._push(z, pfn, order, mt)
        return 0

    cdef int _move_to_free_list(self, _PAZone z, int64_t pfn, int order, int mt) except -1:
        """mm/page_alloc.c:move_to_free_list."""
        cdef int old = <int> (_pa_hm_get(&self._freeh, pfn, 0) & 7)
        z.nr_free_mt[order * D.MIGRATE_TYPES + old] -= 1
        _pa_hm_set(&self._freeh, pfn, self._key(z, order, mt))
        z.nr_free_mt[order * D.MIGRATE_TYPES + mt] += 1
        self._push(z, pfn, order, mt)
        return 0

    cdef void _del_page_from_free_list(self, _PAZone z, int64_t pfn, int order) noexcept:
        """mm/page_alloc.c:del_page_from_free_list: off the list, __ClearPageBuddy, private 0."""
        cdef int old = <int> (_pa_hm_pop(&self._freeh, pfn, 0) & 7)
        z.nr_free_mt[order * D.MIGRATE_TYPES + old] -= 1
        cdef page_t* p = self._page_w(pfn)
        p.page_type |= D.PG_buddy
        p.private = 0

    cdef int64_t _get_page_from_free_area(self, _PAZone z, int order, int mt) noexcept:
        """mm/page_alloc.c:get_page_from_free_area, lowest pfn instead of the list head."""
        cdef int idx = order * D.MIGRATE_TYPES + mt
        cdef pa_heap_t* h = &z.heaps[idx]
        if z.nr_free_mt[idx] == 0:
            h.n = 0
            return -1
        cdef int64_t key = self._key(z, order, mt)
        while h.n > 0:
            if _pa_hm_get(&self._freeh, h.a[0], -1) == key:
                return h.a[0]
            _pa_heap_pop(h)
        return -1

    cdef bint _page_is_buddy(self, _PAZone z, int64_t buddy_pfn, int order) noexcept:
        """mm/internal.h:page_is_buddy (6.1): PageBuddy, same order, same zone id."""
        cdef page_t* p = self._page(buddy_pfn)
        if p == NULL or not self._page_buddy(p) or p.private != <uint64_t> order:
            return False
        if self._zoneid_of(p) != z.zoneid:
            return False
        return (_pa_hm_get(&self._freeh, buddy_pfn, -1) >> 7) == z.zoneid

    # -- freeing into the buddy ------------------------------------------------------------------
    cdef int _free_one_page_locked(self, _PAZone z, int64_t pfn, int order, int mt,
                                   int fpi) except -1:
        """mm/page_alloc.c:__free_one_page (6.1)."""
        cdef int64_t buddy_pfn
        cdef int buddy_mt
        if mt != D.MIGRATE_ISOLATE:
            z.nr_free_pages += (<int64_t> 1) << order       # __mod_zone_freepage_state
        while order < self.max_order - 1:
            buddy_pfn = pfn ^ ((<int64_t> 1) << order)
            if not self._page_is_buddy(z, buddy_pfn, order):
                break
            if order >= self.pageblock_order:
                # no merging between isolated and normal pageblocks
                buddy_mt = self._mt(buddy_pfn)
                if mt != buddy_mt and (mt >= D.MIGRATE_PCPTYPES or buddy_mt >= D.MIGRATE_PCPTYPES):
                    break
            self._del_page_from_free_list(z, buddy_pfn, order)
            pfn &= buddy_pfn
            order += 1
        self._set_buddy_order(pfn, order)
        self._add_to_free_list(z, pfn, order, mt)
        return 0

    cdef void _free_pages_prepare(self, int64_t pfn, int order) noexcept:
        """mm/page_alloc.c:free_pages_prepare: clear PAGE_FLAGS_CHECK_AT_PREP on every page."""
        cdef page_t* p = self._page_w(pfn)
        cdef int64_t j
        for j in range((<int64_t> 1) << order):
            p[j].flags &= ~_PA_CHECK_AT_PREP

    cdef int _free_one_page(self, _PAZone z, int64_t pfn, int order, int mt, int fpi) except -1:
        """mm/page_alloc.c:free_one_page."""
        if z.nr_isolate_pageblock or mt == D.MIGRATE_ISOLATE:
            mt = self._mt(pfn)
        return self._free_one_page_locked(z, pfn, order, mt, fpi)

    cdef int _free_pages_ok(self, _PAZone z, int64_t pfn, int order, int fpi) except -1:
        """mm/page_alloc.c:__free_pages_ok."""
        self._free_pages_prepare(pfn, order)
        return self._free_one_page(z, pfn, order, self._mt(pfn), fpi)

    # -- per-CPU pagesets ------------------------------------------------------------------------
    cdef inline int _order_to_pindex(self, int mt, int order) noexcept nogil:
        if order > D.PAGE_ALLOC_COSTLY_ORDER:
            return D.NR_LOWORDER_PCP_LISTS + (mt == D.MIGRATE_MOVABLE)
        return D.MIGRATE_PCPTYPES * order + mt

    cdef inline int _pindex_to_order(self, int pindex) noexcept nogil:
        if pindex >= D.NR_LOWORDER_PCP_LISTS:
            return self.pageblock_order
        return pindex // D.MIGRATE_PCPTYPES

    cdef inline bint _pcp_allowed_order(self, int order) noexcept nogil:
        return order <= D.PAGE_ALLOC_COSTLY_ORDER or order == self.pageblock_order

    def order_to_pindex(self, int migratetype, int order):
        """mm/page_alloc.c:order_to_pindex (6.1, THP)."""
        return self._order_to_pindex(migratetype, order)

    def pindex_to_order(self, int pindex):
        """mm/page_alloc.c:pindex_to_order (6.1, THP)."""
        return self._pindex_to_order(pindex)

    def pcp_allowed_order(self, int order):
        """mm/page_alloc.c:pcp_allowed_order (6.1, THP)."""
        return self._pcp_allowed_order(order)

    cdef int _free_pcppages_bulk(self, _PAZone z, int64_t count, pa_pcp_t* pcp,
                                 int pindex) except -1:
        """mm/page_alloc.c:free_pcppages_bulk (6.1): round-robin over the lists, each chosen
        list emptied from its tail until ``count`` is used up."""
        cdef int min_pindex = 0, max_pindex = D.NR_PCP_LISTS - 1, order, mt
        cdef int64_t nr_pages, e, pfn
        cdef pa_deque_t* lst
        cdef bint isolated_pageblocks = z.nr_isolate_pageblock != 0
        count = min(pcp.count, count)
        pindex -= 1
        while count > 0:
            while True:
                pindex += 1
                if pindex > max_pindex:
                    pindex = min_pindex
                lst = &pcp.lists[pindex]
                if lst.n:
                    break
                if pindex == max_pindex:
                    max_pindex -= 1
                if pindex == min_pindex:
                    min_pindex += 1
            order = self._pindex_to_order(pindex)
            nr_pages = (<int64_t> 1) << order
            while True:
                e = _pa_dq_pop_back(lst)
                pfn = e >> 3
                mt = <int> (e & 7)
                count -= nr_pages
                pcp.count -= nr_pages
                if isolated_pageblocks:
                    mt = self._mt(pfn)
                self._free_one_page_locked(z, pfn, order, mt, D.FPI_NONE)
                if not (count > 0 and lst.n):
                    break
        return 0

    cdef int64_t _nr_pcp_free(self, pa_pcp_t* pcp, int64_t high, int64_t batch,
                              bint free_high) noexcept:
        """mm/page_alloc.c:nr_pcp_free (6.1.y with CONFIG_PCP_BATCH_SCALE_MAX)."""
        if free_high:
            return pcp.count
        if high < batch:
            return 1
        cdef int64_t min_nr_free = batch, max_nr_free = high - batch
        batch <<= pcp.free_factor
        if batch < max_nr_free and pcp.free_factor < D.PCP_BATCH_SCALE_MAX:
            pcp.free_factor += 1
        return min(max(batch, min_nr_free), max_nr_free)

    cdef int64_t _nr_pcp_high(self, pa_pcp_t* pcp, bint free_high) noexcept:
        """mm/page_alloc.c:nr_pcp_high (ZONE_RECLAIM_ACTIVE not modelled)."""
        if not pcp.high or free_high:
            return 0
        return pcp.high

    cdef int _free_unref_page_commit(self, _PAZone z, pa_pcp_t* pcp, int64_t pfn, int mt,
                                     int order, int page_mt) except -1:
        """mm/page_alloc.c:free_unref_page_commit (6.1)."""
        cdef int pindex = self._order_to_pindex(mt, order)
        _pa_dq_push_front(&pcp.lists[pindex], (pfn << 3) | page_mt)
        pcp.count += (<int64_t> 1) << order
        cdef bint free_high = pcp.free_factor != 0 and order != 0 and order <= D.PAGE_ALLOC_COSTLY_ORDER
        cdef int64_t high = self._nr_pcp_high(pcp, free_high)
        if pcp.count >= high:
            self._free_pcppages_bulk(z, self._nr_pcp_free(pcp, high, pcp.batch, free_high),
                                     pcp, pindex)
        return 0

    cdef int _free_unref_page(self, _PAZone z, int64_t pfn, int order, int cpu) except -1:
        """mm/page_alloc.c:free_unref_page (6.1): isolated pageblocks bypass the pcp lists."""
        self._free_pages_prepare(pfn, order)
        cdef int migratetype = self._mt(pfn), pcpmigratetype
        pcpmigratetype = migratetype
        if migratetype >= D.MIGRATE_PCPTYPES:
            if migratetype == D.MIGRATE_ISOLATE:
                return self._free_one_page(z, pfn, order, migratetype, D.FPI_NONE)
            pcpmigratetype = D.MIGRATE_MOVABLE
        return self._free_unref_page_commit(z, &z.pcp[cpu], pfn, pcpmigratetype, order,
                                            migratetype)

    cdef int _free_the_page(self, _PAZone z, int64_t pfn, int order, int cpu) except -1:
        """mm/page_alloc.c:free_the_page."""
        if self._pcp_allowed_order(order):
            return self._free_unref_page(z, pfn, order, cpu)
        return self._free_pages_ok(z, pfn, order, D.FPI_NONE)

    cdef int _drain_pages_zone(self, int cpu, _PAZone z) except -1:
        """mm/page_alloc.c:drain_pages_zone (6.1.y): chunks of batch << PCP_BATCH_SCALE_MAX."""
        cdef pa_pcp_t* pcp = &z.pcp[cpu]
        cdef int64_t count, to_drain
        while True:
            count = pcp.count
            if count:
                to_drain = min(count, pcp.batch << D.PCP_BATCH_SCALE_MAX)
                self._free_pcppages_bulk(z, to_drain, pcp, 0)
                count -= to_drain
            if not count:
                break
        return 0

    # -- allocation ------------------------------------------------------------------------------
    cdef int _expand(self, _PAZone z, int64_t pfn, int low, int high, int mt) except -1:
        """mm/page_alloc.c:expand."""
        cdef int64_t size = (<int64_t> 1) << high
        while high > low:
            high -= 1
            size >>= 1
            self._add_to_free_list(z, pfn + size, high, mt)
            self._set_buddy_order(pfn + size, high)
        return 0

    cdef int64_t _rmqueue_smallest(self, _PAZone z, int order, int mt) except -2:
        """mm/page_alloc.c:__rmqueue_smallest."""
        cdef int current_order
        cdef int64_t pfn
        for current_order in range(order, self.max_order):
            pfn = self._get_page_from_free_area(z, current_order, mt)
            if pfn < 0:
                continue
            self._del_page_from_free_list(z, pfn, current_order)
            self._expand(z, pfn, order, current_order, mt)
            return pfn
        return -1

    cdef bint _can_steal_fallback(self, int order, int start_mt) noexcept:
        """mm/page_alloc.c:can_steal_fallback (page_group_by_mobility_disabled = false)."""
        if order >= self.pageblock_order:
            return True
        return (order >= self.pageblock_order // 2 or start_mt == D.MIGRATE_RECLAIMABLE
                or start_mt == D.MIGRATE_UNMOVABLE)

    cdef int _find_suitable_fallback(self, _PAZone z, int order, int migratetype,
                                     bint* can_steal) noexcept:
        """mm/page_alloc.c:find_suitable_fallback with only_stealable = false."""
        cdef int i, fallback_mt
        cdef int64_t total = 0
        for i in range(D.MIGRATE_TYPES):
            total += z.nr_free_mt[order * D.MIGRATE_TYPES + i]
        can_steal[0] = False
        if total == 0:
            return -1
        for i in range(2):
            fallback_mt = _pa_fallbacks[migratetype][i]
            if z.nr_free_mt[order * D.MIGRATE_TYPES + fallback_mt] == 0:
                continue
            can_steal[0] = self._can_steal_fallback(order, migratetype)
            return fallback_mt
        return -1

    cdef int _move_freepages(self, _PAZone z, int64_t start_pfn, int64_t end_pfn, int mt,
                             int64_t* pages_moved, int64_t* movable) except -1:
        """mm/page_alloc.c:move_freepages: every free block headed in [start, end] goes to the
        ``mt`` list; counts the pages moved and the non-free pages with PG_lru."""
        cdef int64_t pfn = start_pfn
        cdef page_t* p
        cdef int order
        pages_moved[0] = 0
        if movable != NULL:
            movable[0] = 0
        while pfn <= end_pfn:
            p = self._page(pfn)
            if p == NULL or not self._page_buddy(p) or \
                    (_pa_hm_get(&self._freeh, pfn, -1) >> 7) != z.zoneid:
                if movable != NULL and p != NULL and (p.flags & _PA_LRU):
                    movable[0] += 1
                pfn += 1
                continue
            order = <int> p.private
            self._move_to_free_list(z, pfn, order, mt)
            pfn += (<int64_t> 1) << order
            pages_moved[0] += (<int64_t> 1) << order
        return 0

    cdef int _move_freepages_block(self, _PAZone z, int64_t pfn, int mt, int64_t* pages_moved,
                                   int64_t* movable) except -1:
        """mm/page_alloc.c:move_freepages_block."""
        cdef int64_t start_pfn = pfn & ~(self.pageblock_nr_pages - 1)
        cdef int64_t end_pfn = start_pfn + self.pageblock_nr_pages - 1
        if not self._zone_spans(z, start_pfn):
            start_pfn = pfn
        if not self._zone_spans(z, end_pfn):
            pages_moved[0] = 0
            if movable != NULL:
                movable[0] = 0
            return 0
        return self._move_freepages(z, start_pfn, end_pfn, mt, pages_moved, movable)

    cdef void _change_pageblock_range(self, int64_t pfn, int start_order, int mt) noexcept:
        """mm/page_alloc.c:change_pageblock_range."""
        cdef int64_t k
        for k in range((<int64_t> 1) << (start_order - self.pageblock_order)):
            self.ms.c_set_pageblock_migratetype(pfn + k * self.pageblock_nr_pages, mt)

    cdef int _steal_suitable_fallback(self, _PAZone z, int64_t pfn, int alloc_flags,
                                      int start_type, bint whole_block) except -1:
        """mm/page_alloc.c:steal_suitable_fallback (6.1, watermark boosting not modelled)."""
        cdef int current_order = <int> self._page(pfn).private
        cdef int old_block_type = self._mt(pfn)
        cdef int64_t free_pages, movable_pages, alike_pages
        if old_block_type != D.MIGRATE_HIGHATOMIC:
            if current_order >= self.pageblock_order:
                self._change_pageblock_range(pfn, current_order, start_type)
            elif whole_block:
                self._move_freepages_block(z, pfn, start_type, &free_pages, &movable_pages)
                if start_type == D.MIGRATE_MOVABLE:
                    alike_pages = movable_pages
                elif old_block_type == D.MIGRATE_MOVABLE:
                    alike_pages = self.pageblock_nr_pages - (free_pages + movable_pages)
                else:
                    alike_pages = 0
                if free_pages:
                    if free_pages + alike_pages >= ((<int64_t> 1) << (self.pageblock_order - 1)):
                        self.ms.c_set_pageblock_migratetype(pfn, start_type)
                    return 0
        return self._move_to_free_list(z, pfn, current_order, start_type)

    cdef int _rmqueue_fallback(self, _PAZone z, int order, int start_migratetype,
                               int alloc_flags) except -1:
        """mm/page_alloc.c:__rmqueue_fallback (6.1). Returns 1 when a block was stolen."""
        cdef int min_order = order, current_order, fallback_mt = -1
        cdef bint can_steal = False
        if order < self.pageblock_order and alloc_flags & D.ALLOC_NOFRAGMENT:
            min_order = self.pageblock_order
        current_order = self.max_order - 1
        while current_order >= min_order:
            fallback_mt = self._find_suitable_fallback(z, current_order, start_migratetype,
                                                       &can_steal)
            if fallback_mt != -1:
                break
            current_order -= 1
        if current_order < min_order:
            return 0
        if not can_steal and start_migratetype == D.MIGRATE_MOVABLE and current_order > order:
            for current_order in range(order, self.max_order):
                fallback_mt = self._find_suitable_fallback(z, current_order, start_migratetype,
                                                           &can_steal)
                if fallback_mt != -1:
                    break
        cdef int64_t pfn = self._get_page_from_free_area(z, current_order, fallback_mt)
        self._steal_suitable_fallback(z, pfn, alloc_flags, start_migratetype, can_steal)
        return 1

    cdef int64_t _rmqueue(self, _PAZone z, int order, int migratetype,
                          int alloc_flags) except -2:
        """mm/page_alloc.c:__rmqueue (no CMA)."""
        cdef int64_t pfn
        while True:
            pfn = self._rmqueue_smallest(z, order, migratetype)
            if pfn >= 0:
                return pfn
            if not self._rmqueue_fallback(z, order, migratetype, alloc_flags):
                return -1

    cdef int64_t _rmqueue_bulk(self, _PAZone z, int order, int64_t count, pa_deque_t* lst,
                               int migratetype, int alloc_flags) except -1:
        """mm/page_alloc.c:rmqueue_bulk: blocks go to the list tail in the order obtained."""
        cdef int64_t i = 0, pfn
        while i < count:
            pfn = self._rmqueue(z, order, migratetype, alloc_flags)
            if pfn < 0:
                break
            _pa_dq_push_back(lst, (pfn << 3) | migratetype)
            i += 1
        z.nr_free_pages -= i << order
        return i

    cdef int64_t _rmqueue_pcplist(self, _PAZone z, int order, int migratetype, int alloc_flags,
                                  int cpu) except -2:
        """mm/page_alloc.c:rmqueue_pcplist + __rmqueue_pcplist (6.1)."""
        cdef pa_pcp_t* pcp = &z.pcp[cpu]
        cdef pa_deque_t* lst
        cdef int64_t batch, alloced
        pcp.free_factor >>= 1
        lst = &pcp.lists[self._order_to_pindex(migratetype, order)]
        if lst.n == 0:
            batch = pcp.batch
            if batch > 1:
                batch = max(batch >> order, <int64_t> 2)
            alloced = self._rmqueue_bulk(z, order, batch, lst, migratetype, alloc_flags)
            pcp.count += alloced << order
            if lst.n == 0:
                return -1
        cdef int64_t pfn = _pa_dq_pop_front(lst) >> 3
        pcp.count -= (<int64_t> 1) << order
        return pfn

    cdef int64_t _rmqueue_top(self, _PAZone z, int order, int migratetype, int alloc_flags,
                              int cpu) except -2:
        """mm/page_alloc.c:rmqueue (6.1): pcp for allowed orders, else rmqueue_buddy."""
        cdef int64_t pfn
        if self._pcp_allowed_order(order):
            pfn = self._rmqueue_pcplist(z, order, migratetype, alloc_flags, cpu)
            if pfn >= 0:
                return pfn
        pfn = self._rmqueue(z, order, migratetype, alloc_flags)
        if pfn >= 0:
            z.nr_free_pages -= (<int64_t> 1) << order
        return pfn

    cdef int64_t _do_alloc(self, _PAZone z, int order, int migratetype, int cpu,
                           int alloc_flags) except -2:
        cdef int64_t pfn = self._rmqueue_top(z, order, migratetype, alloc_flags, cpu)
        cdef page_t* p
        if pfn >= 0:
            p = self._page_w(pfn)                # post_alloc_hook
            p.private = 0
            p._refcount = 1
            _pa_hm_set(&self._alloc, pfn, order)
        return pfn

    cdef int _do_free(self, _PAZone z, int64_t pfn, int order, int cpu) except -1:
        _pa_hm_pop(&self._alloc, pfn, -1)
        self._page_w(pfn)._refcount = 0
        return self._free_the_page(z, pfn, order, cpu)

    # -- argument checks -------------------------------------------------------------------------
    cdef _PAZone _zone(self, int64_t zoneid, bint create=False):
        cdef _PAZone z = self._zones.get(zoneid)
        if z is None:
            if not create:
                raise _pa_err(_errno.EINVAL, f"unknown zone {zoneid}")
            if not 0 <= zoneid < D.MAX_ZONEID:
                raise _pa_err(_errno.EINVAL, f"zoneid {zoneid} out of range")
            z = _PAZone(zoneid, self.max_order, self.nr_cpus)
            self._zones[zoneid] = z
        return z

    cdef int _check_order(self, int64_t order) except -1:
        if not 0 <= order < self.max_order:
            raise _pa_err(_errno.EINVAL, f"order {order} out of range 0..{self.max_order - 1}")
        return 0

    cdef int _check_cpu(self, int64_t cpu) except -1:
        if not 0 <= cpu < self.nr_cpus:
            raise _pa_err(_errno.EINVAL, f"cpu {cpu} out of range 0..{self.nr_cpus - 1}")
        return 0

    cdef int _check_block(self, int64_t pfn, int64_t order) except -1:
        self._check_order(order)
        if pfn < 0 or pfn & (((<int64_t> 1) << order) - 1):
            raise _pa_err(_errno.EINVAL, f"pfn {pfn:#x} not aligned to order {order}")
        if self._page(pfn) == NULL:
            raise _pa_err(_errno.EINVAL, f"pfn {pfn:#x} has no struct page")
        if self._mt(pfn) < 0:
            raise _pa_err(_errno.EINVAL, f"pfn {pfn:#x} has no pageblock flags")
        return 0

    cdef int _check_pageblock(self, int64_t pfn) except -1:
        if pfn < 0 or self._page(pfn) == NULL:
            raise _pa_err(_errno.EINVAL, f"pfn {pfn:#x} has no struct page")
        if self._mt(pfn) < 0:
            raise _pa_err(_errno.EINVAL, f"pfn {pfn:#x} has no pageblock flags")
        return 0

    cdef int _check_free_state(self, int64_t pfn, int order, int32_t head_ref) except -1:
        cdef page_t* p = self._page(pfn)
        cdef int64_t j
        cdef int32_t ref
        for j in range((<int64_t> 1) << order):
            if p[j].page_type != _PA_MAPCOUNT_RESET:
                raise _pa_err(_errno.EINVAL, f"bad page state at pfn {pfn + j:#x}: page_type "
                              f"{p[j].page_type:#x}")
            ref = head_ref if j == 0 else 0
            if p[j]._refcount != ref:
                raise _pa_err(_errno.EINVAL, f"bad page state at pfn {pfn + j:#x}: refcount "
                              f"{p[j]._refcount}, expected {ref}")
            if p[j].flags & _PA_CHECK_AT_FREE:
                raise _pa_err(_errno.EINVAL, f"bad page state at pfn {pfn + j:#x}: flags "
                              f"{p[j].flags & _PA_CHECK_AT_FREE:#x}")
        return 0

    # -- entry points ----------------------------------------------------------------------------
    def alloc_pages(self, int64_t zoneid, int64_t order, int64_t migratetype, int64_t cpu,
                    int64_t alloc_flags=0):
        """mm/page_alloc.c:rmqueue for one zone + post_alloc_hook (refcount 1, private 0).
        Returns the pfn, or -1 when the zone has no suitable free block."""
        cdef _PAZone z = self._zone(zoneid)
        self._check_order(order)
        self._check_cpu(cpu)
        if not 0 <= migratetype < D.MIGRATE_PCPTYPES:
            raise _pa_err(_errno.EINVAL, f"migratetype {migratetype} is not allocatable")
        if alloc_flags & ~(<int64_t> D.ALLOC_NOFRAGMENT):
            raise _pa_err(_errno.EINVAL, f"alloc_flags {alloc_flags:#x} not supported")
        return self._do_alloc(z, <int> order, <int> migratetype, <int> cpu, <int> alloc_flags)

    def take_page_off_buddy(self, int64_t pfn):
        """mm/page_alloc.c:take_page_off_buddy (6.1): take one free page out of the buddy block
        holding it (break_down_buddy_pages puts the other halves back) and hand it out as an
        order-0 allocation (refcount 1), without the HWPoison marking. False if it is not free
        in the buddy."""
        if self._page(pfn) == NULL:
            raise _pa_err(_errno.EINVAL, f"pfn {pfn:#x} has no struct page")
        cdef int order, page_order, high, mt
        cdef int64_t head, key, start, size, free_half
        cdef page_t* hp
        cdef _PAZone z
        for order in range(self.max_order):
            head = pfn & ~((<int64_t> 1 << order) - 1)
            hp = self._page(head)
            if hp == NULL or not self._page_buddy(hp):
                continue
            page_order = <int> hp.private
            key = _pa_hm_get(&self._freeh, head, -1)
            if page_order < order or key < 0:
                continue
            z = self._zone(key >> 7)
            mt = <int> (key & 7)
            self._del_page_from_free_list(z, head, page_order)
            high, start = page_order, head
            while high > 0:
                high -= 1
                size = (<int64_t> 1) << high
                if pfn >= start + size:
                    free_half, start = start, start + size
                else:
                    free_half = start + size
                self._add_to_free_list(z, free_half, high, mt)
                self._set_buddy_order(free_half, high)
            if mt != D.MIGRATE_ISOLATE:
                z.nr_free_pages -= 1
            hp = self._page_w(pfn)
            hp._refcount = 1
            hp.private = 0
            _pa_hm_set(&self._alloc, pfn, 0)
            return True
        return False

    def free_pages(self, int64_t pfn, int64_t order, int64_t cpu):
        """mm/page_alloc.c:__free_pages (6.1): drop the last reference, then free_the_page."""
        self._check_block(pfn, order)
        self._check_cpu(cpu)
        cdef int64_t got = _pa_hm_get(&self._alloc, pfn, -1)
        if got < 0:
            what = "double free" if _pa_hm_find(&self._freeh, pfn) >= 0 else "never allocated"
            raise _pa_err(_errno.EINVAL, f"free of pfn {pfn:#x}: {what}")
        if got != order:
            raise _pa_err(_errno.EINVAL, f"free of pfn {pfn:#x} at order {order}, "
                          f"allocated at order {got}")
        self._check_free_state(pfn, <int> order, 1)
        cdef _PAZone z = self._zone(self._zoneid_of(self._page(pfn)))
        self._do_free(z, pfn, <int> order, <int> cpu)

    def free_pages_core(self, int64_t pfn, int64_t order):
        """mm/page_alloc.c:__free_pages_core (6.1): clear PG_reserved and the refcount of every
        page, managed_pages += 2^order, __free_pages_ok(FPI_TO_TAIL) bypassing the pcp lists."""
        self._check_free_pages_core(pfn, order)
        self._free_pages_core(pfn, <int> order)

    cdef int _check_free_pages_core(self, int64_t pfn, int64_t order) except -1:
        """free_pages_core's refusals: an aligned block of reserved pages of one zone."""
        self._check_block(pfn, order)
        cdef int64_t n = (<int64_t> 1) << order, j
        cdef page_t* p = self._page(pfn)
        cdef int64_t zoneid = self._zoneid_of(p)
        for j in range(n):
            if self._zoneid_of(&p[j]) != zoneid:
                raise _pa_err(_errno.EINVAL, f"pfn range {pfn:#x}+{n} spans zones")
            if not (p[j].flags & _PA_RESERVED) or p[j].page_type != _PA_MAPCOUNT_RESET:
                raise _pa_err(_errno.EINVAL, f"pfn {pfn + j:#x} is not a reserved page")
        self._zone(zoneid, True)
        return 0

    cdef int _free_pages_core(self, int64_t pfn, int order) except -1:
        """free_pages_core's work on a checked block."""
        cdef int64_t n = (<int64_t> 1) << order, j
        cdef page_t* p = self._page_w(pfn)
        cdef _PAZone z = self._zones[self._zoneid_of(p)]
        for j in range(n):
            p[j].flags &= ~_PA_RESERVED
            p[j]._refcount = 0
        z.managed += n
        self._free_pages_ok(z, pfn, order, D.FPI_TO_TAIL)
        self.ms.c_fold_range(pfn, n)        # a whole chunk of free blocks: a pattern again
        return 0

    def free_reserved_page(self, int64_t pfn, int64_t cpu):
        """include/linux/mm.h:free_reserved_page (6.1): ClearPageReserved, init_page_count,
        __free_page (through the pcp lists), adjust_managed_page_count(+1)."""
        self._check_block(pfn, 0)
        self._check_cpu(cpu)
        cdef page_t* p = self._page(pfn)
        if not (p.flags & _PA_RESERVED) or _pa_hm_find(&self._alloc, pfn) >= 0 or \
                p.page_type != _PA_MAPCOUNT_RESET:
            raise _pa_err(_errno.EINVAL, f"pfn {pfn:#x} is not a reserved page")
        cdef _PAZone z = self._zone(self._zoneid_of(p), True)
        p = self._page_w(pfn)
        p.flags &= ~_PA_RESERVED
        p._refcount = 0
        self._free_the_page(z, pfn, 0, <int> cpu)
        z.managed += 1

    def adjust_managed_page_count(self, int64_t zoneid, int64_t count):
        """mm/page_alloc.c:adjust_managed_page_count (zone part; totalram is the caller's)."""
        cdef _PAZone z = self._zone(zoneid, True)
        if z.managed + count < 0:
            raise _pa_err(_errno.EINVAL, f"zone {zoneid}: managed {z.managed} + {count} < 0")
        z.managed += count

    def adjust_nr_isolate_pageblock(self, int64_t zoneid, int64_t count):
        """zone->nr_isolate_pageblock += count, as online_pages/offline_pages do directly."""
        cdef _PAZone z = self._zone(zoneid, True)
        if z.nr_isolate_pageblock + count < 0:
            raise _pa_err(_errno.EINVAL, f"zone {zoneid}: nr_isolate_pageblock "
                          f"{z.nr_isolate_pageblock} + {count} < 0")
        z.nr_isolate_pageblock += count

    # -- pcp control -----------------------------------------------------------------------------
    def set_pcp(self, int64_t zoneid, int64_t cpu, int64_t high, int64_t batch):
        """mm/page_alloc.c:pageset_update for one CPU; kept for zone_pcp_enable while disabled."""
        self._check_cpu(cpu)
        if batch < 1 or high < 0:
            raise _pa_err(_errno.EINVAL, f"pcp high {high} / batch {batch} out of range")
        cdef _PAZone z = self._zone(zoneid, True)
        cdef pa_pcp_t* pcp = &z.pcp[cpu]
        pcp.saved_high = high
        pcp.saved_batch = batch
        if not z.pcp_disabled:
            pcp.high = high
            pcp.batch = batch

    def drain_pages_zone(self, int64_t cpu, int64_t zoneid):
        """mm/page_alloc.c:drain_pages_zone."""
        cdef _PAZone z = self._zone(zoneid)
        self._check_cpu(cpu)
        self._drain_pages_zone(<int> cpu, z)

    def drain_zone_pages(self, int64_t zoneid):
        """Drain every CPU's lists of the zone, as mm/page_alloc.c:__drain_all_pages(zone, true)
        does (not the kernel's NUMA drain_zone_pages, which frees one batch of one pcp)."""
        cdef _PAZone z = self._zone(zoneid)
        cdef int cpu
        for cpu in range(self.nr_cpus):
            self._drain_pages_zone(cpu, z)

    def zone_pcp_disable(self, int64_t zoneid):
        """mm/page_alloc.c:zone_pcp_disable: high 0 / batch 1 on every CPU, then drain all."""
        cdef _PAZone z = self._zone(zoneid)
        cdef int cpu
        if z.pcp_disabled:
            raise _pa_err(_errno.EBUSY, f"zone {zoneid}: pcp already disabled")
        z.pcp_disabled = True
        for cpu in range(self.nr_cpus):
            z.pcp[cpu].high = 0
            z.pcp[cpu].batch = 1
        for cpu in range(self.nr_cpus):
            self._drain_pages_zone(cpu, z)

    def zone_pcp_enable(self, int64_t zoneid):
        """mm/page_alloc.c:zone_pcp_enable: restore zone->pageset_high/batch."""
        cdef _PAZone z = self._zone(zoneid)
        cdef int cpu
        if not z.pcp_disabled:
            raise _pa_err(_errno.EINVAL, f"zone {zoneid}: pcp not disabled")
        z.pcp_disabled = False
        for cpu in range(self.nr_cpus):
            z.pcp[cpu].high = z.pcp[cpu].saved_high
            z.pcp[cpu].batch = z.pcp[cpu].saved_batch

    def zone_pcp_reset(self, int64_t zoneid):
        """mm/page_alloc.c:zone_pcp_reset: back to the boot pageset (high 0, batch 1)."""
        cdef _PAZone z = self._zone(zoneid)
        cdef int cpu
        for cpu in range(self.nr_cpus):
            if z.pcp[cpu].count:
                raise _pa_err(_errno.EBUSY, f"zone {zoneid}: pcp lists not empty")
        for cpu in range(self.nr_cpus):
            z.pcp[cpu].high = 0
            z.pcp[cpu].saved_high = 0
            z.pcp[cpu].batch = 1
            z.pcp[cpu].saved_batch = 1
            z.pcp[cpu].free_factor = 0

    # -- isolation -------------------------------------------------------------------------------
    def set_migratetype_isolate(self, int64_t pfn):
        """mm/page_isolation.c:set_migratetype_isolate (6.1) for pfn's pageblock, without
        has_unmovable_pages: EBUSY if already isolated; free pages leave NR_FREE_PAGES."""
        self._check_pageblock(pfn)
        cdef int64_t start = pfn & ~(self.pageblock_nr_pages - 1)
        cdef int mt = self._mt(start)
        if mt == D.MIGRATE_ISOLATE:
            raise _pa_err(_errno.EBUSY, f"pageblock {start:#x} already isolated")
        self._set_isolate(start)

    cdef int _set_isolate(self, int64_t start) except -1:
        """set_migratetype_isolate's work on a checked, not yet isolated pageblock."""
        cdef int64_t nr_pages
        cdef _PAZone z = self._zone(self._zoneid_of(self._page(start)), True)
        self.ms.c_set_pageblock_migratetype(start, D.MIGRATE_ISOLATE)
        z.nr_isolate_pageblock += 1
        self._move_freepages_block(z, start, D.MIGRATE_ISOLATE, &nr_pages, NULL)
        z.nr_free_pages -= nr_pages
        return 0

    def unset_migratetype_isolate(self, int64_t pfn, int64_t migratetype):
        """mm/page_isolation.c:unset_migratetype_isolate (6.1) for pfn's pageblock; a no-op
        (returns False) when it is not isolated."""
        self._check_pageblock(pfn)
        if not 0 <= migratetype < D.MIGRATE_PCPTYPES:
            raise _pa_err(_errno.EINVAL, f"migratetype {migratetype} out of range")
        return self._unset_isolate(pfn & ~(self.pageblock_nr_pages - 1), <int> migratetype) == 1

    cdef int _unset_isolate(self, int64_t start, int mt) except -1:
        """unset_migratetype_isolate's work on a checked pageblock: 1 done, 0 not isolated."""
        cdef int64_t nr_pages, buddy, k, q
        if self._mt(start) != D.MIGRATE_ISOLATE:
            return 0
        cdef _PAZone z = self._zone(self._zoneid_of(self._page(start)), True)
        if z.nr_isolate_pageblock < 1:
            raise _pa_err(_errno.EINVAL, f"zone {z.zoneid}: isolated pageblock {start:#x} not "
                          "counted in nr_isolate_pageblock")
        cdef bint isolated_page = False
        cdef int order = 0
        cdef page_t* p = self._page(start)
        if self._page_buddy(p) and (_pa_hm_get(&self._freeh, start, -1) >> 7) == z.zoneid:
            order = <int> p.private
            if self.pageblock_order <= order < self.max_order - 1:
                buddy = start ^ ((<int64_t> 1) << order)
                if self._page_is_buddy(z, buddy, order) and self._mt(buddy) != D.MIGRATE_ISOLATE:
                    # __isolate_free_page on an isolated pageblock: no watermark, no counter
                    self._del_page_from_free_list(z, start, order)
                    for k in range((<int64_t> 1) << (order - self.pageblock_order)):
                        q = start + k * self.pageblock_nr_pages
                        if self._mt(q) < D.MIGRATE_PCPTYPES:
                            self.ms.c_set_pageblock_migratetype(q, D.MIGRATE_MOVABLE)
                    isolated_page = True
        if not isolated_page:
            self._move_freepages_block(z, start, mt, &nr_pages, NULL)
            z.nr_free_pages += nr_pages
        self.ms.c_set_pageblock_migratetype(start, mt)
        if isolated_page:
            self._free_one_page_locked(z, start, order, mt, D.FPI_TO_TAIL)
        z.nr_isolate_pageblock -= 1
        return 1

    cdef bint _online_page(self, int64_t pfn) noexcept:
        return self._page(pfn) != NULL and self.ms.c_section_online(pfn >> self._shift)

    def test_pages_isolated(self, int64_t start_pfn, int64_t end_pfn):
        """mm/page_isolation.c:test_pages_isolated(MEMORY_OFFLINE) (6.1)."""
        if start_pfn < 0 or end_pfn <= start_pfn:
            raise _pa_err(_errno.EINVAL, f"bad pfn range {start_pfn:#x}-{end_pfn:#x}")
        cdef int64_t pb = self.pageblock_nr_pages, pfn = start_pfn, q
        cdef bint found
        cdef page_t* p
        while pfn < end_pfn:
            for q in range(pfn, pfn + pb):
                if self._online_page(q):
                    if self._mt(q) != D.MIGRATE_ISOLATE:
                        return False
                    break
            pfn += pb
        found = False
        for q in range(start_pfn, end_pfn):
            if self._online_page(q):
                found = True
                break
        if not found:
            return False
        pfn = start_pfn
        while pfn < end_pfn:
            p = self._page(pfn)
            if p == NULL:
                return False
            if self._page_buddy(p):
                pfn += (<int64_t> 1) << p.private
            elif p.flags & _PA_HWPOISON:
                pfn += 1
            elif (p.page_type & _PA_OFFLINE_MASK) == _PA_TYPE_BASE and p._refcount == 0:
                pfn += 1
            else:
                return False
        return True

    def offline_isolated_pages(self, int64_t start_pfn, int64_t end_pfn):
        """mm/page_alloc.c:__offline_isolated_pages (6.1) without offline_mem_sections: take every
        free block in [start, end) off its free list. Returns the pages taken off."""
        if start_pfn < 0 or end_pfn <= start_pfn:
            raise _pa_err(_errno.EINVAL, f"bad pfn range {start_pfn:#x}-{end_pfn:#x}")
        cdef int64_t pfn = start_pfn, removed = 0, key
        cdef page_t* p
        cdef bint buddy
        cdef int order
        # first pass: refuse before changing anything
        while pfn < end_pfn:
            p = self._page(pfn)
            if p == NULL:
                raise _pa_err(_errno.EINVAL, f"pfn {pfn:#x} has no struct page")
            buddy = self._page_buddy(p)
            if not buddy and p.flags & _PA_HWPOISON:
                pfn += 1
                continue
            if (p.page_type & _PA_OFFLINE_MASK) == _PA_TYPE_BASE:
                if p._refcount:
                    raise _pa_err(_errno.EBUSY, f"PageOffline pfn {pfn:#x} has references")
                pfn += 1
                continue
            if not buddy or _pa_hm_find(&self._freeh, pfn) < 0 or p._refcount:
                raise _pa_err(_errno.EBUSY, f"pfn {pfn:#x} is not free in the buddy allocator")
            pfn += (<int64_t> 1) << p.private
        pfn = start_pfn
        cdef _PAZone z
        while pfn < end_pfn:
            p = self._page(pfn)
            buddy = self._page_buddy(p)
            if (not buddy and p.flags & _PA_HWPOISON) or \
                    (p.page_type & _PA_OFFLINE_MASK) == _PA_TYPE_BASE:
                pfn += 1
                continue
            key = _pa_hm_get(&self._freeh, pfn, -1)
            z = self._zones[key >> 7]
            order = <int> p.private
            self._del_page_from_free_list(z, pfn, order)
            removed += (<int64_t> 1) << order
            pfn += (<int64_t> 1) << order
        self.ms.c_fold_range(start_pfn, end_pfn - start_pfn)
        return removed

    # -- range operations: one call per range ------------------------------------------------------
    cdef inline int _online_chunk_order(self, int64_t pfn) noexcept nogil:
        """online_pages_range's chunk: min(MAX_ORDER - 1, __ffs(pfn)) (pfn 0: MAX_ORDER - 1)."""
        cdef int order = 0
        if pfn == 0:
            return self.max_order - 1
        while order < self.max_order - 1 and not (pfn >> order) & 1:
            order += 1
        return order

    def online_pages_range(self, int64_t start_pfn, int64_t nr_pages):
        """mm/memory_hotplug.c:online_pages_range (6.1) without online_mem_sections: the range in
        MAX_ORDER - 1 capped, naturally aligned chunks, ascending, to generic_online_page's
        __free_pages_core (as free_pages_core: a chunk it would refuse raises, the chunks before
        it freed). Returns the pages handed over (the caller's totalram_pages_add)."""
        if start_pfn < 0 or nr_pages <= 0:
            raise _pa_err(_errno.EINVAL, f"bad pfn range {start_pfn:#x}+{nr_pages}")
        cdef int64_t end_pfn = start_pfn + nr_pages, pfn = start_pfn, total = 0
        cdef int order
        while pfn < end_pfn:
            order = self._online_chunk_order(pfn)
            self._check_free_pages_core(pfn, order)
            self._free_pages_core(pfn, order)
            pfn += (<int64_t> 1) << order
            total += (<int64_t> 1) << order
        return total

    cdef int _check_isolate_range(self, int64_t start_pfn, int64_t end_pfn,
                                  int64_t migratetype) except -1:
        cdef int64_t pfn
        if start_pfn < 0 or end_pfn <= start_pfn:
            raise _pa_err(_errno.EINVAL, f"bad pfn range {start_pfn:#x}-{end_pfn:#x}")
        if not 0 <= migratetype < D.MIGRATE_PCPTYPES:
            raise _pa_err(_errno.EINVAL, f"migratetype {migratetype} out of range")
        pfn = start_pfn & ~(self.pageblock_nr_pages - 1)
        while pfn < end_pfn:
            self._check_pageblock(pfn)
            pfn += self.pageblock_nr_pages
        return 0

    cdef int64_t _try_isolate(self, int64_t pb, int64_t start_pfn, int64_t end_pfn, int flags,
                              int zone_movable) except -2:
        """set_migratetype_isolate with its has_unmovable_pages check on the pageblock at ``pb``
        (the part inside [start_pfn, end_pfn)): -1 when isolated, else the refusing pfn (the
        pageblock's own pfn when it was isolated already)."""
        cdef int64_t bad
        if self._mt(pb) == D.MIGRATE_ISOLATE:
            return pb
        bad = _pageblock_has_unmovable(self.ms, max(pb, start_pfn),
                                       min(pb + self.pageblock_nr_pages, end_pfn), flags,
                                       zone_movable)
        if bad >= 0:
            return bad
        self._set_isolate(pb)
        return -1

    def start_isolate_page_range(self, int64_t start_pfn, int64_t end_pfn, int64_t migratetype,
                                 int flags, int zone_movable, bint ends_first=False):
        """mm/page_isolation.c:start_isolate_page_range (6.1) over the pageblocks of
        [start_pfn, end_pfn): set_migratetype_isolate with has_unmovable_pages (``flags``:
        MEMORY_OFFLINE / REPORT_FAILURE; ``zone_movable``: ZONE_MOVABLE's index) on each; at the
        first that refuses, the ones isolated are undone (unset to ``migratetype``). Returns -1,
        or the refusing pfn: the unmovable page the kernel dumps, or the pageblock's pfn when it
        was isolated already (the kernel's bare -EBUSY).

        Order: ascending, the ones done undone from the last down (the model's order until now);
        ``ends_first``: 5.19+'s order (isolate_single_pageblock on the first, then the last
        pageblock, then the middle ascending; a middle refusal undoes [first, pfn) ascending,
        then the last)."""
        self._check_isolate_range(start_pfn, end_pfn, migratetype)
        cdef int64_t pb = self.pageblock_nr_pages, mt = migratetype
        cdef int64_t first = start_pfn & ~(pb - 1), last = ((end_pfn + pb - 1) & ~(pb - 1)) - pb
        cdef int64_t p, q, bad
        if not ends_first:
            p = first
            while p <= last:
                bad = self._try_isolate(p, start_pfn, end_pfn, flags, zone_movable)
                if bad >= 0:
                    q = p - pb
                    while q >= first:
                        self._unset_isolate(q, <int> mt)
                        q -= pb
                    return bad
                p += pb
            return -1
        bad = self._try_isolate(first, start_pfn, end_pfn, flags, zone_movable)
        if bad >= 0:
            return bad
        if last != first:
            bad = self._try_isolate(last, start_pfn, end_pfn, flags, zone_movable)
            if bad >= 0:
                self._unset_isolate(first, <int> mt)
                return bad
        p = first + pb
        while p < last:
            bad = self._try_isolate(p, start_pfn, end_pfn, flags, zone_movable)
            if bad >= 0:
                q = first
                while q < p:
                    self._unset_isolate(q, <int> mt)
                    q += pb
                self._unset_isolate(last, <int> mt)
                return bad
            p += pb
        return -1

    def undo_isolate_page_range(self, int64_t start_pfn, int64_t end_pfn, int64_t migratetype):
        """mm/page_isolation.c:undo_isolate_page_range (6.1): unset_migratetype_isolate on every
        isolated pageblock of [start_pfn, end_pfn), ascending. Returns how many were isolated."""
        self._check_isolate_range(start_pfn, end_pfn, migratetype)
        cdef int64_t pb = self.pageblock_nr_pages, p = start_pfn & ~(pb - 1), n = 0
        while p < end_pfn:
            n += self._unset_isolate(p, <int> migratetype)
            p += pb
        return n

    # -- test helper -----------------------------------------------------------------------------
    def fragment(self, int64_t zoneid, int64_t order, int64_t cpu):
        """Hold pages so that no free buddy block of order >= ``order`` remains in the zone
        (outside MIGRATE_ISOLATE lists); see hotmem/_py/buddy.py. Returns the held pfns, each
        an allocation of order max(order - 1, 0)."""
        cdef _PAZone z = self._zone(zoneid)
        self._check_order(order)
        self._check_cpu(cpu)
        self.drain_zone_pages(zoneid)
        cdef int o = <int> max(order - 1, 0)
        cdef int64_t pfn
        cdef list held = [], keep = []
        while True:
            pfn = self._do_alloc(z, o, D.MIGRATE_MOVABLE, <int> cpu, 0)
            if pfn < 0:
                break
            held.append(pfn)
        if order > 0:
            for pfn in held:
                if pfn & ((<int64_t> 1) << o):
                    self._do_free(z, pfn, o, <int> cpu)
                else:
                    keep.append(pfn)
            held = keep
        return sorted(held)

    # -- inspection ------------------------------------------------------------------------------
    def zones(self):
        return sorted(self._zones)

    def nr_free_pages(self, int64_t zoneid):
        """zone_page_state(zone, NR_FREE_PAGES)."""
        return self._zone(zoneid).nr_free_pages

    def managed_pages(self, int64_t zoneid):
        return self._zone(zoneid).managed

    def nr_isolate_pageblock(self, int64_t zoneid):
        return self._zone(zoneid).nr_isolate_pageblock

    def nr_free(self, int64_t zoneid, int64_t order, mt=None):
        """free_area[order].nr_free, or the length of one free_list[mt]."""
        cdef _PAZone z = self._zone(zoneid)
        self._check_order(order)
        cdef int i
        cdef int64_t total = 0
        if mt is None:
            for i in range(D.MIGRATE_TYPES):
                total += z.nr_free_mt[order * D.MIGRATE_TYPES + i]
            return total
        if not 0 <= mt < D.MIGRATE_TYPES:
            raise _pa_err(_errno.EINVAL, f"migratetype {mt} out of range")
        return z.nr_free_mt[order * D.MIGRATE_TYPES + <int> mt]

    cdef list _free_list(self, _PAZone z, int order, int mt):
        cdef pa_heap_t* h = &z.heaps[order * D.MIGRATE_TYPES + mt]
        cdef int64_t key = self._key(z, order, mt), i
        cdef set out = set()
        for i in range(h.n):
            if _pa_hm_get(&self._freeh, h.a[i], -1) == key:
                out.add(h.a[i])
        return sorted(out)

    def free_list(self, int64_t zoneid, int64_t order, int64_t mt):
        """The head pfns on free_area[order].free_list[mt], ascending."""
        cdef _PAZone z = self._zone(zoneid)
        self._check_order(order)
        if not 0 <= mt < D.MIGRATE_TYPES:
            raise _pa_err(_errno.EINVAL, f"migratetype {mt} out of range")
        return self._free_list(z, <int> order, <int> mt)

    def pcp_count(self, int64_t zoneid, int64_t cpu):
        self._check_cpu(cpu)
        return self._zone(zoneid).pcp[cpu].count

    def pcp_info(self, int64_t zoneid, int64_t cpu):
        """(count, high, batch, free_factor) of the CPU's per_cpu_pages."""
        self._check_cpu(cpu)
        cdef pa_pcp_t* p = &self._zone(zoneid).pcp[cpu]
        return (p.count, p.high, p.batch, p.free_factor)

    cdef tuple _pcp_list(self, pa_deque_t* d):
        cdef int64_t i
        return tuple([(_pa_dq_at(d, i) >> 3, _pa_dq_at(d, i) & 7) for i in range(d.n)])

    def pcp_pages(self, int64_t zoneid, int64_t cpu):
        """[(pindex, [pfn, ...] from list head to tail)] for the non-empty lists."""
        self._check_cpu(cpu)
        cdef _PAZone z = self._zone(zoneid)
        cdef int k
        cdef int64_t i
        cdef pa_deque_t* d
        out = []
        for k in range(D.NR_PCP_LISTS):
            d = &z.pcp[cpu].lists[k]
            if d.n:
                out.append((k, [_pa_dq_at(d, i) >> 3 for i in range(d.n)]))
        return out

    def allocated(self):
        """{pfn: order} of the blocks alloc_pages handed out and free_pages has not taken back."""
        cdef int64_t i
        items = [(self._alloc.keys[i], self._alloc.vals[i]) for i in range(self._alloc.cap)
                 if self._alloc.keys[i] >= 0]
        return dict(sorted(items))

    def state(self):
        """A canonical snapshot, equal between backends when their states are equal."""
        cdef dict zones = {}
        cdef _PAZone z
        cdef int order, mt, c, k
        cdef pa_pcp_t* p
        for zoneid in sorted(self._zones):
            z = self._zones[zoneid]
            free_area = {}
            for order in range(self.max_order):
                for mt in range(D.MIGRATE_TYPES):
                    if z.nr_free_mt[order * D.MIGRATE_TYPES + mt]:
                        free_area[(order, mt)] = tuple(self._free_list(z, order, mt))
            pcp = []
            for c in range(self.nr_cpus):
                p = &z.pcp[c]
                pcp.append((p.count, p.high, p.batch, p.free_factor, p.saved_high,
                            p.saved_batch,
                            tuple([self._pcp_list(&p.lists[k]) for k in range(D.NR_PCP_LISTS)])))
            zones[zoneid] = {"nr_free_pages": z.nr_free_pages, "managed": z.managed,
                             "nr_isolate_pageblock": z.nr_isolate_pageblock,
                             "free_area": free_area, "pcp": tuple(pcp),
                             "pcp_disabled": bool(z.pcp_disabled)}
        return {"zones": zones, "allocated": tuple(sorted(self.allocated().items()))}
