"""Page-table invariants of the tables an arch keeps in Python: powerpc64 (radix, hash) and s390x.
"""
from __future__ import annotations

import numpy as np

from hotmem.testing.facts import _merge
from hotmem.testing.pagetables import (_boot_names, _check_leaves, _table_owner_errs,
                                       _unreached_boot_tables)


def _check_vmemmap_list(m, errs, vl, leaf_map, uses_list, psize_shift) -> None:
    """arch/powerpc/mm/init_64.c vmemmap_list (6.1 both MMUs, 6.6+ hash): one entry per
    vmemmap block, equal to the vmemmap leaves (virt -> backing pfn, mmu_vmemmap_psize);
    entries + freed + left = pages × PAGE_SIZE / sizeof(struct vmemmap_backing); the pages are
    the "vmemmap_list" pages of the ledger."""
    if uses_list:
        if vl.entries != leaf_map:
            a = sorted(set(vl.entries.items()) - set(leaf_map.items()))[:3]
            b = sorted(set(leaf_map.items()) - set(vl.entries.items()))[:3]
            errs.append(f"vmemmap_list != vmemmap leaves of 2^{psize_shift} bytes: listed only "
                        f"{[(hex(v), hex(p)) for v, p in a]}, mapped only "
                        f"{[(hex(v), hex(p)) for v, p in b]}")
    elif vl.entries:
        errs.append(f"vmemmap_list has {len(vl.entries)} entries on a 6.6+ radix kernel")
    if len(vl.entries) + vl.num_freed + vl.num_left != len(vl.pages) * vl.per_page:
        errs.append(f"vmemmap_list: {len(vl.entries)} entries + {vl.num_freed} freed + "
                    f"{vl.num_left} left != {len(vl.pages)} pages x {vl.per_page}")
    ledger = {p for p, (w, o, _) in m.owners.buddy.items() if w == "vmemmap_list" and o == 0}
    ledger |= {p for p, (w, n, _) in m.owners.memblock.items() if w == "vmemmap_list"}
    if ledger != set(vl.pages) or len(vl.pages) != len(set(vl.pages)):
        errs.append(f"vmemmap_list pages {[hex(p) for p in vl.pages][:6]} but the ledger "
                    f"has {[hex(p) for p in sorted(ledger)][:6]}")


def _ppc_layout(m):
    a = m.arch
    ps = a.page_shift
    phys_span = 1 << a.max_physmem_bits
    return dict(va_bits=64, page_shift=ps, page_offset=a.page_offset,
                direct_end=a.page_offset + phys_span, vmemmap_start=a.vmemmap_start,
                vm_end=a.vmemmap_start + (phys_span >> ps) * a.struct_page_size, pfn_offset=0)


