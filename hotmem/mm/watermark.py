"""The watermark, lowmem reserve and per-CPU pageset sizing part of mm/page_alloc.c (Linux 6.1).

The steps ``init_per_zone_wmark_min`` (:mod:`hotmem.mm.page_alloc`) runs at boot and after every
successful ``online_pages``/``offline_pages``: ``min_free_kbytes``, each zone's min/low/high/promo
watermarks, the ``lowmem_reserve`` arrays (``protection:`` in /proc/zoneinfo),
``totalreserve_pages``, the per-CPU pageset ``high``/``batch`` and the NUMA reclaim ratios. The
vmstat thresholds are in :mod:`hotmem.mm.vmstat`, khugepaged's raise of ``min_free_kbytes`` in
:mod:`hotmem.mm.khugepaged`, hugepage_init in :mod:`hotmem.mm.huge_memory`.

The functions read and write ``struct zone`` / ``pglist_data`` (:mod:`hotmem.mm.mmzone`) of
the online nodes directly, as the kernel's for_each_zone loops do, and the globals and sysctls
of mm/page_alloc.c in :class:`PageAllocGlobals` (``m.page_alloc``). ``m`` is the Machine (or
the tests' Machine-less ``BareMachine``). The per-CPU pagesets' high/batch are written into the
page allocator of the core by ``__zone_set_pageset_high_and_batch``.

Arch-dependent: PAGE_SHIFT and pageblock_order come from the machine's arch profile
(``m.arch.page_shift``, ``m.arch.pageblock_order``): 64 KiB pages change every conversion
between pages and kB and zone_batchsize's 1 MiB cap here (and, in the modules named above,
the vmstat threshold's 128 MiB unit, hugepage_init's 512 MiB floor and khugepaged's
pageblocks). The zones iterated are those the build has (``pgdat.node_zones``); there is no
HIGHMEM, so the highmem branch of ``__setup_per_zone_wmarks`` never runs.
sysctl_lowmem_reserve_ratio is per zone type and the same on every arch (DMA 256, DMA32 256,
Normal 32, Movable 0).

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
from dataclasses import dataclass, field
from typing import Iterator, Optional

from hotmem.errors import HotplugError
from hotmem.mm.mmzone import (WMARK_HIGH, WMARK_LOW, WMARK_MIN, WMARK_PROMO, ZONE_DEVICE,
                              ZONE_DMA, ZONE_DMA32, ZONE_MOVABLE, ZONE_NAMES, ZONE_NORMAL,
                              PglistData, Zone)

__all__ = ["ZONE_DMA", "ZONE_DMA32", "ZONE_NORMAL", "ZONE_MOVABLE", "ZONE_DEVICE", "ZONE_NAMES",
           "WMARK_MIN", "WMARK_LOW", "WMARK_HIGH", "WMARK_PROMO"]

# --- constants (include/linux/mmzone.h, mm/page_alloc.c, mm/vmscan.c; 6.1) --------------------

SZ_1M = 1 << 20
NR_WMARK = 4

GFP_USER_ZONE = ZONE_NORMAL                 # gfp_zone(GFP_USER) == gfp_zone(GFP_KERNEL)

# The boot pageset never keeps a page: high 0 < batch 1 (mm/page_alloc.c, 6.1).
BOOT_PAGESET_HIGH = 0
BOOT_PAGESET_BATCH = 1
MIN_PERCPU_PAGELIST_HIGH_FRACTION = 8

#: include/linux/swap.h
SWAP_CLUSTER_MAX = 32
MIN_FREE_KBYTES_DEFAULT = 1024              # mm/page_alloc.c: int min_free_kbytes = 1024
SYSCTL_LOWMEM_RESERVE_RATIO = (256, 256, 32, 0, 0)   # DMA, DMA32, NORMAL, MOVABLE, DEVICE
WATERMARK_SCALE_FACTOR = 10
SYSCTL_MIN_UNMAPPED_RATIO = 1               # mm/vmscan.c
SYSCTL_MIN_SLAB_RATIO = 5                   # mm/vmscan.c


def _einval(message: str) -> HotplugError:
    return HotplugError(errno.EINVAL, message)


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
    #: not a kernel global: when a list, the pageset writes of
    #: __zone_set_pageset_high_and_batch are appended to it, in order (tests compare them)
    pcp_writes: Optional[list] = field(default=None, repr=False, compare=False)
    #: not a kernel global: per node, what the incremental init_per_zone_wmark_min
    #: (hotmem.mm.page_alloc) last computed of its node-local results
    node_cache: dict = field(default_factory=dict, repr=False, compare=False)

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


# --- for_each_online_pgdat / for_each_zone ----------------------------------------------------

def for_each_online_pgdat(m) -> Iterator[PglistData]:
    return (p for _, p in sorted(m.pgdats.items()) if p.online)


def for_each_zone(m) -> Iterator[Zone]:
    """Every zone the build has, of every online node (include/linux/mmzone.h:for_each_zone)."""
    for pgdat in for_each_online_pgdat(m):
        yield from pgdat.node_zones


def for_each_populated_zone(m) -> Iterator[Zone]:
    return (z for z in for_each_zone(m) if z.populated_zone())


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

    mm/page_alloc.c:__setup_per_zone_wmarks (6.1; 6.11+ caps ZONE_MOVABLE as highmem, below).
    MIN is the zone's share
    of pages_min (min_free_kbytes >> (PAGE_SHIFT - 10)) by managed pages over all zones of all
    online nodes (Movable included); the low/high/promo steps are max(MIN/4, managed *
    watermark_scale_factor / 10000).
    """
    g = m.page_alloc
    pages_min = g.min_free_kbytes >> (m.arch.page_shift - 10)
    zones = list(for_each_zone(m))
    managed = [z.managed_pages for z in zones]
    # 6.11+ (read in 6.11.11 and 6.12.118): ZONE_MOVABLE is left out of lowmem_pages and its
    # MIN capped like highmem's, clamp(managed / 1024, SWAP_CLUSTER_MAX, 128)
    movable_capped = m.policy.movable_wmark_like_highmem
    lowmem_pages = sum(zm for z, zm in zip(zones, managed)
                       if not (movable_capped and z.idx == ZONE_MOVABLE))
    if lowmem_pages == 0:
        raise _einval("__setup_per_zone_wmarks: no zone has managed pages (division by zero)")
    for z, zm in zip(zones, managed):
        share = pages_min * zm // lowmem_pages
        wmin = min(max(zm // 1024, SWAP_CLUSTER_MAX), 128) \
            if movable_capped and z.idx == ZONE_MOVABLE else share
        tmp = max(share >> 2, mult_frac(zm, g.watermark_scale_factor, 10000))
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
    writes = m.page_alloc.pcp_writes
    if writes is not None:
        writes.append((zone.node, zone.idx, high, batch))
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


# --- the min_free_kbytes sysctl and the boot globals ---------------------------------------------

def min_free_kbytes_sysctl_handler(m, value: int) -> None:
    """A write to vm.min_free_kbytes: sets it and user_min_free_kbytes, then setup_per_zone_wmarks.

    mm/page_alloc.c:min_free_kbytes_sysctl_handler (6.1); values below 0 are refused.
    """
    if value < 0:
        raise _einval(f"min_free_kbytes {value}: must be >= 0")
    m.page_alloc.min_free_kbytes = m.page_alloc.user_min_free_kbytes = value
    setup_per_zone_wmarks(m)


def machine_page_alloc_globals(m) -> PageAllocGlobals:
    """The globals at boot of a Machine: its CPUs numbered node by node, CPU 0's node local."""
    cpus = tuple((c, nid) for nid, n in sorted(m.cpu_nodes.items()) for c in range(n))
    cpus = tuple((i, nid) for i, (_, nid) in enumerate(cpus))
    return PageAllocGlobals(online_cpus=cpus, local_nid=cpus[0][1],
                            khugepaged_running=False)
