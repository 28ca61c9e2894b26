"""A sweep spec: a TOML file (or a dict) with a ``[grid]`` of axes (every combination), optional
``[[variants]]`` (tables of axis values crossed with the grid: e.g. arch with its page size),
optional ``[[points]]`` (single points added after the grid), ``[sweep]`` settings and, for
search mode, ``[search]``; expanded into point configurations, each keyed by a hash of itself
and hotmem's version. Axes left out take `hotmem compare`'s defaults."""
from __future__ import annotations

import errno
import hashlib
import itertools
import json
from dataclasses import dataclass, field

from hotmem.errors import HotplugError

#: the grid axes and their defaults (None: what `hotmem compare` picks)
AXES = {
    "arch": "x86_64", "page_size": None, "mmu": None, "paging_levels": None, "kernel": "6.1",
    "boot_memory": "1G", "block_size": None, "memmap_on_memory": "1", "online_type": None,
    "dimms": None, "nodes": "0", "start": None, "config": None,
}
SWEEP_KEYS = {"mode", "output", "timeout", "workers", "batch"}
SEARCH_KEYS = {"axis", "dimm", "min", "max", "step"}
TOP_KEYS = {"sweep", "grid", "variants", "points", "search"}
MAX_POINTS = 10 ** 7
MOM_VALUES = ("0", "1", "force")


def _err(msg: str, err: int = errno.EINVAL) -> HotplugError:
    return HotplugError(err, f"sweep spec: {msg}")


def _unknown(keys, known, where: str) -> None:
    bad = sorted(set(keys) - set(known))
    if bad:
        raise _err(f"unknown key {bad[0]!r} in {where} (known: {', '.join(sorted(known))})")


def _value(axis: str, v):
    """An axis value in its normal form: sizes and lists as strings, memmap_on_memory "0"/"1"/
    "force", paging_levels an int."""
    if v is None:
        return None
    if axis == "memmap_on_memory":
        v = {True: "1", False: "0"}.get(v, v) if isinstance(v, bool) else str(v)
        if v not in MOM_VALUES:
            raise _err(f"memmap_on_memory {v!r} is not one of 0, 1, force")
        return v
    if axis == "paging_levels":
        if isinstance(v, bool) or not isinstance(v, int):
            raise _err(f"paging_levels {v!r} is not an integer (4 or 5)")
        return v
    if axis in ("kernel", "arch", "mmu", "online_type", "config") and not isinstance(v, str):
        # a TOML float 6.10 would read as "6.1"
        raise _err(f"{axis} {v!r} is not a string (write it in quotes, e.g. \"6.12\")")
    if isinstance(v, bool):
        raise _err(f"{axis} {v!r}: a boolean is not a value of this axis")
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v)


@dataclass
class Spec:
    """A parsed sweep spec."""
    points: list                                # [config dict], in spec order
    mode: str = "grid"                          # "grid" or "search"
    search: dict = field(default_factory=dict)
    output: str | None = None
    timeout: float | None = None
    workers: int | None = None
    batch: int | None = None

    def key(self, cfg: dict) -> str:
        return point_key(cfg, self.mode, self.search)


def point_key(cfg: dict, mode: str = "grid", search: dict | None = None) -> str:
    """The point's key: a hash of its configuration, the mode (and search settings) and
    hotmem's version — a result is reused only by the same hotmem."""
    import hotmem
    blob = json.dumps({"cfg": cfg, "mode": mode, "search": search or {},
                       "version": hotmem.__version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def load(spec) -> tuple[dict, str | None]:
    """The spec as a dict: a dict as is, a path read as TOML."""
    if isinstance(spec, dict):
        return spec, None
    import tomllib
    try:
        with open(spec, "rb") as f:
            return tomllib.load(f), str(spec)
    except FileNotFoundError:
        raise HotplugError(errno.ENOENT, f"sweep spec {spec}: no such file") from None
    except OSError as exc:
        raise HotplugError(exc.errno or errno.EIO, f"sweep spec {spec}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise _err(f"{spec}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise _err(f"{spec}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                   f"{exc.start}); TOML files are UTF-8") from None


def count_grid(grid: dict) -> int:
    n = 1
    for v in grid.values():
        n *= len(v)
    return n


def parse(spec, *, yes: bool = False) -> Spec:
    """Parse and expand a spec (path or dict). Raises HotplugError(EINVAL) on unknown keys, bad
    values or an empty sweep, E2BIG on more than 10^7 points without ``yes``."""
    d, _ = load(spec)
    if not isinstance(d, dict):
        raise _err("not a table")
    _unknown(d, TOP_KEYS, "the spec")
    settings = d.get("sweep", {})
    for name in ("sweep", "grid", "search"):
        if not isinstance(d.get(name, {}), dict):
            raise _err(f"{name} must be a table ([{name}])")
    _unknown(settings, SWEEP_KEYS, "[sweep]")
    mode = settings.get("mode", "search" if "search" in d else "grid")
    if mode not in ("grid", "search"):
        raise _err(f"mode {mode!r} is not grid or search")
    grid = d.get("grid", {})
    _unknown(grid, AXES, "[grid]")
    axes = {}
    for axis, vals in grid.items():
        vals = vals if isinstance(vals, list) else [vals]
        if not vals:
            raise _err(f"[grid] {axis} is an empty list: the sweep has no points")
        axes[axis] = vals
    lists = d.get("points", [])
    if not isinstance(lists, list):
        raise _err("points must be an array of tables ([[points]])")
    for i, p in enumerate(lists):
        _unknown(p, AXES, f"[[points]] #{i + 1}")
    variants = d.get("variants", [{}])
    if not isinstance(variants, list) or not variants:
        raise _err("variants must be a non-empty array of tables ([[variants]])")
    for i, v in enumerate(variants):
        _unknown(v, AXES, f"[[variants]] #{i + 1}")
        both = sorted(set(v) & set(axes))
        if both:
            raise _err(f"{both[0]!r} is in both [grid] and [[variants]] #{i + 1}")
    search = {}
    if mode == "search":
        search = dict(d.get("search", {}))
        _unknown(search, SEARCH_KEYS, "[search]")
        search.setdefault("axis", "dimm_size")
        if search["axis"] not in ("dimm_size", "dimm_count"):
            raise _err(f"[search] axis {search['axis']!r} is not dimm_size or dimm_count")
        search = {k: str(v) for k, v in sorted(search.items())}
        if "dimms" in axes:
            raise _err("search mode picks the DIMMs itself: no dimms in [grid]")
    elif "search" in d:
        raise _err("[search] needs mode = \"search\"")
    with_grid = bool(grid or "variants" in d or not lists)
    n = (count_grid(axes) * len(variants) if with_grid else 0) + len(lists)
    if n == 0:
        raise _err("the sweep has no points")
    if n > MAX_POINTS and not yes:
        raise HotplugError(errno.E2BIG, f"sweep spec: {n} points is over {MAX_POINTS}; "
                           "pass --yes (yes=True) to run it")
    points = []
    if with_grid:
        names = list(axes)
        for combo in itertools.product(*(axes[a] for a in names)):
            for v in variants:
                points.append(_config(dict(zip(names, combo), **v)))
    points += [_config(p) for p in lists]
    timeout = settings.get("timeout")
    return Spec(points=points, mode=mode, search=search, output=settings.get("output"),
                timeout=None if timeout is None else float(timeout),
                workers=settings.get("workers"), batch=settings.get("batch"))


def _config(values: dict) -> dict:
    cfg = {}
    for axis, default in AXES.items():
        cfg[axis] = _value(axis, values.get(axis, default))
    return cfg
