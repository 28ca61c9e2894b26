"""pfn scanners: /proc/kpageflags words, has_unmovable_pages, the shrink_zone_span scans (6.1)."""
import errno

import numpy as np
import pytest

from hotmem.errors import HotplugError
from test_memmap import GEOM, ZONE_MOVABLE, ZONE_NORMAL, activate

MAX_ORDER = 11                   # 6.1 x86_64: orders 0..10
BUDDY = 0xFFFFFF7F               # page_type with PG_buddy cleared
S = 32                           # section 32 = pfn 0x100000 (4 GiB)
BASE = S << 15


@pytest.fixture
def ms(core):
    m = core.MemSections(**GEOM)
    activate(m, S)
    m.set_section_flags(S, core.SECTION_MARKED_PRESENT | core.SECTION_HAS_MEM_MAP)
    m.set_subsection_map(S, (1 << 64) - 1)
    return m


def online(core, ms):
    ms.set_section_flags(S, core.SECTION_IS_ONLINE)


def make_free_block(ms, pfn, order):
    for p in range(pfn, pfn + (1 << order)):
        ms.set_page_refcount(p, 0)
        ms.set_page_flags(p, ms.page_flags(p) & ~(1 << 12))
    ms.set_page_type(pfn, BUDDY)
    ms.set_page_private(pfn, order)


def test_offline_section_reads_nopage(core, ms):
    ms.memmap_init_range(BASE, 32768, 0, ZONE_NORMAL, core.MIGRATE_MOVABLE)
    words = core.kpageflags(ms, BASE, 32768, MAX_ORDER)
    assert words.dtype == np.uint64
    assert (words == 1 << 20).all()                          # KPF_NOPAGE = 0x100000
    assert (core.kpagecount(ms, BASE, 32768) == 0).all()
    # a pfn whose section has no memmap at all (hole) is NOPAGE as well
    assert core.kpageflags(ms, 0, 1, MAX_ORDER)[0] == 0x100000


def test_memmap_on_memory_block_as_the_real_kernel_shows_it(core, ms):
    # vmemmap pages: PG_reserved + PG_owner_priv_1 (PageVmemmapSelfHosted) -> 0x2100000000;
    # the rest free in the buddy -> KPF_BUDDY on every page (head and the others).
    ms.memmap_init_range(BASE, 512, 0, ZONE_MOVABLE, core.MIGRATE_UNMOVABLE)
    ms.set_page_flag_range(BASE, 512, core.PG_vmemmap_self_hosted)
    ms.memmap_init_range(BASE + 512, 32768 - 512, 0, ZONE_MOVABLE, core.MIGRATE_MOVABLE)
    make_free_block(ms, BASE + 512, 9)
    for pfn in range(BASE + 1024, BASE + 32768, 1024):
        make_free_block(ms, pfn, 10)
    online(core, ms)
    words = core.kpageflags(ms, BASE, 32768, MAX_ORDER)
    assert (words[:512] == (1 << 32) | (1 << 37)).all()
    assert words[0] == 0x2100000000
    assert (words[512:] == 1 << 10).all()                    # 0x400
    assert (core.kpagecount(ms, BASE, 32768) == 0).all()     # mapcount reset / page type


def test_partial_subsection_map_hides_pages(core, ms):
    ms.memmap_init_range(BASE, 32768, 0, ZONE_NORMAL, core.MIGRATE_MOVABLE)
    ms.set_subsection_map(S, 0b10)                           # only pfns +512..+1023 present
    online(core, ms)
    w = core.kpageflags(ms, BASE, 1536, MAX_ORDER)
    assert (w[:512] == 1 << 20).all() and (w[1024:] == 1 << 20).all()
    assert (w[512:1024] == 1 << 32).all()                    # reserved, nothing else
    assert ms.pfn_to_online_page(BASE + 600) and not ms.pfn_to_online_page(BASE + 100)


def test_mapped_and_copied_bits(core, ms):
    ms.memmap_init_range(BASE, 4, 0, ZONE_NORMAL, core.MIGRATE_MOVABLE)
    online(core, ms)
    ms.set_page_type(BASE, 2)                                # _mapcount 2 -> mapped 3 times
    ms.set_page_flags(BASE + 1, (1 << core.PG_swapbacked) | (1 << core.PG_owner_priv_1)
                      | (1 << core.PG_lru) | (1 << core.PG_dirty))
    ms.set_page_type(BASE + 2, 0xFFFFFDFF)                   # PageTable
    w = core.kpageflags(ms, BASE, 3, MAX_ORDER)
    assert w[0] == (1 << 11) | (1 << 32)                     # MMAP | RESERVED
    # SWAPCACHE (13) + SWAPBACKED (14) + OWNER_PRIVATE (37) + LRU (5) + DIRTY (4)
    assert w[1] == (1 << 13) | (1 << 14) | (1 << 37) | (1 << 5) | (1 << 4)
    assert w[2] == (1 << 26) | (1 << 32)                    # PGTABLE | RESERVED
    assert list(core.kpagecount(ms, BASE, 3)) == [3, 0, 0]


