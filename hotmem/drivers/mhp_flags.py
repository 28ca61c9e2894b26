"""Which MHP flags each driver that adds memory passes, per kernel version, and whether its
memory can have its memmap on memory (MHP_MEMMAP_ON_MEMORY) at all.

``docs/driver-mhp-flags.md`` is generated from here (``driver_flags_table()``) and kept equal
by tests/test_driver_mhp_flags.py. Where the model has a policy for the driver (ACPI, pseries,
s390 sclp, virtio-mem) the row is derived from it; dax/kmem, the Hyper-V balloon and the Xen
balloon are written here. Every 6.1 cell was read in Debian's linux-source-6.1 (6.1.176); the
other versions come from the trees named in hotmem/kernel.py (ACPI, pseries, sclp) or from the
patches that changed the call (named per driver in ``DRIVERS``).
"""
from __future__ import annotations

from dataclasses import dataclass

from hotmem.kernel import POLICIES
from hotmem.mm import memory_hotplug as mh

FLAG_NAMES = ((mh.MHP_MERGE_RESOURCE, "MHP_MERGE_RESOURCE"),
              (mh.MHP_MEMMAP_ON_MEMORY, "MHP_MEMMAP_ON_MEMORY"),
              (mh.MHP_NID_IS_MGID, "MHP_NID_IS_MGID"),
              (mh.MHP_OFFLINE_INACCESSIBLE, "MHP_OFFLINE_INACCESSIBLE"))


def flag_names(flags: int) -> str:
    """``MHP_A | MHP_B`` (MHP_NONE for 0)."""
    names = [n for bit, n in FLAG_NAMES if flags & bit]
    return " \\| ".join(names) if names else "MHP_NONE"


@dataclass(frozen=True)
class Call:
    """One driver's add_memory call in one version: the flags always passed, the
    MHP_MEMMAP_ON_MEMORY part (``None``: never; ``"always"``; or the condition it is under)."""
    flags: int
    memmap_on_memory: str | None = None


def _acpi(p) -> Call:
    base = mh.MHP_NID_IS_MGID if p.online_policy_param else mh.MHP_NONE   # groups: 5.15+
    if not p.has_memmap_on_memory:
        return Call(base)
    if p.acpi_checks_support:
        return Call(base, "if mhp_supports_memmap_on_memory(size)")
    return Call(base, "always (add_memory_resource falls back when unsupported)")


def _pseries(p) -> Call:
    if p.arch("powerpc64").dlpar_memmap_on_memory:
        return Call(mh.MHP_NONE, "always (add_memory_resource falls back when unsupported)")
    return Call(mh.MHP_NONE)


def _sclp(p) -> Call:
    if p.arch("s390x").sclp_memmap_on_memory:
        return Call(mh.MHP_OFFLINE_INACCESSIBLE, "always (with MHP_OFFLINE_INACCESSIBLE)")
    return Call(mh.MHP_NONE)


def _virtio_mem(p) -> Call:
    from hotmem.drivers.virtio_mem import VIRTIO_MEM_POLICIES
    return Call(VIRTIO_MEM_POLICIES[p.name].mhp_flags)


def _dax_kmem(p) -> Call:
    # 5.15: the memory-group series (MHP_NID_IS_MGID); 6.8: "dax/kmem: allow kmem to add
    # memory with memmap_on_memory" (with the per-block altmaps)
    base = mh.MHP_NID_IS_MGID if p.online_policy_param else mh.MHP_NONE
    if p.altmap_per_memory_block:
        return Call(base, "if mhp_supports_memmap_on_memory(memory_block_size_bytes())")
    return Call(base)


def _merge_only(p) -> Call:
    # MHP_MERGE_RESOURCE since "mm/memory_hotplug: MEMHP_MERGE_RESOURCE to specify merging of
    # System RAM resources" and its hv_balloon / xen balloon patches (5.10)
    return Call(mh.MHP_MERGE_RESOURCE)


#: (driver, the kernel function that adds memory, the function giving its Call per policy)
DRIVERS = (
    ("ACPI memhotplug", "drivers/acpi/acpi_memhotplug.c:acpi_memory_enable_device → "
     "__add_memory", _acpi),
    ("pseries DLPAR", "arch/powerpc/platforms/pseries/hotplug-memory.c:dlpar_add_lmb → "
     "__add_memory", _pseries),
    ("s390 sclp", "drivers/s390/char/sclp_cmd.c:add_memory_merged → add_memory (standby "
     "memory)", _sclp),
    ("virtio-mem", "drivers/virtio/virtio_mem.c:virtio_mem_add_memory → "
     "add_memory_driver_managed", _virtio_mem),
    ("dax/kmem", "drivers/dax/kmem.c:dev_dax_kmem_probe → add_memory_driver_managed", _dax_kmem),
    ("Hyper-V balloon", "drivers/hv/hv_balloon.c:hv_mem_hot_add → add_memory", _merge_only),
    ("Xen balloon", "drivers/xen/balloon.c:reserve_additional_memory → add_memory_resource",
     _merge_only),
)


def driver_call(driver: str, kernel: str) -> Call:
    """The add_memory call of ``driver`` (a DRIVERS name) in kernel version ``kernel``."""
    for name, _fn, call in DRIVERS:
        if name == driver:
            return call(POLICIES[kernel])
    raise KeyError(driver)


def driver_flags_table() -> str:
    """Markdown: one row per driver, one column per modelled version; each cell the flags
    passed and whether memmap on memory is possible."""
    names = list(POLICIES)
    rows = ["| driver (kernel function) | " + " | ".join(names) + " |",
            "|---" * (len(names) + 1) + "|"]
    for driver, fn, call in DRIVERS:
        cells = []
        for n in names:
            c = call(POLICIES[n])
            text = f"`{flag_names(c.flags)}`"
            if c.memmap_on_memory:
                text += f" + `MHP_MEMMAP_ON_MEMORY` {c.memmap_on_memory}; memmap on memory: yes"
            else:
                text += "; memmap on memory: **no**"
            cells.append(text)
        rows.append(f"| {driver} (`{fn}`) | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
