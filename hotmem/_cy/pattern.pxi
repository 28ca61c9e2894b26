# Struct-page patterns (compiled): which storage a MemSections uses, and the period arithmetic
# of the interned chunks (hotmem/_cy/memmap.pxi). Twin: hotmem/_py/memmap.py.
import os as _os


def _storage_is_flat(struct_page_storage):
    """``struct_page_storage``: "pattern" (default) or "flat" (every section materialised);
    None reads $HOTMEM_STRUCT_PAGE_STORAGE."""
    if struct_page_storage is None:
        struct_page_storage = _os.environ.get("HOTMEM_STRUCT_PAGE_STORAGE") or "pattern"
    if struct_page_storage not in ("pattern", "flat"):
        raise _einval(f"struct_page_storage {struct_page_storage!r}: 'pattern' or 'flat'")
    return struct_page_storage == "flat"


cdef enum:
    _PATTERN_BUF = 64   # longest pattern a range update rewrites in place
    _TAIL_CACHE = 4     # interned chunks whose tail run MemSections.c_same_run remembers


cdef bint _periodic(page_t* a, int64_t n, int64_t p) noexcept nogil:
    """a[0:n] repeats its first p records (p divides n; doubling memcmp)."""
    cdef int64_t have = p, k
    while have < n:
        k = have if have <= n - have else n - have
        if memcmp(&a[have], a, k * sizeof(page_t)) != 0:
            return False
        have += k
    return True


cdef int64_t _min_period(page_t* a, int64_t n) noexcept nogil:
    """The smallest power-of-two period of a[0:n] (n itself when there is none shorter)."""
    cdef int64_t p = 1
    while p < n:
        if _periodic(a, n, p):
            return p
        p <<= 1
    return n


cdef void _tile(page_t* dst, int64_t n, page_t* src, int64_t p) noexcept nogil:
    """dst[0:n] = src[0:p] repeated (p divides n)."""
    cdef int64_t have = p, k
    memcpy(dst, src, p * sizeof(page_t))
    while have < n:
        k = have if have <= n - have else n - have
        memcpy(&dst[have], dst, k * sizeof(page_t))
        have += k
