"""A Machine-less zone state for unit tests of the watermark arithmetic (hotmem.mm.watermark).

:class:`BareMachine` holds online nodes of :class:`hotmem.mm.mmzone.Zone` without a page
allocator, the ``page_alloc`` globals and an arch profile; :func:`make_state` /
:func:`boot_state` build one from page counts, :func:`online_pages_watermarks` /
:func:`offline_pages_watermarks` replay the watermark-relevant part of a hotplug operation, and
:func:`zoneinfo` reads back what /proc/zoneinfo would print.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Optional

from hotmem.errors import HotplugError
from hotmem.mm.mmzone import MAX_NR_ZONES, ZONE_NAMES, PglistData, Zone
from hotmem.mm.page_alloc import boot_watermarks, init_per_zone_wmark_min
from hotmem.mm.watermark import (BOOT_PAGESET_BATCH, BOOT_PAGESET_HIGH,
                                 MIN_PERCPU_PAGELIST_HIGH_FRACTION, NR_WMARK, PageAllocGlobals,
                                 for_each_zone, setup_zone_pageset, zone_of, zone_pageset,
                                 zone_pcp_disable, zone_pcp_enable, zone_pcp_reset)


def _einval(message: str) -> HotplugError:
    return HotplugError(errno.EINVAL, message)


def check_globals(g: PageAllocGlobals, nids) -> None:
    """Refuse globals the kernel's sysctl handlers (or the CPU/node masks) would not allow."""
    nids = list(nids)
    if not nids or len(set(nids)) != len(nids):
        raise _einval(f"online node ids {nids}: need at least one, each once")
    if not g.online_cpus:
        raise _einval("online_cpus is empty: at least one CPU must be online")
    cpus = [c for c, _ in g.online_cpus]
    if len(set(cpus)) != len(cpus):
        raise _einval(f"online cpu ids {cpus}: duplicated")
    for cpu, nid in g.online_cpus:
        if nid not in nids:
            raise _einval(f"cpu {cpu} on node {nid}, which is not an online node")
    if g.local_nid not in nids:
        raise _einval(f"local_nid {g.local_nid}: not an online node")
    if g.min_free_kbytes < 0:
        raise _einval(f"min_free_kbytes {g.min_free_kbytes}: must be >= 0")
    if not 1 <= g.watermark_scale_factor <= 3000:
        raise _einval(f"watermark_scale_factor {g.watermark_scale_factor}: must be 1..3000")
    if (g.percpu_pagelist_high_fraction < 0 or 0 < g.percpu_pagelist_high_fraction
            < MIN_PERCPU_PAGELIST_HIGH_FRACTION):
        raise _einval(f"percpu_pagelist_high_fraction {g.percpu_pagelist_high_fraction}: "
                      f"must be 0 or >= {MIN_PERCPU_PAGELIST_HIGH_FRACTION}")
    if len(g.lowmem_reserve_ratio) != MAX_NR_ZONES or min(g.lowmem_reserve_ratio) < 0:
        raise _einval(f"lowmem_reserve_ratio {g.lowmem_reserve_ratio}: "
                      f"need {MAX_NR_ZONES} values >= 0")


class BareMachine:
    """What the watermark code reads of a Machine, without boot or page allocator: online nodes
    (``pgdats``), ``page_alloc`` globals and the ``arch`` profile (x86_64 by default).

    Its zones have no allocator, so each holds its own managed page count
    (``Zone._managed_pages``) and its own pagesets' (high, batch) (``Zone._pcp``); nothing else
    differs from the Machine's zones.
    """

    allocator = None
    #: the kernel version whose watermark rules apply (the 6.1 readings these tests check)
    from hotmem.kernel import LINUX_6_1 as policy

    def __init__(self, nodes, online_cpus=((0, 0),), arch=None, **globals_):
        if arch is None:
            from hotmem.arch import get_arch
            arch = get_arch("x86_64", paging_levels=4)
        self.arch = arch
        self.pgdats = {p.node_id: p for p in nodes}
        self.page_alloc = PageAllocGlobals(online_cpus=tuple(online_cpus), **globals_)
        check_globals(self.page_alloc, [p.node_id for p in nodes])

    @property
    def nr_cpus(self) -> int:
        return self.page_alloc.num_online_cpus()

    def adjust_managed_page_count(self, zone: Zone, count: int) -> None:
        """zone->managed_pages += count (mm/page_alloc.c:adjust_managed_page_count, 6.1)."""
        zone._managed_pages += count

    def zone(self, nid: int, idx: int) -> Zone:
        return zone_of(self, nid, idx)


