"""The running machine described for the model: ``hotmem capture`` and ``Machine.from_host()``.

Read from a root directory (``/`` or a copy of one):

- /sys/firmware/memmap/N/{start,end,type}: the x86 e820 table as the firmware gave it
  (e820_table_firmware); its RAM entries become ``e820_ranges`` after the kernel's own trimming
  (arch/x86/kernel/e820.c:e820__memblock_setup adds each E820_TYPE_RAM entry with memblock_add,
  then throws away partial pages with memblock_trim_memory(PAGE_SIZE), 6.1);
- /sys/devices/system/node/nodeN/{cpulist,memoryM}: the node of each memory block, the CPUs;
- /sys/devices/system/memory/block_size_bytes;
- /proc/cmdline: the memory-hotplug parameters the model reads (hotmem/cmdline.py);
- /proc/sys/kernel/osrelease: mapped to the newest modelled policy at or before it (a note says
  which).

    host = hotmem.host.capture("/")        # HostDescription; host.notes says what was assumed
    m = hotmem.Machine.from_host("/")       # the Machine; add memory to it as to any other
"""
from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass, field

from hotmem.errors import HotplugError

PAGE_SIZE = 4096
#: the /proc/cmdline parameters hotmem/cmdline.py:parse_args models
CMDLINE_KEYS = ("memory_hotplug.memmap_on_memory", "memory_hotplug.online_policy",
                "memhp_default_state", "movable_node", "nogbpages")


@dataclass
class HostDescription:
    """What capture() read, and the Machine arguments made of it."""
    root: str
    release: str
    kernel: str                         # the modelled policy the release maps to
    firmware_memmap: list               # (start, end exclusive, type) in the firmware's order
    e820_ranges: list                   # (start, end exclusive, nid): trimmed RAM
    cpus: dict                          # nid -> number of CPUs
    block_size: int
    cmdline: str                        # the parameters hotmem reads, from /proc/cmdline
    notes: list = field(default_factory=list)
    #: the build configuration (hotmem.kconfig): /boot/config-<release> when readable, else
    #: the Kconfig defaults (never a distribution preset: the host's build is not known)
    config: object = "defconfig"

    @property
    def boot_memory(self) -> dict:
        out = {nid: 0 for nid in self.cpus}
        for s, e, nid in self.e820_ranges:
            out[nid] = out.get(nid, 0) + e - s
        return out

    def machine_kwargs(self) -> dict:
        total = sum(self.boot_memory.values())
        return dict(arch="x86_64", kernel=self.kernel, boot_memory=self.boot_memory,
                    cmdline=self.cmdline, cpus=self.cpus, config=self.config,
                    e820_ranges=[tuple(r) for r in self.e820_ranges],
                    # room to hot-add up to as much again as the boot RAM, on 8 slots
                    maxmem=f"{(2 * total + (1 << 30) - 1) >> 30}G")

    def to_toml(self) -> str:
        kw = self.machine_kwargs()
        lines = [f"# hotmem capture of {self.root}: Linux {self.release}"]
        lines += [f"# {n}" for n in self.notes]
        lines += ["", "[host]", f'release = "{self.release}"',
                  f"block_size_bytes = {self.block_size:#x}",
                  "firmware_memmap = ["]
        lines += [f'  [{s:#x}, {e:#x}, "{t}"],' for s, e, t in self.firmware_memmap]
        lines += ["]", "", "[machine]", f'arch = "{kw["arch"]}"', f'kernel = "{kw["kernel"]}"',
                  "boot_memory = { " + ", ".join(f'{n} = "{v}"' for n, v in
                                                 sorted(self.boot_memory.items())) + " }",
                  "cpus = { " + ", ".join(f"{n} = {c}" for n, c in sorted(self.cpus.items()))
                  + " }",
                  f'cmdline = "{self.cmdline}"', f'maxmem = "{kw["maxmem"]}"',
                  "e820_ranges = ["]
        lines += [f"  [{s:#x}, {e:#x}, {n}]," for s, e, n in self.e820_ranges]
        lines += ["]"]
        return "\n".join(lines) + "\n"


