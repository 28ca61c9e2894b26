"""Pick the compiled core or its pure-Python twin.

The compiled core (``hotmem._core``) is used unless ``HOTMEM_BACKEND=python`` is set; if the
extension is missing, the twin is used with a warning.
"""
import importlib
import os
import warnings

BACKENDS = ("compiled", "python")


def load(name: str | None = None):
    """Return the core module for ``name`` ("compiled" or "python"; default: from the environment)."""
    if name is None:
        name = os.environ.get("HOTMEM_BACKEND", "compiled") or "compiled"
    if name == "python":
        return importlib.import_module("hotmem._core_py")
    if name != "compiled":
        raise ValueError(f"HOTMEM_BACKEND={name!r}: expected 'compiled' or 'python'")
    try:
        return importlib.import_module("hotmem._core")
    except ImportError as exc:  # pragma: no cover - exercised only on a broken build
        warnings.warn(f"hotmem: compiled core not available ({exc}); using the pure-Python twin",
                      RuntimeWarning, stacklevel=2)
        return importlib.import_module("hotmem._core_py")
