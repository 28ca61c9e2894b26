# init_mm's kernel page tables, Linux 6.1: x86-64 and arm64 (compiled). Twin:
# hotmem/_py/pgtable.py. PageTables is a chain of cdef classes, one include per concept, each
# inheriting the cdef attributes and cdef methods of the one before (included in this order
# by hotmem/_core.pyx, after pgalloc.pxi whose PgtableAllocSource the walks take from):
#   pgtable_store.pxi  _TableStore   state, table pages, checks, generic vmemmap populate,
#                                    deferred frees, inspection
#   pgtable_x86.pxi    _X86Tables    arch/x86/mm/init_64.c
#   pgtable_arm64.pxi  _Arm64Tables  arch/arm64/mm/mmu.c
#   pgtable.pxi        PageTables


cdef class PageTables(_Arm64Tables):
    """Models init_mm.pgd and the kernel page-table code of Linux 6.1 (x86-64 and arm64).

    Compiled twin of hotmem/_py/pgtable.py:PageTables (same methods, results and state).
    """