def bare_zone(nid: int, idx: int, managed_pages: int = 0, present_pages: int = 0,
              watermark: tuple = (0, 0, 0, 0), watermark_boost: int = 0,
              lowmem_reserve: tuple = (0,) * MAX_NR_ZONES, pageset_high: int = BOOT_PAGESET_HIGH,
              pageset_batch: int = BOOT_PAGESET_BATCH, pcp: Optional[tuple] = None,
              stat_threshold: int = 0, percpu_drift_mark: int = 0) -> Zone:
    """A zone without allocator (see :class:`BareMachine`); ``pcp`` None: on the boot pageset."""
    if not 0 <= idx < MAX_NR_ZONES:
        raise _einval(f"zone index {idx}: must be 0..{MAX_NR_ZONES - 1}")
    if nid < 0:
        raise _einval(f"zone node id {nid}: must be >= 0")
    if managed_pages < 0 or present_pages < 0:
        raise _einval(f"node {nid} zone {ZONE_NAMES[idx]}: managed_pages {managed_pages} / "
                      f"present_pages {present_pages} negative")
    if managed_pages > present_pages:
        raise _einval(f"node {nid} zone {ZONE_NAMES[idx]}: managed_pages {managed_pages} > "
                      f"present_pages {present_pages}")
    if len(watermark) != NR_WMARK or len(lowmem_reserve) != MAX_NR_ZONES:
        raise _einval(f"node {nid} zone {ZONE_NAMES[idx]}: watermark needs {NR_WMARK} and "
                      f"lowmem_reserve {MAX_NR_ZONES} entries")
    return Zone(node=nid, idx=idx, present_pages=present_pages, _watermark=tuple(watermark),
                watermark_boost=watermark_boost, lowmem_reserve=tuple(lowmem_reserve),
                pageset_high=pageset_high, pageset_batch=pageset_batch,
                stat_threshold=stat_threshold, percpu_drift_mark=percpu_drift_mark,
                own_pageset=pcp is not None, _pcp=tuple(pcp) if pcp is not None else (0, 1),
                _managed_pages=managed_pages)


def bare_pgdat(nid: int, zones) -> PglistData:
    """An online node holding ``zones`` (its node_zones, MAX_NR_ZONES of them)."""
    zones = list(zones)
    if len(zones) != MAX_NR_ZONES:
        raise _einval(f"node {nid}: {len(zones)} zones, need {MAX_NR_ZONES}")
    for i, z in enumerate(zones):
        if z.idx != i or z.node != nid:
            raise _einval(f"node {nid}: zones[{i}] is node {z.node} zone index {z.idx}")
    return PglistData(node_id=nid, node_zones=zones, online=True, nr_zones=MAX_NR_ZONES)


def make_state(counts, online_cpus=((0, 0),), arch=None, **globals_) -> BareMachine:
    """A BareMachine with fresh zones (all watermarks 0, boot pagesets) from page counts.

    ``counts`` maps ``(nid, zone)`` (zone index or name) to ``(managed, present)``; zones not
    named are empty. Nodes are the nids named in ``counts`` or ``online_cpus``. Nothing is
    computed: see :func:`boot_state` for the boot sequence.
    """
    norm = {}
    for (nid, zone), (managed, present) in dict(counts).items():
        idx = ZONE_NAMES.index(zone) if isinstance(zone, str) and zone in ZONE_NAMES else zone
        if not isinstance(idx, int):
            raise _einval(f"zone {zone!r}: not one of {ZONE_NAMES}")
        norm[(nid, idx)] = (managed, present)
    nids = sorted({nid for nid, _ in norm} | {nid for _, nid in online_cpus})
    nodes = [bare_pgdat(nid, [bare_zone(nid, i, *norm.get((nid, i), (0, 0)))
                              for i in range(MAX_NR_ZONES)]) for nid in nids]
    return BareMachine(nodes, online_cpus, arch, **globals_)


def boot_state(counts, online_cpus=((0, 0),), arch=None, **globals_) -> BareMachine:
    """:func:`make_state` (khugepaged not yet running), then :func:`boot_watermarks`."""
    globals_.setdefault("khugepaged_running", False)
    m = make_state(counts, online_cpus, arch, **globals_)
    boot_watermarks(m)
    return m


