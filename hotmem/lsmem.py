"""``lsmem`` of util-linux (sys-utils/lsmem.c, 2.41) over a Machine's /sys/devices/system/memory.

Blocks are read the way lsmem reads them — block_size_bytes, memoryN/state, removable,
valid_zones, the node of the block — and adjacent blocks are merged into one range unless a shown
column differs (``--split`` follows the output columns, as lsmem's does). Columns: RANGE, SIZE,
STATE, REMOVABLE, BLOCK, NODE, ZONES and MEMMAP-ON-MEMORY. Real lsmem fills MEMMAP-ON-MEMORY from
s390's /sys/firmware/memory/memoryN/memmap_on_memory; the model answers it for every block from
the block's ``nr_vmemmap_pages`` (its memmap lives in the block).

    print(render_lsmem(m))                       # like `lsmem -o +NODE,ZONES,MEMMAP-ON-MEMORY`
    print(render_lsmem(m, json=True))            # like `lsmem --json`
"""
from __future__ import annotations

import errno
import json as _json
from dataclasses import dataclass

from hotmem.errors import HotplugError

COLUMNS = ("RANGE", "SIZE", "STATE", "REMOVABLE", "BLOCK", "NODE", "ZONES", "MEMMAP-ON-MEMORY")
#: lsmem's own default columns
LSMEM_DEFAULT = ("RANGE", "SIZE", "STATE", "REMOVABLE", "BLOCK")
#: hotmem lsmem shows every column by default
DEFAULT_COLUMNS = COLUMNS
_RIGHT = {"SIZE", "STATE", "REMOVABLE", "BLOCK", "NODE", "ZONES", "MEMMAP-ON-MEMORY"}
_WIDTH_HINT = {"SIZE": 5}
# lsmem.c: enum zone_id and zone_names[]
ZONE_NAMES = ("DMA", "DMA32", "Normal", "Highmem", "Movable", "Device", "None", "Unknown")
ZONE_UNKNOWN = 7
MEMORY = "/sys/devices/system/memory"


@dataclass
class Block:
    """struct memory_block of lsmem.c: a run of ``count`` blocks from ``index``."""
    index: int
    count: int
    state: str                      # online / offline / going-offline
    node: int
    zones: tuple
    removable: bool
    memmap_on_memory: bool


def zone_name_to_id(name: str) -> int:
    for i, z in enumerate(ZONE_NAMES):
        if name.lower() == z.lower():
            return i
    return ZONE_UNKNOWN


