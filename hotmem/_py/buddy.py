"""Pure-Python twin of hotmem/_cy/buddy.pxi, _cy/pcp.pxi and _cy/page_isolation.pxi: the page
allocator of Linux 6.1 (mm/page_alloc.c).

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

The allocator is a chain of classes, one module per concept, the compiled core split the same way:
``_BuddyZones`` here (struct zone's allocator state, the free lists, __free_one_page, expand,
__rmqueue with its fallbacks, free_pages_core, the managed-page counts), ``_PcpLists`` in
hotmem/_py/pcp.py (the per-CPU pagesets, alloc_pages, free_pages) and ``PageAllocator`` in
hotmem/_py/page_isolation.py (isolation, offlining helpers, range operations); this module
still exports ``PageAllocator``.
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
    PAGE_MAPCOUNT_RESET, PAGE_TYPE_BASE, PCP_BATCH_SCALE_MAX, PG_buddy, PG_lru,
    PG_offline, PG_reserved,
)
from hotmem.errors import HotplugError

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


class _BuddyZones:
    """The buddy part of the page allocator: zones, free lists, __free_one_page, __rmqueue
    (the public class is PageAllocator, hotmem/_py/page_isolation.py)."""

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
        self._fpc_memo = {}   # chunk pattern -> (its pattern after _free_pages_core, zoneid)
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

    # -- entry points ------------------------------------------------------------------------------
    def free_pages_core(self, pfn, order):
        """mm/page_alloc.c:__free_pages_core (6.1): clear PG_reserved and the refcount of every
        page, managed_pages += 2^order, __free_pages_ok(FPI_TO_TAIL) bypassing the pcp lists."""
        self._check_free_pages_core(pfn, order)
        self._free_pages_core(pfn, order)

    def _free_pages_core_chunk(self, pfn, order):
        """free_pages_core on an aligned block, O(1) for a whole MAX_ORDER - 1 block that is a
        shared chunk whose pattern was freed before: at MAX_ORDER - 1 __free_one_page merges
        nothing, so the freed records are a function of the reserved ones alone -- the chunk
        takes the remembered pattern and the block goes to the tail of its pageblock's list."""
        key = None
        n = 1 << order
        if order == self.max_order - 1 and order == self.ms.chunk_shift:
            key = self.ms._chunk_key(pfn)
            if key is not None:
                hit = self._fpc_memo.get(key)
                if hit is not None:
                    self._check_block(pfn, order)
                    z = self._zone(hit[1], create=True)
                    if self.ms._chunk_share(pfn, hit[0]):
                        z.managed += n
                        mt = self._mt(pfn)                  # __free_pages_ok, free_one_page
                        if mt != MIGRATE_ISOLATE:
                            z.nr_free_pages += n            # __mod_zone_freepage_state
                        self._add_to_free_list(z, pfn, order, mt)
                        return
        self._check_free_pages_core(pfn, order)
        self._free_pages_core(pfn, order)
        if key is not None:
            new = self.ms._chunk_key(pfn)
            if new is not None:
                if len(self._fpc_memo) >= 64:
                    self._fpc_memo.clear()
                self._fpc_memo[key] = (new, int(self._arr(pfn)["flags"][0]) >> self._zshift)

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

    def allocated(self):
        """{pfn: order} of the blocks alloc_pages handed out and free_pages has not taken back."""
        return dict(sorted(self._alloc.items()))

    # -- boot: memblock's hand-over by range -------------------------------------------------------
    def free_pages_memory(self, start_pfn, end_pfn):
        """mm/memblock.c:__free_pages_memory (6.1): [start_pfn, end_pfn) to the buddy in
        naturally aligned chunks of at most MAX_ORDER - 1, ascending, each through
        memblock_free_pages → __free_pages_core (a chunk it would refuse raises, the chunks
        before it freed). Returns the pages handed over (the caller's totalram_pages_add)."""
        if start_pfn < 0 or end_pfn < start_pfn:
            raise _err(errno.EINVAL, f"bad pfn range [{start_pfn:#x}, {end_pfn:#x})")
        pfn, total, top = start_pfn, 0, self.max_order - 1
        while pfn < end_pfn:
            order = min(top, (pfn & -pfn).bit_length() - 1) if pfn else top
            while pfn + (1 << order) > end_pfn:
                order -= 1
            self._free_pages_core_chunk(pfn, order)
            pfn += 1 << order
            total += 1 << order
        return total


def __getattr__(name):
    """PageAllocator, the last class of the chain, from hotmem/_py/page_isolation.py (imported
    lazily: that module imports this one)."""
    if name == "PageAllocator":
        from hotmem._py.page_isolation import PageAllocator
        return PageAllocator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

