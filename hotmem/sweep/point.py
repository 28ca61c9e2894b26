"""One point of a sweep: a Machine booted from the point's configuration runs the hot-add plan
the way ``hotmem compare`` does (hotmem.report.run_plan on the same Plan), and its record
becomes a row. A search point bisects the largest plan that hot-adds and onlines."""
from __future__ import annotations

import ctypes
import errno
import threading
import time
import traceback

from hotmem.errors import HotplugError

#: where a refused step sat, by the functions on the stack (the first match wins)
_STEPS = (("boot", ("machine",)),
          ("remove", ("offline_pages", "acpi_memory_eject", "dlpar_remove_lmb", "remove_memory")),
          ("online", ("online_pages", "memory_subsys_online", "device_online")),
          ("add", ("acpi_memory_hotplug", "add_memory", "add_memory_checked", "dlpar_add_lmb")))


class PointTimeout(Exception):
    """Raised in a point's thread when it runs past the sweep's timeout."""


#: the memory block size a boot probes, by boot key (this worker's cache: an int, never a
#: Machine — a Machine holds module references and cannot be copied or pickled)
_BLOCK_SIZES: dict = {}
BOOT_KEYS = ("arch", "page_size", "mmu", "paging_levels", "kernel", "boot_memory", "block_size",
             "nodes", "config")


def probed_block_size(plan, cfg: dict) -> int:
    """memory_block_size_bytes of the plan's machine with memmap on memory, booted once per
    boot key in this process (what `hotmem compare` boots to pick its default DIMMs)."""
    key = tuple(cfg[k] for k in BOOT_KEYS) + (cfg["memmap_on_memory"],)
    if key not in _BLOCK_SIZES:
        _BLOCK_SIZES[key] = plan.machine(True).memory_block_size_bytes
    return _BLOCK_SIZES[key]


def make_plan(cfg: dict, dimms: tuple | None = None):
    """The point's Plan, built as ``hotmem compare`` builds it from the same options (cli._plan):
    no fragmented runs, no "what N costs" sizes; without DIMMs, four of one memory block each."""
    from hotmem.report import Plan, hotplug_kind
    online = cfg["online_type"]
    if hotplug_kind(cfg["arch"]) == "dlpar":
        if online not in (None, "online"):
            raise HotplugError(errno.EINVAL, f"powerpc64: dlpar_add_lmb onlines each LMB itself "
                               f"(MMOP_ONLINE, the default zone): online_type {online} "
                               "does not apply")
        online = "online"
    mom = cfg["memmap_on_memory"]
    plan = Plan(dimms=dimms if dimms is not None else
                tuple(s for s in (cfg["dimms"] or "").split(",") if s),
                nodes=tuple(int(n) for n in cfg["nodes"].split(",")),
                boot_memory=tuple(cfg["boot_memory"].split(",")), block_size=cfg["block_size"],
                kernel=cfg["kernel"], arch=cfg["arch"], paging_levels=cfg["paging_levels"],
                online_type=online or "online_movable",
                memmap_on_memory="1" if mom == "0" else mom, backend=None,
                page_size=cfg["page_size"], mmu=cfg["mmu"], start=cfg["start"],
                config=cfg.get("config"), fragment=False, costs_for=())
    if dimms is None and cfg["dimms"] is None:
        bs = probed_block_size(plan, cfg)
        plan.dimms = (f"{bs >> 30}G" if bs % (1 << 30) == 0 else f"{bs >> 20}M",) * 4
    return plan


def _flat(prefix: str, d: dict) -> dict:
    return {f"{prefix}{str(k).replace(' ', '_')}": v for k, v in d.items()}


def _rle(values: list) -> str:
    """512x4,0x2: the blocks' nr_vmemmap_pages, run-length encoded."""
    out, i = [], 0
    while i < len(values):
        j = i
        while j < len(values) and values[j] == values[i]:
            j += 1
        out.append(f"{values[i]}x{j - i}")
        i = j
    return ",".join(out)


