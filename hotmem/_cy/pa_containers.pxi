# The page allocator's C containers (compiled core only; the twin uses heapq, collections.deque
# and dict): a min-heap of pfns (a free list), a ring buffer (a per-CPU list) and an
# open-addressing hash map of pfns. Used by _cy/buddy.pxi, _cy/pcp.pxi, _cy/page_isolation.pxi.
from libc.stdlib cimport qsort

# -- C containers ------------------------------------------------------------------------------
ctypedef struct pa_heap_t:
    int64_t* a
    int64_t n
    int64_t cap

ctypedef struct pa_deque_t:
    int64_t* a          # (pfn << 3) | pcppage migratetype
    int64_t head
    int64_t n
    int64_t cap         # 0 or a power of two

ctypedef struct pa_pcp_t:
    int64_t count
    int64_t high
    int64_t batch
    int64_t free_factor
    int64_t saved_high
    int64_t saved_batch
    pa_deque_t lists[D.NR_PCP_LISTS]

ctypedef struct pa_hmap_t:
    int64_t* keys       # -1 = empty slot (pfns are >= 0)
    int64_t* vals
    int64_t cap
    int64_t n


cdef int _pa_heap_push(pa_heap_t* h, int64_t v) except -1:
    cdef int64_t i, parent, cap
    cdef int64_t* na
    if h.n == h.cap:
        cap = h.cap * 2 if h.cap else 16
        na = <int64_t*> realloc(h.a, cap * sizeof(int64_t))
        if na == NULL:
            raise MemoryError()
        h.a = na
        h.cap = cap
    i = h.n
    h.n += 1
    while i > 0:
        parent = (i - 1) >> 1
        if h.a[parent] <= v:
            break
        h.a[i] = h.a[parent]
        i = parent
    h.a[i] = v
    return 0


cdef void _pa_heap_pop(pa_heap_t* h) noexcept nogil:
    cdef int64_t i = 0, c, last
    h.n -= 1
    if h.n <= 0:
        h.n = 0
        return
    last = h.a[h.n]
    while True:
        c = 2 * i + 1
        if c >= h.n:
            break
        if c + 1 < h.n and h.a[c + 1] < h.a[c]:
            c += 1
        if h.a[c] >= last:
            break
        h.a[i] = h.a[c]
        i = c
    h.a[i] = last


cdef int _pa_cmp64(const void* x, const void* y) noexcept nogil:
    cdef int64_t a = (<const int64_t*> x)[0], b = (<const int64_t*> y)[0]
    return (a > b) - (a < b)


cdef int _pa_dq_reserve(pa_deque_t* d) except -1:
    cdef int64_t cap, i
    cdef int64_t* na
    if d.n < d.cap:
        return 0
    cap = d.cap * 2 if d.cap else 16
    na = <int64_t*> malloc(cap * sizeof(int64_t))
    if na == NULL:
        raise MemoryError()
    for i in range(d.n):
        na[i] = d.a[(d.head + i) & (d.cap - 1)]
    free(d.a)
    d.a = na
    d.head = 0
    d.cap = cap
    return 0


cdef inline int _pa_dq_push_front(pa_deque_t* d, int64_t v) except -1:
    _pa_dq_reserve(d)
    d.head = (d.head - 1) & (d.cap - 1)
    d.a[d.head] = v
    d.n += 1
    return 0


cdef inline int _pa_dq_push_back(pa_deque_t* d, int64_t v) except -1:
    _pa_dq_reserve(d)
    d.a[(d.head + d.n) & (d.cap - 1)] = v
    d.n += 1
    return 0


cdef inline int64_t _pa_dq_pop_front(pa_deque_t* d) noexcept nogil:
    cdef int64_t v = d.a[d.head]
    d.head = (d.head + 1) & (d.cap - 1)
    d.n -= 1
    return v


cdef inline int64_t _pa_dq_pop_back(pa_deque_t* d) noexcept nogil:
    d.n -= 1
    return d.a[(d.head + d.n) & (d.cap - 1)]


