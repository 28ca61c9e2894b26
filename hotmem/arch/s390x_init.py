"""s390x memory-hotplug hooks and boot (arch/s390/mm/{init,vmem}.c, arch/s390/kernel/setup.c,
drivers/s390/char/sclp_cmd.c; Linux 6.1.166): RAM from 0, standby memory after it.

Boot (setup_arch → paging_init): ``setup_memory_end`` sets max_pfn = max_low_pfn =
PFN_DOWN(ident_map_size) (online plus standby memory), ``vmem_map_init`` maps the memblock
memory into the identity map from memblock (vmem_add_range: 2 GiB region-third entries with
EDAT2, 1 MiB segments with EDAT1, else 4 KiB pages) and splits the lowcore's first LC_PAGES to 4
KiB (set_memory_4k), ``sparse_init`` populates the vmemmap with 1 MiB memblock blocks
(vmemmap_populate → add_pagetable; s390 calls vmemmap_alloc_block, not _buf, so the per-node
sparse buffer is freed whole by sparse_buffer_fini), ``free_area_init`` with ZONE_DMA up to
MAX_DMA_ADDRESS (2 GiB) and ZONE_NORMAL up to max_low_pfn (paging_init).

Standby memory (sclp_detect_standby_memory, an __initcall, so after memory_dev_init): storage
increments of ``rzm`` bytes, rn 1.. assigned (the boot memory), the rest up to rnmax standby;
sclp_add_standby_memory → add_memory_merged adds each run of standby increments, capped at
VMEM_MAX_PHYS and ident_map_size and aligned to the memory block size, one add_memory(0, addr,
block_size, MHP_NONE) per block; the blocks stay offline unless memhp_default_state says
otherwise. sclp_mem_notifier: MEM_GOING_ONLINE assigns the block's increments
(sclp_mem_change_state(…, 1)), MEM_CANCEL_ONLINE and MEM_OFFLINE unassign them, MEM_GOING_OFFLINE
refuses a block holding a standby increment; a NOTIFY_BAD becomes -EPERM (notifier_to_errno).
Each assign/unassign borrows a GFP_KERNEL | GFP_DMA page for its SCCB (do_assign_storage), as
detection does; the model takes and frees it.

Hotplug: arch_add_memory refuses an altmap (WARN_ON_ONCE, -EINVAL: 6.1 s390 has no
memmap_on_memory; ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE came with 6.9), maps the range with
vmem_add_mapping (-ERANGE beyond arch_get_mappable_range), then __add_pages; arch_remove_memory
is __remove_pages then vmem_remove_mapping. Tables and costs: hotmem/arch/s390x_mmu.py.

Machine parameters: ``standby_memory`` = a size, or {"size": ..., "rzm": ...}; ``rzm`` (the SCLP
storage increment size, sclp.rzm) defaults to 256 MiB, one section. ``cpu_flags`` may hold
QEMU's ``edat=off`` / ``edat2=off`` (both facilities are on by default);
``debug_pagealloc=on`` on the command line turns off large identity mappings. ``paging_levels``
is not used: the kernel space has 3 or 4 levels as setup_kernel_memory_layout leaves VMALLOC_END.

Not modelled or not verified (said here rather than guessed elsewhere):
- the kernel image (its text/rodata split into 4 KiB by __set_memory, its static
  swapper_pg_dir and invalid_pg_dir): the top table is a 16 KiB memblock stand-in, the image's
  pages and the further PTE tables its RO/X splits cost are not in the model (use
  ``boot_reserved_pages=`` for the image and the lowcore/stack memblock allocations);
- the default rzm: a hypervisor's choice (z/VM, LPAR; QEMU's old standby support picked the
  smallest power of two >= 1 MiB giving at most MAX_STORAGE_INCREMENTS increments) was not
  taken from any source for this model; pass ``rzm`` explicitly to match a machine;
- current QEMU s390-ccw-virtio offers no standby memory (not verified which release dropped it);
  this path models z/VM (DEFINE STORAGE ... STANDBY) and LPAR reserved storage;
- sclp_attach_storage for storage elements not yet attached and the hypervisor's answers:
  assign/unassign always succeed;
- the model keeps four zone slots (DMA, an always-empty DMA32, Normal, Movable) where the s390
  build has three (DMA, Normal, Movable): the page->flags zone field it stores is the slot
  number (Normal 2, Movable 3) and /proc/zoneinfo leaves DMA32 out (ZONE_TYPES); the layout of
  page->flags is the same (ZONES_WIDTH 2 either way);
- /proc/meminfo's PageTables (NR_PAGETABLE, which page_table_alloc raises for init_mm too)
  and DirectMap4k/1M/2G are counted in ``m.pgtables.nr_pagetable`` / ``direct_pages`` but not
  rendered; page-table pages are not flagged PageTable in /proc/kpageflags.
"""
from __future__ import annotations

