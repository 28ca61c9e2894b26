"""Overhead reports (hotmem/report.py), `hotmem compare --json/--plot` and `hotmem lsmem`.

Expected numbers are the kernel's formulas written out here, never taken from the model:
a block of S bytes has S / PAGE_SIZE struct pages of sizeof(struct page) = 64 B, so 128 MiB needs
128 MiB / 4096 x 64 B = 2 MiB = 512 pages of memmap, and 16 GiB needs 16 GiB / 64 = 256 MiB.
A direct-map PMD table maps 512 x 2 MiB = 1 GiB; a vmemmap PMD table maps 1 GiB of struct pages,
i.e. 1 GiB / 64 x 4096 = 64 GiB of RAM. QEMU pc puts the first DIMM of a 1 GiB guest at 4 GiB.
"""
import json

import pytest

from hotmem import Machine
from hotmem.cli import main
from hotmem.errors import HotplugError
from hotmem.lsmem import render_lsmem, size_to_human_string
from hotmem.report import Plan, boot_memory_for_block_size, compare, plot, render_text, to_dict

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
PAGE, STRUCT_PAGE = 4096, 64
BLOCK = 128 * MiB
BLOCK_PAGES = BLOCK // PAGE                         # 32768
MEMMAP_PAGES = BLOCK_PAGES * STRUCT_PAGE // PAGE    # 512 = 2 MiB
DIMM0 = 4 * GiB


@pytest.fixture(scope="module")
def default():
    """The main job's default plan: four 128 MiB DIMMs on node 0, onlined movable."""
    return compare(Plan())


@pytest.fixture(scope="module")
def two_nodes():
    """The same DIMMs alternating between node 0 and a memoryless node 1."""
    return compare(Plan(nodes=(0, 1), fragment=False, costs_for=()))


def test_memmap_per_add_and_where_it_came_from(default):
    alt, reg = default.altmap, default.regular
    assert [a.start for a in alt.adds] == [DIMM0 + i * BLOCK for i in range(4)]
    for a, r in zip(alt.adds, reg.adds):
        # altmap: the 512 memmap pages are the block's own first pages; nothing from the buddy
        assert a.memmap_in_range == {0: MEMMAP_PAGES} and a.memmap_from_buddy == {}
        assert a.nr_vmemmap_pages == MEMMAP_PAGES
        # regular: one order-9 block (512 pages) of node 0's only populated zone, DMA32
        assert r.memmap_in_range == {} and r.memmap_from_buddy == {"0/DMA32": MEMMAP_PAGES}
        assert r.nr_vmemmap_pages == 0
        assert a.memmap_pages == r.memmap_pages == MEMMAP_PAGES
        # onlining gives the buddy the block less its memmap (altmap) or all of it (regular)
        assert a.managed_added == BLOCK_PAGES - MEMMAP_PAGES
        assert r.managed_added == BLOCK_PAGES
    # page tables: [4 GiB, 4.5 GiB) needs one new direct-map PMD table (the first DIMM pays);
    # its struct pages sit at vmemmap offset 4 GiB / 64 = 64 MiB, inside the boot vmemmap PMD
    # table's first GiB: no vmemmap table
    for r in (alt, reg):
        assert [x.page_tables for x in r.adds] == \
            [{"vmemmap": {}, "direct map": {"PMD": 1}}] + [{"vmemmap": {}, "direct map": {}}] * 3
    # drawback a: taken from existing memory = buddy memmap + page tables
    assert alt.total("taken_from_existing") == 1
    assert reg.total("taken_from_existing") == 4 * MEMMAP_PAGES + 1
    assert alt.returned_after_remove and reg.returned_after_remove


