"""Watermarks, lowmem reserves, pageset sizing and vmstat thresholds against Linux 6.1.

Expected numbers are hand computations (written out next to each assertion) or
what the real Debian 6.1.176 kernel printed in /proc/zoneinfo
(/work/shared/kernel-6.1-readings, see its README).

Boot history: the baseline's watermarks and protection were computed during
boot, when DMA32 had fewer managed pages than the baseline reading shows; the
pages freed afterwards (initrd, the kernel's init sections: the "Freeing ...
memory" lines of the boot dmesg) raised managed without a recomputation.  With
the baseline's own managed counts no pages_min fits both DMA min 190 and DMA32
min 11073 (test_baseline_not_derivable_from_its_own_counts).  The replay
therefore starts from boot: DMA32 managed at boot = baseline managed - the pages
freed after the initcalls, run through the boot sequence, then those pages are
added back without recomputing.
"""
import copy
import errno
import functools
import glob
import json
import math
import os
import re
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from hotmem.errors import HotplugError
from hotmem.mm import huge_memory, page_alloc, vmstat
from hotmem.mm import watermark as wm

import bare_machine as bm

READINGS = "/work/shared/kernel-6.1-readings"
FILES = sorted(glob.glob(os.path.join(READINGS, "*.json")))
BLOCK_PAGES = 32768             # 128 MiB memory block / 4 KiB
MOM_VMEMMAP_PAGES = 512         # 32768 struct pages * 64 bytes / 4096

# Memory the boot frees after subsys_initcall (hugepage_init), all of it in DMA32
# (kernel image from 0x1000000 with nokaslr, initrd at 0x3fee3000): rootfs_initcall's
# initrd, then kernel_init's free_initmem (decrypted, initmem) and mark_readonly (gaps).
LATE_FREES = (
    "Freeing initrd memory",
    "Freeing unused decrypted memory",
    "Freeing unused kernel image (initmem) memory",
    "Freeing unused kernel image (text/rodata gap) memory",
    "Freeing unused kernel image (rodata/data gap) memory",
)
DMA32_START = 0x1000000


pytestmark = pytest.mark.skipif(not FILES, reason="kernel 6.1 readings not available")


@functools.lru_cache(maxsize=None)
def load(path):
    with open(path) as f:
        return json.load(f)


def settled_zones(reading):
    return {z["zone"]: z for z in reading["parsed"]["zoneinfo"]["zones"]}


def late_freed_pages(reading):
    """Pages freed after the boot initcalls, from the baseline's boot dmesg."""
    dmesg = reading["raw"]["dmesg"]
    kib = 0
    for what in LATE_FREES:
        m = re.search(re.escape(what) + r": (\d+)K", dmesg)
        assert m, what
        kib += int(m.group(1))
    ramdisk = re.search(r"RAMDISK: \[mem (0x[0-9a-f]+)-", dmesg)
    kernel = re.search(r"^\s*([0-9a-f]+)-[0-9a-f]+ : Kernel code", reading["raw"]["iomem"], re.M)
    assert int(ramdisk.group(1), 16) >= DMA32_START and int(kernel.group(1), 16) >= DMA32_START
    return kib // 4


def boot_from_baseline(d):
    base_reading = d["steps"][0]["readings"][-1]
    base = settled_zones(base_reading)
    late = late_freed_pages(d["steps"][0]["readings"][0])
    state = bm.boot_state({
        (0, "DMA"): (base["DMA"]["managed"], base["DMA"]["present"]),
        (0, "DMA32"): (base["DMA32"]["managed"] - late, base["DMA32"]["present"]),
    })
    state.adjust_managed_page_count(state.zone(0, wm.ZONE_DMA32), late)
    return state


def state_from_reading(reading, min_free_kbytes):
    """A state holding what a reading printed (promo = high + (high - low))."""
    zs = settled_zones(reading)
    nodes = []
    zones = []
    for i, name in enumerate(wm.ZONE_NAMES):
        z = zs[name]
        pcp = None
        if z.get("pagesets"):
            (p,) = z["pagesets"].values()
            pcp = (p["high"], p["batch"])
        zones.append(bm.bare_zone(0, i, z["managed"], z["present"],
                             (z["min"], z["low"], z["high"], 2 * z["high"] - z["low"]),
                             z["boost"], tuple(z["protection"]),
                             pcp[0] if pcp else 4, pcp[1] if pcp else 1, pcp,
                             z.get("vm_stats_threshold") or 0))
    nodes.append(bm.bare_pgdat(0, zones))
    return bm.BareMachine(nodes, min_free_kbytes=min_free_kbytes, boot_pageset=(4, 1))


