"""The real components of ``hotmem validate``: QEMU, a Debian 6.1 or 6.12 kernel and a busybox
initramfs.

Everything is installed through Debian's ordinary clients (``apt-get install`` for the tools,
``apt-get download`` + ``dpkg -x`` for the kernel) and cached outside the repository, in
``$HOTMEM_CACHE`` or ``~/.cache/hotmem``. Debian 12's 6.1 comes through the system's apt; Debian 13's
6.12 through a sources list, apt state and cache of the project's own (``apt-trixie/`` in the cache
directory), so the system's apt configuration is never changed.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from hotmem.validate.guest import INIT_SCRIPT

#: Debian packages that provide the host tools (command -> package).
TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "busybox": "busybox-static", "cpio": "cpio"}
#: The kernel package the recorded readings were taken with (Debian 6.1.176); if the archive no
#: longer has it, the newest linux-image-6.1.0-NN-amd64-unsigned is used.
DEFAULT_KERNEL_PACKAGE = "linux-image-6.1.0-50-amd64-unsigned"
_KERNEL_RE = re.compile(r"^linux-image-6\.1\.0-(\d+)-amd64-unsigned$")


class SetupError(RuntimeError):
    """A component is missing and cannot be installed here (the message says what to do)."""


def cache_dir() -> Path:
    """Where kernels and initramfs images are kept (created on demand)."""
    root = os.environ.get("HOTMEM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hotmem")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(argv, cwd=None, timeout=600) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise SetupError(f"{' '.join(argv)} failed ({proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc.stdout


def missing_tools() -> dict[str, str]:
    """The host tools that are not on PATH: command -> Debian package."""
    return {cmd: pkg for cmd, pkg in TOOLS.items() if shutil.which(cmd) is None}


def can_install() -> bool:
    """apt-get is there and we are root."""
    return shutil.which("apt-get") is not None and os.geteuid() == 0


def _apt_get(*args: str, timeout=900) -> str:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(["apt-get", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    if proc.returncode:
        raise SetupError(f"apt-get {' '.join(args)} failed: {proc.stderr.strip()[-800:]}")
    return proc.stdout


def install_tools(log=print) -> None:
    """apt-get install the missing host tools (root only); apt-get update first if needed."""
    missing = missing_tools()
    if not missing:
        return
    pkgs = sorted(set(missing.values()))
    if not can_install():
        raise SetupError(f"missing {', '.join(sorted(missing))}: install the Debian packages "
                         f"{' '.join(pkgs)} (apt-get install, as root)")
    log(f"hotmem validate: installing {' '.join(pkgs)}")
    try:
        _apt_get("install", "-y", "--no-install-recommends", *pkgs)
    except SetupError:
        _apt_get("update")
        _apt_get("install", "-y", "--no-install-recommends", *pkgs)
    still = missing_tools()
    if still:
        raise SetupError(f"still missing after apt-get install: {', '.join(sorted(still))}")


def _kernel_candidates() -> list[str]:
    """linux-image-6.1.0-NN-amd64-unsigned packages apt knows about, newest first."""
    if shutil.which("apt-cache") is None:
        return []
    out = subprocess.run(["apt-cache", "pkgnames", "linux-image-6.1.0-"], capture_output=True,
                         text=True).stdout.split()
    names = [n for n in out if _KERNEL_RE.match(n)]
    return sorted(names, key=lambda n: -int(_KERNEL_RE.match(n).group(1)))


def choose_kernel_package(log=print) -> str:
    """DEFAULT_KERNEL_PACKAGE if apt has it, else the newest 6.1.0-NN (apt-get update once if
    apt knows none)."""
    names = _kernel_candidates()
    if not names and can_install():
        log("hotmem validate: apt-get update (no 6.1 kernel package known)")
        _apt_get("update")
        names = _kernel_candidates()
    if DEFAULT_KERNEL_PACKAGE in names:
        return DEFAULT_KERNEL_PACKAGE
    if names:
        return names[0]
    raise SetupError("no linux-image-6.1.0-*-amd64-unsigned package is known to apt "
                     "(run apt-get update), and no --kernel was given")


# -- Debian 13 (trixie) kernels through the project's own apt state ----------------------------

#: the Debian 13 suites the 6.12 kernels come from (deb.debian.org, signed by the trixie keys
#: of Debian 12's debian-archive-keyring)
TRIXIE_SOURCES = (
    "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
    "http://deb.debian.org/debian trixie main\n"
    "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
    "http://deb.debian.org/debian-security trixie-security main\n")
_KERNEL_612_RE = re.compile(r"^linux-image-6\.12\.(\d+)\+deb13-amd64-unsigned$")


def trixie_apt_options() -> list[str]:
    """``-o`` options that point apt-get / apt-cache at a sources list, state and cache of
    their own under the cache directory (``apt-trixie/``); the system's apt configuration,
    lists and dpkg status are left alone."""
    root = cache_dir() / "apt-trixie"
    for d in ("etc/sources.list.d", "etc/preferences.d", "state/lists/partial",
              "cache/archives/partial"):
        (root / d).mkdir(parents=True, exist_ok=True)
    sources = root / "etc" / "sources.list"
    if not sources.exists() or sources.read_text() != TRIXIE_SOURCES:
        sources.write_text(TRIXIE_SOURCES)
    status = root / "status"
    status.touch()
    opts = {"Dir::Etc::SourceList": sources, "Dir::Etc::SourceParts": root / "etc/sources.list.d",
            "Dir::Etc::PreferencesParts": root / "etc/preferences.d",
            "Dir::State": root / "state", "Dir::State::status": status,
            "Dir::Cache": root / "cache", "APT::Architecture": "amd64",
            "APT::Sandbox::User": "root" if os.geteuid() == 0 else "_apt"}
    return [a for k, v in opts.items() for a in ("-o", f"{k}={v}")]


def _kernel_612_candidates(update: bool, log=print) -> list[str]:
    """linux-image-6.12.N+deb13-amd64-unsigned packages of the project's trixie apt state,
    newest first (apt-get update of that state first when it has no lists, or ``update``)."""
    for tool in ("apt-get", "apt-cache"):
        if shutil.which(tool) is None:
            raise SetupError(f"{tool} is needed to fetch a Debian 6.12 kernel; or pass --kernel")
    opts = trixie_apt_options()
    lists = cache_dir() / "apt-trixie" / "state" / "lists"
    if update or not any(lists.glob("*_Packages*")):
        log("hotmem validate: apt-get update (the project's own trixie sources)")
        _run(["apt-get", *opts, "update"], timeout=900)
    out = _run(["apt-cache", *opts, "pkgnames", "linux-image-6.12."]).split()
    names = [n for n in out if _KERNEL_612_RE.match(n)]
    return sorted(names, key=lambda n: -int(_KERNEL_612_RE.match(n).group(1)))


def fetch_kernel_612(log=print) -> Path:
    """The vmlinuz of the newest Debian 13 6.12 amd64 kernel that downloads (the archive's index
    can list a file that is already gone: then the next newest), through the project's own apt
    state (trixie_apt_options); unpacked into the cache once."""
    found = sorted((cache_dir() / "kernels").glob("linux-image-6.12.*+deb13-amd64-unsigned/"
                                                  "boot/vmlinuz-*"))
    if found:
        return max(found, key=lambda p: int(_KERNEL_612_RE.match(p.parents[1].name).group(1)))
    names = _kernel_612_candidates(update=False, log=log)
    if not names:
        names = _kernel_612_candidates(update=True, log=log)
    errors = []
    for package in names:
        try:
            return fetch_kernel(package, log=log, apt_options=trixie_apt_options())
        except SetupError as exc:          # a 404: the index lists a file that is gone
            errors.append(f"{package}: {str(exc)[-200:]}")
            log(f"hotmem validate: {package} did not download; trying the next")
    raise SetupError("no linux-image-6.12.*+deb13-amd64-unsigned downloaded"
                     + (": " + "; ".join(errors[:3]) if errors else " (none known to apt)"))


def fetch_kernel(package: str | None = None, log=print, version: str = "6.1",
                 apt_options=()) -> Path:
    """The bzImage of a Debian kernel package, downloaded with ``apt-get download`` and unpacked
    with ``dpkg -x`` into the cache (done once). ``version`` "6.12" takes Debian 13's newest
    (fetch_kernel_612)."""
    if package is None and version == "6.12":
        return fetch_kernel_612(log)
    if package is None and version != "6.1":
        raise SetupError(f"no Debian kernel package is known for version {version!r}")
    package = package or choose_kernel_package(log)
    dest = cache_dir() / "kernels" / package
    found = sorted(dest.glob("boot/vmlinuz-*"))
    if found:
        return found[0]
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise SetupError(f"{tool} is needed to fetch {package}; or pass --kernel bzImage")
    log(f"hotmem validate: fetching {package}")
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        try:
            _run(["apt-get", *apt_options, "download", package], cwd=tmp)
        except SetupError:
            if apt_options or not can_install():
                raise
            _apt_get("update")
            _run(["apt-get", "download", package], cwd=tmp)
        debs = list(Path(tmp).glob("*.deb"))
        if not debs:
            raise SetupError(f"apt-get download {package} left no .deb")
        unpack = Path(tmp) / "x"
        _run(["dpkg-deb", "-x", str(debs[0]), str(unpack)])
        dest.parent.mkdir(parents=True, exist_ok=True)
        (dest / "boot").mkdir(parents=True, exist_ok=True)
        for f in (unpack / "boot").iterdir():      # the modules are not needed
            shutil.copy2(f, dest / "boot" / f.name)
    return sorted(dest.glob("boot/vmlinuz-*"))[0]


def pack_initramfs(busybox, tag: str | None = None, log=print) -> Path:
    """A gzip'd newc cpio with ``busybox`` and the harness's /init (cached by content; ``tag``
    names the guest arch in the file name)."""
    if shutil.which("cpio") is None:
        raise SetupError("cpio is missing")
    digest = hashlib.sha256(Path(busybox).read_bytes() + INIT_SCRIPT.encode()).hexdigest()[:16]
    out = cache_dir() / f"initramfs-{tag + '-' if tag else ''}{digest}.cpio.gz"
    if out.exists():
        return out
    log(f"hotmem validate: building the {tag + ' ' if tag else ''}initramfs")
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        root = Path(tmp) / "root"
        for d in ("bin", "dev", "proc", "sys", "tmp"):
            (root / d).mkdir(parents=True)
        shutil.copy2(busybox, root / "bin" / "busybox")
        (root / "init").write_text(INIT_SCRIPT)
        os.chmod(root / "init", 0o755)
        files = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"],
                              input=("\n".join(files) + "\n").encode(), cwd=root,
                              capture_output=True)
        if cpio.returncode:
            raise SetupError(f"cpio failed: {cpio.stderr.decode(errors='replace')}")
        part = out.with_suffix(".part")
        with gzip.GzipFile(part, "wb", mtime=0) as f:
            f.write(cpio.stdout)
        part.rename(out)
    return out


def build_initramfs(log=print) -> Path:
    """The x86_64 guest's initramfs: the host's busybox-static and the harness's /init."""
    busybox = shutil.which("busybox")
    if busybox is None:
        raise SetupError("busybox (Debian busybox-static) is missing")
    return pack_initramfs(busybox, None, log)


