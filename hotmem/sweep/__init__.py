"""Sweeps: many Machines over a grid of configurations, on local processes or a Dask cluster.

    import hotmem
    df = hotmem.sweep("scenarios/sweeps/kata.toml")      # a pandas.DataFrame, one row per point

The modules: ``spec`` (the TOML spec, grid expansion, point keys), ``point`` (one point: the
plan on a Machine as ``hotmem compare`` runs it; the search by bisection), ``engines`` (local
processes, Dask), ``table`` (Parquet/CSV, resume), ``progress``, ``plot``, ``run`` (sweep),
``cli`` (``hotmem sweep``). The package itself is callable: ``hotmem.sweep(spec)`` is
:func:`hotmem.sweep.run.sweep`; pandas is imported only when a sweep runs.
"""
from __future__ import annotations

import sys
import types


def run_sweep(spec, **kwargs):
    """:func:`hotmem.sweep.run.sweep`: run a sweep, return its pandas.DataFrame."""
    from hotmem.sweep.run import sweep as _sweep
    return _sweep(spec, **kwargs)


class _CallableModule(types.ModuleType):
    def __call__(self, spec, **kwargs):
        return run_sweep(spec, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
__all__ = ["run_sweep"]
