"""Scenario files (TOML) shared by the model and the real kernel.

    name = "d_mom1_128M_online_movable"
    description = "one 128 MiB DIMM, memmap on memory, onlined movable, full cycle"

    [machine]
    boot_memory = "1G"            # or a table per node: boot_memory = { 0 = "1G", 1 = "0" }
    cmdline = "memory_hotplug.memmap_on_memory=1"
    paging_levels = 4             # 5: QEMU gets la57 (add no5lvl to the cmdline to refuse it)
    cpus = 1                      # or a table per node: cpus = { 0 = 1 }
    slots = 8                     # QEMU -m ...,slots=,maxmem=
    maxmem = "16G"

    [[steps]]
    op = "hotplug"                # a pc-dimm: QMP object-add + device_add; the model's ACPI add
    dimm = "d1"
    size = "128M"
    node = 0
    # addr = 0x100000000          # default: QEMU's first fit in the device memory region

    [[steps]]
    op = "online"                 # write memoryN/state for every block of the DIMM
    dimm = "d1"
    how = "online_movable"

    [[steps]]
    op = "write"                  # any sysfs write
    path = "/sys/devices/system/memory/memory32/state"
    value = "offline"
    read = false                  # no reading after this step (default true)

    [[steps]]
    op = "eject"                  # QMP device_del: the ACPI eject
    dimm = "d1"

    [[steps]]
    op = "virtio_mem"             # memory-backend-ram + virtio-mem-pci (model only for now)
    dimm = "vm0"
    size = "1G"                   # the memdev: the device's region
    block_size = "2M"             # QEMU's default
    requested = "64M"             # requested-size at start
    node = 0

    [[steps]]
    op = "resize"                 # QMP qom-set vm0 requested-size
    dimm = "vm0"
    requested = "200M"

A reading is taken after boot (step "baseline") and after every step unless ``read = false``.
"""
from __future__ import annotations

import errno
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hotmem.boundary import INT_MAX
from hotmem.machine import parse_size

GiB, MiB = 1 << 30, 1 << 20
OPS = ("hotplug", "online", "offline", "write", "eject", "read", "virtio_mem", "resize")
ALIASES = {"add": "hotplug", "remove": "eject"}
ONLINE_HOW = ("online", "online_kernel", "online_movable", "offline")
MEMORY = "/sys/devices/system/memory"


#: QEMU's limit on -m slots= for the pc machine (ACPI_MAX_RAM_SLOTS, QEMU 7.2)
ACPI_MAX_RAM_SLOTS = 256
#: the most steps a scenario may have (each takes a reading: 10,000 is hours in QEMU)
MAX_STEPS = 10_000
#: QEMU's limit on -m slots= for the pseries machine (SPAPR_MAX_RAM_SLOTS, include/hw/ppc/spapr.h,
#: QEMU 7.2)
SPAPR_MAX_RAM_SLOTS = 32
#: QEMU's pseries LMB size (SPAPR_MEMORY_BLOCK_SIZE, include/hw/ppc/spapr.h): a pc-dimm's size must
#: be a multiple of it (spapr_memory_pre_plug: "Hotplugged memory size must be a multiple of 256 MB")
SPAPR_MEMORY_BLOCK_SIZE = 256 << 20
#: QEMU's alignment of the pseries device-memory region (SPAPR_DEVICE_MEM_ALIGN, spapr.h)
SPAPR_DEVICE_MEM_ALIGN = 1 << 30
#: the guests ``hotmem validate --arch`` boots
ARCHES = ("x86_64", "powerpc64")
PPC_PAGE_SIZES = ("64K", "4K")
PPC_MMUS = ("radix",)


