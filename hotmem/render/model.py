"""Plain data for the kernel's text files: each dataclass holds exactly the values a file prints.

Counter names and their order follow Linux 6.1 (include/linux/mmzone.h, vm_event_item.h and
mm/vmstat.c:vmstat_text) for the Debian x86_64 config (kernel-reference §0.2): ZONE_DMA,
ZONE_DMA32, ZONE_DEVICE, NUMA, SWAP, ZSMALLOC, ZSWAP, KSM, NUMA_BALANCING, MIGRATION, COMPACTION,
HUGETLB_PAGE, TRANSPARENT_HUGEPAGE (+ PUD), MEMORY_BALLOON (+ BALLOON_COMPACTION), MEMORY_FAILURE;
no HIGHMEM, CMA, SHADOW_CALL_STACK, DEBUG_TLBFLUSH.

Values are the printed ones: kB where the file prints kB, pages where it prints pages, and the
/proc/vmstat THP items and pgpgin/pgpgout already scaled the way mm/vmstat.c scales them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from typing import ClassVar, Iterable, Mapping

# enum zone_type (include/linux/mmzone.h, 6.1) with ZONE_DMA, ZONE_DMA32, ZONE_DEVICE, no HIGHMEM.
from hotmem.mm.mmzone import MAX_NR_ZONES, ZONE_NAMES  # noqa: E402
# include/linux/mmzone.h (6.1): MAX_ORDER 11 (orders 0..10), as /proc/buddyinfo prints them.
MAX_ORDER = 11

# enum zone_stat_item (include/linux/mmzone.h, 6.1); nr_zspages with CONFIG_ZSMALLOC.
ZONE_STAT_ITEMS: tuple[str, ...] = (
    "nr_free_pages",
    "nr_zone_inactive_anon",
    "nr_zone_active_anon",
    "nr_zone_inactive_file",
    "nr_zone_active_file",
    "nr_zone_unevictable",
    "nr_zone_write_pending",
    "nr_mlock",
    "nr_bounce",
    "nr_zspages",
    "nr_free_cma",
)

# enum numa_stat_item (include/linux/mmzone.h, 6.1; CONFIG_NUMA).
NUMA_STAT_ITEMS: tuple[str, ...] = (
    "numa_hit",
    "numa_miss",
    "numa_foreign",
    "numa_interleave",
    "numa_local",
    "numa_other",
)

# enum node_stat_item (include/linux/mmzone.h, 6.1); nr_swapcached with CONFIG_SWAP,
# pgpromote_* with CONFIG_NUMA_BALANCING, no nr_shadow_call_stack.
NODE_STAT_ITEMS: tuple[str, ...] = (
    "nr_inactive_anon",
    "nr_active_anon",
    "nr_inactive_file",
    "nr_active_file",
    "nr_unevictable",
    "nr_slab_reclaimable",
    "nr_slab_unreclaimable",
    "nr_isolated_anon",
    "nr_isolated_file",
    "workingset_nodes",
    "workingset_refault_anon",
    "workingset_refault_file",
    "workingset_activate_anon",
    "workingset_activate_file",
    "workingset_restore_anon",
    "workingset_restore_file",
    "workingset_nodereclaim",
    "nr_anon_pages",
    "nr_mapped",
    "nr_file_pages",
    "nr_dirty",
    "nr_writeback",
    "nr_writeback_temp",
    "nr_shmem",
    "nr_shmem_hugepages",
    "nr_shmem_pmdmapped",
    "nr_file_hugepages",
    "nr_file_pmdmapped",
    "nr_anon_transparent_hugepages",
    "nr_vmscan_write",
    "nr_vmscan_immediate_reclaim",
    "nr_dirtied",
    "nr_written",
    "nr_throttled_written",
    "nr_kernel_misc_reclaimable",
    "nr_foll_pin_acquired",
    "nr_foll_pin_released",
    "nr_kernel_stack",
    "nr_page_table_pages",
    "nr_sec_page_table_pages",
    "nr_swapcached",
    "pgpromote_success",
    "pgpromote_candidate",
)

# include/linux/mmzone.h:vmstat_item_print_in_thp (6.1): printed divided by HPAGE_PMD_NR.
NODE_STAT_THP_ITEMS: frozenset[str] = frozenset({
    "nr_anon_transparent_hugepages",
    "nr_file_hugepages",
    "nr_shmem_hugepages",
    "nr_shmem_pmdmapped",
    "nr_file_pmdmapped",
})

# enum writeback_stat_item (include/linux/vmstat.h, 6.1).
WRITEBACK_STAT_ITEMS: tuple[str, ...] = ("nr_dirty_threshold", "nr_dirty_background_threshold")


def _for_zones(prefix: str) -> tuple[str, ...]:
    """mm/vmstat.c:TEXTS_FOR_ZONES (6.1): one item per zone type, lower-case zone name."""
    return tuple(f"{prefix}_{z.lower()}" for z in ZONE_NAMES)


# enum vm_event_item (include/linux/vm_event_item.h, 6.1) = the event part of vmstat_text.
VM_EVENT_ITEMS: tuple[str, ...] = (
    "pgpgin",
    "pgpgout",
    "pswpin",
    "pswpout",
    *_for_zones("pgalloc"),
    *_for_zones("allocstall"),
    *_for_zones("pgskip"),
    "pgfree",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pgfault",
    "pgmajfault",
    "pglazyfreed",
    "pgrefill",
    "pgreuse",
    "pgsteal_kswapd",
    "pgsteal_direct",
    "pgdemote_kswapd",
    "pgdemote_direct",
    "pgscan_kswapd",
    "pgscan_direct",
    "pgscan_direct_throttle",
    "pgscan_anon",
    "pgscan_file",
    "pgsteal_anon",
    "pgsteal_file",
    "zone_reclaim_failed",              # CONFIG_NUMA
    "pginodesteal",
    "slabs_scanned",
    "kswapd_inodesteal",
    "kswapd_low_wmark_hit_quickly",
    "kswapd_high_wmark_hit_quickly",
    "pageoutrun",
    "pgrotated",
    "drop_pagecache",
    "drop_slab",
    "oom_kill",
    "numa_pte_updates",                 # CONFIG_NUMA_BALANCING
    "numa_huge_pte_updates",
    "numa_hint_faults",
    "numa_hint_faults_local",
    "numa_pages_migrated",
    "pgmigrate_success",                # CONFIG_MIGRATION
    "pgmigrate_fail",
    "thp_migration_success",
    "thp_migration_fail",
    "thp_migration_split",
    "compact_migrate_scanned",          # CONFIG_COMPACTION
    "compact_free_scanned",
    "compact_isolated",
    "compact_stall",
    "compact_fail",
    "compact_success",
    "compact_daemon_wake",
    "compact_daemon_migrate_scanned",
    "compact_daemon_free_scanned",
    "htlb_buddy_alloc_success",         # CONFIG_HUGETLB_PAGE
    "htlb_buddy_alloc_fail",
    "unevictable_pgs_culled",
    "unevictable_pgs_scanned",
    "unevictable_pgs_rescued",
    "unevictable_pgs_mlocked",
    "unevictable_pgs_munlocked",
    "unevictable_pgs_cleared",
    "unevictable_pgs_stranded",
    "thp_fault_alloc",                  # CONFIG_TRANSPARENT_HUGEPAGE
    "thp_fault_fallback",
    "thp_fault_fallback_charge",
    "thp_collapse_alloc",
    "thp_collapse_alloc_failed",
    "thp_file_alloc",
    "thp_file_fallback",
    "thp_file_fallback_charge",
    "thp_file_mapped",
    "thp_split_page",
    "thp_split_page_failed",
    "thp_deferred_split_page",
    "thp_split_pmd",
    "thp_scan_exceed_none_pte",
    "thp_scan_exceed_swap_pte",
    "thp_scan_exceed_share_pte",
    "thp_split_pud",                    # CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD
    "thp_zero_page_alloc",
    "thp_zero_page_alloc_failed",
    "thp_swpout",
    "thp_swpout_fallback",
    "balloon_inflate",                  # CONFIG_MEMORY_BALLOON
    "balloon_deflate",
    "balloon_migrate",                  # CONFIG_BALLOON_COMPACTION
    "swap_ra",                          # CONFIG_SWAP
    "swap_ra_hit",
    "ksm_swpin_copy",                   # CONFIG_SWAP && CONFIG_KSM
    "cow_ksm",                          # CONFIG_KSM
    "zswpin",                           # CONFIG_ZSWAP
    "zswpout",
    "direct_map_level2_splits",         # CONFIG_X86
    "direct_map_level3_splits",
)

# mm/vmstat.c:vmstat_text (6.1): the order /proc/vmstat prints in (NR_VMSTAT_ITEMS entries).
VMSTAT_ITEMS: tuple[str, ...] = (
    ZONE_STAT_ITEMS + NUMA_STAT_ITEMS + NODE_STAT_ITEMS + WRITEBACK_STAT_ITEMS + VM_EVENT_ITEMS
)


class Counters:
    """A vector of named counters (all 0 by default) in the kernel's enum order."""

    NAMES: ClassVar[tuple[str, ...]] = ()

    def items(self) -> list[tuple[str, int]]:
        return [(n, getattr(self, n)) for n in self.NAMES]

    @classmethod
    def from_mapping(cls, values: Mapping[str, int]):
        """Build from name -> value; names outside NAMES are an error, missing ones are 0."""
        unknown = set(values) - set(cls.NAMES)
        if unknown:
            raise KeyError(f"{cls.__name__}: unknown counters {sorted(unknown)}")
        return cls(**values)

    def __add__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return type(self)(**{n: getattr(self, n) + getattr(other, n) for n in self.NAMES})


