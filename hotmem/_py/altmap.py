"""Pure-Python twin of hotmem/_cy/altmap.pxi: ``struct vmem_altmap`` and its arithmetic.

include/linux/memremap.h:struct vmem_altmap; mm/sparse-vmemmap.c:vmem_altmap_next_pfn,
vmem_altmap_nr_free, altmap_alloc_block_buf; mm/memremap.c:vmem_altmap_offset, vmem_altmap_free
(identical in 6.1, 6.6 and 6.8). Counters are ``unsigned long`` in the kernel and wrap like it.
"""
import errno

from hotmem.errors import HotplugError

__all__ = ["VmemAltmap", "vmem_altmap_offset", "vmem_altmap_next_pfn", "vmem_altmap_nr_free",
           "altmap_alloc_block_buf", "vmem_altmap_free"]

_ULONG = (1 << 64) - 1


class VmemAltmap:
    """struct vmem_altmap: pfns at the start of a range that back the range's own memmap.

    base_pfn: first pfn; end_pfn: last pfn (6.6+; 6.1 hotplug leaves 0); reserve: pfns kept for
    the driver; free: pfns available for memmap; align: pfns consumed as alignment padding;
    alloc: pfns handed out.
    """
    __slots__ = ("base_pfn", "end_pfn", "reserve", "free", "align", "alloc")

    def __init__(self, base_pfn=0, end_pfn=0, reserve=0, free=0, align=0, alloc=0):
        for name, v in (("base_pfn", base_pfn), ("end_pfn", end_pfn), ("reserve", reserve),
                        ("free", free), ("align", align), ("alloc", alloc)):
            if not 0 <= v <= _ULONG:
                raise HotplugError(errno.EINVAL, f"vmem_altmap.{name} = {v} is not an unsigned long")
        self.base_pfn = base_pfn
        self.end_pfn = end_pfn
        self.reserve = reserve
        self.free = free
        self.align = align
        self.alloc = alloc

    def as_tuple(self):
        return (self.base_pfn, self.end_pfn, self.reserve, self.free, self.align, self.alloc)

    def __eq__(self, other):
        return hasattr(other, "as_tuple") and self.as_tuple() == other.as_tuple()

    def __repr__(self):
        return ("VmemAltmap(base_pfn={:#x}, end_pfn={:#x}, reserve={}, free={}, align={}, "
                "alloc={})".format(*self.as_tuple()))


def vmem_altmap_offset(altmap):
    """mm/memremap.c:vmem_altmap_offset: pfns from base whose memmap lives in the altmap."""
    if altmap is None:
        return 0
    return (altmap.reserve + altmap.free) & _ULONG


def vmem_altmap_next_pfn(altmap):
    """mm/sparse-vmemmap.c:vmem_altmap_next_pfn: the next pfn the altmap would hand out."""
    return (altmap.base_pfn + altmap.reserve + altmap.alloc + altmap.align) & _ULONG


def vmem_altmap_nr_free(altmap):
    """mm/sparse-vmemmap.c:vmem_altmap_nr_free: free − (alloc + align), never below 0."""
    allocated = (altmap.alloc + altmap.align) & _ULONG
    return altmap.free - allocated if altmap.free > allocated else 0


def altmap_alloc_block_buf(size, altmap, page_size=4096):
    """mm/sparse-vmemmap.c:altmap_alloc_block_buf (6.1): take ``size`` bytes from the altmap.

    The start is aligned to the largest power of two dividing the page count; returns the first
    pfn handed out, or -1 (the kernel's NULL) when ``size`` is not a page multiple or request plus
    padding exceeds what is free."""
    if size <= 0:
        raise HotplugError(errno.EINVAL, f"altmap allocation of {size} bytes")
    if size % page_size:
        return -1
    pfn = vmem_altmap_next_pfn(altmap)
    nr_pfns = size // page_size
    want = nr_pfns & -nr_pfns
    nr_align = ((pfn + want - 1) & ~(want - 1)) - pfn
    if nr_pfns + nr_align > vmem_altmap_nr_free(altmap):
        return -1
    altmap.alloc = (altmap.alloc + nr_pfns) & _ULONG
    altmap.align = (altmap.align + nr_align) & _ULONG
    return pfn + nr_align


def vmem_altmap_free(altmap, nr_pfns):
    """mm/memremap.c:vmem_altmap_free: alloc −= nr_pfns (no check, wraps like unsigned long)."""
    if nr_pfns < 0:
        raise HotplugError(errno.EINVAL, f"vmem_altmap_free of {nr_pfns} pfns")
    altmap.alloc = (altmap.alloc - nr_pfns) & _ULONG