def test_text_report_has_the_drawbacks_and_the_16G_cost(default):
    text = render_text(default)
    rows = {line[:46].strip(): line[46:].split() for line in text.splitlines()
            if line.startswith("  ") and len(line) > 46}
    assert rows["memmap bytes (memmap pages x PAGE_SIZE)"] == [str(4 * 2 * MiB)] * 2 + ["bytes"]
    assert rows["a) taken from existing memory at hot-add"] == ["1", str(4 * 512 + 1), "pages"]
    assert rows["b) memmap on another node than its memory"] == ["0", "0", "pages"]
    assert rows["c) fragmented: memmap in base pages"] == ["0", str(4 * 512), "pages"]
    # one PTE table per section whose 2 MiB of memmap could not be PMD-mapped
    assert rows["c) fragmented: vmemmap page-table pages"] == ["-", "PTE:4"]
    assert rows["given to the buddy after onlining"] == [str(4 * (32768 - 512)), str(4 * 32768),
                                                         "pages"]
    assert rows["force-mode padding (reserved, unused)"] == ["n/a", "n/a", "pages"]   # 6.1
    line = next(ln for ln in text.splitlines() if ln.split()[:2] == ["16", "GiB"])
    # 16 GiB: 256 MiB of memmap; without memmap on memory it all comes from existing memory,
    # plus 16 direct-map PMD tables (one per GiB) = 64 KiB; with it, only those tables
    assert line.split()[2:] == ["256.00", "MiB", "256.00", "MiB", "256.06", "MiB", "64.00", "KiB",
                                "256.00", "MiB"]


def test_what_16G_costs(default):
    (alt, reg), = default.sizes
    assert reg.size == alt.size == 16 * GiB
    assert reg.memmap_formula_bytes == 16 * GiB // 64 == 256 * MiB
    assert reg.memmap_bytes == alt.memmap_bytes == 256 * MiB
    tables = 16 * GiB // GiB                     # direct-map PMD tables; vmemmap: 20 GiB < 64 GiB
    assert reg.taken_from_existing == 256 * MiB // PAGE + tables
    assert alt.taken_from_existing == alt.page_table_pages == tables
    assert alt.memmap_in_range == 256 * MiB // PAGE and reg.memmap_in_range == 0
    assert reg.error is None and alt.error is None


def test_fragmented_node_maps_the_memmap_with_base_pages(default):
    """Drawback c: no free order-9 block, so each 2 MiB memmap is 512 order-0 pages and one PTE
    table; the altmap memmap does not care."""
    rf, af = default.regular_fragmented, default.altmap_fragmented
    assert rf.fragmented and af.fragmented
    assert [a.memmap_base_pages for a in rf.adds] == [MEMMAP_PAGES] * 4
    assert [a.page_tables["vmemmap"] for a in rf.adds] == [{"PTE": 1}] * 4
    assert [a.memmap_base_pages for a in af.adds] == [0] * 4
    assert all(a.page_tables["vmemmap"] == {} for a in af.adds)
    assert rf.total("taken_from_existing") == 4 * (MEMMAP_PAGES + 1) + 1


def test_off_node_memmap(two_nodes):
    """Drawback b: DIMMs on the memoryless node 1 get their memmap from node 0 without memmap on
    memory; with it, from themselves."""
    alt, reg = two_nodes.altmap, two_nodes.regular
    assert [a.node for a in alt.adds] == [0, 1, 0, 1]
    assert [a.off_node_memmap for a in reg.adds] == [0, MEMMAP_PAGES, 0, MEMMAP_PAGES]
    assert [a.off_node_memmap for a in alt.adds] == [0] * 4
    assert alt.memmap_by_node() == {0: 2 * MEMMAP_PAGES, 1: 2 * MEMMAP_PAGES}
    assert reg.memmap_by_node() == {0: 4 * MEMMAP_PAGES}
    assert two_nodes.regular_fragmented is None and two_nodes.sizes == []


def test_a_hot_add_beyond_free_memory_is_reported_not_raised():
    """16 GiB without memmap on memory needs 256 MiB of memmap, more than a 256 MiB guest has;
    with memmap on memory it needs only the 16 direct-map PMD tables."""
    cmp = compare(Plan(dimms=("128M",), boot_memory=("256M",), fragment=False,
                       costs_for=("16G",)))
    (alt, reg), = cmp.sizes
    assert reg.memmap_formula_bytes == 16 * GiB // 64 == 256 * MiB
    assert reg.error.startswith("ENOMEM")
    assert alt.error is None and alt.memmap_bytes == 256 * MiB
    assert alt.taken_from_existing == 16
    assert "16 GiB regular: ENOMEM" in render_text(cmp)


