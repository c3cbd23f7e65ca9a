"""Allreduce bus bandwidth across the chips of a Worker, against memcpy.

For 2, 4 and 8 chips, on sim (threads of this process sharing its
memory) and onboard (a device process per chip, each with its own GM
segment, the peers' reached through windows), and tensors of 1 KiB to
256 MiB (float32, sum, in place), the median wall time of one allreduce (submit to done) gives
nccl-tests' figures: algbw = bytes / time and busbw = algbw * 2(n-1)/n,
the traffic each chip's link would carry in a ring. Beside them, memcpy
bandwidth on this machine for the same size (numpy copyto between two
arrays), measured in the same run: the physical limit of chips that share
one memory. Prints a table; no assertions.

    python bench/collective_bench.py [--quick] [--platform sim|onboard]... [--runtime NAME]
                                     [--max-mib 256] [--chips 2 4 8]

--quick: up to 64 MiB over 2 and 4 chips.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from simpler.multi_chip import Worker


def median_seconds(fn, repeats: int) -> float:
    fn()                                    # warm: windows, registration, first touch
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def repeats_for(nbytes: int) -> int:
    return 20 if nbytes <= 1 << 20 else 5 if nbytes <= 16 << 20 else 3


def memcpy_gbps(nbytes: int) -> float:
    src = np.ones(nbytes, np.uint8)
    dst = np.empty_like(src)
    return nbytes / median_seconds(lambda: np.copyto(dst, src), repeats_for(nbytes)) / 1e9


def allreduce_seconds(w: Worker, nbytes: int) -> float:
    n = nbytes // 4
    zeros = np.zeros(n, np.float32)         # a sum of zeros stays finite run after run
    ts = [w.malloc(d, (n,), np.float32) for d in w.devices]
    try:
        for t in ts:
            w.copy(t, zeros)
        w.wait()
        return median_seconds(lambda: w.allreduce(ts).result(), repeats_for(nbytes))
    finally:
        for t in ts:
            w.free(t)


def human(nbytes: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= size:
            return f"{nbytes // size} {unit}"
    return f"{nbytes} B"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", default="host_build_graph")
    ap.add_argument("--max-mib", type=int, default=256, help="largest tensor, MiB (default 256)")
    ap.add_argument("--chips", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--platform", action="append", choices=["sim", "onboard"],
                    help="sim and onboard unless given")
    ap.add_argument("--quick", action="store_true", help="up to 64 MiB, 2 and 4 chips")
    opts = ap.parse_args()
    if opts.quick:
        opts.max_mib, opts.chips = min(opts.max_mib, 64), [c for c in opts.chips if c <= 4]
    sizes = []
    s = 1 << 10
    while s <= opts.max_mib << 20:
        sizes.append(s)
        s *= 4
    memcpy = {s: memcpy_gbps(s) for s in sizes}
    for platform in opts.platform or ["sim", "onboard"]:
        print(f"allreduce (float32 sum, in place), {platform}, {opts.runtime}; GB/s = 1e9 bytes/s")
        print(f"{'size':>9} {'chips':>5} {'time us':>10} {'algbw':>8} {'busbw':>8} {'memcpy':>8} "
              f"{'busbw/memcpy':>12}")
        for chips in opts.chips:
            with Worker(platform, opts.runtime, chips) as w:
                for s in sizes:
                    t = allreduce_seconds(w, s)
                    alg = s / t / 1e9
                    bus = alg * 2 * (chips - 1) / chips
                    print(f"{human(s):>9} {chips:>5} {t * 1e6:>10.0f} {alg:>8.2f} {bus:>8.2f} {memcpy[s]:>8.2f} "
                          f"{bus / memcpy[s]:>11.0%}", flush=True)


if __name__ == "__main__":
    main()
