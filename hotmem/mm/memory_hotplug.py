"""Memory hot-add, onlining, offlining and hot-remove (mm/memory_hotplug.c, Linux 6.1).

Each function follows the kernel function of the same name step by step; version differences are
read from ``m.policy`` (hotmem/kernel.py). ``m`` is the Machine: it owns the core state (struct
pages, page allocator, page tables) and the Python-side bookkeeping (nodes, zones, resources,
memory block devices).

Errors as in the kernel (hotmem/errors.py): 0 or -errno, the reason recorded with ``fail``, a
failed step undone in one place in reverse order (``Unwind``, the kernel's error labels);
HotplugError is raised only by the Machine API above.
"""
from __future__ import annotations

import errno

from hotmem.arch.base import memory_block_memmap_on_memory_pages as _memmap_on_memory_pages
from hotmem.arch.base import memory_block_memmap_size as _memmap_size
from hotmem.arch.base import mhp_memmap_alignment_ok
from hotmem.drivers.base import memory as memory_dev
from hotmem.drivers.base.node import register_one_node
from hotmem.errors import Unwind, fail
from hotmem.mm import page_alloc, page_isolation, sparse, watermark
from hotmem.mm.page_isolation import MEMORY_OFFLINE, MIGRATE_ISOLATE, REPORT_FAILURE  # noqa: F401
from hotmem.mm.mmzone import (MAX_NR_ZONES, ZONE_DEVICE, ZONE_MOVABLE, ZONE_NORMAL, ZONE_NAMES)
from hotmem.mm.page_alloc import adjust_managed_page_count, page_zone
from hotmem.mm.sparse_vmemmap import pgtable_batch
from hotmem.resource import IORESOURCE_SYSRAM_DRIVER_MANAGED, IORESOURCE_SYSTEM_RAM

# include/linux/memory_hotplug.h (6.1)
MHP_NONE = 0
MHP_MERGE_RESOURCE = 1 << 0
MHP_MEMMAP_ON_MEMORY = 1 << 1
MHP_NID_IS_MGID = 1 << 2
#: 6.9+: the added memory is inaccessible while offline; only with MHP_MEMMAP_ON_MEMORY. The
#: kernel then sets altmap->inaccessible, which only moves page_init_poison (a no-op in the
#: model's configuration) from sparse_add_section to mhp_init_memmap_on_memory; the provider
#: (s390 sclp) makes the memory accessible on MEM_PREPARE_ONLINE. Accepted, no effect here.
MHP_OFFLINE_INACCESSIBLE = 1 << 3

# include/linux/memory_hotplug.h: enum mmop
MMOP_OFFLINE, MMOP_ONLINE, MMOP_ONLINE_KERNEL, MMOP_ONLINE_MOVABLE = range(4)
ONLINE_TYPE_NAMES = {"offline": MMOP_OFFLINE, "online": MMOP_ONLINE,
                     "online_kernel": MMOP_ONLINE_KERNEL, "online_movable": MMOP_ONLINE_MOVABLE}

MIGRATE_UNMOVABLE, MIGRATE_MOVABLE = 0, 1


# -- eligibility ---------------------------------------------------------------------------------

def memory_block_memmap_size(m) -> int:
    """mm/memory_hotplug.c:memory_block_memmap_size (6.6): bytes of struct pages of one block."""
    return _memmap_size(m.arch, m.memory_block_size_bytes)


def memory_block_memmap_on_memory_pages(m) -> int:
    """mm/memory_hotplug.c:memory_block_memmap_on_memory_pages (6.6) of the machine's blocks and
    memmap_on_memory mode (hotmem.arch.base.memory_block_memmap_on_memory_pages)."""
    return _memmap_on_memory_pages(m.arch, m.memory_block_size_bytes,
                                   force=m.memmap_on_memory_force)


def mhp_supports_memmap_on_memory(m, size: int) -> bool:
    """mm/memory_hotplug.c:mhp_supports_memmap_on_memory, as the machine's kernel has it
    (:func:`mhp_supports_memmap_on_memory_for` with the machine's arch, policy, block size and
    memory_hotplug.memmap_on_memory)."""
    return mhp_supports_memmap_on_memory_for(m.arch_ops, m.arch, m.policy, size,
                                             m.memory_block_size_bytes,
                                             memmap_on_memory=m.memmap_on_memory,
                                             force=m.memmap_on_memory_force)


def mhp_supports_memmap_on_memory_for(ops, profile, policy, size: int, block_size: int, *,
                                      memmap_on_memory: bool, force: bool) -> bool:
    """mm/memory_hotplug.c:mhp_supports_memmap_on_memory for an add of ``size`` bytes with
    blocks of ``block_size``, the arch hooks of ``ops`` (an ArchOps class or instance) and the
    kernel ``policy``; ``memmap_on_memory``/``force``: the module parameter (Y / force).

    Only with the arch's Kconfig ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE (``policy.arch``). Rule "v2":
    arch_support_memmap_on_memory() and at most one block (no switch, no alignment test);
    "none" (before 5.13): never; "5.13" (5.13..6.5): parameter on, exactly one block, a
    PMD-aligned memmap and a pageblock-aligned remainder; "6.6": parameter on (Y or force),
    exactly one block, a page-multiple memmap whose page count (force-padded) is
    pageblock-aligned and not the whole block, and the arch's arch_supports_memmap_on_memory()."""
    rule = policy.mhp_supports_rule
    if not policy.arch(profile.name).mhp_memmap_on_memory_enable or rule == "none":
        return False
    if rule == "v2":
        # the RFC's weak arch_support_memmap_on_memory(): true on arm64, powerpc and x86_64
        return ops.arch_support_memmap_on_memory() and 0 < size <= block_size
    if not memmap_on_memory or size != block_size:
        return False
    if rule == "5.13":
        return mhp_memmap_alignment_ok(profile, _memmap_size(profile, size))
    vmemmap_size = _memmap_size(profile, block_size)
    memmap_pages = _memmap_on_memory_pages(profile, block_size, force=force)
    return (vmemmap_size % profile.PAGE_SIZE == 0
            and memmap_pages % profile.pageblock_nr_pages == 0
            and memmap_pages != block_size >> profile.page_shift
            and ops.arch_supports_memmap_on_memory(profile, vmemmap_size))


