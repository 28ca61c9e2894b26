"""Group 6: sweeps (issue #12). Default-plan points (x86_64 6.1, 1 GiB boot, four 128 MiB DIMMs
added, onlined, offlined, removed — `hotmem compare`'s altmap run) per second per core on the
local engine (goal >= 50/s/core), the speed-up of 2 worker processes over 1 (goal >= 1.8x), and
a 10,000-point sweep (HOTMEM_BENCH_SWEEP_BIG=0 skips it). The figures go to
``benchmark.extra_info``; the goals are printed, not asserted (the machine may be shared).
HOTMEM_BENCH_SWEEP_N sets the points of the rate runs (default 3000: shorter runs are dominated
by pool start-up and show a smaller speed-up)."""
import os
import time

import pytest

pytest.importorskip("pandas")

import hotmem

N = int(os.environ.get("HOTMEM_BENCH_SWEEP_N", "3000"))
BIG = int(os.environ.get("HOTMEM_BENCH_SWEEP_BIG", "10000"))
_rates: dict = {}


def _spec(n: int) -> dict:
    # n default points (the same configuration n times: each still boots its own Machine)
    return {"points": [{}] * n}


def _run(workers: int, n: int) -> float:
    hotmem.sweep(_spec(2 * workers), workers=workers)             # warm the pool's imports
    t = time.perf_counter()
    df = hotmem.sweep(_spec(n), workers=workers)
    dt = time.perf_counter() - t
    assert (df.status == "ok").all()
    return dt


@pytest.mark.benchmark(group="6 sweep: default-plan points")
@pytest.mark.parametrize("workers", [1, 2])
def test_points_per_second(benchmark, workers):
    dt = benchmark.pedantic(_run, args=(workers, N), rounds=1, iterations=1)
    rate = N / dt
    _rates[workers] = rate
    benchmark.extra_info.update(points=N, workers=workers, seconds=dt, points_per_s=rate,
                                points_per_s_per_core=rate / workers)
    print(f"\nsweep: {N} points on {workers} worker(s): {dt:.2f} s, {rate:.1f} points/s, "
          f"{rate / workers:.1f}/s/core (goal >= 50/s/core)")
    if workers == 2 and 1 in _rates:
        speedup = _rates[2] / _rates[1]
        benchmark.extra_info["speedup_2_over_1"] = speedup
        print(f"sweep: speed-up 2 workers over 1: {speedup:.2f}x (goal >= 1.8x)")


@pytest.mark.benchmark(group="6 sweep: default-plan points")
def test_ten_thousand_points(benchmark, tmp_path):
    if not BIG:
        pytest.skip("HOTMEM_BENCH_SWEEP_BIG=0")
    out = str(tmp_path / "big.parquet")
    dt = benchmark.pedantic(lambda: _timed_big(out), rounds=1, iterations=1)
    benchmark.extra_info.update(points=BIG, seconds=dt, points_per_s=BIG / dt)
    print(f"\nsweep: {BIG} points on all cores: {dt:.1f} s ({BIG / dt:.1f} points/s), "
          f"table {os.path.getsize(out) >> 10} KiB")


def _timed_big(out: str) -> float:
    # 200 configurations (kernel x memmap_on_memory x boot memory x DIMMs), repeated to BIG
    grid = [{"kernel": k, "memmap_on_memory": mom, "boot_memory": boot, "dimms": dimms}
            for k in ("6.1", "6.6", "6.8", "6.11") for mom in ("0", "1")
            for boot in ("1G", "2G", "3G", "4G", "1G,1G")
            for dimms in ("128M", "256M", "512M", "1G", "128M,128M,128M,128M")]
    spec = {"points": (grid * (BIG // len(grid) + 1))[:BIG]}
    t = time.perf_counter()
    df = hotmem.sweep(spec, output=out)
    assert len(df) == BIG
    return time.perf_counter() - t
