"""The x86 boot memory map: the e820 table a QEMU ``pc`` machine hands the kernel, or one given
explicitly, and what arch/x86/kernel/e820.c makes of it (6.1).

QEMU ``pc`` (hw/i386/pc_piix.c, pc.c, QEMU 7.2): RAM below 4 GiB is ``ram_size`` when it is under
3.5 GiB, else 3 GiB; the rest starts at 4 GiB. SeaBIOS reports the top 128 KiB of low RAM, the
EBDA (0x9fc00..0xa0000) and the BIOS areas as reserved. The kernel makes page 0 reserved
(e820.c:e820__memory_setup → trim_bios_range). Hot-pluggable DIMMs live in the device-memory
region that starts at 4 GiB + RAM above 4 GiB, rounded up to 1 GiB.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass

from hotmem.errors import HotplugError

E820_TYPE_RAM = 1
E820_TYPE_RESERVED = 2

GiB = 1 << 30
MiB = 1 << 20
QEMU_PC_BELOW_4G_MAX = 3 * GiB
QEMU_PC_BELOW_4G_SPLIT = 0xE0000000
SEABIOS_TOP_RESERVED = 128 << 10
AMD_HT_START, AMD_HT_END = 0xFD00000000, 0x10000000000


def qemu_pc_devices(boot_memory_total: int, maxmem: int, slots: int):
    """The iomem entries QEMU pc's devices claim ((start, end inclusive, name, nest)): the
    legacy VGA window, video ROM, BIOS ROM, the 32-bit PCI hole from the end of low RAM, IOAPIC,
    HPET (with its ACPI device), the local APIC, and the 64-bit PCI hole of 2 GiB after the
    hot-plug device-memory region (maxmem − RAM, plus 1 GiB per slot: hw/i386/pc.c, 7.2)."""
    lowmem = QEMU_PC_BELOW_4G_MAX if boot_memory_total >= QEMU_PC_BELOW_4G_SPLIT else boot_memory_total
    out = [(0x000A0000, 0x000BFFFF, "PCI Bus 0000:00", False),
           (0x000C0000, 0x000C05FF, "Video ROM", False),
           (0x000F0000, 0x000FFFFF, "System ROM", True),
           (lowmem, 0xFEBFFFFF, "PCI Bus 0000:00", False),
           (0xFEC00000, 0xFEC003FF, "IOAPIC 0", False),
           (0xFED00000, 0xFED003FF, "HPET 0", False),
           (0xFED00000, 0xFED003FF, "PNP0103:00", True),
           (0xFEE00000, 0xFEE00FFF, "Local APIC", False)]
    if slots and maxmem > boot_memory_total:
        base = qemu_pc_device_memory_base(boot_memory_total)
        hole64 = base + (maxmem - boot_memory_total) + slots * GiB
        hole64 = (hole64 + GiB - 1) // GiB * GiB
        out.append((hole64, hole64 + 2 * GiB - 1, "PCI Bus 0000:00", False))
    return out


@dataclass(frozen=True)
class E820Entry:
    start: int
    end: int            # exclusive
    type: int
    nid: int = 0


def qemu_pc_layout(boot_memory: dict[int, int]) -> list[E820Entry]:
    """The e820 RAM and reserved ranges of ``qemu-system-x86_64 -machine pc`` with the given RAM
    per NUMA node (nodes take RAM in address order, as QEMU's SRAT does), after
    trim_bios_range. Nodes without memory get no entry."""
    total = sum(boot_memory.values())
    if total <= 0 or total % (4 << 10):
        raise HotplugError(errno.EINVAL, f"boot memory {total:#x} bytes: must be a positive "
                           "multiple of 4 KiB")
    if total < 2 * MiB:
        raise HotplugError(errno.EINVAL, f"boot memory {total:#x} bytes: QEMU needs at least 2 MiB")
    lowmem = QEMU_PC_BELOW_4G_MAX if total >= QEMU_PC_BELOW_4G_SPLIT else total
    ram = [(0x1000, 0x9FC00), (0x100000, lowmem - SEABIOS_TOP_RESERVED)]
    if total > lowmem:
        ram.append((4 * GiB, 4 * GiB + total - lowmem))
    # Hand the RAM to nodes in address order; QEMU counts node sizes over the guest's RAM
    # including the parts that the firmware reserves.
    bounds, acc = [], 0
    for nid in sorted(boot_memory):
        acc += boot_memory[nid]
        bounds.append((nid, acc))
    def ram_offset(addr):
        return addr if addr < 4 * GiB else lowmem + (addr - 4 * GiB)
    out = [E820Entry(0, 0x1000, E820_TYPE_RESERVED), E820Entry(0x9FC00, 0xA0000, E820_TYPE_RESERVED),
           E820Entry(0xF0000, 0x100000, E820_TYPE_RESERVED),
           E820Entry(lowmem - SEABIOS_TOP_RESERVED, lowmem, E820_TYPE_RESERVED),
           E820Entry(0xFFFC0000, 4 * GiB, E820_TYPE_RESERVED),
           # QEMU 7.1+ reserves the AMD HyperTransport hole [1012 GiB, 1 TiB) for AMD vCPUs
           # (qemu64 is AuthenticAMD) whose physical address bits reach it
           E820Entry(AMD_HT_START, AMD_HT_END, E820_TYPE_RESERVED)]
    for start, end in ram:
        s = start
        while s < end:
            off = ram_offset(s)
            nid, limit = next((n, b) for n, b in bounds if off < b)
            e = min(end, s + (limit - off))
            out.append(E820Entry(s, e, E820_TYPE_RAM, nid))
            s = e
    return sorted(out, key=lambda x: (x.start, x.type))


def explicit_layout(ranges) -> list[E820Entry]:
    """An e820-style list given by the user: (start, end, nid) RAM ranges, exclusive ends."""
    out = []
    for r in ranges:
        try:
            start, end, nid = (list(r) + [0])[:3]
        except TypeError:
            raise HotplugError(errno.EINVAL, f"e820 range {r!r}: expected (start, end[, nid])")
        if not (0 <= start < end) or start % 4096 or end % 4096 or nid < 0:
            raise HotplugError(errno.EINVAL, f"e820 range [{start:#x}, {end:#x}) node {nid}: "
                               "must be page-aligned, non-empty, non-negative")
        out.append(E820Entry(start, end, E820_TYPE_RAM, nid))
    out.sort(key=lambda x: x.start)
    for a, b in zip(out, out[1:]):
        if b.start < a.end:
            raise HotplugError(errno.EINVAL, f"e820 ranges [{a.start:#x}, {a.end:#x}) and "
                               f"[{b.start:#x}, {b.end:#x}) overlap")
    if out and out[0].start == 0:  # trim_bios_range: page 0 belongs to the BIOS
        first = out[0]
        out[0] = E820Entry(0x1000, first.end, E820_TYPE_RAM, first.nid) if first.end > 0x1000 else None
        out = [e for e in out if e is not None]
        out.insert(0, E820Entry(0, 0x1000, E820_TYPE_RESERVED))
    return out


def qemu_pc_device_memory_base(boot_memory_total: int) -> int:
    """Where QEMU pc places the first hot-pluggable DIMM (hw/i386/pc.c:pc_memory_init, 7.2)."""
    lowmem = QEMU_PC_BELOW_4G_MAX if boot_memory_total >= QEMU_PC_BELOW_4G_SPLIT else boot_memory_total
    above = boot_memory_total - lowmem
    return (4 * GiB + above + GiB - 1) // GiB * GiB
