"""struct vmem_altmap arithmetic (mm/sparse-vmemmap.c, mm/memremap.c; 6.1) on both backends."""
import errno

import pytest
from hypothesis import given, settings, strategies as st

from hotmem.errors import HotplugError

PAGE = 4096
PMD = 2 << 20  # one section's memmap on x86_64: 32768 struct pages x 64 bytes


def test_offset_none_and_fields(core):
    assert core.vmem_altmap_offset(None) == 0
    a = core.VmemAltmap(base_pfn=0x100000, reserve=3, free=32768)
    assert core.vmem_altmap_offset(a) == 3 + 32768
    assert core.vmem_altmap_next_pfn(a) == 0x100000 + 3
    assert core.vmem_altmap_nr_free(a) == 32768


def test_memmap_on_memory_block_of_128M(core):
    # 6.1 hot-add altmap: base = block start, free = the whole block (32768 pfns).
    a = core.VmemAltmap(base_pfn=0x100000, free=32768)
    pfn = core.altmap_alloc_block_buf(PMD, a)
    assert pfn == 0x100000                     # 2 MiB request is 512-aligned; base already is
    assert (a.alloc, a.align) == (512, 0)
    assert core.vmem_altmap_nr_free(a) == 32768 - 512
    core.vmem_altmap_free(a, 512)              # remove-time free_hugepage_table
    assert a.alloc == 0


def test_alignment_padding_is_largest_power_of_two_dividing_request(core):
    a = core.VmemAltmap(base_pfn=0x100001, free=4096)
    # 512 pages: next pfn 0x100001 rounds up to 0x100200 -> 511 pfns of padding
    assert core.altmap_alloc_block_buf(512 * PAGE, a) == 0x100200
    assert (a.alloc, a.align) == (512, 511)
    # 3 pages: largest power of two dividing 3 is 1 -> no padding
    assert core.altmap_alloc_block_buf(3 * PAGE, a) == 0x100400
    assert (a.alloc, a.align) == (515, 511)
    # 4 KiB is never padded
    assert core.altmap_alloc_block_buf(PAGE, a) == 0x100403
    # 6 pages: power of two dividing 6 is 2; next pfn 0x100404 is even -> no padding
    assert core.altmap_alloc_block_buf(6 * PAGE, a) == 0x100404
    assert a.align == 511


def test_reserve_is_skipped_not_counted(core):
    a = core.VmemAltmap(base_pfn=1000, reserve=24, free=100)
    assert core.altmap_alloc_block_buf(8 * PAGE, a) == 1024   # 1000+24 is 8-aligned
    assert core.vmem_altmap_nr_free(a) == 92


def test_failure_when_request_plus_padding_exceeds_free(core):
    a = core.VmemAltmap(base_pfn=1, free=512)
    # 512 needs 511 pfns of padding at pfn 1: 1023 > 512
    assert core.altmap_alloc_block_buf(512 * PAGE, a) == -1
    assert (a.alloc, a.align) == (0, 0)
    b = core.VmemAltmap(base_pfn=0, free=512)
    assert core.altmap_alloc_block_buf(512 * PAGE, b) == 0
    assert core.altmap_alloc_block_buf(PAGE, b) == -1          # exhausted
    assert core.vmem_altmap_nr_free(b) == 0


def test_size_not_a_page_multiple_fails_like_the_kernel(core):
    a = core.VmemAltmap(base_pfn=0, free=512)
    assert core.altmap_alloc_block_buf(PAGE + 1, a) == -1
    assert a.as_tuple() == (0, 0, 0, 512, 0, 0)


def test_bad_arguments(core):
    a = core.VmemAltmap(base_pfn=0, free=512)
    with pytest.raises(HotplugError) as e:
        core.altmap_alloc_block_buf(0, a)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(HotplugError):
        core.vmem_altmap_free(a, -1)
    with pytest.raises(HotplugError):
        core.VmemAltmap(free=-1)
    assert a.as_tuple() == (0, 0, 0, 512, 0, 0)


def test_free_wraps_like_unsigned_long(core):
    # 6.1 does not check: a remove-time altmap freeing more than it allocated wraps.
    a = core.VmemAltmap(alloc=1)
    core.vmem_altmap_free(a, 2)
    assert a.alloc == 2**64 - 1
    assert core.vmem_altmap_nr_free(a) == 0


@settings(max_examples=60, deadline=None)
@given(base=st.integers(0, 1 << 40), reserve=st.integers(0, 64), free=st.integers(0, 1 << 16),
       reqs=st.lists(st.integers(1, 1024), max_size=20))
def test_backends_agree(base, reserve, free, reqs):
    from conftest import compiled_core, python_core
    _core, _core_py = compiled_core(), python_core()
    a = _core.VmemAltmap(base_pfn=base, reserve=reserve, free=free)
    b = _core_py.VmemAltmap(base_pfn=base, reserve=reserve, free=free)
    for n in reqs:
        before = b.as_tuple()
        pa = _core.altmap_alloc_block_buf(n * PAGE, a)
        pb = _core_py.altmap_alloc_block_buf(n * PAGE, b)
        assert pa == pb
        if pb >= 0:
            # independent check of the rule: aligned to the lowest set bit of n, never reused
            assert pb % (n & -n) == 0
            assert pb >= base + reserve + before[5] + before[4]
            assert b.alloc + b.align <= b.free
        assert a.as_tuple() == b.as_tuple()