def _counters(name: str, names: tuple[str, ...], doc: str) -> type:
    return make_dataclass(
        name, [(n, int, field(default=0)) for n in names], bases=(Counters,),
        namespace={"NAMES": names, "__doc__": doc, "__module__": __name__})


ZoneStat = _counters(
    "ZoneStat", ZONE_STAT_ITEMS, "enum zone_stat_item counters of one zone (or global), 6.1.")
NumaStat = _counters(
    "NumaStat", NUMA_STAT_ITEMS, "enum numa_stat_item events of one zone (or global), 6.1.")
NodeStats = _counters(
    "NodeStats", NODE_STAT_ITEMS,
    "enum node_stat_item counters of one node (or global), 6.1, as printed: pages, THP items "
    "in huge pages, nr_kernel_stack in kB.")
WritebackStat = _counters(
    "WritebackStat", WRITEBACK_STAT_ITEMS,
    "enum writeback_stat_item (mm/page-writeback.c:global_dirty_limits), 6.1.")
VmEvents = _counters(
    "VmEvents", VM_EVENT_ITEMS,
    "enum vm_event_item (mm/vmstat.c:all_vm_events), 6.1; pgpgin/pgpgout already halved.")


@dataclass
class VmStat:
    """/proc/vmstat (mm/vmstat.c:vmstat_start, 6.1): the global counters, in print order."""

    zone: ZoneStat = field(default_factory=ZoneStat)
    numa: NumaStat = field(default_factory=NumaStat)
    node: NodeStats = field(default_factory=NodeStats)
    writeback: WritebackStat = field(default_factory=WritebackStat)
    events: VmEvents = field(default_factory=VmEvents)

    def items(self) -> list[tuple[str, int]]:
        """(name, value) in vmstat_text order."""
        return (self.zone.items() + self.numa.items() + self.node.items()
                + self.writeback.items() + self.events.items())

    def __getitem__(self, name: str) -> int:
        for part in (self.zone, self.numa, self.node, self.writeback, self.events):
            if name in part.NAMES:
                return getattr(part, name)
        raise KeyError(name)

    @classmethod
    def from_items(cls, items: Iterable[tuple[str, int]] | Mapping[str, int]) -> VmStat:
        values = dict(items.items() if isinstance(items, Mapping) else items)
        parts = {}
        for key, klass in (("zone", ZoneStat), ("numa", NumaStat), ("node", NodeStats),
                           ("writeback", WritebackStat), ("events", VmEvents)):
            parts[key] = klass.from_mapping(
                {n: values.pop(n) for n in klass.NAMES if n in values})
        if values:
            raise KeyError(f"VmStat: unknown counters {sorted(values)}")
        return cls(**parts)


