"""powerpc64 book3s, 64K pages, radix or hash MMU: the profile and its memmap_on_memory rules.

Read in Linux 6.1.166, 6.6.57 and 6.8.0: arch/powerpc/include/asm/sparsemem.h,
asm/book3s/64/{radix,radix-64k,hash,hash-64k,pgtable}.h, arch/powerpc/Kconfig
(ARCH_FORCE_MAX_ORDER, ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE), asm/pgtable.h:
arch_supports_memmap_on_memory (6.6+), arch/powerpc/mm/init_64.c (mmu_early_init_devtree,
probe_memory_block_size 6.6+), arch/powerpc/mm/book3s64/{hugetlbpage,radix_pgtable}.c,
arch/powerpc/platforms/{pseries/hotplug-memory.c,powernv/setup.c} (6.1 block sizes),
mm/page_alloc.c:set_pageblock_order.  page->flags and config: Debian's
linux-headers-6.1.0-50-powerpc64le (6.1.176), which builds both MMUs (radix the default).
"""
from __future__ import annotations

import errno

from hotmem.arch.base import ArchProfile, IS_ALIGNED, PageFlagsLayout, is_power_of_2
from hotmem.errors import HotplugError
from hotmem.kernel import release_policy

PAGE_SHIFT = 16                     # CONFIG_PPC_64K_PAGES
#: PAGE_SHIFT per page size: CONFIG_PPC_64K_PAGES (Debian's ppc64el builds up to 6.1, and
#: 6.12's -powerpc64le-64k) or CONFIG_PPC_4K_PAGES (Debian 13's -powerpc64le)
PAGE_SHIFTS = {"64K": 16, "4K": 12}
SECTION_SIZE_BITS = 24              # asm/sparsemem.h
MIN_MEMORY_BLOCK_SIZE = 1 << SECTION_SIZE_BITS
MAX_PHYSMEM_BITS = 51               # max(H_, R_MAX_PHYSMEM_BITS) with VMEMMAP and EXTREME
PAGE_OFFSET = 0xC000000000000000    # CONFIG_PAGE_OFFSET
KERN_VIRT_START = 0xC008000000000000  # RADIX_/H_KERN_VIRT_START
KERN_MAP_SIZE = 1 << 49             # RADIX_/H_KERN_MAP_SIZE (64K pages)
# vmalloc, then I/O, then the vmemmap, each one KERN_MAP_SIZE: RADIX_/H_VMEMMAP_START.
VMEMMAP_START = KERN_VIRT_START + 2 * KERN_MAP_SIZE

# Table index sizes: asm/book3s/64/radix-64k.h and hash-64k.h (pte, pmd, pud, pgd).
INDEX_SIZE = {"radix": (5, 9, 9, 13), "hash": (8, 10, 10, 8)}
# 4K pages, asm/book3s/64/radix-4k.h (6.12): RADIX_PTE/PMD/PUD_INDEX_SIZE 9, RADIX_PGD_INDEX_SIZE
# 13 -- the same 52-bit space with a 4K PTE table mapping 2 MiB. (hash-4k.h is not modelled.)
INDEX_SIZE_4K = {"radix": (9, 9, 9, 13)}
# Debian 13's -powerpc64le (4K) config: CONFIG_ARCH_FORCE_MAX_ORDER=12 (orders 0..12; 6.4+ counts
# it inclusive), the Kconfig default for PPC64 with 4K pages
MAX_PAGE_ORDER_4K = 12
# Kconfig ARCH_FORCE_MAX_ORDER for PPC64 && PPC_64K_PAGES: 6.1 "9" (orders 0..8), 6.6+ "8".
ARCH_FORCE_MAX_ORDER_6_1 = 9
ARCH_FORCE_MAX_ORDER_6_6 = 8
MAX_PAGE_ORDER = 8
# HPAGE_SHIFT (hugetlbpage_init_defaultsize): 16M if the MMU offers it, else 1M, else 2M.
# Radix offers 2M (and 1G) only; the hash MMU of POWER offers 16M.
HPAGE_SHIFT = {"radix": 21, "hash": 24}
DEFAULT_LMB_SIZE = 256 << 20        # a typical ibm,lmb-size (PowerVM, QEMU pseries)
MEMORY_BLOCK_SIZE_START = 1 << 30   # init_64.c: memory_block_size before the probe (6.6+)
POWERNV_RADIX_BLOCK_SIZE = 1 << 30  # 6.1 radix_memory_block_size with FW_FEATURE_OPAL
POWERNV_HASH_BLOCK_SIZE = 256 << 20  # 6.1 pnv_memory_block_size without radix
#: a memory node whose linux,usable-memory is 0 and compatible "ibm,coherent-device-memory"
COHERENT_DEVICE_MEMORY = "ibm,coherent-device-memory"

