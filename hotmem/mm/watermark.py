"""The watermark and per-CPU pageset part of mm/page_alloc.c (Linux 6.1), with mm/vmstat.c's
stat thresholds and mm/khugepaged.c's min_free_kbytes.

What ``init_per_zone_wmark_min`` recomputes at boot and after every successful
``online_pages``/``offline_pages``: ``min_free_kbytes``, each zone's min/low/high/promo
watermarks, the ``lowmem_reserve`` arrays (``protection:`` in /proc/zoneinfo),
``totalreserve_pages``, the per-CPU pageset ``high``/``batch`` and the vmstat thresholds, plus
khugepaged's raise of ``min_free_kbytes``.

The functions read and write ``struct zone`` / ``pglist_data`` (:mod:`hotmem.mm.mmzone`) of
the online nodes directly, as the kernel's for_each_zone loops do, and the globals and sysctls
of mm/page_alloc.c in :class:`PageAllocGlobals` (``m.page_alloc``). ``m`` is the Machine (or a
:class:`BareMachine` in unit tests). The per-CPU pagesets' high/batch are written into the
page allocator of the core by ``__zone_set_pageset_high_and_batch``.

Arch-dependent: PAGE_SHIFT and pageblock_order come from the machine's arch profile
(``m.arch.page_shift``, ``m.arch.pageblock_order``): 64 KiB pages change every conversion
between pages and kB, zone_batchsize's 1 MiB cap, the vmstat threshold's 128 MiB unit,
hugepage_init's 512 MiB floor and khugepaged's pageblocks. The zones iterated are those the
build has (``pgdat.node_zones``); there is no HIGHMEM, so the highmem branch of
``__setup_per_zone_wmarks`` never runs. sysctl_lowmem_reserve_ratio is per zone type and the
same on every arch (DMA 256, DMA32 256, Normal 32, Movable 0); MIGRATE_PCPTYPES is 3.

History: the result depends on the previous state where the kernel's does.
``calculate_min_free_kbytes`` reads the *current* high watermarks (through
``nr_free_buffer_pages``) before they are recomputed, ``user_min_free_kbytes`` decides whether
``min_free_kbytes`` is replaced, and ``zone_set_pageset_high_and_batch`` skips writing the
per-CPU pagesets when the newly computed pair equals the zone's remembered pair.
``min_free_kbytes`` does go down when memory goes away: with ``user_min_free_kbytes`` unset (-1)
``calculate_min_free_kbytes`` overwrites it with the square-root value, and khugepaged then only
raises it back to its own (capped) recommendation.
"""
from __future__ import annotations

import errno
import math
from dataclasses import dataclass
from typing import Iterator, Optional

from hotmem.errors import HotplugError
from hotmem.mm.mmzone import (MAX_NR_ZONES, WMARK_HIGH, WMARK_LOW, WMARK_MIN, WMARK_PROMO,
                              ZONE_DEVICE, ZONE_DMA, ZONE_DMA32, ZONE_MOVABLE, ZONE_NAMES,
                              ZONE_NORMAL, PglistData, Zone)

__all__ = ["ZONE_DMA", "ZONE_DMA32", "ZONE_NORMAL", "ZONE_MOVABLE", "ZONE_DEVICE", "ZONE_NAMES",
           "WMARK_MIN", "WMARK_LOW", "WMARK_HIGH", "WMARK_PROMO"]

# --- constants (include/linux/mmzone.h, mm/page_alloc.c, mm/vmscan.c; 6.1) --------------------

SZ_1M = 1 << 20
MIGRATE_PCPTYPES = 3                        # Unmovable, Movable, Reclaimable (every arch)
NR_WMARK = 4

GFP_USER_ZONE = ZONE_NORMAL                 # gfp_zone(GFP_USER) == gfp_zone(GFP_KERNEL)

# The boot pageset never keeps a page: high 0 < batch 1 (mm/page_alloc.c, 6.1).
BOOT_PAGESET_HIGH = 0
BOOT_PAGESET_BATCH = 1
MIN_PERCPU_PAGELIST_HIGH_FRACTION = 8