def check_hotplug_memory_range(m, start: int, size: int) -> int:
    """mm/memory_hotplug.c:check_hotplug_memory_range (6.1): 0 or -EINVAL."""
    bs = m.memory_block_size_bytes
    if not size or start % bs or size % bs:
        return fail(m, errno.EINVAL, f"Block size [{bs:#x}] unaligned hotplug range: start "
                    f"{start:#x}, size {size:#x}")
    return 0


def mhp_range_allowed(m, start: int, size: int) -> bool:
    """mm/memory_hotplug.c:mhp_range_allowed (6.1): within arch_get_mappable_range (the
    default, x86: [0, PHYSMEM_END]), asked of the arch (ArchOps.mhp_range_allowed)."""
    return size > 0 and m.arch_ops.mhp_range_allowed(m, start, size)


# -- zones ---------------------------------------------------------------------------------------

def resize_zone_range(zone, start_pfn: int, nr_pages: int) -> None:
    """mm/memory_hotplug.c:resize_zone_range (6.1)."""
    old_end = zone.zone_end_pfn
    if zone.zone_is_empty() or start_pfn < zone.zone_start_pfn:
        zone.zone_start_pfn = start_pfn
    zone.spanned_pages = max(start_pfn + nr_pages, old_end) - zone.zone_start_pfn


def resize_pgdat_range(pgdat, start_pfn: int, nr_pages: int) -> None:
    """mm/memory_hotplug.c:resize_pgdat_range (6.1)."""
    old_end = pgdat.node_end_pfn
    if not pgdat.node_spanned_pages or start_pfn < pgdat.node_start_pfn:
        pgdat.node_start_pfn = start_pfn
    pgdat.node_spanned_pages = max(start_pfn + nr_pages, old_end) - pgdat.node_start_pfn


def move_pfn_range_to_zone(m, zone, start_pfn: int, nr_pages: int, migratetype: int) -> None:
    """mm/memory_hotplug.c:move_pfn_range_to_zone (6.1), without an altmap (memory hotplug)."""
    pgdat = m.pgdats[zone.node]
    zone.contiguous = False
    if zone.zone_is_empty():
        # init_currently_empty_zone
        zone.zone_start_pfn = start_pfn
        pgdat.nr_zones = max(pgdat.nr_zones, zone.idx + 1)
    resize_zone_range(zone, start_pfn, nr_pages)
    resize_pgdat_range(pgdat, start_pfn, nr_pages)
    m.ms.memmap_init_range(start_pfn, nr_pages, zone.node, zone.idx, migratetype)
    zone.contiguous = False  # set_zone_contiguous: not tracked beyond this flag


def shrink_zone_span(m, zone, start_pfn: int, end_pfn: int) -> None:
    """mm/memory_hotplug.c:shrink_zone_span (6.1)."""
    core, ms = m.core, m.ms
    nid = zone.node
    if zone.zone_start_pfn == start_pfn:
        pfn = core.find_smallest_section_pfn(ms, nid, zone.zoneid, end_pfn, zone.zone_end_pfn)
        if pfn:
            zone.spanned_pages = zone.zone_end_pfn - pfn
            zone.zone_start_pfn = pfn
        else:
            zone.zone_start_pfn = 0
            zone.spanned_pages = 0
    elif zone.zone_end_pfn == end_pfn:
        pfn = core.find_biggest_section_pfn(ms, nid, zone.zoneid, zone.zone_start_pfn, start_pfn)
        if pfn:
            zone.spanned_pages = pfn - zone.zone_start_pfn + 1
        else:
            zone.zone_start_pfn = 0
            zone.spanned_pages = 0


def update_pgdat_span(pgdat) -> None:
    """mm/memory_hotplug.c:update_pgdat_span (6.1): the union of the zones' spans."""
    start, end = None, 0
    for z in pgdat.node_zones:
        if not z.spanned_pages:
            continue
        if start is None:
            start, end = z.zone_start_pfn, z.zone_end_pfn
            continue
        end = max(end, z.zone_end_pfn)
        start = min(start, z.zone_start_pfn)
    pgdat.node_start_pfn = start or 0
    pgdat.node_spanned_pages = end - (start or 0) if start is not None else 0


def remove_pfn_range_from_zone(m, zone, start_pfn: int, nr_pages: int) -> None:
    """mm/memory_hotplug.c:remove_pfn_range_from_zone (6.1)."""
    if zone.idx == ZONE_DEVICE:
        return
    zone.contiguous = False
    shrink_zone_span(m, zone, start_pfn, start_pfn + nr_pages)
    update_pgdat_span(m.pgdats[zone.node])


def adjust_present_page_count(m, pfn: int, group, nr_pages: int) -> None:
    """mm/memory_hotplug.c:adjust_present_page_count (6.1)."""
    zone = page_zone(m, pfn)
    zone.present_pages += nr_pages
    if m.ms.section_mem_map(m.arch.pfn_to_section_nr(pfn)) & m.core.SECTION_IS_EARLY:
        zone.present_early_pages += nr_pages
    m.pgdats[zone.node].node_present_pages += nr_pages
    if group is not None:
        if zone.idx == ZONE_MOVABLE:
            group.present_movable_pages += nr_pages
        else:
            group.present_kernel_pages += nr_pages


def default_kernel_zone_for_pfn(m, nid: int, start_pfn: int, nr_pages: int):
    """mm/memory_hotplug.c:default_kernel_zone_for_pfn (6.1)."""
    pgdat = m.pgdats[nid]
    for zid in range(ZONE_NORMAL):
        z = pgdat.node_zones[zid]
        if z.zone_intersects(start_pfn, nr_pages):
            return z
    return pgdat.node_zones[ZONE_NORMAL]