# -- foreign-arch guests (ppc64el) through the project's own multi-arch apt state ---------------

#: the suites foreign-arch packages come from: Debian 12 (the 6.1 kernels) and 13 (the 6.12
#: kernels, busybox-static); the archive's keys are the system's (debian-archive-keyring)
FOREIGN_SOURCES = ("deb http://deb.debian.org/debian bookworm main\n"
                   "deb http://deb.debian.org/debian-security bookworm-security main\n"
                   "deb http://deb.debian.org/debian bookworm-updates main\n"
                   "deb http://deb.debian.org/debian trixie main\n")
FOREIGN_ARCHES = ("ppc64el", "arm64")
#: Debian's ppc64el kernel flavours per (version, page size): 6.1 (Debian 12) has one, with
#: 64K pages (CONFIG_PPC_64K_PAGES); Debian 13's 6.12 has -powerpc64le (4K) and -64k
_PPC_FLAVOUR = {("6.1", "64K"): re.compile(r"^linux-image-6\.1\.0-(\d+)-powerpc64le$"),
                ("6.12", "64K"): re.compile(r"^linux-image-6\.12\.(\d+)\+deb13-powerpc64le-64k$"),
                ("6.12", "4K"): re.compile(r"^linux-image-6\.12\.(\d+)\+deb13-powerpc64le$")}


