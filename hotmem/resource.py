"""The iomem resource tree (kernel/resource.c, 6.1): what /proc/iomem lists.

Hot-added memory is a busy "System RAM" resource requested under iomem_resource
(register_memory_resource); removal releases it (release_mem_region_adjustable).
"""
from __future__ import annotations

import errno
from bisect import bisect_right, insort
from dataclasses import dataclass, field

from hotmem.errors import HotplugError

IORESOURCE_MEM = 0x00000200
IORESOURCE_BUSY = 0x80000000
IORESOURCE_SYSRAM = 0x01000000
IORESOURCE_SYSRAM_DRIVER_MANAGED = 0x02000000
IORESOURCE_SYSTEM_RAM = IORESOURCE_MEM | IORESOURCE_SYSRAM


@dataclass
class Resource:
    """struct resource: [start, end] inclusive."""
    start: int
    end: int
    name: str
    flags: int = IORESOURCE_MEM
    children: list = field(default_factory=list)

    def overlaps(self, start: int, end: int) -> bool:
        return self.start <= end and start <= self.end


def _start(r: Resource) -> int:
    return r.start


def _first_overlap(kids: list, start: int, end: int) -> int:
    """Index of the first of the sorted, disjoint siblings ``kids`` overlapping [start, end]
    (inclusive), or -1: what a walk of the list finds, in O(log n)."""
    i = bisect_right(kids, start, key=_start) - 1
    if i >= 0 and kids[i].end >= start:
        return i
    i += 1
    if i < len(kids) and kids[i].start <= end:
        return i
    return -1