import errno
import importlib
from dataclasses import dataclass, field, replace

from hotmem.arch import s390x_mmu as mmu
from hotmem.arch.ops import ArchOps
from hotmem.cmdline import memparse
from hotmem.errors import HotplugError
from hotmem.mm import memory_hotplug as mh
from hotmem.mm.page_alloc import (MIGRATE_UNMOVABLE, Gfp, kernel_alloc_pages, kernel_free_pages,
                                  numa_node_id)
from hotmem.resource import IORESOURCE_BUSY, IORESOURCE_SYSTEM_RAM, Resource
from hotmem.units import iec

# the module (the name hotmem.arch.s390x is taken by the profile function)
_s390x = importlib.import_module("hotmem.arch.s390x")

MiB, GiB = 1 << 20, 1 << 30
MAX_DMA_ADDRESS = 0x80000000            # asm/dma.h: __va(0x80000000); ZONE_DMA below 2 GiB
LC_PAGES = 2                            # asm/lowcore.h (LC_ORDER 1)
DEFAULT_RZM = 256 * MiB
GFP_KERNEL_DMA = Gfp("GFP_KERNEL|GFP_DMA", 0, MIGRATE_UNMOVABLE)   # ZONE_DMA is slot 0


def _size(v, what: str) -> int:
    n = memparse(v)
    if n < 0:
        raise HotplugError(errno.EINVAL, f"s390x: {what} {v!r}: must not be negative")
    return n


def parse_standby(standby_memory) -> tuple[int, int]:
    """(standby bytes, rzm) from the Machine's ``standby_memory`` argument."""
    if standby_memory is None:
        return 0, DEFAULT_RZM
    if isinstance(standby_memory, dict):
        unknown = set(standby_memory) - {"size", "rzm"}
        if unknown:
            raise HotplugError(errno.EINVAL, f"standby_memory: unknown keys {sorted(unknown)} "
                               "(size, rzm)")
        size = _size(standby_memory.get("size", 0), "standby size")
        rzm = _size(standby_memory.get("rzm", DEFAULT_RZM), "rzm")
    else:
        size, rzm = _size(standby_memory, "standby size"), DEFAULT_RZM
    if rzm < MiB or rzm & (rzm - 1):
        raise HotplugError(errno.EINVAL, f"s390x: rzm {rzm:#x}: the storage increment is a "
                           "power of two of at least 1 MiB")
    if size % rzm:
        raise HotplugError(errno.EINVAL, f"s390x: standby memory {size:#x} is not a multiple of "
                           f"the storage increment {rzm:#x}")
    return size, rzm


#: enum zone_type of Debian's 6.1 s390x build (MAX_NR_ZONES 3): what /proc/zoneinfo lists
ZONE_TYPES = ("DMA", "Normal", "Movable")


def profile_for(boot_memory, standby_memory):
    """The s390x profile for boot plus standby memory (ident_map_size = rnmax * rzm), with the
    model's four zone slots (module docstring)."""
    if isinstance(boot_memory, dict):
        boot = sum(_size(v, "boot memory") for v in boot_memory.values())
    else:
        boot = _size(boot_memory, "boot memory")
    standby, rzm = parse_standby(standby_memory)
    _s390x.memory_block_size_bytes(rzm)
    ident = boot + standby
    if ident <= 0:
        raise HotplugError(errno.EINVAL, "s390x: no memory")
    prof = _s390x.s390x(ident_map_size=ident)
    return replace(prof, page_flags=replace(prof.page_flags, max_nr_zones=4))


def _machine_facts(m) -> tuple[int, int]:
    """(standby bytes, rzm) of the machine (its S390xOps)."""
    return m.arch_ops.standby, m.arch_ops.rzm


