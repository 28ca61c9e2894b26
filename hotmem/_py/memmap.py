"""Pure-Python twin of hotmem/_cy/memmap.pxi: the sparse ``mem_section`` table and struct pages.

Models, for Linux 6.1 with CONFIG_SPARSEMEM_EXTREME + CONFIG_SPARSEMEM_VMEMMAP:
- ``mem_section[NR_SECTION_ROOTS][SECTIONS_PER_ROOT]`` (include/linux/mmzone.h): roots are allocated
  on demand (mm/sparse.c:sparse_index_init) and never freed;
- per section the ``section_mem_map`` flag bits, the ``mem_section_usage`` (subsection_map and the
  pageblock flags, allocated by section_activate) and the section's struct page array (the memmap);
  the subsection_map is the kernel's DECLARE_BITMAP(subsection_map, SUBSECTIONS_PER_SECTION), kept
  and handed out as one int of all its bits (64 on x86_64 and arm64 4K/16K, 256 on arm64 64K);
- ``struct page`` as a record of what the model needs (``PAGE_DTYPE``): the kernel accounts
  sizeof(struct page) bytes per page while the model stores 24 -- or fewer: a section's struct
  pages are held by chunk of ``1 << chunk_shift`` pages (at least a MAX_ORDER - 1 buddy block),
  each chunk either private or a reference to an interned pattern (one record repeated, or a
  buddy head and its tails, ...), copied on the first write that breaks it and shared again
  where the kernel's state becomes regular (memmap_init_range, free of whole blocks, offline).
  No reader can tell the forms apart; ``struct_page_storage="flat"`` keeps every section
  materialised in one array (the differential tests' reference);
- mm/page_alloc.c:memmap_init_range / __init_single_page for the hotplug context.
"""
import errno
import operator
import os

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
from hotmem.boundary import INT64_MAX, core_int
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


def _storage_is_flat(struct_page_storage):
    """``struct_page_storage``: "pattern" (default) or "flat" (every section materialised);
    None reads $HOTMEM_STRUCT_PAGE_STORAGE."""
    if struct_page_storage is None:
        struct_page_storage = os.environ.get("HOTMEM_STRUCT_PAGE_STORAGE") or "pattern"
    if struct_page_storage not in ("pattern", "flat"):
        raise _einval(f"struct_page_storage {struct_page_storage!r}: 'pattern' or 'flat'")
    return struct_page_storage == "flat"


