"""The plan: a machine and the DIMMs to hot-add on it (:class:`Plan`)."""
from __future__ import annotations

import errno
from dataclasses import dataclass

from hotmem.errors import HotplugError
from hotmem.machine import Machine, parse_size
from hotmem.report.platforms import _machine_class, boot_memory_for_block_size, hotplug_kind
from hotmem.report.units import GiB, iec


@dataclass
class Plan:
    """A machine and a hot-add plan: DIMMs added one after the other from ``start`` — ACPI
    DIMMs on x86_64 and arm64, DLPAR LMBs on powerpc64 (pseries), standby storage on s390x
    (:func:`hotplug_kind`)."""
    dimms: tuple = ("128M",) * 4        # DIMM sizes (bytes or "128M")
    nodes: tuple = (0,)                 # the node of each DIMM, cycled over the DIMMs
    boot_memory: tuple = ("1G",)        # boot RAM of node 0, 1, ... (nodes of DIMMs beyond: 0)
    block_size: object = None           # memory block size; None: what the boot probes
    kernel: str = "6.1"
    arch: str = "x86_64"
    page_size: str | None = None        # arm64 "4K"/"16K"/"64K", powerpc64 "64K"; None: default
    mmu: str | None = None              # powerpc64 "radix"/"hash"; None: default
    paging_levels: int | None = None    # None: the Machine's default
    online_type: str = "online_movable"
    memmap_on_memory: str = "1"         # the altmap side's memory_hotplug.memmap_on_memory
    fragment: bool = True               # also run the plan on fragmented nodes (drawback c)
    costs_for: tuple = ("16G",)         # sizes of the "what hot-adding N costs" table
    start: object = None                # first DIMM's address; None: above boot RAM, aligned
    backend: str | None = None
    #: the kernel build configuration (hotmem.kconfig: a preset name or a KernelConfig; None:
    #: the version's default, Debian's for 6.1 and 6.12)
    config: object = None

    def sizes(self) -> list[int]:
        return [parse_size(s) for s in self.dimms]

    def node_of(self, i: int) -> int:
        return int(self.nodes[i % len(self.nodes)])

    def boot_layout(self) -> dict[int, int]:
        """Boot RAM per node; a DIMM's node without boot RAM is a memoryless node. With a
        ``block_size``, node 0's boot RAM is raised to the smallest size that probes it."""
        layout = {i: parse_size(s) for i, s in enumerate(self.boot_memory)}
        for n in self.nodes:
            layout.setdefault(int(n), 0)
        if self.block_size is not None:
            layout[0] = boot_memory_for_block_size(self.arch, parse_size(self.block_size),
                                                   sum(layout.values())) - sum(
                v for k, v in layout.items() if k)
        return dict(sorted(layout.items()))

    def cmdline(self, mom: bool) -> str:
        """The plan onlines every block itself (``online_type``): on a build that onlines at
        add (Debian's 6.12: CONFIG_MHP_DEFAULT_ONLINE_TYPE_ONLINE_AUTO) it boots with
        memhp_default_state=offline, as a user of that kernel would to choose the zone."""
        from hotmem.kconfig import get_config
        from hotmem.kernel import get_policy
        words = [f"memory_hotplug.memmap_on_memory={self.memmap_on_memory if mom else 0}"]
        if (hotplug_kind(self.arch) != "dlpar" and get_config(
                self.config, get_policy(self.kernel), self.arch).mhp_default_online_type
                != "offline"):
            words.append("memhp_default_state=offline")
        return " ".join(words)

    def qemu_memory(self) -> dict:
        """QEMU's ``-m maxmem=,slots=`` for the plan: room for every DIMM and every "what N
        costs" size in the device-memory region (its end is where the 64-bit PCI hole starts)."""
        boot = sum(self.boot_layout().values())
        need = max([sum(self.sizes())] + [parse_size(s) for s in self.costs_for])
        return {"maxmem": max(16 * GiB, -(-(boot + need) // GiB) * GiB),
                "slots": max(8, len(self.dimms))}

    def machine(self, mom: bool, standby: int | None = None) -> Machine:
        """The plan's Machine booted with (``mom``) or without memmap on memory; on s390x with
        the plan's DIMMs (or ``standby`` bytes) as standby memory."""
        kw = dict(arch=self.arch, kernel=self.kernel, boot_memory=self.boot_layout(),
                  cmdline=self.cmdline(mom), backend=self.backend, config=self.config,
                  **self.qemu_memory())
        if self.paging_levels is not None:
            kw["paging_levels"] = self.paging_levels
        kw.update({k: v for k, v in (("page_size", self.page_size), ("mmu", self.mmu))
                   if v is not None})
        if hotplug_kind(self.arch) == "standby":
            total = sum(self.sizes()) if standby is None else standby
            kw["standby_memory"] = total or None
        m = _machine_class(self.arch)(**kw)
        if self.block_size is not None and m.memory_block_size_bytes != parse_size(self.block_size):
            raise HotplugError(errno.EINVAL, f"memory block size {iec(parse_size(self.block_size))}"
                               f" is not what {self.arch} probes on this machine "
                               f"({iec(m.memory_block_size_bytes)})")
        return m

    def first_address(self, m: Machine) -> int:
        """Where the first DIMM goes: ``start``, or the arch's first_hotplug_address (x86_64: the
        end of boot RAM, at least 4 GiB, rounded up to 1 GiB and to the block size; arm64 and
        powerpc64: the device memory base of QEMU virt and pseries); with standby memory
        (s390x) always the first standby block (``start`` must agree)."""
        first = m.arch_ops.first_hotplug_address
        if m.arch_ops.hotplug_method == "standby":
            addr = first(m)
            if self.start is not None and parse_size(self.start) != addr:
                raise HotplugError(errno.EINVAL, f"s390x: standby memory starts at {addr:#x} "
                                   "(after the online storage), not where start= says")
            return addr
        return parse_size(self.start) if self.start is not None else first(m)