@dataclass
class Pageset:
    """One online CPU's entry under "pagesets": struct per_cpu_pages count/high/batch and the
    per_cpu_zonestat stat_threshold printed right after it
    (mm/vmstat.c:zoneinfo_show_print, 6.1)."""

    count: int = 0
    high: int = 0
    batch: int = 0
    stat_threshold: int = 0


@dataclass
class ZoneInfo:
    """One zone's block of /proc/zoneinfo plus its /proc/buddyinfo row
    (mm/vmstat.c:zoneinfo_show_print, frag_show_print, 6.1).

    ``free`` is "pages free" (NR_FREE_PAGES, read again for the nr_free_pages line in ``stats``);
    ``protection`` is lowmem_reserve[MAX_NR_ZONES]; ``node_unreclaimable`` is the node's
    kswapd_failures >= MAX_RECLAIM_RETRIES as printed in this zone; ``free_area`` is
    free_area[order].nr_free for orders 0..MAX_ORDER-1.
    """

    name: str = "Normal"
    free: int = 0
    boost: int = 0
    min: int = 0
    low: int = 0
    high: int = 0
    #: promo_wmark_pages: printed after "high" from 6.12 ("mm: print the promo watermark in
    #: zoneinfo"); None where the kernel does not print it
    promo: int | None = None
    spanned: int = 0
    present: int = 0
    managed: int = 0
    cma: int = 0
    protection: tuple[int, ...] = (0,) * MAX_NR_ZONES
    stats: ZoneStat = field(default_factory=ZoneStat)
    numa: NumaStat = field(default_factory=NumaStat)
    pagesets: dict[int, Pageset] = field(default_factory=dict)
    node_unreclaimable: int = 0
    start_pfn: int = 0
    free_area: tuple[int, ...] = (0,) * MAX_ORDER

    @property
    def populated(self) -> bool:
        """include/linux/mmzone.h:populated_zone (6.1): present_pages != 0."""
        return self.present != 0


