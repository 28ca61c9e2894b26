"""The diff of a model run and a real-kernel run, observable by observable.

Every observable has a *kind* that says how it is compared:

- ``exact``: must be equal — zone spans, present/managed pages, start_pfn, watermarks, lowmem
  protection and per-CPU pageset sizes; MemTotal, CommitLimit and DirectMap changes since boot;
  every /sys/devices/system/memory and node attribute; kpageflags/kpagecount words; /proc/iomem's
  System RAM lines and every line over a DIMM; the outcome (and errno) of each step.
- ``predicted``: free-page counts (MemFree, nr_free_pages, each zone's free and free+pcp pages;
  NR_FREE_PAGES leaves out pages on the per-CPU lists, mm/page_alloc.c:rmqueue_bulk):
  the change since the previous reading is compared with the model's page-exact prediction; what
  is left over is the guest's own slab/percpu/page-cache traffic, ``noise`` while it stays within
  the scenario's ``noise_pages`` (default 256), ``different`` beyond.
- ``boot``: what the model takes from its description of the box rather than computing: absolute
  MemTotal/managed/DirectMap at boot and the firmware, device and kernel-image lines of
  /proc/iomem. Listed with both values; they fail the run only with ``strict``.
- ``workload``: counters of things the model does not run (page cache, slab, anon pages, vmstat
  events, per-CPU list fill, the buddy's free-list shape): listed as noise, never compared.

A word of kpageflags (fs/proc/page.c:stable_page_flags) where the model has a free page (BUDDY,
or a page parked on a per-CPU list) and the kernel has a page the guest allocated is noise too;
every other word is exact.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from hotmem.render import (parse_buddyinfo, parse_iomem, parse_meminfo, parse_node_meminfo,
                           parse_nodelist, parse_vmstat_items, parse_zoneinfo)
from hotmem.validate.scenario import MEMORY, Scenario

NODE = "/sys/devices/system/node"
KPF_BUDDY = 1 << 10
KPF_NOPAGE = 1 << 20
KPF_RESERVED = 1 << 32
FREE_WORDS = (0, KPF_BUDDY)

#: meminfo fields compared absolutely (fixed by the kernel's configuration)
MEMINFO_FIXED = ("VmallocTotal", "HardwareCorrupted", "CmaTotal", "HugePages_Total", "HugePages_Free",
                 "HugePages_Rsvd", "HugePages_Surp", "Hugepagesize", "Hugetlb")
#: meminfo fields compared as changes since boot (absolute at boot: kind "boot")
MEMINFO_SINCE_BOOT = ("MemTotal", "CommitLimit", "DirectMap4k", "DirectMap64k", "DirectMap2M",
                      "DirectMap1G")


@dataclass
class Observable:
    """One compared value: ``status`` is "equal", "different" or "noise"."""
    step: str
    file: str
    name: str
    kind: str
    status: str
    model: object = None
    real: object = None
    note: str = ""

    @property
    def fails(self) -> bool:
        return self.status == "different" and self.kind in ("exact", "predicted")


@dataclass
class Diff:
    scenario: str
    observables: list[Observable] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, pred) -> int:
        return sum(1 for o in self.observables if pred(o))

    @property
    def exact_mismatches(self) -> list[Observable]:
        return [o for o in self.observables if o.fails]

    @property
    def boot_differences(self) -> list[Observable]:
        return [o for o in self.observables if o.kind == "boot" and o.status == "different"]

    def ok(self, strict: bool = False) -> bool:
        return not self.exact_mismatches and not (strict and self.boot_differences)

    def to_dict(self) -> dict:
        return {"scenario": self.scenario, "notes": self.notes,
                "observables": [asdict(o) for o in self.observables]}


class _Step:
    """Collects the observables of one step."""

    def __init__(self, diff: Diff, step: str):
        self.diff, self.step = diff, step

    def add(self, file, name, kind, model, real, status=None, note=""):
        if status is None:
            status = "equal" if model == real else ("noise" if kind == "workload" else "different")
        self.diff.observables.append(Observable(self.step, file, name, kind, status,
                                                _plain(model), _plain(real), note))

    def exact(self, file, name, model, real, note=""):
        self.add(file, name, "exact", model, real, note=note)

    def predicted(self, file, name, model_delta, real_delta, limit, unit="pages"):
        """A change since the previous reading: equal, noise within ``limit``, else different."""
        left = None if model_delta is None or real_delta is None else real_delta - model_delta
        if left == 0:
            status = "equal"
        elif left is not None and abs(left) <= limit:
            status = "noise"
        else:
            status = "different"
        note = "" if left is None else f"leftover {left:+d} {unit}"
        self.add(file, name, "predicted", model_delta, real_delta, status, note)


def _plain(v):
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, tuple):
        return list(v)
    return v


# -- parsing both sides' files ----------------------------------------------------------------------

def _meminfo(text):
    """Every /proc/meminfo line as field -> kB (MemInfo's names for 6.1's lines; a later
    kernel's extra lines, 6.12's Unaccepted, by their own label)."""
    from hotmem.render.meminfo import _BY_LABEL
    out = {}
    for line in text.splitlines():
        label, sep, rest = line.partition(":")
        if sep and rest.split():
            out[_BY_LABEL.get(label, label)] = int(rest.split()[0])
    return out


def _zones(text, buddy_text):
    out = {}
    buddy = parse_buddyinfo(buddy_text) if buddy_text else {}
    for node in parse_zoneinfo(text, lenient=True):
        for z in node.zones:
            pcp = sum(p.count for p in z.pagesets.values())
            out[f"node{node.nid}/{z.name}"] = {
                "z": z, "pcp": pcp, "buddy": buddy.get((node.nid, z.name)),
                "node_stats": node.stats if z.pagesets else None}
    return out


def _iomem_lines(text):
    return [("  " * d + f"{r.start:08x}-{r.end:08x} : {r.name}", r.start, r.end, r.name)
            for d, r in parse_iomem(text).walk()]


def _workload(step, file, model_items, real_items):
    """Counters the model does not run: one noise/equal observable each."""
    for name, real in real_items.items():
        step.add(file, name, "workload", model_items.get(name), real)


# -- the comparisons -------------------------------------------------------------------------------

def _compare_outcome(st: _Step, op, m, r):
    if op == "boot":
        return
    if op in ("hotplug", "eject"):
        st.exact("step", "succeeded", m.ok, r.ok,
                 note="; ".join(x for x in (m.detail and f"model: {m.detail}",
                                           r.detail and f"kernel: {r.detail}") if x))
    else:
        st.exact("step", "result", "ok" if m.ok else m.error, "ok" if r.ok else r.error,
                 note="; ".join(x for x in (m.detail and f"model: {m.detail}",
                                           r.detail and f"kernel: {r.detail}") if x))
    for dimm, info in m.dimms.items():
        real = r.dimms.get(dimm, {})
        st.exact("qmp", f"{dimm} addr", hex(info["addr"]),
                 hex(real["addr"]) if real.get("addr") is not None else None)


def _compare_meminfo(st, mf, rf, m0, r0, mp, rp, limit, baseline, page_kb=4):
    mi, ri = _meminfo(mf), _meminfo(rf)
    for name in MEMINFO_FIXED:
        if name in mi or name in ri:
            st.exact("meminfo", name, mi.get(name), ri.get(name))
    for name in MEMINFO_SINCE_BOOT:
        if name not in mi and name not in ri:
            continue
        if baseline:
            st.add("meminfo", name, "boot", mi.get(name), ri.get(name))
        else:
            st.exact("meminfo", f"{name} change since boot", _d(mi, m0, name), _d(ri, r0, name))
    if baseline:
        st.add("meminfo", "MemFree", "workload", mi.get("MemFree"), ri.get("MemFree"))
    else:
        st.predicted("meminfo", "MemFree change", _d(mi, mp, "MemFree"), _d(ri, rp, "MemFree"),
                     page_kb * limit, "kB")
    done = set(MEMINFO_FIXED) | set(MEMINFO_SINCE_BOOT) | {"MemFree"}
    _workload(st, "meminfo", mi, {k: v for k, v in ri.items() if k not in done})


def _d(now, before, key):
    if before is None or key not in now or key not in before:
        return None
    return now[key] - before[key]


def _compare_zoneinfo(st, mz, rz, m0, r0, mp, rp, limit, baseline, autotune=False):
    for key in sorted(set(mz) | set(rz), key=lambda k: (k.split("/")[0], _zone_order(k))):
        a, b = mz.get(key), rz.get(key)
        if a is None or b is None:
            st.exact("zoneinfo", f"{key} exists", a is not None, b is not None)
            continue
        za, zb = a["z"], b["z"]
        for f in ("spanned", "present", "min", "low", "high", "boost", "cma",
                  "node_unreclaimable"):
            st.exact("zoneinfo", f"{key} {f}", getattr(za, f), getattr(zb, f))
        if za.promo is not None or zb.promo is not None:       # 6.12+
            st.exact("zoneinfo", f"{key} promo", za.promo, zb.promo)
        st.exact("zoneinfo", f"{key} protection", tuple(za.protection), tuple(zb.protection))
        if za.populated or zb.populated:
            st.exact("zoneinfo", f"{key} start_pfn", za.start_pfn, zb.start_pfn)
        if baseline:
            st.add("zoneinfo", f"{key} managed", "boot", za.managed, zb.managed)
        else:
            st.exact("zoneinfo", f"{key} managed change since boot",
                     za.managed - m0[key]["z"].managed if key in m0 else za.managed,
                     zb.managed - r0[key]["z"].managed if key in r0 else zb.managed)
        for cpu in sorted(set(za.pagesets) | set(zb.pagesets)):
            pa, pb = za.pagesets.get(cpu), zb.pagesets.get(cpu)
            if autotune:
                # 6.7+: pcp->high moves between high_min and high_max with the frees the
                # guest makes (nr_pcp_high, decay_pcp_high): a workload counter; batch is exact
                st.exact("zoneinfo", f"{key} cpu{cpu} pageset batch",
                         pa and pa.batch, pb and pb.batch)
                st.add("zoneinfo", f"{key} cpu{cpu} pageset high", "workload",
                       pa and pa.high, pb and pb.high)
                continue
            st.exact("zoneinfo", f"{key} cpu{cpu} pageset high/batch",
                     pa and (pa.high, pa.batch), pb and (pb.high, pb.batch))
        prev_a, prev_b = mp.get(key) if mp else None, rp.get(key) if rp else None
        moved = abs(b["pcp"] - prev_b["pcp"]) if autotune and prev_b else 0
        free = lambda x: x["z"].free
        fpcp = lambda x: x["z"].free + x["pcp"]
        for label, fn in (("free", free), ("free+pcp", fpcp)):
            if baseline:
                st.add("zoneinfo", f"{key} {label}", "workload", fn(a), fn(b))
                continue
            st.predicted("zoneinfo", f"{key} {label} change",
                         fn(a) - fn(prev_a) if prev_a else (fn(a) if mp is not None else None),
                         fn(b) - fn(prev_b) if prev_b else (fn(b) if rp is not None else None),
                         limit + (moved if label == "free" else 0))
        st.add("zoneinfo", f"{key} pcp count", "workload", a["pcp"], b["pcp"])
        if a["buddy"] is not None or b["buddy"] is not None:
            st.add("buddyinfo", f"{key} free blocks per order", "workload", a["buddy"], b["buddy"])
        _workload(st, "zoneinfo", dict(za.stats.items()) | dict(za.numa.items()),
                  {k: v for k, v in (dict(zb.stats.items()) | dict(zb.numa.items())).items()
                   if k != "nr_free_pages"})
        if b["node_stats"] is not None:
            _workload(st, "zoneinfo", dict(a["node_stats"].items()) if a["node_stats"] else {},
                      dict(b["node_stats"].items()))


def _zone_order(key):
    from hotmem.render import ZONE_NAMES
    name = key.split("/")[1]
    return ZONE_NAMES.index(name) if name in ZONE_NAMES else 99


#: /proc/vmstat items compared exactly where the kernel has them (6.11+: the memmap's pages,
#: mm/vmstat.c memmap_pages_add / memmap_boot_pages_add)
VMSTAT_EXACT = ("nr_memmap_pages", "nr_memmap_boot_pages")


def _pcp_moved(now, before) -> int:
    """Pages the kernel's per-CPU lists gave back or took, summed over zones, since ``before``
    (the size of the pcp drift the free-only counts of this step may show)."""
    if not before:
        return 0
    return abs(sum(z["pcp"] - before[k]["pcp"] for k, z in now.items() if k in before))


def _compare_vmstat(st, mf, rf, mp, rp, limit):
    mv, rv = parse_vmstat_items(mf), parse_vmstat_items(rf)
    for name in VMSTAT_EXACT:
        if name in mv or name in rv:
            st.exact("vmstat", name, mv.get(name), rv.get(name))
    if mp is None:
        st.add("vmstat", "nr_free_pages", "workload", mv["nr_free_pages"], rv["nr_free_pages"])
    else:
        st.predicted("vmstat", "nr_free_pages change",
            mv["nr_free_pages"] - mp["nr_free_pages"], rv["nr_free_pages"] - rp["nr_free_pages"],
            limit)
    _workload(st, "vmstat", mv, {k: v for k, v in rv.items()
                                 if k != "nr_free_pages" and k not in VMSTAT_EXACT})


def _compare_iomem(st, mf, rf, dimm_ranges):
    ml, rl = _iomem_lines(mf), _iomem_lines(rf)
    mset, rset = {x[0] for x in ml}, {x[0] for x in rl}
    seen = set()
    for text, s, e, name in ml + rl:
        if text in seen:
            continue
        seen.add(text)
        hot = name == "System RAM" or any(s < a + n and a <= e for a, n in dimm_ranges)
        st.add("iomem", text.strip() if text.startswith(" ") else text,
               "exact" if hot else "boot", text in mset, text in rset,
               note="" if text in mset and text in rset else
               ("only in the model" if text in mset else "only in the kernel"))


def _compare_sysfs(st, mf, rf, m0f, r0f, baseline):
    keys = sorted({k for k in mf if k.startswith("/sys/")} | {k for k in rf if k.startswith("/sys/")},
                  key=_sysfs_order)
    blocks = lambda f: sorted(int(k.split("/memory")[2].split("/")[0]) for k in f
                              if k.startswith(f"{MEMORY}/memory") and k.endswith("/state"))
    st.exact("sysfs", "memory blocks", blocks(mf), blocks(rf))
    for k in keys:
        if k.startswith(f"{NODE}/node") and k.endswith("/meminfo"):
            _compare_node_meminfo(st, k, mf.get(k), rf.get(k), m0f.get(k), r0f.get(k), baseline)
            continue
        name = k.replace(MEMORY + "/", "").replace(NODE + "/", "node/")
        if k.startswith(NODE + "/") and "/" not in k[len(NODE) + 1:]:
            st.exact("sysfs", name, _nodes(mf.get(k)), _nodes(rf.get(k)))
        else:
            st.exact("sysfs", name, mf.get(k), rf.get(k))


def _nodes(text):
    return None if text is None else sorted(parse_nodelist(text))


def _sysfs_order(k):
    import re
    mt = re.search(r"/memory(\d+)/", k)
    return (0 if k.startswith(NODE) else 1, int(mt.group(1)) if mt else -1, k)


def _node_meminfo(text):
    """A node's meminfo as field -> value (NodeMemInfo's names for 6.1's lines; a later
    kernel's extra lines, 6.12's Unaccepted, by their own label)."""
    import re

    from hotmem.render.node import _BY_LABEL
    out = {}
    for line in text.splitlines():
        mt = re.fullmatch(r"Node \d+ (\S+):\s+(\d+)(?: kB)?", line)
        if mt:
            out[_BY_LABEL.get(mt.group(1), mt.group(1))] = int(mt.group(2))
    return out


def _compare_node_meminfo(st, key, m, r, m0, r0, baseline):
    nid = key.split("/node")[-1].split("/")[0]
    name = f"node{nid}"
    if m is None or r is None:
        st.exact("node meminfo", f"{name} exists", m is not None, r is not None)
        return
    mi, ri = _node_meminfo(m), _node_meminfo(r)
    if baseline or m0 is None or r0 is None:
        st.add("node meminfo", f"{name} MemTotal", "boot" if baseline else "exact",
               mi["MemTotal"], ri["MemTotal"])
    else:
        mi0, ri0 = _node_meminfo(m0), _node_meminfo(r0)
        st.exact("node meminfo", f"{name} MemTotal change since boot",
                 mi["MemTotal"] - mi0["MemTotal"], ri["MemTotal"] - ri0["MemTotal"])
    _workload(st, "node meminfo", {f"{name} {k}": v for k, v in mi.items()},
              {f"{name} {k}": v for k, v in ri.items() if k != "MemTotal"})


def _compare_kpage(st, dimm, mk, rk):
    mf, rf = mk["flags"], rk["flags"]
    mc, rc = mk.get("counts"), rk.get("counts")
    st.exact("kpageflags", f"{dimm} words read", len(mf), len(rf))
    n = min(len(mf), len(rf))
    if not n:
        return
    mf, rf = np.asarray(mf[:n], dtype=np.uint64), np.asarray(rf[:n], dtype=np.uint64)
    free = np.isin(mf, np.array(FREE_WORDS, dtype=np.uint64))
    structural = (rf & np.uint64(KPF_NOPAGE | KPF_RESERVED)) != 0
    differ = mf != rf
    noise = differ & free & ~structural
    bad = differ & ~noise
    for label, a, b, bad_idx, noise_idx in _kpage_parts(mf, rf, mc, rc, n, bad, noise, free):
        if bad_idx.size:
            first = [f"+{i}: {int(a[i]):#x}/{int(b[i]):#x}" for i in bad_idx[:4]]
            st.add(label, f"{dimm} ({n} pfns)", "exact", _runs(a), _runs(b), "different",
                   f"{bad_idx.size} words differ (offset: model/kernel) " + ", ".join(first))
        elif noise_idx.size:
            st.add(label, f"{dimm} ({n} pfns)", "exact", _runs(a), _runs(b), "noise",
                   f"{noise_idx.size} pages the model has free are in use by the guest")
        else:
            st.add(label, f"{dimm} ({n} pfns)", "exact", _runs(a), _runs(b), "equal")


def _kpage_parts(mf, rf, mc, rc, n, bad, noise, free):
    yield "kpageflags", mf, rf, np.flatnonzero(bad), np.flatnonzero(noise)
    if mc is None or rc is None:
        return
    mc, rc = np.asarray(mc[:n], dtype=np.uint64), np.asarray(rc[:n], dtype=np.uint64)
    differ = mc != rc
    cnoise = differ & free & (mc == 0)
    yield "kpagecount", mc, rc, np.flatnonzero(differ & ~cnoise), np.flatnonzero(cnoise)


def _runs(words, limit=6) -> str:
    """Run-length summary: "512x0x2100000000 32256x0x400"."""
    words = np.asarray(words)
    if not words.size:
        return ""
    edges = np.flatnonzero(np.diff(words)) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [words.size]))
    parts = [f"{e - s}x{int(words[s]):#x}" for s, e in zip(starts, ends)]
    return " ".join(parts[:limit]) + (f" ... ({len(parts)} runs)" if len(parts) > limit else "")


# -- the whole run ---------------------------------------------------------------------------------

def diff_runs(sc: Scenario, model, real) -> Diff:
    """Compare a model Run and a kernel Run of the same scenario."""
    from hotmem.kernel import get_policy
    d = Diff(sc.name)
    limit = sc.noise_pages
    autotune = get_policy(sc.machine.kernel).pcp_high_autotune
    if len(model.steps) != len(real.steps):
        d.notes.append(f"the kernel run stopped after {len(real.steps) - 1} of "
                       f"{len(model.steps) - 1} steps")
    dimm_ranges = [(s.addr, s.size) for s in sc.steps if s.op == "hotplug"]
    shift = sc.machine.page_shift
    names = {(s.addr >> shift, s.size >> shift): s.dimm for s in sc.steps if s.op == "hotplug"}
    if model.info.get("calibration_pages"):
        from hotmem.init.main import qemu_pc_calibration
        _Step(d, "baseline").add("model", "boot reservation (pages)", "boot",
                                 qemu_pc_calibration(sc.machine.kernel)[0],
                                 model.info["boot_reserved_pages"],
                                 note="recalibrated to the kernel's boot MemTotal")
    m0 = r0 = None
    mp = rp = None
    for ms, rs in zip(model.steps, real.steps):
        st = _Step(d, ms.name)
        _compare_outcome(st, ms.op, ms, rs)
        if ms.reading is None or rs.reading is None:
            continue
        mf, rf = ms.reading["files"], rs.reading["files"]
        baseline = ms.op == "boot"
        mz = _zones(mf["/proc/zoneinfo"], mf.get("/proc/buddyinfo"))
        rz = _zones(rf["/proc/zoneinfo"], rf.get("/proc/buddyinfo"))
        if baseline:
            m0, r0 = (mf, mz, _meminfo(mf["/proc/meminfo"])), (rf, rz, _meminfo(rf["/proc/meminfo"]))
        # 6.7+ pcp auto-tuning: decay_pcp_high drains the per-CPU lists toward high_min once a
        # second, so pages move between the pcp lists and the free counts (which leave pcp pages
        # out) with time alone: the kernel's own pcp count change widens the free-only limits
        pcp_moved = _pcp_moved(rz, rp and rp[1]) if autotune and not baseline else 0
        _compare_meminfo(st, mf["/proc/meminfo"], rf["/proc/meminfo"], m0[2], r0[2],
                         mp and mp[2], rp and rp[2], limit + pcp_moved, baseline,
                         1 << (sc.machine.page_shift - 10))
        _compare_vmstat(st, mf["/proc/vmstat"], rf["/proc/vmstat"], mp and mp[3], rp and rp[3],
                        limit + pcp_moved)
        _compare_zoneinfo(st, mz, rz, m0[1], r0[1], mp and mp[1], rp and rp[1], limit, baseline,
                          autotune)
        _compare_iomem(st, mf["/proc/iomem"], rf["/proc/iomem"], dimm_ranges)
        _compare_sysfs(st, mf, rf, m0[0], r0[0], baseline)
        for key in sorted(set(ms.reading["kpage"]) | set(rs.reading["kpage"])):
            a, b = ms.reading["kpage"].get(key), rs.reading["kpage"].get(key)
            if a is None or b is None:
                st.exact("kpageflags", f"{names.get(key, key)} read", a is not None, b is not None)
                continue
            _compare_kpage(st, names.get(key, f"pfn {key[0]:#x}"), a, b)
        mp = (mf, mz, _meminfo(mf["/proc/meminfo"]), parse_vmstat_items(mf["/proc/vmstat"]))
        rp = (rf, rz, _meminfo(rf["/proc/meminfo"]), parse_vmstat_items(rf["/proc/vmstat"]))
    return d
