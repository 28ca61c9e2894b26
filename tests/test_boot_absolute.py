"""Absolute boot figures against real Linux 6.1 boots (issue #16): Debian's 6.1.176 amd64 kernel
booted in QEMU pc with different boot memory, CPUs and NUMA layouts, with ``memblock=debug`` so
that the boot log names every memblock allocation and its caller (tests/data/kernel-6.1-boot/,
recorded by `hotmem.validate`'s QEMU guest). Zone spans and present pages are exact for every
layout. Managed pages (hence MemTotal and the watermarks) come from the boot allocations
modelled by cause (hotmem/arch/x86_setup.py, docs/boot-reservations.md); the layouts still off
by a few page-table pages are strict xfails that name the difference."""
import json
import os
import re

import pytest

import hotmem

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "kernel-6.1-boot")
REFERENCE = "x86_64_1G"
CASES = sorted(f[:-5] for f in os.listdir(DATA) if f.endswith(".json"))


def _zones(text: str) -> dict:
    out, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"Node (\d+), zone\s+(\w+)", line)
        if m:
            cur = out.setdefault((int(m[1]), m[2]), {})
            continue
        m = re.match(r"\s+(min|low|high|spanned|present|managed)\s+(\d+)$", line)
        if m and cur is not None and m[1] not in cur:
            cur[m[1]] = int(m[2])
    return {k: v for k, v in out.items() if v.get("present")}


def _meminfo(text: str) -> dict:
    return {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines() if ":" in line}


def _machine(rec: dict) -> hotmem.Machine:
    mc = rec["machine"]
    boot = mc["boot_memory"]
    boot = {int(k): v for k, v in boot.items()} if isinstance(boot, dict) else boot
    cmdline = mc["cmdline"].replace("memblock=debug", "").strip()
    return hotmem.Machine(boot_memory=boot, cmdline=cmdline, cpus=mc["cpus"],
                          paging_levels=mc["paging_levels"], slots=mc["slots"],
                          maxmem=mc["maxmem"])


def _load(name):
    with open(os.path.join(DATA, name + ".json")) as f:
        return json.load(f)


@pytest.mark.parametrize("name", CASES)
def test_boot_zone_spans_equal_the_real_kernel(name):
    rec = _load(name)
    real = _zones(rec["zoneinfo"])
    model = _zones(_machine(rec).procfs.zoneinfo())
    assert sorted(model) == sorted(real)
    for key in real:
        for field in ("spanned", "present"):
            assert model[key][field] == real[key][field], (key, field)


#: layouts still off, and why: the x86 boot page tables (init_mem_mapping's top-down steps and
#: its brk pgt_buf, before memblock's alloc_low_pages) are modelled as one mapping per RAM range
KNOWN_OFF = {
    "x86_64_2G": "boot page tables: the model allocates 1 table page more than the kernel's",
    "x86_64_3G": "boot page tables: the model allocates 1 table page more than the kernel's",
    "x86_64_8G": "boot page tables: the model allocates 4 table pages more than the kernel's",
    "x86_64_2nodes_1G_1G_2cpus": "4 early pages sit on node 1 in the kernel, on node 0 in the "
                                 "model (boot page tables)",
}


def _managed_case(name):
    if name not in KNOWN_OFF:
        return name
    return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_OFF[name]))


@pytest.mark.parametrize("name", [_managed_case(n) for n in CASES])
def test_boot_managed_and_watermarks_equal_the_real_kernel(name):
    rec = _load(name)
    m = _machine(rec)
    real, model = _zones(rec["zoneinfo"]), _zones(m.procfs.zoneinfo())
    assert _meminfo(m.procfs.meminfo())["MemTotal"] == _meminfo(rec["meminfo"])["MemTotal"]
    for key in real:
        for field in ("managed", "min", "low", "high"):
            assert model[key][field] == real[key][field], (key, field)
