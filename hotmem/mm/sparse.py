"""Sparse memory sections on hot-add and hot-remove (mm/sparse.c, 6.1, SPARSEMEM_VMEMMAP).

The ``mem_section`` table and struct pages live in the core's ``MemSections``; this module moves
them as sparse_add_section / section_activate / section_deactivate / sparse_remove_section do.
"""
from __future__ import annotations

import errno

from hotmem.errors import HotplugError
from hotmem.mm.sparse_vmemmap import depopulate_section_memmap, populate_section_memmap


def subsection_mask(m, pfn: int, nr_pages: int) -> int:
    """mm/sparse.c:subsection_mask_set for one section's piece: the bits of the 2 MiB subsections
    that [pfn, pfn + nr_pages) touches."""
    a = m.arch
    first = (pfn & (a.PAGES_PER_SECTION - 1)) >> a.PFN_SUBSECTION_SHIFT
    last = ((pfn + nr_pages - 1) & (a.PAGES_PER_SECTION - 1)) >> a.PFN_SUBSECTION_SHIFT
    return ((1 << (last + 1)) - 1) & ~((1 << first) - 1)


def fill_subsection_map(m, pfn: int, nr_pages: int) -> int:
    """mm/sparse.c:fill_subsection_map (6.1): 0, -EINVAL (empty) or -EEXIST (already present)."""
    ms = m.ms
    nr = m.arch.pfn_to_section_nr(pfn)
    mask = subsection_mask(m, pfn, nr_pages) if nr_pages else 0
    if not mask:
        return -errno.EINVAL
    cur = ms.subsection_map(nr)
    if cur & mask:
        return -errno.EEXIST
    ms.set_subsection_map(nr, cur | mask)
    return 0


def section_activate(m, nid: int, pfn: int, nr_pages: int, altmap) -> int:
    """mm/sparse.c:section_activate (6.1): usage map, subsection bits, memmap population.
    Returns 0 or -errno; on failure the section is left as the kernel's error path leaves it."""
    ms = m.ms
    nr = m.arch.pfn_to_section_nr(pfn)
    new_usage = not ms.has_usage(nr)
    if new_usage:
        ms.alloc_usage(nr)
        m.slab.kmalloc("mem_section_usage", m.arch.mem_section_usage_size(
            rcu_head=m.policy.usage_has_rcu_head))
    rc = fill_subsection_map(m, pfn, nr_pages)
    if rc:
        if new_usage:
            ms.free_usage(nr)
            m.slab.kfree("mem_section_usage", m.arch.mem_section_usage_size(
                rcu_head=m.policy.usage_has_rcu_head))
        return rc
    # A partial section inside an early (boot) section reuses the boot memmap.
    if nr_pages < m.arch.PAGES_PER_SECTION and ms.section_mem_map(nr) & m.core.SECTION_IS_EARLY:
        return 0
    if not ms.has_memmap(nr):
        ms.alloc_memmap(nr)
    rc = populate_section_memmap(m, pfn, nr_pages, nid, altmap)
    if rc:
        section_deactivate(m, pfn, nr_pages, altmap)
        return -errno.ENOMEM
    return 0


def sparse_add_section(m, nid: int, pfn: int, nr_pages: int, altmap) -> int:
    """mm/sparse.c:sparse_add_section (6.1). 0 or -errno."""
    ms = m.ms
    core = m.core
    nr = m.arch.pfn_to_section_nr(pfn)
    if ms.sparse_index_init(nr):
        m.slab.kmalloc("mem_section root", m.arch.PAGE_SIZE)
    rc = section_activate(m, nid, pfn, nr_pages, altmap)
    if rc:
        return rc
    # __section_mark_present + sparse_init_one_section(flags 0): not early, not online
    ms.set_section_flags(nr, core.SECTION_MARKED_PRESENT | core.SECTION_HAS_MEM_MAP)
    m.highest_present_section_nr = max(m.highest_present_section_nr, nr)
    return 0


def section_deactivate(m, pfn: int, nr_pages: int, altmap) -> None:
    """mm/sparse.c:section_deactivate (6.1.y)."""
    ms = m.ms
    core = m.core
    nr = m.arch.pfn_to_section_nr(pfn)
    mask = subsection_mask(m, pfn, nr_pages)
    cur = ms.subsection_map(nr)
    if cur & mask != mask:
        m.warn(f"section {nr}: section already deactivated ({cur:#x} & {mask:#x})")
        return
    cur &= ~mask
    ms.set_subsection_map(nr, cur)
    empty = cur == 0
    early = bool(ms.section_mem_map(nr) & core.SECTION_IS_EARLY)
    if empty:
        ms.clear_section_flags(nr, core.SECTION_HAS_MEM_MAP)
        if not early:
            ms.free_usage(nr)
            m.slab.kfree("mem_section_usage", m.arch.mem_section_usage_size(
                rcu_head=m.policy.usage_has_rcu_head))
    if not early:
        depopulate_section_memmap(m, pfn, nr_pages, altmap)
    else:
        if empty:
            m.free_boot_memmap(nr)
    if empty:
        ms.clear_section_flags(nr, ~0 & ((1 << 64) - 1))
        if ms.has_memmap(nr):
            ms.free_memmap(nr)


def sparse_remove_section(m, pfn: int, nr_pages: int, map_offset: int, altmap) -> None:
    """mm/sparse.c:sparse_remove_section (6.1)."""
    section_deactivate(m, pfn, nr_pages, altmap)


def online_mem_sections(m, start_pfn: int, end_pfn: int) -> None:
    """mm/sparse.c:online_mem_sections (6.1)."""
    for pfn in range(start_pfn, end_pfn, m.arch.PAGES_PER_SECTION):
        m.ms.set_section_flags(m.arch.pfn_to_section_nr(pfn), m.core.SECTION_IS_ONLINE)


def offline_mem_sections(m, start_pfn: int, end_pfn: int) -> None:
    """mm/sparse.c:offline_mem_sections (6.1)."""
    for pfn in range(start_pfn, end_pfn, m.arch.PAGES_PER_SECTION):
        m.ms.clear_section_flags(m.arch.pfn_to_section_nr(pfn), m.core.SECTION_IS_ONLINE)


def check_section_free(m, pfn: int, nr_pages: int) -> None:
    """Refuse (EEXIST) a range whose subsections are already present: fill_subsection_map's test,
    made before anything changes."""
    a = m.arch
    p, end = pfn, pfn + nr_pages
    while p < end:
        nr = a.pfn_to_section_nr(p)
        n = min(end - p, a.PAGES_PER_SECTION - (p & (a.PAGES_PER_SECTION - 1)))
        if m.ms.subsection_map(nr) & subsection_mask(m, p, n):
            raise HotplugError(errno.EEXIST, f"pfn range {p:#x}+{n}: subsections already present "
                               f"in section {nr}")
        p += n
