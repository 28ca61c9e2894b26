"""The invariants: :func:`check_invariants` recounts everything from the bottom layer of the
state — struct pages, section flags and subsection maps, page-table entries reached from the
root — and compares the recount with the counters and lists the kernel code keeps (free lists,
per-CPU lists, zone counters, memory block devices, the owner ledger, iomem). They never use a
counter to check itself. The page-table walks are in hotmem.testing.pagetables and .arch_tables."""
from __future__ import annotations

import zlib

import numpy as np

from hotmem.mm.watermark import zone_pageset
from hotmem.testing.arch_tables import _ARCH_TABLE_CHECKS
from hotmem.testing.consts import (MIGRATE_ISOLATE, NR_LOWORDER_PCP_LISTS, PAGE_TYPE_BASE,
                                   PG_BUDDY, PG_OWNER_PRIV_1, PG_RESERVED, SECTION_HAS_MEM_MAP,
                                   SECTION_IS_EARLY, SECTION_IS_ONLINE, ZONE_NAMES)
from hotmem.testing.facts import Allowances, BootFacts, _covered, _merge
from hotmem.testing.pagetables import _check_core_tables


class InvariantError(AssertionError):
    """An invariant or an error-path check failed; the message says which and where."""


def check_invariants(m, facts: BootFacts, allow: Allowances | None = None) -> dict:
    """Check every invariant of the Machine ``m``; raise InvariantError listing the violations.
    Returns the recounts (for tests and reports)."""
    allow = allow or Allowances()
    errs: list[str] = []
    census = _check_sections_and_pages(m, facts, allow, errs)
    _check_zones(m, facts, census, errs)
    _check_pcp_and_isolation(m, census, errs)
    pt = _check_page_tables(m, facts, allow, census, errs)
    _check_blocks_and_altmaps(m, facts, allow, census, pt, errs)
    _check_iomem(m, facts, allow, errs)
    _check_slab(m, facts, allow, errs)
    if errs:
        more = f"\n  ... and {len(errs) - 25} more" if len(errs) > 25 else ""
        raise InvariantError("invariants violated:\n  " + "\n  ".join(errs[:25]) + more)
    return census


def _zone_links(arr, zones_pgshift):
    """page_zone_id of every struct page (page->flags >> ZONES_PGSHIFT), read through a 16-bit
    view of the flags' top bytes when the zone and node bits lie there (as on x86)."""
    if zones_pgshift >= 48 and arr.dtype.fields["flags"][0] == 0:
        top = np.ndarray(shape=arr.shape, dtype="<u2", buffer=arr, offset=6,
                         strides=arr.strides)
        return top >> (zones_pgshift - 48)
    return (arr["flags"] >> np.uint64(zones_pgshift)).astype(np.int64)


