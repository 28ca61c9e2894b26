"""Kernel-version policies: which memory-hotplug behaviour a kernel version has.

The mm code consults these named fields instead of comparing version numbers. Each policy says
which tree it was read from (§0 and §15 of the kernel reference digest); ``docs/kernel-versions.md``
is generated from them (``policy_table()``).
"""
from __future__ import annotations

import errno
import functools
from dataclasses import dataclass, fields, replace

from hotmem.errors import HotplugError

#: The seed design: "[RFC PATCH v2] Allocate memmap from hotadded memory (per device)", 5.10-rc.
RFC_V2 = "v2"

#: The architectures whose own code has version-dependent behaviour here (ArchPolicy).
ARCH_NAMES = ("x86_64", "arm64", "powerpc64", "s390x")


def kernel_version(kernel) -> tuple[int, int] | str:
    """``kernel`` as ``(major, minor)``, or ``"v2"`` for the RFC v2 design.

    Accepts "6.1", "6.1.166", "v6.9" (the sublevel is dropped); anything else is
    refused with EINVAL.
    """
    text = str(kernel).strip()
    if text == RFC_V2:
        return RFC_V2
    parts = text[1:].split(".") if text[:1] == "v" else text.split(".")
    if 2 <= len(parts) <= 3 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    raise HotplugError(errno.EINVAL, f"kernel version {kernel!r}: expected \"v2\" or "
                       "\"MAJOR.MINOR[.SUBLEVEL]\"")


@dataclass(frozen=True)
class ArchPolicy:
    """What one architecture's own code and Kconfig do under one kernel version: the per-arch
    overlay of a :class:`KernelPolicy` (``policy.arch("powerpc64")``), built from ARCH_CHANGES."""

    #: Kconfig ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE: CONFIG_MHP_MEMMAP_ON_MEMORY can be y (x86_64 and
    #: arm64 from 5.13, powerpc64 from 6.6, s390x from 6.9); the v2 RFC had no such gate (true)
    mhp_memmap_on_memory_enable: bool = False
    #: powerpc: memory_block_size_bytes() is init_64.c:probe_memory_block_size on every platform
    #: (6.6+), not ppc_md.memory_block_size (6.1: pseries_memory_block_size)
    probe_memory_block_size: bool = False
    #: powerpc radix: vmemmap_populate / vmemmap_free are radix_pgtable.c:radix__vmemmap_populate
    #: / radix__vmemmap_free (6.6+), not init_64.c's vmemmap_list path
    radix_vmemmap_populate: bool = False
    #: powerpc pseries: hotplug-memory.c:dlpar_add_lmb passes MHP_MEMMAP_ON_MEMORY (6.6+), not
    #: MHP_NONE
    dlpar_memmap_on_memory: bool = False
    #: s390: sclp_cmd.c adds standby memory with MHP_MEMMAP_ON_MEMORY | MHP_OFFLINE_INACCESSIBLE
    #: and its notifier acts on MEM_PREPARE_ONLINE / MEM_FINISH_OFFLINE (6.9+; not modelled)
    sclp_memmap_on_memory: bool = False


#: (arch, first release, ArchPolicy fields from that release on): where each arch's code changed
#: (read in 5.14-rc5, 6.1.166, 6.6.57, 6.8.0 and 6.9.0). The v2 RFC is outside this list: it had
#: no Kconfig gate and none of the later arch code.
ARCH_CHANGES = (
    ("x86_64", (5, 13), {"mhp_memmap_on_memory_enable": True}),      # arch/x86/Kconfig
    ("arm64", (5, 13), {"mhp_memmap_on_memory_enable": True}),       # arch/arm64/Kconfig
    ("powerpc64", (6, 6), {"mhp_memmap_on_memory_enable": True,      # if PPC_RADIX_MMU
                           "probe_memory_block_size": True, "radix_vmemmap_populate": True,
                           "dlpar_memmap_on_memory": True}),
    ("s390x", (6, 9), {"mhp_memmap_on_memory_enable": True, "sclp_memmap_on_memory": True}),
)


