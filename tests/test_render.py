"""hotmem.render against the real Linux 6.1 readings: for every reading of every scenario, the
dataclasses built from the recorded values render back the kernel's text byte for byte.

The readings' ``raw`` texts are the files as the kernel printed them minus the final newline;
``parsed`` holds values the recording harness extracted independently of hotmem. Where ``parsed``
lacks something (zoneinfo's per-node counters, buddyinfo rows, the iomem tree) a small parser in
this file or the package's parser (then checked against ``parsed``) fills it in.
"""
from __future__ import annotations

import functools
import glob
import json
import os
import re

import pytest

from hotmem.render import (
    MAX_NR_ZONES, MEM_GOING_OFFLINE, MEM_OFFLINE, MEM_ONLINE, MMOP_ONLINE_MOVABLE, VMSTAT_ITEMS,
    MemInfo, MemoryBlockInfo, MemoryHotplugParams, NodeInfo, NodeMemInfo, NodeStats, NumaStat,
    Pageset, Resource, VmStat, ZoneInfo, ZoneStat, apply_buddyinfo, iomem_root, parse_buddyinfo,
    parse_iomem, parse_meminfo, parse_node_meminfo, parse_nodelist, parse_valid_zones,
    parse_vmstat, parse_zoneinfo, render_auto_online_blocks, render_block_size_bytes,
    render_buddyinfo, render_iomem, render_meminfo, render_memory_block,
    render_memory_hotplug_params, render_node_meminfo, render_nodelist, render_valid_zones,
    render_vmstat, render_zoneinfo,
)
from hotmem.render.model import NODE_STAT_ITEMS, NUMA_STAT_ITEMS, ZONE_NAMES, ZONE_STAT_ITEMS

READINGS_DIR = os.environ.get("HOTMEM_READINGS", os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "kernel-6.1-readings"))
FILES = sorted(glob.glob(os.path.join(READINGS_DIR, "*.json")))


@functools.lru_cache(maxsize=None)
def _load(path):
    with open(path) as f:
        return json.load(f)


def _readings_of(path):
    return [(path, si, ri) for si, step in enumerate(_load(path)["steps"])
            for ri in range(len(step.get("readings", ())))]


def _name(rid):
    path, si, ri = rid
    step = _load(path)["steps"][si]
    return f"{os.path.basename(path)[:-5]}:{step['name']}:{ri}"


def _reading(rid):
    path, si, ri = rid
    return _load(path)["steps"][si]["readings"][ri]


def every_reading(check):
    """Run ``check(rid)`` on every reading of a scenario file (one test per file keeps the
    suite fast); a failure names the reading."""
    @pytest.mark.skipif(not FILES, reason="no kernel-6.1 readings on this machine")
    @pytest.mark.parametrize("path", FILES, ids=[os.path.basename(f)[:-5] for f in FILES])
    def test(path):
        for rid in _readings_of(path):
            try:
                check(rid)
            except AssertionError as e:
                raise AssertionError(f"{_name(rid)}: {e}") from None
    test.__name__, test.__doc__ = check.__name__, check.__doc__
    return test


def _kernel_text(r, key):
    """The file exactly as the kernel printed it (the recording dropped the last newline)."""
    return r["raw"][key] + "\n"


def _field(label):
    return label.replace("(", "_").replace(")", "")


# --- /proc/meminfo ------------------------------------------------------------------------------

@every_reading
def test_meminfo(rid):
    r = _reading(rid)
    parsed = r["parsed"]["meminfo"]
    mi = MemInfo(**{_field(k): v for k, v in parsed.items()})
    assert render_meminfo(mi) == _kernel_text(r, "meminfo")
    assert parse_meminfo(r["raw"]["meminfo"]) == mi
    assert mi.MemTotal == r["parsed"]["key"]["MemTotal_kB"]


# --- /proc/vmstat -------------------------------------------------------------------------------

