"""The Hypothesis state machine: :func:`make_state_machine` (the rules: hot-add, online/offline,
sysfs writes, remove, memory pressure, faults, reads) and :func:`fuzz_settings` (the CI and long
profiles)."""
from __future__ import annotations

import os

from hotmem.testing.config import machine_configs
from hotmem.testing.consts import ZONE_NAMES
from hotmem.testing.driver import ONLINE_WORDS, Driver

STATE_WORDS = ONLINE_WORDS + ("offline",)
#: words the kernel takes for memoryN/state besides the bare names: one trailing newline
#: (echo's), and anything after a NUL (sysfs_streq, lib/string_helpers.c, 6.1)
STATE_WORDS_ACCEPTED = ("online\n", "offline\n", "online_movable\n", "online_kernel\n",
                        "offline\0junk")
#: words it refuses (EINVAL): spaces, tabs, a second newline, case, prefixes, other names
INVALID_STATE_WORDS = ("on", "Online", "online_movable ", " online", "online\n\n",
                       "online_movable\t\n", "1", "going-offline", "online_kernel,", "unplug",
                       "\x00", "\n", "offline\r\n", "onl\u0131ne")
#: memoryN/online: 6.1's kstrtobool reads only the first one or two characters
ONLINE_ATTR_WORDS = ("1", "0", "y", "n", "Y", "N", "yes", "no", "on", "off", "true", "false",
                     "t", "F", "yolo", "On", "oFf", "2", "maybe", "", "online", "o", "e", " 1",
                     "\n")


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
            return self.m.arch_ops.device_memory_base(self.m)

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

        @precondition(lambda self: self.alive()
                      and self.m.arch_ops.hotplug_method == "dlpar-lmb")
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
                  st.tuples(st.just("state"), st.sampled_from(STATE_WORDS + STATE_WORDS_ACCEPTED
                                                              + INVALID_STATE_WORDS)),
                  st.tuples(st.just("online"), st.sampled_from(ONLINE_ATTR_WORDS)),
                  st.tuples(st.just("auto_online_blocks"),
                            st.sampled_from(STATE_WORDS + ("on", "", "online\n",
                                                             "online ", "offline\n\n")))),
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
