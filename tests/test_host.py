"""hotmem capture / Machine.from_host: the running machine described for the model; on this host
the model's zones and memory blocks against /proc/zoneinfo and /sys."""
from __future__ import annotations

import errno
import os
import re

import pytest

import hotmem
from hotmem.host import capture, memblock_trim_memory

MEMMAP = "/sys/firmware/memmap"


def _fake_root(tmp_path, fw, blocks_by_node, cpulists, block_size=0x8000000,
               cmdline="quiet memory_hotplug.memmap_on_memory=1 memhp_default_state=online "
                       "-- memhp_default_state=offline", release="6.1.0-13-amd64"):
    root = tmp_path / "root"
    for i, (start, end, kind) in enumerate(fw):
        d = root / "sys/firmware/memmap" / str(i)
        d.mkdir(parents=True)
        (d / "start").write_text(f"{start:#x}\n")
        (d / "end").write_text(f"{end - 1:#x}\n")
        (d / "type").write_text(kind + "\n")
    mem = root / "sys/devices/system/memory"
    mem.mkdir(parents=True)
    (mem / "block_size_bytes").write_text(f"{block_size:x}\n")
    for nid, blocks in blocks_by_node.items():
        nd = root / f"sys/devices/system/node/node{nid}"
        nd.mkdir(parents=True)
        (nd / "cpulist").write_text(cpulists[nid] + "\n")
        for b in blocks:
            (mem / f"memory{b}").mkdir(exist_ok=True)
            os.symlink(f"../../memory/memory{b}", nd / f"memory{b}")
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/cmdline").write_text(cmdline + "\n")
    (root / "proc/sys/kernel/osrelease").write_text(release + "\n")
    return root


# QEMU pc with SeaBIOS, 2 GiB on two nodes of 1 GiB, as /sys/firmware/memmap lists it
QEMU_FW = [(0x0, 0x9fc00, "System RAM"), (0x9fc00, 0xa0000, "Reserved"),
           (0xf0000, 0x100000, "Reserved"), (0x100000, 0x7ffe0000, "System RAM"),
           (0x7ffe0000, 0x80000000, "Reserved"), (0xfffc0000, 0x100000000, "Reserved")]


def test_capture_fake_two_node_root(tmp_path):
    root = _fake_root(tmp_path, QEMU_FW, {0: range(0, 8), 1: range(8, 16)}, {0: "0", 1: "1-2"})
    host = capture(str(root))
    # [0, 0x9fc00) trimmed to [0, 0x9f000) (0xc00 bytes of a partial page); node 1 from 1 GiB
    assert host.e820_ranges == [(0x0, 0x9f000, 0), (0x100000, 0x40000000, 0),
                                (0x40000000, 0x7ffe0000, 1)]
    assert host.cpus == {0: 1, 1: 2}
    assert host.kernel == "6.1" and host.release == "6.1.0-13-amd64"
    # only the parameters the model reads, and none of what follows "--" (init's arguments)
    assert host.cmdline == "memory_hotplug.memmap_on_memory=1 memhp_default_state=online"
    assert any("3072 bytes" in n for n in host.notes)
    m = hotmem.Machine.from_host(str(root))
    assert m.memmap_on_memory and m.nr_cpus == 3
    # DMA: pfns 1..0x9e and 0x100..0xfff present (page 0 is the BIOS's, trim_bios_range),
    # 1..0xfff spanned
    dma = m.zone(0, "DMA")
    assert (dma.zone_start_pfn, dma.spanned_pages, dma.present_pages) == (1, 0xfff,
                                                                          0x9e + 0xf00)
    dma32 = m.zone(0, "DMA32")
    # node 0 DMA32: [16 MiB, 1 GiB), no hole
    assert (dma32.spanned_pages, dma32.present_pages) == (0x40000 - 0x1000,) * 2
    n1 = m.zone(1, "DMA32")
    assert (n1.zone_start_pfn, n1.present_pages) == (0x40000, 0x7ffe0 - 0x40000)
    toml = host.to_toml()
    assert "[0x40000000, 0x7ffe0000, 1]," in toml and 'kernel = "6.1"' in toml


