# pfn scanners over the struct pages (compiled). Twin: hotmem/_py/scan.py; the KPF_* and
# isolation-flag constants: hotmem/defs.py (D.*: hotmem/defs.pxd).
from hotmem.defs import (
    KPF_LOCKED, KPF_ERROR, KPF_REFERENCED, KPF_UPTODATE, KPF_DIRTY, KPF_LRU, KPF_ACTIVE, KPF_SLAB,
    KPF_WRITEBACK, KPF_RECLAIM, KPF_BUDDY, KPF_MMAP, KPF_ANON, KPF_SWAPCACHE, KPF_SWAPBACKED,
    KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL, KPF_HUGE, KPF_UNEVICTABLE, KPF_HWPOISON, KPF_NOPAGE,
    KPF_KSM, KPF_THP, KPF_OFFLINE, KPF_ZERO_PAGE, KPF_IDLE, KPF_PGTABLE, KPF_RESERVED, KPF_MLOCKED,
    KPF_MAPPEDTODISK, KPF_PRIVATE, KPF_PRIVATE_2, KPF_OWNER_PRIVATE, KPF_ARCH, KPF_UNCACHED,
    KPF_SOFTDIRTY, KPF_ARCH_2, MEMORY_OFFLINE, REPORT_FAILURE, STABLE_PAGE_FLAGS_COPY,
)

# STABLE_PAGE_FLAGS_COPY as two C arrays (at most one pair per KPF bit)
cdef int _copy_kpf[64]
cdef int _copy_pg[64]
cdef int _ncopy = len(STABLE_PAGE_FLAGS_COPY)
assert _ncopy <= 64
for _i, (_k, _p) in enumerate(STABLE_PAGE_FLAGS_COPY):
    _copy_kpf[_i] = _k
    _copy_pg[_i] = _p


cdef inline bint _page_type_is(uint32_t page_type, uint32_t flag) noexcept nogil:
    return (page_type & (D.PAGE_TYPE_BASE | flag)) == D.PAGE_TYPE_BASE


cdef bint _is_free_buddy_page(MemSections ms, int64_t pfn, int max_order) noexcept nogil:
    cdef int order
    cdef page_t* head
    for order in range(max_order):
        head = ms.pfn_to_page(pfn & ~((<int64_t> 1 << order) - 1))
        if head != NULL and _page_type_is(head.page_type, D.PG_buddy) and head.private >= <uint64_t> order:
            return True
    return False


cdef uint64_t _stable_page_flags(MemSections ms, int64_t pfn, int max_order) noexcept nogil:
    cdef page_t* page = ms.c_pfn_to_online_page(pfn)
    if page == NULL:
        return (<uint64_t> 1) << D.KPF_NOPAGE
    cdef uint64_t k = page.flags, u = 0
    cdef int i
    if not ((k >> D.PG_slab) & 1) and <int32_t> page.page_type >= 0:
        u |= (<uint64_t> 1) << D.KPF_MMAP
    if _page_type_is(page.page_type, D.PG_buddy):
        u |= (<uint64_t> 1) << D.KPF_BUDDY
    elif page._refcount == 0 and _is_free_buddy_page(ms, pfn, max_order):
        u |= (<uint64_t> 1) << D.KPF_BUDDY
    if _page_type_is(page.page_type, D.PG_offline):
        u |= (<uint64_t> 1) << D.KPF_OFFLINE
    if _page_type_is(page.page_type, D.PG_table):
        u |= (<uint64_t> 1) << D.KPF_PGTABLE
    if ((k >> D.PG_swapbacked) & 1) and ((k >> D.PG_owner_priv_1) & 1):
        u |= (<uint64_t> 1) << D.KPF_SWAPCACHE
    for i in range(_ncopy):
        u |= ((k >> _copy_pg[i]) & 1) << _copy_kpf[i]
    return u