def _section_census(nr, arr, online, items, sec_flags, sub, sub_shift, facts, zsh, max_order):
    """The census of one present section (see _check_sections_and_pages): its errors, free
    block keys, and per zone managed / present / early-present / free pages and RAM span, and
    the (min, max) zone id of its RAM pages."""
    P = facts.P
    e_, fs_, fc_, mg_, pc_, ec_, sl_, sh_, sz_ = [], [], {}, {}, {}, {}, {}, {}, [None]
    r_ = (e_, fs_, fc_, mg_, pc_, ec_, sl_, sh_, sz_)
    base = nr << facts.shift
    pflags = arr["flags"]
    ptype = arr["page_type"]
    buddy = (ptype & np.uint32(PAGE_TYPE_BASE | PG_BUDDY)) == np.uint32(PAGE_TYPE_BASE)
    if not online:
        if buddy.any():
            p = base + int(np.flatnonzero(buddy)[0])
            e_.append(f"pfn {p:#x}: PageBuddy in offline section {nr}")
        for kind, (offs, ns) in ((k, v) for k, v in items.items() if k != "pcp zone"):
            if kind != "altmap":
                e_.append(f"{len(offs)} {kind} blocks (first pfn {base + int(offs[0]):#x})"
                          f" lie in offline section {nr}")
        return r_
    early = bool(sec_flags & SECTION_IS_EARLY) and nr in facts.boot_sections
    pmask, ram, boot_ok, nram, ram_lo, ram_hi = facts.section_masks(nr, sub, sub_shift, early)
    nonres = (pflags & np.uint64(1 << PG_RESERVED)) == 0
    heads = np.flatnonzero(buddy)
    orders = arr["private"][heads].astype(np.int64)
    bad = (orders >= max_order) | (heads & ((1 << orders) - 1) != 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        e_.append(f"pfn {base + int(heads[i]):#x}: PageBuddy with order {int(orders[i])} "
                  "(too big or misaligned)")
        orders = np.minimum(orders, max_order - 1)
    starts_l, ends_l = [heads], [np.minimum(heads + (1 << orders), P)]
    for kind in ("pcp", "allocated"):
        if kind in items:
            offs, ns = items[kind]
            starts_l.append(offs)
            ends_l.append(np.minimum(offs + ns, P))
    d = np.zeros(P + 1, np.int32)
    np.add.at(d, np.concatenate(starts_l), 1)
    np.add.at(d, np.concatenate(ends_l), -1)
    fpa = np.cumsum(d[:-1], dtype=np.int32)    # free + pcp + allocated cover
    zl_heads = (pflags[heads] >> np.uint64(zsh)).astype(np.int64)
    fs_.append(((base + heads) << 20) | (orders << 13) | zl_heads)
    if len(heads):
        fc = np.bincount(zl_heads, weights=(np.int64(1) << orders))
        for z in np.flatnonzero(fc).tolist():
            fc_[z] = int(fc[z])
    vmask = None
    if "altmap" in items:
        vmask = np.zeros(P, np.int32)
        for off, k in zip(*(x.tolist() for x in items["altmap"])):
            vmask[off:off + k] += 1
        if (vmask > 1).any():
            e_.append(f"section {nr}: altmap ranges overlap")
        vmask = vmask > 0
    if vmask is not None and facts.altmap_pages_unreserved:
        # 6.11: mhp_init_memmap_on_memory leaves the vmemmap pages neither PageOffline nor
        # PG_reserved; they are the altmap's, not free or allocated
        nonres = nonres & ~vmask
    # a page not PG_reserved is free, on a pcp list or allocated, exactly once; a PG_reserved
    # page is an altmap page or (boot sections) a boot reservation or a hole
    want = nonres if pmask is None else nonres & pmask
    wrong = fpa != want
    if wrong.any():
        idx = np.flatnonzero(wrong)
        i = int(idx[0])
        e_.append(f"section {nr}: {len(idx)} pfns not accounted exactly once, first "
                  f"{base + i:#x} (free/pcp/allocated claims {int(fpa[i])}, reserved "
                  f"{not bool(nonres[i])}, buddy {bool(buddy[i])}, refcount "
                  f"{int(arr['_refcount'][i])})")
    res = ~nonres
    if pmask is not None:
        res &= pmask
    if early:
        unexplained = res & ~boot_ok
        if vmask is not None:
            unexplained &= ~vmask
    else:
        unexplained = res if vmask is None else res & ~vmask
    if vmask is not None and not facts.altmap_pages_unreserved and (vmask & nonres).any():
        i = int(np.flatnonzero(vmask & nonres)[0])
        e_.append(f"pfn {base + i:#x}: altmap (vmemmap) page without PG_reserved")
    if unexplained.any():
        i = int(np.flatnonzero(unexplained)[0])
        e_.append(f"section {nr}: {int(unexplained.sum())} PG_reserved pages nobody "
                  f"reserved, first {base + i:#x}")
    zl = _zone_links(arr, zsh)
    zmin, zmax = int(zl.min()), int(zl.max())
    if zmin == zmax:
        z = zmin
        mg_[z] = int(want.sum())
        if nram:
            pc_[z] = nram
            if early:
                ec_[z] = nram
            sl_[z] = base + ram_lo
            sh_[z] = base + ram_hi
        sz_[0] = (zmin, zmax) if nram else None
    else:
        ramv = np.ones(P, bool) if ram is None else ram
        mc = np.bincount(zl[want])
        for z in np.flatnonzero(mc).tolist():
            mg_[z] = int(mc[z])
        zr = zl[ramv]
        sz_[0] = (int(zr.min()), int(zr.max())) if len(zr) else None
        rc = np.bincount(zr) if len(zr) else np.zeros(0, np.int64)
        for z in np.flatnonzero(rc).tolist():
            pc_[z] = int(rc[z])
            if early:
                ec_[z] = int(rc[z])
            ridx = np.flatnonzero(ramv & (zl == z))
            sl_[z] = base + int(ridx[0])
            sh_[z] = base + int(ridx[-1]) + 1
    # pcp pages: on their zone's list, refcount 0, no page type
    if "pcp" in items:
        offs = items["pcp"][0]
        zids = items["pcp zone"]
        wrong = (zl[offs] != zids) | (arr["_refcount"][offs] != 0) | \
            (ptype[offs] != np.uint32(0xFFFFFFFF))
        if wrong.any():
            i = int(offs[np.flatnonzero(wrong)[0]])
            e_.append(f"pcp page {base + i:#x}: zone {int(zl[i])}, refcount "
                      f"{int(arr['_refcount'][i])}, page_type {int(ptype[i]):#x}")
    return r_


def _check_sections_and_pages(m, facts, allow, errs) -> dict:
    """Sections and struct pages; every pfn accounted exactly once.

    Claimants: free buddy blocks (found by scanning struct pages for PageBuddy heads), per-CPU
    list pages, blocks the allocator handed out, altmap (vmemmap) ranges, and boot reservations
    (PG_reserved pages of boot sections that memblock reserved or that are not boot RAM). In an
    online section every pfn of a present subsection has exactly one claimant and no pfn of an
    absent subsection has one; an offline section may only hold altmap pages; a section that is
    not present holds nothing."""
    ms, alloc = m.ms, m.allocator
    P, shift = facts.P, facts.shift
    zsh = ms.zones_pgshift
    max_order = alloc.max_order
    pb_order = alloc.pageblock_order
    present = ms.present_sections()
    present_set = set(present)
    memmaps = set(ms.memmap_sections())
    flags_of = {nr: ms.section_mem_map(nr) for nr in present}
    for nr in memmaps - present_set:
        errs.append(f"section {nr}: struct pages allocated but the section is not present")
    online_secs = set()
    for nr in present:
        f = flags_of[nr]
        if not f & SECTION_HAS_MEM_MAP or nr not in memmaps:
            errs.append(f"section {nr}: present without a memmap (flags {f:#x})")
        if not ms.has_usage(nr) or not ms.subsection_map(nr):
            errs.append(f"section {nr}: present without a usage map / subsections")
        if f & SECTION_IS_EARLY and nr not in facts.boot_sections:
            errs.append(f"section {nr}: SECTION_IS_EARLY on a hot-added section")
        if f & SECTION_IS_ONLINE:
            online_secs.add(nr)
    if present and m.highest_present_section_nr < present[-1]:
        errs.append(f"__highest_present_section_nr {m.highest_present_section_nr} below "
                    f"section {present[-1]}")

    # claims by the lists the kernel keeps: (pfn, nr_pages) arrays per kind
    pcp_total: dict[int, int] = {}
    pcp_pfn, pcp_n, pcp_zone = [], [], []
    for zid in alloc.zones():
        for cpu in range(alloc.nr_cpus):
            count = 0
            for pindex, pfns in alloc.pcp_pages(zid, cpu):
                order = pindex // 3 if pindex < NR_LOWORDER_PCP_LISTS else pb_order
                pcp_pfn.extend(pfns)
                pcp_n.extend([1 << order] * len(pfns))
                pcp_zone.extend([zid] * len(pfns))
                count += len(pfns) << order
            info = alloc.pcp_info(zid, cpu)
            if info[0] != count:
                errs.append(f"zone {zid} cpu {cpu}: pcp->count {info[0]} but its lists hold "
                            f"{count} pages")
            pcp_total[zid] = pcp_total.get(zid, 0) + count
    allocated = alloc.allocated()
    owners = m.owners
    ledger = {p: o for p, (_, o, _) in owners.buddy.items()}
    if ledger != allocated:
        extra = sorted(set(allocated.items()) - set(ledger.items()))[:4]
        missing = sorted(set(ledger.items()) - set(allocated.items()))[:4]
        errs.append(f"owner ledger != allocator's allocated blocks: allocated without owner "
                    f"{[(hex(p), o) for p, o in extra]}, owned but not allocated "
                    f"{[(hex(p), o) for p, o in missing]}")
    alt_pfns, alt_ns = list(owners.altmap), list(owners.altmap.values())
    if m.policy.memory_block_keeps_altmap:
        # 6.6+ force mode: the block reserves nr_vmemmap_pages = altmap->free, pageblock
        # padded; the pages past those the altmap handed out are reserved too (the "waste")
        for mem in m.memory.blocks.values():
            v = mem.nr_vmemmap_pages
            if not v:
                continue
            s0 = mem.start_pfn
            used = sum(n for q, n in owners.altmap.items() if s0 <= q < s0 + v)
            if used < v:
                alt_pfns.append(s0 + used)
                alt_ns.append(v - used)
    kinds = {
        "pcp": (np.array(pcp_pfn, np.int64), np.array(pcp_n, np.int64)),
        "allocated": (np.array(list(allocated), np.int64),
                      np.array([1 << o for o in allocated.values()], np.int64)),
        "altmap": (np.array(alt_pfns, np.int64), np.array(alt_ns, np.int64)),
    }
    bucket: dict[int, dict] = {}
    for kind, (pfns, ns) in kinds.items():
        if not len(pfns):
            continue
        if ((pfns >> shift) != ((pfns + ns - 1) >> shift)).any():
            errs.append(f"a {kind} block crosses a section boundary")
        secs = pfns >> shift
        for nr in np.unique(secs).tolist():
            sel = secs == nr
            bucket.setdefault(nr, {})[kind] = (pfns[sel] & (P - 1), ns[sel])
            if kind == "pcp":
                bucket[nr]["pcp zone"] = np.array(pcp_zone, np.int64)[sel]

    free_scan = []
    sec_zones = {}       # online section -> (min, max) zone id over its RAM pages
    managed, present_cnt, early_cnt, free_cnt = {}, {}, {}, {}
    span_lo, span_hi = {}, {}
    cache = facts.census_cache
    used = {}
    crcs = {}
    for nr in present:
        arr = ms.memmap(nr)
        if arr is None:
            continue
        items = bucket.pop(nr, {})
        online = nr in online_secs
        sub = ms.subsection_map(nr)
        digest = zlib.crc32(b"".join(x.tobytes() for k in sorted(items) for x in
                                     (items[k] if isinstance(items[k], tuple) else (items[k],))))
        crc = zlib.crc32(arr)
        crcs[nr] = crc
        key = (nr, crc, online, flags_of[nr], sub, digest)
        r = cache.get(key)
        if r is None:
            r = _section_census(nr, arr, online, items, flags_of[nr], sub,
                                ms.pfn_subsection_shift, facts, zsh, max_order)
        used[key] = r
        e_, fs_, fc_, mg_, pc_, ec_, sl_, sh_, sz_ = r
        errs.extend(e_)
        free_scan.extend(fs_)
        for dst, src in ((free_cnt, fc_), (managed, mg_), (present_cnt, pc_), (early_cnt, ec_)):
            for z, v in src.items():
                dst[z] = dst.get(z, 0) + v
        for z, v in sl_.items():
            span_lo[z] = min(span_lo.get(z, v), v)
        for z, v in sh_.items():
            span_hi[z] = max(span_hi.get(z, v), v)
        if online:
            sec_zones[nr] = sz_[0]
    facts.census_cache = used
    facts.last_crcs = crcs
    for nr, items in bucket.items():
        for kind, (offs, ns) in items.items():
            if kind == "pcp zone":
                continue
            errs.append(f"{len(offs)} {kind} blocks (first pfn {(nr << shift) + int(offs[0]):#x})"
                        f" lie in section {nr}, which is not present")
    # free lists == struct-page scan
    lists = []
    for zid in alloc.zones():
        for order in range(max_order):
            for mt in range(5):
                n = alloc.nr_free(zid, order, mt)
                if not n:
                    continue
                pfns = alloc.free_list(zid, order, mt)
                if len(pfns) != n:
                    errs.append(f"zone {zid} order {order} mt {mt}: nr_free {n} but the list "
                                f"holds {len(pfns)}")
                if mt == MIGRATE_ISOLATE:
                    errs.append(f"zone {zid}: {n} order-{order} blocks on MIGRATE_ISOLATE "
                                "lists after the operation")
                lists.append((np.array(pfns, np.int64) << 20) | (order << 13) | zid)
    lists = np.sort(np.concatenate(lists)) if lists else np.zeros(0, np.int64)
    scan = np.sort(np.concatenate(free_scan)) if free_scan else np.zeros(0, np.int64)
    if len(lists) != len(scan) or (lists != scan).any():
        dec = lambda k: (hex(int(k) >> 20), (int(k) >> 13) & 127, int(k) & 8191)
        a = [dec(k) for k in np.setdiff1d(lists, scan)[:3]]
        b = [dec(k) for k in np.setdiff1d(scan, lists)[:3]]
        errs.append(f"free lists != PageBuddy scan of struct pages: listed but not PageBuddy "
                    f"{a}, PageBuddy but not listed {b} (duplicates: "
                    f"{len(lists) - len(np.unique(lists))})")
    return {"present": present_set, "online": online_secs, "managed": managed,
            "present_pages": present_cnt, "early": early_cnt, "free": free_cnt,
            "span": {z: (span_lo[z], span_hi[z]) for z in span_lo}, "pcp": pcp_total,
            "flags": flags_of, "sec_zones": sec_zones}


def _check_zones(m, facts, c, errs) -> None:
    """Zone and node counters against the struct-page recount: spanned ≥ present ≥ managed,
    present/managed/NR_FREE_PAGES/present_early equal to the recount, the span exactly the
    first..last present pfn, node present = Σ zones, node span = union of zone spans,
    MemTotal = Σ managed, node states from present pages."""
    total = 0
    known = set()
    for nid, pgdat in m.pgdats.items():
        node_present = 0
        spans = []
        for z in pgdat.node_zones:
            zid = z.zoneid
            known.add(zid)
            name = f"node {nid} {ZONE_NAMES[z.idx]}"
            present = c["present_pages"].get(zid, 0)
            managed = c["managed"].get(zid, 0)
            free = c["free"].get(zid, 0)
            got = (z.present_pages, z.managed_pages, z.nr_free_pages)
            if got != (present, managed, free):
                errs.append(f"{name}: present/managed/NR_FREE_PAGES {got} but struct pages "
                            f"say {(present, managed, free)}")
            if z.present_early_pages != c["early"].get(zid, 0):
                errs.append(f"{name}: present_early_pages {z.present_early_pages}, recount "
                            f"{c['early'].get(zid, 0)}")
            if not z.spanned_pages >= z.present_pages >= z.managed_pages >= 0:
                errs.append(f"{name}: spanned {z.spanned_pages} ≥ present {z.present_pages} ≥ "
                            f"managed {z.managed_pages} does not hold")
            span = c["span"].get(zid)
            want = (0, 0) if span is None else (span[0], span[1] - span[0])
            if (z.zone_start_pfn if z.spanned_pages else 0, z.spanned_pages) != want:
                errs.append(f"{name}: span start {z.zone_start_pfn:#x} spanned "
                            f"{z.spanned_pages} but its present pages run "
                            f"{want[0]:#x}+{want[1]}")
            if z.spanned_pages:
                spans.append((z.zone_start_pfn, z.zone_end_pfn))
                if pgdat.nr_zones < z.idx + 1 and z.present_pages:
                    errs.append(f"{name}: populated but pgdat->nr_zones is {pgdat.nr_zones}")
            node_present += z.present_pages
            total += z.managed_pages
        if pgdat.node_present_pages != node_present:
            errs.append(f"node {nid}: node_present_pages {pgdat.node_present_pages} != Σ zones "
                        f"{node_present}")
        want = (min(s for s, _ in spans), max(e for _, e in spans)) if spans else None
        got = (pgdat.node_start_pfn, pgdat.node_end_pfn) if pgdat.node_spanned_pages else None
        if got != want:
            errs.append(f"node {nid}: span {got} but the zones span {want}")
        has_mem = node_present > 0
        has_normal = any(z.present_pages for z in pgdat.node_zones[:3])
        if (pgdat.has_memory, pgdat.has_normal_memory) != (has_mem, has_normal):
            errs.append(f"node {nid}: N_MEMORY/N_NORMAL_MEMORY {pgdat.has_memory}/"
                        f"{pgdat.has_normal_memory} but present pages say {has_mem}/{has_normal}")
        if has_mem and not pgdat.online:
            errs.append(f"node {nid}: has memory but is offline")
        if not pgdat.online and (pgdat.node_spanned_pages or any(
                b.nid == nid for b in m.memory.blocks.values())):
            errs.append(f"node {nid}: offline but spans pages or has memory blocks")
        if (pgdat.kswapd, pgdat.kcompactd) != (has_mem, has_mem):
            errs.append(f"node {nid}: kswapd/kcompactd {pgdat.kswapd}/{pgdat.kcompactd} but "
                        f"N_MEMORY is {has_mem}")
    for zid in set(c["present_pages"]) | set(c["managed"]):
        if zid not in known:
            errs.append(f"struct pages link to zone id {zid}, which no node has")
    if m.totalram_pages != total:
        errs.append(f"totalram_pages (MemTotal) {m.totalram_pages} != Σ managed {total}")


def _check_pcp_and_isolation(m, c, errs) -> None:
    """No operation leaves a zone's pcp disabled, a pageblock isolated or an isolated-pageblock
    count; the pcp sizing is the zone's; an unpopulated zone has empty pcp lists."""
    alloc, ms = m.allocator, m.ms
    state = alloc.state()["zones"]
    for nid, pgdat in m.pgdats.items():
        for z in pgdat.node_zones:
            zs = state.get(z.zoneid)
            if zs is None:
                continue
            if zs["pcp_disabled"]:
                errs.append(f"zone {z.zoneid}: pcp still disabled")
            if zs["nr_isolate_pageblock"] or z.nr_isolate_pageblock:
                errs.append(f"zone {z.zoneid}: nr_isolate_pageblock "
                            f"{zs['nr_isolate_pageblock']}/{z.nr_isolate_pageblock}")
            pageset = zone_pageset(m, z)
            for cpu, p in enumerate(zs["pcp"]):
                if (p[1], p[2]) != pageset:
                    errs.append(f"zone {z.zoneid} cpu {cpu}: pcp high/batch {p[1]}/{p[2]} but "
                                f"the zone's pageset is {pageset[0]}/{pageset[1]}")
            if not z.present_pages and c["pcp"].get(z.zoneid):
                errs.append(f"zone {z.zoneid}: unpopulated but holds {c['pcp'][z.zoneid]} "
                            "pages on pcp lists")
    pb = 1 << alloc.pageblock_order
    for nr in c["online"]:
        base = nr << ms.pfn_section_shift
        for p in range(base, base + ms.pages_per_section, pb):
            if ms.get_pageblock_migratetype(p) == MIGRATE_ISOLATE:
                errs.append(f"pageblock {p:#x} of online section {nr} left MIGRATE_ISOLATE")
                break


def _check_page_tables(m, facts, allow, c, errs) -> dict:
    """Page tables walked from the root: the arch's own walk where it keeps its tables in Python
    (powerpc64 radix and hash, s390x: hotmem.testing.arch_tables), else the compiled core's
    (hotmem.testing.pagetables)."""
    arch_walk = _ARCH_TABLE_CHECKS.get(type(m.pgtables).__name__)
    if arch_walk is not None:            # page tables the arch keeps in Python (ppc, s390)
        return arch_walk(m, facts, allow, c, errs)
    return _check_core_tables(m, facts, allow, c, errs)


def _check_blocks_and_altmaps(m, facts, allow, c, pt, errs) -> None:
    """Memory block devices against sections and struct pages: a block per present section
    (except sections a failed add left behind), state = the online state of its sections, zone
    and node = those of its pages; nr_vmemmap_pages = the block's pages that back its own
    struct pages in the vmemmap = the altmap ledger; altmap alloc + align ≤ free."""
    ms, pol = m.ms, m.policy
    bs_pages = m.memory_block_size_bytes >> m.arch.page_shift
    spb = m.memory.sections_per_block
    block_secs = set()
    for bid, mem in m.memory.blocks.items():
        secs = range(bid * spb, (bid + 1) * spb)
        block_secs.update(secs)
        missing = [s for s in secs if s not in c["present"]]
        if missing:
            errs.append(f"memory{bid}: sections {missing} not present")
            continue
        on = [s in c["online"] for s in secs]
        if mem.state == "online" and not all(on):
            errs.append(f"memory{bid}: online but sections {[s for s in secs if s not in c['online']]} offline")
        if mem.state == "offline" and any(on):
            errs.append(f"memory{bid}: offline but sections {[s for s in secs if s in c['online']]} online")
        if mem.state not in ("online", "offline"):
            errs.append(f"memory{bid}: left in state {mem.state!r}")
        start = mem.start_pfn
        if mem.state == "online":
            zs = [c["sec_zones"].get(s) for s in secs]
            zs = [z for z in zs if z is not None]
            early = any(c["flags"][s] & SECTION_IS_EARLY for s in secs)
            zl = sorted({z for pair in zs for z in pair})
            if mem.zone is not None and zl != [mem.zone.zoneid]:
                errs.append(f"memory{bid}: zone {mem.zone.zoneid} but its pages link to {zl}")
            if mem.zone is None and len(zl) == 1 and not early:
                errs.append(f"memory{bid}: online in one zone {zl} but mem->zone is NULL")
            nids = sorted({z >> ms.zones_width for z in zl})
            if early and len(nids) > 1:
                # a boot block spanning nodes: memory_block_add_nid (MEMINIT_EARLY) leaves the
                # last node and no zone
                if mem.nid != nids[-1] or mem.zone is not None:
                    errs.append(f"memory{bid}: boot block on nodes {nids} has node {mem.nid} "
                                f"and zone {mem.zone and mem.zone.zoneid}")
            elif nids != [mem.nid]:
                errs.append(f"memory{bid}: node {mem.nid} but its pages are on {nids}")
        elif mem.zone is not None:
            errs.append(f"memory{bid}: offline but mem->zone is set")
        v = mem.nr_vmemmap_pages
        alt = sum(n for p, n in m.owners.altmap.items() if start <= p < start + bs_pages)
        if v or alt:
            # the pages at the block's start that back the block's own struct pages
            own = sum(min(e, start + bs_pages) - max(s, start) for s, e in pt["targets"]
                      if s < start + bs_pages and e > start)
            if pol.memory_block_keeps_altmap:
                # 6.6+: nr_vmemmap_pages = altmap->free (memory_block_memmap_on_memory_pages,
                # pageblock-padded in force mode); the altmap hands out at most that, none
                # where the struct pages were mapped already (powerpc's vmemmap_populated)
                if alt > v:
                    errs.append(f"memory{bid}: nr_vmemmap_pages {v} but the altmap handed "
                                f"out {alt} of its pages")
                if own < alt:
                    errs.append(f"memory{bid}: the altmap handed out {alt} pages but only "
                                f"{own} of the block's pages back struct pages")
            else:
                if alt != v and not (pol.nr_vmemmap_pages_blocks == "first" and not v):
                    errs.append(f"memory{bid}: nr_vmemmap_pages {v} but the altmap handed out "
                                f"{alt} of its pages")
                if v and own < v:
                    errs.append(f"memory{bid}: nr_vmemmap_pages {v} but only {own} of its "
                                "pages back struct pages")
            if mem.state == "online" and v:
                first = ms.memmap(mem.start_section_nr)["flags"][:v]
                if not pol.hotplug_memmap_page_offline and \
                        not (first >> np.uint64(PG_RESERVED) & np.uint64(1)).all():
                    errs.append(f"memory{bid}: vmemmap pages without PG_reserved")
                if pol.hotplug_memmap_page_offline and \
                        (first >> np.uint64(PG_RESERVED) & np.uint64(1)).any():
                    errs.append(f"memory{bid}: vmemmap pages PG_reserved (6.11 clears it)")
                if pol.vmemmap_self_hosted_flag and \
                        not (first >> np.uint64(PG_OWNER_PRIV_1) & np.uint64(1)).all():
                    errs.append(f"memory{bid}: vmemmap pages without PageVmemmapSelfHosted")
        if mem.altmap is not None:
            a = mem.altmap
            if a.alloc + a.align > a.free:
                errs.append(f"memory{bid}: altmap alloc {a.alloc} + align {a.align} > free "
                            f"{a.free}")
            if a.base_pfn != start or a.free != v or a.alloc != alt:
                errs.append(f"memory{bid}: altmap {a.as_tuple()} vs block start {start:#x}, "
                            f"nr_vmemmap_pages {v}, altmap pages handed out {alt}")
    for nr in sorted(c["present"] - block_secs - allow.orphan_sections):
        errs.append(f"section {nr}: present but no memory block covers it")
    for nr in sorted(allow.orphan_sections & c["online"]):
        errs.append(f"section {nr}: left behind by a failed add, yet online")


def _check_iomem(m, facts, allow, errs) -> None:
    """The iomem tree is well formed; "System RAM" covers every present section's RAM and
    lies over memory that is present (or that a removal could not release)."""
    def walk(r, depth):
        prev = None
        for ch in r.children:
            if not (r.start <= ch.start <= ch.end <= r.end):
                errs.append(f"iomem [{ch.start:#x}-{ch.end:#x}] {ch.name!r} outside its parent")
            if prev is not None and ch.start <= prev.end:
                errs.append(f"iomem [{ch.start:#x}-{ch.end:#x}] overlaps [{prev.start:#x}-"
                            f"{prev.end:#x}]")
            prev = ch
            walk(ch, depth + 1)
    walk(m.resources.root, 0)
    ps = m.arch.page_shift
    ram = _merge([(s >> ps, e >> ps) for s, e in m.resources.system_ram_ranges()])
    P = facts.P
    present = set(m.ms.present_sections())
    for nr in present:
        if nr in allow.orphan_sections:
            continue
        if nr in facts.boot_sections and m.ms.section_mem_map(nr) & SECTION_IS_EARLY:
            pieces = [(max(s, nr * P), min(e, (nr + 1) * P)) for s, e in facts.ram_ranges
                      if max(s, nr * P) < min(e, (nr + 1) * P)]
        else:
            pieces = [(nr * P, (nr + 1) * P)]
        for s, e in pieces:
            if not _covered(ram, s, e):
                errs.append(f"section {nr}: RAM {s:#x}-{e:#x} has no System RAM resource")
    stale = _merge(allow.stale_iomem)
    for s, e in ram:
        p = s
        while p < e:
            nr = p // P
            q = min(e, (nr + 1) * P)
            if nr not in present and not _covered(stale, p, q):
                errs.append(f"System RAM resource over pfns {p:#x}-{q:#x}: section {nr} "
                            "is not present")
            p = q


def _check_slab(m, facts, allow, errs) -> None:
    """kmalloc'ed mem_section_usage objects = sections with a usage map that boot did not
    allocate; mem_section root pages = roots beyond those boot allocated."""
    ms = m.ms
    usage = 0
    present = set(ms.present_sections())
    for nr in present | set(allow.touched_sections):
        # boot sections' usage maps are memblock (sparse_init) unless hot-added after boot:
        # s390 standby memory (add_memory at an initcall) kmallocs them like any hot-add
        # (an early section's memblock usage map stays when it is removed and is reused when
        # it is added again: section_deactivate only kfrees a usage map that is not
        # PageReserved, section_activate allocates one only when there is none)
        if nr < ms.nr_mem_sections and ms.has_usage(nr) and nr not in facts.early_sections:
            usage += 1
            if nr not in present:
                errs.append(f"section {nr}: usage map kept after the section went away")
    got = m.slab.objects.get("mem_section_usage", 0)
    if got != usage:
        errs.append(f"slab: {got} mem_section_usage objects, {usage} hot-added usage maps")
    roots = ms.nr_roots_allocated() - facts.boot_roots
    if m.slab.objects.get("mem_section root", 0) != roots:
        errs.append(f"slab: {m.slab.objects.get('mem_section root', 0)} mem_section roots, "
                    f"{roots} allocated after boot")
