"""Overhead reports: what a hot-add plan costs with memmap on memory (altmap) and with a regular
memmap, measured on Machines that run the same plan.

Every number comes from the model's state — the owner ledger (``m.owners``: who allocated which
pfn, for what), the zones, the memory block devices — none from a formula here; the one formula
(``N / PAGE_SIZE x sizeof(struct page)``) is printed beside the measured memmap of the "what
hot-adding N costs" table so the two can be compared.

    plan = Plan(dimms=("128M",) * 4)
    cmp = compare(plan)                 # four Machines: altmap, regular, and both fragmented
    print(render_text(cmp)); to_json(cmp); plot(cmp, "overhead.png")

The seed's drawbacks of a regular memmap, as the report names them:

a) the memmap of hot-added memory is taken from memory that already exists, before the new memory
   can be used (``taken_from_existing``);
b) it can come from another node than the one the memory is added to (``off_node_memmap``);
c) on a fragmented node, where no PMD-sized block is free, the memmap is mapped with base pages
   (more page-table pages, ``memmap_base_pages``).

How the plan's memory arrives follows the arch (:func:`hotplug_kind`, :func:`describe_platform`):
ACPI DIMMs on QEMU pc (x86_64) and QEMU virt (arm64), added then onlined by the plan; on QEMU
pseries (powerpc64) each LMB of a DIMM goes through dlpar_add_lmb, which onlines it itself
(MMOP_ONLINE) — a :class:`RecordingMachine` tells its add from its online; on s390x the DIMMs are
standby storage that sclp_add_standby_memory adds offline at boot (the memmap is paid there, seen
by the same recording Machine) and the plan's "hot-add" is onlining the blocks.
"""
from __future__ import annotations

import errno
import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace

from hotmem.errors import HotplugError
from hotmem.machine import Machine, parse_size
from hotmem.mm.memory_hotplug import MHP_MEMMAP_ON_MEMORY, MHP_NONE

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
ONLINE_WORDS = {"online": "to its default zone", "online_kernel": "to the kernel zone",
                "online_movable": "movable"}


