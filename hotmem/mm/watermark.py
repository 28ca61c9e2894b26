"""Zone watermarks, lowmem reserves and per-CPU pageset sizing (Linux 6.1, x86_64).

What ``init_per_zone_wmark_min`` (mm/page_alloc.c, 6.1) recomputes at boot and
after every successful ``online_pages``/``offline_pages``: ``min_free_kbytes``,
each zone's min/low/high/promo watermarks, the ``lowmem_reserve`` arrays
(``protection:`` in /proc/zoneinfo), ``totalreserve_pages``, the per-CPU pageset
``high``/``batch`` and the vmstat thresholds, plus khugepaged's raise of
``min_free_kbytes``.

Everything is a pure function over frozen dataclasses: a :class:`WmarkState`
(the globals and sysctls) holds :class:`Node` objects, each holding its
``MAX_NR_ZONES`` :class:`Zone` objects.  Functions named after a kernel function
that changes kernel state take a state and return a new one; the others return
the number the kernel function returns.

Configuration modelled (Debian ``config-6.1.0-50-amd64``): 4 KiB pages,
zones DMA, DMA32, Normal, Movable, Device (no HIGHMEM, so the highmem branch of
``__setup_per_zone_wmarks`` never runs), NUMA, SMP, MMU, no CMA, THP with
pageblock order 9.

History: the result depends on the previous state where the kernel's does.
``calculate_min_free_kbytes`` reads the *current* high watermarks (through
``nr_free_buffer_pages``) before they are recomputed, ``user_min_free_kbytes``
decides whether ``min_free_kbytes`` is replaced, and
``zone_set_pageset_high_and_batch`` skips writing the per-CPU pagesets when the
newly computed pair equals the zone's remembered pair.  ``min_free_kbytes`` does
go down when memory goes away: with ``user_min_free_kbytes`` unset (-1)
``calculate_min_free_kbytes`` overwrites it with the square-root value, and
khugepaged then only raises it back to its own (capped) recommendation.
"""
from __future__ import annotations

import errno
import math
from dataclasses import dataclass, replace
from typing import Iterator, Optional

from hotmem.errors import HotplugError

# --- constants (include/linux/mmzone.h, mm/page_alloc.c, mm/vmscan.c; 6.1, x86_64) -------------

PAGE_SHIFT = 12
SZ_1M = 1 << 20
pageblock_order = 9                         # HUGETLB_PAGE_ORDER on x86_64
pageblock_nr_pages = 1 << pageblock_order
MIGRATE_PCPTYPES = 3                        # Unmovable, Movable, Reclaimable

from hotmem.mm.mmzone import (MAX_NR_ZONES, WMARK_HIGH, WMARK_LOW, WMARK_MIN,  # noqa: E402
                              WMARK_PROMO, ZONE_DEVICE, ZONE_DMA, ZONE_DMA32, ZONE_MOVABLE,
                              ZONE_NAMES, ZONE_NORMAL)

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
THP_MIN_TOTALRAM_PAGES = 512 << (20 - PAGE_SHIFT)   # hugepage_init: THP off below 512 MiB


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


# --- data ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Zone:
    """The fields of ``struct zone`` (include/linux/mmzone.h, 6.1) these functions read or write.

    ``pageset_high``/``pageset_batch`` are the zone's remembered values
    (``zone->pageset_high/batch``); ``pcp`` is what its own per-CPU pagesets hold
    (identical on every CPU), or None while the zone still points at the shared
    ``boot_pageset`` (never populated, or reset by ``zone_pcp_reset``).
    """

    nid: int
    idx: int
    managed_pages: int = 0
    present_pages: int = 0
    watermark: tuple = (0, 0, 0, 0)          # _watermark[NR_WMARK]
    watermark_boost: int = 0
    lowmem_reserve: tuple = (0,) * MAX_NR_ZONES
    pageset_high: int = BOOT_PAGESET_HIGH
    pageset_batch: int = BOOT_PAGESET_BATCH
    pcp: Optional[tuple] = None              # (high, batch) of per_cpu_pageset; None: boot_pageset
    stat_threshold: int = 0                  # per_cpu_zonestats->stat_threshold (all online CPUs)
    percpu_drift_mark: int = 0

    def __post_init__(self):
        if not 0 <= self.idx < MAX_NR_ZONES:
            raise _einval(f"zone index {self.idx}: must be 0..{MAX_NR_ZONES - 1}")
        if self.nid < 0:
            raise _einval(f"zone node id {self.nid}: must be >= 0")
        if self.managed_pages < 0 or self.present_pages < 0:
            raise _einval(f"node {self.nid} zone {ZONE_NAMES[self.idx]}: managed_pages "
                          f"{self.managed_pages} / present_pages {self.present_pages} negative")
        if self.managed_pages > self.present_pages:
            raise _einval(f"node {self.nid} zone {ZONE_NAMES[self.idx]}: managed_pages "
                          f"{self.managed_pages} > present_pages {self.present_pages}")
        if len(self.watermark) != NR_WMARK or len(self.lowmem_reserve) != MAX_NR_ZONES:
            raise _einval(f"node {self.nid} zone {ZONE_NAMES[self.idx]}: watermark needs "
                          f"{NR_WMARK} and lowmem_reserve {MAX_NR_ZONES} entries")

    @property
    def name(self) -> str:
        return ZONE_NAMES[self.idx]

    @property
    def populated(self) -> bool:
        """include/linux/mmzone.h:populated_zone (present, not managed, pages)."""
        return self.present_pages != 0

    def wmark_pages(self, i: int) -> int:
        """_watermark[i] + watermark_boost (include/linux/mmzone.h:wmark_pages)."""
        return self.watermark[i] + self.watermark_boost

    @property
    def min(self) -> int:
        return self.wmark_pages(WMARK_MIN)

    @property
    def low(self) -> int:
        return self.wmark_pages(WMARK_LOW)

    @property
    def high(self) -> int:
        return self.wmark_pages(WMARK_HIGH)

    @property
    def promo(self) -> int:
        return self.wmark_pages(WMARK_PROMO)


