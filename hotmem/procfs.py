"""The /proc files a hotplug user reads, rendered from the Machine's state in the kernel's formats
(hotmem/render does the formatting). Counters of things the model does not run (page cache, slab,
user processes) read 0.
"""
from __future__ import annotations

import errno

from hotmem.boundary import LLONG_MAX, as_int, show
from hotmem.errors import HotplugError
from hotmem.render import (MemInfo, NodeInfo, Pageset, VmStat, ZoneInfo, render_buddyinfo,
                           render_iomem, render_meminfo, render_vmstat, render_zoneinfo)
from hotmem.render.model import ZoneStat

# arch/x86/include/asm/pgtable_64_types.h: VMALLOC_SIZE_TB_L4 / _L5 (VMALLOC_END is inclusive)
_VMALLOC_TOTAL_KB = {4: (32 << 40 >> 10) - 1, 5: (12800 << 40 >> 10) - 1}


class ProcFs:
    """``m.procfs``: read("/proc/meminfo"), kpageflags(pfn, count), ..."""

    def __init__(self, m):
        self.m = m

    def read(self, path: str) -> str:
        readers = {"/proc/meminfo": self.meminfo, "/proc/zoneinfo": self.zoneinfo,
                   "/proc/vmstat": self.vmstat, "/proc/buddyinfo": self.buddyinfo,
                   "/proc/iomem": self.iomem}
        if not isinstance(path, str) or path not in readers:
            raise HotplugError(errno.ENOENT, f"{show(path)}: No such file (not modelled)")
        return readers[path]()

    # -- /proc/meminfo -------------------------------------------------------------------------
    def meminfo_values(self) -> MemInfo:
        """fs/proc/meminfo.c:meminfo_proc_show (6.1) for a machine with no workload."""
        m = self.m
        free = sum(z.nr_free_pages for p in m.pgdats.values() for z in p.node_zones
                   if z.allocator is not None and p.online)
        totalram = m.totalram_pages
        available = max(0, free - m.page_alloc.totalreserve_pages)
        kb = m.arch.PAGE_SIZE >> 10
        # the arch's own values (VmallocTotal, Hugepagesize, ...) and arch_report_meminfo's
        # DirectMap lines (x86 only: no line elsewhere)
        extra = m.arch_ops.meminfo_extra(m)
        extra.update({"DirectMap4k": None, "DirectMap2M": None, "DirectMap1G": None},
                     **m.arch_ops.arch_report_meminfo(m))
        return MemInfo(
            MemTotal=totalram * kb, MemFree=free * kb, MemAvailable=available * kb,
            CommitLimit=totalram * 50 // 100 * kb,
            VmallocTotal=extra.pop("VmallocTotal", None) or _VMALLOC_TOTAL_KB[m.arch.paging_levels],
            **extra)

    def meminfo(self) -> str:
        return render_meminfo(self.meminfo_values())

    # -- /proc/zoneinfo, /proc/buddyinfo, /proc/vmstat -----------------------------------------
    def node_infos(self) -> list[NodeInfo]:
        m = self.m
        nodes = []
        for nid, pgdat in sorted(m.pgdats.items()):
            if not pgdat.online:
                continue
            zones = []
            # the zone types the build has (enum zone_type): the model keeps fixed slots, and an
            # arch without ZONE_DMA/DMA32 (powerpc64, s390x) keeps them empty and unlisted
            built = [z for z in pgdat.node_zones if z.name in m.arch_ops.ZONE_TYPES]
            for z in built:
                pagesets = {cpu: Pageset(*m.allocator.pcp_info(z.zoneid, cpu)[:3],
                                         stat_threshold=z.stat_threshold)
                            for cpu in range(m.nr_cpus)}
                zones.append(ZoneInfo(
                    name=z.name, free=z.nr_free_pages, min=z.min_wmark, low=z.low_wmark,
                    high=z.high_wmark,
                    promo=z.promo_wmark if m.policy.zoneinfo_promo else None,
                    spanned=z.spanned_pages, present=z.present_pages,
                    managed=z.managed_pages,
                    protection=tuple(z.lowmem_reserve[b.idx] for b in built),
                    stats=ZoneStat(nr_free_pages=z.nr_free_pages), pagesets=pagesets,
                    start_pfn=z.zone_start_pfn,
                    free_area=tuple(m.allocator.nr_free(z.zoneid, o)
                                    for o in range(m.max_order))))
            nodes.append(NodeInfo(nid=nid, zones=zones))
        return nodes

    def zoneinfo(self) -> str:
        """mm/vmstat.c:zoneinfo_show (6.1; 6.12 prints the promo watermark too)."""
        return render_zoneinfo(self.node_infos())

    def buddyinfo(self) -> str:
        """mm/vmstat.c:frag_show (6.1)."""
        return render_buddyinfo(self.node_infos())

    def vmstat(self) -> str:
        """mm/vmstat.c:vmstat_show (6.1): only nr_free_pages moves in the model (the other
        counters are those of a machine without workload).

        A 6.11 policy adds nr_memmap_pages and nr_memmap_boot_pages where 6.11's vmstat_text has
        them, right after nr_dirty_background_threshold (the tail of enum vm_stat_item); the
        rest of the item list is still Debian 6.1's, not 6.11's."""
        from hotmem.mm.vmstat import vm_stat_items
        free = sum(z.nr_free_pages for p in self.m.pgdats.values() for z in p.node_zones)
        vm = VmStat()
        vm.zone.nr_free_pages = free
        return render_vmstat(vm, vm_stat_items(self.m))

    def iomem(self) -> str:
        """kernel/resource.c:r_show (6.1) as root sees it."""
        return render_iomem(self.m.resources.root)

    # -- /proc/kpageflags, /proc/kpagecount ----------------------------------------------------
    def _range(self, pfn: int, count: int, what: str):
        """The pfns a read of ``count`` words at ``pfn`` returns: the file offset pfn * 8 is a
        loff_t (a pread past LLONG_MAX is EINVAL), and reads stop at get_max_dump_pfn:
        round_up(max_pfn, PAGES_PER_SECTION) (fs/proc/page.c, 6.1)."""
        pfn = as_int(pfn, f"{what}: pfn", 0, LLONG_MAX // 8)
        count = as_int(count, f"{what}: count", 0, LLONG_MAX // 8)
        limit = -(-self.m.max_pfn // self.m.arch.PAGES_PER_SECTION) * self.m.arch.PAGES_PER_SECTION
        return pfn, max(0, min(count, limit - pfn))

    def kpageflags(self, pfn: int, count: int = 1):
        """fs/proc/page.c:kpageflags_read (6.1): one u64 per pfn (short read past max_pfn)."""
        pfn, n = self._range(pfn, count, "/proc/kpageflags")
        return self.m.core.kpageflags(self.m.ms, pfn, n, self.m.max_order)

    def kpagecount(self, pfn: int, count: int = 1):
        """fs/proc/page.c:kpagecount_read (6.1)."""
        pfn, n = self._range(pfn, count, "/proc/kpagecount")
        return self.m.core.kpagecount(self.m.ms, pfn, n)
