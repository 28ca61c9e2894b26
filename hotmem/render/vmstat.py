"""/proc/vmstat, /proc/zoneinfo and /proc/buddyinfo (mm/vmstat.c, Linux 6.1)."""
from __future__ import annotations

import re
from typing import Iterable

from hotmem.render.model import (
    MAX_ORDER, NODE_STAT_ITEMS, NUMA_STAT_ITEMS, VMSTAT_ITEMS, WRITEBACK_STAT_ITEMS,
    ZONE_STAT_ITEMS,
    NodeInfo, NodeStats, NumaStat, Pageset, VmStat, ZoneInfo, ZoneStat,
)

# mm/vmstat.c:vmstat_show (6.1) appends this deprecated counter after the last item.
_DEPRECATED = "nr_unstable 0\n"


def render_vmstat(vm: VmStat, vm_stat_extra=()) -> str:
    """mm/vmstat.c:vmstat_show (6.1): "name value" per vmstat_text item, then nr_unstable 0.

    ``vm_stat_extra``: (name, value) pairs a later kernel's enum vm_stat_item has after
    nr_dirty_background_threshold (6.11: nr_memmap_pages, nr_memmap_boot_pages), printed there;
    every other item stays 6.1's."""
    items = vm.items()
    if vm_stat_extra:
        at = [n for n, _ in items].index(WRITEBACK_STAT_ITEMS[-1]) + 1
        items = items[:at] + list(vm_stat_extra) + items[at:]
    return "".join(f"{name} {value}\n" for name, value in items) + _DEPRECATED


def parse_vmstat_items(text: str) -> dict[str, int]:
    """Every "name value" line of any kernel's /proc/vmstat (6.11's nr_memmap_pages, 6.12's new
    events, ...), in file order."""
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[name] = int(value)
    return out


def parse_vmstat(text: str) -> VmStat:
    """Inverse of render_vmstat; the names must be exactly the 6.1 Debian list, in order."""
    lines = text.splitlines()
    if not lines or lines[-1] + "\n" != _DEPRECATED:
        raise ValueError("vmstat: missing trailing 'nr_unstable 0'")
    pairs = []
    for line in lines[:-1]:
        name, value = line.split(" ")
        pairs.append((name, int(value)))
    names = tuple(n for n, _ in pairs)
    if names != VMSTAT_ITEMS:
        diff = sorted(set(names) ^ set(VMSTAT_ITEMS)) or "order differs"
        raise ValueError(f"vmstat: items differ from the 6.1 Debian list: {diff}")
    return VmStat.from_items(pairs)


def _stat_line(name: str, value: int) -> str:
    return f"\n      {name:<12} {value}"


def _zoneinfo_zone(out: list[str], node: NodeInfo, zone: ZoneInfo, first_populated: bool):
    """mm/vmstat.c:zoneinfo_show_print (6.1; 6.12 adds the promo watermark line)."""
    out.append(f"Node {node.nid}, zone {zone.name:>8}")
    if first_populated:
        out.append("\n  per-node stats")
        out.extend(_stat_line(n, v) for n, v in node.stats.items())
    out.append(
        f"\n  pages free     {zone.free}"
        f"\n        boost    {zone.boost}"
        f"\n        min      {zone.min}"
        f"\n        low      {zone.low}"
        f"\n        high     {zone.high}"
        + (f"\n        promo    {zone.promo}" if zone.promo is not None else "")
        + f"\n        spanned  {zone.spanned}"
        f"\n        present  {zone.present}"
        f"\n        managed  {zone.managed}"
        f"\n        cma      {zone.cma}")
    out.append("\n        protection: (" + ", ".join(str(p) for p in zone.protection) + ")")
    if not zone.populated:
        out.append("\n")
        return
    out.extend(_stat_line(n, v) for n, v in zone.stats.items())
    out.extend(_stat_line(n, v) for n, v in zone.numa.items())
    out.append("\n  pagesets")
    for cpu in sorted(zone.pagesets):
        ps = zone.pagesets[cpu]
        out.append(
            f"\n    cpu: {cpu}"
            f"\n              count: {ps.count}"
            f"\n              high:  {ps.high}"
            f"\n              batch: {ps.batch}"
            f"\n  vm stats threshold: {ps.stat_threshold}")
    out.append(
        f"\n  node_unreclaimable:  {zone.node_unreclaimable}"
        f"\n  start_pfn:           {zone.start_pfn}\n")


def render_zoneinfo(nodes: Iterable[NodeInfo]) -> str:
    """mm/vmstat.c:zoneinfo_show (6.1): every zone of every online node (``nodes`` in nid order);
    the node's counters go in its first populated zone (is_zone_first_populated), unpopulated
    zones stop after "protection:"."""
    out: list[str] = []
    for node in nodes:
        first = next((z for z in node.zones if z.populated), None)
        for zone in node.zones:
            _zoneinfo_zone(out, node, zone, zone is first)
    return "".join(out)


def render_buddyinfo(nodes: Iterable[NodeInfo]) -> str:
    """mm/vmstat.c:frag_show_print (6.1): one row per populated zone, nr_free of each order."""
    out = []
    for node in nodes:
        for zone in node.zones:
            if not zone.populated:
                continue
            out.append(f"Node {node.nid}, zone {zone.name:>8} "
                       + "".join(f"{n:>6} " for n in zone.free_area) + "\n")
    return "".join(out)