def _check_radix_tables(m, facts, allow, c, errs) -> dict:
    """powerpc64 radix (hotmem/arch/powerpc64_mmu.py), walked from the PGD: every table reached
    exactly once, of the level its depth says, backed by what the kernel gives it — a whole
    memblock page at boot (early_alloc_pgtable), a PMD/PTE *fragment* (index < FRAG_NR) of a
    buddy page owned for that level, or a slab object (PUD, pud_alloc_one) — no two tables in
    one place; every fragment page's pt_frag_refcount = its live fragments + the fragments
    init_mm's cache has not handed out yet (pgtable-frag.c), no fragment beyond the cache's
    next index live; the buddy-owned table pages are exactly the fragment pages; slab
    "pgtable PUD" objects = PUD tables from slab; update_page_count's counts = direct-map
    leaves per size; vmemmap_list (6.1) = the vmemmap leaves; then the leaves (_check_leaves)."""
    pt = m.pgtables
    shifts = [s for _, s, _ in pt.geometry.levels]
    va_bits = shifts[0] + pt.geometry.levels[0][2].bit_length() - 1
    hi = m.arch.page_offset & ~((1 << va_bits) - 1)
    lay = _ppc_layout(m)
    seen, homes, leaves = {}, {}, []
    frag_live: dict = {}
    slab_n: dict = {}
    pages = set()
    for tid, d, va, lvl, home, ents in pt.walk():
        want = pt.levels[d]
        if lvl is None:
            errs.append(f"radix: a {pt.levels[d - 1]} entry points to table {tid}, which is gone")
            continue
        if tid in seen:
            errs.append(f"radix: table {tid} ({lvl}) reached twice")
            continue
        seen[tid] = lvl
        if lvl != want:
            errs.append(f"radix: table {tid} is a {lvl} but sits at the {want} level")
        kind = home[0]
        if kind == "memblock":
            pfn = home[1]
            key = ("page", pfn)
            pages.add(pfn)
            names = ("pgtable PGD",) if d == 0 else _boot_names(lvl)
            _table_owner_errs(m, facts, c, errs, pfn, 1, lvl, names, 0, "radix")
        elif kind == "frag":
            pfn, i = home[1], home[2]
            key = ("frag", pfn, i)
            if lvl not in pt.frag_nr or not 0 <= i < pt.frag_nr[lvl]:
                errs.append(f"radix: {lvl} table {tid} is fragment {i} of page {pfn:#x}")
            frag_live.setdefault(pfn, {})[i] = lvl
        elif kind == "slab":
            key = home
            slab_n[lvl] = slab_n.get(lvl, 0) + 1
            if lvl != "PUD":
                errs.append(f"radix: {lvl} table {tid} from slab (only PUD tables are)")
        else:
            errs.append(f"radix: table {tid} has home {home!r}")
            continue
        if key in homes:
            errs.append(f"radix: tables {homes[key]} and {tid} share {key!r}")
        homes[key] = tid
        lf = [(i, e[1]) for i, e in ents.items() if e[0] == "leaf"]
        if lf:
            if d == 0:
                errs.append(f"radix: {len(lf)} leaves in the PGD")
            leaves.append((hi | va, shifts[d], np.array([i for i, _ in lf], np.int64),
                           np.array([p for _, p in lf], np.int64), lvl))
        if d == len(shifts) - 1 and any(e[0] != "leaf" for e in ents.values()):
            errs.append(f"radix: PTE table {tid} points to a table")
    orphans = set(pt.table_levels()) - set(seen)
    if orphans:
        errs.append(f"radix: tables not reachable from the PGD: {sorted(orphans)[:5]}")
    # fragment pages
    ref = pt.fragment_pages()
    cache = {v[0]: (k, v[1]) for k, v in pt.fragment_cache().items() if v is not None}
    for pfn in sorted(set(ref) | set(frag_live) | set(cache)):
        live = frag_live.get(pfn, {})
        lvls = set(live.values()) | ({cache[pfn][0]} if pfn in cache else set())
        if len(lvls) > 1:
            errs.append(f"radix: fragment page {pfn:#x} serves {sorted(lvls)} tables")
        lvl = min(lvls) if lvls else "?"
        unhanded = 0
        if pfn in cache:
            nxt = cache[pfn][1]
            unhanded = pt.frag_nr[cache[pfn][0]] - nxt
            if live and max(live) >= nxt:
                errs.append(f"radix: fragment {max(live)} of cached page {pfn:#x} is live but "
                            f"the cache hands out {nxt} next")
        if ref.get(pfn) != len(live) + unhanded:
            errs.append(f"radix: fragment page {pfn:#x} has pt_frag_refcount {ref.get(pfn)} "
                        f"but {len(live)} live fragments and {unhanded} cached")
        bd = m.owners.buddy.get(pfn)
        if bd is None or bd[1] != 0 or not bd[0].endswith(f" {lvl} table"):
            errs.append(f"radix: {lvl} fragment page {pfn:#x} owned as {bd!r}")
    owned = {p for p, (w, _, _) in m.owners.buddy.items() if w.endswith(" table")}
    if owned - set(ref):
        errs.append(f"radix: table pages owned but no fragment page: "
                    f"{[hex(p) for p in sorted(owned - set(ref))][:5]}")
    _unreached_boot_tables(m, allow, errs, pages, "radix")
    for lvl in ("PUD",):
        got = m.slab.objects.get(f"pgtable {lvl}", 0)
        if got != slab_n.get(lvl, 0):
            errs.append(f"radix: slab holds {got} pgtable {lvl} objects, the tree "
                        f"{slab_n.get(lvl, 0)}")
    counts, out = _check_leaves(m, facts, allow, c, errs, leaves, **lay)
    want = {pt.page_shift: counts.get("PTE", 0), shifts[2]: counts.get("PMD", 0),
            shifts[1]: counts.get("PUD", 0)}
    if dict(pt.page_count) != want:
        errs.append(f"radix: update_page_count says {pt.page_count}, the direct map has {want}")
    psize = m.arch_ops.mmu_vmemmap_psize(m)
    vm_leaves = {}
    for base, sh, idx, tgt, lvl in leaves:
        va0 = base
        if va0 >= m.arch.vmemmap_start and 1 << sh == psize:
            for i, t in zip(idx.tolist(), tgt.tolist()):
                vm_leaves[va0 + (i << sh)] = t
    uses_list = not m.policy.arch("powerpc64").radix_vmemmap_populate     # 6.1 radix
    _check_vmemmap_list(m, errs, pt.vmemmap_list, vm_leaves, uses_list, psize.bit_length() - 1)
    return out


