"""init_mm's kernel page tables (arch/x86/mm/init_64.c, mm/sparse-vmemmap.c; Linux 6.1) on both
backends.

Expected numbers come from the x86-64 geometry written out here (512 entries per table, 64-byte
struct pages, the kernel's bit values from arch/x86/include/asm/pgtable_types.h) and from hand
traces of the 6.1 functions -- never from the model.
"""
import errno
import importlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hotmem.errors import HotplugError

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
PAGE, PMD, PUD = 4 * KiB, 2 * MiB, GiB
STRUCT_PAGE = 64

# arch/x86/include/asm/pgtable_types.h (6.1)
P, RW, USR, A, D, PSE, G, NX = 1, 2, 4, 0x20, 0x40, 0x80, 0x100, 1 << 63
K_PAGE_KERNEL = P | RW | A | NX | D | G
K_PAGE_KERNEL_LARGE = K_PAGE_KERNEL | PSE
K_PAGE_TABLE = P | RW | USR | A | D          # asm/pgalloc.h: p?d_populate writes _PAGE_TABLE
# page_64_types.h / pgtable_64_types.h
VMEMMAP = {4: 0xFFFFEA0000000000, 5: 0xFFD4000000000000}
PAGE_OFFSET = {4: 0xFFFF888000000000, 5: 0xFF11000000000000}


def vmemmap_va(levels, ram_addr):
    """Address of the struct page of physical address ram_addr (pfn * 64 past VMEMMAP_START)."""
    return VMEMMAP[levels] + ram_addr // PAGE * STRUCT_PAGE


class Env:
    """Deterministic allocators that log every call the page-table code makes."""

    def __init__(self, table_pfn=0x10000, block_pfn=0x200000, page_pfn=0x800000,
                 tables_ok=None, blocks_ok=None, pages_ok=None):
        self.next_table, self.next_block, self.next_page = table_pfn, block_pfn, page_pfn
        self.tables_ok, self.blocks_ok, self.pages_ok = tables_ok, blocks_ok, pages_ok
        self.log = []

    def _ok(self, budget_name):
        budget = getattr(self, budget_name)
        if budget is None:
            return True
        if budget <= 0:
            return False
        setattr(self, budget_name, budget - 1)
        return True

    def alloc_table(self, level, node):
        if not self._ok("tables_ok"):
            self.log.append(("alloc_table", level, -1))
            return -1
        pfn = self.next_table
        self.next_table += 1
        self.log.append(("alloc_table", level, pfn))
        return pfn

    def alloc_block(self, nr, node):
        if not self._ok("blocks_ok"):
            self.log.append(("alloc_block", nr, -1))
            return -1
        pfn = self.next_block
        self.next_block += nr
        self.log.append(("alloc_block", nr, pfn))
        return pfn

    def alloc_page(self, nr, node):
        assert nr == 1
        if not self._ok("pages_ok"):
            self.log.append(("alloc_page", -1))
            return -1
        pfn = self.next_page
        self.next_page += 1
        self.log.append(("alloc_page", pfn))
        return pfn

    def free_table(self, pfn, level):
        self.log.append(("free_table", pfn, level))

    def free_data(self, pfn, nr):
        self.log.append(("free_data", pfn, nr))

    def calls(self, kind):
        return [c for c in self.log if c[0] == kind]


def populate_huge(pt, env, start, end, fallback=False, node=0):
    return pt.vmemmap_populate_hugepages(start, end, node, env.alloc_block, env.alloc_table,
                                         env.alloc_page if fallback else None)


def remove(pt, env, start, end, direct=False, free_pud=False):
    pt.remove_pagetable(start, end, direct, env.free_data, env.free_table, free_pud)


def nr_tables(pt):
    return {lvl: pt.nr_tables(lvl) for lvl in ("PGD", "P4D", "PUD", "PMD", "PTE")}


