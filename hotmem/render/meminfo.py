"""/proc/meminfo (fs/proc/meminfo.c, mm/hugetlb.c, arch/x86/mm/pat/set_memory.c; Linux 6.1)."""
from __future__ import annotations

from hotmem.render.model import MemInfo

# (field, prefix, width, suffix): the printed line is prefix + value right-aligned in width +
# suffix. show_val_kb is seq_put_decimal_ull_width(.., 8) + " kB"; the others are seq_printf.
_KB8 = (8, " kB\n")
_LINES: tuple[tuple[str, str, int, str], ...] = tuple(
    (f, p) + fmt for f, p, fmt in (
        ("MemTotal", "MemTotal:       ", _KB8),
        ("MemFree", "MemFree:        ", _KB8),
        ("MemAvailable", "MemAvailable:   ", _KB8),
        ("Buffers", "Buffers:        ", _KB8),
        ("Cached", "Cached:         ", _KB8),
        ("SwapCached", "SwapCached:     ", _KB8),
        ("Active", "Active:         ", _KB8),
        ("Inactive", "Inactive:       ", _KB8),
        ("Active_anon", "Active(anon):   ", _KB8),
        ("Inactive_anon", "Inactive(anon): ", _KB8),
        ("Active_file", "Active(file):   ", _KB8),
        ("Inactive_file", "Inactive(file): ", _KB8),
        ("Unevictable", "Unevictable:    ", _KB8),
        ("Mlocked", "Mlocked:        ", _KB8),
        ("SwapTotal", "SwapTotal:      ", _KB8),
        ("SwapFree", "SwapFree:       ", _KB8),
        ("Zswap", "Zswap:          ", _KB8),                   # CONFIG_ZSWAP
        ("Zswapped", "Zswapped:       ", _KB8),
        ("Dirty", "Dirty:          ", _KB8),
        ("Writeback", "Writeback:      ", _KB8),
        ("AnonPages", "AnonPages:      ", _KB8),
        ("Mapped", "Mapped:         ", _KB8),
        ("Shmem", "Shmem:          ", _KB8),
        ("KReclaimable", "KReclaimable:   ", _KB8),
        ("Slab", "Slab:           ", _KB8),
        ("SReclaimable", "SReclaimable:   ", _KB8),
        ("SUnreclaim", "SUnreclaim:     ", _KB8),
        ("KernelStack", "KernelStack:    ", _KB8),
        ("PageTables", "PageTables:     ", _KB8),
        ("SecPageTables", "SecPageTables:  ", _KB8),
        ("NFS_Unstable", "NFS_Unstable:   ", _KB8),
        ("Bounce", "Bounce:         ", _KB8),
        ("WritebackTmp", "WritebackTmp:   ", _KB8),
        ("CommitLimit", "CommitLimit:    ", _KB8),
        ("Committed_AS", "Committed_AS:   ", _KB8),
        ("VmallocTotal", "VmallocTotal:   ", _KB8),
        ("VmallocUsed", "VmallocUsed:    ", _KB8),
        ("VmallocChunk", "VmallocChunk:   ", _KB8),
        ("Percpu", "Percpu:         ", _KB8),
        ("HardwareCorrupted", "HardwareCorrupted: ", (5, " kB\n")),  # CONFIG_MEMORY_FAILURE
        ("AnonHugePages", "AnonHugePages:  ", _KB8),  # CONFIG_TRANSPARENT_HUGEPAGE
        ("ShmemHugePages", "ShmemHugePages: ", _KB8),
        ("ShmemPmdMapped", "ShmemPmdMapped: ", _KB8),
        ("FileHugePages", "FileHugePages:  ", _KB8),
        ("FilePmdMapped", "FilePmdMapped:  ", _KB8),
        ("CmaTotal", "CmaTotal:       ", _KB8),          # CONFIG_CMA only
        ("CmaFree", "CmaFree:        ", _KB8),
        ("HugePages_Total", "HugePages_Total:   ", (5, "\n")),   # hugetlb_report_meminfo
        ("HugePages_Free", "HugePages_Free:    ", (5, "\n")),
        ("HugePages_Rsvd", "HugePages_Rsvd:    ", (5, "\n")),
        ("HugePages_Surp", "HugePages_Surp:    ", (5, "\n")),
        ("Hugepagesize", "Hugepagesize:   ", _KB8),
        ("Hugetlb", "Hugetlb:        ", _KB8),
        ("DirectMap4k", "DirectMap4k:    ", _KB8),       # arch_report_meminfo
        ("DirectMap64k", "DirectMap64k:    ", _KB8),     # powerpc64 radix only
        ("DirectMap2M", "DirectMap2M:    ", _KB8),
        ("DirectMap1G", "DirectMap1G:    ", _KB8),       # only with direct_gbpages
    )
)
_BY_LABEL = {p.split(":")[0]: f for f, p, _, _ in _LINES}


def render_meminfo(mi: MemInfo) -> str:
    """fs/proc/meminfo.c:meminfo_proc_show + hugetlb_report_meminfo + x86 arch_report_meminfo
    (6.1). DirectMap1G is printed only when not None (direct_gbpages)."""
    out = []
    for name, prefix, width, suffix in _LINES:
        value = getattr(mi, name)
        if value is None and name.startswith(("DirectMap", "Cma")):
            continue                    # no arch_report_meminfo, no gbpages, or no CONFIG_CMA
        out.append(f"{prefix}{value:>{width}}{suffix}")
    return "".join(out)


def parse_meminfo(text: str) -> MemInfo:
    """Inverse of render_meminfo: every label of the 6.1 Debian config, in any order."""
    values = {}
    for line in text.splitlines():
        label, sep, rest = line.partition(":")
        if not sep or label not in _BY_LABEL:
            raise ValueError(f"meminfo: unexpected line {line!r}")
        values[_BY_LABEL[label]] = int(rest.split()[0])
    optional = {"DirectMap1G", "DirectMap64k", "CmaTotal", "CmaFree"}
    if "DirectMap64k" in values:        # powerpc64 radix's arch_report_meminfo
        optional |= {"DirectMap4k", "DirectMap2M"}
    elif not any(k.startswith("DirectMap") for k in values):    # no arch_report_meminfo
        optional |= {"DirectMap4k", "DirectMap2M"}
    missing = [f for f, *_ in _LINES if f not in values and f not in optional]
    if missing:
        raise ValueError(f"meminfo: missing {missing}")
    return MemInfo(**values)
