"""Property-based testing of hotmem: a hotplug program driver, invariants, and a Hypothesis
state machine (issue #6).

- :class:`MachineConfig` describes a box (kernel version, boot memory and NUMA layout, paging
  levels, CPUs and CPU flags, command line) and boots it.
- :class:`Driver` runs a hotplug *program* — ACPI hot-add and eject, ``add_memory`` /
  ``remove_memory`` at any granularity, sysfs writes with valid and invalid words, node
  fragmentation, fault injection — on one Machine or, differentially, on the compiled core and
  the pure-Python twin at once. It records every step as a line of Python, so that
  ``driver.program()`` is a replayable script, and after each step it checks
  :func:`check_invariants` and the error path: where the kernel unwinds a failed operation fully,
  the Machine must be bit-identical to its state before it (``fast_snapshot``: ``m.snapshot()``
  with each struct page array as its CRC-32); where the kernel keeps something on purpose,
  exactly that may differ. ``driver.teardown()`` removes everything
  that was added and compares the Machine with its state before the first step.
- :func:`make_state_machine` builds the reusable ``RuleBasedStateMachine`` (``HotplugStateMachine``
  is the default one: every kernel version, the compiled core); ``fuzz_settings()`` gives the CI
  profile (derandomised) or the long one (``HOTMEM_FUZZ=long``).

The invariants recount everything from the bottom layer of the state — struct pages, section
flags and subsection maps, page-table entries reached from the root — and compare the recount
with the counters and lists the kernel code keeps (free lists, per-CPU lists, zone counters,
memory block devices, the owner ledger, iomem). They never use a counter to check itself.

Replay a failure by running the program the failing example prints (it uses only this module
and hotmem), e.g.::

    from hotmem.testing import Driver, MachineConfig
    d = Driver(MachineConfig(kernel='6.1', boot_memory='1G', cmdline='memory_hotplug.memmap_on_memory=1'))
    d.acpi_hotplug(0x100000000, 0x8000000, node=0)     # -> 0
    d.write(32, 'state', 'online_movable')              # -> 0
    d.teardown()
"""
from __future__ import annotations

import errno as _errno
import os
import re
import zlib
from dataclasses import dataclass, field

import numpy as np

from hotmem.errors import HotplugError
from hotmem.mm.watermark import zone_pageset

MiB, GiB = 1 << 20, 1 << 30

# -- kernel constants the invariants use, written out from the kernel headers (6.1) ----------------
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

KERNELS = ("v2", "5.13", "6.1", "6.6", "6.8", "6.11")
#: the versions an s390x Machine models (6.9+ adds standby memory with memmap on memory)
S390X_KERNELS = ("v2", "5.13", "6.1", "6.6", "6.8")
ONLINE_WORDS = ("online", "online_kernel", "online_movable")
STATE_WORDS = ONLINE_WORDS + ("offline",)
INVALID_STATE_WORDS = ("", "on", "Online", "online_movable ", "offline\n", "1", "going-offline",
                       "online_kernel,", "unplug", "\x00")
ONLINE_ATTR_WORDS = ("1", "0", "y", "n", "Y", "N", "yes", "no", "on", "off", "true", "false",
                     "2", "maybe", "", "online")

#: warnings the model's kernel may print in a fuzzed program, and why they are expected
EXPECTED_WARNINGS = (
    "add_pages: __add_pages failed",              # WARN_ON_ONCE(ret) after an injected failure
    "vmemmap_populate: no cpu support for altmap",  # no PSE and MHP_MEMMAP_ON_MEMORY (6.1 x86)
    "memory_blocks_have_altmaps",                 # 6.8 refuses a range mixing both kinds
    "__remove_section: section",                  # removing a range part of which is gone
    # s390 vmem.c (6.1) vmem_free_pages / vmem_pte_free: WARN_ON_ONCE(PageReserved) and keep
    # the page when boot memory's memmap or tables are removed
    "vmem_free_pages: pfn",
    "vmem_pte_free: table at",
)


#: model bugs the fuzzer found that are outside what this module may fix, with the sign that
#: gives them away: a program that runs into one ends there (counted in STEPS["known"]) instead
#: of failing, so that the rest keeps being fuzzed. tests/test_fuzz_regressions.py holds a
#: strict-xfail test for each; remove the entry when that test passes.
KNOWN_MODEL_ISSUES: dict = {
    # "id": (regular expression matching the warning that gives it away, "what is wrong"),
    # (the 6.6/6.8 altmap base-page fallback that was here first is fixed)
    # (the arm64 boot-memory offlining found next is fixed too)
}


class InvariantError(AssertionError):
    """An invariant or an error-path check failed; the message says which and where."""


def _ename(err: int) -> str:
    return "0" if not err else _errno.errorcode.get(err, str(err))


# -- machine configurations ------------------------------------------------------------------------

@dataclass(frozen=True)
class MachineConfig:
    """A box to boot: every argument of hotmem.Machine that a fuzzed program varies."""
    kernel: str = "6.1"
    boot_memory: object = "1G"                 # "1G" or a tuple of (node, size) pairs
    cmdline: str = "memory_hotplug.memmap_on_memory=1"
    paging_levels: int = 4
    cpus: object = 1                           # an int or a tuple of (node, cpus) pairs
    cpu_flags: tuple = ("pse", "hypervisor")
    arch: str = "x86_64"
    page_size: str | None = None               # arm64: "4K", "16K" or "64K"
    mmu: str | None = None                     # powerpc64: "radix" or "hash"
    standby_memory: object = None              # s390x: a size or a tuple of (key, value) pairs

    def boot(self, backend: str | None = None):
        import hotmem
        boot_memory = dict(self.boot_memory) if isinstance(self.boot_memory, tuple) \
            else self.boot_memory
        cpus = dict(self.cpus) if isinstance(self.cpus, tuple) else self.cpus
        extra = {"page_size": self.page_size} if self.page_size else {}
        if self.mmu:
            extra["mmu"] = self.mmu
        if self.standby_memory is not None:
            extra["standby_memory"] = dict(self.standby_memory) \
                if isinstance(self.standby_memory, tuple) else self.standby_memory
        return hotmem.Machine(arch=self.arch, kernel=self.kernel, boot_memory=boot_memory,
                              cmdline=self.cmdline, paging_levels=self.paging_levels, cpus=cpus,
                              cpu_flags=self.cpu_flags, backend=backend, **extra)



# -- facts fixed at boot, and what the kernel keeps on purpose ---------------------------------------

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


# -- invariants ------------------------------------------------------------------------------------

def check_invariants(m, facts: BootFacts, allow: Allowances | None = None) -> dict:
    """Check every invariant of the Machine ``m``; raise InvariantError listing the violations.
    Returns the recounts (for tests and reports)."""
    allow = allow or Allowances()
    errs: list[str] = []
    census = _check_sections_and_pages(m, facts, allow, errs)
    _check_zones(m, facts, census, errs)
    _check_pcp_and_isolation(m, census, errs)
    pt = _check_page_tables(m, facts, allow, census, errs)
    _check_blocks_and_altmaps(m, facts, allow, census, pt, errs)
    _check_iomem(m, facts, allow, errs)
    _check_slab(m, facts, allow, errs)
    if errs:
        more = f"\n  ... and {len(errs) - 25} more" if len(errs) > 25 else ""
        raise InvariantError("invariants violated:\n  " + "\n  ".join(errs[:25]) + more)
    return census


def _zone_links(arr, zones_pgshift):
    """page_zone_id of every struct page (page->flags >> ZONES_PGSHIFT), read through a 16-bit
    view of the flags' top bytes when the zone and node bits lie there (as on x86)."""
    if zones_pgshift >= 48 and arr.dtype.fields["flags"][0] == 0:
        top = np.ndarray(shape=arr.shape, dtype="<u2", buffer=arr, offset=6,
                         strides=arr.strides)
        return top >> (zones_pgshift - 48)
    return (arr["flags"] >> np.uint64(zones_pgshift)).astype(np.int64)