def ident_map_size(m) -> int:
    """arch/s390/boot: online plus standby memory (no mem= cap modelled), capped at
    2^MAX_PHYSMEM_BITS and below the vmemmap by setup_kernel_memory_layout."""
    standby, _ = _machine_facts(m)
    boot = sum(m.boot_memory.values())
    return _s390x.setup_kernel_memory_layout(boot + standby).ident_map_size


def _layout(m):
    standby, _ = _machine_facts(m)
    return _s390x.setup_kernel_memory_layout(sum(m.boot_memory.values()) + standby)


def meminfo_extra(m) -> dict:
    """/proc/meminfo fields that differ on s390 (6.1): VmallocTotal = VMALLOC_END -
    VMALLOC_START of setup_kernel_memory_layout, Hugepagesize = HPAGE_SIZE (1 MiB), PageTables =
    NR_PAGETABLE (init_mm's PTE pages from page_table_alloc count too). DirectMap4k/1M/2G
    (pageattr.c:arch_report_meminfo) have no fields in the renderer yet: their counts are in
    ``m.pgtables.direct_pages``."""
    lay = _layout(m)
    return {"VmallocTotal": (lay.vmalloc_end - lay.vmalloc_start) >> 10,
            "Hugepagesize": 1 << (_s390x.HPAGE_SHIFT - 10),
            "PageTables": m.pgtables.nr_pagetable * (m.arch.PAGE_SIZE >> 10)}


# -- boot ---------------------------------------------------------------------------------------

def boot_layout(m):
    """The online storage: one range from 0 on node 0 (Debian's s390x 6.1 has no NUMA)."""
    if m.e820_ranges is not None:
        raise HotplugError(errno.EINVAL, "s390x has no e820 map: give boot_memory")
    if {n for n, s in m.boot_memory.items() if s} != {0}:
        raise HotplugError(errno.EINVAL, f"s390x (6.1, Debian: NUMA off): boot memory on node 0 "
                           f"only, not {m.boot_memory!r}")
    if set(m.cpu_nodes) != {0}:
        raise HotplugError(errno.EINVAL, "s390x (NUMA off): CPUs on node 0 only")
    _, rzm = _machine_facts(m)
    size = m.boot_memory[0]
    if size % rzm:
        raise HotplugError(errno.EINVAL, f"s390x: boot memory {size:#x} is not a multiple of the "
                           f"storage increment {rzm:#x}")
    return [(0, size, 0)], [], False


def memory_block_size_bytes(m) -> int:
    """arch/s390/mm/init.c:memory_block_size_bytes (6.1): max(MIN_MEMORY_BLOCK_SIZE, sclp.rzm)."""
    return _s390x.memory_block_size_bytes(_machine_facts(m)[1])


def zone_dma_limits(m):
    """arch/s390/mm/init.c:paging_init (6.1): max_zone_pfns[ZONE_DMA] = PFN_DOWN(MAX_DMA_ADDRESS),
    ZONE_NORMAL up to max_low_pfn; the model's DMA32 slot ends where DMA does (empty)."""
    pfn = MAX_DMA_ADDRESS >> m.arch.page_shift
    return pfn, pfn


def setup_memory_end(m) -> None:
    """arch/s390/kernel/setup.c:setup_memory_end (6.1): max_pfn = max_low_pfn =
    PFN_DOWN(ident_map_size) — standby memory included."""
    m.max_pfn = ident_map_size(m) >> m.arch.page_shift


def new_page_tables(m, pgd_pfn: int):
    """paging_init (6.1): init_mm.pgd = swapper_pg_dir, a region-third table (region-second
    when VMALLOC_END > 2^42). swapper_pg_dir is a 16 KiB crst in the kernel image; the model
    stands it in with a 16 KiB memblock block instead of the one page the generic boot took.
    setup_memory_end runs before paging_init and is applied here."""
    mb = m.memblock
    mb.reserved = [r for r in mb.reserved
                   if not (r.base == pgd_pfn << m.arch.page_shift and r.name == "pgtable PGD")]
    m.owners.memblock.pop(pgd_pfn, None)
    base = mb.alloc_top_down(mmu.CRST_SIZE, mmu.CRST_SIZE, 0, "pgtable PGD")
    m.owners.note_memblock(base >> m.arch.page_shift, 1 << mmu.CRST_ALLOC_ORDER, 0, "pgtable PGD")
    setup_memory_end(m)
    layout = _layout(m)
    flags = set(m.cpu_flags)
    pt = mmu.S390PageTables(layout.paging_levels, base, layout.vmalloc_start,
                            edat1="edat=off" not in flags, edat2="edat2=off" not in flags)
    pt.debug_pagealloc = m.cmdline_params.get("debug_pagealloc") == "on"
    return pt