def block_events(d):
    """Per step: the successful per-block online/offline operations, in order.

    Zone of an `online` write: the first of the block's valid_zones before it
    (the default zone); `online_movable`: Movable; an offline leaves the zone
    the block was onlined to.  memmap_on_memory is used only for a one-block
    DIMM on 6.1 (512 vmemmap pages: present but not managed).
    """
    mom = "memory_hotplug.memmap_on_memory=1" in d["kernel_cmdline"]
    dimm_size = {}
    zone_of = {}
    last = None
    for step in d["steps"]:
        events = []
        if step["op"] == "add":
            dimm_size[step["spec"]["dimm"]] = step["dimm"]["size"]
        if step["op"] in ("online", "offline"):
            size = dimm_size[step["spec"]["dimm"]]
            vmemmap = MOM_VMEMMAP_PAGES if mom and size == d["block_size_bytes"] else 0
            for attempt in step["guest"]:
                if attempt["rc"] != 0:
                    continue
                blk = attempt["block"]
                if attempt["how"] == "online_movable":
                    zone_of[blk] = "Movable"
                elif attempt["how"] == "online":
                    valid = last["parsed"]["memblocks"]["blocks"][f"memory{blk}"]["valid_zones"]
                    zone_of[blk] = valid.split()[0]
                events.append((step["op"], wm.ZONE_NAMES.index(zone_of[blk]),
                               BLOCK_PAGES - vmemmap, vmemmap))
        if step.get("readings"):
            last = step["readings"][-1]
        yield step, events


def apply_events(state, events):
    for op, idx, nr_pages, vmemmap in events:
        fn = bm.online_pages_watermarks if op == "online" else bm.offline_pages_watermarks
        fn(state, 0, idx, nr_pages, vmemmap)
    return state


def printed(zinfo_zone):
    z = zinfo_zone
    out = {"boost": z["boost"], "min": z["min"], "low": z["low"], "high": z["high"],
           "managed": z["managed"], "present": z["present"],
           "protection": tuple(z["protection"])}
    if z.get("pagesets"):
        out["pagesets"] = tuple((int(c), p["high"], p["batch"]) for c, p in z["pagesets"].items())
        out["stat_threshold"] = z["vm_stats_threshold"]
    return out


def modelled(zi):
    out = {"boost": zi.boost, "min": zi.min, "low": zi.low, "high": zi.high,
           "managed": zi.managed, "present": zi.present, "protection": zi.protection}
    if zi.pagesets is not None:
        out["pagesets"] = zi.pagesets
        out["stat_threshold"] = zi.stat_threshold
    return out


def implied_totalreserve(reading):
    """totalreserve_pages solved from MemAvailable (mm/page_alloc.c:si_mem_available, 6.1)."""
    p = reading["parsed"]
    v = p["vmstat"]
    wmark_low = sum(z["low"] for z in p["zoneinfo"]["zones"])
    pagecache = v["nr_active_file"] + v["nr_inactive_file"]
    pagecache -= min(pagecache // 2, wmark_low)
    reclaimable = v["nr_slab_reclaimable"] + v["nr_kernel_misc_reclaimable"]
    reclaimable -= min(reclaimable // 2, wmark_low)
    return v["nr_free_pages"] + pagecache + reclaimable - p["meminfo"]["MemAvailable"] // 4


def replay(path, start=None):
    d = load(path)
    state = start if start is not None else boot_from_baseline(d)
    for step, events in block_events(d):
        state = apply_events(state, events)
        yield step, state


# --- every step of every reading ---------------------------------------------------------------

@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(f)[:-5] for f in FILES])
def test_zoneinfo_every_step(path):
    checked = 0
    for step, state in replay(path):
        if not step.get("readings"):
            continue
        real = settled_zones(step["readings"][-1])
        for zi in bm.zoneinfo(state):
            assert modelled(zi) == printed(real[zi.name]), (step["name"], zi.name)
            checked += 1
    assert checked >= 5 * 4


