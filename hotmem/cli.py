"""Command line: ``hotmem [costs] [--paging-levels 4|5]``.

``costs`` (the default) prints, for every memory block size of the architecture,
the memmap a block needs, whether 6.1's memmap_on_memory alignment tests pass, and
the page-table pages a hot-add of such a block costs -- all from the arch
profile's formulas, no simulation.
"""
from __future__ import annotations

import argparse
import sys

import hotmem
from hotmem.arch import ARCHES, ArchProfile, get_arch
from hotmem.arch.base import IS_ALIGNED
from hotmem.errors import HotplugError

COMMANDS = ("costs",)


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotmem", description="A byte-accurate model of Linux memory hotplug "
        "with memmap_on_memory. Without a command, runs 'compare'.")
    parser.add_argument("--version", action="version", version=f"hotmem {hotmem.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="command")
    compare = sub.add_parser("compare", help="a hot-add plan with memmap on memory and with a "
                             "regular memmap, side by side (the default command)")
    compare.add_argument("--dimms", default="128M,128M,128M,128M",
                         help="comma-separated DIMM sizes hot-added at 4 GiB (default: %(default)s)")
    compare.add_argument("--backend", choices=("compiled", "python"), default=None,
                         help="core backend (default: compiled, or $HOTMEM_BACKEND)")
    costs = sub.add_parser("costs", help="memmap and page-table costs per memory block size")
    costs.add_argument("--arch", default="x86_64", choices=sorted(ARCHES),
                       help="architecture (default: %(default)s)")
    costs.add_argument("--paging-levels", type=int, default=4, choices=(4, 5),
                       help="x86_64 paging levels (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``hotmem`` and ``python -m hotmem``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "compare")           # `compare` is the default command
    args = _parser().parse_args(argv)
    try:
        if args.command == "compare":
            from hotmem.report import render_comparison
            sys.stdout.write(render_comparison(tuple(args.dimms.split(",")), backend=args.backend))
        elif args.command == "costs":
            arch = get_arch(args.arch, paging_levels=args.paging_levels)
            sys.stdout.write(render_costs(arch))
    except HotplugError as exc:
        print(f"hotmem: {exc}", file=sys.stderr)
        return 1
    return 0