def _section_census(nr, arr, online, items, sec_flags, sub, sub_shift, facts, zsh, max_order):
    """The census of one present section (see _check_sections_and_pages): its errors, free
    block keys, and per zone managed / present / early-present / free pages and RAM span, and
    the (min, max) zone id of its RAM pages."""
    P = facts.P
    e_, fs_, fc_, mg_, pc_, ec_, sl_, sh_, sz_ = [], [], {}, {}, {}, {}, {}, {}, [None]
    r_ = (e_, fs_, fc_, mg_, pc_, ec_, sl_, sh_, sz_)
    base = nr << facts.shift
    pflags = arr["flags"]
    ptype = arr["page_type"]
    buddy = (ptype & np.uint32(PAGE_TYPE_BASE | PG_BUDDY)) == np.uint32(PAGE_TYPE_BASE)
    if not online:
        if buddy.any():
            p = base + int(np.flatnonzero(buddy)[0])
            e_.append(f"pfn {p:#x}: PageBuddy in offline section {nr}")
        for kind, (offs, ns) in ((k, v) for k, v in items.items() if k != "pcp zone"):
            if kind != "altmap":
                e_.append(f"{len(offs)} {kind} blocks (first pfn {base + int(offs[0]):#x})"
                          f" lie in offline section {nr}")
        return r_
    early = bool(sec_flags & SECTION_IS_EARLY) and nr in facts.boot_sections
    pmask, ram, boot_ok, nram, ram_lo, ram_hi = facts.section_masks(nr, sub, sub_shift, early)
    nonres = (pflags & np.uint64(1 << PG_RESERVED)) == 0
    heads = np.flatnonzero(buddy)
    orders = arr["private"][heads].astype(np.int64)
    bad = (orders >= max_order) | (heads & ((1 << orders) - 1) != 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        e_.append(f"pfn {base + int(heads[i]):#x}: PageBuddy with order {int(orders[i])} "
                  "(too big or misaligned)")
        orders = np.minimum(orders, max_order - 1)
    starts_l, ends_l = [heads], [np.minimum(heads + (1 << orders), P)]
    for kind in ("pcp", "allocated"):
        if kind in items:
            offs, ns = items[kind]
            starts_l.append(offs)
            ends_l.append(np.minimum(offs + ns, P))
    d = np.zeros(P + 1, np.int32)
    np.add.at(d, np.concatenate(starts_l), 1)
    np.add.at(d, np.concatenate(ends_l), -1)
    fpa = np.cumsum(d[:-1], dtype=np.int32)    # free + pcp + allocated cover
    zl_heads = (pflags[heads] >> np.uint64(zsh)).astype(np.int64)
    fs_.append(((base + heads) << 20) | (orders << 13) | zl_heads)
    if len(heads):
        fc = np.bincount(zl_heads, weights=(np.int64(1) << orders))
        for z in np.flatnonzero(fc).tolist():
            fc_[z] = int(fc[z])
    vmask = None
    if "altmap" in items:
        vmask = np.zeros(P, np.int32)
        for off, k in zip(*(x.tolist() for x in items["altmap"])):
            vmask[off:off + k] += 1
        if (vmask > 1).any():
            e_.append(f"section {nr}: altmap ranges overlap")
        vmask = vmask > 0
    if vmask is not None and facts.altmap_pages_unreserved:
        # 6.11: mhp_init_memmap_on_memory leaves the vmemmap pages neither PageOffline nor
        # PG_reserved; they are the altmap's, not free or allocated
        nonres = nonres & ~vmask
    # a page not PG_reserved is free, on a pcp list or allocated, exactly once; a PG_reserved
    # page is an altmap page or (boot sections) a boot reservation or a hole
    want = nonres if pmask is None else nonres & pmask
    wrong = fpa != want
    if wrong.any():
        idx = np.flatnonzero(wrong)
        i = int(idx[0])
        e_.append(f"section {nr}: {len(idx)} pfns not accounted exactly once, first "
                  f"{base + i:#x} (free/pcp/allocated claims {int(fpa[i])}, reserved "
                  f"{not bool(nonres[i])}, buddy {bool(buddy[i])}, refcount "
                  f"{int(arr['_refcount'][i])})")
    res = ~nonres
    if pmask is not None:
        res &= pmask
    if early:
        unexplained = res & ~boot_ok
        if vmask is not None:
            unexplained &= ~vmask
    else:
        unexplained = res if vmask is None else res & ~vmask
    if vmask is not None and not facts.altmap_pages_unreserved and (vmask & nonres).any():
        i = int(np.flatnonzero(vmask & nonres)[0])
        e_.append(f"pfn {base + i:#x}: altmap (vmemmap) page without PG_reserved")
    if unexplained.any():
        i = int(np.flatnonzero(unexplained)[0])
        e_.append(f"section {nr}: {int(unexplained.sum())} PG_reserved pages nobody "
                  f"reserved, first {base + i:#x}")
    zl = _zone_links(arr, zsh)
    zmin, zmax = int(zl.min()), int(zl.max())
    if zmin == zmax:
        z = zmin
        mg_[z] = int(want.sum())
        if nram:
            pc_[z] = nram
            if early:
                ec_[z] = nram
            sl_[z] = base + ram_lo
            sh_[z] = base + ram_hi
        sz_[0] = (zmin, zmax) if nram else None
    else:
        ramv = np.ones(P, bool) if ram is None else ram
        mc = np.bincount(zl[want])
        for z in np.flatnonzero(mc).tolist():
            mg_[z] = int(mc[z])
        zr = zl[ramv]
        sz_[0] = (int(zr.min()), int(zr.max())) if len(zr) else None
        rc = np.bincount(zr) if len(zr) else np.zeros(0, np.int64)
        for z in np.flatnonzero(rc).tolist():
            pc_[z] = int(rc[z])
            if early:
                ec_[z] = int(rc[z])
            ridx = np.flatnonzero(ramv & (zl == z))
            sl_[z] = base + int(ridx[0])
            sh_[z] = base + int(ridx[-1]) + 1
    # pcp pages: on their zone's list, refcount 0, no page type
    if "pcp" in items:
        offs = items["pcp"][0]
        zids = items["pcp zone"]
        wrong = (zl[offs] != zids) | (arr["_refcount"][offs] != 0) | \
            (ptype[offs] != np.uint32(0xFFFFFFFF))
        if wrong.any():
            i = int(offs[np.flatnonzero(wrong)[0]])
            e_.append(f"pcp page {base + i:#x}: zone {int(zl[i])}, refcount "
                      f"{int(arr['_refcount'][i])}, page_type {int(ptype[i]):#x}")
    return r_


def _check_sections_and_pages(m, facts, allow, errs) -> dict:
    """Sections and struct pages; every pfn accounted exactly once.

    Claimants: free buddy blocks (found by scanning struct pages for PageBuddy heads), per-CPU
    list pages, blocks the allocator handed out, altmap (vmemmap) ranges, and boot reservations
    (PG_reserved pages of boot sections that memblock reserved or that are not boot RAM). In an
    online section every pfn of a present subsection has exactly one claimant and no pfn of an
    absent subsection has one; an offline section may only hold altmap pages; a section that is
    not present holds nothing."""
    ms, alloc = m.ms, m.allocator
    P, shift = facts.P, facts.shift
    zsh = ms.zones_pgshift
    max_order = alloc.max_order
    pb_order = alloc.pageblock_order
    present = ms.present_sections()
    present_set = set(present)
    memmaps = set(ms.memmap_sections())
    flags_of = {nr: ms.section_mem_map(nr) for nr in present}
    for nr in memmaps - present_set:
        errs.append(f"section {nr}: struct pages allocated but the section is not present")
    online_secs = set()
    for nr in present:
        f = flags_of[nr]
        if not f & SECTION_HAS_MEM_MAP or nr not in memmaps:
            errs.append(f"section {nr}: present without a memmap (flags {f:#x})")
        if not ms.has_usage(nr) or not ms.subsection_map(nr):
            errs.append(f"section {nr}: present without a usage map / subsections")
        if f & SECTION_IS_EARLY and nr not in facts.boot_sections:
            errs.append(f"section {nr}: SECTION_IS_EARLY on a hot-added section")
        if f & SECTION_IS_ONLINE:
            online_secs.add(nr)
    if present and m.highest_present_section_nr < present[-1]:
        errs.append(f"__highest_present_section_nr {m.highest_present_section_nr} below "
                    f"section {present[-1]}")

    # claims by the lists the kernel keeps: (pfn, nr_pages) arrays per kind
    pcp_total: dict[int, int] = {}
    pcp_pfn, pcp_n, pcp_zone = [], [], []
    for zid in alloc.zones():
        for cpu in range(alloc.nr_cpus):
            count = 0
            for pindex, pfns in alloc.pcp_pages(zid, cpu):
                order = pindex // 3 if pindex < NR_LOWORDER_PCP_LISTS else pb_order
                pcp_pfn.extend(pfns)
                pcp_n.extend([1 << order] * len(pfns))
                pcp_zone.extend([zid] * len(pfns))
                count += len(pfns) << order
            info = alloc.pcp_info(zid, cpu)
            if info[0] != count:
                errs.append(f"zone {zid} cpu {cpu}: pcp->count {info[0]} but its lists hold "
                            f"{count} pages")
            pcp_total[zid] = pcp_total.get(zid, 0) + count
    allocated = alloc.allocated()
    owners = m.owners
    ledger = {p: o for p, (_, o, _) in owners.buddy.items()}
    if ledger != allocated:
        extra = sorted(set(allocated.items()) - set(ledger.items()))[:4]
        missing = sorted(set(ledger.items()) - set(allocated.items()))[:4]
        errs.append(f"owner ledger != allocator's allocated blocks: allocated without owner "
                    f"{[(hex(p), o) for p, o in extra]}, owned but not allocated "
                    f"{[(hex(p), o) for p, o in missing]}")
    alt_pfns, alt_ns = list(owners.altmap), list(owners.altmap.values())
    if m.policy.memory_block_keeps_altmap:
        # 6.6+ force mode: the block reserves nr_vmemmap_pages = altmap->free, pageblock
        # padded; the pages past those the altmap handed out are reserved too (the "waste")
        for mem in m.memory.blocks.values():
            v = mem.nr_vmemmap_pages
            if not v:
                continue
            s0 = mem.start_pfn
            used = sum(n for q, n in owners.altmap.items() if s0 <= q < s0 + v)
            if used < v:
                alt_pfns.append(s0 + used)
                alt_ns.append(v - used)
    kinds = {
        "pcp": (np.array(pcp_pfn, np.int64), np.array(pcp_n, np.int64)),
        "allocated": (np.array(list(allocated), np.int64),
                      np.array([1 << o for o in allocated.values()], np.int64)),
        "altmap": (np.array(alt_pfns, np.int64), np.array(alt_ns, np.int64)),
    }
    bucket: dict[int, dict] = {}
    for kind, (pfns, ns) in kinds.items():
        if not len(pfns):
            continue
        if ((pfns >> shift) != ((pfns + ns - 1) >> shift)).any():
            errs.append(f"a {kind} block crosses a section boundary")
        secs = pfns >> shift
        for nr in np.unique(secs).tolist():
            sel = secs == nr
            bucket.setdefault(nr, {})[kind] = (pfns[sel] & (P - 1), ns[sel])
            if kind == "pcp":
                bucket[nr]["pcp zone"] = np.array(pcp_zone, np.int64)[sel]

    free_scan = []
    sec_zones = {}       # online section -> (min, max) zone id over its RAM pages
    managed, present_cnt, early_cnt, free_cnt = {}, {}, {}, {}
    span_lo, span_hi = {}, {}
    cache = facts.census_cache
    used = {}
    crcs = {}
    for nr in present:
        arr = ms.memmap(nr)
        if arr is None:
            continue
        items = bucket.pop(nr, {})
        online = nr in online_secs
        sub = ms.subsection_map(nr)
        digest = zlib.crc32(b"".join(x.tobytes() for k in sorted(items) for x in
                                     (items[k] if isinstance(items[k], tuple) else (items[k],))))
        crc = zlib.crc32(arr)
        crcs[nr] = crc
        key = (nr, crc, online, flags_of[nr], sub, digest)
        r = cache.get(key)
        if r is None:
            r = _section_census(nr, arr, online, items, flags_of[nr], sub,
                                ms.pfn_subsection_shift, facts, zsh, max_order)
        used[key] = r
        e_, fs_, fc_, mg_, pc_, ec_, sl_, sh_, sz_ = r
        errs.extend(e_)
        free_scan.extend(fs_)
        for dst, src in ((free_cnt, fc_), (managed, mg_), (present_cnt, pc_), (early_cnt, ec_)):
            for z, v in src.items():
                dst[z] = dst.get(z, 0) + v
        for z, v in sl_.items():
            span_lo[z] = min(span_lo.get(z, v), v)
        for z, v in sh_.items():
            span_hi[z] = max(span_hi.get(z, v), v)
        if online:
            sec_zones[nr] = sz_[0]
    facts.census_cache = used
    facts.last_crcs = crcs
    for nr, items in bucket.items():
        for kind, (offs, ns) in items.items():
            if kind == "pcp zone":
                continue
            errs.append(f"{len(offs)} {kind} blocks (first pfn {(nr << shift) + int(offs[0]):#x})"
                        f" lie in section {nr}, which is not present")
    # free lists == struct-page scan
    lists = []
    for zid in alloc.zones():
        for order in range(max_order):
            for mt in range(5):
                n = alloc.nr_free(zid, order, mt)
                if not n:
                    continue
                pfns = alloc.free_list(zid, order, mt)
                if len(pfns) != n:
                    errs.append(f"zone {zid} order {order} mt {mt}: nr_free {n} but the list "
                                f"holds {len(pfns)}")
                if mt == MIGRATE_ISOLATE:
                    errs.append(f"zone {zid}: {n} order-{order} blocks on MIGRATE_ISOLATE "
                                "lists after the operation")
                lists.append((np.array(pfns, np.int64) << 20) | (order << 13) | zid)
    lists = np.sort(np.concatenate(lists)) if lists else np.zeros(0, np.int64)
    scan = np.sort(np.concatenate(free_scan)) if free_scan else np.zeros(0, np.int64)
    if len(lists) != len(scan) or (lists != scan).any():
        dec = lambda k: (hex(int(k) >> 20), (int(k) >> 13) & 127, int(k) & 8191)
        a = [dec(k) for k in np.setdiff1d(lists, scan)[:3]]
        b = [dec(k) for k in np.setdiff1d(scan, lists)[:3]]
        errs.append(f"free lists != PageBuddy scan of struct pages: listed but not PageBuddy "
                    f"{a}, PageBuddy but not listed {b} (duplicates: "
                    f"{len(lists) - len(np.unique(lists))})")
    return {"present": present_set, "online": online_secs, "managed": managed,
            "present_pages": present_cnt, "early": early_cnt, "free": free_cnt,
            "span": {z: (span_lo[z], span_hi[z]) for z in span_lo}, "pcp": pcp_total,
            "flags": flags_of, "sec_zones": sec_zones}


def _check_zones(m, facts, c, errs) -> None:
    """Zone and node counters against the struct-page recount: spanned ≥ present ≥ managed,
    present/managed/NR_FREE_PAGES/present_early equal to the recount, the span exactly the
    first..last present pfn, node present = Σ zones, node span = union of zone spans,
    MemTotal = Σ managed, node states from present pages."""
    total = 0
    known = set()
    for nid, pgdat in m.pgdats.items():
        node_present = 0
        spans = []
        for z in pgdat.node_zones:
            zid = z.zoneid
            known.add(zid)
            name = f"node {nid} {ZONE_NAMES[z.idx]}"
            present = c["present_pages"].get(zid, 0)
            managed = c["managed"].get(zid, 0)
            free = c["free"].get(zid, 0)
            got = (z.present_pages, z.managed_pages, z.nr_free_pages)
            if got != (present, managed, free):
                errs.append(f"{name}: present/managed/NR_FREE_PAGES {got} but struct pages "
                            f"say {(present, managed, free)}")
            if z.present_early_pages != c["early"].get(zid, 0):
                errs.append(f"{name}: present_early_pages {z.present_early_pages}, recount "
                            f"{c['early'].get(zid, 0)}")
            if not z.spanned_pages >= z.present_pages >= z.managed_pages >= 0:
                errs.append(f"{name}: spanned {z.spanned_pages} ≥ present {z.present_pages} ≥ "
                            f"managed {z.managed_pages} does not hold")
            span = c["span"].get(zid)
            want = (0, 0) if span is None else (span[0], span[1] - span[0])
            if (z.zone_start_pfn if z.spanned_pages else 0, z.spanned_pages) != want:
                errs.append(f"{name}: span start {z.zone_start_pfn:#x} spanned "
                            f"{z.spanned_pages} but its present pages run "
                            f"{want[0]:#x}+{want[1]}")
            if z.spanned_pages:
                spans.append((z.zone_start_pfn, z.zone_end_pfn))
                if pgdat.nr_zones < z.idx + 1 and z.present_pages:
                    errs.append(f"{name}: populated but pgdat->nr_zones is {pgdat.nr_zones}")
            node_present += z.present_pages
            total += z.managed_pages
        if pgdat.node_present_pages != node_present:
            errs.append(f"node {nid}: node_present_pages {pgdat.node_present_pages} != Σ zones "
                        f"{node_present}")
        want = (min(s for s, _ in spans), max(e for _, e in spans)) if spans else None
        got = (pgdat.node_start_pfn, pgdat.node_end_pfn) if pgdat.node_spanned_pages else None
        if got != want:
            errs.append(f"node {nid}: span {got} but the zones span {want}")
        has_mem = node_present > 0
        has_normal = any(z.present_pages for z in pgdat.node_zones[:3])
        if (pgdat.has_memory, pgdat.has_normal_memory) != (has_mem, has_normal):
            errs.append(f"node {nid}: N_MEMORY/N_NORMAL_MEMORY {pgdat.has_memory}/"
                        f"{pgdat.has_normal_memory} but present pages say {has_mem}/{has_normal}")
        if has_mem and not pgdat.online:
            errs.append(f"node {nid}: has memory but is offline")
        if not pgdat.online and (pgdat.node_spanned_pages or any(
                b.nid == nid for b in m.memory.blocks.values())):
            errs.append(f"node {nid}: offline but spans pages or has memory blocks")
        if (pgdat.kswapd, pgdat.kcompactd) != (has_mem, has_mem):
            errs.append(f"node {nid}: kswapd/kcompactd {pgdat.kswapd}/{pgdat.kcompactd} but "
                        f"N_MEMORY is {has_mem}")
    for zid in set(c["present_pages"]) | set(c["managed"]):
        if zid not in known:
            errs.append(f"struct pages link to zone id {zid}, which no node has")
    if m.totalram_pages != total:
        errs.append(f"totalram_pages (MemTotal) {m.totalram_pages} != Σ managed {total}")


def _check_pcp_and_isolation(m, c, errs) -> None:
    """No operation leaves a zone's pcp disabled, a pageblock isolated or an isolated-pageblock
    count; the pcp sizing is the zone's; an unpopulated zone has empty pcp lists."""
    alloc, ms = m.allocator, m.ms
    state = alloc.state()["zones"]
    for nid, pgdat in m.pgdats.items():
        for z in pgdat.node_zones:
            zs = state.get(z.zoneid)
            if zs is None:
                continue
            if zs["pcp_disabled"]:
                errs.append(f"zone {z.zoneid}: pcp still disabled")
            if zs["nr_isolate_pageblock"] or z.nr_isolate_pageblock:
                errs.append(f"zone {z.zoneid}: nr_isolate_pageblock "
                            f"{zs['nr_isolate_pageblock']}/{z.nr_isolate_pageblock}")
            pageset = zone_pageset(m, z)
            for cpu, p in enumerate(zs["pcp"]):
                if (p[1], p[2]) != pageset:
                    errs.append(f"zone {z.zoneid} cpu {cpu}: pcp high/batch {p[1]}/{p[2]} but "
                                f"the zone's pageset is {pageset[0]}/{pageset[1]}")
            if not z.present_pages and c["pcp"].get(z.zoneid):
                errs.append(f"zone {z.zoneid}: unpopulated but holds {c['pcp'][z.zoneid]} "
                            "pages on pcp lists")
    pb = 1 << alloc.pageblock_order
    for nr in c["online"]:
        base = nr << ms.pfn_section_shift
        for p in range(base, base + ms.pages_per_section, pb):
            if ms.get_pageblock_migratetype(p) == MIGRATE_ISOLATE:
                errs.append(f"pageblock {p:#x} of online section {nr} left MIGRATE_ISOLATE")
                break


def _kernel_va(va: int, va_bits: int) -> int:
    """The kernel address an index path through the tables spells: the upper half (x86's
    sign extension of a kernel address, arm64's TTBR1 range)."""
    return va | (((1 << 64) - 1) & ~((1 << va_bits) - 1))


def _table_walk(ents, mask, pfn_mask, page_shift, lvl, shift, base, d):
    """One table's entries: (its leaves as (base va, shift, indexes, target pfns, level) or
    None, the child tables to walk as (pfn, depth, va), whether an entry lacks _PAGE_PRESENT)."""
    idx = np.flatnonzero(ents & mask)
    if not len(idx):
        return None, [], False
    e = ents[idx]
    bad = not (e & np.uint64(_PAGE_PRESENT)).all()
    targets = ((e & pfn_mask) >> np.uint64(page_shift)).astype(np.int64)
    if lvl == "PTE":
        leaf = np.ones(len(idx), bool)
    elif lvl in ("P4D", "PUD", "PMD"):
        leaf = (e & np.uint64(_PAGE_PSE)) != 0
    else:
        leaf = np.zeros(len(idx), bool)
    leaves = (base, shift, idx[leaf].astype(np.int64), targets[leaf], lvl) if leaf.any() else None
    children = [(t, d + 1, base | (i << shift))
                for i, t in zip(idx[~leaf].tolist(), targets[~leaf].tolist())]
    return leaves, children, bad


def _check_page_tables(m, facts, allow, c, errs) -> dict:
    """Page tables walked from the root: every table page reached exactly once and known to
    the core, every table page owned (buddy ledger or boot memblock) with its level and map,
    every owned table page live; direct-map leaves map only memory that exists (present
    sections; boot RAM in boot sections; the residue a failed 6.1 add keeps); the DirectMap
    counters equal the recount; vmemmap leaves map struct pages of present sections only, every
    present section's struct pages are mapped, and each backing page is a memmap page of the
    ledger (altmap, buddy "memmap", boot memmap), none twice."""
    pt, ms = m.pgtables, m.ms
    arch_walk = _ARCH_TABLE_CHECKS.get(type(pt).__name__)
    if arch_walk is not None:            # page tables the arch keeps in Python (ppc, s390)
        return arch_walk(m, facts, allow, c, errs)
    geo = getattr(pt, "geometry", None)
    if geo is not None:
        names = tuple(n for n, _, _ in geo.levels)
        shifts = tuple(sh for _, sh, _ in geo.levels)
        va_bits = geo.levels[0][1] + geo.levels[0][2].bit_length() - 1
        page_shift = geo.page_shift
        x86 = geo.arch == "x86_64"
    else:               # a core without geometries: x86-64
        five = pt.levels == 5
        names = ("PGD", "P4D", "PUD", "PMD", "PTE") if five else ("PGD", "PUD", "PMD", "PTE")
        shifts = (48, 39, 30, 21, 12) if five else (39, 30, 21, 12)
        va_bits, page_shift, x86 = (57 if five else 48), 12, True
    pfn_mask = np.uint64(((1 << 52) - 1) & ~((1 << page_shift) - 1))
    tables = {}
    for lvl in names:
        for pfn in pt.table_pfns(lvl):
            tables[pfn] = lvl
    reached = {}
    leaves = []      # (va of entry 0, entry shift, index array, target array, level)
    cache, used = facts.pt_cache, {}
    stack = [(pt.pgd_pfn, 0, 0)]
    mask = np.uint64(((1 << 64) - 1) & ~_PAGE_KNL_ERRATUM_MASK)
    while stack:
        pfn, d, base = stack.pop()
        if pfn in reached:
            errs.append(f"page table {pfn:#x} reached twice")
            continue
        lvl = names[d]
        reached[pfn] = lvl
        if tables.get(pfn) != lvl:
            errs.append(f"page table {pfn:#x} reached as {lvl} but the core has it as "
                        f"{tables.get(pfn)}")
        ents = pt.entries(pfn)
        key = (pfn, d, base, zlib.crc32(ents))
        got = cache.get(key)
        if got is None:
            got = _table_walk(ents, mask, pfn_mask, page_shift, lvl, shifts[d], base, d)
        used[key] = got
        leaf, children, bad = got
        if bad:
            errs.append(f"{lvl} {pfn:#x}: entries without _PAGE_PRESENT")
        if leaf is not None:
            leaves.append(leaf)
        stack.extend(children)
    facts.pt_cache = used
    orphans = set(tables) - set(reached)
    if orphans:
        errs.append(f"page tables not reachable from the root: "
                    f"{[(hex(p), tables[p]) for p in sorted(orphans)[:5]]}")
    # ownership of table pages
    owned_tables = {p: w for p, (w, o, _) in m.owners.buddy.items() if w.endswith(" table")}
    for pfn, lvl in reached.items():
        if pfn in owned_tables:
            w = owned_tables[pfn]
            if not w.endswith(f" {lvl} table"):
                errs.append(f"page table {pfn:#x} is a {lvl} but its owner says {w!r}")
        elif pfn in facts.memblock_tables:
            w = facts.memblock_tables[pfn]
            if not (w.endswith(f" {lvl}") or f" {lvl} table" in w):
                errs.append(f"boot page table {pfn:#x} is a {lvl} but memblock says {w!r}")
            if pfn >> facts.shift in c["online"] and not ms.page_flags(pfn) >> PG_RESERVED & 1:
                errs.append(f"boot page table {pfn:#x} lost PG_reserved")
        else:
            errs.append(f"page table {pfn:#x} ({lvl}) has no owner")
    for pfn, w in owned_tables.items():
        if pfn not in reached:
            errs.append(f"{w} page {pfn:#x} owned but not part of the page tables")
    # leaves
    page_offset, vmemmap_start = pt.page_offset, pt.vmemmap_start
    phys_span = 1 << pt.max_physmem_bits
    direct_end = (geo.page_end or (1 << 64)) if geo is not None else page_offset + phys_span
    vm_end = (geo.vmemmap_end or (1 << 64)) if geo is not None else \
        vmemmap_start + (phys_span >> page_shift) * m.arch.struct_page_size
    pfn_offset = getattr(m.arch, "phys_offset", 0) >> page_shift    # arm64 memstart_addr
    counts, out = _check_leaves(m, facts, allow, c, errs, leaves, va_bits, page_shift,
                                page_offset, direct_end, vmemmap_start, vm_end, pfn_offset)
    if x86:
        want = {"4K": counts.get("PTE", 0), "2M": counts.get("PMD", 0),
                "1G": counts.get("PUD", 0)}
        got = {k: pt.direct_pages_count(k) for k in want}
        if got != want:
            errs.append(f"direct_pages_count {got} but the direct map has {want} leaves")
    return out


def _check_leaves(m, facts, allow, c, errs, leaves, va_bits, page_shift, page_offset,
                  direct_end, vmemmap_start, vm_end, pfn_offset):
    """The leaves of a page-table walk, whatever the arch's tables: direct-map leaves map only
    memory that exists (present sections; boot RAM in boot sections; the residue a failed 6.1
    add keeps) at its own address; vmemmap leaves map struct pages of present sections (a leaf
    spanning the struct pages of more than one section, as ppc's 2 MiB and 16 MiB vmemmap
    pages do, at least one present: the kernel frees it when !vmemmap_populated), every
    present section's struct pages are mapped, and each backing page is a memmap page of the
    ledger (altmap, buddy "memmap", boot memmap), none twice. ``leaves``: (va of entry 0,
    entry shift, index array, target pfn array, level). Returns (direct-map leaves per level,
    {"targets", "leaves"})."""
    ms = m.ms
    present_arr = np.array(sorted(c["present"]), np.int64)
    spsz = m.arch.struct_page_size
    exists = []
    step = 1 << ms.pfn_subsection_shift
    full = (1 << (facts.P // step)) - 1
    for nr in c["present"]:
        base = nr << facts.shift
        sub = ms.subsection_map(nr)
        pieces = [(base, base + facts.P)] if sub == full else \
            [(base + i * step, base + (i + 1) * step) for i in range(facts.P // step)
             if sub >> i & 1]
        if nr in facts.boot_sections and c["flags"][nr] & SECTION_IS_EARLY:
            for s, e in pieces:
                for a, b in facts.ram_ranges:
                    if max(a, s) < min(b, e):
                        exists.append((max(a, s), min(b, e)))
        else:
            exists.extend(pieces)
    exists = _merge(exists + [(r[0], r[1]) for r in allow.direct_map_residue])
    ex_s = np.array([a for a, _ in exists], np.int64)
    ex_e = np.array([b for _, b in exists], np.int64)
    counts = {}
    vm_cover, targets = [], []
    d_p, d_n, d_t = [], [], []
    for base, sh, idx, tgt, lvl in leaves:
        va0 = _kernel_va(base, va_bits)
        npages = 1 << (sh - page_shift)
        if page_offset <= va0 < direct_end:
            counts[lvl] = counts.get(lvl, 0) + len(idx)
            d_p.append(((va0 - page_offset) >> page_shift) + (idx << (sh - page_shift))
                       + pfn_offset)
            d_n.append(np.full(len(idx), npages, np.int64))
            d_t.append(tgt)
        elif vmemmap_start <= va0 < vm_end:
            n = (npages << page_shift) // spsz
            first = ((va0 - vmemmap_start) + (idx << sh)) // spsz + pfn_offset
            for f0 in first.tolist():
                vm_cover.append((f0, f0 + n))
            if n > facts.P:
                # a leaf over several sections' struct pages: one of them present
                lo = np.searchsorted(present_arr, first >> facts.shift, "left")
                hi = np.searchsorted(present_arr, (first + n - 1) >> facts.shift, "right")
                for f0 in first[hi <= lo].tolist():
                    errs.append(f"vmemmap {lvl} leaf for the struct pages of pfns {f0:#x}+{n} "
                                "holds none of a present section")
            else:
                secs = set((first >> facts.shift).tolist()) | \
                    set(((first + n - 1) >> facts.shift).tolist())
                for nr in sorted(secs - c["present"]):
                    errs.append(f"vmemmap {lvl} leaf maps struct pages of section {nr}, which "
                                "is not present")
            targets.extend(zip(tgt.tolist(), (tgt + npages).tolist()))
        else:
            errs.append(f"{len(idx)} {lvl} leaves at {va0:#x}+ outside the direct map and the "
                        "vmemmap")
    if d_p:
        p, n, tgt = np.concatenate(d_p), np.concatenate(d_n), np.concatenate(d_t)
        if (tgt != p).any():
            i = int(np.flatnonzero(tgt != p)[0])
            errs.append(f"direct map maps pfn {int(tgt[i]):#x} at the address of pfn "
                        f"{int(p[i]):#x}")
        k = np.searchsorted(ex_s, p, "right") - 1
        ok = (k >= 0) & (p + n <= ex_e[np.maximum(k, 0)])
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            errs.append(f"direct map leaf for pfns {int(p[i]):#x}+{int(n[i])} maps memory "
                        f"that does not exist ({int((~ok).sum())} such leaves)")
    vm_cover = _merge(vm_cover)
    for nr in c["present"]:
        s = nr << facts.shift
        if not _covered(vm_cover, s, s + facts.P):
            errs.append(f"section {nr}: struct pages not (fully) mapped in the vmemmap")
    # backing pages: each a memmap page of the ledger, none mapped twice
    owned = [(p, p + n) for p, n in m.owners.altmap.items()]
    owned += [(p, p + (1 << o)) for p, (w, o, _) in m.owners.buddy.items() if w == "memmap"]
    owned_m = _merge(owned + facts.boot_memmap)
    prev_end = -1
    for s, e in sorted(targets):
        if s < prev_end:
            errs.append(f"vmemmap backing page {s:#x} mapped twice")
        prev_end = max(prev_end, e)
        if not _covered(owned_m, s, e):
            errs.append(f"vmemmap maps pfns {s:#x}+{e - s} which are no memmap allocation")
    mapped = _merge(targets)
    for s, e in owned:
        if not _covered(mapped, s, e):
            errs.append(f"memmap allocation {s:#x}+{e - s} is not mapped in the vmemmap")
    return counts, {"targets": mapped, "leaves": len(leaves)}



# -- page tables the arch keeps in Python: powerpc64 (radix, hash) and s390x -------------------

def _table_owner_errs(m, facts, c, errs, pfn, npages, lvl, boot_names, buddy_order, where):
    """A table page (or block) is a real allocated model page owned for its level: memblock
    under ``boot_names`` (PG_reserved while its section is online) or the buddy ledger with
    ``buddy_order`` and a name ending in "<lvl> table"."""
    mb = m.owners.memblock.get(pfn)
    if mb is not None:
        w, n, _ = mb
        if w not in boot_names:
            errs.append(f"{where}: boot {lvl} table page {pfn:#x} but memblock says {w!r}")
        if n < npages:
            errs.append(f"{where}: boot {lvl} table {pfn:#x} needs {npages} pages, memblock "
                        f"reserved {n}")
        if pfn >> facts.shift in c["online"] and not m.ms.page_flags(pfn) >> PG_RESERVED & 1:
            errs.append(f"{where}: boot {lvl} table page {pfn:#x} lost PG_reserved")
        return "memblock"
    bd = m.owners.buddy.get(pfn)
    if bd is None:
        errs.append(f"{where}: {lvl} table page {pfn:#x} has no owner (not allocated)")
        return None
    w, order, _ = bd
    if not w.endswith(f" {lvl} table") or order != buddy_order:
        errs.append(f"{where}: {lvl} table page {pfn:#x} owned as {w!r} order {order}")
    return "buddy"


def _boot_names(lvl):
    return (f"pgtable {lvl}", f"vmemmap {lvl} table (boot)")


def _unreached_boot_tables(m, allow, errs, reached_pages, where) -> None:
    """memblock table pages no table uses any more: only after boot memory was removed (the
    kernel keeps a PageReserved table it cannot free: s390 vmem_free_pages WARNs)."""
    if allow.baseline_off:
        return
    for pfn, (w, _, _) in m.owners.memblock.items():
        if (w.startswith("pgtable ") or (w.startswith("vmemmap ") and "table" in w)) and \
                pfn not in reached_pages:
            errs.append(f"{where}: boot table page {pfn:#x} ({w}) is no table any more")


def _check_vmemmap_list(m, errs, vl, leaf_map, uses_list, psize_shift) -> None:
    """arch/powerpc/mm/init_64.c vmemmap_list (6.1 both MMUs, 6.6+ hash): one entry per
    vmemmap block, equal to the vmemmap leaves (virt -> backing pfn, mmu_vmemmap_psize);
    entries + freed + left = pages × PAGE_SIZE / sizeof(struct vmemmap_backing); the pages are
    the "vmemmap_list" pages of the ledger."""
    if uses_list:
        if vl.entries != leaf_map:
            a = sorted(set(vl.entries.items()) - set(leaf_map.items()))[:3]
            b = sorted(set(leaf_map.items()) - set(vl.entries.items()))[:3]
            errs.append(f"vmemmap_list != vmemmap leaves of 2^{psize_shift} bytes: listed only "
                        f"{[(hex(v), hex(p)) for v, p in a]}, mapped only "
                        f"{[(hex(v), hex(p)) for v, p in b]}")
    elif vl.entries:
        errs.append(f"vmemmap_list has {len(vl.entries)} entries on a 6.6+ radix kernel")
    if len(vl.entries) + vl.num_freed + vl.num_left != len(vl.pages) * vl.per_page:
        errs.append(f"vmemmap_list: {len(vl.entries)} entries + {vl.num_freed} freed + "
                    f"{vl.num_left} left != {len(vl.pages)} pages x {vl.per_page}")
    ledger = {p for p, (w, o, _) in m.owners.buddy.items() if w == "vmemmap_list" and o == 0}
    ledger |= {p for p, (w, n, _) in m.owners.memblock.items() if w == "vmemmap_list"}
    if ledger != set(vl.pages) or len(vl.pages) != len(set(vl.pages)):
        errs.append(f"vmemmap_list pages {[hex(p) for p in vl.pages][:6]} but the ledger "
                    f"has {[hex(p) for p in sorted(ledger)][:6]}")


def _ppc_layout(m):
    a = m.arch
    ps = a.page_shift
    phys_span = 1 << a.max_physmem_bits
    return dict(va_bits=64, page_shift=ps, page_offset=a.page_offset,
                direct_end=a.page_offset + phys_span, vmemmap_start=a.vmemmap_start,
                vm_end=a.vmemmap_start + (phys_span >> ps) * a.struct_page_size, pfn_offset=0)


def _check_radix_tables(m, facts, allow, c, errs) -> dict:
    """powerpc64 radix (hotmem/arch/powerpc64_mmu.py), walked from the PGD: every table reached
    exactly once, of the level its depth says, backed by what the kernel gives it — a whole
    memblock page at boot (early_alloc_pgtable), a PMD/PTE *fragment* (index < FRAG_NR) of a
    buddy page owned for that level, or a slab object (PUD, pud_alloc_one) — no two tables in
    one place; every fragment page's pt_frag_refcount = its live fragments + the fragments
    init_mm's cache has not handed out yet (pgtable-frag.c), no fragment beyond the cache's
    next index live; the buddy-owned table pages are exactly the fragment pages; slab
    "pgtable PUD" objects = PUD tables from slab; update_page_count's counts = direct-map
    leaves per size; vmemmap_list (6.1) = the vmemmap leaves; then the leaves (_check_leaves)."""
    from hotmem.arch import powerpc64_init as ppc_init
    pt = m.pgtables
    shifts = [s for _, s, _ in pt.geometry.levels]
    va_bits = shifts[0] + pt.geometry.levels[0][2].bit_length() - 1
    hi = m.arch.page_offset & ~((1 << va_bits) - 1)
    lay = _ppc_layout(m)
    seen, homes, leaves = {}, {}, []
    frag_live: dict = {}
    slab_n: dict = {}
    pages = set()
    for tid, d, va, lvl, home, ents in pt.walk():
        want = pt.levels[d]
        if lvl is None:
            errs.append(f"radix: a {pt.levels[d - 1]} entry points to table {tid}, which is gone")
            continue
        if tid in seen:
            errs.append(f"radix: table {tid} ({lvl}) reached twice")
            continue
        seen[tid] = lvl
        if lvl != want:
            errs.append(f"radix: table {tid} is a {lvl} but sits at the {want} level")
        kind = home[0]
        if kind == "memblock":
            pfn = home[1]
            key = ("page", pfn)
            pages.add(pfn)
            names = ("pgtable PGD",) if d == 0 else _boot_names(lvl)
            _table_owner_errs(m, facts, c, errs, pfn, 1, lvl, names, 0, "radix")
        elif kind == "frag":
            pfn, i = home[1], home[2]
            key = ("frag", pfn, i)
            if lvl not in pt.frag_nr or not 0 <= i < pt.frag_nr[lvl]:
                errs.append(f"radix: {lvl} table {tid} is fragment {i} of page {pfn:#x}")
            frag_live.setdefault(pfn, {})[i] = lvl
        elif kind == "slab":
            key = home
            slab_n[lvl] = slab_n.get(lvl, 0) + 1
            if lvl != "PUD":
                errs.append(f"radix: {lvl} table {tid} from slab (only PUD tables are)")
        else:
            errs.append(f"radix: table {tid} has home {home!r}")
            continue
        if key in homes:
            errs.append(f"radix: tables {homes[key]} and {tid} share {key!r}")
        homes[key] = tid
        lf = [(i, e[1]) for i, e in ents.items() if e[0] == "leaf"]
        if lf:
            if d == 0:
                errs.append(f"radix: {len(lf)} leaves in the PGD")
            leaves.append((hi | va, shifts[d], np.array([i for i, _ in lf], np.int64),
                           np.array([p for _, p in lf], np.int64), lvl))
        if d == len(shifts) - 1 and any(e[0] != "leaf" for e in ents.values()):
            errs.append(f"radix: PTE table {tid} points to a table")
    orphans = set(pt.table_levels()) - set(seen)
    if orphans:
        errs.append(f"radix: tables not reachable from the PGD: {sorted(orphans)[:5]}")
    # fragment pages
    ref = pt.fragment_pages()
    cache = {v[0]: (k, v[1]) for k, v in pt.fragment_cache().items() if v is not None}
    for pfn in sorted(set(ref) | set(frag_live) | set(cache)):
        live = frag_live.get(pfn, {})
        lvls = set(live.values()) | ({cache[pfn][0]} if pfn in cache else set())
        if len(lvls) > 1:
            errs.append(f"radix: fragment page {pfn:#x} serves {sorted(lvls)} tables")
        lvl = min(lvls) if lvls else "?"
        unhanded = 0
        if pfn in cache:
            nxt = cache[pfn][1]
            unhanded = pt.frag_nr[cache[pfn][0]] - nxt
            if live and max(live) >= nxt:
                errs.append(f"radix: fragment {max(live)} of cached page {pfn:#x} is live but "
                            f"the cache hands out {nxt} next")
        if ref.get(pfn) != len(live) + unhanded:
            errs.append(f"radix: fragment page {pfn:#x} has pt_frag_refcount {ref.get(pfn)} "
                        f"but {len(live)} live fragments and {unhanded} cached")
        bd = m.owners.buddy.get(pfn)
        if bd is None or bd[1] != 0 or not bd[0].endswith(f" {lvl} table"):
            errs.append(f"radix: {lvl} fragment page {pfn:#x} owned as {bd!r}")
    owned = {p for p, (w, _, _) in m.owners.buddy.items() if w.endswith(" table")}
    if owned - set(ref):
        errs.append(f"radix: table pages owned but no fragment page: "
                    f"{[hex(p) for p in sorted(owned - set(ref))][:5]}")
    _unreached_boot_tables(m, allow, errs, pages, "radix")
    for lvl in ("PUD",):
        got = m.slab.objects.get(f"pgtable {lvl}", 0)
        if got != slab_n.get(lvl, 0):
            errs.append(f"radix: slab holds {got} pgtable {lvl} objects, the tree "
                        f"{slab_n.get(lvl, 0)}")
    counts, out = _check_leaves(m, facts, allow, c, errs, leaves, **lay)
    want = {pt.page_shift: counts.get("PTE", 0), shifts[2]: counts.get("PMD", 0),
            shifts[1]: counts.get("PUD", 0)}
    if dict(pt.page_count) != want:
        errs.append(f"radix: update_page_count says {pt.page_count}, the direct map has {want}")
    psize = ppc_init._vmemmap_psize(m)
    vm_leaves = {}
    for base, sh, idx, tgt, lvl in leaves:
        va0 = base
        if va0 >= m.arch.vmemmap_start and 1 << sh == psize:
            for i, t in zip(idx.tolist(), tgt.tolist()):
                vm_leaves[va0 + (i << sh)] = t
    _check_vmemmap_list(m, errs, pt.vmemmap_list, vm_leaves, not ppc_init._k66(m),
                        psize.bit_length() - 1)
    return out


def _check_hash_tables(m, facts, allow, c, errs) -> dict:
    """powerpc64 hash: no Linux tables but the PGD (a memblock page, nothing buddy-owned is a
    table); the kernel maps are bolted HPTEs: the direct-map ranges do not overlap and map
    memory that exists, each bolted vmemmap block has its vmemmap_list entry and vice versa
    (init_64.c), then the leaves (_check_leaves) over both."""
    from hotmem.arch import powerpc64_init as ppc_init
    pt = m.pgtables
    a = m.arch
    ps = a.page_shift
    lay = _ppc_layout(m)
    _table_owner_errs(m, facts, c, errs, pt.pgd_pfn, 1, "PGD", ("pgtable PGD",), 0, "hash")
    owned = [p for p, (w, _, _) in m.owners.buddy.items() if w.endswith(" table")]
    if owned:
        errs.append(f"hash: buddy pages owned as page tables: {[hex(p) for p in owned[:5]]}")
    _unreached_boot_tables(m, allow, errs, {pt.pgd_pfn}, "hash")
    psize = ppc_init._vmemmap_psize(m)
    leaves, direct, bolted_vm = [], [], {}
    for va, size in sorted(pt.bolted):
        if va >= a.vmemmap_start:
            if size != psize:
                errs.append(f"hash: vmemmap bolted at {va:#x} with {size:#x} bytes, "
                            f"mmu_vmemmap_psize is {psize:#x}")
            bolted_vm[va] = size
        else:
            direct.append((va, size))
            n = size >> ps
            first = (va - a.page_offset) >> ps
            leaves.append((va, ps, np.arange(n, dtype=np.int64),
                           first + np.arange(n, dtype=np.int64), "PTE"))
    tot = sum(s for _, s in direct)
    if sum(e - s for s, e in _merge([(v, v + s) for v, s in direct])) != tot:
        errs.append("hash: bolted direct-map ranges overlap")
    vm_map = {}
    for va, pfn in pt.vmemmap_list.entries.items():
        if va in bolted_vm:
            vm_map[va] = pfn
            leaves.append((va, psize.bit_length() - 1, np.zeros(1, np.int64),
                           np.array([pfn], np.int64), "vmemmap"))
    if set(bolted_vm) != set(pt.vmemmap_list.entries):
        errs.append(f"hash: bolted vmemmap blocks {len(bolted_vm)} != vmemmap_list entries "
                    f"{len(pt.vmemmap_list.entries)}")
    _check_vmemmap_list(m, errs, pt.vmemmap_list, pt.vmemmap_list.entries, True,
                        psize.bit_length() - 1)
    _, out = _check_leaves(m, facts, allow, c, errs, leaves, **lay)
    return out


def _check_s390_tables(m, facts, allow, c, errs) -> dict:
    """s390x (hotmem/arch/s390x_mmu.py), walked from the top table: every table reached exactly
    once at its level; region/segment tables 16 KiB-aligned order-2 blocks (memblock at boot,
    else buddy-owned for their level), page tables 2 KiB halves (memblock at boot, else a
    buddy page of the ledger whose AA bits in frag_mask are exactly its live halves); the
    half-free pages are init_mm.context.pgtable_list (each once), NR_PAGETABLE = the PTE pages;
    no buddy table page unreached; DirectMap4k/1M/2G = direct-map leaves per size; a sub-PMD
    vmemmap record belongs to a 1 MiB vmemmap leaf; then the leaves (_check_leaves)."""
    from hotmem.arch import s390x_mmu as mmu
    pt = m.pgtables
    a = m.arch
    ps = mmu.PAGE_SHIFT
    shifts = {k: v[0] for k, v in mmu._SHIFTS.items()}
    seen, leaves = set(), []
    halves: dict = {}
    crst_pages, pages = set(), set()
    for addr, lvl, t, va in pt.walk():
        if t is None:
            errs.append(f"s390: a table entry points to {addr:#x}, which is no table")
            continue
        if addr in seen:
            errs.append(f"s390: table {addr:#x} reached twice")
            continue
        seen.add(addr)
        if t.level != lvl:
            errs.append(f"s390: table {addr:#x} is a {t.level} at the {lvl} level")
        pfn = addr >> ps
        if lvl == "PTE":
            if addr % mmu.PTE_TABLE_SIZE:
                errs.append(f"s390: page table {addr:#x} not 2 KiB aligned")
            pages.add(pfn)
            if t.boot:
                _table_owner_errs(m, facts, c, errs, pfn, 1, "PTE", _boot_names("PTE"), 0,
                                  "s390")
            else:
                bit = 1 << ((addr & (mmu.PAGE_SIZE - 1)) // mmu.PTE_TABLE_SIZE)
                halves[pfn] = halves.get(pfn, 0) | bit
                _table_owner_errs(m, facts, c, errs, pfn, 1, "PTE", (), 0, "s390")
        else:
            if addr % mmu.CRST_SIZE:
                errs.append(f"s390: {lvl} table {addr:#x} not 16 KiB aligned")
            pages.add(pfn)
            names = ("pgtable PGD",) if addr == pt.top else _boot_names(lvl)
            if t.boot:
                _table_owner_errs(m, facts, c, errs, pfn, 1 << mmu.CRST_ALLOC_ORDER, lvl,
                                  names, 0, "s390")
            else:
                crst_pages.add(pfn)
                _table_owner_errs(m, facts, c, errs, pfn, 1 << mmu.CRST_ALLOC_ORDER, lvl, (),
                                  mmu.CRST_ALLOC_ORDER, "s390")
        lf = [(i, e) for i, e in t.entries.items() if e[0] != mmu.TABLE]
        if lf:
            kinds = {e[0] for _, e in lf}
            if kinds != ({mmu.PAGE} if lvl == "PTE" else {mmu.LARGE}) or lvl == "P4D":
                errs.append(f"s390: {lvl} table {addr:#x} holds {sorted(kinds)} entries")
            leaves.append((va, shifts[lvl], np.array([i for i, _ in lf], np.int64),
                           np.array([e[1] >> ps for _, e in lf], np.int64), lvl))
    orphans = set(pt.tables) - seen
    if orphans:
        errs.append(f"s390: tables not reachable from the top: "
                    f"{[hex(x) for x in sorted(orphans)[:5]]}")
    if halves != pt.frag_mask:
        bad = sorted(set(halves.items()) ^ set(pt.frag_mask.items()))[:4]
        errs.append(f"s390: frag_mask differs from the live page-table halves: "
                    f"{[(hex(p), b) for p, b in bad]}")
    if sorted(pt.pgtable_list) != sorted(p for p, b in pt.frag_mask.items() if b != 3) or \
            len(set(pt.pgtable_list)) != len(pt.pgtable_list):
        errs.append(f"s390: pgtable_list {[hex(p) for p in pt.pgtable_list][:6]} is not the "
                    "half-used PTE pages")
    if pt.nr_pagetable != len(pt.frag_mask):
        errs.append(f"s390: NR_PAGETABLE {pt.nr_pagetable} but {len(pt.frag_mask)} PTE pages")
    owned = {p for p, (w, _, _) in m.owners.buddy.items() if w.endswith(" table")}
    extra = owned - crst_pages - set(pt.frag_mask)
    if extra:
        errs.append(f"s390: buddy pages owned as tables but no table: "
                    f"{[hex(p) for p in sorted(extra)][:5]}")
    _unreached_boot_tables(m, allow, errs, pages, "s390")
    vm_large = set()
    for base, sh, idx, tgt, lvl in leaves:
        if lvl == "PMD" and base >= a.vmemmap_start:
            vm_large.update((base + (i << sh)) for i in idx.tolist())
    for blk in pt.sub_pmd_used:
        if blk not in vm_large:
            errs.append(f"s390: sub-PMD use recorded for {blk:#x}, no 1 MiB vmemmap leaf there")
    phys_span = 1 << a.max_physmem_bits
    counts, out = _check_leaves(
        m, facts, allow, c, errs, leaves, va_bits=64, page_shift=ps, page_offset=0,
        direct_end=a.vmemmap_start, vmemmap_start=a.vmemmap_start,
        vm_end=a.vmemmap_start + (phys_span >> ps) * a.struct_page_size, pfn_offset=0)
    want = {"4k": counts.get("PTE", 0), "1M": counts.get("PMD", 0), "2G": counts.get("PUD", 0)}
    if pt.direct_pages != want:
        errs.append(f"s390: DirectMap counters {pt.direct_pages}, the identity map has {want}")
    return out


_ARCH_TABLE_CHECKS = {"RadixPageTables": _check_radix_tables,
                      "HashPageTables": _check_hash_tables,
                      "S390PageTables": _check_s390_tables}


def _check_blocks_and_altmaps(m, facts, allow, c, pt, errs) -> None:
    """Memory block devices against sections and struct pages: a block per present section
    (except sections a failed add left behind), state = the online state of its sections, zone
    and node = those of its pages; nr_vmemmap_pages = the block's pages that back its own
    struct pages in the vmemmap = the altmap ledger; altmap alloc + align ≤ free."""
    ms, pol = m.ms, m.policy
    bs_pages = m.memory_block_size_bytes >> m.arch.page_shift
    spb = m.memory.sections_per_block
    block_secs = set()
    for bid, mem in m.memory.blocks.items():
        secs = range(bid * spb, (bid + 1) * spb)
        block_secs.update(secs)
        missing = [s for s in secs if s not in c["present"]]
        if missing:
            errs.append(f"memory{bid}: sections {missing} not present")
            continue
        on = [s in c["online"] for s in secs]
        if mem.state == "online" and not all(on):
            errs.append(f"memory{bid}: online but sections {[s for s in secs if s not in c['online']]} offline")
        if mem.state == "offline" and any(on):
            errs.append(f"memory{bid}: offline but sections {[s for s in secs if s in c['online']]} online")
        if mem.state not in ("online", "offline"):
            errs.append(f"memory{bid}: left in state {mem.state!r}")
        start = mem.start_pfn
        if mem.state == "online":
            zs = [c["sec_zones"].get(s) for s in secs]
            zs = [z for z in zs if z is not None]
            early = any(c["flags"][s] & SECTION_IS_EARLY for s in secs)
            zl = sorted({z for pair in zs for z in pair})
            if mem.zone is not None and zl != [mem.zone.zoneid]:
                errs.append(f"memory{bid}: zone {mem.zone.zoneid} but its pages link to {zl}")
            if mem.zone is None and len(zl) == 1 and not early:
                errs.append(f"memory{bid}: online in one zone {zl} but mem->zone is NULL")
            nids = sorted({z >> ms.zones_width for z in zl})
            if early and len(nids) > 1:
                # a boot block spanning nodes: memory_block_add_nid (MEMINIT_EARLY) leaves the
                # last node and no zone
                if mem.nid != nids[-1] or mem.zone is not None:
                    errs.append(f"memory{bid}: boot block on nodes {nids} has node {mem.nid} "
                                f"and zone {mem.zone and mem.zone.zoneid}")
            elif nids != [mem.nid]:
                errs.append(f"memory{bid}: node {mem.nid} but its pages are on {nids}")
        elif mem.zone is not None:
            errs.append(f"memory{bid}: offline but mem->zone is set")
        v = mem.nr_vmemmap_pages
        alt = sum(n for p, n in m.owners.altmap.items() if start <= p < start + bs_pages)
        if v or alt:
            # the pages at the block's start that back the block's own struct pages
            own = sum(min(e, start + bs_pages) - max(s, start) for s, e in pt["targets"]
                      if s < start + bs_pages and e > start)
            if pol.memory_block_keeps_altmap:
                # 6.6+: nr_vmemmap_pages = altmap->free (memory_block_memmap_on_memory_pages,
                # pageblock-padded in force mode); the altmap hands out at most that, none
                # where the struct pages were mapped already (powerpc's vmemmap_populated)
                if alt > v:
                    errs.append(f"memory{bid}: nr_vmemmap_pages {v} but the altmap handed "
                                f"out {alt} of its pages")
                if own < alt:
                    errs.append(f"memory{bid}: the altmap handed out {alt} pages but only "
                                f"{own} of the block's pages back struct pages")
            else:
                if alt != v and not (pol.nr_vmemmap_pages_blocks == "first" and not v):
                    errs.append(f"memory{bid}: nr_vmemmap_pages {v} but the altmap handed out "
                                f"{alt} of its pages")
                if v and own < v:
                    errs.append(f"memory{bid}: nr_vmemmap_pages {v} but only {own} of its "
                                "pages back struct pages")
            if mem.state == "online" and v:
                first = ms.memmap(mem.start_section_nr)["flags"][:v]
                if not pol.hotplug_memmap_page_offline and \
                        not (first >> np.uint64(PG_RESERVED) & np.uint64(1)).all():
                    errs.append(f"memory{bid}: vmemmap pages without PG_reserved")
                if pol.hotplug_memmap_page_offline and \
                        (first >> np.uint64(PG_RESERVED) & np.uint64(1)).any():
                    errs.append(f"memory{bid}: vmemmap pages PG_reserved (6.11 clears it)")
                if pol.vmemmap_self_hosted_flag and \
                        not (first >> np.uint64(PG_OWNER_PRIV_1) & np.uint64(1)).all():
                    errs.append(f"memory{bid}: vmemmap pages without PageVmemmapSelfHosted")
        if mem.altmap is not None:
            a = mem.altmap
            if a.alloc + a.align > a.free:
                errs.append(f"memory{bid}: altmap alloc {a.alloc} + align {a.align} > free "
                            f"{a.free}")
            if a.base_pfn != start or a.free != v or a.alloc != alt:
                errs.append(f"memory{bid}: altmap {a.as_tuple()} vs block start {start:#x}, "
                            f"nr_vmemmap_pages {v}, altmap pages handed out {alt}")
    for nr in sorted(c["present"] - block_secs - allow.orphan_sections):
        errs.append(f"section {nr}: present but no memory block covers it")
    for nr in sorted(allow.orphan_sections & c["online"]):
        errs.append(f"section {nr}: left behind by a failed add, yet online")


def _check_iomem(m, facts, allow, errs) -> None:
    """The iomem tree is well formed; "System RAM" covers every present section's RAM and
    lies over memory that is present (or that a removal could not release)."""
    def walk(r, depth):
        prev = None
        for ch in r.children:
            if not (r.start <= ch.start <= ch.end <= r.end):
                errs.append(f"iomem [{ch.start:#x}-{ch.end:#x}] {ch.name!r} outside its parent")
            if prev is not None and ch.start <= prev.end:
                errs.append(f"iomem [{ch.start:#x}-{ch.end:#x}] overlaps [{prev.start:#x}-"
                            f"{prev.end:#x}]")
            prev = ch
            walk(ch, depth + 1)
    walk(m.resources.root, 0)
    ps = m.arch.page_shift
    ram = _merge([(s >> ps, e >> ps) for s, e in m.resources.system_ram_ranges()])
    P = facts.P
    present = set(m.ms.present_sections())
    for nr in present:
        if nr in allow.orphan_sections:
            continue
        if nr in facts.boot_sections and m.ms.section_mem_map(nr) & SECTION_IS_EARLY:
            pieces = [(max(s, nr * P), min(e, (nr + 1) * P)) for s, e in facts.ram_ranges
                      if max(s, nr * P) < min(e, (nr + 1) * P)]
        else:
            pieces = [(nr * P, (nr + 1) * P)]
        for s, e in pieces:
            if not _covered(ram, s, e):
                errs.append(f"section {nr}: RAM {s:#x}-{e:#x} has no System RAM resource")
    stale = _merge(allow.stale_iomem)
    for s, e in ram:
        p = s
        while p < e:
            nr = p // P
            q = min(e, (nr + 1) * P)
            if nr not in present and not _covered(stale, p, q):
                errs.append(f"System RAM resource over pfns {p:#x}-{q:#x}: section {nr} "
                            "is not present")
            p = q


def _check_slab(m, facts, allow, errs) -> None:
    """kmalloc'ed mem_section_usage objects = sections with a usage map that boot did not
    allocate; mem_section root pages = roots beyond those boot allocated."""
    ms = m.ms
    usage = 0
    present = set(ms.present_sections())
    for nr in present | set(allow.touched_sections):
        # boot sections' usage maps are memblock (sparse_init) unless hot-added after boot:
        # s390 standby memory (add_memory at an initcall) kmallocs them like any hot-add
        # (an early section's memblock usage map stays when it is removed and is reused when
        # it is added again: section_deactivate only kfrees a usage map that is not
        # PageReserved, section_activate allocates one only when there is none)
        if nr < ms.nr_mem_sections and ms.has_usage(nr) and nr not in facts.early_sections:
            usage += 1
            if nr not in present:
                errs.append(f"section {nr}: usage map kept after the section went away")
    got = m.slab.objects.get("mem_section_usage", 0)
    if got != usage:
        errs.append(f"slab: {got} mem_section_usage objects, {usage} hot-added usage maps")
    roots = ms.nr_roots_allocated() - facts.boot_roots
    if m.slab.objects.get("mem_section root", 0) != roots:
        errs.append(f"slab: {m.slab.objects.get('mem_section root', 0)} mem_section roots, "
                    f"{roots} allocated after boot")


# -- snapshot differences --------------------------------------------------------------------------

PGDAT_FIELDS = ("node_id", "node_start_pfn", "node_spanned_pages", "node_present_pages",
                "nr_zones", "online", "has_normal_memory", "has_memory", "cpus", "kswapd",
                "kcompactd", "zones")
ZONE_FIELDS = ("node", "idx", "zone_start_pfn", "spanned_pages", "present_pages",
               "present_early_pages", "nr_isolate_pageblock", "contiguous", "watermark",
               "watermark_boost", "lowmem_reserve", "pageset_high", "pageset_batch",
               "stat_threshold")
_EMPTY_ZONE = {"nr_free_pages": 0, "managed": 0, "nr_isolate_pageblock": 0, "free_area": {},
               "pcp": None, "pcp_disabled": False}


def diff_snapshots(a: dict, b: dict) -> list:
    """[(path, old, new)] where two ``Machine.snapshot()`` results differ; paths name the
    piece: ``ms.memmaps[32]``, ``ms.sections[32].usemap``, ``alloc.zones[2].free_area``,
    ``pgdats[0].zones[3].contiguous``, ``pt``, ``iomem``, ..."""
    out = []
    ma, mb = a["ms"], b["ms"]
    if ma["roots"] != mb["roots"]:
        out.append(("ms.roots", ma["roots"], mb["roots"]))
    for nr in sorted(set(ma["sections"]) | set(mb["sections"])):
        sa, sb = ma["sections"].get(nr), mb["sections"].get(nr)
        if sa == sb:
            continue
        if sa is None or sb is None:
            out.append((f"ms.sections[{nr}]", sa, sb))
            continue
        for i, name in enumerate(("flags", "subsection_map", "usage", "usemap")):
            if sa[i] != sb[i]:
                out.append((f"ms.sections[{nr}].{name}", sa[i], sb[i]))
    for nr in sorted(set(ma["memmaps"]) | set(mb["memmaps"])):
        if ma["memmaps"].get(nr) != mb["memmaps"].get(nr):
            out.append((f"ms.memmaps[{nr}]", None, None))
    za, zb = a["alloc"]["zones"], b["alloc"]["zones"]
    for zid in sorted(set(za) | set(zb)):
        x, y = za.get(zid, _EMPTY_ZONE), zb.get(zid, _EMPTY_ZONE)
        for k in _EMPTY_ZONE:
            if k == "pcp" and (x[k] is None or y[k] is None):
                if any(p[0] for p in (x[k] or y[k] or ())):
                    out.append((f"alloc.zones[{zid}].pcp", x[k], y[k]))
                continue
            if x[k] != y[k]:
                out.append((f"alloc.zones[{zid}].{k}", x[k], y[k]))
    if a["alloc"]["allocated"] != b["alloc"]["allocated"]:
        out.append(("alloc.allocated", a["alloc"]["allocated"], b["alloc"]["allocated"]))
    for pa, pb in zip(a["pgdats"], b["pgdats"]):
        for i, name in enumerate(PGDAT_FIELDS[:-1]):
            if pa[i] != pb[i]:
                out.append((f"pgdats[{pa[0]}].{name}", pa[i], pb[i]))
        for zx, zy in zip(pa[-1], pb[-1]):
            for i, name in enumerate(ZONE_FIELDS):
                if zx[i] != zy[i]:
                    out.append((f"pgdats[{pa[0]}].zones[{zx[1]}].{name}", zx[i], zy[i]))
    for k in ("pt", "blocks", "iomem", "owners", "slab", "totalram", "max_pfn", "fw",
              "memmap stats"):
        if a[k] != b[k]:
            out.append((k, a[k] if k not in ("pt",) else None, b[k] if k != "pt" else None))
    return out


def fast_snapshot(m, sections, crcs=None) -> dict:
    """``m.snapshot()`` with each struct page array replaced by its CRC-32 (and the section
    table read for ``sections`` plus every present one): the same comparison for the error-path
    checks at a fraction of the cost."""
    ms = m.ms
    pb = 1 << ms.pageblock_order
    secs = {}
    for nr in sorted(set(sections) | set(ms.present_sections())):
        if not 0 <= nr < ms.nr_mem_sections:
            continue
        f, sub, u = ms.section_mem_map(nr), ms.subsection_map(nr), ms.has_usage(nr)
        if f or sub or u:
            usemap = b""
            if u:
                base = nr << ms.pfn_section_shift
                usemap = bytes(ms.get_pageblock_migratetype(p) |
                               (8 if ms.get_pageblock_skip(p) else 0)
                               for p in range(base, base + ms.pages_per_section, pb))
            secs[nr] = (f, sub, int(u), usemap)
    return m.snapshot(ms_state={
        "roots": ms.nr_roots_allocated(), "sections": secs,
        "memmaps": {nr: crcs[nr] if crcs and nr in crcs else zlib.crc32(ms.memmap(nr))
                    for nr in ms.memmap_sections()}})


def _free_blocks(free_area: dict) -> list:
    """The free blocks of one zone as sorted (order, pfn), whatever list holds them."""
    return sorted((order, pfn) for (order, _), pfns in free_area.items() for pfn in pfns)


def _drain_all(m) -> None:
    """__drain_all_pages for every zone (a transition the kernel makes at any time)."""
    for zid in m.allocator.zones():
        m.allocator.drain_zone_pages(zid)


def _iomem_flat(root, skip, page_shift=12) -> list:
    out = []

    def walk(r):
        for c in r.children:
            if not (c.name == "System RAM" and
                    _covered(skip, c.start >> page_shift, (c.end + 1) >> page_shift)):
                out.append((c.start, c.end, c.name, c.flags))
            walk(c)
    walk(root)
    return out


# -- the program driver ----------------------------------------------------------------------------

#: steps run by all Drivers of this process (the CI test reports and checks it)
STEPS = {"steps": 0, "programs": 0, "failed_ops": 0, "known": 0, "oops": 0}
#: (operation, outcome) → count, over all Drivers of this process
OUTCOMES: dict = {}

_TRUE = ("1", "y", "yes", "on", "true")
_FALSE = ("0", "n", "no", "off", "false")


class Driver:
    """Runs a hotplug program on one Machine per backend; see the module docstring.

    Every public method is one step: it is recorded as a line of Python (``program()``), run on
    every Machine (the same outcome is required of all), followed by the error-path check and,
    with ``check``, by :func:`check_invariants`; with two backends the two Machines' snapshots
    and /proc/zoneinfo must be equal after every step. A violation raises InvariantError whose
    message ends with the program so far."""

    def __init__(self, config: MachineConfig, backends=("compiled",), check: bool = True):
        self.config = config
        self.backends = tuple(backends)
        self.check = check
        self.lines = [f"d = Driver({config!r}" + (f", backends={self.backends!r}"
                                                  if self.backends != ("compiled",) else "") + ")"]
        self.machines = [config.boot(b) for b in self.backends]
        self.m = self.machines[0]
        self.facts = [BootFacts(m) for m in self.machines]
        self.allow = [Allowances() for _ in self.machines]
        self.devices = [[] for _ in self.machines]
        self.holds = [[] for _ in self.machines]        # (pfn, order) held by fragment()
        self.unmovable = [[] for _ in self.machines]    # pfns taken by inject("unmovable")
        self.boot_blocks = frozenset(self.m.memory.blocks)
        #: s390x standby blocks (added offline at boot)
        self.standby_blocks = frozenset(b for b, mem in self.m.memory.blocks.items()
                                        if mem.state == "offline")
        self._checked = [False] * len(self.machines)
        self._drained = False
        self.torn_down = False
        #: set when a step hit a path on which the kernel oopses (the model says "would oops"):
        #: the program ends there, later steps are not run
        self.dead = None
        for m in self.machines:
            _drain_all(m)
        self.baseline = [m.snapshot() for m in self.machines]
        #: powerpc64: vmemmap_list (pages, num_left, num_freed) and s390x: SCLP increments
        #: at boot
        self.base_arch = [_arch_boot_state(m) for m in self.machines]
        self.base_iomem = [_iomem_flat(m.resources.root, [], m.arch.page_shift)
                           for m in self.machines]
        STEPS["programs"] += 1
        self._after("boot", [0] * len(self.machines))

    # -- recording -----------------------------------------------------------------------------
    def program(self) -> str:
        """The steps so far as a runnable Python program."""
        return "\n".join(["from hotmem.testing import Driver, MachineConfig"] + self.lines)

    def _fail(self, msg: str):
        raise InvariantError(f"{msg}\n\n-- program (replay it with python) --\n{self.program()}")

    # -- running a step ------------------------------------------------------------------------
    def _step(self, text: str, op, cls=None) -> int:
        """Record ``text``, run ``op(i, m)`` on every Machine; ``cls(i, m, err)`` names the
        error-path class of a failure (see _unwind)."""
        if self.dead:
            return None
        self.lines.append("d." + text)
        STEPS["steps"] += 1
        results = []
        for i, m in enumerate(self.machines):
            self._drained = False
            pre = cls(i, m, None) if cls else None
            secs = self.allow[i].touched_sections | self.facts[i].boot_sections
            # the memmap CRCs of the last check still describe the Machine unless the
            # classifier drained pcp lists since
            crcs = self.facts[i].last_crcs if self._checked[i] and not self._drained else None
            before = fast_snapshot(m, secs, crcs) if pre else None
            if not text.startswith("read("):           # a read changes nothing
                self._checked[i] = False
            nwarn = len(m.warnings)
            inj0 = sum(x["failed"] for x in m.injections)
            try:
                op(i, m)
                err = 0
            except HotplugError as e:
                err = e.errno
                if "would oops" in e.message:
                    self.dead = e.message
                    STEPS["oops"] += 1
            except Exception as e:       # a crash of the model: report it with the program
                e.add_note(f"-- program (replay it with python) --\n{self.program()}")
                raise
            fired = sum(x["failed"] for x in m.injections) - inj0
            results.append(err)
            new = m.warnings[nwarn:]
            for w in new:
                if any(w.startswith(p) for p in EXPECTED_WARNINGS):
                    continue
                known = [k for k, (sign, _) in KNOWN_MODEL_ISSUES.items() if re.match(sign, w)]
                if known:
                    if not self.dead:
                        STEPS["known"] += 1
                    self.dead = f"known model issue {known[0]}"
                    continue
                self._fail(f"unexpected kernel warning after {text}: {w}")
            if err:
                STEPS["failed_ops"] += 1
                if pre and not self.dead:
                    self._unwind(i, m, text, pre, err, fired, before, fast_snapshot(m, secs))
        self.lines[-1] += f"    # -> {_ename(results[0])}"
        key = (text[:text.index("(")], _ename(results[0]))
        OUTCOMES[key] = OUTCOMES.get(key, 0) + 1
        if self.dead:
            self.lines[-1] += f"  (the program ends: {self.dead[:100]})"
            self._agree(text, results)
            return results[0]
        self._after(text, results)
        return results[0]

    def _agree(self, text, results) -> None:
        if len(set(results)) > 1:
            self._fail(f"backends disagree on {text}: " + ", ".join(
                f"{b}: {_ename(r)}" for b, r in zip(self.backends, results)))

    def _after(self, text, results) -> None:
        self._agree(text, results)
        if len(self.machines) > 1:
            snaps = [m.snapshot() for m in self.machines]
            for b, s in zip(self.backends[1:], snaps[1:]):
                d = diff_snapshots(snaps[0], s)
                if d:
                    self._fail(f"after {text}: {self.backends[0]} and {b} differ in "
                               f"{[p for p, _, _ in d][:10]}")
            zi = [m.procfs.read("/proc/zoneinfo") for m in self.machines]
            if len(set(zi)) > 1:
                self._fail(f"after {text}: /proc/zoneinfo differs between backends")
        if self.check and not text.startswith("read("):
            for i, m in enumerate(self.machines):
                try:
                    check_invariants(m, self.facts[i], self.allow[i])
                except InvariantError as e:
                    self._fail(f"after {text} ({self.backends[i]}): {e}")
                self._checked[i] = True

    # -- error paths ---------------------------------------------------------------------------
    def _unwind(self, i, m, text, pre, err, fired, before, after) -> None:
        """A failed step: compare the Machine with its state before the step.

        ``pre`` (from the step's classifier) is ("identical",) when the kernel unwinds fully,
        ("online", sections, nid) for a refused online (the kernel keeps the initialised memmap
        and MIGRATE_ISOLATE pageblocks of the offline range, and pgdat->nr_zones and the zone's
        contiguous flag it touched), ("offline", sections) for a refused offline (isolation is
        undone to MIGRATE_MOVABLE: a pageblock that was another type comes back MOVABLE, its
        free blocks on the MOVABLE lists), ("add", start, size, nid) for a failed add (refusals
        change nothing; a failure inside arch_add_memory keeps the direct map and, with 6.1's
        __add_pages, the sections added before the failing one), ("eject",) for a refused
        eject (offlined blocks come back online, maybe in another zone)."""
        kind = pre[0]
        diffs = diff_snapshots(before, after)
        if kind == "add":
            _, start, size, nid = pre
            if not fired and err != _errno.ENOMEM:
                kind = "identical"
            else:
                self._note_failed_add(i, m, start, size, nid)
                bad = [p for p, _, _ in diffs if p in ("blocks", "iomem", "totalram", "fw")
                       or p.startswith("pgdats")]
                if bad:
                    self._fail(f"{text} failed with {_ename(err)} inside arch_add_memory and "
                               f"changed {bad}")
                return
        if kind == "dlpar_add":
            # dlpar_add_lmb: a failed add unwinds as add_memory does; a failed online removes
            # the LMB again (what the kernel keeps on purpose — radix fragment caches,
            # vmemmap_list slots, max_pfn, nr_zones — may differ; the teardown checks the rest)
            _, start, size, nid = pre
            if fired or err in (_errno.ENOMEM, _errno.EFAULT):
                self._note_failed_add(i, m, start, size, nid)
            bad = [p for p, _, _ in diffs if p in ("blocks", "iomem", "totalram", "fw")]
            if bad:
                self._fail(f"{text} failed with {_ename(err)} and changed {bad}")
            return
        if kind == "identical":
            if diffs:
                self._fail(f"{text} failed with {_ename(err)}, which the kernel unwinds fully, "
                           f"but the Machine changed: {[p for p, _, _ in diffs][:12]}")
            return
        if kind == "eject":
            # acpi_bus_online brings the blocks back (its errors ignored: a vetoed online
            # leaves a block offline)
            sb = {b[0]: b[1] for b in before["blocks"]}
            sa = {b[0]: b[1] for b in after["blocks"]}
            veto = "MEM_GOING_ONLINE" in m.notifier_errors
            changed = {k: (sb.get(k), sa.get(k)) for k in set(sa) | set(sb)
                       if sa.get(k) != sb.get(k)
                       and not (veto and (sb.get(k), sa.get(k)) == ("online", "offline"))}
            if changed or err != _errno.EBUSY:
                self._fail(f"{text} was refused ({_ename(err)}) but block states changed: "
                           f"{changed}")
            return
        if kind == "online":
            _, secs, nid = pre
            ok = {f"ms.memmaps[{s}]" for s in secs} | {f"ms.sections[{s}].usemap" for s in secs}
            ok.add(f"pgdats[{nid}].nr_zones")
            if m.arch.name == "s390x":
                # sclp_mem_notifier: MEM_GOING_ONLINE and MEM_CANCEL_ONLINE each send SCLP
                # requests whose buffer is a get_zeroed_page(GFP_DMA) freed again: a page
                # allocated and freed moves pages between the free lists and a per-CPU list
                # (the refill batch), which no error path restores; the pages all come back
                pages = {p for p, _, _ in diffs if p.startswith("alloc.zones[") and
                         p.endswith((".nr_free_pages", ".free_area", ".pcp"))}
                # (the invariants after the step and the teardown check that they do)
                if pages:
                    ok |= pages | {p for p, _, _ in diffs if p.startswith("ms.memmaps[")}
            bad = [p for p, _, _ in diffs if p not in ok and not
                   (p.startswith(f"pgdats[{nid}].zones[") and p.endswith(".contiguous"))]
            if bad:
                self._fail(f"{text} failed with {_ename(err)}; the kernel's online_pages error "
                           f"path leaves only the memmap, isolated pageblocks, nr_zones and "
                           f"zone->contiguous, but these changed: {bad[:12]}")
            return
        if kind == "offline":
            _, secs = pre
            bad = []
            for p, x, y in diffs:
                if p.endswith(".free_area") and _free_blocks(x) == _free_blocks(y):
                    continue
                if p.startswith("ms.sections[") and p.endswith(".usemap") and \
                        int(p[12:p.index("]")]) in secs:
                    if all(u == v or (v & 7) == MIGRATE_MOVABLE and (u & 7) in
                           (MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE) and u >> 3 == v >> 3
                           for u, v in zip(x, y)):
                        continue
                bad.append(p)
            if bad:
                self._fail(f"{text} failed with {_ename(err)}; offline_pages' error path "
                           f"undoes the isolation, but these changed: {bad[:12]}")
            return
        self._fail(f"unknown error-path class {kind}")

    def _note_failed_add(self, i, m, start, size, nid) -> None:
        a = self.allow[i]
        P = self.facts[i].P
        ps = m.arch.page_shift
        s_pfn, e_pfn = start >> ps, (start + size) >> ps
        present = set(m.ms.present_sections())
        spb = m.memory.sections_per_block
        for nr in range(s_pfn // P, -(-e_pfn // P)):
            if nr in present and nr // spb not in m.memory.blocks:
                a.orphan_sections.add(nr)
        a.direct_map_residue.append((s_pfn, e_pfn, nid))
        a.memmap_stats_drift = True

    def _note_removal(self, i, m, start: int, size: int) -> None:
        """After a successful removal of [start, start + size): System RAM resources that are
        still there (release_mem_region_adjustable releases only a range one resource holds),
        and whether boot memory went away."""
        ps = self.facts[i].page_shift
        for s, e in m.resources.system_ram_ranges():
            if s < start + size and e > start:
                self.allow[i].stale_iomem.append((max(s, start) >> ps,
                                                  min(e, start + size) >> ps))
        P = self.facts[i].P
        if any(nr in self.facts[i].boot_sections
               for nr in range((start >> ps) // P, -(-((start + size) >> ps) // P))):
            self.allow[i].baseline_off.append(f"boot memory removed at {start:#x}")

    def _touch(self, start: int, size: int) -> None:
        for i, a in enumerate(self.allow):
            P, ps = self.facts[i].P, self.facts[i].page_shift
            if 0 <= start and size > 0 and start + size <= 1 << 52:
                a.touched_sections.update(range((start >> ps) // P,
                                                min(-(-((start + size) >> ps) // P),
                                                    ((start >> ps) // P) + 4096)))

    # -- operations ----------------------------------------------------------------------------
    def acpi_hotplug(self, start: int, size: int, node: int = 0) -> int:
        """A pc-dimm of ``size`` bytes at ``start`` on ``node`` (ACPI hot-add)."""
        self._touch(start, size)

        def op(i, m):
            self.devices[i].append(m.acpi_memory_hotplug(start, size, node))
        return self._step(f"acpi_hotplug({start:#x}, {size:#x}, node={node})", op,
                          lambda i, m, e: ("add", start, size, node))

    def acpi_eject(self, index: int) -> int:
        """device_del of the ``index``-th plugged DIMM (the ACPI eject path)."""
        def op(i, m):
            dev = self.devices[i][index]
            m.acpi_memory_eject(dev)
            self.devices[i].pop(index)
            for s, n in dev.ranges:
                self._note_removal(i, m, s, n)

        def cls(i, m, e):
            _drain_all(m)
            self._drained = True
            return ("eject",)
        for i, m in enumerate(self.machines):
            if index >= len(self.devices[i]):
                self._fail(f"acpi_eject({index}): only {len(self.devices[i])} DIMMs plugged")
        return self._step(f"acpi_eject({index})", op, cls)

    def add_memory(self, nid: int, start: int, size: int, flags: int = 0) -> int:
        """add_memory(nid, start, size, mhp_flags) at any granularity."""
        self._touch(start, size)

        def op(i, m):
            m.add_memory(nid, start, size, flags)
        return self._step(f"add_memory({nid}, {start:#x}, {size:#x}, {flags})", op,
                          lambda i, m, e: ("add", start, size, nid))

    def remove_memory(self, start: int, size: int) -> int:
        """remove_memory(start, size) at any granularity."""
        self._touch(start, size)

        def op(i, m):
            m.remove_memory(start, size)
            self._note_removal(i, m, start, size)
        return self._step(f"remove_memory({start:#x}, {size:#x})", op,
                          lambda i, m, e: ("identical",))

    def dlpar_add(self, addr: int, node: int = 0) -> int:
        """powerpc64 pseries: dlpar_add_lmb of the LMB at ``addr`` (add, then online; removed
        again when onlining fails)."""
        bs = self.m.memory_block_size_bytes
        self._touch(addr, bs)

        def op(i, m):
            from hotmem.arch import powerpc64_init
            powerpc64_init.dlpar_add_lmb(m, addr, node)
        return self._step(f"dlpar_add({addr:#x}, node={node})", op,
                          lambda i, m, e: ("dlpar_add", addr, bs, node))

    def dlpar_remove(self, addr: int) -> int:
        """powerpc64 pseries: dlpar_remove_lmb of the LMB at ``addr`` (offline, remove)."""
        bs = self.m.memory_block_size_bytes
        self._touch(addr, bs)

        def op(i, m):
            from hotmem.arch import powerpc64_init
            powerpc64_init.dlpar_remove_lmb(m, addr)
            self._note_removal(i, m, addr, bs)

        def cls(i, m, e):
            mem = m.memory.blocks.get(addr // bs)
            if mem is not None and mem.state == "online" and addr % bs == 0:
                _drain_all(m)
                self._drained = True
                return ("offline", set(range(mem.start_section_nr, mem.start_section_nr
                                             + m.memory.sections_per_block)))
            return ("identical",)
        return self._step(f"dlpar_remove({addr:#x})", op, cls)

    def write(self, block: int, attr: str, word: str) -> int:
        """echo word > /sys/devices/system/memory/memory<block>/<attr> (state or online)."""
        path = f"/sys/devices/system/memory/memory{block}/{attr}"

        def op(i, m):
            m.sysfs.write(path, word)

        def cls(i, m, e):
            mem = m.memory.blocks.get(block)
            if mem is None:
                return ("identical",)
            w = word.strip() if attr == "state" else word.strip().lower()
            onl = w in ONLINE_WORDS if attr == "state" else w in _TRUE
            off = w == "offline" if attr == "state" else w in _FALSE
            secs = range(mem.start_section_nr, mem.start_section_nr
                         + m.memory.sections_per_block)
            if onl and mem.state == "offline":
                return ("online", set(secs), mem.nid)
            if off and mem.state == "online":
                _drain_all(m)
                self._drained = True
                return ("offline", set(secs))
            return ("identical",)
        return self._step(f"write({block}, {attr!r}, {word!r})", op, cls)

    def write_auto_online(self, word: str) -> int:
        """echo word > /sys/devices/system/memory/auto_online_blocks."""
        def op(i, m):
            m.sysfs.write("/sys/devices/system/memory/auto_online_blocks", word)
        return self._step(f"write_auto_online({word!r})", op, lambda i, m, e: ("identical",))

    def fragment(self, nid: int, zone: str, order: int) -> int:
        """Leave no free block of ``order`` or more in the zone (half its free memory held as
        order − 1 blocks, as the allocator's fragment() does); the holds count as kernel
        allocations ("fuzz hold") until release_holds()."""
        idx = ZONE_NAMES.index(zone)

        def op(i, m):
            zid = m.pgdats[nid].node_zones[idx].zoneid if nid in m.pgdats else (nid << 3) | idx
            if zid not in m.allocator.zones():
                raise HotplugError(_errno.EINVAL, f"zone {zid} has no pages")
            o = max(order - 1, 0)
            for pfn in m.allocator.fragment(zid, order, 0):
                m.owners.note_buddy(pfn, o, nid, "fuzz hold")
                self.holds[i].append((pfn, o))
        return self._step(f"fragment({nid}, {zone!r}, {order})", op,
                          lambda i, m, e: ("identical",))

    def release_holds(self) -> int:
        """Free every page fragment() holds."""
        def op(i, m):
            for pfn, o in self.holds[i]:
                m.kernel_free_pages(pfn, o)
            self.holds[i].clear()
        return self._step("release_holds()", op)

    def inject(self, kind: str, **kw) -> int:
        """m.inject(kind, **kw): fail_page_alloc, altmap or notifier faults."""
        def op(i, m):
            m.inject(kind, **kw)
        args = "".join(f", {k}={v!r}" for k, v in kw.items())
        return self._step(f"inject({kind!r}{args})", op, lambda i, m, e: ("identical",))

    def inject_unmovable(self, pfn: int) -> int:
        """Take the free page ``pfn`` as an unmovable kernel allocation."""
        def op(i, m):
            m.inject("unmovable", pfn=pfn)
            self.unmovable[i].append(pfn)
        return self._step(f"inject_unmovable({pfn:#x})", op, lambda i, m, e: ("identical",))

    def free_unmovable(self, index: int) -> int:
        """Free the ``index``-th page inject_unmovable took."""
        def op(i, m):
            m.kernel_free_pages(self.unmovable[i].pop(index), 0)
        return self._step(f"free_unmovable({index})", op)

    def read(self, path: str) -> int:
        """Read a /proc or /sys file (every backend must render the same text); /proc/meminfo's
        MemTotal must be the struct-page recount of managed pages."""
        texts = []

        def op(i, m):
            texts.append(m.procfs.read(path) if path.startswith("/proc/") else m.sysfs.read(path))
        err = self._step(f"read({path!r})", op)
        if err is None or err:
            return err
        if len(set(texts)) > 1:
            self._fail(f"read({path!r}): the backends render different text")
        if path == "/proc/meminfo" and self.check:
            total = int(texts[0].split("\n")[0].split()[1])
            try:
                census = check_invariants(self.m, self.facts[0], self.allow[0])
            except InvariantError as e:
                self._fail(f"after read({path!r}): {e}")
            want = sum(census["managed"].values()) * (self.m.arch.PAGE_SIZE >> 10)
            if total != want:
                self._fail(f"/proc/meminfo MemTotal {total} kB but the struct pages say {want} kB")
        return err

    def clear_injections(self) -> int:
        def op(i, m):
            m.clear_injections()
        return self._step("clear_injections()", op)

    # -- the end of a program ------------------------------------------------------------------
    def teardown(self) -> None:
        """Remove everything the program added (offline, eject, remove; re-add and remove
        ranges a failed add left mapped), bring offlined boot blocks back, and compare the
        Machine with its state before the first step: only what the kernel keeps by design may
        differ — max_pfn, pgdat->nr_zones, watermarks / lowmem reserves / pcp sizing (recomputed
        at every online and offline), the migratetype of pageblocks an allocation stole (so free
        blocks may sit on other migratetype lists), mem_section roots, and iomem resources a
        removal spanning two of them could not release."""
        if self.torn_down or self.dead:
            return
        self.torn_down = True
        self.lines.append("d.teardown()")
        STEPS["steps"] += 1
        for i, m in enumerate(self.machines):
            self._teardown_one(i, m)
        self._after("teardown()", [0] * len(self.machines))

    def _teardown_one(self, i, m) -> None:
        m.clear_injections()
        m.sysfs.write("/sys/devices/system/memory/auto_online_blocks", "offline")
        for pfn, o in self.holds[i]:
            m.kernel_free_pages(pfn, o)
        self.holds[i].clear()
        for pfn in self.unmovable[i]:
            m.kernel_free_pages(pfn, 0)
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
        vl = getattr(pt, "vmemmap_list", None)
        base = self.base_arch[i].get("vmemmap_list")
        if vl is not None and base is not None and vl.pages[:len(base[0])] == list(base[0]) \
                and (vl.num_left, vl.num_freed, len(vl.pages)) != (base[1], base[2], len(base[0])):
            for pfn in vl.pages[len(base[0]):]:
                m.kernel_free_pages(pfn, 0)
            a.kept_by_design.append(("vmemmap_list", len(vl.pages) - len(base[0]),
                                     vl.num_left, vl.num_freed))
            vl.pages[:] = list(base[0])
            vl.num_left, vl.num_freed = base[1], base[2]

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


def _arch_boot_state(m) -> dict:
    """Arch state the Machine snapshot leaves out and the teardown compares: powerpc64's
    vmemmap_list bookkeeping, s390x's SCLP increment states."""
    out = {}
    vl = getattr(m.pgtables, "vmemmap_list", None)
    if vl is not None:
        out["vmemmap_list"] = (tuple(vl.pages), vl.num_left, vl.num_freed)
    sclp = getattr(m, "sclp", None)
    if sclp is not None:
        out["sclp"] = sclp.state()
    return out


# -- the Hypothesis state machine ------------------------------------------------------------------

def _arm64_works() -> bool:
    """Whether this hotmem boots arm64 Machines (the arm64 lifecycle arrived while the fuzzer
    was written; older trees refuse it)."""
    try:
        MachineConfig(arch="arm64", boot_memory="256M", page_size="4K").boot()
        return True
    except Exception:
        return False


def machine_configs(kernels=KERNELS, size: str = "any", archs=None):
    """Hypothesis strategy of MachineConfig: kernel version, boot memory and NUMA layout,
    paging levels, CPUs, CPU flags (PSE, 1 GiB pages) and command line (memmap_on_memory off,
    on or force, movable_node, memhp_default_state). ``size``: "small" keeps boot memory at
    ≤ 512 MiB (for the slow pure-Python twin), "ci" at ≤ 1 GiB, "any" goes to 2 GiB.
    ``archs``: the archs to draw from (default x86_64 and arm64); "powerpc64" draws the MMU
    (radix, hash) and pseries layouts, "s390x" standby memory (none, sizes, storage
    increments) and the EDAT facilities."""
    from hypothesis import strategies as st
    small = ["256M", "512M", ((0, "256M"), (1, "256M"))]
    ci = ["256M", "256M", "512M", "512M", "1G", ((0, "256M"), (1, "256M")),
          ((0, "512M"), (1, 0)), ((0, "256M"), (1, "256M"), (2, 0))]
    layouts = st.sampled_from({"small": small, "ci": ci,
                               "any": ci + ["2G", ((0, "1G"), (1, "1G"))]}[size])
    ppc_small = ["512M", "1G", ((0, "512M"), (1, "512M"))]
    ppc_layouts = {"small": ppc_small,
                   "ci": ppc_small + ["256M", "1536M", ((0, "1G"), (1, 0)),
                                      ((0, "256M"), (1, "768M"))],
                   "any": ppc_small + ["256M", "1536M", "2G", "3G", ((0, "1G"), (1, 0)),
                                       ((0, "256M"), (1, "768M")), ((0, "1G"), (1, "1G"))]
                   }[size]
    s390_standby = [None, None, "256M", "512M", "1G", (("size", "1G"), ("rzm", "128M")),
                    (("size", "1G"), ("rzm", "512M"))]
    if archs is None:
        archs = ("x86_64", "x86_64", "x86_64", "arm64") if _arm64_works() else ("x86_64",)

    @st.composite
    def build(draw):
        kernel = draw(st.sampled_from(kernels))
        boot = draw(layouts)
        nodes = sorted(n for n, _ in boot) if isinstance(boot, tuple) else [0]
        force = ["force"] if kernel in ("6.6", "6.8", "6.11") else []
        mom = draw(st.sampled_from(["1", "1", "1", "0"] + force))
        words = [] if kernel == "v2" and draw(st.booleans()) else \
            [f"memory_hotplug.memmap_on_memory={mom}"]
        if draw(st.integers(0, 4)) == 0:
            words.append("movable_node")
        auto = draw(st.sampled_from([None] * 6 + ["online", "online_movable", "online_kernel"]))
        if auto:
            words.append(f"memhp_default_state={auto}")
        if len(nodes) > 1 and draw(st.booleans()):
            cpus = tuple((n, 1) for n in nodes if n < 2)
        else:
            cpus = draw(st.sampled_from([1, 1, 2]))
        flags = draw(st.sampled_from([("pse", "hypervisor")] * 4 +
                                     [("pse", "hypervisor", "pdpe1gb"), ("hypervisor",)]))
        arch = draw(st.sampled_from(archs))
        if arch == "powerpc64":
            # QEMU pseries: RAM from 0 (256 MiB LMBs); NUMA nodes back to back
            boot = draw(st.sampled_from(ppc_layouts))
            nodes = sorted(n for n, _ in boot) if isinstance(boot, tuple) else [0]
            if len(nodes) > 1 and draw(st.booleans()):
                cpus = tuple((n, 1) for n in nodes if n < 2)
            return MachineConfig(kernel=kernel, boot_memory=boot, cmdline=" ".join(words),
                                 cpus=cpus, arch="powerpc64",
                                 mmu=draw(st.sampled_from(["radix", "radix", "hash"])))
        if arch == "s390x":
            # node 0 only (Debian's s390x has no NUMA); boot and standby memory multiples of
            # the storage increment rzm; kernels up to 6.8 (a Machine refuses s390x 6.9+)
            if kernel not in S390X_KERNELS:
                kernel = draw(st.sampled_from([k for k in kernels if k in S390X_KERNELS]
                                              or ["6.8"]))
                if kernel not in ("6.6", "6.8"):
                    words = [w.replace("=force", "=1") for w in words]
            standby = draw(st.sampled_from(s390_standby))
            rzm = dict(standby).get("rzm", "256M") if isinstance(standby, tuple) else "256M"
            boot = draw(st.sampled_from(["512M", "1G"] if rzm == "512M" else
                                        ["256M", "512M", "1G"]))
            return MachineConfig(kernel=kernel, boot_memory=boot, cmdline=" ".join(words),
                                 cpus=draw(st.sampled_from([1, 1, 2])), arch="s390x",
                                 # no "edat=off": a 4 KiB identity map has a Python-walked
                                 # entry per page (too slow to check after every step)
                                 cpu_flags=draw(st.sampled_from([(), (), ("edat2=off",)])),
                                 standby_memory=standby)
        if arch == "arm64":
            # the v2 RFC never ran on arm64 with 16K pages: its eligibility test has no
            # pageblock alignment, so a 32-page memmap leaves the block's buddy part starting
            # mid-pageblock and the first offline would BUG in start_isolate_page_range (the
            # model refuses it with a WARN and EINVAL for ever)
            sizes = ["4K"] if kernel == "v2" else ["4K", "4K", "16K", "64K"]
            return MachineConfig(kernel=kernel, boot_memory=boot, cmdline=" ".join(words),
                                 cpus=cpus, arch="arm64", page_size=draw(st.sampled_from(sizes)))
        return MachineConfig(kernel=kernel, boot_memory=boot, cmdline=" ".join(words),
                             paging_levels=draw(st.sampled_from([4, 4, 5])), cpus=cpus,
                             cpu_flags=flags)
    return build()


def make_state_machine(backends=("compiled",), configs=None, max_blocks: int = 4,
                       name: str = "HotplugStateMachine", far_adds: bool = True):
    """A RuleBasedStateMachine class driving hotplug programs on ``backends`` (one Machine
    each, compared after every step when there are two), booted from ``configs`` (a strategy of
    MachineConfig; default :func:`machine_configs`). Each example boots one Machine, runs the
    rules, and tears down (removing everything and comparing with the boot state).
    ``far_adds``: add_memory also at 500 GiB and around 64 GiB (zone spans of hundreds of GiB,
    which the pure-Python twin's shrink_zone_span scans crawl through)."""
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

    configs = configs if configs is not None else machine_configs()
    slot = st.integers(0, 23)
    index = st.integers(0, 1 << 16)

    class _Machine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.d = None

        @initialize(config=configs)
        def boot(self, config):
            self.d = Driver(config, backends)

        # -- helpers ---------------------------------------------------------------------------
        @property
        def m(self):
            return self.d.m

        def _base(self):
            """Where the platform puts hot-pluggable DIMMs."""
            base = getattr(self.m.arch_ops, "device_memory_base", None)
            if base is not None:
                return base(self.m)
            if self.d.config.arch == "s390x":
                # beyond the online and standby storage (ident_map_size), block aligned
                from hotmem.arch.s390x_init import ident_map_size
                bs = self.m.memory_block_size_bytes
                return -(-ident_map_size(self.m) // bs) * bs
            from hotmem.arch.x86_e820 import qemu_pc_device_memory_base
            return qemu_pc_device_memory_base(sum(self.m.boot_memory.values()))

        def _boot_start(self, s):
            boot = sorted(self.d.boot_blocks)
            return boot[s % len(boot)] * self.m.memory_block_size_bytes

        def _block(self, i, hot_only=True, state=None):
            """A memory block: the i-th (mod) of the hot-added ones (or of all), preferring
            blocks in ``state``."""
            blocks = sorted(self.m.memory.blocks)
            pool = [b for b in blocks if b not in self.d.boot_blocks] if hot_only else blocks
            pool = pool or blocks
            if state is not None:
                pool = [b for b in pool if self.m.memory.blocks[b].state == state] or pool
            return pool[i % len(pool)]

        def _node(self, i):
            nodes = sorted(self.m.pgdats)
            return nodes[i % len(nodes)] if i < 100 else 7   # 7: not possible

        def alive(self):
            return self.d is not None and not self.d.dead

        # -- hot-add ---------------------------------------------------------------------------
        @precondition(alive)
        @rule(s=slot, nblocks=st.integers(1, max_blocks), node=st.integers(0, 104),
              word=st.sampled_from([None, "online", "online_kernel", "online_movable"]))
        def acpi_hotplug(self, s, nblocks, node, word):
            """A pc-dimm arrives (and, with ``word``, its blocks are onlined one by one)."""
            bs = self.m.memory_block_size_bytes
            start = self._base() + s * bs
            if self.d.acpi_hotplug(start, nblocks * bs, self._node(node)) == 0 and word:
                for bid in range(start // bs, start // bs + nblocks):
                    if bid in self.m.memory.blocks and \
                            self.m.memory.blocks[bid].state == "offline":
                        self.d.write(bid, "state", word)

        @precondition(alive)
        @rule(where=st.sampled_from(["slot", "slot", "slot", "half", "page", "boot", "beyond"]
                                    + (["high", "64G"] if far_adds else [])),
              s=slot, size=st.sampled_from([1, 1, 1, 2, 3, 0, -1, "page", "half"]),
              flags=st.sampled_from([0, 2, 2, 1, 3]), node=st.integers(0, 104))
        def add_memory(self, where, s, size, flags, node):
            """add_memory at any address and granularity, with MHP_MEMMAP_ON_MEMORY and
            MHP_MERGE_RESOURCE in any combination."""
            bs = self.m.memory_block_size_bytes
            start = {"slot": self._base() + s * bs, "half": self._base() + s * bs + bs // 2,
                     "page": self._base() + s * bs + 4096, "boot": self._boot_start(s),
                     "high": (500 << 30) + s * bs, "beyond": (1 << 46) + s * bs,
                     "64G": (64 << 30) - 2 * bs + s * bs}[where]
            n = {0: 0, -1: bs * 2 - 4096, "page": 4096, "half": bs // 2}[size] \
                if size in (0, -1, "page", "half") else size * bs
            self.d.add_memory(self._node(node), start, n, flags)

        @precondition(lambda self: self.alive() and self.d.config.arch == "powerpc64")
        @rule(s=slot, add=st.sampled_from([True, True, False]), node=st.integers(0, 104),
              where=st.sampled_from(["slot"] * 6 + ["boot", "odd"]))
        def dlpar(self, s, add, node, where):
            """pseries DLPAR: dlpar_add_lmb / dlpar_remove_lmb of an LMB in device memory (or
            of boot memory, or at an address that is no LMB boundary)."""
            bs = self.m.memory_block_size_bytes
            addr = {"slot": self._base() + (s % 8) * bs, "boot": self._boot_start(s),
                    "odd": self._base() + (s % 8) * bs + self.m.arch.PAGE_SIZE}[where]
            if add:
                self.d.dlpar_add(addr, self._node(node))
            else:
                self.d.dlpar_remove(addr)

        @precondition(lambda self: self.alive() and self.d.standby_blocks)
        @rule(i=index, word=st.sampled_from(["online", "online", "online_movable",
                                             "online_kernel", "offline", "offline"]))
        def standby(self, i, word):
            """s390x: online (assigning its storage increments through the SCLP notifier) or
            offline a standby block."""
            blocks = sorted(self.d.standby_blocks)
            self.d.write(blocks[i % len(blocks)], "state", word)

        # -- online / offline ------------------------------------------------------------------
        @precondition(alive)
        @rule(i=index, word=st.sampled_from(ONLINE_WORDS), hot=st.sampled_from([True] * 5 + [False]))
        def online(self, i, word, hot):
            self.d.write(self._block(i, hot, "offline"), "state", word)

        @precondition(alive)
        @rule(i=index, hot=st.sampled_from([True] * 3 + [False]))
        def offline(self, i, hot):
            self.d.write(self._block(i, hot, "online"), "state", "offline")

        @precondition(alive)
        @rule(i=index, hot=st.booleans(),
              attr_word=st.one_of(
                  st.tuples(st.just("state"), st.sampled_from(STATE_WORDS + INVALID_STATE_WORDS)),
                  st.tuples(st.just("online"), st.sampled_from(ONLINE_ATTR_WORDS)),
                  st.tuples(st.just("auto_online_blocks"),
                            st.sampled_from(STATE_WORDS + ("on", "")))),
              missing=st.integers(0, 9))
        def sysfs_write(self, i, hot, attr_word, missing):
            """Any word to memoryN/state, memoryN/online (N may not exist) or
            auto_online_blocks."""
            attr, word = attr_word
            if attr == "auto_online_blocks":
                self.d.write_auto_online(word)
                return
            block = self._block(i, hot) if missing else 4000
            self.d.write(block, attr, word)

        # -- remove ----------------------------------------------------------------------------
        @precondition(alive)
        @rule(i=index, nblocks=st.sampled_from([1, 1, 1, 2, 0, -1]),
              mode=st.sampled_from(["dimm", "dimm", "block", "block", "slot", "boot"]),
              first=st.sampled_from([None, "offline", "offline"]))
        def remove_memory(self, i, nblocks, mode, first):
            """remove_memory of a whole DIMM, one block, a slot, or boot memory (optionally
            offlining the range's blocks first, last one first)."""
            bs = self.m.memory_block_size_bytes
            devs = self.d.devices[0]
            if mode == "dimm" and devs:
                dev = devs[i % len(devs)]
                start, n = dev.start, dev.size
            else:
                if mode == "slot":
                    start = self._base() + (i % 24) * bs
                elif mode == "boot":
                    start = self._boot_start(i)
                else:
                    start = self._block(i, True, None if first else "offline") * bs
                n = {0: 0, -1: bs // 2}.get(nblocks, nblocks * bs)
            if first and n > 0:
                for bid in range((start + n) // bs - 1, start // bs - 1, -1):
                    mem = self.m.memory.blocks.get(bid)
                    if mem is not None and mem.state == "online":
                        self.d.write(bid, "state", "offline")
            self.d.remove_memory(start, n)

        @precondition(lambda self: self.alive() and self.d.devices[0])
        @rule(i=index, first=st.sampled_from([None, None, "offline"]))
        def acpi_eject(self, i, first):
            """device_del of a DIMM (optionally offlining its blocks first, last one first)."""
            k = i % len(self.d.devices[0])
            if first:
                dev = self.d.devices[0][k]
                for s, n in dev.ranges:
                    bs = self.m.memory_block_size_bytes
                    for bid in range((s + n) // bs - 1, s // bs - 1, -1):
                        mem = self.m.memory.blocks.get(bid)
                        if mem is not None and mem.state == "online":
                            self.d.write(bid, "state", "offline")
            self.d.acpi_eject(k)

        # -- memory pressure and faults --------------------------------------------------------
        @precondition(lambda self: self.alive() and len(self.d.holds[0]) < 20000)
        @rule(node=st.integers(0, 99), zone=st.sampled_from(["DMA32", "Normal", "Movable",
                                                             "DMA32"]),
              order=st.sampled_from([10, 9, 9, 8, 7]), release=st.sampled_from([False] * 3 + [True]))
        def fragment(self, node, zone, order, release):
            """Fragment a zone of a node (or release what earlier fragmentation holds)."""
            if release and self.d.holds[0]:
                self.d.release_holds()
                return
            nid = self._node(node)
            z = self.m.pgdats[nid].node_zones[ZONE_NAMES.index(zone)]
            if z.managed_pages:
                self.d.fragment(nid, zone, order)

        @precondition(alive)
        @rule(kind=st.sampled_from(["page_alloc", "page_alloc", "altmap", "notifier",
                                    "notifier", "clear"]),
              nth=st.integers(1, 6), times=st.sampled_from([1, 1, 2, 1000]),
              order=st.sampled_from([None, None, 0, 9]), node=st.sampled_from([None, None, 0, 1]),
              event=st.sampled_from(["MEM_GOING_ONLINE", "MEM_GOING_OFFLINE", "MEM_ONLINE"]),
              error=st.sampled_from([-12, -12, -16, -22, 5]))
        def fault(self, kind, nth, times, order, node, event, error):
            """fail_page_alloc (nth, times, order, node), an altmap failure, a memory notifier
            veto (any errno, or a bad event / positive error: EINVAL), or clear them all."""
            if kind == "clear":
                self.d.clear_injections()
            elif kind == "notifier":
                self.d.inject("notifier", event=event, error=error)
            elif kind == "altmap":
                self.d.inject("altmap", nth=min(nth, 3))
            else:
                kw = {"nth": nth, "times": times}
                if order is not None:
                    kw["order"] = order
                if node is not None:
                    kw["node"] = node
                self.d.inject("page_alloc", **kw)

        @precondition(alive)
        @rule(i=index, k=st.integers(0, 1 << 16), hot=st.booleans(),
              free=st.sampled_from([False, False, True]))
        def unmovable(self, i, k, hot, free):
            """Pin a free page of a block as an unmovable kernel allocation (or free one)."""
            if free and self.d.unmovable[0]:
                self.d.free_unmovable(i % len(self.d.unmovable[0]))
                return
            bid = self._block(i, hot, "online")
            mem = self.m.memory.blocks[bid]
            pfn = mem.start_pfn + k % mem.pages_per_block
            if mem.state == "online" and mem.zone is not None:
                zid = mem.zone.zoneid
                cands = []
                if zid in self.m.allocator.zones():
                    for o in range(self.m.allocator.max_order):
                        for mt in range(3):
                            cands += [p for p in self.m.allocator.free_list(zid, o, mt)
                                      if mem.start_pfn <= p < mem.end_pfn]
                if cands:
                    cands.sort()
                    pfn = cands[k % len(cands)]
            self.d.inject_unmovable(pfn)

        @rule(what=st.sampled_from(["/proc/meminfo", "/proc/zoneinfo", "/proc/buddyinfo",
                                    "/proc/vmstat", "/proc/iomem", "valid_zones", "state",
                                    "/sys/devices/system/node/has_memory",
                                    "/sys/devices/system/node/online"]), i=index)
        def observe(self, what, i):
            """Read what a user would (always possible, even after an oops ended the program:
            then it does nothing)."""
            if not self.alive():
                return
            if what in ("valid_zones", "state"):
                what = f"/sys/devices/system/memory/memory{self._block(i, True)}/{what}"
            self.d.read(what)

        def teardown(self):
            if self.d is not None:
                self.d.teardown()

    _Machine.__name__ = _Machine.__qualname__ = name
    return _Machine


def fuzz_settings(profile: str | None = None, **overrides):
    """Hypothesis settings of the fuzz tests: profile "ci" (derandomised, no database, fixed
    example and step counts) or "long" (random, many more steps); ``HOTMEM_FUZZ`` picks the
    profile when ``profile`` is None."""
    from hypothesis import HealthCheck, Phase, settings
    profile = profile or os.environ.get("HOTMEM_FUZZ", "ci")
    common = dict(deadline=None, database=None, print_blob=True,
                  suppress_health_check=list(HealthCheck))
    if profile == "long":
        base = dict(max_examples=int(os.environ.get("HOTMEM_FUZZ_EXAMPLES", 300)),
                    stateful_step_count=int(os.environ.get("HOTMEM_FUZZ_STEPS", 60)),
                    derandomize=False)
    elif profile == "ci":
        base = dict(max_examples=200, stateful_step_count=50, derandomize=True,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])
    else:
        raise ValueError(f"HOTMEM_FUZZ={profile!r}: expected 'ci' or 'long'")
    base.update(common)
    base.update(overrides)
    return settings(**base)


def __getattr__(name):
    """``hotmem.testing.HotplugStateMachine``: built on first use (Hypothesis is a test extra)."""
    if name == "HotplugStateMachine":
        sm = make_state_machine()
        globals()[name] = sm
        return sm
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