def _set_arch(m, arch: str, page_size: str | None, mmu: str | None) -> None:
    """Check and set the machine's arch, page size and MMU (ScenarioError naming the bad one)."""
    if arch not in ARCHES:
        raise ScenarioError(f"machine.arch = {arch!r}: expected one of {', '.join(ARCHES)}")
    if arch == "x86_64":
        if page_size not in (None, "4K") or mmu is not None:
            raise ScenarioError(f"machine.page_size = {page_size!r} / mmu = {mmu!r}: x86_64 has "
                                "4K pages and one MMU")
        m.arch, m.page_size, m.mmu = arch, None, None
        return
    page_size = page_size or "64K"
    if page_size not in PPC_PAGE_SIZES:
        raise ScenarioError(f"machine.page_size = {page_size!r}: expected one of "
                            f"{', '.join(PPC_PAGE_SIZES)} on powerpc64")
    mmu = mmu or "radix"
    if mmu not in PPC_MMUS:
        raise ScenarioError(f"machine.mmu = {mmu!r}: expected one of {', '.join(PPC_MMUS)} (QEMU "
                            "TCG's hash MMU has no 16M pages, see test_boot_absolute_ppc64le.py)")
    if m.slots > SPAPR_MAX_RAM_SLOTS:
        raise ScenarioError(f"machine.slots = {m.slots}: pseries has at most "
                            f"{SPAPR_MAX_RAM_SLOTS} (SPAPR_MAX_RAM_SLOTS)")
    if m.paging_levels != 4:
        raise ScenarioError(f"machine.paging_levels = {m.paging_levels}: x86_64 only")
    m.arch, m.page_size, m.mmu = arch, page_size, mmu


class ScenarioError(ValueError):
    """A scenario file that does not describe a valid run (the message names the value);
    ``errno`` is EINVAL, or the errno of a file that cannot be read."""

    def __init__(self, message: str, err: int = errno.EINVAL):
        super().__init__(message)
        self.errno = err


def _str(v, what) -> str:
    if not isinstance(v, str):
        raise ScenarioError(f"{what} = {v!r}: expected a string")
    return v


@dataclass
class MachineSpec:
    """What both the model and QEMU boot with."""
    boot_memory: dict[int, int] = field(default_factory=lambda: {0: GiB})
    cmdline: str = ""
    paging_levels: int = 4
    cpu_nodes: dict[int, int] = field(default_factory=lambda: {0: 1})
    slots: int = 8
    maxmem: int = 16 * GiB
    #: the kernel version both sides run ("6.1" or "6.12"; set by for_kernel, not in the TOML)
    kernel: str = "6.1"
    #: "offline": the steps expect hot-added blocks to arrive offline, so on a build whose
    #: default online type is not offline (Debian's 6.12) memhp_default_state=offline is added
    #: to the command line; "config": the build's default is what the scenario checks
    default_online: str = "offline"
    #: the model's build configuration (hotmem.kconfig; None: the version's default, Debian's)
    config: object = None
    #: the guest: "x86_64" (QEMU pc, ACPI DIMMs) or "powerpc64" (QEMU pseries, DLPAR LMBs);
    #: set by for_arch (``hotmem validate --arch``) or the TOML's machine.arch
    arch: str = "x86_64"
    #: powerpc64: the kernel's page size, "64K" (Debian's powerpc64le / -64k builds) or "4K"
    page_size: str | None = None
    #: powerpc64: the MMU QEMU's -cpu gives the guest ("radix": power9)
    mmu: str | None = None

    @property
    def page_shift(self) -> int:
        """PAGE_SHIFT of the guest: kpageflags is indexed by its pfns."""
        return 16 if self.arch == "powerpc64" and (self.page_size or "64K") == "64K" else 12

    @property
    def nr_cpus(self) -> int:
        return sum(self.cpu_nodes.values())

    @property
    def boot_total(self) -> int:
        return sum(self.boot_memory.values())


@dataclass
class Step:
    """One step; ``name`` is unique in the scenario ("add_d1", "online_d1", "write_3", ...)."""
    op: str
    name: str
    dimm: str | None = None
    size: int = 0
    node: int = 0
    addr: int | None = None
    how: str | None = None
    path: str | None = None
    value: str | None = None
    read: bool = True
    block_size: int | None = None       # virtio_mem: the device block size
    requested: int | None = None        # virtio_mem / resize: requested-size
    addr_given: bool = False            # the TOML gave addr (not placed by assign_addresses)


