"""Overhead reports: what a hot-add plan costs with memmap on memory (altmap) and with a regular
memmap, measured on two Machines that run the same plan — every number comes from the model's
state, none from a formula here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hotmem.machine import Machine, parse_size

MiB = 1 << 20


@dataclass
class StepCost:
    """What one phase changed, in 4 KiB pages (``kb`` fields in kB as /proc prints them)."""
    nr_free_pages: int = 0          # NR_FREE_PAGES delta (pages on per-CPU lists are not free)
    memtotal_kb: int = 0
    directmap_kb: int = 0


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


def _nr_free(m: Machine) -> int:
    return sum(z.nr_free_pages for p in m.pgdats.values() for z in p.node_zones)


def _memtotal_kb(m: Machine) -> int:
    return m.totalram_pages * (m.arch.PAGE_SIZE >> 10)


def _directmap_kb(m: Machine) -> int:
    pt = m.pgtables
    return (pt.direct_pages_count("4K") * 4 + pt.direct_pages_count("2M") * 2048
            + pt.direct_pages_count("1G") * (1 << 20))


def _cost(m, before) -> StepCost:
    return StepCost(_nr_free(m) - before[0], _memtotal_kb(m) - before[1],
                    _directmap_kb(m) - before[2])


def _mark(m):
    return (_nr_free(m), _memtotal_kb(m), _directmap_kb(m))


def run_plan(mom: bool, dimm_sizes, *, online_type="online_movable", node=0, backend=None,
             machine_kwargs=None) -> PlanResult:
    """Hot-add the DIMMs (ACPI, QEMU pc addresses from 4 GiB up), online every block, record,
    then offline and eject everything."""
    kw = dict(boot_memory="1G", backend=backend)
    kw.update(machine_kwargs or {})
    kw["cmdline"] = (kw.get("cmdline", "") + f" memory_hotplug.memmap_on_memory={int(mom)}").strip()
    m = Machine(**kw)
    res = PlanResult(mom=mom, dimms=[parse_size(s) for s in dimm_sizes])
    base = mark = _mark(m)
    addr = 1 << 32
    devs = []
    for size in res.dimms:
        devs.append(m.acpi_memory_hotplug(addr, size, node=node))
        addr += size
    res.add = _cost(m, mark)
    acc = m.accounting()
    res.memmap = acc["memmap"]
    res.page_tables = acc["page tables"]
    blocks = [b for b in sorted(m.memory_blocks.values(), key=lambda b: b.block_id)
              if b.start_pfn >= (1 << 32) >> m.arch.page_shift]
    res.vmemmap_pages_per_block = [b.nr_vmemmap_pages for b in blocks]
    mark = _mark(m)
    for b in blocks:
        m.sysfs.write(f"/sys/devices/system/memory/memory{b.block_id}/state", online_type)
    res.online = _cost(m, mark)
    res.managed_added = res.online.memtotal_kb // (m.arch.PAGE_SIZE >> 10)
    res.zones = {z.name: (z.spanned_pages, z.present_pages, z.managed_pages)
                 for p in m.pgdats.values() for z in p.node_zones
                 if z.zone_start_pfn >= (1 << 32) >> m.arch.page_shift and z.spanned_pages}
    mark = _mark(m)
    for b in reversed(blocks):
        m.sysfs.write(f"/sys/devices/system/memory/memory{b.block_id}/state", "offline")
    for d in devs:
        m.acpi_memory_eject(d)
    res.remove = _cost(m, base)
    res.returned_after_remove = _mark(m)[1:] == base[1:]
    return res


def _row(label, a, b, unit=""):
    return f"  {label:<44}{a:>22}{b:>22}  {unit}"


def render_comparison(dimm_sizes=("128M",) * 4, backend=None) -> str:
    """The main job: the same hot-add plan with and without memmap on memory, side by side."""
    alt = run_plan(True, dimm_sizes, backend=backend)
    reg = run_plan(False, dimm_sizes, backend=backend)
    total = sum(alt.dimms)
    lines = [
        "hotmem: memmap on memory (altmap) vs regular memmap — x86_64, Linux 6.1, QEMU pc, 1 GiB boot",
        f"plan: {len(alt.dimms)} ACPI DIMM(s) of {', '.join(dimm_sizes)} at 4 GiB "
        f"({total >> 20} MiB), each block onlined movable, then offlined and ejected",
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
        _row("nr_vmemmap_pages per block", "/".join(map(str, sorted(set(alt.vmemmap_pages_per_block)))),
             "/".join(map(str, sorted(set(reg.vmemmap_pages_per_block))))),
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
        "notes: NR_FREE_PAGES excludes the per-CPU lists; without memmap on memory the first",
        "  order-9 memmap allocation refills an empty per-CPU list with 2 blocks (1024 pages),",
        "  and freed memmaps return to that list, so MemFree does not move at removal.",
        "  memmap on memory in 6.1 needs memory_hotplug.memmap_on_memory=1 and a DIMM of",
        "  exactly one memory block; its memmap pages stay reserved, present, unmanaged.",
    ]
    return "\n".join(lines) + "\n"
