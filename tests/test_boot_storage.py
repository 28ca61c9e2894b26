"""Boot by range (memblock_free_all → __free_pages_memory in one core call, memblock's indexed
top-down allocation) against the reference: the same boot with every section materialised
(``struct_page_storage="flat"``) and memblock_free_all handing each naturally aligned chunk to
free_pages_core one call at a time, as mm/memblock.c:__free_pages_memory (6.1) loops. Several
boot layouts, both backends: snapshots, kpageflags/kpagecount of every pfn, /proc text, the
memory block devices and the memblock reservations must be identical."""
import numpy as np
import pytest

import hotmem
from hotmem import machine as machine_mod
from hotmem.mm import memblock

GiB = 1 << 30
PROC = ("/proc/meminfo", "/proc/zoneinfo", "/proc/vmstat", "/proc/buddyinfo", "/proc/iomem")
MEMORY = "/sys/devices/system/memory"

LAYOUTS = {
    # QEMU pc: 2 GiB below the PCI hole at 3 GiB, the rest above 4 GiB
    "pc-5G": dict(boot_memory="5G", maxmem="8G"),
    "pc-1G": dict(boot_memory="1G"),
    "two-nodes": dict(boot_memory={0: "2G", 1: "2G"}, cpus={0: 1, 1: 1}, maxmem="8G"),
    "two-nodes-small": dict(boot_memory={0: "512M", 1: "512M"}, cpus={0: 1, 1: 1}),
    "e820": dict(e820_ranges=[(0, 0x9f000), (0x100000, 0x7fff0000),
                              (0x100000000, 0x140000000, 0), (0x140000000, 0x1c0000000, 1)],
                 boot_memory={0: "3G", 1: "2G"}, cpus={0: 1, 1: 1}, maxmem="16G"),
}
TWIN_LAYOUTS = ("pc-1G", "two-nodes-small")


def _memblock_free_all_by_chunk(m) -> None:
    """The reference: __free_pages_memory's loop, one free_pages_core call per chunk."""
    a = m.arch
    top = m.max_order - 1
    for b, e, _ in m.memblock.free_ranges():
        start, end = (b + a.PAGE_SIZE - 1) >> a.page_shift, e >> a.page_shift
        while start < end:
            order = min(top, (start & -start).bit_length() - 1) if start else top
            while start + (1 << order) > end:
                order -= 1
            m.allocator.free_pages_core(start, order)
            m.totalram_pages += 1 << order
            start += 1 << order


def _boot(kw, backend, storage, reference, monkeypatch):
    if reference:
        steps = tuple((n, _memblock_free_all_by_chunk if f is memblock.memblock_free_all else f)
                      for n, f in machine_mod.BOOT_STEPS)
        monkeypatch.setattr(machine_mod, "BOOT_STEPS", steps)
    try:
        return hotmem.Machine(backend=backend, struct_page_storage=storage, **kw)
    finally:
        monkeypatch.undo()


def _observables(m):
    out = {"snapshot": m.snapshot(), "totalram": m.totalram_pages,
           "reserved": [(r.base, r.size, r.nid, r.name) for r in m.memblock.reserved],
           "free_ranges": m.memblock.free_ranges(),
           "proc": {p: m.procfs.read(p) for p in PROC},
           "sysfs": {}}
    for name in m.sysfs.listdir(MEMORY):
        if name.startswith("memory"):
            for attr in ("state", "phys_device", "removable", "valid_zones"):
                try:
                    out["sysfs"][f"{name}/{attr}"] = m.sysfs.read(f"{MEMORY}/{name}/{attr}")
                except hotmem.HotplugError as e:
                    out["sysfs"][f"{name}/{attr}"] = f"errno {e.errno}"
    return out


def _assert_same(a, b, what):
    oa, ob = _observables(a), _observables(b)
    for k in oa:
        assert oa[k] == ob[k], f"{what}: {k} differs"
    n = a.arch.PAGES_PER_SECTION
    secs = a.ms.memmap_sections()
    assert secs == b.ms.memmap_sections()
    for nr in secs:
        for f in ("kpageflags", "kpagecount"):
            x, y = (getattr(m.procfs, f)(nr * n, n) for m in (a, b))
            assert np.array_equal(x, y), f"{what}: /proc/{f} differs in section {nr}"


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_boot_by_range_compiled(layout, monkeypatch):
    kw = LAYOUTS[layout]
    ref = _boot(kw, "compiled", "flat", True, monkeypatch)
    for storage in ("pattern", "flat"):
        m = _boot(kw, "compiled", storage, False, monkeypatch)
        _assert_same(ref, m, f"{layout} compiled/{storage}")


@pytest.mark.parametrize("layout", TWIN_LAYOUTS)
def test_boot_by_range_twin(layout, monkeypatch):
    kw = LAYOUTS[layout]
    ref = _boot(kw, "compiled", "flat", True, monkeypatch)
    m = _boot(kw, "python", "pattern", False, monkeypatch)
    _assert_same(ref, m, f"{layout} python/pattern")
