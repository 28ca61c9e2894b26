"""Struct pages held by pattern (hotmem/_cy/memmap.pxi, twin hotmem/_py/memmap.py) against the
same Machine forced to materialise every section (``struct_page_storage="flat"``): random hotplug
programs must give identical snapshots, kpageflags/kpagecount of every pfn with a struct page and
/proc text after every step, on both backends."""
import os
import random
import zlib
from dataclasses import dataclass

import numpy as np
import pytest

from hotmem.testing import Driver, MachineConfig
from hotmem.testing.driver import ONLINE_WORDS

PROC = ("/proc/meminfo", "/proc/zoneinfo", "/proc/vmstat", "/proc/buddyinfo", "/proc/iomem")


@dataclass(frozen=True)
class StorageConfig(MachineConfig):
    """Boots ``backend`` given as "<backend>/<struct_page_storage>"."""

    def boot(self, backend=None):
        backend, storage = backend.split("/")
        old = os.environ.get("HOTMEM_STRUCT_PAGE_STORAGE")
        os.environ["HOTMEM_STRUCT_PAGE_STORAGE"] = storage
        try:
            m = super().boot(backend)
        finally:
            if old is None:
                del os.environ["HOTMEM_STRUCT_PAGE_STORAGE"]
            else:
                os.environ["HOTMEM_STRUCT_PAGE_STORAGE"] = old
        assert m.ms.flat == (storage == "flat")
        return m


class StorageDriver(Driver):
    """Driver whose Machines (same backend, pattern and flat storage) must also agree on
    kpageflags/kpagecount of every pfn with a struct page and on /proc text."""

    def _after(self, text, results):
        super()._after(text, results)
        a, b = self.machines
        secs = a.ms.memmap_sections()
        if secs != b.ms.memmap_sections():
            self._fail(f"after {text}: sections with a memmap differ")
        n = a.arch.PAGES_PER_SECTION
        # the pure-Python twin reads /proc/kpage* a pfn at a time: there, every pfn of each
        # section whose struct pages or section flags changed in the step (the snapshots,
        # equal above, show the others unchanged on both Machines)
        seen = getattr(self, "_seen", {})
        for nr in secs:
            key = (zlib.crc32(a.ms.memmap(nr)), a.ms.section_mem_map(nr), a.ms.subsection_map(nr))
            if a.core.__name__ != "hotmem._core" and seen.get(nr) == key:
                continue
            seen[nr] = key
            for f in ("kpageflags", "kpagecount"):
                x, y = (getattr(m.procfs, f)(nr * n, n) for m in (a, b))
                if not np.array_equal(x, y):
                    self._fail(f"after {text}: /proc/{f} differs in section {nr}")
        self._seen = seen
        for path in PROC:
            if a.procfs.read(path) != b.procfs.read(path):
                self._fail(f"after {text}: {path} differs")
        assert b.ms.struct_page_bytes() == len(secs) * n * 24


def _program(d, rng, steps):
    """A random hotplug program: add, online (any zone), offline, remove, fragment, inject."""
    m = d.m
    bs = m.memory_block_size_bytes
    from hotmem.arch.x86_e820 import qemu_pc_device_memory_base
    base = qemu_pc_device_memory_base(sum(m.boot_memory.values()))
    for _ in range(steps):
        hot = sorted(b for b in m.memory.blocks if b not in d.boot_blocks)
        op = rng.choice(["add", "add", "online", "online", "offline", "remove", "fragment",
                         "release", "unmovable", "free_unmovable"])
        if op == "add" or not hot or len(d.unmovable[0]) > 3 and op == "unmovable":
            d.add_memory(0, base + rng.randrange(6) * bs, bs * rng.choice([1, 1, 2]))
        elif op == "online":
            d.write(rng.choice(hot), "state", rng.choice(ONLINE_WORDS))
        elif op == "offline":
            d.write(rng.choice(hot + sorted(d.boot_blocks)), "state", "offline")
        elif op == "remove":
            b = rng.choice(hot)
            d.remove_memory(b * bs, bs)
        elif op == "fragment":
            d.fragment(0, rng.choice(["Normal", "Movable"]), rng.randrange(1, m.max_order))
        elif op == "release":
            d.release_holds()
        elif op == "unmovable":
            d.inject_unmovable((rng.choice(hot) * bs >> m.arch.page_shift) + rng.randrange(bs >> 12))
        elif d.unmovable[0]:
            d.free_unmovable(rng.randrange(len(d.unmovable[0])))


