"""The program driver: :class:`Driver` runs a hotplug program step by step on one Machine per
backend, records it as replayable Python, and checks every step (see hotmem.testing)."""
from __future__ import annotations

import errno as _errno
import re

from hotmem.errors import HotplugError
from hotmem.mm.page_alloc import kernel_free_pages
from hotmem.testing.config import MachineConfig
from hotmem.testing.consts import (MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE,
                                   ZONE_NAMES)
from hotmem.testing.facts import Allowances, BootFacts
from hotmem.testing.invariants import InvariantError, check_invariants
from hotmem.testing.snapshot import (_arch_boot_state, _drain_all, _free_blocks, _iomem_flat,
                                     diff_snapshots, fast_snapshot)
from hotmem.testing.teardown import Teardown

#: the words of memoryN/state that online a block
ONLINE_WORDS = ("online", "online_kernel", "online_movable")

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


def _ename(err: int) -> str:
    return "0" if not err else _errno.errorcode.get(err, str(err))


#: steps run by all Drivers of this process (the CI test reports and checks it)
STEPS = {"steps": 0, "programs": 0, "failed_ops": 0, "known": 0, "oops": 0}
#: (operation, outcome) → count, over all Drivers of this process
OUTCOMES: dict = {}

def _expected_word(attr: str, word: str):
    """What the kernel makes of ``word`` written to memoryN/``attr``, worked out here from the
    kernel's rules (not the model's parsers): "state" takes an online type name with at most one
    trailing newline (sysfs_streq); "online" is true for a first character in yYtT1 or "on", false
    for nN fF0 or "off" (6.1's kstrtobool). Both read the buffer up to the first NUL. Returns
    "online", "offline" or None (refused, or an empty write that does nothing)."""
    w = word.split("\0", 1)[0]
    if attr == "state":
        w = w[:-1] if w.endswith("\n") else w
        return {"online": "online", "online_kernel": "online", "online_movable": "online",
                "offline": "offline"}.get(w)
    if w[:1] in tuple("yYtT1") or w[:2].lower() == "on":
        return "online"
    if w[:1] in tuple("nNfF0") or w[:2].lower() == "of":
        return "offline"
    return None


class Driver(Teardown):
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
        #: the arch's own state at boot (ArchOps.arch_state: powerpc64's vmemmap_list, s390x's
        #: SCLP increments)
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
            if m.arch_ops.hotplug_method == "standby":
                # standby storage: sclp_mem_notifier's MEM_GOING_ONLINE and MEM_CANCEL_ONLINE
                # each send SCLP requests whose buffer is a get_zeroed_page(GFP_DMA) freed
                # again: a page allocated and freed moves pages between the free lists and a
                # per-CPU list (the refill batch), which no error path restores; the pages all
                # come back
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
            w = _expected_word(attr, word)
            onl, off = w == "online", w == "offline"
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
                kernel_free_pages(m, pfn, o)
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
            kernel_free_pages(m, self.unmovable[i].pop(index), 0)
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
