"""The end of a program: remove everything it added and compare the Machine with its boot state
(the part of :class:`hotmem.testing.Driver` after ``teardown()``)."""
from __future__ import annotations

from hotmem.errors import HotplugError
from hotmem.mm.page_alloc import kernel_free_pages
from hotmem.testing.facts import _merge
from hotmem.testing.snapshot import (_arch_boot_state, _drain_all, _free_blocks, _iomem_flat,
                                     diff_snapshots)


class Teardown:
    """Driver's teardown: removing what a program added, releasing what the kernel keeps by
    design, and the comparison with the boot state."""

    def _teardown_one(self, i, m) -> None:
        m.clear_injections()
        m.sysfs.write("/sys/devices/system/memory/auto_online_blocks", "offline")
        for pfn, o in self.holds[i]:
            kernel_free_pages(m, pfn, o)
        self.holds[i].clear()
        for pfn in self.unmovable[i]:
            kernel_free_pages(m, pfn, 0)
        self.unmovable[i].clear()
        a = self.allow[i]
        bs = m.memory_block_size_bytes
        spb = m.memory.sections_per_block
        P = self.facts[i].P
        for _ in range(12):
            progress = False
            # ranges a failed add left mapped: add and remove them again, which unmaps them
            for res in list(a.direct_map_residue):
                s_pfn, e_pfn, nid = res
                if any(nr in m.ms.present_sections() for nr in range(s_pfn // P, -(-e_pfn // P))):
                    continue
                try:
                    ps = self.facts[i].page_shift
                    for pfn in range(s_pfn, e_pfn, bs >> ps):
                        m.add_memory(nid if nid in m.pgdats else 0, pfn << ps, bs)
                        m.remove_memory(pfn << ps, bs)
                    a.direct_map_residue.remove(res)
                    progress = True
                except HotplugError:
                    pass
            for bid in sorted(m.memory.blocks, reverse=True):
                mem = m.memory.blocks.get(bid)
                if bid in self.boot_blocks or mem is None or mem.state != "online":
                    continue
                _drain_all(m)
                try:
                    m.memory.device_offline(mem)
                    progress = True
                except HotplugError:
                    pass
            for dev in list(reversed(self.devices[i])):
                try:
                    m.acpi_memory_eject(dev)
                    self.devices[i].remove(dev)
                    for s, n in dev.ranges:
                        self._note_removal(i, m, s, n)
                    progress = True
                except HotplugError:
                    pass
            for nr in sorted(set(m.ms.present_sections()) - self.facts[i].boot_sections,
                             reverse=True):
                start = (nr // spb) * bs
                mem = m.memory.blocks.get(nr // spb)
                if mem is not None and mem.state != "offline":
                    continue
                try:
                    m.remove_memory(start, bs)
                    self._note_removal(i, m, start, bs)
                    a.orphan_sections.discard(nr)
                    progress = True
                except HotplugError:
                    pass
            if not progress:
                break
        left = sorted(set(m.ms.present_sections()) - self.facts[i].boot_sections)
        if left or a.direct_map_residue:
            self._fail(f"teardown ({self.backends[i]}): could not remove sections {left} / "
                       f"unmap {a.direct_map_residue}: blocks "
                       f"{[(b, mem.state) for b, mem in sorted(m.memory.blocks.items()) if b not in self.boot_blocks]}")
        # boot blocks back online in their boot zone
        base = {b[0]: b for b in self.baseline[i]["blocks"]}
        for bid in sorted(self.boot_blocks):
            mem = m.memory.blocks.get(bid)
            if mem is None:
                continue
            want_zone = base[bid][4]
            if base[bid][1] == "offline":        # s390x standby: back to offline
                if mem.state == "online":
                    _drain_all(m)
                    try:
                        m.memory.device_offline(mem)
                    except HotplugError as e:
                        self._fail(f"teardown: standby block {bid} cannot be offlined: {e}")
                continue
            if mem.state == "online" and (mem.zone.idx if mem.zone else None) != want_zone:
                _drain_all(m)
                try:
                    m.memory.device_offline(mem)
                except HotplugError:
                    continue
            if mem.state == "offline":
                mem.online_type = 2        # MMOP_ONLINE_KERNEL: the boot zone
                try:
                    m.memory.device_online(mem)
                except HotplugError as e:
                    self._fail(f"teardown: boot block {bid} cannot be onlined again: {e}")
                if (mem.zone.idx if mem.zone else None) != want_zone:
                    # the boot zone shrank past the block (default_kernel_zone_for_pfn only
                    # looks at zone spans): it comes back in another zone, as in the kernel
                    a.baseline_off.append(f"boot block {bid} came back in zone "
                                          f"{mem.zone.idx if mem.zone else None}")
        if a.baseline_off:
            return
        self._release_kept_by_design(i, m)
        _drain_all(m)
        self._compare_with_baseline(i, self.baseline[i], m.snapshot(), a)
        now = _arch_boot_state(m)
        if now.get("sclp") != self.base_arch[i].get("sclp"):
            self._fail(f"teardown ({self.backends[i]}): SCLP storage increments "
                       f"{now.get('sclp')} but {self.base_arch[i].get('sclp')} at boot")

    def _release_kept_by_design(self, i, m) -> None:
        """What the kernel keeps on purpose after everything added was removed, released here
        (noted in Allowances.kept_by_design) so that the rest must equal the boot state:

        - powerpc64 radix: init_mm's cached PTE/PMD fragment pages with no live fragment.
          arch/powerpc/mm/pgtable-frag.c (6.1; 6.6/6.8 only rename to ptdesc):
          pte_fragment_alloc keeps a page's unhanded fragments in mm->context.pte_frag /
          pmd_frag, each holding a pt_frag_refcount reference, and only pte_frag_destroy
          (from destroy_context, never for init_mm) drops them;
        - powerpc64 6.1 (both MMUs) and hash: vmemmap_list pages. init_64.c
          vmemmap_list_alloc never frees a page; vmemmap_list_free puts the entry on the
          freed list for reuse: the pages and the num_left / num_freed counts stay.
        The invariants checked before (fragment refcounts = live + cached fragments; list
        entries = vmemmap leaves) make sure nothing else hides in them."""
        pt = m.pgtables
        a = self.allow[i]
        if hasattr(pt, "drop_fragment_cache"):
            for pfn in pt.drop_fragment_cache():
                a.kept_by_design.append(("radix fragment cache page", pfn))
        vl = m.arch_ops.arch_state().get("vmemmap_list")
        base = self.base_arch[i].get("vmemmap_list")
        if vl is not None and base is not None:
            _, left, freed, pages = base
            if vl.pages[:len(pages)] == list(pages) \
                    and (vl.num_left, vl.num_freed, len(vl.pages)) != (left, freed, len(pages)):
                for pfn in vl.pages[len(pages):]:
                    kernel_free_pages(m, pfn, 0)
                a.kept_by_design.append(("vmemmap_list", len(vl.pages) - len(pages),
                                         vl.num_left, vl.num_freed))
                vl.pages[:] = list(pages)
                vl.num_left, vl.num_freed = left, freed

    def _compare_with_baseline(self, i, base, now, a) -> None:
        stale = _merge(a.stale_iomem)
        bad = []
        # s390x standby blocks back offline: online_pages initialised their memmap and set
        # their pageblocks MOVABLE (memmap_init_range), which offline_pages does not undo
        spb = self.machines[i].memory.sections_per_block
        standby = {f"ms.memmaps[{nr}]" for b in self.standby_blocks
                   for nr in range(b * spb, (b + 1) * spb)}
        standby |= {f"ms.sections[{nr}].usemap" for b in self.standby_blocks
                    for nr in range(b * spb, (b + 1) * spb)}
        for p, x, y in diff_snapshots(base, now):
            if p in ("max_pfn", "ms.roots") or p in standby:
                continue
            if p.startswith("memmap stats") and a.memmap_stats_drift:
                continue
            if p.startswith("pgdats[") and p.split(".")[-1] in (
                    "nr_zones", "contiguous", "watermark", "watermark_boost", "lowmem_reserve",
                    "pageset_high", "pageset_batch", "stat_threshold"):
                continue
            if p.startswith("alloc.zones[") and p.endswith(".pcp"):
                if all(c[0] == 0 for c in (y or ())):
                    continue
            if p.endswith(".free_area") and _free_blocks(x) == _free_blocks(y):
                continue
            if p.startswith("ms.sections[") and p.endswith(".usemap") and all(
                    u == v or (u & 7) < 3 and (v & 7) < 3 and u >> 3 == v >> 3
                    for u, v in zip(x, y)):
                continue
            if p == "slab":
                xs = dict(x)
                ys = dict(y)
                xs.pop("mem_section root", None)
                ys.pop("mem_section root", None)
                if xs == ys:
                    continue
            if p == "iomem" and stale and \
                    _iomem_flat(self.machines[i].resources.root, stale,
                                self.facts[i].page_shift) == self.base_iomem[i]:
                continue
            if p == "fw":
                # firmware_map_remove only drops an entry of exactly the removed range: a
                # range removed in other pieces keeps its /sys/firmware/memmap entry
                present = set(self.machines[i].ms.present_sections())
                P = self.facts[i].P
                live = [e for e in y if e in x or any(
                    nr in present for nr in range((e[0] >> self.facts[i].page_shift) // P,
                                                  -(-(e[1] >> self.facts[i].page_shift) // P)))]
                if live == list(x):
                    continue
            bad.append(p)
        if bad:
            self._fail(f"teardown ({self.backends[i]}): after removing everything that was "
                       f"added the Machine differs from its boot state in {bad[:15]}")