@functools.lru_cache(maxsize=None)
def _arch_policy(release, arch: str) -> ArchPolicy:
    if release == RFC_V2:
        return ArchPolicy(mhp_memmap_on_memory_enable=True)
    changes = {}
    for name, first, fields_ in ARCH_CHANGES:
        if name == arch and release >= first:
            changes.update(fields_)
    return ArchPolicy(**changes)


@dataclass(frozen=True)
class KernelPolicy:
    """Behaviour switches of one kernel version (memory hotplug and the page allocator)."""

    name: str
    #: where the behaviour was read
    source: str = ""
    #: the release it stands for: (major, minor), or "v2" (the per-arch overlays are read by it)
    release: tuple | str = (6, 1)
    #: MAX_ORDER names the largest order (6.4+: "mm, treewide: Redefine MAX_ORDER sanely"), not
    #: the number of orders: the spelling of Kconfig ARCH_FORCE_MAX_ORDER
    max_order_inclusive: bool = False
    #: how memory_hotplug.memmap_on_memory is given: "none" (v2: no switch, the flag alone
    #: decides), "bool" (5.13..6.5) or "tristate" (6.6+: N / Y / force)
    memmap_on_memory_param: str = "bool"
    #: mhp_supports_memmap_on_memory rule: "v2" (arch_support_memmap_on_memory() and a size of at
    #: most one block), "5.13" (exactly one block, PMD-aligned memmap, pageblock-aligned rest),
    #: "6.6" (memory_block_memmap_on_memory_pages with force padding, arch override)
    mhp_supports_rule: str = "5.13"
    #: (the rule "none": before 5.13 there is no memmap_on_memory; only release_policy() makes it)
    #: add_memory_resource: flag set but unsupported → -EINVAL (v2..6.5) or silent fallback (6.6+)
    mhp_memmap_on_memory_fallback: bool = False
    #: ACPI asks for MHP_MEMMAP_ON_MEMORY only when supported (False: always, 6.6+)
    acpi_checks_support: bool = True
    #: the hot-add altmap's ``free``: "range" (the whole added range, v2..6.5) or "memmap" (the
    #: memmap pages incl. force padding, 6.6+)
    altmap_free: str = "range"
    #: memory blocks keep ``nr_vmemmap_pages`` (v2..6.5) or a copy of the altmap (6.6+)
    memory_block_keeps_altmap: bool = False
    #: nr_vmemmap_pages given to: "first" block only (v2) or "all" blocks of the range
    nr_vmemmap_pages_blocks: str = "all"
    #: v2: online_pages/offline_pages handle the vmemmap pages themselves (present for the whole
    #: block in one go); 5.13+: memory_block_online/offline do (mhp_init/deinit_memmap_on_memory)
    vmemmap_in_online_pages: bool = False
    #: memory-block altmaps split per block (6.8 create_altmaps_and_memory_blocks)
    altmap_per_memory_block: bool = False
    #: try_remove_memory refuses memmap_on_memory ranges ≠ one block with -EINVAL (5.13..6.7)
    remove_refuses_wrong_granularity: bool = True
    #: remove-time vmemmap count: "sum" of the blocks' counts up to the first block without any
    #: (v2), "first" block's count (5.13..6.5), "block altmap" (6.6+)
    remove_altmap_from: str = "first"
    #: vmemmap pages get PageVmemmapSelfHosted (PG_owner_priv_1), 6.0+
    vmemmap_self_hosted_flag: bool = True
    #: create_memory_block_devices failure rolls back with the altmap (6.1.y stable; v2 and 5.13
    #: pass NULL, which hands altmap pages to free_pagetable)
    add_rollback_passes_altmap: bool = True
    #: vmemmap_populate_hugepages maps the base pages under a PMD that is already a PTE table
    #: from the altmap (6.6+ generic code) rather than from the buddy (6.1 x86); a failed altmap
    #: block is -ENOMEM in both
    basepage_fallback_uses_altmap: bool = False
    #: WARN when a removed block's altmap still has pages allocated (6.6+)
    warn_altmap_not_freed: bool = False
    #: mem_section_usage carries a leading rcu_head (6.1.76+ stable backport): 56 vs 40 bytes
    usage_has_rcu_head: bool = True
    #: mm/page_isolation.c:start_isolate_page_range isolates the first pageblock, then the last,
    #: then the middle ones ascending (isolate_single_pageblock, 5.19+), not all ascending (v2,
    #: 5.13): which unmovable page offlining reports when more than one pageblock refuses
    isolate_ends_first: bool = True
    #: nr_memmap_pages / nr_memmap_boot_pages in /proc/vmstat (6.11: mm/vmstat.c
    #: memmap_pages_add / memmap_boot_pages_add, system-wide, after nr_dirty_background_threshold)
    memmap_stats: bool = False
    #: memmap_init_range(MEMINIT_HOTPLUG) marks hot-plugged struct pages PageOffline instead of
    #: PG_reserved (6.11): self-hosted vmemmap pages end up without PG_reserved
    hotplug_memmap_page_offline: bool = False
    #: memory_block_online/offline send MEM_PREPARE_ONLINE / MEM_FINISH_OFFLINE around the whole
    #: operation, altmap range included (6.9+, for MHP_OFFLINE_INACCESSIBLE memory: s390)
    memory_notify_prepare_finish: bool = False
    #: how the build configuration names the default online type of hot-added memory:
    #: "bool" (CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE: offline or online, 4.x..6.11) or "choice"
    #: (CONFIG_MHP_DEFAULT_ONLINE_TYPE_{OFFLINE,ONLINE_AUTO,ONLINE_KERNEL,ONLINE_MOVABLE},
    #: mm/memory_hotplug.c:mhp_get_default_online_type; 6.14, in 6.12.y from 6.12.111)
    default_online_type_kconfig: str = "bool"
    #: mm/sparse.c / sparse-vmemmap.c:populate_section_memmap adds to nr_memmap_pages before
    #: looking at the result, so a failed populate and the depopulate that undoes it cancel out
    #: (6.12.101 "mm/sparse-vmemmap: fix vmemmap accounting underflow"); False: only a successful
    #: __populate_section_memmap counts, and a failed hot-add leaves the counter lower (6.11)
    memmap_stats_count_failed_populate: bool = False
    #: mm/sparse.c:free_map_bootmem takes an emptied early section's memmap off
    #: nr_memmap_boot_pages, sparse_init_nid having counted it (6.12.48 "mm: fix accounting of
    #: memmap pages"); False: boot memmap freed by hot-remove stays counted (6.11)
    free_map_bootmem_counts: bool = False
    #: mm/memory_hotplug.c:create_altmaps_and_memory_blocks rolls a failed
    #: create_memory_block_devices back with the block's altmap (6.12.100 "mm/memory_hotplug:
    #: fix incorrect altmap passing in error path"); False: with NULL (6.8..6.11), so x86's
    #: teardown hands the altmap's own pages to free_pagetable
    per_block_rollback_passes_altmap: bool = False
    #: mm/vmstat.c:zoneinfo_show_print prints promo_wmark_pages after high (in 6.12.118, not in
    #: 6.11.11, and not among Debian's 6.12.y stable changes: from the 6.12 merge window)
    zoneinfo_promo: bool = False
    #: mm/page_alloc.c:__setup_per_zone_wmarks leaves ZONE_MOVABLE out of lowmem_pages and caps
    #: its MIN like highmem's, clamp(managed / 1024, SWAP_CLUSTER_MAX, 128) ("mm/page_alloc: fix
    #: min_free_kbytes calculation regarding ZONE_MOVABLE"): read in 6.11.11 and 6.12.118, absent
    #: from 6.1.176 (whose readings agree with the uncapped rule); 6.6 and 6.8 not re-read
    movable_wmark_like_highmem: bool = False
    #: per-CPU pageset high is auto-tuned between pcp->high_min and high_max
    #: (mm/page_alloc.c:pageset_update, nr_pcp_high, decay_pcp_high; read in 6.11.11 and
    #: 6.12.118): the "high:" zoneinfo prints moves with the workload, the model keeps high_min
    pcp_high_autotune: bool = False
    #: memory_hotplug.online_policy ("contig-zones" / "auto-movable"), auto_movable_ratio and
    #: auto_movable_numa_aware, and memory groups (5.15+: David Hildenbrand's "memory group"
    #: series; mm/memory_hotplug.c:auto_movable_zone_for_pfn)
    online_policy_param: bool = True

    def describe(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def has_memmap_on_memory(self) -> bool:
        return self.mhp_supports_rule != "none"

    def arch(self, name: str) -> ArchPolicy:
        """The per-arch overlay: what arch ``name``'s own code does in this release."""
        return _arch_policy(self.release, name)


#: Linux 6.1 as read at 6.1.166 (the Debian 6.1.176 reference kernel): §4–§10 of the digest.
LINUX_6_1 = KernelPolicy(name="6.1", source="unifreq/linux-6.1.y at 6.1.166")

#: The merged form (v5.13-rc1), as read in 5.14-rc5 (§15.2): 6.1 without PageVmemmapSelfHosted
#: (6.0) and with the NULL altmap on the create_memory_block_devices error path.
LINUX_5_13 = replace(LINUX_6_1, name="5.13", source="lsk-legends/linux-5.14 (5.14-rc5)",
                     release=(5, 13), vmemmap_self_hosted_flag=False,
                     add_rollback_passes_altmap=False, usage_has_rcu_head=False,
                     isolate_ends_first=False, online_policy_param=False)

#: The seed: "[RFC PATCH v2] Allocate memmap from hotadded memory (per device)", 25 Nov 2020,
#: on 5.10-rc (§15.1).
V2 = replace(LINUX_5_13, name="v2", source="lkml RFC v2 patches 1-4/4 (25 Nov 2020)",
             release=RFC_V2, memmap_on_memory_param="none", mhp_supports_rule="v2",
             nr_vmemmap_pages_blocks="first", vmemmap_in_online_pages=True,
             remove_refuses_wrong_granularity=False, remove_altmap_from="sum")

#: 6.6 (Aneesh Kumar K.V's series, read at 6.6.57; §15.5).
LINUX_6_6 = replace(LINUX_6_1, name="6.6", source="lxdklp/linux-6.6.y at 6.6.57",
                    release=(6, 6), max_order_inclusive=True,
                    memmap_on_memory_param="tristate", mhp_supports_rule="6.6",
                    mhp_memmap_on_memory_fallback=True, acpi_checks_support=False,
                    altmap_free="memmap", memory_block_keeps_altmap=True,
                    remove_altmap_from="block altmap", basepage_fallback_uses_altmap=True,
                    warn_altmap_not_freed=True)

#: 6.8 (Vishal Verma's per-block altmaps, read at 6.8.0; §15.6).
LINUX_6_8 = replace(LINUX_6_6, name="6.8", source="sndrzt/linux-6.8 (6.8.0 commit)",
                    release=(6, 8), altmap_per_memory_block=True,
                    remove_refuses_wrong_granularity=False)

#: 6.11 (read at 6.11.11; Pasha Tatashin's three memmap-accounting fixes -- "don't account memmap
#: on failure", "add system wide stats items category", "don't account memmap per-node" -- are in
#: the 6.11-rc mm-hotfixes pull of August 2024, so 6.11.0 is taken to count as 6.11.11 does).
#: - Sourav Panda's "mm: report per-page metadata information" and those fixes: the memmap's
#:   pages are counted system-wide. mm/sparse-vmemmap.c:__populate_section_memmap adds
#:   DIV_ROUND_UP(nr_pages * sizeof(struct page), PAGE_SIZE) on success -- to
#:   nr_memmap_boot_pages while system_state is SYSTEM_BOOTING (sparse_init_nid), else to
#:   nr_memmap_pages -- whether the pages came from the buddy or from an altmap (memmap on
#:   memory is counted too); mm/sparse.c:depopulate_section_memmap subtracts the same amount
#:   (also on section_activate's failure path, after a populate that added nothing);
#:   free_map_bootmem subtracts nothing. Not per node, not in /proc/meminfo.
#: - hot-plugged memmaps start PageOffline, not PG_reserved (mm/mm_init.c:memmap_init_range; not
#:   in 6.9.0, 6.10 not read); mhp_init_memmap_on_memory clears PageOffline before setting
#:   PageVmemmapSelfHosted, so those pages read KPF_OWNER_PRIVATE alone in /proc/kpageflags.
#: - since 6.9 (read in 6.9.0): MEM_PREPARE_ONLINE / MEM_FINISH_OFFLINE notifier events and
#:   MHP_OFFLINE_INACCESSIBLE, which s390's sclp driver uses for its memmap on memory (that part
#:   is hotmem/arch/s390x_init.py's); 6.8 keeps none of this, so 6.11 has it all.
LINUX_6_11 = replace(LINUX_6_8, name="6.11", source="segzix/linux-6.11.11 (6.11.11)",
                     release=(6, 11), memmap_stats=True, hotplug_memmap_page_offline=True,
                     memory_notify_prepare_finish=True, movable_wmark_like_highmem=True,
                     pcp_high_autotune=True)

#: 6.12 as Debian 13 builds it, read at 6.12.118 (Debian's linux-source-6.12 6.12.118-1, the
#: source of the linux-image-6.12.118+deb13-amd64-unsigned that `hotmem validate --kernel-version
#: 6.12` boots) and diffed against 6.11.11. What changed for memory hotplug:
#: - mm/vmstat.c:zoneinfo_show_print prints "promo" (promo_wmark_pages) after "high" (6.12.0;
#:   the line is not in Debian's 6.12.y stable changelog).
#: - mm/memory_hotplug.c:mhp_get_default_online_type / mhp_set_default_online_type replace the
#:   mhp_default_online_type global; the Kconfig choice CONFIG_MHP_DEFAULT_ONLINE_TYPE_* replaces
#:   CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE (6.14, "mm: add build-time option for hotplug memory
#:   default online type", backported in 6.12.111): online_memory_block, add_memory_resource and
#:   drivers/base/memory.c:auto_online_blocks_show/store go through them. The build's choice is
#:   hotmem.kconfig.KernelConfig's, not the policy's.
#: - the memmap accounting moved out of __populate_section_memmap: sparse_init_nid counts each
#:   present section's memmap in nr_memmap_boot_pages, free_map_bootmem takes it off again
#:   (6.12.48), and populate_section_memmap counts section_nr_vmemmap_pages whether the populate
#:   worked or not, so section_activate's failure path (depopulate) nets to zero (6.12.101).
#: - create_altmaps_and_memory_blocks passes params.altmap to arch_remove_memory when
#:   create_memory_block_devices fails (6.12.100).
#: Read and found without an effect the model can show (no field): remove_memory_blocks_and_altmaps
#: and memblk_nr_poison_add/sub drop the device reference find_memory_block took (6.12.94; the
#: model keeps no device refcounts); __add_memory_block sets mem->altmap only once the device is
#: registered; free_area_init_core_hotplug folds per-CPU node stat deltas a node's hot-unplug
#: stranded, and fails with -ENOMEM instead of oopsing when alloc_percpu fails (6.12.105; the
#: model keeps no per-CPU vmstat deltas); do_migrate_range works on folios and skips hwpoisoned
#: large folios (6.12.86; the model migrates nothing); x86 arch_add_memory leaves max_pfn alone
#: for a dev_pagemap (ZONE_DEVICE, not modelled); arch_remove_memory / __remove_pages /
#: sparse_remove_section take a dev_pagemap (NULL here); mm_init.c:calculate_node_totalpages sets
#: node_spanned_pages to node_end_pfn - node_start_pfn (the model already does); struct
#: memory_block's state becomes enum memory_block_state (sysfs text unchanged); vmstat_text gains
#: zone_reclaim_success, thp_underused_split_page, swpin_zero and swpout_zero (event counters, a
#: workload's).
LINUX_6_12 = replace(LINUX_6_11, name="6.12", source="Debian linux-source-6.12 (6.12.118)",
                     release=(6, 12), default_online_type_kconfig="choice",
                     memmap_stats_count_failed_populate=True, free_map_bootmem_counts=True,
                     per_block_rollback_passes_altmap=True, zoneinfo_promo=True)

POLICIES = {p.name: p for p in (V2, LINUX_5_13, LINUX_6_1, LINUX_6_6, LINUX_6_8, LINUX_6_11,
                                LINUX_6_12)}


def get_policy(version: str | KernelPolicy) -> KernelPolicy:
    """The policy named ``version`` ("v2", "5.13", "6.1", "6.6", "6.8", "6.11", "6.12")."""
    if isinstance(version, KernelPolicy):
        return version
    try:
        return POLICIES[str(version)]
    except KeyError:
        raise HotplugError(errno.EINVAL, f"kernel version {version!r} is not modelled "
                           f"(known: {', '.join(POLICIES)})") from None


def release_policy(kernel) -> KernelPolicy:
    """The policy of any release, for the Machine-less questions of hotmem.arch ("5.12", "6.5",
    "6.9", "6.1.166", "v2", or a KernelPolicy): a modelled version's own policy; before 5.13 the
    5.13 policy with no memmap_on_memory (rule "none"); otherwise the newest modelled policy
    before it with the release's own ``release``, ``max_order_inclusive`` and arch overlays (its
    other fields are that policy's: a Machine takes only the modelled versions, get_policy)."""
    if isinstance(kernel, KernelPolicy):
        return kernel
    k = kernel_version(kernel)
    for p in POLICIES.values():
        if p.release == k:
            return p
    name = f"{k[0]}.{k[1]}"
    if k < (5, 13):
        return replace(LINUX_5_13, name=name, release=k, mhp_supports_rule="none")
    base = max((p for p in POLICIES.values() if p.release != RFC_V2 and p.release <= k),
               key=lambda p: p.release)
    return replace(base, name=name, release=k, max_order_inclusive=k >= (6, 4))


def policy_table() -> str:
    """A markdown table of every policy field by version, then the per-arch overlays
    (``arch.field``), generated from the policy objects."""
    names = list(POLICIES)
    rows = ["| field | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for f in fields(KernelPolicy):
        if f.name in ("name",):
            continue
        vals = [str(getattr(POLICIES[n], f.name)) for n in names]
        rows.append(f"| `{f.name}` | " + " | ".join(vals) + " |")
    for arch in ARCH_NAMES:
        for f in fields(ArchPolicy):
            vals = [str(getattr(POLICIES[n].arch(arch), f.name)) for n in names]
            rows.append(f"| `{arch}.{f.name}` | " + " | ".join(vals) + " |")
    # the build configurations (hotmem.kconfig): the preset a Machine takes by default, then
    # each distribution preset's options where it has a build of the version ("-": none)
    from hotmem.kconfig import DEFAULT_PRESET, PRESETS
    rows.append("| `config.default` | " + " | ".join(DEFAULT_PRESET.get(n, "defconfig")
                                                     for n in names) + " |")
    for preset, builds in PRESETS.items():
        if not builds:
            continue
        for key in ("mhp_default_online_type", "mhp_memmap_on_memory"):
            vals = [str(getattr(builds[n], key)) if n in builds else "-" for n in names]
            rows.append(f"| `config.{preset}.{key}` | " + " | ".join(vals) + " |")
    return "\n".join(rows) + "\n"
