"""The hotplug lifecycle on arm64 (Linux 6.1, QEMU virt: RAM from 1 GiB, DIMMs after it).

Expected numbers are hand computations from the arm64 geometry written out here.
"""
import errno

import pytest

import hotmem
from hotmem.arch.arm64_init import device_memory_base

MiB = 1 << 20


@pytest.fixture(params=["compiled", "python"])
def backend(request):
    return request.param


def cycle(m, online_type="online_movable"):
    base = device_memory_base(m)
    d = m.acpi_memory_hotplug(base, "128M", node=0)
    return base, base // m.block_size_bytes, d


def test_arm64_4k_memmap_on_memory(backend):
    m = hotmem.Machine(arch="arm64", page_size="4K", boot_memory="1G",
                       cmdline="memory_hotplug.memmap_on_memory=1", backend=backend)
    assert m.block_size_bytes == 128 * MiB                  # one section (no arch override)
    assert m.mhp_supports_memmap_on_memory("128M")          # 32768 x 64 B = 2 MiB = one PMD
    base, blk, d = cycle(m)
    assert base == 2 << 30                                  # 1 GiB of RAM at 1 GiB, rounded to 1 GiB
    assert m.memory_blocks[blk].nr_vmemmap_pages == 512
    acc = m.accounting()
    assert acc["memmap"] == {"altmap": {0: 512}, "buddy": {}}
    # Debian's can_set_direct_map() is true: the linear map of 128 MiB is 4 KiB pages,
    # 32768 PTEs = 64 PTE tables of 512, plus a PMD table for the new GiB
    assert acc["page tables"]["direct map"] == {"PTE": 64, "PMD": 1}
    assert acc["page tables"]["vmemmap"] == {}
    m.sysfs.write(f"/sys/devices/system/memory/memory{blk}/state", "online_movable")
    z = m.zone(0, "Movable")
    pfn = base >> 12
    assert (z.zone_start_pfn, z.spanned_pages, z.present_pages, z.managed_pages) == \
        (pfn, 32768, 32768, 32768 - 512)
    flags = m.procfs.kpageflags(pfn, 1024)
    assert (flags[:512] == 0x2100000000).all() and (flags[512:] == 0x400).all()
    assert "DirectMap" not in m.procfs.read("/proc/meminfo")      # no arch_report_meminfo
    m.sysfs.write(f"/sys/devices/system/memory/memory{blk}/state", "offline")
    m.acpi_memory_eject(d)
    acc = m.accounting()
    # arm64 frees the empty PTE and PMD tables (free_empty_tables); nothing is left
    assert acc["page tables"] == {"direct map": {}, "vmemmap": {}} and not m.warnings


def test_arm64_16k_gets_a_regular_memmap(backend):
    m = hotmem.Machine(arch="arm64", page_size="16K", boot_memory="1G",
                       cmdline="memory_hotplug.memmap_on_memory=1", backend=backend)
    # 128 MiB / 16 KiB = 8192 pages x 64 B = 512 KiB: not a multiple of the 32 MiB PMD
    assert not m.mhp_supports_memmap_on_memory("128M")
    base, blk, d = cycle(m)
    assert m.memory_blocks[blk].nr_vmemmap_pages == 0
    acc = m.accounting()
    # 512 KiB of memmap = 32 base pages of 16 KiB from the buddy (16K: no PMD mappings); a 16K
    # PTE table maps 2048 x 16 KiB = 32 MiB, so the 128 MiB linear map needs 4 of them
    assert acc["memmap"] == {"altmap": {}, "buddy": {0: 32}}
    assert acc["page tables"]["direct map"] == {"PTE": 4}
    m.sysfs.write(f"/sys/devices/system/memory/memory{blk}/state", "online_movable")
    assert m.zone(0, "Movable").managed_pages == 8192
    m.sysfs.write(f"/sys/devices/system/memory/memory{blk}/state", "offline")
    m.acpi_memory_eject(d)
    assert m.accounting()["memmap"]["buddy"] == {}


def test_unmodelled_machines_say_so():
    with pytest.raises(hotmem.HotplugError) as e:
        hotmem.Machine(arch="riscv64")
    assert e.value.errno == errno.EINVAL and "riscv64" in str(e.value)
    with pytest.raises(hotmem.HotplugError) as e:
        hotmem.Machine(arch="x86_64", page_size="16K")
    assert e.value.errno == errno.EINVAL
