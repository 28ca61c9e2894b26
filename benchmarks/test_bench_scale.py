"""Group 4: scale. Hot-add and online N in 2 GiB blocks (memmap on memory, online_movable) on a
63 GiB QEMU pc guest whose boot RAM makes x86-64 probe 2 GiB blocks; group 4a does the same on
arm64 (4 KiB pages, 128 MiB blocks) and powerpc64 radix (64 KiB pages, 256 MiB blocks), block by
block of the arch's size.

Targets (issue #17): 16 TiB <= 15 s and <= 1 GiB peak memory above the booted Machine, 64 TiB
<= 60 s and <= 2 GiB; arm64 4K and powerpc64 radix 16 TiB <= 60 s. Each size is measured in this
process: time of the adds and of the onlines, and the peak resident memory above the booted
Machine (VmHWM, reset after boot). A size is skipped, with the projection as the reason, when its
memory projected from the bytes per page measured at the sizes before (else 24 B x 1.15) does not
fit in MemAvailable, or its time projected from the slowest rate measured exceeds
HOTMEM_BENCH_MAX_S (bench_util.skip_reason). HOTMEM_BENCH_SCALE and HOTMEM_BENCH_ARCH_SCALE pick
the sizes (defaults below).
"""
import gc
import os
import time

import pytest

import hotmem
from bench_util import (ARCH_MACHINES, BOOT_FOR_2G_BLOCKS, GiB, SCALE_START, TiB, arch_machine, machine_2g_blocks,
                        peak_rss, reset_peak_rss, rss, skip_reason, state_path)
from hotmem import MHP_MEMMAP_ON_MEMORY
from hotmem.arch import get_arch
from hotmem.machine import parse_size

SIZES = os.environ.get("HOTMEM_BENCH_SCALE", "128G,256G,512G,1T,4T,16T,64T").split(",")
PHYS_LIMIT = get_arch("x86_64", paging_levels=4).physmem_end + 1
ARCH_SIZES = os.environ.get("HOTMEM_BENCH_ARCH_SCALE", "128G,1T,16T").split(",")
#: group 4b (the 1 PiB stretch of issue #17): 5-level x86-64 with 1 GiB direct-map pages; off by
#: default (1 PiB needs ~12 GiB): HOTMEM_BENCH_SCALE5=16T,256T,1P
SIZES5 = [s for s in os.environ.get("HOTMEM_BENCH_SCALE5", "").split(",") if s]
_measured5: tuple[list, list] = ([], [])
BLOCK = 2 * GiB
BLOCK_PAGES = BLOCK >> 12                           # 524288
MEMMAP_PAGES = BLOCK_PAGES * 64 >> 12               # 8192: 32 MiB of struct pages per block
_bytes_per_page: list[float] = []
_seconds_per_page: list[float] = []
_arch_measured: dict = {name: ([], []) for name in ARCH_MACHINES}


