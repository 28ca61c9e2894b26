"""Linux 6.12 (Debian 13's 6.12.118) and the kernel build configuration (hotmem.kconfig).

Expected values: the kernel's formulas written out here, the lines of Debian's own /boot/config-*
files (tests/data/kconfig, grepped from the packages) and the real 6.12 readings of
tests/data/recorded-6.12.
"""
import errno
from pathlib import Path

import pytest

import hotmem
from hotmem.kconfig import PRESETS, KernelConfig, get_config, parse_config
from hotmem.kernel import LINUX_6_1, LINUX_6_11, LINUX_6_12
from hotmem.mm.memory_hotplug import MHP_MEMMAP_ON_MEMORY

MiB = 1 << 20
DIMM = 0x100000000
PFN = DIMM >> 12
BLOCK = 32768                       # pages of a 128 MiB block
VMEMMAP = BLOCK * 64 // 4096        # 512 pages of struct pages
MEMORY = "/sys/devices/system/memory"
STATE = MEMORY + "/memory{}/state"
KCONFIG = Path(__file__).parent / "data" / "kconfig"
SCENARIO_D = str(Path(__file__).parents[1] / "scenarios" / "d_mom1_128M_online_movable.toml")


@pytest.fixture(params=["compiled", "python"])
def backend(request):
    return request.param


# -- the build configuration ---------------------------------------------------------------------

@pytest.mark.parametrize("name,version,online", [
    ("config-6.1.0-50-amd64.hotplug", "6.1", "offline"),
    ("config-6.12.118+deb13-amd64.hotplug", "6.12", "online")])
def test_debian_presets_are_the_packages_config(name, version, online):
    """The preset equals what the package's own .config says (6.1: CONFIG_MEMORY_HOTPLUG_DEFAULT_
    ONLINE not set; 6.12.118: CONFIG_MHP_DEFAULT_ONLINE_TYPE_ONLINE_AUTO=y, the issue's claim)."""
    text = (KCONFIG / name).read_text()
    got = parse_config(text, name)
    assert (got.mhp_default_online_type, got.mhp_memmap_on_memory) == (online, True)
    preset = PRESETS["debian"][version]
    assert (preset.mhp_default_online_type, preset.mhp_memmap_on_memory) == (online, True)
    if version == "6.12":
        assert "CONFIG_MHP_DEFAULT_ONLINE_TYPE_ONLINE_AUTO=y" in text
        assert "CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE" not in text
    else:
        assert "# CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE is not set" in text
        assert "MHP_DEFAULT_ONLINE_TYPE" not in text


def test_config_options_spell_the_versions_kconfig():
    cfg = PRESETS["debian"]["6.12"]
    assert cfg.options(LINUX_6_12) == {
        "CONFIG_MHP_DEFAULT_ONLINE_TYPE_OFFLINE": "is not set",
        "CONFIG_MHP_DEFAULT_ONLINE_TYPE_ONLINE_AUTO": "y",
        "CONFIG_MHP_DEFAULT_ONLINE_TYPE_ONLINE_KERNEL": "is not set",
        "CONFIG_MHP_DEFAULT_ONLINE_TYPE_ONLINE_MOVABLE": "is not set",
        "CONFIG_MHP_MEMMAP_ON_MEMORY": "y"}
    assert PRESETS["debian"]["6.1"].options(LINUX_6_1) == {
        "CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE": "is not set", "CONFIG_MHP_MEMMAP_ON_MEMORY": "y"}


def test_parse_config_refusals():
    with pytest.raises(hotmem.HotplugError) as e:
        parse_config("# CONFIG_MEMORY_HOTPLUG is not set\n", "nohp")
    assert e.value.errno == errno.EINVAL and "nohp" in str(e.value)
    with pytest.raises(hotmem.HotplugError) as e:
        parse_config("CONFIG_MEMORY_HOTPLUG=y\nCONFIG_MHP_DEFAULT_ONLINE_TYPE_OFFLINE=y\n"
                     "CONFIG_MHP_DEFAULT_ONLINE_TYPE_ONLINE_MOVABLE=y\n", "two")
    assert e.value.errno == errno.EINVAL and "online_movable" in str(e.value)


def test_default_config_per_version():
    """Debian's build where hotmem is validated against Debian (6.1, 6.12), defconfig elsewhere;
    a non-x86 arch takes defconfig (only amd64 builds were read)."""
    assert get_config(None, LINUX_6_12).mhp_default_online_type == "online"
    assert get_config(None, LINUX_6_1).mhp_default_online_type == "offline"
    assert get_config(None, LINUX_6_11).name == "defconfig"
    assert get_config(None, LINUX_6_12, "arm64").name == "defconfig"


