"""Runtime benchmarks: per-task cost of no-op graphs on both runtimes, the
orchestration's submit cost, the fixed cost of a run() from Python, the
cost of tracing (the same graph traced and not, in one run), and the
memory of a million-task stream. Prints a table and writes JSON; no
pass/fail.

    python bench/runtime_bench.py [--quick] [--json PATH]
    python bench/runtime_bench.py --only rows --sizes 1e3,1e4,1e5,1e6   # one pattern
    python bench/runtime_bench.py --overlap --sizes 1e3,1e5,1e6   # host_build_graph streamed vs whole
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import simpler

HERE = Path(__file__).parent
PATTERNS = {"empty": 0, "independent": 1, "chain": 2, "fan": 3}
RUNTIMES = ("host_build_graph", "tensormap_and_ringbuffer")


def build(compiler: simpler.KernelCompiler) -> simpler.ChipCallable:
    noop = simpler.CoreCallable(0, "aiv", compiler.compile(HERE / "kernels" / "noop.c"), [], name="noop")
    return simpler.ChipCallable.build(compiler.compile(HERE / "orch" / "graph.c"), [noop],
                                      ["scalar", "scalar"])


def build_rows(compiler: simpler.KernelCompiler) -> simpler.ChipCallable:
    """One in-place task per row of a matrix: dependency tracking on one buffer."""
    noop = simpler.CoreCallable(1, "aiv", compiler.compile(HERE / "kernels" / "noop.c"), ["inout"], name="noop")
    return simpler.ChipCallable.build(compiler.compile(HERE / "orch" / "rows.c"), [noop],
                                      [("inout", np.float32), "scalar"])


def time_runs(worker, cid, args, repeats: int, **cfg) -> tuple[list[float], float]:
    """Wall times of repeated runs, and the orchestration's ns per task."""
    worker.run(cid, args, **cfg)  # warm
    times, submit = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        worker.run(cid, args, **cfg)
        times.append(time.perf_counter() - t0)
        st = worker.stats
        if st["last_run_tasks"]:  # the orchestration's own time: waits for ring space excluded
            submit.append((st["last_run_orchestration_ns"] - st["last_run_wait_ns"]) / st["last_run_tasks"])
    return times, (min(submit) if submit else 0.0)


def setting_cost(worker, cid, args, repeats: int, setting: str) -> tuple[list[float], list[float]]:
    """Wall times of the same graph with a run setting off and on (trace,
    or progress: a tqdm bar, its output swallowed), runs alternating so
    that both see the same machine."""
    off, on = [], []
    for _ in range(repeats + 1):        # the first pair warms
        for times, value in ((off, False), (on, True)):
            with contextlib.redirect_stderr(io.StringIO()):
                t0 = time.perf_counter()
                worker.run(cid, args, **{setting: value})
                times.append(time.perf_counter() - t0)
    return off[1:], on[1:]


