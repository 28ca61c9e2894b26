"""The comparison: a plan run with memmap on memory and with a regular memmap (and on fragmented
nodes), and the "what hot-adding N costs" sizes (:func:`compare`)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from hotmem.machine import Machine, parse_size
from hotmem.report.ledger import has_force_mode
from hotmem.report.measure import PlanResult, measure_size, run_plan
from hotmem.report.plan import Plan
from hotmem.report.platforms import describe_platform, hotplug_kind
from hotmem.report.units import iec, progress


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