@pytest.mark.parametrize("kernel,config,word", [
    ("6.1", {"mhp_default_online_type": "online_movable"}, "CONFIG_MHP_DEFAULT_ONLINE_TYPE"),
    ("6.12", {"mhp_default_online_type": "sometimes"}, "sometimes"),
    ("6.11", "debian", "6.11"),
    ("6.12", "fedora", "fedora"),
    ("6.12", {"bogus": 1}, "bogus"),
    ("6.1", KernelConfig(name="mine", mhp_memmap_on_memory=True), None),
])
def test_bad_configs_are_refused(kernel, config, word):
    if word is None:            # x86_64 selects ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE: accepted
        assert hotmem.Machine(kernel=kernel, config=config).kconfig.mhp_memmap_on_memory
        return
    with pytest.raises(hotmem.HotplugError) as e:
        hotmem.Machine(kernel=kernel, config=config)
    assert e.value.errno == errno.EINVAL and word in str(e.value)


def test_memmap_on_memory_needs_the_arch_to_enable_it():
    """powerpc64 selects ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE only from 6.6 (KernelPolicy.arch)."""
    with pytest.raises(hotmem.HotplugError) as e:
        get_config({"mhp_memmap_on_memory": True}, LINUX_6_1, "powerpc64")
    assert e.value.errno == errno.EINVAL and "powerpc64" in str(e.value)
    assert get_config(None, LINUX_6_1, "powerpc64").mhp_memmap_on_memory is False


def test_debian_6_12_onlines_at_add(backend):
    """CONFIG_MHP_DEFAULT_ONLINE_TYPE_ONLINE_AUTO: add_memory_resource onlines every new block
    with MMOP_ONLINE (zone_for_pfn_range: Normal); auto_online_blocks reads "online"."""
    m = hotmem.Machine(kernel="6.12", cmdline="memory_hotplug.memmap_on_memory=1",
                       backend=backend)
    assert m.sysfs.read(f"{MEMORY}/auto_online_blocks") == "online\n"
    t0 = m.totalram_pages
    m.acpi_memory_hotplug(DIMM, "128M", node=0)
    assert m.sysfs.read(STATE.format(32)) == "online\n"
    z = m.zone(0, "Normal")
    assert (z.spanned_pages, z.present_pages, z.managed_pages) == (BLOCK, BLOCK, BLOCK - VMEMMAP)
    assert m.totalram_pages - t0 == BLOCK - VMEMMAP
    # writing online again: device_online returns 1 for an online device, state_store -EINVAL
    before = m.snapshot()
    with pytest.raises(hotmem.HotplugError) as e:
        m.sysfs.write(STATE.format(32), "online_movable")
    assert e.value.errno == errno.EINVAL and m.snapshot() == before


@pytest.mark.parametrize("cmdline,config,state", [
    ("memhp_default_state=offline", None, "offline"),             # the command line wins
    ("", "defconfig", "offline"),
    ("", {"mhp_default_online_type": "online_movable"}, "online"),
])
def test_default_online_type_sources(backend, cmdline, config, state):
    m = hotmem.Machine(kernel="6.12", cmdline=cmdline, config=config, backend=backend)
    m.acpi_memory_hotplug(DIMM, "128M", node=0)
    assert m.sysfs.read(STATE.format(32)) == f"{state}\n"
    if config and not isinstance(config, str):
        assert m.sysfs.read(f"{MEMORY}/auto_online_blocks") == "online_movable\n"
        assert m.zone(0, "Movable").present_pages == BLOCK


def test_without_mhp_memmap_on_memory_the_parameter_is_unknown(backend):
    """CONFIG_MHP_MEMMAP_ON_MEMORY=n: memory_hotplug.memmap_on_memory is not built, so it is an
    unknown parameter and the memmap comes from the buddy (all 32768 pages managed)."""
    m = hotmem.Machine(kernel="6.12", cmdline="memory_hotplug.memmap_on_memory=1",
                       config={"mhp_memmap_on_memory": False,
                               "mhp_default_online_type": "online_movable"},
                       backend=backend)
    assert m.unknown_params == ["memory_hotplug.memmap_on_memory=1"]
    m.acpi_memory_hotplug(DIMM, "128M", node=0)
    assert m.memory_blocks[32].nr_vmemmap_pages == 0
    assert m.zone(0, "Movable").managed_pages == BLOCK


# -- the 6.12 policy -----------------------------------------------------------------------------

