"""simpler side by side with the runtimes users would pick instead: OpenMP
tasks with depend clauses (gcc's libgomp, LLVM's libomp) and oneTBB's flow
graph, each built by this script from the same patterns and the same
compute kernel (bench/peers/). Same machine, same run; prints a table with
simpler/peer ratios and writes JSON. No pass/fail.

    bash bench/setup.sh                  # once: oneTBB, libomp, clang from Debian
    python bench/peers_bench.py [--quick]

Per-task cost: empty tasks (0 rounds) in independent, chain, fan-out /
fan-in and stencil_1d patterns at 1e3, 1e5 and 1e6 tasks, the fastest of
30, 10 and 3 runs (the shorter the run, the more of it one interruption
is; one each with --quick), and a run of one empty task (a run's fixed
cost, which the 1e3 figures carry).
METG(50%) (Task-Bench): stencil_1d, width = host cores, 1,000 steps; the
kernel is shrunk by factors of sqrt(2) until efficiency (serial kernel
time / (wall time x cores)) drops below 50%; METG is the smallest task
granularity (wall time x cores / tasks) still at or above it.
Every runner is timed warm, its threads already up: a peer's program runs
the graph twice and times the second pass (one process a measurement);
simpler's worker runs each graph once untimed before the best of the
timed runs. What stays warmer for simpler: its timed runs follow one
another in one process, where a peer's second pass is only its second.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import time
from pathlib import Path

import simpler

HERE = Path(__file__).parent
BIN = HERE / "results" / "bin"
PATTERN_IDS = {"stencil": 0, "independent": 1, "chain": 2, "fan": 3}


def build_peers(omp: str = "omp_patterns.c", tbb: str = "tbb_patterns.cpp", suffix: str = "") -> dict[str, Path]:
    """Compile the peer programs (sources in bench/peers/, binaries named
    after the peer plus suffix) that this machine can build."""
    BIN.mkdir(parents=True, exist_ok=True)
    inc = ["-I", str(HERE / "peers")]
    recipes = {
        "omp-gcc": (["gcc", "-O2", "-fopenmp", *inc, str(HERE / "peers" / omp)], None),
        "omp-llvm": (["clang", "-O2", "-fopenmp=libomp", *inc, str(HERE / "peers" / omp)], "clang"),
        "tbb": (["g++", "-O2", "-std=c++17", *inc, str(HERE / "peers" / tbb), "-ltbb"], None),
    }
    built = {}
    for name, (cmd, needs) in recipes.items():
        if needs and not shutil.which(needs):
            print(f"  {name}: skipped ({needs} not installed; run bench/setup.sh)")
            continue
        out = BIN / f"{name}{suffix}"
        r = subprocess.run([*cmd, "-o", str(out)], capture_output=True, text=True)
        if r.returncode:
            print(f"  {name}: not built ({r.stderr.strip().splitlines()[-1] if r.stderr else 'error'}; "
                  f"run bench/setup.sh)")
            continue
        built[name] = out
    return built


def peer_time(exe: Path, pattern: str, width: int, steps: int, rounds: int) -> float:
    out = subprocess.run([str(exe), pattern, str(width), str(steps), str(rounds)], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.split()[-1])


class Simpler:
    def __init__(self, runtime: str, compiler: simpler.KernelCompiler) -> None:
        work = simpler.CoreCallable(0, "aiv", compiler.compile(HERE / "kernels" / "work.c"), [], num_scalars=1,
                                    name="work")
        callable_ = simpler.ChipCallable.build(compiler.compile(HERE / "orch" / "stencil.c"), [work],
                                               ["scalar"] * 4)
        self.worker = simpler.ChipWorker("sim", runtime)
        self.cid = self.worker.register(callable_)
        self.config = dict(task_ring_size=4096) if runtime == "tensormap_and_ringbuffer" else {}

    def time(self, pattern: str, width: int, steps: int, rounds: int) -> float:
        t0 = time.perf_counter()
        self.worker.run(self.cid, [width, steps, rounds, PATTERN_IDS[pattern]], **self.config)
        return time.perf_counter() - t0

    def close(self) -> None:
        self.worker.finalize()


def best_of(fn, repeats: int) -> float:
    return min(fn() for _ in range(repeats))


def bench_options(doc: str, json_name: str, quick_help: str, more=None) -> tuple[argparse.Namespace, int, int]:
    """The command line of a peers bench (--quick, --json, and what more
    adds to the parser), the host's cores and how many repeats to take the
    best of."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--json", default=str(HERE / "results" / json_name))
    if more:
        more(ap)
    opts = ap.parse_args()
    return opts, os.cpu_count() or 1, 1 if opts.quick else 3


