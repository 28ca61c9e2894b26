"""/sys/devices/system/memory, /sys/devices/system/node and the memory_hotplug module parameters,
read and written as a shell would (errors carry the errno the write would fail with)."""
from __future__ import annotations

import errno
import re

from hotmem.boundary import as_str, c_string, sysfs_text
from hotmem.errors import HotplugError
from hotmem.mm import memory_hotplug as mh
from hotmem.render import (MemoryHotplugParams, render_memory_hotplug_params, render_nodelist,
                           render_node_meminfo)
from hotmem.render.memory import (render_auto_online_blocks, render_block_size_bytes,
                                  render_online, render_phys_device, render_phys_index,
                                  render_removable)
from hotmem.render.model import NodeMemInfo

MEMORY = "/sys/devices/system/memory"
#: drivers/base/memory.c (6.1): MEMORY_CLASS_NAME, memory_subsys.dev_name
MEMORY_CLASS_NAME = "memory"
NODE = "/sys/devices/system/node"
PARAMS = "/sys/module/memory_hotplug/parameters"


def sysfs_streq(s1: str, s2: str) -> bool:
    """lib/string_helpers.c:sysfs_streq (6.1): the strings are equal, treating NUL and a newline
    followed by NUL as the same end (one trailing newline on either side; nothing else: no
    spaces, tabs or second newline). Both are read as C strings (:func:`hotmem.boundary.c_string`)."""
    a, b = c_string(s1), c_string(s2)
    return a == b or a + "\n" == b or a == b + "\n"


def kstrtobool(s: str) -> bool | None:
    """lib/kstrtox.c:kstrtobool (6.1): True for a first character of y/Y/t/T/1 or "on"
    (o/O then n/N), False for n/N/f/F/0 or "off" (o/O then f/F); None where the kernel returns
    -EINVAL. Only the first one or two characters count ("yolo" is true)."""
    s = c_string(s)
    if s[:1] in ("y", "Y", "t", "T", "1"):
        return True
    if s[:1] in ("n", "N", "f", "F", "0"):
        return False
    if s[:1] in ("o", "O"):
        if s[1:2] in ("n", "N"):
            return True
        if s[1:2] in ("f", "F"):
            return False
    return None


def memory_block_dev_name(block_id: int) -> str:
    """drivers/base/core.c:device_add (6.1): a memory block device is named
    dev_set_name("%s%u", bus->dev_name, dev->id), i.e. "memory" and the id in decimal."""
    return f"{MEMORY_CLASS_NAME}{block_id}"


def kernfs_find_ns(m, name: str):
    """fs/kernfs/dir.c:kernfs_find_ns (6.1) in /sys/devices/system/memory: the memory block whose
    device name is ``name`` by strcmp (kernfs_name_compare), or None. "memory032", "memory+32"
    or non-ASCII digits ("memory٣٢") name no device: the only name of block 32 is "memory32"."""
    prefix = MEMORY_CLASS_NAME
    digits = name[len(prefix):] if name.startswith(prefix) else ""
    if not (digits.isascii() and digits.isdigit()):
        return None
    mem = m.memory.blocks.get(int(digits))
    return mem if mem is not None and memory_block_dev_name(mem.block_id) == name else None


class SysFs:
    """``m.sysfs``: read(path) → text; write(path, text)."""

    def __init__(self, m):
        self.m = m

    def _block(self, name: str):
        mem = kernfs_find_ns(self.m, name)
        if mem is None:
            raise HotplugError(errno.ENOENT, f"{MEMORY}/{name}: No such file or directory")
        return mem

    def listdir(self, path: str) -> list[str]:
        """The entries of a modelled directory (memoryN/nodeM and nodeN/memoryM are links)."""
        from hotmem.export import sysfs_listdir
        return sysfs_listdir(self.m, as_str(path, "sysfs path").rstrip("/"))

    def readlink(self, path: str) -> str:
        """The relative target of a link (memoryN/nodeM, nodeN/memoryM); EINVAL otherwise."""
        from hotmem.export import sysfs_readlink
        return sysfs_readlink(self.m, as_str(path, "sysfs path").rstrip("/"))

    def read(self, path: str) -> str:
        m = self.m
        path = as_str(path, "sysfs path").rstrip("/")
        if path == f"{MEMORY}/block_size_bytes":
            return render_block_size_bytes(m.memory_block_size_bytes)
        if path == f"{MEMORY}/auto_online_blocks":
            return render_auto_online_blocks(m.mhp_default_online_type)
        mt = re.fullmatch(re.escape(MEMORY) + r"/(memory[^/]*)/(\w+)", path)
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
        mt = re.fullmatch(re.escape(NODE) + r"/node([0-9]+)/meminfo", path)
        if mt and mt.group(1) == str(int(mt.group(1))):        # "node%u": node01 is no node
            mt = mt if int(mt.group(1)) in m.pgdats and m.pgdats[int(mt.group(1))].online else None
        else:
            mt = None
        if mt:
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
        path = as_str(path, "sysfs path").rstrip("/")
        text = sysfs_text(text, f"{path}: value")
        mt = re.fullmatch(re.escape(MEMORY) + r"/(memory[^/]*)/(state|online)", path)
        if mt:
            mem = self._block(mt.group(1))
            if not text:
                return                           # fs/sysfs/file.c:sysfs_kf_write: count 0
            if mt.group(2) == "state":
                m.memory.state_store(mem, text)
            else:
                m.memory.online_store(mem, text)
            if m.virtio_mem_devices:        # work a MEM_ONLINE queued (virtio_mem_retry)
                from hotmem.drivers.virtio_mem import run_deferred_work
                run_deferred_work(m)
            return
        if path == f"{MEMORY}/auto_online_blocks":
            if not text:
                return                           # fs/sysfs/file.c:sysfs_kf_write: count 0
            m.memory.auto_online_blocks_store(text)
            return
        mt = re.fullmatch(re.escape(PARAMS) + r"/(online_policy|auto_movable_ratio|"
                          r"auto_movable_numa_aware)", path)
        if mt and m.policy.online_policy_param:         # 0644 parameters (5.15+)
            from hotmem.cmdline import set_online_policy_param
            set_online_policy_param(m, mt.group(1), text)
            return
        self.read(path)  # ENOENT for unknown files
        raise HotplugError(errno.EACCES, f"{path}: Permission denied (read-only attribute)")
