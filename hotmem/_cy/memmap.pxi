# The sparse mem_section table and struct pages (compiled). Twin: hotmem/_py/memmap.py. The
# constants (and page_t, the struct page record) come from hotmem/defs.py / hotmem/defs.pxd.
from hotmem.defs import (
    PAGE_DTYPE, SECTION_MARKED_PRESENT, SECTION_HAS_MEM_MAP, SECTION_IS_ONLINE, SECTION_IS_EARLY,
    SECTION_TAINT_ZONE_DEVICE, PG_locked, PG_referenced, PG_uptodate, PG_dirty, PG_lru, PG_active,
    PG_workingset, PG_waiters, PG_error, PG_slab, PG_owner_priv_1, PG_arch_1, PG_reserved,
    PG_private, PG_private_2, PG_writeback, PG_head, PG_mappedtodisk, PG_reclaim, PG_swapbacked,
    PG_unevictable, PG_mlocked, PG_uncached, PG_hwpoison, PG_arch_2,
    NR_PAGEFLAGS, PG_vmemmap_self_hosted, PAGE_TYPE_BASE, PAGE_MAPCOUNT_RESET, PG_buddy,
    PG_offline, PG_table, PG_guard, MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE,
    MIGRATE_PCPTYPES, MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE, MIGRATE_TYPES, PB_migratetype_mask,
    PB_migrate_skip,
)
import operator as _operator

ctypedef struct mem_section_t:
    uint64_t section_mem_map
    # mem_section_usage.subsection_map, DECLARE_BITMAP(SUBSECTIONS_PER_SECTION): word 0 inline
    # (the whole map when a section has <= 64 subsections), words 1.. behind subsection_map_hi
    # (NULL then; per-root storage, like the usemaps, when there are more: arm64 64K has 256)
    uint64_t subsection_map
    uint64_t* subsection_map_hi
    uint8_t has_usage
    # the struct pages, by chunk of 1 << chunk_shift pages: a private array, or (chunk_priv 0)
    # an interned, shared chunk (a pattern: copy-on-write); NULL = no memmap
    page_t** chunks
    uint8_t* chunk_priv
    uint8_t* usemap


cdef inline object _einval(str msg):
    return HotplugError(_errno.EINVAL, msg)


