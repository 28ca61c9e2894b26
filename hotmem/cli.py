"""Command line: ``hotmem [compare|lsmem|costs|validate|simulate] ...``.

``compare`` (the default) runs the main job: a hot-add plan with memmap on memory and with a
regular memmap, what each costs (hotmem/report.py; ``--json``, ``--plot FILE.png``). ``lsmem``
lists the memory blocks after a plan like util-linux lsmem (hotmem/lsmem.py). ``costs`` prints,
for every memory block size of the architecture, the memmap a block needs, whether 6.1's
memmap_on_memory alignment tests pass, and the page-table pages a hot-add of such a block costs
-- all from the arch profile's formulas, no simulation. ``validate SCENARIO.toml`` diffs the
model with a real kernel booted in QEMU (hotmem/validate); ``simulate SCENARIO.toml`` runs a
scenario in the model only.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys

import hotmem
from hotmem.arch import ARCHES, ArchProfile, get_arch
from hotmem.arch.base import IS_ALIGNED
from hotmem.boundary import show
from hotmem.errors import HotplugError

COMMANDS = ("compare", "lsmem", "costs", "validate", "simulate", "sweep", "export", "capture",
            "mount")


def iec(n: int) -> str:
    """``n`` bytes in the largest binary unit that divides it exactly ("128 MiB")."""
    for shift, unit in ((50, "PiB"), (40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} B"


def per_block(size: int, coverage: int) -> str:
    """Tables of ``coverage`` bytes each that an aligned block of ``size`` bytes needs:
    "2" when the block spans two tables, "1/8" when one table serves eight blocks."""
    return str(size // coverage) if size >= coverage else f"1/{coverage // size}"


def memmap_on_memory_alignment(arch: ArchProfile, size: int) -> tuple[bool, bool]:
    """The two alignment tests of mm/memory_hotplug.c:mhp_supports_memmap_on_memory (6.1):
    the memmap fills whole PMDs, and what is left of the block is whole pageblocks."""
    vmemmap_size = arch.memmap_size(size)
    return (IS_ALIGNED(vmemmap_size, arch.PMD_SIZE),
            IS_ALIGNED(size - vmemmap_size, arch.pageblock_nr_pages << arch.page_shift))


def _yes(ok: bool) -> str:
    return "yes" if ok else "no"


def render_costs(arch: ArchProfile) -> str:
    """The ``costs`` report as text."""
    out = [
        f"hotmem {hotmem.__version__}: memory block costs on {arch.name}, "
        f"{arch.paging_levels}-level paging (Linux 6.1 formulas)",
        f"PAGE_SIZE {arch.PAGE_SIZE} B, sizeof(struct page) {arch.struct_page_size} B, "
        f"PMD_SIZE {iec(arch.PMD_SIZE)}, pageblock {arch.pageblock_nr_pages} pages "
        f"({iec(arch.pageblock_nr_pages << arch.page_shift)}), "
        f"section {iec(arch.MIN_MEMORY_BLOCK_SIZE)}",
        f"VMEMMAP_START {arch.vmemmap_start:#x}, PAGE_OFFSET {arch.page_offset:#x}, "
        f"MAX_PHYSMEM_BITS {arch.max_physmem_bits}",
        "",
        "memmap per block (with memmap_on_memory it is taken from the start of the block)",
    ]
    head = ("{:>9}  {:>12}  {:>8}  {:>8}  {:>8}  {:>8}  {:>10}  {:>10}")
    out.append(head.format("block", "memmap", "memmap", "memmap", "usable", "memmap",
                           "remainder", "6.1 mom"))
    out.append(head.format("size", "[bytes]", "[pages]", "[% blk]", "[pages]", "PMD-algn",
                           "pgblk-algn", "alignment"))
    for size in arch.memory_block_sizes:
        memmap = arch.memmap_size(size)
        pages = arch.memmap_pages(size)
        pmd_ok, pageblock_ok = memmap_on_memory_alignment(arch, size)
        out.append(head.format(
            iec(size), memmap, pages, f"{100 * memmap / size:.4f}",
            arch.PFN_DOWN(size) - pages, _yes(pmd_ok), _yes(pageblock_ok),
            "pass" if pmd_ok and pageblock_ok else "fail"))

    levels = [lv for lv in ("pmd", "pud", "p4d") if not arch.folded(lv)]
    cols = [(f"vmemmap {lv.upper()}", arch.vmemmap_table_coverage(lv)) for lv in levels]
    cols += [(f"dmap {lv.upper()}", arch.direct_map_table_coverage(lv)) for lv in levels]
    width = 14
    out += [
        "",
        f"page-table pages per hot-added block ({iec(arch.PAGE_SIZE)} each; "
        "1/N: one per N blocks, the first in its window pays)",
        f"{'block':>9}" + "".join(f"  {name:>{width}}" for name, _ in cols)
        + f"  {'DirectMap2M':>{width}}",
        f"{'size':>9}" + "".join(f"  {'[' + iec(cov) + '/tbl]':>{width}}" for _, cov in cols)
        + f"  {'[leaves]':>{width}}",
    ]
    for size in arch.memory_block_sizes:
        out.append(f"{iec(size):>9}"
                   + "".join(f"  {per_block(size, cov):>{width}}" for _, cov in cols)
                   + f"  {size // arch.PMD_SIZE:>{width}}")
    out += [
        "",
        "notes: '6.1 mom alignment' = the two alignment tests of mhp_supports_memmap_on_memory;",
        "  6.1 also needs memory_hotplug.memmap_on_memory=1 and an add of exactly one block.",
        "  usable = the block's pages left after its memmap (what onlining gives the buddy).",
        "  Page-table pages come from the buddy allocator, never from the altmap; the direct",
        "  map (dmap) is counted with 2 MiB leaves (no 1 GiB pages).",
    ]
    return "\n".join(out) + "\n"


# -- compare and lsmem: a machine and a hot-add plan from the command line ------------------------

def _config_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, metavar="PRESET|FILE",
                   help="the kernel's build configuration: a preset (debian, defconfig) or a "
                   ".config file (/boot/config-*) to read CONFIG_MHP_DEFAULT_ONLINE_TYPE_* / "
                   "CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE and CONFIG_MHP_MEMMAP_ON_MEMORY from "
                   "(default: the version's, Debian's build for 6.1 and 6.12)")


def config_arg(value):
    """--config: None, a preset name, or the KernelConfig of a .config file."""
    import os
    from hotmem.kconfig import PRESETS, parse_config
    if value is None or value in PRESETS:
        return value
    if os.path.isfile(value):
        with open(value) as f:
            return parse_config(f.read(), os.path.basename(value), value)
    raise HotplugError(22, f"--config {value!r}: neither a preset ({', '.join(PRESETS)}) nor a "
                       "file")


def _machine_arguments(p: argparse.ArgumentParser) -> None:
    """The machine and hot-add plan options shared by ``compare`` and ``lsmem``."""
    p.add_argument("--dimms", default=None,
                   help="comma-separated DIMM sizes, hot-added one after the other above boot "
                   "RAM: ACPI DIMMs on x86_64 and arm64, LMBs added by DLPAR on powerpc64, "
                   "standby memory onlined block by block on s390x (default: four DIMMs of one "
                   "memory block each: 128M,128M,128M,128M on x86_64)")
    p.add_argument("--nodes", default="0", help="comma-separated node of each DIMM, cycled; a "
                   "node without boot memory is memoryless (default: %(default)s)")
    p.add_argument("--boot-memory", default="1G", metavar="SIZES",
                   help="boot RAM of node 0,1,... (default: %(default)s)")
    p.add_argument("--block-size", default=None, metavar="SIZE",
                   help="memory block size; boot RAM is raised until x86_64 probes it")
    p.add_argument("--online-type", default=None,
                   choices=("online", "online_kernel", "online_movable", "offline"),
                   help="how each hot-added block is onlined (default: online_movable; "
                   "powerpc64: dlpar_add_lmb onlines each LMB itself, 'online' only)")
    p.add_argument("--kernel", default="6.1", help="kernel version (default: %(default)s)")
    _config_argument(p)
    p.add_argument("--arch", default="x86_64", help="architecture (default: %(default)s)")
    p.add_argument("--page-size", default=None, choices=("4K", "16K", "64K"),
                   help="base page size (arm64: 4K, 16K or 64K; powerpc64: 64K)")
    p.add_argument("--mmu", default=None, choices=("radix", "hash"),
                   help="powerpc64 MMU (default: radix)")
    p.add_argument("--paging-levels", type=int, default=None, help="page-table levels")
    p.add_argument("--backend", choices=("compiled", "python"), default=None,
                   help="core backend (default: compiled, or $HOTMEM_BACKEND)")
    p.add_argument("--driver", choices=("platform", "virtio-mem"), default="platform",
                   help="who adds the memory: the platform's way (ACPI DIMMs, DLPAR, "
                   "standby; default) or one virtio-mem device whose requested size is "
                   "the DIMMs' sum")
    p.add_argument("--virtio-block-size", default=None, metavar="SIZE",
                   help="virtio-mem device block size (default: QEMU's, 2M)")


def _list_arg(text, flag: str) -> tuple[str, ...]:
    """A comma-separated option value: no empty items ("128M,,128M", ",,," and "" are EINVAL)."""
    items = tuple(text.split(","))
    if not text or any(not i.strip() for i in items):
        raise HotplugError(errno.EINVAL, f"{flag} {show(text)}: expected a comma-separated list "
                           "without empty items")
    return tuple(i.strip() for i in items)


def _sizes_arg(text, flag: str) -> tuple[str, ...]:
    """A comma-separated list of sizes, each checked as memparse reads it."""
    from hotmem.boundary import as_size
    items = _list_arg(text, flag)
    for i in items:
        as_size(i, f"{flag} item")
    return items


def _nodes_arg(text, flag: str = "--nodes") -> tuple[int, ...]:
    """A comma-separated list of node ids (ASCII decimal; the Machine bounds them by
    MAX_NUMNODES)."""
    items = _list_arg(text, flag)
    for i in items:
        if not (i.isascii() and i.isdigit()) or len(i) > 10:
            raise HotplugError(errno.EINVAL, f"{flag} {show(text)}: node id {show(i)} is not a "
                               "non-negative integer")
    return tuple(int(i) for i in items)


def _output_path(path: str, flag: str, extensions=None) -> str:
    """Check an output file before any work is done: its directory exists, it is not a directory
    itself, and (for a plot) its extension is a format the writer knows."""
    if not path:
        raise HotplugError(errno.ENOENT, f"{flag} {show(path, 300)}: empty file name")
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise HotplugError(errno.EISDIR, f"{flag} {show(path, 300)}: is a directory (give a file name)")
    if not os.path.isdir(parent):
        err = errno.ENOTDIR if os.path.exists(parent) else errno.ENOENT
        raise HotplugError(err, f"{flag} {show(path, 300)}: directory {show(parent, 300)} "
                           + ("is not a directory" if err == errno.ENOTDIR else "does not exist"))
    if not os.access(parent, os.W_OK):
        raise HotplugError(errno.EACCES, f"{flag} {show(path, 300)}: directory {show(parent, 300)} is "
                           "not writable")
    if extensions is not None:
        ext = os.path.splitext(path)[1].lstrip(".").lower()
        if ext not in extensions:
            raise HotplugError(errno.EINVAL, f"{flag} {show(path, 300)}: unknown image format "
                               f"{show(ext)} (one of {', '.join(sorted(extensions))})")
    return path


def _plot_formats():
    """The file formats matplotlib's Agg canvas writes (None without matplotlib: plot() says
    how to install it)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        raise HotplugError(errno.ENOENT, "--plot needs matplotlib: pip install 'hotmem[plot]'") \
            from None
    return set(Figure().canvas.get_supported_filetypes())


