"""Range operations of the core (issue #17), on both backends: each one core call against the
per-pageblock / per-MAX_ORDER-chunk sequence of single calls it replaces (same struct pages,
usemaps and allocator state after, same refusing pfn), with the expected values computed by hand
from mm/page_isolation.c and mm/memory_hotplug.c (6.1).
"""
import errno
import random

import pytest

from hotmem.errors import HotplugError
from test_buddy import (ISOLATE, MAX_ORDER, MOVABLE, P, PAGEBLOCK_NR_PAGES, PAGES_PER_SECTION,
                        VMEMMAP, ZONE_MOVABLE, ZONE_NORMAL, chunk_order, decompose, free_lists,
                        make, zoneid)

MEMORY_OFFLINE, REPORT_FAILURE = 0x1, 0x2
FLAGS = MEMORY_OFFLINE | REPORT_FAILURE
NR_PB = PAGES_PER_SECTION // PAGEBLOCK_NR_PAGES          # 64 pageblocks in a section
END = P + PAGES_PER_SECTION
PG_RESERVED = 12


def snap(ms, pa):
    return ms.state(), pa.state()


def prepared(core, zone=ZONE_MOVABLE, vmemmap=VMEMMAP):
    """A section as online_pages leaves it before the frees: vmemmap pages unmovable, the rest
    initialised MIGRATE_ISOLATE and counted in nr_isolate_pageblock."""
    ms, pa = make(core)
    zid = zoneid(0, zone)
    if vmemmap:
        ms.memmap_init_range(P, vmemmap, 0, zone, 0)
    ms.memmap_init_range(P + vmemmap, PAGES_PER_SECTION - vmemmap, 0, zone, ISOLATE)
    pa.adjust_nr_isolate_pageblock(zid, (PAGES_PER_SECTION - vmemmap) // PAGEBLOCK_NR_PAGES)
    return ms, pa, zid


def per_chunk_online(pa, start, end):
    """The loop online_pages_range replaced: one free_pages_core per chunk."""
    pfn = start
    while pfn < end:
        order = chunk_order(pfn)
        pa.free_pages_core(pfn, order)
        pfn += 1 << order


def per_pb_undo(pa, start, end, descending=False):
    pbs = list(range(start & ~(PAGEBLOCK_NR_PAGES - 1), end, PAGEBLOCK_NR_PAGES))
    for pfn in (reversed(pbs) if descending else pbs):
        pa.unset_migratetype_isolate(pfn, MOVABLE)


def per_pb_isolate(core, ms, pa, start, end):
    """The loop mm/page_isolation.start_isolate_page_range had: ascending, undone from the last
    isolated down at the first refusal."""
    done = []
    for p in range(start, end, PAGEBLOCK_NR_PAGES):
        if ms.get_pageblock_migratetype(p) == ISOLATE:
            bad = p
        else:
            bad = core.has_unmovable_pages(ms, p, p + PAGEBLOCK_NR_PAGES, MOVABLE, FLAGS,
                                           ZONE_MOVABLE)
        if bad >= 0:
            for q in reversed(done):
                pa.unset_migratetype_isolate(q, MOVABLE)
            return bad
        pa.set_migratetype_isolate(p)
        done.append(p)
    return -1


def online_section(core, zone=ZONE_MOVABLE, vmemmap=VMEMMAP):
    ms, pa, zid = prepared(core, zone, vmemmap)
    assert pa.online_pages_range(P + vmemmap, PAGES_PER_SECTION - vmemmap) == \
        PAGES_PER_SECTION - vmemmap
    assert pa.undo_isolate_page_range(P + vmemmap, END, MOVABLE) == \
        (PAGES_PER_SECTION - vmemmap) // PAGEBLOCK_NR_PAGES
    return ms, pa, zid


def fragment(core, ms, pa, zid, seed, n=60):
    """Allocations of mixed orders and a few frees: a state with free blocks of every size."""
    rnd = random.Random(seed)
    held = []
    for _ in range(n):
        pfn = pa.alloc_pages(zid, rnd.randrange(0, 4), MOVABLE, 0)
        if pfn >= 0:
            held.append(pfn)
    for pfn, order in sorted(pa.allocated().items()):
        if rnd.random() < 0.5:
            pa.free_pages(pfn, order, 0)
    pa.drain_zone_pages(zid)


# -- online_pages_range --------------------------------------------------------------------------
@pytest.mark.parametrize("vmemmap", [0, VMEMMAP])
def test_online_pages_range_equals_per_chunk_free_pages_core(core, vmemmap):
    ms1, pa1, zid = prepared(core, vmemmap=vmemmap)
    ms2, pa2, _ = prepared(core, vmemmap=vmemmap)
    got = pa1.online_pages_range(P + vmemmap, PAGES_PER_SECTION - vmemmap)
    per_chunk_online(pa2, P + vmemmap, END)
    assert got == PAGES_PER_SECTION - vmemmap
    assert snap(ms1, pa1) == snap(ms2, pa2)
    # 6.1: all on the ISOLATE lists (every pageblock isolated), managed counted, nothing free
    assert pa1.managed_pages(zid) == PAGES_PER_SECTION - vmemmap
    assert pa1.nr_free_pages(zid) == 0
    assert free_lists(pa1, zid, ISOLATE) == decompose(P + vmemmap, END)


def test_online_pages_range_chunks_by_hand(core):
    """[P + 512, P + 32768): one order-9 chunk at P + 512, then 31 order-10 chunks; after the
    undo every block is MOVABLE and counted free."""
    ms, pa, zid = online_section(core)
    assert free_lists(pa, zid, MOVABLE) == {9: [P + 512],
                                            10: [P + 1024 * k for k in range(1, 32)]}
    assert pa.nr_free_pages(zid) == 512 + 31 * 1024
    assert pa.nr_isolate_pageblock(zid) == 0


def test_online_pages_range_refuses_as_free_pages_core(core):
    """A chunk free_pages_core refuses: EINVAL, the chunks before it freed (as the single calls
    left them)."""
    states = []
    for how in ("range", "steps"):
        ms, pa, zid = prepared(core)
        bad = END - 3
        ms.set_page_flags(bad, ms.page_flags(bad) & ~(1 << PG_RESERVED))
        with pytest.raises(HotplugError) as e:
            if how == "range":
                pa.online_pages_range(P + VMEMMAP, PAGES_PER_SECTION - VMEMMAP)
            else:
                per_chunk_online(pa, P + VMEMMAP, END)
        assert e.value.errno == errno.EINVAL
        assert pa.managed_pages(zid) == PAGES_PER_SECTION - VMEMMAP - 1024   # 31 chunks of 32
        states.append(snap(ms, pa))
    assert states[0] == states[1]
    for args in ((-1, 512), (P, 0), (P + PAGES_PER_SECTION, 512)):   # no memmap there
        with pytest.raises(HotplugError):
            pa.online_pages_range(*args)


# -- undo_isolate_page_range ---------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_undo_isolate_page_range_equals_per_pageblock_unset(core, seed):
    """Ascending (the kernel's and online_pages's loop) and descending (page_isolation's old
    loop) single calls end in the same state as the range call."""
    states, counts = [], []
    for how in ("range", "asc", "desc"):
        ms, pa, zid = online_section(core)
        fragment(core, ms, pa, zid, seed)
        rnd = random.Random(seed)
        for k in sorted(rnd.sample(range(1, NR_PB), 40)):      # some pageblocks isolated
            pa.set_migratetype_isolate(P + k * PAGEBLOCK_NR_PAGES)
        if how == "range":
            counts.append(pa.undo_isolate_page_range(P + VMEMMAP, END, MOVABLE))
        else:
            per_pb_undo(pa, P + VMEMMAP, END, descending=how == "desc")
        states.append(snap(ms, pa))
        assert pa.nr_isolate_pageblock(zid) == 0
    assert states[0] == states[1] == states[2]
    assert counts == [40]


def test_undo_isolate_page_range_merges_buddies(core):
    """Two isolated order-9 buddies (pageblocks 2 and 3) merge into one order-10 block when the
    second of them is un-isolated (unset_migratetype_isolate's __isolate_free_page path)."""
    ms, pa, zid = online_section(core)
    a, b = P + 2 * PAGEBLOCK_NR_PAGES, P + 3 * PAGEBLOCK_NR_PAGES
    pa.take_page_off_buddy(a)                        # split the order-10 block at a
    pa.set_migratetype_isolate(a)
    pa.set_migratetype_isolate(b)
    assert 9 in free_lists(pa, zid, ISOLATE) and b in free_lists(pa, zid, ISOLATE)[9]
    assert pa.undo_isolate_page_range(a, b + PAGEBLOCK_NR_PAGES, MOVABLE) == 2
    assert b in free_lists(pa, zid, MOVABLE)[9]      # a is not free: b cannot merge
    pa.free_pages(a, 0, 0)
    pa.drain_zone_pages(zid)
    assert a in free_lists(pa, zid, MOVABLE)[10]


# -- has_unmovable_pages_range -------------------------------------------------------------------
@pytest.mark.parametrize("zone", [ZONE_NORMAL, ZONE_MOVABLE])
def test_has_unmovable_pages_range_equals_per_pageblock(core, zone):
    ms, pa, zid = online_section(core, zone=zone)
    taken = [P + 5 * PAGEBLOCK_NR_PAGES + 77, P + 40 * PAGEBLOCK_NR_PAGES + 3]
    for pfn in taken:
        pa.take_page_off_buddy(pfn)              # refcount 1, no PG_lru: unmovable in NORMAL
    resv = P + 50 * PAGEBLOCK_NR_PAGES + 9
    pa.take_page_off_buddy(resv)
    ms.set_page_flags(resv, ms.page_flags(resv) | (1 << PG_RESERVED))   # unmovable anywhere

    def per_pb(start, end):
        for p in range(start, end, PAGEBLOCK_NR_PAGES):
            r = core.has_unmovable_pages(ms, p, min(p + PAGEBLOCK_NR_PAGES, end), MOVABLE, FLAGS,
                                         ZONE_MOVABLE)
            if r >= 0:
                return r
        return -1

    first = taken[0] if zone == ZONE_NORMAL else resv
    for start, end, want in ((P + VMEMMAP, END, first),
                             (P + 6 * PAGEBLOCK_NR_PAGES, END,
                              taken[1] if zone == ZONE_NORMAL else resv),
                             (P + 51 * PAGEBLOCK_NR_PAGES, END, -1),
                             (P, END, P)):                       # vmemmap pages: PG_reserved
        assert core.has_unmovable_pages_range(ms, start, end, MOVABLE, FLAGS, ZONE_MOVABLE) \
            == want == per_pb(start, end)
    with pytest.raises(HotplugError):
        core.has_unmovable_pages_range(ms, END, END + 512, MOVABLE, FLAGS, ZONE_MOVABLE)


# -- start_isolate_page_range --------------------------------------------------------------------
def test_start_isolate_page_range_success_equals_per_pageblock(core):
    """ZONE_MOVABLE: only PG_reserved pages refuse, so a fragmented block isolates."""
    ms1, pa1, zid = online_section(core)
    ms2, pa2, _ = online_section(core)
    for ms, pa in ((ms1, pa1), (ms2, pa2)):
        fragment(core, ms, pa, zid, 7)
    assert pa1.start_isolate_page_range(P + VMEMMAP, END, MOVABLE, FLAGS, ZONE_MOVABLE) == -1
    assert per_pb_isolate(core, ms2, pa2, P + VMEMMAP, END) == -1
    assert snap(ms1, pa1) == snap(ms2, pa2)
    assert pa1.nr_isolate_pageblock(zid) == NR_PB - 1
    assert pa1.nr_free_pages(zid) == 0                   # every free page on an ISOLATE list


@pytest.mark.parametrize("where", [1, 30, NR_PB - 1])    # first, a middle, the last pageblock
def test_start_isolate_page_range_refusal_equals_per_pageblock(core, where):
    bad = P + where * PAGEBLOCK_NR_PAGES + 100
    out = []
    for how in ("range", "steps"):
        ms, pa, zid = online_section(core, zone=ZONE_NORMAL)
        pa.take_page_off_buddy(bad)
        before = snap(ms, pa)
        if how == "range":
            r = pa.start_isolate_page_range(P + VMEMMAP, END, MOVABLE, FLAGS, ZONE_MOVABLE)
        else:
            r = per_pb_isolate(core, ms, pa, P + VMEMMAP, END)
        assert r == bad
        assert pa.nr_isolate_pageblock(zid) == 0
        out.append(snap(ms, pa))
        assert out[-1] == before          # isolating and un-isolating whole order-10 blocks
    assert out[0] == out[1]


def test_start_isolate_page_range_already_isolated(core):
    """set_migratetype_isolate's -EBUSY on an isolated pageblock: the model reports the
    pageblock's pfn; the ones before it are undone, the isolated one stays."""
    ms, pa, zid = online_section(core, zone=ZONE_NORMAL)
    pb = P + 9 * PAGEBLOCK_NR_PAGES
    pa.set_migratetype_isolate(pb)
    assert pa.start_isolate_page_range(P + VMEMMAP, END, MOVABLE, FLAGS, ZONE_MOVABLE) == pb
    assert pa.nr_isolate_pageblock(zid) == 1
    assert ms.get_pageblock_migratetype(pb) == ISOLATE
    assert ms.get_pageblock_migratetype(pb - PAGEBLOCK_NR_PAGES) == MOVABLE


def test_start_isolate_page_range_orders(core):
    """Two refusing pageblocks, a middle one (pfn m) and the last (pfn l): the model's ascending
    order reports m; 6.1's order (first pageblock, last pageblock, then the middle ones:
    isolate_single_pageblock twice, then set_migratetype_isolate) reports l. A refusal of the
    first pageblock is reported first by both."""
    m_bad, l_bad = P + 20 * PAGEBLOCK_NR_PAGES + 1, END - 5
    for ends_first, want in ((False, m_bad), (True, l_bad)):
        ms, pa, zid = online_section(core, zone=ZONE_NORMAL)
        pa.take_page_off_buddy(m_bad)
        pa.take_page_off_buddy(l_bad)
        before = snap(ms, pa)
        assert pa.start_isolate_page_range(P + VMEMMAP, END, MOVABLE, FLAGS, ZONE_MOVABLE,
                                           ends_first) == want
        assert snap(ms, pa) == before and pa.nr_isolate_pageblock(zid) == 0
        f_bad = P + VMEMMAP + 7
        pa.take_page_off_buddy(f_bad)
        assert pa.start_isolate_page_range(P + VMEMMAP, END, MOVABLE, FLAGS, ZONE_MOVABLE,
                                           ends_first) == f_bad
    # 6.1 order with a middle refusal only: [first, m) undone ascending, then the last
    for ends_first in (False, True):
        ms, pa, zid = online_section(core, zone=ZONE_NORMAL)
        pa.take_page_off_buddy(m_bad)
        before = snap(ms, pa)
        assert pa.start_isolate_page_range(P + VMEMMAP, END, MOVABLE, FLAGS, ZONE_MOVABLE,
                                           ends_first) == m_bad
        assert snap(ms, pa) == before


def test_range_calls_refuse_bad_ranges(core):
    ms, pa, zid = online_section(core)
    for call in (lambda: pa.start_isolate_page_range(END, END + 512, MOVABLE, FLAGS, 3),
                 lambda: pa.start_isolate_page_range(P, P, MOVABLE, FLAGS, 3),
                 lambda: pa.undo_isolate_page_range(P, END + 512, MOVABLE),
                 lambda: pa.undo_isolate_page_range(P, END, ISOLATE)):
        with pytest.raises(HotplugError) as e:
            call()
        assert e.value.errno == errno.EINVAL


def test_max_order_is_the_chunk_cap():
    assert chunk_order(P) == MAX_ORDER - 1 and chunk_order(P + 512) == 9
