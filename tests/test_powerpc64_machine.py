"""The hotplug lifecycle on powerpc64 (book3s, 64K pages, radix and hash MMUs) on a QEMU
pseries machine: RAM from 0, LMBs of ibm,lmb-size = 256 MiB in the device memory from
ROUND_UP(RAM, 1 GiB), added by dlpar_add_lmb (6.1: MHP_NONE; 6.6+: MHP_MEMMAP_ON_MEMORY).

Expected numbers are hand computations written out here from the kernel's constants:
PAGE_SIZE 64 KiB, sizeof(struct page) 64, SECTION_SIZE 16 MiB, PMD_SIZE 2 MiB (radix), a
radix PTE table 32 x 8 B = 256 B (256 fragments per 64 KiB page), a PMD table 512 x 8 B =
4 KiB (16 per page); pageblock_order 5 on radix (2 MiB HPAGE), 8 on hash (16 MiB).
"""
import errno

import pytest

import hotmem
from hotmem.arch.powerpc64_init import (
    device_memory_base,
    dlpar_add_lmb,
    dlpar_remove_lmb,
)
from hotmem.mm.memory_hotplug import MHP_MEMMAP_ON_MEMORY

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
PAGE = 64 * KiB
LMB = 256 * MiB
FORCE = "memory_hotplug.memmap_on_memory=force"


@pytest.fixture(params=["compiled", "python"])
def backend(request):
    return request.param


def settled(acc):
    """accounting() without slab counters that went back to zero."""
    return dict(acc, **{"slab objects": {k: v for k, v in acc["slab objects"].items() if v}})


def ppc(backend, mmu="radix", kernel="6.6", boot="2G", cmdline=FORCE):
    return hotmem.Machine(arch="powerpc64", mmu=mmu, kernel=kernel, boot_memory=boot,
                          cmdline=cmdline, backend=backend)


def test_pseries_layout_and_block_size(backend):
    for kernel in ("6.1", "6.6", "6.8"):
        for mmu in ("radix", "hash"):
            m = ppc(backend, mmu, kernel, cmdline="")
            assert m.block_size_bytes == LMB                   # ibm,lmb-size of QEMU pseries
            assert device_memory_base(m) == 2 * GiB
            # book3s64 has no ZONE_DMA: all 2 GiB = 32768 pages are ZONE_NORMAL
            assert m.zone(0, "DMA").present_pages == 0
            assert m.zone(0, "DMA32").present_pages == 0
            normal = m.zone(0, "Normal")
            assert (normal.zone_start_pfn, normal.spanned_pages) == (0, 32768)
    assert device_memory_base(ppc(backend, boot="1536M")) == 2 * GiB    # rounded up to 1 GiB
    assert device_memory_base(ppc(backend, boot="1G")) == 1 * GiB


def test_boot_page_tables(backend):
    # radix, 2 GiB: the linear map in 2 MiB leaves (the 256 MiB cap of radix_mem_block_size
    # rules out 1 GiB ones): a PUD table and one PMD table per GiB; the vmemmap of 2 GiB is
    # 32768 x 64 B = 2 MiB = one PMD leaf (32 pages) under a PUD and a PMD table. 6.1 also
    # carves the vmemmap_list from one memblock page.
    def tables(acc):        # the boot's page tables and memmap (the rest: test_boot_absolute_ppc64le)
        return {k: v for k, v in acc["boot"].items()
                if k.startswith(("pgtable", "vmemmap")) or k == "memmap"}
    b66 = tables(ppc(backend, kernel="6.6").accounting())
    assert b66 == {"pgtable PGD": 1, "pgtable PUD": 1, "pgtable PMD": 2,
                   "vmemmap PUD table (boot)": 1, "vmemmap PMD table (boot)": 1, "memmap": 32}
    b61 = tables(ppc(backend, kernel="6.1", cmdline="").accounting())
    assert b61 == dict(b66, vmemmap_list=1)
    # hash: bolted HPTEs, no Linux tables but the PGD; the vmemmap page is 16 MiB (>= 1 GiB
    # of RAM) = 256 pages
    bh = tables(ppc(backend, mmu="hash", kernel="6.6").accounting())
    assert bh == {"pgtable PGD": 1, "memmap": 256, "vmemmap_list": 1}


