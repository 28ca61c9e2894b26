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
"""
from __future__ import annotations

import errno
import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field, fields

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
    """A machine and a hot-add plan: ACPI DIMMs added one after the other from ``start``."""
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

    def machine(self, mom: bool) -> Machine:
        kw = dict(arch=self.arch, kernel=self.kernel, boot_memory=self.boot_layout(),
                  cmdline=self.cmdline(mom), backend=self.backend, **self.qemu_memory())
        if self.paging_levels is not None:
            kw["paging_levels"] = self.paging_levels
        kw.update({k: v for k, v in (("page_size", self.page_size), ("mmu", self.mmu))
                   if v is not None})
        m = Machine(**kw)
        if self.block_size is not None and m.memory_block_size_bytes != parse_size(self.block_size):
            raise HotplugError(errno.EINVAL, f"memory block size {iec(parse_size(self.block_size))}"
                               f" is not what {self.arch} probes on this machine "
                               f"({iec(m.memory_block_size_bytes)})")
        return m

    def first_address(self, m: Machine) -> int:
        """Where the first DIMM goes: ``start``, or the end of boot RAM (at least 4 GiB) rounded
        up to 1 GiB and to the block size (QEMU pc's device memory base on x86_64)."""
        if self.start is not None:
            return parse_size(self.start)
        if hasattr(m.arch_ops, "device_memory_base"):          # arm64: QEMU virt
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
    """Hot-add the plan's DIMMs (ACPI) one after the other, recording each add; then, with
    ``lifecycle``, online every block DIMM by DIMM, offline and eject everything.

    ``fragment`` fragments every node first (drawback c). The older call form
    ``run_plan(mom, dimm_sizes, online_type=, node=, backend=, machine_kwargs=)`` still works."""
    if plan is None:
        plan = Plan(dimms=tuple(dimm_sizes or ("128M",)), nodes=(node,), online_type=online_type,
                    backend=backend, fragment=False, costs_for=())
    if machine_kwargs:
        kw = dict(boot_memory="1G", backend=plan.backend)
        kw.update(machine_kwargs)
        kw["cmdline"] = (kw.get("cmdline", "") + " " + plan.cmdline(mom)).strip()
        m = Machine(**kw)
    else:
        m = plan.machine(mom)
    if fragment:
        fragment_nodes(m)
    res = PlanResult(mom=mom, dimms=plan.sizes(), fragmented=fragment)
    base = mark = _mark(m)
    addr = res.first_address = plan.first_address(m)
    bs = m.memory_block_size_bytes
    devs = []
    for i, size in enumerate(res.dimms):
        nid = plan.node_of(i)
        ledger = _Ledger(m)
        devs.append(m.acpi_memory_hotplug(addr, size, node=nid))
        blocks = list(range(addr // bs, (addr + size) // bs))
        res.adds.append(ledger.add_cost(addr, size, nid, blocks, mom))
        addr += size
    res.add = _cost(m, mark)
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
    for a in res.adds:
        before = m.totalram_pages
        for b in a.blocks:
            m.sysfs.write(_state(m, b), plan.online_type)
        a.managed_added = m.totalram_pages - before
    res.online = _cost(m, mark)
    res.managed_added = res.online.memtotal_kb // (m.arch.PAGE_SIZE >> 10)
    first_pfn = res.adds[0].start >> m.arch.page_shift if res.adds else 0
    res.zones = {z.name if len(m.pgdats) == 1 else f"{z.node}/{z.name}":
                 (z.spanned_pages, z.present_pages, z.managed_pages)
                 for p in m.pgdats.values() for z in p.node_zones
                 if z.zone_start_pfn >= first_pfn and z.spanned_pages}
    for a in reversed(res.adds):
        for b in reversed(a.blocks):
            m.sysfs.write(_state(m, b), "offline")
    for d in devs:
        m.acpi_memory_eject(d)
    res.remove = _cost(m, base)
    res.returned_after_remove = _mark(m)[1:] == base[1:]
    return res


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
    ``start`` overrides the address (a used machine keeps a raised max_pfn)."""
    m = m or plan.machine(mom)
    a = m.arch
    res = SizeCost(size=size, mom=mom, page_size=a.PAGE_SIZE,
                   memmap_formula_bytes=(size >> a.page_shift) * a.struct_page_size)
    start = plan.first_address(m) if start is None else start
    nid, bs = plan.node_of(0), m.memory_block_size_bytes
    ledger = _Ledger(m)
    added = []
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
    cost = ledger.add_cost(start, size, nid, [], mom)
    res.memmap_pages = cost.memmap_pages
    res.memmap_in_range = sum(cost.memmap_in_range.values())
    res.taken_from_existing = cost.taken_from_existing
    res.page_table_pages = cost.page_table_pages
    for s, n in reversed(added):
        m.remove_memory(nid, s, n)
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
            "force_mode": has_force_mode(m.policy), "backend": m.core.__name__}


def compare(plan: Plan | None = None) -> Comparison:
    """Run ``plan`` with memmap on memory and with a regular memmap (and on fragmented nodes),
    then measure the "what hot-adding N costs" sizes."""
    plan = plan or Plan()
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
                fresh = machines[mom] is None
                m = plan.machine(mom) if fresh else machines[mom]
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


def _levels(r: PlanResult, kind: str) -> str:
    total = Counter()
    for a in r.adds:
        total.update(a.page_tables.get(kind, {}))
    return _kv(dict(sorted(total.items())))


def render_text(cmp: Comparison) -> str:
    """The comparison as a terminal table."""
    alt, reg, plan, mi = cmp.altmap, cmp.regular, cmp.plan, cmp.machine
    page = mi["page_size"]
    total = sum(alt.dimms)
    nodes = sorted({a.node for a in alt.adds})
    boot = ", ".join(f"{iec(v) if v else 'none'} (node {k})" for k, v in mi["boot_memory"].items())
    lines = [
        f"hotmem: memmap on memory (altmap) vs regular memmap — {mi['arch']}, "
        f"Linux {mi['kernel']}, {mi['paging_levels']}-level paging",
        f"machine: QEMU {'virt' if mi['arch'] == 'arm64' else 'pc'}, boot memory {boot}, memory block size {iec(mi['memory_block_size'])}, "
        f"PAGE_SIZE {page} B, sizeof(struct page) {mi['struct_page_size']} B",
        f"plan: {len(alt.dimms)} ACPI DIMM(s) of {', '.join(map(str, plan.dimms))} at "
        f"{mi['first_dimm_address']:#x} ({iec(total)}) on node {','.join(map(str, nodes))}, each "
        f"block onlined {ONLINE_WORDS.get(plan.online_type, plan.online_type)}, then offlined and "
        "ejected",
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
        _row("vmemmap page-table pages by level", _levels(alt, "vmemmap"), _levels(reg, "vmemmap")),
        _row("direct-map page-table pages by level", _levels(alt, "direct map"),
             _levels(reg, "direct map")),
        "",
        "at hot-add (nothing is onlined yet)",
        _row("NR_FREE_PAGES change", alt.add.nr_free_pages, reg.add.nr_free_pages, "pages"),
        _row("MemTotal change", alt.add.memtotal_kb, reg.add.memtotal_kb, "kB"),
        _row("DirectMap change", alt.add.directmap_kb, reg.add.directmap_kb, "kB"),
        "at online",
        _row("managed pages added (MemTotal)", alt.managed_added, reg.managed_added, "pages"),
        _row("MemTotal change", alt.online.memtotal_kb, reg.online.memtotal_kb, "kB"),
    ]
    for name in sorted(set(alt.zones) | set(reg.zones)):
        a, r = alt.zones.get(name, (0, 0, 0)), reg.zones.get(name, (0, 0, 0))
        lines.append(_row(f"{name} spanned/present/managed", "/".join(map(str, a)),
                          "/".join(map(str, r))))
    lines += [
        "after offline + eject, against before the add",
        _row("NR_FREE_PAGES change", alt.remove.nr_free_pages, reg.remove.nr_free_pages, "pages"),
        _row("MemTotal and DirectMap back to the pre-add values", str(alt.returned_after_remove),
             str(reg.returned_after_remove)),
        "",
        "drawbacks of a regular memmap (a, b, c) and what onlining gives",
        _row("a) taken from existing memory at hot-add", alt.total("taken_from_existing"),
             reg.total("taken_from_existing"), "pages"),
        _row("b) memmap on another node than its memory", alt.total("off_node_memmap"),
             reg.total("off_node_memmap"), "pages"),
    ]
    af, rf = cmp.altmap_fragmented, cmp.regular_fragmented
    if af is not None and rf is not None:
        lines += [
            _row("c) fragmented: memmap in base pages", af.total("memmap_base_pages"),
                 rf.total("memmap_base_pages"), "pages"),
            _row("c) fragmented: vmemmap page-table pages", _levels(af, "vmemmap"),
                 _levels(rf, "vmemmap")),
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
        lines += ["", f"what hot-adding N costs (measured on a fresh add, not onlined; formula: "
                  f"N / {page} x {mi['struct_page_size']} B)",
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
    lines += [
        "",
        "notes: NR_FREE_PAGES excludes the per-CPU lists; without memmap on memory the first",
        "  order-9 memmap allocation refills an empty per-CPU list with 2 blocks (1024 pages),",
        "  and freed memmaps return to that list, so MemFree does not move at removal.",
        "  memmap on memory in 6.1 needs memory_hotplug.memmap_on_memory=1 and a DIMM of",
        "  exactly one memory block; its memmap pages stay reserved, present, unmanaged.",
        "  'taken from existing memory' = memmap and page-table pages the hot-add allocated",
        "  from the buddy (the owner ledger); page tables never come from the altmap.",
    ]
    return "\n".join(lines) + "\n"


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
            left.set_yscale("log", base=2)
    left.set_xlabel("hot-added memory [GiB]")
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