@dataclass(frozen=True)
class Node:
    """The ``pg_data_t`` fields used here; ``zones[i]`` is ``node_zones[i]``.

    ``fallback`` is the node order of the node's ZONELIST_FALLBACK zonelist
    (mm/page_alloc.c:build_zonelists); empty means this node first, then the
    other nodes by id.
    """

    nid: int
    zones: tuple
    fallback: tuple = ()
    stat_threshold: int = 0                  # per_cpu_nodestats->stat_threshold
    min_unmapped_pages: int = 0
    min_slab_pages: int = 0
    totalreserve_pages: int = 0

    def __post_init__(self):
        if len(self.zones) != MAX_NR_ZONES:
            raise _einval(f"node {self.nid}: {len(self.zones)} zones, need {MAX_NR_ZONES}")
        for i, z in enumerate(self.zones):
            if z.idx != i or z.nid != self.nid:
                raise _einval(f"node {self.nid}: zones[{i}] is node {z.nid} zone index {z.idx}")


@dataclass(frozen=True)
class WmarkState:
    """The globals and sysctls of mm/page_alloc.c and mm/khugepaged.c (6.1) plus the online nodes.

    ``online_cpus`` holds ``(cpu, nid)`` for each online CPU; ``local_nid`` is
    ``numa_node_id()`` of the CPU running the hotplug operation.
    ``thp_enabled`` is ``hugepage_flags_enabled()`` and ``khugepaged_running``
    says whether ``khugepaged_thread`` exists.
    """

    nodes: tuple
    online_cpus: tuple = ((0, 0),)
    min_free_kbytes: int = MIN_FREE_KBYTES_DEFAULT
    user_min_free_kbytes: int = -1
    watermark_scale_factor: int = WATERMARK_SCALE_FACTOR
    percpu_pagelist_high_fraction: int = 0
    lowmem_reserve_ratio: tuple = SYSCTL_LOWMEM_RESERVE_RATIO
    thp_enabled: bool = True
    khugepaged_running: bool = True
    local_nid: int = 0
    totalreserve_pages: int = 0
    boot_pageset: tuple = (BOOT_PAGESET_HIGH, BOOT_PAGESET_BATCH)

    def __post_init__(self):
        nids = [n.nid for n in self.nodes]
        if not nids or len(set(nids)) != len(nids):
            raise _einval(f"online node ids {nids}: need at least one, each once")
        if not self.online_cpus:
            raise _einval("online_cpus is empty: at least one CPU must be online")
        cpus = [c for c, _ in self.online_cpus]
        if len(set(cpus)) != len(cpus):
            raise _einval(f"online cpu ids {cpus}: duplicated")
        for cpu, nid in self.online_cpus:
            if nid not in nids:
                raise _einval(f"cpu {cpu} on node {nid}, which is not an online node")
        if self.local_nid not in nids:
            raise _einval(f"local_nid {self.local_nid}: not an online node")
        if self.min_free_kbytes < 0:
            raise _einval(f"min_free_kbytes {self.min_free_kbytes}: must be >= 0")
        if not 1 <= self.watermark_scale_factor <= 3000:
            raise _einval(f"watermark_scale_factor {self.watermark_scale_factor}: must be 1..3000")
        if (self.percpu_pagelist_high_fraction < 0 or 0 < self.percpu_pagelist_high_fraction
                < MIN_PERCPU_PAGELIST_HIGH_FRACTION):
            raise _einval(f"percpu_pagelist_high_fraction {self.percpu_pagelist_high_fraction}: "
                          f"must be 0 or >= {MIN_PERCPU_PAGELIST_HIGH_FRACTION}")
        if len(self.lowmem_reserve_ratio) != MAX_NR_ZONES or min(self.lowmem_reserve_ratio) < 0:
            raise _einval(f"lowmem_reserve_ratio {self.lowmem_reserve_ratio}: "
                          f"need {MAX_NR_ZONES} values >= 0")

    # for_each_online_pgdat / for_each_zone / for_each_populated_zone
    def zones(self) -> Iterator[Zone]:
        for node in self.nodes:
            yield from node.zones

    def populated_zones(self) -> Iterator[Zone]:
        return (z for z in self.zones() if z.populated)

    def node(self, nid: int) -> Node:
        for n in self.nodes:
            if n.nid == nid:
                return n
        raise _einval(f"node {nid}: not an online node")

    def zone(self, nid: int, idx: int) -> Zone:
        if not 0 <= idx < MAX_NR_ZONES:
            raise _einval(f"zone index {idx}: must be 0..{MAX_NR_ZONES - 1}")
        return self.node(nid).zones[idx]

    def num_online_cpus(self) -> int:
        return len(self.online_cpus)

    def nr_node_cpus(self, nid: int) -> int:
        """cpumask_weight(cpumask_of_node(nid))."""
        return sum(1 for _, n in self.online_cpus if n == nid)

    def totalram_pages(self) -> int:
        return sum(z.managed_pages for z in self.zones())


