"""powerpc64 (book3s, 64K pages, radix or hash MMU) memory-hotplug hooks and boot on a QEMU
``pseries`` machine: RAM from physical 0, DIMMs (LMBs) in the device-memory region after it.

Read in Linux 6.1.166 and 6.6.57: arch/powerpc/mm/mem.c (paging_init, arch_add_memory,
arch_create/remove_linear_mapping, add_pages/update_end_of_memory_vars, arch_remove_memory),
arch/powerpc/mm/init_64.c (vmemmap_populated, vmemmap_list_*, vmemmap_populate 6.1 /
__vmemmap_populate 6.6, vmemmap_free), arch/powerpc/mm/book3s64/radix_pgtable.c (see
hotmem/arch/powerpc64_mmu.py), arch/powerpc/mm/book3s64/hash_utils.c (htab_init_page_sizes:
mmu_vmemmap_psize; hash__create_section_mapping / hash__vmemmap_create_mapping bolt HPTEs),
arch/powerpc/platforms/pseries/hotplug-memory.c (dlpar_add_lmb, dlpar_remove_lmb).
QEMU hw/ppc/spapr.c (spapr_machine_init): device memory starts at
ROUND_UP(ram_size, SPAPR_DEVICE_MEM_ALIGN = 1 GiB) (include/hw/ppc/spapr.h).

Zones: book3s64 has no ZONE_DMA (arch/powerpc/platforms/Kconfig.cputype selects ZONE_DMA only
for PPC_BOOK3E_64; mm/Kconfig defaults it for ARM64 || X86), so paging_init gives every page
to ZONE_NORMAL (max_zone_pfns[ZONE_NORMAL] = max_low_pfn = max_pfn). The model keeps its fixed
zone indices (DMA, DMA32, Normal, Movable) with DMA and DMA32 always empty, so the profile the
Machine runs with has a 2-bit page->flags zone field (:func:`machine_profile`) where Debian's
build has 1 bit; /proc/zoneinfo leaves them out (ZONE_TYPES), as the real kernel has no
such zones.

What the model leaves out: the kernel image and firmware reservations at boot (zero unless
``boot_reserved_pages=``), the STRICT_KERNEL_RWX split of the boot linear map around the kernel
text (next_boundary), KFENCE / debug_pagealloc (page-sized linear maps), the hash page table
itself (owned by the hypervisor on pseries). Linux 6.8.0 was checked to be 6.6's here: radix__vmemmap_populate,
remove_pagetable and its remove_p?d_table, create_physical_mapping, init_64.c's
vmemmap_populated / __vmemmap_populate / __vmemmap_free, mem.c:arch_add_memory and
dlpar_add_lmb's MHP_MEMMAP_ON_MEMORY are unchanged (6.8 differs in the generic per-block
altmaps, hotmem/kernel.py).
"""
from __future__ import annotations

import dataclasses
import errno
import importlib

from hotmem.arch.base import board_ram_layout
from hotmem.arch.geometry import geometry_from_profile
from hotmem.arch import powerpc64_setup as ppc_setup
from hotmem.arch.ops import ArchOps
from hotmem.arch.powerpc64_mmu import HashPageTables, RadixPageTables
from hotmem.cmdline import memparse
from hotmem.errors import HotplugError
from hotmem.mm import memory_hotplug as mh
from hotmem.mm.memblock import memblock_alloc_page
from hotmem.mm.page_alloc import (GFP_KERNEL, free_reserved_page, kernel_alloc_pages,
                                  kernel_free_pages, numa_node_id)
from hotmem.mm.sparse_vmemmap import vmemmap_alloc_block, vmemmap_alloc_block_buf
from hotmem.resource import IORESOURCE_BUSY, IORESOURCE_MEM, IORESOURCE_SYSTEM_RAM, Resource

# the module, not the profile factory hotmem.arch re-exports under the same name
ppc = importlib.import_module("hotmem.arch.powerpc64")

GiB = 1 << 30
SPAPR_DEVICE_MEM_ALIGN = 1 << 30           # QEMU include/hw/ppc/spapr.h
HASH_VMEMMAP_16M_MIN_RAM = 0x40000000      # hash_utils.c: 16M vmemmap pages from 1 GiB of RAM


