"""Where a Task Bench graph's tasks ran, and what the cores waited for:
one traced run of ~100 us tasks (unless told) on one runtime. No pass/fail.

    python bench/placement_trace.py [--runtime R] [--pattern P] [--width W] [--steps N] [--rounds N]

Prints the wall time per task (two cores: 50 us a task is the floor for
100 us tasks), each core's task count and busy time, and the cores' idle
time split in two, from the trace's blocks and edges: waiting for a
producer still running elsewhere ("dependency wait": the placement's
cost), and starting late once every producer and the core's previous
task were done ("latency": the scheduler's and the wake-ups' cost).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import simpler

sys.path.insert(0, str(Path(__file__).parent))
from taskbench import PATTERNS, Simpler  # noqa: E402
from thread_cpu import rounds_of_100us  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", choices=["host_build_graph", "tensormap_and_ringbuffer"],
                    default="host_build_graph")
    ap.add_argument("--pattern", choices=PATTERNS, default="stencil_1d")
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=0, help="kernel rounds (default: ~100 us)")
    a = ap.parse_args()
    a.rounds = a.rounds or rounds_of_100us()
    runner = Simpler(a.runtime, simpler.KernelCompiler())
    try:
        runner.time(a.pattern, a.width, a.steps, a.rounds)  # warm
        outputs = np.full((2, a.width, 2), np.iinfo(np.uint64).max, dtype=np.uint64)
        err = np.zeros(8, dtype=np.uint64)
        runner.worker.run(runner.cid, [outputs, err, PATTERNS.index(a.pattern), a.width, a.steps, a.rounds],
                          trace=True, **runner.config)
        trace = runner.worker.last_trace
    finally:
        runner.close()
    b = trace.blocks
    b = b[np.argsort(b["task"])]
    index = {int(t): k for k, t in enumerate(b["task"])}
    start, end, core = b["start_ns"].astype(np.int64), b["end_ns"].astype(np.int64), b["where"]
    producers: dict[int, list[int]] = {k: [] for k in range(len(b))}
    for e in trace.edges:
        p, c = index.get(int(e["producer"])), index.get(int(e["consumer"]))
        if p is not None and c is not None:
            producers[c].append(p)
    prev_end: dict[int, int] = {}
    dep_wait = latency = 0
    for k in np.argsort(start):
        c = int(core[k])
        free = prev_end.get(c, int(start[k]))
        ready = max((int(end[p]) for p in producers[k]), default=0)
        dep_wait += max(0, ready - free)
        latency += int(start[k]) - max(free, ready)
        prev_end[c] = int(end[k])
    wall = int(end.max() - start.min())
    print(f"{a.runtime} {a.pattern} w{a.width}, {len(b)} tasks of {a.rounds} rounds: "
          f"{wall / len(b) / 1e3:.1f} us a task")
    for c in np.unique(core):
        on = core == c
        print(f"  core {int(c)}: {int(on.sum())} tasks, busy {(end - start)[on].sum() / 1e6:.1f} ms")
    print(f"  idle: dependency wait {dep_wait / 1e6:.1f} ms, latency {latency / 1e6:.1f} ms "
          f"(wall {wall / 1e6:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