def _all_zones() -> list[ZoneInfo]:
    return [ZoneInfo(name=n) for n in ZONE_NAMES]


@dataclass
class NodeInfo:
    """One online node (pg_data_t) as /proc/zoneinfo and /proc/buddyinfo walk it: ``stats`` are
    the per-node counters printed in the first populated zone, ``zones`` all of node_zones[] in
    zone order (unpopulated ones included)."""

    nid: int = 0
    stats: NodeStats = field(default_factory=NodeStats)
    zones: list[ZoneInfo] = field(default_factory=_all_zones)

    def zone(self, name: str) -> ZoneInfo:
        for z in self.zones:
            if z.name == name:
                return z
        raise KeyError(name)


@dataclass
class MemInfo:
    """/proc/meminfo (fs/proc/meminfo.c:meminfo_proc_show, mm/hugetlb.c:hugetlb_report_meminfo,
    arch/x86/mm/pat/set_memory.c:arch_report_meminfo, 6.1), values as printed (kB, or pages for
    HugePages_*). Fields are the labels with "(anon)" -> "_anon", "(file)" -> "_file".
    ``DirectMap1G`` is None when the CPU has no gbpages (no line printed, as with -cpu qemu64)."""

    MemTotal: int = 0
    MemFree: int = 0
    MemAvailable: int = 0
    Buffers: int = 0
    Cached: int = 0
    SwapCached: int = 0
    Active: int = 0
    Inactive: int = 0
    Active_anon: int = 0
    Inactive_anon: int = 0
    Active_file: int = 0
    Inactive_file: int = 0
    Unevictable: int = 0
    Mlocked: int = 0
    SwapTotal: int = 0
    SwapFree: int = 0
    Zswap: int = 0
    Zswapped: int = 0
    Dirty: int = 0
    Writeback: int = 0
    AnonPages: int = 0
    Mapped: int = 0
    Shmem: int = 0
    KReclaimable: int = 0
    Slab: int = 0
    SReclaimable: int = 0
    SUnreclaim: int = 0
    KernelStack: int = 0
    PageTables: int = 0
    SecPageTables: int = 0
    NFS_Unstable: int = 0
    Bounce: int = 0
    WritebackTmp: int = 0
    CommitLimit: int = 0
    Committed_AS: int = 0
    VmallocTotal: int = 0
    VmallocUsed: int = 0
    VmallocChunk: int = 0
    Percpu: int = 0
    HardwareCorrupted: int = 0
    AnonHugePages: int = 0
    ShmemHugePages: int = 0
    ShmemPmdMapped: int = 0
    FileHugePages: int = 0
    FilePmdMapped: int = 0
    #: CONFIG_CMA builds only (fs/proc/meminfo.c; Debian's ppc64el has it, its amd64 6.1 not)
    CmaTotal: int | None = None
    CmaFree: int | None = None
    HugePages_Total: int = 0
    HugePages_Free: int = 0
    HugePages_Rsvd: int = 0
    HugePages_Surp: int = 0
    Hugepagesize: int = 2048
    Hugetlb: int = 0
    DirectMap4k: int = 0
    #: powerpc64 radix only (arch/powerpc/mm/book3s64/pgtable.c:arch_report_meminfo)
    DirectMap64k: int | None = None
    DirectMap2M: int = 0
    DirectMap1G: int | None = None


