"""Task Bench's dependence patterns (Slaughter et al., SC'20) on simpler's
two runtimes and the peers (OpenMP with gcc's libgomp and LLVM's libomp,
oneTBB's flow graph), in one run: METG(50%) per pattern and width, and
efficiency at large tasks. Prints figures and ratios, no pass/fail; but a
task that finds a wrong input stops the bench with an error and exit 1.

    bash bench/setup.sh                  # once: oneTBB, libomp, clang
    python bench/taskbench.py [--quick]
    python bench/taskbench.py --large-only --pattern stencil_1d --width 2   # efficiency at ~100 us only

The graphs (bench/peers/taskbench.h, one definition for every runtime):
stencil_1d, nearest (radix 3 and 5), spread, fft, tree and all_to_all, at
widths 2 and 8. Point p of step t reads the outputs of step t-1 it depends
on and writes its own into buffer t % 2 (double buffering), then runs the
compute kernel every runtime runs (bench/peers/work.h). Each task checks
that every input holds the stamp (t-1, dependency) its producer wrote;
the host checks the error record and the last two steps' outputs after the
run. The orchestrations compute each point's dependencies with a call to
tb_deps() as they build the graph (bench/orch/taskbench.c: simpler derives
the edges from the tensors' tags; OpenMP from depend clauses; oneTBB gets
the edges a data-aware runtime would derive).

Efficiency as Task Bench computes it: the serial time of the same kernel
with the same rounds (one thread, no runtime, measured in this run) for
every task, divided by wall time x cores. The sweep starts at ~100 us
tasks (reported as "efficiency at large tasks", also as a ratio to a kernel-only run:
bench/peers/kernel_only.c, the same kernels on one plain thread per CPU
and no runtime, its tasks back to back, interleaved with the others at
that size) and shrinks the kernel by
sqrt(2) until efficiency falls below 50% (twice in a row, so that one dip
from the machine's other load does not end it); METG(50%) is the smallest
task granularity (wall time x cores / tasks) measured at or above 50%
("n/a": none was). The runners take turns at each kernel size, so
the machine's other load falls on all of them alike. Every runner is
timed warm: a peer's program runs the graph twice and times the second
pass (the first starts its threads); simpler's worker runs a small graph
once, untimed, when the bench starts.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import simpler
from peers_bench import BIN, HERE, bench_options, build_peers, peer_time

# The order of enum tb_pattern in bench/peers/taskbench.h.
PATTERNS = ("stencil_1d", "nearest_3", "nearest_5", "spread", "fft", "tree", "all_to_all")
WIDTHS = (2, 8)
MAX_WIDTH = max(WIDTHS)
LARGE_TASK_S = 100e-6


class CheckFailed(Exception):
    """A task found an input its producer did not write, or a task never ran."""


def width_at(pattern: str, width: int, t: int) -> int:
    return min(width, 1 << t) if pattern == "tree" else width


def num_tasks(pattern: str, width: int, steps: int) -> int:
    return sum(width_at(pattern, width, t) for t in range(steps))


def check_outputs(pattern: str, width: int, steps: int, outputs: np.ndarray, err: np.ndarray, who: str) -> None:
    """The host's part of the check (tb_check_final in taskbench.h)."""
    if err[0]:
        raise CheckFailed(f"{who} {pattern} width {width}: {err[0]} failed checks; first: step {err[1]} point "
                          f"{err[2]} input {err[3]} wanted ({err[4]}, {err[5]}), found "
                          f"({err[6].astype(np.int64)}, {err[7].astype(np.int64)})")
    for t in range(max(0, steps - 2), steps):
        for p in range(width_at(pattern, width, t)):
            if tuple(outputs[t % 2, p]) != (t, p):
                raise CheckFailed(f"{who} {pattern} width {width}: output of step {t} point {p} is "
                                  f"{tuple(int(x) for x in outputs[t % 2, p])}: a task never ran")


