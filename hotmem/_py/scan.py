"""Pure-Python twin of hotmem/_cy/scan.pxi: pfn scanners over the struct pages.

- fs/proc/page.c:stable_page_flags and kpagecount_read (6.1): /proc/kpageflags and /proc/kpagecount
  words for a pfn range;
- mm/page_isolation.c:has_unmovable_pages (6.1), used when offlining isolates a pageblock;
- mm/memory_hotplug.c:find_smallest_section_pfn / find_biggest_section_pfn (6.1), the scans of
  shrink_zone_span;
- a page counter by PG_ bit.
"""
import errno

import numpy as np

from hotmem.defs import (  # noqa: F401  (re-exported: see __all__)
    KPF_ACTIVE, KPF_ANON, KPF_ARCH, KPF_ARCH_2, KPF_BUDDY, KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL,
    KPF_DIRTY, KPF_ERROR, KPF_HUGE, KPF_HWPOISON, KPF_IDLE, KPF_KSM, KPF_LOCKED, KPF_LRU,
    KPF_MAPPEDTODISK, KPF_MLOCKED, KPF_MMAP, KPF_NOPAGE, KPF_OFFLINE, KPF_OWNER_PRIVATE,
    KPF_PGTABLE, KPF_PRIVATE, KPF_PRIVATE_2, KPF_RECLAIM, KPF_REFERENCED, KPF_RESERVED,
    KPF_SLAB, KPF_SOFTDIRTY, KPF_SWAPBACKED, KPF_SWAPCACHE, KPF_THP, KPF_UNCACHED,
    KPF_UNEVICTABLE, KPF_UPTODATE, KPF_WRITEBACK, KPF_ZERO_PAGE, MEMORY_OFFLINE,
    PAGE_MAPCOUNT_RESERVE, PAGE_TYPE_BASE, PG_buddy, PG_hwpoison, PG_lru, PG_offline,
    PG_owner_priv_1, PG_reserved, PG_slab, PG_swapbacked, PG_table, REPORT_FAILURE,
    STABLE_PAGE_FLAGS_COPY,
)
from hotmem.boundary import core_pfn_range
from hotmem.errors import HotplugError

__all__ = [
    "KPF_LOCKED", "KPF_ERROR", "KPF_REFERENCED", "KPF_UPTODATE", "KPF_DIRTY", "KPF_LRU",
    "KPF_ACTIVE", "KPF_SLAB", "KPF_WRITEBACK", "KPF_RECLAIM", "KPF_BUDDY", "KPF_MMAP", "KPF_ANON",
    "KPF_SWAPCACHE", "KPF_SWAPBACKED", "KPF_COMPOUND_HEAD", "KPF_COMPOUND_TAIL", "KPF_HUGE",
    "KPF_UNEVICTABLE", "KPF_HWPOISON", "KPF_NOPAGE", "KPF_KSM", "KPF_THP", "KPF_OFFLINE",
    "KPF_ZERO_PAGE", "KPF_IDLE", "KPF_PGTABLE", "KPF_RESERVED", "KPF_MLOCKED", "KPF_MAPPEDTODISK",
    "KPF_PRIVATE", "KPF_PRIVATE_2", "KPF_OWNER_PRIVATE", "KPF_ARCH", "KPF_UNCACHED",
    "KPF_SOFTDIRTY", "KPF_ARCH_2", "MEMORY_OFFLINE", "REPORT_FAILURE",
    "kpageflags", "kpagecount", "has_unmovable_pages", "find_smallest_section_pfn",
    "find_biggest_section_pfn", "count_page_flag",
]

# KPF_IDLE: page_is_idle() is always false without CONFIG_IDLE_PAGE_TRACKING (Debian 6.1)


def _s32(v):
    return v - (1 << 32) if v & 0x80000000 else v


def _page_type_is(page_type, flag):
    """include/linux/page-flags.h:PageType."""
    return (page_type & (PAGE_TYPE_BASE | flag)) == PAGE_TYPE_BASE


def _is_free_buddy_page(ms, pfn, max_order):
    """mm/page_alloc.c:is_free_buddy_page (6.1): pfn lies inside a free buddy block."""
    for order in range(max_order):
        head = pfn & ~((1 << order) - 1)
        _, private, _, ptype = ms.page(head)
        if _page_type_is(ptype, PG_buddy) and private >= order:
            return True
    return False


def _stable_page_flags(ms, pfn, max_order):
    if not ms.pfn_to_online_page(pfn):
        return 1 << KPF_NOPAGE
    k, _, refcount, ptype = ms.page(pfn)
    u = 0
    if not k >> PG_slab & 1 and _s32(ptype) >= 0:          # page_mapped, non-compound
        u |= 1 << KPF_MMAP
    if _page_type_is(ptype, PG_buddy):
        u |= 1 << KPF_BUDDY
    elif refcount == 0 and _is_free_buddy_page(ms, pfn, max_order):
        u |= 1 << KPF_BUDDY
    if _page_type_is(ptype, PG_offline):
        u |= 1 << KPF_OFFLINE
    if _page_type_is(ptype, PG_table):
        u |= 1 << KPF_PGTABLE
    if k >> PG_swapbacked & 1 and k >> PG_owner_priv_1 & 1:  # PageSwapCache
        u |= 1 << KPF_SWAPCACHE
    for kpf, pg in STABLE_PAGE_FLAGS_COPY:
        u |= (k >> pg & 1) << kpf
    return u