def _plan(args, **kw):
    from hotmem.report import Plan, hotplug_kind
    if hotplug_kind(args.arch) == "dlpar":
        if args.online_type not in (None, "online"):
            raise HotplugError(22, f"powerpc64: dlpar_add_lmb onlines each LMB itself "
                               f"(MMOP_ONLINE, the default zone): --online-type "
                               f"{args.online_type} does not apply")
        args.online_type = "online"
    args.online_type = args.online_type or "online_movable"
    if args.block_size is not None:
        from hotmem.boundary import as_size
        as_size(args.block_size, "--block-size")
    plan = Plan(dimms=() if args.dimms is None else _sizes_arg(args.dimms, "--dimms"),
                nodes=_nodes_arg(args.nodes),
                boot_memory=_sizes_arg(args.boot_memory, "--boot-memory"),
                block_size=args.block_size,
                kernel=args.kernel, arch=args.arch, paging_levels=args.paging_levels,
                online_type=args.online_type, memmap_on_memory=args.memmap_on_memory,
                backend=args.backend, page_size=args.page_size, mmu=args.mmu,
                config=config_arg(args.config), **kw)
    if args.dimms is None:
        # four DIMMs of one memory block each, on whatever block size the box probes
        bs = plan.machine(True).memory_block_size_bytes
        plan.dimms = (f"{bs >> 30}G" if bs % (1 << 30) == 0 else f"{bs >> 20}M",) * 4
    return plan


