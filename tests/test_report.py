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
