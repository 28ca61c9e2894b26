"""The guest side of ``hotmem validate``: the initramfs's /init and the shell lines the host sends.

/init mounts /proc and /sys, silences the console log, and then runs one shell line at a time read
from the serial console, closing each answer with ``@@HM-DONE <status>@@``. A reading prints every
file between ``@@FILE <path>`` markers; kpageflags/kpagecount (fs/proc/page.c:kpageflags_read,
one u64 per pfn at offset pfn x 8) come gzip'd and base64'd. Each reading first writes
/proc/sys/vm/stat_refresh (mm/vmstat.c:vmstat_refresh folds the per-CPU counter deltas), so that
NR_FREE_PAGES is the zone's exact count and not up to stat_threshold pages behind.
"""
from __future__ import annotations

import base64
import errno
import gzip
import os
import re

import numpy as np

READY = "@@HM-READY@@"
DONE = re.compile(r"@@HM-DONE (\d+)@@")

MEMORY = "/sys/devices/system/memory"
NODE = "/sys/devices/system/node"
#: drivers/base/memory.c (6.1): the attributes of a memoryN directory, plus "node" (the name of
#: its nodeN link).
BLOCK_ATTRS = ("phys_index", "state", "phys_device", "removable", "valid_zones", "online")
NODE_LISTS = ("possible", "online", "has_normal_memory", "has_memory", "has_cpu")
PROC_FILES = ("/proc/meminfo", "/proc/vmstat", "/proc/zoneinfo", "/proc/buddyinfo",
              "/proc/iomem")

INIT_SCRIPT = r"""#!/bin/busybox sh
# hotmem validate guest: runs one shell line at a time from the serial console.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo 1 > /proc/sys/kernel/printk
stty raw -echo 2>/dev/null

# hm_write PATH VALUE: echo VALUE > PATH; "HM-WRITE ok" or "HM-WRITE err <shell message>"
hm_write() {
  if echo "$2" > "$1" 2>/tmp/hm.err; then echo "HM-WRITE ok"
  else echo "HM-WRITE err $(cat /tmp/hm.err)"; fi
}

# hm_wait present|absent TRIES BLOCK...: wait until every memoryBLOCK is there (or gone)
hm_wait() {
  want=$1; tries=$2; shift 2; i=0
  while [ $i -lt $tries ]; do
    ok=1
    for b in "$@"; do
      if [ -e /sys/devices/system/memory/memory$b ]; then
        [ $want = absent ] && ok=0
      else
        [ $want = present ] && ok=0
      fi
    done
    if [ $ok = 1 ]; then echo "HM-WAIT ok $i"; return 0; fi
    sleep 0.1; i=$((i+1))
  done
  echo "HM-WAIT timeout"; return 1
}

# hm_kpage FILE PFN COUNT: COUNT u64 words from pfn PFN on, gzip'd and base64'd
hm_kpage() {
  dd if=$1 bs=65536 skip=$(($2*8)) count=$(($3*8)) iflag=skip_bytes,count_bytes,fullblock \
    2>/dev/null | gzip -c | base64
}

# hm_read [PFN COUNT]...: every file of a reading
hm_read() {
  echo 1 > /proc/sys/vm/stat_refresh 2>/dev/null
  for f in meminfo vmstat zoneinfo buddyinfo iomem; do echo "@@FILE /proc/$f"; cat /proc/$f; done
  for n in /sys/devices/system/node/node*; do echo "@@FILE $n/meminfo"; cat $n/meminfo; done
  echo "@@FILE /sys/devices/system/node"
  cd /sys/devices/system/node
  grep -H . possible online has_normal_memory has_memory has_cpu
  echo "@@FILE /sys/devices/system/memory"
  cd /sys/devices/system/memory
  grep -H . block_size_bytes auto_online_blocks memory*/phys_index memory*/state \
    memory*/phys_device memory*/removable memory*/valid_zones memory*/online
  ls -1d memory*/node*
  cd /
  while [ $# -ge 2 ]; do
    echo "@@KPAGEFLAGS $1 $2"; hm_kpage /proc/kpageflags $1 $2
    echo "@@KPAGECOUNT $1 $2"; hm_kpage /proc/kpagecount $1 $2
    shift 2
  done
}

echo "@@HM-READY@@"
while IFS= read -r hm_line; do
  eval "$hm_line"
  echo "@@HM-DONE $?@@"
done
"""

_STRERROR = {os.strerror(e): e for e in sorted(errno.errorcode, reverse=True)}


def read_command(ranges) -> str:
    """The shell line of a reading; ``ranges`` are (pfn, count) pairs for kpageflags."""
    return "hm_read" + "".join(f" {pfn} {n}" for pfn, n in ranges)


def write_command(path: str, value: str) -> str:
    for s in (path, value):
        if not re.fullmatch(r"[A-Za-z0-9_./,:=+-]*", s):
            raise ValueError(f"refusing to send {s!r} to the guest shell")
    return f"hm_write {path} {value}"


def wait_command(blocks, present: bool, tries: int = 300) -> str:
    return f"hm_wait {'present' if present else 'absent'} {tries} " + " ".join(map(str, blocks))


def parse_write(out: str) -> str | None:
    """None when the write succeeded, else the errno name the shell's message gives
    ("sh: write error: Device or resource busy" -> "EBUSY")."""
    for line in out.splitlines():
        if line.startswith("HM-WRITE ok"):
            return None
        if line.startswith("HM-WRITE err"):
            msg = line.split(":")[-1].strip()
            code = _STRERROR.get(msg)
            return errno.errorcode[code] if code else msg or "EIO"
    raise ValueError(f"no HM-WRITE line in {out!r}")


def decode_words(b64: str) -> np.ndarray:
    """gzip+base64 text of u64 words -> array."""
    raw = gzip.decompress(base64.b64decode("".join(b64.split())))
    return np.frombuffer(raw, dtype="<u8").copy()


def encode_words(words) -> str:
    """Inverse of decode_words (how recordings keep kpageflags)."""
    data = np.asarray(words, dtype="<u8").tobytes()
    return base64.b64encode(gzip.compress(data, mtime=0)).decode()


def parse_reading(out: str) -> dict:
    """The guest's hm_read output -> {"files": {path: text}, "kpage": {pfn: (count, flags, counts)}}.

    Sysfs attributes become one entry per file ("/sys/devices/system/memory/memory32/state":
    "offline\\n"); a memoryN/nodeM link becomes ".../memoryN/node": "M\\n"."""
    files: dict[str, str] = {}
    kpage: dict[tuple[int, int], dict] = {}
    sections = re.split(r"^@@(FILE|KPAGEFLAGS|KPAGECOUNT) ([^\n]*)\n", out, flags=re.M)
    for kind, arg, body in zip(sections[1::3], sections[2::3], sections[3::3]):
        if kind == "FILE" and arg in (MEMORY, NODE):
            for line in body.splitlines():
                if ":" in line:
                    name, _, value = line.partition(":")
                    files[f"{arg}/{name}"] = value + "\n"
                elif arg == MEMORY and "/node" in line:
                    block, _, node = line.partition("/node")
                    files[f"{MEMORY}/{block}/node"] = node + "\n"
            if arg == NODE:
                for name in NODE_LISTS:         # grep prints nothing for an empty mask
                    files.setdefault(f"{NODE}/{name}", "\n")
        elif kind == "FILE":
            files[arg] = body
        else:
            pfn, n = map(int, arg.split())
            entry = kpage.setdefault((pfn, n), {})
            entry["flags" if kind == "KPAGEFLAGS" else "counts"] = decode_words(body)
    return {"files": files, "kpage": kpage}