def _check_hash_tables(m, facts, allow, c, errs) -> dict:
    """powerpc64 hash: no Linux tables but the PGD (a memblock page, nothing buddy-owned is a
    table); the kernel maps are bolted HPTEs: the direct-map ranges do not overlap and map
    memory that exists, each bolted vmemmap block has its vmemmap_list entry and vice versa
    (init_64.c), then the leaves (_check_leaves) over both."""
    pt = m.pgtables
    a = m.arch
    ps = a.page_shift
    lay = _ppc_layout(m)
    _table_owner_errs(m, facts, c, errs, pt.pgd_pfn, 1, "PGD", ("pgtable PGD",), 0, "hash")
    owned = [p for p, (w, _, _) in m.owners.buddy.items() if w.endswith(" table")]
    if owned:
        errs.append(f"hash: buddy pages owned as page tables: {[hex(p) for p in owned[:5]]}")
    _unreached_boot_tables(m, allow, errs, {pt.pgd_pfn}, "hash")
    psize = m.arch_ops.mmu_vmemmap_psize(m)
    leaves, direct, bolted_vm = [], [], {}
    for va, size in sorted(pt.bolted):
        if va >= a.vmemmap_start:
            if size != psize:
                errs.append(f"hash: vmemmap bolted at {va:#x} with {size:#x} bytes, "
                            f"mmu_vmemmap_psize is {psize:#x}")
            bolted_vm[va] = size
        else:
            direct.append((va, size))
            n = size >> ps
            first = (va - a.page_offset) >> ps
            leaves.append((va, ps, np.arange(n, dtype=np.int64),
                           first + np.arange(n, dtype=np.int64), "PTE"))
    tot = sum(s for _, s in direct)
    if sum(e - s for s, e in _merge([(v, v + s) for v, s in direct])) != tot:
        errs.append("hash: bolted direct-map ranges overlap")
    vm_map = {}
    for va, pfn in pt.vmemmap_list.entries.items():
        if va in bolted_vm:
            vm_map[va] = pfn
            leaves.append((va, psize.bit_length() - 1, np.zeros(1, np.int64),
                           np.array([pfn], np.int64), "vmemmap"))
    if set(bolted_vm) != set(pt.vmemmap_list.entries):
        errs.append(f"hash: bolted vmemmap blocks {len(bolted_vm)} != vmemmap_list entries "
                    f"{len(pt.vmemmap_list.entries)}")
    _check_vmemmap_list(m, errs, pt.vmemmap_list, pt.vmemmap_list.entries, True,
                        psize.bit_length() - 1)
    _, out = _check_leaves(m, facts, allow, c, errs, leaves, **lay)
    return out


