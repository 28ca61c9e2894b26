"""Pure-Python twin of hotmem/_cy/page_isolation.pxi: pageblock isolation and the offlining
helpers of the 6.1 page allocator (mm/page_isolation.c; __offline_isolated_pages,
take_page_off_buddy), the range operations the hotplug path calls once per range
(online_pages_range, start/undo_isolate_page_range) and the fragment test helper. See
hotmem/_py/buddy.py.
"""
import errno

from hotmem.defs import (
    FPI_TO_TAIL, MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_PCPTYPES, PAGE_TYPE_BASE, PG_hwpoison,
)
from hotmem.boundary import INT64_MAX, core_int
from hotmem._py.buddy import _BUDDY_MASK, _OFFLINE_MASK, _err
from hotmem._py.pcp import _PcpLists
from hotmem._py.scan import _pageblock_has_unmovable

__all__ = ["PageAllocator"]


class PageAllocator(_PcpLists):
    """The 6.1 page allocator over the struct pages of ``ms`` (see the module docstring).

    ``max_order`` is 6.1's MAX_ORDER (11 on x86_64: orders 0..10).
    """

    # -- isolation -------------------------------------------------------------------------------
    def set_migratetype_isolate(self, pfn):
        """mm/page_isolation.c:set_migratetype_isolate (6.1) for pfn's pageblock, without the
        has_unmovable_pages check (the caller's): EBUSY if already isolated; free pages move
        to the MIGRATE_ISOLATE lists and leave NR_FREE_PAGES."""
        self._check_pageblock(pfn)
        start = pfn & ~(self.pageblock_nr_pages - 1)
        mt = self._mt(start)
        if mt == MIGRATE_ISOLATE:
            raise _err(errno.EBUSY, f"pageblock {start:#x} already isolated")
        self._set_isolate(start)

    def _set_isolate(self, start):
        """set_migratetype_isolate's work on a checked, not yet isolated pageblock."""
        z = self._zone(self._zoneid_of(start), create=True)
        self.ms.set_pageblock_migratetype(start, MIGRATE_ISOLATE)
        z.nr_isolate_pageblock += 1
        nr_pages, _ = self._move_freepages_block(z, start, MIGRATE_ISOLATE)
        z.nr_free_pages -= nr_pages

    def unset_migratetype_isolate(self, pfn, migratetype):
        """mm/page_isolation.c:unset_migratetype_isolate (6.1) for pfn's pageblock; a no-op
        (returns False) when it is not isolated."""
        self._check_pageblock(pfn)
        if not 0 <= migratetype < MIGRATE_PCPTYPES:
            raise _err(errno.EINVAL, f"migratetype {migratetype} out of range")
        return self._unset_isolate(pfn & ~(self.pageblock_nr_pages - 1), migratetype)

    def _unset_isolate(self, start, migratetype):
        """unset_migratetype_isolate's work on a checked pageblock: True done, False not
        isolated."""
        if self._mt(start) != MIGRATE_ISOLATE:
            return False
        z = self._zone(self._zoneid_of(start), create=True)
        if z.nr_isolate_pageblock < 1:
            raise _err(errno.EINVAL, f"zone {z.zoneid}: isolated pageblock {start:#x} not "
                                     "counted in nr_isolate_pageblock")
        isolated_page = False
        order = 0
        if self._page_buddy(start) and (self._freeh.get(start, -1) >> 7) == z.zoneid:
            order = self._pfield(start, "private")
            if self.pageblock_order <= order < self.max_order - 1:
                buddy = start ^ (1 << order)
                if self._page_is_buddy(z, buddy, order) and self._mt(buddy) != MIGRATE_ISOLATE:
                    # __isolate_free_page on an isolated pageblock: no watermark, no counter
                    self._del_page_from_free_list(z, start, order)
                    for k in range(1 << (order - self.pageblock_order)):
                        p = start + k * self.pageblock_nr_pages
                        if self._mt(p) < MIGRATE_PCPTYPES:
                            self.ms.set_pageblock_migratetype(p, MIGRATE_MOVABLE)
                    isolated_page = True
        if not isolated_page:
            nr_pages, _ = self._move_freepages_block(z, start, migratetype)
            z.nr_free_pages += nr_pages
        self.ms.set_pageblock_migratetype(start, migratetype)
        if isolated_page:
            self._free_one_page_locked(z, start, order, migratetype, FPI_TO_TAIL)
        z.nr_isolate_pageblock -= 1
        return True

    # -- range operations: one call per range ------------------------------------------------------
    def _online_chunk_order(self, pfn):
        """online_pages_range's chunk: min(MAX_ORDER - 1, __ffs(pfn)) (pfn 0: MAX_ORDER - 1)."""
        if pfn == 0:
            return self.max_order - 1
        return min(self.max_order - 1, (pfn & -pfn).bit_length() - 1)

    def online_pages_range(self, start_pfn, nr_pages):
        """mm/memory_hotplug.c:online_pages_range (6.1) without online_mem_sections: the range in
        MAX_ORDER - 1 capped, naturally aligned chunks, ascending, to generic_online_page's
        __free_pages_core (as free_pages_core: a chunk it would refuse raises, the chunks before
        it freed). Returns the pages handed over (the caller's totalram_pages_add)."""
        if start_pfn < 0 or nr_pages <= 0:
            raise _err(errno.EINVAL, f"bad pfn range {start_pfn:#x}+{nr_pages}")
        end_pfn = start_pfn + nr_pages
        total = 0
        pfn = start_pfn
        while pfn < end_pfn:
            order = self._online_chunk_order(pfn)
            self._free_pages_core_chunk(pfn, order)
            pfn += 1 << order
            total += 1 << order
        # storage only: the chunks the range shares with pages outside it (a block's memmap
        # pages, memmap on memory) are regular again; share them (free_pages_core folded the
        # chunks wholly inside)
        k = self.ms.chunk_pages
        lo = start_pfn & ~(k - 1)
        self.ms.fold_range(lo, ((end_pfn + k - 1) & ~(k - 1)) - lo)
        return total

    def _check_isolate_range(self, start_pfn, end_pfn, migratetype):
        if start_pfn < 0 or end_pfn <= start_pfn:
            raise _err(errno.EINVAL, f"bad pfn range {start_pfn:#x}-{end_pfn:#x}")
        if not 0 <= migratetype < MIGRATE_PCPTYPES:
            raise _err(errno.EINVAL, f"migratetype {migratetype} out of range")
        for pfn in range(start_pfn & ~(self.pageblock_nr_pages - 1), end_pfn,
                         self.pageblock_nr_pages):
            self._check_pageblock(pfn)

    def _try_isolate(self, pb, start_pfn, end_pfn, flags, zone_movable):
        """set_migratetype_isolate with its has_unmovable_pages check on the pageblock at ``pb``
        (the part inside [start_pfn, end_pfn)): -1 when isolated, else the refusing pfn (the
        pageblock's own pfn when it was isolated already)."""
        if self._mt(pb) == MIGRATE_ISOLATE:
            return pb
        bad = _pageblock_has_unmovable(self.ms, max(pb, start_pfn),
                                       min(pb + self.pageblock_nr_pages, end_pfn), flags,
                                       zone_movable)
        if bad >= 0:
            return bad
        self._set_isolate(pb)
        return -1

    def start_isolate_page_range(self, start_pfn, end_pfn, migratetype, flags, zone_movable,
                                 ends_first=False):
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
        pb = self.pageblock_nr_pages
        first, last = start_pfn & ~(pb - 1), ((end_pfn + pb - 1) & ~(pb - 1)) - pb
        if not ends_first:
            for p in range(first, last + 1, pb):
                bad = self._try_isolate(p, start_pfn, end_pfn, flags, zone_movable)
                if bad >= 0:
                    for q in range(p - pb, first - 1, -pb):
                        self._unset_isolate(q, migratetype)
                    return bad
            return -1
        bad = self._try_isolate(first, start_pfn, end_pfn, flags, zone_movable)
        if bad >= 0:
            return bad
        if last != first:
            bad = self._try_isolate(last, start_pfn, end_pfn, flags, zone_movable)
            if bad >= 0:
                self._unset_isolate(first, migratetype)
                return bad
        for p in range(first + pb, last, pb):
            bad = self._try_isolate(p, start_pfn, end_pfn, flags, zone_movable)
            if bad >= 0:
                for q in range(first, p, pb):
                    self._unset_isolate(q, migratetype)
                self._unset_isolate(last, migratetype)
                return bad
        return -1

    def undo_isolate_page_range(self, start_pfn, end_pfn, migratetype):
        """mm/page_isolation.c:undo_isolate_page_range (6.1): unset_migratetype_isolate on every
        isolated pageblock of [start_pfn, end_pfn), ascending. Returns how many were isolated."""
        self._check_isolate_range(start_pfn, end_pfn, migratetype)
        pb = self.pageblock_nr_pages
        return sum(1 for p in range(start_pfn & ~(pb - 1), end_pfn, pb)
                   if self._unset_isolate(p, migratetype))

    def _online_page(self, pfn):
        a = self._arr(pfn)
        return a is not None and self.ms.section_online(pfn >> self._shift)

    def test_pages_isolated(self, start_pfn, end_pfn):
        """mm/page_isolation.c:test_pages_isolated(MEMORY_OFFLINE) (6.1): every pageblock with an
        online page isolated, and every page free in the buddy (or HWPoison, or PageOffline with
        refcount 0)."""
        if start_pfn < 0 or end_pfn <= start_pfn:
            raise _err(errno.EINVAL, f"bad pfn range {start_pfn:#x}-{end_pfn:#x}")
        pb = self.pageblock_nr_pages
        pfn = start_pfn
        while pfn < end_pfn:
            page = next((p for p in range(pfn, pfn + pb) if self._online_page(p)), None)
            if page is not None and self._mt(page) != MIGRATE_ISOLATE:
                return False
            pfn += pb
        if not any(self._online_page(p) for p in range(start_pfn, end_pfn)):
            return False
        pfn = start_pfn
        while pfn < end_pfn:
            a = self._arr(pfn)
            if a is None:
                return False
            i = pfn & self._mask
            pt, fl = int(a["page_type"][i]), int(a["flags"][i])
            if (pt & _BUDDY_MASK) == PAGE_TYPE_BASE:
                pfn += 1 << int(a["private"][i])
            elif fl >> PG_hwpoison & 1:
                pfn += 1
            elif (pt & _OFFLINE_MASK) == PAGE_TYPE_BASE and not int(a["_refcount"][i]):
                pfn += 1
            else:
                return False
        return True

    def offline_isolated_pages(self, start_pfn, end_pfn):
        """mm/page_alloc.c:__offline_isolated_pages (6.1) without offline_mem_sections (the
        memmap's): take every free block in [start, end) off its free list, skipping HWPoison and
        PageOffline pages. NR_FREE_PAGES is untouched. Returns the pages taken off."""
        if start_pfn < 0 or end_pfn <= start_pfn:
            raise _err(errno.EINVAL, f"bad pfn range {start_pfn:#x}-{end_pfn:#x}")
        todo = []
        pfn = start_pfn
        while pfn < end_pfn:
            a = self._arr(pfn)
            if a is None:
                raise _err(errno.EINVAL, f"pfn {pfn:#x} has no struct page")
            i = pfn & self._mask
            pt, fl = int(a["page_type"][i]), int(a["flags"][i])
            buddy = (pt & _BUDDY_MASK) == PAGE_TYPE_BASE
            if not buddy and fl >> PG_hwpoison & 1:
                pfn += 1
                continue
            if (pt & _OFFLINE_MASK) == PAGE_TYPE_BASE:
                if int(a["_refcount"][i]):
                    raise _err(errno.EBUSY, f"PageOffline pfn {pfn:#x} has references")
                pfn += 1
                continue
            key = self._freeh.get(pfn)
            if not buddy or key is None or int(a["_refcount"][i]):
                raise _err(errno.EBUSY, f"pfn {pfn:#x} is not free in the buddy allocator")
            order = int(a["private"][i])
            todo.append((pfn, order, key >> 7))
            pfn += 1 << order
        removed = 0
        for pfn, order, zoneid in todo:
            self._del_page_from_free_list(self._zones[zoneid], pfn, order)
            removed += 1 << order
        self.ms.fold_range(start_pfn, end_pfn - start_pfn)
        return removed

    def take_page_off_buddy(self, pfn):
        """mm/page_alloc.c:take_page_off_buddy (6.1): take one free page out of the buddy block
        holding it (break_down_buddy_pages puts the other halves back) and hand it out as an
        order-0 allocation (refcount 1), without the HWPoison marking. False if it is not free
        in the buddy. A pfn outside int64 has no struct page (EINVAL, as in the compiled core)."""
        pfn = core_int(pfn, "take_page_off_buddy pfn")
        if pfn < 0 or pfn > INT64_MAX or self._arr(pfn) is None:
            raise _err(errno.EINVAL, f"pfn {pfn:#x} has no struct page")
        for order in range(self.max_order):
            head = pfn & ~((1 << order) - 1)
            if self._arr(head) is None or not self._page_buddy(head):
                continue
            page_order = self._pfield(head, "private")
            if page_order < order or head not in self._freeh:
                continue
            z = self._zone(self._freeh[head] >> 7)
            mt = self._freeh[head] & 7
            self._del_page_from_free_list(z, head, page_order)
            # break_down_buddy_pages(zone, head, page, 0, page_order, mt)
            high, start = page_order, head
            while high > 0:
                high -= 1
                size = 1 << high
                if pfn >= start + size:
                    free_half, start = start, start + size
                else:
                    free_half = start + size
                self._add_to_free_list(z, free_half, high, mt)
                self._set_buddy_order(free_half, high)
            if mt != MIGRATE_ISOLATE:
                z.nr_free_pages -= 1
            self._pset(pfn, "_refcount", 1)
            self._pset(pfn, "private", 0)
            self._alloc[pfn] = 0
            return True
        return False

    # -- test helper -----------------------------------------------------------------------------
    def fragment(self, zoneid, order, cpu):
        """Hold pages so that no free buddy block of order >= ``order`` remains in the zone
        (outside MIGRATE_ISOLATE lists): drain the zone's pcp lists, allocate every free block
        at order o = max(order - 1, 0), then free each piece whose pfn has bit o set (its buddy
        stays held, so nothing merges back to ``order``). Returns the held pfns (order o)."""
        self._zone(zoneid)
        self._check_order(order)
        self._check_cpu(cpu)
        self.drain_zone_pages(zoneid)
        o = max(order - 1, 0)
        held = []
        while True:
            pfn = self.alloc_pages(zoneid, o, MIGRATE_MOVABLE, cpu)
            if pfn < 0:
                break
            held.append(pfn)
        if order > 0:
            keep = []
            for pfn in held:
                if pfn & (1 << o):
                    self.free_pages(pfn, o, cpu)
                else:
                    keep.append(pfn)
            held = keep
        return sorted(held)
