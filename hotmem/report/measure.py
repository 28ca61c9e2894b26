"""Measuring one plan: :func:`run_plan` (the plan's hot-adds, then online, offline and removal,
the way the platform does them) and :func:`measure_size` (what hot-adding N bytes costs)."""
from __future__ import annotations

import errno
from collections import Counter
from dataclasses import dataclass, field

from hotmem.arch.powerpc64_init import dlpar_add_lmb, dlpar_remove_lmb
from hotmem.errors import HotplugError
from hotmem.machine import Machine
from hotmem.mm.memory_hotplug import MHP_MEMMAP_ON_MEMORY, MHP_NONE
from hotmem.report.ledger import (AddCost, StepCost, _cost, _Ledger, _mark, _sum_steps,
                                  merge_costs)
from hotmem.report.plan import Plan
from hotmem.report.platforms import (_check_lmbs, _machine_class, hotplug_kind,
                                     machine_hotplug_kind, standby_start)


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
    kind = machine_hotplug_kind(m)
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
    if machine_hotplug_kind(m) == "dlpar":
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
