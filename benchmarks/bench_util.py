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


# -- the guard of the scale groups: skip a size that would not fit (or would take too long) ---

#: bytes per simulated page before any size was measured: today's 24 B struct page record, +15 %
DEFAULT_BYTES_PER_PAGE = 24 * 1.15
#: a size projected to take longer than this many seconds is skipped (HOTMEM_BENCH_MAX_S)
MAX_SECONDS = float(__import__("os").environ.get("HOTMEM_BENCH_MAX_S", "600"))


def skip_reason(label: str, pages: int, bytes_per_page: list, seconds_per_page: list) -> str | None:
    """Why ``label`` (``pages`` simulated pages) cannot run here, or None: its memory projected
    from the largest bytes per page measured so far (else DEFAULT_BYTES_PER_PAGE) must fit in
    85 % of MemAvailable, and its time projected linearly from the slowest pages per second
    measured so far must stay under MAX_SECONDS."""
    per_page = max(bytes_per_page) if bytes_per_page else DEFAULT_BYTES_PER_PAGE
    need, avail = pages * per_page, mem_available()
    if need > 0.85 * avail:
        return (f"{label}: projected {need / GiB:.1f} GiB of model memory ({per_page:.1f} B per "
                f"page), MemAvailable {avail / GiB:.1f} GiB")
    if seconds_per_page:
        t = pages * max(seconds_per_page)
        if t > MAX_SECONDS:
            return (f"{label}: projected {t:.0f} s at the measured {1 / max(seconds_per_page) / 1e6:.1f}"
                    f" M pages/s, over HOTMEM_BENCH_MAX_S={MAX_SECONDS:g}")
    return None


#: the other arches' scale group: arm64 with 4 KiB pages (128 MiB blocks) and powerpc64 radix
#: (64 KiB pages, 256 MiB blocks; 6.6, where memmap on memory exists there). A 256 MiB LMB's
#: memmap (4 pages of 64 KiB) is not pageblock-aligned (32 pages), so powerpc64 hosts it only in
#: force mode; with Y it falls back to the buddy, and 16 TiB of LMBs would need 16 GiB of boot
#: RAM for their memmaps (the kernel, like the model, fails with -ENOMEM long before).
ARCH_MACHINES = {
    "arm64-4K": dict(arch="arm64", page_size="4K", cmdline="memory_hotplug.memmap_on_memory=1"),
    "powerpc64-radix": dict(arch="powerpc64", mmu="radix", kernel="6.6",
                            cmdline="memory_hotplug.memmap_on_memory=force"),
}


def arch_machine(name: str, boot="4G"):
    import hotmem
    return hotmem.Machine(boot_memory=boot, maxmem=boot, **ARCH_MACHINES[name])
