"""The system-wide page-metadata counters of /proc/vmstat (mm/vmstat.c, 6.11).

Linux 6.11 ("mm: report per-page metadata information", Sourav Panda, and Pasha Tatashin's
fixes in 6.11-rc) keeps two atomic counters outside the zone and node statistics --
``nr_memmap_pages`` (struct pages allocated after boot) and ``nr_memmap_boot_pages`` (struct
pages allocated while ``system_state == SYSTEM_BOOTING``) -- printed after
``nr_dirty_background_threshold`` as the last two of ``enum vm_stat_item``. They are not per node
and not in /proc/meminfo. Kernels before 6.11 have neither; the model counts only when the
policy says so (``KernelPolicy.memmap_stats``).
"""
from __future__ import annotations


def memmap_pages_add(m, delta: int) -> None:
    """mm/vmstat.c:memmap_pages_add (6.11): atomic_long_add to nr_memmap_pages."""
    if m.policy.memmap_stats:
        m.nr_memmap_pages += delta


def memmap_boot_pages_add(m, delta: int) -> None:
    """mm/vmstat.c:memmap_boot_pages_add (6.11): atomic_long_add to nr_memmap_boot_pages."""
    if m.policy.memmap_stats:
        m.nr_memmap_boot_pages += delta


def memmap_pages_of(m, nr_pages: int) -> int:
    """DIV_ROUND_UP(nr_pages * sizeof(struct page), PAGE_SIZE): what __populate_section_memmap
    and depopulate_section_memmap (6.11) count for ``nr_pages`` struct pages, wherever the
    vmemmap's pages came from (buddy, memblock or altmap)."""
    a = m.arch
    return -(-nr_pages * a.struct_page_size // a.PAGE_SIZE)


def vm_stat_items(m) -> list[tuple[str, int]]:
    """The 6.11 tail of enum vm_stat_item that /proc/vmstat prints after
    nr_dirty_background_threshold (mm/vmstat.c:vmstat_start), or nothing before 6.11. The
    values are unsigned long there: a counter driven below zero prints as 2**64 - n."""
    if not m.policy.memmap_stats:
        return []
    return [("nr_memmap_pages", m.nr_memmap_pages % (1 << 64)),
            ("nr_memmap_boot_pages", m.nr_memmap_boot_pages % (1 << 64))]
