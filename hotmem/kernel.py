"""Kernel-version policies: which memory-hotplug behaviour a kernel version has.

The mm code consults these named fields instead of comparing version numbers. Each policy cites
the tree it was read from (see §0 and §15 of the kernel reference digest).
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, fields

from hotmem.errors import HotplugError


@dataclass(frozen=True)
class KernelPolicy:
    """Behaviour switches of one kernel version (memory hotplug and the page allocator)."""

    name: str
    #: MAX_ORDER as that version defines it: 6.1 = number of orders (11 → orders 0..10)
    max_order: int = 11
    #: CONFIG_MHP_MEMMAP_ON_MEMORY exists (merged 5.13; the v2 RFC had a flag but no parameter)
    has_memmap_on_memory: bool = True
    #: memory_hotplug.memmap_on_memory accepts "force" (6.6+)
    memmap_on_memory_force: bool = False
    #: add_memory_resource: MHP_MEMMAP_ON_MEMORY unsupported → -EINVAL (6.1) / silent fallback (6.6+)
    mhp_memmap_on_memory_fallback: bool = False
    #: the hot-add altmap's ``free`` is the whole range (6.1) rather than the memmap pages (6.6+)
    altmap_free_whole_range: bool = True
    #: memory-block altmaps split per block (6.8 create_altmaps_and_memory_blocks)
    altmap_per_memory_block: bool = False
    #: try_remove_memory refuses memmap_on_memory ranges ≠ one block with -EINVAL (5.13..6.7)
    remove_refuses_wrong_granularity: bool = True
    #: vmemmap pages get PageVmemmapSelfHosted (PG_owner_priv_1), 6.0+
    vmemmap_self_hosted_flag: bool = True
    #: create_memory_block_devices failure rolls back with the altmap (6.1.y stable)
    add_rollback_passes_altmap: bool = True
    #: generic vmemmap_populate_hugepages falls back to base pages *with* the altmap (6.8)
    basepage_fallback_uses_altmap: bool = False
    #: /proc/vmstat has nr_memmap_pages / nr_memmap_boot_pages (6.11+)
    vmstat_memmap_pages: bool = False
    #: mem_section_usage carries a leading rcu_head (6.1.y kfree_rcu backport): 56 vs 40 bytes
    usage_has_rcu_head: bool = True

    def describe(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: Linux 6.1 as read at 6.1.166 (the Debian 6.1.176 reference kernel): see §4–§10 of the digest.
LINUX_6_1 = KernelPolicy(name="6.1")

POLICIES = {p.name: p for p in (LINUX_6_1,)}


def get_policy(version: str | KernelPolicy) -> KernelPolicy:
    """The policy named ``version`` (e.g. "6.1")."""
    if isinstance(version, KernelPolicy):
        return version
    try:
        return POLICIES[str(version)]
    except KeyError:
        raise HotplugError(errno.EINVAL, f"kernel version {version!r} is not modelled "
                           f"(known: {', '.join(sorted(POLICIES))})") from None
