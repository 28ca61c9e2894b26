# cython: language_level=3
"""hotmem's compiled core: the loops that touch every page or every page-table entry.

Each concept lives in its own include file under ``hotmem/_cy/``; ``hotmem/_core_py.py``
re-exports the pure-Python twin of every class and function defined here, with the same
names, signatures and results. The constants and record layouts both share are defined once,
in ``hotmem/defs.py``; this core cimports their C face, ``hotmem/defs.pxd`` (generated from it
by setup.py).
"""
include "_cy/common.pxi"
include "_cy/altmap.pxi"
include "_cy/pattern.pxi"
include "_cy/memmap.pxi"
include "_cy/scan.pxi"
include "_cy/pa_containers.pxi"
include "_cy/buddy.pxi"
include "_cy/pcp.pxi"
include "_cy/page_isolation.pxi"
include "_cy/pgalloc.pxi"
include "_cy/pgtable_store.pxi"
include "_cy/pgtable_x86.pxi"
include "_cy/pgtable_arm64.pxi"
include "_cy/pgtable.pxi"