MIN_FREE_KBYTES_DEFAULT = 1024              # mm/page_alloc.c: int min_free_kbytes = 1024
SYSCTL_LOWMEM_RESERVE_RATIO = (256, 256, 32, 0, 0)   # DMA, DMA32, NORMAL, MOVABLE, DEVICE
WATERMARK_SCALE_FACTOR = 10
SYSCTL_MIN_UNMAPPED_RATIO = 1               # mm/vmscan.c
SYSCTL_MIN_SLAB_RATIO = 5                   # mm/vmscan.c


def _einval(message: str) -> HotplugError:
    return HotplugError(errno.EINVAL, message)


def fls(x: int) -> int:
    """Position of the most significant set bit, 1-based; fls(0) = 0 (include/asm-generic/bitops/fls.h)."""
    return x.bit_length()


def rounddown_pow_of_two(n: int) -> int:
    """Largest power of two <= n (include/linux/log2.h:rounddown_pow_of_two)."""
    if n < 1:
        raise _einval(f"rounddown_pow_of_two({n}): argument must be positive")
    return 1 << (n.bit_length() - 1)


def int_sqrt(x: int) -> int:
    """Floor of the square root (lib/math/int_sqrt.c:int_sqrt)."""
    return math.isqrt(x)


def mult_frac(x: int, numer: int, denom: int) -> int:
    """x * numer / denom without overflow, as include/linux/math.h:mult_frac splits it."""
    q, r = divmod(x, denom)
    return q * numer + (r * numer) // denom


def pageblock_nr_pages(m) -> int:
    """include/linux/pageblock-flags.h:pageblock_nr_pages (1 << pageblock_order of the arch)."""
    return 1 << m.arch.pageblock_order


def thp_min_totalram_pages(m) -> int:
    """512 MiB in pages: hugepage_init leaves THP off below it (mm/huge_memory.c, 6.1)."""
    return 512 << (20 - m.arch.page_shift)


# --- the globals --------------------------------------------------------------------------------

@dataclass
class PageAllocGlobals:
    """The globals and sysctls of mm/page_alloc.c and mm/khugepaged.c (6.1) the watermark code
    reads or writes; the Machine keeps one as ``m.page_alloc``.

    ``online_cpus`` holds ``(cpu, nid)`` for each online CPU; ``local_nid`` is ``numa_node_id()``
    of the CPU running the hotplug operation. ``thp_enabled`` is ``hugepage_flags_enabled()``
    and ``khugepaged_running`` says whether ``khugepaged_thread`` exists. ``boot_pageset`` is
    the (high, batch) of the shared boot_pageset every zone without its own pagesets uses.
    """

    online_cpus: tuple = ((0, 0),)
    local_nid: int = 0
    min_free_kbytes: int = MIN_FREE_KBYTES_DEFAULT
    user_min_free_kbytes: int = -1
    watermark_scale_factor: int = WATERMARK_SCALE_FACTOR
    percpu_pagelist_high_fraction: int = 0
    lowmem_reserve_ratio: tuple = SYSCTL_LOWMEM_RESERVE_RATIO
    thp_enabled: bool = True
    khugepaged_running: bool = True
    totalreserve_pages: int = 0
    boot_pageset: tuple = (BOOT_PAGESET_HIGH, BOOT_PAGESET_BATCH)

    def num_online_cpus(self) -> int:
        return len(self.online_cpus)

    def nr_node_cpus(self, nid: int) -> int:
        """cpumask_weight(cpumask_of_node(nid))."""
        return sum(1 for _, n in self.online_cpus if n == nid)

    def key(self) -> tuple:
        return (self.online_cpus, self.local_nid, self.min_free_kbytes,
                self.user_min_free_kbytes, self.watermark_scale_factor,
                self.percpu_pagelist_high_fraction, self.lowmem_reserve_ratio,
                self.thp_enabled, self.khugepaged_running, self.totalreserve_pages,
                self.boot_pageset)


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


# --- for_each_online_pgdat / for_each_zone ----------------------------------------------------

def for_each_online_pgdat(m) -> Iterator[PglistData]:
    return (p for _, p in sorted(m.pgdats.items()) if p.online)


def for_each_zone(m) -> Iterator[Zone]:
    """Every zone the build has, of every online node (include/linux/mmzone.h:for_each_zone)."""
    for pgdat in for_each_online_pgdat(m):
        yield from pgdat.node_zones


