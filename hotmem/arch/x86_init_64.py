"""x86-64 memory-hotplug hooks (arch/x86/mm/init_64.c, 6.1): arch_add_memory, arch_remove_memory,
vmemmap_populate, vmemmap_free, kernel_physical_mapping_remove.

The page-table work is done by the core's ``PageTables``; this module decides who pays for each
page: direct-map tables come from ``alloc_low_page`` (GFP_ATOMIC | __GFP_ZERO, order 0, the
allocating CPU's node), vmemmap tables from ``vmemmap_alloc_block_zero`` on the target node, memmap
data from the altmap or the buddy -- on the hot-plug paths through the core's allocator
(hotmem.mm.sparse_vmemmap.pgtable_allocator), at boot from memblock callables. Freed table pages
go back through ``free_pagetable``.
"""
from __future__ import annotations

import errno

from hotmem.arch import x86_e820 as e820
from hotmem.arch import x86_setup
from hotmem.arch.ops import GiB, ArchOps
from hotmem.arch.x86_64 import probe_memory_block_size
from hotmem.arch.x86_init import init_memory_mapping as _init_memory_mapping
from hotmem.errors import HotplugError
from hotmem.mm import memory_hotplug as mh
from hotmem.mm.page_alloc import GFP_ATOMIC, free_reserved_page, kernel_free_pages, numa_node_id
from hotmem.mm.sparse_vmemmap import pgtable_allocator
from hotmem.resource import IORESOURCE_BUSY, IORESOURCE_SYSTEM_RAM, Resource
from hotmem.units import iec


# -- boot (arch/x86/kernel/setup.c, e820.c, arch/x86/mm/init.c) -------------------------------

#: Debian 6.1.176's image: Kernel code 0x1000000 .. Kernel bss end 0x43fffff (/proc/iomem)
KERNEL_IMAGE = (0x1000000, 0x4400000)
KERNEL_RESOURCES = [(0x01000000, 0x01E01D31, "Kernel code"), (0x02000000, 0x028E6FFF, "Kernel rodata"),
                    (0x02A00000, 0x02C489BF, "Kernel data"), (0x0330D000, 0x043FFFFF, "Kernel bss")]
#: x86 6.1 always reserves the first 1 MiB (arch/x86/kernel/setup.c)
LOW_RESERVED = 1 << 20


def boot_layout(m):
    """The boot RAM ranges (start, end, nid), memblock reservations (start, size, name), and
    whether the layout is the QEMU pc reference (whose early reservations are calibrated)."""
    if m.e820_ranges is not None:
        layout, qemu = e820.explicit_layout(m.e820_ranges), False
    else:
        layout, qemu = e820.qemu_pc_layout(m.boot_memory), True
    m.arch_ops.e820 = layout
    ram = [(e.start, e.end, e.nid) for e in layout if e.type == e820.E820_TYPE_RAM]
    reserved = [(0, LOW_RESERVED, "low 1M")]
    m.boot_by_cause = (qemu and m.boot_reserved_pages is None
                       and m.boot_late_freed_pages is None)
    image = x86_setup.kernel_build(m).image_reserved if m.boot_by_cause else KERNEL_IMAGE
    if ram and max(e for _, e, _ in ram) > image[1]:
        reserved.append((image[0], image[1] - image[0], "kernel image"))
    if m.boot_by_cause:
        # QEMU loads the initrd right below the top of the RAM under 4 GiB (load_linux)
        top = max(e for _, e, _ in ram if e <= 4 * GiB)
        size = x86_setup.DEFAULT_INITRD_PAGES << m.arch.page_shift
        reserved.append((top - size, size, "initrd"))
    return ram, reserved, qemu


