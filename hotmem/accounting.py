"""Who owns every page the model's kernel allocated: memmaps by source and node, page tables by
map and level, boot reservations by name — the answer to "how much did this hot-add cost, and
who paid".

This is bookkeeping of the model (the kernel keeps no such ledger); it never decides anything.
"""
from __future__ import annotations

from collections import Counter, defaultdict


class Owners:
    """pfn → (what, order, node) for buddy and memblock allocations; altmap ranges by base pfn."""

    def __init__(self):
        self.buddy: dict[int, tuple[str, int, int]] = {}
        self.memblock: dict[int, tuple[str, int, int]] = {}
        self.altmap: dict[int, int] = {}      # first pfn -> nr_pages handed out by an altmap
        # one tuple object per distinct (what, order, node): a hot-add of 16 TiB on arm64 4K
        # notes millions of page-table pages with a handful of distinct values
        self._values: dict[tuple, tuple] = {}

    def buddy_value(self, what: str, order: int, node: int) -> tuple:
        """The ledger's (what, order, node), one shared object per distinct value."""
        v = (what, order, node)
        return self._values.setdefault(v, v)

    def note_buddy(self, pfn: int, order: int, node: int, what: str) -> None:
        v = (what, order, node)
        self.buddy[pfn] = self._values.setdefault(v, v)

    def drop_buddy(self, pfn: int) -> tuple | None:
        return self.buddy.pop(pfn, None)

    def note_memblock(self, pfn: int, nr_pages: int, node: int, what: str) -> None:
        self.memblock[pfn] = (what, nr_pages, node)

    def note_altmap(self, pfn: int, nr_pages: int) -> None:
        self.altmap[pfn] = nr_pages

    def drop_altmap(self, pfn: int, nr_pages: int) -> None:
        self.altmap.pop(pfn, None)

    def what(self, pfn: int) -> str | None:
        """The owner of ``pfn`` if the model allocated it."""
        for d in (self.buddy,):
            for base, (what, order, _) in d.items():
                if base <= pfn < base + (1 << order):
                    return what
        for base, n in self.altmap.items():
            if base <= pfn < base + n:
                return "memmap (altmap)"
        for base, (what, n, _) in self.memblock.items():
            if base <= pfn < base + n:
                return what
        return None

    def summary(self, node_of) -> dict:
        """Pages by owner: {"memmap": {"altmap": {nid: n}, "buddy": {nid: n}},
        "page tables": {"direct map": {level: n}, "vmemmap": {level: n}}, "other": {what: n}}.

        ``node_of(pfn)`` gives the node of a pfn (where the page physically is)."""
        memmap: dict = {"altmap": Counter(), "buddy": Counter()}
        tables: dict = {"direct map": Counter(), "vmemmap": Counter()}
        other: Counter = Counter()
        for pfn, n in self.altmap.items():
            memmap["altmap"][node_of(pfn)] += n
        for pfn, (what, order, _) in self.buddy.items():
            n = 1 << order
            if what == "memmap":
                memmap["buddy"][node_of(pfn)] += n
            elif what.endswith(" table"):
                kind, level = what.rsplit(" ", 2)[0], what.rsplit(" ", 2)[1]
                tables[kind][level] += n
            else:
                other[what] += n
        return {"memmap": {k: dict(sorted(v.items())) for k, v in memmap.items()},
                "page tables": {k: dict(v) for k, v in tables.items()},
                "other": dict(other)}

    def snapshot(self) -> tuple:
        return (tuple(sorted(self.buddy.items())), tuple(sorted(self.altmap.items())))


class Slab:
    """Counts of kmalloc'ed objects the hotplug paths allocate (mem_section roots, usage maps).

    Slab pages are not modelled (their cost shows on a real kernel as MemFree noise)."""

    def __init__(self):
        self.objects: Counter = Counter()
        self.bytes: Counter = Counter()

    def kmalloc(self, what: str, size: int) -> None:
        self.objects[what] += 1
        self.bytes[what] += size

    def kfree(self, what: str, size: int) -> None:
        self.objects[what] -= 1
        self.bytes[what] -= size

    def snapshot(self) -> tuple:
        return tuple(sorted((k, v) for k, v in self.objects.items() if v))


def pfn_to_nid(m, pfn: int) -> int:
    """The node a physical page belongs to: its memory block's, else its struct page's."""
    mem = m.memory.blocks.get(m.memory.pfn_to_block_id(pfn))
    if mem is not None and mem.nid >= 0:
        return mem.nid
    if m.ms.pfn_valid(pfn):
        return m.ms.page_to_nid(pfn)
    return -1


def by_node(counter_dict) -> dict:
    out: dict = defaultdict(int)
    for k, v in counter_dict.items():
        out[k] += v
    return dict(out)