# ---------------------------------------------------------------------------------- vmemmap
def test_vmemmap_for_64G_needs_one_pmd_table_and_512_leaves(core):
    pt, env = core.PageTables(4, 0x1000), Env()
    start, end = vmemmap_va(4, 0), vmemmap_va(4, 64 * GiB)
    assert end - start == GiB                      # 16 Mi struct pages x 64 B
    assert populate_huge(pt, env, start, end) == 0
    # fresh tables: the PGD entry is empty -> a PUD table (P4D folded), then one PMD table
    assert env.calls("alloc_table") == [("alloc_table", "PUD", 0x10000),
                                        ("alloc_table", "PMD", 0x10001)]
    assert env.calls("alloc_block") == [("alloc_block", 512, 0x200000 + 512 * k)
                                        for k in range(512)]
    assert nr_tables(pt) == {"PGD": 1, "P4D": 0, "PUD": 1, "PMD": 1, "PTE": 0}
    # PGD index of 0xffffea0000000000 is bits 39..47 = 0x1d4; PUD index 0
    pgd = pt.entries(0x1000)
    assert int(pgd[0x1D4]) == (0x10000 << 12) | K_PAGE_TABLE
    assert np.count_nonzero(pgd) == 1
    pmd = pt.entries(0x10001)
    expect = [((0x200000 + 512 * k) << 12) | K_PAGE_KERNEL_LARGE for k in range(512)]
    assert [int(e) for e in pmd] == expect
    assert pt.lookup(start + 5 * PMD + 123 * 64) == ("PMD", expect[5])

    # the next 128 MiB of RAM at 64 GiB: its memmap is in the next GiB of vmemmap -> PMD table 2
    assert populate_huge(pt, env, vmemmap_va(4, 64 * GiB), vmemmap_va(4, 64 * GiB + 128 * MiB)) == 0
    assert env.calls("alloc_table")[2:] == [("alloc_table", "PMD", 0x10002)]
    assert nr_tables(pt)["PMD"] == 2 and nr_tables(pt)["PUD"] == 1
    assert len(env.calls("alloc_block")) == 513

    # 32 TiB of RAM = 512 GiB of vmemmap = a whole PUD table: the next PGD entry gets a new one
    n = len(env.log)
    assert populate_huge(pt, env, vmemmap_va(4, 32 * TiB), vmemmap_va(4, 32 * TiB + 128 * MiB)) == 0
    assert [c for c in env.log[n:] if c[0] == "alloc_table"] == [
        ("alloc_table", "PUD", 0x10003), ("alloc_table", "PMD", 0x10004)]
    assert int(pt.entries(0x1000)[0x1D5]) == (0x10003 << 12) | K_PAGE_TABLE
    walk = pt.walk(vmemmap_va(4, 32 * TiB))
    assert [(w[0], w[1], w[2]) for w in walk] == [("PGD", 0x1000, 0x1D5), ("PUD", 0x10003, 0),
                                                  ("PMD", 0x10004, 0)]


def test_vmemmap_5level_has_a_real_p4d(core):
    pt, env = core.PageTables(5, 0x1000), Env()
    assert populate_huge(pt, env, vmemmap_va(5, 0), vmemmap_va(5, 64 * GiB)) == 0
    assert [c[1] for c in env.calls("alloc_table")] == ["P4D", "PUD", "PMD"]
    assert nr_tables(pt) == {"PGD": 1, "P4D": 1, "PUD": 1, "PMD": 1, "PTE": 0}
    # PGD index of 0xffd4000000000000 is bits 48..56 = 0x1d4; P4D index 0
    assert [(w[0], w[2]) for w in pt.walk(vmemmap_va(5, 0))] == [
        ("PGD", 0x1D4), ("P4D", 0), ("PUD", 0), ("PMD", 0)]
    # 32 TiB boundary: next P4D entry (512 GiB of VA each) -> a new PUD table, the P4D is reused
    n = len(env.log)
    assert populate_huge(pt, env, vmemmap_va(5, 32 * TiB), vmemmap_va(5, 32 * TiB + 2 * GiB)) == 0
    assert [c[1] for c in env.log[n:] if c[0] == "alloc_table"] == ["PUD", "PMD"]
    assert nr_tables(pt)["P4D"] == 1 and nr_tables(pt)["PUD"] == 2


def test_block_failure_without_fallback_is_enomem_and_keeps_partial_state(core):
    pt, env = core.PageTables(4, 0x1000), Env(blocks_ok=3)
    start = vmemmap_va(4, 0)
    assert populate_huge(pt, env, start, start + 8 * PMD) == -errno.ENOMEM
    # 3 leaves were set, the 4th block failed and nothing was undone (6.1 does not unwind)
    assert len(env.calls("alloc_block")) == 4
    assert nr_tables(pt)["PMD"] == 1 and nr_tables(pt)["PTE"] == 0
    assert [pt.lookup(start + k * PMD) is not None for k in range(5)] == [True] * 3 + [False] * 2
    assert env.calls("alloc_page") == []