def record(res) -> dict:
    """The row of a run_plan result (hotmem.report.PlanResult, kept machine)."""
    m = res.machine
    kb = m.arch.PAGE_SIZE >> 10
    row = {"page_size_bytes": m.arch.PAGE_SIZE, "memory_block_size": m.memory_block_size_bytes,
           "first_address": res.first_address, "hot_added_bytes": sum(res.dimms),
           "nr_dimms": len(res.dimms)}
    for source, nodes in res.memmap.items():
        row.update(_flat(f"memmap_{source}_node", nodes))
    for kind, levels in res.page_tables.items():
        row.update(_flat(f"pt_{kind.replace(' ', '_')}_", levels))
    row["memmap_pages"] = res.total("memmap_pages")
    row["page_table_pages"] = res.total("page_table_pages")
    row["taken_from_existing"] = res.total("taken_from_existing")
    row["off_node_memmap"] = res.total("off_node_memmap")
    row["memmap_base_pages"] = res.total("memmap_base_pages")
    row["overhead_bytes"] = (row["memmap_pages"] + row["page_table_pages"]) * m.arch.PAGE_SIZE
    for step in ("add", "online", "remove"):
        c = getattr(res, step)
        row[f"{step}_memtotal_kb"] = c.memtotal_kb
        row[f"{step}_memfree_kb"] = c.nr_free_pages * kb
        row[f"{step}_directmap_kb"] = c.directmap_kb
    row["managed_added"] = res.managed_added
    row["nr_vmemmap_pages"] = _rle(res.vmemmap_pages_per_block)
    row["nr_vmemmap_pages_total"] = sum(res.vmemmap_pages_per_block)
    waste = [a.padding_waste for a in res.adds]
    row["force_padding"] = None if not waste or None in waste else sum(waste)
    row["returned_after_remove"] = res.returned_after_remove
    return row


def _step_of(exc: BaseException) -> str:
    names = {f.name for f in traceback.extract_tb(exc.__traceback__)}
    for step, funcs in _STEPS:
        if names.intersection(funcs):
            return step
    return "plan"


def _failure(row: dict, exc: BaseException) -> None:
    if isinstance(exc, HotplugError):
        row.update(status="refused", errno=exc.errno_name, error=exc.message,
                   failed_step=_step_of(exc))
    elif isinstance(exc, PointTimeout):
        row.update(status="timeout", errno="ETIME", error=str(exc), failed_step=_step_of(exc))
    else:
        row.update(status="crash", errno="", error=f"{type(exc).__name__}: {exc}",
                   failed_step=_step_of(exc))


class _Deadline:
    """Raise PointTimeout in this thread after ``seconds`` (asynchronously, between bytecodes:
    works in pool processes and in Dask worker threads alike). Raised again every 50 ms until
    the block ends — code that swallows exceptions (a gc callback, a __del__) may eat one — and
    a block that ran past the deadline ends in PointTimeout even if every one was eaten."""

    def __init__(self, seconds: float | None):
        self.seconds, self.thread = seconds, None
        self.done, self.fired = threading.Event(), False

    def _fire(self, tid: int):
        if self.done.wait(self.seconds):
            return
        while not self.done.is_set():
            self.fired = True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid),
                                                       ctypes.py_object(PointTimeout))
            self.done.wait(0.05)

    def __enter__(self):
        if self.seconds:
            self.tid = threading.get_ident()
            self.thread = threading.Thread(target=self._fire, args=(self.tid,), daemon=True)
            self.thread.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.thread:
            # a PointTimeout fired while the block unwinds may arrive here, before the firing
            # thread is stopped: retry until it is stopped, so that none leaks past the block
            while True:
                try:
                    self.done.set()
                    self.thread.join()
                    # drop an exception raised after the block ended and not delivered yet
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.tid), None)
                    break
                except PointTimeout:
                    continue
            if self.fired and exc_type is None:
                raise PointTimeout
        return False


def run_point(cfg: dict, timeout: float | None = None) -> dict:
    """Run one grid point; never raises (a refusal, a timeout or a crash is a row)."""
    from hotmem.report import run_plan
    row = {"status": "ok", "errno": "", "error": "", "failed_step": ""}
    t0 = time.perf_counter()
    try:
        with _Deadline(timeout):
            plan = make_plan(cfg)
            res = run_plan(cfg["memmap_on_memory"] != "0", plan=plan, keep_machine=True)
            row.update(record(res))
    except PointTimeout as exc:
        _failure(row, PointTimeout(f"stopped after {timeout:g} s"))
        row["failed_step"] = _step_of(exc)
    except Exception as exc:            # a point never crashes the sweep
        _failure(row, exc)
    row["time_s"] = time.perf_counter() - t0
    return row


