"""Absolute boot figures against real Linux 6.1 boots (issue #16): Debian's 6.1.176 amd64 kernel
booted in QEMU pc with different boot memory, CPUs and NUMA layouts, with ``memblock=debug`` so
that the boot log names every memblock allocation and its caller (tests/data/kernel-6.1-boot/,
recorded by `hotmem.validate`'s QEMU guest). Zone spans and present pages are exact for every
layout. Managed pages (hence MemTotal and the watermarks) are exact only on the calibrated
reference (1 GiB, one CPU, one node): the boot allocations that scale with the machine are one
calibrated figure today (hotmem/init/main.py). Those cases are strict xfails, so that modelling
the allocations from their causes (docs/boot-reservations.md) turns them into passes."""
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


def _managed_case(name):
    if name == REFERENCE:
        return name
    return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=(
        "boot allocations that scale with memory, CPUs and nodes (swiotlb below 4 GiB, the "
        "dentry/inode hashes, percpu first chunk, NODE_DATA) are one calibrated figure on node 0")))


@pytest.mark.parametrize("name", [_managed_case(n) for n in CASES])
def test_boot_managed_and_watermarks_equal_the_real_kernel(name):
    rec = _load(name)
    m = _machine(rec)
    real, model = _zones(rec["zoneinfo"]), _zones(m.procfs.zoneinfo())
    assert _meminfo(m.procfs.meminfo())["MemTotal"] == _meminfo(rec["meminfo"])["MemTotal"]
    for key in real:
        for field in ("managed", "min", "low", "high"):
            assert model[key][field] == real[key][field], (key, field)