class Simpler:
    """One runtime on sim, with the Task Bench orchestration and kernel."""

    def __init__(self, runtime: str, compiler: simpler.KernelCompiler) -> None:
        task = compiler.compile(HERE / "kernels" / "taskbench.c")
        # Kernel n takes n inputs: a task passes exactly its dependencies.
        kernels = [simpler.CoreCallable(n, "aiv", task, ["in"] * n + ["out", "nodep"], num_scalars=5,
                                        name=f"task{n}") for n in range(MAX_WIDTH + 1)]
        callable_ = simpler.ChipCallable.build(compiler.compile(HERE / "orch" / "taskbench.c"), kernels,
                                               ["inout", "inout"] + ["scalar"] * 4)
        self.name = f"simpler-{'hbg' if runtime == 'host_build_graph' else 'tmr'}"
        self.worker = simpler.ChipWorker("sim", runtime)
        self.cid = self.worker.register(callable_)
        self.config = dict(task_ring_size=4096) if runtime == "tensormap_and_ringbuffer" else {}
        # Untimed, as the peers' programs time their second pass: the
        # chip's threads start and the kernels load here.
        self.time(PATTERNS[0], MAX_WIDTH, 2, 0)

    def time(self, pattern: str, width: int, steps: int, rounds: int) -> float:
        outputs = np.full((2, width, 2), np.iinfo(np.uint64).max, dtype=np.uint64)  # no stamp yet
        err = np.zeros(8, dtype=np.uint64)
        args = [outputs, err, PATTERNS.index(pattern), width, steps, rounds]
        t0 = time.perf_counter()
        self.worker.run(self.cid, args, **self.config)
        wall = time.perf_counter() - t0
        check_outputs(pattern, width, steps, outputs, err, self.name)
        return wall

    def close(self) -> None:
        self.worker.finalize()


def peer_timer(exe: Path):
    def time_it(pattern: str, width: int, steps: int, rounds: int) -> float:
        try:
            return peer_time(exe, pattern, width, steps, rounds)
        except subprocess.CalledProcessError as e:
            raise CheckFailed(f"{exe.name}: {e.stderr.strip() or f'exit {e.returncode}'}") from None
    return time_it


class SerialKernel:
    """Seconds per call of the kernel on one thread, per rounds value: the
    fastest of many ~2 ms samples, which on a loaded machine is the one that
    ran undisturbed."""

    SAMPLES = 25

    def __init__(self, exe: Path) -> None:
        self.exe, self.cache = exe, {}
        self.ns_per_round = peer_time(exe, "serial", 1, self.SAMPLES, 1 << 20) / (1 << 20) * 1e9

    def __call__(self, rounds: int) -> float:
        if rounds not in self.cache:
            calls = max(1, int(2e-3 / (rounds * self.ns_per_round * 1e-9)))
            self.cache[rounds] = peer_time(self.exe, "serial", calls, self.SAMPLES, rounds) / calls
        return self.cache[rounds]


def build_kernel_only() -> Path | None:
    """bench/peers/kernel_only.c, the kernel-only reference (None: no gcc)."""
    out = BIN / "kernel-only-taskbench"
    r = subprocess.run(["gcc", "-O2", "-pthread", "-I", str(HERE / "peers"), str(HERE / "peers" / "kernel_only.c"),
                        "-o", str(out)], capture_output=True, text=True)
    if r.returncode:
        print(f"  kernel-only: not built ({r.stderr.strip() or 'error'})")
        return None
    return out


def sweep(timers: dict, pattern: str, width: int, steps: int, rounds_list: list[int], serial: SerialKernel,
          cores: int, repeats: int, reference=None) -> dict[str, dict]:
    """Every runner down the same kernel sizes, taking turns at each size
    (and each repeat) so that they share what the machine's other load does
    to the figures; a runner drops out after two sizes in a row below 50%
    efficiency (one dip from that load does not end its sweep). The
    reference timer (kernel-only) takes its turns at the first size only;
    its efficiency there is the row's "kernel_only"."""
    tasks = num_tasks(pattern, width, steps)
    rows = {n: {"metg_us": None, "points": []} for n in timers}
    active, misses = list(timers), dict.fromkeys(timers, 0)
    reference_wall = math.inf
    for rounds in rounds_list:
        if not active:
            break
        wall = dict.fromkeys(active, math.inf)
        for _ in range(repeats):
            if reference and rounds == rounds_list[0]:
                reference_wall = min(reference_wall, reference(pattern, width, steps, rounds))
            for n in active:
                wall[n] = min(wall[n], timers[n](pattern, width, steps, rounds))
        for n in list(active):
            efficiency = tasks * serial(rounds) / (wall[n] * cores)
            granularity_us = wall[n] * cores / tasks * 1e6
            rows[n]["points"].append({"rounds": rounds, "granularity_us": granularity_us, "efficiency": efficiency})
            if efficiency >= 0.5:
                misses[n] = 0
                rows[n]["metg_us"] = min(granularity_us, rows[n]["metg_us"] or math.inf)
            else:
                misses[n] += 1
                if misses[n] == 2:
                    active.remove(n)
    for row in rows.values():
        row["efficiency_large"] = row["points"][0]["efficiency"]
    if reference:
        rows["kernel_only"] = tasks * serial(rounds_list[0]) / (reference_wall * cores)
    return rows


def fmt(v: float | None, spec: str) -> str:
    return format(v, spec) if v is not None else "n/a"


