"""arch/x86/mm/init.c (Linux 6.1): how init_memory_mapping cuts a physical range into runs of one
page size and maps each with kernel_physical_mapping_init.

Only the after-boot behaviour is modelled (``after_bootmem``: no adjust_range_page_size_mask,
no e820 look-ups). ``pse`` is X86_FEATURE_PSE without debug_pagealloc; ``gbpages`` is
``direct_gbpages`` (CPU GBPAGES and not ``nogbpages``); as in probe_page_size_mask, gbpages
without PSE gives no 1 GiB mappings.
"""
import errno as _errno
import operator

from hotmem.errors import HotplugError

__all__ = ["split_mem_range", "init_memory_mapping", "PG_LEVEL_2M_MASK", "PG_LEVEL_1G_MASK"]

PAGE_SHIFT = 12
PMD_SIZE = 1 << 21
PUD_SIZE = 1 << 30
PG_LEVEL_2M_MASK = 1 << 2   # 1 << PG_LEVEL_2M (arch/x86/include/asm/pgtable_types.h)
PG_LEVEL_1G_MASK = 1 << 3   # 1 << PG_LEVEL_1G

_PFN_PMD = PMD_SIZE >> PAGE_SHIFT
_PFN_PUD = PUD_SIZE >> PAGE_SHIFT


def _round_up(x, a):
    return (x + a - 1) // a * a


def _round_down(x, a):
    return x // a * a


def _page_size(mask):
    if mask & PG_LEVEL_1G_MASK:
        return PUD_SIZE
    if mask & PG_LEVEL_2M_MASK:
        return PMD_SIZE
    return 1 << PAGE_SHIFT


def split_mem_range(start, end, *, pse, gbpages):
    """arch/x86/mm/init.c:split_mem_range (6.1, x86_64, after boot).

    Returns [(start, end, page_size)]: a 4 KiB head up to the first 2 MiB boundary, 2 MiB up to
    the first 1 GiB boundary, 1 GiB (mask 2M|1G) over the aligned middle, 2 MiB and then 4 KiB
    tails; neighbouring runs with the same page_size_mask merged. Addresses are truncated to
    pages (PFN_DOWN) as the kernel does; an empty range gives []."""
    start, end = operator.index(start), operator.index(end)
    page_size_mask = (PG_LEVEL_2M_MASK if pse else 0) | \
        (PG_LEVEL_1G_MASK if pse and gbpages else 0)
    mr = []

    def save_mr(s_pfn, e_pfn, mask):
        if s_pfn < e_pfn:
            mr.append([s_pfn << PAGE_SHIFT, e_pfn << PAGE_SHIFT, mask])

    limit_pfn = end >> PAGE_SHIFT
    pfn = start_pfn = start >> PAGE_SHIFT
    # head if not big page aligned
    end_pfn = min(_round_up(pfn, _PFN_PMD), limit_pfn)
    if start_pfn < end_pfn:
        save_mr(start_pfn, end_pfn, 0)
        pfn = end_pfn
    # big page (2M) range up to the first 1G boundary
    start_pfn = _round_up(pfn, _PFN_PMD)
    end_pfn = min(_round_up(pfn, _PFN_PUD), _round_down(limit_pfn, _PFN_PMD))
    if start_pfn < end_pfn:
        save_mr(start_pfn, end_pfn, page_size_mask & PG_LEVEL_2M_MASK)
        pfn = end_pfn
    # big page (1G) range
    start_pfn = _round_up(pfn, _PFN_PUD)
    end_pfn = _round_down(limit_pfn, _PFN_PUD)
    if start_pfn < end_pfn:
        save_mr(start_pfn, end_pfn, page_size_mask & (PG_LEVEL_2M_MASK | PG_LEVEL_1G_MASK))
        pfn = end_pfn
    # tail not 1G aligned
    start_pfn = _round_up(pfn, _PFN_PMD)
    end_pfn = _round_down(limit_pfn, _PFN_PMD)
    if start_pfn < end_pfn:
        save_mr(start_pfn, end_pfn, page_size_mask & PG_LEVEL_2M_MASK)
        pfn = end_pfn
    # tail not 2M aligned
    save_mr(pfn, limit_pfn, 0)

    # merge continuous runs with the same page size mask
    i = 0
    while len(mr) > 1 and i < len(mr) - 1:
        if mr[i][1] == mr[i + 1][0] and mr[i][2] == mr[i + 1][2]:
            mr[i][1] = mr[i + 1][1]
            del mr[i + 1]
        else:
            i += 1
    return [(s, e, _page_size(m)) for s, e, m in mr]


def init_memory_mapping(pt, start, end, *, pse, gbpages, alloc_table, node):
    """arch/x86/mm/init.c:init_memory_mapping (6.1, after boot, prot PAGE_KERNEL): map
    [start, end) into the direct map of ``pt`` (a core PageTables) run by run. Returns the
    kernel's value, the pfn after the last mapped address (``ret >> PAGE_SHIFT``).
    add_pfn_range_mapped (pfn_mapped[], max_pfn_mapped) is left to the caller."""
    start, end = operator.index(start), operator.index(end)
    if start & 0xFFF or end & 0xFFF:
        raise HotplugError(_errno.EINVAL, f"init_memory_mapping: [{start:#x}, {end:#x}) not "
                           "page-aligned")
    if not 0 <= start < end <= 1 << pt.max_physmem_bits:
        raise HotplugError(_errno.EINVAL, f"init_memory_mapping: [{start:#x}, {end:#x}) empty "
                           f"or beyond MAX_PHYSMEM_BITS {pt.max_physmem_bits}")
    if not callable(alloc_table):
        raise HotplugError(_errno.EINVAL, "init_memory_mapping: alloc_table must be callable")
    ret = 0
    for s, e, size in split_mem_range(start, end, pse=pse, gbpages=gbpages):
        ret = pt.kernel_physical_mapping_init(s, e, size, alloc_table, node)
    return ret >> PAGE_SHIFT
