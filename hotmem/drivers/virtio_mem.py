"""virtio-mem (drivers/virtio/virtio_mem.c, read in Debian's linux-source-6.1 6.1.176) and the
device side of QEMU's virtio-mem-pci that it talks to.

A virtio-mem device owns a region of guest-physical memory [addr, addr + region_size) and plugs
or unplugs it in device blocks (``block_size``) as the host asks through ``requested_size``
(QEMU's ``qom-set <dev> requested-size``). The guest driver adds memory to Linux with
``add_memory_driver_managed`` under a "System RAM (virtio_mem)" resource nested in the device's
own non-busy "virtioN" region, in one of two modes chosen at probe (virtio_mem_init_hotplug):

- Sub Block Mode (SBM) when the sub-block size -- max(device block, one pageblock) in 5.19+,
  max(device block, MAX_ORDER_NR_PAGES, one pageblock) before -- is smaller than a memory block:
  memory is added one memory block at a time, partly plugged; the driver's online_page callback
  (virtio_mem_online_page_cb) hands only plugged sub blocks to the buddy and marks the others
  PageOffline ("fake offline", PageDirty, never in the buddy, not in managed/MemTotal; present
  counts the whole block); unplugging a sub block of an online block first allocates it with
  alloc_contig_range (refused, -EBUSY, when a page cannot be moved) and fakes it offline; a
  memory block with nothing plugged left is offlined and removed (offline_and_remove_memory).
- Big Block Mode (BBM) otherwise: big blocks of max(device block, memory block) are plugged and
  added whole, and unplugged whole (bbm_safe_unplug: faked offline section by section first, then
  offline_and_remove_memory).

MHP flags: MHP_MERGE_RESOURCE, with MHP_NID_IS_MGID and a dynamic memory group (unit: one memory
block in SBM, one big block in BBM) from 5.15; never MHP_MEMMAP_ON_MEMORY, in any version
(VIRTIO_MEM_POLICIES), so memory_hotplug.memmap_on_memory has no effect on virtio-mem memory.

The work the kernel runs on its workqueue (virtio_mem_run_wq) runs here synchronously when the
host changes the requested size, and again (``VirtioMemDevice.retry``) where the kernel's retry
timer or a MEM_ONLINE would requeue it; memory blocks onlined through sysfs requeue it
(``run_deferred_work``). QEMU's usable region is taken as the whole region.

Functions return 0 or -errno as the kernel's do; VirtioMemDevice's methods (the API) raise
HotplugError for bad input and leave the Machine unchanged.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass

from hotmem.defs import PAGE_MAPCOUNT_RESET, PG_dirty, PG_offline, PG_reserved
from hotmem.drivers.base.memory import (memory_group_register_dynamic, memory_group_unregister)
from hotmem.errors import HotplugError, error_from, fail
from hotmem.mm import memory_hotplug as mh
from hotmem.mm.mmzone import ZONE_MOVABLE
from hotmem.mm.page_alloc import (adjust_managed_page_count, alloc_contig_range,
                                  free_contig_range, generic_online_page, page_zone)
from hotmem.resource import IORESOURCE_BUSY, IORESOURCE_SYSTEM_RAM

#: include/linux/ioport.h
IORESOURCE_EXCLUSIVE = 0x08000000
#: the resource name virtio_mem_add_memory passes
VIRTIO_MEM_RESOURCE_NAME = "System RAM (virtio_mem)"
#: drivers/virtio/virtio_mem.c: VIRTIO_MEM_DEFAULT_OFFLINE_THRESHOLD
VIRTIO_MEM_DEFAULT_OFFLINE_THRESHOLD = 1 << 30
#: QEMU hw/virtio/virtio-mem.c: VIRTIO_MEM_MIN_BLOCK_SIZE (1 MiB) and the default block size
#: on x86_64 and arm64 with 4K pages (the THP size, 2 MiB)
QEMU_VIRTIO_MEM_MIN_BLOCK_SIZE = 1 << 20
QEMU_VIRTIO_MEM_DEFAULT_BLOCK_SIZE = 2 << 20

# enum virtio_mem_sbm_mb_state (6.1)
(SBM_UNUSED, SBM_PLUGGED, SBM_OFFLINE, SBM_OFFLINE_PARTIAL, SBM_KERNEL, SBM_KERNEL_PARTIAL,
 SBM_MOVABLE, SBM_MOVABLE_PARTIAL) = range(8)
SBM_STATE_NAMES = ("unused", "plugged", "offline", "offline_partial", "kernel", "kernel_partial",
                   "movable", "movable_partial")
# enum virtio_mem_bbm_bb_state (6.1)
BBM_UNUSED, BBM_PLUGGED, BBM_ADDED, BBM_FAKE_OFFLINE = range(4)
BBM_STATE_NAMES = ("unused", "plugged", "added", "fake_offline")

# include/uapi/linux/virtio_mem.h: responses
VIRTIO_MEM_RESP_ACK, VIRTIO_MEM_RESP_NACK, VIRTIO_MEM_RESP_BUSY, VIRTIO_MEM_RESP_ERROR = range(4)

NUMA_NO_NODE = -1


@dataclass(frozen=True)
class VirtioMemPolicy:
    """What the virtio-mem driver of one kernel version does (the sources each field was read in
    are named; VIRTIO_MEM_POLICIES maps the modelled kernel versions)."""

    #: where it was read
    source: str
    #: the mhp_flags of virtio_mem_add_memory's add_memory_driver_managed call
    mhp_flags: int
    #: a dynamic memory group per device, its id passed as the nid (MHP_NID_IS_MGID), 5.15+
    memory_group: bool
    #: smallest sub block: "pageblock" (5.19+: Zi Yan's "virtio-mem: use pageblock size as the
    #: minimum virtio_mem size") or "max_order" (max(MAX_ORDER_NR_PAGES, pageblock_nr_pages))
    sb_min: str
    #: online SBM blocks are kept apart by zone (KERNEL / MOVABLE states, unplug tries movable
    #: ones first: "virtio-mem: prioritize unplug from ZONE_MOVABLE in Sub Block Mode"), else
    #: ONLINE / ONLINE_PARTIAL
    sbm_zone_states: bool
    #: Big Block Mode exists (5.12+); without it a device block of a memory block or more is
    #: refused at probe ("The block size is not supported (too big)")
    bbm: bool


#: The driver as read: 6.1.176 from Debian's linux-source-6.1 (the whole driver); the MHP flag
#: history from the patches that changed it (MEMHP_MERGE_RESOURCE in 5.10, the memory-group
#: series' MHP_MERGE_RESOURCE | MHP_NID_IS_MGID in 5.15, unchanged up to the online_type
#: argument added after 6.11); "v2" stands for the driver of the 5.10 tree the RFC applies to.
VIRTIO_MEM_POLICIES = {
    "v2": VirtioMemPolicy("torvalds/linux virtio_mem.c of the 5.10 era (MEMHP_MERGE_RESOURCE, "
                          "SBM only)", mh.MHP_MERGE_RESOURCE, False, "max_order", False, False),
    "5.13": VirtioMemPolicy("5.13: 6.1's driver less the 5.15 memory groups, the 5.16 zone "
                            "states and 5.19's pageblock sub blocks",
                            mh.MHP_MERGE_RESOURCE, False, "max_order", False, True),
    "6.1": VirtioMemPolicy("Debian linux-source-6.1 6.1.176",
                           mh.MHP_MERGE_RESOURCE | mh.MHP_NID_IS_MGID, True, "pageblock", True,
                           True),
}
#: 6.6, 6.8 and 6.11 take 6.1's driver: their add call is the same (the patch adding the online
#: type argument after 6.11 shows MHP_MERGE_RESOURCE | MHP_NID_IS_MGID as its context), and the
#: 6.11 patch that initialises hot-plugged memmaps PageOffline ("mm/memory_hotplug: initialize
#: memmap of !ZONE_DEVICE with PageOffline() instead of PageReserved()") changes how
#: virtio_mem_set_fake_offline / _clear_fake_offline get there (only PageDirty for pages never
#: onlined, as they already are PageOffline), not the states they leave: PageOffline and
#: PageDirty without PG_reserved, as in 6.1. Not read whole at those versions (6.12 neither).
for _v in ("6.6", "6.8", "6.11", "6.12"):
    VIRTIO_MEM_POLICIES[_v] = VIRTIO_MEM_POLICIES["6.1"]


def virtio_mem_policy(kernel_policy) -> VirtioMemPolicy:
    """The virtio-mem driver of ``kernel_policy``'s version (its name), or EOPNOTSUPP."""
    try:
        return VIRTIO_MEM_POLICIES[kernel_policy.name]
    except KeyError:
        raise HotplugError(errno.EOPNOTSUPP, f"virtio-mem of Linux {kernel_policy.name} is not "
                           f"modelled (known: {', '.join(VIRTIO_MEM_POLICIES)})") from None