#: enum zone_type of Debian's 6.1 ppc64el build (MAX_NR_ZONES 2): what /proc/zoneinfo lists
ZONE_TYPES = ("Normal", "Movable")
#: Debian's ppc64el builds with CONFIG_ZONE_DEVICE=y (config-6.12.107+deb13-powerpc64le[-64k]:
#: "CONFIG_ZONE_DEVICE=y"; config-6.1.0-57-powerpc64le: "is not set"): there enum zone_type
#: has ZONE_DEVICE too (MAX_NR_ZONES 3), an empty zone /proc/zoneinfo lists, and every
#: zone's protection array has its third entry
ZONE_DEVICE_VERSIONS = ("6.12",)


def machine_profile(mmu: str, page_size: str, kernel: str | None = None):
    """The powerpc64 profile with room for the model's four zone indices in page->flags (see
    the module docstring), five where the build has ZONE_DEVICE (ZONE_DEVICE_VERSIONS);
    everything else is hotmem.arch.powerpc64's."""
    profile = ppc.powerpc64(mmu or "radix", page_size or "64K")
    flags = dataclasses.replace(profile.page_flags,
                                max_nr_zones=5 if kernel in ZONE_DEVICE_VERSIONS else 4)
    return dataclasses.replace(profile, page_flags=flags)


def _radix_vmemmap_populate_path(m) -> bool:
    """The 6.6+ radix vmemmap code (radix__vmemmap_populate / radix__vmemmap_free), from the
    kernel policy's powerpc64 overlay."""
    return _radix(m) and m.policy.arch("powerpc64").radix_vmemmap_populate


def _radix(m) -> bool:
    return m.arch.mmu == "radix"


# -- boot ---------------------------------------------------------------------------------------

def boot_layout(m):
    """QEMU pseries: the boot RAM of each node back to back from physical 0; with QEMU's own
    layout of at least 1 GiB and no reservation figures given, early_init_devtree's
    reservations by cause (hotmem/arch/powerpc64_setup.py)."""
    ram, reserved, calibrated = board_ram_layout(m, 0)
    m.boot_by_cause = (m.e820_ranges is None and m.boot_reserved_pages is None
                       and m.boot_late_freed_pages is None
                       and sum(e - s for s, e, _ in ram) >= GiB)
    if m.boot_by_cause:
        reserved = reserved + ppc_setup.boot_reservations(m)
    return ram, reserved, calibrated


def early_allocations(m) -> None:
    """hotmem/arch/powerpc64_setup.py:early_allocations."""
    ppc_setup.early_allocations(m)


def free_initmem(m) -> None:
    """hotmem/arch/powerpc64_setup.py:free_initmem."""
    ppc_setup.free_initmem(m)


def device_memory_base(m) -> int:
    """hw/ppc/spapr.c: hot-pluggable memory from ROUND_UP(ram_size, 1 GiB)."""
    end = max(e for _, e, _ in boot_layout(m)[0])
    return (end + SPAPR_DEVICE_MEM_ALIGN - 1) // SPAPR_DEVICE_MEM_ALIGN * SPAPR_DEVICE_MEM_ALIGN


def memory_block_size_bytes(m) -> int:
    """ppc_md.memory_block_size() on pseries: ibm,lmb-size (QEMU: 256 MiB)."""
    return ppc.memory_block_size_bytes(m.arch, m.policy.name, platform="pseries",
                                       lmb_size=ppc.DEFAULT_LMB_SIZE)


def zone_dma_limits(m):
    """arch/powerpc/mm/mem.c:paging_init (6.1): no ZONE_DMA / ZONE_DMA32 on book3s64."""
    return 0, 0


class _TableEnv:
    """Who pays for radix tables: memblock at boot, the buddy after (fragment pages on the
    running CPU's node), slab for PUD tables."""

    def __init__(self, m):
        self.m = m
        self.kind = "direct map"          # which map the next table is for (ledger name)

    def early(self, level, nid):
        m = self.m
        what = f"pgtable {level}" if self.kind == "direct map" else \
            f"vmemmap {level} table (boot)"
        # early_alloc_pgtable(size, nid, region_start, region_end): the boot linear map's
        # tables come with nid -1 (NUMA_NO_NODE), top-down over the memblock range being
        # mapped -- before initmem_init the nodes' ranges are still one merged region, so on
        # two nodes they land at the top of node 1 (radix_pgtable.c, 6.1 = 6.12)
        return memblock_alloc_page(m, nid if nid in m.pgdats else None, what)

    def page(self, level):
        m = self.m
        pfn, _ = kernel_alloc_pages(m, numa_node_id(m), GFP_KERNEL, 0,
                                    f"{self.kind} {level} table")
        return pfn

    def free_page(self, pfn):
        kernel_free_pages(self.m, pfn, 0)

    def free_reserved_page(self, pfn):
        m = self.m
        m.owners.memblock.pop(pfn, None)
        free_reserved_page(m, pfn)

    def slab(self, level, delta):
        if delta > 0:
            self.m.slab.kmalloc(f"pgtable {level}", 4096)
        else:
            self.m.slab.kfree(f"pgtable {level}", 4096)

    def warn(self, msg):
        self.m.warn(msg)


