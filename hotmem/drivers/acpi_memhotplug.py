"""ACPI memory devices (drivers/acpi/acpi_memhotplug.c, Linux 6.1): how a pc-dimm arrives and
leaves — one _CRS range per DIMM, one static memory group per device, MHP_MEMMAP_ON_MEMORY asked
for per range, and an eject that offlines the device's blocks itself. Both return 0 or -errno
(hotmem/errors.py); Machine.acpi_memory_hotplug / acpi_memory_eject raise.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field

from hotmem.drivers.base.memory import MemoryGroup
from hotmem.errors import error_from, fail
from hotmem.mm import memory_hotplug as mh
from hotmem.mm.memory_hotplug import __add_memory as _add_memory


@dataclass
class AcpiMemoryDevice:
    """struct acpi_memory_device: the _CRS ranges of one memory device and its node (_PXM)."""
    ranges: list                       # [(start, length)]
    node: int
    group: MemoryGroup | None = None
    enabled: list = field(default_factory=list)   # ranges whose __add_memory succeeded
    name: str = ""

    @property
    def start(self) -> int:
        return self.ranges[0][0]

    @property
    def size(self) -> int:
        return sum(n for _, n in self.ranges)


def acpi_memory_enable_device(m, dev: AcpiMemoryDevice) -> int:
    """drivers/acpi/acpi_memhotplug.c:acpi_memory_enable_device (6.1): 0 or -errno."""
    total = sum(n for _, n in dev.ranges)
    if not total:
        return fail(m, errno.EINVAL, "acpi_memhotplug: device is empty")
    node = dev.node
    if node not in m.pgdats:
        return fail(m, errno.EINVAL, f"acpi_memhotplug: node {node} is not possible")
    dev.group = MemoryGroup(nid=node, max_pages=(total + m.arch.PAGE_SIZE - 1) >> m.arch.page_shift)
    mhp_flags = mh.MHP_NID_IS_MGID
    errors = []
    for start, length in dev.ranges:
        if not length:
            continue
        # 6.1: asked for when supported, and never cleared for later ranges; 6.6+: always asked
        # for (add_memory_resource falls back when unsupported)
        if not m.policy.acpi_checks_support or mh.mhp_supports_memmap_on_memory(m, length):
            mhp_flags |= mh.MHP_MEMMAP_ON_MEMORY
        rc = _add_memory(m, dev.group.nid, start, length, mhp_flags, dev.group)
        if rc:
            e = error_from(m, rc)
            if rc != -errno.EEXIST:
                errors.append(e)
                continue
        dev.enabled.append((start, length))
    if not dev.enabled:
        if len(errors) == 1:
            return fail(m, errors[0].errno, errors[0].message)
        return fail(m, errno.EINVAL, "acpi_memhotplug: add_memory failed for every range"
                    + "".join(f"; {e}" for e in errors))
    return 0


def acpi_memory_remove(m, dev: AcpiMemoryDevice) -> int:
    """The ACPI eject of a memory device (6.1): acpi_scan_try_to_offline offlines the bound blocks
    (all or nothing: on failure the ones it offlined are onlined again, -EBUSY, _OST 0x82); then
    acpi_memory_device_remove → __remove_memory per enabled range. 0 or -errno.

    acpi_scan_try_to_offline → acpi_bus_offline runs two passes: the first tries every bound
    block and carries on past failures, the second retries the ones that failed; if one still
    fails, acpi_bus_online onlines again (device_online, i.e. MMOP_ONLINE: the default zone) the
    blocks the passes offlined, in bind order, ignoring errors, and the eject gets -EBUSY."""
    mem_blocks = []
    for start, length in dev.enabled:
        mem_blocks.extend(m.memory.blocks_in_range(start, length))
    put_online = []
    failed = []
    for mem in mem_blocks:                       # first pass
        if mem.state == "offline":
            continue                             # device_offline returns 1: not put_online
        rc = m.memory.memory_subsys_offline(mem)
        if rc < 0:
            error_from(m, rc)
            failed.append(mem)
        else:
            put_online.append(mem)
    errdev = err = None
    for mem in failed:                           # second pass: only the failed ones
        rc = m.memory.memory_subsys_offline(mem)
        if rc < 0:
            errdev, err = mem, error_from(m, rc)
            break
        if rc == 0:
            put_online.append(mem)
    if errdev is not None:
        for back in mem_blocks:                  # acpi_bus_online: errors are ignored
            if back in put_online:
                rc = m.memory.memory_subsys_online(back)
                if rc < 0:
                    m.log(f"acpi_bus_online: memory{back.block_id}: {error_from(m, rc)}")
        return fail(m, errno.EBUSY, f"ACPI eject refused (_OST 0x82): memory"
                    f"{errdev.block_id} cannot be offlined: {err.message}")
    for start, length in dev.enabled:
        rc = mh.try_remove_memory(m, start, length)
        if rc:
            # __remove_memory: BUG() when try_remove_memory fails
            return fail(m, -rc, f"__remove_memory({start:#x}, {length:#x}): "
                        f"{error_from(m, rc).message}; the kernel would BUG() here (would oops)")
    dev.enabled = []
    return 0