def default_zone_for_pfn(m, nid: int, start_pfn: int, nr_pages: int):
    """mm/memory_hotplug.c:default_zone_for_pfn (6.1, contig-zones)."""
    kernel_zone = default_kernel_zone_for_pfn(m, nid, start_pfn, nr_pages)
    movable_zone = m.pgdats[nid].node_zones[ZONE_MOVABLE]
    in_kernel = kernel_zone.zone_intersects(start_pfn, nr_pages)
    in_movable = movable_zone.zone_intersects(start_pfn, nr_pages)
    if in_kernel ^ in_movable:
        return kernel_zone if in_kernel else movable_zone
    return movable_zone if m.movable_node_enabled else kernel_zone


# -- the "auto-movable" online policy (5.15+) ----------------------------------------------------

def auto_movable_stats_account_zone(stats: dict, zone) -> None:
    """mm/memory_hotplug.c:auto_movable_stats_account_zone (6.1): ZONE_MOVABLE's present pages
    count as movable, the other zones' present_early_pages as kernel (no CMA in the model)."""
    if zone.idx == ZONE_MOVABLE:
        stats["movable_pages"] += zone.present_pages
    else:
        stats["kernel_early_pages"] += zone.present_early_pages


def auto_movable_stats_account_group(m, group, stats: dict) -> None:
    """mm/memory_hotplug.c:auto_movable_stats_account_group (6.1): the kernel pages a dynamic
    group's movable memory asks for (present_movable_pages * 100 / ratio, less what the group
    has in kernel zones), and its movable pages."""
    ratio = m.auto_movable_ratio
    if not ratio:
        return
    pages = group.present_movable_pages * 100 // ratio - group.present_kernel_pages
    if pages > 0:
        stats["req_kernel_early_pages"] += pages
    stats["movable_pages"] += group.present_movable_pages


def walk_dynamic_memory_groups(m, nid: int, func, excluded, arg) -> None:
    """drivers/base/memory.c:walk_dynamic_memory_groups (6.1): every dynamic group in mgid order,
    but ``excluded``, of node ``nid`` (all nodes for NUMA_NO_NODE, -1)."""
    for _mgid, group in sorted(getattr(m, "memory_groups", {}).items()):
        if not group.is_dynamic or group is excluded:
            continue
        if nid != -1 and group.nid != nid:
            continue
        func(m, group, arg)


def auto_movable_can_online_movable(m, nid: int, group, nr_pages: int) -> bool:
    """mm/memory_hotplug.c:auto_movable_can_online_movable (6.1): would ``nr_pages`` more in
    ZONE_MOVABLE keep MOVABLE:KERNEL at or below memory_hotplug.auto_movable_ratio percent, on
    node ``nid`` (or the whole machine for NUMA_NO_NODE, -1), once the kernel memory the other
    dynamic groups' movable memory asks for is set aside?"""
    stats = {"kernel_early_pages": 0, "movable_pages": 0}
    pgdats = m.pgdats.values() if nid == -1 else [m.pgdats[nid]]
    for pgdat in pgdats:
        for zone in pgdat.node_zones:
            if zone.populated_zone():
                auto_movable_stats_account_zone(stats, zone)
    kernel_early_pages, movable_pages = stats["kernel_early_pages"], stats["movable_pages"]
    gstats = {"movable_pages": 0, "req_kernel_early_pages": 0}
    walk_dynamic_memory_groups(m, nid, auto_movable_stats_account_group, group, gstats)
    if kernel_early_pages <= gstats["req_kernel_early_pages"]:
        return False
    kernel_early_pages -= gstats["req_kernel_early_pages"]
    movable_pages -= gstats["movable_pages"]
    if group is not None and group.is_dynamic:
        kernel_early_pages += group.present_kernel_pages
    movable_pages += nr_pages
    return movable_pages <= m.auto_movable_ratio * kernel_early_pages // 100


def auto_movable_zone_for_pfn(m, nid: int, group, pfn: int, nr_pages: int):
    """mm/memory_hotplug.c:auto_movable_zone_for_pfn (6.1): ZONE_MOVABLE when the whole unit
    (a static group's max_pages less what it has in ZONE_MOVABLE and nothing in kernel zones;
    a dynamic group's unit_pages less its online movable sections, none of them in a kernel zone;
    or the block itself) fits the MOVABLE:KERNEL ratio machine-wide and, with
    auto_movable_numa_aware, on the node; otherwise default_kernel_zone_for_pfn (of the aligned
    unit's pfn and the pages left, as the kernel passes them)."""
    online_pages = 0
    a = m.arch
    kernel = False
    if not m.auto_movable_ratio:
        kernel = True
    elif group is not None and not group.is_dynamic:
        max_pages = group.max_pages
        online_pages = group.present_movable_pages
        if group.present_kernel_pages:
            kernel = True
    elif group is None or group.unit_pages == nr_pages:
        max_pages = nr_pages
    else:
        max_pages = group.unit_pages
        pfn -= pfn % group.unit_pages
        end_pfn = pfn + group.unit_pages
        while pfn < end_pfn:
            if m.ms.pfn_to_online_page(pfn):
                if m.ms.page_zonenum(pfn) != ZONE_MOVABLE:
                    kernel = True
                    break
                online_pages += a.PAGES_PER_SECTION
            pfn += a.PAGES_PER_SECTION
    if not kernel:
        nr_pages = max_pages - online_pages
        if not auto_movable_can_online_movable(m, -1, group, nr_pages):
            kernel = True
        elif m.auto_movable_numa_aware and not auto_movable_can_online_movable(m, nid, group,
                                                                              nr_pages):
            kernel = True
    if kernel:
        return default_kernel_zone_for_pfn(m, nid, pfn, nr_pages)
    return m.pgdats[nid].node_zones[ZONE_MOVABLE]


