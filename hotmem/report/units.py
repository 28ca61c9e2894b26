"""Units and progress for the reports: sizes in binary units, a progress bar on stderr."""
from __future__ import annotations

import sys

from hotmem.units import iec  # noqa: F401 (re-exported)

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


def human(n_bytes: int) -> str:
    """``n_bytes`` with two decimals in the largest binary unit below it ("256.06 MiB")."""
    for shift, unit in ((40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if abs(n_bytes) >= 1 << shift:
            return f"{n_bytes / (1 << shift):.2f} {unit}"
    return f"{n_bytes} B"


def progress(total: int, desc: str):
    """A progress bar on stderr that shows up only when the work runs longer than a second and
    stderr is a terminal (tqdm); a silent stand-in when tqdm is missing."""
    try:
        from tqdm import tqdm
    except ImportError:                                  # pragma: no cover - tqdm is a dependency
        class _Silent:
            def update(self, n=1):
                pass

            def set_postfix_str(self, s):
                pass

            def close(self):
                pass
        return _Silent()
    return tqdm(total=total, desc=desc, delay=1.0, disable=None, leave=False, file=sys.stderr,
                unit="step")
