"""The diff report as text: per step, every difference and every noise figure in full, the equal
observables counted (``verbose`` lists them too), then a summary."""
from __future__ import annotations

from collections import Counter

from hotmem.validate.diff import Diff, Observable
from hotmem.validate.runner import Run
from hotmem.validate.scenario import Scenario

_TAG = {("exact", "different"): "DIFFERENT", ("predicted", "different"): "DIFFERENT",
        ("boot", "different"): "boot-diff"}


def _value(v) -> str:
    if isinstance(v, str):
        return repr(v.rstrip("\n")) if v.endswith("\n") or not v else v
    return str(v)


def _line(o: Observable) -> str:
    tag = _TAG.get((o.kind, o.status), o.status)
    head = f"  {tag:<9} {o.file} {o.name}"
    if o.status == "equal":
        return f"{head}: {_value(o.model)}"
    text = f"{head}: model {_value(o.model)}, kernel {_value(o.real)}"
    return text + (f" ({o.note})" if o.note else "")


def _step_header(sc: Scenario, name: str, model: Run, real: Run) -> str:
    spec = next((s for s in sc.steps if s.name == name), None)
    if spec is None:
        return f"step {name}"
    what = {"hotplug": lambda s: f"hotplug {s.dimm}: {s.size >> 20} MiB at {s.addr:#x} node {s.node}",
            "online": lambda s: f"{s.how} {s.dimm}", "offline": lambda s: f"offline {s.dimm}",
            "eject": lambda s: f"eject {s.dimm}", "read": lambda s: "reading",
            "write": lambda s: f"echo {s.value} > {s.path}"}[spec.op](spec)
    reading = "" if spec.read else " (no reading after it)"
    return f"step {name}: {what}{reading}"


def render_report(sc: Scenario, model: Run, real: Run, diff: Diff, verbose: bool = False,
                  strict: bool = False) -> str:
    info = real.info
    out = [f"hotmem validate {sc.name}" + (f": {sc.description}" if sc.description else ""),
           f"kernel: {info.get('release', '?')} {info.get('version', '')}".rstrip(),
           f"        {info.get('qemu', '')}, boot {info.get('boot_s', '?')} s, "
           f"run {info.get('total_s', '?')} s",
           f"cmdline: {info.get('cmdline', '')}"]
    if model.info.get("boot_reserved_pages") is not None:
        out.append(f"model: boot reservation recalibrated to {model.info['boot_reserved_pages']} "
                   f"pages ({model.info.get('calibration_pages', 0):+d}: this kernel's boot "
                   "MemTotal differs from the reference run's)")
    out += [f"note: {n}" for n in diff.notes]
    by_step: dict[str, list[Observable]] = {}
    for o in diff.observables:
        by_step.setdefault(o.step, []).append(o)
    seen_boot: set = set()
    for step in [s.name for s in model.steps]:
        obs = by_step.get(step, [])
        if not obs:
            continue
        out.append("")
        out.append(_step_header(sc, step, model, real))
        equal = [o for o in obs if o.status == "equal" and o.kind != "workload"]
        shown = [o for o in obs if o.kind != "workload" and o.status != "equal"]
        boot = lambda o: (o.file, o.name, repr(o.model), repr(o.real))
        repeated = [o for o in shown if o.kind == "boot" and boot(o) in seen_boot and not verbose]
        for o in sorted(shown, key=lambda o: (o.status != "different", o.kind == "boot")):
            if o not in repeated:
                out.append(_line(o))
        if repeated:
            out.append(f"  boot-diff {len(repeated)} as before ("
                       + ", ".join(sorted({o.file for o in repeated})) + ")")
        seen_boot |= {boot(o) for o in shown if o.kind == "boot"}
        work = [o for o in obs if o.kind == "workload"]
        if verbose:
            out += [_line(o) for o in equal]
            out += [_line(o) for o in work if o.status != "equal"]
        elif equal:
            per_file = Counter(o.file for o in equal)
            out.append(f"  equal     {len(equal)} observables ("
                       + ", ".join(f"{f} {n}" for f, n in sorted(per_file.items())) + ")")
        changed = sum(1 for o in work if o.status != "equal")
        if work:
            out.append(f"  workload  {len(work)} counters the model does not run "
                       f"(page cache, slab, anon, events, pcp fill, free lists): {changed} differ")
    out += ["", render_summary(diff, strict)]
    return "\n".join(out) + "\n"


def render_summary(diff: Diff, strict: bool = False) -> str:
    obs = [o for o in diff.observables if o.kind != "workload"]
    count = Counter((o.kind, o.status) for o in obs)
    exact = count["exact", "equal"] + count["exact", "different"] + count["exact", "noise"]
    pred = [o for o in obs if o.kind == "predicted"]
    leftovers = [abs(int(o.note.split()[1])) for o in pred
                 if o.note.startswith("leftover") and o.note.split()[2] == "pages"]
    guest_pages = [int(o.note.split()[0]) for o in obs
                   if o.file == "kpageflags" and o.status == "noise"]
    lines = [
        f"summary {diff.scenario}: {len(diff.exact_mismatches)} exact mismatch(es)",
        f"  exact      {exact} compared: {count['exact', 'equal']} equal, "
        f"{count['exact', 'different']} different, {count['exact', 'noise']} kpage ranges with "
        f"guest-used pages (at most {max(guest_pages, default=0)} pages)",
        f"  predicted  {len(pred)} free-page changes: {count['predicted', 'equal']} equal, "
        f"{count['predicted', 'noise']} within noise (largest leftover "
        f"{max(leftovers, default=0)} pages), {count['predicted', 'different']} beyond it",
        f"  boot       {count['boot', 'equal'] + count['boot', 'different']} boot-description "
        f"values: {count['boot', 'equal']} equal, {count['boot', 'different']} different"
        + (" (counted: --strict)" if strict else " (not counted; --strict counts them)"),
        f"  result     {'PASS' if diff.ok(strict) else 'FAIL'}",
    ]
    return "\n".join(lines)