def test_64G_fits_the_qemu_device_memory_region():
    """The plan sizes QEMU's maxmem so that 64 GiB from 4 GiB is below the 64-bit PCI hole:
    64 direct-map PMD tables, and the vmemmap of [64 GiB, 68 GiB) needs a second vmemmap PMD
    table (one maps the struct pages of 64 GiB)."""
    cmp = compare(Plan(dimms=("128M",), fragment=False, costs_for=("64G",)))
    (alt, reg), = cmp.sizes
    assert reg.error.startswith("ENOMEM")         # 1 GiB of memmap in a 1 GiB guest
    assert alt.error is None and alt.memmap_bytes == 64 * GiB // 64
    assert alt.taken_from_existing == 64 + 1


def test_block_size_picks_the_boot_memory():
    # QEMU pc: 3 GiB below 4 GiB, the rest from 4 GiB: RAM ends at boot + 1 GiB. x86-64 probes
    # 2 GiB blocks once RAM ends at >= 64 GiB on a 2 GiB boundary, 1 GiB blocks on a 1 GiB one.
    assert boot_memory_for_block_size("x86_64", 128 * MiB, GiB) == GiB
    assert boot_memory_for_block_size("x86_64", 2 * GiB, GiB) == 63 * GiB
    assert boot_memory_for_block_size("x86_64", GiB, GiB) == 64 * GiB
    assert boot_memory_for_block_size("x86_64", 512 * MiB, GiB) == 63 * GiB + 512 * MiB
    with pytest.raises(HotplugError):
        boot_memory_for_block_size("x86_64", 64 * MiB, GiB)
    assert Plan(block_size="2G").boot_layout() == {0: 63 * GiB}


def test_6_1_has_no_force_mode():
    with pytest.raises(HotplugError) as e:
        compare(Plan(memmap_on_memory="force", fragment=False, costs_for=()))
    assert e.value.errno_name == "EINVAL"


def test_json(default):
    d = json.loads(json.dumps(to_dict(default)))
    assert d["machine"]["memory_block_size"] == BLOCK and d["machine"]["struct_page_size"] == 64
    assert d["altmap"]["totals"]["memmap_pages"] == d["regular"]["totals"]["memmap_pages"] == 2048
    assert d["regular"]["adds"][0]["memmap_from_buddy"] == {"0/DMA32": 512}
    assert d["altmap"]["totals"]["padding_waste"] is None
    assert d["sizes"][0]["regular"]["memmap_bytes"] == 256 * MiB


