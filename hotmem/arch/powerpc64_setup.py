"""powerpc64 boot allocations by cause on QEMU ``pseries`` (Debian's 6.1.176 ppc64el build, 64K
pages): the kernel image from physical 0, the initrd and flattened device tree that prom_init and
QEMU leave after it, RTAS, the radix process table, the percpu first chunk, the mem_section roots
and the early hash tables; the initrd and init sections freed after the initcalls. Read in the
6.1 sources (arch/powerpc/kernel/prom.c:early_init_devtree, arch/powerpc/mm/book3s64/
radix_pgtable.c:radix_init_pgtable, mm/percpu.c, mm/sparse.c, mm/page_alloc.c) and the boot logs
of tests/data/kernel-6.1-boot-ppc64le (memblock=debug).

The rest (paca, emergency stacks, the MCE area, the unflattened device tree, the L1D flush
fallback area, the PV qspinlock hash, percpu and cpumask bookkeeping) is ``other_pages`` per MMU,
calibrated on the 1 GiB boot.
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


DEBIAN_6_1_PPC64EL = PpcBuild(
    name="Debian 6.1.176 ppc64el", image_end=0x2880000, init=(0x2000000, 0x24E0000),
    initrd=(0x2C90000, 0x2DC0000), fdt=(0x2DC0000, 0x2DF0000), rtas=(0x2FFF0000, 0x30000000),
    percpu_unit=603432 + 0 + 51928, prtb_bytes=1 << 24, mem_section_roots_bytes=8 << 16,
    other_pages={"radix": 8, "hash": 8})


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
    other_pages={"radix": 8}, rtas_work_area_bytes=256 << 10)


def build_of(m) -> PpcBuild:
    """The Debian ppc64el build the machine's kernel version and page size stand for."""
    if m.policy.name == "6.12" and m.arch.page_shift == 16:
        return DEBIAN_6_12_PPC64EL_64K
    return DEBIAN_6_1_PPC64EL


def boot_reservations(m) -> list:
    """early_init_devtree's reservations (start, size, name): the image, the initrd, the FDT
    and RTAS, where QEMU's layout has RAM under them."""
    b = build_of(m)
    return [(0, b.image_end, "kernel image"),
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
    if b.rtas_work_area_bytes:              # setup_arch → rtas_work_area_reserve_arena
        memblock_alloc_try_nid(m, b.rtas_work_area_bytes, a.PAGE_SIZE, None,
                               "RTAS work area arena", max_addr=1 << 30)
    if m.arch.mmu == "radix":
        memblock_alloc_try_nid(m, b.prtb_bytes, b.prtb_bytes, None, "radix process table")
    memblock_alloc_try_nid(m, b.mem_section_roots_bytes, 128, None, "mem_section roots")
    pcpu_embed_first_chunk(m)
    if sum(1 for size in m.boot_memory.values() if size) == 1:
        alloc_large_system_hash(m, 8, 13, "Dentry cache hash table")
        alloc_large_system_hash(m, 8, 14, "Inode-cache hash table")
    other = b.other_pages.get(m.arch.mmu, 0)
    if other:
        memblock_alloc_try_nid(m, other << a.page_shift, a.PAGE_SIZE, None,
                               "other early allocations")


def free_initmem(m) -> None:
    """init/main.c:free_initmem → arch/powerpc/mm/mem.c (6.1): the init sections."""
    b = build_of(m)
    free_reserved_area(m, b.init[0] >> m.arch.page_shift, b.init[1] >> m.arch.page_shift)