def test_6_1_has_no_memmap_on_memory(backend):
    # 6.1: ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE is not selected by powerpc (only from 6.6)
    m = ppc(backend, kernel="6.1", cmdline="memory_hotplug.memmap_on_memory=1")
    assert not m.mhp_supports_memmap_on_memory(LMB)
    before = m.snapshot()
    with pytest.raises(hotmem.HotplugError) as e:
        m.add_memory(0, 2 * GiB, LMB, MHP_MEMMAP_ON_MEMORY)
    assert e.value.errno == errno.EINVAL and m.snapshot() == before


def test_6_1_radix_lifecycle(backend):
    m = ppc(backend, kernel="6.1", cmdline="")
    boot = m.accounting()
    base = device_memory_base(m)
    dlpar_add_lmb(m, base)                       # __add_memory(MHP_NONE) + dlpar_online_lmb
    blk = m.memory_blocks[base // LMB]
    assert blk.state == "online" and blk.nr_vmemmap_pages == 0
    acc = m.accounting()
    # memmap of 256 MiB = 4096 x 64 B = 256 KiB at vmemmap offset 2 MiB: a fresh 2 MiB
    # mmu_vmemmap_psize block (order 5 = 32 pages) from the buddy, mapped by a PMD leaf in
    # the boot vmemmap PMD table (its list entry comes from the boot vmemmap_list page)
    assert acc["memmap"] == {"altmap": {}, "buddy": {0: 32}}
    assert acc["page tables"]["vmemmap"] == {}
    # linear map: 128 PMD leaves of 2 MiB in a new PMD table for [2 GiB, 3 GiB): a 4 KiB
    # fragment, its 64 KiB page from the buddy
    assert acc["page tables"]["direct map"] == {"PMD": 1}
    assert m.pgtables.lookup(m.arch.phys_to_virt(base))[0] == "PMD"
    # dlpar_online_lmb: MMOP_ONLINE -> ZONE_NORMAL, 4096 more pages
    assert m.zone(0, "Normal").spanned_pages == 32768 + 4096
    dlpar_remove_lmb(m, base)
    acc = m.accounting()
    assert acc["memmap"] == boot["memmap"] == {"altmap": {}, "buddy": {}}
    # the PMD fragment is freed but init_mm keeps its fragment page (15 fragments left)
    assert acc["page tables"] == {"direct map": {"PMD": 1}, "vmemmap": {}}
    assert m.pgtables.fragment_pages() == {min(m.pgtables.fragment_pages()): 16 - 1}
    assert not m.warnings


def test_6_6_radix_force_memmap_on_memory(backend):
    m = ppc(backend)
    # 256 MiB block: 4096 pages x 64 B = 256 KiB = 4 pages of memmap
    assert not ppc(backend, cmdline="memory_hotplug.memmap_on_memory=1") \
        .mhp_supports_memmap_on_memory(LMB)           # 4 pages are not a pageblock (32)
    assert m.mhp_supports_memmap_on_memory(LMB)       # force pads 4 to 32 pages
    boot = m.accounting()
    base = device_memory_base(m)
    normal = m.zone(0, "Normal")
    managed0, present0 = normal.managed_pages, normal.present_pages
    m.add_memory(0, base, LMB, MHP_MEMMAP_ON_MEMORY)
    nr = base // LMB
    blk = m.memory_blocks[nr]
    assert blk.nr_vmemmap_pages == 32
    # radix__vmemmap_populate: the vmemmap of [2 GiB, 2 GiB + 256 MiB) starts on a PMD
    # boundary (offset 2 MiB) but a PMD would cross the altmap -> base pages, 4 of them from
    # the altmap; 28 of the 32 reserved pages are never used
    assert blk.altmap.alloc == 4 and 32 - blk.altmap.alloc == 28
    acc = m.accounting()
    assert acc["memmap"] == {"altmap": {0: 4}, "buddy": {}}
    # one PTE table fragment (256 B) for the vmemmap, one PMD table fragment (4 KiB) for the
    # linear map, each the first fragment of a new 64 KiB page
    assert acc["page tables"] == {"direct map": {"PMD": 1}, "vmemmap": {"PTE": 1}}
    assert sorted(m.pgtables.fragment_pages().values()) == [16, 256]
    m.sysfs.write(f"/sys/devices/system/memory/memory{nr}/state", "online_movable")
    z = m.zone(0, "Movable")
    pfn = base // PAGE
    assert (z.zone_start_pfn, z.spanned_pages, z.present_pages, z.managed_pages) == \
        (pfn, 4096, 4096, 4096 - 32)
    assert (normal.managed_pages, normal.present_pages) == (managed0, present0)
    flags = m.procfs.kpageflags(pfn, 64)
    # vmemmap pages: PageReserved (32) | PageVmemmapSelfHosted = PG_owner_priv_1 (37);
    # the rest free in the buddy (10)
    assert (flags[:32] == (1 << 32 | 1 << 37)).all() and (flags[32:] == 1 << 10).all()
    m.sysfs.write(f"/sys/devices/system/memory/memory{nr}/state", "offline")
    m.remove_memory(base, LMB)
    acc = m.accounting()
    assert acc["memmap"] == boot["memmap"] and acc["boot"] == boot["boot"]
    # the freed fragments leave their pages with init_mm's fragment caches: 15 and 255
    assert acc["page tables"] == {"direct map": {"PMD": 1}, "vmemmap": {"PTE": 1}}
    assert sorted(m.pgtables.fragment_pages().values()) == [15, 255]
    assert not m.warnings


def test_6_6_radix_fragment_pages_come_back(backend):
    # each DLPAR add/remove cycle takes the next PMD fragment and frees it: the 16th
    # frees the last reference and the PMD page goes back; the PTE page has 256
    m = ppc(backend)
    boot = m.accounting()
    base = device_memory_base(m)
    for i in range(16):
        dlpar_add_lmb(m, base)
        assert m.memory_blocks[base // LMB].state == "online"
        dlpar_remove_lmb(m, base)
    acc = m.accounting()
    assert acc["page tables"] == {"direct map": {}, "vmemmap": {"PTE": 1}}
    assert list(m.pgtables.fragment_pages().values()) == [256 - 16]
    assert acc["memmap"] == boot["memmap"]
    assert settled(acc)["slab objects"] == boot["slab objects"]
    assert not m.warnings


def test_6_6_radix_memmap_in_a_boot_pmd_leaf(backend):
    # 1 GiB of RAM: the LMB at 1 GiB has its memmap at vmemmap offset 1 MiB, inside the 2 MiB
    # PMD leaf boot made for [0, 2 GiB): radix__vmemmap_populate finds it (vmemmap_check_pmd)
    # and allocates nothing; the 32 vmemmap pages are still set aside in the block
    m = ppc(backend, boot="1G")
    base = device_memory_base(m)
    m.add_memory(0, base, LMB, MHP_MEMMAP_ON_MEMORY)
    blk = m.memory_blocks[base // LMB]
    assert blk.nr_vmemmap_pages == 32 and blk.altmap.alloc == 0
    acc = m.accounting()
    assert acc["memmap"] == {"altmap": {}, "buddy": {}}
    assert acc["page tables"]["vmemmap"] == {}
    m.remove_memory(base, LMB)
    assert m.accounting()["memmap"] == {"altmap": {}, "buddy": {}} and not m.warnings


def test_6_6_radix_without_memmap_on_memory(backend):
    # memmap_on_memory=1 but 4 pages are not pageblock-aligned: dlpar_add_lmb's
    # MHP_MEMMAP_ON_MEMORY is dropped; the memmap is a 2 MiB PMD block from the buddy
    m = ppc(backend, cmdline="memory_hotplug.memmap_on_memory=1")
    base = device_memory_base(m)
    dlpar_add_lmb(m, base)
    assert m.memory_blocks[base // LMB].nr_vmemmap_pages == 0
    assert m.accounting()["memmap"] == {"altmap": {}, "buddy": {0: 32}}
    assert m.accounting()["page tables"] == {"direct map": {"PMD": 1}, "vmemmap": {}}
    dlpar_remove_lmb(m, base)
    assert m.accounting()["memmap"] == {"altmap": {}, "buddy": {}} and not m.warnings


@pytest.mark.parametrize("kernel", ["6.6", "6.8"])
def test_hash_refuses_memmap_on_memory(backend, kernel):
    m = ppc(backend, mmu="hash", kernel=kernel)
    assert not m.mhp_supports_memmap_on_memory(LMB)       # radix_enabled() is false
    boot = m.accounting()
    base = device_memory_base(m)
    dlpar_add_lmb(m, base)                # MHP_MEMMAP_ON_MEMORY ignored by add_memory_resource
    assert m.memory_blocks[base // LMB].nr_vmemmap_pages == 0
    # the 16 MiB vmemmap page of boot covers the memmap of [0, 16 GiB): nothing allocated;
    # the linear map is bolted in the hypervisor's hash table: no Linux tables
    assert m.accounting() == boot | {"slab objects": m.accounting()["slab objects"]}
    dlpar_remove_lmb(m, base)
    assert settled(m.accounting()) == boot and not m.warnings


def test_hash_small_boot_uses_base_vmemmap_pages(backend):
    # hash with 512 MiB of RAM: mmu_vmemmap_psize is PAGE_SIZE (under 1 GiB), so the 256 KiB
    # memmap of an LMB at 1 GiB is 4 base pages from the buddy, each in the vmemmap_list
    m = ppc(backend, mmu="hash", kernel="6.1", boot="512M", cmdline="")
    boot = m.accounting()
    assert boot["boot"]["memmap"] == 8                    # 512 MiB -> 512 KiB of memmap
    base = device_memory_base(m)
    assert base == 1 * GiB
    dlpar_add_lmb(m, base)
    assert m.accounting()["memmap"] == {"altmap": {}, "buddy": {0: 4}}
    dlpar_remove_lmb(m, base)
    assert settled(m.accounting()) == boot and not m.warnings


def test_dlpar_remove_of_nothing_is_refused(backend):
    m = ppc(backend)
    before = m.snapshot()
    with pytest.raises(hotmem.HotplugError) as e:
        dlpar_remove_lmb(m, 3 * GiB)
    assert e.value.errno == errno.EINVAL and m.snapshot() == before


def test_failed_adds_unwind_as_the_kernel_does(backend):
    # 1st page allocation = the linear map's PMD fragment page: create_physical_mapping
    # fails before mapping anything, arch_create_linear_mapping returns -EFAULT
    m = ppc(backend)
    base = device_memory_base(m)
    before = m.snapshot()
    m.inject("page_alloc", nth=1)
    with pytest.raises(hotmem.HotplugError) as e:
        m.add_memory(0, base, LMB, MHP_MEMMAP_ON_MEMORY)
    assert e.value.errno == errno.EFAULT and m.snapshot() == before
    # 2nd = the vmemmap PTE fragment page: __add_pages fails with -ENOMEM, the linear map is
    # removed again, but its PMD fragment page stays with init_mm's fragment cache (15 left)
    m = ppc(backend)
    m.inject("page_alloc", nth=2)
    with pytest.raises(hotmem.HotplugError) as e:
        m.add_memory(0, base, LMB, MHP_MEMMAP_ON_MEMORY)
    m.clear_injections()
    assert e.value.errno == errno.ENOMEM and base // LMB not in m.memory_blocks
    acc = m.accounting()
    assert acc["page tables"] == {"direct map": {"PMD": 1}, "vmemmap": {}}
    assert acc["memmap"] == {"altmap": {}, "buddy": {}} and not m.warnings
    assert list(m.pgtables.fragment_pages().values()) == [15]
    m.add_memory(0, base, LMB, MHP_MEMMAP_ON_MEMORY)      # the next add takes fragment 1
    assert next(iter(m.pgtables.fragment_pages().values())) == 15
    assert m.accounting()["page tables"] == {"direct map": {"PMD": 1}, "vmemmap": {"PTE": 1}}


def test_bad_mmu_or_page_size(backend):
    # 4K pages are modelled with radix only (Debian 13's -powerpc64le, issue #16)
    for kw in ({"mmu": "book3e"}, {"page_size": "16K"}, {"mmu": "hash", "page_size": "4K"}):
        with pytest.raises(hotmem.HotplugError) as e:
            hotmem.Machine(arch="powerpc64", backend=backend, **kw)
        assert e.value.errno == errno.EINVAL


def test_zoneinfo_lists_the_zones_of_the_build(backend):
    """Debian's ppc64el 6.1 has MAX_NR_ZONES 2 (ZONE_NORMAL, ZONE_MOVABLE): zoneinfo lists those
    two and every protection array has two entries."""
    m = ppc(backend, kernel="6.1", cmdline="")
    text = m.procfs.read("/proc/zoneinfo")
    assert [ln.split()[-1] for ln in text.splitlines() if ln.startswith("Node")] == \
        ["Normal", "Movable"]
    assert text.count("protection: (0, 0)\n") == 2