@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(f)[:-5] for f in FILES])
def test_totalreserve_every_step(path):
    """Where at least two of a step's three readings agree on the MemAvailable-implied value."""
    asserted = 0
    for step, state in replay(path):
        values = Counter(implied_totalreserve(r) for r in step.get("readings", []))
        if values:
            value, n = values.most_common(1)[0]
            if n >= 2:
                assert state.page_alloc.totalreserve_pages == value, step["name"]
                asserted += 1
    assert asserted >= 3


def test_min_free_kbytes_track_through_a_and_a2():
    """Normal online: 3 zones <= Normal want 3 * 5632 pages, but 5% of lowmem caps it.

    By hand: the old highs (284, 16609, 0) leave 3556 + 208914 + 32256 = 244726
    pages, int_sqrt(244726 * 4 * 16) = 3957 kB, pages_min 989 over 261619
    managed gives highs 20 / 1302 / 185, so the cap is (3820 + 224221 + 32071) / 20
    = 13005 pages = 52020 kB.  a2 (quick): the offline brings it back down to
    min(2 * 5632, cap) pages = 45056 kB.
    """
    a = [s.page_alloc.min_free_kbytes for _, s in replay(os.path.join(READINGS, "a_mom1_128M_online.json"))]
    assert a == [45056, 45056, 52020, 52020, 52020]
    a2 = [s.page_alloc.min_free_kbytes for _, s in
          replay(os.path.join(READINGS, "a2_mom1_128M_online_quick.json"))]
    assert a2 == [45056, 45056, 52020, 45056, 45056]


def test_start_from_baseline_reading_gives_same_steps():
    """Starting from what the baseline printed (min_free_kbytes 45056 = 4 * 11264) is equivalent.

    The old min_free_kbytes is never read while user_min_free_kbytes is -1:
    1024 instead of 45056 gives the same result.
    """
    for path in FILES:
        d = load(path)
        base = d["steps"][0]["readings"][-1]
        ref = [bm.zoneinfo(s) for _, s in replay(path)]
        for mfk in (45056, 1024):
            got = [bm.zoneinfo(s) for _, s in replay(path, state_from_reading(base, mfk))]
            assert got[1:] == ref[1:], (path, mfk)


