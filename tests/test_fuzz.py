"""Property-based fuzzing of hotplug programs and fault injection (issue #6).

Random hotplug programs (hotmem.testing.HotplugStateMachine: ACPI hot-add/eject, add_memory /
remove_memory at any granularity, online/offline, sysfs writes with valid and invalid words,
node fragmentation, page/altmap allocation failures, memory-notifier vetoes, unmovable pages)
run on Machines of every kernel version with varied boot memory, NUMA layout, paging levels,
CPUs, CPU flags and command line. After every step hotmem.testing.check_invariants recounts
the state from struct pages, section flags and page-table entries; a failed step must leave
the Machine as the kernel's error path does; each program ends by removing everything it added
and comparing the Machine with its boot state.

Profiles (HOTMEM_FUZZ): "ci" (default) is derandomised and runs ≥ 10,000 steps in total;
"long" runs many more random programs (HOTMEM_FUZZ_EXAMPLES, HOTMEM_FUZZ_STEPS):

    HOTMEM_FUZZ=long .venv/bin/python -m pytest -q tests/test_fuzz.py -s

A failure prints the Hypothesis steps and, after them, the same program as a replayable
Python script (hotmem.testing.Driver calls); tests/test_fuzz_regressions.py keeps the bugs
found so far.
"""
import os
import time

import pytest
from hypothesis.stateful import run_state_machine_as_test

from hotmem import testing as ht

PROFILE = os.environ.get("HOTMEM_FUZZ", "ci")
#: CI: per kernel version, examples × steps per example (programs end early when the kernel
#: would oops), and the steps that must have run
CI_EXAMPLES, CI_STEPS, CI_MIN_STEPS = 50, 50, 2000
#: Debian's 6.12 build onlines hot-added memory at add, so more of its programs' online steps
#: are refusals that end a program sooner: a few more programs reach the same step count
CI_EXAMPLES_BY_KERNEL = {"6.12": 54}
#: the pure-Python twin is slower: fewer, shorter programs on small machines
DIFF_EXAMPLES, DIFF_STEPS = 12, 15


def _run(state_machine, long=None, **ci):
    before = dict(ht.STEPS)
    t0 = time.time()
    settings = ht.fuzz_settings(PROFILE, **(ci if PROFILE == "ci" else (long or {})))
    run_state_machine_as_test(state_machine, settings=settings)
    ran = {k: ht.STEPS[k] - before.get(k, 0) for k in ht.STEPS}
    print(f"\n{state_machine.__name__}: {ran['programs']} programs, {ran['steps']} steps "
          f"({ran['failed_ops']} refused), {ran['oops']} ended at a kernel oops, "
          f"{ran['known']} at a known model issue, {time.time() - t0:.1f}s")
    return ran


_STEPS_BY_KERNEL = {}


@pytest.mark.parametrize("kernel", ht.KERNELS)
def test_fuzz_hotplug_programs(kernel):
    size = "ci" if PROFILE == "ci" else "any"
    machine = ht.make_state_machine(configs=ht.machine_configs(kernels=(kernel,), size=size),
                                    name=f"Hotplug_{kernel.replace('.', '_')}")
    ran = _run(machine, max_examples=CI_EXAMPLES_BY_KERNEL.get(kernel, CI_EXAMPLES),
               stateful_step_count=CI_STEPS)
    _STEPS_BY_KERNEL[kernel] = ran["steps"]
    if PROFILE == "ci":
        assert ran["steps"] >= CI_MIN_STEPS, ran
        if len(_STEPS_BY_KERNEL) == len(ht.KERNELS):
            # the CI profile runs at least 10,000 state-machine steps in total
            assert sum(_STEPS_BY_KERNEL.values()) >= 10_000, _STEPS_BY_KERNEL


#: CI: powerpc64 (radix, hash) and s390x (with and without standby memory) Machines of every
#: kernel version: examples × steps and the steps that must have run (about 15 s here; timing
#: is the benchmarks' business, not a test's)
OTHER_EXAMPLES, OTHER_STEPS, OTHER_MIN_STEPS = 40, 40, 1000