@dataclass
class NodeMemInfo:
    """/sys/devices/system/node/nodeN/meminfo (drivers/base/node.c:node_read_meminfo,
    mm/hugetlb.c:hugetlb_report_node_meminfo, 6.1), values as printed (kB; HugePages_* pages)."""

    MemTotal: int = 0
    MemFree: int = 0
    MemUsed: int = 0
    SwapCached: int = 0
    Active: int = 0
    Inactive: int = 0
    Active_anon: int = 0
    Inactive_anon: int = 0
    Active_file: int = 0
    Inactive_file: int = 0
    Unevictable: int = 0
    Mlocked: int = 0
    Dirty: int = 0
    Writeback: int = 0
    FilePages: int = 0
    Mapped: int = 0
    AnonPages: int = 0
    Shmem: int = 0
    KernelStack: int = 0
    PageTables: int = 0
    SecPageTables: int = 0
    NFS_Unstable: int = 0
    Bounce: int = 0
    WritebackTmp: int = 0
    KReclaimable: int = 0
    Slab: int = 0
    SReclaimable: int = 0
    SUnreclaim: int = 0
    AnonHugePages: int = 0
    ShmemHugePages: int = 0
    ShmemPmdMapped: int = 0
    FileHugePages: int = 0
    FilePmdMapped: int = 0
    #: CONFIG_CMA builds only (fs/proc/meminfo.c; Debian's ppc64el has it, its amd64 6.1 not)
    CmaTotal: int | None = None
    CmaFree: int | None = None
    HugePages_Total: int = 0
    HugePages_Free: int = 0
    HugePages_Surp: int = 0


# kernel/resource.c (6.1): iomem_resource spans the whole resource_size_t range.
IOMEM_END = (1 << 64) - 1
# ioport_resource ends at IO_SPACE_LIMIT (x86: 0xffff).
IOPORT_END = 0xFFFF


@dataclass
class Resource:
    """struct resource as /proc/iomem shows it: inclusive [start, end], name (None prints
    "<BAD>"), children in address order."""

    start: int = 0
    end: int = 0
    name: str | None = None
    children: list[Resource] = field(default_factory=list)

    def walk(self, depth: int = 0):
        """Pre-order (kernel/resource.c:next_resource) over the descendants: (depth, resource)."""
        for child in self.children:
            yield depth, child
            yield from child.walk(depth + 1)


def iomem_root(children: Iterable[Resource] = ()) -> Resource:
    """kernel/resource.c:iomem_resource (6.1): "PCI mem", 0 .. all ones."""
    return Resource(0, IOMEM_END, "PCI mem", list(children))


# include/linux/memory.h (6.1): memory_block states exposed to userspace.
from hotmem.drivers.base.memory import MEM_GOING_OFFLINE, MEM_OFFLINE, MEM_ONLINE  # noqa: E402
# include/linux/memory_hotplug.h (6.1): enum mmop.
from hotmem.mm.memory_hotplug import (MMOP_OFFLINE, MMOP_ONLINE,  # noqa: E402
                                      MMOP_ONLINE_KERNEL, MMOP_ONLINE_MOVABLE)


@dataclass
class MemoryBlockInfo:
    """What /sys/devices/system/memory/memoryN/* print (drivers/base/memory.c, 6.1).

    ``state`` is mem->state (MEM_ONLINE / MEM_GOING_OFFLINE / MEM_OFFLINE); ``online`` is
    !dev->offline; ``zone`` is mem->zone's name for an online block (None: the block spans
    several zones); ``online_zones`` are the names of the zones zone_for_pfn_range picks for
    MMOP_ONLINE, MMOP_ONLINE_KERNEL and MMOP_ONLINE_MOVABLE, used by valid_zones when the block
    is not online.
    """

    block_id: int = 0
    state: int = MEM_OFFLINE
    online: bool = False
    zone: str | None = None
    online_zones: tuple[str, str, str] = ("Normal", "Normal", "Movable")
    phys_device: int = 0


@dataclass
class MemoryHotplugParams:
    """/sys/module/memory_hotplug/parameters (mm/memory_hotplug.c, 6.1): Debian defaults."""

    memmap_on_memory: bool = False
    online_policy: str | int = "contig-zones"     # a name or an index of online_policy_to_str
    auto_movable_ratio: int = 301
    auto_movable_numa_aware: bool = True
