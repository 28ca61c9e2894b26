"""powerpc64 boot allocations by cause on QEMU ``pseries``: Debian's 6.1 ppc64el build (64K pages)
and Debian 13's 6.12.107 -powerpc64le-64k and -powerpc64le (4K) builds. The kernel image from
physical 0 and the paca packed after it, the initrd and flattened device tree that prom_init and
QEMU leave after it, RTAS, the RTAS RMO buffer and (6.12) work-area arena under the RMA, each
CPU's five stacks and mce_info on its node, the radix process table, NODE_DATA on each node,
the mem_section roots, root pages and usemaps, the percpu first chunk and the early hash tables;
the initrd and init sections freed after the initcalls. Read in the 6.1 sources
(arch/powerpc/kernel/prom.c:early_init_devtree, arch/powerpc/mm/book3s64/
radix_pgtable.c:radix_init_pgtable, mm/percpu.c, mm/sparse.c, mm/page_alloc.c), each build's
vmlinux symbols and its memblock=debug boot logs on one and two nodes
(tests/data/kernel-6.1-boot-ppc64le; the 6.12 logs taken for issue #16).

The rest (the unflattened device tree, the L1D flush fallback area, cpu maps, percpu and cpumask
bookkeeping, ...), all NUMA_NO_NODE, is ``other_pages`` per build and MMU, calibrated on the
1 GiB boot; on two nodes it lands on node 1 as those allocations do.
"""
from __future__ import annotations

from dataclasses import dataclass

from hotmem.mm.memblock import memblock_alloc_try_nid
from hotmem.mm.page_alloc import alloc_large_system_hash, free_reserved_area


@dataclass(frozen=True)
class PpcBuild:
    """The image layout (System.map of the -dbg package's vmlinux) and the boot sizes (its
    memblock=debug log) of one ppc64el kernel build on QEMU pseries."""
    name: str
    image_end: int                  # _end: early_init_devtree reserves [0, _end)
    init: tuple                     # [__init_begin, __init_end): free_initmem
    initrd: tuple                   # where the initrd lies (hotmem validate's initramfs)
    fdt: tuple                      # the flattened device tree prom_init left after it
    rtas: tuple                     # QEMU's RTAS blob, a reserved-memory range of the FDT
    percpu_unit: int                # static + reserved + dynamic ("Embedded 10 pages/cpu")
    prtb_bytes: int                 # radix process table: 1 << PRTB_SIZE_SHIFT
    mem_section_roots_bytes: int    # 8 * NR_SECTION_ROOTS (51 physical bits, 16M sections)
    other_pages: dict               # by MMU, calibrated (module docstring)
    #: rtas_work_area_reserve_arena (arch/powerpc/kernel/rtas_wa.c, 6.3+): the RTAS work-area
    #: arena, top-down under the RMA (1 GiB on QEMU pseries); 0 where the build has none
    rtas_work_area_bytes: int = 0
    #: THREAD_SIZE: setup_64.c's alloc_stack gives each possible CPU five stacks on its node
    #: (emergency_stack_init: emergency, NMI and machine-check; irqstack_early_init: hard and
    #: soft IRQ), THREAD_SIZE-aligned ("alloc_stack: 16384 bytes" in 6.1's log, 32768 in 6.12's)
    thread_size: int = 16 << 10
    #: mce_init (arch/powerpc/kernel/mce.c): one struct mce_info per possible CPU on its node
    mce_info_bytes: int = 2184
    #: sizeof(pg_data_t), as the two-node memblock=debug logs show NODE_DATA(nid) (6.1: 21760
    #: bytes; 6.12: 32128 with 64K pages, 33280 with 4K -- ZONE_DEVICE and the order count)
    pg_data_t_size: int = 21760
    #: allocate_paca / alloc_paca_data (arch/powerpc/kernel/paca.c): the boot CPU's paca, lppaca
    #: and SLB shadow, which the memblock=debug logs show packed right after _end (3328 or
    #: 1280, 1024 and 128 bytes: [_end, _end + paca_span))
    paca_span: int = 0x1400


DEBIAN_6_1_PPC64EL = PpcBuild(
    name="Debian 6.1.176 ppc64el", image_end=0x2880000, init=(0x2000000, 0x24E0000),
    initrd=(0x2C90000, 0x2DC0000), fdt=(0x2DC0000, 0x2DF0000), rtas=(0x2FFF0000, 0x30000000),
    percpu_unit=603432 + 0 + 51928, prtb_bytes=1 << 24, mem_section_roots_bytes=8 << 16,
    other_pages={"radix": 3, "hash": 3})