def _map_zones(state: WmarkState, fn) -> WmarkState:
    nodes = tuple(replace(n, zones=tuple(fn(z) for z in n.zones)) for n in state.nodes)
    return replace(state, nodes=nodes)


def _put_zone(state: WmarkState, zone: Zone) -> WmarkState:
    return _map_zones(state, lambda z: zone if (z.nid, z.idx) == (zone.nid, zone.idx) else z)


def _map_nodes(state: WmarkState, fn) -> WmarkState:
    return replace(state, nodes=tuple(fn(n) for n in state.nodes))


def make_state(counts, online_cpus=((0, 0),), **globals_) -> WmarkState:
    """A state with fresh zones (all watermarks 0, boot pagesets) from page counts.

    ``counts`` maps ``(nid, zone)`` (zone index or name) to ``(managed, present)``;
    zones not named are empty.  Nodes are the nids named in ``counts`` or
    ``online_cpus``.  Nothing is computed: see :func:`boot_state` for the boot
    sequence.
    """
    norm = {}
    for (nid, zone), (managed, present) in dict(counts).items():
        idx = ZONE_NAMES.index(zone) if isinstance(zone, str) and zone in ZONE_NAMES else zone
        if not isinstance(idx, int):
            raise _einval(f"zone {zone!r}: not one of {ZONE_NAMES}")
        norm[(nid, idx)] = (managed, present)
    nids = sorted({nid for nid, _ in norm} | {nid for _, nid in online_cpus})
    nodes = tuple(
        Node(nid, tuple(Zone(nid, i, *norm.get((nid, i), (0, 0))) for i in range(MAX_NR_ZONES)))
        for nid in nids)
    return WmarkState(nodes=nodes, online_cpus=tuple(online_cpus), **globals_)


def adjust_managed_page_count(state: WmarkState, nid: int, idx: int, count: int) -> WmarkState:
    """zone->managed_pages += count, no recomputation (mm/page_alloc.c:adjust_managed_page_count, 6.1)."""
    z = state.zone(nid, idx)
    return _put_zone(state, replace(z, managed_pages=z.managed_pages + count))


def adjust_present_page_count(state: WmarkState, nid: int, idx: int, count: int) -> WmarkState:
    """zone->present_pages += count (mm/memory_hotplug.c:adjust_present_page_count, 6.1)."""
    z = state.zone(nid, idx)
    return _put_zone(state, replace(z, present_pages=z.present_pages + count))


# --- nr_free_buffer_pages ----------------------------------------------------------------------