cdef inline int64_t _pa_dq_at(pa_deque_t* d, int64_t i) noexcept nogil:
    return d.a[(d.head + i) & (d.cap - 1)]


cdef inline uint64_t _pa_hash(int64_t k) noexcept nogil:
    """Home slot (before the mask) of key ``k``: keys that differ only in their low 3 bits
    share one 64-byte line of slots (consecutive pfns -- page-table pages taken one by one --
    touch one line per 8 instead of one each), the rest of the key is mixed."""
    cdef uint64_t h = (<uint64_t> (k >> 3)) * (<uint64_t> 0x9E3779B97F4A7C15)
    return ((h ^ (h >> 29)) << 3) | ((<uint64_t> k) & 7)


cdef int _pa_hm_resize(pa_hmap_t* m, int64_t cap) except -1:
    cdef int64_t* keys = <int64_t*> malloc(cap * sizeof(int64_t))
    cdef int64_t* vals = <int64_t*> malloc(cap * sizeof(int64_t))
    cdef int64_t i, j, mask = cap - 1
    if keys == NULL or vals == NULL:
        free(keys)
        free(vals)
        raise MemoryError()
    memset(keys, 0xFF, cap * sizeof(int64_t))
    for i in range(m.cap):
        if m.keys[i] >= 0:
            j = <int64_t> (_pa_hash(m.keys[i]) & <uint64_t> mask)
            while keys[j] >= 0:
                j = (j + 1) & mask
            keys[j] = m.keys[i]
            vals[j] = m.vals[i]
    free(m.keys)
    free(m.vals)
    m.keys = keys
    m.vals = vals
    m.cap = cap
    return 0


cdef inline int64_t _pa_hm_find(pa_hmap_t* m, int64_t k) noexcept nogil:
    if m.cap == 0:
        return -1
    cdef int64_t mask = m.cap - 1
    cdef int64_t i = <int64_t> (_pa_hash(k) & <uint64_t> mask)
    while m.keys[i] >= 0:
        if m.keys[i] == k:
            return i
        i = (i + 1) & mask
    return -1


cdef inline int64_t _pa_hm_get(pa_hmap_t* m, int64_t k, int64_t default) noexcept nogil:
    cdef int64_t i = _pa_hm_find(m, k)
    return default if i < 0 else m.vals[i]


cdef int _pa_hm_set(pa_hmap_t* m, int64_t k, int64_t v) except -1:
    if (m.n + 1) * 2 > m.cap:
        _pa_hm_resize(m, m.cap * 2 if m.cap else 64)
    cdef int64_t mask = m.cap - 1
    cdef int64_t i = <int64_t> (_pa_hash(k) & <uint64_t> mask)
    while m.keys[i] >= 0 and m.keys[i] != k:
        i = (i + 1) & mask
    if m.keys[i] < 0:
        m.keys[i] = k
        m.n += 1
    m.vals[i] = v
    return 0


cdef int64_t _pa_hm_pop(pa_hmap_t* m, int64_t k, int64_t default) noexcept nogil:
    """Remove ``k`` (backward-shift deletion) and return its value."""
    cdef int64_t i = _pa_hm_find(m, k)
    if i < 0:
        return default
    cdef int64_t v = m.vals[i], mask = m.cap - 1, j = i, home
    cdef bint inside
    m.keys[i] = -1
    m.n -= 1
    while True:
        j = (j + 1) & mask
        if m.keys[j] < 0:
            break
        home = <int64_t> (_pa_hash(m.keys[j]) & <uint64_t> mask)
        if i <= j:
            inside = i < home <= j
        else:
            inside = home > i or home <= j
        if not inside:
            m.keys[i] = m.keys[j]
            m.vals[i] = m.vals[j]
            m.keys[j] = -1
            i = j
    return v