def machine(backend, kernel):
    return hotmem.Machine(kernel=kernel, cmdline="memory_hotplug.memmap_on_memory=1",
                          backend=backend, config="defconfig")


def test_6_12_failed_populate_nets_to_zero(backend):
    """6.12.101 populate_section_memmap counts section_nr_vmemmap_pages (512) before looking at
    the result; section_activate's depopulate takes 512 off: 0 in all (6.11: -512)."""
    for kernel, left in (("6.11", -VMEMMAP), ("6.12", 0)):
        m = machine(backend, kernel)
        m.inject("altmap")
        with pytest.raises(hotmem.HotplugError) as e:
            m.add_memory(0, DIMM, 128 * MiB, MHP_MEMMAP_ON_MEMORY)
        assert e.value.errno == errno.ENOMEM
        assert m.nr_memmap_pages == left
        assert m.nr_memmap_boot_pages == 8 * VMEMMAP          # 1 GiB: sections 0..7


def test_6_12_zoneinfo_prints_promo(backend):
    """zoneinfo_show_print (6.12): "promo" after "high"; promo = high + (high - low) (WMARK_PROMO
    = high_wmark_pages + tmp in __setup_per_zone_wmarks). 6.11 prints no such line."""
    text = machine(backend, "6.12").procfs.read("/proc/zoneinfo")
    block = text[text.index("zone    DMA32"):].splitlines()
    # "  pages free N", then "        boost N", min, low, high, promo, spanned
    vals = {ln.split()[0]: int(ln.split()[1]) for ln in block[2:8]}
    assert [ln.split()[0] for ln in block[3:8]] == ["min", "low", "high", "promo", "spanned"]
    assert vals["promo"] == vals["high"] + (vals["high"] - vals["low"])
    assert "        promo " not in machine(backend, "6.11").procfs.read("/proc/zoneinfo")


def test_movable_watermarks_capped_like_highmem(backend):
    """__setup_per_zone_wmarks (6.11.11, 6.12.118): ZONE_MOVABLE out of lowmem_pages, its MIN
    clamp(managed / 1024, 32, 128): an empty Movable zone reads 32/32/32 (as the real 6.12
    does); 6.1 gives it 0."""
    for kernel, want in (("6.12", (32, 32, 32)), ("6.11", (32, 32, 32)), ("6.1", (0, 0, 0))):
        z = machine(backend, kernel).zone(0, "Movable")
        assert (z.min_wmark, z.low_wmark, z.high_wmark) == want, kernel
    # one 128 MiB block online_movable: 32256 managed; MIN = clamp(31, 32, 128) = 32; the steps
    # use the uncapped share of pages_min over the lowmem zones
    m = machine(backend, "6.12")
    m.acpi_memory_hotplug(DIMM, "128M", node=0)
    m.sysfs.write(STATE.format(32), "online_movable")
    z = m.zone(0, "Movable")
    lowmem = sum(m.zone(0, n).managed_pages for n in ("DMA", "DMA32", "Normal"))
    pages_min = m.page_alloc.min_free_kbytes >> 2
    tmp = max(pages_min * (BLOCK - VMEMMAP) // lowmem >> 2, (BLOCK - VMEMMAP) * 10 // 10000)
    assert (z.min_wmark, z.low_wmark, z.high_wmark) == (32, 32 + tmp, 32 + 2 * tmp)


# -- the command line ----------------------------------------------------------------------------

def test_cli_config_flags(capsys):
    """--config takes a preset or a real .config; lsmem on Debian's 6.12 boots with
    memhp_default_state=offline and onlines the DIMM movable itself; a bad value is one line."""
    from hotmem.cli import main
    cfg = str(KCONFIG / "config-6.12.118+deb13-amd64.hotplug")
    outs = []
    for config in ("debian", cfg):
        assert main(["lsmem", "--kernel", "6.12", "--config", config, "--dimms", "128M"]) in (0, None)
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and "Movable" in outs[0]
    rc = main(["lsmem", "--kernel", "6.1", "--config", "fedora", "--dimms", "128M"])
    err = capsys.readouterr().err
    assert rc != 0 and "fedora" in err and "EINVAL" in err
    assert main(["simulate", "--kernel-version", "6.12", "--config", "defconfig", SCENARIO_D]) == 0
    out = capsys.readouterr().out
    # defconfig keeps new blocks offline already: nothing added to the command line
    assert "cmdline: memory_hotplug.memmap_on_memory=1\n" in out
    assert main(["simulate", "--kernel-version", "6.12",
                 SCENARIO_D]) == 0
    assert "memhp_default_state=offline" in capsys.readouterr().out
