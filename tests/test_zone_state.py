"""The incremental zone state (issue #17): init_per_zone_wmark_min computed in one pass with
node-local results cached (hotmem/mm/page_alloc.py:_init_per_zone_wmark_min_incremental) must
leave exactly what the step-by-step computation leaves (calculate_min_free_kbytes,
setup_per_zone_wmarks, refresh_zone_stat_thresholds, setup_per_zone_lowmem_reserve,
setup_min_unmapped_ratio, setup_min_slab_ratio, khugepaged_min_free_kbytes_update: the kernel's
order, hotmem/mm/page_alloc.py:_init_per_zone_wmark_min).

Every call a random hotplug sequence makes on a Machine is run twice from the same state: first
step by step (its per-CPU pageset writes recorded, not applied), then -- the state put back --
incrementally; every zone, node and global value and the sequence of pageset writes must be
equal. No expected number here comes from the model: the reference is the kernel-ordered
computation itself.
"""
import dataclasses
import random

import pytest

import hotmem
from hotmem import MHP_MEMMAP_ON_MEMORY, HotplugError
from hotmem.mm import page_alloc
from hotmem.mm import watermark as wm

GiB, MiB = 1 << 30, 1 << 20
_ZONE = ("_watermark", "watermark_boost", "lowmem_reserve", "pageset_high", "pageset_batch",
         "own_pageset", "stat_threshold", "percpu_drift_mark")
_NODE = ("stat_threshold", "min_unmapped_pages", "min_slab_pages", "totalreserve_pages")
_GLOBALS = [f.name for f in dataclasses.fields(wm.PageAllocGlobals)
            if f.name not in ("pcp_writes", "node_cache")]


def _save(m):
    return ({f: getattr(m.page_alloc, f) for f in _GLOBALS},
            {nid: ({f: getattr(p, f) for f in _NODE},
                   [{f: getattr(z, f) for f in _ZONE} for z in p.node_zones])
             for nid, p in m.pgdats.items()})


def _restore(m, saved):
    g, nodes = saved
    for f, v in g.items():
        setattr(m.page_alloc, f, v)
    for nid, (pv, zones) in nodes.items():
        p = m.pgdats[nid]
        for f, v in pv.items():
            setattr(p, f, v)
        for z, zv in zip(p.node_zones, zones):
            for f, v in zv.items():
                setattr(z, f, v)


class Checker:
    """Replaces page_alloc.init_per_zone_wmark_min: both computations from one state."""

    def __init__(self, monkeypatch):
        self.mp = monkeypatch
        self.calls = 0

    def __call__(self, m):
        g = m.page_alloc
        before = _save(m)
        full_writes, fast_writes = [], []
        with self.mp.context() as mp:
            mp.setattr(wm, "_pageset_update", lambda *a: None)   # record, do not apply
            g.pcp_writes = full_writes
            try:
                page_alloc._init_per_zone_wmark_min(m)
                full_err = None
            except HotplugError as e:
                full_err = (e.errno, str(e))
            finally:
                g.pcp_writes = None
        full = _save(m)
        _restore(m, before)
        g.pcp_writes = fast_writes
        try:
            page_alloc._init_per_zone_wmark_min_incremental(m)
            fast_err = None
        except HotplugError as e:
            fast_err = (e.errno, str(e))
        finally:
            g.pcp_writes = None
        assert fast_err == full_err
        assert _save(m) == full
        assert fast_writes == full_writes
        self.calls += 1
        if fast_err:
            raise HotplugError(*fast_err)


MACHINES = {
    "x86 1G": dict(boot_memory="1G"),
    "x86 two nodes, 2 CPUs": dict(boot_memory={0: "1G", 1: "512M"}, cpus={0: 1, 1: 1}),
    "x86 256M, THP off": dict(boot_memory="256M"),
    "x86 CPU-less node 1": dict(boot_memory={0: "1G", 1: "256M"}, cpus={0: 2}),
    "arm64": dict(arch="arm64", boot_memory="1G"),
}


@pytest.mark.parametrize("name", list(MACHINES))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_zone_state_equals_full_recompute(monkeypatch, name, seed):
    rng = random.Random(f"{name}/{seed}")
    m = hotmem.Machine(cmdline="memory_hotplug.memmap_on_memory=1", **MACHINES[name])
    check = Checker(monkeypatch)
    monkeypatch.setattr(page_alloc, "init_per_zone_wmark_min", check)
    bs = m.memory_block_size_bytes
    base = -(-max(4 * GiB, m.max_pfn << m.arch.page_shift) // bs) * bs
    slots = [base + i * bs for i in range(10)]
    nids = sorted(m.pgdats)
    for _ in range(60):
        op = rng.random()
        start = rng.choice(slots)
        bid = start // bs
        mem = m.memory.blocks.get(bid)
        try:
            if op < 0.05:
                m.page_alloc.percpu_pagelist_high_fraction = rng.choice([0, 0, 8, 64])
            elif op < 0.1:
                ratios = list(m.page_alloc.lowmem_reserve_ratio)
                ratios[rng.randrange(3)] = rng.choice([0, 32, 256])
                m.page_alloc.lowmem_reserve_ratio = tuple(ratios)
            elif op < 0.13:
                wm.min_free_kbytes_sysctl_handler(m, rng.choice([4096, 16384]))
            elif mem is None:
                m.add_memory(rng.choice(nids), start, bs,
                             MHP_MEMMAP_ON_MEMORY if rng.random() < 0.5 else 0)
            elif mem.state == "offline" and op < 0.75:
                state = rng.choice(["online", "online_kernel", "online_movable"])
                m.sysfs.write(f"/sys/devices/system/memory/memory{bid}/state", state)
            elif mem.state == "offline":
                m.remove_memory(start, bs)
            else:
                m.sysfs.write(f"/sys/devices/system/memory/memory{bid}/state", "offline")
        except HotplugError:
            pass
    # the boot blocks too: offline one of the boot memory where the zone allows it
    assert check.calls >= 5