def _compare(args) -> None:
    """``hotmem compare``: the report as a table, JSON, and optionally a plot."""
    from hotmem import report
    if args.online_type == "offline":
        raise HotplugError(22, "compare onlines every block: --online-type offline is for lsmem")
    if args.plot is not None:
        _output_path(args.plot, "--plot", _plot_formats())
    if args.driver == "virtio-mem":
        from hotmem.report.virtio_mem import compare_virtio_mem, render_virtio_mem, to_json
        plan = _plan(args, fragment=False)
        rep = compare_virtio_mem(plan, args.virtio_block_size, plan.online_type)
        sys.stdout.write(to_json(rep) if args.json else render_virtio_mem(rep))
        return
    costs_for = args.costs_for if args.costs_for is not None else \
        ("1G,2G,4G,8G,16G" if args.plot else "16G")
    cmp = report.compare(_plan(args, fragment=not args.no_fragment,
                               costs_for=_sizes_arg(costs_for, "--costs-for")))
    sys.stdout.write(report.to_json(cmp) if args.json else report.render_text(cmp))
    if args.plot:
        report.plot(cmp, args.plot)
        print(f"hotmem: plot written to {args.plot}", file=sys.stderr)


def _lsmem(args) -> None:
    """``hotmem lsmem``: hot-add the plan's DIMMs, online them, and list the memory blocks
    (powerpc64: DLPAR adds and onlines each LMB; s390x: the DIMMs are standby memory, added
    offline at boot, onlined here)."""
    from hotmem.lsmem import parse_columns, render_lsmem
    from hotmem.report import machine_hotplug_kind, progress
    columns = parse_columns(getattr(args, "output", None))
    plan = _plan(args)
    m = plan.machine(args.memmap_on_memory not in ("0", "n", "N", "off"))
    addr, bs = plan.first_address(m), m.memory_block_size_bytes
    kind = machine_hotplug_kind(m)
    if kind == "standby" and any(plan.node_of(i) for i in range(len(plan.dimms))):
        raise HotplugError(22, "s390x: sclp adds standby memory to node 0 (no NUMA): --nodes 0")
    bar = progress(len(plan.dimms), "hotmem lsmem")
    if args.driver == "virtio-mem":         # one virtio-mem device plugs the DIMMs' sum
        if args.online_type != "offline":
            m.sysfs.write("/sys/devices/system/memory/auto_online_blocks", args.online_type)
        total = sum(plan.sizes())
        m.virtio_mem_device(region_size=max(1 << 30, -(-total // (1 << 30)) << 30),
                            block_size=args.virtio_block_size, node=plan.node_of(0),
                            requested_size=total)
        plan.dimms = ()
    for i, size in enumerate(plan.sizes()):
        if kind == "dlpar":                 # pseries: LMB by LMB, each onlined by DLPAR
            from hotmem.arch.powerpc64_init import dlpar_add_lmb
            if size % bs:
                raise HotplugError(22, f"powerpc64: DLPAR adds whole LMBs of {bs >> 20} MiB")
            for lmb in range(addr, addr + size, bs):
                dlpar_add_lmb(m, lmb, plan.node_of(i))
        elif kind == "acpi":
            m.acpi_memory_hotplug(addr, size, node=plan.node_of(i))
        # s390x: the standby blocks were added (offline) at boot; onlining is the hot-add
        if kind != "dlpar" and args.online_type != "offline":
            for b in range(addr // bs, (addr + size) // bs):
                m.sysfs.write(f"/sys/devices/system/memory/memory{b}/state", args.online_type)
        addr += size
        bar.update()
    bar.close()
    if args.command == "export":            # the same machine, written as a sysroot tree
        print(f"hotmem: exported to {m.export(args.dir)}", file=sys.stderr)
        return
    if args.command == "mount":             # the same machine, live through FUSE
        from hotmem.mount import fuse_unavailable, install_fuse, mount
        if args.install and fuse_unavailable():
            install_fuse(lambda msg: print(msg, file=sys.stderr))
        m = _scenario_machine(args.scenario) if args.scenario else m
        print(f"hotmem: serving the machine at {args.dir} (umount {args.dir} to stop)",
              file=sys.stderr)
        return mount(m, args.dir)
    sys.stdout.write(render_lsmem(m, columns, list_all=args.all, bytes=args.bytes,
                                  json=args.json, noheadings=args.noheadings,
                                  summary="never" if args.json else args.summary))


def _scenario_machine(path):
    """The model Machine after a scenario's steps (hotmem/validate/runner.py)."""
    from hotmem.validate import load_scenario
    from hotmem.validate.runner import _model_step, model_machine
    sc = load_scenario(path)
    m, devices = model_machine(sc), {}
    for step in sc.steps:
        _model_step(m, sc, step, devices)
    return m


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotmem", description="A byte-accurate model of Linux memory hotplug "
        "with memmap_on_memory. Without a command, runs 'compare'.")
    parser.add_argument("--version", action="version", version=f"hotmem {hotmem.__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of a refusal (also: HOTMEM_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="command")
    compare = sub.add_parser("compare", help="a hot-add plan with memmap on memory and with a "
                             "regular memmap, side by side (the default command)")
    _machine_arguments(compare)
    compare.add_argument("--memmap-on-memory", default="1", metavar="1|force",
                         help="the altmap side's memory_hotplug.memmap_on_memory (force: 6.6+)")
    compare.add_argument("--costs-for", default=None, metavar="SIZES",
                         help="sizes for 'what hot-adding N costs' (default: 16G; with --plot: "
                         "1G,2G,4G,8G,16G)")
    compare.add_argument("--no-fragment", action="store_true",
                         help="skip the fragmented-node runs (drawback c)")
    compare.add_argument("--json", action="store_true", help="print the report as JSON")
    compare.add_argument("--plot", metavar="FILE.png",
                         help="also draw overhead vs size and memmap per node (needs matplotlib)")
    lsmem = sub.add_parser("lsmem", help="the memory blocks after a hot-add plan, like "
                           "util-linux lsmem (with NODE, ZONES and MEMMAP-ON-MEMORY)")
    _machine_arguments(lsmem)
    lsmem.add_argument("--memmap-on-memory", default="1", metavar="0|1|force",
                       help="memory_hotplug.memmap_on_memory (default: %(default)s)")
    lsmem.add_argument("-o", "--output", metavar="LIST",
                       help="columns (RANGE,SIZE,STATE,REMOVABLE,BLOCK,NODE,ZONES,"
                       "MEMMAP-ON-MEMORY; '+LIST' adds to lsmem's defaults); default: all")
    lsmem.add_argument("-a", "--all", action="store_true", help="list each memory block")
    lsmem.add_argument("-b", "--bytes", action="store_true", help="SIZE in bytes")
    lsmem.add_argument("-J", "--json", action="store_true", help="JSON output")
    lsmem.add_argument("-n", "--noheadings", action="store_true", help="no headings")
    lsmem.add_argument("--summary", nargs="?", const="only", default="always",
                       choices=("always", "never", "only"), help="summary lines")
    export = sub.add_parser("export", help="the /sys and /proc of the machine after a hot-add "
                            "plan, written as a sysroot tree (lsmem --sysroot DIR)")
    export.add_argument("dir", help="a new or empty directory")
    _machine_arguments(export)
    export.add_argument("--memmap-on-memory", default="1", metavar="0|1|force")
    capture = sub.add_parser("capture", help="describe the running machine for the model "
                             "(/sys/firmware/memmap, nodes, /proc/cmdline) as TOML")
    capture.add_argument("-o", "--output", help="write the TOML here (default: stdout)")
    capture.add_argument("--root", default="/", help="the root to read (default: /)")
    mnt = sub.add_parser("mount", help="the tree of export live through FUSE: writes to state, "
                         "online and auto_online_blocks act on the machine")
    mnt.add_argument("dir", metavar="MOUNTPOINT")
    mnt.add_argument("scenario", nargs="?", help="a scenario TOML whose steps run first")
    _machine_arguments(mnt)
    mnt.add_argument("--memmap-on-memory", default="1", metavar="0|1|force")
    mnt.add_argument("--install", action="store_true",
                     help="apt-get install libfuse3-3 and fuse3 if missing (root)")
    costs = sub.add_parser("costs", help="memmap and page-table costs per memory block size")
    costs.add_argument("--arch", default="x86_64", choices=sorted(ARCHES),
                       help="architecture (default: %(default)s)")
    costs.add_argument("--paging-levels", type=int, default=4, choices=(4, 5),
                       help="x86_64 paging levels (default: %(default)s)")
    validate = sub.add_parser(
        "validate", help="run a scenario on a real Linux in QEMU and in the model; diff them",
        description="Boot a real kernel in QEMU (TCG), run the scenario there and in the model, "
        "and print the diff of every observable. Exits 1 on any exact mismatch. SCENARIO may "
        "also be a recording (--record output): then the model is diffed with it, no QEMU.")
    validate.add_argument("scenario", metavar="SCENARIO", help="scenario .toml (or recorded .json)")
    validate.add_argument("--kernel", metavar="PATH", help="bzImage to boot (default: Debian's "
                          "linux-image-6.1.0-*-amd64-unsigned, fetched with apt-get download)")
    validate.add_argument("--kernel-version", default="6.1", choices=("6.1", "6.12"),
                          help="Debian build to boot and model: 6.1 (Debian 12, "
                          "linux-image-6.1.0-*-amd64-unsigned) or 6.12 (Debian 13, "
                          "linux-image-6.12.*+deb13-amd64-unsigned through the project's own "
                          "apt state); default: %(default)s")
    validate.add_argument("--arch", choices=("x86_64", "powerpc64"), default=None,
                          help="the guest: x86_64 (QEMU pc, ACPI DIMMs; the default) or powerpc64 "
                          "(QEMU pseries with a POWER9, Debian's ppc64el kernel; DIMMs arrive as "
                          "DLPAR LMBs); default: the scenario's machine.arch")
    validate.add_argument("--page-size", choices=("64K", "4K"), default=None,
                          help="powerpc64: the kernel's page size (6.1: 64K only; 6.12: "
                          "-powerpc64le-64k or -powerpc64le); default: 64K")
    validate.add_argument("--record", metavar="DIR", help="store the real readings as JSON here")
    validate.add_argument("--install", action="store_true",
                          help="apt-get install missing QEMU/busybox-static/cpio (root)")
    validate.add_argument("--strict", action="store_true",
                          help="count boot-description differences as mismatches too")
    validate.add_argument("-v", "--verbose", action="store_true",
                          help="list every observable, equal ones included")
    simulate = sub.add_parser("simulate", help="run a scenario in the model only and print the "
                              "readings after each step")
    simulate.add_argument("scenario", metavar="SCENARIO", help="scenario .toml")
    simulate.add_argument("--full", action="store_true",
                          help="print /proc files and node meminfo in full")
    simulate.add_argument("--kernel-version", default="6.1", choices=("6.1", "6.12"),
                          help="the Debian build to model (as validate; default: %(default)s)")
    _config_argument(simulate)
    simulate.add_argument("--json", metavar="FILE",
                          help="also write the readings as JSON (the --record format)")
    from hotmem.sweep.cli import add_parser as add_sweep_parser
    add_sweep_parser(sub)
    return parser


def _validate(args) -> int:
    from hotmem.validate import (ScenarioError, calibrated_model, diff_runs, load_scenario,
                                 render_report, run_qemu)
    from hotmem.validate.scenario import for_arch, for_kernel
    from hotmem.validate import record
    from hotmem.validate.assets import SetupError
    from hotmem.validate.qemu import GuestError
    log = lambda msg: print(msg, file=sys.stderr, flush=True)
    try:
        if args.scenario.endswith(".json"):
            sc, real = record.load(args.scenario)
        else:
            sc = for_kernel(load_scenario(args.scenario), args.kernel_version)
            if args.arch or args.page_size:
                sc = for_arch(sc, args.arch or sc.machine.arch, args.page_size)
    except (ScenarioError, ValueError, OSError) as exc:
        print(f"hotmem: {error_line(exc)}", file=sys.stderr)
        return 2
    try:
        if not args.scenario.endswith(".json"):
            real = run_qemu(sc, kernel=args.kernel, log=log, install=args.install)
            if args.record:
                text = open(args.scenario).read()
                log(f"hotmem validate: recorded {record.save(args.record, sc, real, text)}")
    except (SetupError, GuestError, OSError) as exc:
        print(f"hotmem validate: cannot run the real kernel: {exc}", file=sys.stderr)
        return 3
    model = calibrated_model(sc, real)
    diff = diff_runs(sc, model, real)
    sys.stdout.write(render_report(sc, model, real, diff, verbose=args.verbose,
                                   strict=args.strict))
    return 0 if diff.ok(args.strict) else 1


def _simulate(args) -> int:
    from hotmem.validate import ScenarioError, load_scenario, run_model
    from hotmem.validate import record
    from hotmem.validate.scenario import for_kernel
    from hotmem.validate.simulate import render_simulation
    try:
        sc = for_kernel(load_scenario(args.scenario), args.kernel_version, config_arg(args.config))
    except (ScenarioError, HotplugError) as exc:
        print(f"hotmem: {error_line(exc)}", file=sys.stderr)
        return 2
    if args.json:
        _output_path(args.json, "--json")
    run = run_model(sc)
    sys.stdout.write(render_simulation(sc, run, full=args.full))
    if args.json:
        record.save(args.json, sc, run, open(args.scenario).read())
    return 0


def error_line(exc: BaseException) -> str:
    """The one line the CLI prints for a refusal: ``ERRNO: message``."""
    from hotmem.validate import ScenarioError
    if isinstance(exc, HotplugError):
        return str(exc)
    if isinstance(exc, ScenarioError):
        return f"{errno.errorcode.get(exc.errno, 'EINVAL')}: {exc}"
    if isinstance(exc, OSError) and exc.errno:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        where = f": {show(exc.filename, 300)}" if exc.filename is not None else \
            (" (writing the output to stdout)" if exc.errno in (errno.ENOSPC, errno.EPIPE) else "")
        return f"{name}: {exc.strerror}{where}"
    if isinstance(exc, MemoryError):
        return "ENOMEM: out of memory (the machine described is too large for this host)"
    return (f"internal error: {type(exc).__name__}: {exc} (a hotmem bug: run with --debug or "
            "HOTMEM_DEBUG=1 for the traceback)")


def _debug_wanted(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("HOTMEM_DEBUG", "") not in ("", "0")


def _silence_stdout() -> None:
    """After stdout failed (a full device, a closed pipe): send what is still buffered to
    /dev/null so that the interpreter's last flush does not print a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _run(args) -> int:
    if args.command == "compare":
        _compare(args)
    elif args.command in ("lsmem", "export", "mount"):
        _lsmem(args)
    elif args.command == "capture":
        from hotmem.host import capture
        if args.output:
            _output_path(args.output, "-o")
        host = capture(args.root)
        for note in host.notes:
            print(f"hotmem: {note}", file=sys.stderr)
        if args.output:
            with open(args.output, "w") as f:
                f.write(host.to_toml())
        else:
            sys.stdout.write(host.to_toml())
    elif args.command == "costs":
        arch = get_arch(args.arch, paging_levels=args.paging_levels)
        sys.stdout.write(render_costs(arch))
    elif args.command == "validate":
        return _validate(args)
    elif args.command == "simulate":
        return _simulate(args)
    elif args.command == "sweep":
        from hotmem.sweep.cli import main as sweep_main
        return sweep_main(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``hotmem`` and ``python -m hotmem``; returns the exit status.

    A refused input prints one line ``hotmem: ERRNO: message`` on stderr (argparse's usage
    error for a malformed command line) and gives a non-zero status; ``--debug`` (anywhere on
    the command line) or ``HOTMEM_DEBUG=1`` lets the exception through with its traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_wanted(argv)
    argv = [a for a in argv if a != "--debug"]
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "compare")           # `compare` is the default command
    args = _parser().parse_args(argv)
    try:
        rc = _run(args)
        try:
            sys.stdout.flush()              # a full device or a closed pipe fails here
        except OSError as exc:
            raise HotplugError(exc.errno or errno.EIO, f"writing the output to stdout: "
                               f"{exc.strerror}") from exc
        return rc
    except Exception as exc:
        if debug:
            raise
        if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EPIPE, errno.EIO):
            _silence_stdout()
        print(f"hotmem: {error_line(exc)}", file=sys.stderr)
        from hotmem.validate import ScenarioError
        return 2 if isinstance(exc, ScenarioError) else 1
