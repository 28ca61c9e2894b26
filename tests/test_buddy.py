"""The 6.1 page allocator (hotmem/_cy/buddy.pxi, hotmem/_py/buddy.py) on both backends.

Expected values come from hand computations written out here (buddy decomposition of free
ranges, the pcp refill/drain rules of mm/page_alloc.c 6.1 walked step by step), never from the
model's own output.
"""
import errno
import importlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotmem.errors import HotplugError

# x86_64 Linux 6.1 (Debian config): SECTION_SIZE_BITS 27 -> PFN_SECTION_SHIFT 15, MAX_ORDER 11,
# pageblock_order 9; page->flags: NODES_SHIFT 10 at the top, ZONES_WIDTH 3 below it.
PFN_SECTION_SHIFT = 15
PAGES_PER_SECTION = 1 << PFN_SECTION_SHIFT
MAX_ORDER = 11
PAGEBLOCK_ORDER = 9
PAGEBLOCK_NR_PAGES = 1 << PAGEBLOCK_ORDER
NODES_PGSHIFT = 64 - 10
ZONES_PGSHIFT = NODES_PGSHIFT - 3
ZONES_WIDTH = 3
ZONE_NORMAL, ZONE_MOVABLE = 2, 3
UNMOVABLE, MOVABLE, RECLAIMABLE, ISOLATE = 0, 1, 2, 4
PAGE_TYPE_BASE, PG_BUDDY = 0xF0000000, 0x80
PG_RESERVED = 12
NR_LOWORDER_PCP_LISTS = 3 * (3 + 1)          # MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1)

SEC = 32                                      # a hot-added section at 4 GiB
P = SEC << PFN_SECTION_SHIFT                  # its first pfn (0x100000)
VMEMMAP = PAGES_PER_SECTION * 64 // 4096      # memmap_on_memory pages of one 128 MiB block: 512


def zoneid(nid, zone):
    return (nid << ZONES_WIDTH) | zone


ZID = zoneid(0, ZONE_MOVABLE)


def make(core, sections=(SEC,), nr_cpus=2):
    ms = core.MemSections(4, 128, PFN_SECTION_SHIFT, PAGEBLOCK_ORDER, NODES_PGSHIFT,
                          ZONES_PGSHIFT, ZONES_WIDTH)
    for nr in sections:
        ms.sparse_index_init(nr)
        ms.alloc_usage(nr)
        ms.alloc_memmap(nr)
    return ms, core.PageAllocator(ms, MAX_ORDER, PAGEBLOCK_ORDER, nr_cpus)


def chunk_order(pfn):
    """online_pages_range (6.1): min(MAX_ORDER - 1, index of the lowest set bit of pfn)."""
    return min(MAX_ORDER - 1, (pfn & -pfn).bit_length() - 1)


