# The page allocator of Linux 6.1 (compiled), 3 of 3: pageblock isolation and the offlining helpers
# (mm/page_isolation.c; __offline_isolated_pages, take_page_off_buddy), the range operations the
# hotplug path calls once per range (online_pages_range, start/undo_isolate_page_range) and the
# fragment test helper. Twin: hotmem/_py/page_isolation.py.


cdef class PageAllocator(_PcpLists):
    """The 6.1 page allocator over the struct pages of ``ms`` (see hotmem/_py/buddy.py).

    ``max_order`` is 6.1's MAX_ORDER (11 on x86_64: orders 0..10).
    """

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
        if self._page_buddy(p) and (_pa_fm_get(&self._freeh, start, -1) >> 7) == z.zoneid:
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
            if not buddy or not _pa_fm_has(&self._freeh, pfn) or p._refcount:
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
            key = _pa_fm_get(&self._freeh, pfn, -1)
            z = self._zones[key >> 7]
            order = <int> p.private
            self._del_page_from_free_list(z, pfn, order)
            removed += (<int64_t> 1) << order
            pfn += (<int64_t> 1) << order
        self.ms.c_fold_range(start_pfn, end_pfn - start_pfn)
        return removed

    def take_page_off_buddy(self, pfn_arg):
        """mm/page_alloc.c:take_page_off_buddy (6.1): take one free page out of the buddy block
        holding it (break_down_buddy_pages puts the other halves back) and hand it out as an
        order-0 allocation (refcount 1), without the HWPoison marking. False if it is not free
        in the buddy. A pfn outside int64 has no struct page (EINVAL, as in the twin)."""
        pfn_arg = _core_int(pfn_arg, "take_page_off_buddy pfn")
        if pfn_arg < 0 or pfn_arg > 0x7fffffffffffffff:
            raise _pa_err(_errno.EINVAL, f"pfn {pfn_arg:#x} has no struct page")
        cdef int64_t pfn = pfn_arg
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
            key = _pa_fm_get(&self._freeh, head, -1)
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
        cdef int64_t k
        while pfn < end_pfn:
            order = self._online_chunk_order(pfn)
            if order == self.max_order - 1:
                k = self._free_pages_core_run(pfn, end_pfn)
                if k:
                    pfn += k << order
                    total += k << order
                    continue
            self._free_pages_core_chunk(pfn, order)
            pfn += (<int64_t> 1) << order
            total += (<int64_t> 1) << order
        # storage only: the chunks the range shares with pages outside it (a block's memmap
        # pages, memmap on memory) are regular again; share them (free_pages_core folded the
        # chunks wholly inside)
        k = self.ms.chunk_pages
        self.ms.c_fold_range(start_pfn & ~(k - 1),
                             ((end_pfn + k - 1) & ~(k - 1)) - (start_pfn & ~(k - 1)))
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
