"""Group 4: scale. Hot-add and online N in 2 GiB blocks (memmap on memory, online_movable) on a
63 GiB QEMU pc guest whose boot RAM makes x86-64 probe 2 GiB blocks.

Targets for 16 TiB: <= 60 s and <= 8 GiB peak memory. Each size is measured in this process:
time of the adds and of the onlines, and the peak resident memory above the booted Machine
(VmHWM, reset after boot). The model stores 24 bytes per struct page in numpy, so a size is
skipped when its projection (bytes per page of the sizes measured before, else 24 B x 1.15)
does not fit in MemAvailable; HOTMEM_BENCH_SCALE picks the sizes (default below).
"""
import gc
import os
import time

import pytest

from bench_util import (GiB, SCALE_START, TiB, machine_2g_blocks, mem_available, peak_rss,
                        reset_peak_rss, rss, state_path)
from hotmem import MHP_MEMMAP_ON_MEMORY
from hotmem.machine import parse_size

SIZES = os.environ.get("HOTMEM_BENCH_SCALE", "128G,256G,512G,1T,4T,16T").split(",")
BLOCK = 2 * GiB
BLOCK_PAGES = BLOCK >> 12                           # 524288
MEMMAP_PAGES = BLOCK_PAGES * 64 >> 12               # 8192: 32 MiB of struct pages per block
_bytes_per_page: list[float] = []


def hot_add_and_online(m, size: int) -> dict:
    """add_memory(MHP_MEMMAP_ON_MEMORY) + online_movable of every 2 GiB block of ``size``."""
    t_add = t_online = 0.0
    for start in range(SCALE_START, SCALE_START + size, BLOCK):
        t0 = time.perf_counter()
        m.add_memory(0, start, BLOCK, MHP_MEMMAP_ON_MEMORY)
        t1 = time.perf_counter()
        m.sysfs.write(state_path(start // BLOCK), "online_movable")
        t_online += time.perf_counter() - t1
        t_add += t1 - t0
    return {"add_s": t_add, "online_s": t_online}


@pytest.mark.benchmark(group="4 scale: hot-add and online in 2 GiB blocks")
@pytest.mark.parametrize("size", SIZES)
def test_scale(benchmark, size):
    nbytes = parse_size(size)
    pages = nbytes >> 12
    per_page = max(_bytes_per_page) if _bytes_per_page else 24 * 1.15
    need, avail = pages * per_page, mem_available()
    if need > 0.85 * avail:
        pytest.skip(f"{size}: projected {need / GiB:.1f} GiB of model memory "
                    f"({per_page:.1f} B per page), MemAvailable {avail / GiB:.1f} GiB")
    state = {}

    def setup():
        state.clear()
        gc.collect()
        m = machine_2g_blocks()
        state.update(m=m, rss0=rss(), totalram0=m.totalram_pages)
        reset_peak_rss()
        return (m, nbytes), {}

    def run(m, n):
        state.update(hot_add_and_online(m, n))

    benchmark.pedantic(run, setup=setup, rounds=1, iterations=1)
    m = state["m"]
    growth = peak_rss() - state["rss0"]
    blocks = nbytes // BLOCK
    # every block online, each giving the buddy its pages less its own memmap
    assert m.totalram_pages - state["totalram0"] == blocks * (BLOCK_PAGES - MEMMAP_PAGES)
    _bytes_per_page.append(growth / pages)
    benchmark.extra_info.update(
        size=nbytes, pages=pages, blocks=blocks, add_s=state["add_s"], online_s=state["online_s"],
        peak_rss_growth=growth, bytes_per_page=growth / pages,
        pages_per_s=pages / (state["add_s"] + state["online_s"]))
    del m
    state.clear()
    gc.collect()


def test_sizes_are_known():
    assert all(parse_size(s) % BLOCK == 0 for s in SIZES) and SCALE_START % TiB == 0