def test_block_failure_with_fallback_uses_base_pages(core):
    pt, env = core.PageTables(4, 0x1000), Env(blocks_ok=0)
    start = vmemmap_va(4, 4 * GiB)
    assert populate_huge(pt, env, start, start + 2 * PMD, fallback=True) == 0
    # per 2 MiB: one PTE table and 512 data pages, PAGE_KERNEL each
    assert len(env.calls("alloc_page")) == 2 * 512
    assert [c[1] for c in env.calls("alloc_table")] == ["PUD", "PMD", "PTE", "PTE"]
    assert nr_tables(pt)["PTE"] == 2
    pte_tables = pt.table_pfns("PTE")
    assert [int(e) for e in pt.entries(pte_tables[1])] == [
        ((0x800000 + 512 + k) << 12) | K_PAGE_KERNEL for k in range(512)]
    assert pt.lookup(start + PMD + 4 * PAGE) == ("PTE",
                                                 ((0x800000 + 512 + 4) << 12) | K_PAGE_KERNEL)
    # removal: every data page goes back one by one, then the PTE tables and the PMD table
    env.log.clear()
    remove(pt, env, start, start + 2 * PMD)
    assert env.calls("free_data") == [("free_data", 0x800000 + k, 1) for k in range(1024)]
    assert env.calls("free_table") == [("free_table", pte_tables[0], "PTE"),
                                       ("free_table", pte_tables[1], "PTE"),
                                       ("free_table", 0x10001, "PMD")]
    assert nr_tables(pt) == {"PGD": 1, "P4D": 0, "PUD": 1, "PMD": 0, "PTE": 0}


def test_existing_pte_table_takes_base_pages_from_alloc_page(core):
    pt, env = core.PageTables(4, 0x1000), Env()
    start = vmemmap_va(4, 0)
    assert pt.vmemmap_populate_basepages(start, start + 8 * PAGE, 0, env.alloc_page,
                                         env.alloc_table) == 0
    assert [c[1] for c in env.calls("alloc_table")] == ["PUD", "PMD", "PTE"]
    # that PMD is now a table: the huge path maps the rest of it with base pages
    with pytest.raises(HotplugError) as e:          # no allocator for them: refused up front
        populate_huge(pt, env, start, start + PMD)
    assert e.value.errno == errno.EINVAL
    n = len(env.log)
    assert pt.vmemmap_populate_hugepages(start, start + PMD, 0, env.alloc_block, env.alloc_table,
                                         None, env.alloc_page) == 0
    assert env.calls("alloc_block") == []
    assert len([c for c in env.log[n:] if c[0] == "alloc_page"]) == 512 - 8


def test_removal_frees_only_empty_tables(core):
    pt, env = core.PageTables(4, 0x1000), Env()
    lo = vmemmap_va(4, 0)
    populate_huge(pt, env, lo, vmemmap_va(4, 64 * GiB))
    populate_huge(pt, env, vmemmap_va(4, 64 * GiB), vmemmap_va(4, 64 * GiB + 128 * MiB))
    env.log.clear()
    remove(pt, env, vmemmap_va(4, 64 * GiB), vmemmap_va(4, 64 * GiB + 128 * MiB))
    assert env.log == [("free_data", 0x200000 + 512 * 512, 512), ("free_table", 0x10002, "PMD")]
    env.log.clear()
    remove(pt, env, lo, lo + 16 * PMD)             # part of the first GiB: table stays
    assert env.calls("free_table") == [] and len(env.calls("free_data")) == 16
    env.log.clear()
    remove(pt, env, lo, vmemmap_va(4, 64 * GiB), free_pud=False)
    assert len(env.calls("free_data")) == 512 - 16
    assert env.calls("free_table") == [("free_table", 0x10001, "PMD")]
    # 4-level x86 never frees PUD tables
    assert nr_tables(pt) == {"PGD": 1, "P4D": 0, "PUD": 1, "PMD": 0, "PTE": 0}
    assert int(pt.entries(0x1000)[0x1D4]) == (0x10000 << 12) | K_PAGE_TABLE


def test_5level_removal_frees_pud_tables_only_when_asked_and_never_p4d(core):
    for free_pud in (False, True):
        pt, env = core.PageTables(5, 0x1000), Env()
        lo, hi = vmemmap_va(5, 0), vmemmap_va(5, 128 * MiB)
        populate_huge(pt, env, lo, hi)
        env.log.clear()
        remove(pt, env, lo, hi, free_pud=free_pud)
        expect = [("free_data", 0x200000, 512), ("free_table", 0x10002, "PMD")]
        if free_pud:
            expect.append(("free_table", 0x10001, "PUD"))
        assert env.log == expect
        assert nr_tables(pt) == {"PGD": 1, "P4D": 1, "PUD": 0 if free_pud else 1, "PMD": 0,
                                 "PTE": 0}
        assert int(pt.entries(0x1000)[0x1D4]) == (0x10000 << 12) | K_PAGE_TABLE


