"""The comparison as plain data and JSON (:func:`to_dict`, :func:`to_json`)."""
from __future__ import annotations

import json
from dataclasses import asdict, fields

from hotmem.report.comparison import Comparison
from hotmem.report.ledger import StepCost
from hotmem.report.measure import PlanResult


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def _plan_result_dict(r: PlanResult | None) -> dict | None:
    if r is None:
        return None
    d = {f.name: getattr(r, f.name) for f in fields(r) if f.name not in ("machine", "adds")}
    d = {k: asdict(v) if isinstance(v, StepCost) else v for k, v in d.items()}
    d["adds"] = [asdict(a) for a in r.adds]
    for a, ad in zip(r.adds, d["adds"]):
        ad["memmap_pages"] = a.memmap_pages
        ad["page_table_pages"] = a.page_table_pages
    d["totals"] = {k: r.total(k) for k in ("memmap_pages", "page_table_pages",
                                           "taken_from_existing", "off_node_memmap",
                                           "memmap_base_pages", "managed_added",
                                           "nr_vmemmap_pages")}
    waste = [a.padding_waste for a in r.adds]
    d["totals"]["padding_waste"] = None if None in waste else sum(waste)
    d["totals"]["memmap_by_node"] = r.memmap_by_node()
    return d


def to_dict(cmp: Comparison) -> dict:
    """Everything the text shows, as plain data (pages unless a key says bytes or kb)."""
    sizes = []
    for alt_c, reg_c in cmp.sizes:
        entry = {"size": reg_c.size, "memmap_formula_bytes": reg_c.memmap_formula_bytes}
        for name, c in (("altmap", alt_c), ("regular", reg_c)):
            d = asdict(c)
            d.update(memmap_bytes=c.memmap_bytes, taken_bytes=c.taken_bytes,
                     total_overhead_bytes=c.total_overhead_bytes)
            entry[name] = d
        sizes.append(entry)
    return _jsonable({
        "plan": asdict(cmp.plan), "machine": cmp.machine,
        "altmap": _plan_result_dict(cmp.altmap), "regular": _plan_result_dict(cmp.regular),
        "altmap_fragmented": _plan_result_dict(cmp.altmap_fragmented),
        "regular_fragmented": _plan_result_dict(cmp.regular_fragmented),
        "sizes": sizes,
    })


def to_json(cmp: Comparison) -> str:
    return json.dumps(to_dict(cmp), indent=2) + "\n"
