"""khugepaged's share of the watermarks: its raise of min_free_kbytes (mm/khugepaged.c, Linux 6.1).

With THP enabled and khugepaged running, ``set_recommended_min_free_kbytes`` raises
``min_free_kbytes`` to 11 pageblocks per populated zone up to Normal (capped at 5% of lowmem)
and recomputes the watermarks. page_alloc.c's ``init_per_zone_wmark_min`` calls it last
through ``khugepaged_min_free_kbytes_update``; hugepage_init (:mod:`hotmem.mm.huge_memory`)
through ``start_stop_khugepaged``. The pageblock size is the arch's (``m.arch.pageblock_order``).
"""
from __future__ import annotations

from hotmem.mm.watermark import (GFP_USER_ZONE, calculate_min_free_kbytes,
                                 for_each_populated_zone, nr_free_buffer_pages,
                                 setup_per_zone_wmarks)

MIGRATE_PCPTYPES = 3                        # Unmovable, Movable, Reclaimable (every arch)


def pageblock_nr_pages(m) -> int:
    """include/linux/pageblock-flags.h:pageblock_nr_pages (1 << pageblock_order of the arch)."""
    return 1 << m.arch.pageblock_order


def set_recommended_min_free_kbytes(m) -> None:
    """Raise min_free_kbytes to 11 pageblocks per populated zone <= Normal, capped at 5% of lowmem.

    mm/khugepaged.c:set_recommended_min_free_kbytes (6.1): nr_zones counts the populated
    (present) zones of every online node with index <= ZONE_NORMAL (Movable and Device never
    count); recommended = pageblock_nr_pages * nr_zones * (2 + MIGRATE_PCPTYPES^2), capped at
    nr_free_buffer_pages() / 20 (with the watermarks just computed), << (PAGE_SHIFT - 10) to
    kB. Only raises; then setup_per_zone_wmarks. With THP disabled it recomputes
    min_free_kbytes from scratch instead.
    """
    g = m.page_alloc
    if not g.thp_enabled:
        calculate_min_free_kbytes(m)
        setup_per_zone_wmarks(m)
        return
    nr_zones = sum(1 for z in for_each_populated_zone(m) if z.idx <= GFP_USER_ZONE)
    nr_pageblock = pageblock_nr_pages(m)
    recommended_min = nr_pageblock * nr_zones * 2
    recommended_min += nr_pageblock * nr_zones * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES
    recommended_min = min(recommended_min, nr_free_buffer_pages(m) // 20)
    recommended_min <<= m.arch.page_shift - 10
    if recommended_min > g.min_free_kbytes:
        g.min_free_kbytes = recommended_min
    setup_per_zone_wmarks(m)


def khugepaged_min_free_kbytes_update(m) -> None:
    """set_recommended_min_free_kbytes if THP is enabled and khugepaged runs (mm/khugepaged.c, 6.1)."""
    if m.page_alloc.thp_enabled and m.page_alloc.khugepaged_running:
        set_recommended_min_free_kbytes(m)


def start_stop_khugepaged(m) -> None:
    """Start or stop khugepaged per thp_enabled, then set_recommended_min_free_kbytes (mm/khugepaged.c, 6.1)."""
    m.page_alloc.khugepaged_running = m.page_alloc.thp_enabled
    set_recommended_min_free_kbytes(m)
