"""The system-wide page-metadata counters of /proc/vmstat (mm/vmstat.c, 6.11).

Linux 6.11 ("mm: report per-page metadata information", Sourav Panda, and Pasha Tatashin's
fixes in 6.11-rc) keeps two atomic counters outside the zone and node statistics --
``nr_memmap_pages`` (struct pages allocated after boot) and ``nr_memmap_boot_pages`` (struct
pages allocated while ``system_state == SYSTEM_BOOTING``) -- printed after
``nr_dirty_background_threshold`` as the last two of ``enum vm_stat_item``. They are not per node
and not in /proc/meminfo. Kernels before 6.11 have neither; the model counts only when the
policy says so (``KernelPolicy.memmap_stats``).

At the end: the per-zone stat thresholds (mm/vmstat.c, 6.1) init_per_zone_wmark_min refreshes.
"""
from __future__ import annotations

from hotmem.mm.mmzone import Zone
from hotmem.mm.watermark import for_each_online_pgdat


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


# --- the zone stat thresholds (mm/vmstat.c, 6.1) -------------------------------------------------

def fls(x: int) -> int:
    """Position of the most significant set bit, 1-based; fls(0) = 0 (include/asm-generic/bitops/fls.h)."""
    return x.bit_length()


def calculate_normal_threshold(m, zone: Zone) -> int:
    """2 * fls(online CPUs) * (1 + fls(managed in 128 MiB units)), at most 125.

    mm/vmstat.c:calculate_normal_threshold (6.1): mem = managed >> (27 - PAGE_SHIFT).
    """
    mem = zone.managed_pages >> (27 - m.arch.page_shift)
    return min(125, 2 * fls(m.page_alloc.num_online_cpus()) * (1 + fls(mem)))


def calculate_pressure_threshold(m, zone: Zone) -> int:
    """(low - min) / online CPUs, 1..125 (mm/vmstat.c:calculate_pressure_threshold, 6.1).

    Used only while kswapd runs for the node (set_pgdat_percpu_threshold); not part of
    init_per_zone_wmark_min.
    """
    distance = zone.low_wmark - zone.min_wmark
    return min(125, max(1, distance // m.page_alloc.num_online_cpus()))


def refresh_zone_stat_thresholds(m) -> None:
    """Normal thresholds for every populated zone, the node maximum, and the drift mark.

    mm/vmstat.c:refresh_zone_stat_thresholds (6.1). percpu_drift_mark is set to high + CPUs *
    threshold only when that drift exceeds low - min (never cleared).
    """
    ncpus = m.page_alloc.num_online_cpus()
    for pgdat in for_each_online_pgdat(m):
        node_threshold = 0
        for z in pgdat.node_zones:
            if z.populated_zone():
                threshold = calculate_normal_threshold(m, z)
                node_threshold = max(node_threshold, threshold)
                z.stat_threshold = threshold
                if ncpus * threshold > z.low_wmark - z.min_wmark:
                    z.percpu_drift_mark = z.high_wmark + ncpus * threshold
        pgdat.stat_threshold = node_threshold