@dataclass
class Scenario:
    name: str
    description: str
    machine: MachineSpec
    steps: list[Step]
    noise_pages: int = 256
    source: str | None = None

    def dimm_layout(self) -> dict[str, tuple[int, int, int]]:
        """dimm -> (addr, size, node) of every DIMM the scenario plugs (addresses resolved)."""
        return {s.dimm: (s.addr, s.size, s.node) for s in self.steps
                if s.op in ("hotplug", "virtio_mem")}

    @property
    def has_virtio_mem(self) -> bool:
        return any(s.op == "virtio_mem" for s in self.steps)

    def to_dict(self) -> dict:
        m = self.machine
        return {"name": self.name, "description": self.description,
                "machine": {"boot_memory": {str(k): v for k, v in m.boot_memory.items()},
                            "cmdline": m.cmdline, "paging_levels": m.paging_levels,
                            "cpus": {str(k): v for k, v in m.cpu_nodes.items()},
                            "slots": m.slots, "maxmem": m.maxmem,
                            **({"arch": m.arch, "page_size": m.page_size, "mmu": m.mmu}
                               if m.arch != "x86_64" else {})},
                "noise_pages": self.noise_pages,
                "steps": [{k: v for k, v in vars(s).items() if v is not None and k != "addr_given"}
                          for s in self.steps]}


def _size(value, what: str) -> int:
    try:
        return parse_size(value)
    except Exception as exc:
        raise ScenarioError(f"{what}: {exc}") from None


def _node_id(k: str, what: str) -> int:
    """A node id key of a per-node table ("0", "1", ...: TOML keys are strings)."""
    if not (k.isascii() and k.isdigit()) or len(k) > 10 or int(k) > INT_MAX:
        raise ScenarioError(f"{what}: node id {k!r} is not a non-negative integer")
    return int(k)


def _per_node(value, what: str, conv) -> dict[int, int]:
    if isinstance(value, dict):
        if not value:
            raise ScenarioError(f"{what} = {{}}: needs at least one node")
        return {_node_id(k, what): conv(v, f"{what}.{k}") for k, v in value.items()}
    return {0: conv(value, what)}


def _int(v, what, hi: int = INT_MAX):
    """A non-negative TOML integer (true/false and 4.0 are not integers)."""
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
        raise ScenarioError(f"{what} = {v!r}: expected a non-negative integer"
                            + (f" up to {hi}" if hi != INT_MAX else ""))
    return v


def _bool(v, what):
    if not isinstance(v, bool):
        raise ScenarioError(f"{what} = {v!r}: expected true or false (a TOML boolean)")
    return v


def _machine(t: dict) -> MachineSpec:
    if not isinstance(t, dict):
        raise ScenarioError(f"machine = {t!r}: expected a table ([machine])")
    unknown = set(t) - {"boot_memory", "cmdline", "paging_levels", "cpus", "slots", "maxmem",
                        "default_online", "arch", "page_size", "mmu"}
    if unknown:
        raise ScenarioError(f"[machine]: unknown keys {sorted(unknown)}")
    m = MachineSpec(
        boot_memory=_per_node(t.get("boot_memory", "1G"), "machine.boot_memory", _size),
        cmdline=_str(t.get("cmdline", ""), "machine.cmdline"),
        paging_levels=_int(t.get("paging_levels", 4), "machine.paging_levels"),
        cpu_nodes=_per_node(t.get("cpus", 1), "machine.cpus", _int),
        slots=_int(t.get("slots", 8), "machine.slots", max(ACPI_MAX_RAM_SLOTS, SPAPR_MAX_RAM_SLOTS)),
        maxmem=_size(t.get("maxmem", "16G"), "machine.maxmem"),
        default_online=_str(t.get("default_online", "offline"), "machine.default_online"))
    if m.default_online not in ("offline", "config"):
        raise ScenarioError(f"machine.default_online = {m.default_online!r}: expected "
                            "\"offline\" or \"config\"")
    _set_arch(m, _str(t.get("arch", "x86_64"), "machine.arch"),
              None if t.get("page_size") is None else _str(t["page_size"], "machine.page_size"),
              None if t.get("mmu") is None else _str(t["mmu"], "machine.mmu"))
    if m.paging_levels not in (4, 5):
        raise ScenarioError(f"machine.paging_levels = {m.paging_levels!r}: expected 4 or 5")
    if m.nr_cpus < 1:
        raise ScenarioError("machine.cpus: at least one CPU")
    if not m.boot_total:
        raise ScenarioError("machine.boot_memory: no boot memory")
    if m.maxmem <= m.boot_total:
        raise ScenarioError(f"machine.maxmem {m.maxmem:#x} must exceed the boot memory")
    return m


