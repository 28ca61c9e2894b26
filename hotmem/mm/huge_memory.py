"""Transparent huge pages at boot: hugepage_init (mm/huge_memory.c, Linux 6.1).

Below 512 MiB of totalram THP stays off (and khugepaged never starts); otherwise
``start_stop_khugepaged`` starts khugepaged, which raises ``min_free_kbytes``
(:mod:`hotmem.mm.khugepaged`).
"""
from __future__ import annotations

from hotmem.mm.khugepaged import start_stop_khugepaged
from hotmem.mm.watermark import for_each_zone


def thp_min_totalram_pages(m) -> int:
    """512 MiB in pages: hugepage_init leaves THP off below it (mm/huge_memory.c, 6.1)."""
    return 512 << (20 - m.arch.page_shift)


def _totalram_pages(m) -> int:
    return sum(z.managed_pages for z in for_each_zone(m))


def hugepage_init(m) -> None:
    """The subsys_initcall: THP off below 512 MiB of totalram, else start khugepaged.

    mm/huge_memory.c:hugepage_init (6.1): totalram_pages() < (512 << (20 - PAGE_SHIFT)).
    """
    if _totalram_pages(m) < thp_min_totalram_pages(m):
        m.page_alloc.thp_enabled = m.page_alloc.khugepaged_running = False
        return
    start_stop_khugepaged(m)