def test_altmap_style_free_goes_through_free_data(core):
    # vmemmap_free with an altmap: free_hugepage_table -> vmem_altmap_free(512); the caller
    # tells that apart from free_pagetable by the pfn it handed out
    pt, env = core.PageTables(4, 0x1000), Env(block_pfn=0x100000)
    va = vmemmap_va(4, 4 * GiB)                        # a 128 MiB block at 4 GiB
    assert va == 0xFFFFEA0004000000
    populate_huge(pt, env, va, va + PMD)
    assert pt.lookup(va) == ("PMD", (0x100000 << 12) | K_PAGE_KERNEL_LARGE)
    env.log.clear()
    remove(pt, env, va, va + PMD)
    assert env.log == [("free_data", 0x100000, 512), ("free_table", 0x10001, "PMD")]


# ---------------------------------------------------------------------------------- sub-PMD
def test_two_halves_of_one_pmd(core):
    pt, env = core.PageTables(4, 0x1000), Env()
    p = vmemmap_va(4, 8 * GiB)
    # first half: new leaf, end unaligned -> unused_pmd_start = end (vmemmap_use_new_sub_pmd)
    assert populate_huge(pt, env, p, p + MiB) == 0
    assert len(env.calls("alloc_block")) == 1 and pt.unused_pmd_start == p + MiB
    # second half directly follows: the leaf is reused, unused_pmd_start consumed (end aligned)
    assert populate_huge(pt, env, p + MiB, p + PMD) == 0
    assert len(env.calls("alloc_block")) == 1 and pt.unused_pmd_start == 0
    env.log.clear()
    remove(pt, env, p, p + MiB)                 # first half 0xFD, second half in use: kept
    assert env.log == [] and pt.lookup(p + MiB) is not None
    remove(pt, env, p + MiB, p + PMD)           # now all 2 MiB read PAGE_UNUSED: freed
    assert env.log == [("free_data", 0x200000, 512), ("free_table", 0x10001, "PMD")]
    assert pt.lookup(p) is None


def test_half_then_other_pmd_flushes_the_unused_tail(core):
    pt, env = core.PageTables(4, 0x1000), Env()
    p, q = vmemmap_va(4, 8 * GiB), vmemmap_va(4, 9 * GiB)
    populate_huge(pt, env, p, p + MiB)
    populate_huge(pt, env, q, q + PMD)          # aligned new leaf: no sub-PMD call, tail kept
    assert pt.unused_pmd_start == p + MiB
    populate_huge(pt, env, q + PMD, q + 2 * PMD + MiB)   # new leaf, end unaligned
    assert pt.unused_pmd_start == q + 2 * PMD + MiB          # flushed p's tail first
    env.log.clear()
    remove(pt, env, p, p + MiB)                 # p: head removed, tail was flushed -> freed
    assert env.calls("free_data") == [("free_data", 0x200000, 512)]


def test_second_half_first_then_first_half(core):
    pt, env = core.PageTables(4, 0x1000), Env()
    p = vmemmap_va(4, 8 * GiB)
    # new leaf for [p+1M, p+2M): [p, p+1M) filled with 0xFD, struct page at p+1M zeroed
    populate_huge(pt, env, p + MiB, p + PMD)
    assert pt.unused_pmd_start == 0
    # [p, p+1M): leaf exists, unused_pmd_start != p -> flush (none) and zero the page at p
    populate_huge(pt, env, p, p + MiB)
    assert len(env.calls("alloc_block")) == 1
    env.log.clear()
    remove(pt, env, p + MiB, p + PMD)           # the zeroed struct page at p keeps it
    assert env.calls("free_data") == []
    remove(pt, env, p, p + MiB)
    assert env.calls("free_data") == [("free_data", 0x200000, 512)]


def test_lone_half_removed_frees_the_leaf(core):
    pt, env = core.PageTables(4, 0x1000), Env()
    p = vmemmap_va(4, 8 * GiB)
    populate_huge(pt, env, p, p + MiB)
    env.log.clear()
    # vmemmap_pmd_is_unused flushes [p+1M, p+2M) first, then fills [p, p+1M): all 0xFD
    remove(pt, env, p, p + MiB)
    assert env.calls("free_data") == [("free_data", 0x200000, 512)]
    assert pt.unused_pmd_start == 0