class VirtioMemDevice:
    """A virtio-mem-pci device (QEMU) bound to the guest's driver (struct virtio_mem).

    Device side: ``addr``, ``region_size``, ``block_size``, ``node``, ``requested_size``, the
    plugged device blocks. Driver side: the mode (``in_sbm``), sub-block / big-block geometry,
    the per-memory-block (SBM) or per-big-block (BBM) states, the plugged bitmap, the memory
    group, ``plugged_size`` as the driver counts it and ``last_rc`` (the last workqueue run's
    result: 0, -ENOSPC, -EBUSY ...)."""

    def __init__(self, m, name: str, addr: int, region_size: int, block_size: int, node: int,
                 requested_size: int):
        self.m = m
        self.name = name
        self.addr, self.region_size, self.block_size = addr, region_size, block_size
        self.node = node
        self.requested_size = requested_size          # the device's config field
        self.host_plugged: set[int] = set()           # QEMU's bitmap: plugged device blocks
        self.policy = virtio_mem_policy(m.policy)
        # the driver's struct virtio_mem
        self.plugged_size = 0
        self.drv_requested_size = 0
        self.nid = node
        self.in_sbm = False
        self.sb_size = self.sbs_per_mb = 0
        self.first_id = self.next_id = self.last_usable_id = 0   # mb ids (SBM) or bb ids (BBM)
        self.bb_size = 0
        self.states: dict[int, int] = {}              # mb_states / bb_states
        self.sb_states: dict[int, int] = {}           # SBM: plugged sub blocks, a mask per mb
        self.mgid = -1
        self.group = None
        self.parent_resource = None
        self.offline_size = 0
        self.offline_threshold = 0
        self.config_changed = False
        self.work_pending = False
        self.wq_active = False
        self.hotplug_active = False
        self.broken = False
        self.last_rc = 0
        self.notifier = None

    # -- the API -------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """QEMU's read-only ``size`` property: the plugged size as the device counts it."""
        return len(self.host_plugged) * self.block_size

    def set_requested_size(self, size) -> None:
        """QEMU's ``qom-set <dev> requested-size <size>`` (hw/virtio/virtio-mem.c:
        virtio_mem_set_requested_size): refused (EINVAL, nothing changed) unless a multiple of
        the block size within the region; else the config-change interrupt, which runs the
        driver's workqueue (virtio_mem_config_changed → virtio_mem_run_wq)."""
        from hotmem.cmdline import parse_size
        size = parse_size(size)
        if size % self.block_size:
            raise HotplugError(errno.EINVAL, f"{self.name}: 'requested-size' {size:#x} has to "
                               f"be a multiple of 'block-size' ({self.block_size:#x})")
        if size > self.region_size or size < 0:
            raise HotplugError(errno.EINVAL, f"{self.name}: 'requested-size' {size:#x} exceeds "
                               f"the size of the memdev ({self.region_size:#x})")
        self.requested_size = size
        self.config_changed = True
        virtio_mem_run_wq(self.m, self)

    def retry(self) -> int:
        """The retry timer firing (virtio_mem_timer_expired → virtio_mem_retry): run the
        workqueue again; its result (last_rc)."""
        virtio_mem_run_wq(self.m, self)
        return self.last_rc

    # -- views ---------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return "SBM" if self.in_sbm else "BBM"

    def block_states(self) -> dict[int, str]:
        """Memory block id (SBM) or big block id (BBM) → the driver's state name."""
        names = SBM_STATE_NAMES if self.in_sbm else BBM_STATE_NAMES
        if self.in_sbm and not self.policy.sbm_zone_states:     # before 5.16: ONLINE(_PARTIAL)
            names = names[:4] + ("online", "online_partial") + names[6:]
        return {i: names[s] for i, s in sorted(self.states.items()) if s}

    def plugged_sub_blocks(self, mb_id: int) -> list[int]:
        """SBM: the plugged sub blocks of memory block ``mb_id``."""
        mask = self.sb_states.get(mb_id, 0)
        return [i for i in range(self.sbs_per_mb) if mask >> i & 1]

    def state(self) -> tuple:
        """Everything the device and the driver keep (for Machine.snapshot)."""
        return (self.name, self.addr, self.region_size, self.block_size, self.node,
                self.requested_size, tuple(sorted(self.host_plugged)), self.plugged_size,
                tuple(sorted(self.states.items())), tuple(sorted(self.sb_states.items())),
                self.next_id, self.mgid, self.offline_size, self.last_rc, self.broken)


# -- QEMU's device side ----------------------------------------------------------------------------

