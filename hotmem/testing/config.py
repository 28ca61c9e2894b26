"""The boxes a fuzzed program boots: :class:`MachineConfig` (every argument of hotmem.Machine a
program varies) and :func:`machine_configs`, the Hypothesis strategy that draws them."""
from __future__ import annotations

from dataclasses import dataclass

KERNELS = ("v2", "5.13", "6.1", "6.6", "6.8", "6.11", "6.12")
#: the versions an s390x Machine models (6.9+ adds standby memory with memmap on memory)
S390X_KERNELS = ("v2", "5.13", "6.1", "6.6", "6.8")


@dataclass(frozen=True)
class MachineConfig:
    """A box to boot: every argument of hotmem.Machine that a fuzzed program varies."""
    kernel: str = "6.1"
    boot_memory: object = "1G"                 # "1G" or a tuple of (node, size) pairs
    cmdline: str = "memory_hotplug.memmap_on_memory=1"
    paging_levels: int = 4
    cpus: object = 1                           # an int or a tuple of (node, cpus) pairs
    cpu_flags: tuple = ("pse", "hypervisor")
    arch: str = "x86_64"
    page_size: str | None = None               # arm64: "4K", "16K" or "64K"
    mmu: str | None = None                     # powerpc64: "radix" or "hash"
    standby_memory: object = None              # s390x: a size or a tuple of (key, value) pairs

    def boot(self, backend: str | None = None):
        import hotmem
        boot_memory = dict(self.boot_memory) if isinstance(self.boot_memory, tuple) \
            else self.boot_memory
        cpus = dict(self.cpus) if isinstance(self.cpus, tuple) else self.cpus
        extra = {"page_size": self.page_size} if self.page_size else {}
        if self.mmu:
            extra["mmu"] = self.mmu
        if self.standby_memory is not None:
            extra["standby_memory"] = dict(self.standby_memory) \
                if isinstance(self.standby_memory, tuple) else self.standby_memory
        return hotmem.Machine(arch=self.arch, kernel=self.kernel, boot_memory=boot_memory,
                              cmdline=self.cmdline, paging_levels=self.paging_levels, cpus=cpus,
                              cpu_flags=self.cpu_flags, backend=backend, **extra)


def _arm64_works() -> bool:
    """Whether this hotmem boots arm64 Machines (the arm64 lifecycle arrived while the fuzzer
    was written; older trees refuse it)."""
    try:
        MachineConfig(arch="arm64", boot_memory="256M", page_size="4K").boot()
        return True
    except Exception:
        return False