def test_newer_release_is_said_out_loud(tmp_path):
    root = _fake_root(tmp_path, QEMU_FW, {0: range(16)}, {0: "0"}, release="6.18.44-fc")
    host = capture(str(root))
    assert host.kernel == "6.12"
    assert any("6.18.44-fc is modelled with the 6.12 policy" in n for n in host.notes)
    # no boot/config-6.18.44-fc: the Kconfig defaults, not Debian's 6.12 build
    assert host.config == "defconfig" and any("config-6.18.44-fc" in n for n in host.notes)


def test_host_build_config_is_read(tmp_path):
    """boot/config-<release> gives the default online type (Debian's own 6.12 lines)."""
    from pathlib import Path
    root = _fake_root(tmp_path, QEMU_FW, {0: range(16)}, {0: "0"}, release="6.12.118+deb13-amd64")
    boot = Path(root) / "boot"
    boot.mkdir(exist_ok=True)
    src = Path(__file__).parent / "data" / "kconfig" / "config-6.12.118+deb13-amd64.hotplug"
    (boot / "config-6.12.118+deb13-amd64").write_text(src.read_text())
    host = capture(str(root))
    assert host.config.mhp_default_online_type == "online"
    m = hotmem.Machine(**host.machine_kwargs())
    assert m.sysfs.read("/sys/devices/system/memory/auto_online_blocks") == "online\n"


def test_trim_keeps_aligned_and_drops_partial():
    # [0x1800, 0x3800) keeps its one whole page; [0x4000, 0x4fff) has none
    assert memblock_trim_memory([(0x1800, 0x3800, 0), (0x4000, 0x4fff, 0),
                                 (0x5000, 0x7000, 0)]) == [(0x2000, 0x3000, 0),
                                                           (0x5000, 0x7000, 0)]


def test_capture_root_without_firmware_memmap(tmp_path):
    with pytest.raises(hotmem.HotplugError) as e:
        capture(str(tmp_path))
    assert e.value.errno == errno.ENOENT
    assert "sys/firmware/memmap" in str(e.value) and "\n" not in str(e.value)
    from hotmem.cli import main
    assert main(["capture", "--root", str(tmp_path)]) == 1


def test_cli_capture(tmp_path, capsys):
    from hotmem.cli import main
    root = _fake_root(tmp_path, QEMU_FW, {0: range(16)}, {0: "0-1"})
    assert main(["capture", "--root", str(root), "-o", str(tmp_path / "host.toml")]) == 0
    text = (tmp_path / "host.toml").read_text()
    assert "[machine]" in text and "[0x100000, 0x7ffe0000, 0]," in text


def _host_zoneinfo():
    zones, cur = {}, None
    for line in open("/proc/zoneinfo"):
        mt = re.match(r"Node (\d+), zone\s+(\w+)", line)
        if mt:
            cur = (int(mt.group(1)), mt.group(2))
            zones[cur] = {}
            continue
        mt = re.match(r"\s+(spanned|present|managed)\s+(\d+)", line)
        if mt and cur:
            zones[cur][mt.group(1)] = int(mt.group(2))
    return zones


@pytest.mark.skipif(not os.path.isdir(MEMMAP), reason=f"{MEMMAP} absent on this host")
def test_model_of_this_host(capsys):
    host = capture("/")
    total = sum(e - s for s, e, _ in host.e820_ranges)
    if total > 64 << 30:
        pytest.skip(f"host has {total >> 30} GiB of RAM: too big to model in the test suite")
    m = hotmem.Machine.from_host("/")
    real = _host_zoneinfo()
    report = []
    for (nid, name), vals in real.items():
        z = m.zone(nid, name)
        assert (z.spanned_pages, z.present_pages) == (vals["spanned"], vals["present"]), name
        if z.managed_pages != vals["managed"]:
            # the model's boot reservations are QEMU pc's 6.1 guest's, not this kernel's
            report.append(f"node {nid} {name}: managed {z.managed_pages} in the model, "
                          f"{vals['managed']} here ({(z.managed_pages - vals['managed']) * 4} "
                          "KiB)")
    blocks = sorted(int(n[6:]) for n in os.listdir("/sys/devices/system/memory")
                    if re.fullmatch(r"memory\d+", n))
    assert sorted(m.memory.blocks) == blocks
    for b in blocks:
        links = [n for n in os.listdir(f"/sys/devices/system/memory/memory{b}")
                 if re.fullmatch(r"node\d+", n)]
        assert [f"node{m.memory.blocks[b].nid}"] == links
    with capsys.disabled():
        print(f"\nhost {host.release} as {host.kernel}; differences:",
              *(report + host.notes), sep="\n  ")
