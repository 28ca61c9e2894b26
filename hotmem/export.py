"""A Machine's /sys and /proc written out as a sysroot tree, laid out as the kernel lays them out,
so that unchanged tools read it (``lsmem --sysroot DIR``):

    DIR/sys/devices/system/memory      block_size_bytes, auto_online_blocks, memoryN/{state,
                                       online, phys_index, phys_device, removable, valid_zones}
                                       and memoryN/nodeM -> ../../node/nodeM (a symlink)
    DIR/sys/devices/system/node        possible, online, has_*; nodeN/meminfo and
                                       nodeN/memoryM -> ../../memory/memoryM
    DIR/sys/module/memory_hotplug/parameters/*
    DIR/sys/firmware/memmap/N/{start,end,type}
    DIR/proc/{meminfo,zoneinfo,vmstat,buddyinfo,iomem}   text
    DIR/proc/{kpageflags,kpagecount}   one little-endian u64 per pfn up to
                                       round_up(max_pfn, PAGES_PER_SECTION), as a read of the
                                       whole file returns (fs/proc/page.c, 6.1)

The directory listings and links come from ``m.sysfs.listdir`` / ``m.sysfs.readlink`` (this
module answers them), so the tree and ``m.sysfs`` always agree.
"""
from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from hotmem.errors import HotplugError

MEMORY = "/sys/devices/system/memory"
NODE = "/sys/devices/system/node"
PARAMS = "/sys/module/memory_hotplug/parameters"
FIRMWARE_MEMMAP = "/sys/firmware/memmap"
PROC_TEXT = ("meminfo", "zoneinfo", "vmstat", "buddyinfo", "iomem")
#: drivers/base/memory.c (6.1): memory_memblk_attrs, in directory order
BLOCK_ATTRS = ("online", "phys_device", "phys_index", "removable", "state", "valid_zones")
NODE_LISTS = ("has_cpu", "has_memory", "has_normal_memory", "online", "possible")
PARAM_NAMES = ("auto_movable_numa_aware", "auto_movable_ratio", "memmap_on_memory",
               "online_policy")
#: the largest /proc/kpageflags the export writes (2^26 pfns: a 512 MiB file, 256 GiB of 4K pages)
KPAGE_MAX_PFNS = 1 << 26
_CHUNK = 1 << 18


def _enoent(path: str):
    return HotplugError(errno.ENOENT, f"{path}: No such file or directory")


def _registered_nodes(m) -> list[int]:
    """Nodes with a /sys/devices/system/node/nodeN (drivers/base/node.c:register_one_node of
    each online node)."""
    return sorted(n for n, p in m.pgdats.items() if p.online)


def firmware_memmap_entries(m) -> list[tuple[int, int, str]]:
    """drivers/firmware/memmap.c (6.1): the map entries in the order they were added, (start,
    end exclusive, type). x86 adds e820_table_firmware at boot (arch/x86/kernel/e820.c:
    e820__register_nosave_regions / firmware_map_add_early, the table saved by
    e820__memory_setup before trim_bios_range takes page 0 from RAM), then every hot-added
    range (mm/memory_hotplug.c:add_memory_resource → firmware_map_add_hotplug)."""
    out = []
    e820 = getattr(m.arch_ops, "e820", None)
    if e820:
        from hotmem.arch.x86_e820 import E820_TYPE_RAM
        # e820_print_type names; adjacent entries of one type stay separate as the table has them
        ents = sorted(((e.start, e.end, "System RAM" if e.type == E820_TYPE_RAM else "Reserved")
                       for e in e820), key=lambda e: e[0])
        # undo trim_bios_range: the firmware's first RAM entry starts at 0
        if (len(ents) > 1 and ents[0][:3] == (0, 0x1000, "Reserved")
                and ents[1][0] == 0x1000 and ents[1][2] == "System RAM"):
            ents[0:2] = [(0, ents[1][1], "System RAM")]
        out += ents
    out += [(s, e, t) for s, e, t in m.firmware_map]
    return out


def firmware_memmap_read(m, path: str) -> str:
    """/sys/firmware/memmap/N/{start,end,type} (drivers/firmware/memmap.c: start_show and
    end_show print "0x%llx\\n", end inclusive; type_show "%s\\n")."""
    mt = re.fullmatch(re.escape(FIRMWARE_MEMMAP) + r"/(\d+)/(start|end|type)", path)
    ents = firmware_memmap_entries(m)
    if not mt or int(mt.group(1)) >= len(ents):
        raise _enoent(path)
    start, end, kind = ents[int(mt.group(1))]
    return {"start": f"{start:#x}\n", "end": f"{end - 1:#x}\n", "type": f"{kind}\n"}[mt.group(2)]