# -- the free-head map: pfn -> value, dense for pfns aligned to 1 << shift ---------------------
# A buddy's free block heads are mostly MAX_ORDER - 1 blocks (every online, every boot range):
# those keys (pfn aligned to 1 << shift) live in pages of a direct array indexed by
# pfn >> shift (consecutive heads in consecutive words: no hash, no cache miss per insertion,
# 8 bytes per MAX_ORDER - 1 block of the spanned range), the others in the hash map.
DEF _PA_FM_PAGE_SHIFT = 15          # 32768 entries (256 KiB) per page

ctypedef struct pa_fmap_t:
    pa_hmap_t h             # keys not aligned to 1 << shift
    int64_t** pages         # aligned keys; -1 = absent; a NULL page holds none
    int64_t npages
    int shift


cdef inline int64_t* _pa_fm_slot(pa_fmap_t* m, int64_t k) noexcept nogil:
    """The dense slot of aligned key ``k``, or NULL when its page does not exist."""
    cdef int64_t i = k >> m.shift, pg = i >> _PA_FM_PAGE_SHIFT
    if pg >= m.npages or m.pages[pg] == NULL:
        return NULL
    return &m.pages[pg][i & ((1 << _PA_FM_PAGE_SHIFT) - 1)]


cdef int64_t* _pa_fm_slot_w(pa_fmap_t* m, int64_t k) except NULL:
    """The dense slot of aligned key ``k``, its page made when missing."""
    cdef int64_t i = k >> m.shift, pg = i >> _PA_FM_PAGE_SHIFT, n, j
    cdef int64_t** np_
    if pg >= m.npages:
        n = m.npages * 2 if m.npages else 16
        while n <= pg:
            n *= 2
        np_ = <int64_t**> realloc(m.pages, n * sizeof(int64_t*))
        if np_ == NULL:
            raise MemoryError()
        for j in range(m.npages, n):
            np_[j] = NULL
        m.pages = np_
        m.npages = n
    if m.pages[pg] == NULL:
        m.pages[pg] = <int64_t*> malloc((1 << _PA_FM_PAGE_SHIFT) * sizeof(int64_t))
        if m.pages[pg] == NULL:
            raise MemoryError()
        memset(m.pages[pg], 0xFF, (1 << _PA_FM_PAGE_SHIFT) * sizeof(int64_t))
    return &m.pages[pg][i & ((1 << _PA_FM_PAGE_SHIFT) - 1)]


cdef void _pa_fm_free(pa_fmap_t* m) noexcept nogil:
    cdef int64_t j
    for j in range(m.npages):
        free(m.pages[j])
    free(m.pages)
    free(m.h.keys)
    free(m.h.vals)
    m.pages = NULL
    m.npages = 0


cdef inline int64_t _pa_fm_get(pa_fmap_t* m, int64_t k, int64_t default) noexcept nogil:
    cdef int64_t* p
    cdef int64_t v
    if k & ((<int64_t> 1 << m.shift) - 1):
        return _pa_hm_get(&m.h, k, default)
    p = _pa_fm_slot(m, k)
    if p == NULL:
        return default
    v = p[0]
    return default if v < 0 else v


cdef inline bint _pa_fm_has(pa_fmap_t* m, int64_t k) noexcept nogil:
    cdef int64_t* p
    if k & ((<int64_t> 1 << m.shift) - 1):
        return _pa_hm_find(&m.h, k) >= 0
    p = _pa_fm_slot(m, k)
    return p != NULL and p[0] >= 0


cdef inline int _pa_fm_set(pa_fmap_t* m, int64_t k, int64_t v) except -1:
    """k := v (v >= 0)."""
    if k & ((<int64_t> 1 << m.shift) - 1):
        return _pa_hm_set(&m.h, k, v)
    _pa_fm_slot_w(m, k)[0] = v
    return 0


cdef inline int64_t _pa_fm_pop(pa_fmap_t* m, int64_t k, int64_t default) noexcept nogil:
    cdef int64_t* p
    cdef int64_t v
    if k & ((<int64_t> 1 << m.shift) - 1):
        return _pa_hm_pop(&m.h, k, default)
    p = _pa_fm_slot(m, k)
    if p == NULL or p[0] < 0:
        return default
    v = p[0]
    p[0] = -1
    return v
