"""Page tables of other geometries (arm64 4K/16K/64K, powerpc radix 64K) and the arm64 6.1
hotplug paths (arch/arm64/mm/mmu.c: vmemmap_populate, __create_pgd_mapping, unmap_hotplug_range,
free_empty_tables, vmemmap_free, __remove_pgd_mapping) on both backends.

Expected numbers are computed here by hand from the arm64 6.1 headers (pgtable-hwdef.h: an entry
at hardware level n maps (PAGE_SHIFT - 3) * (4 - n) + 3 bits; memory.h: PAGE_OFFSET, PAGE_END,
VMEMMAP_START/END; 64-byte struct pages) and from traces of the 6.1 functions -- never from the
model. The x86-64 behaviour is covered, unchanged, by tests/test_pgtable.py.
"""
import errno

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import compiled_core, python_core
from hotmem.arch.arm64_mmu import arch_add_memory_flags, arm64_geometry, can_set_direct_map
from hotmem.arch.geometry import geometry_from_profile
from hotmem.errors import HotplugError

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
STRUCT_PAGE = 64
# the model's own entry encoding (x86-style bits): present|rw|accessed|dirty|global|nx, +PSE
PAGE_KERNEL = 0x8000000000000163
PAGE_KERNEL_LARGE = PAGE_KERNEL | 0x80
PAGE_TABLE = 0x67
NO_BLOCK, NO_CONT, NO_EXEC = 1, 2, 4
PAGES_ONLY = NO_EXEC | NO_BLOCK | NO_CONT        # arch_add_memory when can_set_direct_map()
BLOCKS_OK = NO_EXEC
RAM_BASE = GiB              # QEMU virt: memstart_addr = 1 GiB for 4K, 16K and 64K pages

# Hand-derived arm64 VA_BITS=48 layouts: (level, shift, entries) and the address bases.
ARM64 = {
    12: dict(levels=(("PGD", 39, 512), ("PUD", 30, 512), ("PMD", 21, 512), ("PTE", 12, 512)),
             vmemmap=(0xFFFFFC0000000000, 0xFFFFFE0000000000), section=128 * MiB),
    14: dict(levels=(("PGD", 47, 2), ("PUD", 36, 2048), ("PMD", 25, 2048), ("PTE", 14, 2048)),
             vmemmap=(0xFFFFFF0000000000, 0xFFFFFF8000000000), section=128 * MiB),
    16: dict(levels=(("PGD", 42, 64), ("PMD", 29, 8192), ("PTE", 16, 8192)),
             vmemmap=(0xFFFFFFC000000000, 0xFFFFFFE000000000), section=512 * MiB),
}
PAGE_OFFSET, PAGE_END = 0xFFFF000000000000, 0xFFFF800000000000


def geo(ps):
    return arm64_geometry(ps, 48)


def new_pt(core, ps, pgd=0x1000):
    g = geo(ps)
    return core.PageTables(len(ARM64[ps]["levels"]), pgd, geometry=g)


def vmemmap_va(ps, phys):
    """pfn_to_page(phys >> PAGE_SHIFT) with arm64's vmemmap = VMEMMAP_START - memstart pfn."""
    return ARM64[ps]["vmemmap"][0] + ((phys - RAM_BASE) >> ps) * STRUCT_PAGE


def lm_va(phys):
    """__phys_to_virt: (phys - PHYS_OFFSET) | PAGE_OFFSET."""
    return PAGE_OFFSET + phys - RAM_BASE


def memmap_bytes(ps, size):
    return (size >> ps) * STRUCT_PAGE


