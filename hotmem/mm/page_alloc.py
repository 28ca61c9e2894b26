"""Zonelists and the allocation entry points above the core page allocator (mm/page_alloc.c, 6.1).

The core ``PageAllocator`` takes and gives pages of one zone; this module chooses the zone the way
``__alloc_pages`` → ``get_page_from_freelist`` does: walk the preferred node's zonelist from the
highest zone the gfp mask allows, skip zones that fail ``zone_watermark_fast`` at the low watermark
(first with ALLOC_NOFRAGMENT where the kernel sets it), then retry at the min watermark (the slow
path without reclaim or compaction, which the model has nothing to run). Node fallback order: the preferred node, then the other nodes with memory in
ascending node id (build_zonelists with all distances equal).

Also here: boot's free_area_init / memmap_init (6.1 keeps them in page_alloc.c; 6.3 moved them to
mm/mm_init.c), and the page hand-overs the hotplug paths use (generic_online_page,
adjust_managed_page_count, free_reserved_page) with the model's ledger-keeping kernel allocation
(kernel_alloc_pages / kernel_free_pages). Allocation failure is (-1, None), the kernel's NULL.
At the end: init_per_zone_wmark_min, which drives the watermark steps of :mod:`hotmem.mm.watermark`,
:mod:`hotmem.mm.vmstat` and :mod:`hotmem.mm.khugepaged`, and the boot order of those initcalls.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from math import isqrt

from hotmem.defs import PAGE_TYPE_BASE, PG_buddy
from hotmem.errors import HotplugError
from hotmem.fault_inject import should_fail_alloc_page
from hotmem.mm.mmzone import (MAX_NR_ZONES, WMARK_HIGH, WMARK_LOW, WMARK_MIN, ZONE_DMA,
                              ZONE_MOVABLE, ZONE_NORMAL)
from hotmem.mm.huge_memory import hugepage_init
from hotmem.mm.khugepaged import khugepaged_min_free_kbytes_update
from hotmem.mm.vmstat import refresh_zone_stat_thresholds
from hotmem.mm.watermark import (GFP_USER_ZONE, SYSCTL_MIN_SLAB_RATIO, SYSCTL_MIN_UNMAPPED_RATIO,
                                 SZ_1M, __zone_set_pageset_high_and_batch,
                                 calculate_min_free_kbytes, setup_min_slab_ratio,
                                 setup_min_unmapped_ratio, setup_per_cpu_pageset,
                                 setup_per_zone_lowmem_reserve, setup_per_zone_wmarks)

# migratetypes (include/linux/mmzone.h, 6.1)
MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE = 0, 1, 2
MIGRATE_PCPTYPES = 3
ALLOC_NOFRAGMENT = 0x100        # mm/internal.h


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
                      max_order: int, slowpath: bool = False) -> bool:
    """mm/page_alloc.c:__zone_watermark_ok (6.1, no CMA, no highatomic reserves). The
    ALLOC_HIGH / ALLOC_HARDER reductions only exist in the slow path (gfp_to_alloc_flags)."""
    free_pages = zone.nr_free_pages - ((1 << order) - 1)
    min_ = mark
    if slowpath and gfp.alloc_high:
        min_ -= min_ // 2
    if slowpath and gfp.alloc_harder:
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
                        max_order: int, slowpath: bool = False) -> bool:
    """mm/page_alloc.c:zone_watermark_fast (6.1): the order-0 shortcut, then the full check."""
    if not order:
        reserve = zone.lowmem_reserve[highest_zoneidx]
        if zone.nr_free_pages > mark + reserve:
            return True
    return zone_watermark_ok(zone, order, mark, highest_zoneidx, gfp, max_order, slowpath)


class ZoneLists:
    """build_zonelists (6.1) for the machine's nodes: zones with managed pages, highest first,
    the local node then the others."""

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


def alloc_flags_nofragment(m, preferred) -> bool:
    """mm/page_alloc.c:alloc_flags_nofragment (6.1): ALLOC_NOFRAGMENT when the preferred zone is
    ZONE_NORMAL and (single node, or the node's DMA32 is populated)."""
    if preferred is None or preferred.idx != ZONE_NORMAL:
        return False
    nr_online_nodes = sum(1 for p in m.pgdats.values() if p.online)
    dma32 = m.pgdats[preferred.node].node_zones[ZONE_NORMAL - 1]
    return not (nr_online_nodes > 1 and not dma32.populated_zone())


def alloc_pages_node(machine, nid: int, gfp: Gfp, order: int, cpu: int = 0):
    """alloc_pages_node → __alloc_pages (6.1): returns (pfn, zone) or (-1, None).

    get_page_from_freelist at the low watermark, first with ALLOC_NOFRAGMENT where the kernel sets
    it (retried without), then the slow path's ALLOC_WMARK_MIN pass with the gfp mask's
    ALLOC_HIGH/ALLOC_HARDER. Reclaim, compaction and OOM are not modelled: the model's kernel
    has no reclaimable memory for them to find."""
    alloc = machine.allocator
    zones = machine.zonelists.zonelist(nid, gfp.highest_zoneidx)
    if not zones:
        return -1, None
    max_order = machine.max_order
    nofrag = ALLOC_NOFRAGMENT if alloc_flags_nofragment(machine, zones[0]) else 0
    passes = ([(WMARK_LOW, nofrag, False)] if nofrag else []) + \
        [(WMARK_LOW, 0, False), (WMARK_MIN, 0, True)]
    for wmark, flags, slow in passes:
        for z in zones:
            if flags and z.node != zones[0].node:
                # no_fallback: do not fragment other nodes while the local node has memory
                break
            if not zone_watermark_fast(z, order, z.wmark_pages(wmark), gfp.highest_zoneidx, gfp,
                                       max_order, slow):
                continue
            pfn = alloc.alloc_pages(z.zoneid, order, gfp.migratetype, cpu, flags)
            if pfn >= 0:
                return pfn, z
    return -1, None


def numa_node_id(m) -> int:
    """include/linux/topology.h:numa_node_id: the node of the CPU doing the work (CPU 0's)."""
    return min(n for n, c in m.cpu_nodes.items() if c)


def page_zone(m, pfn: int):
    """include/linux/mm.h:page_zone(pfn_to_page(pfn)) (6.1)."""
    zid = m.ms.page_zoneid(pfn)
    sh = m.arch.page_flags.ZONES_WIDTH
    return m.pgdats[zid >> sh].node_zones[zid & ((1 << sh) - 1)]


def kernel_alloc_pages(m, nid: int, gfp: Gfp, order: int, what: str):
    """alloc_pages_node for a kernel allocation (fail_page_alloc applies), recorded in the owner
    ledger under ``what``: (pfn, zone) or (-1, None)."""
    if nid not in m.pgdats:
        nid = numa_node_id(m)
    if should_fail_alloc_page(m, order, nid):
        return -1, None
    pfn, zone = alloc_pages_node(m, nid, gfp, order)
    if pfn >= 0:
        m.owners.note_buddy(pfn, order, nid, what)
    return pfn, zone


def kernel_free_pages(m, pfn: int, order: int) -> None:
    """__free_pages of a kernel_alloc_pages allocation (off the owner ledger)."""
    m.owners.drop_buddy(pfn)
    m.allocator.free_pages(pfn, order, 0)


def free_reserved_page(m, pfn: int) -> None:
    """include/linux/mm.h:free_reserved_page (6.1): a boot (memblock) page handed to the buddy;
    managed and totalram +1."""
    m.allocator.free_reserved_page(pfn, 0)
    m.totalram_pages += 1


def free_reserved_area(m, start_pfn: int, end_pfn: int) -> int:
    """mm/page_alloc.c:free_reserved_area (6.1): free_reserved_page for every page of
    [start_pfn, end_pfn), in order; returns the number of pages."""
    free = m.allocator.free_reserved_page
    for pfn in range(start_pfn, end_pfn):
        free(pfn, 0)
    n = max(0, end_pfn - start_pfn)
    m.totalram_pages += n
    return n


def generic_online_page(m, pfn: int, order: int) -> None:
    """mm/page_alloc.c:generic_online_page (6.1): __free_pages_core + totalram_pages_add."""
    m.allocator.free_pages_core(pfn, order)
    m.totalram_pages += 1 << order


def _free_block_containing(m, pfn: int):
    """The free buddy block holding ``pfn`` as (head, order), or None (a page in use, on a pcp
    list, or with no struct page): the PageBuddy head found by clearing low bits, as
    alloc_contig_range's outer_start search does."""
    ms, buddy = m.ms, PAGE_TYPE_BASE | PG_buddy
    for order in range(m.max_order):
        head = pfn & ~((1 << order) - 1)
        if not ms.pfn_valid(head):
            return None
        if ms.page_type(head) & buddy == PAGE_TYPE_BASE:
            o = ms.page_private(head)
            return (head, o) if head + (1 << o) > pfn else None
    return None


def alloc_contig_range(m, start: int, end: int) -> int:
    """mm/page_alloc.c:alloc_contig_range(start, end, MIGRATE_MOVABLE) (6.1) on a
    pageblock-aligned range of one zone: 0 with every page of [start, end) allocated (refcount
    1, out of the buddy and NR_FREE_PAGES), or -EBUSY with the buddy as it was.

    The pcp lists of the zone are drained (drain_all_pages) and every page must then be free in
    the buddy: the model keeps no movable (LRU) pages, so anything allocated is a page that
    neither migration nor isolation can move -- __alloc_contig_migrate_range or
    test_pages_isolated fails and the kernel returns -EBUSY. A free block that straddles the
    range's ends is split as start_isolate_page_range's isolate_single_pageblock splits it, the
    parts outside staying free (the model takes the pages one by one with take_page_off_buddy,
    whose break_down_buddy_pages leaves the same buddy)."""
    zone = page_zone(m, start)
    m.allocator.drain_zone_pages(zone.zoneid)
    pfn = start
    while pfn < end:
        blk = _free_block_containing(m, pfn)
        if blk is None:
            m.log(f"alloc_contig_range: [{start:#x}, {end:#x}) PFNs busy (pfn {pfn:#x})")
            return -errno.EBUSY
        pfn = blk[0] + (1 << blk[1])
    for pfn in range(start, end):
        if not m.allocator.take_page_off_buddy(pfn):
            raise HotplugError(errno.EIO, f"alloc_contig_range: pfn {pfn:#x} left the buddy "
                               "under the model's feet")
    return 0


def free_contig_range(m, pfn: int, nr_pages: int) -> None:
    """mm/page_alloc.c:free_contig_range (6.1): __free_page of every page (through the pcp
    lists of CPU 0)."""
    for p in range(pfn, pfn + nr_pages):
        m.allocator.free_pages(p, 0, 0)


def adjust_managed_page_count(m, zone, count: int) -> None:
    """mm/page_alloc.c:adjust_managed_page_count (6.1)."""
    m.allocator.adjust_managed_page_count(zone.zoneid, count)
    m.totalram_pages += count


# -- boot: zones and struct pages ----------------------------------------------------------------

def free_area_init(m) -> None:
    """mm/page_alloc.c:free_area_init (6.1): zone spans from the memblock ranges, every struct
    page of a present section initialised (memmap_init), then the node states
    (node_set_state(N_MEMORY), check_for_memory; CPU nodes online, kswapd/kcompactd later)."""
    a = m.arch
    dma, dma32 = m.arch_ops.zone_dma_limits(m)
    max_zone = [dma, dma32, m.max_pfn, m.max_pfn, 0]
    low = 0
    zone_ranges = []
    for idx in range(MAX_NR_ZONES):
        if idx in (ZONE_MOVABLE, 4):
            zone_ranges.append((0, 0))
            continue
        high = max(low, min(max_zone[idx], m.max_pfn))
        zone_ranges.append((low, high))
        low = high
    ranges = list(m.memblock.mem_pfn_ranges(a.page_shift))
    for nid, pgdat in m.pgdats.items():
        mine = [(s, e) for s, e, n in ranges if n == nid]
        if not mine:
            continue
        nstart, nend = mine[0][0], max(e for _, e in mine)
        pgdat.node_start_pfn = nstart
        pgdat.node_spanned_pages = nend - nstart
        for idx, (zlo, zhi) in enumerate(zone_ranges[:len(pgdat.node_zones)]):
            z = pgdat.node_zones[idx]
            zs, ze = max(nstart, zlo), min(nend, zhi)
            if zs >= ze:
                continue
            present = sum(max(0, min(e, ze) - max(s, zs)) for s, e in mine)
            z.zone_start_pfn, z.spanned_pages = zs, ze - zs
            z.present_pages = z.present_early_pages = present
            pgdat.node_present_pages += present
            if present:
                pgdat.nr_zones = idx + 1
    memmap_init(m, ranges)
    for pgdat in m.pgdats.values():
        if any(z.present_pages for z in pgdat.node_zones):
            pgdat.online = True
            pgdat.has_memory = True
            pgdat.has_normal_memory = any(z.present_pages
                                          for z in pgdat.node_zones[:ZONE_NORMAL + 1])
            pgdat.kswapd = pgdat.kcompactd = True
        if m.cpu_nodes.get(pgdat.node_id):
            pgdat.online = True
            pgdat.cpus = tuple(range(m.nr_cpus))  # (single CPU node in practice)


def memmap_init(m, ranges) -> None:
    """mm/page_alloc.c:memmap_init (6.1): the RAM ranges zone by zone, then the holes of every
    present section (init_unavailable_range)."""
    a = m.arch
    done = set()
    for s, e, nid in ranges:
        for z in m.pgdats[nid].node_zones:
            zs, ze = max(s, z.zone_start_pfn), min(e, z.zone_end_pfn)
            if zs < ze:
                m.ms.memmap_init_range(zs, ze - zs, nid, z.idx, m.core.MIGRATE_MOVABLE)
                done.add((zs, ze))
    # the holes: present sections' pfns outside every range above, section by section in
    # ascending order (only the sections a gap between the ranges reaches are visited)
    present = m.ms.present_sections()
    if not present:
        return
    pps = a.PAGES_PER_SECTION
    is_present = set(present)
    gaps, cur = [], 0
    for s, e in sorted(done):
        if cur < s:
            gaps.append((cur, s))
        cur = max(cur, e)
    if cur < a.section_nr_to_pfn(present[-1]) + pps:
        gaps.append((cur, a.section_nr_to_pfn(present[-1]) + pps))
    for gs, ge in gaps:
        for nr in range(a.pfn_to_section_nr(gs), a.pfn_to_section_nr(ge - 1) + 1):
            if nr in is_present:
                base = a.section_nr_to_pfn(nr)
                hs, he = max(gs, base), min(ge, base + pps)
                nid, zidx = _hole_zone(m, hs)
                init_unavailable_range(m, hs, he, nid, zidx)


def _hole_zone(m, pfn: int):
    """The (node, zone) memmap_init gives a hole's struct pages: the last zone starting below."""
    for nid, pgdat in m.pgdats.items():
        for z in reversed(pgdat.node_zones):
            if z.spanned_pages and z.zone_start_pfn <= pfn:
                return nid, z.idx
    return min(m.pgdats), ZONE_DMA


def init_unavailable_range(m, start: int, end: int, nid: int, zidx: int) -> None:
    """mm/page_alloc.c:init_unavailable_range (6.1): holes get reserved struct pages, no
    migratetype."""
    saved = {}
    pb = m.arch.pageblock_nr_pages
    for p in range((start + pb - 1) // pb * pb, end, pb):
        saved[p] = m.ms.get_pageblock_migratetype(p)
    m.ms.memmap_init_range(start, end - start, nid, zidx, m.core.MIGRATE_MOVABLE)
    for p, mt in saved.items():
        m.ms.set_pageblock_migratetype(p, mt)

# --- init_per_zone_wmark_min: the watermarks' initcall (mm/page_alloc.c, 6.1) --------------------
# The steps are in hotmem.mm.watermark (page_alloc.c), hotmem.mm.vmstat and hotmem.mm.khugepaged,
# which call back into watermark only: this is the one module that imports all of them.

def _init_per_zone_wmark_min(m) -> None:
    calculate_min_free_kbytes(m)
    setup_per_zone_wmarks(m)
    refresh_zone_stat_thresholds(m)
    setup_per_zone_lowmem_reserve(m)
    setup_min_unmapped_ratio(m)
    setup_min_slab_ratio(m)
    khugepaged_min_free_kbytes_update(m)


def _node_cpus(g) -> dict:
    """cpumask_weight(cpumask_of_node(nid)) of every node with an online CPU."""
    out: dict = {}
    for _, nid in g.online_cpus:
        out[nid] = out.get(nid, 0) + 1
    return out


def _init_per_zone_wmark_min_incremental(m) -> None:
    """The steps of _init_per_zone_wmark_min in the same order with the same writes (the
    per-CPU pagesets through __zone_set_pageset_high_and_batch, only on a change), computed in
    one pass over the zones: every managed count is read once, and the node-local results
    (lowmem_reserve, min_unmapped_pages, min_slab_pages) are recomputed only for the nodes
    whose managed counts or reserve ratios changed since the last call, and whose values are
    still the ones it wrote (m.page_alloc.node_cache). totalreserve_pages, written by every
    step, is computed once from the final watermarks and reserves. Equality with the
    step-by-step computation is tested (tests/test_zone_state.py)."""
    g = m.page_alloc
    ps = m.arch.page_shift
    pgdats = [p for _, p in sorted(m.pgdats.items()) if p.online]
    zones = [z for p in pgdats for z in p.node_zones]
    managed = [z.managed_pages for z in zones]
    # the local zonelist's zones up to Normal (nr_free_zone_pages): every online node's
    lowmem = [(z, zm) for z, zm in zip(zones, managed)
              if z.idx <= GFP_USER_ZONE and z.present_pages]

    def nr_free_buffer_pages() -> int:
        total = 0
        for z, zm in lowmem:
            high = z._watermark[WMARK_HIGH] + z.watermark_boost
            if zm > high:
                total += zm - high
        return total

    node_cpus = _node_cpus(g)
    ncpus = len(g.online_cpus)
    frac = g.percpu_pagelist_high_fraction
    batches = []
    for zm in managed:                       # zone_batchsize: managed pages only
        batch = min(zm >> 10, SZ_1M >> ps) // 4
        if batch < 1:
            batch = 1
        batches.append(max(1, (1 << (batch + batch // 2).bit_length() - 1) - 1))
    total_managed = sum(managed)
    movable_capped = m.policy.movable_wmark_like_highmem
    lowmem_pages = sum(zm for z, zm in zip(zones, managed)
                       if not (movable_capped and z.idx == ZONE_MOVABLE))

    def setup_per_zone_wmarks() -> None:
        pages_min = g.min_free_kbytes >> (ps - 10)
        if lowmem_pages == 0:
            raise HotplugError(errno.EINVAL, "__setup_per_zone_wmarks: no zone has managed "
                               "pages (division by zero)")
        wsf = g.watermark_scale_factor
        for z, zm in zip(zones, managed):
            share = pages_min * zm // lowmem_pages
            # 6.11+: ZONE_MOVABLE's MIN capped like highmem's (watermark.__setup_per_zone_wmarks)
            wmin = min(max(zm // 1024, 32), 128) \
                if movable_capped and z.idx == ZONE_MOVABLE else share
            q, r = divmod(zm, 10000)
            tmp = max(share >> 2, q * wsf + r * wsf // 10000)
            low = wmin + tmp
            high = low + tmp
            z._watermark = (wmin, low, high, high + tmp)
            z.watermark_boost = 0
        for z, zm, batch in zip(zones, managed, batches):     # zone_pcp_update(zone, 0)
            total = z._watermark[WMARK_LOW] if not frac else zm // frac
            high = max(total // (node_cpus.get(z.node, 0) or ncpus), batch << 2)
            if z.pageset_high != high or z.pageset_batch != batch:
                z.pageset_high, z.pageset_batch = high, batch
                __zone_set_pageset_high_and_batch(m, z, high, batch)

    # calculate_min_free_kbytes
    new_min_free_kbytes = isqrt(nr_free_buffer_pages() * (1 << (ps - 10)) * 16)
    if new_min_free_kbytes > g.user_min_free_kbytes:
        g.min_free_kbytes = min(max(new_min_free_kbytes, 128), 262144)
    setup_per_zone_wmarks()
    # refresh_zone_stat_thresholds
    f = 2 * ncpus.bit_length()
    i = 0
    for pgdat in pgdats:
        node_threshold = 0
        for z in pgdat.node_zones:
            if z.present_pages:
                t = min(125, f * (1 + (managed[i] >> (27 - ps)).bit_length()))
                node_threshold = max(node_threshold, t)
                z.stat_threshold = t
                wm = z._watermark
                if ncpus * t > wm[WMARK_LOW] - wm[WMARK_MIN]:
                    z.percpu_drift_mark = wm[WMARK_HIGH] + z.watermark_boost + ncpus * t
            i += 1
        pgdat.stat_threshold = node_threshold
    # setup_per_zone_lowmem_reserve, setup_min_unmapped_ratio, setup_min_slab_ratio
    ratios = g.lowmem_reserve_ratio
    cache = g.node_cache
    i = 0
    for pgdat in pgdats:
        nz = pgdat.node_zones
        n = len(nz)
        mg = tuple(managed[i:i + n])
        i += n
        key = (mg, ratios)
        old = cache.get(pgdat.node_id)
        if (old is not None and old[0] == key and old[2] == pgdat.min_unmapped_pages
                and old[3] == pgdat.min_slab_pages
                and all(z.lowmem_reserve is r for z, r in zip(nz, old[1]))):
            continue
        for k in range(n - 1):
            ratio = ratios[k]
            clear = not ratio or not mg[k]
            reserve = list(nz[k].lowmem_reserve)
            total = 0
            for j in range(k + 1, n):
                total += mg[j]
                reserve[j] = 0 if clear else total // ratio
            nz[k].lowmem_reserve = tuple(reserve)
        pgdat.min_unmapped_pages = sum(x * SYSCTL_MIN_UNMAPPED_RATIO // 100 for x in mg)
        pgdat.min_slab_pages = sum(x * SYSCTL_MIN_SLAB_RATIO // 100 for x in mg)
        cache[pgdat.node_id] = (key, tuple(z.lowmem_reserve for z in nz),
                                pgdat.min_unmapped_pages, pgdat.min_slab_pages)
    # khugepaged_min_free_kbytes_update → set_recommended_min_free_kbytes (THP enabled)
    if g.thp_enabled and g.khugepaged_running:
        nr_pageblock = 1 << m.arch.pageblock_order
        nr_zones = len(lowmem)
        recommended_min = nr_pageblock * nr_zones * (2 + MIGRATE_PCPTYPES * MIGRATE_PCPTYPES)
        recommended_min = min(recommended_min, nr_free_buffer_pages() // 20)
        recommended_min <<= ps - 10
        if recommended_min > g.min_free_kbytes:
            g.min_free_kbytes = recommended_min
        setup_per_zone_wmarks()
    # calculate_totalreserve_pages, as the last step leaves it
    total = 0
    i = 0
    for pgdat in pgdats:
        node_total = 0
        for z in pgdat.node_zones:
            mx = max(z.lowmem_reserve[z.idx:], default=0)
            if mx < 0:
                mx = 0
            mx += z._watermark[WMARK_HIGH] + z.watermark_boost
            node_total += min(mx, managed[i])
            i += 1
        pgdat.totalreserve_pages = node_total
        total += node_total
    g.totalreserve_pages = total


def init_per_zone_wmark_min(m) -> None:
    """Everything recomputed at boot and after each online/offline, in the kernel's order.

    mm/page_alloc.c:init_per_zone_wmark_min (6.1): calculate_min_free_kbytes,
    setup_per_zone_wmarks, refresh_zone_stat_thresholds, setup_per_zone_lowmem_reserve,
    setup_min_unmapped_ratio, setup_min_slab_ratio, khugepaged_min_free_kbytes_update (which
    runs setup_per_zone_wmarks again). Computed incrementally
    (_init_per_zone_wmark_min_incremental) when the local node is online, else step by step.
    """
    g = m.page_alloc
    local = m.pgdats.get(g.local_nid)
    if local is not None and local.online:
        _init_per_zone_wmark_min_incremental(m)
    else:
        _init_per_zone_wmark_min(m)


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


#: mm/page_alloc.c: alloc_large_system_hash scales up by 4x per 4x memory above 64 GiB
ADAPT_SCALE_BASE, ADAPT_SCALE_SHIFT = 64 << 30, 2
SMP_CACHE_BYTES = 64


def nr_kernel_pages(m) -> int:
    """free_area_init_core's nr_kernel_pages (6.1): every zone's present pages less its memmap
    estimate (calc_memmap_size); x86_64 has no highmem and no dma_reserve."""
    total = 0
    for pgdat in m.pgdats.values():
        for z in pgdat.node_zones:
            spanned, present = z.spanned_pages, z.present_pages
            pages = present if spanned > present + (present >> 4) else spanned
            memmap = -(-pages * m.arch.struct_page_size // m.arch.PAGE_SIZE)
            total += present - memmap if present >= memmap else present
    return total


def alloc_large_system_hash(m, bucketsize: int, scale: int, what: str) -> int:
    """mm/page_alloc.c:alloc_large_system_hash (6.1) for an early (HASH_EARLY | HASH_ZERO)
    table sized from memory: one bucket per 2^scale bytes of kernel pages (rounded up to a
    MiB; the scale grows past 64 GiB), a power of two, at most 1/16 of memory. Memblock."""
    a = m.arch
    kernel = nr_kernel_pages(m)
    mib = max(1, (1 << 20) >> a.page_shift)             # "It isn't necessary when PAGE_SIZE >= 1MB"
    numentries = -(-kernel // mib) * mib
    adapt = ADAPT_SCALE_BASE >> a.page_shift
    while adapt < numentries:
        scale += 1
        adapt <<= ADAPT_SCALE_SHIFT
    if scale > a.page_shift:
        numentries >>= scale - a.page_shift
    else:
        numentries <<= a.page_shift - scale
    if numentries * bucketsize < a.PAGE_SIZE:
        numentries = a.PAGE_SIZE // bucketsize
    numentries = 1 << (numentries - 1).bit_length()
    limit = min(((kernel << a.page_shift) >> 4) // bucketsize, 0x80000000)
    numentries = min(numentries, limit)
    size = bucketsize << (numentries.bit_length() - 1)
    from hotmem.mm.memblock import memblock_alloc_try_nid
    memblock_alloc_try_nid(m, size, SMP_CACHE_BYTES, None, what)
    return size