def init_mem_mapping(m) -> bool:
    """The boot PGD (init_top_pgt) and direct map as arch/x86/mm/init.c:init_mem_mapping builds
    them (hotmem/arch/x86_setup.py)."""
    pgd = x86_setup.kernel_build(m).init_top_pgt >> m.arch.page_shift
    m.pgtables = new_page_tables(m, pgd)
    m.owners.note_memblock(pgd, 1, 0, "pgtable PGD")              # init_top_pgt, in the image

    def map_range(start, end, alloc):
        _init_memory_mapping(m.pgtables, start, end, pse=m.has_pse, gbpages=m.direct_gbpages,
                             alloc_table=alloc, node=0)
    x86_setup.init_mem_mapping(m, map_range)
    return True


def early_allocations(m) -> None:
    """hotmem/arch/x86_setup.py:early_allocations."""
    x86_setup.early_allocations(m)


def alternative_instructions(m) -> None:
    """hotmem/arch/x86_setup.py:alternative_instructions."""
    x86_setup.alternative_instructions(m)


def free_initmem(m) -> None:
    """hotmem/arch/x86_setup.py:free_initmem."""
    x86_setup.free_initmem(m)


def memory_block_size_bytes(m) -> int:
    """arch/x86/mm/init_64.c:probe_memory_block_size with the CPU's hypervisor flag."""
    return probe_memory_block_size(m.max_pfn << m.arch.page_shift,
                                   hypervisor="hypervisor" in m.cpu_flags)


def zone_dma_limits(m):
    """arch/x86/mm/init.c:zone_sizes_init: ZONE_DMA below 16 MiB, ZONE_DMA32 below 4 GiB (pfns)."""
    return (16 << 20) >> m.arch.page_shift, (4 << 30) >> m.arch.page_shift


def new_page_tables(m, pgd_pfn: int):
    return m.core.PageTables(m.arch.paging_levels, pgd_pfn)


def boot_map_memory(m, start: int, end: int, alloc_table) -> None:
    """init_mem_mapping for one boot RAM range (without boot's page-size upgrades)."""
    _init_memory_mapping(m.pgtables, start, end, pse=m.has_pse, gbpages=m.direct_gbpages,
                         alloc_table=alloc_table, node=0)


def boot_vmemmap_populate(m, start: int, end: int, nid: int, alloc_block, alloc_table) -> int:
    """sparse_init's vmemmap_populate: PMD blocks from the memblock sparse buffer."""
    return m.pgtables.vmemmap_populate_hugepages(start, end, nid, alloc_block, alloc_table, None)


def boot_resources(m) -> None:
    """/proc/iomem at boot: e820 entries (System RAM busy, Reserved), on the QEMU pc machine its
    fixed devices, and the kernel image under System RAM."""
    rt = m.resources
    for e in m.arch_ops.e820:
        if e.type == e820.E820_TYPE_RAM:
            rt.insert(Resource(e.start, e.end - 1, "System RAM",
                               IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY))
        else:
            rt.insert(Resource(e.start, e.end - 1, "Reserved", IORESOURCE_BUSY))
    if m.e820_ranges is None:
        total = sum(m.boot_memory.values())
        for s, e, name, nest in e820.qemu_pc_devices(total, m.maxmem, m.slots):
            rt.insert(Resource(s, e, name), nest=nest)
    for s, e, name in KERNEL_RESOURCES:
        if any(r.base <= s and e < r.end for r in m.memblock.memory):
            rt.insert(Resource(s, e, name, IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY))


# -- hotplug ----------------------------------------------------------------------------------

def init_memory_mapping(m, start: int, end: int) -> None:
    """arch/x86/mm/init.c:init_memory_mapping (6.1) for a hot-added range; its tables from
    alloc_low_page after boot: one zeroed GFP_ATOMIC page on the running CPU's node."""
    node = numa_node_id(m)
    with pgtable_allocator(m, node, gfp=GFP_ATOMIC, tables="direct map") as a:
        _init_memory_mapping(m.pgtables, start, end, pse=m.has_pse, gbpages=m.direct_gbpages,
                             alloc_table=a.table, node=node)


