"""The iomem resource tree (kernel/resource.c, 6.1): what /proc/iomem lists.

Hot-added memory is a busy "System RAM" resource requested under iomem_resource
(register_memory_resource); removal releases it (release_mem_region_adjustable).
"""
from __future__ import annotations

import errno
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


class ResourceTree:
    """iomem_resource and its children."""

    def __init__(self, physmem_end: int):
        self.root = Resource(0, physmem_end, "PCI mem")

    def insert(self, res: Resource, parent: Resource | None = None, nest: bool = False) -> Resource:
        """__request_resource / insert_resource: a conflict with a sibling raises EEXIST; a
        resource that fits inside an existing one becomes its child (as the boot code puts
        Kernel code under System RAM); ``nest`` also nests a resource of the very same range
        (a device claiming its firmware region, e.g. System ROM in the BIOS's Reserved)."""
        parent = parent or self.root
        for c in parent.children:
            inside = c.start <= res.start and res.end <= c.end
            if inside and (nest or (c.start, c.end) != (res.start, res.end)):
                return self.insert(res, c, nest)
            if c.overlaps(res.start, res.end):
                raise HotplugError(errno.EEXIST, f"resource [{res.start:#x}-{res.end:#x}] "
                                   f"{res.name!r} conflicts with [{c.start:#x}-{c.end:#x}] {c.name!r}")
        parent.children.append(res)
        parent.children.sort(key=lambda r: r.start)
        return res

    def conflict(self, start: int, end: int) -> Resource | None:
        """kernel/resource.c:__request_resource's conflict: the top-level resource overlapping
        [start, end], or None."""
        for c in self.root.children:
            if c.overlaps(start, end):
                return c
        return None

    def request_mem_region(self, start: int, size: int, name: str, flags: int) -> Resource | None:
        """__request_region on iomem_resource at the top level: the new busy resource, or None
        when it conflicts (``conflict`` names with what)."""
        end = start + size - 1
        if self.conflict(start, end) is not None:
            return None
        res = Resource(start, end, name, flags | IORESOURCE_BUSY)
        self.root.children.append(res)
        self.root.children.sort(key=lambda r: r.start)
        return res

    def release_mem_region_adjustable(self, start: int, size: int) -> bool:
        """kernel/resource.c:release_mem_region_adjustable (6.1): release, trim or split the busy
        memory resource that contains the whole range. A range no single resource contains (e.g.
        two DIMMs removed in one go) releases nothing, silently, as in the kernel. Returns whether
        a resource was changed."""
        end = start + size - 1
        kids = self.root.children
        i = 0
        while i < len(kids):
            c = kids[i]
            if c.start >= end:
                break
            if c.start > start or c.end < end:
                i += 1
                continue
            if not c.flags & IORESOURCE_MEM:
                break
            if not c.flags & IORESOURCE_BUSY:
                kids, i = c.children, 0
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
        return False

    def merge_system_ram_resource(self, res: Resource) -> None:
        """kernel/resource.c:merge_system_ram_resource: fold into equal-flag neighbours."""
        kids = self.root.children
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
        """True when [start, end) is covered by System RAM resources."""
        covered = 0
        for s, e in self.system_ram_ranges():
            covered += max(0, min(e, end) - max(s, start))
        return covered == end - start
