"""Architecture profiles: constants as data (base.ArchProfile), and the arch hooks.

``get_arch(name, **opts)`` returns a profile:

- ``get_arch("x86_64", paging_levels=4|5)``
- ``get_arch("arm64", page_size="4K"|"16K"|"64K")`` (page_size required; ``dram_start=``)
- ``get_arch("powerpc64", mmu="radix"|"hash", page_size="64K")`` (mmu required)
- ``get_arch("s390x")`` (``ident_map_size=``, ``vmalloc_size=``)

Each also takes ``page_extension=``.  The memmap_on_memory questions an architecture
answers, by kernel version ("v2", "5.13", "6.1", "6.6", "6.8", "6.9", ...), are
:func:`arch_supports_memmap_on_memory`, :func:`kconfig_mhp_memmap_on_memory` and, putting
them together with the generic tests, :func:`memmap_on_memory_supported`; what differs by
version is a field of the kernel policy (hotmem.kernel, with per-arch overlays).

The hooks a Machine calls are an :class:`ArchOps` instance (hotmem/arch/ops.py) built by
:func:`arch_ops_for`; ``ARCH_OPS`` maps each name to its class.
"""
from __future__ import annotations

import errno
import inspect

from hotmem.arch.arm64 import arm64
from hotmem.arch.arm64_init import Arm64Ops
from hotmem.arch.base import ArchProfile, IS_ALIGNED, PageFlagsLayout, mhp_memmap_alignment_ok
from hotmem.arch.ops import ArchOps
from hotmem.arch.powerpc64 import powerpc64
from hotmem.arch.powerpc64_init import PowerPC64Ops, machine_profile as _powerpc64_machine_profile
from hotmem.arch.s390x import s390x
from hotmem.arch.s390x_init import S390xOps, profile_for as _s390x_profile_for
from hotmem.arch.x86_64 import x86_64
from hotmem.arch.x86_init_64 import X86_64Ops
from hotmem.errors import HotplugError
from hotmem.kernel import KernelPolicy, kernel_version, release_policy
from hotmem.mm import memory_hotplug as _mh

ARCHES = {"x86_64": x86_64, "arm64": arm64, "powerpc64": powerpc64, "s390x": s390x}
#: each architecture's ArchOps class (its hooks and platform facts; a Machine gets an instance)
ARCH_OPS: dict[str, type[ArchOps]] = {"x86_64": X86_64Ops, "arm64": Arm64Ops,
                                      "powerpc64": PowerPC64Ops, "s390x": S390xOps}


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


def hotplug_method(arch: str) -> str:
    """How architecture ``arch``'s platform hot-adds memory (ArchOps.hotplug_method):
    "acpi-dimm", "dlpar-lmb" or "standby"; "acpi-dimm" for a name without an ArchOps."""
    ops = ARCH_OPS.get(arch)
    return ops.hotplug_method if ops is not None else "acpi-dimm"


def arch_ops_for(arch: str, policy: KernelPolicy, *, paging_levels: int = 4, page_size=None,
                 mmu=None, boot_memory=None, standby_memory=None) -> tuple[ArchProfile, ArchOps]:
    """The profile a Machine runs with and its ArchOps instance, for architecture ``arch`` under
    the kernel ``policy``: x86_64 (``paging_levels``), arm64 (``page_size``, default 4K),
    powerpc64 (``mmu``, ``page_size``), s390x (``boot_memory`` plus ``standby_memory`` size it).
    Bad options are refused with EINVAL, s390x with a 6.9+ kernel with EOPNOTSUPP."""
    if mmu is not None and arch != "powerpc64":
        raise HotplugError(errno.EINVAL, f"mmu {mmu!r}: {arch} has one MMU; the radix/hash "
                           "choice is powerpc64's")
    if standby_memory is not None and arch != "s390x":
        raise HotplugError(errno.EINVAL, f"standby_memory: standby storage is an s390x feature, "
                           f"not {arch}'s")
    if arch == "s390x":
        if page_size not in (None, "4K"):
            raise HotplugError(errno.EINVAL, f"s390x has 4K pages, not {page_size!r}")
        profile = _s390x_profile_for(boot_memory, standby_memory)
        if policy.arch("s390x").sclp_memmap_on_memory:
            # 6.9 (drivers/s390/char/sclp_cmd.c): standby memory is added with
            # MHP_MEMMAP_ON_MEMORY | MHP_OFFLINE_INACCESSIBLE on EDAT1 machines and the sclp
            # notifier moves to MEM_PREPARE_ONLINE / MEM_FINISH_OFFLINE: not modelled yet
            raise HotplugError(errno.EOPNOTSUPP, f"s390x with Linux {policy.name}: the 6.9+ "
                               "memmap-on-memory standby path is not modelled (kernels up to 6.8 "
                               "are)")
        return profile, S390xOps(profile, standby_memory)
    if arch == "x86_64":
        if page_size not in (None, "4K"):
            raise HotplugError(errno.EINVAL, f"x86_64 has 4K pages, not {page_size!r}")
        profile = get_arch("x86_64", paging_levels=paging_levels)
        return profile, X86_64Ops(profile)
    if arch == "arm64":
        # 4K, 16K and 64K pages (64K: 512 MiB sections of 256 subsections, a 4-word
        # subsection_map)
        profile = get_arch("arm64", page_size=page_size or "4K")
        return profile, Arm64Ops(profile)
    if arch == "powerpc64":
        profile = _powerpc64_machine_profile(mmu, page_size, policy.name)
        return profile, PowerPC64Ops(profile, policy.name)
    profile = get_arch(arch)
    raise HotplugError(errno.EOPNOTSUPP, f"the hotplug lifecycle of {profile.name} is not modelled "
                       "yet; hotmem.arch.memmap_on_memory_supported() answers its memmap_on_memory "
                       "questions")


