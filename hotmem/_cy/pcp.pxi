# The page allocator of Linux 6.1 (compiled), 2 of 3: the per-CPU pagesets (mm/page_alloc.c 6.1:
# free_unref_page, free_pcppages_bulk, rmqueue_pcplist, drain_pages_zone, zone_pcp_disable/
# enable/reset), ring buffers in exact kernel order, and the entry points that go through them
# (alloc_pages, free_pages, free_reserved_page). Twin: hotmem/_py/pcp.py.


cdef class _PcpLists(_BuddyZones):
    """The page allocator with its per-CPU pagesets (see hotmem/_py/pcp.py)."""

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

    # -- allocation through the pcp lists ----------------------------------------------------------
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

    def free_pages(self, int64_t pfn, int64_t order, int64_t cpu):
        """mm/page_alloc.c:__free_pages (6.1): drop the last reference, then free_the_page."""
        self._check_block(pfn, order)
        self._check_cpu(cpu)
        cdef int64_t got = _pa_hm_get(&self._alloc, pfn, -1)
        if got < 0:
            what = "double free" if _pa_fm_has(&self._freeh, pfn) else "never allocated"
            raise _pa_err(_errno.EINVAL, f"free of pfn {pfn:#x}: {what}")
        if got != order:
            raise _pa_err(_errno.EINVAL, f"free of pfn {pfn:#x} at order {order}, "
                          f"allocated at order {got}")
        self._check_free_state(pfn, <int> order, 1)
        cdef _PAZone z = self._zone(self._zoneid_of(self._page(pfn)))
        self._do_free(z, pfn, <int> order, <int> cpu)

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

    # -- inspection ------------------------------------------------------------------------------
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
