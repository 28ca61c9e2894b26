"""virtio-mem (hotmem/drivers/virtio_mem.py) and the auto-movable online policy.

Expected numbers are hand computations from the driver's logic (drivers/virtio/virtio_mem.c,
6.1.176) and QEMU's x86_64 defaults, written out here: 4 KiB pages, 512-page pageblocks,
MAX_ORDER_NR_PAGES 1024, 128 MiB memory blocks on a 1 GiB pc machine, the device region at
4 GiB (the first address of the pc machine's device-memory region below 4 GiB of RAM).
"""
import errno

import pytest

import hotmem
from hotmem import HotplugError
from hotmem.defs import KPF_BUDDY, KPF_DIRTY, KPF_OFFLINE, KPF_RESERVED
from hotmem.drivers import virtio_mem as vmem
from hotmem.mm import memory_hotplug as mh

MiB, GiB = 1 << 20, 1 << 30
PAGE = 4096
BLOCK = 128 * MiB                       # memory_block_size_bytes() of a 1 GiB x86_64 machine
BLOCK_PAGES = BLOCK // PAGE             # 32768
BASE = 4 * GiB                          # the device region QEMU picks
FIRST_MB = BASE // BLOCK                # 32


@pytest.fixture(params=("compiled", "python"))
def backend(request):
    return request.param


def machine(backend="compiled", kernel="6.1", cmdline="memhp_default_state=online", **kw):
    return hotmem.Machine(arch="x86_64", kernel=kernel, boot_memory=kw.pop("boot_memory", "1G"),
                          cmdline=cmdline, backend=backend, **kw)


def memtotal_kb(m) -> int:
    return int(m.procfs.read("/proc/meminfo").split()[1])


