"""Nodes and zones: ``struct zone`` and ``struct pglist_data`` (include/linux/mmzone.h, 6.1).

Only what memory hotplug reads or moves is kept: span, present and early-present pages, the
isolated-pageblock count, watermarks, lowmem reserves, per-CPU pageset sizing and the vmstat
thresholds. This is the one zone state: hotmem.mm.watermark reads and writes these objects
directly. managed pages, NR_FREE_PAGES and the per-CPU pagesets (high, batch and lists) live in
the page allocator of the core (they move in its hot loops); a Zone reads them from there. A Zone
without an allocator (watermark unit tests: BareMachine in tests/bare_machine.py) holds its
managed count and its pagesets' (high, batch) itself, in ``_managed_pages`` and ``_pcp``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE, ZONE_DEVICE = range(5)
MAX_NR_ZONES = 5
ZONES_SHIFT = 3
ZONE_NAMES = ("DMA", "DMA32", "Normal", "Movable", "Device")

# enum zone_watermarks
WMARK_MIN, WMARK_LOW, WMARK_HIGH, WMARK_PROMO = range(4)


def zoneid(nid: int, zone_idx: int) -> int:
    """include/linux/mm.h:page_zone_id for a page of (nid, zone): node and zone bits as one number."""
    return (nid << ZONES_SHIFT) | zone_idx


@dataclass
class Zone:
    """struct zone (6.1): one zone of one node."""

    node: int
    idx: int
    zone_start_pfn: int = 0
    spanned_pages: int = 0
    present_pages: int = 0
    present_early_pages: int = 0
    nr_isolate_pageblock: int = 0
    contiguous: bool = False
    _watermark: tuple = (0, 0, 0, 0)
    watermark_boost: int = 0
    lowmem_reserve: tuple = (0,) * MAX_NR_ZONES
    #: zone->pageset_high/batch: the per-CPU pageset sizes last computed (what
    #: zone_set_pageset_high_and_batch compares with and zone_pcp_enable restores)
    pageset_high: int = 0
    pageset_batch: int = 1
    #: zone->per_cpu_pageset is the zone's own (setup_zone_pageset), not &boot_pageset
    own_pageset: bool = False
    #: per_cpu_zonestats->stat_threshold (all online CPUs alike)
    stat_threshold: int = 0
    percpu_drift_mark: int = 0
    #: the core page allocator (managed pages and NR_FREE_PAGES live there)
    allocator: object = None
    #: ZONES_SHIFT of the build (page_zone_id = nid << ZONES_SHIFT | zone)
    zones_shift: int = ZONES_SHIFT
    #: only without an allocator: zone->managed_pages, and (high, batch) of its own pagesets
    _managed_pages: int = 0
    _pcp: tuple = (0, 1)

    @property
    def name(self) -> str:
        return ZONE_NAMES[self.idx]

    @property
    def zoneid(self) -> int:
        return (self.node << self.zones_shift) | self.idx

    @property
    def zone_end_pfn(self) -> int:
        """include/linux/mmzone.h:zone_end_pfn."""
        return self.zone_start_pfn + self.spanned_pages

    @property
    def managed_pages(self) -> int:
        """zone_managed_pages()."""
        if self.allocator is not None:
            return self.allocator.managed_pages(self.zoneid)
        return self._managed_pages

    @property
    def nr_free_pages(self) -> int:
        """zone_page_state(zone, NR_FREE_PAGES)."""
        return self.allocator.nr_free_pages(self.zoneid) if self.allocator is not None else 0

    def zone_is_empty(self) -> bool:
        return self.spanned_pages == 0

    def populated_zone(self) -> bool:
        return self.present_pages != 0

    def managed_zone(self) -> bool:
        return self.managed_pages > 0

    def zone_intersects(self, start_pfn: int, nr_pages: int) -> bool:
        """include/linux/mmzone.h:zone_intersects."""
        if self.zone_is_empty():
            return False
        return start_pfn < self.zone_end_pfn and start_pfn + nr_pages > self.zone_start_pfn

    def zone_spans_pfn(self, pfn: int) -> bool:
        return self.zone_start_pfn <= pfn < self.zone_end_pfn

    def wmark_pages(self, i: int) -> int:
        return self._watermark[i] + self.watermark_boost

    @property
    def min_wmark(self) -> int:
        return self.wmark_pages(WMARK_MIN)

    @property
    def low_wmark(self) -> int:
        return self.wmark_pages(WMARK_LOW)

    @property
    def high_wmark(self) -> int:
        return self.wmark_pages(WMARK_HIGH)

    @property
    def promo_wmark(self) -> int:
        return self.wmark_pages(WMARK_PROMO)

    @property
    def pcp(self):
        """(high, batch) of the zone's own per-CPU pagesets (the same on every CPU), None while
        zone->per_cpu_pageset is &boot_pageset."""
        if not self.own_pageset:
            return None
        if self.allocator is not None:
            return tuple(self.allocator.pcp_info(self.zoneid, 0)[1:3])
        return self._pcp

    def snapshot(self) -> tuple:
        return (self.node, self.idx, self.zone_start_pfn, self.spanned_pages, self.present_pages,
                self.present_early_pages, self.nr_isolate_pageblock, self.contiguous,
                tuple(self._watermark), self.watermark_boost, tuple(self.lowmem_reserve),
                self.pageset_high, self.pageset_batch, self.stat_threshold)


@dataclass
class PglistData:
    """struct pglist_data (6.1): a NUMA node's zones and span."""

    node_id: int
    node_zones: list = field(default_factory=list)
    node_start_pfn: int = 0
    node_spanned_pages: int = 0
    node_present_pages: int = 0
    nr_zones: int = 0
    online: bool = False
    #: node_states: N_NORMAL_MEMORY / N_MEMORY / N_CPU
    has_normal_memory: bool = False
    has_memory: bool = False
    cpus: tuple = ()
    kswapd: bool = False
    kcompactd: bool = False
    #: per_cpu_nodestats->stat_threshold, and what init_per_zone_wmark_min sets per node
    stat_threshold: int = 0
    min_unmapped_pages: int = 0
    min_slab_pages: int = 0
    totalreserve_pages: int = 0

    @property
    def node_end_pfn(self) -> int:
        return self.node_start_pfn + self.node_spanned_pages

    def populated_zones(self):
        return [z for z in self.node_zones if z.populated_zone()]

    def snapshot(self) -> tuple:
        return (self.node_id, self.node_start_pfn, self.node_spanned_pages,
                self.node_present_pages, self.nr_zones, self.online, self.has_normal_memory,
                self.has_memory, self.cpus, self.kswapd, self.kcompactd,
                tuple(z.snapshot() for z in self.node_zones))


def new_pgdat(nid: int, allocator, zones_shift: int = ZONES_SHIFT,
              nr_zones: int = MAX_NR_ZONES) -> PglistData:
    """A node with its empty zones (free_area_init_node before any memory); ``nr_zones`` is the
    build's MAX_NR_ZONES (x86_64 Debian 5 with ZONE_DEVICE, arm64 Debian 4)."""
    pgdat = PglistData(node_id=nid)
    pgdat.node_zones = [Zone(node=nid, idx=i, allocator=allocator, zones_shift=zones_shift)
                        for i in range(nr_zones)]
    return pgdat