cdef class MemSections:
    """The SPARSEMEM_EXTREME ``mem_section`` table with its struct page arrays (Linux 6.1).

    See hotmem/_py/memmap.py for the full description; this is the compiled twin.
    """
    cdef readonly int64_t nr_section_roots, sections_per_root, nr_mem_sections
    cdef readonly int pfn_section_shift, pageblock_order, nodes_pgshift, zones_pgshift, zones_width
    cdef readonly int pfn_subsection_shift, subsection_map_words
    cdef readonly int64_t pages_per_section, pageblocks_per_section, subsections_per_section
    cdef readonly int chunk_shift
    cdef readonly int64_t chunk_pages, chunks_per_section
    cdef readonly bint flat
    cdef mem_section_t** _roots
    cdef uint8_t** _usemaps
    cdef uint64_t** _subsec_hi
    # section nr -> its struct pages: one ndarray (flat form: every chunk private, in place), or
    # a list with an item per chunk: a private ndarray, or the bytes key of an interned chunk
    cdef dict _memmap
    cdef dict _interned      # key (the chunk's shortest period, as bytes) -> [ndarray, refs, key]
    cdef dict _edits         # (key, index in chunk, new record) -> key of the edited pattern
    # interned chunk data -> start of its tail run (the records equal to its last one), a small
    # cache for c_same_run; an entry is dropped when its chunk is no longer interned
    cdef page_t* _tail_ptr[_TAIL_CACHE]
    cdef int64_t _tail_start[_TAIL_CACHE]
    cdef int _tail_next

    def __cinit__(self, nr_section_roots, sections_per_root, pfn_section_shift, pageblock_order,
                  nodes_pgshift, zones_pgshift, zones_width, pfn_subsection_shift=9,
                  chunk_shift=None, struct_page_storage=None):
        cdef int t
        for t in range(_TAIL_CACHE):
            self._tail_ptr[t] = NULL
        self._tail_next = 0
        self._roots = NULL
        self._usemaps = NULL
        self._subsec_hi = NULL
        if pageblock_order > pfn_section_shift or sections_per_root <= 0 or nr_section_roots <= 0:
            raise _einval(f"bad mem_section geometry: roots={nr_section_roots} "
                          f"per_root={sections_per_root} pageblock_order={pageblock_order}")
        self.nr_section_roots = nr_section_roots
        self.sections_per_root = sections_per_root
        self.pfn_section_shift = pfn_section_shift
        self.pageblock_order = pageblock_order
        self.nodes_pgshift = nodes_pgshift
        self.zones_pgshift = zones_pgshift
        self.zones_width = zones_width
        self.pfn_subsection_shift = min(pfn_subsection_shift, pfn_section_shift)
        self.subsections_per_section = 1 << (pfn_section_shift - self.pfn_subsection_shift)
        self.subsection_map_words = <int> ((self.subsections_per_section + 63) // 64)  # BITS_TO_LONGS
        self.pages_per_section = 1 << pfn_section_shift
        self.pageblocks_per_section = 1 << (pfn_section_shift - pageblock_order)
        self.nr_mem_sections = self.nr_section_roots * self.sections_per_root
        if chunk_shift is None:
            chunk_shift = pfn_section_shift
        if not pageblock_order <= chunk_shift <= pfn_section_shift:
            raise _einval(f"struct page chunk shift {chunk_shift} outside "
                          f"[{pageblock_order}, {pfn_section_shift}]")
        self.chunk_shift = chunk_shift
        self.chunk_pages = 1 << chunk_shift
        self.chunks_per_section = 1 << (pfn_section_shift - chunk_shift)
        self.flat = _storage_is_flat(struct_page_storage)
        self._interned = {}
        self._edits = {}
        self._roots = <mem_section_t**> calloc(self.nr_section_roots, sizeof(mem_section_t*))
        self._usemaps = <uint8_t**> calloc(self.nr_section_roots, sizeof(uint8_t*))
        self._subsec_hi = <uint64_t**> calloc(self.nr_section_roots, sizeof(uint64_t*))
        if self._roots == NULL or self._usemaps == NULL or self._subsec_hi == NULL:
            raise MemoryError()
        self._memmap = {}

    def __dealloc__(self):
        cdef int64_t r, i
        if self._roots != NULL:
            for r in range(self.nr_section_roots):
                if self._roots[r] != NULL:
                    for i in range(self.sections_per_root):
                        free(self._roots[r][i].chunks)
                        free(self._roots[r][i].chunk_priv)
                    free(self._roots[r])
                    free(self._usemaps[r])
                    free(self._subsec_hi[r])
            free(self._roots)
            free(self._usemaps)
            free(self._subsec_hi)

    # -- C-level access for the other includes -------------------------------------------------
    cdef inline mem_section_t* __nr_to_section(self, int64_t nr) noexcept nogil:
        """include/linux/mmzone.h:__nr_to_section (NULL when out of range or root missing)."""
        if nr < 0 or nr >= self.nr_mem_sections:
            return NULL
        cdef mem_section_t* root = self._roots[nr // self.sections_per_root]
        if root == NULL:
            return NULL
        return &root[nr % self.sections_per_root]

    cdef inline page_t* pfn_to_page(self, int64_t pfn) noexcept nogil:
        """The struct page of ``pfn`` for READING (it may be a shared pattern record: never
        write through it, use pfn_to_page_w), or NULL when its section has no memmap.

        Pointer arithmetic from it stays valid within the pfn's chunk (1 << chunk_shift
        aligned pages, at least one MAX_ORDER - 1 buddy block)."""
        if pfn < 0:
            return NULL
        cdef mem_section_t* ms = self.__nr_to_section(pfn >> self.pfn_section_shift)
        if ms == NULL or ms.chunks == NULL:
            return NULL
        cdef int64_t off = pfn & (self.pages_per_section - 1)
        return ms.chunks[off >> self.chunk_shift] + (off & (self.chunk_pages - 1))

    cdef inline page_t* pfn_to_page_w(self, int64_t pfn) noexcept:
        """The struct page of ``pfn`` for WRITING: its chunk is made private first (copy on
        write). NULL when its section has no memmap. Valid until the next fold."""
        if pfn < 0:
            return NULL
        cdef int64_t nr = pfn >> self.pfn_section_shift
        cdef mem_section_t* ms = self.__nr_to_section(nr)
        if ms == NULL or ms.chunks == NULL:
            return NULL
        cdef int64_t off = pfn & (self.pages_per_section - 1)
        cdef int64_t ci = off >> self.chunk_shift
        if not ms.chunk_priv[ci]:
            if self._cow(nr, ms, ci) < 0:
                return NULL
        return ms.chunks[ci] + (off & (self.chunk_pages - 1))

    # -- pattern storage -----------------------------------------------------------------------
    cdef object _share(self, page_t* recs, int64_t p):
        """Intern the chunk that repeats recs[0:p] (p a power of two dividing chunk_pages);
        one more reference to it. Returns its key."""
        p = _min_period(recs, p)
        cdef bytes key = (<char*> recs)[:p * sizeof(page_t)]
        cdef list ent = self._interned.get(key)
        cdef cnp.ndarray arr
        if ent is None:
            arr = np.empty(self.chunk_pages, PAGE_DTYPE)
            _tile(<page_t*> cnp.PyArray_DATA(arr), self.chunk_pages, recs, p)
            arr.flags.writeable = False
            ent = [arr, 0, key]
            self._interned[key] = ent
        ent[1] += 1
        return ent[2]            # the interned key object: sections share it, not copies

    cdef void _unshare(self, object key):
        cdef list ent = self._interned[key]
        cdef page_t* data
        cdef int t
        ent[1] -= 1
        if ent[1] == 0:
            data = <page_t*> cnp.PyArray_DATA(ent[0])
            for t in range(_TAIL_CACHE):
                if self._tail_ptr[t] == data:
                    self._tail_ptr[t] = NULL
            del self._interned[key]

    cdef int64_t _chunk_tail(self, page_t* a) noexcept nogil:
        """Where the tail run of the interned chunk at ``a`` starts: a[k] == a[chunk_pages - 1]
        for every k from there on (cached)."""
        cdef int t
        cdef int64_t c = self.chunk_pages, k
        for t in range(_TAIL_CACHE):
            if self._tail_ptr[t] == a:
                return self._tail_start[t]
        k = c - 1
        while k > 0 and memcmp(&a[k - 1], &a[c - 1], sizeof(page_t)) == 0:
            k -= 1
        t = self._tail_next
        self._tail_next = (t + 1) % _TAIL_CACHE
        self._tail_ptr[t] = a
        self._tail_start[t] = k
        return k

    cdef int64_t c_same_run(self, int64_t pfn, int64_t limit) noexcept nogil:
        """How many struct pages from ``pfn`` on (1 to ``limit``, within pfn's chunk) hold the
        same record as pfn's: O(1) in the tail run of a shared chunk (a free MAX_ORDER - 1
        block's tails), else a compare of the records. 1 without a memmap."""
        cdef mem_section_t* ms = self.__nr_to_section(pfn >> self.pfn_section_shift) \
            if pfn >= 0 else NULL
        if ms == NULL or ms.chunks == NULL or limit <= 1:
            return 1
        cdef int64_t c = self.chunk_pages, off = pfn & (self.pages_per_section - 1)
        cdef int64_t ci = off >> self.chunk_shift, i = off & (c - 1), n = c - i, k = 1
        cdef page_t* a = ms.chunks[ci]
        if n > limit:
            n = limit
        if not ms.chunk_priv[ci] and i >= self._chunk_tail(a):
            return n
        while k < n and memcmp(&a[i + k], &a[i], sizeof(page_t)) == 0:
            k += 1
        return k

    def same_run(self, int64_t pfn, int64_t limit):
        """c_same_run: the struct pages from ``pfn`` on (at most ``limit``, within its chunk of
        1 << chunk_shift pages) with the same record as pfn's."""
        return self.c_same_run(pfn, limit)

    cdef inline page_t* _shared_data(self, object key):
        return <page_t*> cnp.PyArray_DATA(self._interned[key][0])

    cdef int _set_chunk(self, int64_t nr, mem_section_t* ms, int64_t ci, page_t* recs,
                        int64_t p) except -1:
        """Chunk ci of section nr := recs[0:p] repeated: shared, or written in place in the
        flat form."""
        cdef object item = self._memmap[nr]
        cdef list chunks
        if type(item) is not list:
            _tile(ms.chunks[ci], self.chunk_pages, recs, p)
            return 0
        chunks = item
        key = self._share(recs, p)
        if type(chunks[ci]) is bytes:
            self._unshare(chunks[ci])
        chunks[ci] = key
        ms.chunks[ci] = self._shared_data(key)
        ms.chunk_priv[ci] = 0
        return 0

    cdef int _cow(self, int64_t nr, mem_section_t* ms, int64_t ci) except -1:
        """Give chunk ci of section nr its own copy of the pattern it shares."""
        cdef list chunks = self._memmap[nr]
        cdef cnp.ndarray arr = np.empty(self.chunk_pages, PAGE_DTYPE)
        cdef object key = chunks[ci]
        memcpy(cnp.PyArray_DATA(arr), ms.chunks[ci], self.chunk_pages * sizeof(page_t))
        chunks[ci] = arr
        ms.chunks[ci] = <page_t*> cnp.PyArray_DATA(arr)
        ms.chunk_priv[ci] = 1
        self._unshare(key)
        return 0

    cdef int c_write_page(self, int64_t pfn, page_t* rec) except -1:
        """struct page of ``pfn`` := *rec. A shared chunk is not copied for it: the edited
        pattern is interned, and the edit remembered, so the same edit of the same pattern (one
        per chunk when a block of chunks changes alike: a buddy head taken off its free list)
        is a dict lookup. Private chunks and flat storage are written in place."""
        cdef int64_t nr = pfn >> self.pfn_section_shift
        cdef mem_section_t* ms = self.__nr_to_section(nr) if pfn >= 0 else NULL
        if ms == NULL or ms.chunks == NULL:
            raise _einval(f"pfn {pfn:#x} has no struct page")
        cdef int64_t off = pfn & (self.pages_per_section - 1)
        cdef int64_t ci = off >> self.chunk_shift, i = off & (self.chunk_pages - 1)
        if self.flat or ms.chunk_priv[ci]:
            ms.chunks[ci][i] = rec[0]
            return 0
        cdef list chunks = self._memmap[nr]
        cdef object key = chunks[ci]
        cdef tuple edit = (key, i, (<char*> rec)[:sizeof(page_t)])
        cdef object new = self._edits.get(edit)
        cdef cnp.ndarray buf
        if new is not None and new in self._interned:
            self._interned[new][1] += 1
            chunks[ci] = self._interned[new][2]
            ms.chunks[ci] = self._shared_data(new)
            self._unshare(key)
            return 0
        buf = np.empty(self.chunk_pages, PAGE_DTYPE)
        memcpy(cnp.PyArray_DATA(buf), ms.chunks[ci], self.chunk_pages * sizeof(page_t))
        (<page_t*> cnp.PyArray_DATA(buf))[i] = rec[0]
        self._set_chunk(nr, ms, ci, <page_t*> cnp.PyArray_DATA(buf), self.chunk_pages)
        if len(self._edits) >= 4096:
            self._edits.clear()
        self._edits[edit] = chunks[ci]
        return 0

    cdef int c_fold_range(self, int64_t start_pfn, int64_t nr_pages) except -1:
        """Share again every private chunk wholly inside [start_pfn, start_pfn + nr_pages)
        (chunked sections; nothing in flat storage). Invalidates write pointers into it."""
        cdef int64_t c = self.chunk_pages, pfn = (start_pfn + c - 1) & ~(c - 1)
        cdef int64_t end = start_pfn + nr_pages, nr, ci
        cdef mem_section_t* ms
        if self.flat:
            return 0
        while pfn + c <= end:
            nr = pfn >> self.pfn_section_shift
            ms = self.__nr_to_section(nr)
            if ms != NULL and ms.chunks != NULL and type(self._memmap[nr]) is list:
                ci = (pfn & (self.pages_per_section - 1)) >> self.chunk_shift
                if ms.chunk_priv[ci]:
                    self._set_chunk(nr, ms, ci, ms.chunks[ci], c)
            pfn += c
        return 0

    cdef object c_chunk_key(self, int64_t pfn):
        """The interned pattern (its key) that pfn's chunk shares, or None (a private chunk, flat
        storage, no memmap)."""
        if self.flat or pfn < 0:
            return None
        cdef int64_t nr = pfn >> self.pfn_section_shift
        cdef mem_section_t* ms = self.__nr_to_section(nr)
        if ms == NULL or ms.chunks == NULL:
            return None
        cdef int64_t ci = (pfn & (self.pages_per_section - 1)) >> self.chunk_shift
        cdef object item = self._memmap[nr]
        if ms.chunk_priv[ci] or type(item) is not list:
            return None
        return (<list> item)[ci]

    cdef bint c_chunk_share(self, int64_t pfn, object key) except -1:
        """pfn's chunk, shared now (c_chunk_key not None), := the interned pattern ``key``, O(1).
        False, nothing changed, when ``key`` is no longer interned."""
        cdef list ent = self._interned.get(key)
        if ent is None:
            return False
        cdef int64_t nr = pfn >> self.pfn_section_shift
        cdef mem_section_t* ms = self.__nr_to_section(nr)
        cdef int64_t ci = (pfn & (self.pages_per_section - 1)) >> self.chunk_shift
        cdef list chunks = self._memmap[nr]
        ent[1] += 1
        self._unshare(chunks[ci])
        chunks[ci] = ent[2]
        ms.chunks[ci] = self._shared_data(ent[2])
        ms.chunk_priv[ci] = 0
        return True

    cdef int64_t c_shared_run(self, int64_t pfn, int64_t nchunks, object key) except -1:
        """How many chunks from pfn's on (pfn chunk-aligned, at most ``nchunks``) share the
        interned pattern ``key`` (the object c_chunk_key returned: compared by identity)."""
        cdef int64_t n = 0, nr = -1, cur, ci
        cdef mem_section_t* ms = NULL
        cdef object item
        cdef list chunks = None
        if self.flat or pfn < 0 or key is None:
            return 0
        while n < nchunks:
            cur = (pfn + (n << self.chunk_shift)) >> self.pfn_section_shift
            if cur != nr:
                nr = cur
                ms = self.__nr_to_section(nr)
                if ms == NULL or ms.chunks == NULL:
                    break
                item = self._memmap[nr]
                if type(item) is not list:
                    break
                chunks = <list> item
            ci = ((pfn + (n << self.chunk_shift)) & (self.pages_per_section - 1)) \
                >> self.chunk_shift
            if ms.chunk_priv[ci] or chunks[ci] is not key:
                break
            n += 1
        return n

    cdef bint c_chunk_share_run(self, int64_t pfn, int64_t nchunks, object old_key,
                                object key) except -1:
        """c_chunk_share on the ``nchunks`` chunks from pfn's on, all sharing ``old_key`` now
        (c_shared_run), with the references counted once: the same end state as nchunks calls.
        False, nothing changed, when ``key`` is no longer interned."""
        cdef list ent = self._interned.get(key)
        if ent is None:
            return False
        if nchunks <= 0:
            return True
        cdef int64_t j, q, nr = -1, cur, ci
        cdef mem_section_t* ms = NULL
        cdef list chunks = None
        cdef object ikey = ent[2]
        cdef page_t* data = self._shared_data(ikey)
        cdef list old = self._interned[old_key]
        for j in range(nchunks):
            q = pfn + (j << self.chunk_shift)
            cur = q >> self.pfn_section_shift
            if cur != nr:
                nr = cur
                ms = self.__nr_to_section(nr)
                chunks = <list> self._memmap[nr]
            ci = (q & (self.pages_per_section - 1)) >> self.chunk_shift
            chunks[ci] = ikey
            ms.chunks[ci] = data
            ms.chunk_priv[ci] = 0
        ent[1] += nchunks
        old[1] -= nchunks - 1
        self._unshare(old_key)
        return True

    cdef int c_section_set_pattern(self, int64_t nr, page_t* recs, int64_t period) except -1:
        """Every struct page of section nr := recs[0:period] repeated (period a power of two
        <= chunk_pages), O(chunks) without a copy of the section. Flat storage writes it out."""
        if period < 1 or period > self.chunk_pages or period & (period - 1):
            raise _einval(f"pattern period {period} is not a power of two <= {self.chunk_pages}")
        cdef mem_section_t* ms = self._section(nr)
        if ms.chunks == NULL:
            raise _einval(f"section {nr} has no memmap")
        cdef int64_t ci, n = self.chunks_per_section, run = 0
        cdef object old = self._memmap[nr]          # alive until recs has been read
        cdef object key, prev, cur
        cdef list chunks
        cdef page_t* data
        if self.flat:
            for ci in range(n):
                self._set_chunk(nr, ms, ci, recs, period)
            return 0
        if type(old) is not list:
            self._memmap[nr] = [None] * n           # leave the flat form
        # as _set_chunk on every chunk, with the pattern interned once and the references of
        # each run of chunks sharing one old pattern dropped together
        chunks = self._memmap[nr]
        key = self._share(recs, period)
        data = self._shared_data(key)
        prev = None
        for ci in range(n):
            cur = chunks[ci]
            if type(cur) is bytes:
                if cur is prev:
                    run += 1
                else:
                    if run:
                        self._unshare_n(prev, run)
                    prev, run = cur, 1
            chunks[ci] = key
            ms.chunks[ci] = data
            ms.chunk_priv[ci] = 0
        if run:
            self._unshare_n(prev, run)
        if n > 1:
            self._interned[key][1] += n - 1
        return 0

    cdef void _unshare_n(self, object key, int64_t n):
        """_unshare ``n`` times."""
        if n > 1:
            self._interned[key][1] -= n - 1
        self._unshare(key)

    cdef bint c_section_is_pattern(self, int64_t nr) noexcept:
        """Section nr's struct pages are all shared patterns (none private)."""
        cdef mem_section_t* ms = self.__nr_to_section(nr)
        cdef int64_t ci
        if ms == NULL or ms.chunks == NULL:
            return False
        for ci in range(self.chunks_per_section):
            if ms.chunk_priv[ci]:
                return False
        return True

    def section_set_pattern(self, int64_t nr, records):
        """Python face of c_section_set_pattern: ``records`` a PAGE_DTYPE array."""
        cdef cnp.ndarray arr = np.ascontiguousarray(records, dtype=PAGE_DTYPE)
        self.c_section_set_pattern(nr, <page_t*> cnp.PyArray_DATA(arr), arr.shape[0])

    def section_is_pattern(self, int64_t nr):
        self._check_nr(nr)
        return self.c_section_is_pattern(nr)

    def fold_range(self, int64_t start_pfn, int64_t nr_pages):
        """Share again the private chunks wholly inside the range (storage only: nothing a
        reader can see changes)."""
        self._check_range(start_pfn, nr_pages)
        self.c_fold_range(start_pfn, nr_pages)

    def struct_page_bytes(self):
        """Bytes the model holds for struct pages: private arrays and interned patterns."""
        cdef int64_t n = 0
        for item in self._memmap.values():
            if type(item) is list:
                n += sum(x.nbytes for x in item if type(x) is not bytes)
            else:
                n += item.nbytes
        n += sum(e[0].nbytes + len(e[2]) for e in self._interned.values())
        return n

    cdef inline uint8_t* pageblock_flags_ptr(self, int64_t pfn) noexcept nogil:
        if pfn < 0:
            return NULL
        cdef mem_section_t* ms = self.__nr_to_section(pfn >> self.pfn_section_shift)
        if ms == NULL or not ms.has_usage:
            return NULL
        return &ms.usemap[(pfn & (self.pages_per_section - 1)) >> self.pageblock_order]

    cdef inline int c_get_pageblock_migratetype(self, int64_t pfn) noexcept nogil:
        cdef uint8_t* p = self.pageblock_flags_ptr(pfn)
        return -1 if p == NULL else (p[0] & D.PB_migratetype_mask)

    cdef inline void c_set_pageblock_migratetype(self, int64_t pfn, int mt) noexcept nogil:
        cdef uint8_t* p = self.pageblock_flags_ptr(pfn)
        if p != NULL:
            p[0] = (p[0] & ~D.PB_migratetype_mask) | mt

    cdef inline bint c_subsection_test(self, mem_section_t* ms, int64_t idx) noexcept nogil:
        """test_bit(idx, ms->usage->subsection_map): word 0 inline, the rest behind a pointer."""
        cdef uint64_t word = ms.subsection_map
        if idx >= 64:
            word = ms.subsection_map_hi[(idx >> 6) - 1]
        return (word >> (idx & 63)) & 1

    cdef object _subsection_int(self, mem_section_t* ms):
        """The whole subsection bitmap as one Python int (bit i = subsection i)."""
        cdef object v = ms.subsection_map
        cdef int w
        if ms.subsection_map_hi != NULL:
            for w in range(1, self.subsection_map_words):
                if ms.subsection_map_hi[w - 1]:
                    v |= (<object> ms.subsection_map_hi[w - 1]) << (64 * w)
        return v

    cdef inline bint _subsection_any(self, mem_section_t* ms) noexcept nogil:
        """!bitmap_empty(subsection_map)."""
        cdef int w
        if ms.subsection_map:
            return True
        if ms.subsection_map_hi != NULL:
            for w in range(self.subsection_map_words - 1):
                if ms.subsection_map_hi[w]:
                    return True
        return False

    cdef inline void _subsection_clear(self, mem_section_t* ms) noexcept nogil:
        ms.subsection_map = 0
        if ms.subsection_map_hi != NULL:
            memset(ms.subsection_map_hi, 0, (self.subsection_map_words - 1) * sizeof(uint64_t))

    cdef inline int c_page_zoneid(self, page_t* page) noexcept nogil:
        return <int> (page.flags >> self.zones_pgshift)

    cdef inline bint c_section_online(self, int64_t nr) noexcept nogil:
        cdef mem_section_t* ms = self.__nr_to_section(nr)
        return ms != NULL and (ms.section_mem_map & D.SECTION_IS_ONLINE) != 0

    cdef inline page_t* c_pfn_to_online_page(self, int64_t pfn) noexcept nogil:
        """mm/memory_hotplug.c:pfn_to_online_page (6.1, no ZONE_DEVICE sections)."""
        if pfn < 0:
            return NULL
        cdef mem_section_t* ms = self.__nr_to_section(pfn >> self.pfn_section_shift)
        if ms == NULL or not (ms.section_mem_map & D.SECTION_IS_ONLINE) or not ms.has_usage:
            return NULL
        cdef int64_t idx = (pfn & (self.pages_per_section - 1)) >> self.pfn_subsection_shift
        if not self.c_subsection_test(ms, idx) or ms.chunks == NULL:
            return NULL
        cdef int64_t off = pfn & (self.pages_per_section - 1)
        return ms.chunks[off >> self.chunk_shift] + (off & (self.chunk_pages - 1))

    def pfn_section_valid(self, int64_t pfn):
        """include/linux/mmzone.h:pfn_section_valid: pfn's subsection is in the subsection map."""
        cdef int64_t nr = pfn >> self.pfn_section_shift
        cdef int64_t idx = (pfn & (self.pages_per_section - 1)) >> self.pfn_subsection_shift
        self._check_nr(nr)
        cdef mem_section_t* ms = self.__nr_to_section(nr)
        return ms != NULL and self.c_subsection_test(ms, idx)

    def pfn_to_online_page(self, int64_t pfn):
        """mm/memory_hotplug.c:pfn_to_online_page (6.1, no ZONE_DEVICE sections): True when pfn
        lies in an online section, in a present subsection, and has a struct page."""
        return self.c_pfn_to_online_page(pfn) != NULL

    # -- sections --------------------------------------------------------------------------
    cdef void _check_nr(self, int64_t nr) except *:
        if nr < 0 or nr >= self.nr_mem_sections:
            raise _einval(f"section {nr} out of range (NR_MEM_SECTIONS {self.nr_mem_sections})")

    cdef mem_section_t* _section(self, int64_t nr) except NULL:
        self._check_nr(nr)
        cdef mem_section_t* ms = self.__nr_to_section(nr)
        if ms == NULL:
            raise _einval(f"section {nr}: mem_section root {nr // self.sections_per_root} "
                          "not allocated")
        return ms

    def sparse_index_init(self, int64_t section_nr):
        """mm/sparse.c:sparse_index_init (6.1): allocate the root holding ``section_nr`` if missing.

        Returns True when a root page was allocated (the kernel's kzalloc_node of one page)."""
        self._check_nr(section_nr)
        cdef int64_t r = section_nr // self.sections_per_root, i
        if self._roots[r] != NULL:
            return False
        cdef mem_section_t* root = <mem_section_t*> calloc(self.sections_per_root,
                                                           sizeof(mem_section_t))
        cdef uint8_t* usemaps = <uint8_t*> calloc(self.sections_per_root * self.pageblocks_per_section, 1)
        cdef int64_t hi = self.subsection_map_words - 1
        cdef uint64_t* subsec_hi = NULL
        if hi > 0:
            subsec_hi = <uint64_t*> calloc(self.sections_per_root * hi, sizeof(uint64_t))
        if root == NULL or usemaps == NULL or (hi > 0 and subsec_hi == NULL):
            free(root)
            free(usemaps)
            free(subsec_hi)
            raise MemoryError()
        for i in range(self.sections_per_root):
            root[i].usemap = &usemaps[i * self.pageblocks_per_section]
            root[i].subsection_map_hi = &subsec_hi[i * hi] if hi > 0 else NULL
        self._roots[r] = root
        self._usemaps[r] = usemaps
        self._subsec_hi[r] = subsec_hi
        return True

    def root_allocated(self, int64_t root_nr):
        return 0 <= root_nr < self.nr_section_roots and self._roots[root_nr] != NULL

    def nr_roots_allocated(self):
        cdef int64_t r, n = 0
        for r in range(self.nr_section_roots):
            if self._roots[r] != NULL:
                n += 1
        return n

    def section_mem_map(self, int64_t nr):
        """The flag bits of ``mem_section[nr].section_mem_map`` (0 when its root is missing)."""
        self._check_nr(nr)
        cdef mem_section_t* ms = self.__nr_to_section(nr)
        return 0 if ms == NULL else ms.section_mem_map

    def set_section_flags(self, int64_t nr, uint64_t mask):
        self._section(nr).section_mem_map |= mask

    def clear_section_flags(self, int64_t nr, uint64_t mask):
        cdef mem_section_t* ms = self._section(nr)
        ms.section_mem_map &= ~mask

    def section_online(self, int64_t nr):
        self._check_nr(nr)
        return self.c_section_online(nr)

    def present_sections(self):
        """Section numbers with SECTION_MARKED_PRESENT, ascending."""
        cdef int64_t r, i
        cdef list out = []
        for r in range(self.nr_section_roots):
            if self._roots[r] == NULL:
                continue
            for i in range(self.sections_per_root):
                if self._roots[r][i].section_mem_map & D.SECTION_MARKED_PRESENT:
                    out.append(r * self.sections_per_root + i)
        return out

    # -- mem_section_usage ---------------------------------------------------------------------
    def has_usage(self, int64_t nr):
        self._check_nr(nr)
        cdef mem_section_t* ms = self.__nr_to_section(nr)
        return ms != NULL and ms.has_usage != 0

    def alloc_usage(self, int64_t nr):
        """section_activate's kzalloc of ``mem_section_usage``: empty subsection map and usemap."""
        cdef mem_section_t* ms = self._section(nr)
        if ms.has_usage:
            raise HotplugError(_errno.EEXIST, f"section {nr} already has a mem_section_usage")
        ms.has_usage = 1
        self._subsection_clear(ms)
        memset(ms.usemap, 0, self.pageblocks_per_section)

    def free_usage(self, int64_t nr):
        cdef mem_section_t* ms = self._section(nr)
        if not ms.has_usage:
            raise _einval(f"section {nr} has no mem_section_usage to free")
        ms.has_usage = 0
        self._subsection_clear(ms)
        memset(ms.usemap, 0, self.pageblocks_per_section)

    def subsection_map(self, int64_t nr):
        """``mem_section[nr].usage->subsection_map`` as one int: bit i = subsection i (all
        SUBSECTIONS_PER_SECTION bits, however many words the bitmap takes)."""
        self._check_nr(nr)
        cdef mem_section_t* ms = self.__nr_to_section(nr)
        if ms == NULL:
            return 0
        if ms.subsection_map_hi == NULL:
            return ms.subsection_map
        return self._subsection_int(ms)

    def set_subsection_map(self, int64_t nr, value):
        """Store ``value`` (an int of up to BITS_TO_LONGS(SUBSECTIONS_PER_SECTION) * 64 bits)
        as the section's subsection bitmap."""
        cdef mem_section_t* ms = self._section(nr)
        if not ms.has_usage:
            raise _einval(f"section {nr} has no mem_section_usage")
        cdef int w, words = self.subsection_map_words
        value = _operator.index(value)
        if value < 0 or value >> (64 * words):
            raise _einval(f"section {nr}: subsection map {value:#x} does not fit "
                          f"{words * 64} bits ({self.subsections_per_section} subsections)")
        ms.subsection_map = <uint64_t> (value & 0xFFFFFFFFFFFFFFFF)
        for w in range(1, words):
            ms.subsection_map_hi[w - 1] = <uint64_t> ((value >> (64 * w)) & 0xFFFFFFFFFFFFFFFF)

    # -- memmap --------------------------------------------------------------------------------
    def has_memmap(self, int64_t nr):
        return nr in self._memmap

    def alloc_memmap(self, int64_t nr):
        """Give section ``nr`` its struct page array (zero-filled, as the model's stand-in for
        the uninitialised pages populate_section_memmap maps): the all-zero pattern."""
        cdef mem_section_t* ms = self._section(nr)
        if nr in self._memmap:
            raise HotplugError(_errno.EEXIST, f"section {nr} already has a memmap")
        cdef int64_t ci, n = self.chunks_per_section
        cdef page_t zero
        cdef cnp.ndarray arr
        ms.chunks = <page_t**> calloc(n, sizeof(page_t*))
        ms.chunk_priv = <uint8_t*> calloc(n, 1)
        if ms.chunks == NULL or ms.chunk_priv == NULL:
            free(ms.chunks)
            free(ms.chunk_priv)
            ms.chunks = NULL
            ms.chunk_priv = NULL
            raise MemoryError()
        if self.flat:
            arr = np.zeros(self.pages_per_section, PAGE_DTYPE)
            self._memmap[nr] = arr
            for ci in range(n):
                ms.chunks[ci] = (<page_t*> cnp.PyArray_DATA(arr)) + ci * self.chunk_pages
                ms.chunk_priv[ci] = 1
            return
        memset(&zero, 0, sizeof(page_t))
        self._memmap[nr] = [None] * n
        self.c_section_set_pattern(nr, &zero, 1)

    def free_memmap(self, int64_t nr):
        self._check_nr(nr)
        if nr not in self._memmap:
            raise _einval(f"section {nr} has no memmap to free")
        cdef mem_section_t* ms = self.__nr_to_section(nr)
        item = self._memmap.pop(nr)
        if type(item) is list:
            for x in item:
                if type(x) is bytes:
                    self._unshare(x)
        free(ms.chunks)
        free(ms.chunk_priv)
        ms.chunks = NULL
        ms.chunk_priv = NULL

    cdef cnp.ndarray _expand(self, int64_t nr):
        """A new array of section nr's struct pages (whatever form they are held in)."""
        cdef mem_section_t* ms = self.__nr_to_section(nr)
        cdef cnp.ndarray arr = np.empty(self.pages_per_section, PAGE_DTYPE)
        cdef int64_t ci
        for ci in range(self.chunks_per_section):
            memcpy((<page_t*> cnp.PyArray_DATA(arr)) + ci * self.chunk_pages, ms.chunks[ci],
                   self.chunk_pages * sizeof(page_t))
        return arr

    def memmap(self, int64_t nr):
        """The struct pages of section ``nr`` for reading (None without a memmap): the live
        array of a materialised section, else a read-only expansion of its patterns."""
        item = self._memmap.get(nr)
        if item is None or type(item) is not list:
            return item
        cdef cnp.ndarray arr = self._expand(nr)
        arr.flags.writeable = False
        return arr

    def memmap_w(self, int64_t nr):
        """The struct pages of section ``nr`` as a live, writable numpy array (the section is
        materialised: flat form until a whole-section pattern replaces it), or None."""
        item = self._memmap.get(nr)
        if item is None or type(item) is not list:
            return item
        cdef mem_section_t* ms = self.__nr_to_section(nr)
        cdef cnp.ndarray arr = self._expand(nr)
        cdef int64_t ci
        for x in item:
            if type(x) is bytes:
                self._unshare(x)
        self._memmap[nr] = arr
        for ci in range(self.chunks_per_section):
            ms.chunks[ci] = (<page_t*> cnp.PyArray_DATA(arr)) + ci * self.chunk_pages
            ms.chunk_priv[ci] = 1
        return arr

    def memmap_sections(self):
        return sorted(self._memmap)

    # -- struct page access --------------------------------------------------------------------
    def pfn_valid(self, pfn_arg):
        """include/linux/mmzone.h:pfn_valid: a pfn of an int64 beyond the table has no struct
        page (False, as in the twin); a non-integer is EINVAL (hotmem.boundary.core_int)."""
        pfn_arg = _core_int(pfn_arg, "pfn_valid pfn")
        if pfn_arg < 0 or pfn_arg > 0x7fffffffffffffff:
            return False
        cdef int64_t pfn = pfn_arg
        return self.pfn_to_page(pfn) != NULL

    cdef page_t* _page(self, int64_t pfn) except NULL:
        cdef page_t* p = self.pfn_to_page(pfn)
        if p == NULL:
            raise _einval(f"pfn {pfn:#x} has no struct page (section {pfn >> self.pfn_section_shift} "
                          "has no memmap)")
        return p

    cdef page_t* _page_w(self, int64_t pfn) except NULL:
        self._page(pfn)
        cdef page_t* p = self.pfn_to_page_w(pfn)
        if p == NULL:
            raise MemoryError()
        return p

    cdef int _check_range(self, int64_t start_pfn, int64_t nr_pages) except -1:
        if nr_pages < 0 or start_pfn < 0:
            raise _einval(f"bad pfn range {start_pfn:#x}+{nr_pages}")
        if nr_pages == 0:
            return 0
        cdef int64_t nr
        for nr in range(start_pfn >> self.pfn_section_shift,
                        ((start_pfn + nr_pages - 1) >> self.pfn_section_shift) + 1):
            if nr not in self._memmap:
                raise _einval(f"pfn range {start_pfn:#x}-{start_pfn + nr_pages - 1:#x}: "
                              f"section {nr} has no memmap")
        return 0

    def page(self, int64_t pfn):
        """(flags, private, _refcount, page_type) of ``pfn``'s struct page."""
        cdef page_t* p = self._page(pfn)
        return (p.flags, p.private, p._refcount, p.page_type)

    def page_flags(self, int64_t pfn):
        return self._page(pfn).flags

    def set_page_flags(self, int64_t pfn, uint64_t value):
        self._page_w(pfn).flags = value

    def page_private(self, int64_t pfn):
        return self._page(pfn).private

    def set_page_private(self, int64_t pfn, uint64_t value):
        self._page_w(pfn).private = value

    def page_refcount(self, int64_t pfn):
        return self._page(pfn)._refcount

    def set_page_refcount(self, int64_t pfn, int32_t value):
        self._page_w(pfn)._refcount = value

    def page_type(self, int64_t pfn):
        return self._page(pfn).page_type

    def set_page_type(self, int64_t pfn, uint32_t value):
        self._page_w(pfn).page_type = value

    def page_zonenum(self, int64_t pfn):
        """include/linux/mm.h:page_zonenum."""
        return (self._page(pfn).flags >> self.zones_pgshift) & ((1 << self.zones_width) - 1)

    def page_to_nid(self, int64_t pfn):
        """include/linux/mm.h:page_to_nid."""
        return self._page(pfn).flags >> self.nodes_pgshift

    def page_zoneid(self, int64_t pfn):
        """include/linux/mm.h:page_zone_id: node and zone bits as one number."""
        return self.c_page_zoneid(self._page(pfn))

    cdef int _update_range(self, int64_t start_pfn, int64_t nr_pages, uint64_t set_mask,
                           uint64_t keep_mask, bint set_ref, int32_t ref) except -1:
        """flags = (flags & keep_mask) | set_mask (and _refcount = ref when set_ref) on every
        page of the range; a shared chunk wholly inside it gets the updated pattern."""
        cdef int64_t pfn = start_pfn, end = start_pfn + nr_pages, c = self.chunk_pages, nr, ci
        cdef int64_t n, j, period
        cdef mem_section_t* ms
        cdef page_t* p
        cdef page_t tmp[_PATTERN_BUF]
        while pfn < end:
            nr = pfn >> self.pfn_section_shift
            ms = self.__nr_to_section(nr)
            ci = (pfn & (self.pages_per_section - 1)) >> self.chunk_shift
            n = min(end - pfn, c - (pfn & (c - 1)))
            if n == c and not ms.chunk_priv[ci]:
                period = _min_period(ms.chunks[ci], c)
                if period <= _PATTERN_BUF:
                    for j in range(period):
                        tmp[j] = ms.chunks[ci][j]
                        tmp[j].flags = (tmp[j].flags & keep_mask) | set_mask
                        if set_ref:
                            tmp[j]._refcount = ref
                    self._set_chunk(nr, ms, ci, tmp, period)
                    pfn += n
                    continue
            p = self.pfn_to_page_w(pfn)
            if p == NULL:
                raise MemoryError()
            for j in range(n):
                p[j].flags = (p[j].flags & keep_mask) | set_mask
                if set_ref:
                    p[j]._refcount = ref
            pfn += n
        return 0

    def set_page_flag_range(self, int64_t start_pfn, int64_t nr_pages, int bit):
        """__SetPageX on every page of [start_pfn, start_pfn + nr_pages)."""
        self._check_range(start_pfn, nr_pages)
        self._update_range(start_pfn, nr_pages, (<uint64_t> 1) << bit, ~(<uint64_t> 0), False, 0)

    def clear_page_flag_range(self, int64_t start_pfn, int64_t nr_pages, int bit):
        """__ClearPageX on every page of [start_pfn, start_pfn + nr_pages)."""
        self._check_range(start_pfn, nr_pages)
        self._update_range(start_pfn, nr_pages, 0, ~((<uint64_t> 1) << bit), False, 0)

    def set_page_refcount_range(self, int64_t start_pfn, int64_t nr_pages, int32_t value):
        self._check_range(start_pfn, nr_pages)
        self._update_range(start_pfn, nr_pages, 0, ~(<uint64_t> 0), True, value)

    # -- pageblock flags (usemap) --------------------------------------------------------------
    cdef uint8_t* _usemap(self, int64_t pfn) except NULL:
        cdef int64_t nr = pfn >> self.pfn_section_shift if pfn >= 0 else -1
        self._check_nr(nr)
        cdef uint8_t* p = self.pageblock_flags_ptr(pfn)
        if p == NULL:
            raise _einval(f"pfn {pfn:#x}: section {nr} has no pageblock flags (no usage)")
        return p

    def get_pageblock_migratetype(self, int64_t pfn):
        """mm/page_alloc.c:get_pfnblock_flags_mask(MIGRATETYPE_MASK) of pfn's pageblock."""
        return self._usemap(pfn)[0] & D.PB_migratetype_mask

    def set_pageblock_migratetype(self, int64_t pfn, int migratetype):
        """mm/page_alloc.c:set_pageblock_migratetype."""
        if not 0 <= migratetype < D.MIGRATE_TYPES:
            raise _einval(f"migratetype {migratetype} out of range")
        cdef uint8_t* p = self._usemap(pfn)
        p[0] = (p[0] & ~D.PB_migratetype_mask) | migratetype

    def get_pageblock_skip(self, int64_t pfn):
        return (self._usemap(pfn)[0] & PB_migrate_skip) != 0

    # -- initialisation ------------------------------------------------------------------------
    def memmap_init_range(self, int64_t start_pfn, int64_t nr_pages, int nid, int zone,
                          int migratetype):
        """mm/page_alloc.c:memmap_init_range (6.1) in the MEMINIT_HOTPLUG context.

        Every page: __init_single_page (zeroed, zone/node links, refcount 1, mapcount reset) and
        PG_reserved; every pageblock-aligned pfn: set_pageblock_migratetype."""
        if not 0 <= migratetype < D.MIGRATE_TYPES:
            raise _einval(f"migratetype {migratetype} out of range")
        if nid < 0 or nid >= (1 << (64 - self.nodes_pgshift)) or not 0 <= zone < (1 << self.zones_width):
            raise _einval(f"bad node {nid} / zone {zone}")
        self._check_range(start_pfn, nr_pages)
        cdef int64_t pb = 1 << self.pageblock_order
        cdef int64_t pfn, first = (start_pfn + pb - 1) & ~(pb - 1), end = start_pfn + nr_pages
        for pfn in range(first, end, pb):
            self._usemap(pfn)  # every aligned pageblock needs its usage map
        cdef page_t rec
        rec.flags = ((<uint64_t> nid) << self.nodes_pgshift) | \
            ((<uint64_t> zone) << self.zones_pgshift) | ((<uint64_t> 1) << D.PG_reserved)
        rec.private = 0
        rec._refcount = 1
        rec.page_type = D.PAGE_MAPCOUNT_RESET
        cdef int64_t c = self.chunk_pages, n, j, nr, ci
        cdef page_t* p
        cdef mem_section_t* ms
        pfn = start_pfn
        while pfn < end:
            nr = pfn >> self.pfn_section_shift
            ms = self.__nr_to_section(nr)
            if (pfn & (self.pages_per_section - 1)) == 0 and end - pfn >= self.pages_per_section:
                self.c_section_set_pattern(nr, &rec, 1)      # a whole section: one pattern
                pfn += self.pages_per_section
                continue
            ci = (pfn & (self.pages_per_section - 1)) >> self.chunk_shift
            n = min(end - pfn, c - (pfn & (c - 1)))
            if n == c:
                self._set_chunk(nr, ms, ci, &rec, 1)
            else:
                p = self.pfn_to_page_w(pfn)
                if p == NULL:
                    raise MemoryError()
                for j in range(n):
                    p[j] = rec
            pfn += n
        for pfn in range(first, end, pb):
            self.c_set_pageblock_migratetype(pfn, migratetype)

    # -- comparison ----------------------------------------------------------------------------
    def state(self):
        """A canonical snapshot, equal between backends when their states are equal."""
        cdef dict sections = {}
        cdef int64_t r, i
        cdef mem_section_t* ms
        roots = []
        for r in range(self.nr_section_roots):
            if self._roots[r] == NULL:
                continue
            roots.append(r)
            for i in range(self.sections_per_root):
                ms = &self._roots[r][i]
                if ms.section_mem_map or ms.has_usage or self._subsection_any(ms):
                    sections[r * self.sections_per_root + i] = (
                        ms.section_mem_map, self._subsection_int(ms), ms.has_usage,
                        bytes((<uint8_t[:self.pageblocks_per_section]> ms.usemap)))
        memmaps = {nr: self._expand(nr).tobytes() for nr in sorted(self._memmap)}
        return {"roots": roots, "sections": sections, "memmaps": memmaps}
