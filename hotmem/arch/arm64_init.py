"""arm64 memory-hotplug hooks and boot (arch/arm64/mm/mmu.c, arch/arm64/mm/init.c; Linux 6.1) on a
QEMU ``virt`` machine: RAM from 1 GiB, DIMMs in the device-memory region after it.

The page-table walks are the core's ``arm64_*`` methods (hotmem/arch/arm64_mmu.py builds their
geometry and flags); this module decides who pays: linear-map tables come from
``__pgd_pgtable_alloc`` (a zeroed GFP_KERNEL page on the running CPU's node), vmemmap tables from
``vmemmap_alloc_block_zero``, memmap data from the altmap or the buddy -- through the core's
allocator (hotmem.mm.sparse_vmemmap.pgtable_allocator) after boot, from memblock callables at
boot; freed pages go back through ``free_hotplug_page_range``. What the model does not know of an
arm64 boot (the kernel image, firmware reservations) is zero unless ``boot_reserved_pages=`` says
otherwise.
"""
from __future__ import annotations

import errno

from hotmem.arch import arm64_mmu
from hotmem.arch.arm64 import (QEMU_VIRT_RAM_BASE, VMALLOC_TOTAL, arch_get_mappable_range,
                               arch_support_memmap_on_memory,
                               memory_block_size_bytes as _block_size)
from hotmem.arch.base import board_ram_layout
from hotmem.arch.geometry import geometry_from_profile
from hotmem.arch.ops import ArchOps
from hotmem.mm import memory_hotplug as mh
from hotmem.mm.page_alloc import kernel_free_pages, numa_node_id
from hotmem.mm.sparse_vmemmap import pgtable_allocator
from hotmem.resource import IORESOURCE_BUSY, IORESOURCE_SYSTEM_RAM, Resource

GiB = 1 << 30


# -- boot ---------------------------------------------------------------------------------------

def boot_layout(m):
    """QEMU virt: the boot RAM of each node back to back from the DRAM base (1 GiB); nothing
    reserved that the model could know of."""
    return board_ram_layout(m, QEMU_VIRT_RAM_BASE)


def device_memory_base(m) -> int:
    """hw/arm/virt.c (QEMU 7.2): hot-pluggable memory starts at the end of RAM rounded up to 1 GiB."""
    end = max(e for _, e, _ in boot_layout(m)[0])
    return (end + GiB - 1) // GiB * GiB


def memory_block_size_bytes(m) -> int:
    """arm64 does not override memory_block_size_bytes(): one section."""
    return _block_size(m.arch)


def zone_dma_limits(m):
    """arch/arm64/mm/init.c:zone_sizes_init (6.1) with no DT/ACPI DMA limit (zone_dma_bits 32):
    max_zone_phys(32) for both ZONE_DMA and ZONE_DMA32 — the end of DRAM when it ends below
    4 GiB, else 4 GiB (DRAM starting above 4 GiB: no limit)."""
    ram = boot_layout(m)[0]
    start, end = min(s for s, _, _ in ram), max(e for _, e, _ in ram)
    zone_mask = (1 << 32) - 1
    if start > (1 << 32) - 1:
        zone_mask = (1 << 64) - 1
    limit = min(zone_mask, end - 1) + 1
    return limit >> m.arch.page_shift, limit >> m.arch.page_shift


def new_page_tables(m, pgd_pfn: int):
    geo = geometry_from_profile(m.arch)
    return m.core.PageTables(len(geo.levels), pgd_pfn, geo)


def _can_set_direct_map(m) -> bool:
    return arm64_mmu.can_set_direct_map(rodata=m.cmdline_params.get("rodata"))


def boot_map_memory(m, start: int, end: int, alloc_table) -> None:
    """arch/arm64/mm/mmu.c:map_mem (6.1): the linear map, page by page when can_set_direct_map()."""
    flags = arm64_mmu.arch_add_memory_flags(_can_set_direct_map(m))
    m.pgtables.arm64_create_pgd_mapping(start, m.arch.phys_to_virt(start), end - start, flags,
                                        alloc_table, 0)


def boot_vmemmap_populate(m, start: int, end: int, nid: int, alloc_block, alloc_table) -> int:
    """sparse_init's vmemmap_populate (6.1) with memblock as the allocator."""
    return m.pgtables.arm64_vmemmap_populate(start, end, nid, alloc_block, alloc_table,
                                             m.arch.memmap_size(1 << m.arch.section_size_bits))


def boot_resources(m) -> None:
    """/proc/iomem at boot: the RAM ranges as System RAM (QEMU virt's devices are not modelled)."""
    for s, e, _ in boot_layout(m)[0]:
        m.resources.insert(Resource(s, e - 1, "System RAM", IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY))


# -- hotplug ------------------------------------------------------------------------------------

def mhp_range_allowed(m, start: int, size: int) -> bool:
    """arch/arm64/mm/mmu.c:arch_get_mappable_range (6.1): the range the linear map can cover."""
    lo, hi = arch_get_mappable_range(m.arch)
    return lo <= start and start + size - 1 <= hi