def foreign_apt_options() -> list[str]:
    """``-o`` options for apt-get / apt-cache with a sources list, state and cache of their own
    under the cache directory (``apt-foreign/``) that know the foreign architectures
    (APT::Architectures ppc64el, arm64); the system's apt configuration and dpkg status are
    left alone."""
    root = cache_dir() / "apt-foreign"
    for d in ("etc/sources.list.d", "etc/preferences.d", "state/lists/partial",
              "cache/archives/partial"):
        (root / d).mkdir(parents=True, exist_ok=True)
    sources = root / "etc" / "sources.list"
    if not sources.exists() or sources.read_text() != FOREIGN_SOURCES:
        sources.write_text(FOREIGN_SOURCES)
    status = root / "status"
    status.touch()
    opts = {"Dir::Etc::SourceList": sources, "Dir::Etc::SourceParts": root / "etc/sources.list.d",
            "Dir::Etc::PreferencesParts": root / "etc/preferences.d",
            "Dir::State": root / "state", "Dir::State::status": status,
            "Dir::Cache": root / "cache",
            "APT::Sandbox::User": "root" if os.geteuid() == 0 else "_apt"}
    out = [a for k, v in opts.items() for a in ("-o", f"{k}={v}")]
    for arch in ("amd64",) + FOREIGN_ARCHES:
        out += ["-o", f"APT::Architectures::={arch}"]
    return out


