"""The kernel's text formats as pure functions over plain data (Linux 6.1, Debian x86_64 config).

One module per kernel source file: ``meminfo`` (fs/proc/meminfo.c), ``vmstat`` (mm/vmstat.c),
``node`` (drivers/base/node.c), ``iomem`` (kernel/resource.c), ``memory`` (drivers/base/memory.c);
the dataclasses they take live in ``model``. Each ``render_*`` returns the exact text the kernel
prints (including the final newline); each ``parse_*`` is its inverse.
"""
from hotmem.render.iomem import parse_iomem, render_iomem
from hotmem.render.meminfo import parse_meminfo, render_meminfo
from hotmem.render.memory import (
    parse_valid_zones, render_auto_online_blocks, render_block_size_bytes, render_memory_block,
    render_memory_hotplug_params, render_online, render_phys_device, render_phys_index,
    render_removable, render_state, render_valid_zones,
)
from hotmem.render.model import (
    MAX_NR_ZONES, MAX_ORDER, MEM_GOING_OFFLINE, MEM_OFFLINE, MEM_ONLINE, MMOP_OFFLINE,
    MMOP_ONLINE, MMOP_ONLINE_KERNEL, MMOP_ONLINE_MOVABLE, VMSTAT_ITEMS, ZONE_NAMES, MemInfo,
    MemoryBlockInfo, MemoryHotplugParams, NodeInfo, NodeMemInfo, NodeStats, NumaStat, Pageset,
    Resource, VmEvents, VmStat, WritebackStat, ZoneInfo, ZoneStat, iomem_root,
)
from hotmem.render.node import (
    parse_node_meminfo, parse_nodelist, render_node_meminfo, render_nodelist,
)
from hotmem.render.vmstat import (
    apply_buddyinfo, parse_buddyinfo, parse_vmstat, parse_vmstat_items, parse_zoneinfo, render_buddyinfo,
    render_vmstat, render_zoneinfo,
)

__all__ = [
    "MAX_NR_ZONES", "MAX_ORDER", "MEM_GOING_OFFLINE", "MEM_OFFLINE", "MEM_ONLINE",
    "MMOP_OFFLINE", "MMOP_ONLINE", "MMOP_ONLINE_KERNEL", "MMOP_ONLINE_MOVABLE", "VMSTAT_ITEMS",
    "ZONE_NAMES", "MemInfo", "MemoryBlockInfo", "MemoryHotplugParams", "NodeInfo", "NodeMemInfo",
    "NodeStats", "NumaStat", "Pageset", "Resource", "VmEvents", "VmStat", "WritebackStat",
    "ZoneInfo", "ZoneStat", "iomem_root",
    "render_meminfo", "parse_meminfo",
    "render_vmstat", "parse_vmstat", "parse_vmstat_items", "render_zoneinfo", "parse_zoneinfo",
    "render_buddyinfo", "parse_buddyinfo", "apply_buddyinfo",
    "render_node_meminfo", "parse_node_meminfo", "render_nodelist", "parse_nodelist",
    "render_iomem", "parse_iomem",
    "render_block_size_bytes", "render_auto_online_blocks", "render_state", "render_online",
    "render_phys_index", "render_phys_device", "render_removable", "render_valid_zones",
    "parse_valid_zones", "render_memory_block", "render_memory_hotplug_params",
]