def test_has_unmovable_pages(core, ms):
    ms.memmap_init_range(BASE, 32768, 0, ZONE_NORMAL, core.MIGRATE_MOVABLE)
    # first pageblock: reserved (freshly initialised) -> the first pfn is unmovable
    assert core.has_unmovable_pages(ms, BASE, BASE + 512, 1, core.MEMORY_OFFLINE, 3) == BASE
    # second pageblock: free buddy block of order 9 -> movable
    make_free_block(ms, BASE + 512, 9)
    assert core.has_unmovable_pages(ms, BASE + 512, BASE + 1024, 1, core.MEMORY_OFFLINE, 3) == -1
    # third: free except one allocated kernel page (refcount 1, not LRU) at +1100
    make_free_block(ms, BASE + 1024, 6)
    for p in range(BASE + 1088, BASE + 1536):
        ms.set_page_flags(p, ms.page_flags(p) & ~(1 << 12))
        ms.set_page_refcount(p, 0)
    ms.set_page_refcount(BASE + 1100, 1)
    assert core.has_unmovable_pages(ms, BASE + 1024, BASE + 1536, 1, 0, 3) == BASE + 1100
    ms.set_page_flags(BASE + 1100, 1 << core.PG_lru)          # an LRU page can be migrated
    assert core.has_unmovable_pages(ms, BASE + 1024, BASE + 1536, 1, 0, 3) == -1
    ms.set_page_flags(BASE + 1100, 1 << core.PG_hwpoison)     # skipped only when offlining
    assert core.has_unmovable_pages(ms, BASE + 1024, BASE + 1536, 1, 0, 3) == BASE + 1100
    assert core.has_unmovable_pages(ms, BASE + 1024, BASE + 1536, 1, core.MEMORY_OFFLINE, 3) == -1
    with pytest.raises(HotplugError) as e:
        core.has_unmovable_pages(ms, BASE + 500, BASE + 600, 1, 0, 3)   # crosses a pageblock
    assert e.value.errno == errno.EINVAL


def test_movable_zone_only_reserved_pages_block_isolation(core, ms):
    ms.memmap_init_range(BASE, 1024, 0, ZONE_MOVABLE, core.MIGRATE_MOVABLE)
    for p in range(BASE + 512, BASE + 1024):
        ms.set_page_flags(p, ms.page_flags(p) & ~(1 << 12))   # refcount 1, not LRU
    assert core.has_unmovable_pages(ms, BASE + 512, BASE + 1024, 1, 0, ZONE_MOVABLE) == -1
    assert core.has_unmovable_pages(ms, BASE, BASE + 512, 1, 0, ZONE_MOVABLE) == BASE


def test_find_section_pfn_scans(core):
    ms = core.MemSections(**GEOM)
    zid = (0 << 3) | ZONE_MOVABLE
    for nr in (32, 33, 34):
        activate(ms, nr)
        ms.set_section_flags(nr, core.SECTION_MARKED_PRESENT | core.SECTION_HAS_MEM_MAP)
        ms.set_subsection_map(nr, (1 << 64) - 1)
        ms.memmap_init_range(nr << 15, 32768, 0, ZONE_MOVABLE, core.MIGRATE_MOVABLE)
    ms.set_section_flags(34, core.SECTION_IS_ONLINE)
    ms.set_section_flags(33, core.SECTION_IS_ONLINE)
    # section 32 offline: the upward search from its vmemmap end (+512) steps 512 pfns at a time
    assert core.find_smallest_section_pfn(ms, 0, zid, BASE + 512, 35 << 15) == 33 << 15
    assert core.find_biggest_section_pfn(ms, 0, zid, BASE, (35 << 15) - 1) == (35 << 15) - 2
    assert core.find_biggest_section_pfn(ms, 0, zid, BASE, 33 << 15) == 0
    assert core.find_smallest_section_pfn(ms, 1, zid, BASE, 35 << 15) == 0       # other node
    assert core.find_smallest_section_pfn(ms, 0, ZONE_NORMAL, BASE, 35 << 15) == 0


def test_count_page_flag(core, ms):
    ms.memmap_init_range(BASE, 32768, 0, ZONE_NORMAL, core.MIGRATE_MOVABLE)
    ms.set_page_flag_range(BASE, 512, core.PG_owner_priv_1)
    assert core.count_page_flag(ms, BASE, 32768, core.PG_owner_priv_1) == 512
    assert core.count_page_flag(ms, BASE, 32768, core.PG_reserved) == 32768
    with pytest.raises(HotplugError):
        core.count_page_flag(ms, BASE + 32000, 1000, core.PG_reserved)


def test_backends_agree_on_random_pages():
    from conftest import compiled_core, python_core
    subsections = int(np.random.default_rng(7).integers(0, 2**63)) | 1
    mods = (compiled_core(), python_core())
    out = []
    for core in mods:
        m = core.MemSections(**GEOM)
        activate(m, S)
        m.set_section_flags(S, 7)
        m.set_subsection_map(S, subsections)
        arr = m.memmap_w(S)
        r = np.random.default_rng(11)
        arr["flags"] = r.integers(0, 2**40, 32768, dtype=np.uint64)
        arr["_refcount"] = r.integers(0, 3, 32768, dtype=np.int32)
        arr["page_type"] = r.choice(np.array([0xFFFFFFFF, BUDDY, 0xFFFFFEFF, 0, 5], np.uint32), 32768)
        arr["private"] = r.integers(0, 11, 32768, dtype=np.uint64)
        out.append((core.kpageflags(m, BASE - 10, 32800, MAX_ORDER),
                    core.kpagecount(m, BASE - 10, 32800),
                    [core.count_page_flag(m, BASE, 32768, b) for b in range(27)]))
    assert (out[0][0] == out[1][0]).all()
    assert (out[0][1] == out[1][1]).all()
    assert out[0][2] == out[1][2]
