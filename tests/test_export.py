"""hotmem export: the sysroot tree of a Machine, read by the real util-linux lsmem
(``lsmem --sysroot DIR``) and compared with ``hotmem lsmem``; the layout of the tree (links,
binary kpageflags/kpagecount) and bad input."""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import hotmem
from hotmem.arch.powerpc64_init import dlpar_add_lmb
from hotmem.lsmem import render_lsmem

LSMEM = shutil.which("lsmem") or "/usr/bin/lsmem"
needs_lsmem = pytest.mark.skipif(not os.access(LSMEM, os.X_OK),
                                 reason=f"util-linux lsmem not installed ({LSMEM})")
MEM = "/sys/devices/system/memory"
#: the columns util-linux 2.38 has (MEMMAP-ON-MEMORY came in 2.39)
COLS = "RANGE,SIZE,STATE,REMOVABLE,BLOCK,NODE,ZONES"
MOM = "memory_hotplug.memmap_on_memory=1"


def _online(m, block, how):
    m.sysfs.write(f"{MEM}/memory{block}/state", how)


def x86_64_machine():
    """Two nodes of boot RAM, four DIMMs: movable, kernel, the default zone, left offline."""
    m = hotmem.Machine(arch="x86_64", boot_memory={0: "1G", 1: "1G"}, cmdline=MOM)
    bs = m.memory_block_size_bytes
    base = m.arch_ops.first_hotplug_address(m)
    for i, how in enumerate(("online_movable", "online_kernel", "online", None)):
        m.acpi_memory_hotplug(base + i * bs, bs, node=i % 2)
        if how:
            _online(m, (base + i * bs) // bs, how)
    return m


def arm64_machine(page_size="4K"):
    m = hotmem.Machine(arch="arm64", page_size=page_size, boot_memory="1G", cmdline=MOM)
    bs = m.memory_block_size_bytes
    base = m.arch_ops.first_hotplug_address(m)
    m.acpi_memory_hotplug(base, 2 * bs, node=0)
    _online(m, base // bs, "online_movable")
    return m


def powerpc64_machine(mmu="radix"):
    m = hotmem.Machine(arch="powerpc64", mmu=mmu, boot_memory="1G", cmdline=MOM)
    bs = m.memory_block_size_bytes
    base = m.arch_ops.first_hotplug_address(m)
    for i in range(2):
        dlpar_add_lmb(m, base + i * bs, 0)
    return m


def s390x_machine():
    m = hotmem.Machine(arch="s390x", boot_memory="1G", standby_memory="1G", cmdline=MOM)
    bs = m.memory_block_size_bytes
    _online(m, m.arch_ops.first_hotplug_address(m) // bs, "online_movable")
    return m


def x86_64_v2_machine():
    """The RFC policy: no memmap_on_memory module parameter at all."""
    m = hotmem.Machine(arch="x86_64", kernel="v2", boot_memory="1G", cmdline=MOM)
    bs = m.memory_block_size_bytes
    m.acpi_memory_hotplug(4 << 30, 2 * bs, node=0)
    _online(m, (4 << 30) // bs, "online_movable")
    return m


PROFILES = {"x86_64": x86_64_machine, "x86_64-v2": x86_64_v2_machine,
            "arm64-4K": arm64_machine, "arm64-16K": lambda: arm64_machine("16K"),
            "arm64-64K": lambda: arm64_machine("64K"),
            "powerpc64": powerpc64_machine, "powerpc64-hash": lambda: powerpc64_machine("hash"),
            "s390x": s390x_machine}


def _lsmem(root, *args):
    out = subprocess.run([LSMEM, "--sysroot", str(root), *args], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _split_summary(text):
    """(table lines, {summary label: value})."""
    table, _, summary = text.partition("\n\n")
    pairs = {}
    for line in summary.splitlines():
        label, _, value = line.partition(":")
        pairs[label.strip()] = value.strip()
    return table.splitlines(), pairs


@needs_lsmem
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_real_lsmem_reads_export(profile, tmp_path):
    m = PROFILES[profile]()
    m.export(tmp_path / "root")
    for extra in ((), ("-a",), ("-b",), ("-n",)):
        real = _lsmem(tmp_path / "root", "-o", COLS, *extra)
        mine = render_lsmem(m, COLS, list_all="-a" in extra, bytes="-b" in extra,
                            noheadings="-n" in extra)
        real_table, real_summary = _split_summary(real)
        mine_table, mine_summary = _split_summary(mine)
        assert real_table == mine_table
        # 2.38 has no "Memmap on memory parameter" line and pads the labels to 23, not 32
        # columns (util-linux 2.39 widened them): the same labels and values
        assert real_summary == {k: v for k, v in mine_summary.items() if k in real_summary}
        assert set(mine_summary) - set(real_summary) <= {"Memmap on memory parameter"}
    for extra in ((), ("-a",), ("-b",)):
        real = json.loads(_lsmem(tmp_path / "root", "--json", "-o", COLS, *extra))
        mine = json.loads(render_lsmem(m, COLS, json=True, summary="never",
                                       list_all="-a" in extra, bytes="-b" in extra))
        assert real == mine
    # lsmem's own default columns
    assert _split_summary(_lsmem(tmp_path / "root"))[0] == \
        _split_summary(render_lsmem(m, "RANGE,SIZE,STATE,REMOVABLE,BLOCK"))[0]


@needs_lsmem
def test_arm64_has_no_zones_column_values(tmp_path):
    """lsmem reads zones only where memory0/valid_zones exists; arm64 virt's RAM starts at
    1 GiB (no memory0), so ZONES stays empty there, as real lsmem prints it."""
    m = arm64_machine()
    assert 0 not in m.memory.blocks
    m.export(tmp_path / "r")
    rows = json.loads(_lsmem(tmp_path / "r", "--json", "-o", "RANGE,ZONES"))["memory"]
    assert rows and all(r["zones"] is None for r in rows)
    assert all(r["zones"] is None
               for r in json.loads(render_lsmem(m, "RANGE,ZONES", json=True))["memory"])


def test_export_layout(tmp_path):
    m = x86_64_machine()
    root = m.export(tmp_path / "r")
    mem = root / "sys/devices/system/memory"
    bs = m.memory_block_size_bytes
    assert (mem / "block_size_bytes").read_text() == f"{bs:x}\n"
    for idx, blk in m.memory.blocks.items():
        d = mem / f"memory{idx}"
        link = d / f"node{blk.nid}"
        assert link.is_symlink() and os.readlink(link) == f"../../node/node{blk.nid}"
        assert link.resolve() == (root / f"sys/devices/system/node/node{blk.nid}").resolve()
        back = root / f"sys/devices/system/node/node{blk.nid}/memory{idx}"
        assert back.is_symlink() and back.resolve() == d.resolve()
        for attr in ("state", "online", "phys_index", "phys_device", "removable",
                     "valid_zones"):
            assert (d / attr).read_text() == m.sysfs.read(f"{MEM}/memory{idx}/{attr}")
        assert sorted(os.listdir(d)) == sorted(m.sysfs.listdir(f"{MEM}/memory{idx}"))
    assert m.sysfs.readlink(f"{MEM}/memory0/node0") == "../../node/node0"
    with pytest.raises(hotmem.HotplugError) as e:
        m.sysfs.readlink(f"{MEM}/memory0/state")
    assert e.value.errno == errno.EINVAL
    for name in ("meminfo", "zoneinfo", "vmstat", "buddyinfo", "iomem"):
        assert (root / "proc" / name).read_text() == m.procfs.read(f"/proc/{name}")
    pps = m.arch.PAGES_PER_SECTION
    npfns = -(-m.max_pfn // pps) * pps
    flags = np.fromfile(root / "proc/kpageflags", dtype="<u8")
    counts = np.fromfile(root / "proc/kpagecount", dtype="<u8")
    assert len(flags) == len(counts) == npfns
    assert np.array_equal(flags, np.asarray(m.procfs.kpageflags(0, npfns), dtype="<u8"))
    assert np.array_equal(counts, np.asarray(m.procfs.kpagecount(0, npfns), dtype="<u8"))
    # /sys/firmware/memmap: QEMU pc's e820 as the firmware gives it (page 0 is RAM there;
    # trim_bios_range only changes the kernel's copy), then the four hot-added DIMMs
    fw = root / "sys/firmware/memmap"
    ents = [tuple((fw / str(i) / a).read_text().strip() for a in ("start", "end", "type"))
            for i in range(len(os.listdir(fw)))]
    assert ents[0] == ("0x0", "0x9fbff", "System RAM")
    hot = [e for e in ents if int(e[0], 16) >= 4 << 30 and e[2] == "System RAM"]
    # 2 GiB of boot RAM: QEMU pc's first DIMM at 4 GiB
    assert [int(e[0], 16) for e in hot] == [(4 << 30) + i * bs for i in range(4)]
    assert all(int(e[1], 16) == int(e[0], 16) + bs - 1 and e[2] == "System RAM" for e in hot)
    params = root / "sys/module/memory_hotplug/parameters"
    assert (params / "memmap_on_memory").read_text() == "Y\n"


def test_export_refuses_non_empty_directory(tmp_path):
    m = hotmem.Machine(arch="x86_64", boot_memory="1G")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "x").write_text("")
    with pytest.raises(hotmem.HotplugError) as e:
        m.export(tmp_path / "r")
    assert e.value.errno == errno.ENOTEMPTY and "not empty" in str(e.value)
    assert os.listdir(tmp_path / "r") == ["x"]
    with pytest.raises(hotmem.HotplugError) as e:
        m.export(tmp_path / "r" / "x")
    assert e.value.errno == errno.ENOTDIR


def test_cli_export(tmp_path, capsys):
    from hotmem.cli import main
    assert main(["export", str(tmp_path / "r"), "--dimms", "128M,128M"]) == 0
    assert (tmp_path / "r/sys/devices/system/memory/memory33/state").read_text() == "online\n"
    assert main(["export", str(tmp_path / "r")]) == 1
    assert "Directory not empty" in capsys.readouterr().err