def _read(root: str, path: str) -> str:
    with open(os.path.join(root, path.lstrip("/"))) as f:
        return f.read()


def read_firmware_memmap(root: str) -> list:
    """/sys/firmware/memmap in entry order: (start, end exclusive, type) (drivers/firmware/
    memmap.c prints start and the inclusive end as "0x%llx")."""
    d = os.path.join(root, "sys/firmware/memmap")
    if not os.path.isdir(d):
        raise HotplugError(errno.ENOENT, f"capture: {d}: No such directory (the firmware "
                           "memory map: x86 with CONFIG_FIRMWARE_MEMMAP)")
    out = []
    for name in sorted((n for n in os.listdir(d) if n.isdigit()), key=int):
        ent = os.path.join(d, name)
        start = int(_read(ent, "start"), 16)
        end = int(_read(ent, "end"), 16)
        out.append((start, end + 1, _read(ent, "type").strip()))
    return out


def memblock_trim_memory(ranges, align: int = PAGE_SIZE) -> list:
    """mm/memblock.c:memblock_trim_memory (6.1): each region's start rounded up and end rounded
    down to ``align``; a region left empty is removed. Adjacent regions merge as memblock_add's
    memblock_merge_regions does (here: ranges of one node)."""
    out = []
    for start, end, nid in sorted(ranges):
        s = -(-start // align) * align
        e = end // align * align
        if e <= s:
            continue
        if out and out[-1][1] == s and out[-1][2] == nid:
            out[-1] = (out[-1][0], e, nid)
        else:
            out.append((s, e, nid))
    return out


def _block_nodes(root: str) -> tuple[dict, dict]:
    """(block index -> nid, nid -> CPUs) from /sys/devices/system/node."""
    d = os.path.join(root, "sys/devices/system/node")
    blocks, cpus = {}, {}
    if not os.path.isdir(d):
        return blocks, {0: max(1, os.cpu_count() or 1)}
    for name in os.listdir(d):
        mt = re.fullmatch(r"node(\d+)", name)
        if not mt:
            continue
        nid = int(mt.group(1))
        for ent in os.listdir(os.path.join(d, name)):
            if re.fullmatch(r"memory\d+", ent):
                blocks[int(ent[6:])] = nid
        try:
            cpus[nid] = _count_cpulist(_read(d, f"{name}/cpulist"))
        except OSError:
            cpus[nid] = 0
    return blocks, cpus


def _count_cpulist(text: str) -> int:
    """lib/bitmap.c:bitmap_parselist's "0-3,8" form: the number of CPUs."""
    n = 0
    for part in text.strip().split(","):
        if part:
            lo, _, hi = part.partition("-")
            n += int(hi or lo) - int(lo) + 1
    return n


def _split_by_node(ram, block_size: int, block_nid: dict) -> list:
    """Each RAM range cut where the node of its memory blocks changes (a block without a
    node link takes the node of the block before it)."""
    out = []
    for start, end in ram:
        s = start
        while s < end:
            nid = _nid_of(s // block_size, block_nid)
            e = s
            while e < end and _nid_of(e // block_size, block_nid) == nid:
                e = min(end, (e // block_size + 1) * block_size)
            out.append((s, e, nid))
            s = e
    return out


def _nid_of(block: int, block_nid: dict) -> int:
    if block in block_nid:
        return block_nid[block]
    before = [b for b in block_nid if b < block]
    return block_nid[max(before)] if before else min(block_nid.values(), default=0)


def nearest_policy(release: str) -> str:
    """The newest modelled kernel policy (hotmem/kernel.py) at or before ``release``."""
    from hotmem.kernel import POLICIES, RFC_V2, kernel_version
    k = kernel_version(re.match(r"\d+\.\d+(\.\d+)?", release).group(0))
    known = [p for p in POLICIES.values() if p.release != RFC_V2 and p.release <= k]
    if not known:
        return min((p for p in POLICIES.values() if p.release != RFC_V2),
                   key=lambda p: p.release).name
    return max(known, key=lambda p: p.release).name


def capture(root: str = "/") -> HostDescription:
    """Describe the machine under ``root``; a clear HotplugError where it cannot."""
    notes = []
    fw = read_firmware_memmap(root)
    block_size = int(_read(root, "sys/devices/system/memory/block_size_bytes"), 16)
    ram = [(s, e) for s, e, t in fw if t == "System RAM"]
    block_nid, cpus = _block_nodes(root)
    raw = _split_by_node(ram, block_size, block_nid)
    e820 = memblock_trim_memory(raw)
    trimmed = sum(e - s for s, e, _ in raw) - sum(e - s for s, e, _ in e820)
    if trimmed:
        notes.append(f"e820: {trimmed} bytes of partial pages trimmed from the RAM entries "
                     "(e820__memblock_setup → memblock_trim_memory(PAGE_SIZE))")
    for nid in {n for _, _, n in e820}:
        cpus.setdefault(nid, 0)
    if sum(cpus.values()) < 1:
        cpus[min(cpus, default=0)] = 1
    try:
        release = _read(root, "proc/sys/kernel/osrelease").strip()
    except OSError:
        release = os.uname().release if root in ("/", "") else "6.1"
        notes.append(f"kernel release not readable under {root}: taken as {release}")
    kernel = nearest_policy(release)
    if kernel != re.match(r"\d+\.\d+", release).group(0):
        notes.append(f"Linux {release} is modelled with the {kernel} policy (the newest "
                     "hotmem knows at or before it)")
    try:
        words = _read(root, "proc/cmdline").split()
    except OSError:
        words = []
        notes.append(f"{root}/proc/cmdline not readable: no command-line parameters")
    if "--" in words:                   # what follows "--" goes to init
        words = words[:words.index("--")]
    cmdline = " ".join(w for w in words if w.partition("=")[0] in CMDLINE_KEYS)
    config = _host_config(root, release, kernel, notes)
    return HostDescription(root=root, release=release, kernel=kernel, firmware_memmap=fw,
                           e820_ranges=e820, cpus=dict(sorted(cpus.items())),
                           block_size=block_size, cmdline=cmdline, notes=notes, config=config)


def _host_config(root: str, release: str, kernel: str, notes: list):
    """The host kernel's build configuration from ``boot/config-<release>`` under ``root``
    (hotmem.kconfig.parse_config), checked against the policy it maps to; "defconfig" (blocks
    added offline) when there is no such file or the model cannot take it (a note says so)."""
    from hotmem.errors import HotplugError
    from hotmem.kconfig import get_config, parse_config
    from hotmem.kernel import get_policy
    try:
        text = _read(root, f"boot/config-{release}")
    except OSError:
        notes.append(f"boot/config-{release} not readable: the Kconfig defaults are taken "
                     "(hot-added blocks stay offline unless the command line says otherwise)")
        return "defconfig"
    try:
        cfg = parse_config(text, f"config-{release}")
        get_config(cfg, get_policy(kernel))
    except HotplugError as exc:
        notes.append(f"boot/config-{release}: {exc}; the Kconfig defaults are taken")
        return "defconfig"
    notes.append(f"build configuration from boot/config-{release}: {cfg.describe()}")
    return cfg


def from_host(root: str = "/", **overrides):
    """A Machine booted from the description of the machine under ``root``; the block size
    the model probes is compared with the host's (a note where they differ)."""
    from hotmem.machine import Machine
    host = capture(root)
    m = Machine(**{**host.machine_kwargs(), **overrides})
    if m.memory_block_size_bytes != host.block_size:
        host.notes.append(f"memory block size: the host has {host.block_size:#x}, the model "
                          f"probes {m.memory_block_size_bytes:#x}")
    m.host = host
    return m