def new_page_tables(m, pgd_pfn: int):
    if not _radix(m):
        return HashPageTables(pgd_pfn, m.arch.PAGE_SIZE)
    m.arch_ops.table_env = _TableEnv(m)
    return RadixPageTables(geometry_from_profile(m.arch), pgd_pfn, m.arch_ops.table_env)


def _max_mapping_size(m) -> int:
    """radix_mem_block_size (6.1: ibm,lmb-size on pseries) / memory_block_size (6.6)."""
    return m.memory_block_size_bytes


def boot_map_memory(m, start: int, end: int, alloc_table) -> None:
    """radix_init_pgtable (6.1 = 6.6): create_physical_mapping of each memblock range with
    early_alloc_pgtable pages; hash: bolted HPTEs (htab_initialize), no Linux tables."""
    if not _radix(m):
        m.pgtables.bolted.add((m.arch.phys_to_virt(start), end - start))
        return
    m.arch_ops.table_env.kind = "direct map"
    rc = m.pgtables.create_physical_mapping(start, end, -1, _max_mapping_size(m), True,
                                            early=True)
    if rc:
        raise HotplugError(-rc, "boot linear map failed")


def _vmemmap_psize(m) -> int:
    """mmu_vmemmap_psize: 2M on radix (radix__early_init_mmu); on hash 16M when the MMU has it
    and memblock_phys_mem_size() >= 1 GiB, else PAGE_SIZE (htab_init_page_sizes)."""
    if _radix(m):
        return 1 << m.arch.pmd_shift
    ram = sum(e - s for s, e, _ in boot_layout(m)[0])
    return 16 << 20 if ram >= HASH_VMEMMAP_16M_MIN_RAM else m.arch.PAGE_SIZE


def boot_vmemmap_populate(m, start: int, end: int, nid: int, alloc_block, alloc_table) -> int:
    """sparse_init's vmemmap_populate before slab: 6.1 (both MMUs) and 6.6 hash the init_64.c
    path with blocks from the sparse buffer (``alloc_block``) and a memblock vmemmap_list page;
    6.6 radix radix__vmemmap_populate with early_alloc_pgtable tables and PMD blocks."""
    block = lambda nr, node, am=None: alloc_block(nr, node)
    if _radix_vmemmap_populate_path(m):
        return _radix_vmemmap_populate(m, start, end, nid, None, block, early=True)
    lp = lambda: memblock_alloc_page(m, nid, "vmemmap_list")
    return _vmemmap_populate_list(m, start, end, nid, None, block, lp, early=True)


#: QEMU's pseries PHB 0 (hw/ppc/spapr.c:spapr_phb_placement, QEMU 7.2): BUID
#: 0x800000020000000, its 32-bit MMIO window at SPAPR_PCI_BASE (1 << 45) + 1 x
#: SPAPR_PCI_MEM32_WIN_SIZE (2 GiB), its 64-bit window at SPAPR_PCI_BASE + 1 x
#: SPAPR_PCI_MEM64_WIN_SIZE (1 TiB) (include/hw/pci-host/spapr.h)
SPAPR_PCI_BASE = 1 << 45
SPAPR_PCI_MEM32_WIN_SIZE = 2 << 30
SPAPR_PCI_MEM64_WIN_SIZE = 1 << 40
SPAPR_PHB0_NAME = "pci@800000020000000"