# --- memmap_on_memory per architecture and kernel version ------------------------------------

def _ops_class(profile: ArchProfile) -> type[ArchOps]:
    try:
        return ARCH_OPS[profile.name]
    except KeyError:
        raise HotplugError(errno.EINVAL, f"architecture {profile.name!r} has no "
                           "memmap_on_memory rules") from None


def arch_supports_memmap_on_memory(profile: ArchProfile, vmemmap_size: int, kernel) -> bool:
    """The arch's answer for a block memmap of ``vmemmap_size`` bytes under ``kernel`` (a
    release or a KernelPolicy), by the policy's mhp_supports_rule.

    v2: the RFC's arch_support_memmap_on_memory() (true on x86_64, arm64, powerpc64);
    before 5.13: false; 5.13-6.5: no arch hook exists, so this is the generic PMD and
    pageblock tests of mhp_supports_memmap_on_memory; 6.6+: the arch_supports_memmap_on_memory
    hook (default: PMD-aligned; powerpc overrides).  Does not look at the Kconfig gate.
    """
    ops, rule = _ops_class(profile), release_policy(kernel).mhp_supports_rule
    if rule == "v2":
        return ops.arch_support_memmap_on_memory()
    if rule == "none":
        return False
    if rule == "5.13":
        return mhp_memmap_alignment_ok(profile, vmemmap_size)
    return ops.arch_supports_memmap_on_memory(profile, vmemmap_size)


def kconfig_mhp_memmap_on_memory(profile: ArchProfile, kernel) -> bool:
    """Whether CONFIG_MHP_MEMMAP_ON_MEMORY can be y for the arch under ``kernel``
    (ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE, the policy's arch overlay): x86_64 and arm64 from 5.13,
    powerpc64 from 6.6, s390x from 6.9; the v2 RFC had no such gate (true)."""
    _ops_class(profile)
    return release_policy(kernel).arch(profile.name).mhp_memmap_on_memory_enable


def memmap_on_memory_supported(profile: ArchProfile, block_size: int, kernel, *,
                               force: bool = False) -> bool:
    """mm/memory_hotplug.c:mhp_supports_memmap_on_memory for an add of exactly one block of
    ``block_size`` bytes with ``memory_hotplug.memmap_on_memory`` on (``force``: =force,
    6.6+ only; earlier kernels refuse the word), as far as the architecture decides it.

    ``kernel``: a release ("6.1", "6.9", "6.1.166", "v2") or a KernelPolicy; the answer is
    hotmem.mm.memory_hotplug.mhp_supports_memmap_on_memory_for with the release's policy
    (hotmem.kernel.release_policy) and the arch's hooks.
    """
    policy = release_policy(kernel)
    if force and policy.memmap_on_memory_param != "tristate":
        raise HotplugError(errno.EINVAL, f"memory_hotplug.memmap_on_memory=force: kernel "
                           f"{kernel!r} takes only a bool (force is 6.6+)")
    if not isinstance(block_size, int) or block_size <= 0 \
            or not IS_ALIGNED(block_size, profile.MIN_MEMORY_BLOCK_SIZE):
        raise HotplugError(errno.EINVAL, f"block_size {block_size!r}: must be a positive "
                           "multiple of the section size")
    return _mh.mhp_supports_memmap_on_memory_for(_ops_class(profile), profile, policy,
                                                 block_size, block_size,
                                                 memmap_on_memory=True, force=force)


__all__ = ["ARCHES", "ARCH_OPS", "ArchOps", "ArchProfile", "PageFlagsLayout",
           "arch_ops_for", "arch_supports_memmap_on_memory", "arm64", "get_arch",
           "hotplug_method", "kconfig_mhp_memmap_on_memory", "kernel_version",
           "memmap_on_memory_supported", "powerpc64", "s390x", "x86_64"]
