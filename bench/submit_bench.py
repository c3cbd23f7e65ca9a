"""Submit benchmarks: what queueing runs buys over run(), on both runtimes
and both platforms, measured in one sitting. Back-to-back one-task runs
per second through run(), through submit() with the queue kept full, and
(once ChipWorker.record exists) through a recorded graph's submit() and
run(); the latency of one submit() call returning, for an empty graph and
a one-task graph, with the queue not full; and the per-task cost of a
1,000-task chain and of 1,000 independent tasks through run() and through
a recorded graph's run(). Ratios are taken against run() measured in the
same worker. Replay columns print n/a while ChipWorker has no record().
Prints a table and writes JSON; no pass/fail.

    python bench/submit_bench.py [--quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import simpler
from platform_bench import best_of, empty_graph   # bench/ is on sys.path when run as a script

HERE = Path(__file__).parent
RUNTIMES = ("host_build_graph", "tensormap_and_ringbuffer")
PLATFORMS = ("sim", "onboard")
# bench/orch/graph.c: scalar[0] = pattern, scalar[1] = tasks.
EMPTY, ONE_TASK = [0, 0], [1, 1]
GRAPHS = {"chain": [2, 1000], "independent": [1, 1000]}
HAS_RECORD = hasattr(simpler.ChipWorker, "record")
graph = empty_graph   # the bench graph: its scalars say which shape and how many tasks


def run_rate(run, n: int) -> float:
    """Runs per second of n back-to-back run() calls."""
    t0 = time.perf_counter()
    for _ in range(n):
        run()
    return n / (time.perf_counter() - t0)


def submit_rate(w: simpler.ChipWorker, submit, n: int) -> float:
    """Runs per second of n submit() calls (each waits while the queue is
    full, so it stays full) and the wait() for them. The handles are
    checked after the clock stops."""
    t0 = time.perf_counter()
    handles = [submit() for _ in range(n)]
    w.wait()
    dt = time.perf_counter() - t0
    for h in handles:
        h.result()
    return n / dt


def submit_latency(w: simpler.ChipWorker, cid, args, n: int) -> dict[str, float]:
    """Wall microseconds of n submit() calls returning, with the queue not
    full: "running" waits on the handles every max_inflight submits, so
    the queue's thread stays up; "after_wait" times only the first submit
    after w.wait(), which (a drained worker holding no thread) starts the
    queue's thread. Waiting is outside the timed part."""
    w.wait()
    running, handles = [], [w.submit(cid, args)]   # warm, and start the thread
    for _ in range(n):
        if len(handles) >= w.max_inflight:
            for h in handles:
                h.result()
            handles = []
        t0 = time.perf_counter()
        h = w.submit(cid, args)
        running.append(time.perf_counter() - t0)
        handles.append(h)
    after_wait = []
    for _ in range(max(1, n // 4)):
        w.wait()
        t0 = time.perf_counter()
        handles.append(w.submit(cid, args))
        after_wait.append(time.perf_counter() - t0)
    w.wait()
    for h in handles:
        h.result()
    return {"median": statistics.median(running) * 1e6, "min": min(running) * 1e6,
            "after_wait_median": statistics.median(after_wait) * 1e6, "after_wait_min": min(after_wait) * 1e6}


def throughput(w: simpler.ChipWorker, cid, n: int, rounds: int) -> dict[str, list[float]]:
    """Runs per second of one-task runs in each mode, the modes interleaved
    round by round."""
    modes = {"run": lambda: w.run(cid, ONE_TASK), "submit": lambda: w.submit(cid, ONE_TASK)}
    g = w.record(cid, ONE_TASK) if HAS_RECORD else None
    try:
        if g is not None:
            modes["replay_submit"] = lambda: g.submit(ONE_TASK)
            modes["replay_run"] = lambda: g.run(ONE_TASK)
        for mode, fn in modes.items():      # warm
            for _ in range(10):
                fn()
            w.wait()
        rates: dict[str, list[float]] = {m: [] for m in modes}
        for _ in range(rounds):
            for mode, fn in modes.items():
                rates[mode].append(submit_rate(w, fn, n) if mode.endswith("submit") else run_rate(fn, n))
        return rates
    finally:
        if g is not None:
            w.wait()
            g.release()


def per_task(w: simpler.ChipWorker, cid, args, repeats: int) -> dict[str, Any]:
    """(median, min) ns per task of one run() of a 1,000-task graph, and of a recorded graph's run()."""
    tasks = args[1]
    out: dict[str, Any] = {"run": None, "replay": None}
    m, lo = best_of(lambda: w.run(cid, args), repeats)
    out["run"] = (m / tasks * 1e9, lo / tasks * 1e9)
    # The part of a run a replay leaves out: the orchestration, by the device's own count.
    out["orchestration"] = w.stats["last_run_orchestration_ns"] / tasks
    if HAS_RECORD:
        g = w.record(cid, args)
        try:
            m, lo = best_of(lambda: g.run(args), repeats)
            out["replay"] = (m / tasks * 1e9, lo / tasks * 1e9)
        finally:
            w.wait()
            g.release()
    return out


def fmt(value: float | None, spec: str, width: int) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:>{width}{spec}}"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs and repeats")
    ap.add_argument("--json", default=str(HERE / "results" / "submit_bench.json"))
    opts = ap.parse_args()
    n = 300 if opts.quick else 2000
    rounds = 3 if opts.quick else 5
    repeats = 20 if opts.quick else 100
    kc = simpler.KernelCompiler()
    callable_ = graph(kc)

    results = []
    for runtime in RUNTIMES:
        for plat in PLATFORMS:
            with simpler.ChipWorker(plat, runtime) as w:
                cid = w.register(callable_)
                rates = throughput(w, cid, n, rounds)
                latency = {"empty": submit_latency(w, cid, EMPTY, n),
                           "one_task": submit_latency(w, cid, ONE_TASK, n)}
                graphs = {name: per_task(w, cid, args, repeats) for name, args in GRAPHS.items()}
                results.append({"runtime": runtime, "platform": plat, "max_inflight": w.max_inflight,
                                "rates": rates, "latency": latency, "graphs": graphs})

    wr = max(len(r) for r in RUNTIMES)
    print(f"simpler submit bench ({os.cpu_count()} cores, {platform.machine()}; "
          f"record: {'yes' if HAS_RECORD else 'no, replay columns n/a'}; "
          f"max_inflight {', '.join(sorted({str(r['max_inflight']) for r in results}))})")
    print()
    print(f"Back-to-back one-task runs (runs/s, best of {rounds} rounds of {n}; x = against run())")
    print(f"{'runtime':<{wr}}  {'platform':<8}  {'run()':>9}  {'submit()':>9}  {'x':>5}  "
          f"{'g.submit()':>10}  {'x':>5}  {'g.run()':>9}  {'x':>5}")
    rows = []
    for r in results:
        best = {m: max(v) for m, v in r["rates"].items()}
        run, sub = best["run"], best["submit"]
        rsub, rrun = best.get("replay_submit"), best.get("replay_run")
        print(f"{r['runtime']:<{wr}}  {r['platform']:<8}  {run:>9.0f}  {sub:>9.0f}  {sub / run:>5.2f}  "
              f"{fmt(rsub, '.0f', 10)}  {fmt(ratio(rsub, run), '.2f', 5)}  "
              f"{fmt(rrun, '.0f', 9)}  {fmt(ratio(rrun, run), '.2f', 5)}")
        rows.append({"figure": "one-task runs", "runtime": r["runtime"], "platform": r["platform"],
                     "unit": "runs/s", "runs": n, "rounds": r["rates"], "best": best,
                     "submit/run": sub / run, "replay_submit/run": ratio(rsub, run),
                     "replay_run/run": ratio(rrun, run)})

    print()
    print(f"One submit() call returning (us over {n} calls, queue not full; "
          f"after wait(): the first submit of a drained worker)")
    print(f"{'runtime':<{wr}}  {'platform':<8}  {'empty med':>9}  {'min':>6}  {'1-task med':>10}  {'min':>6}  "
          f"{'after wait(): empty':>19}  {'1-task':>6}")
    for r in results:
        e, o = r["latency"]["empty"], r["latency"]["one_task"]
        print(f"{r['runtime']:<{wr}}  {r['platform']:<8}  {e['median']:>9.1f}  {e['min']:>6.1f}  "
              f"{o['median']:>10.1f}  {o['min']:>6.1f}  {e['after_wait_median']:>19.1f}  "
              f"{o['after_wait_median']:>6.1f}")
        for what, lat in r["latency"].items():
            rows.append({"figure": f"submit() latency, {what} graph", "runtime": r["runtime"],
                         "platform": r["platform"], "unit": "us", "calls": n, **lat})

    print()
    print(f"1,000-task graphs of no-op tasks (ns/task = wall time of one run / 1000, over {repeats} runs; "
          f"x = replay median / run() median; orch/task: the run's orchestration, which a replay skips)")
    print(f"{'runtime':<{wr}}  {'platform':<8}  {'graph':<11}  {'run() med':>9}  {'min':>6}  "
          f"{'g.run() med':>11}  {'min':>6}  {'x':>5}  {'orch/task':>9}")
    for r in results:
        for name, fig in r["graphs"].items():
            (rm, rlo), rep = fig["run"], fig["replay"]
            pm, plo = rep if rep is not None else (None, None)
            print(f"{r['runtime']:<{wr}}  {r['platform']:<8}  {name:<11}  {rm:>9.1f}  {rlo:>6.1f}  "
                  f"{fmt(pm, '.1f', 11)}  {fmt(plo, '.1f', 6)}  {fmt(ratio(pm, rm), '.2f', 5)}  "
                  f"{fig['orchestration']:>9.1f}")
            rows.append({"figure": f"{name}, 1,000 tasks, per task", "runtime": r["runtime"],
                         "platform": r["platform"], "unit": "ns/task", "repeats": repeats,
                         "run": {"median": rm, "min": rlo},
                         "replay": None if rep is None else {"median": pm, "min": plo},
                         "replay/run": ratio(pm, rm), "orchestration_ns_per_task": fig["orchestration"]})

    Path(opts.json).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.json).write_text(json.dumps({"machine": platform.machine(), "cores": os.cpu_count(),
                                           "record": HAS_RECORD, "rows": rows}, indent=2))
    print(f"wrote {opts.json}")


if __name__ == "__main__":
    main()
