"""``hotmem mount MOUNTPOINT``: the tree of hotmem/export.py live through FUSE (mfusepy over
Debian's libfuse3). Reads render the Machine at that moment; writes to memoryN/state,
memoryN/online and auto_online_blocks act on it through ``m.sysfs.write`` and fail with the
kernel's errno (the Machine left as the kernel leaves it).

    MOUNT/sys/devices/system/memory, .../node, /sys/module/memory_hotplug/parameters,
    /sys/firmware/memmap, /proc/{meminfo,zoneinfo,vmstat,buddyinfo,iomem,kpageflags,kpagecount}

Real tools read it with ``lsmem --sysroot MOUNT``, or unchanged in a private mount namespace with
MOUNT/sys/devices/system/memory bound over /sys/devices/system/memory (``unshare -m``).
"""
from __future__ import annotations

import errno
import os
import stat
import threading
import time

from hotmem.errors import HotplugError
from hotmem.export import (FIRMWARE_MEMMAP, MEMORY, NODE, PARAMS, PROC_TEXT, sysfs_listdir,
                           sysfs_readlink)

#: the directories above the modelled ones
_PARENTS = {"/": ["proc", "sys"], "/sys": ["devices", "firmware", "module"],
            "/sys/devices": ["system"], "/sys/devices/system": ["memory", "node"],
            "/sys/module": ["memory_hotplug"], "/sys/module/memory_hotplug": ["parameters"],
            "/sys/firmware": ["memmap"],
            "/proc": list(PROC_TEXT) + ["kpagecount", "kpageflags"]}
_WRITABLE = ("/state", "/online")


def fuse_unavailable() -> str | None:
    """Why FUSE cannot be used here (None when it can)."""
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError, EnvironmentError) as exc:
        return f"the mfusepy binding or libfuse is missing ({exc}): pip install mfusepy; " \
               "apt-get install libfuse3-3"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is absent (no FUSE in this kernel or container)"
    if os.geteuid() != 0 and not any(os.access(os.path.join(d, "fusermount3"), os.X_OK)
                                     for d in os.environ.get("PATH", "").split(":")):
        return "not root and no fusermount3 (apt-get install fuse3)"
    return None


#: Debian packages FUSE needs: the library mfusepy loads, and fusermount3 for non-root mounts
FUSE_PACKAGES = ("libfuse3-3", "fuse3")


def install_fuse(log=print) -> None:
    """apt-get install Debian's libfuse3 and fuse3 (root only), as hotmem/validate/assets.py
    installs its tools."""
    from hotmem.validate.assets import SetupError, _apt_get, can_install
    if not can_install():
        raise SetupError(f"install the Debian packages {' '.join(FUSE_PACKAGES)} "
                         "(apt-get install, as root)")
    log(f"hotmem mount: installing {' '.join(FUSE_PACKAGES)}")
    try:
        _apt_get("install", "-y", "--no-install-recommends", *FUSE_PACKAGES)
    except SetupError:
        _apt_get("update")
        _apt_get("install", "-y", "--no-install-recommends", *FUSE_PACKAGES)


SELFTEST_PACKAGE = "linux-source-6.1"
SELFTEST = "tools/testing/selftests/memory-hotplug/mem-on-off-test.sh"


