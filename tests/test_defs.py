"""hotmem/defs.py is the one source of the definitions the compiled core and the twin share.

hotmem/defs.pxd (the C face the compiled core cimports) is generated from it by setup.py; these
tests check that the committed .pxd is that generation, that the built core holds the same
values, and that both backends export the very objects of hotmem.defs.
"""
import pathlib
import re

import numpy as np
import pytest

import hotmem.defs as defs
from conftest import compiled_core, python_core

ROOT = pathlib.Path(__file__).resolve().parents[1]
M64 = (1 << 64) - 1


def test_pxd_is_generated_from_defs():
    assert (ROOT / "hotmem" / "defs.pxd").read_text() == defs.pxd_source()


def test_compiled_core_holds_the_python_values():
    c = compiled_core().c_defs()
    expected = {k: v & M64 for k, v in defs.c_constants()}
    expected["sizeof(page_t)"] = defs.PAGE_DTYPE.itemsize
    assert c == expected


def test_a_few_values_by_hand():
    # include/linux/mmzone.h, page-flags.h (6.1); arch/x86/include/asm/pgtable_types.h
    assert (defs.MIGRATE_UNMOVABLE, defs.MIGRATE_MOVABLE, defs.MIGRATE_RECLAIMABLE,
            defs.MIGRATE_ISOLATE, defs.MIGRATE_TYPES) == (0, 1, 2, 4, 5)
    assert defs.NR_PCP_LISTS == 3 * (3 + 1) + 2
    assert defs.PG_reserved == 12 and defs.NR_PAGEFLAGS == 25
    assert defs.PAGE_KERNEL == 0x8000000000000163          # P | RW | A | D | G | NX
    assert defs.PAGE_KERNEL_LARGE == 0x80000000000001E3    # | PSE
    assert defs.PTE_PFN_MASK == 0x000FFFFFFFFFF000
    assert defs.PAGE_DTYPE.itemsize == 24


@pytest.mark.parametrize("load", [compiled_core, python_core])
def test_backends_export_the_defs_objects(load):
    core = load()
    for name in ("PAGE_DTYPE", "PageTableGeometry", "FALLBACKS", "MIGRATE_MOVABLE", "PG_reserved",
                 "SECTION_IS_ONLINE", "KPF_BUDDY", "MEMORY_OFFLINE", "PAGE_KERNEL",
                 "PGTABLE_LEVEL_NAMES", "NO_BLOCK_MAPPINGS", "NR_PCP_LISTS"):
        assert getattr(core, name) is getattr(defs, name), name
    assert not hasattr(core, "zone_batchsize") and not hasattr(core, "zone_highsize")


def test_no_constant_is_defined_twice():
    """The core and the twin take their shared constants from hotmem.defs, never define them."""
    names = {k for k, _ in defs.c_constants()} | {"PAGE_DTYPE", "FALLBACKS"}
    files = sorted((ROOT / "hotmem" / "_py").glob("*.py")) + \
        sorted((ROOT / "hotmem" / "_cy").glob("*.pxi"))
    for f in files:
        for line in f.read_text().splitlines():
            m = re.match(r"\s*(?:cdef\s+\w+\s+)?([A-Za-z_]\w*)\s*=", line)
            if m and not line.startswith((" ", "\t")):
                assert m.group(1) not in names, f"{f.name}: {line.strip()}"
    assert np.dtype(defs.PAGE_DTYPE) == defs.PAGE_DTYPE
