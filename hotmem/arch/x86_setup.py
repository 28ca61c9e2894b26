"""The x86_64 boot allocations that scale with the machine, by cause (Debian's amd64 builds on
QEMU ``pc``): the kernel image and brk, the boot page tables as init_mem_mapping builds them,
what setup_arch, start_kernel and mm_init reserve in memblock besides the boot memmap, and what
the kernel frees again around its initcalls. Read in the 6.1 sources and checked against real
boots logged with ``memblock=debug`` (tests/data/kernel-6.1-boot, docs/boot-reservations.md).

What no cause below accounts for -- the early fixmap tables (spp_getpage), firmware-map and e820
resource entries, cpumasks, percpu bookkeeping, saved command lines, all packed into a few pages --
is a build's ``other_early_pages``, calibrated on the 1 GiB reference and the same for every
layout the readings cover.
"""
from __future__ import annotations

from dataclasses import dataclass

from hotmem.mm.memblock import memblock_alloc_try_nid
from hotmem.mm.page_alloc import alloc_large_system_hash, free_reserved_area

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class KernelBuild:
    """What one distribution kernel build fixes about the boot: its image layout (the vmlinux
    section headers and /proc/kallsyms of the booted kernel, nokaslr) and the sizes of the
    structures its config makes (read from its memblock=debug boot log)."""
    name: str
    #: _text .. the end of the brk that setup_arch's reserve_brk keeps
    image_reserved: tuple
    #: what free_initmem / mark_rodata_ro hand back after the initcalls (arch/x86/mm/init.c,
    #: init_64.c): unused bss_decrypted, [__init_begin, __init_end), the alignment gaps
    late_frees: tuple
    #: [__smp_locks, __smp_locks_end): alternative_instructions frees it in start_kernel
    smp_locks: tuple
    #: head_64.S's init_top_pgt (the boot PGD), level3_ident_pgt and level2_ident_pgt (the
    #: direct map's PUD and first-GiB PMD with 4-level paging)
    init_top_pgt: int
    level3_ident_pgt: int
    level2_ident_pgt: int
    #: early_alloc_pgt_buf: INIT_PGT_BUF_SIZE = 4 * 4 pages of brk (CONFIG_X86_5LEVEL,
    #: CONFIG_RANDOMIZE_MEMORY), after dmi_alloc's page
    pgt_buf: tuple
    #: "percpu: Embedded N pages/cpu sS rR dD"
    percpu_static: int
    percpu_reserved: int
    percpu_dynamic: int
    #: sizeof(pg_data_t); alloc_node_data rounds it up to a page before 6.10 (commit "x86/numa:
    #: no need to round up sizeof(pg_data_t)" dropped that)
    pg_data_t_size: int
    node_data_page_aligned: bool
    #: sizeof(struct mem_section_usage) + usemap_size() per section: the subsection map (8), the
    #: rcu_head of "fix race in accessing memory_section->usage" (16, backported to 6.1.y),
    #: 64 pageblocks x 4 bits (32) -- "448 bytes" for 8 sections
    section_usage_bytes: int
    #: what the reference boot reserves that no cause here explains (the module docstring)
    other_early_pages: int


#: Debian 12's 6.1.176 (linux-image-6.1.0-50-amd64-unsigned)
DEBIAN_6_1 = KernelBuild(
    name="Debian 6.1.176 amd64", image_reserved=(0x1000000, 0x4411000),
    late_frees=(("unused decrypted", 0x4203000, 0x4400000),
                ("unused kernel image (initmem)", 0x3042000, 0x3303000),
                ("unused kernel image (text/rodata gap)", 0x1E02000, 0x2000000),
                ("unused kernel image (rodata/data gap)", 0x28E7000, 0x2A00000)),
    smp_locks=(0x3303000, 0x330C000), init_top_pgt=0x2A10000, level3_ident_pgt=0x2A12000,
    level2_ident_pgt=0x2A13000, pgt_buf=(0x4401000, 0x4411000), percpu_static=217088,
    percpu_reserved=8192, percpu_dynamic=28672, pg_data_t_size=174208,
    node_data_page_aligned=True, section_usage_bytes=56, other_early_pages=5)