def memory_notifier(m, event: str, start_pfn: int, nr_pages: int) -> int:
    """arch/arm64/mm/mmu.c:prevent_bootmem_remove_notifier (6.1): MEM_GOING_OFFLINE of a range
    holding an early (boot) section is refused with NOTIFY_BAD, which notifier_to_errno turns
    into -EPERM: boot memory is never offlined, hence never removed."""
    if event != "MEM_GOING_OFFLINE":
        return 0
    ms, a = m.ms, m.arch
    P = ms.pages_per_section
    for pfn in range(start_pfn, start_pfn + nr_pages, P):
        if ms.section_mem_map(pfn // P) & m.core.SECTION_IS_EARLY:
            start = (pfn << a.page_shift)
            m.log(f"Boot memory [{start:x} {start + (P << a.page_shift):x}] offlining attempted")
            return -errno.EPERM
    return 0


def free_hotplug_page_range(m, pfn: int, nr_pages: int, altmap) -> None:
    """arch/arm64/mm/mmu.c:free_hotplug_page_range (6.1): the altmap gets its pages back by
    count; otherwise free_pages (a boot, PageReserved page WARNs and is kept: its free would be
    a bad-page report)."""
    if altmap is not None:
        m.core.vmem_altmap_free(altmap, nr_pages)
        m.owners.drop_altmap(pfn, nr_pages)
        return
    if m.ms.page_flags(pfn) >> m.core.PG_reserved & 1:
        m.warn(f"free_hotplug_page_range: pfn {pfn:#x} is PageReserved (a boot page)")
        return
    kernel_free_pages(m, pfn, (nr_pages - 1).bit_length())


def vmemmap_populate(m, start: int, end: int, node: int, altmap) -> int:
    """arch/arm64/mm/mmu.c:vmemmap_populate (6.1). 0 or -ENOMEM."""
    with pgtable_allocator(m, node, altmap) as a:
        return m.pgtables.arm64_vmemmap_populate(
            start, end, node, a.buddy if altmap is None else a.altmap, a.table,
            m.arch.memmap_size(1 << m.arch.section_size_bits))


def vmemmap_free(m, start: int, end: int, altmap) -> None:
    """arch/arm64/mm/mmu.c:vmemmap_free (6.1): unmap_hotplug_range(free_mapped, altmap), then
    free_empty_tables within the vmemmap."""
    m.pgtables.arm64_vmemmap_free(start, end,
                                  lambda pfn, nr: free_hotplug_page_range(m, pfn, nr, altmap),
                                  lambda pfn, level: free_hotplug_page_range(m, pfn, 1, None))


def arch_add_memory(m, nid: int, start: int, size: int, altmap) -> int:
    """arch/arm64/mm/mmu.c:arch_add_memory (6.1): the linear map (pages only when
    can_set_direct_map()), __add_pages, and on failure the linear map removed again; max_pfn is
    set to the end of this range (even if lower than before, as 6.1 does)."""
    a = m.arch
    node = numa_node_id(m)
    # __pgd_pgtable_alloc: a zeroed GFP_KERNEL page on the running CPU's node; 6.1 BUGs on NULL
    with pgtable_allocator(m, node, tables="direct map") as pa:
        arm64_mmu.create_linear_mapping(m.pgtables, a, start, size, pa.table, node,
                                        can_set_direct_map_=_can_set_direct_map(m))
    rc = mh.__add_pages(m, nid, start >> a.page_shift, size >> a.page_shift, altmap)
    if rc:
        arm64_mmu.remove_linear_mapping(m.pgtables, a, start, size,
                                        lambda pfn, level: free_hotplug_page_range(m, pfn, 1, None))
        return rc
    m.max_pfn = (start + size + a.PAGE_SIZE - 1) >> a.page_shift
    return 0


def arch_remove_memory(m, start: int, size: int, altmap) -> None:
    """arch/arm64/mm/mmu.c:arch_remove_memory (6.1): __remove_pages, then __remove_pgd_mapping."""
    a = m.arch
    mh.__remove_pages(m, start >> a.page_shift, size >> a.page_shift, altmap)
    arm64_mmu.remove_linear_mapping(m.pgtables, a, start, size,
                                    lambda pfn, level: free_hotplug_page_range(m, pfn, 1, None))


def meminfo_extra(m) -> dict:
    """/proc/meminfo: VmallocTotal from the arm64 layout (VMALLOC_END - VMALLOC_START),
    Hugepagesize = HPAGE_SIZE = PMD_SIZE, in kB."""
    return {"VmallocTotal": VMALLOC_TOTAL(m.arch) >> 10,
            "Hugepagesize": (1 << m.arch.pmd_shift) >> 10}


class Arm64Ops(ArchOps, hooks_from=globals()):
    """arm64 on QEMU virt: hotplug hooks of arch/arm64/mm/mmu.c (no arch state of its own)."""

    name = "arm64"
    board = "QEMU virt"
    hotplug_method = "acpi-dimm"
    #: QEMU's limit on -m slots=: ACPI_MAX_RAM_SLOTS, 256 (QEMU 7.2)
    max_ram_slots = 256
    arch_support_memmap_on_memory = staticmethod(arch_support_memmap_on_memory)

