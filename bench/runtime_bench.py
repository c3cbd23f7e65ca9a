"""Runtime benchmarks: per-task cost of no-op graphs and the fixed cost of
a run() from Python. Prints a table and writes JSON; no pass/fail.

    python bench/runtime_bench.py [--quick] [--json PATH]
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
PATTERNS = {"empty": 0, "independent": 1, "chain": 2, "fan": 3}


def build(compiler: simpler.KernelCompiler) -> simpler.ChipCallable:
    noop = simpler.CoreCallable(0, "aiv", compiler.compile(HERE / "kernels" / "noop.c"), [], name="noop")
    return simpler.ChipCallable.build(compiler.compile(HERE / "orch" / "graph.c"), [noop],
                                      ["scalar", "scalar"])


def build_rows(compiler: simpler.KernelCompiler) -> simpler.ChipCallable:
    """One in-place task per row of a matrix: dependency tracking on one buffer."""
    noop = simpler.CoreCallable(1, "aiv", compiler.compile(HERE / "kernels" / "noop.c"), ["inout"], name="noop")
    return simpler.ChipCallable.build(compiler.compile(HERE / "orch" / "rows.c"), [noop],
                                      [("inout", np.float32), "scalar"])


def time_runs(worker, cid, pattern: str, tasks: int, repeats: int, **cfg) -> list[float]:
    args = simpler.TaskArgs(PATTERNS[pattern], tasks)
    worker.run(cid, args, **cfg)  # warm
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        worker.run(cid, args, **cfg)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--json", default=str(HERE / "results" / "runtime_bench.json"))
    ap.add_argument("--platform", default="sim")
    opts = ap.parse_args()
    q = 10 if opts.quick else 1

    compiler = simpler.KernelCompiler()
    callable_ = build(compiler)
    rows = []
    with simpler.ChipWorker(opts.platform, "host_build_graph") as w:
        cid = w.register(callable_)
        t = time_runs(w, cid, "empty", 0, 20000 // q)
        rows.append(("empty run() from Python", 0, len(t), statistics.median(t) * 1e6, "us/run"))
        t = time_runs(w, cid, "independent", 1, 5000 // q)
        rows.append(("one no-op task run()", 1, len(t), statistics.median(t) * 1e6, "us/run"))
        total_start = time.perf_counter()
        t = time_runs(w, cid, "independent", 1000, 1000 // q)
        total = time.perf_counter() - total_start
        rows.append(("1,000 runs of 1,000 independent tasks", 1000, len(t), len(t) * 1000 / total,
                     "tasks/s"))
        for pattern in ("independent", "chain", "fan"):
            for n in (1000, 100_000, 1_000_000):
                reps = max(1, (200_000 // n) // q)
                t = time_runs(w, cid, pattern, n, reps)
                rows.append((f"{pattern}, per task", n, len(t), min(t) / n * 1e9, "ns/task"))
        w.unregister(cid)
        rows_cid = w.register(build_rows(compiler))
        for n in (1000, 100_000, 1_000_000):
            X = np.zeros((n, 4), np.float32)
            w.run(rows_cid, [X, 1])
            t = []
            for _ in range(max(1, (200_000 // n) // q)):
                t0 = time.perf_counter()
                w.run(rows_cid, [X, 1])
                t.append(time.perf_counter() - t0)
            rows.append(("row updates on one buffer (tracked deps), per task", n, len(t), min(t) / n * 1e9,
                         "ns/task"))
        w.unregister(rows_cid)

    width = max(len(r[0]) for r in rows)
    print(f"simpler runtime bench on {opts.platform} ({os.cpu_count()} cores, {platform.machine()})")
    print(f"{'what':<{width}}  {'tasks':>9}  {'runs':>6}  {'value':>12}")
    for what, n, runs, value, unit in rows:
        print(f"{what:<{width}}  {n:>9}  {runs:>6}  {value:>12.1f} {unit}")
    Path(opts.json).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.json).write_text(json.dumps(
        [dict(zip(("what", "tasks", "runs", "value", "unit"), r)) for r in rows], indent=1))
    print(f"wrote {opts.json}")


if __name__ == "__main__":
    main()
