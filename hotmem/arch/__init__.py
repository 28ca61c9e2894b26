"""Architecture profiles: constants as data (base.ArchProfile) plus a few arch hooks.

``get_arch("x86_64", paging_levels=5)`` returns a profile; only x86_64 exists so far.
"""
from __future__ import annotations

import errno
import inspect

from hotmem.arch.base import ArchProfile, PageFlagsLayout
from hotmem.arch.x86_64 import x86_64
from hotmem.errors import HotplugError

ARCHES = {"x86_64": x86_64}


def get_arch(name: str, **opts) -> ArchProfile:
    """The profile of architecture ``name`` built with ``opts`` (e.g. ``paging_levels=5``).

    Unknown names and options are refused with EINVAL, naming the bad value.
    """
    factory = ARCHES.get(name)
    if factory is None:
        raise HotplugError(errno.EINVAL,
                           f"architecture {name!r} is not modelled (known: {', '.join(ARCHES)})")
    try:
        inspect.signature(factory).bind(**opts)
    except TypeError as exc:
        raise HotplugError(errno.EINVAL,
                           f"{name}: bad options {sorted(opts)}: {exc}") from None
    return factory(**opts)


__all__ = ["ARCHES", "ArchProfile", "PageFlagsLayout", "get_arch", "x86_64"]