@pytest.mark.parametrize("seed", [1, 2])
def test_pattern_and_flat_storage_agree(seed):
    backend = os.environ.get("HOTMEM_BACKEND") or "compiled"
    steps = 6 if backend == "python" else 40
    boot = "256M" if backend == "python" else "512M"
    d = StorageDriver(StorageConfig(boot_memory=boot), (f"{backend}/pattern", f"{backend}/flat"))
    _program(d, random.Random(seed), steps)
    d.teardown()


def test_online_sections_are_patterns():
    """After hot-add + online_movable of 1 GiB, its sections are held as shared patterns (no
    private chunk), where flat storage holds 24 bytes per page; one write copies one chunk."""
    from hotmem import Machine
    from hotmem.mm.memory_hotplug import MMOP_ONLINE_MOVABLE
    size = {}
    # x86_64: a chunk is a MAX_ORDER - 1 block of 1024 pages
    for storage in ("pattern", "flat"):
        m = Machine(boot_memory="512M", maxmem="8G",
                    struct_page_storage=storage)
        before = m.ms.struct_page_bytes()
        m.add_memory(0, 4 << 30, 1 << 30)
        m.memory.online_range(4 << 30, 1 << 30, MMOP_ONLINE_MOVABLE)
        size[storage] = m.ms.struct_page_bytes() - before
        secs = range((4 << 30) >> 27, (5 << 30) >> 27)
        assert all(m.ms.section_is_pattern(nr) == (storage == "pattern") for nr in secs)
        if storage == "pattern":
            pfn = (4 << 30 >> 12) + 12345
            flags = m.ms.page_flags(pfn)
            b = m.ms.struct_page_bytes()
            m.ms.set_page_flags(pfn, flags)
            assert m.ms.struct_page_bytes() - b == m.ms.chunk_pages * 24
            assert not m.ms.section_is_pattern(pfn >> 15)
    assert size["flat"] == (1 << 30 >> 12) * 24
    assert size["pattern"] <= 8 * 1024 * 24      # a few interned chunks, whatever the size


