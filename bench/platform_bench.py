"""Platform benchmarks: what the boundary to the device costs. The fixed
cost of an empty run() from Python on sim (in-process) and onboard (a
round trip to simpler-device, which forwards it to the worker's device
context), opening a worker (on onboard: connecting and starting its
context, the device already running), a GM malloc + free (on onboard: a
round trip, and the context maps and unmaps the block), and host<->device
copy bandwidth against a plain memcpy of the same size. Prints a table and
writes JSON; no pass/fail.

To compare two builds, run this script with PYTHONPATH pointing at each
in turn, in one sitting.

    python bench/platform_bench.py [--quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

import simpler

HERE = Path(__file__).parent
RUNTIMES = ("host_build_graph", "tensormap_and_ringbuffer")


def empty_graph(compiler: simpler.KernelCompiler) -> simpler.ChipCallable:
    noop = simpler.CoreCallable(0, "aiv", compiler.compile(HERE / "kernels" / "noop.c"), [], name="noop")
    return simpler.ChipCallable.build(compiler.compile(HERE / "orch" / "graph.c"), [noop], ["scalar", "scalar"])


def best_of(fn, repeats: int) -> tuple[float, float]:
    """(median, min) wall seconds of fn()."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--json", default=str(HERE / "results" / "platform_bench.json"))
    opts = ap.parse_args()
    runs = 300 if opts.quick else 2000
    copies = 5 if opts.quick else 20
    kc = simpler.KernelCompiler()
    callable_ = empty_graph(kc)
    rows = []

    print(f"simpler platform bench ({os.cpu_count()} cores, {platform.machine()})")
    print(f"{'figure':<56} {'sim':>10} {'onboard':>10}")
    # host_build_graph skips the launch of an empty graph: its one-task
    # run is the one that crosses to the device.
    for runtime in RUNTIMES:
        for what, args in (("empty run()", [0, 0]), ("one-task run()", [1, 1])):
            fig = {}
            for plat in ("sim", "onboard"):
                with simpler.ChipWorker(plat, runtime) as w:
                    cid = w.register(callable_)
                    fig[plat] = best_of(lambda: w.run(cid, args), runs)
            label = f"{what}, {runtime}"
            rows.append({"figure": label, "unit": "us",
                         **{p: {"median": m * 1e6, "min": lo * 1e6} for p, (m, lo) in fig.items()}})
            print(f"{label + ' (median us)':<56} {fig['sim'][0] * 1e6:>10.1f} {fig['onboard'][0] * 1e6:>10.1f}")

    opens = 10 if opts.quick else 40
    fig = {}
    for plat in ("sim", "onboard"):
        with simpler.ChipWorker(plat):      # the device is running for the timed opens
            def open_close():
                with simpler.ChipWorker(plat) as w:
                    w.stats
            fig[plat] = best_of(open_close, opens)
    rows.append({"figure": "open + close a worker", "unit": "ms",
                 **{p: {"median": m * 1e3, "min": lo * 1e3} for p, (m, lo) in fig.items()}})
    print(f"{'open + close a worker, device running (median ms)':<56} {fig['sim'][0] * 1e3:>10.2f} "
          f"{fig['onboard'][0] * 1e3:>10.2f}")
    fig = {}
    for plat in ("sim", "onboard"):
        with simpler.ChipWorker(plat) as w:
            fig[plat] = best_of(lambda: w.free(w.malloc(4096)), runs)
    rows.append({"figure": "malloc + free 4 KiB", "unit": "us",
                 **{p: {"median": m * 1e6, "min": lo * 1e6} for p, (m, lo) in fig.items()}})
    print(f"{'malloc + free 4 KiB (median us)':<56} {fig['sim'][0] * 1e6:>10.1f} {fig['onboard'][0] * 1e6:>10.1f}")

    size = 64 << 20
    host = np.random.default_rng(0).integers(0, 255, size, dtype=np.uint8)
    back = np.empty_like(host)
    memcpy = best_of(lambda: np.copyto(back, host), copies)[1]
    for plat in ("sim", "onboard"):
        with simpler.ChipWorker(plat) as w:
            addr = w.malloc(size)
            to_dev = best_of(lambda: w.copy_to(addr, host), copies)[1]
            from_dev = best_of(lambda: w.copy_from(addr, back), copies)[1]
            w.free(addr)
        assert np.array_equal(back, host)
        rows.append({"figure": "copy 64 MiB", "platform": plat, "unit": "GB/s",
                     "to_device": size / to_dev / 1e9, "from_device": size / from_dev / 1e9,
                     "memcpy": size / memcpy / 1e9})
    by = {r["platform"]: r for r in rows if r.get("platform")}
    for way in ("to_device", "from_device"):
        print(f"{'copy 64 MiB ' + way.replace('_', ' ') + ' (GB/s, best)':<56} {by['sim'][way]:>10.2f} "
              f"{by['onboard'][way]:>10.2f}")
    print(f"{'memcpy 64 MiB (numpy copyto, GB/s, best)':<56} {size / memcpy / 1e9:>10.2f}")
    Path(opts.json).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.json).write_text(json.dumps({"machine": platform.machine(), "cores": os.cpu_count(), "rows": rows},
                                          indent=2))


if __name__ == "__main__":
    main()
