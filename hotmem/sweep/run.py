"""``hotmem.sweep(spec)``: expand the spec, skip points done, run the rest on an engine, and
return (and write) the table."""
from __future__ import annotations

import os

from hotmem.sweep.engines import engine_for
from hotmem.sweep.point import run_batch
from hotmem.sweep.progress import Progress
from hotmem.sweep.spec import parse
from hotmem.sweep.table import PartialLog, frame, partial_path, read_done, write_table


def _batches(todo: list, workers: int, batch: int | None) -> list:
    size = batch or max(1, min(32, len(todo) // (workers * 8) or 1))
    return [todo[i:i + size] for i in range(0, len(todo), size)]


def sweep(spec, *, output: str | None = None, engine=None, client=None,
          scheduler: str | None = None, workers: int | None = None,
          timeout: float | None = None, resume: bool = True, progress: bool | None = None,
          yes: bool = False, batch: int | None = None, connect_timeout: float = 10):
    """Run a sweep; returns a pandas.DataFrame, one row per point (configuration columns, then
    the record). ``spec``: a TOML path or a dict. ``output`` (or the spec's [sweep] output):
    .parquet or .csv, written complete or not at all; rows done so far are resumed from it and
    from its ``.partial.jsonl`` log unless ``resume=False``. Engines: local processes
    (``workers``, default all cores; 0: this process), or Dask (``client`` or ``scheduler="tcp://HOST:PORT"``)."""
    sp = parse(spec, yes=yes)
    output = output or sp.output
    timeout = timeout if timeout is not None else sp.timeout
    keyed = [(i, sp.key(cfg), cfg) for i, cfg in enumerate(sp.points)]
    if output and not resume:
        for p in (output, partial_path(output)):
            if os.path.exists(p):
                os.unlink(p)
    done = read_done(output, {k for _, k, _ in keyed}) if resume else {}
    rows = []
    for i, k, cfg in keyed:
        if k in done:
            rows.append(dict(done[k], index=i, key=k, **cfg))
    todo = [(i, k, cfg) for i, k, cfg in keyed if k not in done]
    eng = log = None
    if todo:
        eng = engine_for(engine, client=client, scheduler=scheduler,
                         workers=sp.workers if workers is None else workers,
                         connect_timeout=connect_timeout)
        log = PartialLog(output)
    bar = Progress(len(keyed), len(rows), enabled=progress)
    try:
        if todo:
            for result in eng.map(run_batch, _batches(todo, eng.workers, batch or sp.batch),
                                  sp.mode, sp.search, timeout):
                for i, k, row in result:
                    row = dict(key=k, index=i, **keyed[i][2], **row)
                    rows.append(row)
                    log.write(row)
                    bar.update(1, failed=row["status"] != "ok")
    finally:
        bar.close()
        if log:
            log.close()
        if eng is not None and eng is not engine:
            eng.close()
    df = frame(rows)
    if output:
        write_table(df, output)
        if os.path.exists(partial_path(output)):
            os.unlink(partial_path(output))
    return df