# ---------------------------------------------------------------------------------- direct map
def boot_direct_map(core, levels=4, env=None):
    from hotmem.arch.x86_init import init_memory_mapping
    pt, env = core.PageTables(levels, 0x1000), env or Env()
    init_memory_mapping(pt, 0, GiB, pse=True, gbpages=False, alloc_table=env.alloc_table, node=0)
    return pt, env


def test_direct_map_128M_at_4G(core):
    from hotmem.arch.x86_init import init_memory_mapping
    pt, env = boot_direct_map(core)
    assert pt.direct_pages_count("2M") == 512       # [0, 1G) with 2M pages
    assert [c[1] for c in env.calls("alloc_table")] == ["PUD", "PMD"]
    env.log.clear()
    ret = init_memory_mapping(pt, 4 * GiB, 4 * GiB + 128 * MiB, pse=True, gbpages=False,
                              alloc_table=env.alloc_table, node=0)
    assert ret == (4 * GiB + 128 * MiB) >> 12
    # PUD entry 4 of the direct map's PUD table was empty -> exactly one PMD table, 64 leaves
    assert env.log == [("alloc_table", "PMD", 0x10002)]
    assert pt.direct_pages_count("2M") == 512 + 64
    assert pt.direct_pages_count("4K") == 0 and pt.direct_pages_count("1G") == 0
    va = PAGE_OFFSET[4] + 4 * GiB
    assert [(w[0], w[1], w[2]) for w in pt.walk(va)] == [("PGD", 0x1000, 273), ("PUD", 0x10000, 4),
                                                         ("PMD", 0x10002, 0)]
    assert pt.lookup(va + 3 * PMD) == ("PMD", (4 * GiB + 3 * PMD) | K_PAGE_KERNEL_LARGE)
    # a second DIMM in the same GiB allocates nothing
    env.log.clear()
    init_memory_mapping(pt, 4 * GiB + 128 * MiB, 4 * GiB + 256 * MiB, pse=True, gbpages=False,
                        alloc_table=env.alloc_table, node=0)
    assert env.log == [] and pt.direct_pages_count("2M") == 512 + 128
    # kernel_physical_mapping_remove: leaves cleared, not freed; last one out frees the table
    remove(pt, env, va + 128 * MiB, va + 256 * MiB, direct=True)
    assert env.log == [] and pt.direct_pages_count("2M") == 512 + 64
    remove(pt, env, va, va + 128 * MiB, direct=True)
    assert env.log == [("free_table", 0x10002, "PMD")]
    assert pt.direct_pages_count("2M") == 512 and nr_tables(pt)["PMD"] == 1


def test_direct_map_gbpages_uses_a_1G_leaf(core):
    from hotmem.arch.x86_init import init_memory_mapping
    pt, env = boot_direct_map(core)
    env.log.clear()
    init_memory_mapping(pt, 4 * GiB, 5 * GiB, pse=True, gbpages=True,
                        alloc_table=env.alloc_table, node=0)
    assert env.log == [] and pt.direct_pages_count("1G") == 1
    assert pt.lookup(PAGE_OFFSET[4] + 4 * GiB + 12345) == ("PUD", 4 * GiB | K_PAGE_KERNEL_LARGE)
    # the same DIMM size without gbpages needs a PMD table and 512 leaves
    init_memory_mapping(pt, 6 * GiB, 7 * GiB, pse=True, gbpages=False,
                        alloc_table=env.alloc_table, node=0)
    assert env.log == [("alloc_table", "PMD", 0x10002)]
    assert pt.direct_pages_count("2M") == 512 + 512
    remove(pt, env, PAGE_OFFSET[4] + 4 * GiB, PAGE_OFFSET[4] + 5 * GiB, direct=True)
    assert pt.direct_pages_count("1G") == 0 and pt.lookup(PAGE_OFFSET[4] + 4 * GiB) is None