@every_reading
def test_vmstat(rid):
    r = _reading(rid)
    parsed = dict(r["parsed"]["vmstat"])
    assert parsed.pop("nr_unstable") == 0        # the deprecated line vmstat_show appends
    assert tuple(parsed) == VMSTAT_ITEMS         # names and order derived from the 6.1 headers
    vm = VmStat.from_items(parsed)
    assert render_vmstat(vm) == _kernel_text(r, "vmstat")
    assert parse_vmstat(r["raw"]["vmstat"]) == vm
    assert vm["nr_free_pages"] == r["parsed"]["key"]["nr_free_pages"]


# --- /proc/zoneinfo and /proc/buddyinfo ---------------------------------------------------------

def _per_node_stats(raw_zoneinfo):
    """nid -> {name: value} from the "per-node stats" blocks (``parsed`` does not keep them)."""
    out = {}
    for m in re.finditer(r"Node (\d+), zone +\S+\n  per-node stats\n((?:      .*\n)+?)  pages",
                         raw_zoneinfo):
        out[int(m.group(1))] = {n: int(v) for n, v in re.findall(r"(\S+) +(\d+)", m.group(2))}
    return out


def _nodes_from_parsed(r):
    node_stats = _per_node_stats(r["raw"]["zoneinfo"])
    nodes: dict[int, NodeInfo] = {}
    for z in r["parsed"]["zoneinfo"]["zones"]:
        nid = z["node"]
        node = nodes.setdefault(nid, NodeInfo(nid=nid, zones=[]))
        zone = ZoneInfo(
            name=z["zone"], free=z["free"], boost=z["boost"], min=z["min"], low=z["low"],
            high=z["high"], spanned=z["spanned"], present=z["present"], managed=z["managed"],
            cma=z["cma"], protection=tuple(z["protection"]),
            stats=ZoneStat(**{n: z[n] for n in ZONE_STAT_ITEMS if n in z}),
            numa=NumaStat(**{n: z[n] for n in NUMA_STAT_ITEMS if n in z}),
            node_unreclaimable=z.get("node_unreclaimable", 0), start_pfn=z.get("start_pfn", 0))
        for cpu, ps in z["pagesets"].items():
            # one CPU in these guests: the per-zone stat_threshold is that CPU's
            zone.pagesets[int(cpu)] = Pageset(ps["count"], ps["high"], ps["batch"],
                                              z["vm_stats_threshold"])
        node.zones.append(zone)
    for nid, stats in node_stats.items():
        nodes[nid].stats = NodeStats(**stats)
    return list(nodes.values())


@every_reading
def test_zoneinfo(rid):
    r = _reading(rid)
    nodes = _nodes_from_parsed(r)
    assert render_zoneinfo(nodes) == _kernel_text(r, "zoneinfo")
    assert parse_zoneinfo(r["raw"]["zoneinfo"]) == nodes
    for node in nodes:
        assert [z.name for z in node.zones] == list(ZONE_NAMES)
        assert all(len(z.protection) == MAX_NR_ZONES for z in node.zones)
        brief = r["parsed"]["zones_brief"]
        for z in node.zones:
            b = brief[f"node{node.nid}/{z.name}"]
            assert (z.spanned, z.present, z.managed) == (b["spanned"], b["present"], b["managed"])
            assert b["start_pfn"] == (z.start_pfn if z.populated else None)
    assert sum(z.free for n in nodes for z in n.zones) == r["parsed"]["key"]["zoneinfo_free_total"]


@every_reading
def test_buddyinfo(rid):
    r = _reading(rid)
    nodes = parse_zoneinfo(r["raw"]["zoneinfo"])
    rows = parse_buddyinfo(r["raw"]["buddyinfo"])
    # buddyinfo lists exactly the populated zones (walk_zones_in_node with assert_populated)
    assert list(rows) == [(n.nid, z.name) for n in nodes for z in n.zones if z.populated]
    apply_buddyinfo(nodes, rows)
    assert render_buddyinfo(nodes) == _kernel_text(r, "buddyinfo")
    assert render_buddyinfo(nodes).splitlines() == r["parsed"]["buddyinfo"]


# --- /sys/devices/system/node -------------------------------------------------------------------

