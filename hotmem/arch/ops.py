"""The arch interface: every hook the mm, drivers and Machine layers call, with the generic
defaults -- the Python form of the kernel's ``__weak`` functions and per-arch callbacks.

Each architecture implements :class:`ArchOps` as a class in hotmem/arch (X86_64Ops in
x86_init_64.py, Arm64Ops in arm64_init.py, PowerPC64Ops in powerpc64_init.py, S390xOps in
s390x_init.py). A Machine gets one instance (``m.arch_ops``, built by
:func:`hotmem.arch.arch_ops_for`) which owns the arch's own state (the e820 table, the SCLP
increments, the radix table allocator, ...). Hooks take the Machine first
(``m.arch_ops.vmemmap_populate(m, start, end, node, altmap)``); the memmap_on_memory questions
take only the profile, so the Machine-less API (hotmem.arch.memmap_on_memory_supported) can ask
the class. Platform facts (board, how memory is hot-added, paging wording) let report, procfs
and testing ask the arch instead of branching on its name.
"""
from __future__ import annotations

import abc

from hotmem.arch.base import IS_ALIGNED, ArchProfile
from hotmem.mm.mmzone import ZONE_NAMES

GiB = 1 << 30

#: how a platform hot-adds memory
HOTPLUG_METHODS = ("acpi-dimm", "dlpar-lmb", "standby")


#: the hooks an arch module writes as plain functions of its own (the Machine first), bound to
#: its ArchOps class by ``class X(ArchOps, hooks_from=globals())``
MODULE_HOOKS = ("boot_layout", "memory_block_size_bytes", "zone_dma_limits", "new_page_tables",
                "boot_map_memory", "boot_vmemmap_populate", "boot_resources", "arch_add_memory",
                "arch_remove_memory", "vmemmap_populate", "vmemmap_free", "mhp_range_allowed",
                "arch_get_memory_phys_device", "memory_notifier", "meminfo_extra",
                "arch_report_meminfo", "device_memory_base", "first_hotplug_address",
                "arch_support_memmap_on_memory", "init_mem_mapping", "early_allocations", "alternative_instructions",
                "free_initmem")


