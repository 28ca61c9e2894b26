"""The result table: one row per point, configuration columns first. Rows land in
``OUT.partial.jsonl`` as they arrive (what a re-run resumes from); the finished table is written
to a temporary name and renamed to ``OUT`` (.parquet through pyarrow, or .csv), so a file named
``OUT`` is always complete."""
from __future__ import annotations

import json
import os

from hotmem.sweep.spec import AXES

LEAD = ["key", "index"] + list(AXES)
STATUS = ["status", "errno", "error", "failed_step", "time_s"]


def partial_path(out: str) -> str:
    return out + ".partial.jsonl"


def read_done(out: str | None, keys: set) -> dict:
    """Rows already computed for ``keys``: from a complete ``out`` and from its partial log."""
    done = {}
    if not out:
        return done
    if os.path.exists(out):
        for row in read_table(out).to_dict("records"):
            if row.get("key") in keys:
                row = {k: _clean(v) for k, v in row.items()}
                row.update({c: row.get(c) or "" for c in STATUS if c != "time_s"})
                done[row["key"]] = row
    p = partial_path(out)
    if os.path.exists(p):
        with open(p) as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:              # a line cut short by a crash
                    continue
                if row.get("key") in keys:
                    done[row["key"]] = row
    return done


def _clean(v):
    import math
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item"):                      # numpy scalars
        return v.item()
    return v


class PartialLog:
    """Append-only JSON lines of finished rows."""

    def __init__(self, out: str | None):
        self.f = open(partial_path(out), "a") if out else None

    def write(self, row: dict):
        if self.f:
            self.f.write(json.dumps(row, default=str) + "\n")
            self.f.flush()

    def close(self):
        if self.f:
            self.f.close()


def frame(rows: list):
    """The DataFrame of ``rows`` (dicts), in point order, columns in a fixed order."""
    import pandas as pd
    rows = sorted(rows, key=lambda r: r["index"])
    cols = []
    for r in rows:
        for c in r:
            if c not in cols:
                cols.append(c)
    fixed = LEAD + STATUS
    rest = sorted(c for c in cols if c not in fixed)
    df = pd.DataFrame(rows, columns=[c for c in fixed if c in cols] + rest)
    return df.reset_index(drop=True)


def write_table(df, out: str) -> None:
    """Write ``df`` to ``out`` (.parquet or .csv) under a temporary name, then rename."""
    tmp = f"{out}.tmp-{os.getpid()}"
    try:
        if out.endswith(".csv"):
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False, engine="pyarrow")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_table(path: str):
    import pandas as pd
    return pd.read_csv(path) if path.endswith(".csv") else pd.read_parquet(path)
