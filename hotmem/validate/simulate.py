"""``hotmem simulate``: a scenario in the model only, with the readings after each step — a
summary by default, the files in full with ``full``."""
from __future__ import annotations

import numpy as np

from hotmem.render import parse_meminfo, parse_zoneinfo
from hotmem.validate.diff import _runs
from hotmem.validate.runner import Run
from hotmem.validate.scenario import MEMORY, Scenario


def _summary(sc: Scenario, reading: dict) -> list[str]:
    files = reading["files"]
    mi = parse_meminfo(files["/proc/meminfo"])
    out = [f"  MemTotal {mi.MemTotal} kB, MemFree {mi.MemFree} kB, DirectMap4k {mi.DirectMap4k} kB,"
           f" DirectMap2M {mi.DirectMap2M} kB"
           + (f", DirectMap1G {mi.DirectMap1G} kB" if mi.DirectMap1G is not None else "")]
    for node in parse_zoneinfo(files["/proc/zoneinfo"]):
        for z in node.zones:
            if z.spanned:
                out.append(f"  node{node.nid}/{z.name:<7} start_pfn {z.start_pfn:#x} spanned "
                           f"{z.spanned} present {z.present} managed {z.managed} free {z.free} "
                           f"min/low/high {z.min}/{z.low}/{z.high}")
    blocks = sorted(int(k.split("/memory")[2].split("/")[0]) for k in files
                    if k.startswith(f"{MEMORY}/memory") and k.endswith("/state"))
    groups: list[list] = []
    for b in blocks:
        key = tuple(files[f"{MEMORY}/memory{b}/{a}"].strip() for a in ("state", "valid_zones", "node"))
        if groups and groups[-1][1] == b - 1 and groups[-1][2] == key:
            groups[-1][1] = b
        else:
            groups.append([b, b, key])
    out.append("  blocks: " + "; ".join(
        (f"memory{a}" if a == b else f"memory{a}-{b}") + f" {k[0]} ({k[1]}, node {k[2]})"
        for a, b, k in groups))
    shift = sc.machine.page_shift
    names = {(s.addr >> shift, s.size >> shift): s.dimm for s in sc.steps
             if s.op in ("hotplug", "virtio_mem")}
    for key, words in sorted(reading["kpage"].items()):
        flags = np.asarray(words["flags"])
        out.append(f"  kpageflags {names.get(key, key)} pfn {key[0]:#x}+{key[1]}: "
                   f"{_runs(flags, 8) or '(beyond max_pfn: nothing read)'}")
    return out


def render_simulation(sc: Scenario, run: Run, full: bool = False) -> str:
    out = [f"hotmem simulate {sc.name}" + (f": {sc.description}" if sc.description else ""),
           f"cmdline: {sc.machine.cmdline}"]
    for res, spec in zip(run.steps, [None] + sc.steps):
        out.append("")
        status = "ok" if res.ok else f"refused: {res.error} ({res.detail})"
        out.append(f"step {res.name} ({res.op}): {status}")
        if res.reading is None:
            continue
        if full:
            for path, text in res.reading["files"].items():
                if path.startswith("/proc/") or path.endswith("/meminfo"):
                    out.append(f"--- {path}")
                    out.append(text.rstrip("\n"))
        out += _summary(sc, res.reading)
    return "\n".join(out) + "\n"
