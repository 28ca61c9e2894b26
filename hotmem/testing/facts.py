"""What boot established (:class:`BootFacts`) and what the kernel keeps on purpose after a failed or
odd operation (:class:`Allowances`): the two inputs of the invariants besides the Machine."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hotmem.testing.consts import SECTION_IS_EARLY


class BootFacts:
    """What boot established and never changes afterwards (read once, right after boot): the
    boot sections, the boot RAM (memblock.memory) and boot reservations (memblock.reserved) as
    per-section page masks, the number of mem_section roots boot allocated."""

    def __init__(self, m):
        ms = m.ms
        self.P = ms.pages_per_section
        self.shift = ms.pfn_section_shift
        self.page_shift = ps = m.arch.page_shift
        #: 6.11 (hotplug_memmap_page_offline): online memmap-on-memory pages are not PG_reserved
        self.altmap_pages_unreserved = bool(getattr(m.policy, "hotplug_memmap_page_offline",
                                                    False))
        self.boot_sections = frozenset(ms.present_sections())
        #: boot sections sparse_init made (memblock usage maps), not s390's standby memory
        self.early_sections = frozenset(nr for nr in self.boot_sections
                                        if ms.section_mem_map(nr) & SECTION_IS_EARLY)
        self.boot_roots = ms.nr_roots_allocated()
        self.ram_ranges = [(s, e) for s, e, _ in m.memblock.mem_pfn_ranges(ps)]
        self.reserved_ranges = [(r.base >> ps, (r.base + r.size + (1 << ps) - 1) >> ps, r.name)
                                for r in m.memblock.reserved]
        self.ram_mask, self.memblock_mask = {}, {}
        for nr in self.boot_sections:
            base = nr << self.shift
            ram = np.zeros(self.P, bool)
            for s, e in self.ram_ranges:
                lo, hi = max(s, base), min(e, base + self.P)
                if lo < hi:
                    ram[lo - base:hi - base] = True
            res = np.zeros(self.P, bool)
            for s, e, _ in self.reserved_ranges:
                lo, hi = max(s, base), min(e, base + self.P)
                if lo < hi:
                    res[lo - base:hi - base] = True
            self.ram_mask[nr], self.memblock_mask[nr] = ram, res
        self.memblock_tables = {p: w for p, (w, n, _) in m.owners.memblock.items()
                                if "table" in w or w.startswith("pgtable")}
        self.boot_memmap = [(p, p + n) for p, (w, n, _) in m.owners.memblock.items()
                            if w == "memmap (boot)"]
        self._masks = {}
        #: per-section census results of the last check, keyed by the section's content
        self.census_cache = {}
        self.last_crcs = {}
        #: per-table walk results of the last check, keyed by the table's entries
        self.pt_cache = {}

    def section_masks(self, nr, sub, sub_shift, early):
        """(present-subsection mask or None when all present, RAM mask or None when all RAM,
        boot-reservation mask, RAM pages, first RAM pfn offset, last + 1) of a section."""
        key = (nr if early else -1, sub)
        got = self._masks.get(key)
        if got is None:
            P = self.P
            nsub = P >> sub_shift
            full = sub == (1 << nsub) - 1
            pmask = None if full else np.repeat(
                np.array([(sub >> i) & 1 for i in range(nsub)], bool), 1 << sub_shift)
            if early:
                ram = self.ram_mask[nr] if pmask is None else self.ram_mask[nr] & pmask
                boot_ok = self.memblock_mask[nr] | ~self.ram_mask[nr]
            else:
                ram, boot_ok = pmask, None
            ridx = np.flatnonzero(ram) if ram is not None else np.arange(P)
            got = (pmask, ram, boot_ok, len(ridx), int(ridx[0]) if len(ridx) else 0,
                   int(ridx[-1]) + 1 if len(ridx) else 0)
            self._masks[key] = got
        return got


@dataclass
class Allowances:
    """What the kernel keeps on purpose after a failed or odd operation, as the driver observed
    it right after that operation (the invariants check everything else about these)."""
    #: pfn ranges whose direct map a failed arch_add_memory left (6.1 has no rollback of
    #: init_memory_mapping)
    direct_map_residue: list = field(default_factory=list)
    #: sections a failed __add_pages left present without a memory block (earlier sections stay)
    orphan_sections: set = field(default_factory=set)
    #: pfn ranges whose "System RAM" iomem resource release_mem_region_adjustable could not
    #: release (a removal spanning two resources)
    stale_iomem: list = field(default_factory=list)
    #: why the final comparison with the boot state cannot hold (boot memory was removed, a
    #: boot block could not go back to its boot zone); empty: it must hold
    baseline_off: list = field(default_factory=list)
    #: every section an operation of the program touched (where a leaked usage map could be)
    touched_sections: set = field(default_factory=set)
    #: what the teardown found kept by design and released before comparing with the boot
    #: state (see Driver._release_kept_by_design): powerpc64 radix init_mm fragment caches
    #: and vmemmap_list pages
    kept_by_design: list = field(default_factory=list)
    #: 6.11: a failed section population still subtracts its memmap from nr_memmap_pages
    #: (section_activate → section_deactivate → depopulate_section_memmap): the counter drifts
    memmap_stats_drift: bool = False


def _merge(intervals):
    out = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def _covered(intervals, s, e) -> bool:
    """[s, e) inside the union of the merged ``intervals``."""
    for a, b in intervals:
        if a <= s and e <= b:
            return True
    return False
