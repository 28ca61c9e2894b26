"""Page-table invariants: the walk of the compiled core's tables (x86_64, arm64) from the root, and
what every arch's tables must satisfy — the leaves (direct map and vmemmap) and the owners of
table pages."""
from __future__ import annotations

import zlib

import numpy as np

from hotmem.testing.consts import (_PAGE_KNL_ERRATUM_MASK, _PAGE_PRESENT, _PAGE_PSE, PG_RESERVED,
                                   SECTION_IS_EARLY)
from hotmem.testing.facts import _covered, _merge


def _kernel_va(va: int, va_bits: int) -> int:
    """The kernel address an index path through the tables spells: the upper half (x86's
    sign extension of a kernel address, arm64's TTBR1 range)."""
    return va | (((1 << 64) - 1) & ~((1 << va_bits) - 1))


def _table_walk(ents, mask, pfn_mask, page_shift, lvl, shift, base, d):
    """One table's entries: (its leaves as (base va, shift, indexes, target pfns, level) or
    None, the child tables to walk as (pfn, depth, va), whether an entry lacks _PAGE_PRESENT)."""
    idx = np.flatnonzero(ents & mask)
    if not len(idx):
        return None, [], False
    e = ents[idx]
    bad = not (e & np.uint64(_PAGE_PRESENT)).all()
    targets = ((e & pfn_mask) >> np.uint64(page_shift)).astype(np.int64)
    if lvl == "PTE":
        leaf = np.ones(len(idx), bool)
    elif lvl in ("P4D", "PUD", "PMD"):
        leaf = (e & np.uint64(_PAGE_PSE)) != 0
    else:
        leaf = np.zeros(len(idx), bool)
    leaves = (base, shift, idx[leaf].astype(np.int64), targets[leaf], lvl) if leaf.any() else None
    children = [(t, d + 1, base | (i << shift))
                for i, t in zip(idx[~leaf].tolist(), targets[~leaf].tolist())]
    return leaves, children, bad


def _check_core_tables(m, facts, allow, c, errs) -> dict:
    """The compiled core's page tables (x86_64, arm64) walked from the root: every table page
    reached exactly once and known to the core, every table page owned (buddy ledger or boot
    memblock) with its level and map, every owned table page live; direct-map leaves map only
    memory that exists (present sections; boot RAM in boot sections; the residue a failed 6.1
    add keeps); the DirectMap counters equal the recount; vmemmap leaves map struct pages of
    present sections only, every present section's struct pages are mapped, and each backing
    page is a memmap page of the ledger (altmap, buddy "memmap", boot memmap), none twice."""
    pt, ms = m.pgtables, m.ms
    geo = getattr(pt, "geometry", None)
    if geo is not None:
        names = tuple(n for n, _, _ in geo.levels)
        shifts = tuple(sh for _, sh, _ in geo.levels)
        va_bits = geo.levels[0][1] + geo.levels[0][2].bit_length() - 1
        page_shift = geo.page_shift
    else:               # a core without geometries: x86-64
        five = pt.levels == 5
        names = ("PGD", "P4D", "PUD", "PMD", "PTE") if five else ("PGD", "PUD", "PMD", "PTE")
        shifts = (48, 39, 30, 21, 12) if five else (39, 30, 21, 12)
        va_bits, page_shift = (57 if five else 48), 12
    pfn_mask = np.uint64(((1 << 52) - 1) & ~((1 << page_shift) - 1))
    tables = {}
    for lvl in names:
        for pfn in pt.table_pfns(lvl):
            tables[pfn] = lvl
    reached = {}
    leaves = []      # (va of entry 0, entry shift, index array, target array, level)
    cache, used = facts.pt_cache, {}
    stack = [(pt.pgd_pfn, 0, 0)]
    mask = np.uint64(((1 << 64) - 1) & ~_PAGE_KNL_ERRATUM_MASK)
    while stack:
        pfn, d, base = stack.pop()
        if pfn in reached:
            errs.append(f"page table {pfn:#x} reached twice")
            continue
        lvl = names[d]
        reached[pfn] = lvl
        if tables.get(pfn) != lvl:
            errs.append(f"page table {pfn:#x} reached as {lvl} but the core has it as "
                        f"{tables.get(pfn)}")
        ents = pt.entries(pfn)
        key = (pfn, d, base, zlib.crc32(ents))
        got = cache.get(key)
        if got is None:
            got = _table_walk(ents, mask, pfn_mask, page_shift, lvl, shifts[d], base, d)
        used[key] = got
        leaf, children, bad = got
        if bad:
            errs.append(f"{lvl} {pfn:#x}: entries without _PAGE_PRESENT")
        if leaf is not None:
            leaves.append(leaf)
        stack.extend(children)
    facts.pt_cache = used
    orphans = set(tables) - set(reached)
    if orphans:
        errs.append(f"page tables not reachable from the root: "
                    f"{[(hex(p), tables[p]) for p in sorted(orphans)[:5]]}")
    # ownership of table pages
    owned_tables = {p: w for p, (w, o, _) in m.owners.buddy.items() if w.endswith(" table")}
    for pfn, lvl in reached.items():
        if pfn in owned_tables:
            w = owned_tables[pfn]
            if not w.endswith(f" {lvl} table"):
                errs.append(f"page table {pfn:#x} is a {lvl} but its owner says {w!r}")
        elif pfn in facts.memblock_tables:
            w = facts.memblock_tables[pfn]
            if not (w.endswith(f" {lvl}") or f" {lvl} table" in w):
                errs.append(f"boot page table {pfn:#x} is a {lvl} but memblock says {w!r}")
            if pfn >> facts.shift in c["online"] and not ms.page_flags(pfn) >> PG_RESERVED & 1:
                errs.append(f"boot page table {pfn:#x} lost PG_reserved")
        else:
            errs.append(f"page table {pfn:#x} ({lvl}) has no owner")
    for pfn, w in owned_tables.items():
        if pfn not in reached:
            errs.append(f"{w} page {pfn:#x} owned but not part of the page tables")
    # leaves
    page_offset, vmemmap_start = pt.page_offset, pt.vmemmap_start
    phys_span = 1 << pt.max_physmem_bits
    direct_end = (geo.page_end or (1 << 64)) if geo is not None else page_offset + phys_span
    vm_end = (geo.vmemmap_end or (1 << 64)) if geo is not None else \
        vmemmap_start + (phys_span >> page_shift) * m.arch.struct_page_size
    pfn_offset = getattr(m.arch, "phys_offset", 0) >> page_shift    # arm64 memstart_addr
    counts, out = _check_leaves(m, facts, allow, c, errs, leaves, va_bits, page_shift,
                                page_offset, direct_end, vmemmap_start, vm_end, pfn_offset)
    if m.arch_ops.arch_report_meminfo(m):          # DirectMap counters (x86)
        want = {"4K": counts.get("PTE", 0), "2M": counts.get("PMD", 0),
                "1G": counts.get("PUD", 0)}
        got = {k: pt.direct_pages_count(k) for k in want}
        if got != want:
            errs.append(f"direct_pages_count {got} but the direct map has {want} leaves")
    return out


