"""arch/x86/mm/init.c (Linux 6.1, after boot): split_mem_range and init_memory_mapping.

split_mem_range is checked against hand-written cases and against an independent oracle: a page
is mapped with the largest allowed page size whose aligned block around it lies inside the
range, and neighbouring runs of one size are merged.
"""
import errno

import pytest
from hypothesis import given, settings, strategies as st

from hotmem.arch.x86_init import init_memory_mapping, split_mem_range
from hotmem.errors import HotplugError

K4, M2, G1 = 4096, 2 << 20, 1 << 30
MiB, GiB = 1 << 20, 1 << 30
PAGE_OFFSET_L4 = 0xFFFF888000000000


def test_block_aligned_hot_add_is_one_2M_run():
    assert split_mem_range(4 * GiB, 4 * GiB + 128 * MiB, pse=True, gbpages=True) == [
        (4 * GiB, 4 * GiB + 128 * MiB, M2)]


def test_aligned_gib_uses_1G_only_with_gbpages():
    assert split_mem_range(4 * GiB, 5 * GiB, pse=True, gbpages=True) == [(4 * GiB, 5 * GiB, G1)]
    assert split_mem_range(4 * GiB, 5 * GiB, pse=True, gbpages=False) == [(4 * GiB, 5 * GiB, M2)]
    # gbpages without PSE: probe_page_size_mask clears direct_gbpages -> 4K only
    assert split_mem_range(4 * GiB, 5 * GiB, pse=False, gbpages=True) == [(4 * GiB, 5 * GiB, K4)]


def test_all_five_pieces():
    start, end = 0x1000, 3 * GiB + 2 * M2 + 0x3000
    assert split_mem_range(start, end, pse=True, gbpages=True) == [
        (0x1000, M2, K4),                          # head up to the first 2M boundary
        (M2, GiB, M2),                             # 2M up to the first 1G boundary
        (GiB, 3 * GiB, G1),                        # aligned GiBs
        (3 * GiB, 3 * GiB + 2 * M2, M2),           # 2M tail
        (3 * GiB + 2 * M2, end, K4),               # 4K tail
    ]
    # without gbpages the three middle pieces carry the same mask and merge
    assert split_mem_range(start, end, pse=True, gbpages=False) == [
        (0x1000, M2, K4), (M2, 3 * GiB + 2 * M2, M2), (3 * GiB + 2 * M2, end, K4)]
    assert split_mem_range(start, end, pse=False, gbpages=False) == [(start, end, K4)]


def test_small_and_empty_ranges():
    assert split_mem_range(M2 + K4, M2 + 3 * K4, pse=True, gbpages=True) == [
        (M2 + K4, M2 + 3 * K4, K4)]
    assert split_mem_range(5 * K4, 5 * K4, pse=True, gbpages=True) == []
    assert split_mem_range(5 * K4, 3 * K4, pse=True, gbpages=True) == []
    # PFN_DOWN on both ends
    assert split_mem_range(0x1800, 0x3800, pse=True, gbpages=True) == [(0x1000, 0x3000, K4)]


def _oracle(start, end, pse, gbpages):
    start, end = start // K4 * K4, end // K4 * K4
    sizes = ([G1] if pse and gbpages else []) + ([M2] if pse else [])
    runs = []
    p = start
    while p < end:
        for s in sizes:
            lo = p // s * s
            if lo >= start and lo + s <= end:
                size, nxt = s, lo + s
                break
        else:   # no block fits: neither does one for any page up to the next 2M boundary
            size, nxt = K4, min((p // M2 + 1) * M2, end)
        if runs and runs[-1][1] == p and runs[-1][2] == size:
            runs[-1] = (runs[-1][0], nxt, size)
        else:
            runs.append((p, nxt, size))
        p = nxt
    return runs


@settings(max_examples=300, deadline=None)
@given(start=st.integers(0, 6 * GiB), length=st.integers(0, 6 * GiB),
       snap_start=st.sampled_from([1, K4, M2, G1]), snap_len=st.sampled_from([1, K4, M2, G1]),
       pse=st.booleans(), gbpages=st.booleans())
def test_split_matches_the_largest_fitting_page_oracle(start, length, snap_start, snap_len, pse,
                                                       gbpages):
    start = start // snap_start * snap_start
    end = start + length // snap_len * snap_len
    runs = split_mem_range(start, end, pse=pse, gbpages=gbpages)
    assert runs == _oracle(start, end, pse, gbpages)
    for s, e, size in runs:
        assert s % size == 0 and e % size == 0 and s < e


def test_init_memory_mapping_counts_every_run(core):
    pt = core.PageTables(4, 0x1000)
    tables = []

    def alloc_table(level, node):
        tables.append(level)
        return 0x10000 + len(tables)

    start, end = GiB - M2 + 3 * K4, 3 * GiB + M2 + 5 * K4
    ret = init_memory_mapping(pt, start, end, pse=True, gbpages=True, alloc_table=alloc_table,
                              node=0)
    assert ret == end >> 12                       # init_memory_mapping returns a pfn
    # runs: 4K [1G-2M+12K, 1G) = 509 pages, 1G [1G, 3G) = 2 leaves, 2M [3G, 3G+2M) = 1 leaf,
    # 4K [3G+2M, 3G+2M+20K) = 5 pages
    assert pt.direct_pages_count("4K") == 509 + 5
    assert pt.direct_pages_count("2M") == 1
    assert pt.direct_pages_count("1G") == 2
    # tables: PUD (PGD empty), PMD for GiB 0 and a PTE table for its last 2M; the GiBs 1-2 are
    # PUD leaves; PMD for GiB 3 (2M leaf at index 0) and a PTE table at its index 1
    assert tables == ["PUD", "PMD", "PTE", "PMD", "PTE"]
    assert pt.lookup(PAGE_OFFSET_L4 + 2 * GiB)[0] == "PUD"
    assert pt.lookup(PAGE_OFFSET_L4 + 3 * GiB)[0] == "PMD"
    assert pt.lookup(PAGE_OFFSET_L4 + GiB - K4)[0] == "PTE"
    assert pt.lookup(PAGE_OFFSET_L4 + GiB - M2) is None


def test_init_memory_mapping_bad_arguments(core):
    pt = core.PageTables(4, 0x1000)
    before = pt.state()
    for s, e in [(0x800, M2), (0, M2 + 1), (M2, M2), (2 * M2, M2), (0, (1 << 46) + K4)]:
        with pytest.raises(HotplugError) as exc:
            init_memory_mapping(pt, s, e, pse=True, gbpages=False,
                                alloc_table=lambda level, node: 1, node=0)
        assert exc.value.errno == errno.EINVAL
        assert pt.state() == before