class ResourceTree:
    """iomem_resource and its children. Siblings are kept sorted by start and never overlap
    (every insertion checks), so lookups bisect instead of walking the list: hot-adding
    thousands of blocks stays linear overall."""
    """iomem_resource and its children."""

    def __init__(self, physmem_end: int):
        self.root = Resource(0, physmem_end, "PCI mem")

    def insert(self, res: Resource, parent: Resource | None = None, nest: bool = False) -> Resource:
        """__request_resource / insert_resource: a conflict with a sibling raises EEXIST; a
        resource that fits inside an existing one becomes its child (as the boot code puts
        Kernel code under System RAM); ``nest`` also nests a resource of the very same range
        (a device claiming its firmware region, e.g. System ROM in the BIOS's Reserved)."""
        parent = parent or self.root
        i = _first_overlap(parent.children, res.start, res.end)
        if i >= 0:
            c = parent.children[i]
            inside = c.start <= res.start and res.end <= c.end
            if inside and (nest or (c.start, c.end) != (res.start, res.end)):
                return self.insert(res, c, nest)
            raise HotplugError(errno.EEXIST, f"resource [{res.start:#x}-{res.end:#x}] "
                               f"{res.name!r} conflicts with [{c.start:#x}-{c.end:#x}] {c.name!r}")
        insort(parent.children, res, key=_start)
        return res

    def conflict(self, start: int, end: int) -> Resource | None:
        """kernel/resource.c:__request_resource's conflict: the top-level resource overlapping
        [start, end], or None."""
        kids = self.root.children
        i = _first_overlap(kids, start, end)
        return kids[i] if i >= 0 else None

    def request_mem_region(self, start: int, size: int, name: str, flags: int) -> Resource | None:
        """kernel/resource.c:__request_region on iomem_resource (6.1): the new busy resource, or
        None when it conflicts (``conflict`` names with what). A conflicting resource that is
        not busy and holds the whole range becomes the parent and the request goes one level
        down (__request_region_locked's loop): how "System RAM (virtio_mem)" lands inside the
        device's own non-busy "virtio0" region."""
        end = start + size - 1
        parent = self.root
        while True:
            kids = parent.children
            i = _first_overlap(kids, start, end)
            if i < 0:
                break
            c = kids[i]
            if c.flags & IORESOURCE_BUSY or not (c.start <= start and end <= c.end) \
                    or (i + 1 < len(kids) and kids[i + 1].start <= end):
                return None
            parent = c
        res = Resource(start, end, name, flags | IORESOURCE_BUSY)
        insort(parent.children, res, key=_start)
        return res

    def parent_of(self, res: Resource) -> Resource:
        """The resource whose children list holds ``res`` (res->parent)."""
        parent = self.root
        while True:
            kids = parent.children
            i = bisect_right(kids, res.start, key=_start) - 1
            if i < 0:
                raise HotplugError(errno.ENOENT, f"resource [{res.start:#x}-{res.end:#x}] "
                                   "is not in the tree")
            if kids[i] is res:
                return parent
            parent = kids[i]

    def release_mem_region_adjustable(self, start: int, size: int) -> bool:
        """kernel/resource.c:release_mem_region_adjustable (6.1): release, trim or split the busy
        memory resource that contains the whole range. A range no single resource contains (e.g.
        two DIMMs removed in one go) releases nothing, silently, as in the kernel. Returns whether
        a resource was changed."""
        end = start + size - 1
        kids = self.root.children
        while True:
            # the one sibling that can hold the whole range: the last starting at or below it
            i = bisect_right(kids, start, key=_start) - 1
            if i < 0:
                return False
            c = kids[i]
            if c.start >= end or c.end < end:
                return False
            if not c.flags & IORESOURCE_MEM:
                return False
            if not c.flags & IORESOURCE_BUSY:
                kids = c.children
                continue
            if (c.start, c.end) == (start, end):
                del kids[i]
            elif c.start == start:
                c.start = end + 1
            elif c.end == end:
                c.end = start - 1
            else:
                kids.insert(i + 1, Resource(end + 1, c.end, c.name, c.flags))
                c.end = start - 1
            return True

    def merge_system_ram_resource(self, res: Resource) -> None:
        """kernel/resource.c:merge_system_ram_resource: fold into equal-flag neighbours."""
        kids = self.parent_of(res).children
        i = bisect_right(kids, res.start, key=_start) - 1
        if i < 0 or kids[i] is not res:
            i = kids.index(res)
        if i + 1 < len(kids) and kids[i + 1].start == res.end + 1 and kids[i + 1].flags == res.flags \
                and kids[i + 1].name == res.name:
            res.end = kids[i + 1].end
            del kids[i + 1]
        if i > 0 and kids[i - 1].end + 1 == res.start and kids[i - 1].flags == res.flags \
                and kids[i - 1].name == res.name:
            kids[i - 1].end = res.end
            del kids[i]

    def system_ram_ranges(self):
        """walk_system_ram_range's view: busy System RAM resources (start, end exclusive)."""
        out = []

        def walk(r):
            for c in r.children:
                if c.flags & IORESOURCE_SYSTEM_RAM == IORESOURCE_SYSTEM_RAM and c.flags & IORESOURCE_BUSY:
                    out.append((c.start, c.end + 1))
                else:
                    walk(c)
        walk(self.root)
        return sorted(out)

    def range_is_system_ram(self, start: int, end: int) -> bool:
        """True when [start, end) is covered by System RAM resources (those of
        system_ram_ranges; only the subtrees overlapping the range are walked)."""
        covered = 0
        last = end - 1

        def walk(r):
            nonlocal covered
            kids = r.children
            i = _first_overlap(kids, start, last)
            if i < 0:
                return
            while i < len(kids) and kids[i].start <= last:
                c = kids[i]
                if c.flags & IORESOURCE_SYSTEM_RAM == IORESOURCE_SYSTEM_RAM and \
                        c.flags & IORESOURCE_BUSY:
                    covered += max(0, min(c.end + 1, end) - max(c.start, start))
                else:
                    walk(c)
                i += 1
        if end > start:
            walk(self.root)
        return covered == end - start
