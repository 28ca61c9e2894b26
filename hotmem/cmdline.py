"""The kernel command line: memparse (lib/cmdline.c) and the boot parameters the model reads
(kernel/params.c:parse_args with the handlers of mm/memory_hotplug.c and arch/x86/mm/init_64.c,
Linux 6.1). Bad values raise HotplugError: they reach the Machine's constructor, the boundary.
"""
from __future__ import annotations

import errno
import operator
import re

from hotmem.errors import HotplugError
from hotmem.mm.memory_hotplug import MMOP_OFFLINE, ONLINE_TYPE_NAMES

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
PiB, EiB = 1 << 50, 1 << 60
_UNITS = {"": 1, "K": KiB, "M": MiB, "G": GiB, "T": TiB, "P": PiB, "E": EiB}
U64_MAX = (1 << 64) - 1


def memparse(v) -> int:
    """lib/cmdline.c:memparse: "128M", "1G", "1P", 0x8000000 → bytes (suffixes K, M, G, T, P, E).

    A non-negative int is taken as bytes; bools, floats, None, negative numbers, non-ASCII
    digits and sizes past 2**64 - 1 (an unsigned long long) are refused with EINVAL naming the
    value."""
    if isinstance(v, bool) or isinstance(v, float) or v is None:
        raise HotplugError(errno.EINVAL, f"size {v!r}: expected bytes (an integer) or a number "
                           "with K/M/G/T/P/E")
    if isinstance(v, int) or hasattr(v, "__index__") and not isinstance(v, str):
        n = operator.index(v)
        if not 0 <= n <= U64_MAX:
            raise HotplugError(errno.EINVAL, f"size {v!r}: out of range [0, {U64_MAX:#x}]")
        return n
    if not isinstance(v, str):
        raise HotplugError(errno.EINVAL, f"size {v!r}: expected bytes or a number with K/M/G/T/P/E")
    mt = re.fullmatch(r"[ \t]*(0[xX][0-9a-fA-F]+|[0-9]+)[ \t]*([KMGTPEkmgtpe]?)i?[bB]?[ \t]*", v)
    if not mt:
        shown = v if len(v) <= 60 else v[:57] + "..."
        raise HotplugError(errno.EINVAL, f"size {shown!r}: expected bytes or a number with K/M/G/T/P/E")
    n = int(mt.group(1), 0) * _UNITS[mt.group(2).upper()]
    if n > U64_MAX:
        raise HotplugError(errno.EINVAL, f"size {v!r}: {n:#x} does not fit in 64 bits")
    return n


parse_size = memparse


def parse_args(m, cmdline: str) -> None:
    """kernel/params.c:parse_args over the parameters the model knows: the memory_hotplug module
    parameters (memmap_on_memory, online_policy), memhp_default_state and movable_node
    (mm/memory_hotplug.c), nogbpages (arch/x86/mm/init_64.c); the rest is kept unread."""
    m.cmdline = cmdline
    m.cmdline_params = {w.partition("=")[0]: w.partition("=")[2] for w in cmdline.split()}
    m.memmap_on_memory = False
    m.memmap_on_memory_force = False
    m.unknown_params = []
    m.movable_node_enabled = False
    # mm/memory_hotplug.c:mhp_get_default_online_type (6.12.111+; 6.1: the
    # CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE initialiser): the build's default, unless
    # memhp_default_state= below says otherwise
    kconfig = getattr(m, "kconfig", None)
    m.mhp_default_online_type = ONLINE_TYPE_NAMES[kconfig.mhp_default_online_type] \
        if kconfig is not None else MMOP_OFFLINE
    m.nogbpages = False
    m.online_policy = "contig-zones"
    m.auto_movable_ratio = 301              # mm/memory_hotplug.c (5.15+) defaults
    m.auto_movable_numa_aware = True
    for word in cmdline.split():
        key, _, val = word.partition("=")
        if key == "memory_hotplug.memmap_on_memory":
            kind = m.policy.memmap_on_memory_param
            v = val.strip().lower()
            if kind == "none" or (kconfig is not None and not kconfig.mhp_memmap_on_memory):
                # the v2 RFC has no such parameter; without CONFIG_MHP_MEMMAP_ON_MEMORY the
                # module parameter is not built (mm/memory_hotplug.c #ifdef)
                m.unknown_params.append(word)
            elif v in ("1", "y", "yes", "on", "true", ""):
                m.memmap_on_memory = True
            elif v in ("0", "n", "no", "off", "false"):
                m.memmap_on_memory = False
            elif v == "force" and kind == "tristate":
                m.memmap_on_memory = m.memmap_on_memory_force = True
            else:
                raise HotplugError(errno.EINVAL, f"memory_hotplug.memmap_on_memory={val!r}: "
                                   f"expected {'Y, N or force' if kind == 'tristate' else 'a boolean'}"
                                   f" in Linux {m.policy.name}")
        elif key == "movable_node":
            m.movable_node_enabled = True
        elif key == "memhp_default_state":
            if val not in ONLINE_TYPE_NAMES:
                raise HotplugError(errno.EINVAL, f"memhp_default_state={val!r}: expected "
                                   "online, online_kernel, online_movable or offline")
            m.mhp_default_online_type = ONLINE_TYPE_NAMES[val]
        elif key in ("memory_hotplug.online_policy", "memory_hotplug.auto_movable_ratio",
                     "memory_hotplug.auto_movable_numa_aware"):
            if not m.policy.online_policy_param:
                m.unknown_params.append(word)   # 5.15+: no such parameter before
            else:
                set_online_policy_param(m, key.partition(".")[2], val)
        elif key == "nogbpages":
            m.nogbpages = True


#: mm/memory_hotplug.c:online_policy_to_str (5.15+)
ONLINE_POLICIES = ("contig-zones", "auto-movable")


def set_online_policy_param(m, name: str, val: str) -> None:
    """The memory_hotplug parameters of the online policy (mm/memory_hotplug.c, 5.15+; 0644, so
    the same at boot and through /sys/module/memory_hotplug/parameters): online_policy
    (set_online_policy: sysfs_match_string over online_policy_to_str), auto_movable_ratio
    (param_set_uint: kstrtouint) and auto_movable_numa_aware (param_set_bool: kstrtobool).
    A bad value raises EINVAL and changes nothing."""
    v = val.strip()
    if name == "online_policy":
        if v not in ONLINE_POLICIES:
            raise HotplugError(errno.EINVAL, f"memory_hotplug.online_policy={val!r}: expected "
                               "contig-zones or auto-movable")
        m.online_policy = v
    elif name == "auto_movable_ratio":
        mt = re.fullmatch(r"\+?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", v)
        n = None
        if mt:
            d = mt.group(1)
            n = int(d, 16) if d[:2].lower() == "0x" else int(d, 8) if d[0] == "0" else int(d)
        if n is None or n >= 1 << 32:
            raise HotplugError(errno.EINVAL, f"memory_hotplug.auto_movable_ratio={val!r}: "
                               "expected an unsigned int")
        m.auto_movable_ratio = n
    elif name == "auto_movable_numa_aware":
        w = v.lower()
        if w in ("1", "y", "yes", "on", "true"):
            m.auto_movable_numa_aware = True
        elif w in ("0", "n", "no", "off", "false"):
            m.auto_movable_numa_aware = False
        else:
            raise HotplugError(errno.EINVAL, f"memory_hotplug.auto_movable_numa_aware={val!r}: "
                               "expected a boolean")
    else:
        raise HotplugError(errno.ENOENT, f"memory_hotplug.{name}: no such parameter")
