"""s390x: the 6.1 profile (4K pages, 256 MiB sections) and its memmap_on_memory rules.

Read in Linux 6.1.166: arch/s390/include/asm/{sparsemem,pgtable,page,abs_lowcore,lowcore}.h,
arch/s390/Kconfig, arch/s390/boot/startup.c (setup_ident_map_size, setup_vmalloc_size,
setup_kernel_memory_layout), arch/s390/mm/init.c (memory_block_size_bytes, paging_init),
arch/s390/mm/vmem.c:arch_get_mappable_range.  ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE: absent from
arch/s390/Kconfig in 6.8.0, selected in 6.9.0 (read in both).  page->flags and config:
Debian's linux-headers-6.1.0-50-s390x (6.1.176).

s390 tables: page tables of 256 entries (2 KiB), region and segment tables of 2048 (16 KiB,
CRST_ALLOC_ORDER 2).  The build has PGTABLE_LEVELS 5, but the kernel's own address space
(init_mm) uses a region-third table (3 levels) when VMALLOC_END <= 4 TiB and a region-second
table (4 levels) above; the profile's top level ("pgd") is that table.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass

from hotmem.arch.base import ALIGN, ALIGN_DOWN, ArchProfile, PageFlagsLayout, is_power_of_2
from hotmem.errors import HotplugError

PAGE_SHIFT = 12
SECTION_SIZE_BITS = 28                  # asm/sparsemem.h
MIN_MEMORY_BLOCK_SIZE = 1 << SECTION_SIZE_BITS
MAX_PHYSMEM_BITS = 46                   # CONFIG_MAX_PHYSMEM_BITS (default and Debian)
STRUCT_PAGE_SIZE = 64
_PAGE_ENTRIES = 256                     # asm/pgtable.h: page-table entries
_CRST_ENTRIES = 2048                    # region and segment table entries
_SEGMENT_SHIFT = 20                     # PMD_SHIFT
_REGION3_SHIFT = 31                     # PUD_SHIFT
_REGION2_SHIFT = 42                     # P4D_SHIFT
_REGION1_SHIFT = 53                     # PGDIR_SHIFT
_SEGMENT_SIZE = 1 << _SEGMENT_SHIFT
_REGION3_SIZE = 1 << _REGION3_SHIFT
_REGION2_SIZE = 1 << _REGION2_SHIFT
_REGION1_SIZE = 1 << _REGION1_SHIFT
HPAGE_SHIFT = 20                        # asm/page.h: 1 MiB large pages (segment)
MAX_PAGE_ORDER = 10                     # no ARCH_FORCE_MAX_ORDER: 6.1 MAX_ORDER 11
MODULES_LEN = 1 << 31                   # asm/pgtable.h
VMALLOC_DEFAULT_SIZE = (512 << 30) - MODULES_LEN
SIZEOF_LOWCORE = 0x2000                 # struct lowcore, __aligned(8192)
NR_CPUS = 256                           # Debian CONFIG_NR_CPUS
PAGE_OFFSET = 0                         # asm/page.h (6.1): the identity map starts at 0

# page->flags of Debian's 6.1 s390x build (bounds.h: NR_PAGEFLAGS 23, MAX_NR_ZONES 3 = DMA,
# NORMAL, MOVABLE, NR_CPUS_BITS 8, LRU_GEN_WIDTH 3, __LRU_REFS_WIDTH 2; .config: NUMA off
# (NODES_SHIFT 0), NUMA_BALANCING off):
# ZONE 63..62 | LRU_GEN 61..59 | LRU_REFS 58..57 | flags 22..0.
DEBIAN_6_1_PAGE_FLAGS = PageFlagsLayout(
    nr_pageflags=23, max_nr_zones=3, nodes_shift=0, lru_gen_width=3, lru_refs_shift=2,
    kasan_tag_width=0, nr_cpus_bits=8, numa_balancing=False)


@dataclass(frozen=True)
class KernelMemoryLayout:
    """The virtual layout arch/s390/boot/startup.c:setup_kernel_memory_layout leaves (6.1)."""

    ident_map_size: int         # bytes of the identity map (capped below the vmemmap)
    vmemmap_start: int          # ``vmemmap``: struct page of pfn 0 (also VMEM_MAX_PHYS)
    vmemmap_size: int           # bytes of struct pages for ident_map_size, section-aligned
    vmalloc_start: int
    vmalloc_end: int
    modules_vaddr: int
    modules_end: int
    vmax: int                   # top of the kernel address space
    rte_size: int               # bytes one entry of the top-level table maps

    @property
    def paging_levels(self) -> int:
        """3 with a region-third top table, 4 with region-second (mm/init.c:paging_init)."""
        return 4 if self.vmalloc_end > _REGION2_SIZE else 3


def setup_kernel_memory_layout(ident_map_size: int, *, vmalloc_size: int | None = None,
                               nr_cpus: int = NR_CPUS) -> KernelMemoryLayout:
    """arch/s390/boot/startup.c:setup_vmalloc_size + setup_kernel_memory_layout (6.1).

    ``ident_map_size``: online plus standby memory as setup_ident_map_size leaves it (capped
    by mem= and 2^MAX_PHYSMEM_BITS); ``vmalloc_size``: the ``vmalloc=`` parameter, if given.
    No KASAN and no ultravisor limit (adjust_to_uv_max leaves vmax alone).
    """
    for what, v in (("ident_map_size", ident_map_size), ("vmalloc_size", vmalloc_size),
                    ("nr_cpus", nr_cpus)):
        if v is None and what == "vmalloc_size":
            continue
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise HotplugError(errno.EINVAL, f"s390x: {what} {v!r}: must be a positive integer")
    pages_per_section = 1 << (SECTION_SIZE_BITS - PAGE_SHIFT)
    ident = min(ident_map_size, 1 << MAX_PHYSMEM_BITS)
    if vmalloc_size is None:                            # setup_vmalloc_size
        vmalloc_size = max(ALIGN(ident // 8, _SEGMENT_SIZE), VMALLOC_DEFAULT_SIZE)
    else:
        vmalloc_size = ALIGN(vmalloc_size, 1 << PAGE_SHIFT)
    vmemmap_size = ALIGN(ident >> PAGE_SHIFT, pages_per_section) * STRUCT_PAGE_SIZE
    vmemmap_start = ALIGN(ident, _REGION3_SIZE)
    if (vmalloc_size > _REGION2_SIZE
            or vmemmap_start + vmemmap_size + vmalloc_size + MODULES_LEN > _REGION2_SIZE):
        vmax, rte_size = _REGION1_SIZE, _REGION2_SIZE
    else:
        vmax, rte_size = _REGION2_SIZE, _REGION3_SIZE
    memcpy_real_area = ALIGN_DOWN(vmax - (1 << PAGE_SHIFT), 1 << PAGE_SHIFT)
    abs_lowcore = ALIGN_DOWN(memcpy_real_area - nr_cpus * SIZEOF_LOWCORE, SIZEOF_LOWCORE)
    modules_end = ALIGN_DOWN(abs_lowcore, _SEGMENT_SIZE)
    modules_vaddr = modules_end - MODULES_LEN
    vmalloc_end = modules_vaddr
    vmalloc_size = min(vmalloc_size, ALIGN_DOWN(vmalloc_end // 2, _REGION3_SIZE))
    vmalloc_start = vmalloc_end - vmalloc_size
    # Split what is below vmalloc between the identity map and the vmemmap.
    pages = ALIGN(vmalloc_start // ((1 << PAGE_SHIFT) + STRUCT_PAGE_SIZE), pages_per_section)
    vmemmap_start = ALIGN_DOWN(vmalloc_start - pages * STRUCT_PAGE_SIZE, rte_size)
    vmemmap_start = min(vmemmap_start, 1 << MAX_PHYSMEM_BITS)
    ident = min(ident, vmemmap_start)
    vmemmap_size = ALIGN(ident >> PAGE_SHIFT, pages_per_section) * STRUCT_PAGE_SIZE
    vmalloc_start = max(vmemmap_start + vmemmap_size, vmalloc_start)
    return KernelMemoryLayout(ident, vmemmap_start, vmemmap_size, vmalloc_start, vmalloc_end,
                              modules_vaddr, modules_end, vmax, rte_size)


def s390x(*, ident_map_size: int = 1 << 30, vmalloc_size: int | None = None,
          page_extension: bool = True) -> ArchProfile:
    """The s390x profile (6.1, Debian build) for a machine whose online plus standby memory
    ends at ``ident_map_size`` (default 1 GiB); that size places the vmemmap and picks 3 or 4
    kernel page-table levels (:func:`setup_kernel_memory_layout`)."""
    layout = setup_kernel_memory_layout(ident_map_size, vmalloc_size=vmalloc_size)
    levels = layout.paging_levels
    pgdir_shift = _REGION2_SHIFT if levels == 4 else _REGION3_SHIFT
    return ArchProfile(
        name="s390x",
        paging_levels=levels,
        page_shift=PAGE_SHIFT,
        struct_page_size=STRUCT_PAGE_SIZE,
        section_size_bits=SECTION_SIZE_BITS,
        max_physmem_bits=MAX_PHYSMEM_BITS,
        subsection_shift=21,
        pmd_shift=_SEGMENT_SHIFT,
        pud_shift=_REGION3_SHIFT,
        p4d_shift=pgdir_shift,
        pgdir_shift=pgdir_shift,
        ptrs_per_pte=_PAGE_ENTRIES,
        ptrs_per_pmd=_CRST_ENTRIES,
        ptrs_per_pud=_CRST_ENTRIES if levels == 4 else 1,
        ptrs_per_p4d=1,
        ptrs_per_pgd=_CRST_ENTRIES,
        max_page_order=MAX_PAGE_ORDER,
        pageblock_order=min(HPAGE_SHIFT - PAGE_SHIFT, MAX_PAGE_ORDER),
        max_memory_block_size=MIN_MEMORY_BLOCK_SIZE,
        vmemmap_start=layout.vmemmap_start,
        page_offset=PAGE_OFFSET,
        physmem_end=(1 << MAX_PHYSMEM_BITS) - 1,
        page_unused=None,
        sizeof_mem_section=32 if page_extension else 16,
        sparsemem_extreme=True,
        page_flags=DEBIAN_6_1_PAGE_FLAGS,
    )


def memory_block_size_bytes(rzm: int = 0) -> int:
    """arch/s390/mm/init.c:memory_block_size_bytes (6.1): at least one section, and at least
    the storage increment size ``rzm`` that SCLP reports (sclp.rzm)."""
    if not isinstance(rzm, int) or isinstance(rzm, bool) or rzm < 0:
        raise HotplugError(errno.EINVAL, f"s390x: rzm {rzm!r}: must be a size in bytes")
    bz = max(MIN_MEMORY_BLOCK_SIZE, rzm)
    if not is_power_of_2(bz):                       # drivers/base/memory.c:memory_dev_init
        raise HotplugError(errno.EINVAL, f"Memory block size not suitable: {bz:#x} "
                           f"(rzm {rzm:#x})")
    return bz


def arch_get_mappable_range(profile: ArchProfile) -> tuple[int, int]:
    """arch/s390/mm/vmem.c:arch_get_mappable_range (6.1): [0, VMEM_MAX_PHYS - 1], inclusive,
    where VMEM_MAX_PHYS is the vmemmap's start."""
    return 0, profile.vmemmap_start - 1