def test_direct_map_4k_run_and_the_below_1G_check(core):
    pt, env = boot_direct_map(core)
    env.log.clear()
    # one 4K run at 4 GiB + 4 KiB: a PMD table and a PTE table; the kernel returns paddr_last
    ret = pt.kernel_physical_mapping_init(4 * GiB + PAGE, 4 * GiB + 3 * PAGE, PAGE,
                                          env.alloc_table, 0)
    assert ret == 4 * GiB + 3 * PAGE
    assert [c[1] for c in env.log] == ["PMD", "PTE"]
    assert pt.direct_pages_count("4K") == 2
    va = PAGE_OFFSET[4] + 4 * GiB + PAGE
    assert pt.lookup(va) == ("PTE", (4 * GiB + PAGE) | K_PAGE_KERNEL)
    env.log.clear()
    remove(pt, env, va, va + 2 * PAGE, direct=True)
    assert pt.direct_pages_count("4K") == 0
    assert [c[2] for c in env.log] == ["PTE", "PMD"]
    # remove_pte_table's "below 1 GiB" test adds pte_val() (with NX, bit 63) to the virtual
    # address: for a 4K mapping of physical 0x200000 that sum is far above 1 GiB, so the walk
    # does not stop, the PTE is cleared and DirectMap4k goes back down.
    pt2, env2 = core.PageTables(4, 0x1000), Env()
    pt2.kernel_physical_mapping_init(0x200000, 0x201000, PAGE, env2.alloc_table, 0)
    assert pt2.direct_pages_count("4K") == 1
    v = PAGE_OFFSET[4] + 0x200000
    assert ((0x200000 | K_PAGE_KERNEL) + v) % (1 << 64) >= GiB
    remove(pt2, env2, v, v + PAGE, direct=True)
    assert pt2.lookup(v) is None and pt2.direct_pages_count("4K") == 0


def test_existing_2M_leaf_is_reused_or_split(core):
    pt, env = boot_direct_map(core)
    env.log.clear()
    # 2M run over a mapped 2M leaf: reused, nothing counted
    assert pt.kernel_physical_mapping_init(0, PMD, PMD, env.alloc_table, 0) == PMD
    assert env.log == [] and pt.direct_pages_count("2M") == 512
    # 4K run over it: phys_pmd_init splits (new PTE table with the leaf's flags minus PSE) and
    # maps only the run; the rest of the 2 MiB is left unmapped after boot
    assert pt.kernel_physical_mapping_init(PAGE, 3 * PAGE, PAGE, env.alloc_table, 0) == 3 * PAGE
    assert [c[1] for c in env.log] == ["PTE"]
    assert pt.direct_pages_count("4K") == 2 and pt.direct_pages_count("2M") == 512
    assert pt.lookup(PAGE_OFFSET[4] + PAGE) == ("PTE", PAGE | K_PAGE_KERNEL)
    assert pt.lookup(PAGE_OFFSET[4]) is None


def test_direct_map_5level(core):
    from hotmem.arch.x86_init import init_memory_mapping
    pt, env = core.PageTables(5, 0x1000), Env()
    init_memory_mapping(pt, 4 * GiB, 4 * GiB + 128 * MiB, pse=True, gbpages=False,
                        alloc_table=env.alloc_table, node=0)
    assert [c[1] for c in env.log] == ["P4D", "PUD", "PMD"]
    va = PAGE_OFFSET[5] + 4 * GiB
    assert [(w[0], w[2]) for w in pt.walk(va)] == [("PGD", 0x111), ("P4D", 0), ("PUD", 4),
                                                   ("PMD", 0)]
    env.log.clear()
    remove(pt, env, va, va + 128 * MiB, direct=True, free_pud=True)
    assert env.log == [("free_table", 0x10002, "PMD"), ("free_table", 0x10001, "PUD")]
    assert nr_tables(pt)["P4D"] == 1


def test_table_allocation_failure_in_direct_map_raises_enomem(core):
    pt, env = core.PageTables(4, 0x1000), Env(tables_ok=1)
    with pytest.raises(HotplugError) as e:
        pt.kernel_physical_mapping_init(4 * GiB, 4 * GiB + PMD, PMD, env.alloc_table, 0)
    assert e.value.errno == errno.ENOMEM
    # the PUD table was allocated and filled from, but never linked: the kernel oopses first
    assert env.log == [("alloc_table", "PUD", 0x10000), ("alloc_table", "PMD", -1)]
    assert nr_tables(pt)["PUD"] == 1
    assert not pt.entries(0x1000).any()
    assert pt.direct_pages_count("2M") == 0