def for_each_populated_zone(m) -> Iterator[Zone]:
    return (z for z in for_each_zone(m) if z.populated_zone())


def _totalram_pages(m) -> int:
    return sum(z.managed_pages for z in for_each_zone(m))


def zone_of(m, nid: int, idx: int) -> Zone:
    """NODE_DATA(nid)->node_zones[idx] of an online node, refusing others."""
    pgdat = m.pgdats.get(nid)
    if pgdat is None or not pgdat.online:
        raise _einval(f"node {nid}: not an online node")
    if not 0 <= idx < len(pgdat.node_zones):
        raise _einval(f"zone index {idx}: must be 0..{len(pgdat.node_zones) - 1}")
    return pgdat.node_zones[idx]


# --- nr_free_buffer_pages ----------------------------------------------------------------------

def node_zonelist(m, nid: int) -> tuple:
    """The populated zones of ``nid``'s ZONELIST_FALLBACK, in order.

    mm/page_alloc.c:build_zonelists + build_zonerefs_node (6.1): node by node (this node
    first, then the others by id), each node's populated zones from the highest index down.
    The kernel rebuilds it after init_per_zone_wmark_min when an offline empties a zone; the
    stale entry has 0 managed pages, so leaving it out changes no sum.
    """
    nids = [p.node_id for p in for_each_online_pgdat(m)]
    order = [nid] + [n for n in nids if n != nid]
    out = []
    for n in order:
        out.extend(z for z in reversed(m.pgdats[n].node_zones) if z.populated_zone())
    return tuple(out)


def nr_free_zone_pages(m, offset: int) -> int:
    """Sum of max(0, managed - high watermark) over the local zonelist's zones with index <= offset.

    mm/page_alloc.c:nr_free_zone_pages (6.1). The high watermarks are the ones the zones hold
    right now (the previous computation's, when called first in init_per_zone_wmark_min).
    """
    total = 0
    for z in node_zonelist(m, m.page_alloc.local_nid):
        if z.idx <= offset:
            managed, high = z.managed_pages, z.high_wmark
            if managed > high:
                total += managed - high
    return total


def nr_free_buffer_pages(m) -> int:
    """nr_free_zone_pages(gfp_zone(GFP_USER)) (mm/page_alloc.c:nr_free_buffer_pages, 6.1)."""
    return nr_free_zone_pages(m, GFP_USER_ZONE)


# --- min_free_kbytes and watermarks ------------------------------------------------------------

def calculate_min_free_kbytes(m) -> None:
    """min_free_kbytes = clamp(int_sqrt(lowmem_kbytes * 16), 128, 262144) unless the user's value wins.

    mm/page_alloc.c:calculate_min_free_kbytes (6.1): lowmem_kbytes = nr_free_buffer_pages() *
    (PAGE_SIZE >> 10). Replaced whenever the new value exceeds ``user_min_free_kbytes`` (-1
    when never written), so it can go down; otherwise left as it is.
    """
    g = m.page_alloc
    lowmem_kbytes = nr_free_buffer_pages(m) * (1 << (m.arch.page_shift - 10))
    new_min_free_kbytes = int_sqrt(lowmem_kbytes * 16)
    if new_min_free_kbytes > g.user_min_free_kbytes:
        g.min_free_kbytes = min(max(new_min_free_kbytes, 128), 262144)


def __setup_per_zone_wmarks(m) -> None:
    """Per-zone min/low/high/promo from min_free_kbytes; boost 0; then totalreserve_pages.

    mm/page_alloc.c:__setup_per_zone_wmarks (6.1), lowmem branch only. MIN is the zone's share
    of pages_min (min_free_kbytes >> (PAGE_SHIFT - 10)) by managed pages over all zones of all
    online nodes (Movable included); the low/high/promo steps are max(MIN/4, managed *
    watermark_scale_factor / 10000).
    """
    g = m.page_alloc
    pages_min = g.min_free_kbytes >> (m.arch.page_shift - 10)
    zones = list(for_each_zone(m))
    managed = [z.managed_pages for z in zones]
    lowmem_pages = sum(managed)
    if lowmem_pages == 0:
        raise _einval("__setup_per_zone_wmarks: no zone has managed pages (division by zero)")
    for z, zm in zip(zones, managed):
        wmin = pages_min * zm // lowmem_pages
        tmp = max(wmin >> 2, mult_frac(zm, g.watermark_scale_factor, 10000))
        low = wmin + tmp
        high = low + tmp
        z._watermark = (wmin, low, high, high + tmp)
        z.watermark_boost = 0
    calculate_totalreserve_pages(m)