#: Debian 13's linux-image-6.12.107+deb13-powerpc64le-64k: _end, __init_begin/__init_end and
#: the percpu static size (__per_cpu_end - __per_cpu_start = 611864) from the vmlinux's symbol
#: table (readelf -s); the initrd and FDT where QEMU and prom_init put them after the larger
#: image, and "percpu: Embedded 10 pages/cpu s611864 r0 d43496", from its memblock=debug boot
#: log (1 GiB, hotmem validate's initramfs). Against 6.1 the log shows the RTAS work-area arena
#: (256 KiB), 32 KiB emergency stacks (16 KiB in 6.1), no PV qspinlock hash (64 KiB in 6.1) and
#: no early vmemmap_list page (the 6.6+ radix vmemmap code): ``other_pages`` is calibrated on
#: the 1 GiB boot of that build as 6.1's was.
DEBIAN_6_12_PPC64EL_64K = PpcBuild(
    name="Debian 6.12.107 ppc64el -64k", image_end=0x2990000, init=(0x2000000, 0x25B0000),
    initrd=(0x2DA0000, 0x2ED0000), fdt=(0x2ED0000, 0x2F00000), rtas=(0x2FFF0000, 0x30000000),
    percpu_unit=611864 + 0 + 43496, prtb_bytes=1 << 24, mem_section_roots_bytes=8 << 16,
    other_pages={"radix": 1}, rtas_work_area_bytes=256 << 10, thread_size=32 << 10,
    pg_data_t_size=32128)


#: Debian 13's linux-image-6.12.107+deb13-powerpc64le (4K pages), read as the -64k build was:
#: the symbols give _end 0x287f000, init [0x2000000, 0x24f9000) and a static percpu area of
#: 120472 bytes ("Embedded 39 pages/cpu s120472 r0 d39272 u159744"); with 4K pages QEMU and
#: prom_init pack the initrd and FDT at 4K granularity, RTAS's reserved range is one 4K page,
#: and the mem_section roots take 8 MiB (NR_SECTION_ROOTS = 2^(51-24) sections / 128 per 4K
#: root page, x 8 bytes: "sparse_init: 8388608 bytes" in the log)
DEBIAN_6_12_PPC64EL_4K = PpcBuild(
    name="Debian 6.12.107 ppc64el (4K)", image_end=0x287F000, init=(0x2000000, 0x24F9000),
    initrd=(0x2C90000, 0x2DBA000), fdt=(0x2DBA000, 0x2DC0000), rtas=(0x2FFFF000, 0x30000000),
    percpu_unit=120472 + 0 + 39272, prtb_bytes=1 << 24, mem_section_roots_bytes=8 << 20,
    other_pages={"radix": 29}, rtas_work_area_bytes=256 << 10, thread_size=32 << 10,
    pg_data_t_size=33280, paca_span=0xC00)


def build_of(m) -> PpcBuild:
    """The Debian ppc64el build the machine's kernel version and page size stand for."""
    if m.policy.name == "6.12":
        return DEBIAN_6_12_PPC64EL_64K if m.arch.page_shift == 16 else DEBIAN_6_12_PPC64EL_4K
    return DEBIAN_6_1_PPC64EL


def boot_reservations(m) -> list:
    """early_init_devtree's reservations (start, size, name): the image, the initrd, the FDT
    and RTAS, where QEMU's layout has RAM under them."""
    b = build_of(m)
    return [(0, b.image_end, "kernel image"), (b.image_end, b.paca_span, "paca"),
            (b.initrd[0], b.initrd[1] - b.initrd[0], "initrd"),
            (b.fdt[0], b.fdt[1] - b.fdt[0], "flattened device tree"),
            (b.rtas[0], b.rtas[1] - b.rtas[0], "RTAS")]


