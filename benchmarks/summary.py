"""Summarise a benchmark run: the ratio of each group against its baseline, the targets of
issue #17 (met or missed; a size this machine could not run is projected from the largest one
it ran, and says so), how the scale runs grow, and the machine the run was made on.

    python benchmarks/summary.py benchmarks/last-run.json \
        --profile benchmarks/last-profile.txt --readme benchmarks/README.md

Without --readme the markdown goes to stdout; with it, it replaces the part of the README between
the ``<!-- last-run -->`` markers. Ratios use each benchmark's minimum time, the round least
disturbed by the rest of the machine.
"""
import argparse
import json
import math
import re
import sys

GiB, TiB = 1 << 30, 1 << 40
BEGIN, END = "<!-- last-run:begin -->", "<!-- last-run:end -->"
#: issue #17: (size, seconds, peak bytes) of the x86_64 scale group
SCALE_TARGETS = ((16 * TiB, 15.0, 1 * GiB), (64 * TiB, 60.0, 2 * GiB))
ARCH_TARGET = (16 * TiB, 60.0)              # arm64 4K and powerpc64 radix
BOOT_TARGET = (16 * TiB, 5.0)
BLOCK_RATE_TARGET = 200e6                   # online / offline of one 2 GiB block, pages/s


def _size(n: int) -> str:
    return f"{n / TiB:g} TiB" if n >= TiB else f"{n / GiB:g} GiB"


def _time_target(runs, size, limit, label):
    """(target, measured, verdict) of "``label`` ``size`` <= ``limit`` s" from the runs of one
    group (sorted by size): measured if that size ran, else projected from the largest that did
    (linearly, and at the growth exponent between the two largest)."""
    name = f"{label} {_size(size)} <= {limit:g} s"
    for b in runs:
        if b["extra_info"]["size"] == size:
            t = b["stats"]["min"]
            return name, _ms(t), _verdict(t <= limit)
    if not runs:
        return name, "not run", "n/a"
    big = runs[-1]
    t, f = big["stats"]["min"], size / big["extra_info"]["size"]
    k = 1.0
    if len(runs) > 1:
        prev = runs[-2]
        k = math.log(t / prev["stats"]["min"]) / math.log(big["extra_info"]["size"]
                                                          / prev["extra_info"]["size"])
    lin, fit = t * f, t * f ** max(k, 1.0)
    return (name, f"not runnable here; from {_size(big['extra_info']['size'])} ({_ms(t)}): "
            f"{lin:.0f} s linear, {fit:.0f} s at the measured growth (exponent {k:.2f})",
            _verdict(lin <= limit))


def _memory_target(runs, size, limit, label):
    name = f"{label} {_size(size)} <= {_gib(limit)} peak memory"
    for b in runs:
        if b["extra_info"]["size"] == size:
            g = b["extra_info"]["peak_rss_growth"]
            return name, _gib(g), _verdict(g <= limit)
    if not runs:
        return name, "not run", "n/a"
    e = runs[-1]["extra_info"]
    need = e["bytes_per_page"] * e["pages"] * size / e["size"]
    return (name, f"not runnable here; {e['bytes_per_page']:.1f} B per page measured at "
            f"{_size(e['size'])} -> {_gib(need)}", _verdict(need <= limit))


def _find(benches, group_prefix, param=None):
    for b in benches:
        if b["group"].startswith(group_prefix) and (param is None or b.get("param") == param):
            return b
    return None


def _ms(s: float) -> str:
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def _gib(n: float) -> str:
    return f"{n / GiB:.2f} GiB"