@pytest.mark.parametrize("mhp_flags", [0, "MHP_MEMMAP_ON_MEMORY"])
def test_online_fast_path_matches_flat(mhp_flags):
    """online_pages_range's free_pages_core reuses the pattern a shared MAX_ORDER - 1 chunk took
    when the same reserved pattern was freed before (no merge at MAX_ORDER - 1): hot-add and
    online of 2 GiB (twin: 512 MiB), offline, online again give exactly the state of flat storage, where every
    chunk takes the per-page path -- memmap, allocator, kpageflags/kpagecount of every pfn."""
    import hotmem
    from hotmem import Machine
    backend = os.environ.get("HOTMEM_BACKEND") or "compiled"
    flags = getattr(hotmem, mhp_flags) if mhp_flags else 0
    start, size = 4 << 30, (2 << 30 if backend == "compiled" else 512 << 20)
    seen = {}
    for storage in ("pattern", "flat"):
        m = Machine(boot_memory="512M", maxmem="8G", backend=backend,
                    struct_page_storage=storage,
                    cmdline=f"memory_hotplug.memmap_on_memory={int(bool(flags))}")
        bs = m.memory_block_size_bytes
        blocks = range(start // bs, (start + size) // bs)
        for s in range(start, start + size, bs if flags else size):
            m.add_memory(0, s, bs if flags else size, flags)
        steps = []
        for words in (("online_movable",), ("offline", "online_kernel")):
            for w in words:
                for b in blocks:
                    m.sysfs.write(f"/sys/devices/system/memory/memory{b}/state", w)
            # every pfn; the twin reads /proc/kpage* a pfn at a time: the hot-added ones there
            lo, end = (0 if backend == "compiled" else start >> 12), (start + size) >> 12
            steps.append((m.ms.state(), m.allocator.state(), m.totalram_pages,
                          m.procfs.kpageflags(lo, end - lo).tobytes(),
                          m.procfs.kpagecount(lo, end - lo).tobytes(),
                          *(m.procfs.read(p) for p in PROC)))
        if storage == "pattern" and not flags:
            assert all(m.ms.section_is_pattern(nr) for nr in
                       range(start >> 27, (start + size) >> 27))
        seen[storage] = steps
    assert seen["pattern"] == seen["flat"]


def test_same_run_counts_equal_records_on_every_storage_and_backend():
    """MemSections.same_run(pfn, limit) -- the step move_freepages and has_unmovable_pages take
    over equal struct pages -- is the length of the run of records equal to pfn's (capped by
    limit and pfn's chunk), counted here record by record: compiled and twin, pattern and flat
    storage, on shared chunks (a free block's head and tails), private chunks, the vmemmap."""
    from hotmem import MHP_MEMMAP_ON_MEMORY, Machine
    start, size = 4 << 30, 256 << 20
    got = {}
    for backend in ("compiled", "python"):
        for storage in ("pattern", "flat"):
            m = Machine(boot_memory="512M", maxmem="8G", backend=backend,
                        struct_page_storage=storage,
                        cmdline="memory_hotplug.memmap_on_memory=1")
            bs = m.memory_block_size_bytes
            for s in range(start, start + size, bs):
                m.add_memory(0, s, bs, MHP_MEMMAP_ON_MEMORY)
                m.sysfs.write(f"/sys/devices/system/memory/memory{s // bs}/state",
                              "online_movable")
            p0 = start >> 12
            m.ms.set_page_flags(p0 + 5000, m.ms.page_flags(p0 + 5000))   # a private chunk
            m.ms.set_page_refcount(p0 + 5003, 7)
            c = m.ms.chunk_pages
            pfns = [p0, p0 + 1, p0 + 511, p0 + 512, p0 + 4999, p0 + 5001, p0 + 5003,
                    p0 + 5004, p0 + 8191, p0 + 8192, p0 + 9000, p0 + c - 1, (start >> 12) - 1]
            pfns += random.Random(3).sample(range(p0, p0 + (size >> 12)), 40)
            rows = []
            for pfn in pfns:
                for limit in (1, 2, 100, 600, 1 << 20):
                    run = m.ms.same_run(pfn, limit)
                    if m.ms.pfn_valid(pfn):
                        rec = m.ms.page(pfn)
                        want = 1
                        while (want < limit and (pfn + want) % c
                               and m.ms.page(pfn + want) == rec):
                            want += 1
                    else:
                        want = 1
                    assert run == want, (backend, storage, hex(pfn), limit)
                    rows.append(run)
            got[backend, storage] = rows
    assert len(set(map(tuple, got.values()))) == 1


def test_memmap_on_memory_blocks_fold_to_patterns():
    """arm64 4K, memmap on memory: a 128 MiB block's first 512 pages hold its memmap, half of a
    MAX_ORDER - 1 chunk (1024 pages). Once the block is online every chunk of its section is a
    shared pattern again (online_pages_range folds the chunk it shares with the memmap pages):
    the struct-page bytes do not grow with the number of blocks, where flat storage holds
    32768 pages x 24 bytes per block."""
    from hotmem import MHP_MEMMAP_ON_MEMORY, Machine
    backend = os.environ.get("HOTMEM_BACKEND") or "compiled"
    start, bs = 4 << 30, 128 << 20
    grown = {}
    for storage in ("pattern", "flat"):
        m = Machine(boot_memory="1G", maxmem="1G", arch="arm64", page_size="4K", backend=backend,
                    struct_page_storage=storage, cmdline="memory_hotplug.memmap_on_memory=1")
        assert m.memory_block_size_bytes == bs and m.ms.chunk_pages == 1024
        sizes = []
        for n in (2, 6):                          # 2 blocks, then 4 more
            s0 = start + len(sizes) * 2 * bs
            for s in range(s0, start + n * bs, bs):
                m.add_memory(0, s, bs, MHP_MEMMAP_ON_MEMORY)
                m.sysfs.write(f"/sys/devices/system/memory/memory{s // bs}/state",
                              "online_movable")
            sizes.append(m.ms.struct_page_bytes())
        if storage == "pattern":
            assert all(m.ms.section_is_pattern(s >> 27) for s in range(start, start + 6 * bs, bs))
        grown[storage] = sizes[1] - sizes[0]
    assert grown["flat"] == 4 * (bs >> 12) * 24
    assert grown["pattern"] == 0
