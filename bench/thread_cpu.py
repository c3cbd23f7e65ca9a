"""Where CPU goes while the cores run long kernels: CPU time, timeslices
and context switches of every thread of this process during runs of a
Task Bench graph (stencil_1d, width 2, unless told) of ~100 us tasks, per runtime. Figures a
loaded machine cannot fake: a thread's CPU time (schedstat's on-CPU ns)
counts only what it ran, whoever else shares the CPUs. No pass/fail.

    python bench/thread_cpu.py [--rounds N] [--steps N] [--runs N]

Rows: the core threads (simpler-coreN: the kernels), the scheduler and
orchestrator threads (simpler-aicpuN), host_build_graph's host
orchestration thread (simpler-orch), the host thread in run() (python)
and everything else; columns: CPU ms per second of wall
time, CPU us per task, timeslices (times scheduled in) and voluntary /
involuntary context switches per task.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import simpler

sys.path.insert(0, str(Path(__file__).parent))
from taskbench import PATTERNS, Simpler, num_tasks  # noqa: E402


def thread_counters() -> dict[int, dict]:
    """Per thread of this process: name, on-CPU ns, timeslices and context
    switches (voluntary, involuntary)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        base = f"/proc/self/task/{tid}"
        try:
            name = Path(f"{base}/comm").read_text().strip()
            cpu_ns, _, slices = (int(x) for x in Path(f"{base}/schedstat").read_text().split())
            status = dict(line.split(":", 1) for line in Path(f"{base}/status").read_text().splitlines())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue  # a thread that ended while read
        out[int(tid)] = {"name": name, "cpu_ns": cpu_ns, "slices": slices,
                         "vol": int(status["voluntary_ctxt_switches"]),
                         "invol": int(status["nonvoluntary_ctxt_switches"])}
    return out


def role(name: str) -> str:
    if name.startswith("simpler-core"):
        return "cores (kernels)"
    if name.startswith("simpler-aicpu"):
        return "AICPU (scheduler, orchestrator)"
    if name == "simpler-orch":
        return "host orchestration (hbg)"
    if name.startswith("python"):
        return "host (python, run())"
    return "other"


def measure(runner: Simpler, pattern: str, width: int, steps: int, rounds: int, runs: int) \
        -> tuple[dict, float, int]:
    runner.time(pattern, width, steps, rounds)  # warm: threads started, caches filled
    before = thread_counters()
    t0 = time.perf_counter()
    for _ in range(runs):
        runner.time(pattern, width, steps, rounds)
    wall = time.perf_counter() - t0
    after = thread_counters()
    per_thread = {}
    for tid, a in after.items():
        b = before.get(tid, {"cpu_ns": 0, "slices": 0, "vol": 0, "invol": 0})
        per_thread[tid] = {"name": a["name"]} | {k: a[k] - b[k] for k in ("cpu_ns", "slices", "vol", "invol")}
    return per_thread, wall, runs * num_tasks(pattern, width, steps)


def rounds_of_100us() -> int:
    """Kernel rounds that take ~100 us: the kernel's own loop, timed here
    on one thread."""
    from peers_bench import BIN, build_peers, peer_time
    exe = BIN / "omp-gcc-taskbench"
    if not exe.exists():
        exe = build_peers("omp_taskbench.c", "tbb_taskbench.cpp", "-taskbench")["omp-gcc"]
    ns_per_round = peer_time(exe, "serial", 1, 25, 1 << 20) / (1 << 20) * 1e9
    return max(1, round(100e3 / ns_per_round))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=0, help="kernel rounds (default: ~100 us)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--pattern", choices=PATTERNS, default="stencil_1d")
    ap.add_argument("--width", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", action="store_true", help="a row per thread, not per role")
    ap.add_argument("--runtime", choices=("host_build_graph", "tensormap_and_ringbuffer"), action="append")
    opts = ap.parse_args()
    compiler = simpler.KernelCompiler()
    rounds = opts.rounds or rounds_of_100us()
    for runtime in opts.runtime or ("host_build_graph", "tensormap_and_ringbuffer"):
        runner = Simpler(runtime, compiler)
        try:
            per_thread, wall, tasks = measure(runner, opts.pattern, opts.width, opts.steps, rounds, opts.runs)
        finally:
            runner.close()
        groups: dict[str, dict] = {}
        for t in per_thread.values():
            g = groups.setdefault(f"{t['name']}" if opts.threads else role(t["name"]), {"cpu_ns": 0, "slices": 0, "vol": 0, "invol": 0, "threads": 0})
            for k in ("cpu_ns", "slices", "vol", "invol"):
                g[k] += t[k]
            g["threads"] += t["cpu_ns"] > 0
        print(f"{runner.name}: {tasks} tasks of {rounds} rounds in {wall:.3f} s ({wall / tasks * 2e6:.1f} us "
              f"granularity on 2 cores), {opts.pattern} width {opts.width}")
        print(f"  {'threads':<32}{'CPU ms/s':>10}{'CPU us/task':>13}{'slices/task':>13}{'vol/task':>10}"
              f"{'invol/task':>12}")
        for name in sorted(groups):
            g = groups[name]
            print(f"  {name + ('' if opts.threads else ' x' + str(g['threads'])):<32}{g['cpu_ns'] / wall / 1e6:>10.1f}"
                  f"{g['cpu_ns'] / tasks / 1e3:>13.2f}{g['slices'] / tasks:>13.3f}{g['vol'] / tasks:>10.3f}"
                  f"{g['invol'] / tasks:>12.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
