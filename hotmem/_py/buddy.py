"""Pure-Python twin of hotmem/_cy/buddy.pxi: the page allocator of Linux 6.1 (mm/page_alloc.c).

One ``PageAllocator`` holds, for every zone (keyed by zoneid = nid << zones_width | zone_idx, as
page_zone_id), the buddy free areas (``free_area[order].free_list[migratetype]``), NR_FREE_PAGES,
managed_pages, nr_isolate_pageblock and the per-CPU pagesets. Buddy state lives in the struct
pages of a ``MemSections`` (PageBuddy in page_type, the order in page->private), exactly where
the kernel keeps it; pageblock migratetypes live in its usemaps.

Modelled as 6.1 (Debian config: THP, MEMORY_ISOLATION, no CMA, no DEBUG_VM, no
DEBUG_PAGEALLOC, no shuffling, no page reporting): __free_one_page with the isolate-pageblock
merge restriction, expand, __rmqueue_smallest, __rmqueue_fallback with fallbacks[],
can_steal_fallback, steal_suitable_fallback, move_freepages_block, change_pageblock_range;
rmqueue / rmqueue_pcplist / rmqueue_bulk; free_unref_page / free_unref_page_commit /
nr_pcp_high / nr_pcp_free / free_pcppages_bulk; drain_pages_zone; zone_pcp_disable/enable;
set/unset_migratetype_isolate, __offline_isolated_pages, test_pages_isolated.

Deliberate deviation: where the kernel takes the head of a free list (get_page_from_free_area),
whose order depends on the history of list_add/list_add_tail, the model takes the **lowest pfn**
on that list. Consequently FPI_TO_TAIL, buddy_merge_likely and move-to-tail only decide list
position in the kernel and change nothing here. Per-CPU lists are modelled in exact kernel order
(head insertion on free, tail insertion on refill, head removal on allocation, tail removal on
drain), so that part has no deviation.

Not modelled: highatomic reserves and ALLOC_HIGHATOMIC/ALLOC_OOM, CMA, watermark boosting
(boost_watermark in steal_suitable_fallback), ZONE_RECLAIM_ACTIVE in nr_pcp_high,
page_group_by_mobility_disabled, compaction capture, compound pages, split_free_page, bad-page
reporting (a free that the kernel would report as a bad page is refused with EINVAL instead),
__PageMovable (only PG_lru counts as movable in move_freepages). zone_spans_pfn in
move_freepages_block is approximated by "the page has a struct page in this zone".

Free lists are min-heaps of pfns with lazy deletion: a heap entry is live only while the
membership map ``pfn -> (zoneid, order, migratetype)`` still says the pfn heads a free block on
exactly that list, so stale and duplicate entries are harmless and are dropped on the way.
"""
import errno
import heapq
from collections import deque

import numpy as np

from hotmem.defs import (  # noqa: F401  (re-exported: see __all__)
    ALLOC_NOFRAGMENT, BOOT_PAGESET_BATCH, BOOT_PAGESET_HIGH, FALLBACKS, FPI_NONE, FPI_TO_TAIL,
    MAX_ZONEID, MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_PCPTYPES,
    MIGRATE_RECLAIMABLE, MIGRATE_TYPES, MIGRATE_UNMOVABLE, NR_LOWORDER_PCP_LISTS, NR_PCP_LISTS,
    NR_PCP_THP, PAGE_ALLOC_COSTLY_ORDER, PAGE_FLAGS_CHECK_AT_FREE, PAGE_FLAGS_CHECK_AT_PREP,
    PAGE_MAPCOUNT_RESET, PAGE_TYPE_BASE, PCP_BATCH_SCALE_MAX, PG_buddy, PG_hwpoison, PG_lru,
    PG_offline, PG_reserved,
)
from hotmem.errors import HotplugError
from hotmem._py.scan import _pageblock_has_unmovable

__all__ = [
    "PageAllocator",
    "PAGE_ALLOC_COSTLY_ORDER", "NR_LOWORDER_PCP_LISTS", "NR_PCP_THP", "NR_PCP_LISTS",
    "PCP_BATCH_SCALE_MAX", "ALLOC_NOFRAGMENT", "FPI_NONE", "FPI_TO_TAIL", "FALLBACKS",
    "PAGE_FLAGS_CHECK_AT_FREE", "PAGE_FLAGS_CHECK_AT_PREP",
]

_BUDDY_MASK = PAGE_TYPE_BASE | PG_buddy
_KEEP_AT_PREP = np.uint64(~PAGE_FLAGS_CHECK_AT_PREP & 0xFFFFFFFFFFFFFFFF)
_NOT_RESERVED = np.uint64(~(1 << PG_reserved) & 0xFFFFFFFFFFFFFFFF)
_OFFLINE_MASK = PAGE_TYPE_BASE | PG_offline


def _err(code, msg):
    return HotplugError(code, msg)


class _PCP:
    """struct per_cpu_pages (6.1); ``saved_*`` is zone->pageset_high/batch for zone_pcp_enable."""
    __slots__ = ("count", "high", "batch", "free_factor", "saved_high", "saved_batch", "lists")

    def __init__(self):
        self.count = 0
        self.high = BOOT_PAGESET_HIGH
        self.batch = BOOT_PAGESET_BATCH
        self.free_factor = 0
        self.saved_high = BOOT_PAGESET_HIGH
        self.saved_batch = BOOT_PAGESET_BATCH
        # list head = left end; entries are (pfn, pcppage migratetype = page->index)
        self.lists = [deque() for _ in range(NR_PCP_LISTS)]