def _check_s390_tables(m, facts, allow, c, errs) -> dict:
    """s390x (hotmem/arch/s390x_mmu.py), walked from the top table: every table reached exactly
    once at its level; region/segment tables 16 KiB-aligned order-2 blocks (memblock at boot,
    else buddy-owned for their level), page tables 2 KiB halves (memblock at boot, else a
    buddy page of the ledger whose AA bits in frag_mask are exactly its live halves); the
    half-free pages are init_mm.context.pgtable_list (each once), NR_PAGETABLE = the PTE pages;
    no buddy table page unreached; DirectMap4k/1M/2G = direct-map leaves per size; a sub-PMD
    vmemmap record belongs to a 1 MiB vmemmap leaf; then the leaves (_check_leaves)."""
    from hotmem.arch import s390x_mmu as mmu
    pt = m.pgtables
    a = m.arch
    ps = mmu.PAGE_SHIFT
    shifts = {k: v[0] for k, v in mmu._SHIFTS.items()}
    seen, leaves = set(), []
    halves: dict = {}
    crst_pages, pages = set(), set()
    for addr, lvl, t, va in pt.walk():
        if t is None:
            errs.append(f"s390: a table entry points to {addr:#x}, which is no table")
            continue
        if addr in seen:
            errs.append(f"s390: table {addr:#x} reached twice")
            continue
        seen.add(addr)
        if t.level != lvl:
            errs.append(f"s390: table {addr:#x} is a {t.level} at the {lvl} level")
        pfn = addr >> ps
        if lvl == "PTE":
            if addr % mmu.PTE_TABLE_SIZE:
                errs.append(f"s390: page table {addr:#x} not 2 KiB aligned")
            pages.add(pfn)
            if t.boot:
                _table_owner_errs(m, facts, c, errs, pfn, 1, "PTE", _boot_names("PTE"), 0,
                                  "s390")
            else:
                bit = 1 << ((addr & (mmu.PAGE_SIZE - 1)) // mmu.PTE_TABLE_SIZE)
                halves[pfn] = halves.get(pfn, 0) | bit
                _table_owner_errs(m, facts, c, errs, pfn, 1, "PTE", (), 0, "s390")
        else:
            if addr % mmu.CRST_SIZE:
                errs.append(f"s390: {lvl} table {addr:#x} not 16 KiB aligned")
            pages.add(pfn)
            names = ("pgtable PGD",) if addr == pt.top else _boot_names(lvl)
            if t.boot:
                _table_owner_errs(m, facts, c, errs, pfn, 1 << mmu.CRST_ALLOC_ORDER, lvl,
                                  names, 0, "s390")
            else:
                crst_pages.add(pfn)
                _table_owner_errs(m, facts, c, errs, pfn, 1 << mmu.CRST_ALLOC_ORDER, lvl, (),
                                  mmu.CRST_ALLOC_ORDER, "s390")
        lf = [(i, e) for i, e in t.entries.items() if e[0] != mmu.TABLE]
        if lf:
            kinds = {e[0] for _, e in lf}
            if kinds != ({mmu.PAGE} if lvl == "PTE" else {mmu.LARGE}) or lvl == "P4D":
                errs.append(f"s390: {lvl} table {addr:#x} holds {sorted(kinds)} entries")
            leaves.append((va, shifts[lvl], np.array([i for i, _ in lf], np.int64),
                           np.array([e[1] >> ps for _, e in lf], np.int64), lvl))
    orphans = set(pt.tables) - seen
    if orphans:
        errs.append(f"s390: tables not reachable from the top: "
                    f"{[hex(x) for x in sorted(orphans)[:5]]}")
    if halves != pt.frag_mask:
        bad = sorted(set(halves.items()) ^ set(pt.frag_mask.items()))[:4]
        errs.append(f"s390: frag_mask differs from the live page-table halves: "
                    f"{[(hex(p), b) for p, b in bad]}")
    if sorted(pt.pgtable_list) != sorted(p for p, b in pt.frag_mask.items() if b != 3) or \
            len(set(pt.pgtable_list)) != len(pt.pgtable_list):
        errs.append(f"s390: pgtable_list {[hex(p) for p in pt.pgtable_list][:6]} is not the "
                    "half-used PTE pages")
    if pt.nr_pagetable != len(pt.frag_mask):
        errs.append(f"s390: NR_PAGETABLE {pt.nr_pagetable} but {len(pt.frag_mask)} PTE pages")
    owned = {p for p, (w, _, _) in m.owners.buddy.items() if w.endswith(" table")}
    extra = owned - crst_pages - set(pt.frag_mask)
    if extra:
        errs.append(f"s390: buddy pages owned as tables but no table: "
                    f"{[hex(p) for p in sorted(extra)][:5]}")
    _unreached_boot_tables(m, allow, errs, pages, "s390")
    vm_large = set()
    for base, sh, idx, tgt, lvl in leaves:
        if lvl == "PMD" and base >= a.vmemmap_start:
            vm_large.update((base + (i << sh)) for i in idx.tolist())
    for blk in pt.sub_pmd_used:
        if blk not in vm_large:
            errs.append(f"s390: sub-PMD use recorded for {blk:#x}, no 1 MiB vmemmap leaf there")
    phys_span = 1 << a.max_physmem_bits
    counts, out = _check_leaves(
        m, facts, allow, c, errs, leaves, va_bits=64, page_shift=ps, page_offset=0,
        direct_end=a.vmemmap_start, vmemmap_start=a.vmemmap_start,
        vm_end=a.vmemmap_start + (phys_span >> ps) * a.struct_page_size, pfn_offset=0)
    want = {"4k": counts.get("PTE", 0), "1M": counts.get("PMD", 0), "2G": counts.get("PUD", 0)}
    if pt.direct_pages != want:
        errs.append(f"s390: DirectMap counters {pt.direct_pages}, the identity map has {want}")
    return out


_ARCH_TABLE_CHECKS = {"RadixPageTables": _check_radix_tables,
                      "HashPageTables": _check_hash_tables,
                      "S390PageTables": _check_s390_tables}
