"""/sys/devices/system/memory attribute texts (drivers/base/memory.c, drivers/base/core.c) and
the memory_hotplug module parameters (mm/memory_hotplug.c, kernel/params.c); Linux 6.1.

Every sysfs attribute text ends with "\\n" as the kernel emits it.
"""
from __future__ import annotations

from hotmem.render.model import (
    MEM_GOING_OFFLINE, MEM_OFFLINE, MEM_ONLINE, MMOP_OFFLINE, MMOP_ONLINE, MMOP_ONLINE_KERNEL,
    MMOP_ONLINE_MOVABLE, MemoryBlockInfo, MemoryHotplugParams,
)

__all__ = [
    "MEM_ONLINE", "MEM_GOING_OFFLINE", "MEM_OFFLINE",
    "MMOP_OFFLINE", "MMOP_ONLINE", "MMOP_ONLINE_KERNEL", "MMOP_ONLINE_MOVABLE",
    "ONLINE_TYPE_TO_STR", "ONLINE_POLICY_TO_STR", "MEMORY_BLOCK_ATTRS",
    "render_block_size_bytes", "render_auto_online_blocks", "render_state", "render_online",
    "render_phys_index", "render_phys_device", "render_removable", "render_valid_zones",
    "render_memory_block", "parse_valid_zones", "render_memory_hotplug_params",
]

# drivers/base/memory.c:online_type_to_str (6.1), indexed by MMOP_*.
ONLINE_TYPE_TO_STR = ("offline", "online", "online_kernel", "online_movable")
# mm/memory_hotplug.c:online_policy_to_str (6.1).
ONLINE_POLICY_TO_STR = ("contig-zones", "auto-movable")
_STATE_TO_STR = {MEM_ONLINE: "online", MEM_OFFLINE: "offline", MEM_GOING_OFFLINE: "going-offline"}
# The attributes of one memoryN directory (drivers/base/memory.c:memory_memblk_attrs + the
# device core's "online"), in the order render_memory_block returns them.
MEMORY_BLOCK_ATTRS = ("phys_index", "state", "phys_device", "removable", "valid_zones", "online")


def render_block_size_bytes(size: int) -> str:
    """drivers/base/memory.c:block_size_bytes_show (6.1): "%lx\\n"."""
    return f"{size:x}\n"


def render_auto_online_blocks(online_type: int | str) -> str:
    """drivers/base/memory.c:auto_online_blocks_show (6.1): online_type_to_str[MMOP_*]."""
    if isinstance(online_type, str):
        if online_type not in ONLINE_TYPE_TO_STR:
            raise ValueError(f"unknown online type {online_type!r}")
        return online_type + "\n"
    return ONLINE_TYPE_TO_STR[online_type] + "\n"


def render_state(state: int) -> str:
    """drivers/base/memory.c:state_show (6.1); an unknown state prints ERROR-UNKNOWN-<n>."""
    text = _STATE_TO_STR.get(state)
    return f"{text}\n" if text else f"ERROR-UNKNOWN-{state}\n"


def render_online(online: bool) -> str:
    """drivers/base/core.c:online_show (6.1): "%u\\n" of !dev->offline."""
    return f"{int(bool(online))}\n"


def render_phys_index(block_id: int) -> str:
    """drivers/base/memory.c:phys_index_show (6.1): start_section_nr / sections_per_block as
    "%08lx\\n"."""
    return f"{block_id:08x}\n"


def render_phys_device(phys_device: int = 0) -> str:
    """drivers/base/memory.c:phys_device_show (6.1): arch_get_memory_phys_device, 0 on x86."""
    return f"{phys_device}\n"


def render_removable(hotremove: bool = True) -> str:
    """drivers/base/memory.c:removable_show (6.1): IS_ENABLED(CONFIG_MEMORY_HOTREMOVE)."""
    return f"{int(bool(hotremove))}\n"


def render_valid_zones(state: int, zone: str | None = None,
                       online_zones: tuple[str, str, str] | None = None) -> str:
    """drivers/base/memory.c:valid_zones_show + print_allowed_zone (6.1).

    An online block prints mem->zone's name (``zone``; None -> "none": spans several zones).
    Any other state prints the zone for MMOP_ONLINE, then " <name>" for the MMOP_ONLINE_KERNEL
    and the MMOP_ONLINE_MOVABLE zone when each differs from it (``online_zones``, as the model's
    zone_for_pfn_range picks them; zones of one node, so names identify them)."""
    if state == MEM_ONLINE:
        return f"{zone if zone is not None else 'none'}\n"
    if online_zones is None:
        raise ValueError("valid_zones of a block that is not online needs online_zones")
    default, kernel, movable = online_zones
    return default + "".join(f" {z}" for z in (kernel, movable) if z != default) + "\n"


def parse_valid_zones(text: str, state: int) -> tuple[str | None, tuple[str, str, str] | None]:
    """Inverse of render_valid_zones: (zone, online_zones). A single extra zone is the movable
    one when it is "Movable" (the kernel choice is never ZONE_MOVABLE), else the kernel one."""
    names = text.split()
    if state == MEM_ONLINE:
        if len(names) != 1:
            raise ValueError(f"valid_zones of an online block: {text!r}")
        return (None if names[0] == "none" else names[0]), None
    default, extra = names[0], names[1:]
    if len(extra) == 2:
        return None, (default, extra[0], extra[1])
    if len(extra) == 1:
        if extra[0] == "Movable":
            return None, (default, default, "Movable")
        return None, (default, extra[0], default)
    if not extra:
        return None, (default, default, default)
    raise ValueError(f"valid_zones: {text!r}")


def render_memory_block(mb: MemoryBlockInfo, hotremove: bool = True) -> dict[str, str]:
    """Every attribute of /sys/devices/system/memory/memory<id>/ (6.1) -> its text;
    valid_zones exists only with CONFIG_MEMORY_HOTREMOVE."""
    attrs = {
        "phys_index": render_phys_index(mb.block_id),
        "state": render_state(mb.state),
        "phys_device": render_phys_device(mb.phys_device),
        "removable": render_removable(hotremove),
        "valid_zones": render_valid_zones(mb.state, mb.zone, mb.online_zones),
        "online": render_online(mb.online),
    }
    if not hotremove:
        del attrs["valid_zones"]
    return attrs


def _param_bool(value: bool) -> str:
    """kernel/params.c:param_get_bool (6.1): "Y\\n" or "N\\n"."""
    return "Y\n" if value else "N\n"


def render_memory_hotplug_params(p: MemoryHotplugParams) -> dict[str, str]:
    """/sys/module/memory_hotplug/parameters/* (mm/memory_hotplug.c, 6.1): bools via
    param_get_bool, auto_movable_ratio via param_get_uint ("%u\\n"), online_policy via
    get_online_policy. Keys in directory-listing order."""
    policy = p.online_policy
    if isinstance(policy, int):
        policy = ONLINE_POLICY_TO_STR[policy]
    elif policy not in ONLINE_POLICY_TO_STR:
        raise ValueError(f"unknown online_policy {policy!r}")
    return {
        "auto_movable_numa_aware": _param_bool(p.auto_movable_numa_aware),
        "auto_movable_ratio": f"{p.auto_movable_ratio}\n",
        "memmap_on_memory": _param_bool(p.memmap_on_memory),
        "online_policy": f"{policy}\n",
    }