def kpageflags(ms, start_pfn, count, max_order):
    """The /proc/kpageflags words of [start_pfn, start_pfn + count) (fs/proc/page.c, 6.1).

    ``max_order`` is 6.1's MAX_ORDER (number of buddy orders) for is_free_buddy_page. The range
    is checked as the compiled core checks it (hotmem.boundary.core_pfn_range)."""
    start_pfn, count = core_pfn_range(start_pfn, count, "kpageflags")
    return np.array([_stable_page_flags(ms, pfn, max_order)
                     for pfn in range(start_pfn, start_pfn + count)], dtype=np.uint64)


def kpagecount(ms, start_pfn, count):
    """The /proc/kpagecount words of [start_pfn, start_pfn + count) (fs/proc/page.c, 6.1);
    the range checked as kpageflags checks it."""
    start_pfn, count = core_pfn_range(start_pfn, count, "kpagecount")
    out = np.zeros(count, dtype=np.uint64)
    for i, pfn in enumerate(range(start_pfn, start_pfn + count)):
        if not ms.pfn_to_online_page(pfn):
            continue
        k, _, _, ptype = ms.page(pfn)
        if k >> PG_slab & 1 or _s32(ptype) < PAGE_MAPCOUNT_RESERVE:   # page_has_type
            continue
        out[i] = (_s32(ptype) + 1) & ((1 << 64) - 1)                # page_mapcount
    return out


def _pageblock_has_unmovable(ms, start_pfn, end_pfn, flags, zone_movable):
    """has_unmovable_pages on [start_pfn, end_pfn), inside one pageblock with a memmap."""
    zone_is_movable = ms.page_zonenum(start_pfn) == zone_movable
    pfn = start_pfn
    while pfn < end_pfn:
        k, private, refcount, ptype = ms.page(pfn)
        if k >> PG_reserved & 1:
            return pfn
        if zone_is_movable:
            pfn += 1
            continue
        if refcount == 0:
            pfn += 1 << private if _page_type_is(ptype, PG_buddy) else 1
            continue
        if flags & MEMORY_OFFLINE and (k >> PG_hwpoison & 1 or _page_type_is(ptype, PG_offline)):
            pfn += 1
            continue
        if k >> PG_lru & 1:
            pfn += 1
            continue
        return pfn
    return -1


def has_unmovable_pages(ms, start_pfn, end_pfn, migratetype, flags, zone_movable):
    """mm/page_isolation.c:has_unmovable_pages (6.1, no CMA, no compound pages in the model).

    [start_pfn, end_pfn) must lie in one pageblock; ``zone_movable`` is ZONE_MOVABLE's index.
    Returns the first unmovable pfn, or -1."""
    pb = 1 << ms.pageblock_order
    if end_pfn <= start_pfn or start_pfn // pb != (end_pfn - 1) // pb:
        raise HotplugError(errno.EINVAL, f"pfn range {start_pfn:#x}-{end_pfn:#x} is not within "
                           "one pageblock")
    ms._check_range(start_pfn, end_pfn - start_pfn)
    return _pageblock_has_unmovable(ms, start_pfn, end_pfn, flags, zone_movable)


def _matches(ms, pfn, nid, zoneid):
    return (ms.pfn_to_online_page(pfn) and ms.page_to_nid(pfn) == nid
            and ms.page_zoneid(pfn) == zoneid)


def find_smallest_section_pfn(ms, nid, zoneid, start_pfn, end_pfn):
    """mm/memory_hotplug.c:find_smallest_section_pfn (6.1): first online pfn of the zone on nid in
    [start_pfn, end_pfn), stepping by a subsection; 0 when none."""
    step = 1 << ms.pfn_subsection_shift
    for pfn in range(start_pfn, end_pfn, step):
        if _matches(ms, pfn, nid, zoneid):
            return pfn
    return 0


def find_biggest_section_pfn(ms, nid, zoneid, start_pfn, end_pfn):
    """mm/memory_hotplug.c:find_biggest_section_pfn (6.1): searching down from end_pfn − 1."""
    step = 1 << ms.pfn_subsection_shift
    pfn = end_pfn - 1
    while pfn >= start_pfn and pfn >= 0:
        if _matches(ms, pfn, nid, zoneid):
            return pfn
        pfn -= step
    return 0


def count_page_flag(ms, start_pfn, nr_pages, bit):
    """How many struct pages of [start_pfn, start_pfn + nr_pages) have PG bit ``bit`` set."""
    ms._check_range(start_pfn, nr_pages)
    n = 0
    for arr, off, cnt, _ in ms._chunks(start_pfn, nr_pages):
        n += int(np.count_nonzero(arr["flags"][off:off + cnt] >> np.uint64(bit) & np.uint64(1)))
    return n


# -- range operations: one call per range ----------------------------------------------------------

__all__ += ["has_unmovable_pages_range"]


def has_unmovable_pages_range(ms, start_pfn, end_pfn, migratetype, flags, zone_movable):
    """mm/page_isolation.c:has_unmovable_pages (6.1) on each pageblock's part of
    [start_pfn, end_pfn) in ascending order, as set_migratetype_isolate asks it: the first
    unmovable pfn, or -1."""
    if start_pfn < 0 or end_pfn <= start_pfn:
        raise HotplugError(errno.EINVAL, f"bad pfn range {start_pfn:#x}-{end_pfn:#x}")
    ms._check_range(start_pfn, end_pfn - start_pfn)
    pb = 1 << ms.pageblock_order
    pfn = start_pfn
    while pfn < end_pfn:
        nxt = min((pfn | (pb - 1)) + 1, end_pfn)
        r = _pageblock_has_unmovable(ms, pfn, nxt, flags, zone_movable)
        if r >= 0:
            return r
        pfn = nxt
    return -1