def boot_resources(m) -> None:
    """/proc/iomem at boot: the RAM ranges as System RAM, and the MMIO windows of QEMU's PHB,
    which the kernel claims under its device-tree name (arch/powerpc/kernel/pci-common.c:
    pci_process_bridge_OF_ranges names them after the node; pcibios_allocate_bus_resources
    request_resource()s a root bus's windows in iomem_resource; 6.1 = 6.12)."""
    for s, e, _ in boot_layout(m)[0]:
        m.resources.insert(Resource(s, e - 1, "System RAM",
                                    IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY))
    for start, size in ((SPAPR_PCI_BASE + SPAPR_PCI_MEM32_WIN_SIZE, SPAPR_PCI_MEM32_WIN_SIZE),
                        (SPAPR_PCI_BASE + SPAPR_PCI_MEM64_WIN_SIZE, SPAPR_PCI_MEM64_WIN_SIZE)):
        m.resources.insert(Resource(start, start + size - 1, SPAPR_PHB0_NAME, IORESOURCE_MEM))


# -- vmemmap ------------------------------------------------------------------------------------

def kernel_pfn_valid(m, pfn: int) -> bool:
    """include/linux/mmzone.h:pfn_valid (6.1, SPARSEMEM): a valid section (SECTION_HAS_MEM_MAP)
    and, unless early, the pfn's subsection set."""
    a, ms, core = m.arch, m.ms, m.core
    nr = pfn >> a.PFN_SECTION_SHIFT
    if pfn < 0 or nr >= a.NR_MEM_SECTIONS:
        return False
    flags = ms.section_mem_map(nr)
    if not flags & core.SECTION_HAS_MEM_MAP:
        return False
    if flags & core.SECTION_IS_EARLY:
        return True
    idx = (pfn & (a.PAGES_PER_SECTION - 1)) >> a.PFN_SUBSECTION_SHIFT
    return bool(ms.subsection_map(nr) >> idx & 1)


