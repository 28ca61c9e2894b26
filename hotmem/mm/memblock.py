"""memblock: the boot-time physical memory and reservation lists (mm/memblock.c, 6.1).

Only boot uses it on x86 6.1 (no CONFIG_ARCH_KEEP_MEMBLOCK): the RAM ranges with their nodes,
what boot code reserved, top-down allocation (memblock's default direction on x86), and the
hand-over to the buddy allocator (memblock_free_all). Boot code: a failed allocation raises
HotplugError (the kernel panics).
"""
from __future__ import annotations

import bisect
import errno
from dataclasses import dataclass, field

from hotmem.errors import HotplugError


@dataclass
class Region:
    base: int
    size: int
    nid: int = 0
    name: str = ""

    @property
    def end(self) -> int:
        return self.base + self.size


def _subtract(ranges, cut_base, cut_end):
    out = []
    for b, e in ranges:
        if cut_end <= b or cut_base >= e:
            out.append((b, e))
            continue
        if b < cut_base:
            out.append((b, cut_base))
        if cut_end < e:
            out.append((cut_end, e))
    return out


def _base(r) -> int:
    return r.base


def _busy_add(busy, s: int, e: int) -> None:
    """[s, e) into the coalesced reservations (touching and overlapping pairs merged)."""
    starts, ends = busy
    i = bisect.bisect_left(starts, s)
    if i and ends[i - 1] >= s:
        i -= 1
        s = starts[i]
    j = i
    while j < len(starts) and starts[j] <= e:
        e = max(e, ends[j])
        j += 1
    starts[i:j] = [s]
    ends[i:j] = [e]


@dataclass
class Memblock:
    """struct memblock: ``memory`` and ``reserved`` region lists (byte granular, as the kernel)."""

    memory: list = field(default_factory=list)
    reserved: list = field(default_factory=list)
    # the model's index of ``reserved`` for alloc_top_down (not kernel state)
    _busy_of: object = field(default=None, repr=False, compare=False)
    _busy_len: int = field(default=-1, repr=False, compare=False)
    _busy: object = field(default=None, repr=False, compare=False)

    def add_node(self, base: int, size: int, nid: int) -> None:
        """memblock_add_node."""
        self.memory.append(Region(base, size, nid))
        self.memory.sort(key=lambda r: r.base)

    def reserve(self, base: int, size: int, name: str = "") -> None:
        """memblock_reserve."""
        busy = self._busy_index()
        bisect.insort_right(self.reserved, Region(base, size, -1, name), key=_base)
        if busy is not None and size > 0:
            _busy_add(busy, base, base + size)
            self._busy_len = len(self.reserved)

    def _busy_index(self):
        """The reserved bytes as sorted, disjoint, coalesced [start, end) pairs (two parallel
        lists), rebuilt when ``reserved`` was replaced or changed behind reserve(); None while a
        zero-size reservation splits a free range (alloc_top_down then takes free_ranges)."""
        if self._busy_of is not self.reserved or self._busy_len != len(self.reserved):
            self._busy_of, self._busy_len = self.reserved, len(self.reserved)
            self._busy = None
            if all(r.size > 0 for r in self.reserved):
                busy = ([], [])
                for r in sorted(self.reserved, key=_base):
                    if busy[0] and r.base <= busy[1][-1]:
                        busy[1][-1] = max(busy[1][-1], r.end)
                    else:
                        busy[0].append(r.base)
                        busy[1].append(r.end)
                self._busy = busy
        return self._busy

    def mem_pfn_ranges(self, page_shift: int = 12):
        """for_each_mem_pfn_range: (start_pfn, end_pfn, nid) of each region, PFN_UP/PFN_DOWN."""
        psize = 1 << page_shift
        for r in self.memory:
            s, e = (r.base + psize - 1) >> page_shift, r.end >> page_shift
            if s < e:
                yield s, e, r.nid

    def free_ranges(self, nid: int | None = None):
        """Byte ranges of memory not reserved (for_each_free_mem_range), ascending."""
        out = []
        cuts = sorted(((q.base, q.end) for q in self.reserved), key=lambda c: c[0])
        for r in self.memory:
            if nid is not None and r.nid != nid:
                continue
            cur, e = r.base, r.end
            for cb, ce in cuts:
                if cb >= e:
                    break
                if cb > cur:
                    out.append((cur, cb, r.nid))
                cur = max(cur, ce)
            if cur < e:
                out.append((cur, e, r.nid))
        return sorted(out)

    def alloc_top_down(self, size: int, align: int, nid: int, name: str,
                       min_addr: int = 0, max_addr: int | None = None,
                       exact_nid: bool = False) -> int:
        """memblock_alloc_try_nid (top-down): the highest free, aligned range on ``nid`` (any node
        if none fits; only ``nid`` with ``exact_nid``, as memblock_alloc_exact_nid_raw), reserved
        under ``name``. Returns the physical address."""
        for want_nid in ((nid,) if exact_nid else (nid, None)):
            for b, e in self._free_ranges_desc(want_nid):
                top = e if max_addr is None else min(e, max_addr)
                base = (top - size) // align * align
                if base >= max(b, min_addr):
                    self.reserve(base, size, name)
                    return base
        raise HotplugError(errno.ENOMEM, f"memblock: no {size:#x} bytes free on node {nid} "
                           f"for {name}")

    def _free_ranges_desc(self, nid):
        """free_ranges(nid) highest first, from the coalesced reservations (O(log n) to the top
        range) where they apply; the free ranges as free_ranges gives them otherwise."""
        busy = self._busy_index()
        regions = sorted((r for r in self.memory if nid is None or r.nid == nid), key=_base,
                         reverse=True)
        if busy is None or any(lo.end > hi.base for hi, lo in zip(regions, regions[1:])):
            for b, e, _ in reversed(self.free_ranges(nid)):
                yield b, e
            return
        starts, ends = busy
        for r in regions:
            lo, hi = r.base, r.end
            i = bisect.bisect_left(starts, hi) - 1
            while i >= 0 and ends[i] > lo and hi > lo:
                if ends[i] < hi:
                    yield ends[i], hi
                hi = starts[i]
                i -= 1
            if hi > lo:
                yield lo, hi

    def unreserve(self, base: int, size: int) -> None:
        """memblock_free / memblock_phys_free of [base, base + size): the reservations covering
        it shrink (or split) around it."""
        out = []
        for r in self.reserved:
            for b, e in _subtract([(r.base, r.end)], base, base + size):
                out.append(Region(b, e - b, r.nid, r.name))
        self.reserved = sorted(out, key=lambda r: r.base)

    def reserved_by_name(self) -> dict:
        out: dict = {}
        for r in self.reserved:
            out[r.name] = out.get(r.name, 0) + r.size
        return out


