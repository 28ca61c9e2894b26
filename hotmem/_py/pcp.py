"""Pure-Python twin of hotmem/_cy/pcp.pxi: the per-CPU pagesets of the 6.1 page allocator
(mm/page_alloc.c: free_unref_page, free_pcppages_bulk, rmqueue_pcplist, drain_pages_zone,
zone_pcp_disable/enable/reset), in exact kernel order (head insertion on free, tail insertion on
refill, head removal on allocation, tail removal on drain), and the entry points that go through
them (alloc_pages, free_pages, free_reserved_page). See hotmem/_py/buddy.py.
"""
import errno

from hotmem.defs import (
    ALLOC_NOFRAGMENT, BOOT_PAGESET_BATCH, BOOT_PAGESET_HIGH, FPI_NONE, MIGRATE_ISOLATE,
    MIGRATE_MOVABLE, MIGRATE_PCPTYPES, MIGRATE_TYPES, NR_LOWORDER_PCP_LISTS, NR_PCP_LISTS,
    PAGE_ALLOC_COSTLY_ORDER, PAGE_MAPCOUNT_RESET, PCP_BATCH_SCALE_MAX, PG_reserved,
)
from hotmem._py.buddy import _BuddyZones, _err


class _PcpLists(_BuddyZones):
    """The page allocator with its per-CPU pagesets."""

    # -- per-CPU pagesets ------------------------------------------------------------------------
    def order_to_pindex(self, migratetype, order):
        """mm/page_alloc.c:order_to_pindex (6.1, THP)."""
        if order > PAGE_ALLOC_COSTLY_ORDER:
            return NR_LOWORDER_PCP_LISTS + (migratetype == MIGRATE_MOVABLE)
        return MIGRATE_PCPTYPES * order + migratetype

    def pindex_to_order(self, pindex):
        """mm/page_alloc.c:pindex_to_order (6.1, THP)."""
        if pindex >= NR_LOWORDER_PCP_LISTS:
            return self.pageblock_order
        return pindex // MIGRATE_PCPTYPES

    def pcp_allowed_order(self, order):
        """mm/page_alloc.c:pcp_allowed_order (6.1, THP)."""
        return order <= PAGE_ALLOC_COSTLY_ORDER or order == self.pageblock_order

    def _free_pcppages_bulk(self, z, count, pcp, pindex):
        """mm/page_alloc.c:free_pcppages_bulk (6.1): round-robin over the lists starting after
        ``pindex - 1``, each chosen list emptied from its tail until ``count`` is used up."""
        min_pindex, max_pindex = 0, NR_PCP_LISTS - 1
        count = min(pcp.count, count)
        pindex -= 1
        isolated_pageblocks = z.nr_isolate_pageblock != 0
        while count > 0:
            while True:
                pindex += 1
                if pindex > max_pindex:
                    pindex = min_pindex
                lst = pcp.lists[pindex]
                if lst:
                    break
                if pindex == max_pindex:
                    max_pindex -= 1
                if pindex == min_pindex:
                    min_pindex += 1
            order = self.pindex_to_order(pindex)
            nr_pages = 1 << order
            while True:
                pfn, mt = lst.pop()
                count -= nr_pages
                pcp.count -= nr_pages
                if isolated_pageblocks:
                    mt = self._mt(pfn)
                self._free_one_page_locked(z, pfn, order, mt, FPI_NONE)
                if not (count > 0 and lst):
                    break

    def _nr_pcp_free(self, pcp, high, batch, free_high):
        """mm/page_alloc.c:nr_pcp_free (6.1.y with CONFIG_PCP_BATCH_SCALE_MAX)."""
        if free_high:
            return pcp.count
        if high < batch:
            return 1
        min_nr_free = batch
        max_nr_free = high - batch
        batch <<= pcp.free_factor
        if batch < max_nr_free and pcp.free_factor < PCP_BATCH_SCALE_MAX:
            pcp.free_factor += 1
        return min(max(batch, min_nr_free), max_nr_free)

    def _nr_pcp_high(self, pcp, free_high):
        """mm/page_alloc.c:nr_pcp_high (ZONE_RECLAIM_ACTIVE not modelled)."""
        if not pcp.high or free_high:
            return 0
        return pcp.high

    def _free_unref_page_commit(self, z, pcp, pfn, migratetype, order, page_mt):
        """mm/page_alloc.c:free_unref_page_commit (6.1)."""
        pindex = self.order_to_pindex(migratetype, order)
        pcp.lists[pindex].appendleft((pfn, page_mt))
        pcp.count += 1 << order
        free_high = bool(pcp.free_factor and order and order <= PAGE_ALLOC_COSTLY_ORDER)
        high = self._nr_pcp_high(pcp, free_high)
        if pcp.count >= high:
            self._free_pcppages_bulk(z, self._nr_pcp_free(pcp, high, pcp.batch, free_high),
                                     pcp, pindex)

    def _free_unref_page(self, z, pfn, order, cpu):
        """mm/page_alloc.c:free_unref_page (6.1): isolated pageblocks bypass the pcp lists."""
        self._free_pages_prepare(pfn, order)
        migratetype = pcpmigratetype = self._mt(pfn)
        if migratetype >= MIGRATE_PCPTYPES:
            if migratetype == MIGRATE_ISOLATE:
                self._free_one_page(z, pfn, order, migratetype, FPI_NONE)
                return
            pcpmigratetype = MIGRATE_MOVABLE
        self._free_unref_page_commit(z, z.pcp[cpu], pfn, pcpmigratetype, order, migratetype)

    def _free_the_page(self, z, pfn, order, cpu):
        """mm/page_alloc.c:free_the_page."""
        if self.pcp_allowed_order(order):
            self._free_unref_page(z, pfn, order, cpu)
        else:
            self._free_pages_ok(z, pfn, order, FPI_NONE)

    def _drain_pages_zone(self, cpu, z):
        """mm/page_alloc.c:drain_pages_zone (6.1.y): chunks of batch << PCP_BATCH_SCALE_MAX."""
        pcp = z.pcp[cpu]
        while True:
            count = pcp.count
            if count:
                to_drain = min(count, pcp.batch << PCP_BATCH_SCALE_MAX)
                self._free_pcppages_bulk(z, to_drain, pcp, 0)
                count -= to_drain
            if not count:
                break

    # -- allocation through the pcp lists ----------------------------------------------------------
    def _rmqueue_bulk(self, z, order, count, lst, migratetype, alloc_flags):
        """mm/page_alloc.c:rmqueue_bulk: blocks go to the list tail in the order obtained."""
        i = 0
        while i < count:
            pfn = self._rmqueue(z, order, migratetype, alloc_flags)
            if pfn < 0:
                break
            lst.append((pfn, migratetype))
            i += 1
        z.nr_free_pages -= i << order
        return i

    def _rmqueue_pcplist(self, z, order, migratetype, alloc_flags, cpu):
        """mm/page_alloc.c:rmqueue_pcplist + __rmqueue_pcplist (6.1)."""
        pcp = z.pcp[cpu]
        pcp.free_factor >>= 1
        lst = pcp.lists[self.order_to_pindex(migratetype, order)]
        if not lst:
            batch = pcp.batch
            if batch > 1:
                batch = max(batch >> order, 2)
            alloced = self._rmqueue_bulk(z, order, batch, lst, migratetype, alloc_flags)
            pcp.count += alloced << order
            if not lst:
                return -1
        pfn, _ = lst.popleft()
        pcp.count -= 1 << order
        return pfn

    def _rmqueue_top(self, z, order, migratetype, alloc_flags, cpu):
        """mm/page_alloc.c:rmqueue (6.1): pcp for allowed orders, else rmqueue_buddy."""
        if self.pcp_allowed_order(order):
            pfn = self._rmqueue_pcplist(z, order, migratetype, alloc_flags, cpu)
            if pfn >= 0:
                return pfn
        pfn = self._rmqueue(z, order, migratetype, alloc_flags)
        if pfn >= 0:
            z.nr_free_pages -= 1 << order
        return pfn

    # -- entry points ----------------------------------------------------------------------------
    def alloc_pages(self, zoneid, order, migratetype, cpu, alloc_flags=0):
        """mm/page_alloc.c:rmqueue for one zone + post_alloc_hook (refcount 1, private 0).
        Returns the pfn, or -1 when the zone has no suitable free block. Only ALLOC_NOFRAGMENT
        of the kernel's alloc_flags has an effect here."""
        z = self._zone(zoneid)
        self._check_order(order)
        self._check_cpu(cpu)
        if not 0 <= migratetype < MIGRATE_PCPTYPES:
            raise _err(errno.EINVAL, f"migratetype {migratetype} is not allocatable")
        if alloc_flags & ~ALLOC_NOFRAGMENT:
            raise _err(errno.EINVAL, f"alloc_flags {alloc_flags:#x} not supported")
        pfn = self._rmqueue_top(z, order, migratetype, alloc_flags, cpu)
        if pfn >= 0:
            a, i = self._arr_w(pfn), pfn & self._mask
            a["private"][i] = 0
            a["_refcount"][i] = 1
            self._alloc[pfn] = order
        return pfn

    def free_pages(self, pfn, order, cpu):
        """mm/page_alloc.c:__free_pages (6.1): put_page_testzero drops the last reference, then
        free_the_page: pcp lists for pcp_allowed_order, else __free_pages_ok."""
        self._check_block(pfn, order)
        self._check_cpu(cpu)
        got = self._alloc.get(pfn)
        if got is None:
            what = "double free" if pfn in self._freeh else "never allocated"
            raise _err(errno.EINVAL, f"free of pfn {pfn:#x}: {what}")
        if got != order:
            raise _err(errno.EINVAL, f"free of pfn {pfn:#x} at order {order}, "
                                     f"allocated at order {got}")
        self._check_free_state(pfn, order, 1)
        z = self._zone(self._zoneid_of(pfn))
        del self._alloc[pfn]
        self._pset(pfn, "_refcount", 0)
        self._free_the_page(z, pfn, order, cpu)

    def free_reserved_page(self, pfn, cpu):
        """include/linux/mm.h:free_reserved_page (6.1): ClearPageReserved, init_page_count,
        __free_page (through the pcp lists), adjust_managed_page_count(+1)."""
        self._check_block(pfn, 0)
        self._check_cpu(cpu)
        a, i = self._arr(pfn), pfn & self._mask
        if not int(a["flags"][i]) >> PG_reserved & 1 or pfn in self._alloc or \
                int(a["page_type"][i]) != PAGE_MAPCOUNT_RESET:
            raise _err(errno.EINVAL, f"pfn {pfn:#x} is not a reserved page")
        z = self._zone(int(a["flags"][i]) >> self._zshift, create=True)
        a = self._arr_w(pfn)
        a["flags"][i] = int(a["flags"][i]) & ~(1 << PG_reserved)
        a["_refcount"][i] = 0
        self._free_the_page(z, pfn, 0, cpu)
        z.managed += 1

    # -- pcp control -----------------------------------------------------------------------------
    def set_pcp(self, zoneid, cpu, high, batch):
        """mm/page_alloc.c:pageset_update for one CPU (zone_set_pageset_high_and_batch computes
        the values: hotmem/mm/watermark.py). While the zone's pcp is disabled the values
        are kept for zone_pcp_enable, as the kernel's zone->pageset_high/batch are."""
        self._check_cpu(cpu)
        if batch < 1 or high < 0:
            raise _err(errno.EINVAL, f"pcp high {high} / batch {batch} out of range")
        z = self._zone(zoneid, create=True)
        pcp = z.pcp[cpu]
        pcp.saved_high, pcp.saved_batch = high, batch
        if not z.pcp_disabled:
            pcp.high, pcp.batch = high, batch

    def drain_pages_zone(self, cpu, zoneid):
        """mm/page_alloc.c:drain_pages_zone."""
        z = self._zone(zoneid)
        self._check_cpu(cpu)
        self._drain_pages_zone(cpu, z)

    def drain_zone_pages(self, zoneid):
        """Drain every CPU's lists of the zone, as mm/page_alloc.c:__drain_all_pages(zone, true)
        does (not the kernel's NUMA drain_zone_pages, which frees one batch of one pcp)."""
        z = self._zone(zoneid)
        for cpu in range(self.nr_cpus):
            self._drain_pages_zone(cpu, z)

    def zone_pcp_disable(self, zoneid):
        """mm/page_alloc.c:zone_pcp_disable: high 0 / batch 1 on every CPU, then drain all."""
        z = self._zone(zoneid)
        if z.pcp_disabled:
            raise _err(errno.EBUSY, f"zone {zoneid}: pcp already disabled")
        z.pcp_disabled = True
        for pcp in z.pcp:
            pcp.high, pcp.batch = 0, 1
        for cpu in range(self.nr_cpus):
            self._drain_pages_zone(cpu, z)

    def zone_pcp_enable(self, zoneid):
        """mm/page_alloc.c:zone_pcp_enable: restore zone->pageset_high/batch."""
        z = self._zone(zoneid)
        if not z.pcp_disabled:
            raise _err(errno.EINVAL, f"zone {zoneid}: pcp not disabled")
        z.pcp_disabled = False
        for pcp in z.pcp:
            pcp.high, pcp.batch = pcp.saved_high, pcp.saved_batch

    def zone_pcp_reset(self, zoneid):
        """mm/page_alloc.c:zone_pcp_reset: back to the boot pageset (high 0, batch 1)."""
        z = self._zone(zoneid)
        if any(p.count for p in z.pcp):
            raise _err(errno.EBUSY, f"zone {zoneid}: pcp lists not empty")
        for pcp in z.pcp:
            pcp.high = pcp.saved_high = BOOT_PAGESET_HIGH
            pcp.batch = pcp.saved_batch = BOOT_PAGESET_BATCH
            pcp.free_factor = 0

    # -- inspection --------------------------------------------------------------------------------
    def pcp_count(self, zoneid, cpu):
        self._check_cpu(cpu)
        return self._zone(zoneid).pcp[cpu].count

    def pcp_info(self, zoneid, cpu):
        """(count, high, batch, free_factor) of the CPU's per_cpu_pages."""
        self._check_cpu(cpu)
        p = self._zone(zoneid).pcp[cpu]
        return (p.count, p.high, p.batch, p.free_factor)

    def pcp_pages(self, zoneid, cpu):
        """[(pindex, [pfn, ...] from list head to tail)] for the non-empty lists."""
        self._check_cpu(cpu)
        p = self._zone(zoneid).pcp[cpu]
        return [(k, [pfn for pfn, _ in lst]) for k, lst in enumerate(p.lists) if lst]

    def state(self):
        """A canonical snapshot, equal between backends when their states are equal."""
        zones = {}
        for zoneid in sorted(self._zones):
            z = self._zones[zoneid]
            free_area = {}
            for order in range(self.max_order):
                for mt in range(MIGRATE_TYPES):
                    if z.nr_free_mt[order][mt]:
                        free_area[(order, mt)] = tuple(self.free_list(zoneid, order, mt))
            pcp = tuple((p.count, p.high, p.batch, p.free_factor, p.saved_high, p.saved_batch,
                         tuple(tuple(lst) for lst in p.lists)) for p in z.pcp)
            zones[zoneid] = {"nr_free_pages": z.nr_free_pages, "managed": z.managed,
                             "nr_isolate_pageblock": z.nr_isolate_pageblock,
                             "free_area": free_area, "pcp": pcp,
                             "pcp_disabled": z.pcp_disabled}
        return {"zones": zones, "allocated": tuple(sorted(self._alloc.items()))}
