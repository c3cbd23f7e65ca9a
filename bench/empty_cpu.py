"""Where CPU goes on graphs of empty tasks: CPU time (schedstat's on-CPU
ns), timeslices and voluntary / involuntary context switches of every
thread of this process, per task, over runs of one of runtime_bench's
patterns. Figures another process's load cannot add to. No pass/fail.

    python bench/empty_cpu.py [--runtime R] [--pattern independent|chain|fan] [--tasks N] [--runs K]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import simpler

sys.path.insert(0, str(Path(__file__).parent))
from runtime_bench import PATTERNS, build  # noqa: E402
from thread_cpu import thread_counters  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", default="host_build_graph", choices=("host_build_graph", "tensormap_and_ringbuffer"))
    ap.add_argument("--pattern", default="independent", choices=sorted(PATTERNS.keys() - {"empty"}))
    ap.add_argument("--tasks", type=float, default=1e6)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--platform", default="sim")
    opts = ap.parse_args()
    n = int(opts.tasks)
    with simpler.ChipWorker(opts.platform, opts.runtime) as w:
        cid = w.register(build(simpler.KernelCompiler()))
        args = [PATTERNS[opts.pattern], n]
        w.run(cid, args)   # warm: threads, pages
        print(f"{opts.runtime}, {opts.pattern}, {n} empty tasks on {opts.platform}: per task")
        for _ in range(opts.runs):
            before = thread_counters()
            t0 = time.perf_counter()
            w.run(cid, args)
            wall = time.perf_counter() - t0
            after = thread_counters()
            rows: dict[str, list[int]] = {}
            for tid, v in after.items():
                u = before.get(tid)
                if u:
                    r = rows.setdefault(v["name"], [0, 0, 0, 0])
                    for i, k in enumerate(("cpu_ns", "slices", "vol", "invol")):
                        r[i] += v[k] - u[k]
            print(f"  wall {wall / n * 1e9:7.0f} ns")
            for name, (cpu, slices, vol, invol) in sorted(rows.items()):
                if cpu > n:     # more than 1 ns a task
                    print(f"  {name:16s} cpu {cpu / n:6.0f} ns  timeslices {slices:7d}  switches "
                          f"voluntary {vol:7d} involuntary {invol:7d}")


if __name__ == "__main__":
    main()
