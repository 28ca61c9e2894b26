"""The page-table geometry of an architecture profile (hotmem._py.pgtable.PageTableGeometry),
shared by the arches whose tables the core walks (x86_64, arm64, powerpc64 radix)."""
from __future__ import annotations

from hotmem.defs import PageTableGeometry
from hotmem.arch.arm64_mmu import arm64_geometry

_M64 = (1 << 64) - 1


def geometry_from_profile(profile) -> PageTableGeometry:
    """The PageTableGeometry of an ArchProfile: x86_64 -> PageTableGeometry.x86_64(levels);
    arm64 -> arm64_geometry (VA_BITS read back from PAGE_OFFSET = -(1 << VA_BITS)); any other
    profile -> its unfolded levels with arch "generic" (generic walks only; bases from
    PAGE_OFFSET and VMEMMAP_START spanning 1 << MAX_PHYSMEM_BITS of RAM)."""
    if profile.name == "x86_64":
        return PageTableGeometry.x86_64(profile.paging_levels)
    if profile.name == "arm64":
        va_bits = ((1 << 64) - profile.page_offset).bit_length() - 1
        return arm64_geometry(profile.page_shift, va_bits, profile.max_physmem_bits)
    levels = []
    for name, shift, ptrs in (("PGD", profile.pgdir_shift, profile.ptrs_per_pgd),
                              ("P4D", profile.p4d_shift, profile.ptrs_per_p4d),
                              ("PUD", profile.pud_shift, profile.ptrs_per_pud),
                              ("PMD", profile.pmd_shift, profile.ptrs_per_pmd),
                              ("PTE", profile.page_shift, profile.ptrs_per_pte)):
        if name in ("PGD", "PTE") or ptrs > 1:
            levels.append((name, shift, ptrs))
    ram = 1 << profile.max_physmem_bits
    vmemmap_bytes = (ram >> profile.page_shift) * profile.struct_page_size
    mmu = profile.mmu
    name = f"{profile.name}-{mmu + '-' if mmu else ''}{profile.paging_levels}level"
    return PageTableGeometry(name, "generic",
                             profile.page_shift, tuple(levels), profile.page_offset,
                             (profile.page_offset + ram) & _M64, profile.vmemmap_start,
                             (profile.vmemmap_start + vmemmap_bytes) & _M64,
                             min(profile.page_offset, profile.vmemmap_start),
                             profile.max_physmem_bits)