@every_reading
def test_node_meminfo(rid):
    r = _reading(rid)
    for key in (k for k in r["raw"] if k.startswith("nodememinfo node")):
        nid = int(key.removeprefix("nodememinfo node"))
        parsed = r["parsed"]["node_meminfo"][f"node{nid}"]
        mi = NodeMemInfo(**{_field(k): v for k, v in parsed.items()})
        assert render_node_meminfo(nid, mi) == _kernel_text(r, key)
        assert parse_node_meminfo(r["raw"][key]) == (nid, mi)


@every_reading
def test_node_states(rid):
    r = _reading(rid)
    for name, text in r["parsed"]["nodes"].items():
        assert render_nodelist(parse_nodelist(text)) == text + "\n", name


# --- /proc/iomem --------------------------------------------------------------------------------

@every_reading
def test_iomem(rid):
    r = _reading(rid)
    root = parse_iomem(r["raw"]["iomem"])
    assert render_iomem(root) == _kernel_text(r, "iomem")
    ram = [{"depth": d, "start": x.start, "end": x.end, "name": x.name,
            "size": x.end - x.start + 1} for d, x in root.walk() if x.name == "System RAM"]
    assert ram == r["parsed"]["iomem"]["system_ram"]


# --- /sys/devices/system/memory and memory_hotplug parameters ----------------------------------

_STATES = {"online": MEM_ONLINE, "offline": MEM_OFFLINE, "going-offline": MEM_GOING_OFFLINE}


@every_reading
def test_memory_blocks(rid):
    r = _reading(rid)
    mb = r["parsed"]["memblocks"]
    raw_lines = dict(line.split("=", 1) for line in r["raw"]["memblocks"].splitlines()[:2])
    assert render_block_size_bytes(mb["block_size_bytes"]) == raw_lines["block_size_bytes"] + "\n"
    assert (render_auto_online_blocks(mb["auto_online_blocks"])
            == raw_lines["auto_online_blocks"] + "\n")
    assert mb["block_size_bytes"] == _load(rid[0])["block_size_bytes"]
    for dev, attrs in mb["blocks"].items():
        state = _STATES[attrs["state"]]
        zone, online_zones = parse_valid_zones(attrs["valid_zones"], state)
        info = MemoryBlockInfo(block_id=int(dev.removeprefix("memory")), state=state,
                               online=attrs["online"] == "1", zone=zone,
                               online_zones=online_zones, phys_device=int(attrs["phys_device"]))
        texts = render_memory_block(info)
        assert texts == {k: attrs[k] + "\n" for k in texts}, dev
        assert info.block_id == attrs["phys_index_int"]


@every_reading
def test_module_params(rid):
    r = _reading(rid)
    p = r["parsed"]["params"]
    params = MemoryHotplugParams(
        memmap_on_memory=p["memmap_on_memory"] == "Y", online_policy=p["online_policy"],
        auto_movable_ratio=int(p["auto_movable_ratio"]),
        auto_movable_numa_aware=p["auto_movable_numa_aware"] == "Y")
    assert render_memory_hotplug_params(params) == {k: v + "\n" for k, v in p.items()}
    mom = "memory_hotplug.memmap_on_memory=1" in _load(rid[0])["kernel_cmdline"]
    assert params.memmap_on_memory == mom


# --- formats the readings do not exercise -------------------------------------------------------

def test_nodelist_ranges():
    assert render_nodelist({0, 1, 2, 3, 5}) == "0-3,5\n"
    assert render_nodelist([7, 0, 2, 1]) == "0-2,7\n"
    assert render_nodelist([]) == "\n"
    assert render_nodelist({4}) == "4\n"
    assert parse_nodelist("0-3,5\n") == {0, 1, 2, 3, 5}
    assert parse_nodelist("\n") == set()