def size_to_human_string(n: int) -> str:
    """lib/strutils.c:size_to_human_string(SIZE_SUFFIX_1LETTER): "128M", "1.5G", "0B"."""
    exp = 0
    for shft in range(10, 61, 10):
        if n < 1 << shft:
            exp = shft - 10
            break
    else:
        exp = 60
    letter = "BKMGTPE"[exp // 10 if exp else 0]
    dec = n >> exp if exp else n
    frac = n % (1 << exp) if exp else 0
    if frac:
        frac = frac * 1000 // (1 << exp)
        frac = (frac + 50) // 100 * 10
        if frac == 100:
            dec, frac = dec + 1, 0
    if frac:
        text = f"{dec}.{frac:02d}"
        if text.endswith("0"):
            text = text[:-1]
        return text + letter
    return f"{dec}{letter}"


def parse_columns(spec: str | None) -> list[str]:
    """``-o`` list: names matched without case; a leading '+' appends to lsmem's defaults."""
    if not spec:
        return list(DEFAULT_COLUMNS)
    cols = list(LSMEM_DEFAULT) if spec.startswith("+") else []
    for name in spec.lstrip("+").split(","):
        match = [c for c in COLUMNS if c.lower() == name.strip().lower()]
        if not match:
            raise HotplugError(errno.EINVAL, f"unknown column: {name} (known: {','.join(COLUMNS)})")
        cols.append(match[0])
    return cols


def read_blocks(m, columns, list_all: bool = False) -> tuple[int, list[Block], int, int, bool]:
    """lsmem.c:read_info: (block size, merged blocks, online bytes, offline bytes, have_nodes)."""
    fs = m.sysfs
    block_size = int(fs.read(f"{MEMORY}/block_size_bytes"), 16)
    split = set(columns)
    names = sorted((d for d in fs.listdir(MEMORY) if d.startswith("memory") and d[6:].isdigit()),
                   key=lambda d: int(d[6:]))
    have_nodes = any(m.memory_blocks[int(d[6:])].nid >= 0 for d in names)
    # lsmem.c:main: zones are read only where memory0/valid_zones exists (arm64 virt's RAM
    # starts at 1 GiB: no memory0, no ZONES)
    have_zones = "memory0" in names and "valid_zones" in fs.listdir(f"{MEMORY}/memory0")
    blocks: list[Block] = []
    online = offline = 0
    for name in names:
        idx = int(name[6:])
        mem = m.memory_blocks[idx]
        state = fs.read(f"{MEMORY}/{name}/state").strip()
        blk = Block(index=idx, count=1, state=state, node=mem.nid,
                    zones=tuple(zone_name_to_id(z)
                                for z in fs.read(f"{MEMORY}/{name}/valid_zones").split())
                    if have_zones else (),
                    removable=fs.read(f"{MEMORY}/{name}/removable").strip() == "1",
                    memmap_on_memory=bool(mem.nr_vmemmap_pages))
        if state == "online":
            online += block_size
        else:
            offline += block_size
        cur = blocks[-1] if blocks else None
        if (cur is not None and not list_all and cur.index + cur.count == idx
                and not ("STATE" in split and cur.state != blk.state)
                and not ("REMOVABLE" in split and cur.removable != blk.removable)
                and not ("NODE" in split and have_nodes and cur.node != blk.node)
                and not ("ZONES" in split and have_zones and (cur.zones != blk.zones
                                               or ZONE_UNKNOWN in cur.zones))
                and not ("MEMMAP-ON-MEMORY" in split
                         and cur.memmap_on_memory != blk.memmap_on_memory)):
            cur.count += 1
            continue
        blocks.append(blk)
    return block_size, blocks, online, offline, have_nodes


def _cell(col: str, b: Block, block_size: int, bytes_: bool, have_nodes: bool) -> str | None:
    if col == "RANGE":
        start = b.index * block_size
        return f"0x{start:016x}-0x{start + b.count * block_size - 1:016x}"
    if col == "SIZE":
        n = b.count * block_size
        return str(n) if bytes_ else size_to_human_string(n)
    if col == "STATE":
        return {"online": "online", "offline": "offline", "going-offline": "on->off"}.get(b.state,
                                                                                          "?")
    if col == "REMOVABLE":
        return ("yes" if b.removable else "no") if b.state == "online" else None
    if col == "BLOCK":
        return str(b.index) if b.count == 1 else f"{b.index}-{b.index + b.count - 1}"
    if col == "NODE":
        return str(b.node) if have_nodes else None
    if col == "ZONES":
        return "/".join(ZONE_NAMES[z] for z in b.zones)
    if col == "MEMMAP-ON-MEMORY":
        return "yes" if b.memmap_on_memory else "no"
    raise ValueError(col)


def render_lsmem(m, columns: str | list | None = None, *, list_all: bool = False,
                 bytes: bool = False, json: bool = False, noheadings: bool = False,
                 summary: str = "always") -> str:
    """The text ``lsmem`` prints for Machine ``m`` (``summary``: always, never or only)."""
    cols = parse_columns(columns) if not isinstance(columns, list) else columns
    block_size, blocks, online, offline, have_nodes = read_blocks(m, cols, list_all)
    rows = [[_cell(c, b, block_size, bytes, have_nodes) for c in cols] for b in blocks]
    if json:
        out = []
        for row in rows:
            obj = {}
            for c, v in zip(cols, row):
                key = c.lower()
                if c == "REMOVABLE":
                    obj[key] = bool(v) and v[0] not in "0Nn"
                elif c == "NODE" or (c == "SIZE" and bytes):
                    obj[key] = int(v) if v else None
                else:
                    obj[key] = v or None
            out.append(obj)
        return _json.dumps({"memory": out}, indent=3) + "\n"
    lines = []
    if summary != "only":
        # libsmartcols (util-linux 2.38, as run): the heading sets the least width even with
        # --noheadings; a width hint (SIZE: 5) counts only once a cell is as wide as the heading
        widths = []
        for i, c in enumerate(cols):
            data = max([len(r[i] or "") for r in rows], default=0)
            widths.append(max(len(c), data, _WIDTH_HINT.get(c, 0) if data >= len(c) else 0))

        def fmt(cells):
            out = []
            for i, (c, v) in enumerate(zip(cols, cells)):
                v = v or ""
                last = i == len(cols) - 1
                if last and not v:
                    out.append("")         # libsmartcols: an empty last cell after its separator
                elif c in _RIGHT:
                    out.append(v.rjust(widths[i]))
                else:
                    out.append(v if last else v.ljust(widths[i]))
            return " ".join(out)
        if not noheadings:
            lines.append(fmt(cols))
        lines += [fmt(r) for r in rows]
    if summary in ("always", "only"):
        if lines:
            lines.append("")
        if bytes:
            lines += [f"{'Memory block size:':<32} {block_size:>15}",
                      f"{'Total online memory:':<32} {online:>15}",
                      f"{'Total offline memory:':<32} {offline:>15}"]
        else:
            lines += [f"{'Memory block size:':<32} {size_to_human_string(block_size):>5}",
                      f"{'Total online memory:':<32} {size_to_human_string(online):>5}",
                      f"{'Total offline memory:':<32} {size_to_human_string(offline):>5}"]
        param = _memmap_on_memory_param(m)
        if param:
            lines.append(f"{'Memmap on memory parameter:':<32} {param:>{15 if bytes else 5}}")
    return "\n".join(lines) + "\n"


def _memmap_on_memory_param(m) -> str | None:
    """lsmem.c:get_memmap_mode of /sys/module/memory_hotplug/parameters/memmap_on_memory."""
    try:
        text = m.sysfs.read("/sys/module/memory_hotplug/parameters/memmap_on_memory")
    except Exception:                    # no such parameter in this kernel
        return None
    if text.startswith("Y"):
        return "yes"
    if text.startswith("N"):
        return "no"
    if text.startswith("force"):
        return "force"
    return None
