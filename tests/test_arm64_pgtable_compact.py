"""The compiled core holds an arm64 leaf (PTE) table compact while its entries form one run (a
linear map, consecutive memmap pages) and turns it into a dense row at the first write that
breaks the run; the pure-Python twin keeps every table dense. Both must be indistinguishable:
the same walks, entries, table pages, frees and snapshots after every step -- on the bare
PageTables (runs extended, prepended, overlapped, broken, trimmed and holed inside one or two PTE
tables) and on arm64 4K Machines hot-plugging several 128 MiB blocks with memmap on memory on
and off.
"""
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import compiled_core, python_core
from hotmem.errors import HotplugError
from test_pgtable_geometry import (ARM64, BLOCKS_OK, PAGE_END, PAGE_OFFSET, PAGES_ONLY, Env,
                                   lm_va, memmap_bytes, new_pt)

MiB, GiB = 1 << 20, 1 << 30
LEVELS = ("PGD", "P4D", "PUD", "PMD", "PTE")

# a window of two PTE tables of the linear map (4K: 2 x 2 MiB) straddling a PMD-table boundary
op_st = st.tuples(
    st.sampled_from(["map", "map", "map", "unmap", "unmap", "rmap", "fet", "vpop", "vfree"]),
    st.integers(0, 1 << 12), st.integers(0, 1 << 12), st.integers(0, 3), st.booleans())


def _window(ps):
    page = 1 << ps
    span = page * ARM64[ps]["levels"][-1][2]            # what one PTE table maps
    return 4 * GiB - span, span, page


def _apply(pt, env, ps, op):
    kind, a, b, c, flag = op
    phys0, span, page = _window(ps)
    n = 2 * span // page
    lo_i = a % n
    cnt = min(1 + b % 64 if c else 1 + b % n, n - lo_i)
    lo = phys0 + lo_i * page
    if kind == "map":
        # c == 3: mapped to another physical place (breaks the run of a compact table)
        phys = lo + (((b % 7) + 1) * page if c == 3 else 0)
        return pt.arm64_create_pgd_mapping(phys, lm_va(lo), cnt * page,
                                           BLOCKS_OK if flag and c == 0 else PAGES_ONLY,
                                           env.alloc_table, 0)
    if kind == "unmap":
        return pt.arm64_unmap_hotplug_range(lm_va(lo), lm_va(lo) + cnt * page, flag,
                                            env.free_data)
    if kind == "rmap":
        return pt.arm64_remove_pgd_mapping(lm_va(lo), cnt * page, env.free_table)
    if kind == "fet":
        return pt.arm64_free_empty_tables(lm_va(lo), lm_va(lo) + cnt * page,
                                          PAGE_OFFSET if flag else lm_va(phys0),
                                          PAGE_END if c else 0, env.free_table)
    # vmemmap base pages: consecutive pages (a run) unless the page budget runs out
    vlo = ARM64[ps]["vmemmap"][0] + 8 * span + lo_i * page
    if kind == "vpop":
        env.pages_ok = None if flag else c + 1
        env.blocks_ok = 0
        return pt.arm64_vmemmap_populate(vlo, vlo + cnt * page, 0, env.alloc_block,
                                         env.alloc_table, memmap_bytes(ps, ARM64[ps]["section"]))
    return pt.arm64_vmemmap_free(vlo, vlo + cnt * page, env.free_data, env.free_table)


def _run(pt, env, ps, op):
    try:
        return ("ok", _apply(pt, env, ps, op))
    except HotplugError as e:
        return ("err", e.errno)


def _same_tables(pts, ps):
    assert pts[0].state() == pts[1].state()
    for lvl in LEVELS:
        assert pts[0].nr_tables(lvl) == pts[1].nr_tables(lvl)
        pfns = pts[0].table_pfns(lvl)
        assert pfns == pts[1].table_pfns(lvl)
        for pfn in pfns:
            assert np.array_equal(pts[0].entries(pfn), pts[1].entries(pfn))
    phys0, span, page = _window(ps)
    vbase = ARM64[ps]["vmemmap"][0] + 8 * span
    for k in range(0, 2 * span // page, 31):
        for va in (lm_va(phys0) + k * page, vbase + k * page):
            assert pts[0].walk(va) == pts[1].walk(va)
            assert pts[0].lookup(va) == pts[1].lookup(va)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ps=st.sampled_from([12, 12, 14, 16]), ops=st.lists(op_st, min_size=1, max_size=10))
def test_compact_leaf_tables_match_the_dense_twin(ps, ops):
    pts = [new_pt(core, ps) for core in (compiled_core(), python_core())]
    envs = [Env(), Env()]
    for op in ops:
        results = [_run(pt, env, ps, op) for pt, env in zip(pts, envs)]
        assert results[0] == results[1], op
        assert envs[0].log == envs[1].log, op
        _same_tables(pts, ps)