def zone_for_pfn_range(m, online_type: int, nid: int, group, start_pfn: int, nr_pages: int):
    """mm/memory_hotplug.c:zone_for_pfn_range (6.1): online_kernel / online_movable as asked;
    otherwise the memory_hotplug.online_policy decides: "auto-movable"
    (auto_movable_zone_for_pfn, 5.15+) or
    "contig-zones" (default_zone_for_pfn)."""
    if online_type == MMOP_ONLINE_KERNEL:
        return default_kernel_zone_for_pfn(m, nid, start_pfn, nr_pages)
    if online_type == MMOP_ONLINE_MOVABLE:
        return m.pgdats[nid].node_zones[ZONE_MOVABLE]
    if m.online_policy == "auto-movable":
        return auto_movable_zone_for_pfn(m, nid, group, start_pfn, nr_pages)
    return default_zone_for_pfn(m, nid, start_pfn, nr_pages)


# -- hot-add -------------------------------------------------------------------------------------

def __add_pages(m, nid: int, pfn: int, nr_pages: int, altmap) -> int:
    """mm/memory_hotplug.c:__add_pages (6.1). 0 or -errno; earlier sections stay on failure."""
    a = m.arch
    if altmap is not None:
        if altmap.base_pfn != pfn or m.core.vmem_altmap_offset(altmap) > nr_pages:
            m.warn("memory_hotplug: invalid altmap")
            return -errno.EINVAL
        altmap.alloc = 0
    if pfn % a.PAGES_PER_SUBSECTION or nr_pages % a.PAGES_PER_SUBSECTION:
        m.warn(f"check_pfn_span: misaligned pfn {pfn:#x} nr {nr_pages:#x}")
        return -errno.EINVAL
    end = pfn + nr_pages
    with pgtable_batch(m):              # one page-table allocator for the sections' walks
        while pfn < end:
            cur = min(end - pfn, a.PAGES_PER_SECTION - (pfn & (a.PAGES_PER_SECTION - 1)))
            rc = sparse.sparse_add_section(m, nid, pfn, cur, altmap)
            if rc:
                return rc
            pfn += cur
    return 0


def __remove_pages(m, pfn: int, nr_pages: int, altmap) -> None:
    """mm/memory_hotplug.c:__remove_pages (6.1)."""
    a = m.arch
    map_offset = m.core.vmem_altmap_offset(altmap)
    if pfn % a.PAGES_PER_SUBSECTION or nr_pages % a.PAGES_PER_SUBSECTION:
        m.warn(f"check_pfn_span: misaligned pfn {pfn:#x} nr {nr_pages:#x}")
        return
    end = pfn + nr_pages
    while pfn < end:
        cur = min(end - pfn, a.PAGES_PER_SECTION - (pfn & (a.PAGES_PER_SECTION - 1)))
        nr = a.pfn_to_section_nr(pfn)
        if not m.ms.section_mem_map(nr) & m.core.SECTION_HAS_MEM_MAP:
            m.warn(f"__remove_section: section {nr} not valid")
        else:
            sparse.sparse_remove_section(m, pfn, cur, map_offset, altmap)
        map_offset = 0
        pfn += cur


def hotadd_init_pgdat(m, nid: int) -> None:
    """mm/memory_hotplug.c:hotadd_init_pgdat (6.1): zones re-initialised empty, node online."""
    pgdat = m.pgdats[nid]
    pgdat.online = True
    pgdat.node_start_pfn = pgdat.node_spanned_pages = pgdat.node_present_pages = 0


def __try_online_node(m, nid: int) -> bool:
    """mm/memory_hotplug.c:__try_online_node (6.1): True when the node was brought online."""
    pgdat = m.pgdats[nid]
    if pgdat.online:
        return False
    hotadd_init_pgdat(m, nid)
    return True


def new_hotadd_altmap(m, start: int, size: int):
    """The altmap add_memory_resource builds: base = first pfn; ``free`` = the whole range
    (v2..6.5) or the block's memmap pages incl. force padding, with ``end_pfn`` the last pfn
    (6.6+)."""
    a = m.arch
    if m.policy.altmap_free == "range":
        return m.core.VmemAltmap(base_pfn=start >> a.page_shift, free=size >> a.page_shift)
    return m.core.VmemAltmap(base_pfn=start >> a.page_shift,
                             end_pfn=(start + size - 1) >> a.page_shift,
                             free=memory_block_memmap_on_memory_pages(m))


def create_altmaps_and_memory_blocks(m, nid: int, group, start: int, size: int) -> int:
    """mm/memory_hotplug.c:create_altmaps_and_memory_blocks (6.8): one altmap, one
    arch_add_memory and one memory block device per memory block; blocks already done are
    removed again on failure."""
    bs = m.memory_block_size_bytes
    cur = start
    rc = 0
    while cur < start + size:
        altmap = new_hotadd_altmap(m, cur, bs)
        rc = m.arch_ops.arch_add_memory(m, nid, cur, bs, altmap)
        if rc:
            break
        rc = m.memory.create_memory_block_devices(cur, bs, altmap, group)
        if rc:
            # 6.8..6.11 pass NULL; 6.12.100+ the block's altmap
            m.arch_ops.arch_remove_memory(
                m, cur, bs, altmap if m.policy.per_block_rollback_passes_altmap else None)
            break
        cur += bs
    if rc and cur != start:                             # out: the blocks already done
        remove_memory_blocks_and_altmaps(m, start, cur - start)
    return rc


