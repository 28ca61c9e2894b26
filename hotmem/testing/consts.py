"""Kernel constants the invariants and the driver use, written out from the kernel headers (6.1)
(not taken from the model, so that a wrong constant there is caught)."""
from __future__ import annotations

#: include/linux/page-flags.h (Debian 6.1 numbering): PG_owner_priv_1 = PageVmemmapSelfHosted
PG_OWNER_PRIV_1, PG_RESERVED = 10, 12
#: page_type: a type is set by clearing its bit under PAGE_TYPE_BASE
PAGE_TYPE_BASE, PG_BUDDY = 0xF0000000, 0x00000080
#: include/linux/mmzone.h section_mem_map flag bits
SECTION_MARKED_PRESENT, SECTION_HAS_MEM_MAP, SECTION_IS_ONLINE, SECTION_IS_EARLY = 1, 2, 4, 8
MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_ISOLATE = 0, 1, 2, 4
#: mm/page_alloc.c: pcp lists 0..11 are orders 0..3 × 3 migratetypes, 12 and 13 pageblock_order
NR_LOWORDER_PCP_LISTS = 12
#: arch/x86/include/asm/pgtable_types.h
_PAGE_PRESENT, _PAGE_PSE, _PAGE_KNL_ERRATUM_MASK = 1, 1 << 7, (1 << 5) | (1 << 6)
ZONE_NAMES = ("DMA", "DMA32", "Normal", "Movable", "Device")
