"""x86-64 memory-hotplug hooks (arch/x86/mm/init_64.c, 6.1): arch_add_memory, arch_remove_memory,
vmemmap_populate, vmemmap_free, kernel_physical_mapping_remove.

The page-table work is done by the core's ``PageTables``; this module decides who pays for each
page: direct-map tables come from ``alloc_low_page`` (GFP_ATOMIC | __GFP_ZERO, order 0, the
allocating CPU's node), vmemmap tables from ``vmemmap_alloc_block_zero`` on the target node, memmap
data from the altmap or the buddy. Freed table pages go back through ``free_pagetable``.
"""
from __future__ import annotations

import errno

from hotmem.arch.x86_init import init_memory_mapping as _init_memory_mapping
from hotmem.mm.page_alloc import GFP_ATOMIC
from hotmem.mm.sparse_vmemmap import vmemmap_alloc_block_buf, vmemmap_alloc_table


def alloc_low_page(m, level: str, node: int) -> int:
    """arch/x86/mm/init.c:alloc_low_page after boot: one zeroed GFP_ATOMIC page, -1 on failure."""
    pfn, _ = m.kernel_alloc_pages(m.numa_node_id(), GFP_ATOMIC, 0, f"direct map {level} table")
    return pfn


def init_memory_mapping(m, start: int, end: int) -> None:
    """arch/x86/mm/init.c:init_memory_mapping (6.1) for a hot-added range."""
    _init_memory_mapping(m.pgtables, start, end, pse=m.has_pse, gbpages=m.direct_gbpages,
                         alloc_table=lambda level, node: alloc_low_page(m, level, node),
                         node=m.numa_node_id())


def free_pagetable(m, pfn: int, order: int) -> None:
    """arch/x86/mm/init_64.c:free_pagetable (6.1): boot (PageReserved) pages are handed back
    with free_reserved_page, hot-plug-time pages with free_pages."""
    if m.ms.page_flags(pfn) >> m.core.PG_reserved & 1:
        for p in range(pfn, pfn + (1 << order)):
            m.free_reserved_page(p)
    else:
        m.kernel_free_pages(pfn, order)


def vmemmap_populate(m, start: int, end: int, node: int, altmap) -> int:
    """arch/x86/mm/init_64.c:vmemmap_populate (6.1). 0 or -ENOMEM."""
    pt = m.pgtables
    table = lambda level, n: vmemmap_alloc_table(m, level, n)
    if end - start < (1 << m.arch.pmd_shift):
        # < one section's memmap: base pages, the altmap ignored
        page = lambda nr, n: vmemmap_alloc_block_buf(m, nr, n, None)
        rc = pt.vmemmap_populate_basepages(start, end, node, page, table)
    elif m.has_pse:
        block = lambda nr, n: vmemmap_alloc_block_buf(m, nr, n, altmap)
        buddy_page = lambda nr, n: vmemmap_alloc_block_buf(m, nr, n, None)
        if m.policy.basepage_fallback_uses_altmap:
            # 6.6+ generic vmemmap_populate_hugepages: base pages from the altmap as well
            fallback = lambda nr, n: vmemmap_alloc_block_buf(m, nr, n, altmap)
            rc = pt.vmemmap_populate_hugepages(start, end, node, block, table, fallback)
        elif altmap is not None:
            # 6.1: a failed altmap block is -ENOMEM; a PMD that is already a PTE table still
            # gets its base pages from the buddy (vmemmap_populate_basepages(.., NULL))
            rc = pt.vmemmap_populate_hugepages(start, end, node, block, table, None, buddy_page)
        else:
            rc = pt.vmemmap_populate_hugepages(start, end, node, block, table, buddy_page)
    elif altmap is not None:
        m.warn("vmemmap_populate: no cpu support for altmap allocations")
        return -errno.ENOMEM
    else:
        page = lambda nr, n: vmemmap_alloc_block_buf(m, nr, n, None)
        rc = pt.vmemmap_populate_basepages(start, end, node, page, table)
    return rc


def vmemmap_free(m, start: int, end: int, altmap) -> None:
    """arch/x86/mm/init_64.c:vmemmap_free → remove_pagetable(direct=false) (6.1).

    A 2 MiB leaf goes back through free_hugepage_table (vmem_altmap_free with an altmap, else
    free_pagetable order 9); PTE-mapped pages always through free_pagetable."""
    def free_data(pfn, nr_pages):
        if nr_pages > 1 and altmap is not None:
            m.core.vmem_altmap_free(altmap, nr_pages)
            m.owners.drop_altmap(pfn, nr_pages)
        elif pfn in m.owners.altmap:
            # no altmap passed for memory an altmap handed out (the NULL-altmap error path of
            # v2/5.13/6.1.0): the kernel would free pages of the removed range into the buddy
            m.warn(f"vmemmap_free: free_pagetable of altmap-backed pfn {pfn:#x} "
                   f"({nr_pages} pages) without the altmap; the model does not free them")
            m.owners.drop_altmap(pfn, nr_pages)
        else:
            free_pagetable(m, pfn, (nr_pages - 1).bit_length())

    m.pgtables.remove_pagetable(start, end, False, free_data,
                                lambda pfn, level: free_pagetable(m, pfn, 0),
                                m.arch.paging_levels == 5)


def kernel_physical_mapping_remove(m, start: int, end: int) -> None:
    """arch/x86/mm/init_64.c:kernel_physical_mapping_remove (6.1)."""
    a = m.arch
    m.pgtables.remove_pagetable(a.phys_to_virt(start), a.phys_to_virt(end), True, None,
                                lambda pfn, level: free_pagetable(m, pfn, 0),
                                a.paging_levels == 5)


def arch_add_memory(m, nid: int, start: int, size: int, altmap) -> int:
    """arch/x86/mm/init_64.c:arch_add_memory → init_memory_mapping + add_pages (6.1.y)."""
    from hotmem.mm.memory_hotplug import __add_pages
    init_memory_mapping(m, start, start + size)
    start_pfn, nr_pages = start >> m.arch.page_shift, size >> m.arch.page_shift
    # add_pages: refuse ranges ending above PHYSMEM_END (6.1.y)
    if start + size - 1 > m.arch.physmem_end:
        return -errno.ERANGE
    rc = __add_pages(m, nid, start_pfn, nr_pages, altmap)
    if rc:
        m.warn(f"add_pages: __add_pages failed ({rc})")
        return rc
    # update_end_of_memory_vars: max_pfn only grows
    m.max_pfn = max(m.max_pfn, start_pfn + nr_pages)
    return 0


def arch_remove_memory(m, start: int, size: int, altmap) -> None:
    """arch/x86/mm/init_64.c:arch_remove_memory (6.1): __remove_pages, then the direct map."""
    from hotmem.mm.memory_hotplug import __remove_pages
    __remove_pages(m, start >> m.arch.page_shift, size >> m.arch.page_shift, altmap)
    kernel_physical_mapping_remove(m, start, start + size)
