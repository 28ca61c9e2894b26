"""Running a scenario: in the model (``run_model``) and in a real kernel under QEMU
(``run_qemu``). Both return a Run: per step its outcome and the reading taken after it, in the
same form, so that hotmem.validate.diff can compare them file by file.
"""
from __future__ import annotations

import errno

import inspect
import os
import tempfile
import time
from dataclasses import dataclass, field

import hotmem
from hotmem.errors import HotplugError
from hotmem.validate import guest as g
from hotmem.validate.scenario import MEMORY, Scenario, Step, blocks_of

NODE = "/sys/devices/system/node"


@dataclass
class StepResult:
    """What one step did (``ok``, the errno name when refused, a detail text) and the reading
    taken after it (None when the step says ``read = false``)."""
    name: str
    op: str
    ok: bool = True
    error: str | None = None
    detail: str = ""
    reading: dict | None = None
    dimms: dict = field(default_factory=dict)      # dimm -> {"addr", "size", "node"}
    seconds: float = 0.0


@dataclass
class Run:
    """The results of a scenario on one side ("model" or "kernel")."""
    side: str
    steps: list[StepResult]
    info: dict = field(default_factory=dict)


def dimm_ranges(sc: Scenario, upto: int) -> list[tuple[int, int]]:
    """(pfn, count) of every DIMM plugged by steps[:upto]: the kpageflags ranges to read (pfns
    of the guest's page size: fs/proc/page.c indexes kpageflags by pfn)."""
    shift = sc.machine.page_shift
    return [(s.addr >> shift, s.size >> shift) for s in sc.steps[:upto]
            if s.op in ("hotplug", "virtio_mem")]


def _online_steps(step: Step, sc: Scenario, block_size: int):
    """The sysfs writes of an online/offline step: one per block of the DIMM."""
    addr, size, _ = sc.dimm_layout()[step.dimm]
    how = "offline" if step.op == "offline" else step.how
    return [(f"{MEMORY}/memory{b}/state", how) for b in blocks_of(addr, size, block_size)]


# -- the model -----------------------------------------------------------------------------------

def model_machine(sc: Scenario, backend: str | None = None,
                  boot_reserved_pages: int | None = None) -> hotmem.Machine:
    """The scenario's machine in the model."""
    spec = sc.machine
    single = set(spec.boot_memory) == {0} and set(spec.cpu_nodes) == {0}
    if spec.arch == "powerpc64":
        return _model_machine_pseries(sc, backend, boot_reserved_pages)
    levels = 4 if "no5lvl" in spec.cmdline.split() else spec.paging_levels
    flags = ("pse", "hypervisor") + (("la57",) if levels == 5 else ())
    kw = {}
    params = inspect.signature(hotmem.Machine).parameters
    if "maxmem" in params and "slots" in params:      # the QEMU pc layout's 64-bit PCI window
        kw = {"maxmem": spec.maxmem, "slots": spec.slots}
    return hotmem.Machine(
        arch="x86_64", kernel=spec.kernel,
        boot_memory=spec.boot_memory[0] if single else dict(spec.boot_memory),
        cmdline=spec.cmdline, paging_levels=levels,
        cpus=spec.cpu_nodes[0] if single else dict(spec.cpu_nodes), cpu_flags=flags,
        backend=backend, boot_reserved_pages=boot_reserved_pages, config=spec.config, **kw)


def _model_machine_pseries(sc: Scenario, backend, boot_reserved_pages) -> hotmem.Machine:
    """The scenario's QEMU pseries guest in the model: powerpc64 with the guest's page size and
    MMU, its boot allocations modelled by cause (hotmem/arch/powerpc64_setup.py)."""
    spec = sc.machine
    single = set(spec.boot_memory) == {0} and set(spec.cpu_nodes) == {0}
    return hotmem.Machine(
        arch="powerpc64", kernel=spec.kernel, page_size=spec.page_size, mmu=spec.mmu,
        boot_memory=spec.boot_memory[0] if single else dict(spec.boot_memory),
        cmdline=spec.cmdline, cpus=spec.cpu_nodes[0] if single else dict(spec.cpu_nodes),
        maxmem=spec.maxmem, slots=spec.slots, backend=backend,
        boot_reserved_pages=boot_reserved_pages, config=spec.config)