#: Debian 13's 6.12.118 (linux-image-6.12.118+deb13-amd64-unsigned): no text/rodata gap, a
#: 40K lock table, 66 percpu pages per CPU, pg_data_t not rounded up
DEBIAN_6_12 = KernelBuild(
    name="Debian 6.12.118 amd64", image_reserved=(0x1000000, 0x3C11000),
    late_frees=(("unused decrypted", 0x3A05000, 0x3C00000),
                ("unused kernel image (initmem)", 0x331C000, 0x3731000),
                ("unused kernel image (rodata/data gap)", 0x2B90000, 0x2C00000)),
    smp_locks=(0x3731000, 0x373B000), init_top_pgt=0x2C22000, level3_ident_pgt=0x2C24000,
    level2_ident_pgt=0x2C25000, pgt_buf=(0x3C01000, 0x3C11000), percpu_static=233472,
    percpu_reserved=8192, percpu_dynamic=28672, pg_data_t_size=174464,
    node_data_page_aligned=False, section_usage_bytes=56, other_early_pages=5)

#: the build each kernel-version policy boots as (versions without a validated build of their
#: own take 6.1's, as they took its calibrated figure before)
BUILDS = {"6.12": DEBIAN_6_12}


def kernel_build(m) -> KernelBuild:
    """The KernelBuild a Machine boots, by its policy's version."""
    return BUILDS.get(m.policy.name, DEBIAN_6_1)


ISA_END_ADDRESS = 0x100000
#: the initrd QEMU loads below the top of RAM under 4 GiB (hotmem validate's initramfs as
#: recorded in tests/data/kernel-6.1-readings: "Freeing initrd memory: 1012K")
DEFAULT_INITRD_PAGES = 253
PCPU_MIN_UNIT_SIZE = 32 * KiB
PERCPU_ATOM = 2 * MiB                       # pcpu_fc_alloc on x86_64: PMD_SIZE atoms (cpu_has_pse)
MAX_DMA_ADDRESS = 16 * MiB                   # pcpu_fc_alloc's lower limit (__pa(MAX_DMA_ADDRESS))
SMP_CACHE_BYTES = 64
#: kernel/dma/swiotlb.c (6.1): IO_TLB_DEFAULT_SIZE bounce buffer in slots of 1 << IO_TLB_SHIFT
#: bytes, each with a 24-byte struct io_tlb_slot
IO_TLB_DEFAULT_SIZE, IO_TLB_SHIFT, IO_TLB_SLOT_BYTES = 64 * MiB, 11, 24
#: include/linux/mmzone.h with CONFIG_PAGE_EXTENSION: struct mem_section is 32 bytes (page_ext
#: and the power-of-two pad), so a root page holds 128 sections (16 GiB)
MEM_SECTION_SIZE = 32