class Env:
    """Deterministic allocators logging every call. Blocks come aligned to their size."""

    def __init__(self, table_pfn=0x10000, block_pfn=0x200000, page_pfn=0x800000,
                 tables_ok=None, blocks_ok=None, pages_ok=None):
        self.next_table, self.next_block, self.next_page = table_pfn, block_pfn, page_pfn
        self.tables_ok, self.blocks_ok, self.pages_ok = tables_ok, blocks_ok, pages_ok
        self.log = []

    def _ok(self, name):
        budget = getattr(self, name)
        if budget is None:
            return True
        if budget <= 0:
            return False
        setattr(self, name, budget - 1)
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
        """vmemmap_alloc_block_buf: nr > 1 a PMD block, nr == 1 a base page."""
        name = "blocks_ok" if nr > 1 else "pages_ok"
        if not self._ok(name):
            self.log.append(("alloc_block", nr, -1))
            return -1
        if nr > 1:
            pfn = -(-self.next_block // nr) * nr
            self.next_block = pfn + nr
        else:
            pfn = self.next_page
            self.next_page += 1
        self.log.append(("alloc_block", nr, pfn))
        return pfn

    def free_table(self, pfn, level):
        self.log.append(("free_table", pfn, level))

    def free_data(self, pfn, nr):
        self.log.append(("free_data", pfn, nr))

    def calls(self, kind):
        return [c for c in self.log if c[0] == kind]


def nr_tables(pt):
    return {lvl: pt.nr_tables(lvl) for lvl in ("PGD", "P4D", "PUD", "PMD", "PTE")}


def populate(pt, env, ps, start, end, node=0):
    return pt.arm64_vmemmap_populate(start, end, node, env.alloc_block, env.alloc_table,
                                     memmap_bytes(ps, ARM64[ps]["section"]))


def vfree(pt, env, start, end):
    pt.arm64_vmemmap_free(start, end, env.free_data, env.free_table)


# ---------------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("ps", [12, 14, 16])
def test_arm64_geometry_is_the_kernel_layout(core, ps):
    g = geo(ps)
    assert g.levels == ARM64[ps]["levels"]
    assert (g.page_offset, g.page_end) == (PAGE_OFFSET, PAGE_END)
    assert (g.vmemmap_start, g.vmemmap_end) == ARM64[ps]["vmemmap"]
    # the vmemmap covers the struct pages of the whole linear map: 2^47 bytes / page * 64
    assert g.vmemmap_end - g.vmemmap_start == (PAGE_END - PAGE_OFFSET) >> ps << 6
    pt = new_pt(core, ps)
    assert pt.geometry == g and pt.page_shift == ps and pt.levels == len(g.levels)
    assert pt.pgdir_shift == g.levels[0][1]
    # a table is one model page whatever its entry count: the PGD has PTRS_PER_PGD entries
    assert len(pt.entries(0x1000)) == g.levels[0][2]
    assert nr_tables(pt) == {"PGD": 1, "P4D": 0, "PUD": 0, "PMD": 0, "PTE": 0}


def test_x86_default_geometry_is_unchanged(core):
    g4 = core.PageTableGeometry.x86_64(4)
    assert g4.levels == (("PGD", 39, 512), ("PUD", 30, 512), ("PMD", 21, 512), ("PTE", 12, 512))
    pt = core.PageTables(4, 0x1000)
    assert pt.geometry == g4 and pt.state()[0] == 4 and pt.page_shift == 12
    assert core.PageTables(5, 0x1000).geometry == core.PageTableGeometry.x86_64(5)
    # the explicit x86 geometry is the same machine as the default one
    a, b = core.PageTables(4, 0x1000), core.PageTables(4, 0x1000, geometry=g4)
    va = 0xFFFFEA0004000000
    for pt in (a, b):
        assert pt.vmemmap_populate_hugepages(va, va + 2 * MiB, 0, Env().alloc_block,
                                             Env().alloc_table, None) == 0
    assert a.state() == b.state()
    assert len(a.entries(0x1000)) == 512


def test_bad_geometries_and_mismatches_are_refused(core):
    G = core.PageTableGeometry
    base = dict(name="t", arch="arm64", page_shift=12, page_offset=PAGE_OFFSET,
                page_end=PAGE_END, vmemmap_start=0xFFFFFC0000000000,
                vmemmap_end=0xFFFFFE0000000000, kernel_va_start=PAGE_OFFSET,
                max_physmem_bits=48)
    bad_levels = [
        (("PGD", 39, 512), ("PUD", 31, 512), ("PMD", 21, 512), ("PTE", 12, 512)),  # shift chain
        (("PUD", 30, 512), ("PGD", 39, 512), ("PTE", 12, 512)),                     # order
        (("PGD", 42, 64), ("PMD", 29, 8192), ("PTE", 13, 8192)),                    # PTE shift
        (("PGD", 43, 64), ("PMD", 30, 16384), ("PTE", 16, 16384)),                  # > 8192
        (("PGD", 30, 3), ("PTE", 12, 512)),                                         # not 2^n
        (("PTE", 12, 512),),                                                        # 1 level
    ]
    for levels in bad_levels:
        with pytest.raises(HotplugError) as e:
            G(levels=levels, **base)
        assert e.value.errno == errno.EINVAL
    with pytest.raises(HotplugError):
        G(levels=ARM64[12]["levels"], **dict(base, page_offset=PAGE_OFFSET + 1))
    g = geo(16)
    for levels, kw in ((4, dict(geometry=g)), (3, dict(geometry="arm64")),
                       (4, dict(geometry=G(**dict(base, arch="x86_64",
                                                  levels=ARM64[12]["levels"]))))):
        with pytest.raises(HotplugError) as e:
            core.PageTables(levels, 0x1000, **kw)
        assert e.value.errno == errno.EINVAL
    with pytest.raises(HotplugError):                      # 64K pfns: 36 bits
        core.PageTables(3, 1 << 36, geometry=g)


def test_each_arch_keeps_its_own_code(core):
    arm, x86, env = new_pt(core, 12), core.PageTables(4, 0x1000), Env()
    va = ARM64[12]["vmemmap"][0]
    before = arm.state()
    for call in (
        lambda: arm.vmemmap_populate_hugepages(va, va + 2 * MiB, 0, env.alloc_block,
                                               env.alloc_table, None),
        lambda: arm.remove_pagetable(va, va + 2 * MiB, False, env.free_data, env.free_table,
                                     False),
        lambda: arm.kernel_physical_mapping_init(0, 2 * MiB, 2 * MiB, env.alloc_table, 0),
        lambda: arm.direct_pages_count("2M"),          # arm64 has no DirectMap counters
    ):
        with pytest.raises(HotplugError) as e:
            call()
        assert e.value.errno == errno.EINVAL
    assert arm.state() == before and env.log == []
    xva = 0xFFFFEA0004000000
    for call in (
        lambda: x86.arm64_vmemmap_populate(xva, xva + 2 * MiB, 0, env.alloc_block,
                                           env.alloc_table, 2 * MiB),
        lambda: x86.arm64_create_pgd_mapping(GiB, 0xFFFF888040000000, 2 * MiB, BLOCKS_OK,
                                             env.alloc_table, 0),
        lambda: x86.arm64_unmap_hotplug_range(xva, xva + 2 * MiB, True, env.free_data),
        lambda: x86.arm64_free_empty_tables(xva, xva + 2 * MiB, 0, 0, env.free_table),
        lambda: x86.arm64_vmemmap_free(xva, xva + 2 * MiB, env.free_data, env.free_table),
        lambda: x86.arm64_remove_pgd_mapping(0xFFFF888040000000, 2 * MiB, env.free_table),
    ):
        with pytest.raises(HotplugError) as e:
            call()
        assert e.value.errno == errno.EINVAL
    assert env.log == []


# ---------------------------------------------------------------------------------- vmemmap
def test_arm64_4k_section_memmap_is_one_2M_block(core):
    pt, env = new_pt(core, 12), Env(block_pfn=0x100000)      # the block's own first pfns
    va = vmemmap_va(12, 4 * GiB)
    assert va == 0xFFFFFC0003000000                          # (0x100000 - 0x40000) * 64
    assert populate(pt, env, 12, va, va + 2 * MiB) == 0
    # fresh swapper_pg_dir: PGD entry empty -> PUD table, PUD entry empty -> PMD table (buddy,
    # vmemmap_alloc_block_zero); the 2 MiB itself from vmemmap_alloc_block_buf(PMD_SIZE)
    assert env.log == [("alloc_table", "PUD", 0x10000), ("alloc_table", "PMD", 0x10001),
                       ("alloc_block", 512, 0x100000)]
    assert nr_tables(pt) == {"PGD": 1, "P4D": 0, "PUD": 1, "PMD": 1, "PTE": 0}
    assert pt.lookup(va + 12345 * 64) == ("PMD", (0x100000 << 12) | PAGE_KERNEL_LARGE)
    i = [(va >> s) & (n - 1) for _, s, n in ARM64[12]["levels"]]
    assert [(w[0], w[2]) for w in pt.walk(va)] == [("PGD", i[0]), ("PUD", i[1]), ("PMD", i[2])]
    assert int(pt.entries(0x1000)[i[0]]) == (0x10000 << 12) | PAGE_TABLE
    # a second section of the same GiB of vmemmap needs no table
    env.log.clear()
    assert populate(pt, env, 12, va + 2 * MiB, va + 4 * MiB) == 0
    assert env.log == [("alloc_block", 512, 0x100200)]
    # vmemmap_free: the block goes to free_data (altmap: vmem_altmap_free(512)); the PMD table
    # still maps the other section
    env.log.clear()
    vfree(pt, env, va, va + 2 * MiB)
    assert env.log == [("free_data", 0x100000, 512)]
    env.log.clear()
    vfree(pt, env, va + 2 * MiB, va + 4 * MiB)
    # now empty: the PMD table (1 GiB of VA) and the PUD table (512 GiB) lie inside
    # [VMEMMAP_START, VMEMMAP_END) = 2 TiB, so free_empty_tables frees both, children first
    assert env.log == [("free_data", 0x100200, 512), ("free_table", 0x10001, "PMD"),
                       ("free_table", 0x10000, "PUD")]
    assert nr_tables(pt) == {"PGD": 1, "P4D": 0, "PUD": 0, "PMD": 0, "PTE": 0}
    assert not pt.entries(0x1000).any()


def test_arm64_4k_block_failure_falls_back_to_base_pages_from_the_same_allocator(core):
    pt, env = new_pt(core, 12), Env(blocks_ok=0)
    va = vmemmap_va(12, 4 * GiB)
    assert populate(pt, env, 12, va, va + 2 * MiB) == 0
    # vmemmap_populate_basepages(addr, next, node, altmap): one PTE table (buddy) and 512
    # base pages from vmemmap_alloc_block_buf(PAGE_SIZE, altmap) -- the altmap, on arm64
    assert env.log[:4] == [("alloc_table", "PUD", 0x10000), ("alloc_table", "PMD", 0x10001),
                           ("alloc_block", 512, -1), ("alloc_table", "PTE", 0x10002)]
    assert env.log[4:] == [("alloc_block", 1, 0x800000 + k) for k in range(512)]
    assert pt.lookup(va + 5 * 4096) == ("PTE", ((0x800000 + 5) << 12) | PAGE_KERNEL)
    # the populated PMD is a table now: a later whole-section call only verifies it
    env.log.clear()
    assert populate(pt, env, 12, va, va + 2 * MiB) == 0 and env.log == []
    vfree(pt, env, va, va + 2 * MiB)
    assert env.log == [("free_data", 0x800000 + k, 1) for k in range(512)] + [
        ("free_table", 0x10002, "PTE"), ("free_table", 0x10001, "PMD"),
        ("free_table", 0x10000, "PUD")]


def test_arm64_4k_failures_are_enomem_and_nothing_is_unwound(core):
    pt, env = new_pt(core, 12), Env(blocks_ok=1, pages_ok=3)
    va = vmemmap_va(12, 4 * GiB)
    assert populate(pt, env, 12, va, va + 2 * MiB) == 0
    assert populate(pt, env, 12, va + 2 * MiB, va + 4 * MiB) == -errno.ENOMEM
    assert env.calls("alloc_block")[-1] == ("alloc_block", 1, -1)
    assert nr_tables(pt)["PTE"] == 1 and len(env.calls("alloc_block")) == 1 + 1 + 4
    pt2, env2 = new_pt(core, 12), Env(tables_ok=1)
    assert populate(pt2, env2, 12, va, va + 2 * MiB) == -errno.ENOMEM
    assert env2.log == [("alloc_table", "PUD", 0x10000), ("alloc_table", "PMD", -1)]
    assert nr_tables(pt2)["PUD"] == 1


def test_arm64_4k_sub_section_uses_base_pages(core):
    pt, env = new_pt(core, 12), Env()
    va = vmemmap_va(12, 4 * GiB)
    # a 2 MiB sub-section's memmap is 32 KiB < the section's 2 MiB: base pages (altmap)
    assert populate(pt, env, 12, va, va + 32 * KiB) == 0
    assert [c[1] for c in env.calls("alloc_table")] == ["PUD", "PMD", "PTE"]
    assert env.calls("alloc_block") == [("alloc_block", 1, 0x800000 + k) for k in range(8)]


def test_arm64_16k_section_memmap_is_32_base_pages_and_one_pte_table(core):
    pt, env = new_pt(core, 14), Env()
    va = vmemmap_va(14, 4 * GiB)
    assert va == 0xFFFFFF0000C00000                          # (0x40000 - 0x10000) * 64
    size = memmap_bytes(14, 128 * MiB)
    assert size == 512 * KiB == 32 * 16 * KiB
    assert populate(pt, env, 14, va, va + size) == 0
    # no PMD maps on 16K (ARM64_KERNEL_USES_PMD_MAPS is 4K only): base pages from the altmap
    # callback; a 16K PTE table maps 2048 x 16 KiB = 32 MiB of vmemmap, so one suffices
    assert [c[1] for c in env.calls("alloc_table")] == ["PUD", "PMD", "PTE"]
    assert env.calls("alloc_block") == [("alloc_block", 1, 0x800000 + k) for k in range(32)]
    assert nr_tables(pt) == {"PGD": 1, "P4D": 0, "PUD": 1, "PMD": 1, "PTE": 1}
    pte = pt.table_pfns("PTE")[0]
    ent = pt.entries(pte)
    assert len(ent) == 2048 and np.count_nonzero(ent) == 32
    first = (va >> 14) & 2047
    assert int(ent[first]) == (0x800000 << 14) | PAGE_KERNEL
    env.log.clear()
    vfree(pt, env, va, va + size)
    # PTE table (32 MiB) and PMD table (64 GiB) lie inside the 512 GiB vmemmap and are freed;
    # the PUD table spans 128 TiB (a whole PGD entry), more than the vmemmap: kept
    assert env.log == [("free_data", 0x800000 + k, 1) for k in range(32)] + [
        ("free_table", pte, "PTE"), ("free_table", 0x10001, "PMD")]
    assert nr_tables(pt) == {"PGD": 1, "P4D": 0, "PUD": 1, "PMD": 0, "PTE": 0}


def test_arm64_64k_is_3_level_and_a_512M_section_has_8_base_pages(core):
    pt, env = new_pt(core, 16), Env()
    assert pt.levels == 3
    va = vmemmap_va(16, 4 * GiB)
    assert va == 0xFFFFFFC000300000                          # (0x10000 - 0x4000) * 64
    size = memmap_bytes(16, 512 * MiB)
    assert size == 8 * 64 * KiB
    assert populate(pt, env, 16, va, va + size) == 0
    # PUD (and P4D) folded: the PGD entry points straight at a PMD table of 8192 entries
    assert [c[1] for c in env.calls("alloc_table")] == ["PMD", "PTE"]
    assert env.calls("alloc_block") == [("alloc_block", 1, 0x800000 + k) for k in range(8)]
    assert nr_tables(pt) == {"PGD": 1, "P4D": 0, "PUD": 0, "PMD": 1, "PTE": 1}
    walk = pt.walk(va + 3 * 64 * KiB)
    assert [(w[0], w[1]) for w in walk] == [("PGD", 0x1000), ("PMD", 0x10000), ("PTE", 0x10001)]
    assert walk[0][2] == (va >> 42) & 63 and walk[1][2] == (va >> 29) & 8191
    assert walk[2][3] == ((0x800000 + 3) << 16) | PAGE_KERNEL
    assert int(pt.entries(0x1000)[walk[0][2]]) == (0x10000 << 16) | PAGE_TABLE
    assert len(pt.entries(0x10000)) == 8192 and len(pt.entries(0x1000)) == 64
    env.log.clear()
    vfree(pt, env, va, va + size)
    # the PTE table (512 MiB) is freed; the PMD table spans 4 TiB > the 128 GiB vmemmap: kept
    assert env.log[-1] == ("free_table", 0x10001, "PTE") and len(env.log) == 9
    assert nr_tables(pt) == {"PGD": 1, "P4D": 0, "PUD": 0, "PMD": 1, "PTE": 0}


def test_arm64_vmemmap_arguments_are_checked(core):
    pt, env = new_pt(core, 12), Env()
    lo, hi = ARM64[12]["vmemmap"]
    va = vmemmap_va(12, 4 * GiB)
    populate(pt, env, 12, va, va + 2 * MiB)
    before, n = pt.state(), len(env.log)
    for call in (
        lambda: populate(pt, env, 12, lo - 2 * MiB, lo),                # below VMEMMAP_START
        lambda: populate(pt, env, 12, hi - 2 * MiB, hi + 2 * MiB),      # past VMEMMAP_END
        lambda: populate(pt, env, 12, va + 1, va + 2 * MiB),
        lambda: populate(pt, env, 12, va + 8 * KiB, va + 12 * KiB),     # base pages in a block
        lambda: pt.arm64_vmemmap_populate(va, va + 4096, 0, None, env.alloc_table, 2 * MiB),
        lambda: pt.arm64_vmemmap_populate(va, va + 4096, 0, env.alloc_block, env.alloc_table,
                                          -1),
        lambda: vfree(pt, env, PAGE_OFFSET, PAGE_OFFSET + 2 * MiB),     # not the vmemmap
        lambda: pt.arm64_free_empty_tables(va, va + 2 * MiB, lo, hi, env.free_table),  # block
        lambda: pt.arm64_unmap_hotplug_range(va, va + 2 * MiB, True, None),
    ):
        with pytest.raises(HotplugError) as e:
            call()
        assert e.value.errno == errno.EINVAL
        assert pt.state() == before and len(env.log) == n


# ---------------------------------------------------------------------------------- linear map
def test_arm64_4k_linear_map_with_can_set_direct_map_is_pages_only(core):
    pt, env = new_pt(core, 12), Env()
    start, size = 4 * GiB, 128 * MiB
    pt.arm64_create_pgd_mapping(start, lm_va(start), size, PAGES_ONLY, env.alloc_table, 0)
    # 32768 PTEs in 64 PTE tables (2 MiB each), under one PMD table (its GiB) and a PUD table
    assert [c[1] for c in env.log] == ["PUD", "PMD"] + ["PTE"] * 64
    assert nr_tables(pt) == {"PGD": 1, "P4D": 0, "PUD": 1, "PMD": 1, "PTE": 64}
    assert sum(np.count_nonzero(pt.entries(p)) for p in pt.table_pfns("PTE")) == 32768
    va = lm_va(start)
    assert pt.lookup(va + 77 * 4096 + 5) == ("PTE", (start + 77 * 4096) | PAGE_KERNEL)
    # __remove_pgd_mapping: PTEs cleared (nothing freed: the memory is the caller's), then the
    # 64 PTE tables, the PMD table and the PUD table, all inside [PAGE_OFFSET, PAGE_END)
    env.log.clear()
    pt.arm64_remove_pgd_mapping(va, size, env.free_table)
    assert env.calls("free_data") == []
    assert [c[2] for c in env.log] == ["PTE"] * 64 + ["PMD", "PUD"]
    assert [c[1] for c in env.log[:64]] == list(range(0x10002, 0x10002 + 64))
    assert nr_tables(pt) == {"PGD": 1, "P4D": 0, "PUD": 0, "PMD": 0, "PTE": 0}


def test_arm64_4k_linear_map_without_it_uses_blocks(core):
    pt, env = new_pt(core, 12), Env()
    pt.arm64_create_pgd_mapping(4 * GiB, lm_va(4 * GiB), 128 * MiB, BLOCKS_OK,
                                env.alloc_table, 0)
    assert [c[1] for c in env.log] == ["PUD", "PMD"]
    pmd = pt.entries(0x10001)
    assert np.count_nonzero(pmd) == 64
    assert pt.lookup(lm_va(4 * GiB) + 3 * MiB) == ("PMD", (4 * GiB + 2 * MiB) | PAGE_KERNEL_LARGE)
    # a whole aligned GiB: one PUD block (pud_sect_supported() with 4K pages), no PMD table
    env.log.clear()
    pt.arm64_create_pgd_mapping(8 * GiB, lm_va(8 * GiB), GiB, BLOCKS_OK, env.alloc_table, 0)
    assert env.log == []
    assert pt.lookup(lm_va(8 * GiB) + 5) == ("PUD", 8 * GiB | PAGE_KERNEL_LARGE)
    # the same GiB again: pud_set_huge over an identical entry changes nothing
    pt.arm64_create_pgd_mapping(8 * GiB, lm_va(8 * GiB), GiB, BLOCKS_OK, env.alloc_table, 0)
    assert env.log == []
    # removing the block memory: the leaves go, the tables follow when empty
    env.log.clear()
    pt.arm64_remove_pgd_mapping(lm_va(4 * GiB), 64 * MiB, env.free_table)
    assert env.log == []                                 # the PMD table still maps 64 MiB
    pt.arm64_remove_pgd_mapping(lm_va(4 * GiB) + 64 * MiB, 64 * MiB, env.free_table)
    assert env.log == [("free_table", 0x10001, "PMD")]   # the PUD table holds the 1G block
    pt.arm64_remove_pgd_mapping(lm_va(8 * GiB), GiB, env.free_table)
    assert env.log[-1] == ("free_table", 0x10000, "PUD")


def test_arm64_16k_and_64k_linear_maps(core):
    pt, env = new_pt(core, 14), Env()
    start = 4 * GiB
    pt.arm64_create_pgd_mapping(start, lm_va(start), 128 * MiB, BLOCKS_OK, env.alloc_table, 0)
    # 16K: PMD blocks of 32 MiB, no PUD blocks (not 4K pages)
    assert [c[1] for c in env.log] == ["PUD", "PMD"]
    assert np.count_nonzero(pt.entries(0x10001)) == 4
    pt.arm64_create_pgd_mapping(start + 128 * MiB, lm_va(start + 128 * MiB), 128 * MiB,
                                PAGES_ONLY, env.alloc_table, 0)
    assert [c[1] for c in env.log[2:]] == ["PTE"] * 4       # 2048 x 16 KiB = 32 MiB each
    pt64, env64 = new_pt(core, 16), Env()
    pt64.arm64_create_pgd_mapping(start, lm_va(start), 512 * MiB, BLOCKS_OK,
                                  env64.alloc_table, 0)
    assert [c[1] for c in env64.log] == ["PMD"]              # one 512 MiB block
    assert pt64.lookup(lm_va(start) + 100 * MiB) == ("PMD", start | PAGE_KERNEL_LARGE)
    pt64.arm64_create_pgd_mapping(start + 512 * MiB, lm_va(start + 512 * MiB), 512 * MiB,
                                  PAGES_ONLY, env64.alloc_table, 0)
    assert [c[1] for c in env64.log] == ["PMD", "PTE"]       # 8192 x 64 KiB = 512 MiB
    assert np.count_nonzero(pt64.entries(0x10001)) == 8192
    env64.log.clear()
    pt64.arm64_remove_pgd_mapping(lm_va(start + 512 * MiB), 512 * MiB, env64.free_table)
    assert env64.log == [("free_table", 0x10001, "PTE")]     # the PMD table keeps the block


def test_arm64_linear_map_bug_cases_are_refused_unchanged(core):
    pt, env = new_pt(core, 12), Env()
    pt.arm64_create_pgd_mapping(4 * GiB, lm_va(4 * GiB), 4 * MiB, BLOCKS_OK, env.alloc_table, 0)
    pt.arm64_create_pgd_mapping(6 * GiB, lm_va(6 * GiB), 2 * MiB, PAGES_ONLY, env.alloc_table, 0)
    before, n = pt.state(), len(env.log)
    for call in (
        # pages inside a block: alloc_init_cont_pte BUG_ON(pmd_sect(pmd))
        lambda: pt.arm64_create_pgd_mapping(4 * GiB, lm_va(4 * GiB), 4096, PAGES_ONLY,
                                            env.alloc_table, 0),
        # a PTE that would point elsewhere: init_pte BUG_ON(!pgattr_change_is_safe)
        lambda: pt.arm64_create_pgd_mapping(7 * GiB, lm_va(6 * GiB), 4096, PAGES_ONLY,
                                            env.alloc_table, 0),
        # phys and virt in different page offsets: WARN, nothing mapped
        lambda: pt.arm64_create_pgd_mapping(4 * GiB + 1, lm_va(4 * GiB), 4096, PAGES_ONLY,
                                            env.alloc_table, 0),
        lambda: pt.arm64_create_pgd_mapping(4 * GiB, lm_va(4 * GiB), 0, PAGES_ONLY,
                                            env.alloc_table, 0),
        lambda: pt.arm64_create_pgd_mapping(1 << 48, lm_va(4 * GiB), 4096, PAGES_ONLY,
                                            env.alloc_table, 0),
        lambda: pt.arm64_create_pgd_mapping(4 * GiB, lm_va(4 * GiB), 4096, 8,
                                            env.alloc_table, 0),
        lambda: pt.arm64_remove_pgd_mapping(ARM64[12]["vmemmap"][0], 2 * MiB, env.free_table),
    ):
        with pytest.raises(HotplugError) as e:
            call()
        assert e.value.errno == errno.EINVAL
        assert pt.state() == before and len(env.log) == n
    # a block wanted where a PTE table sits: pmd_set_huge refuses the unsafe change silently
    pt.arm64_create_pgd_mapping(6 * GiB, lm_va(6 * GiB), 2 * MiB, BLOCKS_OK, env.alloc_table, 0)
    assert pt.state() == before
    # __pgd_pgtable_alloc failing: 6.1 BUG_ON(!ptr); the model raises ENOMEM
    pt2, env2 = new_pt(core, 12), Env(tables_ok=2)
    with pytest.raises(HotplugError) as e:
        pt2.arm64_create_pgd_mapping(4 * GiB, lm_va(4 * GiB), 4 * MiB, PAGES_ONLY,
                                     env2.alloc_table, 0)
    assert e.value.errno == errno.ENOMEM
    assert env2.log[-1] == ("alloc_table", "PTE", -1) and nr_tables(pt2)["PMD"] == 1


# ---------------------------------------------------------------------------------- removal rules
def test_free_empty_tables_frees_only_tables_wholly_inside_floor_ceiling(core):
    start = 4 * GiB
    va = lm_va(start)
    for floor, ceiling, expect in (
        # both PTE tables' 2 MiB spans lie in [va, va + 4M); the PMD table (1 GiB) does not
        (va, va + 4 * MiB, ["PTE", "PTE"]),
        # the first PTE table starts below the floor
        (va + 2 * MiB, va + 4 * MiB, ["PTE"]),
        # ceiling rounded down to the table span: va + 3M -> va + 2M < end of the 2nd table
        (va, va + 3 * MiB, ["PTE"]),
        # [PAGE_OFFSET, PAGE_END): the PMD (1 GiB) and PUD (512 GiB) tables too
        (PAGE_OFFSET, PAGE_END, ["PTE", "PTE", "PMD", "PUD"]),
        # ceiling 0 means no upper limit
        (PAGE_OFFSET, 0, ["PTE", "PTE", "PMD", "PUD"]),
        # a ceiling below one table span rounds to 0: nothing of that level qualifies
        (PAGE_OFFSET, 4096, []),
    ):
        pt, env = new_pt(core, 12), Env()
        pt.arm64_create_pgd_mapping(start, va, 4 * MiB, PAGES_ONLY, env.alloc_table, 0)
        env.log.clear()
        pt.arm64_unmap_hotplug_range(va, va + 4 * MiB, False, None)
        assert env.log == [] and nr_tables(pt)["PTE"] == 2     # unmapping frees no table
        pt.arm64_free_empty_tables(va, va + 4 * MiB, floor, ceiling, env.free_table)
        assert [c[2] for c in env.log] == expect, (hex(floor), hex(ceiling))
    # a table with a live entry stays whatever the bounds
    pt, env = new_pt(core, 12), Env()
    pt.arm64_create_pgd_mapping(start, va, 4 * MiB, PAGES_ONLY, env.alloc_table, 0)
    env.log.clear()
    pt.arm64_unmap_hotplug_range(va, va + 4 * MiB - 4096, False, None)
    pt.arm64_free_empty_tables(va, va + 4 * MiB, PAGE_OFFSET, PAGE_END, env.free_table)
    assert [c[2] for c in env.log] == ["PTE"]
    assert pt.lookup(va + 4 * MiB - 4096) == ("PTE", (start + 4 * MiB - 4096) | PAGE_KERNEL)


def test_unmap_clears_a_whole_block_even_if_partly_covered(core):
    pt, env = new_pt(core, 12), Env(block_pfn=0x100000)
    va = vmemmap_va(12, 4 * GiB)
    populate(pt, env, 12, va, va + 2 * MiB)
    env.log.clear()
    pt.arm64_unmap_hotplug_range(va + 4096, va + 8192, True, env.free_data)
    assert env.log == [("free_data", 0x100000, 512)] and pt.lookup(va) is None


# ---------------------------------------------------------------------------------- powerpc
def test_powerpc_radix_64k_geometry_walks(core):
    g = core.PageTableGeometry(
        "powerpc64-radix-64K", "powerpc64", 16,
        (("PGD", 39, 8192), ("PUD", 30, 512), ("PMD", 21, 512), ("PTE", 16, 32)),
        0xC000000000000000, 0xC000000000000000 + (1 << 51), 0xC00C000000000000,
        0xC00E000000000000, 0xC000000000000000, 51)
    pt, env = core.PageTables(4, 0x100, geometry=g), Env()
    va = 0xC00C000000000000 + 62 * 64 * KiB            # 4 MiB of vmemmap across 2 MiB edges
    assert pt.vmemmap_populate_basepages(va, va + 4 * MiB, 0, env.alloc_block,
                                         env.alloc_table) == 0
    # a radix 64K PTE table maps 32 x 64 KiB = 2 MiB: 64 pages over 3 PTE tables
    assert [c[1] for c in env.calls("alloc_table")] == ["PUD", "PMD", "PTE", "PTE", "PTE"]
    assert len(env.calls("alloc_block")) == 64
    assert [len(pt.entries(p)) for p in (0x100, 0x10000, 0x10001, 0x10002)] == [8192, 512, 512, 32]
    assert pt.lookup(va) == ("PTE", (0x800000 << 16) | PAGE_KERNEL)
    for call in (lambda: pt.arm64_vmemmap_populate(va, va + 4096, 0, env.alloc_block,
                                                   env.alloc_table, 4096),
                 lambda: pt.remove_pagetable(va, va + 4096, False, env.free_data,
                                             env.free_table, False)):
        with pytest.raises(HotplugError):
            call()


# ---------------------------------------------------------------------------------- helpers
def test_can_set_direct_map_and_the_flags_arch_add_memory_passes():
    # Debian 6.1: RODATA_FULL_DEFAULT_ENABLED=y, no KFENCE, no DEBUG_PAGEALLOC
    assert can_set_direct_map() is True
    assert can_set_direct_map(rodata="off") is False
    assert can_set_direct_map(rodata="on") is False              # 6.1.65+: on clears full
    assert can_set_direct_map(rodata="on", sublevel=64) is True  # before: only rodata_enabled
    # KFENCE: a pool set up late (sample interval 0) needs page granularity (6.1.65+)
    assert can_set_direct_map(rodata="off", kfence=True, kfence_sample_interval=0) is True
    assert can_set_direct_map(rodata="off", kfence=True, kfence_sample_interval=100) is False
    assert can_set_direct_map(rodata="full", rodata_full_default_enabled=False,
                              kfence=False) is True
    assert can_set_direct_map(rodata="off", kfence=False, debug_pagealloc=True) is True
    # 6.1.0 .. 6.1.64: any CONFIG_KFENCE forces it; rodata=on leaves rodata_full set
    assert can_set_direct_map(rodata="off", kfence=True, kfence_sample_interval=100,
                              sublevel=64) is True
    assert can_set_direct_map(rodata="on", kfence=False, sublevel=0) is True
    assert can_set_direct_map(rodata="off", kfence=False, sublevel=0) is False
    with pytest.raises(HotplugError):
        can_set_direct_map(rodata="yes")
    assert arch_add_memory_flags(True) == NO_EXEC | NO_BLOCK | NO_CONT
    assert arch_add_memory_flags(False) == NO_EXEC


def test_geometry_from_profiles():
    from hotmem.arch.x86_64 import x86_64
    from hotmem._py.pgtable import PageTableGeometry
    assert geometry_from_profile(x86_64(4)) == PageTableGeometry.x86_64(4)
    assert geometry_from_profile(x86_64(5)) == PageTableGeometry.x86_64(5)
    try:                                # the profiles of the other architectures, if present
        from hotmem.arch.arm64 import arm64
        from hotmem.arch.powerpc64 import powerpc64
    except ImportError:
        return
    for name, ps in (("4K", 12), ("16K", 14), ("64K", 16)):
        assert geometry_from_profile(arm64(name)) == geo(ps)
    # powerpc radix 64K (radix-64k.h index sizes 5/9/9/13): generic walks only
    g = geometry_from_profile(powerpc64("radix"))
    assert g.arch == "generic" and g.levels == (("PGD", 39, 8192), ("PUD", 30, 512),
                                                ("PMD", 21, 512), ("PTE", 16, 32))


# ---------------------------------------------------------------------------------- differential
# per page size: PMD_SIZE, the span of a PMD table (linear-map window edge) and the vmemmap
# span of the table the vmemmap window straddles (4K: a PMD table, 16K/64K: a PTE table)
WINDOWS = {12: (2 * MiB, GiB, GiB), 14: (32 * MiB, 64 * GiB, 32 * MiB),
           16: (512 * MiB, 4 * TiB, 512 * MiB)}

op_st = st.tuples(
    st.sampled_from(["vpop", "vfree", "map", "map", "map", "unmap", "rmap", "fet"]),
    st.integers(0, 1 << 20), st.integers(0, 1 << 20), st.integers(0, 5), st.booleans())


def _apply(pt, env, ps, op):
    kind, a, b, c, flag = op
    page = 1 << ps
    pmd, table_span, vspan = WINDOWS[ps]
    section_mm = memmap_bytes(ps, ARM64[ps]["section"])
    if kind in ("vpop", "vfree"):
        # a window of a few section memmaps straddling a PMD-table (4K) / PTE-table boundary
        base = ARM64[ps]["vmemmap"][0] + 16 * vspan - 2 * section_mm
        lo = base + (a % (4 * section_mm // page)) * page
        n = (b % (2 * section_mm // page)) + 1 if c < 4 else section_mm // page
        if c == 5:
            lo -= lo % section_mm
        hi = lo + min(n, 64 if ps != 12 or c < 4 else n) * page
        if kind == "vpop":
            env.blocks_ok = None if c else 0
            env.pages_ok = None if flag else 5
            env.tables_ok = None if c != 3 else 1
            return pt.arm64_vmemmap_populate(lo, hi, 0, env.alloc_block, env.alloc_table,
                                             section_mm)
        return pt.arm64_vmemmap_free(lo, hi, env.free_data, env.free_table)
    # linear map: around a PMD-table boundary (the PUD boundary with 4K pages)
    phys0 = 16 * table_span - 4 * pmd
    if kind == "map":
        flags = BLOCKS_OK if flag else PAGES_ONLY
        if c >= 3:                      # block-sized, aligned
            lo = phys0 + (a % 8) * pmd
            size = (1 + b % 2) * pmd
            if not flag:
                size = min(size, 64 * page)
        else:
            lo = phys0 + (a % (8 * pmd // page)) * page
            size = ((b % 64) + 1) * page
        env.tables_ok = 1 if c == 2 and flag else None
        return pt.arm64_create_pgd_mapping(lo, lm_va(lo), size, flags, env.alloc_table, 0)
    lo = lm_va(phys0) + (a % (8 * pmd // page)) * page
    size = ((b % (8 * pmd // page)) + 1) * page
    if kind == "rmap":
        return pt.arm64_remove_pgd_mapping(lo, size, env.free_table)
    if kind == "unmap":
        return pt.arm64_unmap_hotplug_range(lo, lo + size, flag, env.free_data)
    floor = (PAGE_OFFSET, lo, lo + c * page, lm_va(phys0))[c % 4]
    ceiling = (0, PAGE_END, lo + size, lo + size + pmd)[(c + flag) % 4]
    return pt.arm64_free_empty_tables(lo, lo + size, floor, ceiling, env.free_table)


def _run(pt, env, ps, op):
    try:
        return ("ok", _apply(pt, env, ps, op))
    except HotplugError as e:
        return ("err", e.errno)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ps=st.sampled_from([12, 14, 16]), ops=st.lists(op_st, min_size=1, max_size=8))
def test_random_arm64_sequences_match_the_twin(ps, ops):
    cores = [compiled_core(), python_core()]
    pts = [new_pt(core, ps) for core in cores]
    envs = [Env(), Env()]
    for op in ops:
        results = [_run(pt, env, ps, op) for pt, env in zip(pts, envs)]
        assert results[0] == results[1], op
        assert envs[0].log == envs[1].log, op
        assert pts[0].state() == pts[1].state(), op
        for lvl in ("PGD", "P4D", "PUD", "PMD", "PTE"):
            assert pts[0].table_pfns(lvl) == pts[1].table_pfns(lvl)
    # every table is linked exactly once, from a table one level up
    st_ = pts[0].state()
    tables = {pfn: lvl for pfn, lvl, _, _ in st_[2]}
    seen = set()
    order = [n for n, _, _ in ARM64[ps]["levels"]]
    for pfn, lvl, ent, links in st_[2]:
        ent = np.frombuffer(ent, np.uint64)
        for i in np.flatnonzero(np.unpackbits(np.frombuffer(links, np.uint8))[:len(ent)]):
            child = (int(ent[i]) & ((1 << 52) - 1)) >> ps
            assert int(ent[i]) & 0xFFF == PAGE_TABLE
            assert tables[child] == order[order.index(lvl) + 1] and child not in seen
            seen.add(child)
    assert seen == set(tables) - {0x1000}
