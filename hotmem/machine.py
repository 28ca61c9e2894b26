"""The Machine: a simulated kernel's memory state, booted the way a kernel engineer describes a box.

    m = Machine(arch="x86_64", kernel="6.1", boot_memory="1G",
                cmdline="memory_hotplug.memmap_on_memory=1", paging_levels=4, cpus=1)

The Machine is the state record (what the kernel keeps: memblock, mem_section, the buddy, nodes
and zones, page tables, resources, memory block devices), the boot sequence (``BOOT_STEPS``: the
kernel's init steps in start_kernel order, each a function of its mm/, drivers/ or init/ module)
and the public API. Hotplug then moves that state exactly as the kernel functions do
(hotmem/mm/memory_hotplug.py and friends). On x86_64's QEMU ``pc`` layout the early boot
allocations are modelled from their causes (hotmem/arch/x86_setup.py: equal to real 6.1 boots of
1-16 GiB, 1-4 CPUs, 1-3 nodes, 4- and 5-level paging); elsewhere, or with ``boot_reserved_pages=``
given, they are one reservation figure.

Errors: the public methods raise HotplugError; below them functions return 0 or -errno
(hotmem/errors.py).
"""
from __future__ import annotations

import errno
import functools

from hotmem import _backend, boundary as _boundary, fault_inject
from hotmem.accounting import Owners, Slab, pfn_to_nid
from hotmem.arch import arch_ops_for
from hotmem.cmdline import parse_args, parse_size
from hotmem.drivers import acpi_memhotplug as acpi
from hotmem.drivers.base.memory import MemorySubsys, memory_dev_init
from hotmem.errors import HotplugError, check
from hotmem.init import main as init_main
from hotmem.init.main import QEMU_PC_EXTRA_RESERVED_PAGES, QEMU_PC_LATE_FREED_PAGES
from hotmem.kconfig import get_config
from hotmem.kernel import get_policy
from hotmem.mm import memblock, page_alloc
from hotmem.mm import memory_hotplug as mh
from hotmem.mm.memory_hotplug import __add_memory as _add_memory
from hotmem.mm.mmzone import ZONE_NAMES, new_pgdat
from hotmem.mm.page_alloc import ZoneLists
from hotmem.mm.sparse import sparse_init
from hotmem.resource import ResourceTree

__all__ = ["Machine", "BOOT_STEPS", "parse_size", "QEMU_PC_EXTRA_RESERVED_PAGES",
           "QEMU_PC_LATE_FREED_PAGES"]


