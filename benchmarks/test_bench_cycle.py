"""Groups 1-3: the hotplug cycle of one memory block, and simulated pages per second.

1. add + online + offline + remove of one 128 MiB block: memmap on memory vs regular memmap.
2. the same cycle on the compiled core vs the pure-Python twin (target: >= 100x).
3. the same cycle vs a numpy fill of the block's per-page state, the physical limit of the
   model's work (target: <= 3x); online and offline of a 2 GiB block (and of a 128 MiB one) in
   simulated pages per second (target: >= 50 M/s).

Each benchmark and its baseline share a group, so benchmarks/summary.py reads both ratios from
one run. The Machines are booted outside the timed code.
"""
import numpy as np
import pytest

from bench_util import (BLOCK_128M, DIMM, GiB, SCALE_START, cycle, machine, machine_2g_blocks,
                        state_path)
from hotmem import MHP_MEMMAP_ON_MEMORY
from hotmem._py.memmap import PAGE_DTYPE, PAGE_MAPCOUNT_RESET, PAGE_TYPE_BASE, PG_buddy

PAGES_128M = BLOCK_128M >> 12                    # 32768


@pytest.mark.benchmark(group="1 cycle 128M: memmap on memory vs regular memmap")
@pytest.mark.parametrize("memmap", ["altmap", "regular"])
def test_cycle_altmap_vs_regular(benchmark, memmap):
    mom = memmap == "altmap"
    m = machine(mom)
    cycle(m, mom)                                # warm: per-CPU lists, zone pagesets
    benchmark.extra_info.update(pages=PAGES_128M)
    benchmark(cycle, m, mom)
    assert DIMM // BLOCK_128M not in m.memory_blocks


@pytest.mark.benchmark(group="2 cycle 128M: compiled core vs pure-Python twin")
@pytest.mark.parametrize("backend", ["compiled", "python"])
def test_cycle_compiled_vs_python(benchmark, backend):
    m = machine(True, backend)
    cycle(m, True)
    benchmark.extra_info.update(pages=PAGES_128M)
    if backend == "python":                      # ~0.25 s a cycle: a fixed number of rounds
        benchmark.pedantic(cycle, args=(m, True), rounds=5, warmup_rounds=0)
    else:
        benchmark(cycle, m, True)


def numpy_fill(nr_pages: int, init, free, offline) -> None:
    """The least per-page work a cycle needs, in numpy: the block's struct pages appear zeroed
    (section_activate), every page is written at online (init, then handed to the buddy) and
    once more at offline, and the array is dropped (section_deactivate)."""
    pages = np.zeros(nr_pages, PAGE_DTYPE)
    pages[:] = init
    pages[:] = free
    pages[:] = offline
    del pages


def _records():
    rec = np.zeros(3, PAGE_DTYPE)
    rec[0] = (1 << 12, 0, 1, PAGE_MAPCOUNT_RESET)                   # PG_reserved, refcount 1
    rec[1] = (0, 0, 0, PAGE_MAPCOUNT_RESET & ~(PAGE_TYPE_BASE | PG_buddy) & 0xFFFFFFFF)
    rec[2] = (1 << 12, 0, 0, PAGE_MAPCOUNT_RESET)
    return rec[0], rec[1], rec[2]


@pytest.mark.benchmark(group="3 cycle 128M: model vs numpy fill of the per-page state")
@pytest.mark.parametrize("what", ["model", "numpy-fill"])
def test_cycle_vs_numpy_fill(benchmark, what):
    benchmark.extra_info.update(pages=PAGES_128M)
    if what == "model":
        m = machine(True)
        cycle(m, True)
        benchmark(cycle, m, True)
    else:
        benchmark(numpy_fill, PAGES_128M, *_records())


class _Block:
    """One memory block on a Machine, brought to a state before each timed round."""

    def __init__(self, m, start, size):
        self.m, self.start, self.size = m, start, size
        self.bid = start // m.memory_block_size_bytes

    def removed(self):
        mem = self.m.memory_blocks.get(self.bid)
        if mem is not None:
            if mem.state == "online":
                self.m.sysfs.write(state_path(self.bid), "offline")
            self.m.remove_memory(0, self.start, self.size)

    def added(self):
        self.removed()
        self.m.add_memory(0, self.start, self.size, MHP_MEMMAP_ON_MEMORY)
        return (), {}

    def onlined(self):
        self.added()
        self.online()
        return (), {}

    def online(self):
        self.m.sysfs.write(state_path(self.bid), "online_movable")

    def offline(self):
        self.m.sysfs.write(state_path(self.bid), "offline")


@pytest.fixture(scope="module")
def block_2g():
    m = machine_2g_blocks()
    yield _Block(m, SCALE_START, 2 * GiB)


@pytest.fixture(scope="module")
def block_128m():
    yield _Block(machine(True), DIMM, BLOCK_128M)


@pytest.mark.benchmark(group="3 online: simulated pages per second")
@pytest.mark.parametrize("size", ["128M", "2G"])
def test_online_pages_per_second(benchmark, size, block_2g, block_128m):
    blk = block_2g if size == "2G" else block_128m
    benchmark.extra_info.update(pages=blk.size >> 12)
    benchmark.pedantic(blk.online, setup=blk.added, rounds=5 if size == "2G" else 20)
    blk.removed()


@pytest.mark.benchmark(group="3 offline: simulated pages per second")
@pytest.mark.parametrize("size", ["128M", "2G"])
def test_offline_pages_per_second(benchmark, size, block_2g, block_128m):
    blk = block_2g if size == "2G" else block_128m
    benchmark.extra_info.update(pages=blk.size >> 12)
    benchmark.pedantic(blk.offline, setup=blk.onlined, rounds=5 if size == "2G" else 20)
    blk.removed()
