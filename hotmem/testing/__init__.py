"""Property-based testing of hotmem: a hotplug program driver, invariants, and a Hypothesis
state machine (issue #6).

- :class:`MachineConfig` describes a box (kernel version, boot memory and NUMA layout, paging
  levels, CPUs and CPU flags, command line) and boots it.
- :class:`Driver` runs a hotplug *program* — ACPI hot-add and eject, ``add_memory`` /
  ``remove_memory`` at any granularity, sysfs writes with valid and invalid words, node
  fragmentation, fault injection — on one Machine or, differentially, on the compiled core and
  the pure-Python twin at once. It records every step as a line of Python, so that
  ``driver.program()`` is a replayable script, and after each step it checks
  :func:`check_invariants` and the error path: where the kernel unwinds a failed operation fully,
  the Machine must be bit-identical to its state before it (``fast_snapshot``: ``m.snapshot()``
  with each struct page array as its CRC-32); where the kernel keeps something on purpose,
  exactly that may differ. ``driver.teardown()`` removes everything
  that was added and compares the Machine with its state before the first step.
- :func:`make_state_machine` builds the reusable ``RuleBasedStateMachine`` (``HotplugStateMachine``
  is the default one: every kernel version, the compiled core); ``fuzz_settings()`` gives the CI
  profile (derandomised) or the long one (``HOTMEM_FUZZ=long``).

The invariants recount everything from the bottom layer of the state — struct pages, section
flags and subsection maps, page-table entries reached from the root — and compare the recount
with the counters and lists the kernel code keeps (free lists, per-CPU lists, zone counters,
memory block devices, the owner ledger, iomem). They never use a counter to check itself.

The modules: ``config`` (MachineConfig, machine_configs), ``driver`` (Driver; its teardown in
``teardown``), ``facts`` (BootFacts, Allowances), ``invariants`` (check_invariants; the page-table
walks in ``pagetables`` and, for the tables powerpc64 and s390x keep in Python, ``arch_tables``),
``snapshot`` (fast_snapshot, diff_snapshots), ``rules`` (the state machine, fuzz_settings),
``consts`` (kernel constants written out from the headers).

Replay a failure by running the program the failing example prints (it uses only this module
and hotmem), e.g.::

    from hotmem.testing import Driver, MachineConfig
    d = Driver(MachineConfig(kernel='6.1', boot_memory='1G', cmdline='memory_hotplug.memmap_on_memory=1'))
    d.acpi_hotplug(0x100000000, 0x8000000, node=0)     # -> 0
    d.write(32, 'state', 'online_movable')              # -> 0
    d.teardown()
"""
from __future__ import annotations

from hotmem.testing.config import KERNELS, S390X_KERNELS, MachineConfig, machine_configs
from hotmem.testing.consts import PG_RESERVED
from hotmem.testing.driver import EXPECTED_WARNINGS, KNOWN_MODEL_ISSUES, OUTCOMES, STEPS, Driver
from hotmem.testing.facts import Allowances, BootFacts
from hotmem.testing.invariants import InvariantError, check_invariants
from hotmem.testing.rules import fuzz_settings, make_state_machine
from hotmem.testing.snapshot import diff_snapshots, fast_snapshot

__all__ = ["Allowances", "BootFacts", "Driver", "EXPECTED_WARNINGS", "InvariantError", "KERNELS",
           "KNOWN_MODEL_ISSUES", "MachineConfig", "OUTCOMES", "PG_RESERVED", "S390X_KERNELS",
           "STEPS", "check_invariants", "diff_snapshots", "fast_snapshot", "fuzz_settings",
           "machine_configs", "make_state_machine"]


def __getattr__(name):
    """``hotmem.testing.HotplugStateMachine``: built on first use (Hypothesis is a test extra)."""
    if name == "HotplugStateMachine":
        sm = make_state_machine()
        globals()[name] = sm
        return sm
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
