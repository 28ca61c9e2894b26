"""The mem_section table and struct page storage (mm/sparse.c, mm/page_alloc.c; 6.1)."""
import errno

import numpy as np
import pytest

from hotmem.errors import HotplugError

# x86_64, Debian 6.1 config: 4096 roots x 128 sections (32-byte mem_section), 32768 pages per
# section, pageblock order 9, page->flags: node at bit 54, zone at bit 51 (3 bits).
GEOM = dict(nr_section_roots=4096, sections_per_root=128, pfn_section_shift=15, pageblock_order=9,
            nodes_pgshift=54, zones_pgshift=51, zones_width=3)
ZONE_NORMAL, ZONE_MOVABLE = 2, 3


@pytest.fixture
def ms(core):
    return core.MemSections(**GEOM)


def activate(ms, nr):
    ms.sparse_index_init(nr)
    ms.alloc_usage(nr)
    ms.alloc_memmap(nr)


def test_page_record_is_24_bytes(core):
    assert core.PAGE_DTYPE.itemsize == 8 + 8 + 4 + 4


def test_roots_are_allocated_once_per_128_sections(ms):
    assert ms.nr_mem_sections == 4096 * 128 == 1 << 19
    assert ms.sparse_index_init(32) is True      # 4 GiB: root 0
    assert ms.sparse_index_init(127) is False    # same root
    assert ms.sparse_index_init(128) is True     # 16 GiB: root 1
    assert ms.nr_roots_allocated() == 2
    assert ms.root_allocated(0) and ms.root_allocated(1) and not ms.root_allocated(2)


def test_section_flags(core, ms):
    activate(ms, 32)
    ms.set_section_flags(32, core.SECTION_MARKED_PRESENT | core.SECTION_HAS_MEM_MAP)
    assert ms.section_mem_map(32) == 0b11
    ms.set_section_flags(32, core.SECTION_IS_ONLINE)
    assert ms.section_online(32)
    ms.clear_section_flags(32, core.SECTION_IS_ONLINE)
    assert not ms.section_online(32)
    assert ms.present_sections() == [32]
    assert ms.section_mem_map(5000) == 0          # root 39 missing: reads as empty


def test_memmap_init_range_hotplug_context(core, ms):
    activate(ms, 32)
    start = 32 << 15                                  # pfn 0x100000
    ms.memmap_init_range(start + 512, 32768 - 512, 0, ZONE_MOVABLE, core.MIGRATE_ISOLATE)
    flags, private, ref, ptype = ms.page(start + 512)
    assert flags == (0 << 54) | (ZONE_MOVABLE << 51) | (1 << 12)   # zone links + PG_reserved
    assert (private, ref, ptype) == (0, 1, 0xFFFFFFFF)
    assert ms.page_zonenum(start + 600) == ZONE_MOVABLE
    assert ms.page_to_nid(start + 600) == 0
    assert ms.page_zoneid(start + 600) == (0 << 3) | ZONE_MOVABLE
    # pageblocks from +512 on are isolated; the first one was never touched
    assert ms.get_pageblock_migratetype(start) == 0
    assert ms.get_pageblock_migratetype(start + 512) == core.MIGRATE_ISOLATE
    assert ms.get_pageblock_migratetype(start + 32767) == core.MIGRATE_ISOLATE
    assert ms.page(start) == (0, 0, 0, 0)             # untouched struct page


def test_memmap_init_range_node_bits(core, ms):
    activate(ms, 40)
    ms.memmap_init_range(40 << 15, 16, 5, ZONE_NORMAL, core.MIGRATE_MOVABLE)
    assert ms.page_to_nid((40 << 15) + 3) == 5
    assert ms.page_zoneid((40 << 15) + 3) == (5 << 3) | ZONE_NORMAL


