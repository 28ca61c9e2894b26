"""/sys/devices/system/memory, /sys/devices/system/node and the memory_hotplug module parameters,
read and written as a shell would (errors carry the errno the write would fail with)."""
from __future__ import annotations

import errno
import re

from hotmem.errors import HotplugError
from hotmem.mm import memory_hotplug as mh
from hotmem.render import (MemoryHotplugParams, render_memory_hotplug_params, render_nodelist,
                           render_node_meminfo)
from hotmem.render.memory import (render_auto_online_blocks, render_block_size_bytes,
                                  render_online, render_phys_device, render_phys_index,
                                  render_removable)
from hotmem.render.model import NodeMemInfo

MEMORY = "/sys/devices/system/memory"
NODE = "/sys/devices/system/node"
PARAMS = "/sys/module/memory_hotplug/parameters"


class SysFs:
    """``m.sysfs``: read(path) → text; write(path, text)."""

    def __init__(self, m):
        self.m = m

    def _block(self, name: str):
        mt = re.fullmatch(r"memory(\d+)", name)
        if not mt or int(mt.group(1)) not in self.m.memory.blocks:
            raise HotplugError(errno.ENOENT, f"{MEMORY}/{name}: No such file or directory")
        return self.m.memory.blocks[int(mt.group(1))]

    def listdir(self, path: str) -> list[str]:
        """The entries of a modelled directory (memoryN/nodeM and nodeN/memoryM are links)."""
        from hotmem.export import sysfs_listdir
        return sysfs_listdir(self.m, path.rstrip("/"))

    def readlink(self, path: str) -> str:
        """The relative target of a link (memoryN/nodeM, nodeN/memoryM); EINVAL otherwise."""
        from hotmem.export import sysfs_readlink
        return sysfs_readlink(self.m, path.rstrip("/"))

    def read(self, path: str) -> str:
        m = self.m
        path = path.rstrip("/")
        if path == f"{MEMORY}/block_size_bytes":
            return render_block_size_bytes(m.memory_block_size_bytes)
        if path == f"{MEMORY}/auto_online_blocks":
            return render_auto_online_blocks(m.mhp_default_online_type)
        mt = re.fullmatch(re.escape(MEMORY) + r"/(memory\d+)/(\w+)", path)
        if mt:
            mem = self._block(mt.group(1))
            attr = mt.group(2)
            if attr == "state":
                return mem.state + "\n"
            if attr == "online":
                return render_online(mem.online)
            if attr == "phys_index":
                return render_phys_index(mem.block_id)
            if attr == "phys_device":
                return render_phys_device(m.arch_ops.arch_get_memory_phys_device(m, mem.start_pfn))
            if attr == "removable":
                return render_removable(True)
            if attr == "valid_zones":
                return m.memory.valid_zones(mem) + "\n"
            raise HotplugError(errno.ENOENT, f"{path}: No such file or directory")
        mt = re.fullmatch(re.escape(NODE) + r"/(possible|online|has_normal_memory|has_memory|has_cpu)",
                          path)
        if mt:
            pg = m.pgdats
            sets = {"possible": set(pg), "online": {n for n, p in pg.items() if p.online},
                    "has_normal_memory": {n for n, p in pg.items() if p.has_normal_memory},
                    "has_memory": {n for n, p in pg.items() if p.has_memory},
                    "has_cpu": {n for n, c in m.cpu_nodes.items() if c}}
            return render_nodelist(sets[mt.group(1)])
        mt = re.fullmatch(re.escape(NODE) + r"/node(\d+)/meminfo", path)
        if mt and int(mt.group(1)) in m.pgdats and m.pgdats[int(mt.group(1))].online:
            nid = int(mt.group(1))
            zones = m.pgdats[nid].node_zones
            kb = m.arch.PAGE_SIZE >> 10                         # drivers/base/node.c: K(x)
            total = sum(z.managed_pages for z in zones) * kb
            free = sum(z.nr_free_pages for z in zones) * kb
            return render_node_meminfo(nid, NodeMemInfo(MemTotal=total, MemFree=free,
                                                        MemUsed=total - free))
        if path.startswith("/sys/firmware/memmap/"):
            from hotmem.export import firmware_memmap_read
            return firmware_memmap_read(m, path)
        mt = re.fullmatch(re.escape(PARAMS) + r"/(\w+)", path)
        if mt:
            params = render_memory_hotplug_params(MemoryHotplugParams(
                memmap_on_memory=m.memmap_on_memory, online_policy=m.online_policy,
                auto_movable_ratio=m.auto_movable_ratio,
                auto_movable_numa_aware=m.auto_movable_numa_aware))
            if not m.policy.online_policy_param:       # 5.15+ parameters
                for name in ("online_policy", "auto_movable_ratio", "auto_movable_numa_aware"):
                    params.pop(name)
            kind = m.policy.memmap_on_memory_param
            if kind == "none" or not m.policy.arch(m.arch.name).mhp_memmap_on_memory_enable:
                # no such module parameter: v2 has none, and it is only built with
                # CONFIG_MHP_MEMMAP_ON_MEMORY (mm/memory_hotplug.c)
                params.pop("memmap_on_memory", None)
            elif kind == "tristate" and m.memmap_on_memory_force:
                params["memmap_on_memory"] = "force\n"   # 6.6+ param_get of the tristate
            if mt.group(1) in params:
                return params[mt.group(1)]
        raise HotplugError(errno.ENOENT, f"{path}: No such file or directory")

    def write(self, path: str, text: str) -> None:
        """A shell's ``echo text > path``: raises HotplugError with the errno the write gets."""
        m = self.m
        path = path.rstrip("/")
        mt = re.fullmatch(re.escape(MEMORY) + r"/(memory\d+)/(state|online)", path)
        if mt:
            mem = self._block(mt.group(1))
            if mt.group(2) == "state":
                m.memory.state_store(mem, text)
            else:
                m.memory.online_store(mem, text)
            if m.virtio_mem_devices:        # work a MEM_ONLINE queued (virtio_mem_retry)
                from hotmem.drivers.virtio_mem import run_deferred_work
                run_deferred_work(m)
            return
        if path == f"{MEMORY}/auto_online_blocks":
            word = text.strip()
            if word not in mh.ONLINE_TYPE_NAMES:
                raise HotplugError(errno.EINVAL, f"auto_online_blocks: invalid value {word!r}")
            m.mhp_default_online_type = mh.ONLINE_TYPE_NAMES[word]
            return
        mt = re.fullmatch(re.escape(PARAMS) + r"/(online_policy|auto_movable_ratio|"
                          r"auto_movable_numa_aware)", path)
        if mt and m.policy.online_policy_param:         # 0644 parameters (5.15+)
            from hotmem.cmdline import set_online_policy_param
            set_online_policy_param(m, mt.group(1), text)
            return
        self.read(path)  # ENOENT for unknown files
        raise HotplugError(errno.EACCES, f"{path}: Permission denied (read-only attribute)")