def node_zonelist(state: WmarkState, nid: int) -> tuple:
    """The populated zones of ``nid``'s ZONELIST_FALLBACK, in order.

    mm/page_alloc.c:build_zonelists + build_zonerefs_node (6.1): node by node in
    fallback order, each node's populated zones from the highest index down.  The
    kernel rebuilds it after init_per_zone_wmark_min when an offline empties a
    zone; the stale entry has 0 managed pages, so leaving it out changes no sum.
    """
    node = state.node(nid)
    order = list(node.fallback) or [nid] + sorted(n.nid for n in state.nodes if n.nid != nid)
    out = []
    for n in order:
        out.extend(z for z in reversed(state.node(n).zones) if z.populated)
    return tuple(out)


def nr_free_zone_pages(state: WmarkState, offset: int) -> int:
    """Sum of max(0, managed - high watermark) over the local zonelist's zones with index <= offset.

    mm/page_alloc.c:nr_free_zone_pages (6.1).  The high watermarks are the ones
    the zones hold right now (the previous computation's, when called first in
    ``init_per_zone_wmark_min``).
    """
    total = 0
    for z in node_zonelist(state, state.local_nid):
        if z.idx <= offset and z.managed_pages > z.high:
            total += z.managed_pages - z.high
    return total


def nr_free_buffer_pages(state: WmarkState) -> int:
    """nr_free_zone_pages(gfp_zone(GFP_USER)) (mm/page_alloc.c:nr_free_buffer_pages, 6.1)."""
    return nr_free_zone_pages(state, GFP_USER_ZONE)


# --- min_free_kbytes and watermarks ------------------------------------------------------------

def calculate_min_free_kbytes(state: WmarkState) -> WmarkState:
    """min_free_kbytes = clamp(int_sqrt(lowmem_kbytes * 16), 128, 262144) unless the user's value wins.

    mm/page_alloc.c:calculate_min_free_kbytes (6.1).  Replaced whenever the new
    value exceeds ``user_min_free_kbytes`` (-1 when never written), so it can go
    down; otherwise left as it is.
    """
    lowmem_kbytes = nr_free_buffer_pages(state) * (1 << (PAGE_SHIFT - 10))
    new_min_free_kbytes = int_sqrt(lowmem_kbytes * 16)
    if new_min_free_kbytes > state.user_min_free_kbytes:
        return replace(state, min_free_kbytes=min(max(new_min_free_kbytes, 128), 262144))
    return state


def __setup_per_zone_wmarks(state: WmarkState) -> WmarkState:
    """Per-zone min/low/high/promo from min_free_kbytes; boost 0; then totalreserve_pages.

    mm/page_alloc.c:__setup_per_zone_wmarks (6.1), lowmem branch only.  MIN is the
    zone's share of pages_min by managed pages over all zones of all online nodes
    (Movable included); the low/high/promo steps are max(MIN/4, managed *
    watermark_scale_factor / 10000).
    """
    pages_min = state.min_free_kbytes >> (PAGE_SHIFT - 10)
    lowmem_pages = sum(z.managed_pages for z in state.zones())
    if lowmem_pages == 0:
        raise _einval("__setup_per_zone_wmarks: no zone has managed pages (division by zero)")

    def one(z: Zone) -> Zone:
        tmp = pages_min * z.managed_pages // lowmem_pages
        wmin = tmp
        tmp = max(tmp >> 2, mult_frac(z.managed_pages, state.watermark_scale_factor, 10000))
        low = wmin + tmp
        high = low + tmp
        return replace(z, watermark=(wmin, low, high, high + tmp), watermark_boost=0)

    return calculate_totalreserve_pages(_map_zones(state, one))


def setup_per_zone_wmarks(state: WmarkState) -> WmarkState:
    """__setup_per_zone_wmarks, then zone_pcp_update(zone, 0) for every zone (populated or not).

    mm/page_alloc.c:setup_per_zone_wmarks (6.1).
    """
    state = __setup_per_zone_wmarks(state)
    for z in list(state.zones()):
        state = zone_pcp_update(state, z.nid, z.idx, 0)
    return state


# --- lowmem_reserve and totalreserve_pages -----------------------------------------------------

def setup_per_zone_lowmem_reserve(state: WmarkState) -> WmarkState:
    """lowmem_reserve[j] of zone i (i < j) = managed of zones i+1..j / ratio[i], then totalreserve.

    mm/page_alloc.c:setup_per_zone_lowmem_reserve (6.1): all zeros when ratio[i]
    is 0 or zone i has no managed pages; entries j <= i and the last zone's array
    are never written.
    """
    def node_fn(node: Node) -> Node:
        zones = list(node.zones)
        for i in range(MAX_NR_ZONES - 1):
            z = zones[i]
            ratio = state.lowmem_reserve_ratio[i]
            clear = not ratio or not z.managed_pages
            reserve = list(z.lowmem_reserve)
            managed = 0
            for j in range(i + 1, MAX_NR_ZONES):
                managed += zones[j].managed_pages
                reserve[j] = 0 if clear else managed // ratio
            zones[i] = replace(z, lowmem_reserve=tuple(reserve))
        return replace(node, zones=tuple(zones))

    return calculate_totalreserve_pages(_map_nodes(state, node_fn))