def boot_map_memory(m, start: int, end: int, alloc_table) -> None:
    """vmem.c:vmem_map_init (6.1): vmem_add_range of a memblock range (tables from memblock;
    ``alloc_table`` is not used: s390 tables are 16 KiB / 2 KiB), then set_memory_4k(0,
    LC_PAGES) once the range holding the lowcore is mapped. -ENOMEM would leave the kernel
    without its identity map: raised."""
    rc = mmu.add_pagetable(m, start, end, True)
    if rc:
        raise HotplugError(-rc, f"vmem_add_range({start:#x}, {end - start:#x}) failed at boot")
    if start == 0:
        mmu.set_memory_4k(m, 0, LC_PAGES)


def boot_vmemmap_populate(m, start: int, end: int, nid: int, alloc_block, alloc_table) -> int:
    """sparse_init's vmemmap_populate (6.1) at boot: 1 MiB memblock blocks per segment (4 KiB
    pages without EDAT1). s390 never takes from the sparse buffer (vmemmap_alloc_block, not
    _buf): ``alloc_block`` is not called and the machine's sparse_buffer_fini frees it whole."""
    rc = mmu.add_pagetable(m, start, end, False)
    if rc:
        mmu.remove_pagetable(m, start, end, False)
    return rc


def boot_resources(m) -> None:
    """/proc/iomem at boot (System RAM for the online storage; the kernel's code/data children
    are not modelled), then the initcalls that run with slab available:
    sclp_detect_standby_memory."""
    for s, e, _ in boot_layout(m)[0]:
        m.resources.insert(Resource(s, e - 1, "System RAM", IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY))
    m.pgtables.slab_available = True
    sclp_detect_standby_memory(m)


# -- SCLP standby memory (drivers/s390/char/sclp_cmd.c, 6.1) ------------------------------------

@dataclass
class Sclp:
    """What sclp_cmd.c keeps: sclp.rzm, sclp.rnmax and sclp_mem_list (rn -> standby)."""

    rzm: int
    rnmax: int
    standby: dict = field(default_factory=dict)

    def rn2addr(self, rn: int) -> int:
        return (rn - 1) * self.rzm

    def state(self) -> tuple:
        return (self.rzm, self.rnmax, tuple(sorted(self.standby.items())))


def _sccb_page(m):
    """get_zeroed_page(GFP_KERNEL | GFP_DMA) for an SCCB: pfn or -1."""
    pfn, _ = kernel_alloc_pages(m, numa_node_id(m), GFP_KERNEL_DMA, 0, "sclp sccb")
    return pfn


