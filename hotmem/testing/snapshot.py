"""Machine snapshots for the error-path and teardown checks: :func:`fast_snapshot` (the snapshot
with struct page arrays as CRC-32s), :func:`diff_snapshots` (where two differ), and the state the
snapshot leaves out (iomem as a flat list, the arch's boot state)."""
from __future__ import annotations

import zlib

from hotmem.testing.facts import _covered


PGDAT_FIELDS = ("node_id", "node_start_pfn", "node_spanned_pages", "node_present_pages",
                "nr_zones", "online", "has_normal_memory", "has_memory", "cpus", "kswapd",
                "kcompactd", "zones")
ZONE_FIELDS = ("node", "idx", "zone_start_pfn", "spanned_pages", "present_pages",
               "present_early_pages", "nr_isolate_pageblock", "contiguous", "watermark",
               "watermark_boost", "lowmem_reserve", "pageset_high", "pageset_batch",
               "stat_threshold")
_EMPTY_ZONE = {"nr_free_pages": 0, "managed": 0, "nr_isolate_pageblock": 0, "free_area": {},
               "pcp": None, "pcp_disabled": False}


def diff_snapshots(a: dict, b: dict) -> list:
    """[(path, old, new)] where two ``Machine.snapshot()`` results differ; paths name the
    piece: ``ms.memmaps[32]``, ``ms.sections[32].usemap``, ``alloc.zones[2].free_area``,
    ``pgdats[0].zones[3].contiguous``, ``pt``, ``iomem``, ..."""
    out = []
    ma, mb = a["ms"], b["ms"]
    if ma["roots"] != mb["roots"]:
        out.append(("ms.roots", ma["roots"], mb["roots"]))
    for nr in sorted(set(ma["sections"]) | set(mb["sections"])):
        sa, sb = ma["sections"].get(nr), mb["sections"].get(nr)
        if sa == sb:
            continue
        if sa is None or sb is None:
            out.append((f"ms.sections[{nr}]", sa, sb))
            continue
        for i, name in enumerate(("flags", "subsection_map", "usage", "usemap")):
            if sa[i] != sb[i]:
                out.append((f"ms.sections[{nr}].{name}", sa[i], sb[i]))
    for nr in sorted(set(ma["memmaps"]) | set(mb["memmaps"])):
        if ma["memmaps"].get(nr) != mb["memmaps"].get(nr):
            out.append((f"ms.memmaps[{nr}]", None, None))
    za, zb = a["alloc"]["zones"], b["alloc"]["zones"]
    for zid in sorted(set(za) | set(zb)):
        x, y = za.get(zid, _EMPTY_ZONE), zb.get(zid, _EMPTY_ZONE)
        for k in _EMPTY_ZONE:
            if k == "pcp" and (x[k] is None or y[k] is None):
                if any(p[0] for p in (x[k] or y[k] or ())):
                    out.append((f"alloc.zones[{zid}].pcp", x[k], y[k]))
                continue
            if x[k] != y[k]:
                out.append((f"alloc.zones[{zid}].{k}", x[k], y[k]))
    if a["alloc"]["allocated"] != b["alloc"]["allocated"]:
        out.append(("alloc.allocated", a["alloc"]["allocated"], b["alloc"]["allocated"]))
    for pa, pb in zip(a["pgdats"], b["pgdats"]):
        for i, name in enumerate(PGDAT_FIELDS[:-1]):
            if pa[i] != pb[i]:
                out.append((f"pgdats[{pa[0]}].{name}", pa[i], pb[i]))
        for zx, zy in zip(pa[-1], pb[-1]):
            for i, name in enumerate(ZONE_FIELDS):
                if zx[i] != zy[i]:
                    out.append((f"pgdats[{pa[0]}].zones[{zx[1]}].{name}", zx[i], zy[i]))
    for k in ("pt", "blocks", "iomem", "owners", "slab", "totalram", "max_pfn", "fw",
              "memmap stats"):
        if a[k] != b[k]:
            out.append((k, a[k] if k not in ("pt",) else None, b[k] if k != "pt" else None))
    return out


def fast_snapshot(m, sections, crcs=None) -> dict:
    """``m.snapshot()`` with each struct page array replaced by its CRC-32 (and the section
    table read for ``sections`` plus every present one): the same comparison for the error-path
    checks at a fraction of the cost."""
    ms = m.ms
    pb = 1 << ms.pageblock_order
    secs = {}
    for nr in sorted(set(sections) | set(ms.present_sections())):
        if not 0 <= nr < ms.nr_mem_sections:
            continue
        f, sub, u = ms.section_mem_map(nr), ms.subsection_map(nr), ms.has_usage(nr)
        if f or sub or u:
            usemap = b""
            if u:
                base = nr << ms.pfn_section_shift
                usemap = bytes(ms.get_pageblock_migratetype(p) |
                               (8 if ms.get_pageblock_skip(p) else 0)
                               for p in range(base, base + ms.pages_per_section, pb))
            secs[nr] = (f, sub, int(u), usemap)
    return m.snapshot(ms_state={
        "roots": ms.nr_roots_allocated(), "sections": secs,
        "memmaps": {nr: crcs[nr] if crcs and nr in crcs else zlib.crc32(ms.memmap(nr))
                    for nr in ms.memmap_sections()}})


def _free_blocks(free_area: dict) -> list:
    """The free blocks of one zone as sorted (order, pfn), whatever list holds them."""
    return sorted((order, pfn) for (order, _), pfns in free_area.items() for pfn in pfns)


def _drain_all(m) -> None:
    """__drain_all_pages for every zone (a transition the kernel makes at any time)."""
    for zid in m.allocator.zones():
        m.allocator.drain_zone_pages(zid)


def _iomem_flat(root, skip, page_shift=12) -> list:
    out = []

    def walk(r):
        for c in r.children:
            if not (c.name == "System RAM" and
                    _covered(skip, c.start >> page_shift, (c.end + 1) >> page_shift)):
                out.append((c.start, c.end, c.name, c.flags))
            walk(c)
    walk(root)
    return out


def _arch_boot_state(m) -> dict:
    """The arch's own state (ArchOps.arch_state: powerpc64's vmemmap_list as (entries,
    num_left, num_freed, pages), s390x's SCLP increments), by name, for the teardown."""
    return {k: v.state() for k, v in m.arch_ops.arch_state().items()}