class PseriesDimm:
    """A pc-dimm plugged into the model's pseries guest: its range, for QEMU's pre-plug checks
    (ArchOps.memory_device_pre_plug), and its node."""

    def __init__(self, addr: int, size: int, node: int):
        self.ranges = [(addr, size)]
        self.node = node


def _pseries_step(m, step: Step, devices: dict) -> None:
    """A pc-dimm's device_add / device_del on pseries: QEMU's pre-plug refusals, then the
    kernel's DLPAR request for the DIMM's LMBs (hw/ppc/spapr.c:spapr_memory_plug /
    spapr_memory_unplug_request, QEMU 7.2; hotmem/arch/powerpc64_init.py:
    dlpar_memory_add_by_ic / dlpar_memory_remove_by_ic)."""
    from hotmem.arch.powerpc64_init import dlpar_memory_add_by_ic, dlpar_memory_remove_by_ic
    bs = m.memory_block_size_bytes
    if step.op == "hotplug":
        m.arch_ops.memory_device_pre_plug(m, step.addr, step.size, list(devices.values()))
        dev = PseriesDimm(step.addr, step.size, step.node)
        node = step.node
        if node not in m.pgdats:
            raise HotplugError(errno.EINVAL, f"pc-dimm node {node}: the guest has no such node")
        devices[step.dimm] = dev              # QEMU keeps the DIMM even if the guest fails
        dlpar_memory_add_by_ic(m, step.addr, step.size // bs, node)
    else:
        if step.dimm not in devices:
            raise HotplugError(errno.ENODEV, f"Device '{step.dimm}' not found")
        addr, size = devices[step.dimm].ranges[0]
        dlpar_memory_remove_by_ic(m, addr, size // bs)
        del devices[step.dimm]


def model_reading(m, ranges) -> dict:
    """Every file of a reading, rendered by the model (see hotmem.validate.guest)."""
    files = {p: m.procfs.read(p) for p in g.PROC_FILES}
    for nid, pgdat in sorted(m.pgdats.items()):
        if pgdat.online:
            files[f"{NODE}/node{nid}/meminfo"] = m.sysfs.read(f"{NODE}/node{nid}/meminfo")
    for name in g.NODE_LISTS:
        files[f"{NODE}/{name}"] = m.sysfs.read(f"{NODE}/{name}")
    for name in ("block_size_bytes", "auto_online_blocks"):
        files[f"{MEMORY}/{name}"] = m.sysfs.read(f"{MEMORY}/{name}")
    for bid, mem in sorted(m.memory_blocks.items()):
        for attr in g.BLOCK_ATTRS:
            files[f"{MEMORY}/memory{bid}/{attr}"] = m.sysfs.read(f"{MEMORY}/memory{bid}/{attr}")
        files[f"{MEMORY}/memory{bid}/node"] = f"{mem.nid}\n"
    kpage = {}
    for pfn, n in ranges:
        kpage[(pfn, n)] = {"flags": m.procfs.kpageflags(pfn, n),
                           "counts": m.procfs.kpagecount(pfn, n)}
    return {"files": files, "kpage": kpage}


def _model_step(m, sc: Scenario, step: Step, devices: dict) -> tuple[bool, str | None, str]:
    try:
        if step.op in ("hotplug", "eject") and sc.machine.arch == "powerpc64":
            _pseries_step(m, step, devices)
        elif step.op == "hotplug":
            devices[step.dimm] = m.acpi_memory_hotplug(step.addr, step.size, node=step.node)
        elif step.op == "eject":
            if step.dimm not in devices:        # its device_add was refused: QMP device_del
                raise HotplugError(errno.ENODEV, f"Device '{step.dimm}' not found")
            m.acpi_memory_eject(devices[step.dimm])
            del devices[step.dimm]
        elif step.op == "virtio_mem":
            devices[step.dimm] = m.virtio_mem_device(
                addr=step.addr, region_size=step.size, block_size=step.block_size,
                node=step.node, requested_size=step.requested)
        elif step.op == "resize":
            devices[step.dimm].set_requested_size(step.requested)
        elif step.op in ("online", "offline"):
            for path, value in _online_steps(step, sc, m.memory_block_size_bytes):
                m.sysfs.write(path, value)
        elif step.op == "write":
            m.sysfs.write(step.path, step.value)
    except HotplugError as exc:
        return False, exc.errno_name, str(exc)
    return True, None, ""


def run_model(sc: Scenario, backend: str | None = None,
              boot_reserved_pages: int | None = None) -> Run:
    """The scenario in the model: a reading after boot and after every step."""
    m = model_machine(sc, backend, boot_reserved_pages)
    steps = [StepResult("baseline", "boot", reading=model_reading(m, []))]
    devices: dict = {}
    for i, step in enumerate(sc.steps):
        ok, err, detail = _model_step(m, sc, step, devices)
        res = StepResult(step.name, step.op, ok, err, detail)
        if step.op in ("hotplug", "virtio_mem"):
            res.dimms[step.dimm] = {"addr": step.addr, "size": step.size, "node": step.node}
        if step.op in ("virtio_mem", "resize") and step.dimm in devices:
            d = devices[step.dimm]
            res.dimms[step.dimm] = {"addr": d.addr, "size": d.region_size, "node": d.node,
                                    "plugged": d.size, "last_rc": d.last_rc,
                                    "blocks": d.block_states()}
        if step.read:
            res.reading = model_reading(m, dimm_ranges(sc, i + 1))
        steps.append(res)
    return Run("model", steps, {"boot_reserved_pages": boot_reserved_pages})


# -- the real kernel -------------------------------------------------------------------------------

# ACPI _OST status codes of an eject request (source 3) that mean "refused" (ACPI 6.x, 6.3.5):
# drivers/acpi/scan.c:acpi_scan_hot_remove reports 0x82 when acpi_scan_try_to_offline fails.
# The insertion's _OST (source 1) comes after acpi_memory_device_add has added the memory.
_EJECT_REFUSED = {0x80: "not supported", 0x81: "in use", 0x82: "busy", 0x83: "dependency busy"}
ACPI_OST_EJECT = 3
ACPI_OST_INSERT = 1


def _ost(dimm: str, source: int):
    def pred(ev):
        info = ev.get("data", {}).get("info", {})
        return (ev.get("event") == "ACPI_DEVICE_OST" and info.get("device") == dimm
                and info.get("source") == source and info.get("status") != 0x84)
    return pred


def _guest_write(guest, path: str, value: str) -> str | None:
    _, out = guest.run(g.write_command(path, value))
    return g.parse_write(out)


def _online_wait_command(blocks, tries: int = 600) -> str:
    """A shell line that waits until every memoryBLOCK is there and online (pseries DLPAR adds
    and onlines LMB by LMB, asynchronously to device_add)."""
    paths = " ".join(f"{MEMORY}/memory{b}/state" for b in blocks)
    return ("i=0; while [ $i -lt %d ]; do ok=1; for f in %s; do "
            "[ \"$(cat $f 2>/dev/null)\" = online ] || ok=0; done; [ $ok = 1 ] && break; "
            "sleep 0.1; i=$((i+1)); done; echo HM-WAIT $ok $i; [ $ok = 1 ]" % (tries, paths))


def _device_add_pc_dimm(qmp, step: Step, res: StepResult) -> None:
    """object-add a memory-backend-ram and device_add a pc-dimm on it (QMP), and note where QEMU
    placed it (query-memory-devices)."""
    qmp.execute("object-add", **{"qom-type": "memory-backend-ram", "id": f"mem-{step.dimm}",
                                 "size": step.size})
    qmp.execute("device_add", driver="pc-dimm", id=step.dimm, memdev=f"mem-{step.dimm}",
                addr=step.addr, node=step.node)
    for dev in qmp.execute("query-memory-devices"):
        data = dev.get("data", {})
        if data.get("id") == step.dimm:
            res.dimms[step.dimm] = {k: data.get(k) for k in ("addr", "size", "node")}


def _kernel_step_pseries(guest, sc: Scenario, step: Step, block_size: int,
                         res: StepResult) -> None:
    """device_add / device_del of a pc-dimm on QEMU's pseries: the guest's kernel gets a DLPAR
    request (no ACPI _OST): a plug has worked when every LMB of the DIMM is there and online; an
    unplug when QEMU reports DEVICE_DELETED, and was refused when it reports
    DEVICE_UNPLUG_GUEST_ERROR (the kernel added the LMBs back) or nothing within 60 s."""
    qmp = guest.qmp
    addr, size, _ = sc.dimm_layout()[step.dimm]
    blocks = blocks_of(addr, size, block_size)
    if step.op == "hotplug":
        _device_add_pc_dimm(qmp, step, res)
        rc, out = guest.run(_online_wait_command(blocks), timeout=300)
        if rc:
            res.ok, res.error = False, "EINVAL"
            res.detail = f"DLPAR add: blocks {blocks} not all online: {out.strip()}"
        return
    qmp.execute("device_del", id=step.dimm)
    ev = qmp.wait_event(lambda e: e.get("event") in ("DEVICE_DELETED", "DEVICE_UNPLUG_GUEST_ERROR")
                        and e.get("data", {}).get("device") == step.dimm, 60)
    if ev is None or ev["event"] != "DEVICE_DELETED":
        res.ok, res.error = False, "EINVAL"
        res.detail = ("DLPAR remove refused: " + (ev["event"] if ev else
                                                  "no DEVICE_DELETED within 60 s"))
        return
    qmp.execute("object-del", id=f"mem-{step.dimm}")
    guest.run(g.wait_command(blocks, present=False))


def _kernel_step(guest, sc: Scenario, step: Step, block_size: int, res: StepResult) -> None:
    qmp = guest.qmp
    if step.op in ("hotplug", "eject") and sc.machine.arch == "powerpc64":
        _kernel_step_pseries(guest, sc, step, block_size, res)
    elif step.op == "hotplug":
        _device_add_pc_dimm(qmp, step, res)
        ev = qmp.wait_event(_ost(step.dimm, ACPI_OST_INSERT), 120)
        status = None if ev is None else ev["data"]["info"]["status"]
        blocks = blocks_of(step.addr, step.size, block_size)
        rc, out = guest.run(g.wait_command(blocks, present=True, tries=20 if status else 300))
        if status != 0 or rc:
            res.ok, res.error = False, "EINVAL"
            res.detail = f"_OST insert status {status}; blocks {blocks}: {out.strip()}"
    elif step.op == "eject":
        qmp.execute("device_del", id=step.dimm)
        done = lambda ev: (ev.get("event") == "DEVICE_DELETED"
                           and ev.get("data", {}).get("device") == step.dimm)
        refused = _ost(step.dimm, ACPI_OST_EJECT)
        ev = qmp.wait_event(lambda e: done(e) or (refused(e) and e["data"]["info"]["status"]
                                                  in _EJECT_REFUSED), 120)
        if ev is None or ev["event"] != "DEVICE_DELETED":
            status = None if ev is None else ev["data"]["info"]["status"]
            res.ok, res.error = False, "EBUSY"
            res.detail = (f"eject refused: _OST status {status:#x} "
                          f"({_EJECT_REFUSED.get(status, '?')})" if status is not None
                          else "no DEVICE_DELETED within 120 s")
            return
        qmp.execute("object-del", id=f"mem-{step.dimm}")
        addr, size, _ = sc.dimm_layout()[step.dimm]
        guest.run(g.wait_command(blocks_of(addr, size, block_size), present=False))
    elif step.op in ("online", "offline"):
        for path, value in _online_steps(step, sc, block_size):
            err = _guest_write(guest, path, value)
            if err:
                res.ok, res.error, res.detail = False, err, f"echo {value} > {path}"
                return
    elif step.op == "write":
        err = _guest_write(guest, step.path, step.value)
        if err:
            res.ok, res.error, res.detail = False, err, f"echo {step.value} > {step.path}"


def _guest_reading(guest, ranges) -> dict:
    rc, out = guest.run(g.read_command(ranges), timeout=300)
    return g.parse_reading(out.replace("\r\n", "\n"))


def run_qemu(sc: Scenario, kernel: str | None = None, log=print, install: bool = False) -> Run:
    """The scenario on a real kernel booted in QEMU (fetching the kernel and building the
    initramfs on first use; ``install`` apt-get installs missing host tools)."""
    from hotmem.validate import assets, qemu
    if sc.has_virtio_mem:
        raise assets.SetupError(f"{sc.name}: virtio-mem steps run in the model only so far "
                                "(hotmem simulate); validate does not drive virtio-mem-pci yet")
    if install:
        assets.install_tools(log)
    elif assets.missing_tools():
        missing = assets.missing_tools()
        raise assets.SetupError(f"missing {', '.join(sorted(missing))}: apt-get install "
                                f"{' '.join(sorted(set(missing.values())))} (or --install)")
    if sc.machine.arch == "powerpc64":
        kernel_path = str(kernel or assets.fetch_kernel_ppc64el(sc.machine.kernel,
                                                                sc.machine.page_size, log=log))
        initrd = str(assets.build_initramfs_ppc64el(log))
    else:
        kernel_path = str(kernel or assets.fetch_kernel(log=log, version=sc.machine.kernel))
        initrd = str(assets.build_initramfs(log))
    with tempfile.TemporaryDirectory(prefix="hotmem-qemu-") as tmp:
        sock = os.path.join(tmp, "qmp.sock")
        argv = (qemu.pseries_argv(sc.machine, kernel_path, initrd, sock)
                if sc.machine.arch == "powerpc64" else
                qemu.qemu_argv(sc.machine, kernel_path, initrd, sock))
        t0 = time.monotonic()
        log(f"hotmem validate: booting {kernel_path} in QEMU (TCG)")
        with qemu.Guest(argv, sock, log=log) as guest:
            _, uname = guest.run("uname -r; uname -v; cat /proc/cmdline")
            release, version, cmdline = (uname.strip().splitlines() + ["", "", ""])[:3]
            _, bs = guest.run(f"cat {MEMORY}/block_size_bytes")
            block_size = int(bs.strip(), 16)
            info = {"kernel": kernel_path, "kernel_version": sc.machine.kernel,
                    "arch": sc.machine.arch, "page_size": sc.machine.page_size,
                    "mmu": sc.machine.mmu,
                    "release": release, "version": version,
                    "cmdline": cmdline, "qemu": qemu.qemu_version(argv[0]), "qemu_argv": argv,
                    "boot_s": round(guest.boot_s, 2)}
            steps = [StepResult("baseline", "boot", reading=_guest_reading(guest, []))]
            for i, step in enumerate(sc.steps):
                t = time.monotonic()
                log(f"hotmem validate: {step.name}")
                res = StepResult(step.name, step.op)
                try:
                    _kernel_step(guest, sc, step, block_size, res)
                except qemu.GuestError as exc:
                    if step.op not in ("hotplug", "eject"):
                        raise
                    res.ok, res.error, res.detail = False, "EINVAL", str(exc)
                if step.read:
                    res.reading = _guest_reading(guest, dimm_ranges(sc, i + 1))
                res.seconds = round(time.monotonic() - t, 2)
                steps.append(res)
            info["qmp_log"] = guest.qmp.log
            info["total_s"] = round(time.monotonic() - t0, 2)
    return Run("kernel", steps, info)