def test_baseline_not_derivable_from_its_own_counts():
    """DMA min 190 needs pages_min >= 11349, DMA32 min 11073 needs pages_min <= 11262 (managed 3840 /
    225523 of 229363)."""
    fits = [pm for pm in range(0, 70000)
            if pm * 3840 // 229363 == 190 and pm * 225523 // 229363 == 11073]
    assert fits == []
    # with the boot-time DMA32 count 225523 - 2258 = 223265 (lowmem 227105): pages_min 11264
    assert 11264 * 3840 // 227105 == 190 and 11264 * 223265 // 227105 == 11073
    assert 223265 // 256 == 872                     # DMA protection printed at baseline


def test_boot_sequence_reproduces_baseline():
    d = load(os.path.join(READINGS, "d_mom1_128M_online_movable.json"))
    assert late_freed_pages(d["steps"][0]["readings"][0]) == (1012 + 2036 + 2820 + 2040 + 1124) // 4
    s = boot_from_baseline(d)
    assert s.page_alloc.min_free_kbytes == 45056 and s.page_alloc.khugepaged_running
    dma, dma32 = s.zone(0, wm.ZONE_DMA), s.zone(0, wm.ZONE_DMA32)
    assert (dma.min_wmark, dma.low_wmark, dma.high_wmark) == (190, 237, 284)
    assert (dma32.min_wmark, dma32.low_wmark, dma32.high_wmark) == (11073, 13841, 16609)
    assert dma.lowmem_reserve == (0, 872, 872, 872, 872)
    # unpopulated zones' zone_pcp_update wrote high 4 (= batch 1 * 4) into the shared boot pageset
    assert s.page_alloc.boot_pageset == (4, 1)


def test_boot_postcore_without_khugepaged():
    """At postcore khugepaged is not running: min_free_kbytes = int_sqrt(4 * 227105 * 16) = 3812."""
    s = bm.make_state({(0, "DMA"): (3840, 3998), (0, "DMA32"): (223265, 258016)},
                      khugepaged_running=False)
    page_alloc.init_per_zone_wmark_min(s)
    assert s.page_alloc.min_free_kbytes == 3812
    huge_memory.hugepage_init(s)
    assert s.page_alloc.min_free_kbytes == 45056


def test_hugepage_init_small_machine_disables_thp():
    s = bm.make_state({(0, "DMA32"): (100000, 100000)}, khugepaged_running=False)
    page_alloc.init_per_zone_wmark_min(s)
    huge_memory.hugepage_init(s)
    assert not s.page_alloc.thp_enabled and not s.page_alloc.khugepaged_running
    # int_sqrt(400000 * 16) = 2529
    assert s.page_alloc.min_free_kbytes == 2529


# --- hand computations -------------------------------------------------------------------------

def d_online_state():
    d = load(os.path.join(READINGS, "d_mom1_128M_online_movable.json"))
    s = boot_from_baseline(d)
    after = copy.deepcopy(s)
    bm.online_pages_watermarks(after, 0, wm.ZONE_MOVABLE, 32256, 512)
    return s, after


def test_d_online_movable_by_hand():
    before, s = d_online_state()
    # calculate_min_free_kbytes with the baseline highs: (3840-284)+(225523-16609) = 212470 pages
    assert wm.nr_free_buffer_pages(before) == 212470
    # int_sqrt(212470 * 4 * 16) = 3687; the first setup gives DMA high 19, DMA32 high 1243:
    # (3840-19)+(225523-1243) = 228101 -> cap 11405 > 2 zones * 512 * 11 = 11264 -> 45056 kB
    assert s.page_alloc.min_free_kbytes == 45056
    mov, dma32 = s.zone(0, wm.ZONE_MOVABLE), s.zone(0, wm.ZONE_DMA32)
    # 11264 * 32256 // 261619 = 1388; step max(1388 >> 2, 32256 * 10 // 10000) = 347
    assert (mov.min_wmark, mov.low_wmark, mov.high_wmark, mov.promo_wmark) == (1388, 1735, 2082,
                                                                               2429)
    assert dma32.min_wmark == 11264 * 225523 // 261619 == 9709
    assert mov.pcp == (1735, 7)             # 32256 >> 10 = 31, /4 = 7, 7 + 3 = 10 -> 8 - 1
    assert s.zone(0, wm.ZONE_DMA).lowmem_reserve == (0, 225523 // 256, 225523 // 256,
                                                     257779 // 256, 257779 // 256)
    assert mov.stat_threshold == 2          # 2 * fls(1) * (1 + fls(32256 >> 15 = 0))
    # Movable never counts in nr_free_buffer_pages
    assert wm.nr_free_buffer_pages(s) == (3840 - 247) + (225523 - 14563)


def test_dma_batch_is_one_because_zone_batchsize_is_zero():
    m = bm.make_state({})                      # x86_64: 4 KiB pages
    z = bm.bare_zone(0, wm.ZONE_DMA, 3840, 3998)
    # 3840 >> 10 = 3, / 4 = 0 -> 1, rounddown_pow_of_two(1 + 0) - 1 = 0; the caller takes max(1, 0)
    assert wm.zone_batchsize(m, z) == 0
    for managed, batch in ((225523, 63), (32256, 7), (65536, 15), (129024, 31),
                           (1000000, 63), (4096, 0), (8192, 1)):
        assert wm.zone_batchsize(m, bm.bare_zone(0, 1, managed, managed)) == batch, managed


def test_zone_highsize_split():
    z = bm.bare_zone(1, wm.ZONE_NORMAL, 50000, 50000, (100, 1000, 1900, 2800))
    nodes = (bm.bare_pgdat(0, [bm.bare_zone(0, i) for i in range(5)]),
             bm.bare_pgdat(1, [z if i == 2 else bm.bare_zone(1, i) for i in range(5)]))
    two_on_node1 = bm.BareMachine(nodes, online_cpus=((0, 0), (1, 1), (2, 1)))
    assert wm.zone_highsize(two_on_node1, z, 7) == 1000 // 2
    assert wm.zone_highsize(two_on_node1, z, 7, cpu_online=1) == 1000 // 3
    assert wm.zone_highsize(two_on_node1, z, 511) == 511 * 4
    cpuless = bm.BareMachine(nodes, online_cpus=((0, 0), (1, 0), (2, 0), (3, 0)))
    assert wm.zone_highsize(cpuless, z, 7) == 1000 // 4
    frac = bm.BareMachine(nodes, online_cpus=((0, 1),), percpu_pagelist_high_fraction=8)
    assert wm.zone_highsize(frac, z, 7) == 50000 // 8


def test_normal_threshold_kernel_table():
    """Rows of the table in mm/vmstat.c:calculate_normal_threshold's comment."""
    gb = 1 << 18                                   # pages per GiB
    rows = ((8, 1, gb - 1000), (16, 2, gb - 1000), (20, 2, gb + 1000), (4, 2, 30000),
            (10, 16, 30000), (40, 16, 900 * 256), (125, 1024, 12 * gb))
    for threshold, ncpus, managed in rows:
        s = bm.make_state({(0, "Normal"): (managed, managed)},
                          online_cpus=tuple((c, 0) for c in range(ncpus)))
        assert vmstat.calculate_normal_threshold(s, s.zone(0, wm.ZONE_NORMAL)) == threshold


def test_min_free_kbytes_sqrt_table():
    """calculate_min_free_kbytes' comment: 16 MB -> 512k, 1024 MB -> 4096k, 16384 MB -> 16384k.

    Clamped to 128 (512 kB: int_sqrt(8192) = 90) and 262144 (8 TiB: int_sqrt(2^37) = 370727).
    """
    for pages, kbytes in ((16 * 256, 512), (1024 * 256, 4096), (16384 * 256, 16384),
                          (128, 128), (1 << 31, 262144)):
        s = bm.make_state({(0, "Normal"): (pages, pages)})
        wm.calculate_min_free_kbytes(s)
        assert s.page_alloc.min_free_kbytes == kbytes


def test_min_free_kbytes_goes_down_reading_stale_highs():
    """Without THP only the square root counts, and it reads the highs of the previous pass."""
    s = bm.make_state({(0, "DMA32"): (1 << 20, 1 << 20)}, thp_enabled=False,
                      khugepaged_running=False)
    page_alloc.init_per_zone_wmark_min(s)
    # highs still 0: int_sqrt(4 GiB in kB * 16) = 8192
    assert s.page_alloc.min_free_kbytes == 8192
    # min 2048, step max(512, 1048576 * 10 // 10000 = 1048): high 2048 + 2 * 1048 = 4144
    assert s.zone(0, wm.ZONE_DMA32).high_wmark == 4144
    bm.offline_pages_watermarks(s, 0, wm.ZONE_DMA32, 1 << 19)
    # int_sqrt((524288 - 4144) * 4 * 16) = 5769 (5792 had the highs been recomputed first)
    assert s.page_alloc.min_free_kbytes == 5769


def test_user_min_free_kbytes():
    before, _ = d_online_state()
    # a user value above the square root sticks; khugepaged's 45056 does not exceed it
    s = copy.deepcopy(before)
    wm.min_free_kbytes_sysctl_handler(s, 50000)
    assert s.page_alloc.user_min_free_kbytes == 50000
    assert s.zone(0, wm.ZONE_DMA32).min_wmark == 12500 * 225523 // 229363
    bm.online_pages_watermarks(s, 0, wm.ZONE_MOVABLE, 32256, 512)
    assert s.page_alloc.min_free_kbytes == 50000
    # below the square root (3687) it is replaced, then raised by khugepaged
    s = copy.deepcopy(before)
    wm.min_free_kbytes_sysctl_handler(s, 2000)
    bm.online_pages_watermarks(s, 0, wm.ZONE_MOVABLE, 32256, 512)
    assert s.page_alloc.min_free_kbytes == 45056
    # 4000: sqrt 3687 loses, the written 4000 is kept and khugepaged raises it to 45056;
    # at the offline sqrt 3705 loses again and the *previous* 45056 is what stays
    s = copy.deepcopy(before)
    wm.min_free_kbytes_sysctl_handler(s, 4000)
    bm.online_pages_watermarks(s, 0, wm.ZONE_MOVABLE, 32256, 512)
    assert s.page_alloc.min_free_kbytes == 45056
    bm.offline_pages_watermarks(s, 0, wm.ZONE_MOVABLE, 32256, 512)
    assert s.page_alloc.min_free_kbytes == 45056


def test_reonline_pageset_keeps_boot_values_until_recomputed():
    _, s = d_online_state()
    bm.offline_pages_watermarks(s, 0, wm.ZONE_MOVABLE, 32256, 512)
    mov = s.zone(0, wm.ZONE_MOVABLE)
    # managed 0: batch max(1, 0) = 1, high max(0, 1 * 4) = 4, remembered; pagesets freed
    assert (mov.pageset_high, mov.pageset_batch, mov.pcp) == (4, 1, None)
    assert mov.lowmem_reserve == (0,) * 5 and not mov.populated_zone()
    # a fresh pageset (high 0, batch 1) is not rewritten: the computed (4, 1) equals the remembered
    fresh = copy.deepcopy(s)
    wm.setup_zone_pageset(fresh, fresh.zone(0, wm.ZONE_MOVABLE))
    assert fresh.zone(0, wm.ZONE_MOVABLE).pcp == (0, 1)
    bm.online_pages_watermarks(s, 0, wm.ZONE_MOVABLE, 32256, 512)
    assert s.zone(0, wm.ZONE_MOVABLE).pcp == (1735, 7)


def test_pcp_disable_enable():
    _, s = d_online_state()
    mov = s.zone(0, wm.ZONE_MOVABLE)
    wm.zone_pcp_disable(s, mov)
    assert mov.pcp == (0, 1)
    wm.zone_pcp_enable(s, mov)
    assert mov.pcp == (1735, 7)


def test_nr_free_buffer_pages_other_nodes_and_low_zones():
    zones0 = [bm.bare_zone(0, 0, 100, 100, (50, 60, 200, 300))] + [
        bm.bare_zone(0, i) for i in range(1, 5)]
    zones1 = [bm.bare_zone(1, 0), bm.bare_zone(1, 1, 1000, 1000, (0, 0, 100, 0)),
              bm.bare_zone(1, 2, 5000, 5000, (0, 0, 300, 0)), bm.bare_zone(1, 3, 9000, 9000),
              bm.bare_zone(1, 4)]
    s = bm.BareMachine((bm.bare_pgdat(0, zones0), bm.bare_pgdat(1, zones1)),
                       online_cpus=((0, 0),))
    # DMA below its high counts 0; node 1 DMA32 900 + Normal 4700; Movable never
    assert wm.nr_free_buffer_pages(s) == 900 + 4700
    assert [(z.node, z.name) for z in wm.node_zonelist(s, 0)] == [
        (0, "DMA"), (1, "Movable"), (1, "Normal"), (1, "DMA32")]


def test_lowmem_reserve_ratio_and_totalreserve():
    s = bm.make_state({(0, "DMA"): (3840, 3998), (0, "DMA32"): (225523, 258016),
                       (0, "Normal"): (32768, 32768), (0, "Movable"): (65536, 65536)})
    wm.setup_per_zone_lowmem_reserve(s)
    assert s.zone(0, 0).lowmem_reserve == (0, 225523 // 256, 258291 // 256, 323827 // 256,
                                           323827 // 256)
    assert s.zone(0, 1).lowmem_reserve == (0, 0, 32768 // 256, 98304 // 256, 98304 // 256)
    assert s.zone(0, 2).lowmem_reserve == (0, 0, 0, 65536 // 32, 65536 // 32)
    assert s.zone(0, 3).lowmem_reserve == (0,) * 5
    # watermarks all 0: totalreserve = max reserve per zone, capped at managed
    assert s.page_alloc.totalreserve_pages == min(1264, 3840) + 384 + 2048 + 0
    off = bm.make_state({(0, "DMA"): (3840, 3998), (0, "DMA32"): (1000, 1000)},
                        lowmem_reserve_ratio=(0, 256, 32, 0, 0))
    wm.setup_per_zone_lowmem_reserve(off)
    assert off.zone(0, 0).lowmem_reserve == (0,) * 5


def test_inputs_refused():
    with pytest.raises(HotplugError) as e:
        bm.bare_zone(0, 1, -1, 10)
    assert e.value.errno == errno.EINVAL and "-1" in str(e.value)
    with pytest.raises(HotplugError, match="managed_pages 20 > present_pages 10"):
        bm.bare_zone(0, 1, 20, 10)
    with pytest.raises(HotplugError, match="zone index 5"):
        bm.bare_zone(0, 5)
    with pytest.raises(HotplugError, match="watermark_scale_factor 0"):
        bm.make_state({(0, "DMA32"): (1, 1)}, watermark_scale_factor=0)
    with pytest.raises(HotplugError, match="percpu_pagelist_high_fraction 3"):
        bm.make_state({(0, "DMA32"): (1, 1)}, percpu_pagelist_high_fraction=3)
    with pytest.raises(HotplugError, match="zone 'HighMem'"):
        bm.make_state({(0, "HighMem"): (1, 1)})
    s = bm.make_state({(0, "DMA32"): (100, 100)})
    with pytest.raises(HotplugError, match="min_free_kbytes -5"):
        wm.min_free_kbytes_sysctl_handler(s, -5)
    with pytest.raises(HotplugError, match="offline of 200 pages"):
        bm.offline_pages_watermarks(s, 0, wm.ZONE_DMA32, 200)
    with pytest.raises(HotplugError, match="node 3"):
        bm.online_pages_watermarks(s, 3, wm.ZONE_NORMAL, 32768)
    with pytest.raises(HotplugError, match="cpu 1 on node 2"):
        bm.BareMachine(s.pgdats.values(), online_cpus=((0, 0), (1, 2)))
    with pytest.raises(HotplugError, match="no zone has managed pages"):
        wm.setup_per_zone_wmarks(bm.make_state({}))


# --- invariants over arbitrary machines ----------------------------------------------------------

_counts = st.lists(st.integers(0, 1 << 22), min_size=4, max_size=4)


@settings(max_examples=60, deadline=None)
@given(st.lists(_counts, min_size=1, max_size=3), st.integers(1, 6), st.booleans())
def test_invariants(node_counts, ncpus, thp):
    counts = {(nid, i): (m, m) for nid, ms in enumerate(node_counts) for i, m in enumerate(ms)}
    if not any(m for m, _ in counts.values()):
        counts[(0, wm.ZONE_DMA32)] = (4096, 4096)
    s = bm.boot_state(counts, online_cpus=tuple((c, 0) for c in range(ncpus)), thp_enabled=thp)
    pages_min = s.page_alloc.min_free_kbytes // 4
    zones = list(wm.for_each_zone(s))
    mins = sum(z.min_wmark for z in zones)
    assert pages_min - len(zones) < mins <= pages_min
    for z in zones:
        step = z.low_wmark - z.min_wmark
        assert (step >= 0 and z.high_wmark - z.low_wmark == step
                and z.promo_wmark - z.high_wmark == step)
        if z.populated_zone():
            high, batch = z.pcp
            assert (high, batch) == (z.pageset_high, z.pageset_batch)
            assert batch >= 1 and ((batch + 1) & batch) == 0
            assert high >= 4 * batch and 2 <= z.stat_threshold <= 125
        assert all(a <= b for a, b in zip(z.lowmem_reserve[z.idx + 1:], z.lowmem_reserve[z.idx + 2:]))
    assert 0 <= s.page_alloc.totalreserve_pages <= sum(z.managed_pages for z in zones)
    assert s.page_alloc.min_free_kbytes >= 128


# --- 64 KiB pages: PAGE_SHIFT and pageblock_order from the arch --------------------------------

@pytest.mark.parametrize("cfg", [dict(arch="arm64", page_size="64K"), dict(arch="powerpc64")],
                         ids=["arm64-64K", "powerpc64-radix-64K"])
def test_64k_pages_watermarks_by_hand(cfg):
    """A 4 GiB boot with 64 KiB pages, the kernel formulas written out (mm/page_alloc.c,
    mm/khugepaged.c, mm/huge_memory.c, 6.1) from the zones' managed pages.

    arm64 64K: pageblock_order = HUGETLB_PAGE_ORDER = PMD_SHIFT 29 - 16 = 13; QEMU virt RAM at
    1 GiB..5 GiB gives DMA up to 4 GiB, DMA32 empty (same limit), Normal above.
    powerpc64 radix 64K: pageblock_order = 2 MiB huge pages: 21 - 16 = 5; only Normal.
    """
    from hotmem import Machine
    m = Machine(boot_memory="4G", **cfg)
    page_kb = 64
    pb_order = 13 if cfg["arch"] == "arm64" else 5
    assert (m.arch.page_shift, m.arch.pageblock_order) == (16, pb_order)
    zones = [z for z in wm.for_each_zone(m) if z.managed_pages]
    names = [z.name for z in zones]
    assert names == (["DMA", "Normal"] if cfg["arch"] == "arm64" else ["Normal"])
    managed = [z.managed_pages for z in zones]
    total = sum(managed)
    # postcore init_per_zone_wmark_min: highs still 0, lowmem = every managed page (<= Normal)
    lowmem_kbytes = total * page_kb
    sqrt_kb = math.isqrt(lowmem_kbytes * 16)
    sqrt_kb = min(max(sqrt_kb, 128), 262144)
    if cfg["arch"] == "arm64":
        assert sqrt_kb == 8187                   # int_sqrt(65460 * 64 * 16), not 2046 (4 KiB)
    # hugepage_init: 512 MiB = 512 << (20 - 16) = 8192 pages, so THP stays on
    assert total >= 8192 and m.page_alloc.thp_enabled and m.page_alloc.khugepaged_running
    # setup_per_zone_wmarks with the sqrt value: pages_min = kB >> (16 - 10)
    pages_min = sqrt_kb >> 6
    highs = []
    for zm in managed:
        wmin = pages_min * zm // total
        step = max(wmin >> 2, zm * 10 // 10000)
        highs.append(wmin + 2 * step)
    # set_recommended_min_free_kbytes: 11 pageblocks per populated zone <= Normal, capped at
    # nr_free_buffer_pages() / 20 (with those highs), in kB: << (16 - 10)
    nr_zones = len(zones)
    recommended = (1 << pb_order) * nr_zones * 2 + (1 << pb_order) * nr_zones * 3 * 3
    cap = sum(zm - h for zm, h in zip(managed, highs)) // 20
    recommended = min(recommended, cap) << 6
    expected_min_free_kbytes = max(recommended, sqrt_kb)
    if cfg["arch"] == "arm64":
        # 8192 * 2 * 11 = 180224 pages > cap (49152 - 193 + 16308 - 63) / 20 = 3260
        assert expected_min_free_kbytes == 3260 * 64 == 208640
    else:
        # 32 * 1 * 11 = 352 pages < cap (65463 - 257) / 20 = 3260
        assert expected_min_free_kbytes == 352 * 64 == 22528
    assert m.page_alloc.min_free_kbytes == expected_min_free_kbytes
    # the final watermarks, and what /proc/zoneinfo prints
    pages_min = expected_min_free_kbytes >> 6
    printed = {z.name: z for z in m.procfs.node_infos()[0].zones}
    for z, zm in zip(zones, managed):
        wmin = pages_min * zm // total
        step = max(wmin >> 2, zm * 10 // 10000)
        assert (z.min_wmark, z.low_wmark, z.high_wmark) == (wmin, wmin + step, wmin + 2 * step)
        p = printed[z.name]
        assert (p.min, p.low, p.high) == (wmin, wmin + step, wmin + 2 * step)
        # zone_batchsize: min(managed >> 10, SZ_1M / 64 KiB = 16) / 4, to 2^n - 1
        batch = max(1, min(zm >> 10, 16) // 4)
        batch = (1 << ((batch + batch // 2).bit_length() - 1)) - 1
        assert p.pagesets[0].batch == max(1, batch)
        assert p.pagesets[0].high == max(wmin + step, 4 * max(1, batch))
    if cfg["arch"] == "arm64":
        assert (zones[0].min_wmark, zones[0].low_wmark, zones[0].high_wmark) == (2447, 3058, 3669)
        # DMA protection: Normal and Movable managed / 256 (DMA32 empty); printed per built zone
        assert printed["DMA"].protection == (0, 0, 16308 // 256, 16308 // 256)
        assert list(printed) == ["DMA", "DMA32", "Normal", "Movable"]
    else:
        assert (zones[0].min_wmark, zones[0].low_wmark, zones[0].high_wmark) == (352, 440, 528)
        assert list(printed) == ["Normal", "Movable"]