def test_fuzz_other_arches():
    """powerpc64 (QEMU pseries, radix and hash MMU, DLPAR) and s390x (SCLP standby memory)
    programs, their page tables walked by the arch's own invariants (fragments, 2 KiB page-table
    halves, vmemmap_list)."""
    size = "ci" if PROFILE == "ci" else "any"
    machine = ht.make_state_machine(
        configs=ht.machine_configs(size=size, archs=("powerpc64", "powerpc64", "s390x")),
        name="HotplugOtherArches", far_adds=False)
    ran = _run(machine, max_examples=OTHER_EXAMPLES, stateful_step_count=OTHER_STEPS)
    if PROFILE == "ci":
        assert ran["steps"] >= OTHER_MIN_STEPS, ran


def test_fuzz_differential_compiled_vs_python():
    """The same random programs on the compiled core and the pure-Python twin: the same
    outcome for every step and identical snapshots and /proc/zoneinfo after every step."""
    machine = ht.make_state_machine(backends=("compiled", "python"),
                                    configs=ht.machine_configs(size="small"), max_blocks=2,
                                    name="HotplugDifferential", far_adds=False)
    long = {"max_examples": max(50, ht.fuzz_settings("long").max_examples // 5),
            "stateful_step_count": 25}
    ran = _run(machine, long=long, max_examples=DIFF_EXAMPLES, stateful_step_count=DIFF_STEPS)
    if PROFILE == "ci":
        assert ran["steps"] >= DIFF_EXAMPLES * 5, ran


def test_a_failing_program_prints_as_a_replayable_program():
    """The program text a failure carries runs as it is and fails the same way."""
    d = ht.Driver(ht.MachineConfig(kernel="6.1", boot_memory="256M"))
    d.acpi_hotplug(0x100000000, 0x8000000, node=0)
    d.write(32, "state", "online_movable")
    d.m.allocator.adjust_managed_page_count(d.m.zone(0, "Movable").zoneid, -1)   # a "bug"
    with pytest.raises(ht.InvariantError) as e:
        d.read("/proc/meminfo")
    program = str(e.value).split("-- program (replay it with python) --\n")[1]
    assert program.startswith("from hotmem.testing import Driver, MachineConfig\nd = Driver(")
    assert "d.write(32, 'state', 'online_movable')    # -> 0" in program
    namespace = {}
    exec(program.replace("d.read('/proc/meminfo')", "pass"), namespace)   # replays cleanly
    replayed = namespace["d"]
    assert replayed.m.memory_blocks[32].state == "online"


def test_unwinding_is_checked_bit_for_bit():
    """A refused operation that changed something is reported (the check is not vacuous)."""
    d = ht.Driver(ht.MachineConfig(kernel="6.1", boot_memory="256M"))
    d.acpi_hotplug(0x100000000, 0x8000000, node=0)
    m = d.m
    orig = m.memory.state_store

    def leaky(mem, text):            # a refusal that leaves a pageblock's migratetype changed
        m.ms.set_pageblock_migratetype(0x2000, 0)
        orig(mem, text)
    m.memory.state_store = leaky
    with pytest.raises(ht.InvariantError, match="unwinds fully"):
        d.write(32, "state", "bogus")


def test_the_invariants_catch_a_lost_page():
    d = ht.Driver(ht.MachineConfig(kernel="6.6", boot_memory="256M"))
    d.acpi_hotplug(0x100000000, 0x8000000, node=0)
    d.write(32, "state", "online")
    m = d.m
    zid = m.zone(0, "Normal").zoneid
    pfn = m.allocator.alloc_pages(zid, 0, 1, 0)         # allocated behind the ledger's back
    with pytest.raises(ht.InvariantError, match="owner ledger"):
        ht.check_invariants(m, d.facts[0], d.allow[0])
    m.owners.note_buddy(pfn, 0, 0, "test")
    ht.check_invariants(m, d.facts[0], d.allow[0])
    m.ms.set_page_flags(pfn + 1, m.ms.page_flags(pfn + 1) | 1 << ht.PG_RESERVED)  # a free page
    with pytest.raises(ht.InvariantError, match="not accounted exactly once|PG_reserved"):
        ht.check_invariants(m, d.facts[0], d.allow[0])
