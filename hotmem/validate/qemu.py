"""A QEMU guest driven from the host: the serial console (the guest's /init shell) on the
process's stdin/stdout and a QMP socket for the DIMMs. Software emulation (TCG), no network.
"""
from __future__ import annotations

import json
import socket
import subprocess
import threading
import time

from hotmem.validate import guest


class GuestError(RuntimeError):
    """The guest did not answer, or QEMU refused a command."""


class Qmp:
    """A minimal QMP client (docs/interop/qmp-spec.txt): commands in, replies and events out."""

    def __init__(self, path: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise GuestError(f"QMP socket {path} did not come up")
                time.sleep(0.1)
        self.file = self.sock.makefile("rwb")
        self.events: list[dict] = []
        self.log: list[dict] = []
        greeting = self._recv(timeout)
        self.version = greeting.get("QMP", {}).get("version", {})
        self.execute("qmp_capabilities")

    def _recv(self, timeout: float) -> dict:
        self.sock.settimeout(timeout)
        line = self.file.readline()
        if not line:
            raise GuestError("QMP connection closed")
        msg = json.loads(line)
        self.log.append({"t": round(time.time(), 3), "recv": msg})
        return msg

    def execute(self, cmd: str, timeout: float = 60, **arguments) -> object:
        """Run a command; returns its "return" value, raises GuestError with QEMU's message."""
        req = {"execute": cmd}
        if arguments:
            req["arguments"] = arguments
        self.log.append({"t": round(time.time(), 3), "send": req})
        self.file.write(json.dumps(req).encode() + b"\n")
        self.file.flush()
        while True:
            msg = self._recv(timeout)
            if "event" in msg:
                self.events.append(msg)
            elif "error" in msg:
                raise GuestError(f"{cmd}: {msg['error'].get('desc', msg['error'])}")
            elif "return" in msg:
                return msg["return"]

    def wait_event(self, pred, timeout: float) -> dict | None:
        """The first (queued or new) event ``pred`` accepts, or None after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if pred(ev):
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = self._recv(left)
            except (TimeoutError, socket.timeout):
                return None
            if "event" in msg:
                self.events.append(msg)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def numa_options(machine) -> list[str]:
    """-object/-numa options for a machine with boot memory on several nodes (or a CPU-less or
    memory-less node); none for a single node."""
    nodes = sorted(set(machine.boot_memory) | set(machine.cpu_nodes))
    if len(nodes) <= 1:
        return []
    opts, cpu = [], 0
    for nid in nodes:
        size = machine.boot_memory.get(nid, 0)
        node = f"node,nodeid={nid}"
        if size:
            opts += ["-object", f"memory-backend-ram,id=ram-node{nid},size={size}"]
            node += f",memdev=ram-node{nid}"
        n = machine.cpu_nodes.get(nid, 0)
        if n:
            node += f",cpus={cpu}" + (f"-{cpu + n - 1}" if n > 1 else "")
            cpu += n
        opts += ["-numa", node]
    return opts


def qemu_argv(machine, kernel: str, initrd: str, qmp_path: str) -> list[str]:
    """The QEMU command line of a scenario's machine (see the module docstring)."""
    boot = sum(machine.boot_memory.values())
    mem = f"{boot >> 20}M,slots={machine.slots},maxmem={machine.maxmem >> 20}M"
    cpu = "qemu64" + (",la57=on" if machine.paging_levels == 5 else "")
    append = "console=ttyS0 panic=-1 nokaslr rdinit=/init"
    if machine.cmdline:
        append += " " + machine.cmdline
    return ["qemu-system-x86_64", "-machine", "pc,accel=tcg", "-cpu", cpu, "-m", mem,
            "-smp", str(machine.nr_cpus), *numa_options(machine),
            "-nodefaults", "-nic", "none", "-display", "none", "-monitor", "none",
            "-serial", "stdio", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
            "-append", append, "-qmp", f"unix:{qmp_path},server=on,wait=off"]


def pseries_argv(machine, kernel: str, initrd: str, qmp_path: str) -> list[str]:
    """The QEMU command line of a scenario's powerpc64 machine: QEMU's ``pseries`` board under
    TCG with a POWER9 (radix MMU), the kernel's vmlinux, console on the hypervisor console
    (hvc0); DIMMs arrive as DLPAR requests (hw/ppc/spapr.c:spapr_memory_plug)."""
    if machine.mmu not in (None, "radix"):
        raise ValueError(f"pseries_argv: mmu {machine.mmu!r}: only radix (power9) is driven")
    boot = sum(machine.boot_memory.values())
    mem = f"{boot >> 20}M,slots={machine.slots},maxmem={machine.maxmem >> 20}M"
    append = "console=hvc0 panic=-1 rdinit=/init"
    if machine.cmdline:
        append += " " + machine.cmdline
    return ["qemu-system-ppc64", "-machine", "pseries,accel=tcg", "-cpu", "power9", "-m", mem,
            "-smp", str(machine.nr_cpus), *numa_options(machine),
            "-nodefaults", "-nic", "none", "-display", "none", "-monitor", "none",
            "-serial", "stdio", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
            "-append", append, "-qmp", f"unix:{qmp_path},server=on,wait=off"]


class Guest:
    """A booted QEMU guest: ``run(line)`` on its shell, ``qmp`` for the devices."""

    def __init__(self, argv: list[str], qmp_path: str, boot_timeout: float = 300, log=None):
        self.argv = argv
        self.log = log or (lambda s: None)
        self.console: list[str] = []
        self._buf = b""
        self._cv = threading.Condition()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.qmp = Qmp(qmp_path)
            self.boot_s = self._wait_for(guest.READY, boot_timeout)[1]
        except Exception:
            self.close()
            raise

    def _read(self):
        while True:
            chunk = self.proc.stdout.read1(65536)
            with self._cv:
                if not chunk:
                    self._buf += b"\0EOF"
                    self._cv.notify_all()
                    return
                self._buf += chunk
                self._cv.notify_all()

    def _wait_for(self, marker: str, timeout: float) -> tuple[str, float]:
        """Console text up to ``marker`` (consumed), and the seconds it took."""
        t0 = time.monotonic()
        key = marker.encode()
        with self._cv:
            while key not in self._buf:
                if self._buf.endswith(b"\0EOF"):
                    err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                    raise GuestError(f"QEMU exited ({self.proc.wait()}): {err.strip()[-500:]}\n"
                                     f"console: {self._buf[-2000:].decode(errors='replace')}")
                if not self._cv.wait(timeout=max(0.0, timeout - (time.monotonic() - t0))):
                    raise GuestError(f"no {marker!r} from the guest after {timeout} s; console: "
                                     f"{self._buf[-2000:].decode(errors='replace')}")
            text, _, self._buf = self._buf.partition(key)
        return text.decode(errors="replace"), time.monotonic() - t0

    def run(self, line: str, timeout: float = 120) -> tuple[int, str]:
        """Run one shell line in the guest: (exit status, output)."""
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        out, _ = self._wait_for("@@HM-DONE ", timeout)
        rest, _ = self._wait_for("@@\n", 10)
        self.console.append(line)
        return int(rest.strip()), out

    def close(self):
        if getattr(self, "qmp", None) is not None:
            try:
                self.qmp.execute("quit", timeout=10)
            except (GuestError, OSError, ValueError):
                pass
            self.qmp.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def qemu_version(binary: str = "qemu-system-x86_64") -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.stdout else "?"
