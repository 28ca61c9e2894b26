"""Fault injection (fail_page_alloc, memory-notifier-error-inject, an unmovable page) and the
kernel's error paths (6.1) on both backends."""
import errno

import pytest

import hotmem
from hotmem.mm.memory_hotplug import MHP_MEMMAP_ON_MEMORY
from hotmem.mm.page_alloc import kernel_free_pages

MiB = 1 << 20
DIMM = 0x100000000
PFN = DIMM >> 12
STATE = "/sys/devices/system/memory/memory{}/state"


@pytest.fixture(params=["compiled", "python"])
def backend(request):
    return request.param


def machine(backend, mom):
    return hotmem.Machine(cmdline=f"memory_hotplug.memmap_on_memory={mom}", backend=backend)


def test_altmap_failure_has_no_fallback_and_leaves_the_direct_map(backend):
    """6.1 x86 vmemmap_populate: an altmap that cannot give the block → -ENOMEM; section_activate
    undoes the section, but arch_add_memory does not undo init_memory_mapping (§4.3 step 8)."""
    m = machine(backend, 1)
    dm0 = m.pgtables.direct_pages_count("2M")
    inj = m.inject("altmap")
    with pytest.raises(hotmem.HotplugError) as e:
        m.add_memory(0, DIMM, 128 * MiB, MHP_MEMMAP_ON_MEMORY)
    assert e.value.errno == errno.ENOMEM and inj["failed"] == 1
    assert not m.ms.has_usage(32) and not m.ms.section_mem_map(32)
    assert 32 not in m.memory_blocks
    assert "100000000-107ffffff" not in m.procfs.read("/proc/iomem")   # resource released
    assert m.pgtables.direct_pages_count("2M") - dm0 == 64              # 128 MiB / 2 MiB stays
    m.clear_injections()
    m.add_memory(0, DIMM, 128 * MiB, MHP_MEMMAP_ON_MEMORY)              # the retry works
    assert m.memory_blocks[32].nr_vmemmap_pages == 512
    assert m.pgtables.direct_pages_count("2M") - dm0 == 64              # the map is reused


def test_page_allocation_failure_without_memmap_on_memory(backend):
    """No order-9 page and no order-0 fallback page: -ENOMEM from vmemmap_populate."""
    m = machine(backend, 0)
    m.inject("page_alloc", order=9)
    m.inject("page_alloc", order=0, times=10**6)
    with pytest.raises(hotmem.HotplugError) as e:
        m.add_memory(0, DIMM, 128 * MiB)
    assert e.value.errno == errno.ENOMEM
    assert m.accounting()["memmap"]["buddy"] == {}
    m.clear_injections()


def test_order9_failure_falls_back_to_base_pages(backend):
    m = machine(backend, 0)
    m.inject("page_alloc", order=9)
    m.add_memory(0, DIMM, 128 * MiB)
    assert m.accounting()["page tables"]["vmemmap"] == {"PTE": 1}
    assert sum(1 for w, o, _ in m.owners.buddy.values() if w == "memmap" and o == 0) == 512


@pytest.mark.parametrize("event", ["MEM_GOING_ONLINE", "MEM_GOING_OFFLINE"])
def test_notifier_veto_unwinds(backend, event):
    m = machine(backend, 1)
    m.add_memory(0, DIMM, 128 * MiB, MHP_MEMMAP_ON_MEMORY)
    if event == "MEM_GOING_OFFLINE":
        m.sysfs.write(STATE.format(32), "online_movable")
    m.allocator.drain_zone_pages(m.zone(0, "DMA32").zoneid)
    before = m.snapshot()
    m.inject("notifier", event=event)                   # -ENOMEM, as the selftest's default
    with pytest.raises(hotmem.HotplugError) as e:
        m.sysfs.write(STATE.format(32), "offline" if event == "MEM_GOING_OFFLINE" else "online")
    assert e.value.errno == errno.ENOMEM
    after = m.snapshot()
    for key in ("blocks", "pt", "owners", "totalram", "iomem"):
        assert after[key] == before[key], key
    spans = lambda snap: [z[2:7] for z in snap["pgdats"][0][11]]
    assert spans(after) == spans(before)
    m.clear_injections()
    m.sysfs.write(STATE.format(32), "offline" if event == "MEM_GOING_OFFLINE" else "online")