def adjust_present_page_count(m, zone: Zone, count: int) -> None:
    """zone->present_pages += count (mm/memory_hotplug.c:adjust_present_page_count, 6.1)."""
    zone.present_pages += count


def online_pages_watermarks(m, nid: int, idx: int, nr_pages: int,
                            nr_vmemmap_pages: int = 0) -> None:
    """The watermark-relevant part of onlining one memory block into zone (nid, idx).

    drivers/base/memory.c:memory_block_online + mm/memory_hotplug.c:online_pages (6.1):
    setup_zone_pageset if the zone was empty, managed and present += nr_pages (pages onlined,
    vmemmap excluded), init_per_zone_wmark_min, and only then present += nr_vmemmap_pages.
    """
    zone = zone_of(m, nid, idx)
    if nr_pages <= 0 or nr_vmemmap_pages < 0:
        raise _einval(f"online of {nr_pages} pages (+{nr_vmemmap_pages} vmemmap): "
                      "nr_pages must be > 0, vmemmap pages >= 0")
    if not zone.populated_zone():
        setup_zone_pageset(m, zone)
    # online_pages_range raises managed before present; both precede the recomputation.
    adjust_present_page_count(m, zone, nr_pages)
    m.adjust_managed_page_count(zone, nr_pages)
    init_per_zone_wmark_min(m)
    adjust_present_page_count(m, zone, nr_vmemmap_pages)


def offline_pages_watermarks(m, nid: int, idx: int, nr_pages: int,
                             nr_vmemmap_pages: int = 0) -> None:
    """The watermark-relevant part of a successful offline of one memory block.

    drivers/base/memory.c:memory_block_offline + mm/memory_hotplug.c:offline_pages (6.1):
    present -= nr_vmemmap_pages first, zone_pcp_disable/enable around the isolation, managed
    and present -= nr_pages, init_per_zone_wmark_min, then zone_pcp_reset if the zone is now
    empty. A failed offline recomputes nothing.
    """
    z = zone_of(m, nid, idx)
    if nr_pages <= 0 or nr_vmemmap_pages < 0:
        raise _einval(f"offline of {nr_pages} pages (+{nr_vmemmap_pages} vmemmap): "
                      "nr_pages must be > 0, vmemmap pages >= 0")
    if nr_pages > z.managed_pages or nr_pages + nr_vmemmap_pages > z.present_pages:
        raise _einval(f"offline of {nr_pages} pages (+{nr_vmemmap_pages} vmemmap) from node "
                      f"{nid} zone {z.name} with {z.managed_pages} managed / "
                      f"{z.present_pages} present pages")
    adjust_present_page_count(m, z, -nr_vmemmap_pages)
    zone_pcp_disable(m, z)
    zone_pcp_enable(m, z)
    m.adjust_managed_page_count(z, -nr_pages)
    adjust_present_page_count(m, z, -nr_pages)
    init_per_zone_wmark_min(m)
    if not z.populated_zone():
        zone_pcp_reset(m, z)


# --- what /proc/zoneinfo prints ------------------------------------------------------------------

@dataclass(frozen=True)
class ZoneInfo:
    """The watermark-related lines of one zone in /proc/zoneinfo (mm/vmstat.c:zoneinfo_show_print, 6.1).

    ``pagesets`` (``(cpu, high, batch)`` per online CPU) and ``stat_threshold`` are None for an
    unpopulated zone, which prints neither.
    """

    nid: int
    name: str
    boost: int
    min: int
    low: int
    high: int
    present: int
    managed: int
    protection: tuple
    pagesets: Optional[tuple] = None
    stat_threshold: Optional[int] = None


def zoneinfo(m) -> tuple:
    """One :class:`ZoneInfo` per zone of every online node, in /proc/zoneinfo order."""
    out = []
    for z in for_each_zone(m):
        pagesets = threshold = None
        if z.populated_zone():
            high, batch = zone_pageset(m, z)
            pagesets = tuple((cpu, high, batch) for cpu, _ in sorted(m.page_alloc.online_cpus))
            threshold = z.stat_threshold
        out.append(ZoneInfo(z.node, z.name, z.watermark_boost, z.min_wmark, z.low_wmark,
                            z.high_wmark, z.present_pages, z.managed_pages,
                            tuple(z.lowmem_reserve), pagesets, threshold))
    return tuple(out)