def test_cli_compare_json(capsys):
    assert main(["compare", "--json", "--no-fragment", "--costs-for", "1G", "--dimms", "128M"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["regular"]["totals"]["taken_from_existing"] == 512 + 1
    # 1 GiB: 16 MiB of memmap, one direct-map PMD table
    assert d["sizes"][0]["regular"]["taken_bytes"] == 16 * MiB + PAGE
    assert d["altmap_fragmented"] is None


def test_plot(default, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "overhead.png"
    plot(default, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- lsmem -----------------------------------------------------------------------------------

def lsmem_machine(online=True):
    m = Machine(boot_memory="1G", cmdline="memory_hotplug.memmap_on_memory=1")
    for i in range(4):
        m.acpi_memory_hotplug(DIMM0 + i * BLOCK, "128M", node=0)
        if online:
            m.sysfs.write(f"/sys/devices/system/memory/memory{32 + i}/state", "online_movable")
    return m


def test_size_to_human_string():
    # lib/strutils.c: one decimal, rounded half up, a trailing zero dropped
    assert [size_to_human_string(n) for n in (0, 1023, 128 * MiB, GiB, 1280 * MiB, 1536 * MiB,
                                              16 * GiB, 4 * KiB)] == \
        ["0B", "1023B", "128M", "1G", "1.3G", "1.5G", "16G", "4K"]


def test_lsmem_table():
    out = render_lsmem(lsmem_machine())
    # boot RAM [0, 1 GiB): block 0 spans DMA and DMA32 (valid_zones "none"), 1-7 DMA32;
    # blocks 32-35 = [4 GiB, 4.5 GiB), Movable, memmap on memory
    assert out == (
        "RANGE                                  SIZE  STATE REMOVABLE BLOCK NODE   ZONES "
        "MEMMAP-ON-MEMORY\n"
        "0x0000000000000000-0x0000000007ffffff  128M online       yes     0    0    None "
        "              no\n"
        "0x0000000008000000-0x000000003fffffff  896M online       yes   1-7    0   DMA32 "
        "              no\n"
        "0x0000000100000000-0x000000011fffffff  512M online       yes 32-35    0 Movable "
        "             yes\n"
        "\n"
        "Memory block size:                128M\n"
        "Total online memory:              1.5G\n"
        "Total offline memory:               0B\n"
        "Memmap on memory parameter:        yes\n")


def test_lsmem_columns_split_and_json():
    m = lsmem_machine(online=False)
    m.sysfs.write("/sys/devices/system/memory/memory33/state", "online")
    # lsmem's default columns: ranges split only by STATE and REMOVABLE
    lines = render_lsmem(m, "RANGE,SIZE,STATE,REMOVABLE,BLOCK", summary="never").splitlines()
    assert [ln.split()[-1] for ln in lines] == ["BLOCK", "0-7", "32", "33", "34-35"]
    assert lines[2].split() == ["0x0000000100000000-0x0000000107ffffff", "128M", "offline", "32"]
    assert len(render_lsmem(m, list_all=True, summary="never").splitlines()) == 1 + 8 + 4
    out = render_lsmem(m, bytes=True, summary="only")
    assert out.splitlines()[:3] == [f"{'Memory block size:':<32} {BLOCK:>15}",
                                    f"{'Total online memory:':<32} {9 * BLOCK:>15}",
                                    f"{'Total offline memory:':<32} {3 * BLOCK:>15}"]
    rows = json.loads(render_lsmem(m, json=True))["memory"]
    assert [r["block"] for r in rows] == ["0", "1-7", "32", "33", "34-35"]
    offline = rows[2]
    assert offline == {"range": "0x0000000100000000-0x0000000107ffffff", "size": "128M",
                       "state": "offline", "removable": False, "block": "32", "node": 0,
                       "zones": "Normal/Movable", "memmap-on-memory": "yes"}
    assert rows[3]["zones"] == "Normal" and rows[3]["removable"] is True


def test_cli_lsmem(capsys):
    assert main(["lsmem", "--dimms", "128M,256M", "--nodes", "1", "--boot-memory", "1G",
                 "-o", "+NODE,MEMMAP-ON-MEMORY", "--summary", "never"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # the 256 MiB DIMM is two blocks: no memmap on memory in 6.1 (only one-block DIMMs)
    assert [ln.split()[-3:] for ln in lines[1:]] == [["0-7", "0", "no"], ["32", "1", "yes"],
                                                     ["33-34", "1", "no"]]
    assert main(["lsmem", "--json", "--online-type", "offline", "--dimms", "128M"]) == 0
    rows = json.loads(capsys.readouterr().out)["memory"]
    assert rows[-1]["state"] == "offline" and rows[-1]["memmap-on-memory"] == "yes"
    assert main(["lsmem", "-o", "FOO"]) == 1
    assert "unknown column: FOO" in capsys.readouterr().err


# -- powerpc64 (QEMU pseries, DLPAR) and s390x (standby memory) ---------------------------------
#
# powerpc64: 64 KiB pages, LMBs of 256 MiB (QEMU's ibm,lmb-size) = 4096 pages whose memmap is
# 4096 x 64 B = 256 KiB = 4 pages; a pageblock is 2 MiB = 32 pages, so force mode reserves 32
# pages per block (6.6). QEMU pseries puts hot-plugged memory at ROUND_UP(RAM, 1 GiB). radix maps
# the vmemmap with 2 MiB PMD leaves: one holds 32768 struct pages = the memmap of 2 GiB.
# s390x: 4 KiB pages, storage increments (rzm) of 256 MiB = memory blocks; standby memory starts
# after the online storage and its memmap, 256 MiB / 4096 x 64 B = 4 MiB = 1024 pages a block,
# is allocated when sclp_add_standby_memory adds it at boot.

PPC_PAGE, LMB = 64 * KiB, 256 * MiB
LMB_PAGES = LMB // PPC_PAGE                                 # 4096
LMB_MEMMAP = LMB_PAGES * STRUCT_PAGE // PPC_PAGE            # 4
PPC_PAGEBLOCK = 2 * MiB // PPC_PAGE                         # 32
S390_BLOCK_MEMMAP = 256 * MiB // PAGE * STRUCT_PAGE // PAGE  # 1024


@pytest.fixture(scope="module", params=["compiled", "python"])
def backend(request):
    return request.param


def ppc_plan(backend, kernel="6.6", boot="1G", **kw):
    return Plan(arch="powerpc64", kernel=kernel, memmap_on_memory="force" if kernel != "6.1"
                else "1", dimms=("256M",) * 4, boot_memory=(boot,), fragment=False,
                costs_for=(), backend=backend, **kw)


@pytest.fixture(scope="module")
def ppc_force(backend):
    """6.6 radix, force mode, four LMBs at 1 GiB of a 1 GiB guest."""
    return compare(ppc_plan(backend))


def test_ppc_dlpar_force_mode_reserves_a_pageblock(ppc_force):
    alt, reg = ppc_force.altmap, ppc_force.regular
    assert alt.first_address == reg.first_address == GiB          # ROUND_UP(1 GiB, 1 GiB)
    assert alt.vmemmap_pages_per_block == [PPC_PAGEBLOCK] * 4     # 4 memmap pages padded to 32
    assert reg.vmemmap_pages_per_block == [0] * 4
    # dlpar_add_lmb onlines each LMB itself, into the default zone: Normal (no ZONE_DMA on
    # book3s64, nothing movable)
    assert [a.managed_added for a in alt.adds] == [LMB_PAGES - PPC_PAGEBLOCK] * 4   # 4064
    assert [a.managed_added for a in reg.adds] == [LMB_PAGES] * 4
    assert set(alt.zones) == {"Normal"} and alt.zones["Normal"][0] == 2 * GiB // PPC_PAGE
    assert alt.online.memtotal_kb == 4 * (LMB_PAGES - PPC_PAGEBLOCK) * 64
    # [1 GiB, 2 GiB) has its struct pages at vmemmap offsets [1 MiB, 2 MiB): inside the 2 MiB
    # PMD leaf the boot memmap of [0, 1 GiB) populated, so nothing new is allocated and the
    # whole reservation is padding
    for r in (alt, reg):
        assert r.total("memmap_pages") == 0
        # a new PUD entry (1 GiB) of the linear map needs a PMD table: one fresh fragment page
        assert [a.page_tables for a in r.adds] == \
            [{"vmemmap": {}, "direct map": {"PMD": 1}}] + [{"vmemmap": {}, "direct map": {}}] * 3
        assert r.total("taken_from_existing") == 1 and r.total("taken_at_online") == 0
        assert r.add.memtotal_kb == 0 and r.returned_after_remove
    assert [a.padding_waste for a in alt.adds] == [PPC_PAGEBLOCK] * 4
    assert ppc_force.machine["platform"]["hotplug"] == "dlpar"
    assert ppc_force.plan.online_type == "online"


def test_ppc_dlpar_text(ppc_force):
    text = render_text(ppc_force)
    lines = text.splitlines()
    assert lines[0].endswith("powerpc64, Linux 6.6, radix MMU, 4-level page tables")
    assert lines[1].startswith("machine: QEMU pseries")
    assert "ACPI" not in text and "QEMU pc" not in text and "DirectMap" not in text
    assert "hot-added by DLPAR one LMB at a time" in lines[2]
    assert "__add_memory(..., MHP_MEMMAP_ON_MEMORY)" in lines[3]
    rows = {line[:46].strip(): line[46:].split() for line in lines
            if line.startswith("  ") and len(line) > 46}
    assert rows["nr_vmemmap_pages per block"] == ["32", "0"]
    assert rows["managed pages added (MemTotal)"] == [str(4 * 4064), str(4 * 4096), "pages"]
    assert rows["force-mode padding (reserved, unused)"] == ["128", "n/a", "pages"]
    assert rows["Normal spanned/present/managed"][0].startswith("32768/32768/")


def test_ppc_dlpar_memmap_beyond_the_boot_leaf(backend):
    """A 2 GiB guest: the LMBs at [2 GiB, 3 GiB) have their struct pages from vmemmap offset
    2 MiB, a PMD entry the boot did not fill. Force mode: the 2 MiB block would cross the altmap
    (it describes 2 GiB, the LMB has 256 MiB), so each LMB's 4 memmap pages are 64 KiB pages
    from its own altmap under one new PTE table; regular: one 2 MiB PMD block (32 pages, order
    5) from the buddy maps the struct pages of all four."""
    cmp = compare(ppc_plan(backend, boot="2G"))
    alt, reg = cmp.altmap, cmp.regular
    assert alt.first_address == 2 * GiB
    assert [a.memmap_in_range for a in alt.adds] == [{0: LMB_MEMMAP}] * 4
    assert [a.padding_waste for a in alt.adds] == [PPC_PAGEBLOCK - LMB_MEMMAP] * 4
    assert [a.page_tables["vmemmap"] for a in alt.adds] == [{"PTE": 1}, {}, {}, {}]
    assert [a.memmap_from_buddy for a in reg.adds] == [{"0/Normal": 2 * MiB // PPC_PAGE}, {},
                                                       {}, {}]
    assert [a.page_tables["direct map"] for a in reg.adds] == [{"PMD": 1}, {}, {}, {}]
    assert alt.total("taken_from_existing") == 2           # PTE + PMD fragment pages
    assert reg.total("taken_from_existing") == 32 + 1
    assert alt.returned_after_remove and reg.returned_after_remove


def test_ppc_6_1_has_no_memmap_on_memory(backend):
    """6.1's dlpar_add_lmb passes MHP_NONE: no block gets its memmap on itself, whatever the
    command line says."""
    cmp = compare(ppc_plan(backend, kernel="6.1"))
    for r in (cmp.altmap, cmp.regular):
        assert r.vmemmap_pages_per_block == [0] * 4
        assert [a.managed_added for a in r.adds] == [LMB_PAGES] * 4
    assert "__add_memory(..., MHP_NONE)" in render_text(cmp)
    assert cmp.machine["platform"]["mhp_flags"] == "MHP_NONE"


def test_ppc_hash_has_no_linux_page_tables(backend):
    """hash MMU: linear map and vmemmap are bolted HPTEs; the vmemmap's 16 MiB pages (1 GiB of
    boot RAM) hold the struct pages of 16 GiB, so these LMBs cost no page at all."""
    cmp = compare(ppc_plan(backend, mmu="hash"))
    text = render_text(cmp)
    assert "hash MMU (linear map and vmemmap are bolted HPTEs" in text.splitlines()[0]
    for r in (cmp.altmap, cmp.regular):
        assert r.total("taken_from_existing") == 0 and r.total("page_table_pages") == 0
        assert r.total("memmap_pages") == 0


def s390_plan(backend, **kw):
    kw.setdefault("dimms", ("256M",) * 4)
    return Plan(arch="s390x", boot_memory=("1G",), fragment=False, backend=backend, **kw)


@pytest.fixture(scope="module")
def s390(backend):
    return compare(s390_plan(backend, costs_for=("16G",)))


def test_s390_standby_memmap_is_paid_at_boot(s390):
    for r in (s390.altmap, s390.regular):       # 6.1 s390: no memmap on memory, MHP_NONE
        assert r.first_address == GiB
        assert [a.memmap_from_buddy for a in r.adds] == [{"0/DMA": S390_BLOCK_MEMMAP}] * 4
        assert r.vmemmap_pages_per_block == [0] * 4
        # the segment tables of the first 2 GiB (identity map and vmemmap) exist from boot
        assert r.total("page_table_pages") == 0
        assert r.total("taken_from_existing") == 4 * S390_BLOCK_MEMMAP
        assert r.add.nr_free_pages == -4 * S390_BLOCK_MEMMAP and r.add.memtotal_kb == 0
        # onlining costs nothing (the SCCB page is borrowed and freed) and gives every page
        assert r.total("taken_at_online") == 0 and r.online.nr_free_pages == 4 * 65536
        assert [a.managed_added for a in r.adds] == [256 * MiB // PAGE] * 4
        assert r.zones == {"Movable": (4 * 65536,) * 3}
        # offlining gives the storage back to standby; the memmap stays
        assert r.remove == type(r.remove)(0, 0, 0) and r.returned_after_remove
    d = s390.machine["platform"]
    assert d["hotplug"] == "standby" and d["mhp_flags"] == "MHP_NONE"


def test_s390_16G_of_standby(s390):
    """16 GiB of standby memory from 1 GiB: 256 MiB of memmap at boot plus a segment table
    (16 KiB = 4 pages) for each new 2 GiB region of the identity map, [2 GiB, 18 GiB): 8."""
    (alt, reg), = s390.sizes
    for c in (alt, reg):
        assert c.error is None and c.memmap_bytes == 16 * GiB // 64
        assert c.taken_from_existing == 16 * GiB // 64 // PAGE + 8 * 4


def test_s390_text(s390):
    text = render_text(s390)
    lines = text.splitlines()
    assert lines[0].endswith("s390x, Linux 6.1, 3-level DAT tables (region-third, segment, "
                             "page)")
    assert lines[1].startswith("machine: s390 LPAR or z/VM guest with standby storage")
    assert "ACPI" not in text and "QEMU pc" not in text
    rows = {line[:46].strip(): line[46:].split() for line in lines
            if line.startswith("  ") and len(line) > 46}
    assert rows["a) taken from existing memory at boot"] == ["4096", "4096", "pages"]
    assert rows["pages allocated at online (and kept)"] == ["0", "0", "pages"]
    assert "at boot: sclp_add_standby_memory's add_memory (the blocks stay offline)" in lines
    assert "what N of standby memory costs" in text


def test_s390_refuses_what_it_cannot_do():
    with pytest.raises(HotplugError):            # no NUMA on Debian's s390x 6.1
        compare(s390_plan(None, nodes=(0, 1), costs_for=()))
    with pytest.raises(HotplugError):            # half a standby block
        compare(s390_plan(None, dimms=("128M",), costs_for=()))


@pytest.mark.parametrize("argv", [
    ["--arch", "powerpc64", "--kernel", "6.6", "--memmap-on-memory", "force"],
    ["--arch", "powerpc64", "--mmu", "hash"],
    ["--arch", "s390x"]])
def test_cli_json_and_plot_for_other_platforms(argv, capsys, tmp_path):
    assert main(["compare", *argv, "--json", "--costs-for", "1G"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["machine"]["platform"]["hotplug"] in ("dlpar", "standby")
    assert len(d["altmap"]["adds"]) == 4
    pytest.importorskip("matplotlib")
    path = tmp_path / "o.png"
    assert main(["compare", *argv, "--plot", str(path), "--costs-for", "1G,2G,4G"]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_lsmem_pseries_and_s390(capsys):
    # pseries: four LMBs at 1 GiB, onlined by DLPAR into Normal, memmap on memory with force
    assert main(["lsmem", "--arch", "powerpc64", "--kernel", "6.6", "--memmap-on-memory",
                 "force", "--summary", "never"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[-5:] for ln in lines[1:]] == [["yes", "0-3", "0", "Normal", "no"],
                                                     ["yes", "4-7", "0", "Normal", "yes"]]
    assert main(["lsmem", "--arch", "powerpc64", "--online-type", "online_movable"]) == 1
    assert "dlpar_add_lmb onlines each LMB itself" in capsys.readouterr().err
    # s390x: the standby blocks stay offline unless onlined
    assert main(["lsmem", "--arch", "s390x", "--online-type", "offline", "-J"]) == 0
    rows = json.loads(capsys.readouterr().out)["memory"]
    assert [(r["block"], r["state"]) for r in rows] == [("0-3", "online"), ("4-7", "offline")]