def test_partial_removal_of_a_1G_leaf_follows_the_kernel_quirk(core):
    from hotmem.arch.x86_init import init_memory_mapping
    pt, env = core.PageTables(4, 0x1000), Env()
    init_memory_mapping(pt, 4 * GiB, 5 * GiB, pse=True, gbpages=True,
                        alloc_table=env.alloc_table, node=0)
    env.log.clear()
    va = PAGE_OFFSET[4] + 4 * GiB
    remove(pt, env, va, va + 128 * MiB, direct=True)
    # pmd_offset() on the leaf reads its first RAM page as a PMD table (modelled as zeros):
    # free_pmd_table frees that page and clears the whole 1 GiB; DirectMap1G is not lowered
    assert env.log == [("free_table", (4 * GiB) >> 12, "PMD")]
    assert pt.lookup(va + 512 * MiB) is None
    assert pt.direct_pages_count("1G") == 1


# ---------------------------------------------------------------------------------- arguments
BAD_VMEMMAP_RANGES = [
    (0x100, 2 * MiB),                        # unaligned start (relative)
    (0, 2 * MiB + 0x10),                     # unaligned end
    (2 * MiB, 2 * MiB),                      # empty
    (4 * MiB, 2 * MiB),                      # end < start
]


@pytest.mark.parametrize("levels", [4, 5])
def test_bad_arguments_change_nothing(core, levels):
    pt, env = core.PageTables(levels, 0x1000), Env()
    base = vmemmap_va(levels, 0)
    populate_huge(pt, env, base, base + 4 * PMD)
    from hotmem.arch.x86_init import init_memory_mapping
    init_memory_mapping(pt, GiB, 2 * GiB, pse=True, gbpages=True, alloc_table=env.alloc_table,
                        node=0)
    before, nlog = pt.state(), len(env.log)
    calls = []
    for lo, hi in BAD_VMEMMAP_RANGES:
        calls += [
            lambda lo=lo, hi=hi: populate_huge(pt, env, base + lo, base + hi),
            lambda lo=lo, hi=hi: pt.vmemmap_populate_basepages(base + lo, base + hi, 0,
                                                               env.alloc_page, env.alloc_table),
            lambda lo=lo, hi=hi: remove(pt, env, base + lo, base + hi),
            lambda lo=lo, hi=hi: pt.kernel_physical_mapping_init(lo, hi, PMD, env.alloc_table,
                                                                 0),
        ]
    user = 0x7F0000000000
    calls += [
        lambda: populate_huge(pt, env, user, user + PMD),                 # not a kernel address
        lambda: remove(pt, env, 0x1000, 0x3000),
        lambda: pt.vmemmap_populate_basepages(0, PAGE, 0, env.alloc_page, env.alloc_table),
        # basepages over a PMD leaf / huge populate over a 1G leaf: the kernel would walk data
        lambda: pt.vmemmap_populate_basepages(base, base + PAGE, 0, env.alloc_page,
                                              env.alloc_table),
        lambda: populate_huge(pt, env, PAGE_OFFSET[levels] + GiB, PAGE_OFFSET[levels] + GiB + PMD),
        lambda: pt.kernel_physical_mapping_init(0, PAGE, 8192, env.alloc_table, 0),
        lambda: pt.kernel_physical_mapping_init(PAGE, PMD + PAGE, PMD, env.alloc_table, 0),
        lambda: pt.kernel_physical_mapping_init(0, (1 << (46 if levels == 4 else 52)) + PAGE,
                                                PAGE, env.alloc_table, 0),
        lambda: pt.kernel_physical_mapping_init(0, GiB, GiB, None, 0),
        lambda: pt.remove_pagetable(base, base + PMD, False, None, env.free_table, False),
        lambda: init_memory_mapping(pt, 0x800, 2 * MiB, pse=True, gbpages=False,
                                    alloc_table=env.alloc_table, node=0),
        lambda: pt.direct_pages_count("8K"),
        lambda: pt.nr_tables("PXD"),
        lambda: pt.entries(0x4242),
    ]
    for i, call in enumerate(calls):
        with pytest.raises(HotplugError) as e:
            call()
        assert e.value.errno == errno.EINVAL, i
        assert pt.state() == before, i
        assert len(env.log) == nlog, i
    with pytest.raises(HotplugError):
        core.PageTables(3, 0)


# ---------------------------------------------------------------------------------- differential
def _twin():
    return importlib.import_module("hotmem._core_py")


WIN = 4 * PMD        # the vmemmap window straddles a 1 GiB (PMD-table) boundary


