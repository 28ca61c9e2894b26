"""Memory block devices (drivers/base/memory.c, Linux 6.1): /sys/devices/system/memory/memoryN.

A block covers ``sections_per_block`` sections; it is online or offline as a whole and remembers
its node, its zone while online and, for memmap_on_memory, how many of its first pages hold the
memmap (``nr_vmemmap_pages``). Also here: memory_dev_init (the boot blocks) and the memory
notifier chain (memory_notify).

Errors (hotmem/errors.py): the block functions return 0 or -errno and undo a failed step in one
place; the entry points -- the sysfs stores and device_online / device_offline, the driver
core's entry as userspace and the platform code reach it -- raise HotplugError.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass

from hotmem.errors import HotplugError, Unwind, check, error_from, fail
from hotmem.fault_inject import memory_notifier_error
from hotmem.mm import memory_hotplug as mh
from hotmem.mm.mmzone import ZONE_NAMES

MEM_ONLINE, MEM_GOING_OFFLINE, MEM_OFFLINE = 1, 2, 4
NUMA_NO_NODE = -1


@dataclass(eq=False)
class MemoryGroup:
    """struct memory_group (5.15+): a static group per ACPI memory device (``max_pages``,
    s.max_pages) or a dynamic one per virtio-mem device (``unit_pages``, d.unit_pages)."""
    nid: int
    max_pages: int = 0
    is_dynamic: bool = False
    present_kernel_pages: int = 0
    present_movable_pages: int = 0
    unit_pages: int = 0
    mgid: int = -1


def memory_group_register(m, group: MemoryGroup) -> int:
    """drivers/base/memory.c:memory_group_register (6.1): the new group's id (xa_alloc: the
    lowest free id from 0), or -EINVAL for a node that is not possible."""
    if group.nid not in m.pgdats:
        return fail(m, errno.EINVAL, f"memory group: node {group.nid} is not possible")
    groups = m.memory_groups
    mgid = next(i for i in range(len(groups) + 1) if i not in groups)
    group.mgid = mgid
    groups[mgid] = group
    return mgid


def memory_group_register_dynamic(m, nid: int, unit_pages: int) -> int:
    """drivers/base/memory.c:memory_group_register_dynamic (6.1): a dynamic group whose memory
    is added and removed in units of ``unit_pages`` (a power of two of at least one memory
    block); its id, or -EINVAL."""
    block_pages = m.memory_block_size_bytes >> m.arch.page_shift
    if not unit_pages or unit_pages & (unit_pages - 1) or unit_pages < block_pages:
        return fail(m, errno.EINVAL, f"memory group: unit_pages {unit_pages:#x} is not a power "
                    f"of two of at least {block_pages:#x} pages")
    return memory_group_register(m, MemoryGroup(nid=nid, is_dynamic=True,
                                                unit_pages=unit_pages))


def memory_group_unregister(m, mgid: int) -> int:
    """drivers/base/memory.c:memory_group_unregister (6.1): -EINVAL for an unknown id, -EBUSY
    while memory blocks belong to the group."""
    group = m.memory_groups.get(mgid)
    if group is None:
        return -errno.EINVAL
    if any(b.group is group for b in m.memory.blocks.values()):
        return -errno.EBUSY
    del m.memory_groups[mgid]
    return 0


@dataclass
class MemoryBlock:
    """struct memory_block (include/linux/memory.h, 6.1)."""
    block_id: int
    start_section_nr: int
    state: str = "offline"               # online / going-offline / offline
    online_type: int = 0                 # MMOP_OFFLINE (mm/memory_hotplug.py imports this module)
    nid: int = NUMA_NO_NODE
    zone: object = None
    nr_vmemmap_pages: int = 0
    #: 6.6+: the block's own copy of the hot-add altmap (its ``free`` is nr_vmemmap_pages)
    altmap: object = None
    group: MemoryGroup | None = None
    pages_per_block: int = 0
    pfn_section_shift: int = 15

    @property
    def start_pfn(self) -> int:
        return self.start_section_nr << self.pfn_section_shift

    @property
    def end_pfn(self) -> int:
        return self.start_pfn + self.pages_per_block

    @property
    def online(self) -> bool:
        """dev->offline inverted: what the device core's ``online`` attribute shows."""
        return self.state != "offline"