def pcpu_embed_first_chunk(m) -> None:
    """mm/percpu.c (6.1): each CPU's unit (static + dynamic areas, page aligned) stays reserved
    on the CPU's node; ppc64 units are exactly that size (atom = PAGE_SIZE)."""
    a, b = m.arch, build_of(m)
    unit = -(-b.percpu_unit // a.PAGE_SIZE) * a.PAGE_SIZE
    for nid, n in sorted(m.cpu_nodes.items()):
        if n:
            memblock_alloc_try_nid(m, n * unit, a.PAGE_SIZE,
                                   nid if m.boot_memory.get(nid) else None, "percpu first chunk")


def early_allocations(m) -> None:
    """radix_init_pgtable's process table, sparse_init's mem_section roots, setup_per_cpu_areas,
    vfs_caches_init_early's hashes (one node with memory), and the rest."""
    a, b = m.arch, build_of(m)
    rma = 1 << 30                           # ppc64_rma_size: QEMU pseries' 1 GiB RMA
    # rtas.c:rtas_initialize: the RTAS RMO buffer (RTAS_RMOBUF_MAX, 64 KiB) under the RMA
    memblock_alloc_try_nid(m, 64 << 10, a.PAGE_SIZE, None, "RTAS RMO buffer", max_addr=rma)
    if b.rtas_work_area_bytes:              # setup_arch → rtas_work_area_reserve_arena
        memblock_alloc_try_nid(m, b.rtas_work_area_bytes, a.PAGE_SIZE, None,
                               "RTAS work area arena", max_addr=rma)
    for nid, n in sorted(m.cpu_nodes.items()):      # each CPU's stacks, then its mce_info
        home = nid if m.boot_memory.get(nid) else None
        for _ in range(n):
            for _ in range(5):
                memblock_alloc_try_nid(m, b.thread_size, b.thread_size, home, "alloc_stack")
            memblock_alloc_try_nid(m, b.mce_info_bytes, 8, home, "mce_info")
    if m.arch.mmu == "radix":
        memblock_alloc_try_nid(m, b.prtb_bytes, b.prtb_bytes, None, "radix process table")
    for nid in sorted(m.boot_memory):      # numa.c:setup_node_data, on the node's memory
        if m.boot_memory[nid]:
            memblock_alloc_try_nid(m, b.pg_data_t_size, SMP_CACHE_BYTES, nid, f"NODE_DATA({nid})")
    memblock_alloc_try_nid(m, b.mem_section_roots_bytes, 128, None, "mem_section roots")
    sparse_index_and_usemaps(m)
    pcpu_embed_first_chunk(m)
    if sum(1 for size in m.boot_memory.values() if size) == 1:
        alloc_large_system_hash(m, 8, 13, "Dentry cache hash table")
        alloc_large_system_hash(m, 8, 14, "Inode-cache hash table")
    other = b.other_pages.get(m.arch.mmu, 0)
    if other:
        memblock_alloc_try_nid(m, other << a.page_shift, a.PAGE_SIZE, None,
                               "other early allocations")


#: L1_CACHE_BYTES of book3s64 (asm/cache.h: L1_CACHE_SHIFT 7), memblock's default alignment
SMP_CACHE_BYTES = 128
#: sizeof(struct mem_section_usage) + usemap_size() per section (the subsection map and the
#: pageblock bits): "sparse_init_nid: 2048 bytes" for the 64 sections of a 1 GiB node, 6.1 and
#: 6.12, 4K and 64K pages
SECTION_USAGE_BYTES = 32


def sparse_index_and_usemaps(m) -> None:
    """mm/sparse.c (6.1 = 6.12): sparse_index_alloc, a root page (SECTIONS_PER_ROOT x 32-byte
    mem_section = PAGE_SIZE) for every root with present sections, on the node of its first
    section; then sparse_init_nid's usemaps, each node's sections' worth on that node."""
    a = m.arch
    shift = a.section_size_bits - a.page_shift
    per_root = a.PAGE_SIZE // 32
    sections: dict[int, int] = {}
    for s, e, nid in m.memblock.mem_pfn_ranges(a.page_shift):
        for sec in range(s >> shift, ((e - 1) >> shift) + 1):
            sections.setdefault(sec, nid)
    roots: dict[int, int] = {}
    for sec in sorted(sections):
        roots.setdefault(sec // per_root, sections[sec])
    for _, nid in sorted(roots.items()):
        memblock_alloc_try_nid(m, a.PAGE_SIZE, SMP_CACHE_BYTES, nid, "mem_section root")
    for nid in sorted(set(sections.values())):
        n = sum(1 for v in sections.values() if v == nid)
        memblock_alloc_try_nid(m, SECTION_USAGE_BYTES * n, SMP_CACHE_BYTES, nid, "usemap")


def free_initmem(m) -> None:
    """init/main.c:free_initmem → arch/powerpc/mm/mem.c (6.1): the init sections."""
    b = build_of(m)
    free_reserved_area(m, b.init[0] >> m.arch.page_shift, b.init[1] >> m.arch.page_shift)