def setup_per_zone_wmarks(m) -> None:
    """__setup_per_zone_wmarks, then zone_pcp_update(zone, 0) for every zone (populated or not).

    mm/page_alloc.c:setup_per_zone_wmarks (6.1).
    """
    __setup_per_zone_wmarks(m)
    for z in list(for_each_zone(m)):
        zone_pcp_update(m, z, 0)


# --- lowmem_reserve and totalreserve_pages -----------------------------------------------------

def setup_per_zone_lowmem_reserve(m) -> None:
    """lowmem_reserve[j] of zone i (i < j) = managed of zones i+1..j / ratio[i], then totalreserve.

    mm/page_alloc.c:setup_per_zone_lowmem_reserve (6.1): all zeros when ratio[i] is 0 or zone
    i has no managed pages; entries j <= i and the last zone's array are never written.
    """
    ratios = m.page_alloc.lowmem_reserve_ratio
    for pgdat in for_each_online_pgdat(m):
        zones = pgdat.node_zones
        managed = [z.managed_pages for z in zones]
        for i in range(len(zones) - 1):
            z = zones[i]
            ratio = ratios[i]
            clear = not ratio or not managed[i]
            reserve = list(z.lowmem_reserve)
            total = 0
            for j in range(i + 1, len(zones)):
                total += managed[j]
                reserve[j] = 0 if clear else total // ratio
            z.lowmem_reserve = tuple(reserve)
    calculate_totalreserve_pages(m)


def calculate_totalreserve_pages(m) -> None:
    """Sum over zones of min(managed, max(lowmem_reserve[j >= i]) + high watermark).

    mm/page_alloc.c:calculate_totalreserve_pages (6.1); per node and global.
    """
    total = 0
    for pgdat in for_each_online_pgdat(m):
        node_total = 0
        for z in pgdat.node_zones:
            mx = max([0] + [r for r in z.lowmem_reserve[z.idx:]])
            mx += z.high_wmark
            node_total += min(mx, z.managed_pages)
        pgdat.totalreserve_pages = node_total
        total += node_total
    m.page_alloc.totalreserve_pages = total


# --- per-CPU pagesets --------------------------------------------------------------------------

