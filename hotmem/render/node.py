"""/sys/devices/system/node texts (drivers/base/node.c, lib/vsprintf.c; Linux 6.1)."""
from __future__ import annotations

import re
from typing import Iterable

from hotmem.render.model import NodeMemInfo

# (field, label as printed after "Node %d ", width, suffix): node_read_meminfo's "%8lu kB"
# lines, then hugetlb_report_node_meminfo's "%5u" lines. FileHugePages/FilePmdMapped are one
# space short in the kernel's format string.
_KB8 = (8, " kB\n")
_LINES: tuple[tuple[str, str, int, str], ...] = tuple(
    (f, p) + fmt for f, p, fmt in (
        ("MemTotal", "MemTotal:       ", _KB8),
        ("MemFree", "MemFree:        ", _KB8),
        ("MemUsed", "MemUsed:        ", _KB8),
        ("SwapCached", "SwapCached:     ", _KB8),
        ("Active", "Active:         ", _KB8),
        ("Inactive", "Inactive:       ", _KB8),
        ("Active_anon", "Active(anon):   ", _KB8),
        ("Inactive_anon", "Inactive(anon): ", _KB8),
        ("Active_file", "Active(file):   ", _KB8),
        ("Inactive_file", "Inactive(file): ", _KB8),
        ("Unevictable", "Unevictable:    ", _KB8),
        ("Mlocked", "Mlocked:        ", _KB8),
        ("Dirty", "Dirty:          ", _KB8),
        ("Writeback", "Writeback:      ", _KB8),
        ("FilePages", "FilePages:      ", _KB8),
        ("Mapped", "Mapped:         ", _KB8),
        ("AnonPages", "AnonPages:      ", _KB8),
        ("Shmem", "Shmem:          ", _KB8),
        ("KernelStack", "KernelStack:    ", _KB8),
        ("PageTables", "PageTables:     ", _KB8),
        ("SecPageTables", "SecPageTables:  ", _KB8),
        ("NFS_Unstable", "NFS_Unstable:   ", _KB8),
        ("Bounce", "Bounce:         ", _KB8),
        ("WritebackTmp", "WritebackTmp:   ", _KB8),
        ("KReclaimable", "KReclaimable:   ", _KB8),
        ("Slab", "Slab:           ", _KB8),
        ("SReclaimable", "SReclaimable:   ", _KB8),
        ("SUnreclaim", "SUnreclaim:     ", _KB8),
        ("AnonHugePages", "AnonHugePages:  ", _KB8),   # CONFIG_TRANSPARENT_HUGEPAGE
        ("ShmemHugePages", "ShmemHugePages: ", _KB8),
        ("ShmemPmdMapped", "ShmemPmdMapped: ", _KB8),
        ("FileHugePages", "FileHugePages: ", _KB8),
        ("FilePmdMapped", "FilePmdMapped: ", _KB8),
        ("HugePages_Total", "HugePages_Total: ", (5, "\n")),
        ("HugePages_Free", "HugePages_Free:  ", (5, "\n")),
        ("HugePages_Surp", "HugePages_Surp:  ", (5, "\n")),
    )
)
_BY_LABEL = {p.split(":")[0]: f for f, p, _, _ in _LINES}
# drivers/base/node.c:node_state_attrs (6.1, no HIGHMEM): the files under system/node.
NODE_STATE_FILES = ("possible", "online", "has_normal_memory", "has_memory", "has_cpu",
                    "has_generic_initiator")
_NODE_LINE = re.compile(r"Node (\d+) ([^:]+):\s+(\d+)(?: kB)?")


def render_node_meminfo(nid: int, mi: NodeMemInfo) -> str:
    """drivers/base/node.c:node_read_meminfo + mm/hugetlb.c:hugetlb_report_node_meminfo (6.1)."""
    return "".join(f"Node {nid} {prefix}{getattr(mi, name):>{width}}{suffix}"
                   for name, prefix, width, suffix in _LINES)


def parse_node_meminfo(text: str) -> tuple[int, NodeMemInfo]:
    """Inverse of render_node_meminfo: (nid, values)."""
    nids, values = set(), {}
    for line in text.splitlines():
        m = _NODE_LINE.fullmatch(line)
        if not m or m.group(2) not in _BY_LABEL:
            raise ValueError(f"node meminfo: unexpected line {line!r}")
        nids.add(int(m.group(1)))
        values[_BY_LABEL[m.group(2)]] = int(m.group(3))
    if len(nids) != 1:
        raise ValueError(f"node meminfo: lines of nodes {sorted(nids)}")
    return nids.pop(), NodeMemInfo(**values)


def render_nodelist(ids: Iterable[int]) -> str:
    """drivers/base/node.c:show_node_state (6.1): "%*pbl\n", the bitmap as ranges
    (lib/vsprintf.c:bitmap_list_string): "0-3,5"; an empty mask prints just "\n"."""
    runs: list[list[int]] = []
    for i in sorted(set(ids)):
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) + "\n"


def parse_nodelist(text: str) -> set[int]:
    """Inverse of render_nodelist (kernel bitmap list format, e.g. "0-3,5")."""
    ids: set[int] = set()
    body = text.strip()
    for part in body.split(",") if body else ():
        a, _, b = part.partition("-")
        ids.update(range(int(a), int(b or a) + 1))
    return ids