def _check_leaves(m, facts, allow, c, errs, leaves, va_bits, page_shift, page_offset,
                  direct_end, vmemmap_start, vm_end, pfn_offset):
    """The leaves of a page-table walk, whatever the arch's tables: direct-map leaves map only
    memory that exists (present sections; boot RAM in boot sections; the residue a failed 6.1
    add keeps) at its own address; vmemmap leaves map struct pages of present sections (a leaf
    spanning the struct pages of more than one section, as ppc's 2 MiB and 16 MiB vmemmap
    pages do, at least one present: the kernel frees it when !vmemmap_populated), every
    present section's struct pages are mapped, and each backing page is a memmap page of the
    ledger (altmap, buddy "memmap", boot memmap), none twice. ``leaves``: (va of entry 0,
    entry shift, index array, target pfn array, level). Returns (direct-map leaves per level,
    {"targets", "leaves"})."""
    ms = m.ms
    present_arr = np.array(sorted(c["present"]), np.int64)
    spsz = m.arch.struct_page_size
    exists = []
    step = 1 << ms.pfn_subsection_shift
    full = (1 << (facts.P // step)) - 1
    for nr in c["present"]:
        base = nr << facts.shift
        sub = ms.subsection_map(nr)
        pieces = [(base, base + facts.P)] if sub == full else \
            [(base + i * step, base + (i + 1) * step) for i in range(facts.P // step)
             if sub >> i & 1]
        if nr in facts.boot_sections and c["flags"][nr] & SECTION_IS_EARLY:
            for s, e in pieces:
                for a, b in facts.ram_ranges:
                    if max(a, s) < min(b, e):
                        exists.append((max(a, s), min(b, e)))
        else:
            exists.extend(pieces)
    exists = _merge(exists + [(r[0], r[1]) for r in allow.direct_map_residue]
                    + list(getattr(m, "boot_direct_map_holes", [])))
    ex_s = np.array([a for a, _ in exists], np.int64)
    ex_e = np.array([b for _, b in exists], np.int64)
    counts = {}
    vm_cover, targets = [], []
    d_p, d_n, d_t = [], [], []
    for base, sh, idx, tgt, lvl in leaves:
        va0 = _kernel_va(base, va_bits)
        npages = 1 << (sh - page_shift)
        if page_offset <= va0 < direct_end:
            counts[lvl] = counts.get(lvl, 0) + len(idx)
            d_p.append(((va0 - page_offset) >> page_shift) + (idx << (sh - page_shift))
                       + pfn_offset)
            d_n.append(np.full(len(idx), npages, np.int64))
            d_t.append(tgt)
        elif vmemmap_start <= va0 < vm_end:
            n = (npages << page_shift) // spsz
            first = ((va0 - vmemmap_start) + (idx << sh)) // spsz + pfn_offset
            for f0 in first.tolist():
                vm_cover.append((f0, f0 + n))
            if n > facts.P:
                # a leaf over several sections' struct pages: one of them present
                lo = np.searchsorted(present_arr, first >> facts.shift, "left")
                hi = np.searchsorted(present_arr, (first + n - 1) >> facts.shift, "right")
                for f0 in first[hi <= lo].tolist():
                    errs.append(f"vmemmap {lvl} leaf for the struct pages of pfns {f0:#x}+{n} "
                                "holds none of a present section")
            else:
                secs = set((first >> facts.shift).tolist()) | \
                    set(((first + n - 1) >> facts.shift).tolist())
                for nr in sorted(secs - c["present"]):
                    errs.append(f"vmemmap {lvl} leaf maps struct pages of section {nr}, which "
                                "is not present")
            targets.extend(zip(tgt.tolist(), (tgt + npages).tolist()))
        else:
            errs.append(f"{len(idx)} {lvl} leaves at {va0:#x}+ outside the direct map and the "
                        "vmemmap")
    if d_p:
        p, n, tgt = np.concatenate(d_p), np.concatenate(d_n), np.concatenate(d_t)
        if (tgt != p).any():
            i = int(np.flatnonzero(tgt != p)[0])
            errs.append(f"direct map maps pfn {int(tgt[i]):#x} at the address of pfn "
                        f"{int(p[i]):#x}")
        k = np.searchsorted(ex_s, p, "right") - 1
        ok = (k >= 0) & (p + n <= ex_e[np.maximum(k, 0)])
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            errs.append(f"direct map leaf for pfns {int(p[i]):#x}+{int(n[i])} maps memory "
                        f"that does not exist ({int((~ok).sum())} such leaves)")
    vm_cover = _merge(vm_cover)
    for nr in c["present"]:
        s = nr << facts.shift
        if not _covered(vm_cover, s, s + facts.P):
            errs.append(f"section {nr}: struct pages not (fully) mapped in the vmemmap")
    # backing pages: each a memmap page of the ledger, none mapped twice
    owned = [(p, p + n) for p, n in m.owners.altmap.items()]
    owned += [(p, p + (1 << o)) for p, (w, o, _) in m.owners.buddy.items() if w == "memmap"]
    owned_m = _merge(owned + facts.boot_memmap)
    prev_end = -1
    for s, e in sorted(targets):
        if s < prev_end:
            errs.append(f"vmemmap backing page {s:#x} mapped twice")
        prev_end = max(prev_end, e)
        if not _covered(owned_m, s, e):
            errs.append(f"vmemmap maps pfns {s:#x}+{e - s} which are no memmap allocation")
    mapped = _merge(targets)
    for s, e in owned:
        if not _covered(mapped, s, e):
            errs.append(f"memmap allocation {s:#x}+{e - s} is not mapped in the vmemmap")
    return counts, {"targets": mapped, "leaves": len(leaves)}


def _table_owner_errs(m, facts, c, errs, pfn, npages, lvl, boot_names, buddy_order, where):
    """A table page (or block) is a real allocated model page owned for its level: memblock
    under ``boot_names`` (PG_reserved while its section is online) or the buddy ledger with
    ``buddy_order`` and a name ending in "<lvl> table"."""
    mb = m.owners.memblock.get(pfn)
    if mb is not None:
        w, n, _ = mb
        if w not in boot_names:
            errs.append(f"{where}: boot {lvl} table page {pfn:#x} but memblock says {w!r}")
        if n < npages:
            errs.append(f"{where}: boot {lvl} table {pfn:#x} needs {npages} pages, memblock "
                        f"reserved {n}")
        if pfn >> facts.shift in c["online"] and not m.ms.page_flags(pfn) >> PG_RESERVED & 1:
            errs.append(f"{where}: boot {lvl} table page {pfn:#x} lost PG_reserved")
        return "memblock"
    bd = m.owners.buddy.get(pfn)
    if bd is None:
        errs.append(f"{where}: {lvl} table page {pfn:#x} has no owner (not allocated)")
        return None
    w, order, _ = bd
    if not w.endswith(f" {lvl} table") or order != buddy_order:
        errs.append(f"{where}: {lvl} table page {pfn:#x} owned as {w!r} order {order}")
    return "buddy"


def _boot_names(lvl):
    return (f"pgtable {lvl}", f"vmemmap {lvl} table (boot)")


def _unreached_boot_tables(m, allow, errs, reached_pages, where) -> None:
    """memblock table pages no table uses any more: only after boot memory was removed (the
    kernel keeps a PageReserved table it cannot free: s390 vmem_free_pages WARNs)."""
    if allow.baseline_off:
        return
    for pfn, (w, _, _) in m.owners.memblock.items():
        if (w.startswith("pgtable ") or (w.startswith("vmemmap ") and "table" in w)) and \
                pfn not in reached_pages:
            errs.append(f"{where}: boot table page {pfn:#x} ({w}) is no table any more")
