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