class _MachineAPI:
    """The public hotplug operations, mixed into Machine: the boundary where a negative errno
    becomes HotplugError."""

    # -- add / remove --------------------------------------------------------------------------
    def add_memory_checked(self, nid: int, start: int, size: int, mhp_flags: int, group=None,
                           name: str = "System RAM") -> None:
        """__add_memory: register_memory_resource + add_memory_resource, refusing bad input
        before anything changes, as the kernel's early checks do."""
        nid = _boundary.as_node(nid, "add_memory nid", self.arch)
        start = _boundary.as_size(start, "add_memory start")
        size = _boundary.as_size(size, "add_memory size")
        mhp_flags = _boundary.as_int(mhp_flags, "mhp_flags", 0, _boundary.INT_MAX)
        check(self, _add_memory(self, nid, start, size, mhp_flags, group, name))

    def add_memory(self, nid: int, start, size, mhp_flags: int = mh.MHP_NONE) -> None:
        """mm/memory_hotplug.c:add_memory (6.1): add [start, start + size) on node ``nid``."""
        self.add_memory_checked(nid, start, size, mhp_flags)

    def remove_memory(self, nid_or_start, start=None, size=None) -> None:
        """mm/memory_hotplug.c:remove_memory (6.1: remove_memory(start, size); the older
        (nid, start, size) form is accepted too)."""
        if size is None:
            start, size = nid_or_start, start
        else:
            _boundary.as_node(nid_or_start, "remove_memory nid", self.arch)
        start = _boundary.as_size(start, "remove_memory start")
        size = _boundary.as_size(size, "remove_memory size")
        if start + size > 1 << self.arch.max_physmem_bits:
            raise HotplugError(errno.EINVAL, f"remove_memory [{start:#x}, {start + size:#x}): "
                               f"beyond the {self.arch.max_physmem_bits}-bit physical address "
                               "space (no memory block there)")
        check(self, mh.remove_memory(self, start, size))

    def acpi_memory_hotplug(self, start, size, node: int = 0):
        """A pc-dimm arriving through ACPI: one _CRS range, node from _PXM. The board refuses
        what QEMU's device_add refuses (ArchOps.memory_device_pre_plug: slots, maxmem,
        alignment, the device-memory region, overlap) before the guest sees anything."""
        start, size = _boundary.as_size(start, "pc-dimm addr"), _boundary.as_size(size, "pc-dimm size")
        node = _boundary.as_node(node, "pc-dimm node", self.arch)
        if not size:
            raise HotplugError(errno.EINVAL, f"pc-dimm size {size}: a memory backend needs a size")
        self.arch_ops.memory_device_pre_plug(self, start, size, self.acpi_devices)
        dev = acpi.AcpiMemoryDevice(ranges=[(start, size)], node=node)
        check(self, acpi.acpi_memory_enable_device(self, dev))
        self.acpi_devices.append(dev)
        return dev

    def acpi_memory_eject(self, dev) -> None:
        """device_del of a pc-dimm: the ACPI eject path (offline all its blocks, then remove)."""
        if dev not in self.acpi_devices:
            raise HotplugError(errno.ENODEV, "no such ACPI memory device")
        check(self, acpi.acpi_memory_remove(self, dev))
        self.acpi_devices.remove(dev)

    def virtio_mem_device(self, addr=None, region_size="1G", block_size=None, node: int = 0,
                          requested_size=0):
        """A virtio-mem-pci device with its memory-backend-ram memdev, probed by the guest's
        virtio_mem driver (hotmem/drivers/virtio_mem.py): the device, whose
        ``set_requested_size(size)`` is QEMU's ``qom-set <dev> requested-size <size>``."""
        from hotmem.drivers.virtio_mem import virtio_mem_device
        return virtio_mem_device(self, addr=addr, region_size=region_size,
                                 block_size=block_size, node=node,
                                 requested_size=requested_size)

    @property
    def block_size_bytes(self) -> int:
        """memory_block_size_bytes() of this machine."""
        return self.memory_block_size_bytes

    def mhp_supports_memmap_on_memory(self, size) -> bool:
        """mm/memory_hotplug.c:mhp_supports_memmap_on_memory under this machine's arch and kernel."""
        return mh.mhp_supports_memmap_on_memory(self, _boundary.as_size(size, "size"))

    # -- fault injection -----------------------------------------------------------------------
    NOTIFIER_EVENTS = fault_inject.NOTIFIER_EVENTS

    def inject(self, kind: str, *, nth: int = 1, times: int = 1, order: int | None = None,
               node: int | None = None, event: str | None = None, error: int = -errno.ENOMEM,
               pfn: int | None = None) -> dict | None:
        """Fault injection, after the kernel's own facilities (hotmem/fault_inject.py).

        - ``"page_alloc"``: fail the ``nth`` (and the ``times`` − 1 following) matching page
          allocations of the hotplug paths, optionally only of one ``order`` or ``node``
          (fail_page_alloc);
        - ``"altmap"``: fail the ``nth`` allocation from a vmem_altmap;
        - ``"notifier"``: make the memory notifier chain return ``error`` (default -ENOMEM, as
          tools/testing/selftests/memory-hotplug does) at ``event`` (MEM_GOING_ONLINE or
          MEM_GOING_OFFLINE) until cleared (memory-notifier-error-inject);
        - ``"unmovable"``: take the free page ``pfn`` out of the buddy and keep it allocated,
          as a kernel allocation that cannot be migrated (offlining its block fails with EBUSY).
        Returns the injection record (its ``failed`` count says how often it fired)."""
        b = _boundary
        kind = b.as_str(kind, "injection kind")
        nth = b.as_int(nth, f"{kind} injection nth", 1, b.INT_MAX)
        times = b.as_int(times, f"{kind} injection times", 1, b.INT_MAX)
        order = b.as_optional_int(order, f"{kind} injection order", 0, self.max_order - 1)
        if node is not None:
            node = b.as_node(node, f"{kind} injection node", self.arch)
        if event is not None:
            b.as_str(event, f"{kind} injection event")
        # lib/notifier-error-inject.c:debugfs_errno_set (6.1): clamp_t(int, val, -MAX_ERRNO, 0)
        error = max(b.as_int(error, f"{kind} injection error"), -b.MAX_ERRNO)
        if pfn is not None:
            pfn = b.as_pfn(pfn, f"{kind} injection pfn", self.arch)
        return fault_inject.inject(self, kind, nth=nth, times=times, order=order, node=node,
                                   event=event, error=error, pfn=pfn)

    def clear_injections(self) -> None:
        fault_inject.clear(self)

    # -- views ---------------------------------------------------------------------------------
    @property
    def memory_blocks(self):
        return self.memory.blocks

    @property
    def sysfs(self):
        from hotmem.sysfs import SysFs
        return SysFs(self)

    @property
    def procfs(self):
        from hotmem.procfs import ProcFs
        return ProcFs(self)

    @classmethod
    def from_host(cls, root="/", **overrides):
        """The machine under ``root`` (/sys/firmware/memmap, nodes, /proc/cmdline): hotmem/host.py;
        ``m.host`` keeps the description and its notes."""
        from hotmem.host import from_host
        return from_host(root, **overrides)

    def export(self, root):
        """Write /sys and /proc as a sysroot tree under ``root`` (hotmem/export.py)."""
        from hotmem.export import export
        return export(self, root)

    def zone(self, nid: int, name: str):
        """Node ``nid``'s zone ``name`` ("DMA", "DMA32", "Normal", "Movable", ...)."""
        nid = _boundary.as_node(nid, "zone: node", self.arch)
        if nid not in self.pgdats:
            raise HotplugError(errno.EINVAL, f"zone: node {nid} is not possible on this machine "
                               f"(nodes {sorted(self.pgdats)})")
        if name not in ZONE_NAMES:
            raise HotplugError(errno.EINVAL, f"zone: {_boundary.show(name)} is not a zone "
                               f"(one of {', '.join(ZONE_NAMES)})")
        return self.pgdats[nid].node_zones[ZONE_NAMES.index(name)]

    def accounting(self) -> dict:
        """Where pages went: memmap by source and node, page tables by map and level, memblock
        boot reservations by name, the mem_section/usage slab objects, and (6.11) the
        /proc/vmstat memmap counters."""
        out = self.owners.summary(functools.partial(pfn_to_nid, self))
        out["boot"] = {k: v >> self.arch.page_shift
                       for k, v in self.memblock.reserved_by_name().items()}
        out["slab objects"] = dict(self.slab.objects)
        out["mem_section roots"] = self.ms.nr_roots_allocated()
        if self.policy.memmap_stats:
            out["memmap stats"] = {"nr_memmap_pages": self.nr_memmap_pages,
                                   "nr_memmap_boot_pages": self.nr_memmap_boot_pages}
        return out

    def snapshot(self, ms_state: dict | None = None) -> dict:
        """Everything the model keeps, for equality tests ("the Machine is unchanged");
        ``ms_state`` replaces ``self.ms.state()`` (hotmem.testing passes a cheaper digest)."""
        return {
            "ms": self.ms.state() if ms_state is None else ms_state, "alloc": self.allocator.state(), "pt": self.pgtables.state(),
            "pgdats": tuple(p.snapshot() for _, p in sorted(self.pgdats.items())),
            "blocks": tuple((i, b.state, b.nid, b.nr_vmemmap_pages,
                             None if b.zone is None else b.zone.idx,
                             None if b.altmap is None else b.altmap.as_tuple())
                            for i, b in sorted(self.memory.blocks.items())),
            "iomem": repr(self.resources.root), "owners": self.owners.snapshot(),
            "slab": self.slab.snapshot(), "totalram": self.totalram_pages, "max_pfn": self.max_pfn,
            "fw": tuple(self.firmware_map),
            "memmap stats": (self.nr_memmap_pages, self.nr_memmap_boot_pages),
            "virtio_mem": tuple(d.state() for d in self.virtio_mem_devices),
            "memory groups": tuple((i, g.nid, g.is_dynamic, g.present_kernel_pages,
                                    g.present_movable_pages)
                                   for i, g in sorted(self.memory_groups.items())),
            "online policy": (self.online_policy, self.auto_movable_ratio,
                              self.auto_movable_numa_aware),
        }

    # -- printk --------------------------------------------------------------------------------
    def warn(self, msg: str) -> None:
        self.warnings.append(msg)
        self.log_lines.append("WARNING: " + msg)

    def log(self, msg: str) -> None:
        self.log_lines.append(msg)