# -- search -----------------------------------------------------------------------------------

def _adds_and_onlines(cfg: dict, dimms: tuple) -> tuple[bool, object]:
    """Hot-add ``dimms`` (run_plan without its lifecycle) and online every block with the
    plan's online type (dlpar_add_lmb onlines by itself); (True, None) or (False, the error)."""
    from hotmem.report import machine_hotplug_kind, run_plan
    try:
        plan = make_plan(cfg, dimms)
        res = run_plan(cfg["memmap_on_memory"] != "0", plan=plan, lifecycle=False)
        m = res.machine
        if machine_hotplug_kind(m) != "dlpar":
            for a in res.adds:
                for b in a.blocks:
                    m.sysfs.write(f"/sys/devices/system/memory/memory{b}/state",
                                  plan.online_type)
        return True, None
    except HotplugError as exc:
        return False, exc


def search_point(cfg: dict, search: dict, timeout: float | None = None) -> dict:
    """Bisect the largest DIMM size (``axis = "dimm_size"``: one DIMM of n steps) or DIMM count
    (``"dimm_count"``: n DIMMs of ``dimm``) in [min, max] that hot-adds and onlines. Assumes
    success is monotone in n. ``step`` defaults to the memory block size the machine probes."""
    from hotmem.machine import parse_size
    row = {"status": "ok", "errno": "", "error": "", "failed_step": ""}
    t0 = time.perf_counter()
    probes = 0
    try:
        with _Deadline(timeout):
            axis = search["axis"]
            if axis == "dimm_size":
                step = parse_size(search["step"]) if "step" in search else \
                    probed_block_size(make_plan(cfg, ("0",)), cfg)
                lo = max(1, parse_size(search.get("min", str(step))) // step)
                hi = parse_size(search.get("max", "1T")) // step
                dimms = lambda n: (str(n * step),)
                unit = step
            else:
                dimm = search.get("dimm", "128M")
                lo, hi = int(search.get("min", 1)), int(search.get("max", 64))
                dimms = lambda n: (dimm,) * n
                unit = 1
            if lo > hi:
                raise HotplugError(errno.EINVAL, f"search: min {lo} above max {hi}")

            def ok(n):
                nonlocal probes
                probes += 1
                return _adds_and_onlines(cfg, dimms(n))
            good, first_err = ok(lo)
            best, bad, err = (None, lo, first_err) if not good else (lo, None, None)
            if good:
                good_hi, e = ok(hi)
                if good_hi:
                    best = hi
                else:
                    bad, err = hi, e
                    while bad - best > 1:
                        mid = (best + bad) // 2
                        g, e = ok(mid)
                        if g:
                            best = mid
                        else:
                            bad, err = mid, e
            row["search_axis"] = axis
            row["largest_ok"] = None if best is None else best * unit
            row["smallest_refused"] = None if bad is None else bad * unit
            row["search_max"] = hi * unit
            if err is not None:
                row.update(errno=err.errno_name, error=err.message, failed_step=_step_of(err))
            if best is None:
                row["status"] = "none"
    except PointTimeout as exc:
        _failure(row, PointTimeout(f"stopped after {timeout:g} s"))
        row["failed_step"] = _step_of(exc)
    except Exception as exc:
        _failure(row, exc)
    row["probes"] = probes
    row["time_s"] = time.perf_counter() - t0
    return row


def run_batch(items: list, mode: str, search: dict, timeout: float | None) -> list:
    """Run ``[(index, key, cfg), ...]``; returns ``[(index, key, row), ...]`` (the unit of work
    an engine ships to a worker)."""
    out = []
    for index, key, cfg in items:
        row = search_point(cfg, search, timeout) if mode == "search" else run_point(cfg, timeout)
        out.append((index, key, row))
    return out