def sysfs_listdir(m, path: str) -> list[str]:
    """The entries of a directory of ``m.sysfs`` (ENOENT for anything else, ENOTDIR for a
    file)."""
    blocks = m.memory.blocks
    if path == MEMORY:
        return ["auto_online_blocks", "block_size_bytes"] + [f"memory{i}" for i in sorted(blocks)]
    mt = re.fullmatch(re.escape(MEMORY) + r"/memory(\d+)", path)
    if mt and int(mt.group(1)) in blocks:
        nid = blocks[int(mt.group(1))].nid
        # drivers/base/node.c:do_register_memory_block_under_node links the block to its node
        return list(BLOCK_ATTRS) + ([f"node{nid}"] if nid >= 0 else [])
    if path == NODE:
        return list(NODE_LISTS) + [f"node{n}" for n in _registered_nodes(m)]
    mt = re.fullmatch(re.escape(NODE) + r"/node(\d+)", path)
    if mt and int(mt.group(1)) in _registered_nodes(m):
        nid = int(mt.group(1))
        return ["meminfo"] + [f"memory{i}" for i in sorted(blocks) if blocks[i].nid == nid]
    if path == PARAMS:
        names = []
        for name in PARAM_NAMES:
            try:
                m.sysfs.read(f"{PARAMS}/{name}")
                names.append(name)
            except HotplugError:
                pass
        return names
    if path == FIRMWARE_MEMMAP:
        return [str(i) for i in range(len(firmware_memmap_entries(m)))]
    mt = re.fullmatch(re.escape(FIRMWARE_MEMMAP) + r"/(\d+)", path)
    if mt and int(mt.group(1)) < len(firmware_memmap_entries(m)):
        return ["end", "start", "type"]
    m.sysfs.read(path)                     # a file: ENOTDIR; nothing: ENOENT
    raise HotplugError(errno.ENOTDIR, f"{path}: Not a directory")


def sysfs_readlink(m, path: str) -> str:
    """The target of memoryN/nodeM (``../../node/nodeM``) or nodeN/memoryM
    (``../../memory/memoryM``), relative as sysfs_create_link_nowarn makes them appear."""
    head, _, name = path.rpartition("/")
    if not _is_dir(m, head) or name not in sysfs_listdir(m, head):
        raise _enoent(path)
    if head.startswith(MEMORY + "/memory") and name.startswith("node"):
        return f"../../node/{name}"
    if head.startswith(NODE + "/node") and name.startswith("memory"):
        return f"../../memory/{name}"
    raise HotplugError(errno.EINVAL, f"{path}: Invalid argument (not a link)")


def _is_dir(m, path: str) -> bool:
    try:
        sysfs_listdir(m, path)
        return True
    except HotplugError:
        return False


def _write_sysfs(m, path: str, root: Path) -> None:
    out = root / path.lstrip("/")
    out.mkdir(parents=True, exist_ok=True)
    for name in sysfs_listdir(m, path):
        sub = f"{path}/{name}"
        try:
            os.symlink(sysfs_readlink(m, sub), out / name)
            continue
        except HotplugError:
            pass
        if _is_dir(m, sub):
            _write_sysfs(m, sub, root)
        else:
            (out / name).write_text(m.sysfs.read(sub))


def _write_kpage(m, path: Path, reader, npfns: int) -> None:
    """One u64 per pfn, little-endian; all-zero stretches are left as holes (a sparse file)."""
    import numpy as np
    with open(path, "wb") as f:
        for pfn in range(0, npfns, _CHUNK):
            vals = np.asarray(reader(pfn, min(_CHUNK, npfns - pfn)), dtype="<u8")
            if vals.any():
                f.seek(pfn * 8)
                f.write(vals.tobytes())
        f.truncate(npfns * 8)


def export(m, root) -> Path:
    """Write the Machine's /sys and /proc under ``root`` (a new or empty directory)."""
    root = Path(root)
    if root.exists():
        if not root.is_dir():
            raise HotplugError(errno.ENOTDIR, f"export: {root}: Not a directory")
        if any(root.iterdir()):
            raise HotplugError(errno.ENOTEMPTY, f"export: {root}: Directory not empty "
                               "(export writes a new sysroot tree)")
    # get_max_dump_pfn: /proc/kpageflags ends at round_up(max_pfn, PAGES_PER_SECTION)
    pps = m.arch.PAGES_PER_SECTION
    npfns = -(-m.max_pfn // pps) * pps
    if npfns > KPAGE_MAX_PFNS:
        raise HotplugError(errno.EFBIG, f"export: /proc/kpageflags of {npfns} pfns would be "
                           f"{npfns * 8 >> 20} MiB (limit {KPAGE_MAX_PFNS * 8 >> 20} MiB)")
    root.mkdir(parents=True, exist_ok=True)
    for top in (MEMORY, NODE, PARAMS, FIRMWARE_MEMMAP):
        _write_sysfs(m, top, root)
    proc = root / "proc"
    proc.mkdir()
    for name in PROC_TEXT:
        (proc / name).write_text(m.procfs.read(f"/proc/{name}"))
    _write_kpage(m, proc / "kpageflags", m.procfs.kpageflags, npfns)
    _write_kpage(m, proc / "kpagecount", m.procfs.kpagecount, npfns)
    return root
