# struct vmem_altmap and its arithmetic (compiled). Twin: hotmem/_py/altmap.py.

cdef class VmemAltmap:
    """struct vmem_altmap: pfns at the start of a range that back the range's own memmap.

    base_pfn: first pfn; end_pfn: last pfn (6.6+; 6.1 hotplug leaves 0); reserve: pfns kept for
    the driver; free: pfns available for memmap; align: pfns consumed as alignment padding;
    alloc: pfns handed out.
    """
    cdef public uint64_t base_pfn, end_pfn, reserve, free, align, alloc

    def __init__(self, base_pfn=0, end_pfn=0, reserve=0, free=0, align=0, alloc=0):
        for name, v in (("base_pfn", base_pfn), ("end_pfn", end_pfn), ("reserve", reserve),
                        ("free", free), ("align", align), ("alloc", alloc)):
            if not 0 <= v <= 0xFFFFFFFFFFFFFFFF:
                raise HotplugError(_errno.EINVAL, f"vmem_altmap.{name} = {v} is not an unsigned long")
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


def vmem_altmap_offset(VmemAltmap altmap):
    """mm/memremap.c:vmem_altmap_offset: pfns from base whose memmap lives in the altmap."""
    if altmap is None:
        return 0
    return altmap.reserve + altmap.free


cdef inline uint64_t c_vmem_altmap_next_pfn(VmemAltmap a) noexcept:
    return a.base_pfn + a.reserve + a.alloc + a.align


cdef inline uint64_t c_vmem_altmap_nr_free(VmemAltmap a) noexcept:
    cdef uint64_t allocated = a.alloc + a.align
    return a.free - allocated if a.free > allocated else 0


def vmem_altmap_next_pfn(VmemAltmap altmap not None):
    """mm/sparse-vmemmap.c:vmem_altmap_next_pfn: the next pfn the altmap would hand out."""
    return c_vmem_altmap_next_pfn(altmap)


def vmem_altmap_nr_free(VmemAltmap altmap not None):
    """mm/sparse-vmemmap.c:vmem_altmap_nr_free: free − (alloc + align), never below 0."""
    return c_vmem_altmap_nr_free(altmap)


cdef int64_t c_altmap_alloc_block_buf(uint64_t nr_pfns, VmemAltmap a) noexcept:
    cdef uint64_t pfn = c_vmem_altmap_next_pfn(a)
    cdef uint64_t want = nr_pfns & (~nr_pfns + 1)
    cdef uint64_t nr_align = ((pfn + want - 1) & ~(want - 1)) - pfn
    if nr_pfns + nr_align > c_vmem_altmap_nr_free(a):
        return -1
    a.alloc += nr_pfns
    a.align += nr_align
    return <int64_t> (pfn + nr_align)


def altmap_alloc_block_buf(size, VmemAltmap altmap not None, page_size=4096):
    """mm/sparse-vmemmap.c:altmap_alloc_block_buf (6.1): take ``size`` bytes from the altmap.

    The start is aligned to the largest power of two dividing the page count; returns the first
    pfn handed out, or -1 (the kernel's NULL) when ``size`` is not a page multiple or request plus
    padding exceeds what is free."""
    if size <= 0:
        raise HotplugError(_errno.EINVAL, f"altmap allocation of {size} bytes")
    if size % page_size:
        return -1
    return c_altmap_alloc_block_buf(size // page_size, altmap)


def vmem_altmap_free(VmemAltmap altmap not None, nr_pfns):
    """mm/memremap.c:vmem_altmap_free: alloc −= nr_pfns (no check, wraps like unsigned long)."""
    if nr_pfns < 0:
        raise HotplugError(_errno.EINVAL, f"vmem_altmap_free of {nr_pfns} pfns")
    altmap.alloc -= <uint64_t> nr_pfns