class ArchOps(abc.ABC):
    """The hooks of one architecture and the platform it runs on (see the module docstring)."""

    def __init_subclass__(cls, hooks_from=None, **kwargs):
        """Bind every MODULE_HOOKS function the arch module defines itself (not one it imports)
        that the class body does not define, as a static method."""
        super().__init_subclass__(**kwargs)
        if hooks_from is None:
            return
        for name in MODULE_HOOKS:
            fn = hooks_from.get(name)
            if (name not in cls.__dict__ and callable(fn)
                    and getattr(fn, "__module__", None) == hooks_from["__name__"]):
                setattr(cls, name, staticmethod(fn))

    #: the architecture's name, as hotmem.arch.ARCHES spells it
    name: str = ""
    #: the machine the model stands for (report header)
    board: str = ""
    #: how the platform hot-adds memory: "acpi-dimm" (ACPI memory devices: QEMU pc, virt),
    #: "dlpar-lmb" (pseries DLPAR of LMBs) or "standby" (s390 SCLP standby storage)
    hotplug_method: str = "acpi-dimm"
    #: enum zone_type of the arch's build: the zones /proc/zoneinfo lists (the model keeps fixed
    #: slots; an arch without ZONE_DMA/DMA32 keeps them empty and unlisted)
    ZONE_TYPES: tuple = ZONE_NAMES
    #: the arch's names of the model's generic page-table levels (report tables), if it has any
    level_names: dict = {}

    def __init__(self, profile: ArchProfile):
        self.profile = profile

    # -- boot (arch/*/kernel/setup.c, arch/*/mm/init*.c) ----------------------------------------
    @abc.abstractmethod
    def boot_layout(self, m):
        """The boot RAM ranges (start, end, nid), memblock reservations (start, size, name) and
        whether the layout is a calibrated reference (setup_arch's memblock_add/reserve)."""

    # -- boot by cause: called only where boot_layout set m.boot_by_cause ----------------------
    def init_mem_mapping(self, m) -> bool:
        """The boot PGD and linear map built the arch's own way (x86_64: init_mem_mapping's
        steps and table sources); False: paging_init's generic walk over the RAM ranges."""
        return False

    def early_allocations(self, m) -> None:
        """The boot's memblock allocations that scale with the machine, from their causes
        (hotmem/arch/x86_setup.py, powerpc64_setup.py)."""
        raise NotImplementedError(f"{self.name}: boot allocations by cause not modelled")

    def alternative_instructions(self, m) -> None:
        """start_kernel's early frees of kernel image pages, before the initcalls; none."""

    def free_initmem(self, m) -> None:
        """kernel_init's frees of kernel image pages after the initcalls; none."""

    def memory_block_size_bytes(self, m) -> int:
        """drivers/base/memory.c:memory_block_size_bytes (__weak, 6.1): one section."""
        return m.arch.MIN_MEMORY_BLOCK_SIZE

    @abc.abstractmethod
    def zone_dma_limits(self, m):
        """The (ZONE_DMA, ZONE_DMA32) end pfns of zone_sizes_init / paging_init."""

    @abc.abstractmethod
    def new_page_tables(self, m, pgd_pfn: int):
        """init_mm's page tables (paging_init): a core PageTables or the arch's own."""

    @abc.abstractmethod
    def boot_map_memory(self, m, start: int, end: int, alloc_table) -> None:
        """The boot linear map of one RAM range (init_mem_mapping, map_mem, vmem_map_init, ...)."""

    @abc.abstractmethod
    def boot_vmemmap_populate(self, m, start: int, end: int, nid: int, alloc_block,
                              alloc_table) -> int:
        """sparse_init's vmemmap_populate, with memblock as the allocator: 0 or -ENOMEM."""

    @abc.abstractmethod
    def boot_resources(self, m) -> None:
        """/proc/iomem at boot (and the arch's initcalls that run with slab available)."""

    # -- hotplug (arch/*/mm/init*.c, mmu.c, mem.c) -----------------------------------------------
    @abc.abstractmethod
    def arch_add_memory(self, m, nid: int, start: int, size: int, altmap) -> int:
        """arch_add_memory (6.1): the linear map and __add_pages: 0 or -errno."""

    @abc.abstractmethod
    def arch_remove_memory(self, m, start: int, size: int, altmap) -> None:
        """arch_remove_memory (6.1): __remove_pages and the linear map removed."""

    @abc.abstractmethod
    def vmemmap_populate(self, m, start: int, end: int, node: int, altmap) -> int:
        """vmemmap_populate (6.1): 0 or -ENOMEM."""

    @abc.abstractmethod
    def vmemmap_free(self, m, start: int, end: int, altmap) -> None:
        """vmemmap_free (6.1)."""

    def mhp_range_allowed(self, m, start: int, size: int) -> bool:
        """mm/memory_hotplug.c:mhp_range_allowed (6.1) with the default
        arch_get_mappable_range (__weak): within [0, PHYSMEM_END]."""
        return 0 <= start and start + size - 1 <= m.arch.physmem_end and size > 0

    def arch_get_memory_phys_device(self, m, start_pfn: int) -> int:
        """drivers/base/memory.c:arch_get_memory_phys_device (__weak, 6.1): 0."""
        return 0

    def memory_notifier(self, m, event: str, start_pfn: int, nr_pages: int) -> int:
        """The arch's callback on the memory notifier chain (register_memory_notifier at an
        initcall): 0 (none registered), or -errno (notifier_to_errno of NOTIFY_BAD)."""
        return 0

    # -- memmap_on_memory (profile-level: the Machine-less API asks the class) ----------------
    @staticmethod
    def arch_support_memmap_on_memory() -> bool:
        """The RFC v2's mm/memory_hotplug.c:arch_support_memmap_on_memory (__weak): false."""
        return False

    @staticmethod
    def arch_supports_memmap_on_memory(profile: ArchProfile, vmemmap_size: int) -> bool:
        """mm/memory_hotplug.c:arch_supports_memmap_on_memory (__weak, 6.6.57 = 6.8.0 = 6.9.0):
        the memmap must fill whole PMDs."""
        return IS_ALIGNED(vmemmap_size, profile.PMD_SIZE)

    # -- what /proc shows --------------------------------------------------------------------
    def meminfo_extra(self, m) -> dict:
        """/proc/meminfo fields whose value is the arch's (VmallocTotal, Hugepagesize, ...), in kB;
        none by default (the x86 values)."""
        return {}

    def arch_report_meminfo(self, m) -> dict:
        """fs/proc/meminfo.c:arch_report_meminfo (__weak, 6.1): nothing by default."""
        return {}

    def arch_state(self) -> dict:
        """The arch's own mutable state, by name (each value has ``.state()``), for snapshots."""
        return {}

    # -- platform facts ----------------------------------------------------------------------
    @property
    def paging_description(self) -> str:
        """The report header's page-table wording."""
        return f"{self.profile.paging_levels}-level paging"

    def device_memory_base(self, m) -> int:
        """Where the board's hot-pluggable memory region starts."""
        raise NotImplementedError(f"{self.name}: no device-memory region")

    # -- the board's pc-dimm rules (QEMU 7.2) ---------------------------------------------------
    #: the board's limit on ``-m slots=`` (hw/i386/pc.c:pc_memory_init, hw/arm/virt.c: ACPI_MAX_RAM_SLOTS;
    #: hw/ppc/spapr.c: SPAPR_MAX_RAM_SLOTS); None: the board has no pc-dimm slots
    max_ram_slots: int | None = None
    #: the alignment QEMU asks of a pc-dimm's address and size: the RAM block's alignment,
    #: softmmu/physmem.c:ram_block_add sets mr->align = QEMU_VMALLOC_ALIGN (2 MiB on an x86-64
    #: or aarch64 Linux host with transparent huge pages)
    dimm_align: int = 2 << 20

    def device_memory_size(self, m) -> int:
        """The size of the board's device-memory region: maxmem − RAM, plus 1 GiB per slot
        (hw/i386/pc.c:pc_memory_init with enforce_aligned_dimm; hw/arm/virt.c:virt_memory_init);
        0 when maxmem does not exceed the RAM (no region)."""
        ram = sum(m.boot_memory.values())
        if m.maxmem <= ram:
            return 0
        return m.maxmem - ram + m.slots * GiB

    def memory_device_pre_plug(self, m, start: int, size: int, devices) -> None:
        """QEMU's refusals of a pc-dimm at ``start`` of ``size`` bytes, with QEMU's own wording
        (hw/mem/pc-dimm.c:pc_dimm_pre_plug → pc_dimm_get_free_slot, then
        hw/mem/memory-device.c:memory_device_pre_plug → memory_device_get_free_addr, 7.2):
        a free slot, room left under maxmem, the address and size aligned, the range inside the
        device-memory region (so never over boot RAM or a PCI hole), no other DIMM there.
        ``devices`` are the plugged DIMMs (``.ranges``). Raises HotplugError (device_add
        fails; the guest sees nothing)."""
        import errno
        from hotmem.errors import HotplugError
        used = [(s, n) for dev in devices for s, n in dev.ranges]
        if self.max_ram_slots is None:
            raise HotplugError(errno.EOPNOTSUPP, f"{self.board}: no pc-dimm slots (pc-dimm at "
                               f"{start:#x})")
        if not m.slots:
            raise HotplugError(errno.ENOSPC, f"no slots where allocated, please specify the "
                               f"'slots' option (pc-dimm at {start:#x})")
        if len(devices) >= m.slots:
            raise HotplugError(errno.ENOSPC, f"no free slots (slots={m.slots}; pc-dimm at "
                               f"{start:#x})")
        region = self.device_memory_size(m)
        if not region:
            raise HotplugError(errno.EINVAL, f"memory devices (e.g. for memory hotplug) are not "
                               f"enabled, please specify the maxmem option (maxmem {m.maxmem:#x};"
                               f" pc-dimm at {start:#x})")
        in_use = sum(n for _, n in used)
        room = m.maxmem - sum(m.boot_memory.values())
        if in_use + size > room:
            raise HotplugError(errno.ENOSPC, f"not enough space, currently {in_use:#x} in use of "
                               f"total space for memory devices {room:#x} (pc-dimm of {size:#x}"
                               f" at {start:#x})")
        if start % self.dimm_align:
            raise HotplugError(errno.EINVAL, f"address must be aligned to {self.dimm_align:#x} "
                               f"bytes (addr {start:#x})")
        if size % self.dimm_align:
            raise HotplugError(errno.EINVAL, f"backend memory size must be multiple of "
                               f"{self.dimm_align:#x} (size {size:#x})")
        base = self.device_memory_base(m)
        if start < base or start + size > base + region:
            raise HotplugError(errno.EINVAL, f"can't add memory device [{start:#x}:{size:#x}], "
                               f"usable range for memory devices [{base:#x}:{region:#x}]")
        for s, n in used:
            if s < start + size and start < s + n:
                raise HotplugError(errno.EEXIST, f"address range conflicts with memory device "
                                   f"at [{s:#x}:{n:#x}] (pc-dimm [{start:#x}:{size:#x}])")

    @staticmethod
    def boot_memory_for_block_size(block_size: int, boot_total: int) -> int:
        """The smallest boot RAM from ``boot_total`` up that makes the platform's
        memory_block_size_bytes() pick ``block_size``: ``boot_total`` where the block size does
        not follow the boot RAM (it is checked after boot)."""
        return boot_total

    def first_hotplug_address(self, m) -> int:
        """Where hotmem's plans put the first hot-added block: the device-memory base."""
        return self.device_memory_base(m)
