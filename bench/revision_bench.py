"""This tree's runtime against a git revision's, on Task Bench graphs.

The revision is built in a temporary copy; this tree is rebuilt in place
first (`setup.py build_ext --inplace`), so that what is measured is the
source as it is. The two take turns, each turn a fresh process of each,
in alternating order (ABBA), so that the machine's drift (up to 2x here
from minute to minute) falls on both. Per graph: ms a run of `run()` and
of a replay of the recorded graph, fastest over the turns, the ratio this
tree / the revision, and, for graphs with work in their kernels, the
efficiency as bench/taskbench.py computes it (serial kernel time over the
cores' wall time). Outputs are checked after every run and replay, as
bench/taskbench.py does. No pass/fail.

    python bench/revision_bench.py --against REV [--turns N] [--graph PATTERN:WIDTH:ROUNDS ...]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STEPS = 1000
# Empty tasks at both widths, and ~6 us tasks (near METG) at width 8.
DEFAULT_GRAPHS = ["stencil_1d:2:0", "stencil_1d:8:0", "stencil_1d:8:5500", "tree:8:0"]


def child(graphs: list[str], repeats: int) -> None:
    """In a process whose simpler is the tree under test: time each graph
    and print the figures as one JSON line."""
    import numpy as np

    import simpler
    sys.path.insert(0, str(HERE))
    from taskbench import PATTERNS, Simpler, check_outputs, num_tasks

    compiler = simpler.KernelCompiler()
    out = {}
    for runtime in ("host_build_graph", "tensormap_and_ringbuffer"):
        runner = Simpler(runtime, compiler)
        try:
            for g in graphs:
                pattern, width, rounds = g.split(":")
                width, rounds = int(width), int(rounds)
                outputs = np.full((2, width, 2), np.iinfo(np.uint64).max, dtype=np.uint64)
                err = np.zeros(8, dtype=np.uint64)
                args = [outputs, err, PATTERNS.index(pattern), width, STEPS, rounds]
                graph = runner.worker.record(runner.cid, args, **runner.config)
                try:
                    best_run = best_replay = float("inf")
                    for _ in range(repeats):
                        outputs.fill(np.iinfo(np.uint64).max)
                        t0 = time.perf_counter()
                        runner.worker.run(runner.cid, args, **runner.config)
                        best_run = min(best_run, time.perf_counter() - t0)
                        check_outputs(pattern, width, STEPS, outputs, err, runner.name)
                        outputs.fill(np.iinfo(np.uint64).max)
                        t0 = time.perf_counter()
                        graph.run(args)
                        best_replay = min(best_replay, time.perf_counter() - t0)
                        check_outputs(pattern, width, STEPS, outputs, err, runner.name + " replay")
                finally:
                    graph.release()
                out[f"{runner.name} {g}"] = {"run": best_run, "replay": best_replay,
                                             "tasks": num_tasks(pattern, width, STEPS), "rounds": rounds}
        finally:
            runner.close()
    print(json.dumps(out))


def rebuild_this_tree() -> None:
    r = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"], cwd=ROOT, capture_output=True,
                       text=True)
    if r.returncode:
        sys.exit(f"revision_bench: this tree does not build:\n{r.stderr.strip()[-2000:]}")


def build_revision(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True)
    if archive.returncode:
        sys.exit(f"revision_bench: {archive.stderr.decode(errors='replace').strip() or 'git archive failed'}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    print(f"building {rev} in {into} ...", flush=True)
    r = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"], cwd=into, capture_output=True,
                       text=True)
    if r.returncode:
        sys.exit(f"revision_bench: {rev} does not build:\n{r.stderr.strip()[-2000:]}")
    return into


def measure(tree: Path, graphs: list[str], repeats: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([sys.executable, __file__, "--child", "--repeats", str(repeats), "--graph", *graphs],
                       env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"revision_bench: the run with {tree} failed:\n{r.stderr.strip()[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def serial_kernel():
    """Seconds a call of the kernel takes on one thread, by rounds, as
    bench/taskbench.py times it (None: no OpenMP gcc build of the Task
    Bench peer to time it with)."""
    from peers_bench import build_peers
    from taskbench import SerialKernel
    peers = build_peers("omp_taskbench.c", "tbb_taskbench.cpp", "-taskbench")
    return SerialKernel(peers["omp-gcc"]) if "omp-gcc" in peers else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", help="git revision to measure this tree against")
    ap.add_argument("--turns", type=int, default=3, help="turns of both trees (default 3)")
    ap.add_argument("--repeats", type=int, default=10, help="runs and replays per graph and turn (default 10)")
    ap.add_argument("--graph", nargs="+", default=DEFAULT_GRAPHS,
                    help=f"PATTERN:WIDTH:ROUNDS, {STEPS} steps (default: {' '.join(DEFAULT_GRAPHS)})")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.graph, a.repeats)
        return 0
    if not a.against:
        ap.error("--against REV is needed")
    sys.path.insert(0, str(HERE))
    rebuild_this_tree()
    serial = serial_kernel()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="simpler-rev-") as tmp:
        trees = {a.against: build_revision(a.against, Path(tmp)), "this tree": ROOT}
        best: dict[str, dict[str, dict]] = {name: {} for name in trees}
        for turn in range(a.turns):
            for name in (list(trees) if turn % 2 == 0 else list(trees)[::-1]):
                tree = trees[name]
                for key, fig in measure(tree, a.graph, a.repeats).items():
                    b = best[name].setdefault(key, dict(fig))
                    b["run"], b["replay"] = min(b["run"], fig["run"]), min(b["replay"], fig["replay"])
            print(f"  turn {turn + 1} of {a.turns} done", flush=True)
    old, new = best[a.against], best["this tree"]
    print(f"\nms a run of {STEPS} steps, fastest of {a.turns} turns x {a.repeats}; ratio = this tree / {a.against}; "
          f"eff = serial kernel time / ({cores} cores x wall)")
    print(f"{'runner graph':34} {'run() rev':>10} {'this':>8} {'ratio':>6}   "
          f"{'replay rev':>10} {'this':>8} {'ratio':>6}   {'eff rev':>7} {'this':>6}")
    for key in new:
        o, n = old[key], new[key]
        effs = ""
        if n["rounds"] and serial:
            work = n["tasks"] * serial(n["rounds"]) / cores
            effs = f"   {work / o['run']:7.2f} {work / n['run']:6.2f}"
        print(f"{key:34} {o['run'] * 1e3:10.2f} {n['run'] * 1e3:8.2f} {n['run'] / o['run']:6.2f}   "
              f"{o['replay'] * 1e3:10.2f} {n['replay'] * 1e3:8.2f} {n['replay'] / o['replay']:6.2f}{effs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
