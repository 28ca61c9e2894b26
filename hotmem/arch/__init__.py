"""Architecture profiles: constants as data (base.ArchProfile) plus a few arch hooks.

``get_arch(name, **opts)`` returns a profile:

- ``get_arch("x86_64", paging_levels=4|5)``
- ``get_arch("arm64", page_size="4K"|"16K"|"64K")`` (page_size required; ``dram_start=``)
- ``get_arch("powerpc64", mmu="radix"|"hash", page_size="64K")`` (mmu required)
- ``get_arch("s390x")`` (``ident_map_size=``, ``vmalloc_size=``)

Each also takes ``page_extension=``.  The memmap_on_memory questions an architecture
answers, by kernel version ("v2", "5.13", "6.1", "6.6", "6.8", "6.9", ...), are
:func:`arch_supports_memmap_on_memory`, :func:`kconfig_mhp_memmap_on_memory` and, putting
them together with the generic tests, :func:`memmap_on_memory_supported`.
"""
from __future__ import annotations

import errno
import inspect

from hotmem.arch import arm64 as _arm64, powerpc64 as _powerpc64, s390x as _s390x
from hotmem.arch.base import (ArchProfile, IS_ALIGNED, PageFlagsLayout, RFC_V2,
                              arch_supports_memmap_on_memory_by_version, kernel_version,
                              memory_block_memmap_on_memory_pages)
from hotmem.arch.arm64 import arm64
from hotmem.arch.powerpc64 import powerpc64
from hotmem.arch.s390x import s390x
from hotmem.arch.x86_64 import x86_64
from hotmem.errors import HotplugError

ARCHES = {"x86_64": x86_64, "arm64": arm64, "powerpc64": powerpc64, "s390x": s390x}


def get_arch(name: str, **opts) -> ArchProfile:
    """The profile of architecture ``name`` built with ``opts`` (e.g. ``paging_levels=5``).

    Unknown names and options, and missing required ones, are refused with EINVAL, naming
    the bad value.
    """
    factory = ARCHES.get(name)
    if factory is None:
        raise HotplugError(errno.EINVAL,
                           f"architecture {name!r} is not modelled (known: {', '.join(ARCHES)})")
    try:
        inspect.signature(factory).bind(**opts)
    except TypeError as exc:
        raise HotplugError(errno.EINVAL,
                           f"architecture {name!r}: bad options {sorted(opts)}: {exc}") from None
    return factory(**opts)


# --- memmap_on_memory per architecture and kernel version ------------------------------------

def _x86_64_arch_supports(profile: ArchProfile, vmemmap_size: int, kernel) -> bool:
    # v2: arch/x86/mm/init_64.c:arch_support_memmap_on_memory returns true (digest §15.1);
    # 6.6+: x86 keeps the default PMD test.
    return arch_supports_memmap_on_memory_by_version(profile, vmemmap_size, kernel, v2=True)


def _x86_64_kconfig(profile: ArchProfile, kernel) -> bool:
    # arch/x86/Kconfig: ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE from 5.13 (X86_64 only).
    k = kernel_version(kernel)
    return k == RFC_V2 or k >= (5, 13)


_HOOKS = {
    "x86_64": (_x86_64_arch_supports, _x86_64_kconfig),
    "arm64": (_arm64.arch_supports_memmap_on_memory, _arm64.kconfig_mhp_memmap_on_memory),
    "powerpc64": (_powerpc64.arch_supports_memmap_on_memory,
                  _powerpc64.kconfig_mhp_memmap_on_memory),
    "s390x": (_s390x.arch_supports_memmap_on_memory, _s390x.kconfig_mhp_memmap_on_memory),
}


def _hooks(profile: ArchProfile):
    try:
        return _HOOKS[profile.name]
    except KeyError:
        raise HotplugError(errno.EINVAL, f"architecture {profile.name!r} has no "
                           "memmap_on_memory rules") from None


def arch_supports_memmap_on_memory(profile: ArchProfile, vmemmap_size: int, kernel) -> bool:
    """The arch's answer for a block memmap of ``vmemmap_size`` bytes under ``kernel``.

    v2: the RFC's arch_support_memmap_on_memory() (true on x86_64, arm64, powerpc64);
    before 5.13: false; 5.13-6.5: no arch hook exists, so this is the generic PMD and
    pageblock tests of mhp_supports_memmap_on_memory; 6.6+: the arch_supports_memmap_on_memory
    hook (default: PMD-aligned; powerpc overrides).  Does not look at the Kconfig gate.
    """
    return _hooks(profile)[0](profile, vmemmap_size, kernel)


def kconfig_mhp_memmap_on_memory(profile: ArchProfile, kernel) -> bool:
    """Whether CONFIG_MHP_MEMMAP_ON_MEMORY can be y for the arch under ``kernel``
    (ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE): x86_64 and arm64 from 5.13, powerpc64 from 6.6,
    s390x from 6.9; the v2 RFC had no such gate (true)."""
    return _hooks(profile)[1](profile, kernel)


def memmap_on_memory_supported(profile: ArchProfile, block_size: int, kernel, *,
                               force: bool = False) -> bool:
    """mm/memory_hotplug.c:mhp_supports_memmap_on_memory for an add of exactly one block of
    ``block_size`` bytes with ``memory_hotplug.memmap_on_memory`` on (``force``: =force,
    6.6+ only; earlier kernels refuse the word), as far as the architecture decides it.

    v2 (RFC, 5.10-rc) and 5.13-6.5 (read in 6.1): the Kconfig gate and
    :func:`arch_supports_memmap_on_memory`.  6.6+ (6.6.57, 6.8.0): the memmap is a whole number
    of pages, its page count (pageblock-aligned in force mode) is pageblock-aligned and not the
    whole block, and the arch hook agrees.
    """
    k = kernel_version(kernel)
    if force and (k == RFC_V2 or k < (6, 6)):
        raise HotplugError(errno.EINVAL, f"memory_hotplug.memmap_on_memory=force: kernel "
                           f"{kernel!r} takes only a bool (force is 6.6+)")
    if not isinstance(block_size, int) or block_size <= 0 \
            or not IS_ALIGNED(block_size, profile.MIN_MEMORY_BLOCK_SIZE):
        raise HotplugError(errno.EINVAL, f"block_size {block_size!r}: must be a positive "
                           "multiple of the section size")
    if not kconfig_mhp_memmap_on_memory(profile, kernel):
        return False
    vmemmap_size = profile.memmap_size(block_size)
    if k == RFC_V2 or k < (6, 6):
        return arch_supports_memmap_on_memory(profile, vmemmap_size, kernel)
    memmap_pages = memory_block_memmap_on_memory_pages(profile, block_size, force=force)
    return (IS_ALIGNED(vmemmap_size, profile.PAGE_SIZE)
            and profile.pageblock_aligned(memmap_pages)
            and memmap_pages != profile.PHYS_PFN(block_size)
            and arch_supports_memmap_on_memory(profile, vmemmap_size, kernel))


__all__ = ["ARCHES", "ArchProfile", "PageFlagsLayout", "arch_supports_memmap_on_memory",
           "arm64", "get_arch", "kconfig_mhp_memmap_on_memory", "kernel_version",
           "memmap_on_memory_supported", "powerpc64", "s390x", "x86_64"]
