"""Compiled core vs pure-Python twin: populate and tear down the vmemmap of 64 GiB of RAM.

One GiB of vmemmap (16 Mi struct pages x 64 B) = one PMD table and 512 PMD leaves; teardown hands
the 512 blocks and the PMD table back. Both backends run in the same session (group
"vmemmap-64G"), so pytest-benchmark shows their ratio directly.
"""
import importlib
import os

import pytest

GiB = 1 << 30
VMEMMAP_START = 0xFFFFEA0000000000          # 4-level, nokaslr
BACKENDS = {
    "compiled": os.environ.get("HOTMEM_CORE_MODULE", "hotmem._core"),
    "python": "hotmem._core_py",
}


def populate_and_teardown(core):
    pt = core.PageTables(4, 0x1000)
    nxt = {"table": 0x10000, "block": 0x200000}

    def alloc_table(level, node):
        nxt["table"] += 1
        return nxt["table"]

    def alloc_block(nr, node):
        pfn = nxt["block"]
        nxt["block"] += nr
        return pfn

    def free_data(pfn, nr):
        pass

    def free_table(pfn, level):
        pass

    start, end = VMEMMAP_START, VMEMMAP_START + 64 * GiB // 4096 * 64
    assert pt.vmemmap_populate_hugepages(start, end, 0, alloc_block, alloc_table, None) == 0
    pt.remove_pagetable(start, end, False, free_data, free_table, False)
    return pt


@pytest.mark.benchmark(group="vmemmap-64G")
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_vmemmap_64G_populate_teardown(benchmark, backend):
    core = importlib.import_module(BACKENDS[backend])
    pt = benchmark(populate_and_teardown, core)
    assert pt.nr_tables("PMD") == 0 and pt.nr_tables("PUD") == 1