def machine_configs(kernels=KERNELS, size: str = "any", archs=None):
    """Hypothesis strategy of MachineConfig: kernel version, boot memory and NUMA layout,
    paging levels, CPUs, CPU flags (PSE, 1 GiB pages) and command line (memmap_on_memory off,
    on or force, movable_node, memhp_default_state). ``size``: "small" keeps boot memory at
    ≤ 512 MiB (for the slow pure-Python twin), "ci" at ≤ 1 GiB, "any" goes to 2 GiB.
    ``archs``: the archs to draw from (default x86_64 and arm64); "powerpc64" draws the MMU
    (radix, hash) and pseries layouts, "s390x" standby memory (none, sizes, storage
    increments) and the EDAT facilities."""
    from hypothesis import strategies as st
    small = ["256M", "512M", ((0, "256M"), (1, "256M"))]
    ci = ["256M", "256M", "512M", "512M", "1G", ((0, "256M"), (1, "256M")),
          ((0, "512M"), (1, 0)), ((0, "256M"), (1, "256M"), (2, 0))]
    layouts = st.sampled_from({"small": small, "ci": ci,
                               "any": ci + ["2G", ((0, "1G"), (1, "1G"))]}[size])
    ppc_small = ["512M", "1G", ((0, "512M"), (1, "512M"))]
    ppc_layouts = {"small": ppc_small,
                   "ci": ppc_small + ["256M", "1536M", ((0, "1G"), (1, 0)),
                                      ((0, "256M"), (1, "768M"))],
                   "any": ppc_small + ["256M", "1536M", "2G", "3G", ((0, "1G"), (1, 0)),
                                       ((0, "256M"), (1, "768M")), ((0, "1G"), (1, "1G"))]
                   }[size]
    s390_standby = [None, None, "256M", "512M", "1G", (("size", "1G"), ("rzm", "128M")),
                    (("size", "1G"), ("rzm", "512M"))]
    if archs is None:
        archs = ("x86_64", "x86_64", "x86_64", "arm64") if _arm64_works() else ("x86_64",)

    @st.composite
    def build(draw):
        kernel = draw(st.sampled_from(kernels))
        boot = draw(layouts)
        nodes = sorted(n for n, _ in boot) if isinstance(boot, tuple) else [0]
        force = ["force"] if kernel in ("6.6", "6.8", "6.11", "6.12") else []
        mom = draw(st.sampled_from(["1", "1", "1", "0"] + force))
        words = [] if kernel == "v2" and draw(st.booleans()) else \
            [f"memory_hotplug.memmap_on_memory={mom}"]
        if draw(st.integers(0, 4)) == 0:
            words.append("movable_node")
        auto = draw(st.sampled_from([None] * 6 + ["online", "online_movable", "online_kernel"]))
        if auto:
            words.append(f"memhp_default_state={auto}")
        if len(nodes) > 1 and draw(st.booleans()):
            cpus = tuple((n, 1) for n in nodes if n < 2)
        else:
            cpus = draw(st.sampled_from([1, 1, 2]))
        flags = draw(st.sampled_from([("pse", "hypervisor")] * 4 +
                                     [("pse", "hypervisor", "pdpe1gb"), ("hypervisor",)]))
        arch = draw(st.sampled_from(archs))
        if arch == "powerpc64":
            # QEMU pseries: RAM from 0 (256 MiB LMBs); NUMA nodes back to back
            boot = draw(st.sampled_from(ppc_layouts))
            nodes = sorted(n for n, _ in boot) if isinstance(boot, tuple) else [0]
            if len(nodes) > 1 and draw(st.booleans()):
                cpus = tuple((n, 1) for n in nodes if n < 2)
            return MachineConfig(kernel=kernel, boot_memory=boot, cmdline=" ".join(words),
                                 cpus=cpus, arch="powerpc64",
                                 mmu=draw(st.sampled_from(["radix", "radix", "hash"])))
        if arch == "s390x":
            # node 0 only (Debian's s390x has no NUMA); boot and standby memory multiples of
            # the storage increment rzm; kernels up to 6.8 (a Machine refuses s390x 6.9+)
            if kernel not in S390X_KERNELS:
                kernel = draw(st.sampled_from([k for k in kernels if k in S390X_KERNELS]
                                              or ["6.8"]))
                if kernel not in ("6.6", "6.8"):
                    words = [w.replace("=force", "=1") for w in words]
            standby = draw(st.sampled_from(s390_standby))
            rzm = dict(standby).get("rzm", "256M") if isinstance(standby, tuple) else "256M"
            boot = draw(st.sampled_from(["512M", "1G"] if rzm == "512M" else
                                        ["256M", "512M", "1G"]))
            return MachineConfig(kernel=kernel, boot_memory=boot, cmdline=" ".join(words),
                                 cpus=draw(st.sampled_from([1, 1, 2])), arch="s390x",
                                 # no "edat=off": a 4 KiB identity map has a Python-walked
                                 # entry per page (too slow to check after every step)
                                 cpu_flags=draw(st.sampled_from([(), (), ("edat2=off",)])),
                                 standby_memory=standby)
        if arch == "arm64":
            # the v2 RFC never ran on arm64 with 16K pages: its eligibility test has no
            # pageblock alignment, so a 32-page memmap leaves the block's buddy part starting
            # mid-pageblock and the first offline would BUG in start_isolate_page_range (the
            # model refuses it with a WARN and EINVAL for ever)
            sizes = ["4K"] if kernel == "v2" else ["4K", "4K", "16K", "64K"]
            return MachineConfig(kernel=kernel, boot_memory=boot, cmdline=" ".join(words),
                                 cpus=cpus, arch="arm64", page_size=draw(st.sampled_from(sizes)))
        return MachineConfig(kernel=kernel, boot_memory=boot, cmdline=" ".join(words),
                             paging_levels=draw(st.sampled_from([4, 4, 5])), cpus=cpus,
                             cpu_flags=flags)
    return build()
