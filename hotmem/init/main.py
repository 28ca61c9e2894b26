"""The boot steps of start_kernel / mm_init / kernel_init (init/main.c, Linux 6.1) that are not a
function of one mm/ file: the boot page tables, the early reservations the model cannot derive,
the watermarks, the late frees and the state userspace finds. ``Machine.BOOT_STEPS`` lists them
with the mm/ and drivers/ steps, in the kernel's order. Boot steps raise HotplugError where the
kernel panics.
"""
from __future__ import annotations

import functools

from hotmem.mm import page_alloc, watermark
from hotmem.mm.memblock import memblock_alloc_page
from hotmem.mm.page_alloc import (GFP_HIGHUSER_MOVABLE, GFP_KERNEL, alloc_pages_node,
                                  free_reserved_area)

#: The one-figure form of the boot reservations (firmware tables, percpu areas, hashes, swiotlb,
#: ...), in pages on node 0, calibrated so that the default QEMU pc machine (1 GiB, Debian
#: 6.1.176) shows the real kernel's DMA32 managed count (225523): used where the arch does not
#: model them by cause (ArchOps.early_allocations) and by `hotmem validate`'s recalibration.
QEMU_PC_EXTRA_RESERVED_PAGES = 15078
#: Pages the reference kernel frees after its initcalls (initrd, init sections, the decrypted
#: and alignment gaps: 1012K + 2036K + 2820K + 2040K + 1124K in its boot log), i.e. after the boot
#: watermarks were computed and never recomputed for: they explain the baseline's watermarks.
QEMU_PC_LATE_FREED_PAGES = (1012 + 2036 + 2820 + 2040 + 1124) // 4
#: The same two calibrations for the other kernel builds hotmem is validated against, by kernel
#: version: Debian 13's 6.12.118 (linux-image-6.12.118+deb13-amd64-unsigned) on the same QEMU pc
#: machine reserves 13373 pages (its boot MemTotal, 924272 kB, against the model's boot) and frees
#: late the initrd, the decrypted gap, its init sections and the rodata/data gap: 1008K + 2028K +
#: 4180K + 448K in its boot log (no text/rodata gap in this build).
QEMU_PC_CALIBRATION = {"6.12": (13373, (1008 + 2028 + 4180 + 448) // 4)}


def qemu_pc_calibration(kernel: str) -> tuple[int, int]:
    """(boot reserved pages, late-freed pages) of the Debian build of ``kernel`` ("6.1",
    "6.12"; other versions take 6.1's) on the QEMU pc reference machine."""
    return QEMU_PC_CALIBRATION.get(kernel, (QEMU_PC_EXTRA_RESERVED_PAGES,
                                            QEMU_PC_LATE_FREED_PAGES))

_LATE = "initrd and init sections"


def _boot_pgtable(m, level: str, node: int) -> int:
    return memblock_alloc_page(m, node, f"pgtable {level}")


def paging_init(m) -> None:
    """setup_arch → paging_init (x86: init_mem_mapping): the PGD, then the direct map of every
    boot RAM range, all tables from memblock (the arch's new_page_tables / boot_map_memory)."""
    a, ops = m.arch, m.arch_ops
    if m.boot_by_cause and ops.init_mem_mapping(m):
        return
    m.pgtables = ops.new_page_tables(m, memblock_alloc_page(m, 0, "pgtable PGD"))
    table = functools.partial(_boot_pgtable, m)
    for s, e, _ in list(m.memblock.mem_pfn_ranges(a.page_shift)):
        ops.boot_map_memory(m, s << a.page_shift, e << a.page_shift, table)


def reserve_boot_allocations(m) -> None:
    """The early boot allocations: by cause where the arch's boot_layout set m.boot_by_cause
    (ArchOps.early_allocations; the initrd it reserved is freed late), else the one-figure form
    (boot_reserved_pages, boot_late_freed_pages) on the first node with memory, calibrated on
    the QEMU pc reference unless given."""
    a = m.arch
    if m.boot_by_cause:
        m.arch_ops.early_allocations(m)
        initrd = next((r for r in m.memblock.reserved if r.name == "initrd"), None)
        if initrd is not None:
            base = initrd.base >> a.page_shift
            m.late_freed = range(base, base + (initrd.size >> a.page_shift))
            m.owners.note_memblock(base, len(m.late_freed), initrd.nid, "initrd")
        return
    reserved, late = qemu_pc_calibration(m.policy.name)
    if m.boot_reserved_pages is None:
        m.boot_reserved_pages = reserved if m.boot_calibrated else 0
    if m.boot_late_freed_pages is None:
        m.boot_late_freed_pages = late if m.boot_calibrated else 0
    nid0 = min(n for n in m.boot_memory if m.boot_memory[n])
    for what, n in (("boot allocations", m.boot_reserved_pages),
                    (_LATE, m.boot_late_freed_pages)):
        if n:
            base = m.memblock.alloc_top_down(n << a.page_shift, a.PAGE_SIZE, nid0,
                                             what) >> a.page_shift
            m.owners.note_memblock(base, n, nid0, what)
            if what == _LATE:
                m.late_freed = range(base, base + n)


def init_per_zone_wmark_min(m) -> None:
    """The boot watermarks (hotmem/mm/page_alloc.py:boot_watermarks): setup_per_cpu_pageset, the
    postcore initcall init_per_zone_wmark_min and hugepage_init (6.1)."""
    m.page_alloc = watermark.machine_page_alloc_globals(m)
    page_alloc.boot_watermarks(m)


def free_initmem(m) -> None:
    """kernel_init → free_initrd_mem / free_initmem (6.1): the late pages to the buddy through
    the per-CPU lists, after the watermarks were computed."""
    late = m.late_freed
    free_reserved_area(m, late.start, late.stop)
    if late:
        m.memblock.reserved = [r for r in m.memblock.reserved if r.name not in (_LATE, "initrd")]
        m.owners.memblock.pop(late.start, None)
    if m.boot_by_cause:
        m.arch_ops.free_initmem(m)


def alternative_instructions(m) -> None:
    """start_kernel → check_bugs → alternative_instructions (6.1): image pages the arch frees
    before the initcalls, so before the boot watermarks."""
    if m.boot_by_cause:
        m.arch_ops.alternative_instructions(m)


def warm_pcp_lists(m) -> None:
    """By the time userspace runs, the kernel has made order-0 unmovable and movable
    allocations on every node with memory: their per-CPU lists hold a refill batch. One
    allocation of each kind per node and CPU, freed again, leaves the model in that state.
    (Which pages sit there is history; the model refills lowest pfn first.)"""
    for nid, pgdat in m.pgdats.items():
        if not pgdat.has_memory:
            continue
        for cpu in range(m.nr_cpus):
            for gfp in (GFP_KERNEL, GFP_HIGHUSER_MOVABLE):
                pfn, _ = alloc_pages_node(m, nid, gfp, 0, cpu)
                if pfn >= 0:
                    m.allocator.free_pages(pfn, 0, cpu)


def arch_boot_resources(m) -> None:
    """The arch's boot iomem resources (x86: e820__reserve_resources and the kernel image)."""
    m.arch_ops.boot_resources(m)