def main() -> None:
    opts, cores, repeats = bench_options(__doc__, "peers_bench.json", "fewer sizes and repeats")
    sizes = (1_000, 100_000) if opts.quick else (1_000, 100_000, 1_000_000)

    print("building peers:")
    peers = build_peers()
    compiler = simpler.KernelCompiler()
    runners: dict[str, object] = {f"simpler-{'hbg' if r == 'host_build_graph' else 'tmr'}": Simpler(r, compiler)
                                  for r in ("host_build_graph", "tensormap_and_ringbuffer")}

    def timer(name):
        if name in peers:
            return lambda *a: peer_time(peers[name], *a)
        return runners[name].time

    names = [*runners, *peers]
    results: dict = {"machine": {"cores": cores}, "per_task_ns": {}, "metg_us": {}}

    # Per-task cost of empty tasks.
    for pattern in ("independent", "chain", "fan", "stencil"):
        for n in sizes:
            width = cores if pattern == "stencil" else (1 if pattern == "chain" else n)
            steps = max(1, n // width)
            row = {}
            # A run of 1e3 empty tasks lasts ~100 us, inside one timeslice
            # of whatever else the machine runs: more samples the shorter
            # the run, the same for every runner (30 at 1e3, 10 at 1e5).
            times = repeats if opts.quick else max(repeats, min(30, round(10 * (1e5 / n) ** 0.5)))
            for name in names:
                if name in runners:  # simpler warm too, as each peer's program times its second pass
                    timer(name)(pattern, width, steps, 0)
                t = best_of(lambda: timer(name)(pattern, width, steps, 0), times)
                row[name] = t / (width * steps) * 1e9
            results["per_task_ns"][f"{pattern} {n}"] = row

    # A run's fixed cost, which the 1e3 figures carry on top of their tasks:
    # one empty task, the fastest of 30. A peer's figure is its program's
    # second pass over the graph (no process start); simpler's, a whole
    # run() from Python.
    results["one_task_us"] = {}
    for name in names:
        if name in runners:
            timer(name)("independent", 1, 1, 0)
        results["one_task_us"][name] = best_of(lambda: timer(name)("independent", 1, 1, 0), 5 if opts.quick
                                               else 30) * 1e6

    # METG(50%) on stencil_1d.
    serial_ns_per_round = peer_time(peers["omp-gcc"], "serial", 1, 1, 1 << 24) / (1 << 24) * 1e9 \
        if "omp-gcc" in peers else None
    steps = 200 if opts.quick else 1000
    for name in names:
        if serial_ns_per_round is None:
            break
        rounds, metg = float(1 << 18), None
        while rounds >= 1:
            r = int(rounds)
            wall = best_of(lambda: timer(name)("stencil", cores, steps, r), repeats)
            tasks = cores * steps
            efficiency = (r * serial_ns_per_round * tasks * 1e-9) / (wall * cores)
            if efficiency < 0.5:
                break
            metg = wall * cores / tasks * 1e6
            rounds /= math.sqrt(2)
        results["metg_us"][name] = metg

    # The table.
    simpler_names = [n for n in names if n.startswith("simpler")]
    peer_names = [n for n in names if not n.startswith("simpler")]
    print(f"\nper-task cost, empty tasks (ns/task), {cores} cores; ratio = best simpler / best peer")
    print(f"{'pattern':<20}" + "".join(f"{n:>14}" for n in names) + f"{'ratio':>8}")
    for key, row in results["per_task_ns"].items():
        ratio = (min(row[n] for n in simpler_names) / min(row[n] for n in peer_names)) if peer_names else float("nan")
        row["ratio"] = ratio
        print(f"{key:<20}" + "".join(f"{row[n]:>14.0f}" for n in names) + f"{ratio:>8.2f}")
    print(f"{'one task, us a run':<20}" + "".join(f"{results['one_task_us'][n]:>14.1f}" for n in names))
    print(f"\nMETG(50%) on stencil_1d (us; lower is better), width {cores}, {steps} steps")
    for n in names:
        v = results["metg_us"].get(n)
        print(f"  {n:<14} {('%.2f' % v) if v is not None else 'n/a':>10}")
    Path(opts.json).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.json).write_text(json.dumps(results, indent=1))
    print(f"wrote {opts.json}")
    for r in runners.values():
        r.close()


if __name__ == "__main__":
    main()