_HEADER = re.compile(r"Node (\d+), zone +(\S+)")
_WATERMARKS = ("boost", "min", "low", "high", "spanned", "present", "managed", "cma")


class _Lines:
    def __init__(self, text: str):
        self.lines = text.splitlines()
        self.i = 0

    def peek(self) -> str | None:
        return self.lines[self.i] if self.i < len(self.lines) else None

    def take(self, prefix: str) -> str:
        line = self.peek()
        if line is None or not line.startswith(prefix):
            raise ValueError(f"zoneinfo line {self.i + 1}: expected {prefix!r}, got {line!r}")
        self.i += 1
        return line[len(prefix):]

    def counters(self, names: tuple[str, ...]) -> dict[str, int]:
        """Consume "      name value" lines whose name is in ``names``."""
        values = {}
        while (line := self.peek()) is not None and line.startswith("      "):
            parts = line.split()
            if len(parts) != 2 or parts[0] not in names:
                break
            values[parts[0]] = int(parts[1])
            self.i += 1
        return values

    def all_counters(self) -> dict[str, int]:
        """Consume every "      name value" line (another kernel's item list: 6.12's has
        items 6.1's has not)."""
        values = {}
        while (line := self.peek()) is not None and line.startswith("      "):
            parts = line.split()
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                break
            values[parts[0]] = int(parts[1])
            self.i += 1
        return values


def parse_zoneinfo(text: str, lenient: bool = False) -> list[NodeInfo]:
    """Inverse of render_zoneinfo (buddyinfo's free_area stays 0; see parse_buddyinfo).
    ``lenient``: another kernel's zoneinfo (6.12): counters 6.1 does not have are skipped."""
    src = _Lines(text)
    nodes: list[NodeInfo] = []
    while src.peek() is not None:
        m = _HEADER.fullmatch(src.peek())
        if not m:
            raise ValueError(f"zoneinfo line {src.i + 1}: expected a zone header")
        src.i += 1
        nid, name = int(m.group(1)), m.group(2)
        if not nodes or nodes[-1].nid != nid:
            nodes.append(NodeInfo(nid=nid, zones=[]))
        node = nodes[-1]
        zone = ZoneInfo(name=name)
        node.zones.append(zone)
        if src.peek() == "  per-node stats":
            src.i += 1
            if lenient:
                node.stats = NodeStats.from_mapping(
                    {k: v for k, v in src.all_counters().items() if k in NODE_STAT_ITEMS})
            else:
                node.stats = NodeStats.from_mapping(src.counters(NODE_STAT_ITEMS))
        zone.free = int(src.take("  pages free "))
        for key in _WATERMARKS:
            setattr(zone, key, int(src.take(f"        {key} ")))
            if key == "high" and (src.peek() or "").startswith("        promo "):
                zone.promo = int(src.take("        promo "))
        prot = src.take("        protection: (")
        zone.protection = tuple(int(p) for p in prot.rstrip(")").split(", "))
        if not (src.peek() or "").startswith("      "):
            continue            # unpopulated: nothing more is printed
        if lenient:
            got = src.all_counters()
            zone.stats = ZoneStat.from_mapping({k: v for k, v in got.items()
                                                if k in ZONE_STAT_ITEMS})
            zone.numa = NumaStat.from_mapping({k: v for k, v in got.items()
                                               if k in NUMA_STAT_ITEMS})
        else:
            zone.stats = ZoneStat.from_mapping(src.counters(ZONE_STAT_ITEMS))
            zone.numa = NumaStat.from_mapping(src.counters(NUMA_STAT_ITEMS))
        src.take("  pagesets")
        while (src.peek() or "").startswith("    cpu: "):
            cpu = int(src.take("    cpu: "))
            zone.pagesets[cpu] = Pageset(
                count=int(src.take("              count: ")),
                high=int(src.take("              high:  ")),
                batch=int(src.take("              batch: ")),
                stat_threshold=int(src.take("  vm stats threshold: ")))
        zone.node_unreclaimable = int(src.take("  node_unreclaimable:  "))
        zone.start_pfn = int(src.take("  start_pfn:           "))
    return nodes


def parse_buddyinfo(text: str) -> dict[tuple[int, str], tuple[int, ...]]:
    """Inverse of render_buddyinfo: (nid, zone name) -> nr_free per order, in file order. The
    number of orders is the kernel's (NR_PAGE_ORDERS: 11 on x86_64, 9 on 6.1's 64K-page
    powerpc64, 13 on 6.12's 4K-page powerpc64), the same on every line, at most 64 (an
    order is a shift of an unsigned long)."""
    rows = {}
    width = None
    for line in text.splitlines():
        head, _, counts = line.partition(", zone ")
        parts = counts.split()
        width = len(parts) if width is None else width
        if (not head.startswith("Node ") or len(parts) != width
                or not 2 <= len(parts) <= 65):
            raise ValueError(f"buddyinfo: unexpected line {line!r}")
        rows[(int(head[5:]), parts[0])] = tuple(int(p) for p in parts[1:])
    return rows


def apply_buddyinfo(nodes: Iterable[NodeInfo], rows: dict[tuple[int, str], tuple[int, ...]]):
    """Set each zone's free_area from parse_buddyinfo rows (zones without a row keep theirs)."""
    for node in nodes:
        for zone in node.zones:
            if (node.nid, zone.name) in rows:
                zone.free_area = rows[(node.nid, zone.name)]
