"""Host-level dispatch of a multi-chip Worker, measured in one sitting on
both platforms: one-task chip runs per second through Worker.submit
across 1 and 4 chips (independent runs, round robin), against the same
runs through one ChipWorker's submit() (no host graph) in the same run;
and the cost of a host-level dependency edge: a chain of runs (each
reading the previous one's output) against independent runs, on one chip
and alternating between two. Figures and ratios, no pass/fail.

    python bench/multi_chip_bench.py [--quick] [--platform sim|onboard]
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import numpy as np

import simpler

ROOT = Path(__file__).resolve().parents[1]


def _affine(kc: simpler.KernelCompiler) -> simpler.ChipCallable:
    spec = importlib.util.spec_from_file_location("pipeline", ROOT / "examples" / "multi_chip" / "pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.affine_callable(kc)


def _rate(fn, n: int, repeats: int) -> float:
    """Median runs per second of fn(n) over repeats."""
    fn(min(n, 50))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(n)
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--platform", action="append", choices=["sim", "onboard"])
    args = ap.parse_args()
    n, repeats = (400, 3) if args.quick else (2000, 5)
    callable_ = _affine(simpler.KernelCompiler())
    xs = [np.full(64, i, dtype=np.float32) for i in range(n + 1)]
    outs = [np.zeros(64, dtype=np.float32) for _ in range(n + 1)]
    print(f"{'platform':9} {'measure':44} {'runs/s':>9} {'us/run':>8}  ratio")
    for platform in args.platform or ["sim", "onboard"]:
        with simpler.ChipWorker(platform, "host_build_graph", 0) as chip:
            cid = chip.register(callable_)

            def chip_submit(k: int) -> None:
                for i in range(k):
                    chip.submit(cid, [xs[i], outs[i], 1.0, 1.0])
                chip.wait()
            base = _rate(chip_submit, n, repeats)
        rows = [("ChipWorker.submit, 1 chip (no host graph)", base)]
        with simpler.Worker(platform, "host_build_graph", devices=[0, 1, 2, 3]) as w:
            reg = w.register(callable_)

            def spread(chips: int):
                def go(k: int) -> None:
                    for i in range(k):
                        w.submit(i % chips, reg, [xs[i], outs[i], 1.0, 1.0])
                    w.wait()
                return go

            def chain(chips: int):
                def go(k: int) -> None:
                    for i in range(k):
                        w.submit(i % chips, reg, [outs[i], outs[i + 1], 1.0, 1.0])
                    w.wait()
                return go
            rows.append(("Worker.submit, independent, 1 chip", _rate(spread(1), n, repeats)))
            rows.append(("Worker.submit, independent, 4 chips", _rate(spread(4), n, repeats)))
            indep1 = rows[-2][1]
            chain1 = _rate(chain(1), n, repeats)
            chain2 = _rate(chain(2), n, repeats)
            rows.append(("Worker.submit, chain (an edge a run), 1 chip", chain1))
            rows.append(("Worker.submit, chain, alternating 2 chips", chain2))
        for name, rate in rows:
            print(f"{platform:9} {name:44} {rate:9.0f} {1e6 / rate:8.1f}  {rate / base:5.2f}x")
        print(f"{platform:9} {'edge cost on 1 chip (chain - independent)':44} {'':9} "
              f"{1e6 / chain1 - 1e6 / indep1:8.1f}")
        print(f"{platform:9} {'edge cost across 2 chips (chain - independent)':44} {'':9} "
              f"{1e6 / chain2 - 1e6 / indep1:8.1f}")


if __name__ == "__main__":
    main()
