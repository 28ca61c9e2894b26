"""Access to the real Linux 6.1 readings kept in tests/data/kernel-6.1-readings (a copy of the
workplace's shared readings; see its README): the settled reading of each step of a scenario."""
import glob
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CANDIDATES = [os.path.join(HERE, "data", "kernel-6.1-readings")]


def readings_dir():
    for d in CANDIDATES:
        if glob.glob(os.path.join(d, "*.json")):
            return d
    return None


def load(name):
    with open(os.path.join(readings_dir(), name + ".json")) as f:
        return json.load(f)


def steps(name):
    """[(step name, ok, settled parsed reading or None)] of a scenario."""
    out = []
    for s in load(name)["steps"]:
        r = s["readings"][-1]["parsed"] if s.get("readings") else None
        out.append((s["name"], s.get("ok"), r))
    return out


def zone(reading, name, node=0):
    """(start_pfn, spanned, present, managed) of a zone in a reading, or None if unpopulated."""
    z = reading["zones_brief"][f"node{node}/{name}"]
    if not z["spanned"]:
        return None
    return (z["start_pfn"], z["spanned"], z["present"], z["managed"])


def zone_counts(zoneinfo_text):
    """{(nid, zone name): spanned/present/managed/min/low/high} of the populated zones of a
    /proc/zoneinfo text (6.1's, 6.12's or another arch's), by hotmem's own parser."""
    from hotmem.render.vmstat import parse_zoneinfo
    return {(n.nid, z.name): {f: getattr(z, f) for f in
                              ("spanned", "present", "managed", "min", "low", "high")}
            for n in parse_zoneinfo(zoneinfo_text, lenient=True) for z in n.zones if z.present}


def memtotal_kb(meminfo_text):
    """MemTotal of a /proc/meminfo text, in kB (any kernel's: hotmem.render.meminfo's parser
    knows 6.1's lines only)."""
    line = next(ln for ln in meminfo_text.splitlines() if ln.startswith("MemTotal:"))
    return int(line.split()[1])