def free_pagetable(m, pfn: int, order: int) -> None:
    """arch/x86/mm/init_64.c:free_pagetable (6.1): boot (PageReserved) pages are handed back
    with free_reserved_page, hot-plug-time pages with free_pages."""
    if m.ms.page_flags(pfn) >> m.core.PG_reserved & 1:
        for p in range(pfn, pfn + (1 << order)):
            free_reserved_page(m, p)
    else:
        kernel_free_pages(m, pfn, order)


def vmemmap_populate(m, start: int, end: int, node: int, altmap) -> int:
    """arch/x86/mm/init_64.c:vmemmap_populate (6.1). 0 or -ENOMEM."""
    pt = m.pgtables
    if end - start < (1 << m.arch.pmd_shift):
        # < one section's memmap: base pages, the altmap ignored
        with pgtable_allocator(m, node) as a:
            return pt.vmemmap_populate_basepages(start, end, node, a.buddy, a.table)
    if not m.has_pse:
        if altmap is not None:
            m.warn("vmemmap_populate: no cpu support for altmap allocations")
            return -errno.ENOMEM
        with pgtable_allocator(m, node) as a:
            return pt.vmemmap_populate_basepages(start, end, node, a.buddy, a.table)
    with pgtable_allocator(m, node, altmap) as a:
        if altmap is None:
            return pt.vmemmap_populate_hugepages(start, end, node, a.buddy, a.table, a.buddy)
        if m.policy.basepage_fallback_uses_altmap:
            # 6.6+ generic vmemmap_populate_hugepages: a failed altmap block is still -ENOMEM,
            # but a PMD that is already a PTE table gets its base pages from the altmap
            return pt.vmemmap_populate_hugepages(start, end, node, a.altmap, a.table, None,
                                                 a.altmap)
        # 6.1: a failed altmap block is -ENOMEM; a PMD that is already a PTE table still gets
        # its base pages from the buddy (vmemmap_populate_basepages(.., NULL))
        return pt.vmemmap_populate_hugepages(start, end, node, a.altmap, a.table, None, a.buddy)


def vmemmap_free(m, start: int, end: int, altmap) -> None:
    """arch/x86/mm/init_64.c:vmemmap_free → remove_pagetable(direct=false) (6.1).

    A 2 MiB leaf goes back through free_hugepage_table (vmem_altmap_free with an altmap, else
    free_pagetable order 9); PTE-mapped pages always through free_pagetable."""
    def free_data(pfn, nr_pages):
        if nr_pages > 1 and altmap is not None:
            m.core.vmem_altmap_free(altmap, nr_pages)
            m.owners.drop_altmap(pfn, nr_pages)
        elif pfn in m.owners.altmap:
            # no altmap passed for memory an altmap handed out (the NULL-altmap error path of
            # v2/5.13/6.1.0): the kernel would free pages of the removed range into the buddy
            m.warn(f"vmemmap_free: free_pagetable of altmap-backed pfn {pfn:#x} "
                   f"({nr_pages} pages) without the altmap; the model does not free them")
            m.owners.drop_altmap(pfn, nr_pages)
        else:
            free_pagetable(m, pfn, (nr_pages - 1).bit_length())

    m.pgtables.remove_pagetable(start, end, False, free_data,
                                lambda pfn, level: free_pagetable(m, pfn, 0),
                                m.arch.paging_levels == 5)


def kernel_physical_mapping_remove(m, start: int, end: int) -> None:
    """arch/x86/mm/init_64.c:kernel_physical_mapping_remove (6.1)."""
    a = m.arch
    m.pgtables.remove_pagetable(a.phys_to_virt(start), a.phys_to_virt(end), True, None,
                                lambda pfn, level: free_pagetable(m, pfn, 0),
                                a.paging_levels == 5)


