"""init_mm's kernel page tables, Linux 6.1: pure-Python twin of hotmem/_cy/pgtable*.pxi.

:class:`PageTables` is a chain of classes, one module per concept, split as the compiled core is:

- hotmem/_py/pgtable_store.py: ``_TableStore``, the tables as model pages (storage, geometry),
  the argument checks, mm/sparse-vmemmap.c's generic populate, the deferred frees, inspection;
- hotmem/_py/pgtable_x86.py: ``_X86Tables``, arch/x86/mm/init_64.c (vmemmap with the sub-PMD
  bookkeeping, remove_pagetable, kernel_physical_mapping_init, the DirectMap counters);
- hotmem/_py/pgtable_arm64.py: ``_Arm64Tables``, arch/arm64/mm/mmu.c (vmemmap_populate,
  __create_pgd_mapping, unmap_hotplug_range, free_empty_tables, vmemmap_free,
  __remove_pgd_mapping);
- here: ``PageTables`` itself and the names this module has always exported.
"""
from hotmem._py.pgtable_store import (  # noqa: F401  (the chain, and the helpers it had)
    _M64, _addr_end, _as_ints, _einval, _entry_none, _is_callable_or_none, _TableStore,
)
from hotmem._py.pgtable_x86 import _X86Tables  # noqa: F401
from hotmem._py.pgtable_arm64 import _Arm64Tables, _pgtable_range_aligned  # noqa: F401
from hotmem.defs import (  # noqa: F401  (re-exported: see __all__)
    DIRECT_PAGES_COUNT_INDEX, _KERNPG_TABLE, MAX_TABLE_ENTRIES, NO_BLOCK_MAPPINGS,
    NO_CONT_MAPPINGS, NO_EXEC_MAPPINGS, P4D_SHIFT, PageTableGeometry, _PAGE_ACCESSED,
    _PAGE_DIRTY, _PAGE_GLOBAL, PAGE_KERNEL, PAGE_KERNEL_LARGE, _PAGE_KNL_ERRATUM_MASK, _PAGE_NX,
    _PAGE_PCD, _PAGE_PRESENT, _PAGE_PROTNONE, _PAGE_PSE, _PAGE_PWT, _PAGE_RW, PAGE_SIZE,
    _PAGE_TABLE, PAGE_UNUSED, _PAGE_USER, pgtable_geometry_for, PGTABLE_LEVEL_ID,
    PGTABLE_LEVEL_NAMES, PGT_MAX_PFN, PGT_PHYS_BITS, PG_LEVEL_1G, PG_LEVEL_2M,
    PHYSICAL_PMD_PAGE_MASK, PHYSICAL_PUD_PAGE_MASK, PMD_SIZE, PTE_FLAGS_MASK, PTE_PFN_MASK,
    PUD_SIZE, STRUCT_PAGE_MAX_SHIFT, VMEMMAP_CHUNKS_PER_PMD,
)
from hotmem.defs import __PAGE_OFFSET_BASE_L4  # noqa: F401
from hotmem.defs import __PAGE_OFFSET_BASE_L5  # noqa: F401
from hotmem.defs import __VMEMMAP_BASE_L4  # noqa: F401
from hotmem.defs import __VMEMMAP_BASE_L5  # noqa: F401

__all__ = [
    "PageTables", "PageTableGeometry",
    "_PAGE_PRESENT", "_PAGE_RW", "_PAGE_USER", "_PAGE_PWT", "_PAGE_PCD", "_PAGE_ACCESSED",
    "_PAGE_DIRTY", "_PAGE_PSE", "_PAGE_GLOBAL", "_PAGE_PROTNONE", "_PAGE_NX",
    "_PAGE_KNL_ERRATUM_MASK", "PAGE_KERNEL", "PAGE_KERNEL_LARGE", "_KERNPG_TABLE", "_PAGE_TABLE",
    "PTE_PFN_MASK", "PHYSICAL_PMD_PAGE_MASK", "PHYSICAL_PUD_PAGE_MASK", "PAGE_UNUSED",
    "__PAGE_OFFSET_BASE_L4", "__PAGE_OFFSET_BASE_L5", "__VMEMMAP_BASE_L4", "__VMEMMAP_BASE_L5",
    "PGTABLE_LEVEL_NAMES", "NO_BLOCK_MAPPINGS", "NO_CONT_MAPPINGS", "NO_EXEC_MAPPINGS",
    "MAX_TABLE_ENTRIES",
]


class PageTables(_Arm64Tables):
    """Models init_mm.pgd and the kernel page-table code of Linux 6.1 (x86-64 and arm64).

    ``PageTables(levels, pgd_pfn)``: x86-64 4- or 5-level paging, the PGD page being the model
    page ``pgd_pfn``. With 4 levels the P4D is folded: a PGD entry points straight at a PUD table.
    ``PageTables(levels, pgd_pfn, geometry=g)``: any :class:`PageTableGeometry` with ``levels``
    unfolded levels.
    Callbacks: ``alloc_table(level_name, node) -> pfn | -1`` (a zeroed table page of that level),
    ``alloc_block(nr_pages, node) -> first pfn | -1`` (vmemmap_alloc_block_buf; 512 for an x86 PMD
    leaf, 1 for a base page), ``free_table(pfn, level_name)`` (free_pagetable of a table page),
    ``free_data(pfn, nr_pages)`` (free_pagetable / free_hugepage_table of mapped data).
    The hot-plug paths pass the sources of a :class:`PgtableAllocator` (hotmem/_py/pgalloc.py) as
    the allocators, which the compiled walks call in C; boot passes Python callables (memblock).
    """