def _min_period(a):
    """The smallest power-of-two period of the record array ``a`` (len(a) when none shorter)."""
    n, p = len(a), 1
    while p < n:
        if (a.reshape(n // p, p) == a[:p]).all():
            return p
        p <<= 1
    return n


_PATTERN_BUF = 64   # longest pattern a range update rewrites in place


class MemSections:
    """The SPARSEMEM_EXTREME ``mem_section`` table with its struct page arrays (Linux 6.1).

    ``nodes_pgshift``/``zones_pgshift``/``zones_width`` give where page->flags keeps the node and
    zone (include/linux/page-flags-layout.h); ``page_zoneid`` is page_zone_id().
    """

    def __init__(self, nr_section_roots, sections_per_root, pfn_section_shift, pageblock_order,
                 nodes_pgshift, zones_pgshift, zones_width, pfn_subsection_shift=9,
                 chunk_shift=None, struct_page_storage=None):
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
        if chunk_shift is None:
            chunk_shift = pfn_section_shift
        if not pageblock_order <= chunk_shift <= pfn_section_shift:
            raise _einval(f"struct page chunk shift {chunk_shift} outside "
                          f"[{pageblock_order}, {pfn_section_shift}]")
        self.chunk_shift = int(chunk_shift)
        self.chunk_pages = 1 << self.chunk_shift
        self.chunks_per_section = 1 << (self.pfn_section_shift - self.chunk_shift)
        self.flat = _storage_is_flat(struct_page_storage)
        # key (a chunk's shortest period, as bytes) -> [read-only chunk array, references, key]
        self._interned = {}
        # root_nr -> [section_mem_map u64[], subsection_map (list of ints: the whole bitmap),
        #             has_usage u8[], usemap u8[][]]
        self._roots = {}
        # section_nr -> np.ndarray(PAGE_DTYPE) of the whole section (flat form), or a list with
        # an item per chunk: a private np.ndarray, or the bytes key of an interned chunk
        self._memmap = {}

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

    # -- pattern storage -----------------------------------------------------------------------
    def _share(self, recs):
        """Intern the chunk repeating the records ``recs`` (a power-of-two count dividing
        chunk_pages); one more reference to it. Returns its key."""
        recs = recs[:_min_period(recs)]
        key = recs.tobytes()
        ent = self._interned.get(key)
        if ent is None:
            arr = np.tile(recs, self.chunk_pages // len(recs))
            arr.flags.writeable = False
            ent = self._interned[key] = [arr, 0, key]
        ent[1] += 1
        return ent[2]            # the interned key object: sections share it, not copies

    def _unshare(self, key):
        ent = self._interned[key]
        ent[1] -= 1
        if not ent[1]:
            del self._interned[key]

    def _set_chunk(self, nr, ci, recs):
        """Chunk ci of section nr := ``recs`` repeated: shared, or written in the flat form."""
        item = self._memmap[nr]
        if not isinstance(item, list):
            c = self.chunk_pages
            item[ci * c:(ci + 1) * c] = np.tile(recs, c // len(recs))
            return
        key = self._share(recs)
        if isinstance(item[ci], bytes):
            self._unshare(item[ci])
        item[ci] = key

    def _chunk_of(self, item, ci):
        c = self.chunk_pages
        if not isinstance(item, list):
            return item[ci * c:(ci + 1) * c]
        x = item[ci]
        return self._interned[x][0] if isinstance(x, bytes) else x

    def _chunk(self, pfn):
        """The struct pages of ``pfn``'s chunk, for READING (maybe a shared, read-only
        pattern), or None without a memmap; index it with pfn & (chunk_pages - 1)."""
        item = self._memmap.get(pfn >> self.pfn_section_shift) if pfn >= 0 else None
        if item is None:
            return None
        return self._chunk_of(item, (pfn & (self.pages_per_section - 1)) >> self.chunk_shift)

    def _chunk_w(self, pfn):
        """The struct pages of ``pfn``'s chunk for WRITING (copied from its pattern first)."""
        nr = pfn >> self.pfn_section_shift
        item = self._memmap.get(nr) if pfn >= 0 else None
        if item is None:
            return None
        ci = (pfn & (self.pages_per_section - 1)) >> self.chunk_shift
        if isinstance(item, list) and isinstance(item[ci], bytes):
            key = item[ci]
            item[ci] = self._interned[key][0].copy()
            self._unshare(key)
        return self._chunk_of(item, ci)

    def _chunk_key(self, pfn):
        """The interned pattern (its key) that pfn's chunk shares, or None (a private chunk, flat
        storage, no memmap)."""
        if self.flat or pfn < 0:
            return None
        item = self._memmap.get(pfn >> self.pfn_section_shift)
        if not isinstance(item, list):
            return None
        x = item[(pfn & (self.pages_per_section - 1)) >> self.chunk_shift]
        return x if isinstance(x, bytes) else None

    def _chunk_share(self, pfn, key):
        """pfn's chunk, shared now (_chunk_key not None), := the interned pattern ``key``, O(1).
        False, nothing changed, when ``key`` is no longer interned."""
        ent = self._interned.get(key)
        if ent is None:
            return False
        item = self._memmap[pfn >> self.pfn_section_shift]
        ci = (pfn & (self.pages_per_section - 1)) >> self.chunk_shift
        ent[1] += 1
        self._unshare(item[ci])
        item[ci] = ent[2]
        return True

    def same_run(self, pfn, limit):
        """The struct pages from ``pfn`` on (1 to ``limit``, within its chunk of 1 << chunk_shift
        pages) with the same record as pfn's; 1 without a memmap."""
        a = self._chunk(pfn)
        if a is None or limit <= 1:
            return 1
        i = pfn & (self.chunk_pages - 1)
        seg = a[i:i + min(self.chunk_pages - i, limit)]
        diff = np.flatnonzero(seg != seg[0])
        return int(diff[0]) if len(diff) else len(seg)

    def fold_range(self, start_pfn, nr_pages):
        """Share again the private chunks wholly inside the range (storage only: nothing a
        reader can see changes)."""
        self._check_range(start_pfn, nr_pages)
        if self.flat:
            return
        c = self.chunk_pages
        pfn = (start_pfn + c - 1) & ~(c - 1)
        while pfn + c <= start_pfn + nr_pages:
            nr = pfn >> self.pfn_section_shift
            item = self._memmap[nr]
            ci = (pfn & (self.pages_per_section - 1)) >> self.chunk_shift
            if isinstance(item, list) and not isinstance(item[ci], bytes):
                self._set_chunk(nr, ci, item[ci])
            pfn += c

    def section_set_pattern(self, nr, records):
        """Every struct page of section nr := ``records`` (PAGE_DTYPE, a power of two <=
        chunk_pages of them) repeated, without a copy of the section."""
        recs = np.ascontiguousarray(records, dtype=PAGE_DTYPE)
        p = len(recs)
        if p < 1 or p > self.chunk_pages or p & (p - 1):
            raise _einval(f"pattern period {p} is not a power of two <= {self.chunk_pages}")
        self._root(nr)
        if nr not in self._memmap:
            raise _einval(f"section {nr} has no memmap")
        recs = recs.copy()
        if not self.flat and not isinstance(self._memmap[nr], list):
            self._memmap[nr] = [None] * self.chunks_per_section     # leave the flat form
        for ci in range(self.chunks_per_section):
            self._set_chunk(nr, ci, recs)

    def section_is_pattern(self, nr):
        self._check_nr(nr)
        item = self._memmap.get(nr)
        return isinstance(item, list) and all(isinstance(x, bytes) for x in item)

    def struct_page_bytes(self):
        """Bytes the model holds for struct pages: private arrays and interned patterns."""
        n = 0
        for item in self._memmap.values():
            if isinstance(item, list):
                n += sum(x.nbytes for x in item if not isinstance(x, bytes))
            else:
                n += item.nbytes
        return n + sum(e[0].nbytes + len(e[2]) for e in self._interned.values())

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
        the uninitialised pages populate_section_memmap maps): the all-zero pattern."""
        self._root(nr)
        if nr in self._memmap:
            raise HotplugError(errno.EEXIST, f"section {nr} already has a memmap")
        if self.flat:
            self._memmap[nr] = np.zeros(self.pages_per_section, PAGE_DTYPE)
            return
        self._memmap[nr] = [None] * self.chunks_per_section
        zero = np.zeros(1, PAGE_DTYPE)
        for ci in range(self.chunks_per_section):
            self._set_chunk(nr, ci, zero)

    def free_memmap(self, nr):
        self._check_nr(nr)
        if nr not in self._memmap:
            raise _einval(f"section {nr} has no memmap to free")
        item = self._memmap.pop(nr)
        if isinstance(item, list):
            for x in item:
                if isinstance(x, bytes):
                    self._unshare(x)

    def _expand(self, item):
        return np.concatenate([self._chunk_of(item, ci) for ci in range(self.chunks_per_section)])

    def memmap(self, nr):
        """The struct pages of section ``nr`` for reading (None without a memmap): the live
        array of a materialised section, else a read-only expansion of its patterns."""
        item = self._memmap.get(nr)
        if item is None or not isinstance(item, list):
            return item
        arr = self._expand(item)
        arr.flags.writeable = False
        return arr

    def memmap_w(self, nr):
        """The struct pages of section ``nr`` as a live, writable numpy array (the section is
        materialised: flat form until a whole-section pattern replaces it), or None."""
        item = self._memmap.get(nr)
        if item is None or not isinstance(item, list):
            return item
        arr = self._expand(item)
        for x in item:
            if isinstance(x, bytes):
                self._unshare(x)
        self._memmap[nr] = arr
        return arr

    def memmap_sections(self):
        return sorted(self._memmap)

    # -- struct page access --------------------------------------------------------------------
    def pfn_valid(self, pfn):
        """include/linux/mmzone.h:pfn_valid (a non-integer is EINVAL, as in the compiled core)."""
        pfn = core_int(pfn, "pfn_valid pfn")
        return 0 <= pfn <= INT64_MAX and (pfn >> self.pfn_section_shift) in self._memmap

    def _page_array(self, pfn, write=False):
        arr = self._chunk_w(pfn) if write else self._chunk(pfn)
        if arr is None:
            raise _einval(f"pfn {pfn:#x} has no struct page (section {pfn >> self.pfn_section_shift} "
                          "has no memmap)")
        return arr, pfn & (self.chunk_pages - 1)

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
        """(chunk array for reading, offset, count, pfn) over the range, chunk by chunk."""
        pfn, end = start_pfn, start_pfn + nr_pages
        while pfn < end:
            off = pfn & (self.chunk_pages - 1)
            n = min(end - pfn, self.chunk_pages - off)
            yield self._chunk(pfn), off, n, pfn
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
        arr, i = self._page_array(pfn, write=True)
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

    def _update_range(self, start_pfn, nr_pages, update):
        """``update(records)`` in place on every page of the range; a shared chunk wholly
        inside it gets the updated pattern."""
        for arr, off, n, pfn in self._chunks(start_pfn, nr_pages):
            nr = pfn >> self.pfn_section_shift
            item = self._memmap[nr]
            ci = (pfn & (self.pages_per_section - 1)) >> self.chunk_shift
            if n == self.chunk_pages and isinstance(item, list) and isinstance(item[ci], bytes):
                p = _min_period(arr)
                if p <= _PATTERN_BUF:
                    recs = arr[:p].copy()
                    update(recs)
                    self._set_chunk(nr, ci, recs)
                    continue
            update(self._chunk_w(pfn)[off:off + n])

    def set_page_flag_range(self, start_pfn, nr_pages, bit):
        """__SetPageX on every page of [start_pfn, start_pfn + nr_pages)."""
        self._check_range(start_pfn, nr_pages)
        m = np.uint64(1 << bit)

        def update(seg):
            seg["flags"] |= m
        self._update_range(start_pfn, nr_pages, update)

    def clear_page_flag_range(self, start_pfn, nr_pages, bit):
        """__ClearPageX on every page of [start_pfn, start_pfn + nr_pages)."""
        self._check_range(start_pfn, nr_pages)
        m = ~np.uint64(1 << bit)

        def update(seg):
            seg["flags"] &= m
        self._update_range(start_pfn, nr_pages, update)

    def set_page_refcount_range(self, start_pfn, nr_pages, value):
        self._check_range(start_pfn, nr_pages)

        def update(seg):
            seg["_refcount"] = value
        self._update_range(start_pfn, nr_pages, update)

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
        rec = np.zeros(1, PAGE_DTYPE)
        rec["flags"] = (nid << self.nodes_pgshift) | (zone << self.zones_pgshift) | (1 << PG_reserved)
        rec["_refcount"] = 1
        rec["page_type"] = PAGE_MAPCOUNT_RESET
        pfn, end = start_pfn, start_pfn + nr_pages
        while pfn < end:
            nr = pfn >> self.pfn_section_shift
            if not pfn & (self.pages_per_section - 1) and end - pfn >= self.pages_per_section:
                self.section_set_pattern(nr, rec)             # a whole section: one pattern
                pfn += self.pages_per_section
                continue
            off = pfn & (self.chunk_pages - 1)
            n = min(end - pfn, self.chunk_pages - off)
            if n == self.chunk_pages:
                self._set_chunk(nr, (pfn & (self.pages_per_section - 1)) >> self.chunk_shift, rec)
            else:
                self._chunk_w(pfn)[off:off + n] = rec[0]
            pfn += n
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
        memmaps = {nr: self.memmap(nr).tobytes() for nr in sorted(self._memmap)}
        return {"roots": sorted(self._roots), "sections": sections, "memmaps": memmaps}