def iec(n: int) -> str:
    """``n`` bytes in the largest binary unit that divides it exactly ("128 MiB")."""
    for shift, unit in ((50, "PiB"), (40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} B"


def human(n_bytes: int) -> str:
    """``n_bytes`` with two decimals in the largest binary unit below it ("256.06 MiB")."""
    for shift, unit in ((40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if abs(n_bytes) >= 1 << shift:
            return f"{n_bytes / (1 << shift):.2f} {unit}"
    return f"{n_bytes} B"


def progress(total: int, desc: str):
    """A progress bar on stderr that shows up only when the work runs longer than a second and
    stderr is a terminal (tqdm); a silent stand-in when tqdm is missing."""
    try:
        from tqdm import tqdm
    except ImportError:                                  # pragma: no cover - tqdm is a dependency
        class _Silent:
            def update(self, n=1):
                pass

            def set_postfix_str(self, s):
                pass

            def close(self):
                pass
        return _Silent()
    return tqdm(total=total, desc=desc, delay=1.0, disable=None, leave=False, file=sys.stderr,
                unit="step")


# -- the plan -----------------------------------------------------------------------------------

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
        return f"memory_hotplug.memmap_on_memory={self.memmap_on_memory if mom else 0}"

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
                  cmdline=self.cmdline(mom), backend=self.backend, **self.qemu_memory())
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
        """Where the first DIMM goes: ``start``, or the end of boot RAM (at least 4 GiB) rounded
        up to 1 GiB and to the block size (QEMU pc's device memory base on x86_64); the device
        memory base of QEMU virt (arm64) and pseries (powerpc64); on s390x the first standby
        block (``start`` must agree)."""
        if hotplug_kind(m.arch.name) == "standby":
            first = standby_start(m)
            if self.start is not None and parse_size(self.start) != first:
                raise HotplugError(errno.EINVAL, f"s390x: standby memory starts at {first:#x} "
                                   "(after the online storage), not where start= says")
            return first
        if self.start is not None:
            return parse_size(self.start)
        if hasattr(m.arch_ops, "device_memory_base"):   # arm64: QEMU virt; powerpc64: pseries
            return m.arch_ops.device_memory_base(m)
        align = max(GiB, m.memory_block_size_bytes)
        end = max(4 * GiB, m.max_pfn << m.arch.page_shift)
        return -(-end // align) * align


def boot_memory_for_block_size(arch: str, block_size: int, boot_total: int) -> int:
    """The smallest QEMU pc boot RAM, from ``boot_total`` up in 128 MiB steps, for which x86-64's
    probe_memory_block_size (6.1, X86_FEATURE_HYPERVISOR set) picks ``block_size``."""
    if arch != "x86_64":
        return boot_total       # other arches: the block size is checked after boot
    from hotmem.arch.x86_64 import probe_memory_block_size
    from hotmem.arch.x86_e820 import E820_TYPE_RAM, qemu_pc_layout
    size = boot_total
    for _ in range(8192):
        end = max(e.end for e in qemu_pc_layout({0: size}) if e.type == E820_TYPE_RAM)
        if probe_memory_block_size(end, hypervisor=True) == block_size:
            return size
        size += 128 * MiB
    raise HotplugError(errno.EINVAL, f"memory block size {block_size:#x}: no QEMU pc boot size "
                       f"from {iec(boot_total)} up probes it on {arch}")


# -- the platform: how memory is hot-added on each arch ------------------------------------------

#: how the plan's memory arrives, by arch
HOTPLUG_KIND = {"x86_64": "acpi", "arm64": "acpi", "powerpc64": "dlpar", "s390x": "standby"}


def hotplug_kind(arch: str) -> str:
    """"acpi" (QEMU pc / virt: an ACPI memory device per DIMM, drivers/acpi/acpi_memhotplug.c),
    "dlpar" (QEMU pseries: a DIMM arrives as LMBs, each added and onlined by
    arch/powerpc/platforms/pseries/hotplug-memory.c:dlpar_add_lmb) or "standby" (s390x: standby
    storage added offline at boot by drivers/s390/char/sclp_cmd.c:sclp_add_standby_memory;
    onlining a block assigns its storage)."""
    return HOTPLUG_KIND.get(arch, "acpi")


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
    """s390x: the first standby storage increment (sclp.standby, rn2addr), aligned up to the
    memory block size as sclp_add_standby_memory/add_memory_merged align it."""
    sclp = getattr(m, "sclp", None)
    rns = [rn for rn, standby in sorted(sclp.standby.items()) if standby] if sclp else []
    if not rns:
        raise HotplugError(errno.EINVAL, "s390x: the machine has no standby memory")
    bs = m.memory_block_size_bytes
    return -(-sclp.rn2addr(rns[0]) // bs) * bs


def dlpar_flags_name(m: Machine) -> str:
    """The mhp_flags dlpar_add_lmb passes to __add_memory (hotplug-memory.c: MHP_NONE in 6.1,
    MHP_MEMMAP_ON_MEMORY from 6.6; hotmem/arch/powerpc64_init.py:dlpar_add_lmb)."""
    from hotmem.arch.base import RFC_V2, kernel_version
    k = kernel_version(m.policy.name)
    return "MHP_MEMMAP_ON_MEMORY" if k != RFC_V2 and k >= (6, 6) else "MHP_NONE"


def machine_name(m: Machine) -> str:
    """The machine the model stands for, as the report's header names it."""
    arch = m.arch.name
    if arch == "x86_64":
        return "QEMU pc"
    if arch == "arm64":
        return "QEMU virt"
    if arch == "powerpc64":
        return "QEMU pseries (PAPR guest)"
    if arch == "s390x":
        from hotmem.arch.s390x_init import parse_standby
        rzm = parse_standby(m.standby_memory)[1]
        return (f"s390 LPAR or z/VM guest with standby storage (SCLP storage increment "
                f"{iec(rzm)}; QEMU offers no standby memory)")
    return arch


#: s390 names of the model's generic table levels (asm/pgtable.h: segment = PMD, region-third =
#: PUD, region-second = P4D; page tables are 2 KiB, two to a page)
S390_LEVELS = {"PTE": "page", "PMD": "segment", "PUD": "region3", "P4D": "region2",
               "PGD": "region1"}


def paging_text(m: Machine) -> str:
    """The header's page-table wording: "4-level paging" (x86_64, arm64), the radix tree or the
    hash MMU's bolted HPTEs (powerpc64), the DAT table levels of init_mm (s390x)."""
    a = m.arch
    if a.name == "powerpc64":
        if a.mmu == "hash":
            return ("hash MMU (linear map and vmemmap are bolted HPTEs in the hypervisor's hash "
                    "table: no Linux page tables)")
        return f"radix MMU, {a.paging_levels}-level page tables"
    if a.name == "s390x":
        names = {3: "region-third, segment, page", 4: "region-second, region-third, segment, page"}
        return f"{a.paging_levels}-level DAT tables ({names.get(a.paging_levels, '?')})"
    return f"{a.paging_levels}-level paging"


def describe_platform(m: Machine) -> dict:
    """How memory is hot-added on the machine (the ``platform`` of the JSON machine)."""
    kind = hotplug_kind(m.arch.name)
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


# -- measuring one plan -------------------------------------------------------------------------

@dataclass
class StepCost:
    """What one phase changed, in 4 KiB pages (``kb`` fields in kB as /proc prints them)."""
    nr_free_pages: int = 0          # NR_FREE_PAGES delta (pages on per-CPU lists are not free)
    memtotal_kb: int = 0
    directmap_kb: int = 0


@dataclass
class AddCost:
    """One hot-add (an ACPI DIMM) and what it cost, in pages of PAGE_SIZE."""
    start: int
    size: int
    node: int
    blocks: list
    memmap_in_range: dict               # altmap pages by node: carved out of the added range
    memmap_from_buddy: dict             # "node/zone" -> pages taken from existing memory
    memmap_base_pages: int              # memmap pages allocated below PMD order (drawback c)
    page_tables: dict                   # {"vmemmap": {"PMD": n}, "direct map": {...}}
    nr_vmemmap_pages: int               # sum of the blocks' nr_vmemmap_pages
    taken_from_existing: int            # memmap from the buddy + page-table pages (drawback a)
    nr_free_pages_change: int           # NR_FREE_PAGES delta of the add
    off_node_memmap: int                # memmap pages on another node than the DIMM (drawback b)
    padding_waste: int | None           # force-mode padding; None: the kernel has no force mode
    managed_added: int = 0              # pages onlining gave to the buddy (MemTotal)
    taken_at_online: int = 0            # pages onlining allocated from the buddy and kept

    @property
    def memmap_pages(self) -> int:
        return sum(self.memmap_in_range.values()) + sum(self.memmap_from_buddy.values())

    @property
    def page_table_pages(self) -> int:
        return sum(n for levels in self.page_tables.values() for n in levels.values())


@dataclass
class PlanResult:
    mom: bool
    dimms: list
    add: StepCost = field(default_factory=StepCost)
    online: StepCost = field(default_factory=StepCost)
    remove: StepCost = field(default_factory=StepCost)   # after eject, against before the add
    memmap: dict = field(default_factory=dict)          # {"altmap": {nid: pages}, "buddy": {...}}
    page_tables: dict = field(default_factory=dict)     # {"direct map": {level: n}, "vmemmap": ...}
    vmemmap_pages_per_block: list = field(default_factory=list)
    zones: dict = field(default_factory=dict)           # zone name -> (spanned, present, managed)
    managed_added: int = 0
    returned_after_remove: bool = False
    adds: list = field(default_factory=list)            # AddCost per DIMM
    fragmented: bool = False
    first_address: int = 0
    machine: object = field(default=None, repr=False, compare=False)

    def total(self, attr: str) -> int:
        """Sum of an AddCost attribute or property over the adds."""
        return sum(getattr(a, attr) for a in self.adds)

    def memmap_by_node(self) -> dict:
        """Memmap pages by the node they sit on (altmap and buddy together)."""
        out = Counter()
        for a in self.adds:
            out.update(a.memmap_in_range)
            for key, n in a.memmap_from_buddy.items():
                out[int(key.split("/")[0])] += n
        return dict(sorted(out.items()))


def _nr_free(m: Machine) -> int:
    return sum(z.nr_free_pages for p in m.pgdats.values() for z in p.node_zones)


def _memtotal_kb(m: Machine) -> int:
    return m.totalram_pages * (m.arch.PAGE_SIZE >> 10)


def _directmap_kb(m: Machine) -> int:
    if m.arch.name != "x86_64":
        return 0                    # DirectMap lines exist on x86 only (arch_report_meminfo)
    pt = m.pgtables
    return (pt.direct_pages_count("4K") * 4 + pt.direct_pages_count("2M") * 2048
            + pt.direct_pages_count("1G") * (1 << 20))


def _cost(m, before) -> StepCost:
    return StepCost(_nr_free(m) - before[0], _memtotal_kb(m) - before[1],
                    _directmap_kb(m) - before[2])


def _mark(m):
    return (_nr_free(m), _memtotal_kb(m), _directmap_kb(m))


def has_force_mode(policy) -> bool:
    """The kernel accepts memory_hotplug.memmap_on_memory=force (6.6+)."""
    return (getattr(policy, "memmap_on_memory_param", None) == "tristate"
            or bool(getattr(policy, "memmap_on_memory_force", False)))


class _Ledger:
    """The owner ledger and free counts before a step; ``delta`` is what the step allocated."""

    def __init__(self, m: Machine):
        self.m = m
        self.buddy = dict(m.owners.buddy)
        self.altmap = dict(m.owners.altmap)
        self.nr_free = _nr_free(m)

    def add_cost(self, start: int, size: int, node: int, blocks: list, mom: bool) -> AddCost:
        m = self.m
        pmd_order = m.arch.pmd_shift - m.arch.page_shift
        in_range, from_buddy, tables = Counter(), Counter(), {"vmemmap": Counter(),
                                                              "direct map": Counter()}
        base_pages = off_node = 0
        for pfn, nr in m.owners.altmap.items():
            if self.altmap.get(pfn) != nr:
                nid = m._pfn_to_nid(pfn)
                in_range[nid] += nr
                off_node += nr if nid != node else 0
        for pfn, (what, order, _) in m.owners.buddy.items():
            if self.buddy.get(pfn) == (what, order, _):
                continue
            n = 1 << order
            if what == "memmap":
                nid = m._pfn_to_nid(pfn)
                from_buddy[f"{nid}/{m.page_zone(pfn).name}"] += n
                off_node += n if nid != node else 0
                base_pages += n if order < pmd_order else 0
            elif what.endswith(" table"):
                kind, level = what[:-len(" table")].rsplit(" ", 1)
                tables.setdefault(kind, Counter())[level] += n
        taken = sum(from_buddy.values()) + sum(n for c in tables.values() for n in c.values())
        nr_vmemmap = sum(m.memory_blocks[b].nr_vmemmap_pages for b in blocks)
        waste = (nr_vmemmap - sum(in_range.values())) if mom and has_force_mode(m.policy) else None
        return AddCost(start=start, size=size, node=node, blocks=blocks,
                       memmap_in_range=dict(sorted(in_range.items())),
                       memmap_from_buddy=dict(sorted(from_buddy.items())),
                       memmap_base_pages=base_pages,
                       page_tables={k: dict(sorted(v.items())) for k, v in tables.items()},
                       nr_vmemmap_pages=nr_vmemmap, taken_from_existing=taken,
                       nr_free_pages_change=_nr_free(m) - self.nr_free, off_node_memmap=off_node,
                       padding_waste=waste)


def merge_costs(costs: list, start: int, size: int, node: int) -> AddCost:
    """The AddCost of several adds (the LMBs of a DIMM, the standby blocks of a range) as one."""
    in_range, from_buddy, tables = Counter(), Counter(), {"vmemmap": Counter(),
                                                          "direct map": Counter()}
    for c in costs:
        in_range.update(c.memmap_in_range)
        from_buddy.update(c.memmap_from_buddy)
        for kind, levels in c.page_tables.items():
            tables.setdefault(kind, Counter()).update(levels)
    waste = [c.padding_waste for c in costs]
    return AddCost(start=start, size=size, node=node, blocks=[b for c in costs for b in c.blocks],
                   memmap_in_range=dict(sorted(in_range.items())),
                   memmap_from_buddy=dict(sorted(from_buddy.items())),
                   memmap_base_pages=sum(c.memmap_base_pages for c in costs),
                   page_tables={k: dict(sorted(v.items())) for k, v in tables.items()},
                   nr_vmemmap_pages=sum(c.nr_vmemmap_pages for c in costs),
                   taken_from_existing=sum(c.taken_from_existing for c in costs),
                   nr_free_pages_change=sum(c.nr_free_pages_change for c in costs),
                   off_node_memmap=sum(c.off_node_memmap for c in costs),
                   padding_waste=None if not costs or None in waste else sum(waste),
                   managed_added=sum(c.managed_added for c in costs),
                   taken_at_online=sum(c.taken_at_online for c in costs))


def _sum_steps(pairs) -> StepCost:
    """The StepCost of several (before, after) marks."""
    out = StepCost()
    for before, after in pairs:
        out.nr_free_pages += after[0] - before[0]
        out.memtotal_kb += after[1] - before[1]
        out.directmap_kb += after[2] - before[2]
    return out


def fragment_nodes(m: Machine) -> None:
    """Leave no free block of PMD order (the size of one vmemmap PMD mapping) on any node."""
    order = m.arch.pmd_shift - m.arch.page_shift
    for pgdat in m.pgdats.values():
        for z in pgdat.node_zones:
            if z.managed_pages:
                m.allocator.fragment(z.zoneid, order, 0)


def _state(m: Machine, block_id: int) -> str:
    return f"/sys/devices/system/memory/memory{block_id}/state"


def run_plan(mom: bool, dimm_sizes=None, *, online_type="online_movable", node=0, backend=None,
             machine_kwargs=None, plan: Plan | None = None, fragment: bool = False,
             lifecycle: bool = True, keep_machine: bool = False) -> PlanResult:
    """Hot-add the plan's DIMMs one after the other, recording each add; then, with
    ``lifecycle``, online every block DIMM by DIMM, offline and remove everything.

    How depends on the arch (:func:`hotplug_kind`): ACPI DIMMs (x86_64, arm64) are added, then
    onlined with the plan's online type, offlined and ejected; on powerpc64 each LMB of a DIMM
    goes through dlpar_add_lmb, which onlines it (MMOP_ONLINE) right after __add_memory — the
    add and the online are told apart by the recording Machine — and leaves through
    dlpar_remove_lmb; on s390x the DIMMs are standby memory that boot added offline (their add
    cost is what the recording Machine saw at boot), onlined with the plan's online type and
    offlined again (standby storage is never removed).

    ``fragment`` fragments every node first (drawback c; not on s390x, whose adds run at boot).
    The older call form ``run_plan(mom, dimm_sizes, online_type=, node=, backend=,
    machine_kwargs=)`` still works."""
    if plan is None:
        plan = Plan(dimms=tuple(dimm_sizes or ("128M",)), nodes=(node,), online_type=online_type,
                    backend=backend, fragment=False, costs_for=())
    if machine_kwargs:
        kw = dict(boot_memory="1G", backend=plan.backend)
        kw.update(machine_kwargs)
        kw["cmdline"] = (kw.get("cmdline", "") + " " + plan.cmdline(mom)).strip()
        m = _machine_class(kw.get("arch", "x86_64"))(**kw)
    else:
        m = plan.machine(mom)
    kind = hotplug_kind(m.arch.name)
    if kind == "standby" and fragment:
        raise HotplugError(errno.EINVAL, "s390x: standby memory is added at boot, before the "
                           "nodes could be fragmented")
    if fragment:
        fragment_nodes(m)
    res = PlanResult(mom=mom, dimms=plan.sizes(), fragmented=fragment)
    base = mark = _mark(m)
    addr = res.first_address = plan.first_address(m)
    bs = m.memory_block_size_bytes
    devs, online_steps = [], []
    if kind == "acpi":
        for i, size in enumerate(res.dimms):
            nid = plan.node_of(i)
            ledger = _Ledger(m)
            devs.append(m.acpi_memory_hotplug(addr, size, node=nid))
            blocks = list(range(addr // bs, (addr + size) // bs))
            res.adds.append(ledger.add_cost(addr, size, nid, blocks, mom))
            addr += size
        res.add = _cost(m, mark)
    elif kind == "dlpar":
        from hotmem.arch.powerpc64_init import dlpar_add_lmb
        add_steps = []
        for i, size in enumerate(res.dimms):
            nid = plan.node_of(i)
            _check_lmbs(addr, size, bs)
            costs = []
            for lmb in range(addr, addr + size, bs):
                n, before = len(m.add_records), m.totalram_pages
                dlpar_add_lmb(m, lmb, nid)
                if len(m.add_records) == n:
                    raise RuntimeError("dlpar_add_lmb did not add through "
                                       "Machine.add_memory_checked: the report cannot tell its "
                                       "add from its online")
                rec = m.add_records[n]                  # the LMB's __add_memory
                c = rec.cost
                c.managed_added = m.totalram_pages - before
                c.taken_at_online = rec.ledger_after.add_cost(
                    lmb, bs, c.node, [], False).taken_from_existing
                add_steps.append((rec.before, rec.after))
                online_steps.append((rec.after, _mark(m)))
                costs.append(c)
            res.adds.append(merge_costs(costs, addr, size, costs[0].node))
            addr += size
        res.add = _sum_steps(add_steps)
    else:
        if any(plan.node_of(i) for i in range(len(res.dimms))):
            raise HotplugError(errno.EINVAL, "s390x: sclp adds standby memory to node 0 (6.1 "
                               "s390x has no NUMA): --nodes 0")
        added = {r.cost.start // bs: r for r in m.add_records if r.error is None}
        for size in res.dimms:
            blocks = range(addr // bs, (addr + size) // bs)
            missing = [b for b in blocks if b not in added]
            if missing or size % bs:
                raise HotplugError(errno.EINVAL, f"s390x: [{addr:#x}, {addr + size:#x}) is not "
                                   "whole standby blocks that sclp added at boot (see the "
                                   "machine's log_lines)")
            res.adds.append(merge_costs([added[b].cost for b in blocks], addr, size, 0))
            addr += size
        res.add = _sum_steps((added[b].before, added[b].after) for a in res.adds
                             for b in a.blocks)
    acc = m.accounting()
    res.memmap = acc["memmap"]
    res.page_tables = acc["page tables"]
    res.vmemmap_pages_per_block = [m.memory_blocks[b].nr_vmemmap_pages
                                   for a in res.adds for b in a.blocks]
    if keep_machine or not lifecycle:
        res.machine = m
    if not lifecycle:
        return res
    mark = _mark(m)
    if kind == "dlpar":                 # dlpar_add_lmb has onlined every LMB already
        res.online = _sum_steps(online_steps)
    else:
        for a in res.adds:
            before, ledger = m.totalram_pages, _Ledger(m)
            for b in a.blocks:
                m.sysfs.write(_state(m, b), plan.online_type)
            a.managed_added = m.totalram_pages - before
            a.taken_at_online = ledger.add_cost(a.start, a.size, a.node, [],
                                                False).taken_from_existing
        res.online = _cost(m, mark)
    res.managed_added = res.online.memtotal_kb // (m.arch.PAGE_SIZE >> 10)
    first_pfn = res.adds[0].start >> m.arch.page_shift if res.adds else 0
    # the zones that start in the plan's range; where the kernel onlines into a zone of its own
    # choosing (DLPAR, standby), every zone that reaches into the range
    end_pfn = (addr >> m.arch.page_shift) if kind != "acpi" else None
    res.zones = {z.name if len(m.pgdats) == 1 else f"{z.node}/{z.name}":
                 (z.spanned_pages, z.present_pages, z.managed_pages)
                 for p in m.pgdats.values() for z in p.node_zones
                 if z.spanned_pages and (z.zone_start_pfn >= first_pfn if end_pfn is None else
                                         z.zone_start_pfn < end_pfn
                                         and z.zone_start_pfn + z.spanned_pages > first_pfn)}
    if kind == "dlpar":
        from hotmem.arch.powerpc64_init import dlpar_remove_lmb
        for a in reversed(res.adds):
            for lmb in reversed(range(a.start, a.start + a.size, bs)):
                dlpar_remove_lmb(m, lmb)
    else:
        for a in reversed(res.adds):
            for b in reversed(a.blocks):
                m.sysfs.write(_state(m, b), "offline")
        for d in devs:
            m.acpi_memory_eject(d)
    res.remove = _cost(m, base)
    res.returned_after_remove = _mark(m)[1:] == base[1:]
    return res


def _check_lmbs(addr: int, size: int, lmb: int) -> None:
    if size <= 0 or size % lmb or addr % lmb:
        raise HotplugError(errno.EINVAL, f"powerpc64: DLPAR adds whole LMBs of {iec(lmb)}: "
                           f"{size:#x} bytes at {addr:#x} is not")


# -- what hot-adding N costs --------------------------------------------------------------------

@dataclass
class SizeCost:
    """Hot-adding ``size`` bytes on a fresh plan machine (not onlined), in pages."""
    size: int
    mom: bool
    memmap_formula_bytes: int           # size / PAGE_SIZE x sizeof(struct page)
    memmap_pages: int = 0               # measured: altmap + buddy
    memmap_in_range: int = 0
    taken_from_existing: int = 0        # memmap from the buddy + page-table pages
    page_table_pages: int = 0
    page_size: int = 4096
    error: str | None = None

    @property
    def memmap_bytes(self) -> int:
        return self.memmap_pages * self.page_size

    @property
    def taken_bytes(self) -> int:
        return self.taken_from_existing * self.page_size

    @property
    def total_overhead_bytes(self) -> int:
        """memmap (wherever it sits) + page tables."""
        return (self.memmap_pages + self.page_table_pages) * self.page_size


def measure_size(plan: Plan, mom: bool, size: int, m: Machine | None = None,
                 start: int | None = None) -> SizeCost:
    """Hot-add ``size`` bytes at the plan's first address on node ``plan.nodes[0]``: with memmap
    on memory as one add per memory block (what 6.1 accepts), without it as one add; record the
    owner-ledger delta, then remove it again. ENOMEM and friends are recorded, not raised.
    ``start`` overrides the address (a used machine keeps a raised max_pfn).

    powerpc64: one dlpar_add_lmb per LMB either way (it picks the flags and onlines each LMB),
    removed with dlpar_remove_lmb. s390x: a fresh machine with ``size`` bytes of standby memory,
    whose cost is paid at boot (:func:`_measure_standby`; ``m`` and ``start`` are not used)."""
    if hotplug_kind(plan.arch) == "standby":
        return _measure_standby(plan, mom, size)
    m = m or plan.machine(mom)
    a = m.arch
    res = SizeCost(size=size, mom=mom, page_size=a.PAGE_SIZE,
                   memmap_formula_bytes=(size >> a.page_shift) * a.struct_page_size)
    start = plan.first_address(m) if start is None else start
    nid, bs = plan.node_of(0), m.memory_block_size_bytes
    ledger = _Ledger(m)
    added = []
    if hotplug_kind(a.name) == "dlpar":
        from hotmem.arch.powerpc64_init import dlpar_add_lmb, dlpar_remove_lmb
        try:
            _check_lmbs(start, size, bs)
            for s in range(start, start + size, bs):
                dlpar_add_lmb(m, s, nid)
                added.append(s)
        except HotplugError as exc:
            res.error = str(exc)
        _fill_size_cost(res, ledger.add_cost(start, size, nid, [], mom))
        for s in reversed(added):
            dlpar_remove_lmb(m, s)
        return res
    try:
        if mom:
            for s in range(start, start + size, bs):
                m.add_memory(nid, s, bs, MHP_MEMMAP_ON_MEMORY)
                added.append((s, bs))
        else:
            m.add_memory(nid, start, size, MHP_NONE)
            added.append((start, size))
    except HotplugError as exc:
        res.error = str(exc)
    _fill_size_cost(res, ledger.add_cost(start, size, nid, [], mom))
    for s, n in reversed(added):
        m.remove_memory(nid, s, n)
    return res


def _fill_size_cost(res: SizeCost, cost: AddCost) -> None:
    res.memmap_pages = cost.memmap_pages
    res.memmap_in_range = sum(cost.memmap_in_range.values())
    res.taken_from_existing = cost.taken_from_existing
    res.page_table_pages = cost.page_table_pages


def _measure_standby(plan: Plan, mom: bool, size: int) -> SizeCost:
    """s390x: boot the plan's machine with ``size`` bytes of standby memory and add up what
    sclp_add_standby_memory's add_memory calls cost (the recording Machine's ledger); a failed
    add (sclp logs it and goes on) is the error."""
    m = plan.machine(mom, standby=size)
    a = m.arch
    res = SizeCost(size=size, mom=mom, page_size=a.PAGE_SIZE,
                   memmap_formula_bytes=(size >> a.page_shift) * a.struct_page_size)
    start = standby_start(m)
    recs = [r for r in m.add_records if start <= r.cost.start < start + size]
    _fill_size_cost(res, merge_costs([r.cost for r in recs], start, size, 0))
    res.error = next((r.error for r in recs if r.error), None)
    return res


# -- the comparison -----------------------------------------------------------------------------

@dataclass
class Comparison:
    plan: Plan
    machine: dict
    altmap: PlanResult
    regular: PlanResult
    altmap_fragmented: PlanResult | None = None
    regular_fragmented: PlanResult | None = None
    sizes: list = field(default_factory=list)           # [(altmap SizeCost, regular SizeCost)]


def describe_machine(m: Machine, plan: Plan, first_address: int) -> dict:
    a = m.arch
    return {"arch": a.name, "kernel": m.policy.name, "paging_levels": a.paging_levels,
            "page_size": a.PAGE_SIZE, "struct_page_size": a.struct_page_size,
            "memory_block_size": m.memory_block_size_bytes,
            "boot_memory": {str(k): v for k, v in plan.boot_layout().items()},
            "first_dimm_address": first_address,
            "force_mode": has_force_mode(m.policy), "backend": m.core.__name__,
            "platform": describe_platform(m)}


def compare(plan: Plan | None = None) -> Comparison:
    """Run ``plan`` with memmap on memory and with a regular memmap (and on fragmented nodes),
    then measure the "what hot-adding N costs" sizes."""
    plan = plan or Plan()
    kind = hotplug_kind(plan.arch)
    if kind == "dlpar" and plan.online_type != "online":
        plan = replace(plan, online_type="online")        # dlpar_add_lmb onlines: MMOP_ONLINE
    if kind == "standby" and plan.fragment:
        plan = replace(plan, fragment=False)              # added at boot: nothing to fragment
    sizes = [parse_size(s) for s in plan.costs_for]
    bar = progress(2 + 2 * plan.fragment + 2 * len(sizes), "hotmem compare")
    try:
        alt = run_plan(True, plan=plan, keep_machine=True)
        bar.update()
        reg = run_plan(False, plan=plan, keep_machine=True)
        bar.update()
        cmp = Comparison(plan=plan, machine=describe_machine(alt.machine, plan, alt.first_address),
                         altmap=alt, regular=reg)
        if plan.fragment:
            cmp.altmap_fragmented = run_plan(True, plan=plan, fragment=True, lifecycle=False)
            bar.update()
            cmp.regular_fragmented = run_plan(False, plan=plan, fragment=True, lifecycle=False)
            bar.update()
        machines = {True: alt.machine, False: reg.machine}
        for size in sizes:
            pair = []
            for mom in (True, False):
                bar.set_postfix_str(f"{iec(size)} {'altmap' if mom else 'regular'}")
                fresh = machines[mom] is None or kind == "standby"
                m = None if kind == "standby" else plan.machine(mom) if fresh else machines[mom]
                cost = measure_size(plan, mom, size, m, None if fresh else alt.first_address)
                # after a failed add the machine keeps what the error path leaves: boot anew
                machines[mom] = None if cost.error else m
                pair.append(cost)
                bar.update()
            cmp.sizes.append(tuple(pair))
    finally:
        bar.close()
    return cmp


# -- text ---------------------------------------------------------------------------------------

def _row(label, a, b, unit=""):
    return f"  {label:<44}{a:>22} {b:>21}  {unit}"


def _kv(d: dict) -> str:
    return ",".join(f"{k}:{v}" for k, v in d.items()) or "-"


def _levels(r: PlanResult, kind: str, arch: str = "x86_64") -> str:
    total = Counter()
    for a in r.adds:
        total.update(a.page_tables.get(kind, {}))
    names = S390_LEVELS if arch == "s390x" else {}
    return _kv({names.get(k, k): v for k, v in sorted(total.items())})


def render_text(cmp: Comparison) -> str:
    """The comparison as a terminal table."""
    alt, reg, plan, mi = cmp.altmap, cmp.regular, cmp.plan, cmp.machine
    page = mi["page_size"]
    total = sum(alt.dimms)
    nodes = sorted({a.node for a in alt.adds})
    boot = ", ".join(f"{iec(v) if v else 'none'} (node {k})" for k, v in mi["boot_memory"].items())
    pf = mi.get("platform") or {"machine": "QEMU pc", "hotplug": "acpi",
                                 "paging": f"{mi['paging_levels']}-level paging"}
    kind = pf["hotplug"]
    dimms = ', '.join(map(str, plan.dimms))
    at = f"{mi['first_dimm_address']:#x} ({iec(total)})"
    onlined = ONLINE_WORDS.get(plan.online_type, plan.online_type)
    if kind == "dlpar":
        plan_line = [
            f"plan: {len(alt.dimms)} DIMM(s) of {dimms} at {at} on node "
            f"{','.join(map(str, nodes))}, hot-added by DLPAR one LMB at a time:",
            f"  dlpar_add_lmb = __add_memory(..., {pf['mhp_flags']}), then device_online of the "
            "LMB (MMOP_ONLINE: its default zone);",
            "  removed with dlpar_remove_lmb (device_offline, __remove_memory)"]
    elif kind == "standby":
        plan_line = [
            f"plan: {len(alt.dimms)} standby range(s) of {dimms} at {at}: added offline at boot "
            "by sclp_add_standby_memory (add_memory, MHP_NONE, block by block),",
            f"  each block onlined {onlined} (sclp assigns the storage at MEM_GOING_ONLINE), "
            "then offlined (unassigned: standby again; the blocks stay added)"]
    else:
        plan_line = [
            f"plan: {len(alt.dimms)} ACPI DIMM(s) of {dimms} at "
            f"{at} on node {','.join(map(str, nodes))}, each "
            f"block onlined {onlined}, then offlined and ejected"]
    lines = [
        f"hotmem: memmap on memory (altmap) vs regular memmap — {mi['arch']}, "
        f"Linux {mi['kernel']}, {pf['paging']}",
        f"machine: {pf['machine']}, boot memory {boot}, memory block size "
        f"{iec(mi['memory_block_size'])}, "
        f"PAGE_SIZE {page} B, sizeof(struct page) {mi['struct_page_size']} B",
        *plan_line,
        "",
        _row("", "altmap", "regular"),
        _row("memmap pages taken from the added range", sum(alt.memmap["altmap"].values()),
             sum(reg.memmap["altmap"].values()), "pages"),
        _row("memmap pages taken from the buddy", sum(alt.memmap["buddy"].values()),
             sum(reg.memmap["buddy"].values()), "pages"),
        _row("  ... by node", str(alt.memmap["buddy"] or alt.memmap["altmap"]),
             str(reg.memmap["buddy"] or reg.memmap["altmap"])),
        _row("vmemmap page-table pages", sum(alt.page_tables["vmemmap"].values()),
             sum(reg.page_tables["vmemmap"].values()), "pages"),
        _row("direct-map page-table pages", sum(alt.page_tables["direct map"].values()),
             sum(reg.page_tables["direct map"].values()), "pages"),
        _row("nr_vmemmap_pages per block",
             "/".join(map(str, sorted(set(alt.vmemmap_pages_per_block)))),
             "/".join(map(str, sorted(set(reg.vmemmap_pages_per_block))))),
        _row("memmap bytes (memmap pages x PAGE_SIZE)", alt.total("memmap_pages") * page,
             reg.total("memmap_pages") * page, "bytes"),
        _row("memmap from the buddy by node/zone", _kv(_sum_dicts(alt, "memmap_from_buddy")),
             _kv(_sum_dicts(reg, "memmap_from_buddy"))),
        _row("vmemmap page-table pages by level", _levels(alt, "vmemmap", mi["arch"]),
             _levels(reg, "vmemmap", mi["arch"])),
        _row("direct-map page-table pages by level", _levels(alt, "direct map", mi["arch"]),
             _levels(reg, "direct map", mi["arch"])),
        "",
        {"acpi": "at hot-add (nothing is onlined yet)",
         "dlpar": "at __add_memory in dlpar_add_lmb (before it onlines the LMB)",
         "standby": "at boot: sclp_add_standby_memory's add_memory (the blocks stay offline)",
         }[kind],
        _row("NR_FREE_PAGES change", alt.add.nr_free_pages, reg.add.nr_free_pages, "pages"),
        _row("MemTotal change", alt.add.memtotal_kb, reg.add.memtotal_kb, "kB"),
    ]
    if mi["arch"] in ("x86_64", "arm64"):
        lines.append(_row("DirectMap change", alt.add.directmap_kb, reg.add.directmap_kb, "kB"))
    lines += [
        {"acpi": "at online",
         "dlpar": "at online (dlpar_add_lmb: device_online, MMOP_ONLINE = the default zone)",
         "standby": "at online (MEM_GOING_ONLINE: sclp assigns the storage increments)"}[kind],
        _row("managed pages added (MemTotal)", alt.managed_added, reg.managed_added, "pages"),
        _row("MemTotal change", alt.online.memtotal_kb, reg.online.memtotal_kb, "kB"),
    ]
    if kind != "acpi":
        lines += [
            _row("NR_FREE_PAGES change", alt.online.nr_free_pages, reg.online.nr_free_pages,
                 "pages"),
            _row("pages allocated at online (and kept)", alt.total("taken_at_online"),
                 reg.total("taken_at_online"), "pages"),
        ]
    for name in sorted(set(alt.zones) | set(reg.zones)):
        a, r = alt.zones.get(name, (0, 0, 0)), reg.zones.get(name, (0, 0, 0))
        lines.append(_row(f"{name} spanned/present/managed", "/".join(map(str, a)),
                          "/".join(map(str, r))))
    lines += [
        {"acpi": "after offline + eject, against before the add",
         "dlpar": "after dlpar_remove_lmb (offline, __remove_memory), against before the add",
         "standby": "after offline (storage unassigned, blocks still added), against before the "
                    "online"}[kind],
        _row("NR_FREE_PAGES change", alt.remove.nr_free_pages, reg.remove.nr_free_pages, "pages"),
        _row("MemTotal and DirectMap back to the pre-add values" if kind == "acpi" else
             "MemTotal back to the pre-add value" if kind == "dlpar" else
             "MemTotal back to the value before online", str(alt.returned_after_remove),
             str(reg.returned_after_remove)),
        "",
        "drawbacks of a regular memmap (a, b, c) and what onlining gives",
        _row("a) taken from existing memory at hot-add" if kind != "standby" else
             "a) taken from existing memory at boot", alt.total("taken_from_existing"),
             reg.total("taken_from_existing"), "pages"),
        _row("b) memmap on another node than its memory", alt.total("off_node_memmap"),
             reg.total("off_node_memmap"), "pages"),
    ]
    af, rf = cmp.altmap_fragmented, cmp.regular_fragmented
    if kind == "standby":
        lines.append(_row("c) fragmented: not measured", "-", "-", "(added at boot)"))
    if af is not None and rf is not None:
        lines += [
            _row("c) fragmented: memmap in base pages", af.total("memmap_base_pages"),
                 rf.total("memmap_base_pages"), "pages"),
            _row("c) fragmented: vmemmap page-table pages", _levels(af, "vmemmap", mi["arch"]),
                 _levels(rf, "vmemmap", mi["arch"])),
            _row("c) fragmented: taken from existing memory", af.total("taken_from_existing"),
                 rf.total("taken_from_existing"), "pages"),
        ]
    waste = [a.padding_waste for a in alt.adds]
    lines += [
        _row("given to the buddy after onlining", alt.total("managed_added"),
             reg.total("managed_added"), "pages"),
        _row("force-mode padding (reserved, unused)",
             "n/a" if None in waste else sum(waste), "n/a", "pages"),
    ]
    if len(alt.adds) <= 16:
        lines += ["", "per hot-add: memmap in range/from buddy, page tables, taken, given (pages)"]
        for i, (a, r) in enumerate(zip(alt.adds, reg.adds)):
            fmt = lambda c: (f"{sum(c.memmap_in_range.values())}/"
                             f"{sum(c.memmap_from_buddy.values())} {c.page_table_pages} "
                             f"{c.taken_from_existing} {c.managed_added}")
            lines.append(_row(f"#{i + 1} {iec(a.size)} at {a.start:#x} node {a.node}", fmt(a),
                              fmt(r)))
    if cmp.sizes:
        formula = f"formula: N / {page} x {mi['struct_page_size']} B"
        lines += ["", {
            "acpi": f"what hot-adding N costs (measured on a fresh add, not onlined; {formula})",
            "dlpar": f"what hot-adding N costs (measured on fresh DLPAR adds of N / "
                     f"{iec(mi['memory_block_size'])} LMBs, each onlined by dlpar_add_lmb; "
                     f"{formula})",
            "standby": f"what N of standby memory costs (measured at the boot that adds it, not "
                       f"onlined; {formula})"}[kind],
                  f"  {'N':>8}  {'memmap formula':>15}  {'memmap model':>13}  "
                  f"{'regular: from existing':>23}  {'altmap: from existing':>22}  "
                  f"{'altmap: in the range':>21}"]
        failed = []
        for alt_c, reg_c in cmp.sizes:
            model = reg_c if not reg_c.error or alt_c.error else alt_c
            cells = [c.error.split(":")[0] if c.error else human(c.taken_bytes)
                     for c in (reg_c, alt_c)]
            in_range = alt_c.error.split(":")[0] if alt_c.error else human(
                alt_c.memmap_in_range * page)
            lines.append(f"  {iec(reg_c.size):>8}  {human(reg_c.memmap_formula_bytes):>15}  "
                         f"{'-' if model.error else human(model.memmap_bytes):>13}  "
                         f"{cells[0]:>23}  {cells[1]:>22}  {in_range:>21}")
            failed += [c for c in (reg_c, alt_c) if c.error]
        for c in failed:
            lines.append(f"  {iec(c.size)} {'altmap' if c.mom else 'regular'}: {c.error} "
                         f"(after taking {human(c.taken_bytes)})")
    lines += [""] + NOTES[kind]
    if kind == "dlpar":
        lines += PPC_NOTES[mi["platform"].get("mmu", "radix")]
    return "\n".join(lines) + "\n"


#: the notes under the report, by how memory is hot-added
NOTES = {
    "acpi": [
        "notes: NR_FREE_PAGES excludes the per-CPU lists; without memmap on memory the first",
        "  order-9 memmap allocation refills an empty per-CPU list with 2 blocks (1024 pages),",
        "  and freed memmaps return to that list, so MemFree does not move at removal.",
        "  memmap on memory in 6.1 needs memory_hotplug.memmap_on_memory=1 and a DIMM of",
        "  exactly one memory block; its memmap pages stay reserved, present, unmanaged.",
        "  'taken from existing memory' = memmap and page-table pages the hot-add allocated",
        "  from the buddy (the owner ledger); page tables never come from the altmap.",
    ],
    "dlpar": [
        "notes: on pseries a DIMM arrives as LMBs (ibm,lmb-size); dlpar_add_lmb adds each with",
        "  __add_memory (MHP_NONE in 6.1: no memmap on memory at all; MHP_MEMMAP_ON_MEMORY from",
        "  6.6, used when memory_hotplug.memmap_on_memory allows it) and onlines it at once with",
        "  MMOP_ONLINE (the default zone; --online-type does not apply). 'regular' boots with",
        "  memory_hotplug.memmap_on_memory=0. NR_FREE_PAGES excludes the per-CPU lists.",
        "  'taken from existing memory' = memmap and page-table pages the hot-add allocated",
        "  from the buddy (the owner ledger); page tables never come from the altmap.",
        "  A block whose struct pages lie in vmemmap memory that is already populated needs no",
        "  new memmap: the altmap's pages then stay reserved and unused (force-mode padding",
        "  counts the altmap pages the memmap did not take).",
    ],
    "standby": [
        "notes: standby memory is added at boot (sclp_add_standby_memory, an initcall) and stays",
        "  offline: its memmap and identity-map tables are paid at boot, from the buddy, whether",
        "  or not it is ever onlined. Onlining assigns the storage (sclp_mem_notifier borrows and",
        "  frees an SCCB page per increment) and gives the pages to the buddy; offlining",
        "  unassigns it and leaves the blocks and their memmap in place.",
        "  sclp adds with MHP_NONE and 6.1 s390 has no memmap on memory (arch_add_memory refuses",
        "  an altmap): 'altmap' only differs by memory_hotplug.memmap_on_memory on the cmdline.",
        "  Table levels: segment = PMD (1 MiB), region3 = PUD (2 GiB); tables of 16 KiB (order 2)",
        "  and page tables of 2 KiB, two to a page. NR_FREE_PAGES excludes the per-CPU lists.",
    ],
}

#: powerpc64 notes by MMU
PPC_NOTES = {
    "radix": [
        "  radix: the vmemmap is mapped with 2 MiB PMD leaves (one maps the struct pages of",
        "  2 GiB with 64 KiB pages); PMD and PTE tables are fragments of 64 KiB pages, PUD",
        "  tables come from slab (not counted here).",
    ],
    "hash": [
        "  hash: the linear map and the vmemmap are bolted HPTEs in the hypervisor's hash table,",
        "  no Linux page-table pages; the vmemmap uses 16 MiB pages when boot RAM >= 1 GiB",
        "  (one maps the struct pages of 16 GiB).",
    ],
}


def _sum_dicts(r: PlanResult, attr: str) -> dict:
    out = Counter()
    for a in r.adds:
        out.update(getattr(a, attr))
    return dict(sorted(out.items()))


def render_comparison(arg=("128M",) * 4, backend=None) -> str:
    """The main job: a plan with and without memmap on memory, side by side. ``arg`` is a
    Comparison, a Plan, or the DIMM sizes of the default plan."""
    if isinstance(arg, Comparison):
        return render_text(arg)
    plan = arg if isinstance(arg, Plan) else Plan(dimms=tuple(arg), backend=backend)
    return render_text(compare(plan))


# -- JSON ---------------------------------------------------------------------------------------

def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def _plan_result_dict(r: PlanResult | None) -> dict | None:
    if r is None:
        return None
    d = {f.name: getattr(r, f.name) for f in fields(r) if f.name not in ("machine", "adds")}
    d = {k: asdict(v) if isinstance(v, StepCost) else v for k, v in d.items()}
    d["adds"] = [asdict(a) for a in r.adds]
    for a, ad in zip(r.adds, d["adds"]):
        ad["memmap_pages"] = a.memmap_pages
        ad["page_table_pages"] = a.page_table_pages
    d["totals"] = {k: r.total(k) for k in ("memmap_pages", "page_table_pages",
                                           "taken_from_existing", "off_node_memmap",
                                           "memmap_base_pages", "managed_added",
                                           "nr_vmemmap_pages")}
    waste = [a.padding_waste for a in r.adds]
    d["totals"]["padding_waste"] = None if None in waste else sum(waste)
    d["totals"]["memmap_by_node"] = r.memmap_by_node()
    return d


def to_dict(cmp: Comparison) -> dict:
    """Everything the text shows, as plain data (pages unless a key says bytes or kb)."""
    sizes = []
    for alt_c, reg_c in cmp.sizes:
        entry = {"size": reg_c.size, "memmap_formula_bytes": reg_c.memmap_formula_bytes}
        for name, c in (("altmap", alt_c), ("regular", reg_c)):
            d = asdict(c)
            d.update(memmap_bytes=c.memmap_bytes, taken_bytes=c.taken_bytes,
                     total_overhead_bytes=c.total_overhead_bytes)
            entry[name] = d
        sizes.append(entry)
    return _jsonable({
        "plan": asdict(cmp.plan), "machine": cmp.machine,
        "altmap": _plan_result_dict(cmp.altmap), "regular": _plan_result_dict(cmp.regular),
        "altmap_fragmented": _plan_result_dict(cmp.altmap_fragmented),
        "regular_fragmented": _plan_result_dict(cmp.regular_fragmented),
        "sizes": sizes,
    })


def to_json(cmp: Comparison) -> str:
    return json.dumps(to_dict(cmp), indent=2) + "\n"


# -- plot ---------------------------------------------------------------------------------------

def plot(cmp: Comparison, path: str) -> None:
    """Two panels: overhead vs hot-added size (the "N costs" sizes) for altmap and regular
    memmap, and memmap pages per node for the plan. Needs matplotlib (the ``plot`` extra)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise HotplugError(errno.ENOENT, "--plot needs matplotlib: pip install 'hotmem[plot]'") \
            from exc
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    ok = [(a, r) for a, r in cmp.sizes if not a.error and not r.error]
    xs = [r.size / GiB for _, r in ok]
    if ok:
        left.plot(xs, [r.total_overhead_bytes / MiB for _, r in ok], ":", color="grey", lw=3,
                  label="memmap + page tables (both; altmap: memmap in the added range)")
        left.plot(xs, [r.taken_bytes / MiB for _, r in ok], "o-", color="tab:red",
                  label="regular: taken from existing memory")
        left.plot(xs, [a.taken_bytes / MiB for a, _ in ok], "s-", color="tab:blue",
                  label="altmap: taken from existing memory (page tables)")
        if len(xs) > 2 and min(xs) > 0:
            left.set_xscale("log", base=2)
            if any(r.total_overhead_bytes for _, r in ok):     # hash MMU: may all be zero
                left.set_yscale("log", base=2)
    standby = (cmp.machine.get("platform") or {}).get("hotplug") == "standby"
    left.set_xlabel("standby memory, paid at boot [GiB]" if standby else
                    "hot-added memory [GiB]")
    left.set_ylabel("overhead [MiB]")
    left.set_title("overhead vs hot-added size")
    left.grid(True, alpha=.3)
    left.legend(fontsize=8)
    page = cmp.machine["page_size"]
    alt_n, reg_n = cmp.altmap.memmap_by_node(), cmp.regular.memmap_by_node()
    nodes = sorted(set(alt_n) | set(reg_n) | {a.node for a in cmp.altmap.adds})
    idx = range(len(nodes))
    w = 0.38
    right.bar([i - w / 2 for i in idx], [alt_n.get(n, 0) * page / MiB for n in nodes], w,
              color="tab:blue", label="altmap")
    right.bar([i + w / 2 for i in idx], [reg_n.get(n, 0) * page / MiB for n in nodes], w,
              color="tab:red", label="regular")
    right.set_xticks(list(idx), [f"node {n}" for n in nodes])
    right.set_ylabel("memmap [MiB]")
    right.set_title(f"where the plan's memmap sits ({iec(sum(cmp.altmap.dimms))} hot-added)")
    right.legend(fontsize=8)
    mi = cmp.machine
    fig.suptitle(f"hotmem: {mi['arch']}, Linux {mi['kernel']}, memory block "
                 f"{iec(mi['memory_block_size'])}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
