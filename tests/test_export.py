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


# -- the live FUSE mount -------------------------------------------------------------------------

def _fuse_skip():
    from hotmem.mount import fuse_unavailable
    return fuse_unavailable()


needs_fuse = pytest.mark.skipif(bool(_fuse_skip()), reason=f"FUSE: {_fuse_skip()}")


class _Mounted:
    """Machine ``m`` served at ``mp`` from a thread of this process, unmounted on exit."""

    def __init__(self, m, mp):
        import threading
        from hotmem.mount import mount
        self.m, self.mp, self.writes = m, str(mp), []
        self.thread = threading.Thread(target=mount, args=(m, self.mp), daemon=True,
                                       kwargs={"on_write": lambda *w: self.writes.append(w)})

    def __enter__(self):
        import time
        self.thread.start()
        for _ in range(100):
            if os.path.ismount(self.mp):
                return self
            time.sleep(0.05)
        raise AssertionError(f"{self.mp} never mounted")

    def __exit__(self, *exc):
        subprocess.run(["umount", self.mp], check=True, timeout=30)
        self.thread.join(10)
        assert not self.thread.is_alive()


@needs_fuse
@needs_lsmem
def test_mount_real_lsmem_and_writes(tmp_path):
    m = x86_64_machine()
    (tmp_path / "mp").mkdir()
    with _Mounted(m, tmp_path / "mp") as mnt:
        real_table = _split_summary(_lsmem(mnt.mp, "-o", COLS))[0]
        assert real_table == _split_summary(render_lsmem(m, COLS))[0]
        state = f"{mnt.mp}{MEM}/memory35/state"
        assert open(state).read() == "offline\n"
        # a bad word: the kernel's EINVAL, the Machine unchanged
        fd = os.open(state, os.O_WRONLY)
        with pytest.raises(OSError) as e:
            os.write(fd, b"bogus\n")
        os.close(fd)
        assert e.value.errno == errno.EINVAL and m.memory.blocks[35].state == "offline"
        # a read-only attribute: EACCES from m.sysfs.write (mode 0444 stops non-root first)
        fd = os.open(f"{mnt.mp}{MEM}/memory35/phys_index", os.O_WRONLY)
        with pytest.raises(OSError) as e:
            os.write(fd, b"1\n")
        os.close(fd)
        assert e.value.errno == errno.EACCES
        with open(state, "w") as f:
            f.write("online_movable\n")
        assert m.memory.blocks[35].state == "online"
        assert open(f"{mnt.mp}{MEM}/memory35/valid_zones").read() == "Movable\n"
        assert os.readlink(f"{mnt.mp}{MEM}/memory35/node1") == "../../node/node1"
        flags = np.frombuffer(open(f"{mnt.mp}/proc/kpageflags", "rb").read(8 * 4096), "<u8")
        assert np.array_equal(flags, np.asarray(m.procfs.kpageflags(0, 4096), "<u8"))
    assert not os.path.ismount(tmp_path / "mp")


@needs_fuse
def test_mount_busy_mount_point(tmp_path):
    from hotmem.mount import mount
    m = hotmem.Machine(arch="x86_64", boot_memory="1G")
    (tmp_path / "mp").mkdir()
    with _Mounted(m, tmp_path / "mp"):
        with pytest.raises(hotmem.HotplugError) as e:
            mount(m, tmp_path / "mp")
        assert e.value.errno == errno.EBUSY and "busy" in str(e.value)


@needs_fuse
@pytest.mark.skipif(not shutil.which("unshare") or not shutil.which("chmem") or os.geteuid(),
                    reason="needs root, unshare and util-linux chmem")
def test_mount_real_chmem_in_private_namespace(tmp_path):
    """util-linux chmem and lsmem unchanged on /sys/devices/system/memory, the mount bound over
    it in a private mount namespace: onlining and offlining a range, then the Machine checked."""
    m = hotmem.Machine(arch="x86_64", boot_memory="1G", cmdline=MOM)
    m.acpi_memory_hotplug(4 << 30, "256M", node=0)
    (tmp_path / "mp").mkdir()
    with _Mounted(m, tmp_path / "mp") as mnt:
        sh = (f"mount --bind {mnt.mp}{MEM} {MEM} && chmem -e 0x100000000-0x10fffffff && "
              "lsmem -J -o RANGE,STATE,BLOCK && chmem -d -b 33 && chmem -d 128M && "
              "lsmem -J -o RANGE,STATE,BLOCK")
        out = subprocess.run(["unshare", "-m", "sh", "-c", sh], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        first, second = (json.loads("{" + part) for part in
                         out.stdout.strip()[1:].split("\n{"))
        assert first["memory"][-1] == {"range": "0x0000000100000000-0x000000010fffffff",
                                       "state": "online", "block": "32-33"}
        # chmem -d 128M offlines one more block, from the top down
        assert [r["state"] for r in second["memory"]][-1] == "offline"
        assert m.memory.blocks[33].state == "offline"
        assert all(e == 0 for _, _, e in mnt.writes), mnt.writes
        # the words chmem 2.38 wrote (without -z it onlines to Movable where valid_zones
        # offers it)
        assert [(p.rsplit("/", 2)[-2], w.strip()) for p, w, _ in mnt.writes][:3] == \
            [("memory32", "online_movable"), ("memory33", "online_movable"),
             ("memory33", "offline")]
    # the host's own /sys was never touched
    assert os.path.isdir(MEM)


@needs_fuse
@pytest.mark.skipif(not shutil.which("unshare") or not shutil.which("bc") or os.geteuid(),
                    reason="needs root, unshare and bc (the selftest's arithmetic)")
def test_mount_kernel_selftest_mem_on_off(tmp_path):
    """tools/testing/selftests/memory-hotplug/mem-on-off-test.sh from Debian's linux-source-6.1,
    unchanged, on the mount bound over /sys/devices/system/memory (guarded: the script runs only
    once that directory is the FUSE mount). Its sysfs modes run; the notifier-error-inject mode
    needs debugfs and the module, and the script skips it."""
    from hotmem.mount import mem_on_off_test
    from hotmem.validate.assets import SetupError
    try:
        script = mem_on_off_test(log=lambda *_: None)
    except (SetupError, OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot fetch the selftest: {exc}")
    m = hotmem.Machine(arch="x86_64", boot_memory="1G", cmdline=MOM)
    m.acpi_memory_hotplug(4 << 30, "512M", node=0)
    (tmp_path / "mp").mkdir()
    with _Mounted(m, tmp_path / "mp") as mnt:
        sh = (f"mount --bind {mnt.mp}{MEM} {MEM} && "
              f"case $(stat -f -c %T {MEM}) in fuse*) ;; *) exit 97;; esac && "
              f"bash {script} -r 10")
        out = subprocess.run(["unshare", "-m", "sh", "-c", sh], capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == 0, (out.stdout, out.stderr)
        lines = out.stdout.splitlines()
        assert [ln for ln in lines if ln.startswith("offline->online")][:4] == \
            [f"offline->online memory{b}" for b in range(32, 36)]
        # 10% of 12 hot-pluggable blocks: 2 offlined; memory0 has holes (offline_pages: EINVAL)
        assert "\t trying to offline 2 out of 12 memory block(s):" in lines
        assert ("/sys/devices/system/memory/memory0/state", "offline\n", errno.EINVAL) in \
            mnt.writes
        assert "FAILED" not in out.stdout
        assert "skip extra tests: debugfs is not mounted" in out.stderr
    assert all(b.state == "online" for b in m.memory.blocks.values())
