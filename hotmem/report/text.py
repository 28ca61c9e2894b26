"""The comparison as a terminal table (:func:`render_text`), with the notes of each platform."""
from __future__ import annotations

from collections import Counter

from hotmem.arch import ARCH_OPS
from hotmem.report.comparison import Comparison, compare
from hotmem.report.measure import PlanResult
from hotmem.report.plan import Plan
from hotmem.report.units import human, iec

ONLINE_WORDS = {"online": "to its default zone", "online_kernel": "to the kernel zone",
                "online_movable": "movable"}


def _row(label, a, b, unit=""):
    return f"  {label:<44}{a:>22} {b:>21}  {unit}"


def _kv(d: dict) -> str:
    return ",".join(f"{k}:{v}" for k, v in d.items()) or "-"


def _levels(r: PlanResult, kind: str, arch: str = "x86_64") -> str:
    """The page tables of ``kind`` by level, in the arch's names of the levels (s390x's region
    and segment tables: ArchOps.level_names)."""
    total = Counter()
    for a in r.adds:
        total.update(a.page_tables.get(kind, {}))
    names = ARCH_OPS[arch].level_names if arch in ARCH_OPS else {}
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
    if kind == "acpi":
        # the ACPI DIMM platforms' row, as "MemTotal and DirectMap back" below: 0 where the
        # arch reports no DirectMap lines (arm64: no arch_report_meminfo)
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