def test_iomem_depth_width_and_privilege():
    leaf = Resource(0x1000, 0x1fff, "l6")
    chain = leaf
    for i in range(5, -1, -1):
        chain = Resource(0x1000, 0x1fff, f"l{i}", [chain])
    text = render_iomem(iomem_root([chain, Resource(0x100000000, 0x10fffffff, None)]))
    lines = text.splitlines()
    assert lines[0] == "00001000-00001fff : l0"
    assert lines[5] == "          00001000-00001fff : l5"
    assert lines[6] == "          00001000-00001fff : l6"       # MAX_IORES_LEVEL caps the indent
    assert lines[7] == "100000000-10fffffff : <BAD>"
    ioports = Resource(0, 0xFFFF, "PCI IO", [Resource(0x60, 0x60, "keyboard")])
    assert render_iomem(ioports) == "0060-0060 : keyboard\n"
    assert render_iomem(ioports, privileged=False) == "0000-0000 : keyboard\n"


def test_meminfo_defaults_and_gbpages():
    text = render_meminfo(MemInfo(DirectMap1G=1048576))
    assert text.splitlines()[-1] == "DirectMap1G:     1048576 kB"
    assert "HardwareCorrupted:     0 kB\n" in text
    assert "HugePages_Total:       0\n" in text
    assert "Hugepagesize:       2048 kB\n" in text
    assert len(render_meminfo(MemInfo()).splitlines()) == 53
    assert render_meminfo(MemInfo(MemTotal=123456789)).startswith("MemTotal:       123456789 kB\n")


def test_zoneinfo_shapes():
    """Per-node counters go to the first *populated* zone; CPUs print in id order, each with its
    stat threshold; an unpopulated zone (even with a span) stops after protection."""
    node = NodeInfo(nid=1, stats=NodeStats(nr_mapped=7))
    movable = node.zone("Movable")
    movable.present = movable.spanned = movable.managed = 32768
    movable.pagesets = {3: Pageset(1, 2, 3, 4), 0: Pageset(5, 6, 7, 8)}
    node.zone("Normal").spanned = 65536                 # spanned but not present
    text = render_zoneinfo([node])
    assert text.count("per-node stats") == 1
    assert text.index("per-node stats") > text.index("zone  Movable")
    assert "\n      nr_mapped    7\n" in text
    assert text.index("cpu: 0") < text.index("cpu: 3")
    assert "batch: 3\n  vm stats threshold: 4\n" in text
    assert text.count("start_pfn:") == 1
    assert parse_zoneinfo(text) == [node]
    assert render_buddyinfo([node]) == "Node 1, zone  Movable" + "      0" * 11 + " \n"
    # a memoryless node prints all its zones in short form and no per-node counters
    assert "per-node stats" not in render_zoneinfo([NodeInfo(nid=2)])


def test_valid_zones():
    assert render_valid_zones(MEM_ONLINE, "Movable") == "Movable\n"
    assert render_valid_zones(MEM_ONLINE, None) == "none\n"
    assert render_valid_zones(MEM_OFFLINE, online_zones=("Normal", "Normal", "Movable")) == \
        "Normal Movable\n"
    assert render_valid_zones(MEM_OFFLINE, online_zones=("Movable", "Normal", "Movable")) == \
        "Movable Normal\n"
    assert render_valid_zones(MEM_GOING_OFFLINE, online_zones=("DMA32", "DMA32", "Movable")) == \
        "DMA32 Movable\n"
    for text in ("Normal Movable", "Movable Normal", "DMA32 Movable", "Normal"):
        _, zones = parse_valid_zones(text, MEM_OFFLINE)
        assert render_valid_zones(MEM_OFFLINE, online_zones=zones) == text + "\n"
    assert render_auto_online_blocks(MMOP_ONLINE_MOVABLE) == "online_movable\n"


def test_vmstat_defaults():
    text = render_vmstat(VmStat())
    assert len(text.splitlines()) == len(VMSTAT_ITEMS) + 1 == 173
    assert text.endswith("direct_map_level3_splits 0\nnr_unstable 0\n")
    assert len(NODE_STAT_ITEMS) == 43
    with pytest.raises(KeyError):
        VmStat.from_items({"no_such_counter": 1})
    assert ZoneStat(nr_free_pages=1) + ZoneStat(nr_free_pages=2) == ZoneStat(nr_free_pages=3)