# page->flags of Debian's 6.1 ppc64el build (bounds.h: NR_PAGEFLAGS 24, MAX_NR_ZONES 2 =
# NORMAL, MOVABLE, NR_CPUS_BITS 11 (NR_CPUS=2048), LRU_GEN_WIDTH 3, __LRU_REFS_WIDTH 2;
# .config NODES_SHIFT=8, NUMA_BALANCING=y):
# NODE 63..56 | ZONE 55 | LAST_CPUPID 54..36 | LRU_GEN 35..33 | LRU_REFS 32..31 | flags 23..0.
DEBIAN_6_1_PAGE_FLAGS = PageFlagsLayout(
    nr_pageflags=24, max_nr_zones=2, nodes_shift=8, lru_gen_width=3, lru_refs_shift=2,
    kasan_tag_width=0, nr_cpus_bits=11, numa_balancing=True)


def powerpc64(mmu: str, page_size: str = "64K", *, page_extension: bool = True) -> ArchProfile:
    """The book3s64 profile for ``mmu`` "radix" or "hash" with 64K pages (6.1 = 6.6 = 6.8),
    or radix with 4K pages (``page_size="4K"``: Debian 13's -powerpc64le build, 6.12).

    ``mmu`` has no default: the kernel picks it at boot (radix on POWER9+ unless
    ``disable_radix``) and it decides memmap_on_memory.  Page-table geometry is the MMU's
    (the kernel sets __pte_index_size etc. at boot).  pageblock_order is
    HUGETLB_PAGE_SIZE_VARIABLE: set_pageblock_order takes HPAGE_SHIFT's order (2 MiB radix
    -> 5, 16 MiB hash -> 8), capped at the largest buddy order (8).
    """
    if mmu not in INDEX_SIZE:
        raise HotplugError(errno.EINVAL, f"powerpc64: mmu {mmu!r}: must be 'radix' or 'hash'")
    if page_size not in PAGE_SHIFTS:
        raise HotplugError(errno.EINVAL, f"powerpc64: page_size {page_size!r}: '64K' "
                           "(CONFIG_PPC_64K_PAGES) or '4K' (CONFIG_PPC_4K_PAGES, radix)")
    if page_size == "4K" and mmu not in INDEX_SIZE_4K:
        raise HotplugError(errno.EINVAL, f"powerpc64: 4K pages with the {mmu} MMU are not "
                           "modelled (radix only)")
    page_shift = PAGE_SHIFTS[page_size]
    pte, pmd, pud, pgd = (INDEX_SIZE_4K if page_size == "4K" else INDEX_SIZE)[mmu]
    max_page_order = MAX_PAGE_ORDER_4K if page_size == "4K" else MAX_PAGE_ORDER
    pmd_shift = page_shift + pte
    pud_shift = pmd_shift + pmd
    pgdir_shift = pud_shift + pud
    table_bytes = ()
    if mmu == "hash":
        # hash-64k.h: a PTE fragment carries a second half for the hash slots (PTE_FRAG_SIZE);
        # with THP or HUGETLB_PAGE (Debian: both) PMD and PUD tables are doubled too.
        table_bytes = (("pte", 2 * (8 << pte)), ("pmd", 2 * (8 << pmd)), ("pud", 2 * (8 << pud)))
    return ArchProfile(
        name="powerpc64",
        paging_levels=4,
        page_shift=page_shift,
        struct_page_size=64,
        section_size_bits=SECTION_SIZE_BITS,
        max_physmem_bits=MAX_PHYSMEM_BITS,
        subsection_shift=21,
        pmd_shift=pmd_shift,
        pud_shift=pud_shift,
        p4d_shift=pgdir_shift,                              # asm-generic/pgtable-nop4d.h
        pgdir_shift=pgdir_shift,
        ptrs_per_pte=1 << pte,
        ptrs_per_pmd=1 << pmd,
        ptrs_per_pud=1 << pud,
        ptrs_per_p4d=1,
        ptrs_per_pgd=1 << pgd,
        max_page_order=max_page_order,
        pageblock_order=min(HPAGE_SHIFT[mmu] - page_shift, max_page_order),
        max_memory_block_size=MEMORY_BLOCK_SIZE_START,
        vmemmap_start=VMEMMAP_START,
        page_offset=PAGE_OFFSET,
        physmem_end=(1 << MAX_PHYSMEM_BITS) - 1,
        page_unused=None,
        sizeof_mem_section=32 if page_extension else 16,
        sparsemem_extreme=True,
        page_flags=DEBIAN_6_1_PAGE_FLAGS,
        arch_keep_memblock=True,
        mmu=mmu,
        table_bytes=table_bytes,
    )


