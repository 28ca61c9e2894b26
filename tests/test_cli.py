"""The command line: `hotmem compare` (the default main job) and `hotmem costs`, in-process and
as `python -m hotmem`.

Expected numbers are hand values: a block of S bytes has S/4096 struct pages of 64 B.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hotmem.cli import main

REPO = Path(__file__).resolve().parents[1]
GiB = 1 << 30


def rows(text: str, size: str) -> list[list[str]]:
    """The table rows whose first cell is ``size`` ("128 MiB"), split into cells."""
    value, unit = size.split()
    return [line.split()[2:] for line in text.splitlines()
            if line.split()[:2] == [value, unit]]


def run(capsys, argv):
    assert main(argv) == 0
    return capsys.readouterr().out


def test_costs_memmap_table(capsys):
    out = run(capsys, ["costs"])
    assert "x86_64, 4-level paging" in out
    memmap, _ = rows(out, "128 MiB")
    # 32768 pages x 64 B = 2 MiB = 512 pages, 1/64 of the block; 32768 - 512 usable.
    assert memmap == ["2097152", "512", "1.5625", "32256", "yes", "yes", "pass"]
    memmap, _ = rows(out, "2 GiB")
    # 524288 pages x 64 B = 32 MiB = 8192 pages; 524288 - 8192 usable.
    assert memmap == ["33554432", "8192", "1.5625", "516096", "yes", "yes", "pass"]
    memmap, _ = rows(out, "1 GiB")
    assert memmap[:2] == [str(GiB // 4096 * 64), str(GiB // 262144)]



def test_costs_page_table_table(capsys):
    out = run(capsys, ["costs"])
    assert "vmemmap PMD" in out and "[64 GiB/tbl]" in out and "[32 TiB/tbl]" in out
    assert "[1 GiB/tbl]" in out and "[512 GiB/tbl]" in out
    _, tables = rows(out, "128 MiB")
    # 64 GiB / 128 MiB = 512; 32 TiB / 128 MiB = 262144; 1 GiB / 128 MiB = 8;
    # 512 GiB / 128 MiB = 4096; 128 MiB / 2 MiB = 64 DirectMap2M leaves.
    assert tables == ["1/512", "1/262144", "1/8", "1/4096", "64"]
    _, tables = rows(out, "2 GiB")
    # a 2 GiB block spans two direct-map PMD tables and 1024 2 MiB leaves.
    assert tables == ["1/32", "1/16384", "2", "1/256", "1024"]
    assert "P4D" not in out                       # folded with 4-level paging


def compare_rows(text):
    return {line[:46].strip(): line[46:].split() for line in text.splitlines()
            if line.startswith("  ") and len(line) > 46}


def test_compare_is_the_default_command(capsys):
    out = run(capsys, [])
    assert out == run(capsys, ["compare"])
    r = compare_rows(out)
    # 4 blocks of 128 MiB: 512 memmap pages each (32768 x 64 B / 4096), from the range itself
    # with memmap on memory, from the buddy without; managed = 32768 - 512 resp. 32768 per block
    assert r["memmap pages taken from the added range"][:2] == ["2048", "0"]
    assert r["memmap pages taken from the buddy"][:2] == ["0", "2048"]
    assert r["managed pages added (MemTotal)"][:2] == [str(4 * 32256), str(4 * 32768)]
    assert r["nr_vmemmap_pages per block"] == ["512", "0"]
    # 2 x 1024: two empty order-9 per-CPU refills of 2 blocks each for 4 memmaps
    assert r["NR_FREE_PAGES change"][:2] == ["0", "-2048"]
    assert r["Movable spanned/present/managed"] == [f"131072/131072/{4 * 32256}",
                                                    "131072/131072/131072"]


def test_costs_5_level(capsys):
    out = run(capsys, ["costs", "--paging-levels", "5"])
    assert "5-level paging" in out and "0xffd4000000000000" in out
    assert "[256 TiB/tbl]" in out                 # a direct-map P4D table: 512 x 512 GiB
    _, tables = rows(out, "128 MiB")
    # vmemmap PMD, PUD, P4D (2^48 / 64 x 4096 = 16 PiB), dmap PMD, PUD, P4D, leaves.
    assert tables == ["1/512", "1/262144", f"1/{(16 << 50) // (128 << 20)}",
                      "1/8", "1/4096", f"1/{(256 << 40) // (128 << 20)}", "64"]


def test_costs_fixed_width(capsys):
    out = run(capsys, ["costs"])
    table = [line for line in out.splitlines() if line.endswith(("pass", "fail"))]
    assert len(table) == 5 and len({len(line) for line in table}) == 1


@pytest.mark.parametrize("argv", [["costs", "--paging-levels", "3"], ["costs", "--arch", "sparc64"],
                                  ["frobnicate"]])
def test_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "usage: hotmem" in capsys.readouterr().err


def test_python_dash_m(capsys):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "hotmem", "costs"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == run(capsys, ["costs"])
    memmap, tables = rows(proc.stdout, "256 MiB")
    assert memmap[:2] == ["4194304", "1024"] and tables[-1] == "128"


def test_compare_takes_arch_and_page_size(capsys):
    """`hotmem compare --arch arm64 --page-size 16K`: the default plan is four DIMMs of one
    block (a 128 MiB section with 16K pages); each block's memmap is 8192 x 64 B = 512 KiB =
    32 pages of 16 KiB, not a multiple of the 32 MiB PMD, so the altmap side gets none."""
    import json
    out = run(capsys, ["compare", "--arch", "arm64", "--page-size", "16K", "--no-fragment",
                       "--costs-for", "1G", "--json"])
    d = json.loads(out)
    assert d["plan"]["dimms"] == ["128M"] * 4
    assert d["machine"]["page_size"] == 16384
    assert d["machine"]["memory_block_size"] == 128 << 20
    assert d["altmap"]["vmemmap_pages_per_block"] == [0] * 4
    assert sum(a["memmap_pages"] for a in d["regular"]["adds"]) == 4 * 32
    assert sum(a["memmap_pages"] for a in d["altmap"]["adds"]) == 4 * 32


def test_compare_names_the_platform_per_arch(capsys):
    """The header and plan line follow the arch: QEMU pc with ACPI DIMMs on x86_64 (the
    default), QEMU pseries with DLPAR LMBs on powerpc64, standby storage on s390x. The default
    plan is four blocks: 4 x 256 MiB on pseries (ibm,lmb-size) and on s390x (rzm 256 MiB)."""
    out = run(capsys, ["--no-fragment", "--costs-for", "1G"])
    assert out.splitlines()[1].startswith("machine: QEMU pc, boot memory 1 GiB (node 0)")
    assert out.splitlines()[2].startswith("plan: 4 ACPI DIMM(s) of 128M, 128M, 128M, 128M at "
                                          "0x100000000 (512 MiB)")
    ppc = run(capsys, ["--arch", "powerpc64", "--kernel", "6.6", "--memmap-on-memory", "force",
                       "--no-fragment", "--costs-for", "1G"])
    head = ppc.splitlines()
    assert head[0].endswith("radix MMU, 4-level page tables")
    assert head[1].startswith("machine: QEMU pseries")
    assert head[2].startswith("plan: 4 DIMM(s) of 256M, 256M, 256M, 256M at 0x40000000 (1 GiB)")
    r = compare_rows(ppc)
    # 4096 pages per LMB, 32 of them (a pageblock) reserved for the memmap in force mode
    assert r["managed pages added (MemTotal)"][:2] == [str(4 * 4064), str(4 * 4096)]
    s390 = run(capsys, ["--arch", "s390x", "--costs-for", "1G"])
    head = s390.splitlines()
    assert head[0].endswith("3-level DAT tables (region-third, segment, page)")
    assert head[2].startswith("plan: 4 standby range(s) of 256M, 256M, 256M, 256M at "
                              "0x40000000 (1 GiB): added offline at boot")
    r = compare_rows(s390)
    # 1024 memmap pages per 256 MiB block (65536 x 64 B / 4096), from the buddy at boot
    assert r["a) taken from existing memory at boot"] == ["4096", "4096", "pages"]
    assert r["c) fragmented: not measured"] == ["-", "-", "(added", "at", "boot)"]
    assert main(["--arch", "powerpc64", "--online-type", "online_kernel"]) == 1
    assert "--online-type online_kernel does not apply" in capsys.readouterr().err


def test_compare_driver_virtio_mem(capsys):
    """512 MiB through one virtio-mem device (SBM, 2 MiB sub blocks): 4 memory blocks of
    128 MiB, each with 512 memmap pages (32768 x 64 B / 4096) from the buddy whether
    memmap_on_memory is on or off -- virtio-mem never asks for it."""
    import json
    rep = json.loads(run(capsys, ["compare", "--driver", "virtio-mem", "--dimms", "512M",
                                  "--json"]))
    for side in ("memmap_on_memory", "regular"):
        s = rep[side]
        assert (s["mode"], s["granularity"], s["plugged"]) == ("SBM", 2 << 20, 512 << 20)
        assert s["mhp_flags"] == "MHP_MERGE_RESOURCE | MHP_NID_IS_MGID"
        assert s["memory_blocks"] == 4 and s["memory_blocks_with_memmap_on_memory"] == 0
        assert s["memmap_pages_from_buddy"] == 4 * 512 and s["memmap_pages_from_altmap"] == 0
        assert s["memtotal_kb_added"] == 512 * 1024
    out = run(capsys, ["compare", "--driver", "virtio-mem", "--dimms", "256M",
                       "--virtio-block-size", "256M"])
    assert "BBM (big block 256 MiB)" in out and "never MHP_MEMMAP_ON_MEMORY" in out