def calculate_totalreserve_pages(state: WmarkState) -> WmarkState:
    """Sum over zones of min(managed, max(lowmem_reserve[j >= i]) + high watermark).

    mm/page_alloc.c:calculate_totalreserve_pages (6.1); per node and global.
    """
    total = 0
    nodes = []
    for node in state.nodes:
        node_total = 0
        for z in node.zones:
            m = max([0] + [r for r in z.lowmem_reserve[z.idx:]])
            m += z.high
            node_total += min(m, z.managed_pages)
        nodes.append(replace(node, totalreserve_pages=node_total))
        total += node_total
    return replace(state, nodes=tuple(nodes), totalreserve_pages=total)


# --- per-CPU pagesets --------------------------------------------------------------------------

def zone_batchsize(zone: Zone) -> int:
    """min(managed >> 10, 1 MiB of pages) / 4 (at least 1), rounded to 2^n - 1.

    mm/page_alloc.c:zone_batchsize (6.1, CONFIG_MMU).  Gives 0 for zones below
    8192 managed pages: the caller raises it to 1, which is why DMA shows batch 1.
    """
    batch = min(zone.managed_pages >> 10, SZ_1M >> PAGE_SHIFT)
    batch //= 4
    if batch < 1:
        batch = 1
    return rounddown_pow_of_two(batch + batch // 2) - 1


def zone_highsize(state: WmarkState, zone: Zone, batch: int, cpu_online: int = 0) -> int:
    """The low watermark (or managed / percpu_pagelist_high_fraction) split over the node's CPUs.

    mm/page_alloc.c:zone_highsize (6.1): divided by the online CPUs of the zone's
    node (+ cpu_online while a CPU comes up; all online CPUs for a CPU-less node),
    at least batch * 4.
    """
    if not state.percpu_pagelist_high_fraction:
        total_pages = zone.low
    else:
        total_pages = zone.managed_pages // state.percpu_pagelist_high_fraction
    nr_split_cpus = state.nr_node_cpus(zone.nid) + cpu_online
    if not nr_split_cpus:
        nr_split_cpus = state.num_online_cpus()
    high = total_pages // nr_split_cpus
    return max(high, batch << 2)


def __zone_set_pageset_high_and_batch(state: WmarkState, nid: int, idx: int,
                                      high: int, batch: int) -> WmarkState:
    """Write (high, batch) into every possible CPU's pageset of the zone.

    mm/page_alloc.c:__zone_set_pageset_high_and_batch (6.1).  A zone still on the
    boot pageset writes the shared ``boot_pageset`` (every such zone sees it).
    """
    z = state.zone(nid, idx)
    if z.pcp is None:
        return replace(state, boot_pageset=(high, batch))
    return _put_zone(state, replace(z, pcp=(high, batch)))


def zone_set_pageset_high_and_batch(state: WmarkState, nid: int, idx: int,
                                    cpu_online: int = 0) -> WmarkState:
    """batch = max(1, zone_batchsize), high = zone_highsize; pagesets written only on a change.

    mm/page_alloc.c:zone_set_pageset_high_and_batch (6.1): compared with the
    zone's remembered pageset_high/batch, not with what the pagesets hold.
    """
    z = state.zone(nid, idx)
    new_batch = max(1, zone_batchsize(z))
    new_high = zone_highsize(state, z, new_batch, cpu_online)
    if z.pageset_high == new_high and z.pageset_batch == new_batch:
        return state
    state = _put_zone(state, replace(z, pageset_high=new_high, pageset_batch=new_batch))
    return __zone_set_pageset_high_and_batch(state, nid, idx, new_high, new_batch)


def zone_pcp_update(state: WmarkState, nid: int, idx: int, cpu_online: int = 0) -> WmarkState:
    """mm/page_alloc.c:zone_pcp_update (6.1): zone_set_pageset_high_and_batch under the pcp lock."""
    return zone_set_pageset_high_and_batch(state, nid, idx, cpu_online)


def setup_zone_pageset(state: WmarkState, nid: int, idx: int) -> WmarkState:
    """Fresh per-CPU pagesets (high 0, batch 1) and zonestats, then zone_set_pageset_high_and_batch.

    mm/page_alloc.c:setup_zone_pageset + per_cpu_pages_init (6.1).  online_pages
    calls it while the zone still has 0 managed pages; if the pair computed then
    equals the remembered one, the new pagesets keep high 0 / batch 1 until a
    later computation differs.
    """
    z = state.zone(nid, idx)
    state = _put_zone(state, replace(z, pcp=(BOOT_PAGESET_HIGH, BOOT_PAGESET_BATCH),
                                     stat_threshold=0))
    return zone_set_pageset_high_and_batch(state, nid, idx, 0)


def zone_pcp_reset(state: WmarkState, nid: int, idx: int) -> WmarkState:
    """Point the zone back at the boot pageset and zonestats (mm/page_alloc.c:zone_pcp_reset, 6.1).

    The remembered pageset_high/batch are left as they are.
    """
    z = state.zone(nid, idx)
    if z.pcp is None:
        return state
    return _put_zone(state, replace(z, pcp=None, stat_threshold=0))


def zone_pcp_disable(state: WmarkState, nid: int, idx: int) -> WmarkState:
    """Pagesets to high 0, batch 1 (mm/page_alloc.c:zone_pcp_disable, 6.1; the drain is not modelled)."""
    return __zone_set_pageset_high_and_batch(state, nid, idx, 0, 1)


def zone_pcp_enable(state: WmarkState, nid: int, idx: int) -> WmarkState:
    """Pagesets back to the remembered pageset_high/batch (mm/page_alloc.c:zone_pcp_enable, 6.1)."""
    z = state.zone(nid, idx)
    return __zone_set_pageset_high_and_batch(state, nid, idx, z.pageset_high, z.pageset_batch)


# --- vmstat thresholds -------------------------------------------------------------------------

def calculate_normal_threshold(state: WmarkState, zone: Zone) -> int:
    """2 * fls(online CPUs) * (1 + fls(managed in 128 MiB units)), at most 125.

    mm/vmstat.c:calculate_normal_threshold (6.1).
    """
    mem = zone.managed_pages >> (27 - PAGE_SHIFT)
    return min(125, 2 * fls(state.num_online_cpus()) * (1 + fls(mem)))


def calculate_pressure_threshold(state: WmarkState, zone: Zone) -> int:
    """(low - min) / online CPUs, 1..125 (mm/vmstat.c:calculate_pressure_threshold, 6.1).

    Used only while kswapd runs for the node (set_pgdat_percpu_threshold); not
    part of init_per_zone_wmark_min.
    """
    distance = zone.low - zone.min
    return min(125, max(1, distance // state.num_online_cpus()))


def refresh_zone_stat_thresholds(state: WmarkState) -> WmarkState:
    """Normal thresholds for every populated zone, the node maximum, and the drift mark.

    mm/vmstat.c:refresh_zone_stat_thresholds (6.1).  percpu_drift_mark is set to
    high + CPUs * threshold only when that drift exceeds low - min (never cleared).
    """
    ncpus = state.num_online_cpus()

    def node_fn(node: Node) -> Node:
        node_threshold = 0
        zones = []
        for z in node.zones:
            if z.populated:
                threshold = calculate_normal_threshold(state, z)
                node_threshold = max(node_threshold, threshold)
                drift_mark = z.percpu_drift_mark
                if ncpus * threshold > z.low - z.min:
                    drift_mark = z.high + ncpus * threshold
                z = replace(z, stat_threshold=threshold, percpu_drift_mark=drift_mark)
            zones.append(z)
        return replace(node, zones=tuple(zones), stat_threshold=node_threshold)

    return _map_nodes(state, node_fn)


# --- NUMA reclaim ratios -----------------------------------------------------------------------

def setup_min_unmapped_ratio(state: WmarkState) -> WmarkState:
    """pgdat->min_unmapped_pages = sum of managed * 1 / 100 per zone (mm/page_alloc.c, 6.1)."""
    return _map_nodes(state, lambda n: replace(n, min_unmapped_pages=sum(
        z.managed_pages * SYSCTL_MIN_UNMAPPED_RATIO // 100 for z in n.zones)))


def setup_min_slab_ratio(state: WmarkState) -> WmarkState:
    """pgdat->min_slab_pages = sum of managed * 5 / 100 per zone (mm/page_alloc.c, 6.1)."""
    return _map_nodes(state, lambda n: replace(n, min_slab_pages=sum(
        z.managed_pages * SYSCTL_MIN_SLAB_RATIO // 100 for z in n.zones)))


# --- khugepaged --------------------------------------------------------------------------------

def set_recommended_min_free_kbytes(state: WmarkState) -> WmarkState:
    """Raise min_free_kbytes to 11 pageblocks per populated zone <= Normal, capped at 5% of lowmem.

    mm/khugepaged.c:set_recommended_min_free_kbytes (6.1): nr_zones counts the
    populated (present) zones of every online node with index <= ZONE_NORMAL
    (Movable and Device never count); recommended = pageblock_nr_pages * nr_zones
    * (2 + MIGRATE_PCPTYPES^2), capped at nr_free_buffer_pages() / 20 (with the
    watermarks just computed), in kB.  Only raises; then setup_per_zone_wmarks.
    With THP disabled it recomputes min_free_kbytes from scratch instead.
    """
    if not state.thp_enabled:
        return setup_per_zone_wmarks(calculate_min_free_kbytes(state))
    nr_zones = sum(1 for z in state.populated_zones() if z.idx <= GFP_USER_ZONE)
    recommended_min = pageblock_nr_pages * nr_zones * 2
    recommended_min += pageblock_nr_pages * nr_zones * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES
    recommended_min = min(recommended_min, nr_free_buffer_pages(state) // 20)
    recommended_min <<= PAGE_SHIFT - 10
    if recommended_min > state.min_free_kbytes:
        state = replace(state, min_free_kbytes=recommended_min)
    return setup_per_zone_wmarks(state)


def khugepaged_min_free_kbytes_update(state: WmarkState) -> WmarkState:
    """set_recommended_min_free_kbytes if THP is enabled and khugepaged runs (mm/khugepaged.c, 6.1)."""
    if state.thp_enabled and state.khugepaged_running:
        return set_recommended_min_free_kbytes(state)
    return state


def start_stop_khugepaged(state: WmarkState) -> WmarkState:
    """Start or stop khugepaged per thp_enabled, then set_recommended_min_free_kbytes (mm/khugepaged.c, 6.1)."""
    state = replace(state, khugepaged_running=state.thp_enabled)
    return set_recommended_min_free_kbytes(state)


def hugepage_init(state: WmarkState) -> WmarkState:
    """The subsys_initcall: THP off below 512 MiB of totalram, else start khugepaged.

    mm/huge_memory.c:hugepage_init (6.1).
    """
    if state.totalram_pages() < THP_MIN_TOTALRAM_PAGES:
        return replace(state, thp_enabled=False, khugepaged_running=False)
    return start_stop_khugepaged(state)


# --- the entry points --------------------------------------------------------------------------

def init_per_zone_wmark_min(state: WmarkState) -> WmarkState:
    """Everything recomputed at boot and after each online/offline, in the kernel's order.

    mm/page_alloc.c:init_per_zone_wmark_min (6.1): calculate_min_free_kbytes,
    setup_per_zone_wmarks, refresh_zone_stat_thresholds,
    setup_per_zone_lowmem_reserve, setup_min_unmapped_ratio, setup_min_slab_ratio,
    khugepaged_min_free_kbytes_update (which runs setup_per_zone_wmarks again).
    """
    state = calculate_min_free_kbytes(state)
    state = setup_per_zone_wmarks(state)
    state = refresh_zone_stat_thresholds(state)
    state = setup_per_zone_lowmem_reserve(state)
    state = setup_min_unmapped_ratio(state)
    state = setup_min_slab_ratio(state)
    return khugepaged_min_free_kbytes_update(state)


def min_free_kbytes_sysctl_handler(state: WmarkState, value: int) -> WmarkState:
    """A write to vm.min_free_kbytes: sets it and user_min_free_kbytes, then setup_per_zone_wmarks.

    mm/page_alloc.c:min_free_kbytes_sysctl_handler (6.1); values below 0 are refused.
    """
    if value < 0:
        raise _einval(f"min_free_kbytes {value}: must be >= 0")
    state = replace(state, min_free_kbytes=value, user_min_free_kbytes=value)
    return setup_per_zone_wmarks(state)


def boot_state(counts, online_cpus=((0, 0),), **globals_) -> WmarkState:
    """The state after boot's initcalls, from the zone page counts at that time.

    Order (init/main.c, 6.1): zone_pcp_init (all zones on the boot pageset),
    setup_per_cpu_pageset (setup_zone_pageset for populated zones, watermarks
    still 0), then postcore_initcall init_per_zone_wmark_min with khugepaged not
    yet started, then subsys_initcall hugepage_init (start_stop_khugepaged ->
    set_recommended_min_free_kbytes -> setup_per_zone_wmarks; lowmem_reserve is
    not recomputed).  Pages freed later (initrd, init sections) change managed
    counts without any recomputation: apply them afterwards with
    :func:`adjust_managed_page_count`.  Intermediate pageset values from
    secondary CPU bring-up (page_alloc_cpu_online) are overwritten at postcore
    and not modelled.
    """
    globals_.setdefault("khugepaged_running", False)
    state = make_state(counts, online_cpus, **globals_)
    for z in list(state.populated_zones()):
        state = setup_zone_pageset(state, z.nid, z.idx)
    state = init_per_zone_wmark_min(state)
    if state.thp_enabled:
        state = hugepage_init(state)
    return state


def online_pages_watermarks(state: WmarkState, nid: int, idx: int, nr_pages: int,
                            nr_vmemmap_pages: int = 0) -> WmarkState:
    """The watermark-relevant part of onlining one memory block into zone (nid, idx).

    drivers/base/memory.c:memory_block_online + mm/memory_hotplug.c:online_pages
    (6.1): setup_zone_pageset if the zone was empty, managed and present +=
    nr_pages (pages onlined, vmemmap excluded), init_per_zone_wmark_min, and
    only then present += nr_vmemmap_pages.
    """
    if nr_pages <= 0 or nr_vmemmap_pages < 0:
        raise _einval(f"online of {nr_pages} pages (+{nr_vmemmap_pages} vmemmap): "
                      "nr_pages must be > 0, vmemmap pages >= 0")
    if not state.zone(nid, idx).populated:
        state = setup_zone_pageset(state, nid, idx)
    # online_pages_range raises managed before present; both precede the recomputation.
    state = adjust_present_page_count(state, nid, idx, nr_pages)
    state = adjust_managed_page_count(state, nid, idx, nr_pages)
    state = init_per_zone_wmark_min(state)
    return adjust_present_page_count(state, nid, idx, nr_vmemmap_pages)


def offline_pages_watermarks(state: WmarkState, nid: int, idx: int, nr_pages: int,
                             nr_vmemmap_pages: int = 0) -> WmarkState:
    """The watermark-relevant part of a successful offline of one memory block.

    drivers/base/memory.c:memory_block_offline + mm/memory_hotplug.c:offline_pages
    (6.1): present -= nr_vmemmap_pages first, zone_pcp_disable/enable around the
    isolation, managed and present -= nr_pages, init_per_zone_wmark_min, then
    zone_pcp_reset if the zone is now empty.  A failed offline recomputes nothing.
    """
    z = state.zone(nid, idx)
    if nr_pages <= 0 or nr_vmemmap_pages < 0:
        raise _einval(f"offline of {nr_pages} pages (+{nr_vmemmap_pages} vmemmap): "
                      "nr_pages must be > 0, vmemmap pages >= 0")
    if nr_pages > z.managed_pages or nr_pages + nr_vmemmap_pages > z.present_pages:
        raise _einval(f"offline of {nr_pages} pages (+{nr_vmemmap_pages} vmemmap) from node "
                      f"{nid} zone {z.name} with {z.managed_pages} managed / "
                      f"{z.present_pages} present pages")
    state = adjust_present_page_count(state, nid, idx, -nr_vmemmap_pages)
    state = zone_pcp_disable(state, nid, idx)
    state = zone_pcp_enable(state, nid, idx)
    state = adjust_managed_page_count(state, nid, idx, -nr_pages)
    state = adjust_present_page_count(state, nid, idx, -nr_pages)
    state = init_per_zone_wmark_min(state)
    if not state.zone(nid, idx).populated:
        state = zone_pcp_reset(state, nid, idx)
    return state


# --- what /proc/zoneinfo prints ----------------------------------------------------------------

@dataclass(frozen=True)
class ZoneInfo:
    """The watermark-related lines of one zone in /proc/zoneinfo (mm/vmstat.c:zoneinfo_show_print, 6.1).

    ``pagesets`` (``(cpu, high, batch)`` per online CPU) and ``stat_threshold``
    are None for an unpopulated zone, which prints neither.
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


def zoneinfo(state: WmarkState) -> tuple:
    """One :class:`ZoneInfo` per zone of every online node, in /proc/zoneinfo order."""
    out = []
    for z in state.zones():
        pagesets = threshold = None
        if z.populated:
            high, batch = z.pcp if z.pcp is not None else state.boot_pageset
            pagesets = tuple((cpu, high, batch) for cpu, _ in sorted(state.online_cpus))
            threshold = z.stat_threshold
        out.append(ZoneInfo(z.nid, z.name, z.watermark_boost, z.min, z.low, z.high,
                            z.present_pages, z.managed_pages, tuple(z.lowmem_reserve),
                            pagesets, threshold))
    return tuple(out)