def _foreign_candidates(pattern, update: bool, log=print) -> list[str]:
    """Packages of the foreign apt state whose names ``pattern`` matches, newest first."""
    for tool in ("apt-get", "apt-cache", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise SetupError(f"{tool} is needed to fetch a ppc64el kernel; or pass --kernel")
    opts = foreign_apt_options()
    lists = cache_dir() / "apt-foreign" / "state" / "lists"
    if update or not any(lists.glob("*_binary-ppc64el_Packages*")):
        log("hotmem validate: apt-get update (the project's own multi-arch sources)")
        _run(["apt-get", *opts, "update"], timeout=900)
    out = _run(["apt-cache", *opts, "pkgnames", "linux-image-6."]).split()
    names = [n for n in out if pattern.match(n)]
    return sorted(names, key=lambda n: -int(pattern.match(n).group(1)))


def _download_unpack(package: str, dest: Path, log=print) -> Path:
    """apt-get download PACKAGE (foreign state) and dpkg-deb -x it into ``dest``."""
    log(f"hotmem validate: fetching {package}")
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        _run(["apt-get", *foreign_apt_options(), "download", package], cwd=tmp)
        debs = list(Path(tmp).glob("*.deb"))
        if not debs:
            raise SetupError(f"apt-get download {package} left no .deb")
        part = Path(tmp) / "x"
        _run(["dpkg-deb", "-x", str(debs[0]), str(part)])
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(part, dest, ignore=shutil.ignore_patterns("modules"))
    return dest


def fetch_kernel_ppc64el(version: str, page_size: str | None = "64K", log=print) -> Path:
    """The vmlinux of Debian's ppc64el kernel for ``version`` and ``page_size`` (the newest
    that downloads: the archive's index can list a file that is gone), unpacked once into the
    cache (kernels/PACKAGE/boot/vmlinux-*)."""
    page_size = page_size or "64K"
    pattern = _PPC_FLAVOUR.get((version, page_size))
    if pattern is None:
        raise SetupError(f"Debian has no ppc64el {version} kernel with {page_size} pages "
                         f"(Debian 12's 6.1 is 64K only); or pass --kernel")
    found = [p for p in (cache_dir() / "kernels").glob("linux-image-*/boot/vmlinux-*")
             if pattern.match(p.parents[1].name)]
    if found:
        return max(found, key=lambda p: int(pattern.match(p.parents[1].name).group(1)))
    names = _foreign_candidates(pattern, update=False, log=log)
    if not names:
        names = _foreign_candidates(pattern, update=True, log=log)
    errors = []
    for package in names:
        try:
            dest = _download_unpack(f"{package}:ppc64el", cache_dir() / "kernels" / package, log)
        except SetupError as exc:          # a 404: the index lists a file that is gone
            errors.append(f"{package}: {str(exc)[-200:]}")
            log(f"hotmem validate: {package} did not download; trying the next")
            continue
        return sorted(dest.glob("boot/vmlinux-*"))[0]
    raise SetupError(f"no ppc64el {version} {page_size} kernel downloaded"
                     + (": " + "; ".join(errors[:3]) if errors else " (none known to apt)"))


def build_initramfs_ppc64el(log=print) -> Path:
    """The initramfs of a ppc64el guest: busybox from Debian's busybox-static:ppc64el (fetched
    through foreign_apt_options once)."""
    dest = cache_dir() / "busybox-ppc64el"
    busybox = dest / "usr" / "bin" / "busybox"
    if not busybox.exists():
        if shutil.which("apt-get") is None:
            raise SetupError("apt-get is needed to fetch busybox-static:ppc64el")
        lists = cache_dir() / "apt-foreign" / "state" / "lists"
        if not any(lists.glob("*_binary-ppc64el_Packages*")):
            _run(["apt-get", *foreign_apt_options(), "update"], timeout=900)
        _download_unpack("busybox-static:ppc64el", dest, log)
    return pack_initramfs(busybox, "ppc64el", log)