def zone_batchsize(m, zone: Zone) -> int:
    """min(managed >> 10, SZ_1M / PAGE_SIZE) / 4 (at least 1), rounded to 2^n - 1.

    mm/page_alloc.c:zone_batchsize (6.1, CONFIG_MMU). Gives 0 for zones below 8192 managed
    pages: the caller raises it to 1, which is why DMA shows batch 1.
    """
    batch = min(zone.managed_pages >> 10, SZ_1M >> m.arch.page_shift)
    batch //= 4
    if batch < 1:
        batch = 1
    return rounddown_pow_of_two(batch + batch // 2) - 1


def zone_highsize(m, zone: Zone, batch: int, cpu_online: int = 0) -> int:
    """The low watermark (or managed / percpu_pagelist_high_fraction) split over the node's CPUs.

    mm/page_alloc.c:zone_highsize (6.1): divided by the online CPUs of the zone's node
    (+ cpu_online while a CPU comes up; all online CPUs for a CPU-less node), at least
    batch * 4.
    """
    g = m.page_alloc
    if not g.percpu_pagelist_high_fraction:
        total_pages = zone.low_wmark
    else:
        total_pages = zone.managed_pages // g.percpu_pagelist_high_fraction
    nr_split_cpus = g.nr_node_cpus(zone.node) + cpu_online
    if not nr_split_cpus:
        nr_split_cpus = g.num_online_cpus()
    high = total_pages // nr_split_cpus
    return max(high, batch << 2)


#: while init_per_zone_wmark_min is being memoized: the pageset writes, in order
_pcp_writes: Optional[list] = None


def _pageset_update(m, zone: Zone, high: int, batch: int) -> None:
    """mm/page_alloc.c:pageset_update on every possible CPU of one zone's pagesets."""
    alloc = zone.allocator
    if alloc is None:
        if zone.own_pageset:
            zone._pcp = (high, batch)
        return
    for cpu in range(m.nr_cpus):
        alloc.set_pcp(zone.zoneid, cpu, high, batch)


def __zone_set_pageset_high_and_batch(m, zone: Zone, high: int, batch: int) -> None:
    """Write (high, batch) into every possible CPU's pageset of the zone.

    mm/page_alloc.c:__zone_set_pageset_high_and_batch (6.1). A zone still on the boot pageset
    writes the shared ``boot_pageset``, which every such zone of every node, online or not,
    sees (the core keeps a copy per zone: all of them are written).
    """
    if _pcp_writes is not None:
        _pcp_writes.append((zone.node, zone.idx, high, batch))
    if zone.own_pageset:
        _pageset_update(m, zone, high, batch)
        return
    m.page_alloc.boot_pageset = (high, batch)
    for pgdat in m.pgdats.values():
        for z in pgdat.node_zones:
            if not z.own_pageset:
                _pageset_update(m, z, high, batch)


def zone_set_pageset_high_and_batch(m, zone: Zone, cpu_online: int = 0) -> None:
    """batch = max(1, zone_batchsize), high = zone_highsize; pagesets written only on a change.

    mm/page_alloc.c:zone_set_pageset_high_and_batch (6.1): compared with the zone's remembered
    pageset_high/batch, not with what the pagesets hold.
    """
    new_batch = max(1, zone_batchsize(m, zone))
    new_high = zone_highsize(m, zone, new_batch, cpu_online)
    if zone.pageset_high == new_high and zone.pageset_batch == new_batch:
        return
    zone.pageset_high, zone.pageset_batch = new_high, new_batch
    __zone_set_pageset_high_and_batch(m, zone, new_high, new_batch)


def zone_pcp_update(m, zone: Zone, cpu_online: int = 0) -> None:
    """mm/page_alloc.c:zone_pcp_update (6.1): zone_set_pageset_high_and_batch under the pcp lock."""
    zone_set_pageset_high_and_batch(m, zone, cpu_online)


def setup_zone_pageset(m, zone: Zone) -> None:
    """Fresh per-CPU pagesets (high 0, batch 1) and zonestats, then zone_set_pageset_high_and_batch.

    mm/page_alloc.c:setup_zone_pageset + per_cpu_pages_init (6.1). online_pages calls it while
    the zone still has 0 managed pages; if the pair computed then equals the remembered one,
    the new pagesets keep high 0 / batch 1 until a later computation differs.
    """
    zone.own_pageset = True
    _pageset_update(m, zone, BOOT_PAGESET_HIGH, BOOT_PAGESET_BATCH)
    zone.stat_threshold = 0
    zone_set_pageset_high_and_batch(m, zone, 0)


def setup_per_cpu_pageset(m) -> None:
    """setup_zone_pageset for every populated zone (mm/page_alloc.c:setup_per_cpu_pageset, 6.1;
    the per-node stats are not modelled)."""
    for z in list(for_each_populated_zone(m)):
        setup_zone_pageset(m, z)


def zone_pcp_reset(m, zone: Zone) -> None:
    """Point the zone back at the boot pageset and zonestats (mm/page_alloc.c:zone_pcp_reset, 6.1).

    The remembered pageset_high/batch are left as they are. The core drains the zone's lists
    first (they hold nothing by now in the kernel: offline_pages drained them).
    """
    if zone.allocator is not None:
        zone.allocator.drain_zone_pages(zone.zoneid)
    if not zone.own_pageset:
        return
    zone.own_pageset = False
    zone.stat_threshold = 0
    _pageset_update(m, zone, *m.page_alloc.boot_pageset)


def zone_pcp_disable(m, zone: Zone) -> None:
    """Pagesets to high 0, batch 1, then drained (mm/page_alloc.c:zone_pcp_disable, 6.1)."""
    if zone.allocator is not None:
        zone.allocator.zone_pcp_disable(zone.zoneid)
    else:
        __zone_set_pageset_high_and_batch(m, zone, 0, 1)


def zone_pcp_enable(m, zone: Zone) -> None:
    """Pagesets back to the remembered pageset_high/batch (mm/page_alloc.c:zone_pcp_enable, 6.1)."""
    if zone.allocator is not None:
        zone.allocator.zone_pcp_enable(zone.zoneid)
    else:
        __zone_set_pageset_high_and_batch(m, zone, zone.pageset_high, zone.pageset_batch)


def zone_pageset(m, zone: Zone) -> tuple:
    """(high, batch) of the pagesets the zone uses: its own, or the shared boot_pageset."""
    pcp = zone.pcp
    return pcp if pcp is not None else m.page_alloc.boot_pageset


# --- vmstat thresholds -------------------------------------------------------------------------

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


# --- NUMA reclaim ratios -----------------------------------------------------------------------

def setup_min_unmapped_ratio(m) -> None:
    """pgdat->min_unmapped_pages = sum of managed * 1 / 100 per zone (mm/page_alloc.c, 6.1)."""
    for pgdat in for_each_online_pgdat(m):
        pgdat.min_unmapped_pages = sum(z.managed_pages * SYSCTL_MIN_UNMAPPED_RATIO // 100
                                       for z in pgdat.node_zones)


def setup_min_slab_ratio(m) -> None:
    """pgdat->min_slab_pages = sum of managed * 5 / 100 per zone (mm/page_alloc.c, 6.1)."""
    for pgdat in for_each_online_pgdat(m):
        pgdat.min_slab_pages = sum(z.managed_pages * SYSCTL_MIN_SLAB_RATIO // 100
                                   for z in pgdat.node_zones)


# --- khugepaged --------------------------------------------------------------------------------

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


def hugepage_init(m) -> None:
    """The subsys_initcall: THP off below 512 MiB of totalram, else start khugepaged.

    mm/huge_memory.c:hugepage_init (6.1): totalram_pages() < (512 << (20 - PAGE_SHIFT)).
    """
    if _totalram_pages(m) < thp_min_totalram_pages(m):
        m.page_alloc.thp_enabled = m.page_alloc.khugepaged_running = False
        return
    start_stop_khugepaged(m)


# --- the entry points --------------------------------------------------------------------------

def _init_per_zone_wmark_min(m) -> None:
    calculate_min_free_kbytes(m)
    setup_per_zone_wmarks(m)
    refresh_zone_stat_thresholds(m)
    setup_per_zone_lowmem_reserve(m)
    setup_min_unmapped_ratio(m)
    setup_min_slab_ratio(m)
    khugepaged_min_free_kbytes_update(m)


#: init_per_zone_wmark_min's results by its inputs: repeated hotplug cycles pay for each
#: distinct state once (a 128 MiB online/offline cycle spends most of its Python time here)
_MEMO: dict = {}
_MEMO_MAX = 4096


def _memo_key(m) -> tuple:
    """Every input init_per_zone_wmark_min reads: the arch's page and pageblock sizes, the
    globals, and per zone of each online node its counts, watermarks, reserves, remembered
    pageset sizes, which pageset it uses and its thresholds."""
    return (m.arch.page_shift, m.arch.pageblock_order, m.page_alloc.key(),
            tuple((p.node_id, tuple(
                (z.managed_pages, z.present_pages, tuple(z._watermark), z.watermark_boost,
                 tuple(z.lowmem_reserve), z.pageset_high, z.pageset_batch, z.own_pageset,
                 z.stat_threshold, z.percpu_drift_mark) for z in p.node_zones))
                  for p in for_each_online_pgdat(m)))


def _memo_outputs(m, writes) -> tuple:
    g = m.page_alloc
    return ((g.min_free_kbytes, g.totalreserve_pages),
            tuple(((p.stat_threshold, p.min_unmapped_pages, p.min_slab_pages,
                    p.totalreserve_pages),
                   tuple((z._watermark, z.watermark_boost, z.lowmem_reserve, z.pageset_high,
                          z.pageset_batch, z.stat_threshold, z.percpu_drift_mark)
                         for z in p.node_zones))
                  for p in for_each_online_pgdat(m)),
            tuple(writes))


def _memo_write(m, out) -> None:
    g = m.page_alloc
    (g.min_free_kbytes, g.totalreserve_pages), nodes, writes = out
    for pgdat, (pg, zones) in zip(for_each_online_pgdat(m), nodes):
        (pgdat.stat_threshold, pgdat.min_unmapped_pages, pgdat.min_slab_pages,
         pgdat.totalreserve_pages) = pg
        for z, vals in zip(pgdat.node_zones, zones):
            (z._watermark, z.watermark_boost, z.lowmem_reserve, z.pageset_high,
             z.pageset_batch, z.stat_threshold, z.percpu_drift_mark) = vals
    for nid, idx, high, batch in writes:
        __zone_set_pageset_high_and_batch(m, m.pgdats[nid].node_zones[idx], high, batch)


def init_per_zone_wmark_min(m) -> None:
    """Everything recomputed at boot and after each online/offline, in the kernel's order.

    mm/page_alloc.c:init_per_zone_wmark_min (6.1): calculate_min_free_kbytes,
    setup_per_zone_wmarks, refresh_zone_stat_thresholds, setup_per_zone_lowmem_reserve,
    setup_min_unmapped_ratio, setup_min_slab_ratio, khugepaged_min_free_kbytes_update (which
    runs setup_per_zone_wmarks again). Memoized on every input it reads; a hit writes the
    recorded outputs and replays the recorded pageset writes.
    """
    global _pcp_writes
    key = _memo_key(m)
    out = _MEMO.get(key)
    if out is not None:
        _memo_write(m, out)
        return
    writes = _pcp_writes = []
    try:
        _init_per_zone_wmark_min(m)
    finally:
        _pcp_writes = None
    if len(_MEMO) >= _MEMO_MAX:
        _MEMO.clear()
    _MEMO[key] = _memo_outputs(m, writes)


def min_free_kbytes_sysctl_handler(m, value: int) -> None:
    """A write to vm.min_free_kbytes: sets it and user_min_free_kbytes, then setup_per_zone_wmarks.

    mm/page_alloc.c:min_free_kbytes_sysctl_handler (6.1); values below 0 are refused.
    """
    if value < 0:
        raise _einval(f"min_free_kbytes {value}: must be >= 0")
    m.page_alloc.min_free_kbytes = m.page_alloc.user_min_free_kbytes = value
    setup_per_zone_wmarks(m)


def boot_watermarks(m) -> None:
    """The watermark part of boot: every zone on the boot pageset (zone_pcp_init), then

    init/main.c order (6.1): setup_per_cpu_pageset (setup_zone_pageset for populated zones,
    watermarks still 0), postcore_initcall init_per_zone_wmark_min with khugepaged not yet
    started, subsys_initcall hugepage_init (start_stop_khugepaged ->
    set_recommended_min_free_kbytes -> setup_per_zone_wmarks; lowmem_reserve is not
    recomputed). Pages freed later (initrd, init sections) change managed counts without any
    recomputation. Intermediate pageset values from secondary CPU bring-up
    (page_alloc_cpu_online) are overwritten at postcore and not modelled.
    """
    setup_per_cpu_pageset(m)
    init_per_zone_wmark_min(m)
    if m.page_alloc.thp_enabled:
        hugepage_init(m)


def machine_page_alloc_globals(m) -> PageAllocGlobals:
    """The globals at boot of a Machine: its CPUs numbered node by node, CPU 0's node local."""
    cpus = tuple((c, nid) for nid, n in sorted(m.cpu_nodes.items()) for c in range(n))
    cpus = tuple((i, nid) for i, (_, nid) in enumerate(cpus))
    return PageAllocGlobals(online_cpus=cpus, local_nid=m.numa_node_id(), khugepaged_running=False)


# --- Machine-less use (unit tests of the arithmetic) --------------------------------------------

class BareMachine:
    """What this module reads of a Machine, without boot or page allocator: online nodes
    (``pgdats``), ``page_alloc`` globals and the ``arch`` profile (x86_64 by default).

    Its zones have no allocator, so each holds its own managed page count
    (``Zone._managed_pages``) and its own pagesets' (high, batch) (``Zone._pcp``); nothing else
    differs from the Machine's zones.
    """

    allocator = None

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


# --- what /proc/zoneinfo prints ----------------------------------------------------------------

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