def vmemmap_populated(m, vmemmap_addr: int, size: int) -> bool:
    """arch/powerpc/mm/init_64.c:vmemmap_populated (6.1 = 6.6): any subsection whose struct
    pages lie in [vmemmap_addr, +size) valid."""
    a = m.arch
    sp = a.struct_page_size
    pfn = ((vmemmap_addr - a.vmemmap_start) // sp) & ~(a.PAGES_PER_SUBSECTION - 1)
    end = vmemmap_addr + size
    # one valid check per subsection; whole sections without a memmap are skipped at once
    while a.vmemmap_start + pfn * sp < end:
        nr = pfn >> a.PFN_SECTION_SHIFT
        if nr < a.NR_MEM_SECTIONS and not m.ms.section_mem_map(nr) & m.core.SECTION_HAS_MEM_MAP:
            pfn = (nr + 1) << a.PFN_SECTION_SHIFT
            continue
        if kernel_pfn_valid(m, pfn):
            return True
        pfn += a.PAGES_PER_SUBSECTION
    return False


def altmap_cross_boundary(m, altmap, start: int, page_size: int) -> bool:
    """init_64.c:altmap_cross_boundary (6.1 = 6.6)."""
    a = m.arch
    nr_pfn = page_size // a.struct_page_size
    start_pfn = (start - a.vmemmap_start) // a.struct_page_size
    return start_pfn + nr_pfn - 1 > altmap.end_pfn or start_pfn < altmap.base_pfn


def _vmemmap_populate_list(m, start, end, node, altmap, alloc_block, alloc_list_page,
                           early=False) -> int:
    """arch/powerpc/mm/init_64.c:vmemmap_populate (6.1) / __vmemmap_populate (6.6, hash):
    mmu_vmemmap_psize blocks, skipped where vmemmap_populated(), from the altmap unless it
    would cross it, else memory; recorded in vmemmap_list; mapped by
    radix__vmemmap_create_mapping (a PMD leaf) or bolted (hash)."""
    a = m.arch
    page_size = _vmemmap_psize(m)
    nr = page_size >> a.page_shift
    start -= start % page_size
    while start < end:
        if vmemmap_populated(m, start, page_size):
            start += page_size
            continue
        p, from_altmap = -1, False
        if altmap is not None and not altmap_cross_boundary(m, altmap, start, page_size):
            p = alloc_block(nr, node, altmap)
            from_altmap = p >= 0
        if p < 0:
            p = alloc_block(nr, node, None)
        if p < 0:
            return -errno.ENOMEM
        if m.pgtables.vmemmap_list.populate(p, start, alloc_list_page):
            m.warn("vmemmap_list_alloc: no page for vmemmap_backing")
            if from_altmap:
                m.core.vmem_altmap_free(altmap, nr)
                m.owners.drop_altmap(p, nr)
            else:
                kernel_free_pages(m, p, (nr - 1).bit_length())
            return -errno.ENOMEM
        if _radix(m):
            m.arch_ops.table_env.kind = "vmemmap"
            rc = m.pgtables.map_kernel_page(start, p << a.page_shift, page_size.bit_length() - 1,
                                            node, early)
            if rc:
                raise HotplugError(errno.ENOMEM, "radix__vmemmap_create_mapping: no page "
                                   "table (the kernel BUGs)")
        else:
            m.pgtables.bolted.add((start, page_size))
        start += page_size
    return 0


def _radix_vmemmap_populate(m, start, end, node, altmap, alloc_block, early=False) -> int:
    """arch/powerpc/mm/book3s64/radix_pgtable.c:radix__vmemmap_populate (6.6): a PMD block
    where the PMD entry is empty, aligned and (with an altmap) inside it; else base pages
    (radix__vmemmap_pte_populate: from the altmap unless crossing it, else memory)."""
    a = m.arch
    pt = m.pgtables
    m.arch_ops.table_env.kind = "vmemmap"
    pmd_size = 1 << a.pmd_shift
    nr_pmd = pmd_size >> a.page_shift
    addr = start
    while addr < end:
        nxt = min((addr + pmd_size) & ~(pmd_size - 1), end)
        pmd_table = pt.ensure_table(addr, 2, node, early)
        if pmd_table is None:
            return -errno.ENOMEM
        e = pt.entry(addr, 2)
        if e is None:
            if not (altmap is not None and (addr % pmd_size
                                            or altmap_cross_boundary(m, altmap, addr, pmd_size))):
                p = alloc_block(nr_pmd, node, altmap)
                if p >= 0:
                    pt.set_entry(pmd_table, addr, 2, p)          # vmemmap_set_pmd
                    addr = nxt
                    continue
        elif e[0] == "leaf":                                     # vmemmap_check_pmd
            addr = nxt
            continue
        pte_table = pt.ensure_table(addr, 3, node, early)        # vmemmap_pte_alloc
        if pte_table is None:
            return -errno.ENOMEM
        if pt.entry(addr, 3) is None:
            am = altmap
            if am is not None and altmap_cross_boundary(m, am, addr, a.PAGE_SIZE):
                am = None
            p = alloc_block(1, node, am)
            if p < 0 and am is not None:
                p = alloc_block(1, node, None)
            if p < 0:
                return -errno.ENOMEM
            pt.set_entry(pte_table, addr, 3, p)
        addr += a.PAGE_SIZE
    return 0


def vmemmap_populate(m, start: int, end: int, node: int, altmap) -> int:
    """arch/powerpc/mm/init_64.c:vmemmap_populate: 6.6+ radix -> radix__vmemmap_populate;
    6.1 and hash -> the vmemmap_list path. 0 or -ENOMEM."""
    block = lambda nr, n, am: vmemmap_alloc_block_buf(m, nr, n, am)
    if _radix_vmemmap_populate_path(m):
        return _radix_vmemmap_populate(m, start, end, node, altmap, block)
    lp = lambda: vmemmap_alloc_block(m, 1, node, "vmemmap_list")
    return _vmemmap_populate_list(m, start, end, node, altmap, block, lp)


def _free_vmemmap_pages(m, pfn: int, order: int, altmap) -> None:
    """radix_pgtable.c:free_vmemmap_pages (6.6) and the freeing half of init_64.c:vmemmap_free
    (6.1): the altmap's by count, a boot (PageReserved) page with free_reserved_page, else
    free_pages."""
    nr = 1 << order
    if altmap is not None:
        alt_end = altmap.base_pfn + altmap.reserve + altmap.free
        if altmap.base_pfn <= pfn < alt_end:
            m.core.vmem_altmap_free(altmap, nr)
            m.owners.drop_altmap(pfn, nr)
            return
    if m.ms.pfn_valid(pfn) and m.ms.page_flags(pfn) >> m.core.PG_reserved & 1:
        m.owners.memblock.pop(pfn, None)
        for p in range(pfn, pfn + nr):
            free_reserved_page(m, p)
        return
    kernel_free_pages(m, pfn, order)


def vmemmap_free(m, start: int, end: int, altmap) -> None:
    """6.6+ radix: radix__vmemmap_free = remove_pagetable(start, end, false, altmap);
    6.1 and hash: init_64.c:vmemmap_free, per mmu_vmemmap_psize block no longer
    vmemmap_populated(): its vmemmap_list entry, its memory, then vmemmap_remove_mapping."""
    a = m.arch
    if _radix_vmemmap_populate_path(m):
        m.pgtables.remove_pagetable(
            start, end, False, lambda pfn, order: _free_vmemmap_pages(m, pfn, order, altmap),
            lambda va, size: not vmemmap_populated(m, va, size))
        return
    page_size = _vmemmap_psize(m)
    start -= start % page_size
    while start < end:
        if not vmemmap_populated(m, start, page_size):
            pfn = m.pgtables.vmemmap_list.free(start)
            if pfn is not None:
                _free_vmemmap_pages(m, pfn, (page_size >> a.page_shift).bit_length() - 1,
                                    altmap)
                if _radix(m):                    # radix__vmemmap_remove_mapping (6.1)
                    m.pgtables.remove_pagetable(start, start + page_size, False)
                else:
                    m.pgtables.bolted.discard((start, page_size))
        start += page_size


# -- hotplug ------------------------------------------------------------------------------------

def create_section_mapping(m, start: int, end: int, nid: int) -> int:
    """radix__create_section_mapping (create_physical_mapping with the node) or
    hash__create_section_mapping (bolted HPTEs: nothing in the guest's memory)."""
    if not _radix(m):
        m.pgtables.bolted.add((m.arch.phys_to_virt(start), end - start))
        return 0
    m.arch_ops.table_env.kind = "direct map"
    return m.pgtables.create_physical_mapping(start, end, nid, _max_mapping_size(m), True,
                                              early=False)


def remove_section_mapping(m, start: int, end: int) -> None:
    """radix__remove_section_mapping = remove_pagetable(start, end, true) /
    hash__remove_section_mapping (htab_remove_mapping)."""
    if not _radix(m):
        m.pgtables.unbolt(m.arch.phys_to_virt(start), end - start)
        return
    a = m.arch
    m.pgtables.remove_pagetable(a.phys_to_virt(start), a.phys_to_virt(end), True)


def arch_add_memory(m, nid: int, start: int, size: int, altmap) -> int:
    """arch/powerpc/mm/mem.c:arch_add_memory (6.1 = 6.6): arch_create_linear_mapping (-EFAULT
    on failure, what was mapped stays), add_pages (__add_pages, then max_pfn raised to the end
    if higher), the linear map removed again if __add_pages fails."""
    a = m.arch
    if create_section_mapping(m, start, start + size, nid):
        m.log(f"Unable to create linear mapping for {start:#x}..{start + size:#x}")
        return -errno.EFAULT
    rc = mh.__add_pages(m, nid, start >> a.page_shift, size >> a.page_shift, altmap)
    if rc:
        remove_section_mapping(m, start, start + size)
        return rc
    m.max_pfn = max(m.max_pfn, (start + size + a.PAGE_SIZE - 1) >> a.page_shift)
    return 0


def arch_remove_memory(m, start: int, size: int, altmap) -> None:
    """arch/powerpc/mm/mem.c:arch_remove_memory (6.1 = 6.6): __remove_pages, then
    arch_remove_linear_mapping."""
    a = m.arch
    mh.__remove_pages(m, start >> a.page_shift, size >> a.page_shift, altmap)
    remove_section_mapping(m, start, start + size)


# -- /proc/meminfo ------------------------------------------------------------------------------

def meminfo_extra(m) -> dict:
    """/proc/meminfo values that are powerpc64's, in kB: VmallocTotal = VMALLOC_END -
    VMALLOC_START = RADIX_VMALLOC_SIZE = RADIX_KERN_MAP_SIZE (1 << 49;
    arch/powerpc/include/asm/book3s/64/radix.h, 6.1 = 6.12; hash: H_KERN_MAP_SIZE, the same
    with 64K pages); CmaTotal / CmaFree (fs/proc/meminfo.c, CONFIG_CMA=y in Debian's ppc64el
    builds): 0, as a pseries guest reserves no CMA area (kvm_cma_reserve only in hypervisor mode,
    fadump's only with fadump=on)."""
    return {"VmallocTotal": ppc.KERN_MAP_SIZE >> 10, "CmaTotal": 0, "CmaFree": 0}


def arch_report_meminfo(m) -> dict:
    """arch/powerpc/mm/book3s64/pgtable.c:arch_report_meminfo (6.1 = 6.12): with radix, the
    linear map's pages by size (direct_pages_count, kept by update_page_count in
    radix_pgtable.c:create_physical_mapping and remove_pagetable) as DirectMap4k / 64k / 2M / 1G
    in kB; nothing with hash ("Hash maps the memory with one size")."""
    if not _radix(m):
        return {}
    count = m.pgtables.page_count
    return {"DirectMap4k": count.get(12, 0) << 2, "DirectMap64k": count.get(16, 0) << 6,
            "DirectMap2M": count.get(21, 0) << 11, "DirectMap1G": count.get(30, 0) << 20}


# -- pseries DLPAR ------------------------------------------------------------------------------

def dlpar_mhp_flags(m) -> int:
    """The mhp_flags dlpar_add_lmb passes to __add_memory: MHP_NONE (6.1), MHP_MEMMAP_ON_MEMORY
    (6.6+; the kernel policy's powerpc64 overlay)."""
    return mh.MHP_MEMMAP_ON_MEMORY if m.policy.arch("powerpc64").dlpar_memmap_on_memory \
        else mh.MHP_NONE


def dlpar_add_lmb(m, base_addr: int, nid: int = 0) -> None:
    """arch/powerpc/platforms/pseries/hotplug-memory.c:dlpar_add_lmb: __add_memory(nid, base,
    memory_block_size, MHP_NONE in 6.1 / MHP_MEMMAP_ON_MEMORY from 6.6), then
    dlpar_online_lmb (device_online: MMOP_ONLINE); if onlining fails the memory is removed
    again. A node that is not possible becomes first_online_node."""
    base_addr = memparse(base_addr)
    if nid not in m.pgdats:                      # !node_possible(nid): first_online_node
        nid = min(n for n, p in m.pgdats.items() if p.online)
    bs = m.memory_block_size_bytes
    # 6.6+ add_memory_resource ignores MHP_MEMMAP_ON_MEMORY when not supported
    flags = dlpar_mhp_flags(m)
    m.add_memory_checked(nid, base_addr, bs, flags)
    try:
        m.sysfs.write(f"/sys/devices/system/memory/memory{base_addr // bs}/online", "1")
    except HotplugError:
        m.remove_memory(base_addr, bs)
        raise


def dlpar_remove_lmb(m, base_addr: int) -> None:
    """hotplug-memory.c:dlpar_remove_lmb: dlpar_offline_lmb (device_offline), then
    __remove_memory of the block (the memblock_remove of a hot-added LMB changes nothing the
    model keeps)."""
    base_addr = memparse(base_addr)
    bs = m.memory_block_size_bytes
    mem = m.memory.blocks.get(base_addr // bs)
    if mem is None or base_addr % bs:
        raise HotplugError(errno.EINVAL, f"dlpar_remove_lmb: no LMB at {base_addr:#x}")
    m.sysfs.write(f"/sys/devices/system/memory/memory{base_addr // bs}/online", "0")
    m.remove_memory(base_addr, bs)


def dlpar_memory_add_by_ic(m, base_addr: int, lmbs_to_add: int, nid: int = 0) -> None:
    """arch/powerpc/platforms/pseries/hotplug-memory.c:dlpar_memory_add_by_ic (6.1 = 6.12): the
    "indexed count" add QEMU's pseries asks for when a pc-dimm is plugged (hw/ppc/spapr.c:
    spapr_add_lmbs → spapr_hotplug_req_add_by_count_indexed). Every LMB of the range, lowest
    first, is added and onlined by dlpar_add_lmb; if one fails, the ones added are removed
    again (dlpar_remove_lmb) and the request fails with -EINVAL. A model left unchanged on
    failure (each dlpar_add_lmb undoes itself)."""
    base_addr = memparse(base_addr)
    bs = m.memory_block_size_bytes
    if lmbs_to_add <= 0 or base_addr % bs:
        raise HotplugError(errno.EINVAL, f"dlpar_memory_add_by_ic: {lmbs_to_add} LMB(s) at "
                           f"{base_addr:#x} (LMBs of {bs:#x} bytes)")
    added = []
    try:
        for i in range(lmbs_to_add):
            dlpar_add_lmb(m, base_addr + i * bs, nid)
            added.append(base_addr + i * bs)
    except HotplugError as exc:
        for lmb in added:                     # "removing any added LMBs"
            dlpar_remove_lmb(m, lmb)
        raise HotplugError(errno.EINVAL, f"dlpar_memory_add_by_ic: LMB {len(added)} of "
                           f"{lmbs_to_add} at {base_addr + len(added) * bs:#x}: {exc}") from None


def dlpar_memory_remove_by_ic(m, base_addr: int, lmbs_to_remove: int) -> None:
    """hotplug-memory.c:dlpar_memory_remove_by_ic (6.1 = 6.12): the "indexed count" remove
    QEMU's pseries asks for on device_del of a pc-dimm (spapr_memory_unplug_request →
    spapr_hotplug_req_remove_by_count_indexed). Each assigned LMB of the range, lowest first,
    goes through dlpar_remove_lmb (device_offline, then __remove_memory); if one fails, the
    LMBs removed so far are added (and onlined) again by dlpar_add_lmb and the request fails
    with -EINVAL: QEMU keeps the DIMM."""
    base_addr = memparse(base_addr)
    bs = m.memory_block_size_bytes
    if lmbs_to_remove <= 0 or base_addr % bs:
        raise HotplugError(errno.EINVAL, f"dlpar_memory_remove_by_ic: {lmbs_to_remove} LMB(s) "
                           f"at {base_addr:#x}")
    removed = []
    try:
        for i in range(lmbs_to_remove):
            lmb = base_addr + i * bs
            mem = m.memory.blocks.get(lmb // bs)
            if mem is None:                           # !DRCONF_MEM_ASSIGNED: skipped
                continue
            nid = mem.nid                             # lmb->nid, kept for the re-add
            dlpar_remove_lmb(m, lmb)
            removed.append((lmb, nid))
    except HotplugError as exc:
        for lmb, nid in removed:             # "adding any removed LMBs"
            dlpar_add_lmb(m, lmb, nid)
        raise HotplugError(errno.EINVAL, f"dlpar_memory_remove_by_ic: {lmbs_to_remove} LMB(s) "
                           f"at {base_addr:#x}: {exc}") from None


class PowerPC64Ops(ArchOps, hooks_from=globals()):
    """powerpc64 (book3s) on QEMU pseries: hotplug hooks of arch/powerpc/mm/mem.c and init_64.c;
    owns the radix table allocator (``table_env``) and init_64.c's ``vmemmap_list``."""

    name = "powerpc64"
    board = "QEMU pseries (PAPR guest)"
    hotplug_method = "dlpar-lmb"
    #: QEMU's limit on -m slots=: SPAPR_MAX_RAM_SLOTS (include/hw/ppc/spapr.h, QEMU 7.2)
    max_ram_slots = 32
    ZONE_TYPES = ZONE_TYPES

    def __init__(self, profile, kernel: str | None = None):
        super().__init__(profile)
        if kernel in ZONE_DEVICE_VERSIONS:
            self.ZONE_TYPES = ZONE_TYPES + ("Device",)
        #: who pays for radix tables (set by new_page_tables; None on hash)
        self.table_env = None
        #: init_64.c's vmemmap_list (set by new_page_tables)
        self.vmemmap_list = None


    def new_page_tables(self, m, pgd_pfn: int):
        pt = new_page_tables(m, pgd_pfn)
        self.vmemmap_list = pt.vmemmap_list
        return pt

    arch_support_memmap_on_memory = staticmethod(ppc.arch_support_memmap_on_memory)
    arch_supports_memmap_on_memory = staticmethod(ppc.arch_supports_memmap_on_memory)
    #: mmu_vmemmap_psize: the page size the vmemmap is mapped with
    mmu_vmemmap_psize = staticmethod(_vmemmap_psize)

    def arch_state(self) -> dict:
        return {} if self.vmemmap_list is None else {"vmemmap_list": self.vmemmap_list}

    @property
    def paging_description(self) -> str:
        a = self.profile
        if a.mmu == "hash":
            return ("hash MMU (linear map and vmemmap are bolted HPTEs in the hypervisor's hash "
                    "table: no Linux page tables)")
        return f"radix MMU, {a.paging_levels}-level page tables"
