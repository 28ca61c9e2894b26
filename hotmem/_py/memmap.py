"""Pure-Python twin of hotmem/_cy/memmap.pxi: the sparse ``mem_section`` table and struct pages.

Models, for Linux 6.1 with CONFIG_SPARSEMEM_EXTREME + CONFIG_SPARSEMEM_VMEMMAP:
- ``mem_section[NR_SECTION_ROOTS][SECTIONS_PER_ROOT]`` (include/linux/mmzone.h): roots are allocated
  on demand (mm/sparse.c:sparse_index_init) and never freed;
- per section the ``section_mem_map`` flag bits, the ``mem_section_usage`` (subsection_map and the
  pageblock flags, allocated by section_activate) and the section's struct page array (the memmap);
  the subsection_map is the kernel's DECLARE_BITMAP(subsection_map, SUBSECTIONS_PER_SECTION), kept
  and handed out as one int of all its bits (64 on x86_64 and arm64 4K/16K, 256 on arm64 64K);
- ``struct page`` as a record of what the model needs (``PAGE_DTYPE``): the kernel accounts
  sizeof(struct page) bytes per page while the model stores 24;
- mm/page_alloc.c:memmap_init_range / __init_single_page for the hotplug context.
"""
import errno
import operator

import numpy as np

from hotmem.defs import (  # noqa: F401  (re-exported: see __all__)
    MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_PCPTYPES, MIGRATE_RECLAIMABLE,
    MIGRATE_TYPES, MIGRATE_UNMOVABLE, NR_PAGEFLAGS, PAGE_DTYPE, PAGE_MAPCOUNT_RESET,
    PAGE_TYPE_BASE, PB_migratetype_mask, PB_migrate_skip, PG_active, PG_arch_1, PG_arch_2,
    PG_buddy, PG_dirty, PG_error, PG_guard, PG_head, PG_hwpoison, PG_locked, PG_lru,
    PG_mappedtodisk, PG_mlocked, PG_offline, PG_owner_priv_1, PG_private, PG_private_2,
    PG_reclaim, PG_referenced, PG_reserved, PG_slab, PG_swapbacked, PG_table, PG_uncached,
    PG_unevictable, PG_uptodate, PG_vmemmap_self_hosted, PG_waiters, PG_workingset,
    PG_writeback, SECTION_HAS_MEM_MAP, SECTION_IS_EARLY, SECTION_IS_ONLINE,
    SECTION_MARKED_PRESENT, SECTION_TAINT_ZONE_DEVICE,
)
from hotmem.errors import HotplugError

__all__ = [
    "PAGE_DTYPE", "MemSections",
    "SECTION_MARKED_PRESENT", "SECTION_HAS_MEM_MAP", "SECTION_IS_ONLINE", "SECTION_IS_EARLY",
    "SECTION_TAINT_ZONE_DEVICE",
    "PG_locked", "PG_referenced", "PG_uptodate", "PG_dirty", "PG_lru", "PG_active",
    "PG_workingset", "PG_waiters", "PG_error", "PG_slab", "PG_owner_priv_1", "PG_arch_1",
    "PG_reserved", "PG_private", "PG_private_2", "PG_writeback", "PG_head", "PG_mappedtodisk",
    "PG_reclaim", "PG_swapbacked", "PG_unevictable", "PG_mlocked", "PG_uncached", "PG_hwpoison",
    "PG_arch_2", "NR_PAGEFLAGS", "PG_vmemmap_self_hosted",
    "PAGE_TYPE_BASE", "PAGE_MAPCOUNT_RESET", "PG_buddy", "PG_offline", "PG_table", "PG_guard",
    "MIGRATE_UNMOVABLE", "MIGRATE_MOVABLE", "MIGRATE_RECLAIMABLE", "MIGRATE_PCPTYPES",
    "MIGRATE_HIGHATOMIC", "MIGRATE_ISOLATE", "MIGRATE_TYPES", "PB_migratetype_mask",
    "PB_migrate_skip",
]