def remove_memory_blocks_and_altmaps(m, start: int, size: int) -> None:
    """mm/memory_hotplug.c:remove_memory_blocks_and_altmaps (6.8): block by block."""
    bs = m.memory_block_size_bytes
    for cur in range(start, start + size, bs):
        mem = m.memory.blocks.get(cur // bs)
        if mem is None:                     # WARN_ON_ONCE(!mem): continue
            m.warn(f"remove_memory_blocks_and_altmaps: no memory block at {cur:#x}")
            continue
        altmap, mem.altmap = mem.altmap, None
        m.memory.remove_memory_block_devices(cur, bs)
        m.arch_ops.arch_remove_memory(m, cur, bs, altmap)
        if altmap is not None and altmap.alloc:
            m.warn(f"Altmap not fully unmapped: {altmap.alloc} pages at pfn {altmap.base_pfn:#x}")


def add_memory_resource(m, nid: int, res, mhp_flags: int, group=None) -> int:
    """mm/memory_hotplug.c:add_memory_resource (6.1): 0 or -errno.

    A failure after arch_add_memory started leaves what the kernel's error path leaves."""
    start, size = res.start, res.end - res.start + 1
    rc = check_hotplug_memory_range(m, start, size)
    if rc:
        return rc
    if mhp_flags & MHP_NID_IS_MGID:
        if group is None:
            return fail(m, errno.EINVAL, f"memory group {nid} does not exist")
        nid = group.nid
    if nid not in m.pgdats:
        return fail(m, errno.EINVAL, f"node {nid} is not possible")
    altmap = None
    per_block = False
    if mhp_flags & MHP_MEMMAP_ON_MEMORY:
        if m.policy.altmap_per_memory_block:
            per_block = mhp_supports_memmap_on_memory(m, m.memory_block_size_bytes)
        elif mhp_supports_memmap_on_memory(m, size):
            altmap = new_hotadd_altmap(m, start, size)
        elif not m.policy.mhp_memmap_on_memory_fallback:
            return fail(m, errno.EINVAL, f"MHP_MEMMAP_ON_MEMORY not supported for {size:#x} "
                        f"bytes at {start:#x} (block size {m.memory_block_size_bytes:#x})")
    undo = Unwind()
    new_node = __try_online_node(m, nid)
    if new_node:
        undo.push(_node_offline_again, m, nid)          # error: rollback_node_hotadd
    with undo:          # an oops below (a HotplugError) still takes the new node offline
        if per_block:
            rc = create_altmaps_and_memory_blocks(m, nid, group, start, size)
        else:
            rc = m.arch_ops.arch_add_memory(m, nid, start, size, altmap)
    if rc:
        return undo.unwind(fail(m, -rc, f"arch_add_memory({start:#x}, {size:#x}) failed"))
    if not per_block:
        # 6.1.y rolls back with the altmap; v2, 5.13 and 6.1.0 pass NULL, so the x86
        # teardown would hand the altmap's pages (part of the range) to free_pagetable
        undo.push(m.arch_ops.arch_remove_memory, m, start, size,
                  altmap if m.policy.add_rollback_passes_altmap else None)
        rc = m.memory.create_memory_block_devices(start, size, altmap, group)
        if rc:
            return undo.unwind(rc)
    if new_node:
        register_one_node(m, nid)
    m.memory.register_memory_blocks_under_node(nid, start >> m.arch.page_shift,
                                               (start + size) >> m.arch.page_shift)
    if res.name == "System RAM":
        m.firmware_map.append((start, start + size, "System RAM"))
    if mhp_flags & MHP_MERGE_RESOURCE:
        m.resources.merge_system_ram_resource(res)
    if m.mhp_default_online_type != MMOP_OFFLINE:
        m.memory.online_range(start, size, m.mhp_default_online_type)
    return 0


def _node_offline_again(m, nid: int) -> None:
    """add_memory_resource's error path for a node it brought online (rollback_node_hotadd)."""
    m.pgdats[nid].online = False


def register_memory_resource(m, start: int, size: int, name: str):
    """mm/memory_hotplug.c:register_memory_resource (6.1): the busy System RAM resource, or
    None (-EEXIST recorded) when the range conflicts."""
    flags = IORESOURCE_SYSTEM_RAM
    if name != "System RAM":
        flags |= IORESOURCE_SYSRAM_DRIVER_MANAGED
    res = m.resources.request_mem_region(start, size, name, flags)
    if res is None:
        c = m.resources.conflict(start, start + size - 1)
        fail(m, errno.EEXIST, f"[mem {start:#x}-{start + size - 1:#x}] conflicts with "
             f"[{c.start:#x}-{c.end:#x}] {c.name!r}")
    return res


def __add_memory(m, nid: int, start: int, size: int, mhp_flags: int, group=None,
                 name: str = "System RAM") -> int:
    """mm/memory_hotplug.c:__add_memory (6.1): register_memory_resource + add_memory_resource,
    the resource released again on failure; 0 or -errno. The model refuses bad input before
    anything changes, as the kernel's early checks (and QEMU's) do."""
    a = m.arch
    rc = check_hotplug_memory_range(m, start, size)
    if rc:
        return rc
    if not mhp_range_allowed(m, start, size):
        return fail(m, errno.E2BIG, f"range [{start:#x}, {start + size:#x}) is beyond the "
                    f"physical limit {a.physmem_end:#x}")
    if not (mhp_flags & MHP_NID_IS_MGID) and nid not in m.pgdats:
        return fail(m, errno.EINVAL, f"node {nid} is not possible")
    if (mhp_flags & MHP_MEMMAP_ON_MEMORY and not mhp_supports_memmap_on_memory(m, size)
            and not m.policy.mhp_memmap_on_memory_fallback):
        return fail(m, errno.EINVAL, f"MHP_MEMMAP_ON_MEMORY not supported for {size:#x} bytes "
                    f"at {start:#x} (block size {m.memory_block_size_bytes:#x}, "
                    f"memmap_on_memory={'Y' if m.memmap_on_memory else 'N'})")
    bs = m.memory_block_size_bytes
    for mem_id in range(start // bs, (start + size) // bs):
        if mem_id in m.memory.blocks:
            return fail(m, errno.EEXIST, f"memory block {mem_id} already exists")
    res = register_memory_resource(m, start, size, name)
    if res is None:
        return -errno.EEXIST
    with Unwind() as undo:
        undo.push(m.resources.release_mem_region_adjustable, start, size)
        rc = sparse.check_section_free(m, start >> a.page_shift, size >> a.page_shift)
        if not rc:
            rc = add_memory_resource(m, nid, res, mhp_flags, group)
        if rc:
            return undo.unwind(rc)
    return 0


def add_memory_driver_managed(m, nid: int, start: int, size: int, resource_name: str,
                              mhp_flags: int, group=None) -> int:
    """mm/memory_hotplug.c:add_memory_driver_managed (6.1): memory a driver manages (virtio-mem,
    dax/kmem) under a resource named "System RAM ($DRIVER)", flagged
    IORESOURCE_SYSRAM_DRIVER_MANAGED and without a /sys/firmware/memmap entry. 0 or -errno."""
    if (not resource_name or not resource_name.startswith("System RAM (")
            or not resource_name.endswith(")")):
        return fail(m, errno.EINVAL, f"add_memory_driver_managed: resource name "
                    f"{resource_name!r} is not \"System RAM ($DRIVER)\"")
    return __add_memory(m, nid, start, size, mhp_flags, group, resource_name)


def offline_and_remove_memory(m, start: int, size: int) -> int:
    """mm/memory_hotplug.c:offline_and_remove_memory (6.1): offline every memory block of the
    range (try_offline_memory_block, remembering each one's online type), then
    try_remove_memory; on failure the blocks it offlined are onlined again with their old
    online type (try_reonline_memory_block, errors ignored). 0 or -errno."""
    bs = m.memory_block_size_bytes
    if not size or start % bs or size % bs:
        return fail(m, errno.EINVAL, f"offline_and_remove_memory: range {start:#x}+{size:#x} "
                    f"is not aligned to the block size {bs:#x}")
    blocks = m.memory.blocks_in_range(start, size)
    online_types = {}
    rc = 0
    for mem in blocks:                          # walk_memory_blocks(try_offline_memory_block)
        # try_offline_memory_block: page_zonenum of the first page decides the online type
        online_type = MMOP_OFFLINE
        if mem.state == "online":
            online_type = (MMOP_ONLINE_MOVABLE if mem.zone is not None
                           and mem.zone.idx == ZONE_MOVABLE else MMOP_ONLINE_KERNEL)
        rc = m.memory.memory_subsys_offline(mem)
        if rc < 0:
            break
        rc = 0
        online_types[mem.block_id] = online_type
    if not rc:
        rc = try_remove_memory(m, start, size)
    if rc:
        for mem in blocks:                      # try_reonline_memory_block
            ot = online_types.get(mem.block_id, MMOP_OFFLINE)
            if ot == MMOP_OFFLINE:
                continue
            mem.online_type = ot
            if m.memory.memory_subsys_online(mem) < 0:
                m.log(f"offline_and_remove_memory: memory{mem.block_id} stays offline")
            mem.online_type = MMOP_OFFLINE
    return rc


# -- onlining ------------------------------------------------------------------------------------

def set_online_page_callback(m, callback) -> int:
    """mm/memory_hotplug.c:set_online_page_callback (6.1): 0, or -EINVAL when a callback other
    than generic_online_page is installed. ``callback(m, pfn, order)``."""
    if getattr(m, "online_page_callback", None) is not None:
        return -errno.EINVAL
    m.online_page_callback = callback
    return 0


def restore_online_page_callback(m, callback) -> int:
    """mm/memory_hotplug.c:restore_online_page_callback (6.1): 0, or -EINVAL when ``callback``
    is not the one installed."""
    if getattr(m, "online_page_callback", None) is not callback:
        return -errno.EINVAL
    m.online_page_callback = None
    return 0


def online_pages_range(m, start_pfn: int, nr_pages: int) -> None:
    """mm/memory_hotplug.c:online_pages_range (6.1): the range in MAX_ORDER−1-capped, naturally
    aligned chunks to the online_page_callback -- generic_online_page (__free_pages_core +
    totalram_pages_add: one core call, PageAllocator.online_pages_range) unless a driver
    (virtio-mem) installed its own with set_online_page_callback; then the touched sections
    online."""
    cb = getattr(m, "online_page_callback", None)
    if cb is None:
        m.totalram_pages += m.allocator.online_pages_range(start_pfn, nr_pages)
    else:
        end_pfn, top = start_pfn + nr_pages, m.max_order - 1
        pfn = start_pfn
        while pfn < end_pfn:
            order = min(top, (pfn & -pfn).bit_length() - 1) if pfn else top
            cb(m, pfn, order)
            pfn += 1 << order
    sparse.online_mem_sections(m, start_pfn, start_pfn + nr_pages)


def online_pages(m, pfn: int, nr_pages: int, zone, group, nr_vmemmap_pages: int = 0) -> int:
    """mm/memory_hotplug.c:online_pages (6.1): 0 or -errno (failed_addition undoes the zone
    move).

    ``nr_vmemmap_pages`` > 0 is the RFC v2 form: [pfn, pfn + nr_pages) is the whole block, its first
    pages hold the memmap and join the zone unmovable, present grows by the whole block here."""
    a = m.arch
    v = nr_vmemmap_pages
    if v:
        misaligned = not nr_pages or pfn % a.PAGES_PER_SECTION or nr_pages % a.PAGES_PER_SECTION
    else:
        misaligned = (not nr_pages or pfn % a.pageblock_nr_pages
                      or (pfn + nr_pages) % a.PAGES_PER_SECTION)
    if misaligned:
        m.warn(f"online_pages: misaligned range {pfn:#x}+{nr_pages:#x}")
        return fail(m, errno.EINVAL, f"online_pages: range {pfn:#x}+{nr_pages:#x} not "
                    "pageblock/section aligned")
    nid = zone.node
    pgdat = m.pgdats[nid]
    buddy_start, buddy_pages = pfn + v, nr_pages - v
    if v:
        move_pfn_range_to_zone(m, zone, pfn, v, MIGRATE_UNMOVABLE)
    move_pfn_range_to_zone(m, zone, buddy_start, buddy_pages, MIGRATE_ISOLATE)
    status_change_nid = nid if not pgdat.has_memory else -1
    status_change_nid_normal = nid if (zone.idx <= ZONE_NORMAL and not pgdat.has_normal_memory) \
        else -1
    err = memory_dev.memory_notify(m, "MEM_GOING_ONLINE", pfn, nr_pages, status_change_nid)
    if err:                                             # failed_addition
        memory_dev.memory_notify(m, "MEM_CANCEL_ONLINE", pfn, nr_pages, status_change_nid)
        remove_pfn_range_from_zone(m, zone, pfn, nr_pages)
        return fail(m, -err, f"online_pages [mem {pfn << a.page_shift:#018x}-"
                    f"{((pfn + nr_pages) << a.page_shift) - 1:#018x}]: notifier refused")
    m.allocator.adjust_nr_isolate_pageblock(zone.zoneid, buddy_pages // a.pageblock_nr_pages)
    need_zonelists_rebuild = not zone.populated_zone()
    if need_zonelists_rebuild:
        watermark.setup_zone_pageset(m, zone)
    online_pages_range(m, buddy_start, buddy_pages)
    adjust_present_page_count(m, pfn, group, nr_pages)
    # node_states_set_node
    if status_change_nid_normal >= 0:
        pgdat.has_normal_memory = True
    if status_change_nid >= 0:
        pgdat.has_memory = True
    page_isolation.undo_isolate_page_range(m, buddy_start, pfn + nr_pages)
    page_alloc.init_per_zone_wmark_min(m)
    pgdat.kswapd = pgdat.kcompactd = True
    memory_dev.memory_notify(m, "MEM_ONLINE", pfn, nr_pages, status_change_nid)
    return 0


def mhp_init_memmap_on_memory(m, pfn: int, nr_pages: int, zone) -> None:
    """mm/memory_hotplug.c:mhp_init_memmap_on_memory (6.1): the vmemmap pages join the zone as
    reserved, unmovable, self-hosted pages; whole sections of them go online.

    6.11: move_pfn_range_to_zone leaves hot-plugged struct pages PageOffline rather than
    PG_reserved, and this function clears PageOffline before setting PageVmemmapSelfHosted: the
    pages end up with neither. (The model's memmap_init_range marks them PG_reserved as 6.1
    does; the 6.11 policy clears it here, as __free_pages_core clears it for the pages that go
    to the buddy -- the transient PageOffline state is not kept.)"""
    move_pfn_range_to_zone(m, zone, pfn, nr_pages, MIGRATE_UNMOVABLE)
    if m.policy.hotplug_memmap_page_offline:
        m.ms.clear_page_flag_range(pfn, nr_pages, m.core.PG_reserved)
    if m.policy.vmemmap_self_hosted_flag:
        m.ms.set_page_flag_range(pfn, nr_pages, m.core.PG_vmemmap_self_hosted)
    if nr_pages >= m.arch.PAGES_PER_SECTION:
        sparse.online_mem_sections(m, pfn, pfn - pfn % m.arch.PAGES_PER_SECTION
                                   + nr_pages // m.arch.PAGES_PER_SECTION * m.arch.PAGES_PER_SECTION)


def mhp_deinit_memmap_on_memory(m, pfn: int, nr_pages: int) -> None:
    """mm/memory_hotplug.c:mhp_deinit_memmap_on_memory (6.1)."""
    if nr_pages >= m.arch.PAGES_PER_SECTION:
        sparse.offline_mem_sections(m, pfn, pfn + nr_pages // m.arch.PAGES_PER_SECTION
                                    * m.arch.PAGES_PER_SECTION)
    remove_pfn_range_from_zone(m, page_zone(m, pfn), pfn, nr_pages)


# -- offlining -----------------------------------------------------------------------------------

def offline_pages(m, start_pfn: int, nr_pages: int, zone, group, nr_vmemmap_pages: int = 0) -> int:
    """mm/memory_hotplug.c:offline_pages (6.1): 0 or -errno, the kernel's error path
    (failed_removal_isolated → failed_removal_pcplists_disabled → failed_removal) undone first.

    ``nr_vmemmap_pages`` > 0 is the RFC v2 form: the range is the whole block; isolation and
    freeing work on what follows the memmap, present shrinks by the whole block."""
    a = m.arch
    alloc = m.allocator
    block_start, block_pages = start_pfn, nr_pages
    if nr_vmemmap_pages:
        start_pfn, nr_pages = start_pfn + nr_vmemmap_pages, nr_pages - nr_vmemmap_pages
    end_pfn = start_pfn + nr_pages
    rng = f"[mem {start_pfn << a.page_shift:#018x}-{(end_pfn << a.page_shift) - 1:#018x}]"
    if (not nr_pages or start_pfn % a.pageblock_nr_pages or end_pfn % a.PAGES_PER_SECTION):
        m.warn(f"offline_pages: misaligned range {start_pfn:#x}+{nr_pages:#x}")
        return fail(m, errno.EINVAL, f"offline_pages: range {start_pfn:#x}+{nr_pages:#x} "
                    "misaligned")
    if not m.resources.range_is_system_ram(start_pfn << a.page_shift, end_pfn << a.page_shift):
        return fail(m, errno.EINVAL, f"memory offlining {rng} failed due to memory holes")
    if (page_zone(m, start_pfn) is not zone or page_zone(m, end_pfn - 1) is not zone):
        return fail(m, errno.EINVAL, f"memory offlining {rng} failed due to multizone range")
    undo = Unwind()
    alloc.zone_pcp_disable(zone.zoneid)
    undo.push(alloc.zone_pcp_enable, zone.zoneid)       # failed_removal_pcplists_disabled
    bad = page_isolation.start_isolate_page_range(m, start_pfn, end_pfn)
    if bad >= 0:
        reason = "failure to isolate range"
        detail = f" (unmovable page at pfn {bad:#x})"
        err = -errno.EBUSY
    else:
        # failed_removal_isolated: the notifier is told first, then the isolation undone
        undo.push(page_isolation.undo_isolate_page_range, m, start_pfn, end_pfn)
        undo.push(memory_dev.memory_notify, m, "MEM_CANCEL_OFFLINE", start_pfn, nr_pages, -1)
        err = memory_dev.memory_notify(m, "MEM_GOING_OFFLINE", start_pfn, nr_pages, -1)
        if not err and not alloc.test_pages_isolated(start_pfn, end_pfn):
            err = -errno.EBUSY  # nothing the model can migrate: the kernel would loop until a signal
        reason = "notifier failure" if err != -errno.EBUSY else "unmovable page"
        detail = ""
    if err:                                             # failed_removal
        undo.unwind(err)
        m.log(f"memory offlining {rng} failed due to {reason}")
        return fail(m, -err, f"memory offlining {rng} failed due to {reason}{detail}")
    pgdat = m.pgdats[zone.node]
    alloc.offline_isolated_pages(start_pfn, end_pfn)
    sparse.offline_mem_sections(m, block_start if nr_vmemmap_pages else start_pfn, end_pfn)
    alloc.adjust_nr_isolate_pageblock(zone.zoneid, -(nr_pages // a.pageblock_nr_pages))
    alloc.zone_pcp_enable(zone.zoneid)
    adjust_managed_page_count(m, zone, -nr_pages)
    adjust_present_page_count(m, block_start, group, -block_pages)
    page_alloc.init_per_zone_wmark_min(m)
    if not zone.populated_zone():
        watermark.zone_pcp_reset(m, zone)
    # node_states_clear_node
    if not any(z.present_pages for z in pgdat.node_zones[:ZONE_NORMAL + 1]):
        pgdat.has_normal_memory = False
    if not any(z.present_pages for z in pgdat.node_zones[:MAX_NR_ZONES]):
        pgdat.has_memory = False
        pgdat.kswapd = pgdat.kcompactd = False
    memory_dev.memory_notify(m, "MEM_OFFLINE", start_pfn, nr_pages, -1)
    remove_pfn_range_from_zone(m, zone, block_start, block_pages)
    return 0


# -- hot-remove ----------------------------------------------------------------------------------

def remove_memory(m, start: int, size: int) -> int:
    """mm/memory_hotplug.c:remove_memory (6.1): try_remove_memory; the model first refuses a
    range with a section nobody added (the kernel would WARN in __remove_section and still
    return 0). 0 or -errno."""
    rc = check_hotplug_memory_range(m, start, size)
    if rc:
        return rc
    a = m.arch
    for pfn in range(start >> a.page_shift, (start + size) >> a.page_shift, a.PAGES_PER_SECTION):
        if not m.ms.section_mem_map(a.pfn_to_section_nr(pfn)) & m.core.SECTION_MARKED_PRESENT:
            return fail(m, errno.EINVAL, f"remove_memory: no memory was added at "
                        f"{pfn << a.page_shift:#x} (section {a.pfn_to_section_nr(pfn)})")
    return try_remove_memory(m, start, size)


def try_remove_memory(m, start: int, size: int) -> int:
    """mm/memory_hotplug.c:try_remove_memory (6.1): 0, or -errno with nothing changed."""
    rc = check_hotplug_memory_range(m, start, size)
    if rc:
        return rc
    blocks = m.memory.blocks_in_range(start, size)
    nid = None
    for mem in blocks:
        if mem.state != "offline":
            return fail(m, errno.EBUSY, f"removing memory fails, because memory "
                        f"[{mem.start_pfn << m.arch.page_shift:#x}-"
                        f"{(mem.end_pfn << m.arch.page_shift) - 1:#x}] is onlined")
        nid = mem.nid
    pol = m.policy
    altmap = None
    per_block = False
    if m.memmap_on_memory or pol.memmap_on_memory_param == "none":
        if pol.altmap_per_memory_block:
            # 6.8 memory_blocks_have_altmaps: all or nothing, counted against the blocks the
            # range should have (size / memory_block_size_bytes), not those that exist
            with_altmap = [b for b in blocks if b.altmap is not None]
            if with_altmap and len(with_altmap) != size // m.memory_block_size_bytes:
                m.warn("memory_blocks_have_altmaps: only some blocks have an altmap")
                return fail(m, errno.EINVAL, f"range [{start:#x}, {start + size:#x}) mixes "
                            "blocks with and without memmap on memory")
            per_block = bool(with_altmap)
        else:
            if pol.remove_altmap_from == "sum":
                nr_vmemmap_pages = 0
                for b in blocks:
                    if not b.nr_vmemmap_pages:
                        break
                    nr_vmemmap_pages += b.nr_vmemmap_pages
                found = nr_vmemmap_pages > 0
            else:
                holder = next((b for b in blocks if b.nr_vmemmap_pages), None)
                found = holder is not None
            if found:
                if size != m.memory_block_size_bytes and pol.remove_refuses_wrong_granularity:
                    m.log(f"Refuse to remove {start:#x} - {start + size:#x}, wrong granularity")
                    return fail(m, errno.EINVAL, f"memory with memmap_on_memory must be "
                                f"removed one block ({m.memory_block_size_bytes:#x} bytes) "
                                f"at a time, not {size:#x}")
                if pol.remove_altmap_from == "block altmap":
                    altmap, holder.altmap = holder.altmap, None
                elif pol.remove_altmap_from == "first":
                    altmap = m.core.VmemAltmap(alloc=holder.nr_vmemmap_pages)
                else:
                    altmap = m.core.VmemAltmap(alloc=nr_vmemmap_pages)
    m.firmware_map[:] = [e for e in m.firmware_map if (e[0], e[1]) != (start, start + size)]
    if per_block:
        remove_memory_blocks_and_altmaps(m, start, size)
    else:
        m.memory.remove_memory_block_devices(start, size)
        m.arch_ops.arch_remove_memory(m, start, size, altmap)
        if altmap is not None and pol.warn_altmap_not_freed and altmap.alloc:
            m.warn(f"Altmap not fully unmapped: {altmap.alloc} pages")
    if not m.resources.release_mem_region_adjustable(start, size):
        m.log(f"release_mem_region_adjustable: no resource holds [{start:#x}, {start + size:#x})")
    if nid is not None and nid >= 0:
        try_offline_node(m, nid)
    return 0


def try_offline_node(m, nid: int) -> None:
    """mm/memory_hotplug.c:try_offline_node (6.1): offline a node left without memory, memory
    blocks and CPUs."""
    pgdat = m.pgdats[nid]
    if pgdat.node_spanned_pages:
        return
    if any(b.nid == nid for b in m.memory.blocks.values()):
        return
    if m.cpu_nodes.get(nid):
        return
    pgdat.online = False
