"""What a step cost, read from the Machine: the owner-ledger delta of a hot-add (:class:`AddCost`)
and the /proc counters around a phase (:class:`StepCost`)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hotmem.accounting import pfn_to_nid
from hotmem.machine import Machine
from hotmem.mm.page_alloc import page_zone


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


def _nr_free(m: Machine) -> int:
    return sum(z.nr_free_pages for p in m.pgdats.values() for z in p.node_zones)


def _memtotal_kb(m: Machine) -> int:
    return m.totalram_pages * (m.arch.PAGE_SIZE >> 10)


def _directmap_kb(m: Machine) -> int:
    """The DirectMap lines of /proc/meminfo added up (arch_report_meminfo: x86 only)."""
    return sum(v or 0 for v in m.arch_ops.arch_report_meminfo(m).values())


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
                nid = pfn_to_nid(m, pfn)
                in_range[nid] += nr
                off_node += nr if nid != node else 0
        for pfn, (what, order, _) in m.owners.buddy.items():
            if self.buddy.get(pfn) == (what, order, _):
                continue
            n = 1 << order
            if what == "memmap":
                nid = pfn_to_nid(m, pfn)
                from_buddy[f"{nid}/{page_zone(m, pfn).name}"] += n
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