def test_unmovable_page_blocks_offlining(backend):
    m = machine(backend, 0)
    m.add_memory(0, DIMM, 128 * MiB)
    m.sysfs.write(STATE.format(32), "online")
    m.inject("unmovable", pfn=PFN + 5000)
    with pytest.raises(hotmem.HotplugError) as e:
        m.sysfs.write(STATE.format(32), "offline")
    assert e.value.errno == errno.EBUSY
    assert m.sysfs.read(STATE.format(32)) == "online\n"
    with pytest.raises(hotmem.HotplugError) as e:
        m.inject("unmovable", pfn=PFN + 5000)              # not free any more
    assert e.value.errno == errno.EBUSY
    kernel_free_pages(m, PFN + 5000, 0)
    m.sysfs.write(STATE.format(32), "offline")


@pytest.mark.parametrize("kernel, reported", [("6.1", "last"), ("5.13", "middle")])
def test_isolation_order_decides_the_reported_page(backend, kernel, reported):
    """mm/page_isolation.c:start_isolate_page_range: 5.19+ (isolate_single_pageblock) isolates
    the first pageblock, then the last, then the middle ones; 5.13 goes in ascending order. With
    an unmovable page in pageblock 9 and one in the last pageblock (63 of a 128 MiB block of
    512-page pageblocks), 6.1 reports the last one and 5.13 the middle one; both undo all."""
    m = hotmem.Machine(kernel=kernel, backend=backend)
    m.add_memory(0, DIMM, 128 * MiB)
    m.sysfs.write(STATE.format(32), "online")
    middle, last = PFN + 9 * 512 + 392, PFN + 63 * 512 + 501
    m.inject("unmovable", pfn=middle)
    m.inject("unmovable", pfn=last)
    before = m.snapshot()
    with pytest.raises(hotmem.HotplugError) as e:
        m.sysfs.write(STATE.format(32), "offline")
    assert e.value.errno == errno.EBUSY
    pfn = last if reported == "last" else middle
    assert f"page:{pfn:#x} has unmovable pages" in m.log_lines
    assert f"page:{middle + last - pfn:#x} has unmovable pages" not in m.log_lines
    assert m.snapshot() == before


def test_bad_injections(backend):
    m = machine(backend, 0)
    for kw in (dict(kind="frobnicate"), dict(kind="notifier", event="MEM_ONLINE"),
               dict(kind="notifier", event="MEM_GOING_ONLINE", error=5),
               dict(kind="unmovable", pfn=1 << 30), dict(kind="page_alloc", nth=0)):
        with pytest.raises(hotmem.HotplugError) as e:
            m.inject(**kw)
        assert e.value.errno == errno.EINVAL


def test_take_page_off_buddy_splits_around_the_page(backend):
    """mm/page_alloc.c:take_page_off_buddy + break_down_buddy_pages, by hand for pfn P+5 of a
    free order-10 block at P: the halves not holding P+5 go back as one block per order."""
    m = machine(backend, 0)
    a = m.allocator
    zid = m.zone(0, "DMA32").zoneid
    P = a.free_list(zid, 10, 1)[0]
    free0 = a.nr_free_pages(zid)
    assert a.take_page_off_buddy(P + 5)
    expect = {9: P + 512, 8: P + 256, 7: P + 128, 6: P + 64, 5: P + 32, 4: P + 16, 3: P + 8,
              2: P, 1: P + 6, 0: P + 4}
    for order, pfn in expect.items():
        assert pfn in a.free_list(zid, order, 1), (order, pfn)
    assert a.nr_free_pages(zid) == free0 - 1
    assert m.ms.page_refcount(P + 5) == 1 and not a.take_page_off_buddy(P + 5)
    a.free_pages(P + 5, 0, 0)
