"""The Machine: a simulated kernel's memory state, booted the way a kernel engineer describes a box.

    m = Machine(arch="x86_64", kernel="6.1", boot_memory="1G",
                cmdline="memory_hotplug.memmap_on_memory=1", paging_levels=4, cpus=1)

Boot builds what Linux has when userspace starts (memblock → sparse_init → free_area_init →
memblock_free_all → watermarks → memory block devices); hotplug then moves that state exactly as
the kernel functions do (hotmem/mm/memory_hotplug.py and friends). What boot cannot know —
firmware and early kernel allocations — is a reservation figure, calibrated by default on the
QEMU ``pc`` reference machine; every figure after boot is exact.
"""
from __future__ import annotations

import errno
import re

from hotmem import _backend
from hotmem.accounting import Owners, Slab
from hotmem.arch import get_arch
from hotmem.arch import x86_init_64
from hotmem.drivers.base.memory import MemorySubsys
from hotmem.errors import HotplugError
from hotmem.kernel import get_policy
from hotmem.mm import memory_hotplug as mh
from hotmem.mm import watermark as wm
from hotmem.mm.memblock import Memblock
from hotmem.mm.mmzone import (MAX_NR_ZONES, ZONE_DMA, ZONE_MOVABLE, ZONE_NORMAL,
                              new_pgdat)
from hotmem.mm.page_alloc import GFP_KERNEL, ZoneLists, alloc_pages_node, boot_watermarks
from hotmem.mm.vmstat import memmap_boot_pages_add, memmap_pages_of
from hotmem.resource import IORESOURCE_SYSTEM_RAM, ResourceTree

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
_UNITS = {"": 1, "K": KiB, "M": MiB, "G": GiB, "T": TiB}

#: Boot reservations the model cannot derive (firmware tables, percpu areas, early slab, ...),
#: in pages on node 0, calibrated so that the default QEMU pc machine (1 GiB, Debian 6.1.176)
#: shows the real kernel's DMA32 managed count (225523).
QEMU_PC_EXTRA_RESERVED_PAGES = 15078
#: Pages the reference kernel frees after its initcalls (initrd, init sections, the decrypted
#: and alignment gaps: 1012K + 2036K + 2820K + 2040K + 1124K in its boot log), i.e. after the boot
#: watermarks were computed and never recomputed for: they explain the baseline's watermarks.
QEMU_PC_LATE_FREED_PAGES = (1012 + 2036 + 2820 + 2040 + 1124) // 4


def parse_size(v) -> int:
    """memparse: "128M", "1G", 0x8000000 → bytes."""
    if isinstance(v, int):
        return v
    mt = re.fullmatch(r"\s*(0[xX][0-9a-fA-F]+|\d+)\s*([KMGT]?)i?[bB]?\s*", str(v))
    if not mt:
        raise HotplugError(errno.EINVAL, f"size {v!r}: expected bytes or a number with K/M/G/T")
    return int(mt.group(1), 0) * _UNITS[mt.group(2).upper()]



def _arch_and_ops(arch: str, paging_levels: int, page_size, mmu, *, boot_memory=None,
                  standby_memory=None):
    """The architecture profile and the module of its hotplug hooks (hotmem/arch/*_init*.py)."""
    from hotmem.arch import arm64_init
    if standby_memory is not None and arch != "s390x":
        raise HotplugError(errno.EINVAL, f"standby_memory: standby storage is an s390x feature, "
                           f"not {arch}'s")
    if arch == "s390x":
        from hotmem.arch import s390x_init
        if page_size not in (None, "4K"):
            raise HotplugError(errno.EINVAL, f"s390x has 4K pages, not {page_size!r}")
        return s390x_init.profile_for(boot_memory, standby_memory), s390x_init
    if arch == "x86_64":
        if page_size not in (None, "4K"):
            raise HotplugError(errno.EINVAL, f"x86_64 has 4K pages, not {page_size!r}")
        return get_arch("x86_64", paging_levels=paging_levels), x86_init_64
    if arch == "arm64":
        # 4K, 16K and 64K pages (64K: 512 MiB sections of 256 subsections, a 4-word
        # subsection_map)
        return get_arch("arm64", page_size=page_size or "4K"), arm64_init
    if arch == "powerpc64":
        from hotmem.arch import powerpc64_init
        return powerpc64_init.machine_profile(mmu, page_size), powerpc64_init
    profile = get_arch(arch)
    raise HotplugError(errno.EOPNOTSUPP, f"the hotplug lifecycle of {profile.name} is not modelled "
                       "yet; hotmem.arch.memmap_on_memory_supported() answers its memmap_on_memory "
                       "questions")


