"""Sparse memory sections on hot-add and hot-remove (mm/sparse.c, 6.1, SPARSEMEM_VMEMMAP).

The ``mem_section`` table and struct pages live in the core's ``MemSections``; this module moves
them as sparse_add_section / section_activate / section_deactivate / sparse_remove_section do;
sparse_init builds the boot sections. Hot-plug functions return 0 or -errno (hotmem/errors.py);
section_activate undoes its own steps on failure; boot (sparse_init) raises.
"""
from __future__ import annotations

import errno
import functools

from hotmem.errors import HotplugError, fail
from hotmem.mm.memblock import memblock_alloc_page
from hotmem.mm.sparse_vmemmap import (depopulate_section_memmap, pgtable_batch_flush,
                                      populate_section_memmap)
from hotmem.mm.vmstat import memmap_boot_pages_add, memmap_pages_of


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


def _usage_size(m) -> int:
    """mem_section_usage_size() of m's arch and policy (ArchProfile.mem_section_usage_size),
    computed once per arch profile and rcu_head choice (kept on the profile)."""
    a = m.arch
    rcu = m.policy.usage_has_rcu_head
    cache = a.__dict__.setdefault("_usage_size_cache", {})
    size = cache.get(rcu)
    if size is None:
        size = cache[rcu] = a.mem_section_usage_size(rcu_head=rcu)
    return size


def section_activate(m, nid: int, pfn: int, nr_pages: int, altmap) -> int:
    """mm/sparse.c:section_activate (6.1): usage map, subsection bits, memmap population.
    Returns 0 or -errno; on failure the section is left as the kernel's error path leaves it."""
    ms = m.ms
    nr = m.arch.pfn_to_section_nr(pfn)
    new_usage = not ms.has_usage(nr)
    if new_usage:
        ms.alloc_usage(nr)
        m.slab.kmalloc("mem_section_usage", _usage_size(m))
    rc = fill_subsection_map(m, pfn, nr_pages)
    if rc:
        if new_usage:
            ms.free_usage(nr)
            m.slab.kfree("mem_section_usage", _usage_size(m))
        return rc
    # A partial section inside an early (boot) section reuses the boot memmap.
    if nr_pages < m.arch.PAGES_PER_SECTION and ms.section_mem_map(nr) & m.core.SECTION_IS_EARLY:
        return 0
    if not ms.has_memmap(nr):
        ms.alloc_memmap(nr)
    rc = populate_section_memmap(m, pfn, nr_pages, nid, altmap)
    if rc:
        pgtable_batch_flush(m)          # the walk's allocations in the ledger first
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
            m.slab.kfree("mem_section_usage", _usage_size(m))
    if not early:
        depopulate_section_memmap(m, pfn, nr_pages, altmap)
    else:
        if empty:
            free_map_bootmem(m, nr)
    if empty:
        ms.clear_section_flags(nr, ~0 & ((1 << 64) - 1))
        if ms.has_memmap(nr):
            ms.free_memmap(nr)


def free_map_bootmem(m, section_nr: int) -> None:
    """mm/sparse.c:free_map_bootmem (6.1, VMEMMAP): vmemmap_free of an emptied early section's
    boot memmap (6.11 takes nothing off nr_memmap_boot_pages here; 6.12.48+ takes the
    section's memmap off it, section_nr_vmemmap_pages(pfn, PAGES_PER_SECTION, NULL, NULL))."""
    a = m.arch
    if m.policy.free_map_bootmem_counts:
        memmap_boot_pages_add(m, -memmap_pages_of(m, a.PAGES_PER_SECTION))
    start = a.pfn_to_page(a.section_nr_to_pfn(section_nr))
    end = a.pfn_to_page(a.section_nr_to_pfn(section_nr + 1))
    m.arch_ops.vmemmap_free(m, start, end, None)


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


def check_section_free(m, pfn: int, nr_pages: int) -> int:
    """Refuse (-EEXIST) a range whose subsections are already present: fill_subsection_map's
    test, made before anything changes. 0 or -EEXIST."""
    a = m.arch
    p, end = pfn, pfn + nr_pages
    while p < end:
        nr = a.pfn_to_section_nr(p)
        n = min(end - p, a.PAGES_PER_SECTION - (p & (a.PAGES_PER_SECTION - 1)))
        if m.ms.subsection_map(nr) & subsection_mask(m, p, n):
            return fail(m, errno.EEXIST, f"pfn range {p:#x}+{n}: subsections already "
                        f"present in section {nr}")
        p += n
    return 0


# -- boot ----------------------------------------------------------------------------------------

