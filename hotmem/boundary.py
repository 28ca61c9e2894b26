"""The public boundary's checks: one place where what a user hands hotmem is typed and bounded
before anything reaches the model or the compiled core.

Used by the Machine constructor and API, the sysfs/procfs views, the scenario parser and the
CLI. A bad value raises :class:`hotmem.errors.HotplugError` with the errno the kernel (or QEMU,
for board limits) would give and a message that names the value; nothing has changed by then.

Python's ``bool`` is an ``int`` and a float can hold an integer value: neither is taken as an
integer here (``node=True`` or ``pfn=2.5e5`` are refused, not read as 1 or 250000). numpy's
integers are (``operator.index``).
"""
from __future__ import annotations

import errno
import operator

from hotmem.errors import HotplugError

#: include/linux/err.h: the largest errno a pointer or an int result can carry
MAX_ERRNO = 4095
U64_MAX = (1 << 64) - 1
#: include/linux/limits.h: LLONG_MAX, the largest loff_t (a file offset)
LLONG_MAX = (1 << 63) - 1
#: the largest node id or CPU count the boundary forwards before the arch's own limits apply
#: (an int in the kernel: a C ``int nid``)
INT_MAX = (1 << 31) - 1


def show(value, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: how a message names a bad value."""
    try:
        text = repr(value)
    except Exception:                      # a hostile __repr__
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def as_int(value, what: str, lo: int | None = None, hi: int | None = None,
           err: int = errno.EINVAL) -> int:
    """``value`` as a Python int in [lo, hi]: bools, floats, strings and None are refused with
    EINVAL, an out-of-range integer with ``err``."""
    if isinstance(value, bool) or isinstance(value, float):
        raise HotplugError(errno.EINVAL, f"{what} {show(value)}: expected an integer, not a "
                           f"{type(value).__name__}")
    try:
        v = operator.index(value)
    except TypeError:
        raise HotplugError(errno.EINVAL, f"{what} {show(value)}: expected an integer") from None
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        lo_s = "" if lo is None else (f"{lo:#x}" if abs(lo) > 4096 else str(lo))
        hi_s = "" if hi is None else (f"{hi:#x}" if abs(hi) > 4096 else str(hi))
        raise HotplugError(err, f"{what} {show(value)}: out of range [{lo_s}, {hi_s}]")
    return v


def as_optional_int(value, what: str, lo=None, hi=None, err: int = errno.EINVAL):
    """None, or :func:`as_int`."""
    return None if value is None else as_int(value, what, lo, hi, err)


def as_str(value, what: str) -> str:
    """``value`` if it is a str, else EINVAL naming it."""
    if not isinstance(value, str):
        raise HotplugError(errno.EINVAL, f"{what} {show(value)}: expected a string, not "
                           f"{type(value).__name__}")
    return value


def as_size(value, what: str = "size", lo: int = 0, hi: int = U64_MAX) -> int:
    """A byte count or address: an int in [lo, hi] or a memparse string ("128M", "0x8000000");
    bools, floats, None and negative numbers are refused with EINVAL naming the value."""
    from hotmem.cmdline import memparse
    if isinstance(value, str):
        try:
            v = memparse(value)
        except HotplugError as exc:
            raise HotplugError(exc.errno, f"{what}: {exc.message}") from None
        if not lo <= v <= hi:
            raise HotplugError(errno.EINVAL, f"{what} {show(value)}: {v:#x} is out of range "
                               f"[{lo:#x}, {hi:#x}]")
        return v
    if value is None or isinstance(value, (bool, float)):
        raise HotplugError(errno.EINVAL, f"{what} {show(value)}: expected bytes (an integer) or "
                           "a size such as \"128M\"")
    return as_int(value, what, lo, hi)


def max_numnodes(profile) -> int:
    """MAX_NUMNODES (include/linux/numa.h, 6.1): 1 << CONFIG_NODES_SHIFT of the arch's
    reference config."""
    return 1 << profile.page_flags.nodes_shift


def nr_cpus(profile) -> int:
    """CONFIG_NR_CPUS of the arch's reference config, as include/linux/bounds.h rounds it
    (NR_CPUS_BITS = order_base_2(CONFIG_NR_CPUS)): an upper bound of nr_cpu_ids."""
    return 1 << profile.page_flags.nr_cpus_bits


def as_node(value, what: str, profile) -> int:
    """A node id: an integer in [0, MAX_NUMNODES); beyond it EINVAL (the kernel's
    ``nid >= MAX_NUMNODES`` checks, e.g. mm/memory_hotplug.c:add_memory_resource's
    node_possible, refuse it the same way)."""
    return as_int(value, what, 0, max_numnodes(profile) - 1)


def as_pfn(value, what: str, profile) -> int:
    """A page frame number inside the arch's physical address space
    (MAX_PHYSMEM_BITS - PAGE_SHIFT bits)."""
    return as_int(value, what, 0, (1 << (profile.max_physmem_bits - profile.page_shift)) - 1)


def c_string(text: str) -> str:
    """The buffer a sysfs store sees, read as a C string: kernfs_fop_write_iter (fs/kernfs/file.c,
    6.1) NUL-terminates what was written, and the store's string helpers stop at the first NUL."""
    return text.split("\0", 1)[0]


def sysfs_text(value, what: str) -> str:
    """What ``echo`` writes to a sysfs file: a str (bytes are decoded as Latin-1, byte for
    byte); anything else EINVAL."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return as_str(value, what)


# -- the Machine constructor -------------------------------------------------------------------

def _node_key(k, what: str) -> int:
    """A node id key of a per-node table: an int, or a string of ASCII digits (TOML, JSON)."""
    if isinstance(k, str) and k.isascii() and k.isdigit():
        return int(k)
    return as_int(k, what, 0, INT_MAX)


def _per_node(value, what: str, conv) -> dict:
    if not value:
        raise HotplugError(errno.EINVAL, f"{what} {show(value)}: needs at least one node")
    return {_node_key(k, f"{what}: node id"): conv(v, f"{what}[{k!r}]") for k, v in value.items()}


def machine_arguments(*, arch, kernel, boot_memory, cmdline, paging_levels, cpus, cpu_flags,
                      e820_ranges, boot_reserved_pages, boot_late_freed_pages, slots, page_size,
                      mmu, backend, struct_page_storage) -> dict:
    """Type and bound the Machine constructor's arguments before anything is built: EINVAL
    naming the first bad one. Returns boot_memory as {node: bytes}, cpus and cpu_nodes
    ({node: count} when given per node, else None) and slots."""
    from hotmem.kernel import KernelPolicy
    as_str(arch, "arch")
    if not isinstance(kernel, (str, KernelPolicy)):
        raise HotplugError(errno.EINVAL, f"kernel {show(kernel)}: expected a version string such "
                           f"as \"6.1\", not a {type(kernel).__name__} (6.10 as a float is 6.1)")
    as_str(cmdline, "cmdline")
    as_int(paging_levels, "paging_levels", 2, 5)
    for name, v in (("page_size", page_size), ("mmu", mmu), ("backend", backend),
                    ("struct_page_storage", struct_page_storage)):
        if v is not None:
            as_str(v, name)
    if backend is not None and backend not in ("compiled", "python"):
        raise HotplugError(errno.EINVAL, f"backend {show(backend)}: expected 'compiled' or "
                           "'python'")
    if struct_page_storage is not None and struct_page_storage not in ("pattern", "flat"):
        raise HotplugError(errno.EINVAL, f"struct_page_storage {show(struct_page_storage)}: "
                           "expected 'pattern' or 'flat'")
    if isinstance(cpu_flags, (str, bytes)) or not hasattr(cpu_flags, "__iter__") or \
            not all(isinstance(f, str) for f in cpu_flags):
        raise HotplugError(errno.EINVAL, f"cpu_flags {show(cpu_flags)}: expected a list of flag "
                           "names such as ('pse', 'pdpe1gb')")
    if isinstance(boot_memory, dict):
        boot = _per_node(boot_memory, "boot_memory", as_size)
    else:
        boot = {0: as_size(boot_memory, "boot_memory")}
    cpu_nodes = None
    if isinstance(cpus, dict):
        cpu_nodes = _per_node(cpus, "cpus", lambda v, w: as_int(v, w, 0, INT_MAX))
        cpus_n = sum(cpu_nodes.values())
    else:
        cpus_n = as_int(cpus, "cpus", 1, INT_MAX)
    if e820_ranges is not None:
        if isinstance(e820_ranges, (str, bytes)) or not hasattr(e820_ranges, "__iter__"):
            raise HotplugError(errno.EINVAL, f"e820_ranges {show(e820_ranges)}: expected a list "
                               "of (start, end[, node]) ranges")
        for r in e820_ranges:
            if isinstance(r, (str, bytes)) or not hasattr(r, "__len__") or len(r) not in (2, 3):
                raise HotplugError(errno.EINVAL, f"e820_ranges entry {show(r)}: expected "
                                   "(start, end[, node])")
            s = as_size(r[0], "e820_ranges start")
            e = as_size(r[1], "e820_ranges end")
            if e <= s:
                raise HotplugError(errno.EINVAL, f"e820_ranges entry {show(r)}: end {e:#x} is "
                                   f"not above start {s:#x}")
            if len(r) == 3:
                as_int(r[2], "e820_ranges node", 0, INT_MAX)
    for name, v in (("boot_reserved_pages", boot_reserved_pages),
                    ("boot_late_freed_pages", boot_late_freed_pages)):
        as_optional_int(v, name, 0, U64_MAX)
    slots = as_int(slots, "slots", 0, INT_MAX)
    return {"boot_memory": boot, "cpus": cpus_n, "cpu_nodes": cpu_nodes, "slots": slots}


def machine_limits(profile, ops, boot_memory: dict, cpu_nodes: dict, maxmem, slots: int,
                   e820_ranges, boot_reserved_pages=None) -> None:
    """The limits that need the arch: node ids below MAX_NUMNODES, at most NR_CPUS CPUs, boot
    RAM inside the physical address space, and the board's -m maxmem=/slots= rules (QEMU's
    wording: softmmu/vl.c / hw/core/machine.c set_memory_options, hw/i386/pc.c
    pc_memory_init)."""
    nodes = max_numnodes(profile)
    for what, table in (("boot_memory", boot_memory), ("cpus", cpu_nodes)):
        for nid in table:
            if nid >= nodes:
                raise HotplugError(errno.EINVAL, f"{what}: node {nid} is not possible on "
                                   f"{profile.name} (MAX_NUMNODES {nodes})")
    n = sum(cpu_nodes.values())
    if n > nr_cpus(profile):
        raise HotplugError(errno.EINVAL, f"cpus {n}: more than NR_CPUS ({nr_cpus(profile)}) of "
                           f"the {profile.name} kernel")
    total = sum(boot_memory.values())
    if total >= 1 << profile.max_physmem_bits:
        raise HotplugError(errno.EINVAL, f"boot_memory {total:#x}: beyond the "
                           f"{profile.max_physmem_bits}-bit physical address space of "
                           f"{profile.name} (MAX_PHYSMEM_BITS)")
    if e820_ranges is not None:
        for r in e820_ranges:
            if as_size(r[1], "e820_ranges end") > 1 << profile.max_physmem_bits:
                raise HotplugError(errno.EINVAL, f"e820_ranges entry {show(r)}: beyond the "
                                   f"{profile.max_physmem_bits}-bit physical address space")
    maxmem_b = None if maxmem is None else as_size(maxmem, "maxmem")
    if maxmem_b is not None and maxmem_b < total:
        raise HotplugError(errno.EINVAL, f"invalid value of maxmem: maximum memory size "
                           f"({maxmem_b:#x}) must be at least the initial memory size "
                           f"({total:#x})")
    limit = getattr(ops, "max_ram_slots", None)
    if limit is not None and slots > limit:
        raise HotplugError(errno.EINVAL, f"unsupported amount of memory slots: {slots} "
                           f"(slots {slots}; {ops.board} takes at most {limit})")


# -- the core's entry points ------------------------------------------------------------------

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def core_int(value, what: str) -> int:
    """An integer argument of a core entry point (compiled and twin alike): a Python int of
    any size (the caller bounds it); bools, floats and non-integers are EINVAL. The compiled
    core converts to int64 only after its own range check, so it never raises OverflowError."""
    if isinstance(value, (bool, float)):
        raise HotplugError(errno.EINVAL, f"{what} {show(value)}: expected an integer, not a "
                           f"{type(value).__name__}")
    try:
        return operator.index(value)
    except TypeError:
        raise HotplugError(errno.EINVAL, f"{what} {show(value)}: expected an integer") from None


def core_pfn_range(start_pfn, count, what: str) -> tuple[int, int]:
    """The (start_pfn, count) of a core scan over pfns: integers with 0 <= start_pfn and
    start_pfn + count <= INT64_MAX, else EINVAL "bad pfn range"."""
    s, n = core_int(start_pfn, f"{what} pfn"), core_int(count, f"{what} count")
    if s < 0 or n < 0 or s + n > INT64_MAX:
        raise HotplugError(errno.EINVAL, f"bad pfn range {s:#x}+{n}")
    return s, n