def sclp_detect_standby_memory(m) -> int:
    """sclp_cmd.c:sclp_detect_standby_memory (6.1): the increment list (assigned: the boot
    memory; standby: the rest up to rnmax), the notifier, then sclp_add_standby_memory."""
    standby, rzm = _machine_facts(m)
    boot = m.boot_memory[0]
    sccb = _sccb_page(m)
    if sccb < 0:
        return -errno.ENOMEM
    s = Sclp(rzm, (boot + standby) // rzm)
    for rn in range(1, s.rnmax + 1):
        s.standby[rn] = rn > boot // rzm
        m.slab.kmalloc("sclp memory_increment", 24)
    m.arch_ops.sclp = s
    sclp_add_standby_memory(m)
    kernel_free_pages(m, sccb, 0)
    return 0


def sclp_add_standby_memory(m) -> None:
    """sclp_cmd.c:sclp_add_standby_memory + add_memory_merged (6.1): each run of consecutive
    standby increments, capped at VMEM_MAX_PHYS and ident_map_size, aligned to the block size,
    added block by block with add_memory(0, addr, block_size, MHP_NONE) (errors ignored)."""
    s = m.arch_ops.sclp
    runs, cur = [], None
    for rn in sorted(s.standby):
        if not s.standby[rn]:
            continue
        if cur and cur[0] + cur[1] == rn:
            cur[1] += 1
        else:
            cur = [rn, 1]
            runs.append(cur)
    vmem_max = m.arch.vmemmap_start
    ident = ident_map_size(m)
    bs = m.memory_block_size_bytes
    for first, num in runs:
        start, size = s.rn2addr(first), num * s.rzm
        if start >= vmem_max or start >= ident:
            continue
        size = min(size, vmem_max - start, ident - start)
        a_start = -(-start // bs) * bs
        a_size = max(0, (start + size) // bs * bs - a_start)
        m.log(f"sclp_cmd: Standby memory at {start:#x} ({a_size >> 20}M of {size >> 20}M usable)")
        for addr in range(a_start, a_start + a_size, bs):
            try:
                m.add_memory(0, addr, bs)
            except HotplugError as e:
                m.log(f"sclp_cmd: add_memory({addr:#x}, {bs:#x}) failed: {e}")


def _change_state(m, start: int, size: int, online: bool) -> int:
    """sclp_cmd.c:sclp_mem_change_state (6.1): assign (online) or unassign every increment the
    range touches; an assign that fails leaves the increment standby and the result -EIO."""
    s = m.arch_ops.sclp
    rc = 0
    for rn in sorted(s.standby):
        istart = s.rn2addr(rn)
        if start + size - 1 < istart:
            break
        if start > istart + s.rzm - 1:
            continue
        sccb = _sccb_page(m)                # do_assign_storage's SCCB
        r = -errno.ENOMEM if sccb < 0 else 0
        if sccb >= 0:
            kernel_free_pages(m, sccb, 0)
        if online:
            rc |= r                         # an unassign's result is ignored
        if rc == 0:
            s.standby[rn] = not online
    return -errno.EIO if rc else 0


def _contains_standby_increment(m, start: int, end: int) -> bool:
    s = m.arch_ops.sclp
    return any(st and not (end - 1 < s.rn2addr(rn) or start > s.rn2addr(rn) + s.rzm - 1)
               for rn, st in s.standby.items())


def memory_notifier(m, event: str, start_pfn: int, nr_pages: int) -> int:
    """sclp_cmd.c:sclp_mem_notifier (6.1) on the memory notifier chain (registered at boot,
    before any test module): 0, or -EPERM (NOTIFY_BAD through notifier_to_errno)."""
    if m.arch_ops.sclp is None:
        return 0
    start, size = start_pfn << m.arch.page_shift, nr_pages << m.arch.page_shift
    rc = 0
    if event == "MEM_GOING_OFFLINE":
        if _contains_standby_increment(m, start, start + size):
            rc = -errno.EPERM
    elif event == "MEM_GOING_ONLINE":
        rc = _change_state(m, start, size, True)
    elif event in ("MEM_CANCEL_ONLINE", "MEM_OFFLINE"):
        _change_state(m, start, size, False)
    return -errno.EPERM if rc else 0


def arch_get_memory_phys_device(m, start_pfn: int) -> int:
    """drivers/s390/char/sclp_cmd.c:arch_get_memory_phys_device (6.1): the storage increment
    the block starts in, PFN_PHYS(start_pfn) >> ilog2(sclp.rzm) (memoryN/phys_device)."""
    rzm = _machine_facts(m)[1]
    return (start_pfn << m.arch.page_shift) >> (rzm.bit_length() - 1)


# -- hotplug ------------------------------------------------------------------------------------

def mhp_range_allowed(m, start: int, size: int) -> bool:
    """arch/s390/mm/vmem.c:arch_get_mappable_range (6.1): [0, VMEM_MAX_PHYS)."""
    lo, hi = _s390x.arch_get_mappable_range(m.arch)
    return lo <= start and start + size - 1 <= hi


def vmemmap_populate(m, start: int, end: int, node: int, altmap) -> int:
    """vmem.c:vmemmap_populate (6.1): add_pagetable(direct=false), undone on failure; the node
    and the altmap are not used."""
    rc = mmu.add_pagetable(m, start, end, False)
    if rc:
        mmu.remove_pagetable(m, start, end, False)
    return rc


def vmemmap_free(m, start: int, end: int, altmap) -> None:
    """vmem.c:vmemmap_free (6.1): remove_pagetable(direct=false)."""
    mmu.remove_pagetable(m, start, end, False)


def vmem_add_mapping(m, start: int, size: int) -> int:
    """vmem.c:vmem_add_mapping (6.1): -ERANGE outside arch_get_mappable_range; a failed
    vmem_add_range is removed again."""
    lo, hi = _s390x.arch_get_mappable_range(m.arch)
    if start < lo or start + size > hi + 1:
        return -errno.ERANGE
    rc = mmu.add_pagetable(m, start, start + size, True)
    if rc:
        mmu.remove_pagetable(m, start, start + size, True)
    return rc


def vmem_remove_mapping(m, start: int, size: int) -> None:
    """vmem.c:vmem_remove_mapping (6.1)."""
    mmu.remove_pagetable(m, start, start + size, True)


def arch_add_memory(m, nid: int, start: int, size: int, altmap) -> int:
    """arch/s390/mm/init.c:arch_add_memory (6.1): an altmap WARNs and is refused (-EINVAL);
    vmem_add_mapping, then __add_pages (mapping removed again on failure)."""
    if altmap is not None:
        mmu._warn_once(m, "arch_add_memory", "arch_add_memory: WARN_ON_ONCE(params->altmap)")
        return -errno.EINVAL
    rc = vmem_add_mapping(m, start, size)
    if rc:
        return rc
    a = m.arch
    rc = mh.__add_pages(m, nid, start >> a.page_shift, size >> a.page_shift, altmap)
    if rc:
        vmem_remove_mapping(m, start, size)
    return rc


def arch_remove_memory(m, start: int, size: int, altmap) -> None:
    """arch/s390/mm/init.c:arch_remove_memory (6.1): __remove_pages, vmem_remove_mapping."""
    a = m.arch
    mh.__remove_pages(m, start >> a.page_shift, size >> a.page_shift, altmap)
    vmem_remove_mapping(m, start, size)


def device_memory_base(m) -> int:
    """s390 has no device-memory region: the first block-aligned address beyond the online and
    standby storage (ident_map_size)."""
    bs = m.memory_block_size_bytes
    return -(-ident_map_size(m) // bs) * bs


def first_hotplug_address(m) -> int:
    """The first standby storage increment (sclp.standby, rn2addr), aligned up to the memory
    block size as sclp_add_standby_memory/add_memory_merged align it; EINVAL without standby
    memory."""
    sclp = m.arch_ops.sclp
    rns = [rn for rn, standby in sorted(sclp.standby.items()) if standby] if sclp else []
    if not rns:
        raise HotplugError(errno.EINVAL, "s390x: the machine has no standby memory")
    bs = m.memory_block_size_bytes
    return -(-sclp.rn2addr(rns[0]) // bs) * bs


#: s390 names of the model's generic table levels (asm/pgtable.h: segment = PMD, region-third =
#: PUD, region-second = P4D; page tables are 2 KiB, two to a page)
S390_LEVELS = {"PTE": "page", "PMD": "segment", "PUD": "region3", "P4D": "region2",
               "PGD": "region1"}


class S390xOps(ArchOps, hooks_from=globals()):
    """s390x (LPAR or z/VM) with SCLP standby storage: hooks of arch/s390/mm/{init,vmem}.c; owns
    the standby size, the storage increment size (rzm) and the SCLP increment list."""

    name = "s390x"
    hotplug_method = "standby"
    ZONE_TYPES = ZONE_TYPES
    level_names = S390_LEVELS

    def __init__(self, profile, standby_memory=None):
        super().__init__(profile)
        #: (standby bytes, sclp.rzm) from the Machine's ``standby_memory``
        self.standby, self.rzm = parse_standby(standby_memory)
        #: sclp_cmd.c's increment list, set by sclp_detect_standby_memory at boot
        self.sclp = None

    @property
    def board(self) -> str:
        return (f"s390 LPAR or z/VM guest with standby storage (SCLP storage increment "
                f"{iec(self.rzm)}; QEMU offers no standby memory)")

    @property
    def paging_description(self) -> str:
        levels = self.profile.paging_levels
        names = {3: "region-third, segment, page", 4: "region-second, region-third, segment, page"}
        return f"{levels}-level DAT tables ({names.get(levels, '?')})"


    def arch_state(self) -> dict:
        return {} if self.sclp is None else {"sclp": self.sclp}