def mem_on_off_test(log=print):
    """The kernel's memory-hotplug selftest script, unchanged, from Debian's kernel source
    package (``apt-get download`` once, cached beside validate's kernels)."""
    import shutil
    import subprocess
    import tempfile
    from hotmem.validate.assets import SetupError, _run, cache_dir
    out = cache_dir() / "selftests" / os.path.basename(SELFTEST)
    if out.exists():
        return out
    for tool in ("apt-get", "dpkg-deb", "tar", "xz"):
        if shutil.which(tool) is None:
            raise SetupError(f"{tool} is missing: cannot fetch {SELFTEST_PACKAGE}")
    log(f"hotmem: apt-get download {SELFTEST_PACKAGE} (for {SELFTEST})")
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        _run(["apt-get", "download", SELFTEST_PACKAGE], cwd=tmp)
        debs = [f for f in os.listdir(tmp) if f.endswith(".deb")]
        if not debs:
            raise SetupError(f"apt-get download {SELFTEST_PACKAGE} left no .deb")
        src = os.path.join(tmp, debs[0])
        member = f"{SELFTEST_PACKAGE}/{SELFTEST}"
        cmd = (f"dpkg-deb --fsys-tarfile '{src}' | tar -xO ./usr/src/{SELFTEST_PACKAGE}.tar.xz"
               f" | xz -dc | tar -xO '{member}'")
        proc = subprocess.run(["sh", "-c", cmd], capture_output=True, timeout=900)
        if proc.returncode or not proc.stdout:
            raise SetupError(f"{member} not found in {debs[0]}: {proc.stderr[-400:]!r}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(proc.stdout)
        out.chmod(0o755)
    return out


def _operations(m, lock, on_write=None):
    import mfusepy as fuse

    def _err(exc: HotplugError):
        return fuse.FuseOSError(exc.errno)

    class MachineFS(fuse.Operations):
        """The Machine as a file system (a single lock: the model is not reentrant)."""
        use_ns = True

        def _npfns(self):
            pps = m.arch.PAGES_PER_SECTION
            return -(-m.max_pfn // pps) * pps

        def _content(self, path: str) -> bytes:
            if path in ("/proc/kpageflags", "/proc/kpagecount"):
                raise ValueError(path)
            if path.startswith("/proc/"):
                return m.procfs.read(path).encode()
            return m.sysfs.read(path).encode()

        def _kind(self, path: str):
            if path in _PARENTS:
                return "dir"
            if path.startswith("/sys/"):
                try:
                    sysfs_readlink(m, path)
                    return "link"
                except HotplugError:
                    pass
                try:
                    sysfs_listdir(m, path)
                    return "dir"
                except HotplugError as exc:
                    if exc.errno == errno.ENOTDIR:
                        return "file"
                    raise
            if path.startswith("/proc/") and path[6:] in _PARENTS["/proc"]:
                return "file"
            raise HotplugError(errno.ENOENT, path)

        def getattr(self, path, fh=None):
            with lock:
                try:
                    kind = self._kind(path)
                except HotplugError as exc:
                    raise _err(exc)
                now = time.time_ns()
                st = dict(st_atime=now, st_mtime=now, st_ctime=now, st_uid=0, st_gid=0)
                if kind == "dir":
                    return dict(st, st_mode=stat.S_IFDIR | 0o755, st_nlink=2)
                if kind == "link":
                    return dict(st, st_mode=stat.S_IFLNK | 0o777, st_nlink=1,
                                st_size=len(sysfs_readlink(m, path)))
                mode = 0o644 if path.endswith(_WRITABLE) or path.endswith(
                    "/auto_online_blocks") else 0o444
                if path in ("/proc/kpageflags", "/proc/kpagecount"):
                    size = self._npfns() * 8
                else:
                    size = 4096 if path.startswith("/sys/") else 0   # as sysfs and procfs say
                return dict(st, st_mode=stat.S_IFREG | mode, st_nlink=1, st_size=size)

        def readdir(self, path, fh):
            with lock:
                if path in _PARENTS:
                    names = _PARENTS[path]
                else:
                    try:
                        names = sysfs_listdir(m, path)
                    except HotplugError as exc:
                        raise _err(exc)
                return [".", ".."] + list(names)

        def readlink(self, path):
            with lock:
                try:
                    return sysfs_readlink(m, path)
                except HotplugError as exc:
                    raise _err(exc)

        def open(self, path, flags):
            return 0

        def truncate(self, path, length, fh=None):
            return 0                    # a shell's "> file" truncates first: sysfs ignores it

        def read(self, path, size, offset, fh):
            with lock:
                if path in ("/proc/kpageflags", "/proc/kpagecount"):
                    # fs/proc/page.c: 8-byte aligned reads only
                    if offset % 8 or size % 8:
                        raise fuse.FuseOSError(errno.EINVAL)
                    import numpy as np
                    reader = m.procfs.kpageflags if path.endswith("flags") else \
                        m.procfs.kpagecount
                    return np.asarray(reader(offset // 8, size // 8), dtype="<u8").tobytes()
                try:
                    data = self._content(path)
                except HotplugError as exc:
                    raise _err(exc)
                return data[offset:offset + size]

        def write(self, path, data, offset, fh):
            with lock:
                text = data.decode(errors="replace")
                try:
                    m.sysfs.write(path, text)
                except HotplugError as exc:
                    if on_write:
                        on_write(path, text, exc.errno)
                    raise _err(exc)
                if on_write:
                    on_write(path, text, 0)
                return len(data)

    return MachineFS()


def mount(m, mountpoint, foreground: bool = True, lock=None, on_write=None):
    """Serve Machine ``m`` at ``mountpoint`` until it is unmounted (``umount MOUNTPOINT``);
    ``on_write(path, text, errno)`` sees every write (0: accepted)."""
    why = fuse_unavailable()
    if why:
        raise HotplugError(errno.ENODEV, f"mount: FUSE is not available: {why}")
    mountpoint = os.fspath(mountpoint)
    if not os.path.isdir(mountpoint):
        raise HotplugError(errno.ENOTDIR, f"mount: {mountpoint}: Not a directory")
    if os.path.ismount(mountpoint):
        raise HotplugError(errno.EBUSY, f"mount: {mountpoint}: already a mount point "
                           "(Device or resource busy)")
    import mfusepy as fuse
    # direct_io: sysfs files report 4096 bytes and /proc files 0, as the kernel's do
    fuse.FUSE(_operations(m, lock or threading.Lock(), on_write), mountpoint, foreground=foreground,
              nothreads=True, direct_io=True, fsname="hotmem", allow_other=os.geteuid() == 0)
