"""Pageblock isolation for offlining (mm/page_isolation.c, Linux 6.1)."""
from __future__ import annotations

from hotmem.mm.mmzone import ZONE_MOVABLE
from hotmem.mm.page_alloc import MIGRATE_MOVABLE

MIGRATE_ISOLATE = 4                         # include/linux/mmzone.h (CONFIG_MEMORY_ISOLATION)
MEMORY_OFFLINE, REPORT_FAILURE = 0x1, 0x2   # include/linux/page-isolation.h


def start_isolate_page_range(m, start_pfn: int, end_pfn: int) -> int:
    """mm/page_isolation.c:start_isolate_page_range (6.1, MIGRATE_MOVABLE,
    MEMORY_OFFLINE | REPORT_FAILURE): isolate every pageblock of the range; at the first that
    cannot be (already isolated: set_migratetype_isolate's -EBUSY, or holding unmovable pages)
    the ones done are undone. Returns -1, or the pfn that refused (the kernel returns -EBUSY
    and dumps that page). One core call (PageAllocator.start_isolate_page_range), in the order
    of the machine's kernel: 5.19+ tries the first and the last pageblock before the middle ones
    (``m.policy.isolate_ends_first``), which changes the reported pfn only when the last
    pageblock and an earlier middle one both refuse."""
    bad = m.allocator.start_isolate_page_range(start_pfn, end_pfn, MIGRATE_MOVABLE,
                                               MEMORY_OFFLINE | REPORT_FAILURE, ZONE_MOVABLE,
                                               m.policy.isolate_ends_first)
    if bad >= 0:
        m.log(f"page:{bad:#x} has unmovable pages")
    return bad


def undo_isolate_page_range(m, start_pfn: int, end_pfn: int) -> None:
    """mm/page_isolation.c:undo_isolate_page_range (6.1, MIGRATE_MOVABLE): one core call."""
    m.allocator.undo_isolate_page_range(start_pfn, end_pfn, MIGRATE_MOVABLE)