def test_runs_extend_break_and_trim():
    """Hand-made: a run grown at both ends, a page mapped elsewhere inside it, an unmap that
    leaves a hole, an unmap of everything; the frees and walks as the twin has them."""
    ps, page = 12, 4096
    phys0, span, _ = _window(ps)
    pts = [new_pt(core, ps) for core in (compiled_core(), python_core())]
    envs = [Env(), Env()]
    steps = [
        lambda pt, env: pt.arm64_create_pgd_mapping(phys0 + 8 * page, lm_va(phys0 + 8 * page),
                                                    8 * page, PAGES_ONLY, env.alloc_table, 0),
        lambda pt, env: pt.arm64_create_pgd_mapping(phys0 + 16 * page, lm_va(phys0 + 16 * page),
                                                    4 * page, PAGES_ONLY, env.alloc_table, 0),
        lambda pt, env: pt.arm64_create_pgd_mapping(phys0, lm_va(phys0), 8 * page, PAGES_ONLY,
                                                    env.alloc_table, 0),
        lambda pt, env: pt.arm64_unmap_hotplug_range(lm_va(phys0), lm_va(phys0) + 2 * page,
                                                     True, env.free_data),
        lambda pt, env: pt.arm64_unmap_hotplug_range(lm_va(phys0 + 18 * page),
                                                     lm_va(phys0 + 20 * page), True, env.free_data),
        lambda pt, env: pt.arm64_unmap_hotplug_range(lm_va(phys0 + 5 * page),
                                                     lm_va(phys0 + 6 * page), True, env.free_data),
        lambda pt, env: pt.arm64_create_pgd_mapping(phys0 + 64 * page, lm_va(phys0 + 40 * page),
                                                    page, PAGES_ONLY, env.alloc_table, 0),
        lambda pt, env: pt.arm64_remove_pgd_mapping(lm_va(phys0), span, env.free_table),
    ]
    for k, step in enumerate(steps):
        for pt, env in zip(pts, envs):
            step(pt, env)
        assert envs[0].log == envs[1].log, k
        _same_tables(pts, ps)
    assert envs[0].calls("free_data") == [("free_data", (phys0 >> 12) + i, 1)
                                          for i in (0, 1, 18, 19, 5)]
    assert pts[0].nr_tables("PTE") == 0


def _arm64_4k(backend, mom):
    import hotmem
    return hotmem.Machine(arch="arm64", page_size="4K", boot_memory="256M", backend=backend,
                          cmdline=f"memory_hotplug.memmap_on_memory={mom}")


def test_arm64_4k_hotplug_programs_match_on_both_backends():
    """Several 128 MiB blocks added (memmap on memory on and off), onlined, offlined and
    removed, in an order that frees page tables in the middle of what is mapped: snapshots,
    walks of every block's linear map and memmap, kpageflags and /proc/meminfo agree after
    every step."""
    from hotmem import MHP_MEMMAP_ON_MEMORY
    base, bs = 4 * GiB, 128 * MiB
    for mom in (1, 0):
        ms = [_arm64_4k(b, mom) for b in ("compiled", "python")]
        flags = MHP_MEMMAP_ON_MEMORY if mom else 0
        prog = [("add", i) for i in range(4)] + [("online", i) for i in (0, 2, 3)] + \
            [("offline", 2), ("remove", 2), ("remove", 1), ("add", 1), ("online", 1),
             ("offline", 0), ("remove", 0), ("offline", 3), ("remove", 3), ("offline", 1),
             ("remove", 1)]
        for op, i in prog:
            start = base + i * bs
            bid = start // bs
            for m in ms:
                if op == "add":
                    m.add_memory(0, start, bs, flags)
                elif op == "remove":
                    m.remove_memory(0, start, bs)
                else:
                    m.sysfs.write(f"/sys/devices/system/memory/memory{bid}/state",
                                  "online_movable" if op == "online" else "offline")
            a, b = (m.snapshot() for m in ms)
            assert a == b, (mom, op, i)
            for k in range(4):
                s = base + k * bs
                for va in (ms[0].arch.phys_to_virt(s), ms[0].arch.phys_to_virt(s + bs - 4096),
                           ms[0].arch.pfn_to_page(s >> 12)):
                    assert ms[0].pgtables.walk(va) == ms[1].pgtables.walk(va), (op, i, k)
            assert ms[0].procfs.read("/proc/meminfo") == ms[1].procfs.read("/proc/meminfo")
            # the page-table pages (boot memory) and a sample of the hot-plugged range
            pfns = sorted({p for lvl in LEVELS for p in ms[0].pgtables.table_pfns(lvl)} |
                          set(range(base >> 12, (base + 6 * bs) >> 12, 1021)))
            for m in ms[1:]:
                for p in pfns:
                    assert list(m.procfs.kpageflags(p)) == list(ms[0].procfs.kpageflags(p)), (op, i, p)
                    assert list(m.procfs.kpagecount(p)) == list(ms[0].procfs.kpagecount(p)), (op, i, p)
        assert ms[0].pgtables.nr_tables("PTE") == ms[1].pgtables.nr_tables("PTE")
