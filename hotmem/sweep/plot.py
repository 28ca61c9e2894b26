"""``hotmem sweep --plot``: overhead vs hot-added size per arch x version (grid mode), the
largest plan per configuration (search mode). Needs matplotlib (the ``plot`` extra)."""
from __future__ import annotations

import errno

from hotmem.errors import HotplugError


def _plt():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise HotplugError(errno.ENOENT, "--plot needs matplotlib: pip install 'hotmem[plot]'") \
            from exc
    return plt


def plot(df, path: str, mode: str = "grid") -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 5))
    if mode == "search":
        labels = [f"{r.arch} {r.kernel} mom={r.memmap_on_memory} boot={r.boot_memory}"
                  for r in df.itertuples()]
        vals = [(r.largest_ok or 0) / (1 << 30) for r in df.itertuples()]
        ax.barh(range(len(vals)), vals, color="tab:blue")
        ax.set_yticks(range(len(vals)), labels, fontsize=7)
        ax.set_xlabel("largest plan that hot-adds and onlines [GiB]"
                      if "largest_ok" in df and df.get("search_axis", [""]).iloc[0] == "dimm_size"
                      else "largest plan that hot-adds and onlines")
    else:
        ok = df[df.status == "ok"]
        for (arch, kernel, mom), g in ok.groupby(["arch", "kernel", "memmap_on_memory"]):
            g = g.groupby("hot_added_bytes")["overhead_bytes"].mean().sort_index()
            ax.plot(g.index / (1 << 30), g.values / (1 << 20), "o-",
                    label=f"{arch} {kernel} mom={mom}")
        ax.set_xlabel("hot-added [GiB]")
        ax.set_ylabel("memmap + page tables [MiB]")
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render_search(df) -> str:
    """The search results as a text table."""
    def gib(v):
        if v is None or v != v:
            return "-"
        return f"{v / (1 << 30):g}G" if v >= 1 << 20 else f"{int(v)}"
    head = f"{'arch':8} {'kernel':6} {'mom':5} {'boot':6} {'largest ok':>11} " \
           f"{'refused at':>11}  refused with"
    out = [head]
    for r in df.itertuples():
        d = r._asdict()
        if d["status"] not in ("ok", "none"):
            out.append(f"{r.arch:8} {r.kernel:6} {r.memmap_on_memory:5} {r.boot_memory:6} "
                       f"{'-':>11} {'-':>11}  {d['status']}: {r.errno} {r.error}")
            continue
        why = f"{r.errno}: {r.error}" if r.errno else "(none refused up to the search's max)"
        best = gib(d["largest_ok"])
        if d["smallest_refused"] != d["smallest_refused"] and d["largest_ok"] == d["search_max"]:
            best = ">=" + best
        out.append(f"{r.arch:8} {r.kernel:6} {r.memmap_on_memory:5} {r.boot_memory:6} "
                   f"{best:>11} {gib(d['smallest_refused']):>11}  {why}")
    return "\n".join(out) + "\n"