def _check_invariants(pt):
    """Every linked table is a table of the next level; every table is linked at most once."""
    st_ = pt.state()
    tables = {pfn: (lvl, np.frombuffer(ent, np.uint64), np.unpackbits(np.frombuffer(
        links, np.uint8))) for pfn, lvl, ent, links in st_[2]}
    seen = set()
    for pfn, (lvl, ent, links) in tables.items():
        for i in np.flatnonzero(links):
            child = (int(ent[i]) & ((1 << 52) - 1)) >> 12
            assert int(ent[i]) & 0xFFF == K_PAGE_TABLE
            assert child in tables and child not in seen
            seen.add(child)


op_st = st.one_of(
    st.tuples(st.just("huge"), st.integers(0, WIN // PAGE - 1), st.integers(1, WIN // PAGE),
              st.integers(0, 3), st.booleans()),
    st.tuples(st.just("base"), st.integers(0, WIN // PAGE - 1), st.integers(1, 64),
              st.integers(0, 3), st.booleans()),
    st.tuples(st.just("remove"), st.integers(0, WIN // PAGE - 1), st.integers(1, WIN // PAGE),
              st.integers(0, 3), st.booleans()),
    st.tuples(st.just("kpmi"), st.integers(0, 7), st.integers(1, 4), st.integers(0, 2),
              st.booleans()),
    st.tuples(st.just("dremove"), st.integers(0, 4 * PUD // PAGE - 1),
              st.integers(1, 2 * PUD // PAGE), st.integers(0, 3), st.booleans()),
)


def _apply(core, pt, env, op, levels):
    kind, a, b, c, flag = op
    vbase = vmemmap_va(levels, 64 * GiB) - 2 * PMD
    if kind in ("huge", "base", "remove"):
        lo = vbase + a * PAGE
        hi = min(lo + b * PAGE, vbase + WIN)
        if hi <= lo:
            hi = lo + PAGE
        if kind == "huge":
            env.blocks_ok = None if c == 0 else c - 1
            return pt.vmemmap_populate_hugepages(lo, hi, 0, env.alloc_block, env.alloc_table,
                                                 env.alloc_page if flag else None,
                                                 env.alloc_page if c == 3 else None)
        if kind == "base":
            env.pages_ok = None if c == 0 else 8 * c
            return pt.vmemmap_populate_basepages(lo, hi, 0, env.alloc_page, env.alloc_table)
        return pt.remove_pagetable(lo, hi, False, env.free_data, env.free_table, flag)
    if kind == "kpmi":
        size = (PAGE, PMD, PUD)[c]
        # runs around the 1 GiB boundary at 1 GiB: 4K runs near it, 2M runs in [1G-8M, 1G+8M),
        # 1G runs at 1 GiB or 2 GiB
        if size == PAGE:
            lo = GiB - 4 * PMD + a * 4 * PMD + a * PAGE
            hi = lo + b * 8 * PAGE
        elif size == PMD:
            lo = GiB - 4 * PMD + a * PMD
            hi = lo + b * PMD
        else:
            lo = (1 + a % 2) * GiB
            hi = lo + GiB
        env.tables_ok = 2 if flag and a == 7 else None
        return pt.kernel_physical_mapping_init(lo, hi, size, env.alloc_table, 0)
    lo = PAGE_OFFSET[levels] + GiB - 4 * PMD + a * PAGE
    return pt.remove_pagetable(lo, lo + b * PAGE, True, env.free_data, env.free_table, flag)


def _run(core, pt, env, op, levels):
    try:
        return ("ok", _apply(core, pt, env, op, levels))
    except HotplugError as e:
        return ("err", e.errno)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                        HealthCheck.function_scoped_fixture])
@given(levels=st.sampled_from([4, 5]), ops=st.lists(op_st, min_size=1, max_size=8))
def test_random_sequences_match_the_twin(core, levels, ops):
    twin = _twin()
    pts = [core.PageTables(levels, 0x1000)]
    envs = [Env()]
    if core is not twin:
        pts.append(twin.PageTables(levels, 0x1000))
        envs.append(Env())
    for op in ops:
        results = [_run(core, pt, env, op, levels) for pt, env in zip(pts, envs)]
        _check_invariants(pts[0])
        if len(pts) == 2:
            assert results[0] == results[1], op
            assert envs[0].log == envs[1].log, op
            assert pts[0].state() == pts[1].state(), op
            for lvl in ("PGD", "P4D", "PUD", "PMD", "PTE"):
                assert pts[0].table_pfns(lvl) == pts[1].table_pfns(lvl)
            for k in ("4K", "2M", "1G"):
                assert pts[0].direct_pages_count(k) == pts[1].direct_pages_count(k)