def ARCH_FORCE_MAX_ORDER(kernel) -> int:
    """The Kconfig value as ``kernel`` spells it: 9 up to 6.3 (orders 0..8), 8 from 6.4."""
    inclusive = release_policy(kernel).max_order_inclusive
    return ARCH_FORCE_MAX_ORDER_6_6 if inclusive else ARCH_FORCE_MAX_ORDER_6_1


# --- memory block size -----------------------------------------------------------------------

def _memory_dev_init_check(block_size: int) -> int:
    """drivers/base/memory.c:memory_dev_init panics unless the size is a power of two of at
    least MIN_MEMORY_BLOCK_SIZE; the model refuses it instead."""
    if not isinstance(block_size, int) or not is_power_of_2(block_size) \
            or block_size < MIN_MEMORY_BLOCK_SIZE:
        shown = f"{block_size:#x}" if isinstance(block_size, int) else repr(block_size)
        raise HotplugError(errno.EINVAL, f"Memory block size not suitable: {shown} "
                           "(must be a power of two >= 16 MiB)")
    return block_size


def update_memory_block_size(block_size: int, mem_size: int) -> int:
    """arch/powerpc/mm/init_64.c:update_memory_block_size (6.6.57 = 6.8.0).

    Steps the size down by 4x, not below 16 MiB, while ``mem_size`` has the size's bit set.
    The test is a bit test, not an alignment test: a 1 GiB node gives 256 MiB, a 128 MiB node
    leaves 1 GiB (the kernel comment's example of 64 MiB is not what the code does).
    """
    while block_size > MIN_MEMORY_BLOCK_SIZE:
        if mem_size & block_size == 0:
            break
        block_size >>= 2
    return block_size


def _memory_nodes(memory):
    """``memory`` as ``(base, size)`` pairs, COHERENT_DEVICE_MEMORY passed through."""
    nodes = []
    for node in memory:
        if node == COHERENT_DEVICE_MEMORY:
            nodes.append(node)
            continue
        try:
            base, size = node
        except (TypeError, ValueError):
            base = size = None
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                   for v in (base, size)):
            raise HotplugError(errno.EINVAL, f"memory node {node!r}: expected (base, size) "
                               f"in bytes or {COHERENT_DEVICE_MEMORY!r}")
        nodes.append((base, size))
    return nodes