class _Zone:
    """The page-allocator part of struct zone."""
    __slots__ = ("zoneid", "nr_free_pages", "managed", "nr_isolate_pageblock", "nr_free_mt",
                 "heaps", "pcp", "pcp_disabled")

    def __init__(self, zoneid, max_order, nr_cpus):
        self.zoneid = zoneid
        self.nr_free_pages = 0
        self.managed = 0
        self.nr_isolate_pageblock = 0
        self.nr_free_mt = [[0] * MIGRATE_TYPES for _ in range(max_order)]
        self.heaps = [[[] for _ in range(MIGRATE_TYPES)] for _ in range(max_order)]
        self.pcp = [_PCP() for _ in range(nr_cpus)]
        self.pcp_disabled = False


class PageAllocator:
    """The 6.1 page allocator over the struct pages of ``ms`` (see the module docstring).

    ``max_order`` is 6.1's MAX_ORDER (11 on x86_64: orders 0..10).
    """

    def __init__(self, ms, max_order, pageblock_order, nr_cpus):
        if not 1 <= max_order <= 16:
            raise _err(errno.EINVAL, f"max_order {max_order} out of range 1..16")
        if pageblock_order != ms.pageblock_order or not 0 <= pageblock_order < max_order:
            raise _err(errno.EINVAL, f"pageblock_order {pageblock_order}: must equal the "
                                     f"memmap's ({ms.pageblock_order}) and be < max_order")
        if max_order - 1 > ms.chunk_shift:
            raise _err(errno.EINVAL, f"max_order {max_order}: a buddy block must fit a "
                                     f"struct page chunk (2^{ms.chunk_shift} pages)")
        if nr_cpus < 1:
            raise _err(errno.EINVAL, f"nr_cpus {nr_cpus} < 1")
        self.ms = ms
        self.max_order = int(max_order)
        self.pageblock_order = int(pageblock_order)
        self.pageblock_nr_pages = 1 << self.pageblock_order
        self.nr_cpus = int(nr_cpus)
        self._shift = ms.pfn_section_shift
        self._mask = ms.chunk_pages - 1      # index into the arrays _arr / _arr_w return
        self._zshift = ms.zones_pgshift
        self._zones = {}
        self._freeh = {}      # free block head pfn -> (zoneid << 7) | (order << 3) | mt
        self._alloc = {}      # pfn -> order, handed out by alloc_pages

    # -- struct page helpers ---------------------------------------------------------------------
    def _arr(self, pfn):
        """The struct pages of pfn's chunk, for reading (index: pfn & self._mask)."""
        return self.ms._chunk(pfn)

    def _arr_w(self, pfn):
        """The struct pages of pfn's chunk, for writing (copied from a shared pattern)."""
        return self.ms._chunk_w(pfn)

    def _pfield(self, pfn, field):
        return int(self._arr(pfn)[field][pfn & self._mask])

    def _pset(self, pfn, field, value):
        self._arr_w(pfn)[field][pfn & self._mask] = value

    def _page_buddy(self, pfn):
        """PageBuddy (include/linux/page-flags.h, 6.1 page_type encoding)."""
        return (self._pfield(pfn, "page_type") & _BUDDY_MASK) == PAGE_TYPE_BASE

    def _zoneid_of(self, pfn):
        return self._pfield(pfn, "flags") >> self._zshift

    def _set_buddy_order(self, pfn, order):
        """mm/page_alloc.c:set_buddy_order: page->private = order, __SetPageBuddy."""
        a, i = self._arr_w(pfn), pfn & self._mask
        a["private"][i] = order
        a["page_type"][i] = int(a["page_type"][i]) & ~PG_buddy

    def _mt(self, pfn):
        return self.ms.get_pageblock_migratetype(pfn)

    def _zone_spans(self, z, pfn):
        """Stand-in for zone_spans_pfn: the pfn has a struct page linked to this zone."""
        a = self._arr(pfn)
        return a is not None and (int(a["flags"][pfn & self._mask]) >> self._zshift) == z.zoneid

    def _key(self, z, order, mt):
        return (z.zoneid << 7) | (order << 3) | mt

    # -- free lists ------------------------------------------------------------------------------
    def _push(self, z, pfn, order, mt):
        h = z.heaps[order][mt]
        heapq.heappush(h, pfn)
        if len(h) > 2 * z.nr_free_mt[order][mt] + 64:
            key = self._key(z, order, mt)
            live = sorted({p for p in h if self._freeh.get(p) == key})
            h[:] = live

    def _add_to_free_list(self, z, pfn, order, mt):
        """mm/page_alloc.c:add_to_free_list / add_to_free_list_tail (position not modelled)."""
        self._freeh[pfn] = self._key(z, order, mt)
        z.nr_free_mt[order][mt] += 1
        self._push(z, pfn, order, mt)

    def _move_to_free_list(self, z, pfn, order, mt):
        """mm/page_alloc.c:move_to_free_list."""
        old = self._freeh[pfn] & 7
        z.nr_free_mt[order][old] -= 1
        self._freeh[pfn] = self._key(z, order, mt)
        z.nr_free_mt[order][mt] += 1
        self._push(z, pfn, order, mt)

    def _del_page_from_free_list(self, z, pfn, order):
        """mm/page_alloc.c:del_page_from_free_list: off the list, __ClearPageBuddy, private 0."""
        old = self._freeh.pop(pfn) & 7
        z.nr_free_mt[order][old] -= 1
        a, i = self._arr_w(pfn), pfn & self._mask
        a["page_type"][i] = int(a["page_type"][i]) | PG_buddy
        a["private"][i] = 0

    def _get_page_from_free_area(self, z, order, mt):
        """mm/page_alloc.c:get_page_from_free_area, lowest pfn instead of the list head."""
        h = z.heaps[order][mt]
        if not z.nr_free_mt[order][mt]:
            h.clear()
            return -1
        key = self._key(z, order, mt)
        while h:
            if self._freeh.get(h[0]) == key:
                return h[0]
            heapq.heappop(h)
        return -1

    def _page_is_buddy(self, z, buddy_pfn, order):
        """mm/internal.h:page_is_buddy (6.1): PageBuddy, same order, same zone id."""
        a = self._arr(buddy_pfn)
        if a is None:
            return False
        i = buddy_pfn & self._mask
        if (int(a["page_type"][i]) & _BUDDY_MASK) != PAGE_TYPE_BASE:
            return False
        if int(a["private"][i]) != order:
            return False
        if (int(a["flags"][i]) >> self._zshift) != z.zoneid:
            return False
        return (self._freeh.get(buddy_pfn, -1) >> 7) == z.zoneid

    # -- freeing into the buddy ------------------------------------------------------------------
    def _free_one_page_locked(self, z, pfn, order, mt, fpi):
        """mm/page_alloc.c:__free_one_page (6.1)."""
        if mt != MIGRATE_ISOLATE:
            z.nr_free_pages += 1 << order          # __mod_zone_freepage_state
        while order < self.max_order - 1:
            buddy_pfn = pfn ^ (1 << order)
            if not self._page_is_buddy(z, buddy_pfn, order):
                break
            if order >= self.pageblock_order:
                # no merging between isolated and normal pageblocks
                buddy_mt = self._mt(buddy_pfn)
                if mt != buddy_mt and (mt >= MIGRATE_PCPTYPES or buddy_mt >= MIGRATE_PCPTYPES):
                    break
            self._del_page_from_free_list(z, buddy_pfn, order)
            pfn &= buddy_pfn
            order += 1
        self._set_buddy_order(pfn, order)
        self._add_to_free_list(z, pfn, order, mt)

    def _free_pages_prepare(self, pfn, order):
        """mm/page_alloc.c:free_pages_prepare: clear PAGE_FLAGS_CHECK_AT_PREP on every page."""
        a, i = self._arr_w(pfn), pfn & self._mask
        a["flags"][i:i + (1 << order)] &= _KEEP_AT_PREP

    def _free_one_page(self, z, pfn, order, mt, fpi):
        """mm/page_alloc.c:free_one_page."""
        if z.nr_isolate_pageblock or mt == MIGRATE_ISOLATE:
            mt = self._mt(pfn)
        self._free_one_page_locked(z, pfn, order, mt, fpi)

    def _free_pages_ok(self, z, pfn, order, fpi):
        """mm/page_alloc.c:__free_pages_ok."""
        self._free_pages_prepare(pfn, order)
        mt = self._mt(pfn)
        self._free_one_page(z, pfn, order, mt, fpi)

    # -- per-CPU pagesets ------------------------------------------------------------------------
    def order_to_pindex(self, migratetype, order):
        """mm/page_alloc.c:order_to_pindex (6.1, THP)."""
        if order > PAGE_ALLOC_COSTLY_ORDER:
            return NR_LOWORDER_PCP_LISTS + (migratetype == MIGRATE_MOVABLE)
        return MIGRATE_PCPTYPES * order + migratetype

    def pindex_to_order(self, pindex):
        """mm/page_alloc.c:pindex_to_order (6.1, THP)."""
        if pindex >= NR_LOWORDER_PCP_LISTS:
            return self.pageblock_order
        return pindex // MIGRATE_PCPTYPES

    def pcp_allowed_order(self, order):
        """mm/page_alloc.c:pcp_allowed_order (6.1, THP)."""
        return order <= PAGE_ALLOC_COSTLY_ORDER or order == self.pageblock_order

    def _free_pcppages_bulk(self, z, count, pcp, pindex):
        """mm/page_alloc.c:free_pcppages_bulk (6.1): round-robin over the lists starting after
        ``pindex - 1``, each chosen list emptied from its tail until ``count`` is used up."""
        min_pindex, max_pindex = 0, NR_PCP_LISTS - 1
        count = min(pcp.count, count)
        pindex -= 1
        isolated_pageblocks = z.nr_isolate_pageblock != 0
        while count > 0:
            while True:
                pindex += 1
                if pindex > max_pindex:
                    pindex = min_pindex
                lst = pcp.lists[pindex]
                if lst:
                    break
                if pindex == max_pindex:
                    max_pindex -= 1
                if pindex == min_pindex:
                    min_pindex += 1
            order = self.pindex_to_order(pindex)
            nr_pages = 1 << order
            while True:
                pfn, mt = lst.pop()
                count -= nr_pages
                pcp.count -= nr_pages
                if isolated_pageblocks:
                    mt = self._mt(pfn)
                self._free_one_page_locked(z, pfn, order, mt, FPI_NONE)
                if not (count > 0 and lst):
                    break

    def _nr_pcp_free(self, pcp, high, batch, free_high):
        """mm/page_alloc.c:nr_pcp_free (6.1.y with CONFIG_PCP_BATCH_SCALE_MAX)."""
        if free_high:
            return pcp.count
        if high < batch:
            return 1
        min_nr_free = batch
        max_nr_free = high - batch
        batch <<= pcp.free_factor
        if batch < max_nr_free and pcp.free_factor < PCP_BATCH_SCALE_MAX:
            pcp.free_factor += 1
        return min(max(batch, min_nr_free), max_nr_free)

    def _nr_pcp_high(self, pcp, free_high):
        """mm/page_alloc.c:nr_pcp_high (ZONE_RECLAIM_ACTIVE not modelled)."""
        if not pcp.high or free_high:
            return 0
        return pcp.high

    def _free_unref_page_commit(self, z, pcp, pfn, migratetype, order, page_mt):
        """mm/page_alloc.c:free_unref_page_commit (6.1)."""
        pindex = self.order_to_pindex(migratetype, order)
        pcp.lists[pindex].appendleft((pfn, page_mt))
        pcp.count += 1 << order
        free_high = bool(pcp.free_factor and order and order <= PAGE_ALLOC_COSTLY_ORDER)
        high = self._nr_pcp_high(pcp, free_high)
        if pcp.count >= high:
            self._free_pcppages_bulk(z, self._nr_pcp_free(pcp, high, pcp.batch, free_high),
                                     pcp, pindex)

    def _free_unref_page(self, z, pfn, order, cpu):
        """mm/page_alloc.c:free_unref_page (6.1): isolated pageblocks bypass the pcp lists."""
        self._free_pages_prepare(pfn, order)
        migratetype = pcpmigratetype = self._mt(pfn)
        if migratetype >= MIGRATE_PCPTYPES:
            if migratetype == MIGRATE_ISOLATE:
                self._free_one_page(z, pfn, order, migratetype, FPI_NONE)
                return
            pcpmigratetype = MIGRATE_MOVABLE
        self._free_unref_page_commit(z, z.pcp[cpu], pfn, pcpmigratetype, order, migratetype)

    def _free_the_page(self, z, pfn, order, cpu):
        """mm/page_alloc.c:free_the_page."""
        if self.pcp_allowed_order(order):
            self._free_unref_page(z, pfn, order, cpu)
        else:
            self._free_pages_ok(z, pfn, order, FPI_NONE)

    def _drain_pages_zone(self, cpu, z):
        """mm/page_alloc.c:drain_pages_zone (6.1.y): chunks of batch << PCP_BATCH_SCALE_MAX."""
        pcp = z.pcp[cpu]
        while True:
            count = pcp.count
            if count:
                to_drain = min(count, pcp.batch << PCP_BATCH_SCALE_MAX)
                self._free_pcppages_bulk(z, to_drain, pcp, 0)
                count -= to_drain
            if not count:
                break

    # -- allocation ------------------------------------------------------------------------------
    def _expand(self, z, pfn, low, high, mt):
        """mm/page_alloc.c:expand."""
        size = 1 << high
        while high > low:
            high -= 1
            size >>= 1
            self._add_to_free_list(z, pfn + size, high, mt)
            self._set_buddy_order(pfn + size, high)

    def _rmqueue_smallest(self, z, order, mt):
        """mm/page_alloc.c:__rmqueue_smallest."""
        for current_order in range(order, self.max_order):
            pfn = self._get_page_from_free_area(z, current_order, mt)
            if pfn < 0:
                continue
            self._del_page_from_free_list(z, pfn, current_order)
            self._expand(z, pfn, order, current_order, mt)
            return pfn
        return -1

    def _can_steal_fallback(self, order, start_mt):
        """mm/page_alloc.c:can_steal_fallback (page_group_by_mobility_disabled = false)."""
        if order >= self.pageblock_order:
            return True
        return (order >= self.pageblock_order // 2 or start_mt == MIGRATE_RECLAIMABLE
                or start_mt == MIGRATE_UNMOVABLE)

    def _find_suitable_fallback(self, z, order, migratetype):
        """mm/page_alloc.c:find_suitable_fallback with only_stealable = false."""
        counts = z.nr_free_mt[order]
        if not sum(counts):
            return -1, False
        for fallback_mt in FALLBACKS[migratetype]:
            if not counts[fallback_mt]:
                continue
            return fallback_mt, self._can_steal_fallback(order, migratetype)
        return -1, False

    def _move_freepages(self, z, start_pfn, end_pfn, mt, count_movable):
        """mm/page_alloc.c:move_freepages: every free block headed in [start, end] goes to the
        ``mt`` list; returns (pages moved, non-free pages with PG_lru)."""
        pages_moved = movable = 0
        a = self._arr(start_pfn)
        base = start_pfn & ~self._mask
        lo = start_pfn - base
        hi = end_pfn - base + 1
        pt = a["page_type"]
        flags = a["flags"]
        priv = a["private"]
        lru = 1 << PG_lru
        pos = lo
        for j in range(lo, hi):
            if j < pos:
                continue
            if (int(pt[j]) & _BUDDY_MASK) != PAGE_TYPE_BASE or \
                    (self._freeh.get(base + j, -1) >> 7) != z.zoneid:
                if count_movable and int(flags[j]) & lru:
                    movable += 1
                pos = j + 1
                continue
            order = int(priv[j])
            self._move_to_free_list(z, base + j, order, mt)
            pos = j + (1 << order)
            pages_moved += 1 << order
        return pages_moved, movable

    def _move_freepages_block(self, z, pfn, mt, count_movable=False):
        """mm/page_alloc.c:move_freepages_block."""
        start_pfn = pfn & ~(self.pageblock_nr_pages - 1)
        end_pfn = start_pfn + self.pageblock_nr_pages - 1
        if not self._zone_spans(z, start_pfn):
            start_pfn = pfn
        if not self._zone_spans(z, end_pfn):
            return 0, 0
        return self._move_freepages(z, start_pfn, end_pfn, mt, count_movable)

    def _change_pageblock_range(self, pfn, start_order, mt):
        """mm/page_alloc.c:change_pageblock_range."""
        for k in range(1 << (start_order - self.pageblock_order)):
            self.ms.set_pageblock_migratetype(pfn + k * self.pageblock_nr_pages, mt)

    def _steal_suitable_fallback(self, z, pfn, alloc_flags, start_type, whole_block):
        """mm/page_alloc.c:steal_suitable_fallback (6.1, watermark boosting not modelled)."""
        current_order = self._pfield(pfn, "private")
        old_block_type = self._mt(pfn)
        if old_block_type != MIGRATE_HIGHATOMIC:
            if current_order >= self.pageblock_order:
                self._change_pageblock_range(pfn, current_order, start_type)
            elif whole_block:
                free_pages, movable_pages = self._move_freepages_block(z, pfn, start_type, True)
                if start_type == MIGRATE_MOVABLE:
                    alike_pages = movable_pages
                elif old_block_type == MIGRATE_MOVABLE:
                    alike_pages = self.pageblock_nr_pages - (free_pages + movable_pages)
                else:
                    alike_pages = 0
                if free_pages:
                    if free_pages + alike_pages >= (1 << (self.pageblock_order - 1)):
                        self.ms.set_pageblock_migratetype(pfn, start_type)
                    return
        self._move_to_free_list(z, pfn, current_order, start_type)

    def _rmqueue_fallback(self, z, order, start_migratetype, alloc_flags):
        """mm/page_alloc.c:__rmqueue_fallback (6.1): largest fallback block first, except for
        movable requests that may not steal the whole block (then the smallest)."""
        min_order = order
        if order < self.pageblock_order and alloc_flags & ALLOC_NOFRAGMENT:
            min_order = self.pageblock_order
        current_order = self.max_order - 1
        while current_order >= min_order:
            fallback_mt, can_steal = self._find_suitable_fallback(z, current_order,
                                                                  start_migratetype)
            if fallback_mt != -1:
                break
            current_order -= 1
        else:
            return False
        if not can_steal and start_migratetype == MIGRATE_MOVABLE and current_order > order:
            for current_order in range(order, self.max_order):
                fallback_mt, can_steal = self._find_suitable_fallback(z, current_order,
                                                                      start_migratetype)
                if fallback_mt != -1:
                    break
        pfn = self._get_page_from_free_area(z, current_order, fallback_mt)
        self._steal_suitable_fallback(z, pfn, alloc_flags, start_migratetype, can_steal)
        return True

    def _rmqueue(self, z, order, migratetype, alloc_flags):
        """mm/page_alloc.c:__rmqueue (no CMA)."""
        while True:
            pfn = self._rmqueue_smallest(z, order, migratetype)
            if pfn >= 0:
                return pfn
            if not self._rmqueue_fallback(z, order, migratetype, alloc_flags):
                return -1

    def _rmqueue_bulk(self, z, order, count, lst, migratetype, alloc_flags):
        """mm/page_alloc.c:rmqueue_bulk: blocks go to the list tail in the order obtained."""
        i = 0
        while i < count:
            pfn = self._rmqueue(z, order, migratetype, alloc_flags)
            if pfn < 0:
                break
            lst.append((pfn, migratetype))
            i += 1
        z.nr_free_pages -= i << order
        return i

    def _rmqueue_pcplist(self, z, order, migratetype, alloc_flags, cpu):
        """mm/page_alloc.c:rmqueue_pcplist + __rmqueue_pcplist (6.1)."""
        pcp = z.pcp[cpu]
        pcp.free_factor >>= 1
        lst = pcp.lists[self.order_to_pindex(migratetype, order)]
        if not lst:
            batch = pcp.batch
            if batch > 1:
                batch = max(batch >> order, 2)
            alloced = self._rmqueue_bulk(z, order, batch, lst, migratetype, alloc_flags)
            pcp.count += alloced << order
            if not lst:
                return -1
        pfn, _ = lst.popleft()
        pcp.count -= 1 << order
        return pfn

    def _rmqueue_top(self, z, order, migratetype, alloc_flags, cpu):
        """mm/page_alloc.c:rmqueue (6.1): pcp for allowed orders, else rmqueue_buddy."""
        if self.pcp_allowed_order(order):
            pfn = self._rmqueue_pcplist(z, order, migratetype, alloc_flags, cpu)
            if pfn >= 0:
                return pfn
        pfn = self._rmqueue(z, order, migratetype, alloc_flags)
        if pfn >= 0:
            z.nr_free_pages -= 1 << order
        return pfn

    # -- argument checks -------------------------------------------------------------------------
    def _zone(self, zoneid, create=False):
        z = self._zones.get(zoneid)
        if z is None:
            if not create:
                raise _err(errno.EINVAL, f"unknown zone {zoneid}")
            if not 0 <= zoneid < MAX_ZONEID:
                raise _err(errno.EINVAL, f"zoneid {zoneid} out of range")
            z = self._zones[zoneid] = _Zone(zoneid, self.max_order, self.nr_cpus)
        return z

    def _check_order(self, order):
        if not 0 <= order < self.max_order:
            raise _err(errno.EINVAL, f"order {order} out of range 0..{self.max_order - 1}")

    def _check_cpu(self, cpu):
        if not 0 <= cpu < self.nr_cpus:
            raise _err(errno.EINVAL, f"cpu {cpu} out of range 0..{self.nr_cpus - 1}")

    def _check_block(self, pfn, order):
        self._check_order(order)
        if pfn < 0 or pfn & ((1 << order) - 1):
            raise _err(errno.EINVAL, f"pfn {pfn:#x} not aligned to order {order}")
        if self._arr(pfn) is None:
            raise _err(errno.EINVAL, f"pfn {pfn:#x} has no struct page")
        if self.ms.get_pageblock_migratetype(pfn) < 0:  # raises without a usemap
            raise _err(errno.EINVAL, f"pfn {pfn:#x} has no pageblock flags")

    def _check_pageblock(self, pfn):
        if pfn < 0 or self._arr(pfn) is None:
            raise _err(errno.EINVAL, f"pfn {pfn:#x} has no struct page")
        self.ms.get_pageblock_migratetype(pfn)  # raises without a usemap

    # -- entry points ----------------------------------------------------------------------------
    def alloc_pages(self, zoneid, order, migratetype, cpu, alloc_flags=0):
        """mm/page_alloc.c:rmqueue for one zone + post_alloc_hook (refcount 1, private 0).
        Returns the pfn, or -1 when the zone has no suitable free block. Only ALLOC_NOFRAGMENT
        of the kernel's alloc_flags has an effect here."""
        z = self._zone(zoneid)
        self._check_order(order)
        self._check_cpu(cpu)
        if not 0 <= migratetype < MIGRATE_PCPTYPES:
            raise _err(errno.EINVAL, f"migratetype {migratetype} is not allocatable")
        if alloc_flags & ~ALLOC_NOFRAGMENT:
            raise _err(errno.EINVAL, f"alloc_flags {alloc_flags:#x} not supported")
        pfn = self._rmqueue_top(z, order, migratetype, alloc_flags, cpu)
        if pfn >= 0:
            a, i = self._arr_w(pfn), pfn & self._mask
            a["private"][i] = 0
            a["_refcount"][i] = 1
            self._alloc[pfn] = order
        return pfn

    def _check_free_state(self, pfn, order, head_ref):
        a, i = self._arr(pfn), pfn & self._mask
        seg = a[i:i + (1 << order)]
        ref = np.zeros(len(seg), np.int32)
        ref[0] = head_ref
        bad = ((seg["page_type"] != PAGE_MAPCOUNT_RESET) | (seg["_refcount"] != ref)
               | ((seg["flags"] & np.uint64(PAGE_FLAGS_CHECK_AT_FREE)) != 0))
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise _err(errno.EINVAL, f"bad page state at pfn {pfn + j:#x}: flags "
                                     f"{int(seg['flags'][j]):#x} refcount "
                                     f"{int(seg['_refcount'][j])} page_type "
                                     f"{int(seg['page_type'][j]):#x}")

    def take_page_off_buddy(self, pfn):
        """mm/page_alloc.c:take_page_off_buddy (6.1): take one free page out of the buddy block
        holding it (break_down_buddy_pages puts the other halves back) and hand it out as an
        order-0 allocation (refcount 1), without the HWPoison marking. False if it is not free
        in the buddy."""
        if self._arr(pfn) is None:
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

    def free_pages(self, pfn, order, cpu):
        """mm/page_alloc.c:__free_pages (6.1): put_page_testzero drops the last reference, then
        free_the_page: pcp lists for pcp_allowed_order, else __free_pages_ok."""
        self._check_block(pfn, order)
        self._check_cpu(cpu)
        got = self._alloc.get(pfn)
        if got is None:
            what = "double free" if pfn in self._freeh else "never allocated"
            raise _err(errno.EINVAL, f"free of pfn {pfn:#x}: {what}")
        if got != order:
            raise _err(errno.EINVAL, f"free of pfn {pfn:#x} at order {order}, "
                                     f"allocated at order {got}")
        self._check_free_state(pfn, order, 1)
        z = self._zone(self._zoneid_of(pfn))
        del self._alloc[pfn]
        self._pset(pfn, "_refcount", 0)
        self._free_the_page(z, pfn, order, cpu)

    def free_pages_core(self, pfn, order):
        """mm/page_alloc.c:__free_pages_core (6.1): clear PG_reserved and the refcount of every
        page, managed_pages += 2^order, __free_pages_ok(FPI_TO_TAIL) bypassing the pcp lists."""
        self._check_free_pages_core(pfn, order)
        self._free_pages_core(pfn, order)

    def _check_free_pages_core(self, pfn, order):
        """free_pages_core's refusals: an aligned block of reserved pages of one zone."""
        self._check_block(pfn, order)
        n = 1 << order
        a, i = self._arr(pfn), pfn & self._mask
        seg = a[i:i + n]
        zoneid = int(seg["flags"][0]) >> self._zshift
        if ((seg["flags"] >> np.uint64(self._zshift)) != zoneid).any():
            raise _err(errno.EINVAL, f"pfn range {pfn:#x}+{n} spans zones")
        bad = (((seg["flags"] >> np.uint64(PG_reserved)) & np.uint64(1)) == 0) | \
            (seg["page_type"] != PAGE_MAPCOUNT_RESET)
        if bad.any():
            raise _err(errno.EINVAL, f"pfn {pfn + int(np.flatnonzero(bad)[0]):#x} is not a "
                                     "reserved page")
        self._zone(zoneid, create=True)

    def _free_pages_core(self, pfn, order):
        """free_pages_core's work on a checked block."""
        n = 1 << order
        a, i = self._arr_w(pfn), pfn & self._mask
        seg = a[i:i + n]
        z = self._zone(int(seg["flags"][0]) >> self._zshift)
        seg["flags"] &= _NOT_RESERVED
        seg["_refcount"] = 0
        z.managed += n
        self._free_pages_ok(z, pfn, order, FPI_TO_TAIL)
        self.ms.fold_range(pfn, n)          # a whole chunk of free blocks: a pattern again

    def free_reserved_page(self, pfn, cpu):
        """include/linux/mm.h:free_reserved_page (6.1): ClearPageReserved, init_page_count,
        __free_page (through the pcp lists), adjust_managed_page_count(+1)."""
        self._check_block(pfn, 0)
        self._check_cpu(cpu)
        a, i = self._arr(pfn), pfn & self._mask
        if not int(a["flags"][i]) >> PG_reserved & 1 or pfn in self._alloc or \
                int(a["page_type"][i]) != PAGE_MAPCOUNT_RESET:
            raise _err(errno.EINVAL, f"pfn {pfn:#x} is not a reserved page")
        z = self._zone(int(a["flags"][i]) >> self._zshift, create=True)
        a = self._arr_w(pfn)
        a["flags"][i] = int(a["flags"][i]) & ~(1 << PG_reserved)
        a["_refcount"][i] = 0
        self._free_the_page(z, pfn, 0, cpu)
        z.managed += 1

    def adjust_managed_page_count(self, zoneid, count):
        """mm/page_alloc.c:adjust_managed_page_count (zone part; totalram is the caller's)."""
        z = self._zone(zoneid, create=True)
        if z.managed + count < 0:
            raise _err(errno.EINVAL, f"zone {zoneid}: managed {z.managed} + {count} < 0")
        z.managed += count

    def adjust_nr_isolate_pageblock(self, zoneid, count):
        """zone->nr_isolate_pageblock += count, as online_pages/offline_pages do directly."""
        z = self._zone(zoneid, create=True)
        if z.nr_isolate_pageblock + count < 0:
            raise _err(errno.EINVAL, f"zone {zoneid}: nr_isolate_pageblock "
                                     f"{z.nr_isolate_pageblock} + {count} < 0")
        z.nr_isolate_pageblock += count

    # -- pcp control -----------------------------------------------------------------------------
    def set_pcp(self, zoneid, cpu, high, batch):
        """mm/page_alloc.c:pageset_update for one CPU (zone_set_pageset_high_and_batch computes
        the values: hotmem/mm/watermark.py). While the zone's pcp is disabled the values
        are kept for zone_pcp_enable, as the kernel's zone->pageset_high/batch are."""
        self._check_cpu(cpu)
        if batch < 1 or high < 0:
            raise _err(errno.EINVAL, f"pcp high {high} / batch {batch} out of range")
        z = self._zone(zoneid, create=True)
        pcp = z.pcp[cpu]
        pcp.saved_high, pcp.saved_batch = high, batch
        if not z.pcp_disabled:
            pcp.high, pcp.batch = high, batch

    def drain_pages_zone(self, cpu, zoneid):
        """mm/page_alloc.c:drain_pages_zone."""
        z = self._zone(zoneid)
        self._check_cpu(cpu)
        self._drain_pages_zone(cpu, z)

    def drain_zone_pages(self, zoneid):
        """Drain every CPU's lists of the zone, as mm/page_alloc.c:__drain_all_pages(zone, true)
        does (not the kernel's NUMA drain_zone_pages, which frees one batch of one pcp)."""
        z = self._zone(zoneid)
        for cpu in range(self.nr_cpus):
            self._drain_pages_zone(cpu, z)

    def zone_pcp_disable(self, zoneid):
        """mm/page_alloc.c:zone_pcp_disable: high 0 / batch 1 on every CPU, then drain all."""
        z = self._zone(zoneid)
        if z.pcp_disabled:
            raise _err(errno.EBUSY, f"zone {zoneid}: pcp already disabled")
        z.pcp_disabled = True
        for pcp in z.pcp:
            pcp.high, pcp.batch = 0, 1
        for cpu in range(self.nr_cpus):
            self._drain_pages_zone(cpu, z)

    def zone_pcp_enable(self, zoneid):
        """mm/page_alloc.c:zone_pcp_enable: restore zone->pageset_high/batch."""
        z = self._zone(zoneid)
        if not z.pcp_disabled:
            raise _err(errno.EINVAL, f"zone {zoneid}: pcp not disabled")
        z.pcp_disabled = False
        for pcp in z.pcp:
            pcp.high, pcp.batch = pcp.saved_high, pcp.saved_batch

    def zone_pcp_reset(self, zoneid):
        """mm/page_alloc.c:zone_pcp_reset: back to the boot pageset (high 0, batch 1)."""
        z = self._zone(zoneid)
        if any(p.count for p in z.pcp):
            raise _err(errno.EBUSY, f"zone {zoneid}: pcp lists not empty")
        for pcp in z.pcp:
            pcp.high = pcp.saved_high = BOOT_PAGESET_HIGH
            pcp.batch = pcp.saved_batch = BOOT_PAGESET_BATCH
            pcp.free_factor = 0

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
            self._check_free_pages_core(pfn, order)
            self._free_pages_core(pfn, order)
            pfn += 1 << order
            total += 1 << order
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

    # -- inspection ------------------------------------------------------------------------------
    def zones(self):
        return sorted(self._zones)

    def nr_free_pages(self, zoneid):
        """zone_page_state(zone, NR_FREE_PAGES)."""
        return self._zone(zoneid).nr_free_pages

    def managed_pages(self, zoneid):
        return self._zone(zoneid).managed

    def nr_isolate_pageblock(self, zoneid):
        return self._zone(zoneid).nr_isolate_pageblock

    def nr_free(self, zoneid, order, mt=None):
        """free_area[order].nr_free, or the length of one free_list[mt]."""
        z = self._zone(zoneid)
        self._check_order(order)
        if mt is None:
            return sum(z.nr_free_mt[order])
        if not 0 <= mt < MIGRATE_TYPES:
            raise _err(errno.EINVAL, f"migratetype {mt} out of range")
        return z.nr_free_mt[order][mt]

    def free_list(self, zoneid, order, mt):
        """The head pfns on free_area[order].free_list[mt], ascending."""
        z = self._zone(zoneid)
        self._check_order(order)
        if not 0 <= mt < MIGRATE_TYPES:
            raise _err(errno.EINVAL, f"migratetype {mt} out of range")
        key = self._key(z, order, mt)
        return sorted({p for p in z.heaps[order][mt] if self._freeh.get(p) == key})

    def pcp_count(self, zoneid, cpu):
        self._check_cpu(cpu)
        return self._zone(zoneid).pcp[cpu].count

    def pcp_info(self, zoneid, cpu):
        """(count, high, batch, free_factor) of the CPU's per_cpu_pages."""
        self._check_cpu(cpu)
        p = self._zone(zoneid).pcp[cpu]
        return (p.count, p.high, p.batch, p.free_factor)

    def pcp_pages(self, zoneid, cpu):
        """[(pindex, [pfn, ...] from list head to tail)] for the non-empty lists."""
        self._check_cpu(cpu)
        p = self._zone(zoneid).pcp[cpu]
        return [(k, [pfn for pfn, _ in lst]) for k, lst in enumerate(p.lists) if lst]

    def allocated(self):
        """{pfn: order} of the blocks alloc_pages handed out and free_pages has not taken back."""
        return dict(sorted(self._alloc.items()))

    def state(self):
        """A canonical snapshot, equal between backends when their states are equal."""
        zones = {}
        for zoneid in sorted(self._zones):
            z = self._zones[zoneid]
            free_area = {}
            for order in range(self.max_order):
                for mt in range(MIGRATE_TYPES):
                    if z.nr_free_mt[order][mt]:
                        free_area[(order, mt)] = tuple(self.free_list(zoneid, order, mt))
            pcp = tuple((p.count, p.high, p.batch, p.free_factor, p.saved_high, p.saved_batch,
                         tuple(tuple(lst) for lst in p.lists)) for p in z.pcp)
            zones[zoneid] = {"nr_free_pages": z.nr_free_pages, "managed": z.managed,
                             "nr_isolate_pageblock": z.nr_isolate_pageblock,
                             "free_area": free_area, "pcp": pcp,
                             "pcp_disabled": z.pcp_disabled}
        return {"zones": zones, "allocated": tuple(sorted(self._alloc.items()))}
