"""Memory hot-add, onlining, offlining and hot-remove (mm/memory_hotplug.c, Linux 6.1).

Each function follows the kernel function of the same name step by step; version differences are
read from ``m.policy`` (hotmem/kernel.py). ``m`` is the Machine: it owns the core state (struct
pages, page allocator, page tables) and the Python-side bookkeeping (nodes, zones, resources,
memory block devices).
"""
from __future__ import annotations

import errno

from hotmem.errors import HotplugError
from hotmem.mm import page_alloc, sparse, watermark
from hotmem.mm.mmzone import (MAX_NR_ZONES, ZONE_DEVICE, ZONE_MOVABLE, ZONE_NORMAL, ZONE_NAMES)

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

MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_ISOLATE = 0, 1, 4
MEMORY_OFFLINE, REPORT_FAILURE = 0x1, 0x2


def _einval(msg):
    return HotplugError(errno.EINVAL, msg)


# -- eligibility ---------------------------------------------------------------------------------

def memory_block_memmap_size(m) -> int:
    """mm/memory_hotplug.c:memory_block_memmap_size (6.6): bytes of struct pages of one block."""
    return (m.memory_block_size_bytes >> m.arch.page_shift) * m.arch.struct_page_size


def memory_block_memmap_on_memory_pages(m) -> int:
    """mm/memory_hotplug.c:memory_block_memmap_on_memory_pages (6.6): PFN_UP of the block's
    memmap, rounded up to a pageblock in force mode (the rest is wasted)."""
    a = m.arch
    nr_pages = -(-memory_block_memmap_size(m) // a.PAGE_SIZE)
    if m.memmap_on_memory_force:
        nr_pages = -(-nr_pages // a.pageblock_nr_pages) * a.pageblock_nr_pages
    return nr_pages


def mhp_supports_memmap_on_memory(m, size: int) -> bool:
    """mm/memory_hotplug.c:mhp_supports_memmap_on_memory, as the machine's kernel has it.

    v2: arch_support_memmap_on_memory() and at most one block (no switch, no alignment test);
    5.13..6.5: parameter on, exactly one block, a PMD-aligned memmap and a pageblock-aligned
    remainder; 6.6+: parameter on (Y or force), exactly one block, a page-multiple memmap whose
    page count (force-padded) is pageblock-aligned and not the whole block, and the arch's
    arch_supports_memmap_on_memory()."""
    from hotmem.arch import arch_supports_memmap_on_memory, kconfig_mhp_memmap_on_memory
    a, pol = m.arch, m.policy
    if not kconfig_mhp_memmap_on_memory(a, pol.name):
        return False
    if pol.mhp_supports_rule == "v2":
        # the RFC's weak arch_support_memmap_on_memory(): true on arm64, powerpc and x86_64
        return (arch_supports_memmap_on_memory(a, memory_block_memmap_size(m), pol.name)
                and 0 < size <= m.memory_block_size_bytes)
    if not m.memmap_on_memory:
        return False
    if pol.mhp_supports_rule == "5.13":
        vmemmap_size = (size >> a.page_shift) * a.struct_page_size
        remaining_size = size - vmemmap_size
        return (size == m.memory_block_size_bytes
                and vmemmap_size % (1 << a.pmd_shift) == 0
                and remaining_size % (a.pageblock_nr_pages << a.page_shift) == 0)
    vmemmap_size = memory_block_memmap_size(m)
    memmap_pages = memory_block_memmap_on_memory_pages(m)
    if size != m.memory_block_size_bytes:
        return False
    if vmemmap_size % a.PAGE_SIZE:
        return False
    if memmap_pages % a.pageblock_nr_pages:
        return False
    if memmap_pages == m.memory_block_size_bytes >> a.page_shift:
        return False
    return arch_supports_memmap_on_memory(a, vmemmap_size, pol.name)


def check_hotplug_memory_range(m, start: int, size: int) -> None:
    """mm/memory_hotplug.c:check_hotplug_memory_range (6.1)."""
    bs = m.memory_block_size_bytes
    if not size or start % bs or size % bs:
        raise _einval(f"Block size [{bs:#x}] unaligned hotplug range: start {start:#x}, "
                      f"size {size:#x}")


def mhp_range_allowed(m, start: int, size: int) -> bool:
    """mm/memory_hotplug.c:mhp_range_allowed (6.1): within [0, PHYSMEM_END] (x86 has no
    arch_get_mappable_range)."""
    if hasattr(m.arch_ops, "mhp_range_allowed"):
        return size > 0 and m.arch_ops.mhp_range_allowed(m, start, size)
    return 0 <= start and start + size - 1 <= m.arch.physmem_end and size > 0


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
    zone = m.page_zone(pfn)
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


def zone_for_pfn_range(m, online_type: int, nid: int, group, start_pfn: int, nr_pages: int):
    """mm/memory_hotplug.c:zone_for_pfn_range (6.1). The auto-movable policy is not modelled:
    it raises EINVAL at boot-option parse time instead."""
    if online_type == MMOP_ONLINE_KERNEL:
        return default_kernel_zone_for_pfn(m, nid, start_pfn, nr_pages)
    if online_type == MMOP_ONLINE_MOVABLE:
        return m.pgdats[nid].node_zones[ZONE_MOVABLE]
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


def __try_online_node(m, nid: int) -> bool:
    """mm/memory_hotplug.c:__try_online_node (6.1): True when the node was brought online."""
    pgdat = m.pgdats[nid]
    if pgdat.online:
        return False
    m.hotadd_init_pgdat(nid)
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
        m.memory.create_memory_block_devices(cur, bs, altmap, group)
        cur += bs
    if rc and cur != start:
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
    """mm/memory_hotplug.c:add_memory_resource (6.1). Returns 0; raises HotplugError on refusal.

    Steps that fail after arch_add_memory started leave what the kernel's error path leaves."""
    start, size = res.start, res.end - res.start + 1
    check_hotplug_memory_range(m, start, size)
    if mhp_flags & MHP_NID_IS_MGID:
        if group is None:
            raise _einval(f"memory group {nid} does not exist")
        nid = group.nid
    if nid not in m.pgdats:
        raise _einval(f"node {nid} is not possible")
    altmap = None
    per_block = False
    if mhp_flags & MHP_MEMMAP_ON_MEMORY:
        if m.policy.altmap_per_memory_block:
            per_block = mhp_supports_memmap_on_memory(m, m.memory_block_size_bytes)
        elif mhp_supports_memmap_on_memory(m, size):
            altmap = new_hotadd_altmap(m, start, size)
        elif not m.policy.mhp_memmap_on_memory_fallback:
            raise _einval(f"MHP_MEMMAP_ON_MEMORY not supported for {size:#x} bytes at "
                          f"{start:#x} (block size {m.memory_block_size_bytes:#x})")
    new_node = __try_online_node(m, nid)
    if per_block:
        rc = create_altmaps_and_memory_blocks(m, nid, group, start, size)
    else:
        rc = m.arch_ops.arch_add_memory(m, nid, start, size, altmap)
    if rc:
        if new_node:
            m.pgdats[nid].online = False
        raise HotplugError(-rc, f"arch_add_memory({start:#x}, {size:#x}) failed")
    if not per_block:
        try:
            m.memory.create_memory_block_devices(start, size, altmap, group)
        except HotplugError:
            # 6.1.y rolls back with the altmap; v2, 5.13 and 6.1.0 pass NULL, so the x86
            # teardown would hand the altmap's pages (part of the range) to free_pagetable
            m.arch_ops.arch_remove_memory(m, start, size,
                                          altmap if m.policy.add_rollback_passes_altmap else None)
            if new_node:
                m.pgdats[nid].online = False
            raise
    if new_node:
        m.register_one_node(nid)
    m.memory.register_memory_blocks_under_node(nid, start >> m.arch.page_shift,
                                               (start + size) >> m.arch.page_shift)
    if res.name == "System RAM":
        m.firmware_map.append((start, start + size, "System RAM"))
    if mhp_flags & MHP_MERGE_RESOURCE:
        m.resources.merge_system_ram_resource(res)
    if m.mhp_default_online_type != MMOP_OFFLINE:
        m.memory.online_range(start, size, m.mhp_default_online_type)
    return 0


# -- onlining ------------------------------------------------------------------------------------

def online_pages_range(m, start_pfn: int, nr_pages: int) -> None:
    """mm/memory_hotplug.c:online_pages_range (6.1): the range in MAX_ORDER−1-capped, naturally
    aligned chunks to generic_online_page; then the touched sections online."""
    end_pfn = start_pfn + nr_pages
    max_chunk = m.max_order - 1
    pfn = start_pfn
    while pfn < end_pfn:
        order = min(max_chunk, (pfn & -pfn).bit_length() - 1 if pfn else max_chunk)
        m.generic_online_page(pfn, order)
        pfn += 1 << order
    sparse.online_mem_sections(m, start_pfn, end_pfn)


def online_pages(m, pfn: int, nr_pages: int, zone, group, nr_vmemmap_pages: int = 0) -> int:
    """mm/memory_hotplug.c:online_pages (6.1). Returns 0 or raises HotplugError.

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
        raise _einval(f"online_pages: range {pfn:#x}+{nr_pages:#x} not pageblock/section aligned")
    nid = zone.node
    pgdat = m.pgdats[nid]
    buddy_start, buddy_pages = pfn + v, nr_pages - v
    if v:
        move_pfn_range_to_zone(m, zone, pfn, v, MIGRATE_UNMOVABLE)
    move_pfn_range_to_zone(m, zone, buddy_start, buddy_pages, MIGRATE_ISOLATE)
    status_change_nid = nid if not pgdat.has_memory else -1
    status_change_nid_normal = nid if (zone.idx <= ZONE_NORMAL and not pgdat.has_normal_memory) \
        else -1
    err = m.notify("MEM_GOING_ONLINE", pfn, nr_pages, status_change_nid)
    if err:
        m.notify("MEM_CANCEL_ONLINE", pfn, nr_pages, status_change_nid)
        remove_pfn_range_from_zone(m, zone, pfn, nr_pages)
        raise HotplugError(-err, f"online_pages [mem {pfn << a.page_shift:#018x}-"
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
    # undo_isolate_page_range(buddy range, MIGRATE_MOVABLE)
    for p in range(buddy_start, pfn + nr_pages, a.pageblock_nr_pages):
        m.allocator.unset_migratetype_isolate(p, MIGRATE_MOVABLE)
    page_alloc.init_per_zone_wmark_min(m)
    pgdat.kswapd = pgdat.kcompactd = True
    m.notify("MEM_ONLINE", pfn, nr_pages, status_change_nid)
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
    remove_pfn_range_from_zone(m, m.page_zone(pfn), pfn, nr_pages)


# -- offlining -----------------------------------------------------------------------------------

def offline_pages(m, start_pfn: int, nr_pages: int, zone, group, nr_vmemmap_pages: int = 0) -> int:
    """mm/memory_hotplug.c:offline_pages (6.1). Returns 0 or raises HotplugError (the kernel's
    error path undone first).

    ``nr_vmemmap_pages`` > 0 is the RFC v2 form: the range is the whole block; isolation and
    freeing work on what follows the memmap, present shrinks by the whole block."""
    a = m.arch
    core, alloc = m.core, m.allocator
    block_start, block_pages = start_pfn, nr_pages
    if nr_vmemmap_pages:
        start_pfn, nr_pages = start_pfn + nr_vmemmap_pages, nr_pages - nr_vmemmap_pages
    end_pfn = start_pfn + nr_pages
    rng = f"[mem {start_pfn << a.page_shift:#018x}-{(end_pfn << a.page_shift) - 1:#018x}]"
    if (not nr_pages or start_pfn % a.pageblock_nr_pages or end_pfn % a.PAGES_PER_SECTION):
        m.warn(f"offline_pages: misaligned range {start_pfn:#x}+{nr_pages:#x}")
        raise _einval(f"offline_pages: range {start_pfn:#x}+{nr_pages:#x} misaligned")
    if not m.resources.range_is_system_ram(start_pfn << a.page_shift, end_pfn << a.page_shift):
        raise _einval(f"memory offlining {rng} failed due to memory holes")
    if (m.page_zone(start_pfn) is not zone or m.page_zone(end_pfn - 1) is not zone):
        raise _einval(f"memory offlining {rng} failed due to multizone range")
    alloc.zone_pcp_disable(zone.zoneid)
    # start_isolate_page_range(MIGRATE_MOVABLE, MEMORY_OFFLINE | REPORT_FAILURE)
    isolated = []
    for p in range(start_pfn, end_pfn, a.pageblock_nr_pages):
        bad = -1
        if m.ms.get_pageblock_migratetype(p) == MIGRATE_ISOLATE:
            bad = p      # set_migratetype_isolate: -EBUSY on an already isolated pageblock
        else:
            bad = core.has_unmovable_pages(m.ms, p, p + a.pageblock_nr_pages, MIGRATE_MOVABLE,
                                           MEMORY_OFFLINE | REPORT_FAILURE, ZONE_MOVABLE)
        if bad >= 0:
            for q in reversed(isolated):
                alloc.unset_migratetype_isolate(q, MIGRATE_MOVABLE)
            alloc.zone_pcp_enable(zone.zoneid)
            m.log(f"page:{bad:#x} has unmovable pages")
            m.log(f"memory offlining {rng} failed due to failure to isolate range")
            raise HotplugError(errno.EBUSY, f"memory offlining {rng} failed due to failure "
                               f"to isolate range (unmovable page at pfn {bad:#x})")
        alloc.set_migratetype_isolate(p)
        isolated.append(p)
    pgdat = m.pgdats[zone.node]
    err = m.notify("MEM_GOING_OFFLINE", start_pfn, nr_pages, -1)
    if not err and not alloc.test_pages_isolated(start_pfn, end_pfn):
        err = -errno.EBUSY  # nothing the model can migrate: the kernel would loop until a signal
    if err:
        m.notify("MEM_CANCEL_OFFLINE", start_pfn, nr_pages, -1)
        for q in reversed(isolated):
            alloc.unset_migratetype_isolate(q, MIGRATE_MOVABLE)
        alloc.zone_pcp_enable(zone.zoneid)
        reason = "notifier failure" if err != -errno.EBUSY else "unmovable page"
        m.log(f"memory offlining {rng} failed due to {reason}")
        raise HotplugError(-err, f"memory offlining {rng} failed due to {reason}")
    alloc.offline_isolated_pages(start_pfn, end_pfn)
    sparse.offline_mem_sections(m, block_start if nr_vmemmap_pages else start_pfn, end_pfn)
    alloc.adjust_nr_isolate_pageblock(zone.zoneid, -(nr_pages // a.pageblock_nr_pages))
    alloc.zone_pcp_enable(zone.zoneid)
    m.adjust_managed_page_count(zone, -nr_pages)
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
    m.notify("MEM_OFFLINE", start_pfn, nr_pages, -1)
    remove_pfn_range_from_zone(m, zone, block_start, block_pages)
    return 0


# -- hot-remove ----------------------------------------------------------------------------------

def try_remove_memory(m, start: int, size: int) -> int:
    """mm/memory_hotplug.c:try_remove_memory (6.1). 0, or raises HotplugError with nothing
    changed."""
    check_hotplug_memory_range(m, start, size)
    blocks = m.memory.blocks_in_range(start, size)
    nid = None
    for mem in blocks:
        if mem.state != "offline":
            raise HotplugError(errno.EBUSY, f"removing memory fails, because memory "
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
                raise _einval(f"range [{start:#x}, {start + size:#x}) mixes blocks with and "
                              "without memmap on memory")
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
                    raise _einval(f"memory with memmap_on_memory must be removed one block "
                                  f"({m.memory_block_size_bytes:#x} bytes) at a time, not "
                                  f"{size:#x}")
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
        m.try_offline_node(nid)
    return 0