def probe_memory_block_size(lmb_size: int | None = DEFAULT_LMB_SIZE, memory=()) -> int:
    """memory_block_size as arch/powerpc/mm/init_64.c:probe_memory_block_size leaves it (6.6+,
    pseries and powernv alike).

    ``lmb_size``: ibm,lmb-size of /ibm,dynamic-reconfiguration-memory; 0 when that node has
    no such property (then 16 MiB); None when there is no such node.  The node's value is
    final.  ``memory``: the memory nodes in device-tree order, each ``(base, size)`` (its reg
    or linux,usable-memory) or COHERENT_DEVICE_MEMORY (a GPU node with no usable memory, which
    caps the size at 256 MiB).  Without the node the size starts from 1 GiB and each memory
    node may lower it (:func:`update_memory_block_size`).
    """
    nodes = _memory_nodes(memory)
    if lmb_size is not None:
        return _memory_dev_init_check(lmb_size or MIN_MEMORY_BLOCK_SIZE)
    block_size = MEMORY_BLOCK_SIZE_START
    for node in nodes:
        if node == COHERENT_DEVICE_MEMORY:
            block_size = min(block_size, 256 << 20)
        elif node[1]:
            block_size = update_memory_block_size(block_size, node[1])
    return _memory_dev_init_check(block_size)


def pseries_memory_block_size(lmb_size: int | None = DEFAULT_LMB_SIZE, memory=()) -> int:
    """arch/powerpc/platforms/pseries/hotplug-memory.c:pseries_memory_block_size (6.1).

    ``lmb_size`` as for :func:`probe_memory_block_size`.  Without the node: the size of the
    memory node that starts where memory@0 ends; ``memory`` is ``(base, size)`` pairs.
    """
    nodes = dict(n for n in _memory_nodes(memory) if n != COHERENT_DEVICE_MEMORY)
    if lmb_size is not None:
        return _memory_dev_init_check(lmb_size or MIN_MEMORY_BLOCK_SIZE)
    memzero_size = nodes.get(0, 0)
    block_size = nodes.get(memzero_size, MIN_MEMORY_BLOCK_SIZE) if memzero_size else \
        MIN_MEMORY_BLOCK_SIZE
    return _memory_dev_init_check(block_size)


def memory_block_size_bytes(profile: ArchProfile, kernel, *, platform: str = "pseries",
                            lmb_size: int | None = DEFAULT_LMB_SIZE, memory=()) -> int:
    """arch/powerpc/kernel/setup_64.c:memory_block_size_bytes: ppc_md.memory_block_size().

    6.6+: the device-tree probe on both platforms.  6.1: pseries reads ibm,lmb-size
    (:func:`pseries_memory_block_size`); powernv uses 1 GiB on radix (OPAL firmware) and
    256 MiB on hash.
    """
    if platform not in ("pseries", "powernv"):
        raise HotplugError(errno.EINVAL, f"powerpc64: platform {platform!r}: must be "
                           "'pseries' or 'powernv'")
    if release_policy(kernel).arch("powerpc64").probe_memory_block_size:
        return probe_memory_block_size(lmb_size, memory)
    if platform == "pseries":
        return pseries_memory_block_size(lmb_size, memory)
    return POWERNV_RADIX_BLOCK_SIZE if profile.mmu == "radix" else POWERNV_HASH_BLOCK_SIZE


# --- memmap_on_memory ------------------------------------------------------------------------

def arch_support_memmap_on_memory() -> bool:
    """The RFC v2's arch/powerpc/mm/mem.c:arch_support_memmap_on_memory (digest §15.1): true."""
    return True


def arch_supports_memmap_on_memory(profile: ArchProfile, vmemmap_size: int) -> bool:
    """arch/powerpc/include/asm/pgtable.h:arch_supports_memmap_on_memory (6.6.57, 6.8.0, 6.9.0):
    false unless radix_enabled(); with 64K pages no PMD test (the vmemmap code falls back to base
    pages), with 4K pages the default PMD test."""
    if profile.mmu != "radix":
        return False
    if profile.page_shift == 12:                        # CONFIG_PPC_4K_PAGES
        return IS_ALIGNED(vmemmap_size, profile.PMD_SIZE)
    return True