def alloc_node_data(m, nid: int) -> None:
    """arch/x86/mm/numa.c:alloc_node_data (6.1): pg_data_t from the node's own memory, or
    from any node for a node whose only memory is hot-pluggable."""
    b = kernel_build(m)
    size = b.pg_data_t_size
    if b.node_data_page_aligned:
        size = -(-size // m.arch.PAGE_SIZE) * m.arch.PAGE_SIZE
    memblock_alloc_try_nid(m, size, SMP_CACHE_BYTES, nid, f"NODE_DATA({nid})")


def arch_alloc_nodedata(m, nid: int) -> None:
    """mm/page_alloc.c:free_area_init (6.1) for a possible node that no memory brought online
    ("Initializing node N as memoryless"): arch_alloc_nodedata, a memblock_alloc of
    sizeof(pg_data_t) with no node preference."""
    memblock_alloc_try_nid(m, kernel_build(m).pg_data_t_size, SMP_CACHE_BYTES, None,
           f"NODE_DATA({nid}) (memoryless)")


def pcpu_embed_first_chunk(m) -> None:
    """mm/percpu.c:pcpu_build_alloc_info + pcpu_embed_first_chunk (6.1): one group per node,
    units of the size that wastes the fewest CPUs (the best ``upa``), each group's units from
    pcpu_fc_alloc on its node (PMD aligned, above MAX_DMA_ADDRESS), the tail of every unit past
    the static + reserved + dynamic areas freed again."""
    a, b = m.arch, kernel_build(m)
    size_sum = -(-(b.percpu_static + b.percpu_reserved + b.percpu_dynamic) // a.PAGE_SIZE) * \
        a.PAGE_SIZE
    min_unit = max(size_sum, PCPU_MIN_UNIT_SIZE)
    alloc_size = -(-min_unit // PERCPU_ATOM) * PERCPU_ATOM
    upa = alloc_size // min_unit
    while alloc_size % upa or (alloc_size // upa) % a.PAGE_SIZE:
        upa -= 1
    groups = {nid: n for nid, n in sorted(m.cpu_nodes.items()) if n}
    nr_cpus = sum(groups.values())
    best, last_allocs = upa, None
    for u in range(upa, 0, -1):
        if alloc_size % u or (alloc_size // u) % a.PAGE_SIZE:
            continue
        allocs = sum(-(-n // u) for n in groups.values())
        wasted = sum(-(-n // u) * u - n for n in groups.values())
        if wasted > nr_cpus // 3:
            continue
        if last_allocs is not None and allocs > last_allocs:
            break
        last_allocs, best = allocs, u
    unit_size = alloc_size // best
    for nid, n in groups.items():
        nr_units = -(-n // best) * best
        node = nid if m.boot_memory.get(nid) else None
        base = memblock_alloc_try_nid(m, nr_units * unit_size, PERCPU_ATOM, node, "percpu first chunk",
                      min_addr=MAX_DMA_ADDRESS)
        for unit in range(n):
            start = base + unit * unit_size + size_sum
            m.memblock.unreserve(start, unit_size - size_sum)
        for unit in range(n, nr_units):                  # units of no CPU: freed whole
            m.memblock.unreserve(base + unit * unit_size, unit_size)


def vfs_caches_init_early(m) -> None:
    """fs/dcache.c:vfs_caches_init_early (6.1): the dentry (scale 13) and inode (scale 14) hash
    tables from memblock -- only while ``hashdist`` is 0, i.e. with one node with memory
    (mm/page_alloc.c:fixup_hashdist); otherwise vfs_caches_init vmallocs them after boot."""
    if sum(1 for size in m.boot_memory.values() if size) != 1:
        return
    alloc_large_system_hash(m, 8, 13, "Dentry cache hash table")
    alloc_large_system_hash(m, 8, 14, "Inode-cache hash table")


def max_possible_pfn_above_4g(m) -> bool:
    """Whether max_possible_pfn passes 4 GiB after acpi_numa_memory_affinity_init (6.1): RAM
    there, or the SRAT's hot-pluggable range, which QEMU pc gives its device memory (maxmem
    above the RAM, from 4 GiB up) -- so every hotplug-capable QEMU pc guest."""
    has_device_memory = m.maxmem > sum(m.boot_memory.values()) and m.slots
    return bool(has_device_memory) or m.max_pfn > (4 * GiB) >> m.arch.page_shift


def swiotlb_init(m) -> None:
    """arch/x86/kernel/pci-dma.c:pci_swiotlb_detect + kernel/dma/swiotlb.c:swiotlb_init_remap
    (6.1): with memory possible above 4 GiB, the 64 MiB bounce buffer from memblock_alloc_low
    (top-down below 4 GiB) and its slot array."""
    a = m.arch
    if not max_possible_pfn_above_4g(m):
        return
    memblock_alloc_try_nid(m, IO_TLB_DEFAULT_SIZE, a.PAGE_SIZE, None, "swiotlb", max_addr=4 * GiB)
    nslabs = IO_TLB_DEFAULT_SIZE >> IO_TLB_SHIFT
    memblock_alloc_try_nid(m, -(-nslabs * IO_TLB_SLOT_BYTES // a.PAGE_SIZE) * a.PAGE_SIZE, a.PAGE_SIZE, None,
           "swiotlb slots")


def sparse_init_early(m) -> None:
    """mm/sparse.c (6.1): sparse_alloc_section_roots (the mem_section root array, one pointer
    per root of the physical space this boot can address, NUMA_NO_NODE), sparse_index_alloc
    (a root page for every root with present sections, on the node of its first section) and
    each node's usemaps (sparse_early_usemaps_alloc_pgdat_section, node-local, packed)."""
    a = m.arch
    physmem_bits = 52 if a.paging_levels == 5 else 46
    section_bits = a.section_size_bits
    per_root = a.PAGE_SIZE // MEM_SECTION_SIZE
    nr_roots = -(-(1 << (physmem_bits - section_bits)) // per_root)
    memblock_alloc_try_nid(m, 8 * nr_roots, SMP_CACHE_BYTES, None, "mem_section roots")
    sections: dict[int, int] = {}                 # present section -> node
    for b, e, nid in m.memblock.mem_pfn_ranges(a.page_shift):
        for sec in range(b >> (section_bits - a.page_shift),
                         ((e - 1) >> (section_bits - a.page_shift)) + 1):
            sections.setdefault(sec, nid)
    roots: dict[int, int] = {}
    for sec in sorted(sections):
        roots.setdefault(sec // per_root, sections[sec])
    for root, nid in roots.items():
        memblock_alloc_try_nid(m, a.PAGE_SIZE, SMP_CACHE_BYTES, nid, "mem_section root")
    for nid in sorted(set(sections.values())):
        n = sum(1 for v in sections.values() if v == nid)
        memblock_alloc_try_nid(m, kernel_build(m).section_usage_bytes * n, SMP_CACHE_BYTES, nid, "usemap")


def early_allocations(m) -> None:
    """setup_arch → initmem_init, start_kernel → setup_per_cpu_areas, vfs_caches_init_early,
    mm_init → mem_init's swiotlb, and the rest (other_early_pages), NUMA_NO_NODE as most of
    it is (the mem_section roots, the fixmap tables, the firmware-map entries)."""
    nodes = sorted(set(m.boot_memory) | set(m.cpu_nodes))
    for nid in nodes:
        if m.boot_memory.get(nid):
            alloc_node_data(m, nid)
    sparse_init_early(m)
    for nid in nodes:
        if not m.boot_memory.get(nid):
            arch_alloc_nodedata(m, nid)
    pcpu_embed_first_chunk(m)
    vfs_caches_init_early(m)
    swiotlb_init(m)
    other = kernel_build(m).other_early_pages
    if other:
        memblock_alloc_try_nid(m, other << m.arch.page_shift, m.arch.PAGE_SIZE, None, "other early allocations")


def alternative_instructions(m) -> None:
    """arch/x86/kernel/alternative.c:alternative_instructions (6.1): the SMP lock table is freed
    unless the kernel was patched for one present CPU while more are possible; QEMU's
    ``-smp N`` makes every possible CPU present, so it is always freed here."""
    _free_image_range(m, *kernel_build(m).smp_locks)


def _free_image_range(m, start: int, end: int) -> None:
    free_reserved_area(m, start >> m.arch.page_shift, end >> m.arch.page_shift)


def free_initmem(m) -> None:
    """kernel_init → free_initmem (mem_encrypt_free_decrypted_mem, the init sections) and
    mark_rodata_ro's alignment gaps (arch/x86/mm/init.c, init_64.c, 6.1)."""
    for _, start, end in kernel_build(m).late_frees:
        _free_image_range(m, start, end)


class _BootTables:
    """alloc_low_pages (arch/x86/mm/init.c, 6.1) during init_mem_mapping: the image's static
    ident tables first, then the brk pgt_buf (unless the range being mapped overlaps it), then
    memblock top-down inside what is already mapped [min_pfn_mapped, max_pfn_mapped)."""

    def __init__(self, m):
        a = m.arch
        self.m = m
        b = kernel_build(m)
        self.static = ({"PUD": [b.level3_ident_pgt >> a.page_shift],
                        "PMD": [b.level2_ident_pgt >> a.page_shift]}
                       if a.paging_levels == 4 else {})
        self.pgt_buf_end, self.pgt_buf_top = (b.pgt_buf[0] >> a.page_shift,
                                              b.pgt_buf[1] >> a.page_shift)
        self.can_use_brk_pgt = True
        self.min_pfn_mapped = self.max_pfn_mapped = 0

    def __call__(self, level: str, node) -> int:
        m, a = self.m, self.m.arch
        if self.static.get(level):
            pfn = self.static[level].pop(0)
            m.owners.note_memblock(pfn, 1, 0, f"pgtable {level}")     # in the kernel image
            return pfn
        if self.can_use_brk_pgt and self.pgt_buf_end < self.pgt_buf_top:
            self.pgt_buf_end += 1
            m.owners.note_memblock(self.pgt_buf_end - 1, 1, 0, f"pgtable {level}")   # brk
            return self.pgt_buf_end - 1
        if self.min_pfn_mapped >= self.max_pfn_mapped:
            return -1
        base = m.memblock.alloc_top_down(a.PAGE_SIZE, a.PAGE_SIZE, None, f"pgtable {level}",
                                         min_addr=self.min_pfn_mapped << a.page_shift,
                                         max_addr=self.max_pfn_mapped << a.page_shift)
        pfn = base >> a.page_shift
        m.owners.note_memblock(pfn, 1, -1, f"pgtable {level}")
        return pfn


def init_mem_mapping(m, map_range) -> None:
    """arch/x86/mm/init.c:init_mem_mapping (6.1, memblock top-down): the ISA range, then
    memory_map_top_down over [1 MiB, max_pfn) in growing steps from the top, each step's RAM by
    init_range_memory_mapping; page tables from _BootTables. ``map_range(start, end, alloc)``
    is init_memory_mapping of one range."""
    a = m.arch
    tables = _BootTables(m)
    pmd_size = 1 << (a.page_shift + 9)

    def init_range_memory_mapping(r_start: int, r_end: int) -> int:
        mapped = 0
        for b, e, _ in list(m.memblock.mem_pfn_ranges(a.page_shift)):
            start = min(max(b << a.page_shift, r_start), r_end)
            end = min(max(e << a.page_shift, r_start), r_end)
            if start >= end:
                continue
            tables.can_use_brk_pgt = (max(start, tables.pgt_buf_end << a.page_shift)
                                      >= min(end, tables.pgt_buf_top << a.page_shift))
            map_range(start, end, tables)
            tables.max_pfn_mapped = max(tables.max_pfn_mapped, end >> a.page_shift)
            mapped += end - start
            tables.can_use_brk_pgt = True
        return mapped

    map_range(0, ISA_END_ADDRESS, tables)          # "regardless of memory holes"
    tables.max_pfn_mapped = ISA_END_ADDRESS >> a.page_shift
    m.boot_direct_map_holes = [(0, ISA_END_ADDRESS >> a.page_shift)]
    map_start, map_end = ISA_END_ADDRESS, m.max_pfn << a.page_shift
    # memory_map_top_down: the first step ends at the top of the highest free PMD
    addr = m.memblock.alloc_top_down(pmd_size, pmd_size, None, "init_mem_mapping",
                                     min_addr=map_start, max_addr=map_end)
    m.memblock.unreserve(addr, pmd_size)
    real_end = addr + pmd_size
    step_size, mapped_ram_size = pmd_size, 0
    tables.max_pfn_mapped = 0
    tables.min_pfn_mapped = real_end >> a.page_shift
    last_start = real_end
    while last_start > map_start:
        if last_start > step_size:
            start = max((last_start - 1) // step_size * step_size, map_start)
        else:
            start = map_start
        mapped_ram_size += init_range_memory_mapping(start, last_start)
        last_start = start
        tables.min_pfn_mapped = last_start >> a.page_shift
        if mapped_ram_size >= step_size:
            step_size <<= (a.page_shift + 9) - a.page_shift - 1   # get_new_step_size: PMD_SHIFT - PAGE_SHIFT - 1
    if real_end < map_end:
        init_range_memory_mapping(real_end, map_end)