class Machine(_MachineAPI):
    """A simulated Linux machine's memory (see the module docstring)."""

    def __init__(self, arch: str = "x86_64", kernel: str = "6.1", boot_memory="1G",
                 cmdline: str = "", paging_levels: int = 4, cpus: int = 1,
                 cpu_flags=("pse", "hypervisor"), e820_ranges=None,
                 boot_reserved_pages: int | None = None, boot_late_freed_pages: int | None = None,
                 maxmem=None, slots: int = 8, page_size: str | None = None,
                 mmu: str | None = None, backend: str | None = None, standby_memory=None,
                 struct_page_storage: str | None = None, config=None):
        a = _boundary_args(arch=arch, kernel=kernel, boot_memory=boot_memory, cmdline=cmdline,
                           paging_levels=paging_levels, cpus=cpus, cpu_flags=cpu_flags,
                           e820_ranges=e820_ranges, boot_reserved_pages=boot_reserved_pages,
                           boot_late_freed_pages=boot_late_freed_pages, slots=slots,
                           page_size=page_size, mmu=mmu, backend=backend,
                           struct_page_storage=struct_page_storage)
        self.core = _backend.load(backend)
        #: "pattern" (struct pages held as shared patterns, copied on write) or "flat" (every
        #: section materialised); None: $HOTMEM_STRUCT_PAGE_STORAGE, else "pattern"
        self.struct_page_storage = struct_page_storage
        self.policy = get_policy(kernel)
        #: the kernel's build configuration (hotmem.kconfig.KernelConfig): a preset name
        #: ("debian", "defconfig"), a KernelConfig or a mapping; None: the version's default
        self.kconfig = get_config(config, self.policy, arch)
        #: the arch profile and its hooks (hotmem.arch.ops.ArchOps), which own the arch's state
        self.arch, self.arch_ops = arch_ops_for(arch, self.policy, paging_levels=paging_levels,
                                                page_size=page_size, mmu=mmu,
                                                boot_memory=a["boot_memory"],
                                                standby_memory=standby_memory)
        self.standby_memory = standby_memory     # s390x standby storage (hotmem/arch/s390x_init.py)
        self.max_order = self.arch.NR_PAGE_ORDERS      # 6.1's MAX_ORDER: the number of orders
        self.cpu_flags = frozenset(cpu_flags)
        self.log_lines: list[str] = []
        self.warnings: list[str] = []
        parse_args(self, cmdline)
        self.has_pse = "pse" in self.cpu_flags
        self.direct_gbpages = "pdpe1gb" in self.cpu_flags and not self.nogbpages
        self.boot_memory = a["boot_memory"]
        self.cpu_nodes = a["cpu_nodes"] if a["cpu_nodes"] is not None \
            else {min(self.boot_memory): a["cpus"]}
        self.nr_cpus = sum(self.cpu_nodes.values())
        if self.nr_cpus < 1:
            raise HotplugError(errno.EINVAL, f"cpus {cpus!r}: need at least one CPU")
        _boundary.machine_limits(self.arch, self.arch_ops, self.boot_memory, self.cpu_nodes,
                                 maxmem, a["slots"], e820_ranges)
        self.e820_ranges = e820_ranges
        # QEMU -m ...,slots=,maxmem= (default: 16 GiB, or no room above a larger boot RAM)
        total = sum(self.boot_memory.values())
        self.maxmem = _boundary.as_size(maxmem, "maxmem") if maxmem is not None \
            else max(16 << 30, total)
        self.slots = a["slots"]
        self.boot_reserved_pages = boot_reserved_pages       # None: calibrated default
        self.boot_late_freed_pages = boot_late_freed_pages
        self.late_freed = range(0)                           # the initrd pages freed late
        self.boot_by_cause = False                           # set by the arch's boot_layout
        self.boot_direct_map_holes: list = []                # pfn ranges boot maps without RAM
        self.owners = Owners()
        self.slab = Slab()
        self.firmware_map: list = []
        self.highest_present_section_nr = 0
        self.totalram_pages = 0
        # mm/vmstat.c (6.11): system-wide counters of the pages struct pages occupy
        self.nr_memmap_pages = 0
        self.nr_memmap_boot_pages = 0
        #: the globals and sysctls of mm/page_alloc.c (hotmem.mm.watermark), set at boot
        self.page_alloc = None
        self.notifier_errors: dict[str, int] = {}
        #: (altmap_start_pfn, altmap_nr_pages) of struct memory_notify while MEM_PREPARE_ONLINE
        #: or MEM_FINISH_OFFLINE is sent (6.9+), else None
        self.memory_notify_altmap = None
        self.acpi_devices: list = []
        #: drivers/base/memory.c: memory groups by id (xarray memory_groups, 5.15+)
        self.memory_groups: dict = {}
        #: the memory notifier chain's driver entries (register_memory_notifier), called after
        #: the arch's and memory-notifier-error-inject's: f(m, event, start_pfn, nr_pages)
        self.memory_notifiers: list = []
        #: mm/memory_hotplug.c:online_page_callback; None: generic_online_page
        self.online_page_callback = None
        #: virtio-mem devices (hotmem/drivers/virtio_mem.py), in probe order
        self.virtio_mem_devices: list = []
        self.injections: list[dict] = []
        self.errmsg: str | None = None       # why the last refused step refused (errors.fail)
        self._boot()

    # -- boot ----------------------------------------------------------------------------------
    def _boot(self) -> None:
        """start_kernel, as the ordered BOOT_STEPS."""
        for _name, step in BOOT_STEPS:
            step(self)

    def _init_core_state(self) -> None:
        """The state record's structures: mem_section, the buddy allocator, a pgdat per possible
        node with every zone on the boot pageset (zone_pcp_init), zonelists, memory block
        devices and iomem."""
        a = self.arch
        nodes = sorted(set(self.boot_memory) | set(self.cpu_nodes)
                       | {r.nid for r in self.memblock.memory})
        self.ms = self.core.MemSections(
            a.NR_SECTION_ROOTS, a.SECTIONS_PER_ROOT, a.PFN_SECTION_SHIFT, a.pageblock_order,
            a.page_flags.NODES_PGSHIFT, a.page_flags.ZONES_PGSHIFT, a.page_flags.ZONES_WIDTH,
            a.PFN_SUBSECTION_SHIFT, chunk_shift=self.max_order - 1,
            struct_page_storage=self.struct_page_storage)
        if getattr(self.ms, "subsection_map_words", 1) * 64 < a.SUBSECTIONS_PER_SECTION:
            raise HotplugError(errno.EOPNOTSUPP, f"{a.name}: {a.SUBSECTIONS_PER_SECTION} "
                               "subsections per section need the multi-word subsection_map: "
                               "this compiled core predates it (rebuild it, or use the python "
                               "backend)")
        self.allocator = self.core.PageAllocator(self.ms, self.max_order, a.pageblock_order,
                                                 self.nr_cpus)
        self.pgdats = {nid: new_pgdat(nid, self.allocator, a.page_flags.ZONES_WIDTH,
                                      a.page_flags.max_nr_zones) for nid in nodes}
        for pgdat in self.pgdats.values():
            for z in pgdat.node_zones:
                for cpu in range(self.nr_cpus):
                    self.allocator.set_pcp(z.zoneid, cpu, 0, 1)
        self.zonelists = ZoneLists(self)
        self.memory = MemorySubsys(self)
        self.resources = ResourceTree(a.physmem_end)