def arch_add_memory(m, nid: int, start: int, size: int, altmap) -> int:
    """arch/x86/mm/init_64.c:arch_add_memory → init_memory_mapping + add_pages (6.1.y)."""
    init_memory_mapping(m, start, start + size)
    start_pfn, nr_pages = start >> m.arch.page_shift, size >> m.arch.page_shift
    # add_pages: refuse ranges ending above PHYSMEM_END (6.1.y)
    if start + size - 1 > m.arch.physmem_end:
        return -errno.ERANGE
    rc = mh.__add_pages(m, nid, start_pfn, nr_pages, altmap)
    if rc:
        m.warn(f"add_pages: __add_pages failed ({rc})")
    # update_end_of_memory_vars runs whether or not __add_pages worked; max_pfn only grows
    m.max_pfn = max(m.max_pfn, start_pfn + nr_pages)
    return rc


def arch_remove_memory(m, start: int, size: int, altmap) -> None:
    """arch/x86/mm/init_64.c:arch_remove_memory (6.1): __remove_pages, then the direct map."""
    mh.__remove_pages(m, start >> m.arch.page_shift, size >> m.arch.page_shift, altmap)
    kernel_physical_mapping_remove(m, start, start + size)


def arch_report_meminfo(m) -> dict:
    """arch/x86/mm/pat/set_memory.c:arch_report_meminfo (6.1): DirectMap4k/2M, and DirectMap1G
    with gbpages, in kB."""
    pt = m.pgtables
    return {"DirectMap4k": pt.direct_pages_count("4K") * 4,
            "DirectMap2M": pt.direct_pages_count("2M") * 2048,
            "DirectMap1G": pt.direct_pages_count("1G") * (1 << 20) if m.direct_gbpages else None}


def device_memory_base(m) -> int:
    """hw/i386/pc.c:pc_memory_init (QEMU 7.2): the device-memory region of QEMU pc."""
    return e820.qemu_pc_device_memory_base(sum(m.boot_memory.values()))


def first_hotplug_address(m) -> int:
    """Where hotmem's plans put the first DIMM on x86_64: the end of boot RAM (at least 4 GiB)
    rounded up to 1 GiB and to the memory block size."""
    align = max(GiB, m.memory_block_size_bytes)
    end = max(4 * GiB, m.max_pfn << m.arch.page_shift)
    return -(-end // align) * align


class X86_64Ops(ArchOps, hooks_from=globals()):
    """x86-64 on QEMU pc: hotplug hooks of arch/x86/mm/init_64.c, boot from the e820 table."""

    name = "x86_64"
    board = "QEMU pc"
    hotplug_method = "acpi-dimm"
    #: QEMU's limit on -m slots=: ACPI_MAX_RAM_SLOTS, 256 (QEMU 7.2)
    max_ram_slots = 256

    def __init__(self, profile):
        super().__init__(profile)
        #: the boot memory map (arch/x86/kernel/e820.c: e820_table), set by boot_layout
        self.e820 = None


    @staticmethod
    def boot_memory_for_block_size(block_size: int, boot_total: int) -> int:
        """The smallest QEMU pc boot RAM, from ``boot_total`` up in 128 MiB steps, for which
        probe_memory_block_size (arch/x86/mm/init_64.c, 6.1, X86_FEATURE_HYPERVISOR set) picks
        ``block_size``."""
        size = boot_total
        for _ in range(8192):
            end = max(r.end for r in e820.qemu_pc_layout({0: size}) if r.type == e820.E820_TYPE_RAM)
            if probe_memory_block_size(end, hypervisor=True) == block_size:
                return size
            size += 128 << 20
        raise HotplugError(errno.EINVAL, f"memory block size {block_size:#x}: no QEMU pc boot "
                           f"size from {iec(boot_total)} up probes it on x86_64")

    @staticmethod
    def arch_support_memmap_on_memory() -> bool:
        """The RFC v2's arch/x86/mm/init_64.c:arch_support_memmap_on_memory (§15.1): true."""
        return True
