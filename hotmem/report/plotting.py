"""The comparison as a figure (:func:`plot`, needs matplotlib: the ``plot`` extra)."""
from __future__ import annotations

import errno

from hotmem.errors import HotplugError
from hotmem.report.comparison import Comparison
from hotmem.report.units import GiB, MiB, iec


def plot(cmp: Comparison, path: str) -> None:
    """Two panels: overhead vs hot-added size (the "N costs" sizes) for altmap and regular
    memmap, and memmap pages per node for the plan. Needs matplotlib (the ``plot`` extra)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise HotplugError(errno.ENOENT, "--plot needs matplotlib: pip install 'hotmem[plot]'") \
            from exc
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    ok = [(a, r) for a, r in cmp.sizes if not a.error and not r.error]
    xs = [r.size / GiB for _, r in ok]
    if ok:
        left.plot(xs, [r.total_overhead_bytes / MiB for _, r in ok], ":", color="grey", lw=3,
                  label="memmap + page tables (both; altmap: memmap in the added range)")
        left.plot(xs, [r.taken_bytes / MiB for _, r in ok], "o-", color="tab:red",
                  label="regular: taken from existing memory")
        left.plot(xs, [a.taken_bytes / MiB for a, _ in ok], "s-", color="tab:blue",
                  label="altmap: taken from existing memory (page tables)")
        if len(xs) > 2 and min(xs) > 0:
            left.set_xscale("log", base=2)
            if any(r.total_overhead_bytes for _, r in ok):     # hash MMU: may all be zero
                left.set_yscale("log", base=2)
    standby = (cmp.machine.get("platform") or {}).get("hotplug") == "standby"
    left.set_xlabel("standby memory, paid at boot [GiB]" if standby else
                    "hot-added memory [GiB]")
    left.set_ylabel("overhead [MiB]")
    left.set_title("overhead vs hot-added size")
    left.grid(True, alpha=.3)
    left.legend(fontsize=8)
    page = cmp.machine["page_size"]
    alt_n, reg_n = cmp.altmap.memmap_by_node(), cmp.regular.memmap_by_node()
    nodes = sorted(set(alt_n) | set(reg_n) | {a.node for a in cmp.altmap.adds})
    idx = range(len(nodes))
    w = 0.38
    right.bar([i - w / 2 for i in idx], [alt_n.get(n, 0) * page / MiB for n in nodes], w,
              color="tab:blue", label="altmap")
    right.bar([i + w / 2 for i in idx], [reg_n.get(n, 0) * page / MiB for n in nodes], w,
              color="tab:red", label="regular")
    right.set_xticks(list(idx), [f"node {n}" for n in nodes])
    right.set_ylabel("memmap [MiB]")
    right.set_title(f"where the plan's memmap sits ({iec(sum(cmp.altmap.dimms))} hot-added)")
    right.legend(fontsize=8)
    mi = cmp.machine
    fig.suptitle(f"hotmem: {mi['arch']}, Linux {mi['kernel']}, memory block "
                 f"{iec(mi['memory_block_size'])}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