def _boundary_args(**kw) -> dict:
    """The Machine constructor's arguments typed and bounded before anything is built
    (hotmem/boundary.py): boot_memory and cpus as {node: value}."""
    return _boundary.machine_arguments(**kw)


#: start_kernel's order (init/main.c, 6.1): setup_arch (memblock, paging_init), mm_init
#: (sparse_init, free_area_init, memblock_free_all), the initcalls (init_per_zone_wmark_min,
#: memory_dev_init, the arch's resources) and kernel_init's late frees. Each step takes the
#: Machine.
BOOT_STEPS = (
    ("memblock_setup", memblock.memblock_setup),
    ("core state", Machine._init_core_state),
    ("paging_init", init_main.paging_init),
    ("sparse_init", sparse_init),
    ("free_area_init", page_alloc.free_area_init),
    ("early reservations", init_main.reserve_boot_allocations),
    ("memblock_free_all", memblock.memblock_free_all),
    ("alternative_instructions", init_main.alternative_instructions),
    ("init_per_zone_wmark_min", init_main.init_per_zone_wmark_min),
    ("free_initmem", init_main.free_initmem),
    ("first allocations", init_main.warm_pcp_lists),
    ("memory_dev_init", memory_dev_init),
    ("arch boot resources", init_main.arch_boot_resources),
)