def _verdict(ok) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def summarize(run: dict, profile: str | None = None) -> str:
    benches = run["benchmarks"]
    mi, ci = run.get("machine_info", {}), run.get("commit_info", {})
    cpu = mi.get("cpu", {})
    lines = [
        f"Run {run.get('datetime', '?')[:19].replace('T', ' ')} UTC, hotmem commit "
        f"`{ci.get('id', '?')[:10]}`{' (with uncommitted changes)' if ci.get('dirty') else ''}, "
        "`make bench`.",
        f"Machine: {cpu.get('brand_raw', mi.get('processor', '?'))}, "
        f"{mi.get('usable_cpus', cpu.get('count', '?'))} usable CPUs, "
        f"{_gib(mi.get('mem_total_bytes') or 0)} RAM, {mi.get('system', '')} "
        f"{mi.get('release', '')}, {mi.get('python_implementation', '')} "
        f"{mi.get('python_version', '')}.",
        "Ratios use each benchmark's minimum time (the least disturbed round).",
        "",
    ]
    targets = []                        # (no, target, measured, verdict)

    alt, reg = _find(benches, "1 ", "altmap"), _find(benches, "1 ", "regular")
    if alt and reg:
        r = reg["stats"]["min"] / alt["stats"]["min"]
        targets.append(("1", "cycle, regular memmap / memmap on memory (no target)",
                        f"{r:.2f}x ({_ms(reg['stats']['min'])} / {_ms(alt['stats']['min'])})",
                        "n/a"))
    comp, py = _find(benches, "2 ", "compiled"), _find(benches, "2 ", "python")
    if comp and py:
        r = py["stats"]["min"] / comp["stats"]["min"]
        targets.append(("2", "128 MiB cycle, compiled core >= 100x the pure-Python twin",
                        f"{r:.1f}x ({_ms(py['stats']['min'])} / {_ms(comp['stats']['min'])})",
                        _verdict(r >= 100)))
    model, fill = _find(benches, "3 cycle", "model"), _find(benches, "3 cycle", "numpy-fill")
    if model and fill:
        r = model["stats"]["min"] / fill["stats"]["min"]
        rm = model["stats"]["mean"] / fill["stats"]["mean"]
        targets.append(("3", "128 MiB cycle, model <= 3x a numpy fill of its per-page state",
                        f"{r:.2f}x ({_ms(model['stats']['min'])} / {_ms(fill['stats']['min'])}; "
                        f"means: {rm:.2f}x)", _verdict(r <= 3)))
    for op in ("online", "offline"):
        for size in ("2G", "128M"):
            b = _find(benches, f"3 {op}", size)
            if b:
                rate = b["extra_info"]["pages"] / b["stats"]["min"]
                goal = BLOCK_RATE_TARGET if size == "2G" else 50e6     # 128M: issue #7's
                targets.append(("3", f"{op} of one {size} block >= {goal / 1e6:.0f} M pages/s",
                                f"{rate / 1e6:.1f} M pages/s ({_ms(b['stats']['min'])} for "
                                f"{b['extra_info']['pages']} pages)", _verdict(rate >= goal)))
    scale = sorted((b for b in benches if b["group"].startswith("4 ")),
                   key=lambda b: b["extra_info"]["size"])
    growth = []
    for prev, b in zip([None] + scale, scale):
        e = b["extra_info"]
        k_t = k_m = None
        if prev is not None:
            pe = prev["extra_info"]
            f = math.log(e["size"] / pe["size"])
            k_t = math.log(b["stats"]["min"] / prev["stats"]["min"]) / f
            k_m = math.log(e["peak_rss_growth"] / pe["peak_rss_growth"]) / f
        growth.append((b, k_t, k_m))
    for size, limit_s, limit_b in SCALE_TARGETS:
        targets.append(("4", *_time_target(scale, size, limit_s, "hot-add + online")))
        targets.append(("4", *_memory_target(scale, size, limit_b, "hot-add + online")))
    arch_runs: dict = {}
    for b in benches:
        if b["group"].startswith("4a "):
            arch_runs.setdefault(b["extra_info"]["arch"], []).append(b)
    for arch, runs in sorted(arch_runs.items()):
        runs.sort(key=lambda b: b["extra_info"]["size"])
        targets.append(("4a", *_time_target(runs, ARCH_TARGET[0], ARCH_TARGET[1],
                                            f"{arch}: hot-add + online")))
    boots = sorted((b for b in benches if b["group"].startswith("5 ")),
                   key=lambda b: b["extra_info"]["size"])
    if boots:
        targets.append(("5", *_time_target(boots, BOOT_TARGET[0], BOOT_TARGET[1], "boot")))
    lines += ["### Targets", "", "| group | target | measured | verdict |", "|---|---|---|---|"]
    lines += [f"| {n} | {t} | {m} | {v} |" for n, t, m, v in targets]

    lines += ["", "### Every benchmark", "",
              "| group | benchmark | min | mean | rounds |", "|---|---|---|---|---|"]
    for b in benches:
        s = b["stats"]
        lines.append(f"| {b['group']} | `{b['name']}` | {_ms(s['min'])} | {_ms(s['mean'])} | "
                     f"{s['rounds']} |")

    arch_all = [b for runs in arch_runs.values() for b in runs]
    if boots:
        lines += ["", "### Boot", "", "| size | time | peak memory | bytes/page | slowest steps |",
                  "|---|---|---|---|---|"]
        for b in boots:
            e = b["extra_info"]
            slow = ", ".join(f"{k} {_ms(v)}" for k, v in
                             sorted(e.get("steps", {}).items(), key=lambda kv: -kv[1])[:3])
            lines.append(f"| {_size(e['size'])} | {_ms(b['stats']['min'])} | "
                         f"{_gib(e['peak_rss_growth'])} | {e['bytes_per_page']:.1f} | {slow} |")
    if arch_all:
        lines += ["", "### Scale, other arches", "",
                  "| arch | size | blocks | time | per block | pages/s | peak memory | bytes/page |",
                  "|---|---|---|---|---|---|---|---|"]
        for b in arch_all:
            e = b["extra_info"]
            lines.append(f"| {e['arch']} | {_size(e['size'])} | {e['blocks']} | "
                         f"{_ms(b['stats']['min'])} | {_ms(b['stats']['min'] / e['blocks'])} | "
                         f"{e['pages_per_s'] / 1e6:.1f} M | {_gib(e['peak_rss_growth'])} | "
                         f"{e['bytes_per_page']:.1f} |")
    if scale:
        lines += ["", "### Scale: hot-add + online in 2 GiB blocks", "",
                  "| size | blocks | time | add | online | pages/s | peak memory above boot | "
                  "bytes/page | time exponent | memory exponent |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for b, k_t, k_m in growth:
            e = b["extra_info"]
            size = f"{e['size'] / TiB:g} TiB" if e["size"] >= TiB else f"{e['size'] / GiB:g} GiB"
            kt, km = ("-" if k is None else f"{k:.2f}" for k in (k_t, k_m))
            lines.append(
                f"| {size} | {e['blocks']} | {_ms(b['stats']['min'])} "
                f"({_ms(b['stats']['min'] / e['blocks'])}/block) | {_ms(e['add_s'])} | "
                f"{_ms(e['online_s'])} | {e['pages_per_s'] / 1e6:.1f} M | "
                f"{_gib(e['peak_rss_growth'])} | {e['bytes_per_page']:.1f} | {kt} | {km} |")
        lines += ["", "Exponent k between a size and the one before: time (or memory) grows as "
                  "size^k; 1.00 is linear."]

    if profile:
        lines += ["", "### Profile (top of `benchmarks/last-profile.txt`, own time)", "", "```"]
        for section in re.split(r"\n(?=== )", profile.strip()):
            sec = section.splitlines()
            lines += sec[:8] + [""]
        lines[-1:] = ["```"]
    return "\n".join(lines) + "\n"


def replace_section(readme: str, body: str) -> str:
    block = f"{BEGIN}\n{body}{END}"
    if BEGIN in readme and END in readme:
        return re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, readme,
                      flags=re.S)
    return readme.rstrip() + "\n\n## Last run\n\n" + block + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json", help="pytest-benchmark JSON (benchmarks/last-run.json)")
    p.add_argument("--profile", help="profile text of benchmarks/profile_model.py")
    p.add_argument("--readme", help="README to update between the last-run markers")
    args = p.parse_args(argv)
    with open(args.json) as f:
        run = json.load(f)
    profile = None
    if args.profile:
        try:
            with open(args.profile) as f:
                profile = f.read()
        except OSError:
            profile = None
    body = summarize(run, profile)
    if args.readme:
        try:
            with open(args.readme) as f:
                readme = f.read()
        except FileNotFoundError:
            readme = "# Benchmarks\n"
        with open(args.readme, "w") as f:
            f.write(replace_section(readme, body))
    else:
        sys.stdout.write(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
