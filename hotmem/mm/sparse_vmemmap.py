"""Populating and freeing the memmap in the virtual memory map (mm/sparse-vmemmap.c, 6.1).

Who pays for a page of the vmemmap: ``vmemmap_alloc_block_buf`` takes memmap data from the altmap
when there is one, else from the buddy on the node's zonelist (after boot) or from memblock (at
boot); page-table pages always come from ``vmemmap_alloc_block_zero`` — never from the altmap.
"""
from __future__ import annotations

from hotmem.fault_inject import should_fail_altmap
from hotmem.mm.page_alloc import GFP_KERNEL, kernel_alloc_pages
from hotmem.mm.vmstat import memmap_pages_add, memmap_pages_of


def vmemmap_alloc_block(m, nr_pages: int, node: int, what: str) -> int:
    """mm/sparse-vmemmap.c:vmemmap_alloc_block (6.1) after boot: alloc_pages_node(node,
    GFP_KERNEL | __GFP_RETRY_MAYFAIL | __GFP_NOWARN, get_order(size)); -1 on failure."""
    order = (nr_pages - 1).bit_length()
    pfn, _ = kernel_alloc_pages(m, node, GFP_KERNEL, order, what)
    return pfn


def vmemmap_alloc_block_buf(m, nr_pages: int, node: int, altmap) -> int:
    """mm/sparse-vmemmap.c:vmemmap_alloc_block_buf (6.1): the altmap, else the buddy."""
    if altmap is not None:
        if should_fail_altmap(m):
            return -1
        pfn = m.core.altmap_alloc_block_buf(nr_pages << m.arch.page_shift, altmap,
                                            m.arch.PAGE_SIZE)
        if pfn >= 0:
            m.owners.note_altmap(pfn, nr_pages)
        return pfn
    return vmemmap_alloc_block(m, nr_pages, node, "memmap")


def vmemmap_alloc_table(m, level: str, node: int) -> int:
    """vmemmap_alloc_block_zero(PAGE_SIZE, node) for a new vmemmap page table."""
    return vmemmap_alloc_block(m, 1, node, f"vmemmap {level} table")


def populate_section_memmap(m, pfn: int, nr_pages: int, nid: int, altmap) -> int:
    """mm/sparse-vmemmap.c:__populate_section_memmap (6.1) without a dev_pagemap: map the struct
    pages of [pfn, pfn + nr_pages) with the arch's vmemmap_populate. 0 or -ENOMEM.

    6.11: on success, DIV_ROUND_UP(end - start, PAGE_SIZE) goes to nr_memmap_pages -- altmap
    pages included (hot-add runs after boot; the boot memmap is counted in sparse_init).
    """
    start = m.arch.pfn_to_page(pfn)
    end = m.arch.pfn_to_page(pfn + nr_pages)
    rc = m.arch_ops.vmemmap_populate(m, start, end, nid, altmap)
    if rc == 0:                 # section_activate takes any other value as failure
        memmap_pages_add(m, memmap_pages_of(m, nr_pages))
    return rc


def depopulate_section_memmap(m, pfn: int, nr_pages: int, altmap) -> None:
    """mm/sparse.c:depopulate_section_memmap (6.1, VMEMMAP): vmemmap_free of the range.
    6.11 first takes DIV_ROUND_UP(end - start, PAGE_SIZE) off nr_memmap_pages -- also when
    section_activate's populate failed and added nothing, so a failed hot-add leaves the counter
    that much lower."""
    memmap_pages_add(m, -memmap_pages_of(m, nr_pages))
    start = m.arch.pfn_to_page(pfn)
    end = m.arch.pfn_to_page(pfn + nr_pages)
    m.arch_ops.vmemmap_free(m, start, end, altmap)