def main() -> int:
    def more(ap) -> None:
        ap.add_argument("--pattern", choices=PATTERNS, action="append", help="only these patterns (repeatable)")
        ap.add_argument("--width", type=int, choices=WIDTHS, action="append", help="only these widths")
        ap.add_argument("--large-only", action="store_true", help="only the large tasks: no sweep, no METG")

    opts, cores, repeats = bench_options(__doc__, "taskbench.json", "fewer steps, one repeat", more)
    # Task Bench's 1,000 steps (fewer with --quick) at either width.
    steps = dict.fromkeys(WIDTHS, 250 if opts.quick else 1000)

    print("building peers:")
    peers = build_peers("omp_taskbench.c", "tbb_taskbench.cpp", "-taskbench")
    if "omp-gcc" not in peers:
        print("taskbench: needs omp-gcc for the serial kernel time", file=sys.stderr)
        return 1
    kernel_only = build_kernel_only()
    serial = SerialKernel(peers["omp-gcc"])
    large = max(1, round(LARGE_TASK_S / (serial.ns_per_round * 1e-9)))
    rounds_list = sorted({max(1, int(large / math.sqrt(2) ** k)) for k in range(1 if opts.large_only else 40)},
                         reverse=True)
    compiler = simpler.KernelCompiler()
    runners = [Simpler(r, compiler) for r in ("host_build_graph", "tensormap_and_ringbuffer")]
    timers = {r.name: r.time for r in runners} | {name: peer_timer(exe) for name, exe in peers.items()}
    names = list(timers)
    simpler_names = [n for n in names if n.startswith("simpler")]
    peer_names = [n for n in names if not n.startswith("simpler")]
    load = os.getloadavg()
    results: dict = {"machine": {"cores": cores, "loadavg_before": load}, "steps": steps,
                     "serial_ns_per_round": serial.ns_per_round, "large_task_rounds": large, "patterns": {}}
    t_start = time.perf_counter()
    try:
        for width in opts.width or WIDTHS:
            for pattern in opts.pattern or PATTERNS:
                row = sweep(timers, pattern, width, steps[width], rounds_list, serial, cores, repeats,
                            peer_timer(kernel_only) if kernel_only else None)
                results["patterns"][f"{pattern} w{width}"] = row
                print(f"  {pattern:<11} width {width}: " + ", ".join(f"{n} {fmt(row[n]['metg_us'], '.2f')}"
                                                                     for n in names), flush=True)
    except CheckFailed as e:
        print(f"\ntaskbench: FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        for r in runners:
            r.close()

    def ratio(row: dict, key: str, best) -> float | None:
        mine = [row[n][key] for n in simpler_names if row[n][key] is not None]
        theirs = [row[n][key] for n in peer_names if row[n][key] is not None]
        return best(mine) / best(theirs) if mine and theirs else None

    head = f"{'pattern':<17}" + "".join(f"{n:>13}" for n in names) + f"{'ratio':>8}"
    print(f"\nMETG(50%), us (lower is better), {cores} cores, {steps[WIDTHS[0]]} steps;"
          " ratio = best simpler / best peer")
    print(head)
    for key, row in results["patterns"].items():
        r = ratio(row, "metg_us", min)
        row["metg_ratio"] = r
        print(f"{key:<17}" + "".join(f"{fmt(row[n]['metg_us'], '.2f'):>13}" for n in names) + f"{fmt(r, '.2f'):>8}")
    print(f"\nefficiency at large tasks ({large} rounds, {serial(large) * 1e6:.0f} us serial; higher is better);"
          f" ratio = best simpler / best peer")
    print(head)
    for key, row in results["patterns"].items():
        r = ratio(row, "efficiency_large", max)
        row["efficiency_large_ratio"] = r
        print(f"{key:<17}" + "".join(f"{row[n]['efficiency_large']:>13.3f}" for n in names) + f"{fmt(r, '.2f'):>8}")
    if kernel_only:
        print("\nefficiency at large tasks as a ratio to the kernel-only run's (same kernels, one thread per CPU,"
              " no runtime; target >= 0.95)")
        print(f"{'pattern':<17}{'kernel-only':>13}" + "".join(f"{n:>13}" for n in simpler_names))
        for key, row in results["patterns"].items():
            ko = row["kernel_only"]
            row["kernel_only_ratio"] = {n: row[n]["efficiency_large"] / ko for n in simpler_names}
            print(f"{key:<17}{ko:>13.3f}" + "".join(f"{row['kernel_only_ratio'][n]:>13.3f}" for n in simpler_names))
    results["machine"]["loadavg_after"] = os.getloadavg()
    results["seconds"] = time.perf_counter() - t_start
    print(f"\n{results['seconds']:.0f} s; load average before {load[0]:.2f}, after "
          f"{results['machine']['loadavg_after'][0]:.2f}")
    Path(opts.json).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.json).write_text(json.dumps(results, indent=1))
    print(f"wrote {opts.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