def kpageflags(MemSections ms not None, pfn_arg, count_arg, int max_order):
    """The /proc/kpageflags words of [start_pfn, start_pfn + count) (fs/proc/page.c, 6.1).

    ``max_order`` is 6.1's MAX_ORDER (number of buddy orders) for is_free_buddy_page. The range
    is checked before it is converted to int64 (hotmem.boundary.core_pfn_range, as the twin)."""
    cdef int64_t start_pfn, count
    start_pfn, count = _core_pfn_range(pfn_arg, count_arg, "kpageflags")
    cdef cnp.ndarray[cnp.uint64_t, ndim=1] out = np.empty(count, dtype=np.uint64)
    cdef uint64_t[::1] o = out
    cdef int64_t i
    with nogil:
        for i in range(count):
            o[i] = _stable_page_flags(ms, start_pfn + i, max_order)
    return out


def kpagecount(MemSections ms not None, pfn_arg, count_arg):
    """The /proc/kpagecount words of [start_pfn, start_pfn + count) (fs/proc/page.c, 6.1);
    the range checked as kpageflags checks it."""
    cdef int64_t start_pfn, count
    start_pfn, count = _core_pfn_range(pfn_arg, count_arg, "kpagecount")
    cdef cnp.ndarray[cnp.uint64_t, ndim=1] out = np.zeros(count, dtype=np.uint64)
    cdef uint64_t[::1] o = out
    cdef int64_t i
    cdef page_t* page
    with nogil:
        for i in range(count):
            page = ms.c_pfn_to_online_page(start_pfn + i)
            if page == NULL or ((page.flags >> D.PG_slab) & 1) or <int32_t> page.page_type < D.PAGE_MAPCOUNT_RESERVE:
                continue
            o[i] = <uint64_t> (<int64_t> (<int32_t> page.page_type) + 1)
    return out


def has_unmovable_pages(MemSections ms not None, int64_t start_pfn, int64_t end_pfn,
                        int migratetype, int flags, int zone_movable):
    """mm/page_isolation.c:has_unmovable_pages (6.1, no CMA, no compound pages in the model).

    [start_pfn, end_pfn) must lie in one pageblock; ``zone_movable`` is ZONE_MOVABLE's index.
    Returns the first unmovable pfn, or -1."""
    cdef int64_t pb = 1 << ms.pageblock_order
    if end_pfn <= start_pfn or start_pfn // pb != (end_pfn - 1) // pb:
        raise HotplugError(_errno.EINVAL, f"pfn range {start_pfn:#x}-{end_pfn:#x} is not within "
                           "one pageblock")
    ms._check_range(start_pfn, end_pfn - start_pfn)
    cdef page_t* page = ms.pfn_to_page(start_pfn)
    cdef bint zone_is_movable = ((page.flags >> ms.zones_pgshift) & ((1 << ms.zones_width) - 1)) == zone_movable
    cdef int64_t r
    with nogil:
        r = _has_unmovable(ms, start_pfn, end_pfn, flags, zone_is_movable)
    return r


cdef int64_t _has_unmovable(MemSections ms, int64_t pfn, int64_t end_pfn, int flags,
                            bint zone_is_movable) noexcept nogil:
    # the kernel steps pfn++ over a movable page; a run of equal records is stepped at once
    cdef page_t* page
    while pfn < end_pfn:
        page = ms.pfn_to_page(pfn)
        if (page.flags >> D.PG_reserved) & 1:
            return pfn
        if zone_is_movable:
            pfn += ms.c_same_run(pfn, end_pfn - pfn)
            continue
        if page._refcount == 0:
            if _page_type_is(page.page_type, D.PG_buddy):
                pfn += (<int64_t> 1) << page.private
            else:
                pfn += ms.c_same_run(pfn, end_pfn - pfn)
            continue
        if (flags & D.MEMORY_OFFLINE) and (((page.flags >> D.PG_hwpoison) & 1)
                                          or _page_type_is(page.page_type, D.PG_offline)):
            pfn += ms.c_same_run(pfn, end_pfn - pfn)
            continue
        if (page.flags >> D.PG_lru) & 1:
            pfn += ms.c_same_run(pfn, end_pfn - pfn)
            continue
        return pfn
    return -1


