"""PgtableAllocator (hotmem/_cy/pgalloc.pxi, twin hotmem/_py/pgalloc.py): the allocations the
hot-plug page-table walks make in the core are the ones kernel_alloc_pages and
vmemmap_alloc_block_buf make from Python -- same pfns, failures, ledger and injection counts --
on both backends."""
import errno

import pytest

import hotmem
from hotmem.arch.arm64_init import device_memory_base
from hotmem.mm.page_alloc import GFP_ATOMIC, GFP_KERNEL, kernel_alloc_pages
from hotmem.mm.sparse_vmemmap import pgtable_allocator, vmemmap_alloc_block_buf

MiB = 1 << 20
#: a walk's requests: tables of a level, memmap blocks and base pages from the buddy or altmap
REQUESTS = [("table", "PUD"), ("table", "PMD"), ("buddy", 512), ("altmap", 512), ("buddy", 1),
            ("altmap", 1), ("table", "PTE"), ("buddy", 2), ("altmap", 3)] * 40
INJECTIONS = [
    [],
    [("page_alloc", dict(nth=3, times=2))],
    [("page_alloc", dict(order=9)), ("page_alloc", dict(order=0, nth=5, times=3))],
    [("altmap", dict(nth=2, times=4)), ("page_alloc", dict(node=0, nth=4))],
    [("page_alloc", dict(node=1, times=10))],
]


@pytest.fixture(params=["compiled", "python"])
def backend(request):
    return request.param


def loaded_machine(backend, boot_memory):
    """A machine whose zones were drained by order-9 allocations down to their watermarks, so
    that requests walk the zonelist and the watermark passes."""
    m = hotmem.Machine(boot_memory=boot_memory, cpus={n: int(n == 0) for n in boot_memory},
                       backend=backend)
    while kernel_alloc_pages(m, 0, GFP_KERNEL, 9, "hog")[0] >= 0:
        pass
    return m


def python_requests(m, nid, gfp, tables, altmap, requests):
    out = []
    for kind, arg in requests:
        if kind == "table":
            out.append(kernel_alloc_pages(m, nid, gfp, 0, f"{tables} {arg} table")[0])
        else:
            out.append(vmemmap_alloc_block_buf(m, arg, nid, altmap if kind == "altmap" else None))
    return out


def core_requests(m, nid, gfp, tables, altmap, requests):
    with pgtable_allocator(m, nid, altmap, gfp, tables) as a:
        return [getattr(a, kind)(arg, nid) for kind, arg in requests]


@pytest.mark.parametrize("injections", INJECTIONS)
@pytest.mark.parametrize("nid,gfp,tables", [(0, GFP_KERNEL, "vmemmap"),
                                            (1, GFP_KERNEL, "vmemmap"),
                                            (0, GFP_ATOMIC, "direct map"),
                                            (7, GFP_KERNEL, "vmemmap")])
def test_core_allocations_equal_the_python_ones(backend, injections, nid, gfp, tables):
    runs = []
    for do in (python_requests, core_requests):
        m = loaded_machine(backend, {0: "4G", 1: "512M"})
        altmap = m.core.VmemAltmap(base_pfn=0x100000, reserve=3, free=2000)
        for kind, kw in injections:
            m.inject(kind, **kw)
        # the direct map (x86 alloc_low_page: GFP_ATOMIC) only asks for tables
        requests = REQUESTS if tables == "vmemmap" else [r for r in REQUESTS if r[0] == "table"]
        pfns = do(m, nid, gfp, tables, altmap, requests)
        runs.append((pfns, list(m.owners.buddy.items()), list(m.owners.altmap.items()),
                     m.injections, m.allocator.state(), altmap.as_tuple()))
    assert runs[0] == runs[1]
    pfns = runs[0][0]
    assert any(p >= 0 for p in pfns)
    assert -1 in pfns or tables == "direct map"       # order 9 fails on the drained machine


def test_sources_refuse_the_wrong_kind_of_request(backend):
    m = hotmem.Machine(backend=backend)
    with pgtable_allocator(m, 0) as a:
        assert a.altmap is None
        for call in (lambda: a.table(512, 0), lambda: a.buddy("PMD", 0)):
            with pytest.raises(hotmem.HotplugError) as e:
                call()
            assert e.value.errno == errno.EINVAL
    assert a.records() == []


def test_allocations_before_a_failed_walk_reach_the_ledger(backend):
    """arm64 __create_pgd_mapping for 128 MiB at 2 GiB (4K pages, no blocks): a PMD table for
    the new GiB, then PTE tables; the second table request fails (6.1 BUGs, the model raises
    ENOMEM) and the PMD table taken before it is on the ledger."""
    m = hotmem.Machine(arch="arm64", page_size="4K", boot_memory="1G", backend=backend)
    base = device_memory_base(m)
    m.inject("page_alloc", order=0, nth=2)
    with pytest.raises(hotmem.HotplugError) as e:
        m.add_memory(0, base, 128 * MiB)
    assert e.value.errno == errno.ENOMEM
    assert "__pgd_pgtable_alloc: no page for a PTE table" in e.value.message
    assert m.accounting()["page tables"]["direct map"] == {"PMD": 1}
    assert m.injections[0]["seen"] == 2 and m.injections[0]["failed"] == 1