def _einval(msg):
    return HotplugError(errno.EINVAL, msg)


class MemSections:
    """The SPARSEMEM_EXTREME ``mem_section`` table with its struct page arrays (Linux 6.1).

    ``nodes_pgshift``/``zones_pgshift``/``zones_width`` give where page->flags keeps the node and
    zone (include/linux/page-flags-layout.h); ``page_zoneid`` is page_zone_id().
    """

    def __init__(self, nr_section_roots, sections_per_root, pfn_section_shift, pageblock_order,
                 nodes_pgshift, zones_pgshift, zones_width, pfn_subsection_shift=9):
        if pageblock_order > pfn_section_shift or sections_per_root <= 0 or nr_section_roots <= 0:
            raise _einval(f"bad mem_section geometry: roots={nr_section_roots} "
                          f"per_root={sections_per_root} pageblock_order={pageblock_order}")
        self.nr_section_roots = int(nr_section_roots)
        self.sections_per_root = int(sections_per_root)
        self.pfn_section_shift = int(pfn_section_shift)
        self.pageblock_order = int(pageblock_order)
        self.nodes_pgshift = int(nodes_pgshift)
        self.zones_pgshift = int(zones_pgshift)
        self.zones_width = int(zones_width)
        self.pfn_subsection_shift = int(min(pfn_subsection_shift, pfn_section_shift))
        self.subsections_per_section = 1 << (self.pfn_section_shift - self.pfn_subsection_shift)
        self.subsection_map_words = (self.subsections_per_section + 63) // 64   # BITS_TO_LONGS
        self.pages_per_section = 1 << self.pfn_section_shift
        self.pageblocks_per_section = 1 << (self.pfn_section_shift - self.pageblock_order)
        self.nr_mem_sections = self.nr_section_roots * self.sections_per_root
        # root_nr -> [section_mem_map u64[], subsection_map (list of ints: the whole bitmap),
        #             has_usage u8[], usemap u8[][]]
        self._roots = {}
        self._memmap = {}  # section_nr -> np.ndarray(PAGE_DTYPE)

    # -- sections --------------------------------------------------------------------------
    def _check_nr(self, nr):
        if not 0 <= nr < self.nr_mem_sections:
            raise _einval(f"section {nr} out of range (NR_MEM_SECTIONS {self.nr_mem_sections})")

    def _root(self, nr):
        self._check_nr(nr)
        root = self._roots.get(nr // self.sections_per_root)
        if root is None:
            raise _einval(f"section {nr}: mem_section root {nr // self.sections_per_root} "
                          "not allocated")
        return root, nr % self.sections_per_root

    def sparse_index_init(self, section_nr):
        """mm/sparse.c:sparse_index_init (6.1): allocate the root holding ``section_nr`` if missing.

        Returns True when a root page was allocated (the kernel's kzalloc_node of one page)."""
        self._check_nr(section_nr)
        r = section_nr // self.sections_per_root
        if r in self._roots:
            return False
        n = self.sections_per_root
        self._roots[r] = [np.zeros(n, np.uint64), [0] * n, np.zeros(n, np.uint8),
                          np.zeros((n, self.pageblocks_per_section), np.uint8)]
        return True

    def root_allocated(self, root_nr):
        return root_nr in self._roots

    def nr_roots_allocated(self):
        return len(self._roots)

    def section_mem_map(self, nr):
        """The flag bits of ``mem_section[nr].section_mem_map`` (0 when its root is missing)."""
        self._check_nr(nr)
        root = self._roots.get(nr // self.sections_per_root)
        return 0 if root is None else int(root[0][nr % self.sections_per_root])

    def set_section_flags(self, nr, mask):
        root, i = self._root(nr)
        root[0][i] |= np.uint64(mask)

    def clear_section_flags(self, nr, mask):
        root, i = self._root(nr)
        root[0][i] &= ~np.uint64(mask)

    def section_online(self, nr):
        return bool(self.section_mem_map(nr) & SECTION_IS_ONLINE)

    def pfn_section_valid(self, pfn):
        """include/linux/mmzone.h:pfn_section_valid: pfn's subsection is in the subsection map."""
        nr = pfn >> self.pfn_section_shift
        idx = (pfn & (self.pages_per_section - 1)) >> self.pfn_subsection_shift
        return bool(self.subsection_map(nr) >> idx & 1)

    def pfn_to_online_page(self, pfn):
        """mm/memory_hotplug.c:pfn_to_online_page (6.1, no ZONE_DEVICE sections): True when pfn
        lies in an online section, in a present subsection, and has a struct page."""
        if pfn < 0 or (pfn >> self.pfn_section_shift) >= self.nr_mem_sections:
            return False
        nr = pfn >> self.pfn_section_shift
        if not self.section_mem_map(nr) & SECTION_IS_ONLINE or not self.has_usage(nr):
            return False
        return self.pfn_section_valid(pfn) and nr in self._memmap

    def present_sections(self):
        """Section numbers with SECTION_MARKED_PRESENT, ascending."""
        out = []
        for r in sorted(self._roots):
            flags = self._roots[r][0]
            for i in np.flatnonzero(flags & np.uint64(SECTION_MARKED_PRESENT)):
                out.append(r * self.sections_per_root + int(i))
        return out

    # -- mem_section_usage ---------------------------------------------------------------------
    def has_usage(self, nr):
        self._check_nr(nr)
        root = self._roots.get(nr // self.sections_per_root)
        return bool(root is not None and root[2][nr % self.sections_per_root])

    def alloc_usage(self, nr):
        """section_activate's kzalloc of ``mem_section_usage``: empty subsection map and usemap."""
        root, i = self._root(nr)
        if root[2][i]:
            raise HotplugError(errno.EEXIST, f"section {nr} already has a mem_section_usage")
        root[2][i] = 1
        root[1][i] = 0
        root[3][i, :] = 0

    def free_usage(self, nr):
        root, i = self._root(nr)
        if not root[2][i]:
            raise _einval(f"section {nr} has no mem_section_usage to free")
        root[2][i] = 0
        root[1][i] = 0
        root[3][i, :] = 0

    def subsection_map(self, nr):
        """``mem_section[nr].usage->subsection_map`` as one int: bit i = subsection i (all
        SUBSECTIONS_PER_SECTION bits, however many words the bitmap takes)."""
        self._check_nr(nr)
        root = self._roots.get(nr // self.sections_per_root)
        return 0 if root is None else root[1][nr % self.sections_per_root]

    def set_subsection_map(self, nr, value):
        """Store ``value`` (an int of up to BITS_TO_LONGS(SUBSECTIONS_PER_SECTION) * 64 bits)
        as the section's subsection bitmap."""
        root, i = self._root(nr)
        if not root[2][i]:
            raise _einval(f"section {nr} has no mem_section_usage")
        value = operator.index(value)
        words = self.subsection_map_words
        if value < 0 or value >> (64 * words):
            raise _einval(f"section {nr}: subsection map {value:#x} does not fit "
                          f"{words * 64} bits ({self.subsections_per_section} subsections)")
        root[1][i] = value

    # -- memmap --------------------------------------------------------------------------------
    def has_memmap(self, nr):
        return nr in self._memmap

    def alloc_memmap(self, nr):
        """Give section ``nr`` its struct page array (zero-filled, as the model's stand-in for
        the uninitialised pages populate_section_memmap maps)."""
        self._root(nr)
        if nr in self._memmap:
            raise HotplugError(errno.EEXIST, f"section {nr} already has a memmap")
        self._memmap[nr] = np.zeros(self.pages_per_section, PAGE_DTYPE)

    def free_memmap(self, nr):
        self._check_nr(nr)
        if nr not in self._memmap:
            raise _einval(f"section {nr} has no memmap to free")
        del self._memmap[nr]

    def memmap(self, nr):
        """The struct pages of section ``nr`` (a live numpy view), or None."""
        return self._memmap.get(nr)

    def memmap_sections(self):
        return sorted(self._memmap)

    # -- struct page access --------------------------------------------------------------------
    def pfn_valid(self, pfn):
        return pfn >= 0 and (pfn >> self.pfn_section_shift) in self._memmap

    def _page_array(self, pfn):
        arr = self._memmap.get(pfn >> self.pfn_section_shift) if pfn >= 0 else None
        if arr is None:
            raise _einval(f"pfn {pfn:#x} has no struct page (section {pfn >> self.pfn_section_shift} "
                          "has no memmap)")
        return arr, pfn & (self.pages_per_section - 1)

    def _check_range(self, start_pfn, nr_pages):
        if nr_pages < 0 or start_pfn < 0:
            raise _einval(f"bad pfn range {start_pfn:#x}+{nr_pages}")
        s = start_pfn >> self.pfn_section_shift
        e = (start_pfn + nr_pages - 1) >> self.pfn_section_shift if nr_pages else s - 1
        for nr in range(s, e + 1):
            if nr not in self._memmap:
                raise _einval(f"pfn range {start_pfn:#x}-{start_pfn + nr_pages - 1:#x}: "
                              f"section {nr} has no memmap")

    def _chunks(self, start_pfn, nr_pages):
        pfn, end = start_pfn, start_pfn + nr_pages
        while pfn < end:
            nr = pfn >> self.pfn_section_shift
            off = pfn & (self.pages_per_section - 1)
            n = min(end - pfn, self.pages_per_section - off)
            yield self._memmap[nr], off, n, pfn
            pfn += n

    def page(self, pfn):
        """(flags, private, _refcount, page_type) of ``pfn``'s struct page."""
        arr, i = self._page_array(pfn)
        rec = arr[i]
        return (int(rec["flags"]), int(rec["private"]), int(rec["_refcount"]), int(rec["page_type"]))

    def _get(self, pfn, field):
        arr, i = self._page_array(pfn)
        return int(arr[field][i])

    def _set(self, pfn, field, value):
        arr, i = self._page_array(pfn)
        arr[field][i] = value

    def page_flags(self, pfn):
        return self._get(pfn, "flags")

    def set_page_flags(self, pfn, value):
        self._set(pfn, "flags", value)

    def page_private(self, pfn):
        return self._get(pfn, "private")

    def set_page_private(self, pfn, value):
        self._set(pfn, "private", value)

    def page_refcount(self, pfn):
        return self._get(pfn, "_refcount")

    def set_page_refcount(self, pfn, value):
        self._set(pfn, "_refcount", value)

    def page_type(self, pfn):
        return self._get(pfn, "page_type")

    def set_page_type(self, pfn, value):
        self._set(pfn, "page_type", value)

    def page_zonenum(self, pfn):
        """include/linux/mm.h:page_zonenum."""
        return (self.page_flags(pfn) >> self.zones_pgshift) & ((1 << self.zones_width) - 1)

    def page_to_nid(self, pfn):
        """include/linux/mm.h:page_to_nid."""
        return self.page_flags(pfn) >> self.nodes_pgshift

    def page_zoneid(self, pfn):
        """include/linux/mm.h:page_zone_id: node and zone bits as one number."""
        return self.page_flags(pfn) >> self.zones_pgshift

    def set_page_flag_range(self, start_pfn, nr_pages, bit):
        """__SetPageX on every page of [start_pfn, start_pfn + nr_pages)."""
        self._check_range(start_pfn, nr_pages)
        m = np.uint64(1 << bit)
        for arr, off, n, _ in self._chunks(start_pfn, nr_pages):
            arr["flags"][off:off + n] |= m

    def clear_page_flag_range(self, start_pfn, nr_pages, bit):
        """__ClearPageX on every page of [start_pfn, start_pfn + nr_pages)."""
        self._check_range(start_pfn, nr_pages)
        m = ~np.uint64(1 << bit)
        for arr, off, n, _ in self._chunks(start_pfn, nr_pages):
            arr["flags"][off:off + n] &= m

    def set_page_refcount_range(self, start_pfn, nr_pages, value):
        self._check_range(start_pfn, nr_pages)
        for arr, off, n, _ in self._chunks(start_pfn, nr_pages):
            arr["_refcount"][off:off + n] = value

    # -- pageblock flags (usemap) --------------------------------------------------------------
    def _usemap(self, pfn):
        nr = pfn >> self.pfn_section_shift if pfn >= 0 else -1
        self._check_nr(nr)
        root = self._roots.get(nr // self.sections_per_root)
        i = nr % self.sections_per_root
        if root is None or not root[2][i]:
            raise _einval(f"pfn {pfn:#x}: section {nr} has no pageblock flags (no usage)")
        return root[3], i, (pfn & (self.pages_per_section - 1)) >> self.pageblock_order

    def get_pageblock_migratetype(self, pfn):
        """mm/page_alloc.c:get_pfnblock_flags_mask(MIGRATETYPE_MASK) of pfn's pageblock."""
        usemap, i, b = self._usemap(pfn)
        return int(usemap[i, b]) & PB_migratetype_mask

    def set_pageblock_migratetype(self, pfn, migratetype):
        """mm/page_alloc.c:set_pageblock_migratetype."""
        if not 0 <= migratetype < MIGRATE_TYPES:
            raise _einval(f"migratetype {migratetype} out of range")
        usemap, i, b = self._usemap(pfn)
        usemap[i, b] = (int(usemap[i, b]) & ~PB_migratetype_mask) | migratetype

    def get_pageblock_skip(self, pfn):
        usemap, i, b = self._usemap(pfn)
        return bool(usemap[i, b] & PB_migrate_skip)

    # -- initialisation ------------------------------------------------------------------------
    def memmap_init_range(self, start_pfn, nr_pages, nid, zone, migratetype):
        """mm/page_alloc.c:memmap_init_range (6.1) in the MEMINIT_HOTPLUG context.

        Every page: __init_single_page (zeroed, zone/node links, refcount 1, mapcount reset) and
        PG_reserved; every pageblock-aligned pfn: set_pageblock_migratetype."""
        if not 0 <= migratetype < MIGRATE_TYPES:
            raise _einval(f"migratetype {migratetype} out of range")
        if nid < 0 or nid >= 1 << (64 - self.nodes_pgshift) or not 0 <= zone < 1 << self.zones_width:
            raise _einval(f"bad node {nid} / zone {zone}")
        self._check_range(start_pfn, nr_pages)
        pb_mask = (1 << self.pageblock_order) - 1
        first = (start_pfn + pb_mask) & ~pb_mask
        for pfn in range(first, start_pfn + nr_pages, 1 << self.pageblock_order):
            self._usemap(pfn)  # every aligned pageblock needs its usage map
        flags = np.uint64((nid << self.nodes_pgshift) | (zone << self.zones_pgshift)
                          | (1 << PG_reserved))
        for arr, off, n, _ in self._chunks(start_pfn, nr_pages):
            seg = arr[off:off + n]
            seg["flags"] = flags
            seg["private"] = 0
            seg["_refcount"] = 1
            seg["page_type"] = PAGE_MAPCOUNT_RESET
        for pfn in range(first, start_pfn + nr_pages, 1 << self.pageblock_order):
            self.set_pageblock_migratetype(pfn, migratetype)

    # -- comparison ----------------------------------------------------------------------------
    def state(self):
        """A canonical snapshot, equal between backends when their states are equal."""
        sections = {}
        for r in sorted(self._roots):
            flags, subsec, usage, usemap = self._roots[r]
            for i in range(self.sections_per_root):
                if flags[i] or subsec[i] or usage[i]:
                    sections[r * self.sections_per_root + i] = (
                        int(flags[i]), int(subsec[i]), int(usage[i]), bytes(usemap[i]))
        memmaps = {nr: self._memmap[nr].tobytes() for nr in sorted(self._memmap)}
        return {"roots": sorted(self._roots), "sections": sections, "memmaps": memmaps}
