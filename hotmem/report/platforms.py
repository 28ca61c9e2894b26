"""The platform: how memory is hot-added on each arch (ACPI DIMMs, pseries DLPAR, s390x standby
storage), the recording Machine that tells an add the report cannot wrap from what follows it,
and the platform facts the report's header names."""
from __future__ import annotations

import errno
from dataclasses import dataclass

from hotmem.arch import ARCH_OPS, hotplug_method
from hotmem.errors import HotplugError
from hotmem.machine import Machine, parse_size
from hotmem.mm.memory_hotplug import MHP_MEMMAP_ON_MEMORY
from hotmem.report.ledger import AddCost, _Ledger, _mark
from hotmem.report.units import iec


def boot_memory_for_block_size(arch: str, block_size: int, boot_total: int) -> int:
    """The boot RAM, from ``boot_total`` up, for which architecture ``arch``'s platform probes
    memory blocks of ``block_size`` (ArchOps.boot_memory_for_block_size: on QEMU pc the x86-64
    probe follows the boot RAM; elsewhere the block size is checked after boot)."""
    ops = ARCH_OPS.get(arch)
    return ops.boot_memory_for_block_size(block_size, boot_total) if ops else boot_total


#: the report's name of each ArchOps.hotplug_method (the JSON machine's ``platform.hotplug``)
HOTPLUG_KIND = {"acpi-dimm": "acpi", "dlpar-lmb": "dlpar", "standby": "standby"}


def hotplug_kind(arch: str) -> str:
    """How architecture ``arch``'s platform hot-adds the plan's memory (its ArchOps'
    hotplug_method): "acpi" (QEMU pc / virt: an ACPI memory device per DIMM,
    drivers/acpi/acpi_memhotplug.c), "dlpar" (QEMU pseries: a DIMM arrives as LMBs, each added
    and onlined by arch/powerpc/platforms/pseries/hotplug-memory.c:dlpar_add_lmb) or "standby"
    (s390x: standby storage added offline at boot by
    drivers/s390/char/sclp_cmd.c:sclp_add_standby_memory; onlining a block assigns its
    storage); "acpi" for a name without an ArchOps."""
    return HOTPLUG_KIND[hotplug_method(arch)]


def machine_hotplug_kind(m: Machine) -> str:
    """:func:`hotplug_kind` of a booted Machine: its ArchOps' hotplug_method."""
    return HOTPLUG_KIND[m.arch_ops.hotplug_method]


@dataclass
class _AddRecord:
    """One add_memory_checked the recording Machine saw: its cost (owner-ledger delta), the
    /proc marks around it and the ledger right after it (the baseline of what follows)."""
    cost: "AddCost"
    before: tuple
    after: tuple
    ledger_after: "_Ledger"
    error: str | None


class RecordingMachine(Machine):
    """A Machine that records what each ``add_memory_checked`` cost, from the owner ledger.

    Needed where the report cannot put its own ledger around an add: s390x adds its standby
    memory during boot (sclp_add_standby_memory, an initcall), and powerpc64's dlpar_add_lmb
    onlines the LMB right after __add_memory. Observation only: the adds run unchanged."""

    def __init__(self, *args, **kwargs):
        self.add_records: list[_AddRecord] = []
        super().__init__(*args, **kwargs)

    def add_memory_checked(self, nid, start, size, mhp_flags, group=None, name="System RAM"):
        start, size = parse_size(start), parse_size(size)
        ledger, before, error = _Ledger(self), _mark(self), None
        try:
            super().add_memory_checked(nid, start, size, mhp_flags, group, name)
        except HotplugError as exc:
            error = str(exc)
            raise
        finally:
            bs = self.memory_block_size_bytes
            blocks = [] if error else list(range(start // bs, (start + size) // bs))
            cost = ledger.add_cost(start, size, nid, blocks,
                                   bool(mhp_flags & MHP_MEMMAP_ON_MEMORY))
            self.add_records.append(_AddRecord(cost, before, _mark(self), _Ledger(self), error))


def _machine_class(arch: str):
    return Machine if hotplug_kind(arch) == "acpi" else RecordingMachine


def standby_start(m: Machine) -> int:
    """s390x: the first standby storage increment, block aligned (the arch's
    first_hotplug_address; EINVAL without standby memory)."""
    return m.arch_ops.first_hotplug_address(m)


def dlpar_flags_name(m: Machine) -> str:
    """The mhp_flags dlpar_add_lmb passes to __add_memory (hotplug-memory.c: MHP_NONE in 6.1,
    MHP_MEMMAP_ON_MEMORY from 6.6: the policy's powerpc64 dlpar_memmap_on_memory)."""
    return ("MHP_MEMMAP_ON_MEMORY" if m.policy.arch("powerpc64").dlpar_memmap_on_memory
            else "MHP_NONE")


def machine_name(m: Machine) -> str:
    """The machine the model stands for, as the report's header names it (ArchOps.board)."""
    return m.arch_ops.board


def paging_text(m: Machine) -> str:
    """The header's page-table wording (ArchOps.paging_description): "4-level paging" (x86_64,
    arm64), the radix tree or the hash MMU's bolted HPTEs (powerpc64), the DAT table levels of
    init_mm (s390x)."""
    return m.arch_ops.paging_description


def describe_platform(m: Machine) -> dict:
    """How memory is hot-added on the machine (the ``platform`` of the JSON machine)."""
    kind = machine_hotplug_kind(m)
    d = {"machine": machine_name(m), "hotplug": kind, "paging": paging_text(m)}
    if kind == "acpi":
        d["add"] = "ACPI memory device (acpi_memory_enable_device: __add_memory)"
        d["online"] = "by the plan (sysfs state), after the add"
        d["remove"] = "offline, then ACPI eject (acpi_memory_remove_memory)"
    elif kind == "dlpar":
        d["mmu"] = m.arch.mmu
        d["mhp_flags"] = dlpar_flags_name(m)
        d["add"] = f"dlpar_add_lmb per LMB: __add_memory(nid, addr, LMB, {d['mhp_flags']})"
        d["online"] = "by dlpar_add_lmb right after the add: device_online, MMOP_ONLINE (the " \
                      "default zone)"
        d["remove"] = "dlpar_remove_lmb per LMB: device_offline, then __remove_memory"
    else:
        d["mhp_flags"] = "MHP_NONE"
        d["add"] = ("at boot: sclp_add_standby_memory, add_memory(0, addr, block, MHP_NONE) per "
                    "standby block, left offline")
        d["online"] = ("by the plan (sysfs state): sclp_mem_notifier assigns the storage at "
                       "MEM_GOING_ONLINE")
        d["remove"] = ("offline only: MEM_OFFLINE unassigns the storage (standby again); the "
                       "blocks and their memmap stay")
    return d


def _check_lmbs(addr: int, size: int, lmb: int) -> None:
    if size <= 0 or size % lmb or addr % lmb:
        raise HotplugError(errno.EINVAL, f"powerpc64: DLPAR adds whole LMBs of {iec(lmb)}: "
                           f"{size:#x} bytes at {addr:#x} is not")