def _show(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:57]) + "..."


def mhp_online_type_from_str(text: str) -> int:
    """drivers/base/memory.c:mhp_online_type_from_str (6.1): the MMOP_* whose name
    (online_type_to_str: offline, online, online_kernel, online_movable) ``text`` matches by
    sysfs_streq, else -EINVAL."""
    from hotmem.sysfs import sysfs_streq
    for name, online_type in mh.ONLINE_TYPE_NAMES.items():
        if sysfs_streq(text, name):
            return online_type
    return -errno.EINVAL


def memory_notify(m, event: str, start_pfn: int, nr_pages: int, status_change_nid: int) -> int:
    """drivers/base/memory.c:memory_notify (6.1): the memory notifier chain, 0 or the first
    negative errno. The arch's notifier (registered at an initcall, so called first) may refuse
    before memory-notifier-error-inject is reached. For MEM_PREPARE_ONLINE and
    MEM_FINISH_OFFLINE (6.9+) ``m.memory_notify_altmap`` holds the altmap fields."""
    err = m.arch_ops.memory_notifier(m, event, start_pfn, nr_pages)
    if err:
        return err
    err = memory_notifier_error(m, event)
    if err:
        return err
    for notifier in m.memory_notifiers:     # register_memory_notifier: drivers (virtio-mem)
        err = notifier(m, event, start_pfn, nr_pages)
        if err:
            return err
    return 0


def _early_nids(m, start: int, end: int) -> list:
    """The nodes with boot RAM in pfns [start, end), in node order (at least one)."""
    nids = sorted({nid for s, e, nid in m.memblock.mem_pfn_ranges(m.arch.page_shift)
                   if s < end and e > start})
    return nids or [min(m.pgdats)]