def online(ms, pa, start, nr_pages, vmemmap, nid=0, zone=ZONE_MOVABLE):
    """memory_block_online + online_pages (6.1) as far as the page allocator sees it."""
    zid = zoneid(nid, zone)
    if vmemmap:
        ms.memmap_init_range(start, vmemmap, nid, zone, UNMOVABLE)   # mhp_init_memmap_on_memory
    ms.memmap_init_range(start + vmemmap, nr_pages - vmemmap, nid, zone, ISOLATE)
    pa.adjust_nr_isolate_pageblock(zid, (nr_pages - vmemmap) // PAGEBLOCK_NR_PAGES)
    pfn, end = start + vmemmap, start + nr_pages
    while pfn < end:                                               # online_pages_range
        order = chunk_order(pfn)
        pa.free_pages_core(pfn, order)
        pfn += 1 << order
    return zid


def undo_isolate(pa, start, end, mt=MOVABLE):
    for pfn in range(start, end, PAGEBLOCK_NR_PAGES):              # undo_isolate_page_range
        pa.unset_migratetype_isolate(pfn, mt)


def decompose(start, end):
    """The buddy blocks a free range [start, end) settles into when nothing around it is free:
    repeatedly the largest aligned block that starts at the cursor and fits."""
    out = {}
    pfn = start
    while pfn < end:
        order = chunk_order(pfn) if pfn else MAX_ORDER - 1
        while pfn + (1 << order) > end:
            order -= 1
        out.setdefault(order, []).append(pfn)
        pfn += 1 << order
    return out


def free_lists(pa, zid, mt):
    return {o: pa.free_list(zid, o, mt) for o in range(MAX_ORDER) if pa.free_list(zid, o, mt)}


def free_pages_in_lists(pa, zid, mts=range(5)):
    return sum(pa.nr_free(zid, o, mt) << o for o in range(MAX_ORDER) for mt in mts)


def total_pcp(pa, zid, nr_cpus=2):
    return sum(pa.pcp_count(zid, c) for c in range(nr_cpus))


def held_pages(pa):
    return sum(1 << o for o in pa.allocated().values())


def online_block(core, nr_cpus=2):
    ms, pa = make(core, nr_cpus=nr_cpus)
    zid = online(ms, pa, P, PAGES_PER_SECTION, VMEMMAP)
    undo_isolate(pa, P + VMEMMAP, P + PAGES_PER_SECTION)
    return ms, pa, zid


# -- split and merge -----------------------------------------------------------------------------
def test_split_order0_from_one_order10_block_and_merge_back(core):
    ms, pa = make(core)
    ms.memmap_init_range(P, 1024, 0, ZONE_MOVABLE, MOVABLE)
    pa.free_pages_core(P, 10)
    assert free_lists(pa, ZID, MOVABLE) == {10: [P]}
    assert pa.nr_free_pages(ZID) == 1024 and pa.managed_pages(ZID) == 1024

    pfn = pa.alloc_pages(ZID, 0, MOVABLE, 0)     # boot pageset: batch 1, the page passes through
    assert pfn == P
    # expand(): one free block of each order 0..9 at P + 2^k
    assert free_lists(pa, ZID, MOVABLE) == {k: [P + (1 << k)] for k in range(10)}
    assert pa.nr_free_pages(ZID) == 1023
    assert pa.pcp_count(ZID, 0) == 0
    flags, private, refcount, page_type = ms.page(P)
    assert (refcount, private, page_type) == (1, 0, 0xFFFFFFFF)   # post_alloc_hook, no PageBuddy
    for k in range(10):
        _, private, refcount, page_type = ms.page(P + (1 << k))
        assert (private, refcount, page_type) == (k, 0, 0xFFFFFFFF & ~PG_BUDDY)
    assert pa.allocated() == {P: 0}

    pa.free_pages(P, 0, 0)                       # high 0: straight back to the buddy
    assert free_lists(pa, ZID, MOVABLE) == {10: [P]}
    assert pa.nr_free_pages(ZID) == 1024 and pa.allocated() == {}
    assert ms.page(P + 512)[3] == 0xFFFFFFFF     # merged buddies lost PageBuddy


def test_split_non_pcp_order(core):
    ms, pa = make(core)
    ms.memmap_init_range(P, 1024, 0, ZONE_MOVABLE, MOVABLE)
    pa.free_pages_core(P, 10)
    assert pa.alloc_pages(ZID, 5, MOVABLE, 1) == P           # order 5 goes to rmqueue_buddy
    assert free_lists(pa, ZID, MOVABLE) == {k: [P + (1 << k)] for k in range(5, 10)}
    assert pa.nr_free_pages(ZID) == 1024 - 32
    pa.free_pages(P, 5, 1)                                   # __free_pages_ok
    assert free_lists(pa, ZID, MOVABLE) == {10: [P]}


# -- onlining with memmap_on_memory --------------------------------------------------------------
def test_memmap_on_memory_online_shape(core):
    ms, pa = make(core)
    zid = online(ms, pa, P, PAGES_PER_SECTION, VMEMMAP)
    managed = PAGES_PER_SECTION - VMEMMAP                    # 32256: vmemmap pages not managed
    order10 = [P + k * 1024 for k in range(1, 32)]
    # before undo_isolate_page_range: everything on the ISOLATE lists, not in NR_FREE_PAGES
    assert free_lists(pa, zid, ISOLATE) == {9: [P + 512], 10: order10}
    assert free_lists(pa, zid, MOVABLE) == {}
    assert pa.nr_free_pages(zid) == 0
    assert pa.managed_pages(zid) == managed
    assert pa.nr_isolate_pageblock(zid) == managed // PAGEBLOCK_NR_PAGES

    undo_isolate(pa, P + VMEMMAP, P + PAGES_PER_SECTION)
    # /proc/buddyinfo: one order-9 (cannot merge with the vmemmap half) and 31 order-10 blocks
    assert free_lists(pa, zid, MOVABLE) == {9: [P + 512], 10: order10}
    assert [pa.nr_free(zid, o) for o in range(MAX_ORDER)] == [0] * 9 + [1, 31]
    assert pa.nr_free_pages(zid) == managed
    assert pa.nr_isolate_pageblock(zid) == 0
    assert ms.get_pageblock_migratetype(P) == UNMOVABLE
    assert all(ms.get_pageblock_migratetype(p) == MOVABLE
               for p in range(P + VMEMMAP, P + PAGES_PER_SECTION, PAGEBLOCK_NR_PAGES))

    arr = ms.memmap(SEC)
    reserved = (arr["flags"] >> np.uint64(PG_RESERVED)) & np.uint64(1)
    assert reserved[:VMEMMAP].all() and (arr["_refcount"][:VMEMMAP] == 1).all()
    assert not reserved[VMEMMAP:].any() and (arr["_refcount"][VMEMMAP:] == 0).all()
    buddy = np.flatnonzero((arr["page_type"] & np.uint32(PAGE_TYPE_BASE | PG_BUDDY))
                           == np.uint32(PAGE_TYPE_BASE))
    assert list(buddy + P) == [P + 512] + order10            # PageBuddy on heads only
    assert list(arr["private"][buddy]) == [9] + [10] * 31


def test_isolated_pageblocks_and_nr_free_pages(core):
    ms, pa, zid = online_block(core)
    total = PAGES_PER_SECTION - VMEMMAP
    pa.set_migratetype_isolate(P + 512)          # order-9 block: 512 pages leave NR_FREE_PAGES
    assert pa.nr_free_pages(zid) == total - 512
    pa.set_migratetype_isolate(P + 1024)         # head of an order-10 block: the whole 1024 move
    assert pa.nr_free_pages(zid) == total - 512 - 1024
    pa.set_migratetype_isolate(P + 1536)         # only its tail pages: nothing moves
    assert pa.nr_free_pages(zid) == total - 512 - 1024
    assert pa.nr_isolate_pageblock(zid) == 3
    assert free_lists(pa, zid, ISOLATE) == {9: [P + 512], 10: [P + 1024]}

    before = (pa.state(), ms.state())
    with pytest.raises(HotplugError) as e:
        pa.set_migratetype_isolate(P + 700)
    assert e.value.errno == errno.EBUSY
    assert (pa.state(), ms.state()) == before

    for pfn in (P + 512, P + 1024, P + 1536):
        pa.unset_migratetype_isolate(pfn, MOVABLE)
    assert pa.nr_free_pages(zid) == total and pa.nr_isolate_pageblock(zid) == 0
    assert pa.unset_migratetype_isolate(P + 512, MOVABLE) is False     # not isolated: no-op


def test_isolated_free_is_not_counted_and_bypasses_pcp(core):
    ms, pa, zid = online_block(core)
    total = PAGES_PER_SECTION - VMEMMAP
    pa.set_pcp(zid, 0, 1000, 63)
    pfn = pa.alloc_pages(zid, 3, MOVABLE, 1)     # boot pcp on cpu 1: P+512 itself
    assert pfn == P + 512
    pa.set_migratetype_isolate(pfn)              # the rest of that pageblock, 504 pages
    assert pa.nr_free_pages(zid) == total - 512
    pa.free_pages(pfn, 3, 0)                     # MIGRATE_ISOLATE: free_one_page, not the pcp
    assert pa.pcp_count(zid, 0) == 0
    assert pa.nr_free_pages(zid) == total - 512
    assert free_lists(pa, zid, ISOLATE) == {9: [P + 512]}
    pa.unset_migratetype_isolate(pfn, MOVABLE)
    assert pa.nr_free_pages(zid) == total


def test_unset_isolate_merges_through_isolate_free_page(core):
    ms, pa = make(core)
    Q = P
    ms.memmap_init_range(Q, 1024, 0, ZONE_MOVABLE, MOVABLE)
    ms.set_pageblock_migratetype(Q, ISOLATE)
    pa.adjust_nr_isolate_pageblock(ZID, 1)
    pa.free_pages_core(Q, 9)                     # isolated: ISOLATE list, not counted
    pa.free_pages_core(Q + 512, 9)               # counted; no merge across ISOLATE/MOVABLE
    assert free_lists(pa, ZID, ISOLATE) == {9: [Q]}
    assert free_lists(pa, ZID, MOVABLE) == {9: [Q + 512]}
    assert pa.nr_free_pages(ZID) == 512
    # order 9 >= pageblock_order with a free non-isolated buddy: __isolate_free_page, then
    # __putback_isolated_page merges the two into one order-10 block
    pa.unset_migratetype_isolate(Q, MOVABLE)
    assert free_lists(pa, ZID, ISOLATE) == {}
    assert free_lists(pa, ZID, MOVABLE) == {10: [Q]}
    assert pa.nr_free_pages(ZID) == 1024
    assert pa.nr_isolate_pageblock(ZID) == 0


# -- per-CPU lists -------------------------------------------------------------------------------
def test_pcp_order9_refill(core):
    ms, pa, zid = online_block(core)
    total = PAGES_PER_SECTION - VMEMMAP
    batch = 63
    pa.set_pcp(zid, 0, 4 * batch, batch)
    nblocks = max(batch >> 9, 2)                 # __rmqueue_pcplist: batch > 1 -> max(b >> o, 2)
    pfn = pa.alloc_pages(zid, 9, MOVABLE, 0)
    # rmqueue_bulk took the order-9 block at P+512, then split the order-10 block at P+1024
    assert pfn == P + 512
    assert pa.nr_free_pages(zid) == total - nblocks * 512
    assert pa.pcp_count(zid, 0) == (nblocks - 1) * 512
    assert pa.pcp_pages(zid, 0) == [(NR_LOWORDER_PCP_LISTS + 1, [P + 1024])]
    assert free_lists(pa, zid, MOVABLE)[9] == [P + 1536]
    assert pa.allocated() == {P + 512: 9}


def test_pcp_order0_refill(core):
    ms, pa, zid = online_block(core)
    total = PAGES_PER_SECTION - VMEMMAP
    pa.set_pcp(zid, 0, 1000, 63)
    pfn = pa.alloc_pages(zid, 0, MOVABLE, 0)
    assert pfn == P + 512
    assert pa.nr_free_pages(zid) == total - 63
    assert pa.pcp_count(zid, 0) == 62
    # rmqueue_bulk adds at the tail in the order obtained, the allocation takes the head
    assert pa.pcp_pages(zid, 0) == [(MOVABLE, list(range(P + 513, P + 575)))]
    expect = decompose(P + 575, P + 1024)
    expect[10] = [P + k * 1024 for k in range(1, 32)]
    assert free_lists(pa, zid, MOVABLE) == expect
    assert pa.pcp_info(zid, 0) == (62, 1000, 63, 0)


def test_pcp_high_drain_and_free_high(core):
    ms, pa, zid = online_block(core)
    total = PAGES_PER_SECTION - VMEMMAP
    high, batch = 8, 2
    pa.set_pcp(zid, 0, high, batch)
    q = pa.alloc_pages(zid, 1, MOVABLE, 1)       # boot pageset on cpu 1: nothing stays behind
    assert q == P + 512
    pages = [pa.alloc_pages(zid, 0, MOVABLE, 0) for _ in range(12)]
    assert pages == list(range(P + 514, P + 526))   # lowest pfn first, refills of 2
    assert pa.pcp_count(zid, 0) == 0
    assert pa.nr_free_pages(zid) == total - 2 - 12

    for p in pages:
        pa.free_pages(p, 0, 0)
    # count reaches high (8) at the 8th free: nr_pcp_free = clamp(2 << 0, 2, 6) = 2, the two
    # oldest (list tail) go back, free_factor 1; at the 10th: clamp(2 << 1, 2, 6) = 4 more,
    # free_factor 2; the last two frees stay on the list.
    assert pa.pcp_info(zid, 0) == (6, high, batch, 2)
    assert pa.pcp_pages(zid, 0) == [(MOVABLE, pages[:5:-1])]
    assert pa.nr_free_pages(zid) == total - 2 - 12 + 6
    expect = decompose(P + 514, P + 520)         # pages[0..5] back in the buddy, q still held
    for o, pfns in decompose(P + 526, P + 1024).items():
        expect.setdefault(o, []).extend(pfns)
    expect[10] = [P + k * 1024 for k in range(1, 32)]
    assert free_lists(pa, zid, MOVABLE) == expect

    # free_factor != 0 and 0 < order <= PAGE_ALLOC_COSTLY_ORDER: free_high, all of count goes
    pa.free_pages(q, 1, 0)
    assert pa.pcp_count(zid, 0) == 0
    assert pa.nr_free_pages(zid) == total
    assert free_lists(pa, zid, MOVABLE) == {9: [P + 512], 10: [P + k * 1024 for k in range(1, 32)]}


def test_drain_and_pcp_disable(core):
    ms, pa, zid = online_block(core)
    total = PAGES_PER_SECTION - VMEMMAP
    for cpu in (0, 1):
        pa.set_pcp(zid, cpu, 1000, 31)
        pa.alloc_pages(zid, 0, MOVABLE, cpu)
    assert total_pcp(pa, zid) == 60
    assert pa.nr_free_pages(zid) == total - 62
    pa.zone_pcp_disable(zid)                     # high 0 / batch 1 and drain every cpu
    assert total_pcp(pa, zid) == 0 and pa.nr_free_pages(zid) == total - 2
    assert pa.pcp_info(zid, 0) == (0, 0, 1, 0)
    p = pa.alloc_pages(zid, 0, MOVABLE, 0)
    pa.free_pages(p, 0, 0)
    assert pa.pcp_count(zid, 0) == 0 and pa.nr_free_pages(zid) == total - 2
    pa.set_pcp(zid, 0, 500, 15)                  # kept for zone_pcp_enable
    assert pa.pcp_info(zid, 0) == (0, 0, 1, 0)
    pa.zone_pcp_enable(zid)
    assert pa.pcp_info(zid, 0)[1:3] == (500, 15) and pa.pcp_info(zid, 1)[1:3] == (1000, 31)
    pa.alloc_pages(zid, 0, MOVABLE, 1)
    assert pa.pcp_count(zid, 1) == 30
    pa.drain_zone_pages(zid)
    assert total_pcp(pa, zid) == 0 and pa.nr_free_pages(zid) == total - 3


def test_zone_batchsize_and_highsize():
    # mm/page_alloc.c:zone_batchsize / zone_highsize (6.1) are kernel functions of the watermark
    # layer (hotmem/mm/watermark.py, their one definition); the allocator takes the batch and
    # high its caller computed. The core's copies are gone; their checks moved here.
    import bare_machine as bm
    from hotmem.mm import watermark as wm

    def batch(managed):
        m = bm.make_state({(0, wm.ZONE_NORMAL): (managed, managed)})
        return wm.zone_batchsize(m, m.zone(0, wm.ZONE_NORMAL))

    # DMA32 with 225523 managed pages: min(225523 >> 10, 256) / 4 = 55; 55 + 27 = 82 -> 64 - 1
    assert batch(225523) == 63
    assert batch(32256) == 7       # min(31, 256) / 4 = 7; 7 + 3 = 10 -> 8 - 1
    assert batch(3840) == 0        # 3 / 4 = 0 -> 1; 1 + 0 -> 1 - 1 (caller: max 1)
    assert batch(10 ** 9) == 63    # capped at 1 MiB = 256 pages: 64 + 32 -> 63

    def highsize(low, batch, cpus_of_node, online_cpus=0):
        z = bm.bare_zone(1, wm.ZONE_NORMAL, 50000, 50000, (100, low, low, low))
        nodes = (bm.bare_pgdat(0, [bm.bare_zone(0, i) for i in range(5)]),
                 bm.bare_pgdat(1, [z if i == wm.ZONE_NORMAL else bm.bare_zone(1, i)
                                   for i in range(5)]))
        cpus = tuple((c, 1) for c in range(cpus_of_node)) + \
            tuple((cpus_of_node + c, 0) for c in range(online_cpus))
        return wm.zone_highsize(bm.BareMachine(nodes, online_cpus=cpus), z, batch)

    assert highsize(1735, 7, 2) == 867          # 1735 / 2 CPUs
    assert highsize(100, 63, 1) == 63 * 4       # at least batch * 4
    assert highsize(1735, 7, 0, 4) == 433       # memoryless node: all online CPUs


# -- fallbacks -----------------------------------------------------------------------------------
def test_fallback_steals_whole_pageblocks_for_large_blocks(core):
    ms, pa, zid = online_block(core)
    # no UNMOVABLE free block: __rmqueue_fallback takes the largest MOVABLE block (order 10,
    # lowest pfn P+1024) and, order >= pageblock_order, change_pageblock_range claims both
    # of its pageblocks
    pfn = pa.alloc_pages(zid, 9, UNMOVABLE, 1)
    assert pfn == P + 1024
    assert ms.get_pageblock_migratetype(P + 1024) == UNMOVABLE
    assert ms.get_pageblock_migratetype(P + 1536) == UNMOVABLE
    assert ms.get_pageblock_migratetype(P + 2048) == MOVABLE
    assert free_lists(pa, zid, UNMOVABLE) == {9: [P + 1536]}
    assert free_lists(pa, zid, MOVABLE)[9] == [P + 512]


def test_fallback_small_block_claims_pageblock(core):
    ms, pa = make(core)
    Q = P
    ms.memmap_init_range(Q, 512, 0, ZONE_MOVABLE, MOVABLE)
    pa.free_pages_core(Q, 9)
    assert pa.alloc_pages(ZID, 8, MOVABLE, 1) == Q
    before = (pa.state(), ms.state())
    # ALLOC_NOFRAGMENT: no fallback below pageblock_order
    assert pa.alloc_pages(ZID, 0, UNMOVABLE, 1, core.ALLOC_NOFRAGMENT) == -1
    assert (pa.state(), ms.state()) == before
    # without it: the order-8 MOVABLE block is stolen with its pageblock (free 256 + alike
    # 512 - 256 - 0 movable >= 256)
    assert pa.alloc_pages(ZID, 0, UNMOVABLE, 1) == Q + 256
    assert ms.get_pageblock_migratetype(Q) == UNMOVABLE
    assert free_lists(pa, ZID, UNMOVABLE) == decompose(Q + 257, Q + 512)
    assert free_lists(pa, ZID, MOVABLE) == {}


def test_fallback_movable_takes_smallest_without_stealing(core):
    ms, pa = make(core)
    Q = P
    ms.memmap_init_range(Q, 512, 0, ZONE_MOVABLE, UNMOVABLE)
    pa.free_pages_core(Q + 2, 1)                 # buddies stay reserved: no merging
    pa.free_pages_core(Q + 8, 3)
    # largest UNMOVABLE block is order 3 < pageblock_order / 2: a movable request may not steal
    # the block, so __rmqueue_fallback moves only the smallest block (order 1)
    assert pa.alloc_pages(ZID, 0, MOVABLE, 1) == Q + 2
    assert ms.get_pageblock_migratetype(Q) == UNMOVABLE
    assert free_lists(pa, ZID, MOVABLE) == {0: [Q + 3]}
    assert free_lists(pa, ZID, UNMOVABLE) == {3: [Q + 8]}


@pytest.mark.parametrize("lru_pages, claimed", [(128, True), (127, False)])
def test_fallback_movable_counts_lru_pages_as_alike(core, lru_pages, claimed):
    ms, pa = make(core)
    Q = P
    ms.memmap_init_range(Q, 512, 0, ZONE_MOVABLE, UNMOVABLE)
    ms.set_page_flag_range(Q, lru_pages, core.PG_lru)          # in-use pages on an LRU
    pa.free_pages_core(Q + 256, 7)
    # order 7 >= pageblock_order / 2: may steal the block; move_freepages_block finds 128 free
    # pages and lru_pages movable ones; the block is claimed when 128 + lru_pages >= 256
    assert pa.alloc_pages(ZID, 0, MOVABLE, 1) == Q + 256
    assert ms.get_pageblock_migratetype(Q) == (MOVABLE if claimed else UNMOVABLE)
    assert free_lists(pa, ZID, MOVABLE) == decompose(Q + 257, Q + 384)
    assert free_lists(pa, ZID, UNMOVABLE) == {}


def test_no_merge_across_zones(core):
    ms, pa = make(core)
    Q = P
    ms.memmap_init_range(Q, 512, 0, ZONE_NORMAL, MOVABLE)
    ms.memmap_init_range(Q + 512, 512, 0, ZONE_MOVABLE, MOVABLE)
    pa.free_pages_core(Q, 9)
    pa.free_pages_core(Q + 512, 9)               # page_is_buddy: different page_zone_id
    normal = zoneid(0, ZONE_NORMAL)
    assert free_lists(pa, normal, MOVABLE) == {9: [Q]}
    assert free_lists(pa, ZID, MOVABLE) == {9: [Q + 512]}
    assert pa.nr_free_pages(normal) == 512 and pa.nr_free_pages(ZID) == 512


# -- offlining helpers ---------------------------------------------------------------------------
def test_offline_isolated_pages(core):
    ms, pa, zid = online_block(core)
    ms.set_section_flags(SEC, core.SECTION_IS_ONLINE)
    start, end = P + VMEMMAP, P + PAGES_PER_SECTION
    pa.set_pcp(zid, 0, 1000, 63)
    p = pa.alloc_pages(zid, 0, MOVABLE, 0)
    pa.zone_pcp_disable(zid)
    for pfn in range(start, end, PAGEBLOCK_NR_PAGES):
        pa.set_migratetype_isolate(pfn)
    assert pa.test_pages_isolated(start, end) is False       # p is in use
    before = (pa.state(), ms.state())
    with pytest.raises(HotplugError) as e:
        pa.offline_isolated_pages(start, end)
    assert e.value.errno == errno.EBUSY
    assert (pa.state(), ms.state()) == before

    pa.free_pages(p, 0, 0)                       # isolated: straight to the ISOLATE list
    assert pa.test_pages_isolated(start, end) is True
    assert pa.test_pages_isolated(P, end) is False           # the vmemmap pageblock is not
    assert pa.nr_free_pages(zid) == 0
    assert pa.offline_isolated_pages(start, end) == end - start
    assert all(pa.nr_free(zid, o) == 0 for o in range(MAX_ORDER))
    pa.adjust_nr_isolate_pageblock(zid, -(end - start) // PAGEBLOCK_NR_PAGES)
    pa.adjust_managed_page_count(zid, -(end - start))
    pa.zone_pcp_enable(zid)
    assert pa.managed_pages(zid) == 0 and pa.nr_isolate_pageblock(zid) == 0


def test_free_reserved_page(core):
    ms, pa = make(core)
    ms.memmap_init_range(P, 1024, 0, ZONE_NORMAL, UNMOVABLE)
    zid = zoneid(0, ZONE_NORMAL)
    pa.free_reserved_page(P + 3, 0)              # boot pageset: straight through to the buddy
    assert pa.managed_pages(zid) == 1 and pa.nr_free_pages(zid) == 1
    assert free_lists(pa, zid, UNMOVABLE) == {0: [P + 3]}
    assert ms.page(P + 3)[2] == 0 and not ms.page(P + 3)[0] >> PG_RESERVED & 1


# -- fragment ------------------------------------------------------------------------------------
@pytest.mark.parametrize("order", [2, 9, 10])
def test_fragment(core, order):
    ms, pa, zid = online_block(core)
    total = PAGES_PER_SECTION - VMEMMAP
    pa.set_pcp(zid, 0, 1000, 63)
    held = pa.fragment(zid, order, 0)
    assert held and all(pa.nr_free(zid, o) == 0 for o in range(order, MAX_ORDER))
    o = max(order - 1, 0)
    assert pa.allocated() == {p: o for p in held}
    assert free_pages_in_lists(pa, zid) + total_pcp(pa, zid) + len(held) * (1 << o) == total
    for p in held:
        pa.free_pages(p, o, 0)
    pa.drain_zone_pages(zid)
    assert [pa.nr_free(zid, k) for k in range(MAX_ORDER)] == [0] * 9 + [1, 31]
    assert pa.nr_free_pages(zid) == total


# -- refused calls -------------------------------------------------------------------------------
def test_bad_arguments_change_nothing(core):
    ms, pa, zid = online_block(core)
    ms.set_section_flags(SEC, core.SECTION_IS_ONLINE)
    pa.set_pcp(zid, 0, 1000, 63)
    a0 = pa.alloc_pages(zid, 0, MOVABLE, 0)
    a1 = pa.alloc_pages(zid, 1, MOVABLE, 1)
    pa.free_pages(pa.alloc_pages(zid, 0, MOVABLE, 0), 0, 0)      # a pfn now on the pcp list
    on_pcp = pa.pcp_pages(zid, 0)[0][1][0]
    free_head = pa.free_list(zid, 10, MOVABLE)[0]
    other = zoneid(1, ZONE_NORMAL)
    calls = [
        lambda: pa.alloc_pages(other, 0, MOVABLE, 0),            # unknown zone
        lambda: pa.alloc_pages(zid, MAX_ORDER, MOVABLE, 0),
        lambda: pa.alloc_pages(zid, -1, MOVABLE, 0),
        lambda: pa.alloc_pages(zid, 0, ISOLATE, 0),
        lambda: pa.alloc_pages(zid, 0, 3, 0),
        lambda: pa.alloc_pages(zid, 0, MOVABLE, 2),
        lambda: pa.alloc_pages(zid, 0, MOVABLE, 0, 0x200),
        lambda: pa.free_pages(a1 + 1, 1, 0),                     # misaligned
        lambda: pa.free_pages(a1, 0, 0),                         # wrong order
        lambda: pa.free_pages(a1, 1, 5),                         # cpu
        lambda: pa.free_pages(on_pcp, 0, 0),                     # already freed (pcp)
        lambda: pa.free_pages(free_head, 10, 0),                 # double free (buddy)
        lambda: pa.free_pages(P + 5, 0, 0),                      # never allocated (vmemmap)
        lambda: pa.free_pages(P + 2 * PAGES_PER_SECTION, 0, 0),  # no memmap
        lambda: pa.free_pages(a0, MAX_ORDER, 0),
        lambda: pa.free_pages_core(free_head, 10),               # not reserved any more
        lambda: pa.free_pages_core(P + 1, 1),
        lambda: pa.free_pages_core(P, MAX_ORDER),
        lambda: pa.free_reserved_page(free_head + 1, 0),
        lambda: pa.free_reserved_page(P, 9),
        lambda: pa.set_migratetype_isolate(P + 3 * PAGES_PER_SECTION),
        lambda: pa.unset_migratetype_isolate(P + 1024, ISOLATE),
        lambda: pa.offline_isolated_pages(P + VMEMMAP, P + PAGES_PER_SECTION),
        lambda: pa.offline_isolated_pages(P + 100, P + 100),
        lambda: pa.test_pages_isolated(P + 100, P),
        lambda: pa.set_pcp(zid, 0, 100, 0),
        lambda: pa.set_pcp(zid, 3, 100, 10),
        lambda: pa.set_pcp(zid, 0, -1, 10),
        lambda: pa.adjust_managed_page_count(zid, -(10 ** 9)),
        lambda: pa.adjust_nr_isolate_pageblock(zid, -1),
        lambda: pa.nr_free(zid, MAX_ORDER),
        lambda: pa.nr_free(zid, 0, 5),
        lambda: pa.free_list(zid, 0, 7),
        lambda: pa.drain_zone_pages(other),
        lambda: pa.drain_pages_zone(4, zid),
        lambda: pa.zone_pcp_enable(zid),
        lambda: pa.zone_pcp_reset(zid),                          # lists not empty
        lambda: pa.fragment(zid, MAX_ORDER, 0),
        lambda: pa.fragment(other, 3, 0),
        lambda: pa.pcp_count(zid, 2),
        lambda: core.PageAllocator(ms, MAX_ORDER, 8, 2),
        lambda: core.PageAllocator(ms, MAX_ORDER, PAGEBLOCK_ORDER, 0),
    ]
    for call in calls:
        before = (pa.state(), ms.state())
        with pytest.raises(HotplugError) as e:
            call()
        assert e.value.errno in (errno.EINVAL, errno.EBUSY)
        assert (pa.state(), ms.state()) == before


# -- differential property test ------------------------------------------------------------------
SMALL = 4096          # a 16 MiB zone (the head of one section) keeps both backends quick

_op = st.one_of(
    st.tuples(st.just("alloc"), st.sampled_from([0, 0, 0, 1, 2, 3, 4, 9, 10]),
              st.integers(0, 2), st.integers(0, 1), st.booleans()),
    st.tuples(st.just("free"), st.integers(0, 10 ** 6), st.integers(0, 1)),
    st.tuples(st.just("pcp"), st.integers(0, 1), st.integers(0, 600), st.integers(1, 70)),
    st.tuples(st.just("drain"), st.integers(0, 2)),
    st.tuples(st.just("isolate"), st.integers(0, SMALL // PAGEBLOCK_NR_PAGES - 1)),
    st.tuples(st.just("unisolate"), st.integers(0, SMALL // PAGEBLOCK_NR_PAGES - 1),
              st.integers(0, 2)),
    st.tuples(st.just("pcp_onoff"), st.booleans()),
)


def _apply(pa, zid, op):
    kind = op[0]
    if kind == "alloc":
        _, order, mt, cpu, nofrag = op
        return pa.alloc_pages(zid, order, mt, cpu, 0x100 if nofrag else 0)
    if kind == "free":
        held = sorted(pa.allocated().items())
        if not held:
            return None
        pfn, order = held[op[1] % len(held)]
        return pa.free_pages(pfn, order, op[2])
    if kind == "pcp":
        return pa.set_pcp(zid, op[1], op[2], op[3])
    if kind == "drain":
        return pa.drain_zone_pages(zid) if op[1] == 2 else pa.drain_pages_zone(op[1], zid)
    if kind == "isolate":
        return pa.set_migratetype_isolate(P + op[1] * PAGEBLOCK_NR_PAGES)
    if kind == "unisolate":
        return pa.unset_migratetype_isolate(P + op[1] * PAGEBLOCK_NR_PAGES, op[2])
    if kind == "pcp_onoff":
        return pa.zone_pcp_disable(zid) if op[1] else pa.zone_pcp_enable(zid)
    raise AssertionError(op)


def _run(pa, zid, op):
    try:
        return ("ok", _apply(pa, zid, op))
    except HotplugError as e:
        return ("err", e.errno)


def _check_invariants(ms, pa, zid, isolation_used):
    managed = pa.managed_pages(zid)
    free = free_pages_in_lists(pa, zid)
    assert free + total_pcp(pa, zid) + held_pages(pa) == managed
    if not isolation_used:
        assert pa.nr_free_pages(zid) == free
    for o in range(MAX_ORDER):
        for mt in range(5):
            for pfn in pa.free_list(zid, o, mt):
                _, private, refcount, page_type = ms.page(pfn)
                assert (private, refcount) == (o, 0)
                assert page_type & (PAGE_TYPE_BASE | PG_BUDDY) == PAGE_TYPE_BASE


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_op, min_size=1, max_size=40), vmemmap=st.sampled_from([0, VMEMMAP]))
def test_differential_random_alloc_free(core, ops, vmemmap):
    twin = importlib.import_module("hotmem._core_py")
    if core is twin:
        pytest.skip("differential: compiled core against the twin")
    machines = []
    for mod in (core, twin):
        ms, pa = make(mod)
        zid = online(ms, pa, P, SMALL, vmemmap)
        undo_isolate(pa, P + vmemmap, P + SMALL)
        machines.append((ms, pa))
    isolation_used = False
    for op in ops:
        isolation_used |= op[0] in ("isolate", "unisolate")
        results = [_run(pa, zid, op) for _, pa in machines]
        assert results[0] == results[1], op
        (ms0, pa0), (ms1, pa1) = machines
        assert pa0.state() == pa1.state(), op
        _check_invariants(ms0, pa0, zid, isolation_used)
    assert ms0.state() == ms1.state()
    assert pa0.allocated() == pa1.allocated()
