"""``hotmem sweep SPEC.toml``: the sub-command's options and its run (hotmem/cli.py wires it)."""
from __future__ import annotations

import sys


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="run a grid (or a search) of configurations; one table row "
                       "per point (Parquet/CSV)")
    p.add_argument("spec", metavar="SPEC.toml", help="the sweep spec (scenarios/sweeps/)")
    p.add_argument("-o", "--output", metavar="FILE", help="result table, .parquet or .csv "
                   "(default: the spec's [sweep] output, else SPEC.parquet)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on a Dask cluster")
    p.add_argument("--connect-timeout", type=float, default=10, metavar="S",
                   help="seconds to wait for the scheduler (default: %(default)s)")
    p.add_argument("-j", "--workers", type=int, help="local worker processes (default: all "
                   "cores)")
    p.add_argument("--timeout", type=float, metavar="S", help="stop a point after S seconds")
    p.add_argument("--no-resume", action="store_true", help="recompute points already done")
    p.add_argument("--progress", action="store_true", default=None,
                   help="progress on stderr even when it is not a terminal")
    p.add_argument("--yes", action="store_true", help="run a grid of more than 10^7 points")
    p.add_argument("--plot", metavar="FILE.png", help="draw the table (needs matplotlib)")


def main(args) -> int:
    import os

    import hotmem.sweep as hs
    from hotmem.sweep.plot import plot, render_search
    from hotmem.sweep.spec import load
    d, _ = load(args.spec)
    settings = d.get("sweep") if isinstance(d, dict) else None
    settings = settings if isinstance(settings, dict) else {}
    mode = settings.get("mode", "search" if "search" in d else "grid")
    out = args.output or settings.get("output") or os.path.splitext(args.spec)[0] + ".parquet"
    df = hs.run_sweep(args.spec, output=out, scheduler=args.scheduler, workers=args.workers,
                      timeout=args.timeout, resume=not args.no_resume, progress=args.progress,
                      yes=args.yes, connect_timeout=args.connect_timeout)
    if mode == "search":
        sys.stdout.write(render_search(df))
    else:
        counts = df.status.value_counts().to_dict()
        sys.stdout.write(f"hotmem sweep: {len(df)} points: "
                         + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + "\n")
    print(f"hotmem: table written to {out}", file=sys.stderr)
    if args.plot:
        plot(df, args.plot, mode)
        print(f"hotmem: plot written to {args.plot}", file=sys.stderr)
    return 0 if (df.status != "crash").all() else 1