def memory_dev_init(m) -> None:
    """drivers/base/memory.c:memory_dev_init (6.1): a device per block with a present section,
    online, its node and its zone if it lies in exactly one (else NULL: valid_zones "none")."""
    a = m.arch
    spb = m.memory.sections_per_block
    ids = sorted({nr // spb for nr in m.ms.present_sections()})
    for bid in ids:
        start = a.section_nr_to_pfn(bid * spb)
        end = start + (m.memory_block_size_bytes >> a.page_shift)
        # node_dev_init → register_mem_block_under_node_early → memory_block_add_nid
        # (MEMINIT_EARLY), node by node: the first node sets mem->zone from its zones
        # (early_node_zone_for_memory_block: its one populated zone intersecting the block,
        # else NULL), a second node sets it to NULL; mem->nid is the last node
        nids = _early_nids(m, start, end)
        zones = [z for z in m.pgdats[nids[0]].node_zones
                 if z.present_pages and z.zone_intersects(start, end - start)]
        zone = zones[0] if len(zones) == 1 and len(nids) == 1 else None
        m.memory.add_boot_block(bid, nids[-1], zone)


class MemorySubsys:
    """The memory subsystem: block devices keyed by block id, and their state machine."""

    def __init__(self, m):
        self.m = m
        self.blocks: dict[int, MemoryBlock] = {}

    @property
    def sections_per_block(self) -> int:
        return self.m.memory_block_size_bytes >> self.m.arch.section_size_bits

    def pfn_to_block_id(self, pfn: int) -> int:
        return self.m.arch.pfn_to_section_nr(pfn) // self.sections_per_block

    def _new_block(self, block_id: int, state: str, nr_vmemmap_pages: int, group) -> MemoryBlock:
        a = self.m.arch
        mem = MemoryBlock(block_id=block_id, start_section_nr=block_id * self.sections_per_block,
                          state=state,
                          nr_vmemmap_pages=nr_vmemmap_pages, group=group,
                          pages_per_block=self.m.memory_block_size_bytes >> a.page_shift,
                          pfn_section_shift=a.PFN_SECTION_SHIFT)
        return mem

    # -- creation and removal ------------------------------------------------------------------
    def add_boot_block(self, block_id: int, nid: int, zone) -> None:
        """memory_dev_init → add_memory_block for a boot block (online, nid/zone from early init)."""
        mem = self._new_block(block_id, "online", 0, None)
        mem.nid, mem.zone, mem.online_type = nid, zone, mh.MMOP_ONLINE
        self.blocks[block_id] = mem

    def create_memory_block_devices(self, start: int, size: int, altmap, group) -> int:
        """drivers/base/memory.c:create_memory_block_devices: 0, or -EEXIST if a block exists.

        What a block remembers of the altmap depends on the version: the pages it handed out
        (altmap->alloc, 5.13..6.5; the first block only in the v2 RFC) or the altmap itself
        (6.6+, whose ``free`` counts the vmemmap pages incl. force padding)."""
        pol = self.m.policy
        bs = self.m.memory_block_size_bytes
        ids = range(start // bs, (start + size) // bs)
        for i in ids:
            if i in self.blocks:
                return fail(self.m, errno.EEXIST, f"memory block {i} already exists")
        for n, i in enumerate(ids):
            if altmap is None:
                nr = 0
            elif pol.memory_block_keeps_altmap:
                nr = altmap.free
            elif pol.nr_vmemmap_pages_blocks == "first" and n:
                nr = 0
            else:
                nr = altmap.alloc
            mem = self._new_block(i, "offline", nr, group)
            if pol.memory_block_keeps_altmap:
                mem.altmap = altmap
            self.blocks[i] = mem
        return 0

    def remove_memory_block_devices(self, start: int, size: int) -> None:
        """drivers/base/memory.c:remove_memory_block_devices (6.1)."""
        bs = self.m.memory_block_size_bytes
        for i in range(start // bs, (start + size) // bs):
            self.blocks.pop(i, None)

    def register_memory_blocks_under_node(self, nid: int, start_pfn: int, end_pfn: int) -> None:
        """drivers/base/node.c:register_memory_blocks_under_node (MEMINIT_HOTPLUG): mem->nid."""
        for mem in self.blocks_in_pfn_range(start_pfn, end_pfn):
            mem.nid = nid

    def blocks_in_pfn_range(self, start_pfn: int, end_pfn: int):
        first, last = self.pfn_to_block_id(start_pfn), self.pfn_to_block_id(end_pfn - 1)
        return [self.blocks[i] for i in range(first, last + 1) if i in self.blocks]

    def blocks_in_range(self, start: int, size: int):
        s = start >> self.m.arch.page_shift
        return self.blocks_in_pfn_range(s, s + (size >> self.m.arch.page_shift))

    # -- online / offline ----------------------------------------------------------------------
    def memory_block_online(self, mem: MemoryBlock) -> int:
        """drivers/base/memory.c:memory_block_online (6.1.y; 6.9+ first sends MEM_PREPARE_ONLINE,
        whose refusal stops everything, and MEM_FINISH_OFFLINE when onlining then fails).
        0 or -errno."""
        m = self.m
        start_pfn, nr_pages = mem.start_pfn, mem.pages_per_block
        nr_vmemmap_pages = mem.nr_vmemmap_pages
        zone = mh.zone_for_pfn_range(m, mem.online_type, mem.nid, mem.group, start_pfn, nr_pages)
        if m.policy.vmemmap_in_online_pages:        # the v2 RFC: online_pages does it all
            rc = mh.online_pages(m, start_pfn, nr_pages, zone, mem.group, nr_vmemmap_pages)
            if rc:
                return rc
            mem.zone = zone
            return 0
        with Unwind() as undo:
            if m.policy.memory_notify_prepare_finish:
                err = self.memory_notify_altmap(mem, "MEM_PREPARE_ONLINE")
                if err:
                    return fail(m, -err, f"memory{mem.block_id}: MEM_PREPARE_ONLINE refused")
                undo.push(self.memory_notify_altmap, mem, "MEM_FINISH_OFFLINE")  # out_notifier
            if nr_vmemmap_pages:
                mh.mhp_init_memmap_on_memory(m, start_pfn, nr_vmemmap_pages, zone)
                undo.push(mh.mhp_deinit_memmap_on_memory, m, start_pfn, nr_vmemmap_pages)
            rc = mh.online_pages(m, start_pfn + nr_vmemmap_pages, nr_pages - nr_vmemmap_pages,
                                 zone, mem.group)
            if rc:
                return undo.unwind(rc)
        if nr_vmemmap_pages:
            mh.adjust_present_page_count(m, start_pfn, mem.group, nr_vmemmap_pages)
        mem.zone = zone
        return 0

    def memory_block_offline(self, mem: MemoryBlock) -> int:
        """drivers/base/memory.c:memory_block_offline (6.1.y; 6.9+ ends with MEM_FINISH_OFFLINE).
        0 or -errno."""
        m = self.m
        if mem.zone is None:
            return fail(m, errno.EINVAL, f"memory{mem.block_id}: block spans zones or was never "
                        "onlined (mem->zone is NULL)")
        start_pfn, nr_pages = mem.start_pfn, mem.pages_per_block
        v = mem.nr_vmemmap_pages
        if m.policy.vmemmap_in_online_pages:        # the v2 RFC: offline_pages does it all
            rc = mh.offline_pages(m, start_pfn, nr_pages, mem.zone, mem.group, v)
            if rc:
                return rc
            mem.zone = None
            return 0
        with Unwind() as undo:
            if v:
                mh.adjust_present_page_count(m, start_pfn, mem.group, -v)
                undo.push(mh.adjust_present_page_count, m, start_pfn, mem.group, v)
            rc = mh.offline_pages(m, start_pfn + v, nr_pages - v, mem.zone, mem.group)
            if rc:
                return undo.unwind(rc)
        if v:
            mh.mhp_deinit_memmap_on_memory(m, start_pfn, v)
        mem.zone = None
        if m.policy.memory_notify_prepare_finish:
            self.memory_notify_altmap(mem, "MEM_FINISH_OFFLINE")     # its result is ignored
        return 0

    def memory_notify_altmap(self, mem: MemoryBlock, event: str) -> int:
        """drivers/base/memory.c (6.9+): memory_notify(MEM_PREPARE_ONLINE / MEM_FINISH_OFFLINE)
        with arg.start_pfn/nr_pages the pages after the vmemmap and arg.altmap_start_pfn /
        altmap_nr_pages the vmemmap pages (the block's start). The model's notifier chain takes
        start and count only: the altmap part is in ``m.memory_notify_altmap`` during the call.
        0 or a negative errno (notifier_to_errno)."""
        m = self.m
        v = mem.nr_vmemmap_pages
        m.memory_notify_altmap = (mem.start_pfn, v)
        try:
            return memory_notify(m, event, mem.start_pfn + v, mem.pages_per_block - v, -1)
        finally:
            m.memory_notify_altmap = None

    def memory_block_change_state(self, mem: MemoryBlock, to_state: str, from_state: str) -> int:
        """drivers/base/memory.c:memory_block_change_state (6.1): 0 or -errno."""
        if mem.state != from_state:
            return fail(self.m, errno.EINVAL, f"memory{mem.block_id} is {mem.state}, not "
                        f"{from_state}")
        if to_state == "offline":
            mem.state = "going-offline"
        with Unwind() as undo:
            undo.push(setattr, mem, "state", from_state)
            if to_state == "online":
                rc = self.memory_block_online(mem)
            else:
                rc = self.memory_block_offline(mem)
            if rc:
                return undo.unwind(rc)
        mem.state = to_state
        return 0

    def memory_subsys_online(self, mem: MemoryBlock) -> int:
        """drivers/base/memory.c:memory_subsys_online (6.1), with device_online's test: 1 if
        already online, else 0 or -errno."""
        if mem.state == "online":
            return 1
        if mem.online_type == mh.MMOP_OFFLINE:
            mem.online_type = mh.MMOP_ONLINE
        try:
            return self.memory_block_change_state(mem, "online", "offline")
        finally:
            mem.online_type = mh.MMOP_OFFLINE

    def memory_subsys_offline(self, mem: MemoryBlock) -> int:
        """drivers/base/memory.c:memory_subsys_offline (6.1), with device_offline's test: 1 if
        already offline, else 0 or -errno."""
        if mem.state == "offline":
            return 1
        return self.memory_block_change_state(mem, "offline", "online")

    def device_online(self, mem: MemoryBlock) -> int:
        """drivers/base/core.c:device_online → memory_subsys_online (6.1): 1 if already online,
        0; HotplugError when refused (an entry point)."""
        return check(self.m, self.memory_subsys_online(mem))

    def device_offline(self, mem: MemoryBlock) -> int:
        """drivers/base/core.c:device_offline → memory_subsys_offline (6.1): 1 if already
        offline, 0; HotplugError when refused (an entry point)."""
        return check(self.m, self.memory_subsys_offline(mem))

    def online_range(self, start: int, size: int, online_type: int) -> None:
        """add_memory_resource's auto-online: online_memory_block for every block, errors ignored."""
        for mem in self.blocks_in_range(start, size):
            mem.online_type = online_type
            rc = self.memory_subsys_online(mem)
            if rc < 0:
                self.m.log(f"auto-online of memory{mem.block_id} failed: {error_from(self.m, rc)}")

    # -- sysfs ---------------------------------------------------------------------------------
    def state_store(self, mem: MemoryBlock, text: str) -> None:
        """drivers/base/memory.c:state_store (6.1): mhp_online_type_from_str, then
        device_online / device_offline; already there is EINVAL."""
        online_type = mhp_online_type_from_str(text)
        if online_type < 0:
            raise HotplugError(errno.EINVAL, f"memory{mem.block_id}/state: invalid value "
                               f"{_show(text)}")
        if online_type == mh.MMOP_OFFLINE:
            ret = self.device_offline(mem)
        else:
            mem.online_type = online_type
            ret = self.device_online(mem)
        if ret > 0:
            raise HotplugError(errno.EINVAL, f"memory{mem.block_id} is already {mem.state}")

    def online_store(self, mem: MemoryBlock, text: str) -> None:
        """drivers/base/core.c:online_store (6.1): strtobool (kstrtobool: only the first one or
        two characters count); already there is success."""
        from hotmem.sysfs import kstrtobool
        val = kstrtobool(text)
        if val is None:
            raise HotplugError(errno.EINVAL, f"memory{mem.block_id}/online: invalid value "
                               f"{_show(text)}")
        if val:
            self.device_online(mem)
        else:
            self.device_offline(mem)

    def auto_online_blocks_store(self, text: str) -> None:
        """drivers/base/memory.c:auto_online_blocks_store (6.1)."""
        online_type = mhp_online_type_from_str(text)
        if online_type < 0:
            raise HotplugError(errno.EINVAL, f"auto_online_blocks: invalid value {_show(text)}")
        self.m.mhp_default_online_type = online_type

    def valid_zones(self, mem: MemoryBlock) -> str:
        """drivers/base/memory.c:valid_zones_show (6.1)."""
        m = self.m
        start_pfn, nr_pages = mem.start_pfn, mem.pages_per_block
        if mem.state == "online":
            return ZONE_NAMES[mem.zone.idx] if mem.zone is not None else "none"
        nid = mem.nid
        default_zone = mh.zone_for_pfn_range(m, mh.MMOP_ONLINE, nid, mem.group, start_pfn, nr_pages)
        names = [default_zone.name]
        for ot in (mh.MMOP_ONLINE_KERNEL, mh.MMOP_ONLINE_MOVABLE):
            z = mh.zone_for_pfn_range(m, ot, nid, mem.group, start_pfn, nr_pages)
            if z is not default_zone:
                names.append(z.name)
        return " ".join(names)