def memblock_setup(m) -> None:
    """setup_arch's memblock part (x86: e820__memblock_setup; arm64: arm64_memblock_init; ...):
    the arch's boot RAM by node and its early reservations, max_pfn, the block size. Whether
    the layout is the calibrated QEMU reference decides the default boot reservations."""
    a = m.arch
    ram, reserved, m.boot_calibrated = m.arch_ops.boot_layout(m)
    mb = m.memblock = Memblock()
    for start, end, nid in ram:
        mb.add_node(start, end - start, nid)
    if not mb.memory:
        raise HotplugError(errno.EINVAL, "boot memory layout has no RAM")
    for start, size, name in reserved:
        mb.reserve(start, size, name)
    m.max_pfn = max(r.end for r in mb.memory) >> a.page_shift
    m.memory_block_size_bytes = m.arch_ops.memory_block_size_bytes(m)


def memblock_alloc_page(m, nid: int, what: str) -> int:
    """memblock_alloc_try_nid(PAGE_SIZE, PAGE_SIZE, nid) for a boot page table, recorded in the
    owner ledger under ``what``: its pfn."""
    a = m.arch
    base = m.memblock.alloc_top_down(a.PAGE_SIZE, a.PAGE_SIZE, nid, what)
    m.owners.note_memblock(base >> a.page_shift, 1, nid if nid is not None else -1, what)
    return base >> a.page_shift


def memblock_free_all(m) -> None:
    """mm/memblock.c:memblock_free_all → __free_pages_memory (6.1): every free range to the
    buddy in naturally aligned chunks of at most MAX_ORDER − 1."""
    a = m.arch
    for b, e, _ in m.memblock.free_ranges():
        start, end = (b + a.PAGE_SIZE - 1) >> a.page_shift, e >> a.page_shift
        if start < end:
            m.totalram_pages += m.allocator.free_pages_memory(start, end)


def memblock_alloc_try_nid(m, size: int, align: int, nid: int | None, what: str,
                           **limits) -> int:
    """mm/memblock.c:memblock_alloc_try_nid (6.1), top-down (``nid`` None: NUMA_NO_NODE), its
    pages noted in the owner ledger under ``what``: the physical address."""
    a = m.arch
    base = m.memblock.alloc_top_down(size, align, nid, what, **limits)
    first, last = base >> a.page_shift, (base + size - 1) >> a.page_shift
    m.owners.note_memblock(first, last - first + 1, nid if nid is not None else -1, what)
    return base
