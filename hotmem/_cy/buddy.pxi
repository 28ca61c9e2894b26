# The page allocator of Linux 6.1 (compiled), 1 of 3: struct zone's allocator state, the buddy free
# lists, freeing into them (__free_one_page) and taking from them (expand, __rmqueue, fallbacks),
# free_pages_core and the managed-page counts (mm/page_alloc.c). The class chain: _BuddyZones (here)
# <- _PcpLists (_cy/pcp.pxi) <- PageAllocator (_cy/page_isolation.pxi); cdef methods are inherited
# and called directly. Twin and the full description: hotmem/_py/buddy.py; constants:
# hotmem/defs.py (D.*: hotmem/defs.pxd). Free lists are min-heaps of pfns (lowest pfn first, the
# model's one deliberate deviation) validated lazily against a pfn -> (zoneid, order, migratetype)
# hash map (_cy/pa_containers.pxi).
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


cdef class _BuddyZones:
    """The buddy part of the page allocator: zones, free lists, __free_one_page, __rmqueue
    (see hotmem/_py/buddy.py; the public class is PageAllocator, _cy/page_isolation.pxi)."""
    cdef readonly MemSections ms
    cdef readonly int max_order, pageblock_order, nr_cpus
    cdef readonly int64_t pageblock_nr_pages
    cdef int _shift, _zshift
    cdef int64_t _mask
    cdef dict _zones
    cdef dict _fpc_memo           # chunk pattern -> (its pattern after _free_pages_core, zoneid)
    cdef pa_fmap_t _freeh         # free block head pfn -> zoneid << 7 | order << 3 | mt
    cdef pa_hmap_t _alloc         # pfn -> order handed out by alloc_pages

    def __cinit__(self, MemSections ms, int max_order, int pageblock_order, int nr_cpus):
        memset(&self._freeh, 0, sizeof(pa_fmap_t))
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
        self._freeh.shift = max_order - 1
        self.pageblock_order = pageblock_order
        self.pageblock_nr_pages = (<int64_t> 1) << pageblock_order
        self.nr_cpus = nr_cpus
        self._shift = ms.pfn_section_shift
        self._mask = ((<int64_t> 1) << self._shift) - 1
        self._zshift = ms.zones_pgshift
        self._zones = {}
        self._fpc_memo = {}

    def __dealloc__(self):
        _pa_fm_free(&self._freeh)
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
            if _pa_fm_get(&self._freeh, h.a[i], -1) == key:
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

    cdef inline void _dec_free(self, _PAZone z, int order, int mt) noexcept:
        """One block less on the (order, mt) free list; when none is left, every entry still in
        its heap is a stale one: the heap is emptied at once instead of by a later _compact
        (which would look each of them up in the free-head map)."""
        cdef int idx = order * D.MIGRATE_TYPES + mt
        z.nr_free_mt[idx] -= 1
        if z.nr_free_mt[idx] == 0:
            z.heaps[idx].n = 0

    cdef int _add_to_free_list(self, _PAZone z, int64_t pfn, int order, int mt) except -1:
        """mm/page_alloc.c:add_to_free_list / add_to_free_list_tail (position not modelled)."""
        _pa_fm_set(&self._freeh, pfn, self._key(z, order, mt))
        z.nr_free_mt[order * D.MIGRATE_TYPES + mt] += 1
        self._push(z, pfn, order, mt)
        return 0

    cdef int _move_to_free_list(self, _PAZone z, int64_t pfn, int order, int mt) except -1:
        """mm/page_alloc.c:move_to_free_list."""
        cdef int old = <int> (_pa_fm_get(&self._freeh, pfn, 0) & 7)
        self._dec_free(z, order, old)
        _pa_fm_set(&self._freeh, pfn, self._key(z, order, mt))
        z.nr_free_mt[order * D.MIGRATE_TYPES + mt] += 1
        self._push(z, pfn, order, mt)
        return 0

    cdef int _del_page_from_free_list(self, _PAZone z, int64_t pfn, int order) except -1:
        """mm/page_alloc.c:del_page_from_free_list: off the list, __ClearPageBuddy, private 0."""
        cdef int old = <int> (_pa_fm_pop(&self._freeh, pfn, 0) & 7)
        self._dec_free(z, order, old)
        cdef page_t rec = self._page(pfn)[0]
        rec.page_type |= D.PG_buddy
        rec.private = 0
        self.ms.c_write_page(pfn, &rec)

    cdef int64_t _get_page_from_free_area(self, _PAZone z, int order, int mt) noexcept:
        """mm/page_alloc.c:get_page_from_free_area, lowest pfn instead of the list head."""
        cdef int idx = order * D.MIGRATE_TYPES + mt
        cdef pa_heap_t* h = &z.heaps[idx]
        if z.nr_free_mt[idx] == 0:
            h.n = 0
            return -1
        cdef int64_t key = self._key(z, order, mt)
        while h.n > 0:
            if _pa_fm_get(&self._freeh, h.a[0], -1) == key:
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
        return (_pa_fm_get(&self._freeh, buddy_pfn, -1) >> 7) == z.zoneid

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
        cdef int64_t pfn = start_pfn, n
        cdef page_t* p
        cdef int order
        pages_moved[0] = 0
        if movable != NULL:
            movable[0] = 0
        while pfn <= end_pfn:
            p = self._page(pfn)
            if p == NULL:
                pfn += 1
                continue
            if not self._page_buddy(p):
                # the kernel steps pfn++ over them; a run of equal records (a free block's
                # tails) is stepped over at once
                n = self.ms.c_same_run(pfn, end_pfn - pfn + 1)
                if movable != NULL and (p.flags & _PA_LRU):
                    movable[0] += n
                pfn += n
                continue
            if (_pa_fm_get(&self._freeh, pfn, -1) >> 7) != z.zoneid:
                if movable != NULL and (p.flags & _PA_LRU):
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
    def free_pages_core(self, int64_t pfn, int64_t order):
        """mm/page_alloc.c:__free_pages_core (6.1): clear PG_reserved and the refcount of every
        page, managed_pages += 2^order, __free_pages_ok(FPI_TO_TAIL) bypassing the pcp lists."""
        self._check_free_pages_core(pfn, order)
        self._free_pages_core(pfn, <int> order)

    cdef int64_t _free_pages_core_run(self, int64_t pfn, int64_t end_pfn) except -1:
        """_free_pages_core_chunk on the run of MAX_ORDER - 1 blocks from ``pfn`` (aligned) up to
        ``end_pfn`` whose chunks share one pattern already freed before (its remembered result
        in _fpc_memo) and pass _check_block: the same writes, block by block in ascending
        order, with the pattern looked up once. Returns how many blocks it freed (0: none, the
        caller takes the per-block path, which also raises for a block that fails a check)."""
        cdef int order = self.max_order - 1
        cdef int64_t n = (<int64_t> 1) << order, k, j, q
        cdef object key, hit
        cdef _PAZone z
        cdef int mt
        if order != self.ms.chunk_shift:
            return 0
        key = self.ms.c_chunk_key(pfn)
        if key is None:
            return 0
        hit = self._fpc_memo.get(key)
        if hit is None:
            return 0
        k = self.ms.c_shared_run(pfn, (end_pfn - pfn) >> order, key)
        # _check_block of each (alignment, order and struct page hold for the whole run)
        j = 0
        while j < k and self._mt(pfn + j * n) >= 0:
            j += 1
        k = j
        if k == 0:
            return 0
        z = self._zone(hit[1], True)
        if not self.ms.c_chunk_share_run(pfn, k, key, hit[0]):
            return 0
        for j in range(k):
            q = pfn + j * n
            z.managed += n
            mt = self._mt(q)                        # __free_pages_ok, free_one_page
            if mt != D.MIGRATE_ISOLATE:
                z.nr_free_pages += n                # __mod_zone_freepage_state
            self._add_to_free_list(z, q, order, mt)
        return k

    cdef int _free_pages_core_chunk(self, int64_t pfn, int order) except -1:
        """free_pages_core on an aligned block, O(1) for a whole MAX_ORDER - 1 block that is a
        shared chunk whose pattern was freed before: at MAX_ORDER - 1 __free_one_page merges
        nothing, so the freed records are a function of the reserved ones alone -- the chunk
        takes the remembered pattern and the block goes to the tail of its pageblock's list."""
        cdef object key = None, hit
        cdef _PAZone z
        cdef int mt
        cdef int64_t n = (<int64_t> 1) << order
        if order == self.max_order - 1 and order == self.ms.chunk_shift:
            key = self.ms.c_chunk_key(pfn)
            if key is not None:
                hit = self._fpc_memo.get(key)
                if hit is not None:
                    self._check_block(pfn, order)
                    z = self._zone(hit[1], True)
                    if self.ms.c_chunk_share(pfn, hit[0]):
                        z.managed += n
                        mt = self._mt(pfn)                  # __free_pages_ok, free_one_page
                        if mt != D.MIGRATE_ISOLATE:
                            z.nr_free_pages += n            # __mod_zone_freepage_state
                        self._add_to_free_list(z, pfn, order, mt)
                        return 0
        self._check_free_pages_core(pfn, order)
        self._free_pages_core(pfn, order)
        if key is not None:
            hit = self.ms.c_chunk_key(pfn)
            if hit is not None:
                if len(self._fpc_memo) >= 64:
                    self._fpc_memo.clear()
                self._fpc_memo[key] = (hit, self._zoneid_of(self._page(pfn)))
        return 0

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
            if _pa_fm_get(&self._freeh, h.a[i], -1) == key:
                out.add(h.a[i])
        return sorted(out)

    def free_list(self, int64_t zoneid, int64_t order, int64_t mt):
        """The head pfns on free_area[order].free_list[mt], ascending."""
        cdef _PAZone z = self._zone(zoneid)
        self._check_order(order)
        if not 0 <= mt < D.MIGRATE_TYPES:
            raise _pa_err(_errno.EINVAL, f"migratetype {mt} out of range")
        return self._free_list(z, <int> order, <int> mt)

    def allocated(self):
        """{pfn: order} of the blocks alloc_pages handed out and free_pages has not taken back."""
        cdef int64_t i
        items = [(self._alloc.keys[i], self._alloc.vals[i]) for i in range(self._alloc.cap)
                 if self._alloc.keys[i] >= 0]
        return dict(sorted(items))

    # -- boot: memblock's hand-over by range -----------------------------------------------------
    def free_pages_memory(self, int64_t start_pfn, int64_t end_pfn):
        """mm/memblock.c:__free_pages_memory (6.1): [start_pfn, end_pfn) to the buddy in
        naturally aligned chunks of at most MAX_ORDER - 1, ascending, each through
        memblock_free_pages → __free_pages_core (a chunk it would refuse raises, the chunks
        before it freed). Returns the pages handed over (the caller's totalram_pages_add)."""
        if start_pfn < 0 or end_pfn < start_pfn:
            raise _pa_err(_errno.EINVAL, f"bad pfn range [{start_pfn:#x}, {end_pfn:#x})")
        cdef int64_t pfn = start_pfn, total = 0, k
        cdef int order
        while pfn < end_pfn:
            order = 0
            if pfn == 0:
                order = self.max_order - 1
            else:
                while order < self.max_order - 1 and not (pfn >> order) & 1:
                    order += 1
            while pfn + ((<int64_t> 1) << order) > end_pfn:
                order -= 1
            if order == self.max_order - 1:
                k = self._free_pages_core_run(pfn, end_pfn)
                if k:
                    pfn += k << order
                    total += k << order
                    continue
            self._free_pages_core_chunk(pfn, order)
            pfn += (<int64_t> 1) << order
            total += (<int64_t> 1) << order
        return total