_STEP_KEYS = {"hotplug": {"dimm", "size", "node", "addr"}, "online": {"dimm", "how"},
              "offline": {"dimm"}, "write": {"path", "value"}, "eject": {"dimm"}, "read": set(),
              "virtio_mem": {"dimm", "size", "block_size", "requested", "node", "addr"},
              "resize": {"dimm", "requested"}}


def _step(i: int, t: dict, dimms: dict) -> Step:
    op = t.get("op")
    op = ALIASES.get(op, op) if isinstance(op, str) else op
    where = f"steps[{i}]"
    if op not in OPS:
        raise ScenarioError(f"{where}.op = {t.get('op')!r}: expected one of {', '.join(OPS)}")
    unknown = set(t) - _STEP_KEYS[op] - {"op", "name", "read"}
    if unknown:
        raise ScenarioError(f"{where} ({op}): unknown keys {sorted(unknown)}")
    s = Step(op=op, name="", read=_bool(t.get("read", True), f"{where}.read"))
    if op in ("hotplug", "online", "offline", "eject", "virtio_mem", "resize"):
        s.dimm = t.get("dimm")
        if not isinstance(s.dimm, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", s.dimm):
            raise ScenarioError(f"{where}.dimm = {s.dimm!r}: expected an identifier like 'd1'")
        if op in ("hotplug", "virtio_mem"):
            if s.dimm in dimms:
                raise ScenarioError(f"{where}: DIMM {s.dimm!r} is plugged twice")
            s.size = _size(t.get("size", "128M" if op == "hotplug" else "1G"), f"{where}.size")
            s.node = _int(t.get("node", 0), f"{where}.node")
            s.addr = None if t.get("addr") is None else _size(t["addr"], f"{where}.addr")
            s.addr_given = s.addr is not None
        elif s.dimm not in dimms:
            raise ScenarioError(f"{where}: DIMM {s.dimm!r} was never plugged")
        virtio = (dimms[s.dimm].op if s.dimm in dimms else op) == "virtio_mem"
        if op in ("online", "offline", "eject") and virtio:
            raise ScenarioError(f"{where} ({op}): {s.dimm!r} is a virtio-mem device: use "
                                "resize, or write steps for its memory blocks")
        if op == "resize" and not virtio:
            raise ScenarioError(f"{where} (resize): {s.dimm!r} is not a virtio-mem device")
    if op == "virtio_mem":
        s.block_size = _size(t.get("block_size", "2M"), f"{where}.block_size")
        s.requested = _size(t.get("requested", 0), f"{where}.requested")
    if op == "resize":
        s.requested = _size(t.get("requested"), f"{where}.requested")
    if op == "online":
        s.how = t.get("how", "online")
        if s.how not in ONLINE_HOW:
            raise ScenarioError(f"{where}.how = {s.how!r}: expected one of {', '.join(ONLINE_HOW)}")
    if op == "write":
        s.path, s.value = t.get("path"), t.get("value")
        if not isinstance(s.path, str) or not s.path.startswith("/sys/"):
            raise ScenarioError(f"{where}.path = {s.path!r}: expected a /sys path")
        if not isinstance(s.value, str) or not re.fullmatch(r"[A-Za-z0-9_.,:=+-]+", s.value):
            raise ScenarioError(f"{where}.value = {s.value!r}: expected a plain word")
    default = {"hotplug": f"add_{s.dimm}", "online": f"online_{s.dimm}",
               "offline": f"offline_{s.dimm}", "eject": f"remove_{s.dimm}",
               "write": f"write_{i + 1}", "read": f"read_{i + 1}",
               "virtio_mem": f"add_{s.dimm}", "resize": f"resize_{s.dimm}_{i + 1}"}[op]
    s.name = _str(t.get("name", default), f"{where}.name")
    return s


def assign_addresses(sc: Scenario) -> None:
    """Give every DIMM without ``addr`` the address QEMU would: the first gap that fits in the
    device memory region (hw/mem/memory-device.c:memory_device_get_free_addr; the pc machine's
    region starts at 4 GiB rounded up past the above-4G RAM; hw/i386/pc_piix.c:pc_init1 keeps
    RAM below 4 GiB up to 3 GiB once it reaches 0xe0000000)."""
    boot = sc.machine.boot_total
    if sc.machine.arch == "powerpc64":
        # hw/ppc/spapr.c:spapr_machine_init: device memory at ROUND_UP(ram_size, 1 GiB)
        base = -(-boot // SPAPR_DEVICE_MEM_ALIGN) * SPAPR_DEVICE_MEM_ALIGN
        for s in sc.steps:
            if s.op == "virtio_mem":
                raise ScenarioError(f"step {s.name}: virtio-mem on pseries is not driven yet")
            if s.op == "hotplug" and (not s.size or s.size % SPAPR_MEMORY_BLOCK_SIZE):
                raise ScenarioError(f"step {s.name}: DIMM size {s.size:#x} is not a multiple of "
                                    "256 MiB (QEMU spapr_memory_pre_plug, SPAPR_MEMORY_BLOCK_SIZE)")
    else:
        below = 3 * GiB if boot >= 0xE0000000 else boot
        above = boot - below
        base = -(-(4 * GiB + above) // GiB) * GiB
    plugged: dict[str, tuple[int, int]] = {}
    pc_dimms: set = set()                       # the plugged devices that take a DIMM slot
    for s in sc.steps:
        if s.op == "eject":
            plugged.pop(s.dimm, None)
            pc_dimms.discard(s.dimm)
        if s.op not in ("hotplug", "virtio_mem"):
            continue
        if s.op == "hotplug" and sum(1 for d in plugged if d in pc_dimms) >= sc.machine.slots:
            # QEMU will refuse it (pc_dimm_get_free_slot: no free slots): it takes no room,
            # and the walk below stays bounded by the slots (linear parsing)
            s.addr = base if s.addr is None else s.addr
            continue
        if s.op == "hotplug":
            pc_dimms.add(s.dimm)
        # a virtio-mem device is aligned to its block size (memory_device_get_free_addr)
        align = s.block_size if s.op == "virtio_mem" else 1
        if s.addr is None:
            addr = -(-base // align) * align
            for a, n in sorted(plugged.values()):
                if addr + s.size <= a:
                    break
                addr = max(addr, -(-(a + n) // align) * align)
            s.addr = addr
        for other, (a, n) in plugged.items():
            if a < s.addr + s.size and s.addr < a + n:
                raise ScenarioError(f"step {s.name}: DIMM {s.dimm} at {s.addr:#x} overlaps {other}")
        plugged[s.dimm] = (s.addr, s.size)


def parse_scenario(text: str, source: str | None = None) -> Scenario:
    """A scenario from TOML text (raises ScenarioError naming the bad value)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source or 'scenario'}: {exc}") from None
    unknown = set(doc) - {"name", "description", "machine", "steps", "noise_pages"}
    if unknown:
        raise ScenarioError(f"unknown top-level keys {sorted(unknown)}")
    steps_t = doc.get("steps", [])
    if not isinstance(steps_t, list) or not all(isinstance(t, dict) for t in steps_t):
        raise ScenarioError("steps must be an array of tables ([[steps]])")
    if len(steps_t) > MAX_STEPS:
        raise ScenarioError(f"{source or 'scenario'}: {len(steps_t)} steps: at most {MAX_STEPS} "
                            "steps in a scenario")
    dimms: dict[str, Step] = {}
    steps = []
    for i, t in enumerate(steps_t):
        s = _step(i, t, dimms)
        if s.op in ("hotplug", "virtio_mem"):
            dimms[s.dimm] = s
        steps.append(s)
    counts = Counter(s.name for s in steps)           # linear in the number of steps
    dup = sorted({n for n, c in counts.items() if c > 1} | ({"baseline"} & set(counts)))
    if dup:
        raise ScenarioError(f"step names must be unique and not 'baseline': {dup}")
    default_name = Path(source).stem if source else "scenario"
    sc = Scenario(name=_str(doc.get("name", default_name), "name"),
                  description=_str(doc.get("description", ""), "description"),
                  machine=_machine(doc.get("machine", {})), steps=steps,
                  noise_pages=_int(doc.get("noise_pages", 256), "noise_pages"), source=source)
    assign_addresses(sc)
    return sc


#: the kernel versions ``hotmem validate --kernel-version`` boots (Debian's builds)
KERNEL_VERSIONS = ("6.1", "6.12")


def for_kernel(sc: Scenario, version: str, config=None) -> Scenario:
    """``sc`` as run on Debian's ``version`` build, in QEMU and in the model (a copy);
    ``config`` gives the model another build configuration (hotmem simulate --config).

    Where that build's default online type is not offline (6.12: CONFIG_MHP_DEFAULT_ONLINE_TYPE_
    ONLINE_AUTO=y) and the scenario expects offline blocks (``default_online = "offline"``, the
    default) without a memhp_default_state= of its own, ``memhp_default_state=offline`` is added
    to the command line of both sides."""
    import copy

    from hotmem.kconfig import get_config
    from hotmem.kernel import get_policy
    if version not in KERNEL_VERSIONS:
        raise ScenarioError(f"kernel version {version!r}: expected one of "
                            f"{', '.join(KERNEL_VERSIONS)}")
    out = copy.deepcopy(sc)
    out.machine.kernel = version
    out.machine.config = config
    cfg = get_config(config, get_policy(version))
    words = out.machine.cmdline.split()
    if (out.machine.default_online == "offline" and cfg.mhp_default_online_type != "offline"
            and not any(w.startswith("memhp_default_state=") for w in words)):
        out.machine.cmdline = " ".join(words + ["memhp_default_state=offline"])
    return out


def for_arch(sc: Scenario, arch: str, page_size: str | None = None,
             mmu: str | None = None) -> Scenario:
    """``sc`` on another guest (``hotmem validate --arch powerpc64 --page-size 4K``): a copy with
    the machine's arch, page size and MMU set, and its DIMMs placed again as that board's QEMU
    places them (assign_addresses). Raises ScenarioError naming a bad value."""
    import copy
    out = copy.deepcopy(sc)
    _set_arch(out.machine, arch, page_size, mmu)
    for s in out.steps:
        if s.op in ("hotplug", "virtio_mem") and not s.addr_given:
            s.addr = None
    assign_addresses(out)
    return out


def load_scenario(path) -> Scenario:
    """parse_scenario of a file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path}: {exc.strerror}", exc.errno or errno.EIO) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text (byte {data[exc.start]:#04x} at offset "
                            f"{exc.start}); TOML files are UTF-8") from None
    return parse_scenario(text, str(path))


def blocks_of(addr: int, size: int, block_size: int) -> list[int]:
    """The memory block ids a DIMM covers."""
    return list(range(addr // block_size, (addr + size) // block_size))