def hot_add_and_online(m, size: int, start: int = SCALE_START, block: int = BLOCK,
                       flags: int = MHP_MEMMAP_ON_MEMORY) -> dict:
    """add_memory(flags) + online_movable of every ``block`` of ``size`` from ``start``: wall
    time of the adds and of the onlines, and the CPU time of this process over the whole loop
    (the 2-core machine is shared: wall time includes what other jobs took)."""
    t_add = t_online = 0.0
    c0 = time.process_time()
    for s in range(start, start + size, block):
        t0 = time.perf_counter()
        m.add_memory(0, s, block, flags)
        t1 = time.perf_counter()
        m.sysfs.write(state_path(s // block), "online_movable")
        t_online += time.perf_counter() - t1
        t_add += t1 - t0
    return {"add_s": t_add, "online_s": t_online, "cpu_s": time.process_time() - c0}


def _run(benchmark, make_machine, nbytes, pages, block, flags_of):
    state = {}

    def setup():
        state.clear()
        gc.collect()
        m = make_machine()
        state.update(m=m, rss0=rss(), totalram0=m.totalram_pages)
        reset_peak_rss()
        return (m,), {}

    def run(m):
        state.update(hot_add_and_online(m, nbytes, SCALE_START, block(m), flags_of(m)))

    benchmark.pedantic(run, setup=setup, rounds=1, iterations=1)
    growth = peak_rss() - state["rss0"]
    state["growth"] = growth
    return state


def _x86_scale(benchmark, make_machine, label, nbytes, per_page, per_s, projected_from):
    """Groups 4 and 4b: hot-add + online ``nbytes`` in 2 GiB blocks on ``make_machine()``,
    skipped by projection from ``projected_from`` bytes per page; appends to ``per_page`` and
    ``per_s``."""
    pages = nbytes >> 12
    reason = skip_reason(label, pages, projected_from, per_s)
    if reason:
        pytest.skip(reason)
    st = _run(benchmark, make_machine, nbytes, pages, lambda m: BLOCK,
              lambda m: MHP_MEMMAP_ON_MEMORY)
    m, growth = st["m"], st["growth"]
    blocks = nbytes // BLOCK
    # every block online, each giving the buddy its pages less its own memmap
    assert m.totalram_pages - st["totalram0"] == blocks * (BLOCK_PAGES - MEMMAP_PAGES)
    total_s = st["add_s"] + st["online_s"]
    per_page.append(growth / pages)
    per_s.append(total_s / pages)
    benchmark.extra_info.update(
        size=nbytes, pages=pages, blocks=blocks, add_s=st["add_s"], online_s=st["online_s"],
        cpu_s=st["cpu_s"], peak_rss_growth=growth, bytes_per_page=growth / pages,
        pages_per_s=pages / total_s)
    del m
    st.clear()
    gc.collect()


@pytest.mark.benchmark(group="4 scale: hot-add and online in 2 GiB blocks")
@pytest.mark.parametrize("size", SIZES)
def test_scale(benchmark, size):
    # 4-level x86-64 addresses 64 TiB (MAX_PHYSMEM_BITS 46): above SCALE_START a "64T" run
    # hot-adds up to that limit (63 TiB); the kernel refuses more with E2BIG, as the model does
    nbytes = min(parse_size(size), PHYS_LIMIT - SCALE_START)
    _x86_scale(benchmark, machine_2g_blocks, size, nbytes, _bytes_per_page, _seconds_per_page,
               _bytes_per_page)


#: boot memory of the group-4a Machines: the first of these whose 3/4 holds the linear-map page
#: tables of the size (_boot_too_small); 4 GiB is bench_util.arch_machine's default
ARCH_BOOTS = ("4G", "16G", "48G")
#: bytes of linear-map page tables per hot-added page: arm64 maps hot-added memory page by page
#: when can_set_direct_map() (Debian 6.1: rodata_full), one 8-byte PTE per page, and takes the
#: tables from the boot memory (__pgd_pgtable_alloc, GFP_KERNEL: never ZONE_MOVABLE)
LINEAR_MAP_TABLE_BYTES_PER_PAGE = {"arm64-4K": 8}


def _boot_too_small(arch: str, pages: int, boot: int) -> str | None:
    """Why a size cannot be hot-added above a ``boot``-byte Machine, or None: its linear-map
    page tables must fit in 3/4 of the boot memory (the kernel would fail the hot-add with
    -ENOMEM, the model raises it; a bigger boot is what the real host would need)."""
    need = pages * LINEAR_MAP_TABLE_BYTES_PER_PAGE.get(arch, 0)
    if need > boot * 3 // 4:
        return (f"{arch}: {pages} pages need {need / GiB:.1f} GiB of linear-map page tables "
                f"from a {boot / GiB:.0f} GiB boot")
    return None


def _arch_boot(arch: str, pages: int) -> tuple[str | None, str | None]:
    """(boot size, None) for the first of ARCH_BOOTS that holds the linear-map tables of
    ``pages``, else (None, why not)."""
    reason = None
    for boot in ARCH_BOOTS:
        reason = _boot_too_small(arch, pages, parse_size(boot))
        if reason is None:
            return boot, None
    return None, reason


@pytest.mark.benchmark(group="4a scale, other arches: hot-add and online block by block")
@pytest.mark.parametrize("size", ARCH_SIZES)
@pytest.mark.parametrize("arch", list(ARCH_MACHINES))
def test_scale_arch(benchmark, arch, size):
    nbytes = parse_size(size)
    probe = arch_machine(arch, boot="1G")
    page_shift, bs = probe.arch.page_shift, probe.memory_block_size_bytes
    del probe
    pages = nbytes >> page_shift
    per_page, per_s = _arch_measured[arch]
    boot, too_small = _arch_boot(arch, pages)
    reason = skip_reason(f"{arch} {size}", pages, per_page, per_s) or too_small
    if reason:
        pytest.skip(reason)
    st = _run(benchmark, lambda: arch_machine(arch, boot=boot), nbytes, pages, lambda m: bs,
              lambda m: MHP_MEMMAP_ON_MEMORY if m.mhp_supports_memmap_on_memory(bs) else 0)
    m, growth = st["m"], st["growth"]
    blocks = nbytes // bs
    assert all(m.memory_blocks[i].state == "online"
               for i in range(SCALE_START // bs, (SCALE_START + nbytes) // bs))
    total_s = st["add_s"] + st["online_s"]
    per_page.append(growth / pages)
    per_s.append(total_s / pages)
    benchmark.extra_info.update(
        arch=arch, boot=parse_size(boot), size=nbytes, pages=pages, blocks=blocks, block_size=bs,
        add_s=st["add_s"], online_s=st["online_s"], cpu_s=st["cpu_s"], peak_rss_growth=growth,
        bytes_per_page=growth / pages, pages_per_s=pages / total_s)
    del m
    st.clear()
    gc.collect()


def machine_5level():
    """The 63 GiB pc guest of group 4, with la57 (5-level paging: MAX_PHYSMEM_BITS 52, 4 PiB) and
    pdpe1gb, so that the direct map of hot-added memory takes 1 GiB pages (init_64.c
    phys_pud_init) and no PMD tables."""
    m = hotmem.Machine(boot_memory=BOOT_FOR_2G_BLOCKS, maxmem=BOOT_FOR_2G_BLOCKS, paging_levels=5,
                       cmdline="memory_hotplug.memmap_on_memory=1",
                       cpu_flags=("pse", "hypervisor", "pdpe1gb", "la57"))
    assert m.memory_block_size_bytes == BLOCK
    return m


@pytest.mark.benchmark(group="4b scale, 5-level x86-64 (stretch): hot-add and online in 2 GiB blocks")
@pytest.mark.parametrize("size", SIZES5)
def test_scale_5level(benchmark, size):
    per_page, per_s = _measured5
    _x86_scale(benchmark, machine_5level, f"5-level {size}", parse_size(size), per_page, per_s,
               per_page or [0.06])


def test_sizes_are_known():
    assert all(parse_size(s) % BLOCK == 0 for s in SIZES + ARCH_SIZES) and SCALE_START % TiB == 0
