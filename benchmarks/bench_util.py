"""Shared helpers of the benchmark suite: Machines, the cycle, and the process's memory.

Every group runs its baseline in the same session, so each ratio in benchmarks/README.md is
measured, not remembered (``benchmarks/summary.py`` computes them from the JSON result).
"""
import hotmem
from hotmem import MHP_MEMMAP_ON_MEMORY

MiB, GiB, TiB = 1 << 20, 1 << 30, 1 << 40
DIMM = 4 * GiB                          # block 32 of a 1 GiB QEMU pc guest
BLOCK_128M = 128 * MiB
#: 2 GiB blocks: x86-64 probes them once boot RAM ends at >= 64 GiB on a 2 GiB boundary
#: (QEMU pc with 63 GiB: 3 GiB below 4 GiB, 60 GiB above, RAM ends at 64 GiB)
BOOT_FOR_2G_BLOCKS = "63G"
#: where the 2 GiB blocks go: above QEMU's AMD HyperTransport hole [1012 GiB, 1 TiB)
SCALE_START = 1 * TiB


def machine(mom: bool, backend="compiled", boot="1G", **kw):
    return hotmem.Machine(boot_memory=boot, backend=backend,
                          cmdline=f"memory_hotplug.memmap_on_memory={int(mom)}", **kw)


def machine_2g_blocks(mom: bool = True, backend="compiled"):
    """A 63 GiB QEMU pc guest with 2 GiB memory blocks and no DIMM region (maxmem = RAM), so
    that add_memory() is free to use any range above 1 TiB, as a driver (dax/kmem) does."""
    m = machine(mom, backend, boot=BOOT_FOR_2G_BLOCKS, maxmem=BOOT_FOR_2G_BLOCKS)
    assert m.memory_block_size_bytes == 2 * GiB
    return m


def state_path(block_id: int) -> str:
    return f"/sys/devices/system/memory/memory{block_id}/state"


def cycle(m, mom: bool, start=DIMM, size=BLOCK_128M, online_type="online_movable"):
    """add_memory + online + offline + remove_memory of one memory block."""
    bid = start // m.memory_block_size_bytes
    m.add_memory(0, start, size, MHP_MEMMAP_ON_MEMORY if mom else 0)
    m.sysfs.write(state_path(bid), online_type)
    m.sysfs.write(state_path(bid), "offline")
    m.remove_memory(0, start, size)


# -- memory of this process (Linux /proc/self/status) ------------------------------------------

def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def rss() -> int:
    """Resident set size now, bytes."""
    return _status("VmRSS")


def peak_rss() -> int:
    """Peak resident set size since the last reset_peak_rss(), bytes."""
    return _status("VmHWM")


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (writing 5 to clear_refs, Linux 4.0+)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0