class SparseBuffer:
    """mm/sparse.c:sparsemap_buf / sparsemap_buf_end (6.1): one node's memblock buffer of
    section memmaps; ``used`` are the byte ranges handed out (for the owner ledger)."""

    def __init__(self, m, nid: int, size: int, align: int):
        """sparse_buffer_init: memmap_alloc(size, align, exact_nid); no buffer when the node has
        no such free range (arm64 64K: as big as the node's RAM, so always)."""
        self.m, self.nid = m, nid
        try:
            self.buf = m.memblock.alloc_top_down(size, align, nid, "memmap", exact_nid=True)
        except HotplugError:
            self.buf = None
        self.end = None if self.buf is None else self.buf + size
        self.used = []

    def alloc(self, nr_pages: int, node: int) -> int:
        """vmemmap_alloc_block_buf at boot: sparse_buffer_alloc (rounded up to the size, the gap
        freed), else vmemmap_alloc_block's memblock_alloc_try_nid_raw. Returns the pfn."""
        m = self.m
        a = m.arch
        nbytes = nr_pages << a.page_shift
        if self.buf is not None:
            ptr = -(-self.buf // nbytes) * nbytes
            if ptr + nbytes <= self.end:
                if ptr > self.buf:
                    m.memblock.unreserve(self.buf, ptr - self.buf)
                self.buf = ptr + nbytes
                if self.used and self.used[-1][1] == ptr:
                    self.used[-1][1] = ptr + nbytes
                else:
                    self.used.append([ptr, ptr + nbytes])
                return ptr >> a.page_shift
        p = m.memblock.alloc_top_down(nbytes, nbytes, node, "memmap")
        m.owners.note_memblock(p >> a.page_shift, nr_pages, node, "memmap (boot)")
        return p >> a.page_shift

    def fini(self) -> None:
        """sparse_buffer_fini: what the sections did not use goes back to memblock."""
        m, a = self.m, self.m.arch
        if self.buf is not None and self.buf < self.end:
            m.memblock.unreserve(self.buf, self.end - self.buf)
        for s, e in self.used:
            m.owners.note_memblock(s >> a.page_shift, (e - s) >> a.page_shift, self.nid,
                                   "memmap (boot)")


def _boot_vmemmap_table(m, level: str, node: int) -> int:
    """vmemmap_alloc_block_zero at boot: a memblock page for a vmemmap page table."""
    return memblock_alloc_page(m, node, f"vmemmap {level} table (boot)")


def sparse_init(m) -> None:
    """mm/sparse.c:sparse_init (6.1): memblocks_present, subsection_map_init, and per node one
    memblock buffer of PMD-aligned memmaps mapped by vmemmap_populate."""
    a, ms, core = m.arch, m.ms, m.core
    shift = a.PFN_SECTION_SHIFT
    pps = 1 << shift
    ranges = list(m.memblock.mem_pfn_ranges(a.page_shift))
    present: dict[int, int] = {}
    for s, e, nid in ranges:
        for nr in range(s >> shift, ((e - 1) >> shift) + 1):
            if nr not in present:
                present[nr] = nid
    set_flags = ms.set_section_flags
    flags = core.SECTION_MARKED_PRESENT | core.SECTION_IS_ONLINE
    for nr in sorted(present):
        ms.sparse_index_init(nr)
        ms.alloc_usage(nr)
        set_flags(nr, flags)
        m.highest_present_section_nr = max(m.highest_present_section_nr, nr)
    full = subsection_mask(m, 0, pps)
    for s, e, nid in ranges:
        pfn = s
        while pfn < e:
            nr = pfn >> shift
            n = min(e - pfn, pps - (pfn & (pps - 1)))
            ms.set_subsection_map(nr, ms.subsection_map(nr) | (
                full if n == pps else subsection_mask(m, pfn, n)))
            pfn += n
    by_node: dict[int, list[int]] = {}
    for nr, nid in sorted(present.items()):
        by_node.setdefault(nid, []).append(nr)
    # mm/sparse.c:section_map_size (6.1, SPARSEMEM_VMEMMAP): a section's memmap rounded up to
    # PMD_SIZE -- the memmap itself on x86_64 and arm64 4K (2 MiB), one whole PMD with 16K
    # (32 MiB for 512 KiB) and 64K pages (512 MiB for 512 KiB)
    pmd = 1 << a.pmd_shift
    section_map_size = -(-a.memmap_size(1 << a.section_size_bits) // pmd) * pmd
    table = functools.partial(_boot_vmemmap_table, m)
    populate, pfn_to_page = m.arch_ops.boot_vmemmap_populate, a.pfn_to_page
    # 6.11 __populate_section_memmap while SYSTEM_BOOTING: a whole section's memmap
    boot_pages = memmap_pages_of(m, pps)
    early = core.SECTION_HAS_MEM_MAP | core.SECTION_IS_EARLY
    for nid, sections in by_node.items():
        sbuf = SparseBuffer(m, nid, len(sections) * section_map_size, section_map_size)
        alloc = sbuf.alloc
        for nr in sections:
            ms.alloc_memmap(nr)
            pfn = nr << shift
            rc = populate(m, pfn_to_page(pfn), pfn_to_page(pfn + pps), nid, alloc, table)
            if rc:
                raise HotplugError(-rc, f"boot vmemmap population of section {nr} failed")
            memmap_boot_pages_add(m, boot_pages)
            set_flags(nr, early)
        sbuf.fini()
