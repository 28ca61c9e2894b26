"""Zonelists and the allocation entry points above the core page allocator (mm/page_alloc.c, 6.1).

The core ``PageAllocator`` takes and gives pages of one zone; this module chooses the zone the way
``__alloc_pages`` → ``get_page_from_freelist`` does: walk the preferred node's zonelist from the
highest zone the gfp mask allows, skip zones that fail ``zone_watermark_fast`` at the low watermark,
then retry at the min watermark (the slow path without reclaim or compaction, which the model has
nothing to run). Node fallback order: the preferred node, then the other nodes with memory in
ascending node id (build_zonelists with all distances equal).
"""
from __future__ import annotations

from dataclasses import dataclass

from hotmem.mm.mmzone import (MAX_NR_ZONES, WMARK_LOW, WMARK_MIN, ZONE_MOVABLE, ZONE_NORMAL)

# migratetypes (include/linux/mmzone.h, 6.1)
MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE = 0, 1, 2
MIGRATE_PCPTYPES = 3


@dataclass(frozen=True)
class Gfp:
    """The parts of a gfp mask that choose zones and migratetype."""

    name: str
    highest_zoneidx: int
    migratetype: int
    alloc_high: bool = False     # __GFP_HIGH → ALLOC_HIGH (GFP_ATOMIC)
    alloc_harder: bool = False   # GFP_ATOMIC without __GFP_NOMEMALLOC → ALLOC_HARDER


GFP_KERNEL = Gfp("GFP_KERNEL", ZONE_NORMAL, MIGRATE_UNMOVABLE)
GFP_ATOMIC = Gfp("GFP_ATOMIC", ZONE_NORMAL, MIGRATE_UNMOVABLE, alloc_high=True, alloc_harder=True)
GFP_HIGHUSER_MOVABLE = Gfp("GFP_HIGHUSER_MOVABLE", ZONE_MOVABLE, MIGRATE_MOVABLE)


def zone_watermark_ok(zone, order: int, mark: int, highest_zoneidx: int, gfp: Gfp,
                      max_order: int) -> bool:
    """mm/page_alloc.c:__zone_watermark_ok (6.1, no CMA, no highatomic reserves)."""
    free_pages = zone.nr_free_pages - ((1 << order) - 1)
    min_ = mark
    if gfp.alloc_high:
        min_ -= min_ // 2
    if gfp.alloc_harder:
        min_ -= min_ // 4
    if free_pages <= min_ + zone.lowmem_reserve[highest_zoneidx]:
        return False
    if not order:
        return True
    alloc = zone.allocator
    for o in range(order, max_order):
        for mt in range(MIGRATE_PCPTYPES):
            if alloc.nr_free(zone.zoneid, o, mt):
                return True
    return False


def zone_watermark_fast(zone, order: int, mark: int, highest_zoneidx: int, gfp: Gfp,
                        max_order: int) -> bool:
    """mm/page_alloc.c:zone_watermark_fast (6.1): the order-0 shortcut, then the full check."""
    if not order:
        reserve = zone.lowmem_reserve[highest_zoneidx]
        if zone.nr_free_pages > mark + reserve:
            return True
    return zone_watermark_ok(zone, order, mark, highest_zoneidx, gfp, max_order)


class ZoneLists:
    """build_zonelists (6.1) for the machine's nodes, rebuilt when a node gains or loses memory."""

    def __init__(self, machine):
        self.m = machine

    def zonelist(self, nid: int, highest_zoneidx: int):
        """The zones an allocation on ``nid`` may use, in the kernel's order."""
        nodes = [nid] + sorted(n for n in self.m.pgdats if n != nid)
        out = []
        for n in nodes:
            pgdat = self.m.pgdats[n]
            for idx in range(min(highest_zoneidx, MAX_NR_ZONES - 1), -1, -1):
                z = pgdat.node_zones[idx]
                if z.managed_zone():
                    out.append(z)
        return out


def alloc_pages_node(machine, nid: int, gfp: Gfp, order: int, cpu: int = 0):
    """alloc_pages_node → __alloc_pages (6.1): returns (pfn, zone) or (-1, None).

    Fast path at the low watermark over the zonelist; then the min watermark (the slow path's
    ALLOC_WMARK_MIN retry). Reclaim, compaction and OOM are not modelled: they would only find
    memory the model never uses for anything else."""
    alloc = machine.allocator
    zones = machine.zonelists.zonelist(nid, gfp.highest_zoneidx)
    for wmark in (WMARK_LOW, WMARK_MIN):
        for z in zones:
            if not zone_watermark_fast(z, order, z.wmark_pages(wmark), gfp.highest_zoneidx, gfp,
                                       machine.policy.max_order):
                continue
            pfn = alloc.alloc_pages(z.zoneid, order, gfp.migratetype, cpu)
            if pfn >= 0:
                return pfn, z
    return -1, None
