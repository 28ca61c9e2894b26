"""The kernel command line's number parsing (lib/cmdline.c)."""
from __future__ import annotations

import errno
import re

from hotmem.errors import HotplugError

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
_UNITS = {"": 1, "K": KiB, "M": MiB, "G": GiB, "T": TiB}


def memparse(v) -> int:
    """lib/cmdline.c:memparse: "128M", "1G", 0x8000000 → bytes."""
    if isinstance(v, int):
        return v
    mt = re.fullmatch(r"\s*(0[xX][0-9a-fA-F]+|\d+)\s*([KMGT]?)i?[bB]?\s*", str(v))
    if not mt:
        raise HotplugError(errno.EINVAL, f"size {v!r}: expected bytes or a number with K/M/G/T")
    return int(mt.group(1), 0) * _UNITS[mt.group(2).upper()]