def test_unaligned_start_does_not_set_its_pageblock(core, ms):
    activate(ms, 1)
    ms.memmap_init_range((1 << 15) + 100, 1000, 0, ZONE_NORMAL, core.MIGRATE_MOVABLE)
    assert ms.get_pageblock_migratetype((1 << 15) + 100) == 0      # block 0 starts at +0
    assert ms.get_pageblock_migratetype((1 << 15) + 512) == core.MIGRATE_MOVABLE


def test_flag_ranges_cross_sections(core, ms):
    activate(ms, 2)
    activate(ms, 3)
    start = (3 << 15) - 10
    ms.set_page_flag_range(start, 20, core.PG_owner_priv_1)
    assert ms.page_flags(start) == 1 << 10 and ms.page_flags(start + 19) == 1 << 10
    assert ms.page_flags(start + 20) == 0
    ms.clear_page_flag_range(start + 5, 10, core.PG_owner_priv_1)
    got = [ms.page_flags(p) >> 10 & 1 for p in range(start, start + 20)]
    assert got == [1] * 5 + [0] * 10 + [1] * 5
    ms.set_page_refcount_range(start, 20, 7)
    assert ms.page_refcount(start + 11) == 7


def test_memmap_is_a_live_view(core, ms):
    activate(ms, 9)
    arr = ms.memmap_w(9)
    assert arr.shape == (32768,) and arr.dtype == core.PAGE_DTYPE
    ms.set_page_type(9 << 15, 0xFFFFFF7F)
    assert int(arr["page_type"][0]) == 0xFFFFFF7F
    arr["private"][1] = 9
    assert ms.page_private((9 << 15) + 1) == 9


def test_bad_arguments_change_nothing(core, ms):
    activate(ms, 32)
    before = ms.state()
    bad = [
        lambda: ms.page(0),                                   # no memmap
        lambda: ms.memmap_init_range((32 << 15) + 32000, 1000, 0, 2, 1),   # runs into section 33
        lambda: ms.memmap_init_range(32 << 15, 10, 0, 9, 1),              # zone out of range
        lambda: ms.memmap_init_range(32 << 15, 10, 0, 2, 7),              # bad migratetype
        lambda: ms.alloc_memmap(32),                          # already there
        lambda: ms.alloc_usage(32),
        lambda: ms.free_memmap(33),
        lambda: ms.set_section_flags(1 << 19, 1),             # beyond NR_MEM_SECTIONS
        lambda: ms.set_section_flags(5000, 1),                # root missing
        lambda: ms.set_pageblock_migratetype(32 << 15, 5),
        lambda: ms.get_pageblock_migratetype(1 << 15),
        lambda: ms.set_page_flag_range(-1, 5, 3),
    ]
    for f in bad:
        with pytest.raises(HotplugError) as e:
            f()
        assert e.value.errno in (errno.EINVAL, errno.EEXIST)
        assert ms.state() == before


def test_free_memmap_and_usage(core, ms):
    activate(ms, 32)
    ms.free_memmap(32)
    assert not ms.has_memmap(32) and not ms.pfn_valid(32 << 15)
    ms.free_usage(32)
    assert not ms.has_usage(32)
    assert ms.root_allocated(0)                                # roots are never freed


def test_backends_leave_identical_state():
    from conftest import compiled_core, python_core
    _core, _core_py = compiled_core(), python_core()
    a, b = _core.MemSections(**GEOM), _core_py.MemSections(**GEOM)
    for m in (a, b):
        for nr in (32, 33, 200):
            activate(m, nr)
            m.set_section_flags(nr, 3)
        m.memmap_init_range((32 << 15) + 512, 2 * 32768 - 512, 1, ZONE_NORMAL, 4)
        m.set_page_flag_range(32 << 15, 512, 10)
        m.set_subsection_map(200, (1 << 64) - 1)
    sa, sb = a.state(), b.state()
    assert sa == sb
    assert np.frombuffer(sa["memmaps"][33], _core.PAGE_DTYPE)["_refcount"].sum() == 32768
