"""Summarise a benchmark run: the ratio of each group against its baseline, the targets of
issue #7 (met or missed), how the scale runs grow, and the machine the run was made on.

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
TARGET_16T_S, TARGET_16T_BYTES = 60.0, 8 * GiB


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
        targets.append(("2", "cycle, pure-Python twin / compiled core >= 100x",
                        f"{r:.1f}x ({_ms(py['stats']['min'])} / {_ms(comp['stats']['min'])})",
                        _verdict(r >= 100)))
    model, fill = _find(benches, "3 cycle", "model"), _find(benches, "3 cycle", "numpy-fill")
    if model and fill:
        r = model["stats"]["min"] / fill["stats"]["min"]
        rm = model["stats"]["mean"] / fill["stats"]["mean"]
        targets.append(("3", "cycle, model / numpy fill of the per-page state <= 3x",
                        f"{r:.2f}x ({_ms(model['stats']['min'])} / {_ms(fill['stats']['min'])}; "
                        f"means: {rm:.2f}x)", _verdict(r <= 3)))
    for op in ("online", "offline"):
        for size in ("2G", "128M"):
            b = _find(benches, f"3 {op}", size)
            if b:
                rate = b["extra_info"]["pages"] / b["stats"]["min"]
                targets.append(("3", f"{op} of a {size} block >= 50 M pages/s",
                                f"{rate / 1e6:.1f} M pages/s ({_ms(b['stats']['min'])} for "
                                f"{b['extra_info']['pages']} pages)", _verdict(rate >= 50e6)))
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
    if scale:
        big = scale[-1]
        e, t = big["extra_info"], big["stats"]["min"]
        measured_16t = e["size"] >= 16 * TiB
        f = 16 * TiB / e["size"]
        k = growth[-1][1] if len(growth) > 1 and growth[-1][1] else 1.0
        t16_lin, t16_fit = t * f, t * f ** max(k, 1.0)
        m16 = e["bytes_per_page"] * (16 * TiB >> 12)
        if measured_16t:
            targets.append(("4", "hot-add + online 16 TiB <= 60 s", _ms(t), _verdict(t <= 60)))
            targets.append(("4", "hot-add + online 16 TiB <= 8 GiB peak memory",
                            _gib(e["peak_rss_growth"]), _verdict(e["peak_rss_growth"] <= 8 * GiB)))
        else:
            size = f"{e['size'] / TiB:g} TiB" if e["size"] >= TiB else f"{e['size'] / GiB:g} GiB"
            targets.append(("4", "hot-add + online 16 TiB <= 60 s",
                            f"not runnable here; from {size} ({_ms(t)}): {t16_lin:.0f} s linear, "
                            f"{t16_fit:.0f} s at the measured growth (exponent {k:.2f})",
                            _verdict(t16_lin <= TARGET_16T_S)))
            targets.append(("4", "hot-add + online 16 TiB <= 8 GiB peak memory",
                            f"not runnable here; {e['bytes_per_page']:.1f} B per page measured "
                            f"at {size} -> {_gib(m16)}", _verdict(m16 <= TARGET_16T_BYTES)))
    lines += ["### Targets", "", "| group | target | measured | verdict |", "|---|---|---|---|"]
    lines += [f"| {n} | {t} | {m} | {v} |" for n, t, m, v in targets]

    lines += ["", "### Every benchmark", "",
              "| group | benchmark | min | mean | rounds |", "|---|---|---|---|---|"]
    for b in benches:
        s = b["stats"]
        lines.append(f"| {b['group']} | `{b['name']}` | {_ms(s['min'])} | {_ms(s['mean'])} | "
                     f"{s['rounds']} |")

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
                f"| {size} | {e['blocks']} | {_ms(b['stats']['min'])} | {_ms(e['add_s'])} | "
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