def qemu_state_change_request(vm: VirtioMemDevice, addr: int, size: int, plug: bool) -> int:
    """hw/virtio/virtio-mem.c:virtio_mem_state_change_request (QEMU 7.2): NACK a plug beyond
    the requested size; ERROR for a range that is not block-aligned inside the region or not
    wholly in the opposite state; else flip the blocks and ACK."""
    bs = vm.block_size
    if plug and vm.size + size > vm.requested_size:
        return VIRTIO_MEM_RESP_NACK
    if (addr % bs or size % bs or not size or addr < vm.addr
            or addr + size > vm.addr + vm.region_size):
        return VIRTIO_MEM_RESP_ERROR
    ids = range((addr - vm.addr) // bs, (addr + size - vm.addr) // bs)
    if any((i in vm.host_plugged) == plug for i in ids):
        return VIRTIO_MEM_RESP_ERROR
    if plug:
        vm.host_plugged.update(ids)
    else:
        vm.host_plugged.difference_update(ids)
    return VIRTIO_MEM_RESP_ACK


def virtio_mem_send_plug_request(m, vm, addr: int, size: int) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_send_plug_request (6.1): 0 (plugged_size grows),
    -EAGAIN (NACK), -ETXTBSY (BUSY) or -EINVAL (ERROR)."""
    if vm.config_changed:
        return -errno.EAGAIN
    resp = qemu_state_change_request(vm, addr, size, True)
    if resp == VIRTIO_MEM_RESP_ACK:
        vm.plugged_size += size
        return 0
    return {VIRTIO_MEM_RESP_NACK: -errno.EAGAIN, VIRTIO_MEM_RESP_BUSY: -errno.ETXTBSY,
            VIRTIO_MEM_RESP_ERROR: -errno.EINVAL}[resp]


def virtio_mem_send_unplug_request(m, vm, addr: int, size: int) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_send_unplug_request (6.1): 0 (plugged_size
    shrinks), -ETXTBSY (BUSY) or -EINVAL (ERROR)."""
    if vm.config_changed:
        return -errno.EAGAIN
    resp = qemu_state_change_request(vm, addr, size, False)
    if resp == VIRTIO_MEM_RESP_ACK:
        vm.plugged_size -= size
        return 0
    return -errno.ETXTBSY if resp == VIRTIO_MEM_RESP_BUSY else -errno.EINVAL


# -- ids and states ------------------------------------------------------------------------------

def _bs(m) -> int:
    return m.memory_block_size_bytes


def virtio_mem_mb_id_to_phys(m, mb_id: int) -> int:
    return mb_id * _bs(m)


def virtio_mem_phys_to_mb_id(m, addr: int) -> int:
    return addr // _bs(m)


def virtio_mem_phys_to_sb_id(m, vm, addr: int) -> int:
    return (addr - virtio_mem_mb_id_to_phys(m, virtio_mem_phys_to_mb_id(m, addr))) // vm.sb_size


def virtio_mem_bb_id_to_phys(vm, bb_id: int) -> int:
    return bb_id * vm.bb_size


def virtio_mem_phys_to_bb_id(vm, addr: int) -> int:
    return addr // vm.bb_size


def _get_state(vm, i: int) -> int:
    return vm.states.get(i, 0)


def _set_state(vm, i: int, state: int) -> None:
    """virtio_mem_sbm_set_mb_state / virtio_mem_bbm_set_bb_state."""
    vm.states[i] = state


def _count(vm, state: int) -> int:
    return sum(1 for i in range(vm.first_id, vm.next_id) if _get_state(vm, i) == state)


def _for_each(vm, state: int, rev: bool = False):
    """virtio_mem_sbm_for_each_mb(_rev) / virtio_mem_bbm_for_each_bb(_rev): the ids in that
    state, read as the loop goes (the body may change states)."""
    ids = range(vm.next_id - 1, vm.first_id - 1, -1) if rev else range(vm.first_id, vm.next_id)
    for i in ids:
        if not _count(vm, state):
            return
        if _get_state(vm, i) == state:
            yield i


def _sb_mask(vm, sb_id: int, count: int) -> int:
    return ((1 << count) - 1) << sb_id


def virtio_mem_sbm_test_sb_plugged(vm, mb_id: int, sb_id: int, count: int) -> bool:
    mask = _sb_mask(vm, sb_id, count)
    return vm.sb_states.get(mb_id, 0) & mask == mask


def virtio_mem_sbm_test_sb_unplugged(vm, mb_id: int, sb_id: int, count: int) -> bool:
    return not vm.sb_states.get(mb_id, 0) & _sb_mask(vm, sb_id, count)


def virtio_mem_sbm_set_sb_plugged(vm, mb_id: int, sb_id: int, count: int) -> None:
    vm.sb_states[mb_id] = vm.sb_states.get(mb_id, 0) | _sb_mask(vm, sb_id, count)


def virtio_mem_sbm_set_sb_unplugged(vm, mb_id: int, sb_id: int, count: int) -> None:
    vm.sb_states[mb_id] = vm.sb_states.get(mb_id, 0) & ~_sb_mask(vm, sb_id, count)


def virtio_mem_sbm_first_unplugged_sb(vm, mb_id: int) -> int:
    for i in range(vm.sbs_per_mb):
        if not vm.sb_states.get(mb_id, 0) >> i & 1:
            return i
    return vm.sbs_per_mb


# -- probe ---------------------------------------------------------------------------------------

def virtio_mem_probe(m, vm) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_probe → virtio_mem_init → virtio_mem_init_hotplug
    (6.1); then the first config update (the workqueue). 0 or -errno."""
    pol = vm.policy
    bs = _bs(m)
    vm.offline_threshold = max(2 * bs, VIRTIO_MEM_DEFAULT_OFFLINE_THRESHOLD)
    a = m.arch
    if pol.sb_min == "pageblock":
        sb_size = a.PAGE_SIZE * a.pageblock_nr_pages
    else:
        sb_size = a.PAGE_SIZE * max(1 << (m.max_order - 1), a.pageblock_nr_pages)
    sb_size = max(vm.block_size, sb_size)
    if sb_size < bs:
        vm.in_sbm = True
        vm.sb_size = sb_size
        vm.sbs_per_mb = bs // sb_size
        vm.first_id = vm.next_id = virtio_mem_phys_to_mb_id(m, vm.addr + bs - 1)
        vm.last_usable_id = (vm.addr + vm.region_size) // bs - 1
        unit_pages = bs >> a.page_shift
    else:
        if not pol.bbm:
            return fail(m, errno.EINVAL, f"{vm.name}: the block size {vm.block_size:#x} is not "
                        "supported (too big) by this kernel's virtio-mem (no Big Block Mode)")
        vm.bb_size = max(vm.block_size, bs)
        vm.first_id = vm.next_id = virtio_mem_phys_to_bb_id(vm, vm.addr + vm.bb_size - 1)
        vm.last_usable_id = (vm.addr + vm.region_size) // vm.bb_size - 1
        vm.offline_threshold = max(2 * vm.bb_size, vm.offline_threshold)
        unit_pages = vm.bb_size >> a.page_shift
    # virtio_mem_create_resource: the device's region, busy flag dropped so add_memory nests
    res = m.resources.request_mem_region(vm.addr, vm.region_size, vm.name,
                                         IORESOURCE_SYSTEM_RAM | IORESOURCE_EXCLUSIVE)
    if res is None:
        return fail(m, errno.EBUSY, f"{vm.name}: could not reserve device region "
                    f"[{vm.addr:#x}-{vm.addr + vm.region_size - 1:#x}]")
    res.flags &= ~IORESOURCE_BUSY
    vm.parent_resource = res
    if pol.memory_group:
        rc = memory_group_register_dynamic(m, vm.nid, unit_pages)
        if rc < 0:
            m.resources.parent_of(res).children.remove(res)
            return rc
        vm.mgid = rc
        vm.group = m.memory_groups[rc]
    vm.notifier = lambda mm, event, pfn, nr: virtio_mem_memory_notifier_cb(mm, vm, event,
                                                                           pfn, nr)
    m.memory_notifiers.append(vm.notifier)
    # register_virtio_mem_device: the first device installs the online_page callback
    if not m.virtio_mem_devices:
        mh.set_online_page_callback(m, virtio_mem_online_page_cb)
    m.virtio_mem_devices.append(vm)
    vm.config_changed = True
    virtio_mem_run_wq(m, vm)
    return 0


# -- adding and removing memory ------------------------------------------------------------------

def virtio_mem_could_add_memory(vm, size: int) -> bool:
    """drivers/virtio/virtio_mem.c:virtio_mem_could_add_memory (6.1): at most
    offline_threshold of added-but-offline memory."""
    if size > vm.offline_threshold:
        return False
    return vm.offline_size + size <= vm.offline_threshold


def virtio_mem_add_memory(m, vm, addr: int, size: int) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_add_memory (6.1): add_memory_driver_managed under
    "System RAM (virtio_mem)" with the version's flags (MHP_MERGE_RESOURCE | MHP_NID_IS_MGID,
    the group id as nid, 5.15+; never MHP_MEMMAP_ON_MEMORY)."""
    vm.offline_size += size                 # memory might get onlined immediately
    nid = vm.mgid if vm.policy.memory_group else vm.nid
    rc = mh.add_memory_driver_managed(m, nid, addr, size, VIRTIO_MEM_RESOURCE_NAME,
                                      vm.policy.mhp_flags, vm.group)
    if rc:
        vm.offline_size -= size
        m.log(f"{vm.name}: adding memory failed: {rc}")
    return rc


def virtio_mem_remove_memory(m, vm, addr: int, size: int) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_remove_memory (6.1): remove_memory of offline
    memory."""
    rc = mh.remove_memory(m, addr, size)
    if not rc:
        vm.offline_size -= size
        vm.work_pending = True              # virtio_mem_retry
    return rc


def virtio_mem_offline_and_remove_memory(m, vm, addr: int, size: int) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_offline_and_remove_memory (6.1): -EBUSY for any
    failure (the caller retries later)."""
    rc = mh.offline_and_remove_memory(m, addr, size)
    if not rc:
        vm.offline_size -= size
        vm.work_pending = True
        return 0
    return -errno.EBUSY if rc != -errno.ENOMEM else rc


# -- the memory notifier ---------------------------------------------------------------------------

def virtio_mem_memory_notifier_cb(m, vm, event: str, start_pfn: int, nr_pages: int) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_memory_notifier_cb (6.1): memory blocks of this
    device going online are allowed only from OFFLINE(_PARTIAL) (SBM; else NOTIFY_BAD, which
    online_pages sees as -EPERM); going offline gives the fake-offline pages back to the
    accounting; online/offline move the SBM block states and offline_size."""
    sh = m.arch.page_shift
    start, size = start_pfn << sh, nr_pages << sh
    if not (start < vm.addr + vm.region_size and vm.addr < start + size):
        return 0
    bs = _bs(m)
    if vm.in_sbm:
        mb_id = virtio_mem_phys_to_mb_id(m, start)
        if size != bs or start % bs:
            m.warn(f"{vm.name}: notifier range {start:#x}+{size:#x} is not one memory block")
            return -errno.EPERM
        i = mb_id
    else:
        i = virtio_mem_phys_to_bb_id(vm, start)
        if i != virtio_mem_phys_to_bb_id(vm, start + size - 1):
            return -errno.EPERM
    if event == "MEM_GOING_OFFLINE":
        vm.hotplug_active = True
        if vm.in_sbm:
            virtio_mem_sbm_notify_going_offline(m, vm, i)
        elif _get_state(vm, i) == BBM_FAKE_OFFLINE:
            virtio_mem_fake_offline_going_offline(m, start_pfn, nr_pages)
    elif event == "MEM_GOING_ONLINE":
        vm.hotplug_active = True
        if vm.in_sbm and _get_state(vm, i) not in (SBM_OFFLINE, SBM_OFFLINE_PARTIAL):
            m.log(f"{vm.name}: memory block onlining denied")
            return -errno.EPERM                 # NOTIFY_BAD → notifier_to_errno
    elif event == "MEM_OFFLINE":
        if vm.in_sbm:
            virtio_mem_sbm_notify_offline(vm, i)
        vm.offline_size += size
        vm.hotplug_active = False
    elif event == "MEM_ONLINE":
        if vm.in_sbm:
            virtio_mem_sbm_notify_online(m, vm, i, start_pfn)
        vm.offline_size -= size
        if not vm.wq_active and virtio_mem_could_add_memory(vm, vm.offline_threshold // 2):
            vm.work_pending = True              # virtio_mem_retry
        vm.hotplug_active = False
    elif event == "MEM_CANCEL_OFFLINE":
        if vm.hotplug_active:
            if vm.in_sbm:
                virtio_mem_sbm_notify_cancel_offline(m, vm, i)
            elif _get_state(vm, i) == BBM_FAKE_OFFLINE:
                virtio_mem_fake_offline_cancel_offline(m, start_pfn, nr_pages)
            vm.hotplug_active = False
    elif event == "MEM_CANCEL_ONLINE":
        vm.hotplug_active = False
    return 0


def virtio_mem_sbm_notify_offline(vm, mb_id: int) -> None:
    """drivers/virtio/virtio_mem.c:virtio_mem_sbm_notify_offline (6.1)."""
    s = _get_state(vm, mb_id)
    if s in (SBM_KERNEL_PARTIAL, SBM_MOVABLE_PARTIAL):
        _set_state(vm, mb_id, SBM_OFFLINE_PARTIAL)
    elif s in (SBM_KERNEL, SBM_MOVABLE):
        _set_state(vm, mb_id, SBM_OFFLINE)
    else:
        raise HotplugError(errno.EIO, f"virtio_mem_sbm_notify_offline: memory block {mb_id} "
                           f"in state {SBM_STATE_NAMES[s]} (the kernel would BUG())")


def virtio_mem_sbm_notify_online(m, vm, mb_id: int, start_pfn: int) -> None:
    """drivers/virtio/virtio_mem.c:virtio_mem_sbm_notify_online (6.1): KERNEL or MOVABLE by
    the zone the block went to (before 5.16 both are ONLINE: the model keeps KERNEL)."""
    movable = (vm.policy.sbm_zone_states and m.ms.page_zonenum(start_pfn) == ZONE_MOVABLE)
    s = _get_state(vm, mb_id)
    if s == SBM_OFFLINE_PARTIAL:
        _set_state(vm, mb_id, SBM_MOVABLE_PARTIAL if movable else SBM_KERNEL_PARTIAL)
    elif s == SBM_OFFLINE:
        _set_state(vm, mb_id, SBM_MOVABLE if movable else SBM_KERNEL)
    else:
        raise HotplugError(errno.EIO, f"virtio_mem_sbm_notify_online: memory block {mb_id} in "
                           f"state {SBM_STATE_NAMES[s]} (the kernel would BUG())")


def _unplugged_sbs(m, vm, mb_id: int):
    nr_pages = vm.sb_size >> m.arch.page_shift
    for sb_id in range(vm.sbs_per_mb):
        if not virtio_mem_sbm_test_sb_plugged(vm, mb_id, sb_id, 1):
            yield (virtio_mem_mb_id_to_phys(m, mb_id) + sb_id * vm.sb_size) >> m.arch.page_shift, \
                nr_pages


def virtio_mem_sbm_notify_going_offline(m, vm, mb_id: int) -> None:
    """drivers/virtio/virtio_mem.c:virtio_mem_sbm_notify_going_offline (6.1)."""
    for pfn, nr in _unplugged_sbs(m, vm, mb_id):
        virtio_mem_fake_offline_going_offline(m, pfn, nr)


def virtio_mem_sbm_notify_cancel_offline(m, vm, mb_id: int) -> None:
    """drivers/virtio/virtio_mem.c:virtio_mem_sbm_notify_cancel_offline (6.1)."""
    for pfn, nr in _unplugged_sbs(m, vm, mb_id):
        virtio_mem_fake_offline_cancel_offline(m, pfn, nr)


# -- fake offline / online -------------------------------------------------------------------------

_OFFLINE_TYPE = PAGE_MAPCOUNT_RESET & ~PG_offline


def virtio_mem_set_fake_offline(m, pfn: int, nr_pages: int, onlined: bool) -> None:
    """drivers/virtio/virtio_mem.c:virtio_mem_set_fake_offline (6.1): __SetPageOffline on every
    page; pages never onlined also get PageDirty (they must go through generic_online_page
    later) and lose PG_reserved."""
    ms = m.ms
    for p in range(pfn, pfn + nr_pages):
        ms.set_page_type(p, ms.page_type(p) & ~PG_offline)
    if not onlined:
        ms.set_page_flag_range(pfn, nr_pages, PG_dirty)
        ms.clear_page_flag_range(pfn, nr_pages, PG_reserved)


def virtio_mem_clear_fake_offline(m, pfn: int, nr_pages: int, onlined: bool) -> None:
    """drivers/virtio/virtio_mem.c:virtio_mem_clear_fake_offline (6.1)."""
    ms = m.ms
    for p in range(pfn, pfn + nr_pages):
        ms.set_page_type(p, ms.page_type(p) | PG_offline)
    if not onlined:
        ms.clear_page_flag_range(pfn, nr_pages, PG_dirty)


def virtio_mem_fake_online(m, pfn: int, nr_pages: int) -> None:
    """drivers/virtio/virtio_mem.c:virtio_mem_fake_online (6.1): in the largest aligned chunks
    (at most MAX_ORDER - 1), pages never onlined (PageDirty) go through generic_online_page,
    pages faked offline from the buddy back through free_contig_range with managed +n.

    The model's __free_pages_core refuses a page without PG_reserved as its sanity check (the
    kernel's clears the flag unconditionally): it is set again just before the hand-over."""
    order = m.max_order - 1
    while (pfn | nr_pages) & ((1 << order) - 1):
        order -= 1
    n = 1 << order
    for i in range(0, nr_pages, n):
        p = pfn + i
        if m.ms.page_flags(p) >> PG_dirty & 1:
            virtio_mem_clear_fake_offline(m, p, n, False)
            m.ms.set_page_flag_range(p, n, PG_reserved)
            generic_online_page(m, p, order)
        else:
            virtio_mem_clear_fake_offline(m, p, n, True)
            free_contig_range(m, p, n)
            adjust_managed_page_count(m, page_zone(m, p), n)


def virtio_mem_fake_offline(m, pfn: int, nr_pages: int) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_fake_offline (6.1): alloc_contig_range (5 tries
    in ZONE_MOVABLE, where failures may be transient; one elsewhere), then PageOffline and
    managed -n. 0 or -EBUSY (-ENOMEM as alloc_contig_range returns it)."""
    movable = m.ms.page_zonenum(pfn) == ZONE_MOVABLE
    for _ in range(5):
        rc = alloc_contig_range(m, pfn, pfn + nr_pages)
        if rc == -errno.ENOMEM:
            return rc
        if rc and not movable:
            break
        if rc:
            continue
        virtio_mem_set_fake_offline(m, pfn, nr_pages, True)
        adjust_managed_page_count(m, page_zone(m, pfn), -nr_pages)
        return 0
    return fail(m, errno.EBUSY, f"virtio-mem: cannot fake-offline pfns [{pfn:#x}, "
                f"{pfn + nr_pages:#x}): alloc_contig_range found pages in use")


def virtio_mem_fake_offline_going_offline(m, pfn: int, nr_pages: int) -> None:
    """drivers/virtio/virtio_mem.c:virtio_mem_fake_offline_going_offline (6.1): managed +n
    (offline_pages takes the whole block off again) and the references dropped, so that
    offlining skips the PageOffline pages."""
    adjust_managed_page_count(m, page_zone(m, pfn), nr_pages)
    for p in range(pfn, pfn + nr_pages):
        rc = m.ms.page_refcount(p) - 1
        if rc:
            m.warn(f"fake-offline page referenced: pfn {p:#x}")
        m.ms.set_page_refcount(p, rc)


def virtio_mem_fake_offline_cancel_offline(m, pfn: int, nr_pages: int) -> None:
    """drivers/virtio/virtio_mem.c:virtio_mem_fake_offline_cancel_offline (6.1)."""
    adjust_managed_page_count(m, page_zone(m, pfn), -nr_pages)
    for p in range(pfn, pfn + nr_pages):
        m.ms.set_page_refcount(p, m.ms.page_refcount(p) + 1)


def virtio_mem_online_page(m, vm, pfn: int, order: int) -> None:
    """drivers/virtio/virtio_mem.c:virtio_mem_online_page (6.1): a chunk of plugged sub blocks
    goes to generic_online_page, one of unplugged sub blocks is faked offline, a mixed chunk
    is split into sub blocks (SBM); in BBM a big block being faked offline stays offline."""
    sh = m.arch.page_shift
    addr = pfn << sh
    end = addr + (1 << (order + sh))
    while addr < end:
        nxt = addr + (1 << (order + sh))
        if vm.in_sbm:
            mb_id = virtio_mem_phys_to_mb_id(m, addr)
            sb_id = virtio_mem_phys_to_sb_id(m, vm, addr)
            count = virtio_mem_phys_to_sb_id(m, vm, nxt - 1) - sb_id + 1
            if virtio_mem_sbm_test_sb_plugged(vm, mb_id, sb_id, count):
                do_online = True
            elif count == 1 or virtio_mem_sbm_test_sb_unplugged(vm, mb_id, sb_id, count):
                do_online = False
            else:
                order = vm.sb_size.bit_length() - 1 - sh
                continue
        else:
            do_online = _get_state(vm, virtio_mem_phys_to_bb_id(vm, addr)) != BBM_FAKE_OFFLINE
        if do_online:
            generic_online_page(m, addr >> sh, order)
        else:
            virtio_mem_set_fake_offline(m, addr >> sh, 1 << order, False)
        addr = nxt


def virtio_mem_online_page_cb(m, pfn: int, order: int) -> None:
    """drivers/virtio/virtio_mem.c:virtio_mem_online_page_cb (6.1): the device whose region
    holds the chunk handles it, else generic_online_page."""
    sh = m.arch.page_shift
    addr, size = pfn << sh, 1 << (order + sh)
    for vm in m.virtio_mem_devices:
        if addr >= vm.addr and addr + size <= vm.addr + vm.region_size:
            virtio_mem_online_page(m, vm, pfn, order)
            return
    generic_online_page(m, pfn, order)


# -- Sub Block Mode --------------------------------------------------------------------------------

def virtio_mem_sbm_plug_sb(m, vm, mb_id: int, sb_id: int, count: int) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_sbm_plug_sb (6.1)."""
    addr = virtio_mem_mb_id_to_phys(m, mb_id) + sb_id * vm.sb_size
    rc = virtio_mem_send_plug_request(m, vm, addr, count * vm.sb_size)
    if not rc:
        virtio_mem_sbm_set_sb_plugged(vm, mb_id, sb_id, count)
    return rc


def virtio_mem_sbm_unplug_sb(m, vm, mb_id: int, sb_id: int, count: int) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_sbm_unplug_sb (6.1)."""
    addr = virtio_mem_mb_id_to_phys(m, mb_id) + sb_id * vm.sb_size
    rc = virtio_mem_send_unplug_request(m, vm, addr, count * vm.sb_size)
    if not rc:
        virtio_mem_sbm_set_sb_unplugged(vm, mb_id, sb_id, count)
    return rc


def virtio_mem_sbm_plug_and_add_mb(m, vm, mb_id: int, nb_sb: list) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_sbm_plug_and_add_mb (6.1): plug the first
    min(nb_sb, sbs_per_mb) sub blocks of an unused memory block, then add it (which may online
    it); if adding fails, unplug again."""
    count = min(nb_sb[0], vm.sbs_per_mb)
    rc = virtio_mem_sbm_plug_sb(m, vm, mb_id, 0, count)
    if rc:
        return rc
    _set_state(vm, mb_id, SBM_OFFLINE if count == vm.sbs_per_mb else SBM_OFFLINE_PARTIAL)
    rc = virtio_mem_sbm_add_mb(m, vm, mb_id)
    if rc:
        new_state = SBM_UNUSED
        if virtio_mem_sbm_unplug_sb(m, vm, mb_id, 0, count):
            new_state = SBM_PLUGGED
        _set_state(vm, mb_id, new_state)
        return rc
    nb_sb[0] -= count
    return 0


def virtio_mem_sbm_add_mb(m, vm, mb_id: int) -> int:
    return virtio_mem_add_memory(m, vm, virtio_mem_mb_id_to_phys(m, mb_id), _bs(m))


def virtio_mem_sbm_plug_any_sb(m, vm, mb_id: int, nb_sb: list) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_sbm_plug_any_sb (6.1): plug unplugged sub blocks
    of an added memory block, lowest first; in an online block they are onlined at once
    (virtio_mem_fake_online)."""
    old_state = _get_state(vm, mb_id)
    sh = m.arch.page_shift
    while nb_sb[0]:
        sb_id = virtio_mem_sbm_first_unplugged_sb(vm, mb_id)
        if sb_id >= vm.sbs_per_mb:
            break
        count = 1
        while (count < nb_sb[0] and sb_id + count < vm.sbs_per_mb
               and not virtio_mem_sbm_test_sb_plugged(vm, mb_id, sb_id + count, 1)):
            count += 1
        rc = virtio_mem_sbm_plug_sb(m, vm, mb_id, sb_id, count)
        if rc:
            return rc
        nb_sb[0] -= count
        if old_state == SBM_OFFLINE_PARTIAL:
            continue
        pfn = (virtio_mem_mb_id_to_phys(m, mb_id) + sb_id * vm.sb_size) >> sh
        virtio_mem_fake_online(m, pfn, (count * vm.sb_size) >> sh)
    if virtio_mem_sbm_test_sb_plugged(vm, mb_id, 0, vm.sbs_per_mb):
        _set_state(vm, mb_id, old_state - 1)
    return 0


def virtio_mem_sbm_plug_request(m, vm, diff: int) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_sbm_plug_request (6.1): fill partially plugged
    blocks first (kernel, movable, offline), then unused ones, then new ones."""
    nb_sb = [diff // vm.sb_size]
    if not nb_sb[0]:
        return 0
    states = ((SBM_KERNEL_PARTIAL, SBM_MOVABLE_PARTIAL, SBM_OFFLINE_PARTIAL)
              if vm.policy.sbm_zone_states else (SBM_KERNEL_PARTIAL, SBM_OFFLINE_PARTIAL))
    for state in states:
        for mb_id in _for_each(vm, state):
            rc = virtio_mem_sbm_plug_any_sb(m, vm, mb_id, nb_sb)
            if rc or not nb_sb[0]:
                return rc
    for mb_id in _for_each(vm, SBM_UNUSED):
        if not virtio_mem_could_add_memory(vm, _bs(m)):
            return -errno.ENOSPC
        rc = virtio_mem_sbm_plug_and_add_mb(m, vm, mb_id, nb_sb)
        if rc or not nb_sb[0]:
            return rc
    while nb_sb[0]:
        if not virtio_mem_could_add_memory(vm, _bs(m)):
            return -errno.ENOSPC
        if vm.next_id > vm.last_usable_id:            # virtio_mem_sbm_prepare_next_mb
            return -errno.ENOSPC
        mb_id = vm.next_id
        vm.next_id += 1
        rc = virtio_mem_sbm_plug_and_add_mb(m, vm, mb_id, nb_sb)
        if rc:
            return rc
    return 0


def virtio_mem_sbm_unplug_any_sb_raw(m, vm, mb_id: int, nb_sb: list) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_sbm_unplug_any_sb_raw (6.1): unplug plugged sub
    blocks from the highest down, in runs."""
    sb_id = vm.sbs_per_mb - 1
    while nb_sb[0]:
        while sb_id >= 0 and virtio_mem_sbm_test_sb_unplugged(vm, mb_id, sb_id, 1):
            sb_id -= 1
        if sb_id < 0:
            break
        count = 1
        while (count < nb_sb[0] and sb_id > 0
               and virtio_mem_sbm_test_sb_plugged(vm, mb_id, sb_id - 1, 1)):
            count += 1
            sb_id -= 1
        rc = virtio_mem_sbm_unplug_sb(m, vm, mb_id, sb_id, count)
        if rc:
            return rc
        nb_sb[0] -= count
        sb_id -= 1
    return 0


def virtio_mem_sbm_unplug_any_sb_offline(m, vm, mb_id: int, nb_sb: list) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_sbm_unplug_any_sb_offline (6.1): an offline
    block's sub blocks are unplugged directly; a block left empty is removed."""
    rc = virtio_mem_sbm_unplug_any_sb_raw(m, vm, mb_id, nb_sb)
    if not virtio_mem_sbm_test_sb_plugged(vm, mb_id, 0, vm.sbs_per_mb):
        _set_state(vm, mb_id, SBM_OFFLINE_PARTIAL)
    if rc:
        return rc
    if virtio_mem_sbm_test_sb_unplugged(vm, mb_id, 0, vm.sbs_per_mb):
        _set_state(vm, mb_id, SBM_UNUSED)
        rc = virtio_mem_remove_memory(m, vm, virtio_mem_mb_id_to_phys(m, mb_id), _bs(m))
        if rc:
            raise HotplugError(-rc, f"{vm.name}: removing offline memory block {mb_id} failed "
                               f"({error_from(m, rc).message}): the kernel would BUG()")
    return 0


def virtio_mem_sbm_unplug_sb_online(m, vm, mb_id: int, sb_id: int, count: int) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_sbm_unplug_sb_online (6.1): fake the sub blocks
    offline (alloc_contig_range), then ask the device; on refusal give them back."""
    sh = m.arch.page_shift
    nr_pages = (vm.sb_size >> sh) * count
    old_state = _get_state(vm, mb_id)
    start_pfn = (virtio_mem_mb_id_to_phys(m, mb_id) + sb_id * vm.sb_size) >> sh
    rc = virtio_mem_fake_offline(m, start_pfn, nr_pages)
    if rc:
        return rc
    rc = virtio_mem_sbm_unplug_sb(m, vm, mb_id, sb_id, count)
    if rc:
        virtio_mem_fake_online(m, start_pfn, nr_pages)
        return rc
    if old_state == SBM_KERNEL:
        _set_state(vm, mb_id, SBM_KERNEL_PARTIAL)
    elif old_state == SBM_MOVABLE:
        _set_state(vm, mb_id, SBM_MOVABLE_PARTIAL)
    return 0


def virtio_mem_sbm_unplug_any_sb_online(m, vm, mb_id: int, nb_sb: list) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_sbm_unplug_any_sb_online (6.1): the whole block
    at once when asked for that much, else sub block by sub block from the highest, skipping
    the busy ones (-EBUSY); a block left with nothing plugged is offlined and removed."""
    whole = False
    if nb_sb[0] >= vm.sbs_per_mb and virtio_mem_sbm_test_sb_plugged(vm, mb_id, 0,
                                                                      vm.sbs_per_mb):
        rc = virtio_mem_sbm_unplug_sb_online(m, vm, mb_id, 0, vm.sbs_per_mb)
        if not rc:
            nb_sb[0] -= vm.sbs_per_mb
            whole = True                                # goto unplugged
        elif rc != -errno.EBUSY:
            return rc
    sb_id = vm.sbs_per_mb - 1
    while not whole and sb_id >= 0 and nb_sb[0]:
        while sb_id >= 0 and not virtio_mem_sbm_test_sb_plugged(vm, mb_id, sb_id, 1):
            sb_id -= 1
        if sb_id < 0:
            break
        rc = virtio_mem_sbm_unplug_sb_online(m, vm, mb_id, sb_id, 1)
        if rc and rc != -errno.EBUSY:
            return rc
        if not rc:
            nb_sb[0] -= 1
        sb_id -= 1
    # unplugged:
    if virtio_mem_sbm_test_sb_unplugged(vm, mb_id, 0, vm.sbs_per_mb):
        rc = virtio_mem_offline_and_remove_memory(m, vm, virtio_mem_mb_id_to_phys(m, mb_id),
                                                  _bs(m))
        if not rc:
            _set_state(vm, mb_id, SBM_UNUSED)
    return 0


def virtio_mem_sbm_unplug_any_sb(m, vm, mb_id: int, nb_sb: list) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_sbm_unplug_any_sb (6.1)."""
    s = _get_state(vm, mb_id)
    if s in (SBM_KERNEL_PARTIAL, SBM_KERNEL, SBM_MOVABLE_PARTIAL, SBM_MOVABLE):
        return virtio_mem_sbm_unplug_any_sb_online(m, vm, mb_id, nb_sb)
    if s in (SBM_OFFLINE_PARTIAL, SBM_OFFLINE):
        return virtio_mem_sbm_unplug_any_sb_offline(m, vm, mb_id, nb_sb)
    return -errno.EINVAL


def virtio_mem_sbm_unplug_request(m, vm, diff: int) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_sbm_unplug_request (6.1): offline blocks first,
    then online ones (partially plugged, movable before kernel), each from the highest id down;
    -EBUSY when not all could be unplugged."""
    nb_sb = [diff // vm.sb_size]
    if not nb_sb[0]:
        return 0
    if vm.policy.sbm_zone_states:
        states = (SBM_OFFLINE_PARTIAL, SBM_OFFLINE, SBM_MOVABLE_PARTIAL, SBM_KERNEL_PARTIAL,
                  SBM_MOVABLE, SBM_KERNEL)
    else:
        states = (SBM_OFFLINE_PARTIAL, SBM_OFFLINE, SBM_KERNEL_PARTIAL, SBM_KERNEL)
    for state in states:
        for mb_id in _for_each(vm, state, rev=True):
            rc = virtio_mem_sbm_unplug_any_sb(m, vm, mb_id, nb_sb)
            if rc or not nb_sb[0]:
                return rc
    return -errno.EBUSY if nb_sb[0] else 0


# -- Big Block Mode --------------------------------------------------------------------------------

def virtio_mem_bbm_plug_and_add_bb(m, vm, bb_id: int) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_bbm_plug_and_add_bb (6.1)."""
    addr = virtio_mem_bb_id_to_phys(vm, bb_id)
    rc = virtio_mem_send_plug_request(m, vm, addr, vm.bb_size)
    if rc:
        return rc
    _set_state(vm, bb_id, BBM_ADDED)
    rc = virtio_mem_add_memory(m, vm, addr, vm.bb_size)
    if rc:
        if not virtio_mem_send_unplug_request(m, vm, addr, vm.bb_size):
            _set_state(vm, bb_id, BBM_UNUSED)
        else:
            _set_state(vm, bb_id, BBM_PLUGGED)
    return rc


def virtio_mem_bbm_plug_request(m, vm, diff: int) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_bbm_plug_request (6.1)."""
    nb_bb = diff // vm.bb_size
    if not nb_bb:
        return 0
    for bb_id in _for_each(vm, BBM_UNUSED):
        if not virtio_mem_could_add_memory(vm, vm.bb_size):
            return -errno.ENOSPC
        rc = virtio_mem_bbm_plug_and_add_bb(m, vm, bb_id)
        if not rc:
            nb_bb -= 1
        if rc or not nb_bb:
            return rc
    while nb_bb:
        if not virtio_mem_could_add_memory(vm, vm.bb_size):
            return -errno.ENOSPC
        if vm.next_id > vm.last_usable_id:
            return -errno.ENOSPC
        bb_id = vm.next_id
        vm.next_id += 1
        rc = virtio_mem_bbm_plug_and_add_bb(m, vm, bb_id)
        if rc:
            return rc
        nb_bb -= 1
    return 0


def _online_sections(m, vm, bb_id: int):
    a = m.arch
    start = virtio_mem_bb_id_to_phys(vm, bb_id) >> a.page_shift
    for pfn in range(start, start + (vm.bb_size >> a.page_shift), a.PAGES_PER_SECTION):
        if m.ms.pfn_to_online_page(pfn):
            yield pfn


def virtio_mem_bbm_offline_remove_and_unplug_bb(m, vm, bb_id: int) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_bbm_offline_remove_and_unplug_bb (6.1, with
    bbm_safe_unplug): fake every online section offline first (undone on failure), then
    offline_and_remove_memory and the unplug request."""
    secs = m.arch.PAGES_PER_SECTION
    _set_state(vm, bb_id, BBM_FAKE_OFFLINE)
    done = []
    rc = 0
    for pfn in list(_online_sections(m, vm, bb_id)):
        rc = virtio_mem_fake_offline(m, pfn, secs)
        if rc:
            break
        done.append(pfn)
    if not rc:
        rc = virtio_mem_offline_and_remove_memory(m, vm, virtio_mem_bb_id_to_phys(vm, bb_id),
                                                  vm.bb_size)
        if not rc:
            rc = virtio_mem_send_unplug_request(m, vm, virtio_mem_bb_id_to_phys(vm, bb_id),
                                                vm.bb_size)
            _set_state(vm, bb_id, BBM_PLUGGED if rc else BBM_UNUSED)
            return rc
    for pfn in done:                                    # rollback_safe_unplug
        virtio_mem_fake_online(m, pfn, secs)
    _set_state(vm, bb_id, BBM_ADDED)
    return rc


def virtio_mem_bbm_unplug_request(m, vm, diff: int) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_bbm_unplug_request (6.1): offline big blocks
    first, then all-movable ones, then any, each from the highest id down."""
    nb_bb = diff // vm.bb_size
    if not nb_bb:
        return 0
    for i in range(3):
        for bb_id in _for_each(vm, BBM_ADDED, rev=True):
            online = list(_online_sections(m, vm, bb_id))
            if i == 0 and online:
                continue
            if i == 1 and any(m.ms.page_zonenum(p) != ZONE_MOVABLE for p in online):
                continue
            rc = virtio_mem_bbm_offline_remove_and_unplug_bb(m, vm, bb_id)
            if rc == -errno.EBUSY:
                continue
            if not rc:
                nb_bb -= 1
            if rc or not nb_bb:
                return rc
    return -errno.EBUSY if nb_bb else 0


# -- the workqueue -------------------------------------------------------------------------------

def virtio_mem_unplug_pending_mb(m, vm) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_unplug_pending_mb (6.1): blocks plugged but never
    added (an add that failed and could not be undone) are unplugged."""
    for i in _for_each(vm, SBM_PLUGGED if vm.in_sbm else BBM_PLUGGED):
        if vm.in_sbm:
            rc = virtio_mem_sbm_unplug_any_sb_raw(m, vm, i, [vm.sbs_per_mb])
        else:
            rc = virtio_mem_send_unplug_request(m, vm, virtio_mem_bb_id_to_phys(vm, i),
                                                vm.bb_size)
        if rc:
            return rc
        _set_state(vm, i, SBM_UNUSED if vm.in_sbm else BBM_UNUSED)
    return 0


def virtio_mem_run_wq(m, vm) -> int:
    """drivers/virtio/virtio_mem.c:virtio_mem_run_wq (6.1): refresh the config, unplug what is
    pending, then plug or unplug the difference to the requested size; -EAGAIN (the config
    changed meanwhile) goes round again; -EBUSY / -ENOMEM / -ETXTBSY would arm the retry timer
    (``retry``), -ENOSPC waits for memory to be onlined, anything else breaks the device."""
    if vm.broken:
        return vm.last_rc
    vm.wq_active = True
    vm.work_pending = False
    try:
        while True:
            rc = 0
            if vm.config_changed:
                vm.config_changed = False
                # virtio_mem_refresh_config: the device's plugged size, usable region, request
                vm.plugged_size = vm.size
                vm.drv_requested_size = vm.requested_size
            rc = virtio_mem_unplug_pending_mb(m, vm)
            if not rc and vm.drv_requested_size != vm.plugged_size:
                if vm.drv_requested_size > vm.plugged_size:
                    diff = vm.drv_requested_size - vm.plugged_size
                    rc = (virtio_mem_sbm_plug_request if vm.in_sbm
                          else virtio_mem_bbm_plug_request)(m, vm, diff)
                else:
                    diff = vm.plugged_size - vm.drv_requested_size
                    rc = (virtio_mem_sbm_unplug_request if vm.in_sbm
                          else virtio_mem_bbm_unplug_request)(m, vm, diff)
            if rc == -errno.EAGAIN:
                vm.config_changed = True
                continue
            break
        if rc not in (0, -errno.ENOSPC, -errno.ETXTBSY, -errno.EBUSY, -errno.ENOMEM):
            m.warn(f"{vm.name}: unknown error, marking device broken: {rc}")
            vm.broken = True
        vm.last_rc = rc
        return rc
    finally:
        vm.wq_active = False


def run_deferred_work(m) -> None:
    """The workqueue items virtio_mem_retry queued (a block was onlined, memory was removed)
    run once the operation that queued them is over."""
    for vm in list(m.virtio_mem_devices):
        if vm.work_pending and not vm.broken:
            virtio_mem_run_wq(m, vm)


# -- the Machine API -------------------------------------------------------------------------------

def _device_memory_base(m) -> int:
    try:
        return m.arch_ops.device_memory_base(m)
    except NotImplementedError:
        # the pc machine: 4 GiB, past the RAM above 4 GiB, rounded up to 1 GiB
        top = max(m.max_pfn << m.arch.page_shift, 1 << 32)
        return -(-top // (1 << 30)) << 30


def _taken_ranges(m) -> list:
    out = [(s, n) for d in m.acpi_devices for s, n in d.ranges]
    out += [(d.addr, d.region_size) for d in m.virtio_mem_devices]
    return sorted(out)


def virtio_mem_device(m, addr=None, region_size="1G", block_size=None, node: int = 0,
                      requested_size=0) -> VirtioMemDevice:
    """``-object memory-backend-ram,size=<region_size> -device virtio-mem-pci,memdev=..,
    node=<node>,block-size=<block_size>,requested-size=<requested_size>[,memaddr=<addr>]`` and
    the guest's virtio_mem driver probing it. ``addr`` None: QEMU's first fit in the device
    memory region, aligned to the block size (memory_device_get_free_addr). Bad input raises
    HotplugError (EINVAL / EEXIST) with nothing changed; a probe that fails is undone."""
    from hotmem.cmdline import parse_size
    region_size = parse_size(region_size)
    block_size = QEMU_VIRTIO_MEM_DEFAULT_BLOCK_SIZE if block_size is None else \
        parse_size(block_size)
    requested_size = parse_size(requested_size)
    virtio_mem_policy(m.policy)
    if block_size < QEMU_VIRTIO_MEM_MIN_BLOCK_SIZE or block_size & (block_size - 1):
        raise HotplugError(errno.EINVAL, f"virtio-mem: 'block-size' {block_size:#x} must be a "
                           f"power of two of at least {QEMU_VIRTIO_MEM_MIN_BLOCK_SIZE:#x}")
    if not region_size or region_size % block_size:
        raise HotplugError(errno.EINVAL, f"virtio-mem: memdev size {region_size:#x} must be a "
                           f"non-zero multiple of 'block-size' ({block_size:#x})")
    if requested_size % block_size or requested_size > region_size:
        raise HotplugError(errno.EINVAL, f"virtio-mem: 'requested-size' {requested_size:#x} "
                           f"must be a multiple of 'block-size' within the memdev size")
    if node not in m.pgdats:
        raise HotplugError(errno.EINVAL, f"virtio-mem: 'node' {node} is not a NUMA node of "
                           "the machine")
    taken = _taken_ranges(m)
    if addr is None:
        addr = _device_memory_base(m)
        addr = -(-addr // block_size) * block_size
        for s, n in taken:
            if addr + region_size <= s:
                break
            addr = max(addr, -(-(s + n) // block_size) * block_size)
    else:
        addr = parse_size(addr)
        if addr % block_size:
            raise HotplugError(errno.EINVAL, f"virtio-mem: 'memaddr' {addr:#x} is not aligned "
                               f"to 'block-size' ({block_size:#x})")
        for s, n in taken:
            if s < addr + region_size and addr < s + n:
                raise HotplugError(errno.EEXIST, f"virtio-mem: [{addr:#x}, "
                                   f"{addr + region_size:#x}) overlaps the memory device at "
                                   f"[{s:#x}, {s + n:#x})")
    if not mh.mhp_range_allowed(m, addr, region_size):
        raise HotplugError(errno.E2BIG, f"virtio-mem: [{addr:#x}, {addr + region_size:#x}) is "
                           "beyond the hot-pluggable range")
    if m.resources.conflict(addr, addr + region_size - 1) is not None:
        raise HotplugError(errno.EBUSY, f"virtio-mem: [{addr:#x}, {addr + region_size:#x}) is "
                           "already in /proc/iomem")
    vm = VirtioMemDevice(m, f"virtio{len(m.virtio_mem_devices)}", addr, region_size, block_size,
                         node, requested_size)
    rc = virtio_mem_probe(m, vm)
    if rc:
        raise error_from(m, rc)
    return vm
