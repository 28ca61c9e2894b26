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

The modules: ``plan`` (Plan), ``platforms`` (how each arch hot-adds: hotplug_kind, the
recording Machine, the header's platform facts), ``ledger`` (the owner-ledger deltas: StepCost,
AddCost), ``measure`` (run_plan, measure_size), ``comparison`` (compare), ``text``
(render_text), ``serialize`` (to_dict, to_json), ``plotting`` (plot), ``units`` (iec, human,
progress).
"""
from __future__ import annotations

from hotmem.report.comparison import Comparison, compare, describe_machine
from hotmem.report.ledger import AddCost, StepCost, has_force_mode, merge_costs
from hotmem.report.measure import PlanResult, SizeCost, fragment_nodes, measure_size, run_plan
from hotmem.report.plan import Plan
from hotmem.report.platforms import (HOTPLUG_KIND, RecordingMachine, boot_memory_for_block_size,
                                     describe_platform, dlpar_flags_name, hotplug_kind,
                                     machine_hotplug_kind, machine_name, paging_text,
                                     standby_start)
from hotmem.report.plotting import plot
from hotmem.report.serialize import to_dict, to_json
from hotmem.report.text import render_comparison, render_text
from hotmem.report.units import human, iec, progress

__all__ = ["AddCost", "Comparison", "HOTPLUG_KIND", "Plan", "PlanResult", "RecordingMachine",
           "SizeCost", "StepCost", "boot_memory_for_block_size", "compare", "describe_machine",
           "describe_platform", "dlpar_flags_name", "fragment_nodes", "has_force_mode", "human",
           "hotplug_kind", "iec", "machine_hotplug_kind", "machine_name", "measure_size",
           "merge_costs", "paging_text", "plot", "progress", "render_comparison", "render_text",
           "run_plan", "standby_start", "to_dict", "to_json"]