def stream_peak_rss(tasks: int) -> int:
    """Peak resident size (KiB) of a fresh process streaming `tasks` tasks.
    VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the
    (large) parent."""
    code = f"""
import sys, numpy as np, simpler
sys.path.insert(0, {str(HERE.parent / "tests" / "st")!r})
import scenes
kc = simpler.KernelCompiler()
with simpler.ChipWorker(runtime="tensormap_and_ringbuffer") as w:
    cid = w.register(scenes.callable_(kc, "stream"))
    X = np.ones((64, 4), np.float32); Y = np.zeros_like(X)
    w.run(cid, [X, Y, {tasks // 2}], task_ring_size=256, heap_ring_size=1 << 20)
print(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


def only_pattern(w, compiler, pattern: str, sizes: list[int], q: int, add) -> None:
    """One pattern's per-task cost (wall, best of the runs) and its
    orchestration's own time per task, at each size."""
    rows = pattern == "rows"
    cid = w.register(build_rows(compiler) if rows else build(compiler))
    what = "row updates on one buffer (tracked deps)" if rows else pattern
    for n in sizes:
        args = [np.zeros((n, 4), np.float32), 1] if rows else [PATTERNS[pattern], n]
        t, submit = time_runs(w, cid, args, max(3 if rows else 1, (200_000 // n) // q))
        add(w.runtime, f"{what}, per task", n, len(t), min(t) / n * 1e9, "ns/task")
        if rows:
            add(w.runtime, f"{what}, orchestration submit", n, len(t), submit, "ns/task")
    w.unregister(cid)


def overlap(w, compiler, sizes: list[int], q: int, add) -> None:
    """host_build_graph built whole against streamed (SIMPLER_HBG_STREAM=0
    and 1, the runs alternating so that both see the same machine): the
    build (the orchestration's own time), the execute (a replay of the same
    graph recorded: its image launched, nothing built), the wall of each,
    best of the runs, and streamed over whole (the floor is max(build,
    execute) / (build + execute))."""
    cid = w.register(build(compiler))
    old = os.environ.get("SIMPLER_HBG_STREAM")
    try:
        for pattern in ("independent", "chain"):
            for n in sizes:
                reps = max(3, (300_000 // n) // q)
                args = [PATTERNS[pattern], n]
                wall = {"0": [], "1": []}
                built = {"0": [], "1": []}
                execs = []
                with w.record(cid, args) as graph:
                    for rep in range(reps + 1):     # the first round warms
                        for mode in ("0", "1"):
                            os.environ["SIMPLER_HBG_STREAM"] = mode
                            t0 = time.perf_counter()
                            w.run(cid, args)
                            if rep:
                                wall[mode].append(time.perf_counter() - t0)
                                built[mode].append(w.stats["last_run_orchestration_ns"] / 1e9)
                        t0 = time.perf_counter()
                        graph.run(args)
                        if rep:
                            execs.append(time.perf_counter() - t0)
                e = min(execs)
                add(w.runtime, f"{pattern}, execute (replay)", n, reps, e * 1e3, "ms")
                for mode, what in (("0", "whole"), ("1", "streamed")):
                    add(w.runtime, f"{pattern}, {what}: build (orchestration)", n, reps, min(built[mode]) * 1e3, "ms")
                    add(w.runtime, f"{pattern}, {what}: wall of run()", n, reps, min(wall[mode]) * 1e3, "ms")
                add(w.runtime, f"{pattern}, streamed / whole wall", n, reps, min(wall["1"]) / min(wall["0"]), "x")
    finally:
        if old is None:
            os.environ.pop("SIMPLER_HBG_STREAM", None)
        else:
            os.environ["SIMPLER_HBG_STREAM"] = old
    w.unregister(cid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--json", default=str(HERE / "results" / "runtime_bench.json"))
    ap.add_argument("--platform", default="sim")
    ap.add_argument("--only", choices=(*PATTERNS.keys() - {"empty"}, "rows"),
                    help="only this pattern's per-task rows (rows: the row updates), both runtimes")
    ap.add_argument("--sizes", default="1e3,1e5,1e6", help="task counts of the per-task rows (default 1e3,1e5,1e6)")
    ap.add_argument("--overlap", action="store_true",
                    help="only host_build_graph built whole against streamed: build, execute, wall "
                         "(independent, chain)")
    opts = ap.parse_args()
    q = 10 if opts.quick else 1
    sizes = [int(float(s)) for s in opts.sizes.split(",")]

    compiler = simpler.KernelCompiler()
    rows = []

    def add(runtime, what, n, runs, value, unit):
        rows.append((runtime, what, n, runs, value, unit))

    for runtime in ("host_build_graph",) if opts.overlap else RUNTIMES:
        with simpler.ChipWorker(opts.platform, runtime) as w:
            if opts.overlap:
                overlap(w, compiler, sizes, q, add)
                continue
            if opts.only:
                only_pattern(w, compiler, opts.only, sizes, q, add)
                continue
            cid = w.register(build(compiler))
            t, _ = time_runs(w, cid, [0, 0], 20000 // q)
            add(runtime, "empty run() from Python", 0, len(t), statistics.median(t) * 1e6, "us/run")
            t, _ = time_runs(w, cid, [1, 1], 5000 // q)
            add(runtime, "one no-op task run()", 1, len(t), statistics.median(t) * 1e6, "us/run")
            t, _ = time_runs(w, cid, [1, 1000], 1000 // q)
            add(runtime, "1,000 runs of 1,000 independent tasks", 1000, len(t), len(t) * 1000 / sum(t), "tasks/s")
            for pattern in ("independent", "chain", "fan"):
                for n in sizes:
                    reps = max(1, (200_000 // n) // q)
                    t, submit = time_runs(w, cid, [PATTERNS[pattern], n], reps)
                    add(runtime, f"{pattern}, per task", n, len(t), min(t) / n * 1e9, "ns/task")
                    if n == 100_000:
                        add(runtime, f"{pattern}, orchestration submit", n, len(t), submit, "ns/task")
                        add(runtime, f"{pattern}, tasks per second", n, len(t), n / min(t), "tasks/s")
            n = 100_000
            off, on = setting_cost(w, cid, [PATTERNS["independent"], n], max(5, 20 // q), "trace")
            add(runtime, "independent, per task, untraced", n, len(off), min(off) / n * 1e9, "ns/task")
            add(runtime, "independent, per task, traced (trace=True)", n, len(on), min(on) / n * 1e9, "ns/task")
            add(runtime, "independent, traced / untraced", n, len(on), min(on) / min(off), "x")
            # A bar shows only for runs over a second: a graph that long.
            n = 2_000_000
            bar = "a tqdm bar" if importlib.util.find_spec("tqdm") else "no tqdm: no bar"
            off, on = setting_cost(w, cid, [PATTERNS["chain"], n], 3, "progress")
            add(runtime, "chain, per task, progress=False", n, len(off), min(off) / n * 1e9, "ns/task")
            add(runtime, f"chain, per task, progress=True ({bar})", n, len(on), min(on) / n * 1e9, "ns/task")
            add(runtime, "chain, progress on / off", n, len(on), min(on) / min(off), "x")
            w.unregister(cid)
            only_pattern(w, compiler, "rows", sizes, q, add)
    for n in () if opts.only or opts.overlap else (100_000, 1_000_000):
        add("tensormap_and_ringbuffer", "stream through 256-slot rings: peak RSS", n, 1, stream_peak_rss(n) / 1024,
            "MiB")

    wr = max(len(r[0]) for r in rows)
    ww = max(len(r[1]) for r in rows)
    print(f"simpler runtime bench on {opts.platform} ({os.cpu_count()} cores, {platform.machine()})")
    print(f"{'runtime':<{wr}}  {'what':<{ww}}  {'tasks':>9}  {'runs':>6}  {'value':>12}")
    for runtime, what, n, runs, value, unit in rows:
        print(f"{runtime:<{wr}}  {what:<{ww}}  {n:>9}  {runs:>6}  {value:>12.{2 if unit == 'x' else 1}f} {unit}")
    Path(opts.json).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.json).write_text(json.dumps(
        [dict(zip(("runtime", "what", "tasks", "runs", "value", "unit"), r)) for r in rows], indent=1))
    print(f"wrote {opts.json}")


if __name__ == "__main__":
    main()
