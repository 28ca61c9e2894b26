"""Recorded runs as JSON: what ``hotmem validate --record DIR`` writes and the test suite reads.

    {"format": "hotmem-validate/1", "scenario_toml": "...", "info": {...},
     "steps": [{"name", "op", "ok", "error", "detail", "dimms", "seconds",
                "reading": {"files": {path: text},
                            "kpage": [{"pfn", "count", "flags", "counts"}]}}]}

kpageflags/kpagecount words are gzip+base64 of the little-endian u64 array, as read.
"""
from __future__ import annotations

import json
from pathlib import Path

from hotmem.validate.guest import decode_words, encode_words
from hotmem.validate.runner import Run, StepResult
from hotmem.validate.scenario import Scenario, for_arch, for_kernel, parse_scenario

FORMAT = "hotmem-validate/1"


def _reading_to_json(reading):
    if reading is None:
        return None
    return {"files": reading["files"],
            "kpage": [{"pfn": pfn, "count": n, "flags": encode_words(v["flags"]),
                       "counts": encode_words(v["counts"])}
                      for (pfn, n), v in sorted(reading["kpage"].items())]}


def _reading_from_json(obj):
    if obj is None:
        return None
    return {"files": obj["files"],
            "kpage": {(k["pfn"], k["count"]): {"flags": decode_words(k["flags"]),
                                                "counts": decode_words(k["counts"])}
                      for k in obj["kpage"]}}


def run_to_json(sc: Scenario, run: Run, toml_text: str) -> dict:
    return {"format": FORMAT, "side": run.side, "scenario": sc.name, "scenario_toml": toml_text,
            "info": run.info,
            "steps": [{"name": s.name, "op": s.op, "ok": s.ok, "error": s.error,
                       "detail": s.detail, "dimms": s.dimms, "seconds": s.seconds,
                       "reading": _reading_to_json(s.reading)} for s in run.steps]}


def save(path, sc: Scenario, run: Run, toml_text: str) -> Path:
    """Write a run to ``path`` (a directory gets ``<scenario>.json``)."""
    path = Path(path)
    if path.is_dir() or not path.suffix:
        path.mkdir(parents=True, exist_ok=True)
        path = path / f"{sc.name}.json"
    path.write_text(json.dumps(run_to_json(sc, run, toml_text), indent=1) + "\n")
    return path


def load(path) -> tuple[Scenario, Run]:
    """A recorded run and the scenario it ran (parsed from the embedded TOML)."""
    doc = json.loads(Path(path).read_text())
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} recording")
    sc = parse_scenario(doc["scenario_toml"], doc["scenario"] + ".toml")
    # the version the run was taken on (recordings without it are Debian 6.1's)
    sc = for_kernel(sc, doc["info"].get("kernel_version", "6.1"))
    info = doc["info"]
    m = sc.machine
    if ((info.get("arch", "x86_64"), info.get("page_size"), info.get("mmu"))
            != (m.arch, m.page_size, m.mmu)):
        sc = for_arch(sc, doc["info"]["arch"], doc["info"].get("page_size"),
                      doc["info"].get("mmu"))
    steps = [StepResult(s["name"], s["op"], s["ok"], s["error"], s["detail"],
                        _reading_from_json(s["reading"]),
                        {k: v for k, v in s["dimms"].items()}, s["seconds"])
             for s in doc["steps"]]
    return sc, Run(doc["side"], steps, doc["info"])
