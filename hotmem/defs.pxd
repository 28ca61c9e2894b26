# Generated from hotmem/defs.py by setup.py (hotmem.defs.pxd_source()): do not edit.
# The C face of hotmem.defs for the compiled core: cimport hotmem.defs as D.
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from *:
    """
    #define HOTMEM_SECTION_MARKED_PRESENT 1
    #define HOTMEM_SECTION_HAS_MEM_MAP 2
    #define HOTMEM_SECTION_IS_ONLINE 4
    #define HOTMEM_SECTION_IS_EARLY 8
    #define HOTMEM_SECTION_TAINT_ZONE_DEVICE 16
    #define HOTMEM_PG_locked 0
    #define HOTMEM_PG_referenced 1
    #define HOTMEM_PG_uptodate 2
    #define HOTMEM_PG_dirty 3
    #define HOTMEM_PG_lru 4
    #define HOTMEM_PG_active 5
    #define HOTMEM_PG_workingset 6
    #define HOTMEM_PG_waiters 7
    #define HOTMEM_PG_error 8
    #define HOTMEM_PG_slab 9
    #define HOTMEM_PG_owner_priv_1 10
    #define HOTMEM_PG_arch_1 11
    #define HOTMEM_PG_reserved 12
    #define HOTMEM_PG_private 13
    #define HOTMEM_PG_private_2 14
    #define HOTMEM_PG_writeback 15
    #define HOTMEM_PG_head 16
    #define HOTMEM_PG_mappedtodisk 17
    #define HOTMEM_PG_reclaim 18
    #define HOTMEM_PG_swapbacked 19
    #define HOTMEM_PG_unevictable 20
    #define HOTMEM_PG_mlocked 21
    #define HOTMEM_PG_uncached 22
    #define HOTMEM_PG_hwpoison 23
    #define HOTMEM_PG_arch_2 24
    #define HOTMEM_NR_PAGEFLAGS 25
    #define HOTMEM_PG_vmemmap_self_hosted 10
    #define HOTMEM_PAGE_TYPE_BASE 0xf0000000ULL
    #define HOTMEM_PAGE_MAPCOUNT_RESET 0xffffffffULL
    #define HOTMEM_PG_buddy 128
    #define HOTMEM_PG_offline 256
    #define HOTMEM_PG_table 512
    #define HOTMEM_PG_guard 1024
    #define HOTMEM_MIGRATE_UNMOVABLE 0
    #define HOTMEM_MIGRATE_MOVABLE 1
    #define HOTMEM_MIGRATE_RECLAIMABLE 2
    #define HOTMEM_MIGRATE_PCPTYPES 3
    #define HOTMEM_MIGRATE_HIGHATOMIC 3
    #define HOTMEM_MIGRATE_ISOLATE 4
    #define HOTMEM_MIGRATE_TYPES 5
    #define HOTMEM_PB_migratetype_mask 7
    #define HOTMEM_PB_migrate_skip 8
    #define HOTMEM_PAGE_ALLOC_COSTLY_ORDER 3
    #define HOTMEM_NR_LOWORDER_PCP_LISTS 12
    #define HOTMEM_NR_PCP_THP 2
    #define HOTMEM_NR_PCP_LISTS 14
    #define HOTMEM_PCP_BATCH_SCALE_MAX 5
    #define HOTMEM_BOOT_PAGESET_HIGH 0
    #define HOTMEM_BOOT_PAGESET_BATCH 1
    #define HOTMEM_ALLOC_NOFRAGMENT 256
    #define HOTMEM_FPI_NONE 0
    #define HOTMEM_FPI_TO_TAIL 2
    #define HOTMEM_PAGE_FLAGS_CHECK_AT_FREE 3207729
    #define HOTMEM_PAGE_FLAGS_CHECK_AT_PREP 25165823
    #define HOTMEM_MAX_ZONEID 0x10000000000ULL
    #define HOTMEM_KPF_LOCKED 0
    #define HOTMEM_KPF_ERROR 1
    #define HOTMEM_KPF_REFERENCED 2
    #define HOTMEM_KPF_UPTODATE 3
    #define HOTMEM_KPF_DIRTY 4
    #define HOTMEM_KPF_LRU 5
    #define HOTMEM_KPF_ACTIVE 6
    #define HOTMEM_KPF_SLAB 7
    #define HOTMEM_KPF_WRITEBACK 8
    #define HOTMEM_KPF_RECLAIM 9
    #define HOTMEM_KPF_BUDDY 10
    #define HOTMEM_KPF_MMAP 11
    #define HOTMEM_KPF_ANON 12
    #define HOTMEM_KPF_SWAPCACHE 13
    #define HOTMEM_KPF_SWAPBACKED 14
    #define HOTMEM_KPF_COMPOUND_HEAD 15
    #define HOTMEM_KPF_COMPOUND_TAIL 16
    #define HOTMEM_KPF_HUGE 17
    #define HOTMEM_KPF_UNEVICTABLE 18
    #define HOTMEM_KPF_HWPOISON 19
    #define HOTMEM_KPF_NOPAGE 20
    #define HOTMEM_KPF_KSM 21
    #define HOTMEM_KPF_THP 22
    #define HOTMEM_KPF_OFFLINE 23
    #define HOTMEM_KPF_ZERO_PAGE 24
    #define HOTMEM_KPF_IDLE 25
    #define HOTMEM_KPF_PGTABLE 26
    #define HOTMEM_KPF_RESERVED 32
    #define HOTMEM_KPF_MLOCKED 33
    #define HOTMEM_KPF_MAPPEDTODISK 34
    #define HOTMEM_KPF_PRIVATE 35
    #define HOTMEM_KPF_PRIVATE_2 36
    #define HOTMEM_KPF_OWNER_PRIVATE 37
    #define HOTMEM_KPF_ARCH 38
    #define HOTMEM_KPF_UNCACHED 39
    #define HOTMEM_KPF_SOFTDIRTY 40
    #define HOTMEM_KPF_ARCH_2 41
    #define HOTMEM_MEMORY_OFFLINE 1
    #define HOTMEM_REPORT_FAILURE 2
    #define HOTMEM_PAGE_MAPCOUNT_RESERVE (-128LL)
    #define HOTMEM__PAGE_PRESENT 1
    #define HOTMEM__PAGE_RW 2
    #define HOTMEM__PAGE_USER 4
    #define HOTMEM__PAGE_PWT 8
    #define HOTMEM__PAGE_PCD 16
    #define HOTMEM__PAGE_ACCESSED 32
    #define HOTMEM__PAGE_DIRTY 64
    #define HOTMEM__PAGE_PSE 128
    #define HOTMEM__PAGE_GLOBAL 256
    #define HOTMEM__PAGE_PROTNONE 256
    #define HOTMEM__PAGE_NX 0x8000000000000000ULL
    #define HOTMEM__PAGE_KNL_ERRATUM_MASK 96
    #define HOTMEM_PAGE_KERNEL 0x8000000000000163ULL
    #define HOTMEM_PAGE_KERNEL_LARGE 0x80000000000001e3ULL
    #define HOTMEM__KERNPG_TABLE 99
    #define HOTMEM__PAGE_TABLE 103
    #define HOTMEM_PTE_PFN_MASK 0xffffffffff000ULL
    #define HOTMEM_PHYSICAL_PMD_PAGE_MASK 0xfffffffe00000ULL
    #define HOTMEM_PHYSICAL_PUD_PAGE_MASK 0xfffffc0000000ULL
    #define HOTMEM_PAGE_UNUSED 253
    #define HOTMEM_NO_BLOCK_MAPPINGS 1
    #define HOTMEM_NO_CONT_MAPPINGS 2
    #define HOTMEM_NO_EXEC_MAPPINGS 4
    #define HOTMEM_MAX_TABLE_ENTRIES 8192
    #define HOTMEM_PTE_FLAGS_MASK 0xfff0000000000fffULL
    #define HOTMEM_PAGE_SIZE 4096
    #define HOTMEM_PMD_SIZE 2097152
    #define HOTMEM_PUD_SIZE 1073741824
    #define HOTMEM_P4D_SHIFT 39
    #define HOTMEM_STRUCT_PAGE_MAX_SHIFT 6
    #define HOTMEM_VMEMMAP_CHUNKS_PER_PMD 32768
    #define HOTMEM_PG_LEVEL_NONE 0
    #define HOTMEM_PG_LEVEL_4K 1
    #define HOTMEM_PG_LEVEL_2M 2
    #define HOTMEM_PG_LEVEL_1G 3
    #define HOTMEM_PGT_PHYS_BITS 52
    #define HOTMEM_PGT_MAX_PFN 0x10000000000ULL
    #define HOTMEM_NR_DEFS 137
    static const char *const hotmem_defs_names[] = {
        "SECTION_MARKED_PRESENT",
        "SECTION_HAS_MEM_MAP",
        "SECTION_IS_ONLINE",
        "SECTION_IS_EARLY",
        "SECTION_TAINT_ZONE_DEVICE",
        "PG_locked",
        "PG_referenced",
        "PG_uptodate",
        "PG_dirty",
        "PG_lru",
        "PG_active",
        "PG_workingset",
        "PG_waiters",
        "PG_error",
        "PG_slab",
        "PG_owner_priv_1",
        "PG_arch_1",
        "PG_reserved",
        "PG_private",
        "PG_private_2",
        "PG_writeback",
        "PG_head",
        "PG_mappedtodisk",
        "PG_reclaim",
        "PG_swapbacked",
        "PG_unevictable",
        "PG_mlocked",
        "PG_uncached",
        "PG_hwpoison",
        "PG_arch_2",
        "NR_PAGEFLAGS",
        "PG_vmemmap_self_hosted",
        "PAGE_TYPE_BASE",
        "PAGE_MAPCOUNT_RESET",
        "PG_buddy",
        "PG_offline",
        "PG_table",
        "PG_guard",
        "MIGRATE_UNMOVABLE",
        "MIGRATE_MOVABLE",
        "MIGRATE_RECLAIMABLE",
        "MIGRATE_PCPTYPES",
        "MIGRATE_HIGHATOMIC",
        "MIGRATE_ISOLATE",
        "MIGRATE_TYPES",
        "PB_migratetype_mask",
        "PB_migrate_skip",
        "PAGE_ALLOC_COSTLY_ORDER",
        "NR_LOWORDER_PCP_LISTS",
        "NR_PCP_THP",
        "NR_PCP_LISTS",
        "PCP_BATCH_SCALE_MAX",
        "BOOT_PAGESET_HIGH",
        "BOOT_PAGESET_BATCH",
        "ALLOC_NOFRAGMENT",
        "FPI_NONE",
        "FPI_TO_TAIL",
        "PAGE_FLAGS_CHECK_AT_FREE",
        "PAGE_FLAGS_CHECK_AT_PREP",
        "MAX_ZONEID",
        "KPF_LOCKED",
        "KPF_ERROR",
        "KPF_REFERENCED",
        "KPF_UPTODATE",
        "KPF_DIRTY",
        "KPF_LRU",
        "KPF_ACTIVE",
        "KPF_SLAB",
        "KPF_WRITEBACK",
        "KPF_RECLAIM",
        "KPF_BUDDY",
        "KPF_MMAP",
        "KPF_ANON",
        "KPF_SWAPCACHE",
        "KPF_SWAPBACKED",
        "KPF_COMPOUND_HEAD",
        "KPF_COMPOUND_TAIL",
        "KPF_HUGE",
        "KPF_UNEVICTABLE",
        "KPF_HWPOISON",
        "KPF_NOPAGE",
        "KPF_KSM",
        "KPF_THP",
        "KPF_OFFLINE",
        "KPF_ZERO_PAGE",
        "KPF_IDLE",
        "KPF_PGTABLE",
        "KPF_RESERVED",
        "KPF_MLOCKED",
        "KPF_MAPPEDTODISK",
        "KPF_PRIVATE",
        "KPF_PRIVATE_2",
        "KPF_OWNER_PRIVATE",
        "KPF_ARCH",
        "KPF_UNCACHED",
        "KPF_SOFTDIRTY",
        "KPF_ARCH_2",
        "MEMORY_OFFLINE",
        "REPORT_FAILURE",
        "PAGE_MAPCOUNT_RESERVE",
        "_PAGE_PRESENT",
        "_PAGE_RW",
        "_PAGE_USER",
        "_PAGE_PWT",
        "_PAGE_PCD",
        "_PAGE_ACCESSED",
        "_PAGE_DIRTY",
        "_PAGE_PSE",
        "_PAGE_GLOBAL",
        "_PAGE_PROTNONE",
        "_PAGE_NX",
        "_PAGE_KNL_ERRATUM_MASK",
        "PAGE_KERNEL",
        "PAGE_KERNEL_LARGE",
        "_KERNPG_TABLE",
        "_PAGE_TABLE",
        "PTE_PFN_MASK",
        "PHYSICAL_PMD_PAGE_MASK",
        "PHYSICAL_PUD_PAGE_MASK",
        "PAGE_UNUSED",
        "NO_BLOCK_MAPPINGS",
        "NO_CONT_MAPPINGS",
        "NO_EXEC_MAPPINGS",
        "MAX_TABLE_ENTRIES",
        "PTE_FLAGS_MASK",
        "PAGE_SIZE",
        "PMD_SIZE",
        "PUD_SIZE",
        "P4D_SHIFT",
        "STRUCT_PAGE_MAX_SHIFT",
        "VMEMMAP_CHUNKS_PER_PMD",
        "PG_LEVEL_NONE",
        "PG_LEVEL_4K",
        "PG_LEVEL_2M",
        "PG_LEVEL_1G",
        "PGT_PHYS_BITS",
        "PGT_MAX_PFN",
    };
    static const unsigned long long hotmem_defs_values[] = {
        (unsigned long long) HOTMEM_SECTION_MARKED_PRESENT,
        (unsigned long long) HOTMEM_SECTION_HAS_MEM_MAP,
        (unsigned long long) HOTMEM_SECTION_IS_ONLINE,
        (unsigned long long) HOTMEM_SECTION_IS_EARLY,
        (unsigned long long) HOTMEM_SECTION_TAINT_ZONE_DEVICE,
        (unsigned long long) HOTMEM_PG_locked,
        (unsigned long long) HOTMEM_PG_referenced,
        (unsigned long long) HOTMEM_PG_uptodate,
        (unsigned long long) HOTMEM_PG_dirty,
        (unsigned long long) HOTMEM_PG_lru,
        (unsigned long long) HOTMEM_PG_active,
        (unsigned long long) HOTMEM_PG_workingset,
        (unsigned long long) HOTMEM_PG_waiters,
        (unsigned long long) HOTMEM_PG_error,
        (unsigned long long) HOTMEM_PG_slab,
        (unsigned long long) HOTMEM_PG_owner_priv_1,
        (unsigned long long) HOTMEM_PG_arch_1,
        (unsigned long long) HOTMEM_PG_reserved,
        (unsigned long long) HOTMEM_PG_private,
        (unsigned long long) HOTMEM_PG_private_2,
        (unsigned long long) HOTMEM_PG_writeback,
        (unsigned long long) HOTMEM_PG_head,
        (unsigned long long) HOTMEM_PG_mappedtodisk,
        (unsigned long long) HOTMEM_PG_reclaim,
        (unsigned long long) HOTMEM_PG_swapbacked,
        (unsigned long long) HOTMEM_PG_unevictable,
        (unsigned long long) HOTMEM_PG_mlocked,
        (unsigned long long) HOTMEM_PG_uncached,
        (unsigned long long) HOTMEM_PG_hwpoison,
        (unsigned long long) HOTMEM_PG_arch_2,
        (unsigned long long) HOTMEM_NR_PAGEFLAGS,
        (unsigned long long) HOTMEM_PG_vmemmap_self_hosted,
        (unsigned long long) HOTMEM_PAGE_TYPE_BASE,
        (unsigned long long) HOTMEM_PAGE_MAPCOUNT_RESET,
        (unsigned long long) HOTMEM_PG_buddy,
        (unsigned long long) HOTMEM_PG_offline,
        (unsigned long long) HOTMEM_PG_table,
        (unsigned long long) HOTMEM_PG_guard,
        (unsigned long long) HOTMEM_MIGRATE_UNMOVABLE,
        (unsigned long long) HOTMEM_MIGRATE_MOVABLE,
        (unsigned long long) HOTMEM_MIGRATE_RECLAIMABLE,
        (unsigned long long) HOTMEM_MIGRATE_PCPTYPES,
        (unsigned long long) HOTMEM_MIGRATE_HIGHATOMIC,
        (unsigned long long) HOTMEM_MIGRATE_ISOLATE,
        (unsigned long long) HOTMEM_MIGRATE_TYPES,
        (unsigned long long) HOTMEM_PB_migratetype_mask,
        (unsigned long long) HOTMEM_PB_migrate_skip,
        (unsigned long long) HOTMEM_PAGE_ALLOC_COSTLY_ORDER,
        (unsigned long long) HOTMEM_NR_LOWORDER_PCP_LISTS,
        (unsigned long long) HOTMEM_NR_PCP_THP,
        (unsigned long long) HOTMEM_NR_PCP_LISTS,
        (unsigned long long) HOTMEM_PCP_BATCH_SCALE_MAX,
        (unsigned long long) HOTMEM_BOOT_PAGESET_HIGH,
        (unsigned long long) HOTMEM_BOOT_PAGESET_BATCH,
        (unsigned long long) HOTMEM_ALLOC_NOFRAGMENT,
        (unsigned long long) HOTMEM_FPI_NONE,
        (unsigned long long) HOTMEM_FPI_TO_TAIL,
        (unsigned long long) HOTMEM_PAGE_FLAGS_CHECK_AT_FREE,
        (unsigned long long) HOTMEM_PAGE_FLAGS_CHECK_AT_PREP,
        (unsigned long long) HOTMEM_MAX_ZONEID,
        (unsigned long long) HOTMEM_KPF_LOCKED,
        (unsigned long long) HOTMEM_KPF_ERROR,
        (unsigned long long) HOTMEM_KPF_REFERENCED,
        (unsigned long long) HOTMEM_KPF_UPTODATE,
        (unsigned long long) HOTMEM_KPF_DIRTY,
        (unsigned long long) HOTMEM_KPF_LRU,
        (unsigned long long) HOTMEM_KPF_ACTIVE,
        (unsigned long long) HOTMEM_KPF_SLAB,
        (unsigned long long) HOTMEM_KPF_WRITEBACK,
        (unsigned long long) HOTMEM_KPF_RECLAIM,
        (unsigned long long) HOTMEM_KPF_BUDDY,
        (unsigned long long) HOTMEM_KPF_MMAP,
        (unsigned long long) HOTMEM_KPF_ANON,
        (unsigned long long) HOTMEM_KPF_SWAPCACHE,
        (unsigned long long) HOTMEM_KPF_SWAPBACKED,
        (unsigned long long) HOTMEM_KPF_COMPOUND_HEAD,
        (unsigned long long) HOTMEM_KPF_COMPOUND_TAIL,
        (unsigned long long) HOTMEM_KPF_HUGE,
        (unsigned long long) HOTMEM_KPF_UNEVICTABLE,
        (unsigned long long) HOTMEM_KPF_HWPOISON,
        (unsigned long long) HOTMEM_KPF_NOPAGE,
        (unsigned long long) HOTMEM_KPF_KSM,
        (unsigned long long) HOTMEM_KPF_THP,
        (unsigned long long) HOTMEM_KPF_OFFLINE,
        (unsigned long long) HOTMEM_KPF_ZERO_PAGE,
        (unsigned long long) HOTMEM_KPF_IDLE,
        (unsigned long long) HOTMEM_KPF_PGTABLE,
        (unsigned long long) HOTMEM_KPF_RESERVED,
        (unsigned long long) HOTMEM_KPF_MLOCKED,
        (unsigned long long) HOTMEM_KPF_MAPPEDTODISK,
        (unsigned long long) HOTMEM_KPF_PRIVATE,
        (unsigned long long) HOTMEM_KPF_PRIVATE_2,
        (unsigned long long) HOTMEM_KPF_OWNER_PRIVATE,
        (unsigned long long) HOTMEM_KPF_ARCH,
        (unsigned long long) HOTMEM_KPF_UNCACHED,
        (unsigned long long) HOTMEM_KPF_SOFTDIRTY,
        (unsigned long long) HOTMEM_KPF_ARCH_2,
        (unsigned long long) HOTMEM_MEMORY_OFFLINE,
        (unsigned long long) HOTMEM_REPORT_FAILURE,
        (unsigned long long) HOTMEM_PAGE_MAPCOUNT_RESERVE,
        (unsigned long long) HOTMEM__PAGE_PRESENT,
        (unsigned long long) HOTMEM__PAGE_RW,
        (unsigned long long) HOTMEM__PAGE_USER,
        (unsigned long long) HOTMEM__PAGE_PWT,
        (unsigned long long) HOTMEM__PAGE_PCD,
        (unsigned long long) HOTMEM__PAGE_ACCESSED,
        (unsigned long long) HOTMEM__PAGE_DIRTY,
        (unsigned long long) HOTMEM__PAGE_PSE,
        (unsigned long long) HOTMEM__PAGE_GLOBAL,
        (unsigned long long) HOTMEM__PAGE_PROTNONE,
        (unsigned long long) HOTMEM__PAGE_NX,
        (unsigned long long) HOTMEM__PAGE_KNL_ERRATUM_MASK,
        (unsigned long long) HOTMEM_PAGE_KERNEL,
        (unsigned long long) HOTMEM_PAGE_KERNEL_LARGE,
        (unsigned long long) HOTMEM__KERNPG_TABLE,
        (unsigned long long) HOTMEM__PAGE_TABLE,
        (unsigned long long) HOTMEM_PTE_PFN_MASK,
        (unsigned long long) HOTMEM_PHYSICAL_PMD_PAGE_MASK,
        (unsigned long long) HOTMEM_PHYSICAL_PUD_PAGE_MASK,
        (unsigned long long) HOTMEM_PAGE_UNUSED,
        (unsigned long long) HOTMEM_NO_BLOCK_MAPPINGS,
        (unsigned long long) HOTMEM_NO_CONT_MAPPINGS,
        (unsigned long long) HOTMEM_NO_EXEC_MAPPINGS,
        (unsigned long long) HOTMEM_MAX_TABLE_ENTRIES,
        (unsigned long long) HOTMEM_PTE_FLAGS_MASK,
        (unsigned long long) HOTMEM_PAGE_SIZE,
        (unsigned long long) HOTMEM_PMD_SIZE,
        (unsigned long long) HOTMEM_PUD_SIZE,
        (unsigned long long) HOTMEM_P4D_SHIFT,
        (unsigned long long) HOTMEM_STRUCT_PAGE_MAX_SHIFT,
        (unsigned long long) HOTMEM_VMEMMAP_CHUNKS_PER_PMD,
        (unsigned long long) HOTMEM_PG_LEVEL_NONE,
        (unsigned long long) HOTMEM_PG_LEVEL_4K,
        (unsigned long long) HOTMEM_PG_LEVEL_2M,
        (unsigned long long) HOTMEM_PG_LEVEL_1G,
        (unsigned long long) HOTMEM_PGT_PHYS_BITS,
        (unsigned long long) HOTMEM_PGT_MAX_PFN,
    };
    """
    enum: SECTION_MARKED_PRESENT "HOTMEM_SECTION_MARKED_PRESENT"
    enum: SECTION_HAS_MEM_MAP "HOTMEM_SECTION_HAS_MEM_MAP"
    enum: SECTION_IS_ONLINE "HOTMEM_SECTION_IS_ONLINE"
    enum: SECTION_IS_EARLY "HOTMEM_SECTION_IS_EARLY"
    enum: SECTION_TAINT_ZONE_DEVICE "HOTMEM_SECTION_TAINT_ZONE_DEVICE"
    enum: PG_locked "HOTMEM_PG_locked"
    enum: PG_referenced "HOTMEM_PG_referenced"
    enum: PG_uptodate "HOTMEM_PG_uptodate"
    enum: PG_dirty "HOTMEM_PG_dirty"
    enum: PG_lru "HOTMEM_PG_lru"
    enum: PG_active "HOTMEM_PG_active"
    enum: PG_workingset "HOTMEM_PG_workingset"
    enum: PG_waiters "HOTMEM_PG_waiters"
    enum: PG_error "HOTMEM_PG_error"
    enum: PG_slab "HOTMEM_PG_slab"
    enum: PG_owner_priv_1 "HOTMEM_PG_owner_priv_1"
    enum: PG_arch_1 "HOTMEM_PG_arch_1"
    enum: PG_reserved "HOTMEM_PG_reserved"
    enum: PG_private "HOTMEM_PG_private"
    enum: PG_private_2 "HOTMEM_PG_private_2"
    enum: PG_writeback "HOTMEM_PG_writeback"
    enum: PG_head "HOTMEM_PG_head"
    enum: PG_mappedtodisk "HOTMEM_PG_mappedtodisk"
    enum: PG_reclaim "HOTMEM_PG_reclaim"
    enum: PG_swapbacked "HOTMEM_PG_swapbacked"
    enum: PG_unevictable "HOTMEM_PG_unevictable"
    enum: PG_mlocked "HOTMEM_PG_mlocked"
    enum: PG_uncached "HOTMEM_PG_uncached"
    enum: PG_hwpoison "HOTMEM_PG_hwpoison"
    enum: PG_arch_2 "HOTMEM_PG_arch_2"
    enum: NR_PAGEFLAGS "HOTMEM_NR_PAGEFLAGS"
    enum: PG_vmemmap_self_hosted "HOTMEM_PG_vmemmap_self_hosted"
    const uint64_t PAGE_TYPE_BASE "HOTMEM_PAGE_TYPE_BASE"
    const uint64_t PAGE_MAPCOUNT_RESET "HOTMEM_PAGE_MAPCOUNT_RESET"
    enum: PG_buddy "HOTMEM_PG_buddy"
    enum: PG_offline "HOTMEM_PG_offline"
    enum: PG_table "HOTMEM_PG_table"
    enum: PG_guard "HOTMEM_PG_guard"
    enum: MIGRATE_UNMOVABLE "HOTMEM_MIGRATE_UNMOVABLE"
    enum: MIGRATE_MOVABLE "HOTMEM_MIGRATE_MOVABLE"
    enum: MIGRATE_RECLAIMABLE "HOTMEM_MIGRATE_RECLAIMABLE"
    enum: MIGRATE_PCPTYPES "HOTMEM_MIGRATE_PCPTYPES"
    enum: MIGRATE_HIGHATOMIC "HOTMEM_MIGRATE_HIGHATOMIC"
    enum: MIGRATE_ISOLATE "HOTMEM_MIGRATE_ISOLATE"
    enum: MIGRATE_TYPES "HOTMEM_MIGRATE_TYPES"
    enum: PB_migratetype_mask "HOTMEM_PB_migratetype_mask"
    enum: PB_migrate_skip "HOTMEM_PB_migrate_skip"
    enum: PAGE_ALLOC_COSTLY_ORDER "HOTMEM_PAGE_ALLOC_COSTLY_ORDER"
    enum: NR_LOWORDER_PCP_LISTS "HOTMEM_NR_LOWORDER_PCP_LISTS"
    enum: NR_PCP_THP "HOTMEM_NR_PCP_THP"
    enum: NR_PCP_LISTS "HOTMEM_NR_PCP_LISTS"
    enum: PCP_BATCH_SCALE_MAX "HOTMEM_PCP_BATCH_SCALE_MAX"
    enum: BOOT_PAGESET_HIGH "HOTMEM_BOOT_PAGESET_HIGH"
    enum: BOOT_PAGESET_BATCH "HOTMEM_BOOT_PAGESET_BATCH"
    enum: ALLOC_NOFRAGMENT "HOTMEM_ALLOC_NOFRAGMENT"
    enum: FPI_NONE "HOTMEM_FPI_NONE"
    enum: FPI_TO_TAIL "HOTMEM_FPI_TO_TAIL"
    enum: PAGE_FLAGS_CHECK_AT_FREE "HOTMEM_PAGE_FLAGS_CHECK_AT_FREE"
    enum: PAGE_FLAGS_CHECK_AT_PREP "HOTMEM_PAGE_FLAGS_CHECK_AT_PREP"
    const uint64_t MAX_ZONEID "HOTMEM_MAX_ZONEID"
    enum: KPF_LOCKED "HOTMEM_KPF_LOCKED"
    enum: KPF_ERROR "HOTMEM_KPF_ERROR"
    enum: KPF_REFERENCED "HOTMEM_KPF_REFERENCED"
    enum: KPF_UPTODATE "HOTMEM_KPF_UPTODATE"
    enum: KPF_DIRTY "HOTMEM_KPF_DIRTY"
    enum: KPF_LRU "HOTMEM_KPF_LRU"
    enum: KPF_ACTIVE "HOTMEM_KPF_ACTIVE"
    enum: KPF_SLAB "HOTMEM_KPF_SLAB"
    enum: KPF_WRITEBACK "HOTMEM_KPF_WRITEBACK"
    enum: KPF_RECLAIM "HOTMEM_KPF_RECLAIM"
    enum: KPF_BUDDY "HOTMEM_KPF_BUDDY"
    enum: KPF_MMAP "HOTMEM_KPF_MMAP"
    enum: KPF_ANON "HOTMEM_KPF_ANON"
    enum: KPF_SWAPCACHE "HOTMEM_KPF_SWAPCACHE"
    enum: KPF_SWAPBACKED "HOTMEM_KPF_SWAPBACKED"
    enum: KPF_COMPOUND_HEAD "HOTMEM_KPF_COMPOUND_HEAD"
    enum: KPF_COMPOUND_TAIL "HOTMEM_KPF_COMPOUND_TAIL"
    enum: KPF_HUGE "HOTMEM_KPF_HUGE"
    enum: KPF_UNEVICTABLE "HOTMEM_KPF_UNEVICTABLE"
    enum: KPF_HWPOISON "HOTMEM_KPF_HWPOISON"
    enum: KPF_NOPAGE "HOTMEM_KPF_NOPAGE"
    enum: KPF_KSM "HOTMEM_KPF_KSM"
    enum: KPF_THP "HOTMEM_KPF_THP"
    enum: KPF_OFFLINE "HOTMEM_KPF_OFFLINE"
    enum: KPF_ZERO_PAGE "HOTMEM_KPF_ZERO_PAGE"
    enum: KPF_IDLE "HOTMEM_KPF_IDLE"
    enum: KPF_PGTABLE "HOTMEM_KPF_PGTABLE"
    enum: KPF_RESERVED "HOTMEM_KPF_RESERVED"
    enum: KPF_MLOCKED "HOTMEM_KPF_MLOCKED"
    enum: KPF_MAPPEDTODISK "HOTMEM_KPF_MAPPEDTODISK"
    enum: KPF_PRIVATE "HOTMEM_KPF_PRIVATE"
    enum: KPF_PRIVATE_2 "HOTMEM_KPF_PRIVATE_2"
    enum: KPF_OWNER_PRIVATE "HOTMEM_KPF_OWNER_PRIVATE"
    enum: KPF_ARCH "HOTMEM_KPF_ARCH"
    enum: KPF_UNCACHED "HOTMEM_KPF_UNCACHED"
    enum: KPF_SOFTDIRTY "HOTMEM_KPF_SOFTDIRTY"
    enum: KPF_ARCH_2 "HOTMEM_KPF_ARCH_2"
    enum: MEMORY_OFFLINE "HOTMEM_MEMORY_OFFLINE"
    enum: REPORT_FAILURE "HOTMEM_REPORT_FAILURE"
    const int64_t PAGE_MAPCOUNT_RESERVE "HOTMEM_PAGE_MAPCOUNT_RESERVE"
    enum: _PAGE_PRESENT "HOTMEM__PAGE_PRESENT"
    enum: _PAGE_RW "HOTMEM__PAGE_RW"
    enum: _PAGE_USER "HOTMEM__PAGE_USER"
    enum: _PAGE_PWT "HOTMEM__PAGE_PWT"
    enum: _PAGE_PCD "HOTMEM__PAGE_PCD"
    enum: _PAGE_ACCESSED "HOTMEM__PAGE_ACCESSED"
    enum: _PAGE_DIRTY "HOTMEM__PAGE_DIRTY"
    enum: _PAGE_PSE "HOTMEM__PAGE_PSE"
    enum: _PAGE_GLOBAL "HOTMEM__PAGE_GLOBAL"
    enum: _PAGE_PROTNONE "HOTMEM__PAGE_PROTNONE"
    const uint64_t _PAGE_NX "HOTMEM__PAGE_NX"
    enum: _PAGE_KNL_ERRATUM_MASK "HOTMEM__PAGE_KNL_ERRATUM_MASK"
    const uint64_t PAGE_KERNEL "HOTMEM_PAGE_KERNEL"
    const uint64_t PAGE_KERNEL_LARGE "HOTMEM_PAGE_KERNEL_LARGE"
    enum: _KERNPG_TABLE "HOTMEM__KERNPG_TABLE"
    enum: _PAGE_TABLE "HOTMEM__PAGE_TABLE"
    const uint64_t PTE_PFN_MASK "HOTMEM_PTE_PFN_MASK"
    const uint64_t PHYSICAL_PMD_PAGE_MASK "HOTMEM_PHYSICAL_PMD_PAGE_MASK"
    const uint64_t PHYSICAL_PUD_PAGE_MASK "HOTMEM_PHYSICAL_PUD_PAGE_MASK"
    enum: PAGE_UNUSED "HOTMEM_PAGE_UNUSED"
    enum: NO_BLOCK_MAPPINGS "HOTMEM_NO_BLOCK_MAPPINGS"
    enum: NO_CONT_MAPPINGS "HOTMEM_NO_CONT_MAPPINGS"
    enum: NO_EXEC_MAPPINGS "HOTMEM_NO_EXEC_MAPPINGS"
    enum: MAX_TABLE_ENTRIES "HOTMEM_MAX_TABLE_ENTRIES"
    const uint64_t PTE_FLAGS_MASK "HOTMEM_PTE_FLAGS_MASK"
    enum: PAGE_SIZE "HOTMEM_PAGE_SIZE"
    enum: PMD_SIZE "HOTMEM_PMD_SIZE"
    enum: PUD_SIZE "HOTMEM_PUD_SIZE"
    enum: P4D_SHIFT "HOTMEM_P4D_SHIFT"
    enum: STRUCT_PAGE_MAX_SHIFT "HOTMEM_STRUCT_PAGE_MAX_SHIFT"
    enum: VMEMMAP_CHUNKS_PER_PMD "HOTMEM_VMEMMAP_CHUNKS_PER_PMD"
    enum: PG_LEVEL_NONE "HOTMEM_PG_LEVEL_NONE"
    enum: PG_LEVEL_4K "HOTMEM_PG_LEVEL_4K"
    enum: PG_LEVEL_2M "HOTMEM_PG_LEVEL_2M"
    enum: PG_LEVEL_1G "HOTMEM_PG_LEVEL_1G"
    enum: PGT_PHYS_BITS "HOTMEM_PGT_PHYS_BITS"
    const uint64_t PGT_MAX_PFN "HOTMEM_PGT_MAX_PFN"
    enum: NR_DEFS "HOTMEM_NR_DEFS"
    const char *const DEFS_NAMES "hotmem_defs_names"[]
    const unsigned long long DEFS_VALUES "hotmem_defs_values"[]

# struct page as the model stores it (PAGE_DTYPE)
ctypedef struct page_t:
    uint64_t flags
    uint64_t private
    int32_t _refcount
    uint32_t page_type