class _MachineAPI:
    """The public hotplug operations, mixed into Machine."""

    # -- add / remove --------------------------------------------------------------------------
    def add_memory_checked(self, nid: int, start: int, size: int, mhp_flags: int, group=None,
                           name: str = "System RAM") -> None:
        """__add_memory: register_memory_resource + add_memory_resource, refusing bad input
        before anything changes, as the kernel's early checks do."""
        a = self.arch
        start, size = parse_size(start), parse_size(size)
        mh.check_hotplug_memory_range(self, start, size)
        if not mh.mhp_range_allowed(self, start, size):
            raise HotplugError(errno.E2BIG, f"range [{start:#x}, {start + size:#x}) is beyond the "
                               f"physical limit {a.physmem_end:#x}")
        if not (mhp_flags & mh.MHP_NID_IS_MGID) and nid not in self.pgdats:
            raise HotplugError(errno.EINVAL, f"node {nid} is not possible")
        if (mhp_flags & mh.MHP_MEMMAP_ON_MEMORY and not mh.mhp_supports_memmap_on_memory(self, size)
                and not self.policy.mhp_memmap_on_memory_fallback):
            raise HotplugError(errno.EINVAL, f"MHP_MEMMAP_ON_MEMORY not supported for {size:#x} "
                               f"bytes at {start:#x} (block size {self.memory_block_size_bytes:#x},"
                               f" memmap_on_memory={'Y' if self.memmap_on_memory else 'N'})")
        for mem_id in range(start // self.memory_block_size_bytes,
                            (start + size) // self.memory_block_size_bytes):
            if mem_id in self.memory.blocks:
                raise HotplugError(errno.EEXIST, f"memory block {mem_id} already exists")
        from hotmem.mm.sparse import check_section_free
        res = self.resources.request_mem_region(start, size, name, IORESOURCE_SYSTEM_RAM)
        try:
            check_section_free(self, start >> a.page_shift, size >> a.page_shift)
            mh.add_memory_resource(self, nid, res, mhp_flags, group)
        except HotplugError:
            self.resources.release_mem_region_adjustable(start, size)
            raise

    def add_memory(self, nid: int, start, size, mhp_flags: int = mh.MHP_NONE) -> None:
        """mm/memory_hotplug.c:add_memory (6.1): add [start, start + size) on node ``nid``."""
        self.add_memory_checked(nid, start, size, mhp_flags)

    def remove_memory(self, nid_or_start, start=None, size=None) -> None:
        """mm/memory_hotplug.c:remove_memory (6.1: remove_memory(start, size); the older
        (nid, start, size) form is accepted too)."""
        if size is None:
            start, size = nid_or_start, start
        start, size = parse_size(start), parse_size(size)
        mh.check_hotplug_memory_range(self, start, size)
        a = self.arch
        for pfn in range(start >> a.page_shift, (start + size) >> a.page_shift, a.PAGES_PER_SECTION):
            if not self.ms.section_mem_map(a.pfn_to_section_nr(pfn)) & self.core.SECTION_MARKED_PRESENT:
                # the kernel would WARN in __remove_section and still return 0
                raise HotplugError(errno.EINVAL, f"remove_memory: no memory was added at "
                                   f"{pfn << a.page_shift:#x} (section {a.pfn_to_section_nr(pfn)})")
        mh.try_remove_memory(self, start, size)

    def acpi_memory_hotplug(self, start, size, node: int = 0):
        """A pc-dimm arriving through ACPI: one _CRS range, node from _PXM."""
        from hotmem.drivers.acpi_memhotplug import AcpiMemoryDevice, acpi_memory_enable_device
        start, size = parse_size(start), parse_size(size)
        for other in self.acpi_devices:          # QEMU refuses a DIMM over another one
            for s, n in other.ranges:
                if s < start + size and start < s + n:
                    raise HotplugError(errno.EEXIST, f"pc-dimm [{start:#x}, {start + size:#x}) "
                                       f"overlaps the DIMM at [{s:#x}, {s + n:#x})")
        dev = AcpiMemoryDevice(ranges=[(start, size)], node=node)
        acpi_memory_enable_device(self, dev)
        self.acpi_devices.append(dev)
        return dev

    def acpi_memory_eject(self, dev) -> None:
        """device_del of a pc-dimm: the ACPI eject path (offline all its blocks, then remove)."""
        from hotmem.drivers.acpi_memhotplug import acpi_memory_remove
        if dev not in self.acpi_devices:
            raise HotplugError(errno.ENODEV, "no such ACPI memory device")
        acpi_memory_remove(self, dev)
        self.acpi_devices.remove(dev)

    @property
    def block_size_bytes(self) -> int:
        """memory_block_size_bytes() of this machine."""
        return self.memory_block_size_bytes

    def mhp_supports_memmap_on_memory(self, size) -> bool:
        """mm/memory_hotplug.c:mhp_supports_memmap_on_memory under this machine's arch and kernel."""
        return mh.mhp_supports_memmap_on_memory(self, parse_size(size))

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

    def zone(self, nid: int, name: str):
        from hotmem.mm.mmzone import ZONE_NAMES
        return self.pgdats[nid].node_zones[ZONE_NAMES.index(name)]

    def accounting(self) -> dict:
        """Where pages went: memmap by source and node, page tables by map and level, memblock
        boot reservations by name, the mem_section/usage slab objects, and (6.11) the
        /proc/vmstat memmap counters."""
        out = self.owners.summary(lambda pfn: self._pfn_to_nid(pfn))
        out["boot"] = {k: v >> self.arch.page_shift
                       for k, v in self.memblock.reserved_by_name().items()}
        out["slab objects"] = dict(self.slab.objects)
        out["mem_section roots"] = self.ms.nr_roots_allocated()
        if self.policy.memmap_stats:
            out["memmap stats"] = {"nr_memmap_pages": self.nr_memmap_pages,
                                   "nr_memmap_boot_pages": self.nr_memmap_boot_pages}
        return out

    def _pfn_to_nid(self, pfn: int) -> int:
        """The node a physical page belongs to: its memory block's, else its struct page's."""
        mem = self.memory.blocks.get(self.memory.pfn_to_block_id(pfn))
        if mem is not None and mem.nid >= 0:
            return mem.nid
        if self.ms.pfn_valid(pfn):
            return self.ms.page_to_nid(pfn)
        return -1

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
        }