def kpf(m, addr) -> int:
    return m.procfs.kpageflags(addr // PAGE, 1)[0]


# -- geometry and flags --------------------------------------------------------------------------

@pytest.mark.parametrize("kernel,block_size,mode,unit", [
    # 6.1: sub block = max(device block, pageblock = 512 * 4K = 2 MiB) < 128 MiB → SBM
    ("6.1", 2 * MiB, ("SBM", 2 * MiB, 64), BLOCK_PAGES),
    ("6.1", 4 * MiB, ("SBM", 4 * MiB, 32), BLOCK_PAGES),
    # 5.13: sub block = max(device block, MAX_ORDER_NR_PAGES 1024 * 4K = 4 MiB)
    ("5.13", 2 * MiB, ("SBM", 4 * MiB, 32), None),
    # a device block of a memory block or more: BBM, big block = max(device block, 128 MiB)
    ("6.1", 128 * MiB, ("BBM", 128 * MiB, None), BLOCK_PAGES),
    ("6.1", 512 * MiB, ("BBM", 512 * MiB, None), 512 * MiB // PAGE),
])
def test_mode_and_geometry(kernel, block_size, mode, unit):
    m = machine(kernel=kernel)
    d = m.virtio_mem_device(region_size="2G", block_size=block_size)
    assert d.addr == BASE
    assert d.mode == mode[0]
    if mode[0] == "SBM":
        assert (d.sb_size, d.sbs_per_mb) == (mode[1], mode[2])
    else:
        assert d.bb_size == mode[1]
    if unit is None:                    # 5.13: no memory groups yet (5.15)
        assert d.group is None and not m.memory_groups
    else:
        assert d.group.is_dynamic and d.group.unit_pages == unit and d.group.nid == 0


def test_v2_has_no_big_block_mode():
    m = machine(kernel="v2")
    with pytest.raises(HotplugError) as e:
        m.virtio_mem_device(region_size="1G", block_size="128M")
    assert e.value.errno == errno.EINVAL


@pytest.mark.parametrize("kernel,flags", [
    ("v2", mh.MHP_MERGE_RESOURCE),
    ("5.13", mh.MHP_MERGE_RESOURCE),
    ("6.1", mh.MHP_MERGE_RESOURCE | mh.MHP_NID_IS_MGID),
    ("6.6", mh.MHP_MERGE_RESOURCE | mh.MHP_NID_IS_MGID),
    ("6.11", mh.MHP_MERGE_RESOURCE | mh.MHP_NID_IS_MGID),
])
def test_flags_never_memmap_on_memory(monkeypatch, kernel, flags):
    """The Firecracker question: even with memory_hotplug.memmap_on_memory on, virtio-mem never
    asks for MHP_MEMMAP_ON_MEMORY, so its memmap comes from the buddy."""
    seen = []
    real = mh.add_memory_driver_managed

    def spy(m, nid, start, size, name, mhp_flags, group=None):
        seen.append((name, mhp_flags, size))
        return real(m, nid, start, size, name, mhp_flags, group)
    monkeypatch.setattr(mh, "add_memory_driver_managed", spy)
    mom = "" if kernel == "v2" else " memory_hotplug.memmap_on_memory=1"
    m = machine(kernel=kernel, cmdline="memhp_default_state=online" + mom)
    m.virtio_mem_device(region_size="1G", requested_size="128M")
    assert seen == [("System RAM (virtio_mem)", flags, BLOCK)]
    blk = m.memory_blocks[FIRST_MB]
    assert blk.nr_vmemmap_pages == 0 and blk.altmap is None


# -- Sub Block Mode ------------------------------------------------------------------------------

def test_sbm_plug_in_sub_blocks(backend):
    m = machine(backend)
    t0, z = memtotal_kb(m), m.zone(0, "Normal")
    present0, managed0, spanned0 = z.present_pages, z.managed_pages, z.spanned_pages
    d = m.virtio_mem_device(region_size="1G", requested_size="64M")
    # 64 MiB = 32 sub blocks of 2 MiB: sub blocks 0..31 of memory block 32, added whole
    assert d.plugged_sub_blocks(FIRST_MB) == list(range(32))
    assert d.block_states() == {FIRST_MB: "kernel_partial"}
    assert d.size == d.plugged_size == 64 * MiB
    assert memtotal_kb(m) - t0 == 64 * 1024                 # only plugged pages reach the buddy
    assert z.present_pages - present0 == BLOCK_PAGES       # present counts the whole block
    assert z.managed_pages - managed0 == 64 * MiB // PAGE  # 16384
    assert z.zone_start_pfn + z.spanned_pages == (BASE + BLOCK) // PAGE
    assert z.spanned_pages > spanned0
    # never onlined: PageOffline + PageDirty, no PG_reserved, the init refcount 1 kept;
    # kpagecount reads 0 for a page with a page type (fs/proc/page.c, 6.1)
    unplugged = BASE + 100 * MiB
    assert kpf(m, unplugged) == (1 << KPF_OFFLINE) | (1 << KPF_DIRTY)
    assert m.procfs.kpagecount(unplugged // PAGE, 1)[0] == 0
    assert m.ms.page_refcount(unplugged // PAGE) == 1
    assert not kpf(m, unplugged) >> KPF_RESERVED & 1
    assert kpf(m, BASE) == 1 << KPF_BUDDY                  # the first plugged MAX_ORDER block
    # iomem: the device's region with the driver-managed RAM inside it
    iomem = m.procfs.read("/proc/iomem")
    assert "100000000-13fffffff : virtio0\n  100000000-107ffffff : System RAM (virtio_mem)\n" \
        in iomem
    # no /sys/firmware/memmap entry for driver-managed memory
    assert all(e[0] < BASE for e in m.firmware_map)


def test_sbm_plug_more_fills_then_adds(backend):
    m = machine(backend)
    t0 = memtotal_kb(m)
    d = m.virtio_mem_device(region_size="1G", requested_size="64M")
    d.set_requested_size("200M")
    # the partial block is filled first (32 more sub blocks), then block 33 gets 36 (72 MiB)
    assert d.block_states() == {FIRST_MB: "kernel", FIRST_MB + 1: "kernel_partial"}
    assert d.plugged_sub_blocks(FIRST_MB + 1) == list(range(36))
    assert memtotal_kb(m) - t0 == 200 * 1024
    # MHP_MERGE_RESOURCE: one resource for both blocks
    assert "  100000000-10fffffff : System RAM (virtio_mem)\n" in m.procfs.read("/proc/iomem")


def test_sbm_unplug_removes_emptied_block(backend):
    m = machine(backend)
    t0 = memtotal_kb(m)
    d = m.virtio_mem_device(region_size="1G", requested_size="200M")
    d.set_requested_size("32M")
    # unplug from the highest block down: block 33's 36 sub blocks, the block offlined and
    # removed; then block 32's sub blocks 63..16
    assert FIRST_MB + 1 not in m.memory_blocks
    assert d.block_states() == {FIRST_MB: "kernel_partial"}
    assert d.plugged_sub_blocks(FIRST_MB) == list(range(16))
    assert d.last_rc == 0 and d.size == 32 * MiB
    assert memtotal_kb(m) - t0 == 32 * 1024
    # faked offline after being onlined: PageOffline, refcount 1, not dirty
    assert kpf(m, BASE + 40 * MiB) == 1 << KPF_OFFLINE
    assert "  100000000-107ffffff : System RAM (virtio_mem)\n" in m.procfs.read("/proc/iomem")


def test_sbm_refused_unplug(backend):
    m = machine(backend)
    t0 = memtotal_kb(m)
    d = m.virtio_mem_device(region_size="1G", requested_size="32M")
    m.inject("unmovable", pfn=(BASE + 31 * MiB) // PAGE)   # in sub block 15 (30..32 MiB)
    d.set_requested_size(0)
    # sub blocks 14..0 unplug; 15 cannot be made free: -EBUSY, retried later
    assert d.plugged_sub_blocks(FIRST_MB) == [15]
    assert d.last_rc == -errno.EBUSY
    assert d.size == 2 * MiB and memtotal_kb(m) - t0 == 2 * 1024
    assert FIRST_MB in m.memory_blocks
    assert d.retry() == -errno.EBUSY                        # still in use
    # the page goes away: the retry timer's run unplugs it and removes the block
    m.allocator.free_pages((BASE + 31 * MiB) // PAGE, 0, 0)
    assert d.retry() == 0
    assert d.size == 0 and FIRST_MB not in m.memory_blocks and memtotal_kb(m) == t0
    assert "System RAM (virtio_mem)" not in m.procfs.read("/proc/iomem")


def test_sbm_offline_and_online_partial_block(backend):
    m = machine(backend, cmdline="")                        # memory stays offline when added
    t0, z = memtotal_kb(m), m.zone(0, "Normal")
    p0 = z.present_pages
    d = m.virtio_mem_device(region_size="1G", requested_size="40M")
    assert d.block_states() == {FIRST_MB: "offline_partial"}
    assert memtotal_kb(m) == t0
    m.sysfs.write(f"/sys/devices/system/memory/memory{FIRST_MB}/state", "online_movable")
    mov = m.zone(0, "Movable")
    assert d.block_states() == {FIRST_MB: "movable_partial"}
    assert mov.present_pages == BLOCK_PAGES and mov.managed_pages == 40 * MiB // PAGE
    assert memtotal_kb(m) - t0 == 40 * 1024
    # offlining skips the fake-offline pages (refcount dropped by the notifier)
    m.sysfs.write(f"/sys/devices/system/memory/memory{FIRST_MB}/state", "offline")
    assert d.block_states() == {FIRST_MB: "offline_partial"}
    assert mov.present_pages == 0 and mov.managed_pages == 0 and memtotal_kb(m) == t0
    assert z.present_pages == p0
    # plugging into an offline block only marks sub blocks plugged
    d.set_requested_size("128M")
    assert d.block_states() == {FIRST_MB: "offline"}
    assert memtotal_kb(m) == t0


def test_sbm_offline_threshold(backend):
    """Added-but-offline memory is capped at max(2 blocks, 1 GiB): 8 blocks, then -ENOSPC until
    enough is onlined that another half threshold fits."""
    m = machine(backend, cmdline="")
    d = m.virtio_mem_device(region_size="4G", requested_size="2G")
    assert sorted(d.block_states()) == list(range(FIRST_MB, FIRST_MB + 8))
    assert d.last_rc == -errno.ENOSPC and d.size == GiB
    for i in range(4):      # 1 GiB - 4 blocks = 512 MiB offline: 512 + 512 fits → retry
        m.sysfs.write(f"/sys/devices/system/memory/memory{FIRST_MB + i}/state", "online_movable")
    assert d.size == GiB + 512 * MiB
    assert d.last_rc == -errno.ENOSPC


# -- Big Block Mode ------------------------------------------------------------------------------

def test_bbm_plug_unplug(backend):
    m = machine(backend, cmdline="memhp_default_state=online_movable")
    t0 = memtotal_kb(m)
    d = m.virtio_mem_device(region_size="2G", block_size="256M", requested_size="512M")
    # 2 big blocks of 256 MiB = 4 memory blocks, all online, nothing faked offline
    assert d.block_states() == {16: "added", 17: "added"}
    assert [b for b in sorted(m.memory_blocks) if b >= FIRST_MB] == [32, 33, 34, 35]
    assert memtotal_kb(m) - t0 == 512 * 1024
    d.set_requested_size("256M")
    assert d.block_states() == {16: "added"}
    assert [b for b in sorted(m.memory_blocks) if b >= FIRST_MB] == [32, 33]
    assert memtotal_kb(m) - t0 == 256 * 1024
    assert "  100000000-10fffffff : System RAM (virtio_mem)\n" in m.procfs.read("/proc/iomem")


def test_bbm_refused_unplug_rolls_back(backend):
    m = machine(backend, cmdline="memhp_default_state=online_movable")
    d = m.virtio_mem_device(region_size="1G", block_size="256M", requested_size="256M")
    t1 = memtotal_kb(m)
    m.inject("unmovable", pfn=(BASE + 200 * MiB) // PAGE)
    d.set_requested_size(0)
    # safe unplug fakes the online sections offline one by one; the one holding the page
    # refuses, the ones before are onlined again: nothing changed but the request
    assert d.last_rc == -errno.EBUSY and d.block_states() == {16: "added"}
    assert memtotal_kb(m) == t1 and d.size == 256 * MiB
    assert not kpf(m, BASE) >> KPF_OFFLINE & 1


# -- bad input -----------------------------------------------------------------------------------

def test_requested_size_refused_leaves_machine_unchanged():
    m = machine()
    d = m.virtio_mem_device(region_size="1G", requested_size="64M")
    snap = m.snapshot()
    for bad in ("3M", "2G"):            # not a multiple of 2 MiB; beyond the 1 GiB memdev
        with pytest.raises(HotplugError) as e:
            d.set_requested_size(bad)
        assert e.value.errno == errno.EINVAL and bad[:-1] in str(e.value) or "0x" in str(e.value)
        assert m.snapshot() == snap


@pytest.mark.parametrize("kw,err", [
    ({"block_size": "3M"}, errno.EINVAL),
    ({"block_size": "512K"}, errno.EINVAL),
    ({"region_size": "1000M", "block_size": "16M"}, errno.EINVAL),
    ({"requested_size": "2G"}, errno.EINVAL),
    ({"node": 3}, errno.EINVAL),
    ({"addr": BASE + MiB}, errno.EINVAL),
])
def test_device_refused(kw, err):
    m = machine()
    snap = m.snapshot()
    with pytest.raises(HotplugError) as e:
        m.virtio_mem_device(**{"region_size": "1G", **kw})
    assert e.value.errno == err
    assert m.snapshot() == snap


def test_second_device_placed_after_first_and_overlap_refused():
    m = machine()
    m.virtio_mem_device(region_size="1G")
    d2 = m.virtio_mem_device(region_size="512M")
    assert d2.addr == BASE + GiB and d2.name == "virtio1"
    snap = m.snapshot()
    with pytest.raises(HotplugError) as e:
        m.virtio_mem_device(addr=BASE + 512 * MiB, region_size="1G")
    assert e.value.errno == errno.EEXIST and m.snapshot() == snap


# -- auto-movable ----------------------------------------------------------------------------------

def test_online_policy_params():
    m = machine(cmdline="memory_hotplug.online_policy=auto-movable "
                        "memory_hotplug.auto_movable_ratio=0x20 "
                        "memory_hotplug.auto_movable_numa_aware=n")
    p = "/sys/module/memory_hotplug/parameters/"
    assert m.sysfs.read(p + "online_policy") == "auto-movable\n"
    assert m.sysfs.read(p + "auto_movable_ratio") == "32\n"
    assert m.sysfs.read(p + "auto_movable_numa_aware") == "N\n"
    m.sysfs.write(p + "online_policy", "contig-zones")
    assert m.online_policy == "contig-zones"
    with pytest.raises(HotplugError) as e:
        m.sysfs.write(p + "auto_movable_ratio", "-1")
    assert e.value.errno == errno.EINVAL and m.auto_movable_ratio == 32
    with pytest.raises(HotplugError):
        machine(cmdline="memory_hotplug.online_policy=movable")
    old = machine(kernel="5.13", cmdline="memory_hotplug.online_policy=auto-movable")
    assert old.unknown_params == ["memory_hotplug.online_policy=auto-movable"]


def test_auto_movable_ratio_decides_zones(backend):
    """auto_movable_can_online_movable with one node: a block goes to ZONE_MOVABLE while
    movable + 32768 <= ratio * kernel_early / 100, where kernel_early is the boot memory's
    present_early_pages plus what this device's own group has in ZONE_NORMAL (ratio 100 here:
    the default 301 lets all 3 GiB go movable on 1 GiB of boot memory)."""
    m = machine(backend, cmdline="memhp_default_state=online "
                                 "memory_hotplug.online_policy=auto-movable "
                                 "memory_hotplug.auto_movable_ratio=100")
    early = sum(z.present_early_pages for z in m.pgdats[0].node_zones)
    d = m.virtio_mem_device(region_size="4G", requested_size="3G")
    expect, movable, kernel = [], 0, 0
    for _ in range(24):                 # 3 GiB = 24 blocks, all plugged whole
        if movable + BLOCK_PAGES <= 100 * (early + kernel) // 100:
            expect.append("Movable")
            movable += BLOCK_PAGES
        else:
            expect.append("Normal")
            kernel += BLOCK_PAGES
    got = [m.memory_blocks[FIRST_MB + i].zone.name for i in range(24)]
    assert got == expect
    assert "Normal" in got and "Movable" in got         # the ratio bites within 3 GiB
    assert d.group.present_movable_pages == movable
    assert d.group.present_kernel_pages == kernel


def test_auto_movable_contig_zones_differs(backend):
    m = machine(backend, cmdline="memhp_default_state=online")
    m.virtio_mem_device(region_size="1G", requested_size="256M")
    assert [m.memory_blocks[FIRST_MB + i].zone.name for i in range(2)] == ["Normal", "Normal"]


def test_second_node(backend):
    m = hotmem.Machine(arch="x86_64", kernel="6.1", boot_memory={0: "1G", 1: "1G"},
                       cpus={0: 1, 1: 1}, cmdline="memhp_default_state=online", backend=backend)
    t0 = memtotal_kb(m)
    d = m.virtio_mem_device(region_size="1G", node=1, requested_size="64M")
    blk = m.memory_blocks[d.first_id]
    assert blk.nid == 1 and blk.zone.node == 1
    assert d.group.nid == 1 and memtotal_kb(m) - t0 == 64 * 1024


# -- scenario files ------------------------------------------------------------------------------

SCENARIO = """
name = "v"
[machine]
cmdline = "memhp_default_state=online"
[[steps]]
op = "hotplug"
dimm = "d1"
[[steps]]
op = "virtio_mem"
dimm = "vm0"
size = "1G"
requested = "64M"
[[steps]]
op = "resize"
dimm = "vm0"
requested = "0"
"""


def test_scenario_steps():
    from hotmem.validate.runner import run_model
    from hotmem.validate.scenario import parse_scenario
    sc = parse_scenario(SCENARIO)
    # the DIMM takes 128 MiB at 4 GiB; the device goes next, aligned to its 2 MiB block size
    assert [(s.op, s.addr) for s in sc.steps] == [("hotplug", BASE), ("virtio_mem", BASE + BLOCK),
                                                  ("resize", None)]
    run = run_model(sc)
    add, resize = run.steps[2], run.steps[3]
    assert add.ok and add.dimms["vm0"]["plugged"] == 64 * MiB
    assert add.dimms["vm0"]["blocks"] == {FIRST_MB + 1: "kernel_partial"}
    # kpageflags of the region: 16384 plugged pages (in the buddy), 16384 fake-offline ones
    flags = add.reading["kpage"][((BASE + BLOCK) // PAGE, GiB // PAGE)]["flags"]
    offline = [int(f) >> KPF_OFFLINE & 1 for f in flags[:BLOCK_PAGES]]
    assert offline == [0] * 16384 + [1] * 16384
    assert resize.ok and resize.dimms["vm0"]["plugged"] == 0
    assert f"{hotmem.validate.scenario.MEMORY}/memory{FIRST_MB + 1}/state" \
        not in resize.reading["files"]


@pytest.mark.parametrize("bad", [
    'op = "resize"\ndimm = "d1"\nrequested = "0"',          # d1 is a DIMM
    'op = "online"\ndimm = "vm0"',                           # a virtio-mem device
    'op = "resize"\ndimm = "vm0"',                           # no requested size
])
def test_scenario_refused(bad):
    from hotmem.validate.scenario import ScenarioError, parse_scenario
    with pytest.raises(ScenarioError):
        parse_scenario(SCENARIO + "[[steps]]\n" + bad + "\n")


def test_5_13_sbm_states_and_sub_blocks():
    """5.13: 4 MiB sub blocks (MAX_ORDER_NR_PAGES), one ONLINE_PARTIAL state for both zones."""
    m = machine(kernel="5.13", cmdline="memhp_default_state=online_movable")
    t0 = memtotal_kb(m)
    d = m.virtio_mem_device(region_size="1G", requested_size="64M")
    assert d.block_states() == {FIRST_MB: "online_partial"}
    assert d.plugged_sub_blocks(FIRST_MB) == list(range(16))    # 16 x 4 MiB
    assert memtotal_kb(m) - t0 == 64 * 1024
