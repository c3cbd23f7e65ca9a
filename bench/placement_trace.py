"""Where a Task Bench graph's tasks ran, and what the cores waited for:
one traced run of ~100 us tasks (unless told) on one runtime. No pass/fail.

    python bench/placement_trace.py [--runtime R] [--pattern P] [--width W] [--steps N] [--rounds N]

Prints the wall time per task (two cores: 50 us a task is the floor for
100 us tasks), each core's task count and busy time, and the cores' idle
time split in two, from the trace's blocks and edges: waiting for a
producer still running elsewhere ("dependency wait": the placement's
cost), and starting late once every producer and the core's previous
task were done ("latency": the scheduler's and the wake-ups' cost); the
late starts by size (many short ones: a cost every task pays; a few long
ones: a thread waiting for a CPU) and how much of the latency began while
an AICPU thread slept (the trace's sleep events).
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
from simpler.trace import KINDS  # noqa: E402

SLEEP = next(code for code, name in KINDS.items() if name == "sleep")  # an AICPU thread asleep


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
    sleeps = trace.events[trace.events["kind"] == SLEEP]
    sleep_start, sleep_end = sleeps["start_ns"].astype(np.int64), sleeps["end_ns"].astype(np.int64)
    prev_end: dict[int, int] = {}
    dep_wait = late_asleep = 0
    late: list[int] = []
    for k in np.argsort(start):
        c = int(core[k])
        free = prev_end.get(c, int(start[k]))
        ready = max((int(end[p]) for p in producers[k]), default=0)
        due = max(free, ready)
        dep_wait += max(0, ready - free)
        late.append(int(start[k]) - due)
        if ((sleep_start <= due) & (sleep_end > due)).any():
            late_asleep += late[-1]
        prev_end[c] = int(end[k])
    latency = sum(late)
    wall = int(end.max() - start.min())
    print(f"{a.runtime} {a.pattern} w{a.width}, {len(b)} tasks of {a.rounds} rounds: "
          f"{wall / len(b) / 1e3:.1f} us a task")
    for c in np.unique(core):
        on = core == c
        print(f"  core {int(c)}: {int(on.sum())} tasks, busy {(end - start)[on].sum() / 1e6:.1f} ms")
    print(f"  idle: dependency wait {dep_wait / 1e6:.1f} ms, latency {latency / 1e6:.1f} ms "
          f"(wall {wall / 1e6:.1f} ms)")
    # Many short late starts are the scheduler's cost a task; a few long
    # ones are a thread that lost its CPU for a timeslice.
    late_ns = np.array(late)
    edges = [0, 2_000, 10_000, 50_000, 200_000, 1_000_000, np.inf]
    bins = []
    for lo, hi in zip(edges, edges[1:]):
        inside = late_ns[(late_ns >= lo) & (late_ns < hi)]
        label = f"{lo / 1e3:g}-{hi / 1e3:g} us" if hi < np.inf else f">= {lo / 1e3:g} us"
        bins.append(f"{label}: {len(inside)} ({inside.sum() / 1e6:.1f} ms)")
    print("  late starts by size:", ", ".join(bins))
    print(f"  of the latency, {late_asleep / 1e6:.1f} ms began while an AICPU thread slept "
          f"({len(sleeps)} sleeps, {(sleep_end - sleep_start).sum() / 1e6:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