class Machine(_MachineAPI):
    """A simulated Linux machine's memory (see the module docstring)."""

    def __init__(self, arch: str = "x86_64", kernel: str = "6.1", boot_memory="1G",
                 cmdline: str = "", paging_levels: int = 4, cpus: int = 1,
                 cpu_flags=("pse", "hypervisor"), e820_ranges=None,
                 boot_reserved_pages: int | None = None, boot_late_freed_pages: int | None = None,
                 maxmem="16G", slots: int = 8, page_size: str | None = None,
                 mmu: str | None = None, backend: str | None = None, standby_memory=None):
        self.core = _backend.load(backend)
        self.policy = get_policy(kernel)
        self.arch, self.arch_ops = _arch_and_ops(arch, paging_levels, page_size, mmu,
                                                 boot_memory=boot_memory,
                                                 standby_memory=standby_memory)
        self.standby_memory = standby_memory     # s390x standby storage (hotmem/arch/s390x_init.py)
        if self.arch.name == "s390x" and self.policy.name not in ("v2", "5.13", "6.1", "6.6", "6.8"):
            # 6.9 (drivers/s390/char/sclp_cmd.c): standby memory is added with
            # MHP_MEMMAP_ON_MEMORY | MHP_OFFLINE_INACCESSIBLE on EDAT1 machines and the sclp
            # notifier moves to MEM_PREPARE_ONLINE / MEM_FINISH_OFFLINE: not modelled yet
            raise HotplugError(errno.EOPNOTSUPP, f"s390x with Linux {self.policy.name}: the 6.9+ "
                               "memmap-on-memory standby path is not modelled (kernels up to 6.8 "
                               "are)")
        self.max_order = self.arch.NR_PAGE_ORDERS      # 6.1's MAX_ORDER: the number of orders
        self.cpu_flags = frozenset(cpu_flags)
        self.log_lines: list[str] = []
        self.warnings: list[str] = []
        self._parse_cmdline(cmdline)
        self.has_pse = "pse" in self.cpu_flags
        self.direct_gbpages = "pdpe1gb" in self.cpu_flags and not self.nogbpages
        if isinstance(boot_memory, dict):
            self.boot_memory = {int(n): parse_size(s) for n, s in boot_memory.items()}
        else:
            self.boot_memory = {0: parse_size(boot_memory)}
        if isinstance(cpus, dict):
            self.cpu_nodes = {int(n): int(c) for n, c in cpus.items()}
        else:
            self.cpu_nodes = {min(self.boot_memory): int(cpus)}
        self.nr_cpus = sum(self.cpu_nodes.values())
        if self.nr_cpus < 1:
            raise HotplugError(errno.EINVAL, f"cpus {cpus!r}: need at least one CPU")
        self.e820_ranges = e820_ranges
        self.maxmem, self.slots = parse_size(maxmem), int(slots)   # QEMU -m ...,slots=,maxmem=
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
        self.injections: list[dict] = []
        self._boot(boot_reserved_pages, boot_late_freed_pages)

    # -- command line ------------------------------------------------------------------------
    def _parse_cmdline(self, cmdline: str) -> None:
        self.cmdline = cmdline
        self.cmdline_params = {w.partition("=")[0]: w.partition("=")[2] for w in cmdline.split()}
        self.memmap_on_memory = False
        self.memmap_on_memory_force = False
        self.unknown_params: list[str] = []
        self.movable_node_enabled = False
        self.mhp_default_online_type = mh.MMOP_OFFLINE
        self.nogbpages = False
        self.online_policy = "contig-zones"
        for word in cmdline.split():
            key, _, val = word.partition("=")
            if key == "memory_hotplug.memmap_on_memory":
                kind = self.policy.memmap_on_memory_param
                v = val.strip().lower()
                if kind == "none":
                    self.unknown_params.append(word)   # the v2 RFC has no such parameter
                elif v in ("1", "y", "yes", "on", "true", ""):
                    self.memmap_on_memory = True
                elif v in ("0", "n", "no", "off", "false"):
                    self.memmap_on_memory = False
                elif v == "force" and kind == "tristate":
                    self.memmap_on_memory = self.memmap_on_memory_force = True
                else:
                    raise HotplugError(errno.EINVAL, f"memory_hotplug.memmap_on_memory={val!r}: "
                                       f"expected {'Y, N or force' if kind == 'tristate' else 'a boolean'}"
                                       f" in Linux {self.policy.name}")
            elif key == "movable_node":
                self.movable_node_enabled = True
            elif key == "memhp_default_state":
                if val not in mh.ONLINE_TYPE_NAMES:
                    raise HotplugError(errno.EINVAL, f"memhp_default_state={val!r}: expected "
                                       "online, online_kernel, online_movable or offline")
                self.mhp_default_online_type = mh.ONLINE_TYPE_NAMES[val]
            elif key == "memory_hotplug.online_policy":
                if val != "contig-zones":
                    raise HotplugError(errno.EINVAL, f"memory_hotplug.online_policy={val!r}: only "
                                       "contig-zones is modelled")
            elif key == "nogbpages":
                self.nogbpages = True

    # -- boot ----------------------------------------------------------------------------------
    def _boot(self, boot_reserved_pages, boot_late_freed_pages) -> None:
        a, ops = self.arch, self.arch_ops
        ram, reserved, calibrated = ops.boot_layout(self)
        nodes = sorted(set(self.boot_memory) | set(self.cpu_nodes) | {nid for _, _, nid in ram})
        mb = self.memblock = Memblock()
        for start, end, nid in ram:
            mb.add_node(start, end - start, nid)
        if not mb.memory:
            raise HotplugError(errno.EINVAL, "boot memory layout has no RAM")
        for start, size, name in reserved:
            mb.reserve(start, size, name)
        ram_end = max(r.end for r in mb.memory)
        self.max_pfn = ram_end >> a.page_shift
        self.memory_block_size_bytes = ops.memory_block_size_bytes(self)

        self.ms = self.core.MemSections(
            a.NR_SECTION_ROOTS, a.SECTIONS_PER_ROOT, a.PFN_SECTION_SHIFT, a.pageblock_order,
            a.page_flags.NODES_PGSHIFT, a.page_flags.ZONES_PGSHIFT, a.page_flags.ZONES_WIDTH,
            a.PFN_SUBSECTION_SHIFT)
        if getattr(self.ms, "subsection_map_words", 1) * 64 < a.SUBSECTIONS_PER_SECTION:
            raise HotplugError(errno.EOPNOTSUPP, f"{a.name}: {a.SUBSECTIONS_PER_SECTION} "
                               "subsections per section need the multi-word subsection_map: "
                               "this compiled core predates it (rebuild it, or use the python "
                               "backend)")
        self.allocator = self.core.PageAllocator(self.ms, self.max_order, a.pageblock_order,
                                                 self.nr_cpus)
        self.pgdats = {nid: new_pgdat(nid, self.allocator, a.page_flags.ZONES_WIDTH,
                                      a.page_flags.max_nr_zones) for nid in nodes}
        for pgdat in self.pgdats.values():          # zone_pcp_init: every zone on the boot pageset
            for z in pgdat.node_zones:
                for cpu in range(self.nr_cpus):
                    self.allocator.set_pcp(z.zoneid, cpu, 0, 1)
        self.zonelists = ZoneLists(self)
        self.memory = MemorySubsys(self)
        self.resources = ResourceTree(a.physmem_end)

        # kernel page tables: the PGD, the boot direct map and vmemmap, all from memblock
        pgd = self._memblock_page(0, "pgtable PGD")
        self.pgtables = ops.new_page_tables(self, pgd)
        boot_table = lambda level, node: self._memblock_page(node, f"pgtable {level}")
        for s, e, _ in list(mb.mem_pfn_ranges(a.page_shift)):
            ops.boot_map_memory(self, s << a.page_shift, e << a.page_shift, boot_table)
        self._sparse_init()
        self._free_area_init()
        if boot_reserved_pages is None:
            boot_reserved_pages = QEMU_PC_EXTRA_RESERVED_PAGES if calibrated else 0
        if boot_late_freed_pages is None:
            boot_late_freed_pages = QEMU_PC_LATE_FREED_PAGES if calibrated else 0
        nid0 = min(n for n in self.boot_memory if self.boot_memory[n])
        late = []
        for what, n in (("boot allocations", boot_reserved_pages),
                        ("initrd and init sections", boot_late_freed_pages)):
            if n:
                base = mb.alloc_top_down(n << a.page_shift, a.PAGE_SIZE, nid0, what) >> a.page_shift
                self.owners.note_memblock(base, n, nid0, what)
                if what.startswith("initrd"):
                    late = range(base, base + n)
        self._memblock_free_all()
        for pgdat in self.pgdats.values():
            if any(z.present_pages for z in pgdat.node_zones):
                pgdat.online = True
                pgdat.has_memory = True
                pgdat.has_normal_memory = any(z.present_pages for z in pgdat.node_zones[:ZONE_NORMAL + 1])
                pgdat.kswapd = pgdat.kcompactd = True
            if self.cpu_nodes.get(pgdat.node_id):
                pgdat.online = True
                pgdat.cpus = tuple(range(self.nr_cpus))  # (single CPU node in practice)
        self.page_alloc = wm.machine_page_alloc_globals(self)
        boot_watermarks(self)
        # free_initrd_mem / free_initmem: after the initcalls, through the per-CPU lists
        for pfn in late:
            self.free_reserved_page(pfn)
        if late:
            self.memblock.reserved = [r for r in self.memblock.reserved
                                      if r.name != "initrd and init sections"]
            self.owners.memblock.pop(late.start, None)
        self._warm_pcp_lists()
        self._memory_dev_init()
        ops.boot_resources(self)

    def _memblock_page(self, nid: int, what: str) -> int:
        a = self.arch
        base = self.memblock.alloc_top_down(a.PAGE_SIZE, a.PAGE_SIZE, nid, what)
        self.owners.note_memblock(base >> a.page_shift, 1, nid, what)
        return base >> a.page_shift

    def _sparse_init(self) -> None:
        """mm/sparse.c:sparse_init (6.1): memblocks_present, subsection_map_init, and per node one
        memblock buffer of PMD-aligned memmaps mapped by vmemmap_populate."""
        a, ms, core = self.arch, self.ms, self.core
        present: dict[int, int] = {}
        for s, e, nid in self.memblock.mem_pfn_ranges(a.page_shift):
            for nr in range(a.pfn_to_section_nr(s), a.pfn_to_section_nr(e - 1) + 1):
                present.setdefault(nr, nid)
        for nr, nid in sorted(present.items()):
            ms.sparse_index_init(nr)
            ms.alloc_usage(nr)
            ms.set_section_flags(nr, core.SECTION_MARKED_PRESENT | core.SECTION_IS_ONLINE)
            self.highest_present_section_nr = max(self.highest_present_section_nr, nr)
        for s, e, nid in self.memblock.mem_pfn_ranges(a.page_shift):
            pfn = s
            while pfn < e:
                nr = a.pfn_to_section_nr(pfn)
                n = min(e - pfn, a.PAGES_PER_SECTION - (pfn & (a.PAGES_PER_SECTION - 1)))
                from hotmem.mm.sparse import subsection_mask
                ms.set_subsection_map(nr, ms.subsection_map(nr) | subsection_mask(self, pfn, n))
                pfn += n
        by_node: dict[int, list[int]] = {}
        for nr, nid in sorted(present.items()):
            by_node.setdefault(nid, []).append(nr)
        # mm/sparse.c:section_map_size (6.1, SPARSEMEM_VMEMMAP): a section's memmap rounded up to
        # PMD_SIZE -- the memmap itself on x86_64 and arm64 4K (2 MiB), one whole PMD with 16K
        # (32 MiB for 512 KiB) and 64K pages (512 MiB for 512 KiB)
        pmd = 1 << a.pmd_shift
        section_map_size = -(-a.memmap_size(1 << a.section_size_bits) // pmd) * pmd
        for nid, sections in by_node.items():
            # sparse_buffer_init: memmap_alloc(map_count * section_map_size(), aligned to it,
            # exact_nid); NULL when the node has no such free range (arm64 64K: as big as the
            # node's RAM, so always)
            size = len(sections) * section_map_size
            try:
                buf = self.memblock.alloc_top_down(size, section_map_size, nid, "memmap",
                                                   exact_nid=True)
            except HotplugError:
                buf = None
            sbuf = [buf, None if buf is None else buf + size]   # sparsemap_buf, sparsemap_buf_end
            used = []

            def take(nr_pages, node, sbuf=sbuf, used=used):
                """vmemmap_alloc_block_buf at boot: sparse_buffer_alloc (rounded up to the size,
                the gap freed), else vmemmap_alloc_block's memblock_alloc_try_nid_raw."""
                nbytes = nr_pages << a.page_shift
                if sbuf[0] is not None:
                    ptr = -(-sbuf[0] // nbytes) * nbytes
                    if ptr + nbytes <= sbuf[1]:
                        if ptr > sbuf[0]:
                            self.memblock.unreserve(sbuf[0], ptr - sbuf[0])
                        sbuf[0] = ptr + nbytes
                        if used and used[-1][1] == ptr:
                            used[-1][1] = ptr + nbytes
                        else:
                            used.append([ptr, ptr + nbytes])
                        return ptr >> a.page_shift
                p = self.memblock.alloc_top_down(nbytes, nbytes, node, "memmap")
                self.owners.note_memblock(p >> a.page_shift, nr_pages, node, "memmap (boot)")
                return p >> a.page_shift
            table = lambda level, node: self._memblock_page(node, f"vmemmap {level} table (boot)")
            for nr in sections:
                ms.alloc_memmap(nr)
                pfn = a.section_nr_to_pfn(nr)
                rc = self.arch_ops.boot_vmemmap_populate(
                    self, a.pfn_to_page(pfn), a.pfn_to_page(pfn + a.PAGES_PER_SECTION), nid, take,
                    table)
                if rc:
                    raise HotplugError(-rc, f"boot vmemmap population of section {nr} failed")
                # 6.11 __populate_section_memmap while SYSTEM_BOOTING: a whole section's memmap
                memmap_boot_pages_add(self, memmap_pages_of(self, a.PAGES_PER_SECTION))
                ms.set_section_flags(nr, core.SECTION_HAS_MEM_MAP | core.SECTION_IS_EARLY)
            # sparse_buffer_fini: what the sections did not use goes back to memblock
            if sbuf[0] is not None and sbuf[0] < sbuf[1]:
                self.memblock.unreserve(sbuf[0], sbuf[1] - sbuf[0])
            for s, e in used:
                self.owners.note_memblock(s >> a.page_shift, (e - s) >> a.page_shift, nid,
                                          "memmap (boot)")

    def _free_area_init(self) -> None:
        """mm/page_alloc.c:free_area_init + memmap_init (6.1): zone spans from the memblock ranges,
        every struct page of a present section initialised (holes reserved)."""
        a = self.arch
        dma, dma32 = self.arch_ops.zone_dma_limits(self)
        max_zone = [dma, dma32, self.max_pfn, self.max_pfn, 0]
        low = 0
        zone_ranges = []
        for idx in range(MAX_NR_ZONES):
            if idx in (ZONE_MOVABLE, 4):
                zone_ranges.append((0, 0))
                continue
            high = max(low, min(max_zone[idx], self.max_pfn))
            zone_ranges.append((low, high))
            low = high
        ranges = list(self.memblock.mem_pfn_ranges(a.page_shift))
        for nid, pgdat in self.pgdats.items():
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
        # memmap_init: RAM ranges per zone, then the holes of each present section
        done = set()
        for s, e, nid in ranges:
            for z in self.pgdats[nid].node_zones:
                zs, ze = max(s, z.zone_start_pfn), min(e, z.zone_end_pfn)
                if zs < ze:
                    self.ms.memmap_init_range(zs, ze - zs, nid, z.idx, self.core.MIGRATE_MOVABLE)
                    done.add((zs, ze))
        for nr in self.ms.present_sections():
            base = a.section_nr_to_pfn(nr)
            covered = sorted((max(s, base), min(e, base + a.PAGES_PER_SECTION)) for s, e in done
                             if s < base + a.PAGES_PER_SECTION and e > base)
            cur = base
            for s, e in covered + [(base + a.PAGES_PER_SECTION, base + a.PAGES_PER_SECTION)]:
                if cur < s:
                    nid, zidx = self._hole_zone(cur)
                    self._init_unavailable_range(cur, s, nid, zidx)
                cur = max(cur, e)

    def _hole_zone(self, pfn: int):
        for nid, pgdat in self.pgdats.items():
            for z in reversed(pgdat.node_zones):
                if z.spanned_pages and z.zone_start_pfn <= pfn:
                    return nid, z.idx
        return min(self.pgdats), ZONE_DMA

    def _init_unavailable_range(self, start: int, end: int, nid: int, zidx: int) -> None:
        """mm/page_alloc.c:init_unavailable_range: holes get reserved struct pages, no
        migratetype."""
        saved = {}
        pb = self.arch.pageblock_nr_pages
        for p in range((start + pb - 1) // pb * pb, end, pb):
            saved[p] = self.ms.get_pageblock_migratetype(p)
        self.ms.memmap_init_range(start, end - start, nid, zidx, self.core.MIGRATE_MOVABLE)
        for p, mt in saved.items():
            self.ms.set_pageblock_migratetype(p, mt)

    def _memblock_free_all(self) -> None:
        """mm/memblock.c:memblock_free_all → __free_pages_memory (6.1): every free range to the
        buddy in naturally aligned chunks of at most MAX_ORDER − 1."""
        a = self.arch
        max_chunk = self.max_order - 1
        for b, e, _ in self.memblock.free_ranges():
            start, end = (b + a.PAGE_SIZE - 1) >> a.page_shift, e >> a.page_shift
            while start < end:
                order = min(max_chunk, (start & -start).bit_length() - 1) if start else max_chunk
                while start + (1 << order) > end:
                    order -= 1
                self.allocator.free_pages_core(start, order)
                self.totalram_pages += 1 << order
                start += 1 << order

    def _warm_pcp_lists(self) -> None:
        """By the time userspace runs, the kernel has made order-0 unmovable and movable
        allocations on every node with memory: their per-CPU lists hold a refill batch. One
        allocation of each kind per node and CPU, freed again, leaves the model in that state.
        (Which pages sit there is history; the model refills lowest pfn first.)"""
        from hotmem.mm.page_alloc import GFP_HIGHUSER_MOVABLE
        for nid, pgdat in self.pgdats.items():
            if not pgdat.has_memory:
                continue
            for cpu in range(self.nr_cpus):
                for gfp in (GFP_KERNEL, GFP_HIGHUSER_MOVABLE):
                    pfn, _ = alloc_pages_node(self, nid, gfp, 0, cpu)
                    if pfn >= 0:
                        self.allocator.free_pages(pfn, 0, cpu)

    def _memory_dev_init(self) -> None:
        """drivers/base/memory.c:memory_dev_init (6.1): a device per block with a present section,
        online, its node and its zone if it lies in exactly one (else NULL: valid_zones "none")."""
        a = self.arch
        spb = self.memory.sections_per_block
        ids = sorted({nr // spb for nr in self.ms.present_sections()})
        for bid in ids:
            start = a.section_nr_to_pfn(bid * spb)
            end = start + (self.memory_block_size_bytes >> a.page_shift)
            # node_dev_init → register_mem_block_under_node_early → memory_block_add_nid
            # (MEMINIT_EARLY), node by node: the first node sets mem->zone from its zones
            # (early_node_zone_for_memory_block: its one populated zone intersecting the block,
            # else NULL), a second node sets it to NULL; mem->nid is the last node
            nids = self._early_nids(start, end)
            zones = [z for z in self.pgdats[nids[0]].node_zones
                     if z.present_pages and z.zone_intersects(start, end - start)]
            zone = zones[0] if len(zones) == 1 and len(nids) == 1 else None
            self.memory.add_boot_block(bid, nids[-1], zone)

    def _early_nids(self, start: int, end: int) -> list:
        """The nodes with boot RAM in pfns [start, end), in node order (at least one)."""
        nids = sorted({nid for s, e, nid in self.memblock.mem_pfn_ranges(self.arch.page_shift)
                       if s < end and e > start})
        return nids or [min(self.pgdats)]

    # -- allocation helpers used by the mm code ------------------------------------------------
    def numa_node_id(self) -> int:
        """The node of the CPU doing the work (CPU 0's)."""
        return min(n for n, c in self.cpu_nodes.items() if c)

    def _should_fail(self, kind: str, **attrs) -> bool:
        """fail_page_alloc-style injection: count matching attempts, fail the chosen ones."""
        for inj in self.injections:
            if inj["kind"] != kind or any(inj.get(k) is not None and inj[k] != v
                                          for k, v in attrs.items()):
                continue
            inj["seen"] += 1
            if inj["seen"] >= inj["nth"] and inj["times"] > 0:
                inj["times"] -= 1
                inj["failed"] += 1
                return True
        return False

    def kernel_alloc_pages(self, nid: int, gfp, order: int, what: str):
        """alloc_pages_node for a kernel allocation, recorded in the owner ledger."""
        if nid not in self.pgdats:
            nid = self.numa_node_id()
        if self.injections and self._should_fail("page_alloc", order=order, node=nid):
            return -1, None
        pfn, zone = alloc_pages_node(self, nid, gfp, order)
        if pfn >= 0:
            self.owners.note_buddy(pfn, order, nid, what)
        return pfn, zone

    def kernel_free_pages(self, pfn: int, order: int) -> None:
        self.owners.drop_buddy(pfn)
        self.allocator.free_pages(pfn, order, 0)

    def free_reserved_page(self, pfn: int) -> None:
        """free_reserved_page: a boot (memblock) page handed to the buddy; managed and totalram
        +1."""
        self.allocator.free_reserved_page(pfn, 0)
        self.totalram_pages += 1

    def free_boot_memmap(self, section_nr: int) -> None:
        """mm/sparse.c:free_map_bootmem: the boot memmap of an emptied early section (6.11 takes
        nothing off nr_memmap_boot_pages here)."""
        a = self.arch
        start = a.pfn_to_page(a.section_nr_to_pfn(section_nr))
        end = a.pfn_to_page(a.section_nr_to_pfn(section_nr + 1))
        self.arch_ops.vmemmap_free(self, start, end, None)

    def generic_online_page(self, pfn: int, order: int) -> None:
        """mm/page_alloc.c:generic_online_page (6.1): __free_pages_core + totalram_pages_add."""
        self.allocator.free_pages_core(pfn, order)
        self.totalram_pages += 1 << order

    def adjust_managed_page_count(self, zone, count: int) -> None:
        """mm/page_alloc.c:adjust_managed_page_count (6.1)."""
        self.allocator.adjust_managed_page_count(zone.zoneid, count)
        self.totalram_pages += count

    def page_zone(self, pfn: int):
        """page_zone(pfn_to_page(pfn))."""
        zid = self.ms.page_zoneid(pfn)
        sh = self.arch.page_flags.ZONES_WIDTH
        return self.pgdats[zid >> sh].node_zones[zid & ((1 << sh) - 1)]

    def hotadd_init_pgdat(self, nid: int) -> None:
        """mm/memory_hotplug.c:hotadd_init_pgdat (6.1): zones re-initialised empty, node online."""
        pgdat = self.pgdats[nid]
        pgdat.online = True
        pgdat.node_start_pfn = pgdat.node_spanned_pages = pgdat.node_present_pages = 0

    def register_one_node(self, nid: int) -> None:
        """drivers/base/node.c:__register_one_node: the node's sysfs directory appears."""
        self.pgdats[nid].online = True

    def try_offline_node(self, nid: int) -> None:
        """mm/memory_hotplug.c:try_offline_node (6.1)."""
        pgdat = self.pgdats[nid]
        if pgdat.node_spanned_pages:
            return
        if any(b.nid == nid for b in self.memory.blocks.values()):
            return
        if self.cpu_nodes.get(nid):
            return
        pgdat.online = False

    def notify(self, event: str, start_pfn: int, nr_pages: int, status_change_nid: int) -> int:
        """The memory notifier chain: 0, or the negative errno injected for ``event``
        (memory-notifier-error-inject). The arch's notifier (registered at an initcall, so
        called first) may refuse before the injected one is reached. For MEM_PREPARE_ONLINE and
        MEM_FINISH_OFFLINE (6.9+) ``self.memory_notify_altmap`` holds the altmap fields."""
        arch_notifier = getattr(self.arch_ops, "memory_notifier", None)
        if arch_notifier is not None:
            err = arch_notifier(self, event, start_pfn, nr_pages)
            if err:
                return err
        return self.notifier_errors.get(event, 0)

    # -- fault injection -----------------------------------------------------------------------
    NOTIFIER_EVENTS = ("MEM_GOING_ONLINE", "MEM_GOING_OFFLINE")

    def inject(self, kind: str, *, nth: int = 1, times: int = 1, order: int | None = None,
               node: int | None = None, event: str | None = None, error: int = -errno.ENOMEM,
               pfn: int | None = None) -> dict | None:
        """Fault injection, after the kernel's own facilities.

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
        if kind == "notifier":
            if event not in self.NOTIFIER_EVENTS or error >= 0:
                raise HotplugError(errno.EINVAL, f"notifier injection: event {event!r} / error "
                                   f"{error}: expected one of {self.NOTIFIER_EVENTS} and a "
                                   "negative errno")
            self.notifier_errors[event] = error
            return None
        if kind == "unmovable":
            if pfn is None or not self.ms.pfn_valid(pfn):
                raise HotplugError(errno.EINVAL, f"unmovable injection: pfn {pfn!r} has no "
                                   "struct page")
            if not self.allocator.take_page_off_buddy(pfn):
                raise HotplugError(errno.EBUSY, f"unmovable injection: pfn {pfn:#x} is not free")
            self.owners.note_buddy(pfn, 0, self._pfn_to_nid(pfn), "injected unmovable")
            return None
        if kind not in ("page_alloc", "altmap") or nth < 1 or times < 1:
            raise HotplugError(errno.EINVAL, f"injection {kind!r} (nth {nth}, times {times}): "
                               "unknown kind or count below 1")
        inj = {"kind": kind, "nth": nth, "times": times, "order": order, "node": node,
               "seen": 0, "failed": 0}
        self.injections.append(inj)
        return inj

    def clear_injections(self) -> None:
        self.injections.clear()
        self.notifier_errors.clear()

    def oom(self, msg: str) -> HotplugError:
        return HotplugError(errno.ENOMEM, msg)

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)
        self.log_lines.append("WARNING: " + msg)

    def log(self, msg: str) -> None:
        self.log_lines.append(msg)
