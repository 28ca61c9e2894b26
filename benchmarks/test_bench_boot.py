"""Group 5: boot of a big machine (issue #17: `boot_memory="16T"` in <= 5 s).

A QEMU pc-like x86_64 Machine with all its RAM at boot (maxmem = boot RAM) is booted through
BOOT_STEPS; the time and the peak resident memory above the process before the boot are
recorded, and the time of each boot step. A size is skipped with its projection as the reason
when it would not fit (bytes per page measured at the sizes before, else 24 B x 1.15) or would
take longer than HOTMEM_BENCH_MAX_S (bench_util.skip_reason). HOTMEM_BENCH_BOOT picks the sizes.
"""
import gc
import os
import time

import pytest

import hotmem
from bench_util import peak_rss, reset_peak_rss, rss, skip_reason
from hotmem import machine as machine_mod
from hotmem.machine import parse_size

SIZES = os.environ.get("HOTMEM_BENCH_BOOT", "64G,256G,1T,16T").split(",")
_bytes_per_page: list[float] = []
_seconds_per_page: list[float] = []


@pytest.mark.benchmark(group="5 boot: a Machine with all its RAM at boot")
@pytest.mark.parametrize("size", SIZES)
def test_boot(benchmark, size, monkeypatch):
    nbytes = parse_size(size)
    pages = nbytes >> 12
    reason = skip_reason(f"boot {size}", pages, _bytes_per_page, _seconds_per_page)
    if reason:
        pytest.skip(reason)
    steps: dict = {}

    def timed(name, fn):
        def step(m):
            t = time.perf_counter()
            fn(m)
            steps[name] = steps.get(name, 0.0) + time.perf_counter() - t
        return step
    monkeypatch.setattr(machine_mod, "BOOT_STEPS",
                        tuple((n, timed(n, f)) for n, f in machine_mod.BOOT_STEPS))
    state = {}

    def setup():
        state.clear()
        steps.clear()
        gc.collect()
        state["rss0"] = rss()
        reset_peak_rss()
        return (), {}

    def run():
        state["m"] = hotmem.Machine(boot_memory=size, maxmem=size)

    benchmark.pedantic(run, setup=setup, rounds=1, iterations=1)
    m = state.pop("m")
    growth = peak_rss() - state["rss0"]
    assert m.max_pfn >= pages * 9 // 10
    t = benchmark.stats.stats.min
    _bytes_per_page.append(growth / pages)
    _seconds_per_page.append(t / pages)
    benchmark.extra_info.update(size=nbytes, pages=pages, peak_rss_growth=growth,
                                bytes_per_page=growth / pages,
                                steps={k: round(v, 4) for k, v in steps.items()})
    del m
    gc.collect()
