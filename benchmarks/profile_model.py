"""Where the model's time goes: cProfile of the benchmark workloads, top functions by own time.

    python benchmarks/profile_model.py                       # cycle (both backends), scale 256G
    python benchmarks/profile_model.py --scale 512G --top 25 -o benchmarks/last-profile.txt

The cycle is the 128 MiB add+online+offline+remove of groups 1-3 (50 rounds compiled, 3 rounds
pure-Python); the scale slice is group 4's hot-add + online in 2 GiB blocks, profiled in two
halves so that per-block costs that grow with the number of blocks show up as a growing half.
"""
import argparse
import cProfile
import io
import os
import pstats
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_util import (GiB, SCALE_START, cycle, machine, machine_2g_blocks,  # noqa: E402
                        state_path)
from hotmem import MHP_MEMMAP_ON_MEMORY  # noqa: E402
from hotmem.machine import parse_size  # noqa: E402


def profiled(fn, top: int, title: str) -> str:
    pr = cProfile.Profile()
    t0 = time.perf_counter()
    pr.enable()
    fn()
    pr.disable()
    wall = time.perf_counter() - t0
    buf = io.StringIO()
    st = pstats.Stats(pr, stream=buf)
    st.sort_stats("tottime").print_stats(top)
    text = buf.getvalue()
    body = text[text.index("   ncalls"):] if "   ncalls" in text else text
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    body = body.replace(root, "").replace(os.path.dirname(os.__file__) + os.sep, "")
    return f"== {title}: {wall:.3f} s wall under cProfile (total own time {st.total_tt:.3f} s)\n" \
           f"{body.rstrip()}\n"


def cycle_profile(backend: str, rounds: int, top: int) -> str:
    m = machine(True, backend)
    cycle(m, True)
    return profiled(lambda: [cycle(m, True) for _ in range(rounds)], top,
                    f"cycle 128M x{rounds}, {backend} core")


def scale_profile(size: int, top: int) -> str:
    m = machine_2g_blocks()
    bs = 2 * GiB
    starts = list(range(SCALE_START, SCALE_START + size, bs))

    def run(part):
        for s in part:
            m.add_memory(0, s, bs, MHP_MEMMAP_ON_MEMORY)
            m.sysfs.write(state_path(s // bs), "online_movable")
    half = len(starts) // 2
    out = profiled(lambda: run(starts[:half]), top,
                   f"scale: first {half} blocks of 2 GiB (of {size >> 30} GiB)")
    out += "\n" + profiled(lambda: run(starts[half:]), top,
                           f"scale: last {len(starts) - half} blocks of 2 GiB")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="256G", help="scale slice size (default: %(default)s)")
    p.add_argument("--top", type=int, default=18, help="functions per profile")
    p.add_argument("-o", "--output", help="also write the profiles to this file")
    args = p.parse_args(argv)
    parts = [cycle_profile("compiled", 50, args.top), cycle_profile("python", 3, args.top),
             scale_profile(parse_size(args.scale), args.top)]
    text = "\n".join(parts)
    sys.stdout.write(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
