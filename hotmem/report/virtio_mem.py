"""``hotmem compare --driver virtio-mem``: the plan's memory plugged through a virtio-mem device,
booted with memory_hotplug.memmap_on_memory on and off, side by side. virtio-mem never passes
MHP_MEMMAP_ON_MEMORY (hotmem/drivers/mhp_flags.py), so both columns agree: the report shows it."""
from __future__ import annotations

import json

from hotmem.drivers.mhp_flags import flag_names
from hotmem.machine import parse_size
from hotmem.report.units import GiB, iec


def _meminfo_kb(m, key: str) -> int:
    for line in m.procfs.read("/proc/meminfo").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _run(plan, mom: bool, block_size, online_type: str) -> dict:
    m = plan.machine(mom)
    m.sysfs.write("/sys/devices/system/memory/auto_online_blocks", online_type)
    total = sum(plan.sizes())
    region = max(GiB, -(-total // GiB) * GiB)
    before = m.accounting()["memmap"]
    t0 = _meminfo_kb(m, "MemTotal")
    d = m.virtio_mem_device(region_size=region, block_size=block_size,
                            node=plan.node_of(0), requested_size=total)
    after = m.accounting()["memmap"]
    blocks = [b for b in m.memory_blocks.values() if d.addr <= b.start_pfn << m.arch.page_shift
              < d.addr + d.region_size]
    return {
        "memory_hotplug.memmap_on_memory": plan.memmap_on_memory if mom else "0",
        "mode": d.mode,
        "granularity": d.sb_size if d.in_sbm else d.bb_size,
        "device": {"addr": d.addr, "region_size": d.region_size, "block_size": d.block_size},
        "mhp_flags": flag_names(d.policy.mhp_flags).replace(" \\| ", " | "),
        "plugged": d.size,
        "last_rc": d.last_rc,
        "memory_blocks": len(blocks),
        "memory_blocks_with_memmap_on_memory": sum(1 for b in blocks if b.nr_vmemmap_pages),
        "memtotal_kb_added": _meminfo_kb(m, "MemTotal") - t0,
        "memmap_pages_from_buddy": sum(after["buddy"].values()) - sum(before["buddy"].values()),
        "memmap_pages_from_altmap": sum(after["altmap"].values()) - sum(before["altmap"].values()),
    }


def compare_virtio_mem(plan, block_size=None, online_type: str = "online_movable") -> dict:
    """The plan's DIMM sizes, summed, as one virtio-mem device's requested size, with and
    without memmap on memory."""
    block_size = parse_size(block_size) if block_size is not None else None
    return {"kernel": plan.kernel, "arch": plan.arch, "requested": sum(plan.sizes()),
            "online_type": online_type,
            "memmap_on_memory": _run(plan, True, block_size, online_type),
            "regular": _run(plan, False, block_size, online_type)}


def render_virtio_mem(rep: dict) -> str:
    a, r = rep["memmap_on_memory"], rep["regular"]
    dev = a["device"]
    out = [f"hotmem compare --driver virtio-mem: {rep['arch']} Linux {rep['kernel']}, "
           f"{iec(rep['requested'])} requested in a {iec(dev['region_size'])} region at "
           f"{dev['addr']:#x}, device block {iec(dev['block_size'])}: {a['mode']} "
           f"({'sub' if a['mode'] == 'SBM' else 'big'} block {iec(a['granularity'])}), "
           f"{rep['online_type']}",
           f"add_memory_driver_managed flags: {a['mhp_flags']} -- never MHP_MEMMAP_ON_MEMORY, so "
           "memory_hotplug.memmap_on_memory changes nothing", ""]
    rows = [("", f"memmap_on_memory={a['memory_hotplug.memmap_on_memory']}",
             "memmap_on_memory=0"),
            ("plugged", iec(a["plugged"]), iec(r["plugged"])),
            ("memory blocks added", a["memory_blocks"], r["memory_blocks"]),
            ("  with memmap on memory", a["memory_blocks_with_memmap_on_memory"],
             r["memory_blocks_with_memmap_on_memory"]),
            ("MemTotal added (kB)", a["memtotal_kb_added"], r["memtotal_kb_added"]),
            ("memmap pages from the buddy", a["memmap_pages_from_buddy"],
             r["memmap_pages_from_buddy"]),
            ("memmap pages from an altmap", a["memmap_pages_from_altmap"],
             r["memmap_pages_from_altmap"])]
    for name, x, y in rows:
        out.append(f"{name:<30}{x!s:>24}{y!s:>22}")
    return "\n".join(out) + "\n"


def to_json(rep: dict) -> str:
    return json.dumps(rep, indent=2) + "\n"