cdef inline bint _matches(MemSections ms, int64_t pfn, int nid, int zoneid) noexcept nogil:
    cdef page_t* page = ms.c_pfn_to_online_page(pfn)
    return (page != NULL and <int> (page.flags >> ms.nodes_pgshift) == nid
            and ms.c_page_zoneid(page) == zoneid)


def find_smallest_section_pfn(MemSections ms not None, int nid, int zoneid, int64_t start_pfn,
                              int64_t end_pfn):
    """mm/memory_hotplug.c:find_smallest_section_pfn (6.1): first online pfn of the zone on nid in
    [start_pfn, end_pfn), stepping by a subsection; 0 when none."""
    cdef int64_t step = 1 << ms.pfn_subsection_shift, pfn = start_pfn, found = 0
    with nogil:
        while pfn < end_pfn:
            if _matches(ms, pfn, nid, zoneid):
                found = pfn
                break
            pfn += step
    return found


def find_biggest_section_pfn(MemSections ms not None, int nid, int zoneid, int64_t start_pfn,
                             int64_t end_pfn):
    """mm/memory_hotplug.c:find_biggest_section_pfn (6.1): searching down from end_pfn − 1."""
    cdef int64_t step = 1 << ms.pfn_subsection_shift, pfn = end_pfn - 1, found = 0
    with nogil:
        while pfn >= start_pfn and pfn >= 0:
            if _matches(ms, pfn, nid, zoneid):
                found = pfn
                break
            pfn -= step
    return found


def count_page_flag(MemSections ms not None, int64_t start_pfn, int64_t nr_pages, int bit):
    """How many struct pages of [start_pfn, start_pfn + nr_pages) have PG bit ``bit`` set."""
    ms._check_range(start_pfn, nr_pages)
    cdef int64_t pfn, n = 0
    with nogil:
        for pfn in range(start_pfn, start_pfn + nr_pages):
            n += (ms.pfn_to_page(pfn).flags >> bit) & 1
    return n


# -- range operations: one call per range ----------------------------------------------------------

cdef int64_t _pageblock_has_unmovable(MemSections ms, int64_t start_pfn, int64_t end_pfn,
                                      int flags, int zone_movable) noexcept nogil:
    """has_unmovable_pages on [start_pfn, end_pfn), inside one pageblock with a memmap."""
    cdef page_t* page = ms.pfn_to_page(start_pfn)
    cdef bint zone_is_movable = ((page.flags >> ms.zones_pgshift)
                                 & ((1 << ms.zones_width) - 1)) == zone_movable
    return _has_unmovable(ms, start_pfn, end_pfn, flags, zone_is_movable)


def has_unmovable_pages_range(MemSections ms not None, int64_t start_pfn, int64_t end_pfn,
                              int migratetype, int flags, int zone_movable):
    """mm/page_isolation.c:has_unmovable_pages (6.1) on each pageblock's part of
    [start_pfn, end_pfn) in ascending order, as set_migratetype_isolate asks it: the first
    unmovable pfn, or -1."""
    if start_pfn < 0 or end_pfn <= start_pfn:
        raise HotplugError(_errno.EINVAL, f"bad pfn range {start_pfn:#x}-{end_pfn:#x}")
    ms._check_range(start_pfn, end_pfn - start_pfn)
    cdef int64_t pb = 1 << ms.pageblock_order, pfn = start_pfn, nxt, r = -1
    with nogil:
        while pfn < end_pfn:
            nxt = min((pfn | (pb - 1)) + 1, end_pfn)
            r = _pageblock_has_unmovable(ms, pfn, nxt, flags, zone_movable)
            if r >= 0:
                break
            pfn = nxt
    return r
