"""The hot path's targets (issue 17), from the JSON the benches of this run
wrote (bench/results/): each target's figure, the best peer's in the same
run, the ratio best simpler / best peer, and whether the figure meets the
target. Figures, not a pass/fail: the exit status is 0 either way (1 only
when a bench's JSON is missing). `bash bench/run` prints it last.

    python bench/targets.py [--results DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
SIMPLER = ("simpler-hbg", "simpler-tmr")
PEERS = ("omp-gcc", "omp-llvm", "tbb")
RUNTIME_SHORT = {"host_build_graph": "hbg", "tensormap_and_ringbuffer": "tmr"}


def _load(results: Path, name: str):
    path = results / f"{name}.json"
    if not path.exists():
        print(f"targets: no {path} (run bench/{name}.py first)", file=sys.stderr)
        return None
    return json.loads(path.read_text())


def _best(row: dict, names, best=min):
    values = [row[n] for n in names if row.get(n) is not None]
    return best(values) if values else None


def _fmt(x, spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x, spec)


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str, str]] = []

    def add(self, target: str, goal: str, mine, peer, ratio, met: bool | None, spec: str = ".2f") -> None:
        verdict = "n/a" if met is None else "met" if met else "missed"
        self.rows.append((target, goal, _fmt(mine, spec), _fmt(peer, spec), _fmt(ratio), verdict))

    def print(self) -> None:
        head = ("target", "goal", "simpler", "best peer", "ratio", "")
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(6)]
        for r in [head, *self.rows]:
            print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(HERE / "results"))
    results = Path(ap.parse_args().results)
    peers, taskbench, runtime = (_load(results, n) for n in ("peers_bench", "taskbench", "runtime_bench"))
    if peers is None or taskbench is None or runtime is None:
        return 1
    t = Table()
    ratio = lambda a, b: a / b if a is not None and b else None     # noqa: E731

    # METG(50%) of the peers bench's stencil (explicit tags, no validation)
    mine, theirs = _best(peers["metg_us"], SIMPLER), _best(peers["metg_us"], PEERS)
    t.add("METG(50%), bench stencil_1d, us", "<= 1.0", mine, theirs, ratio(mine, theirs),
          mine is not None and mine <= 1.0)
    # Task-Bench-style (validated, double-buffered) stencil_1d, width 2
    row = taskbench["patterns"].get("stencil_1d w2")
    if row is not None:
        m = {n: row[n]["metg_us"] for n in (*SIMPLER, *PEERS) if n in row}
        mine, theirs = _best(m, SIMPLER), _best(m, PEERS)
        t.add("METG(50%), Task Bench stencil_1d w2, us", "<= 4", mine, theirs, ratio(mine, theirs),
              mine is not None and mine <= 4.0)
    # ahead of every peer on every Task Bench pattern
    ahead = [k for k, r in taskbench["patterns"].items() if r.get("metg_ratio") is not None and r["metg_ratio"] < 1]
    known = [k for k, r in taskbench["patterns"].items() if r.get("metg_ratio") is not None]
    print(f"Task Bench patterns where simpler's METG is ahead of every peer: {len(ahead)} of {len(known)} "
          f"measured ({len(taskbench['patterns'])} run): {', '.join(ahead) or 'none'}")
    # independent tasks, per task
    for n in (100_000, 1_000_000):
        row = peers["per_task_ns"].get(f"independent {n}")
        if row is not None:
            mine, theirs = _best(row, SIMPLER), _best(row, PEERS)
            t.add(f"independent {n:.0e}, ns/task", "<= best peer", mine, theirs, ratio(mine, theirs),
                  mine is not None and theirs is not None and mine <= theirs, ".0f")
    # chain, per task, at the largest size the peers bench ran
    chains = sorted((int(k.split()[1]), v) for k, v in peers["per_task_ns"].items() if k.startswith("chain "))
    if chains:
        n, row = chains[-1]
        for name, goal in (("simpler-hbg", 100), ("simpler-tmr", 150)):
            theirs = _best(row, PEERS)
            t.add(f"chain {n:.0e} ({name[-3:]}), ns/task", f"<= {goal}", row.get(name), theirs,
                  ratio(row.get(name), theirs), row.get(name) is not None and row[name] <= goal, ".0f")
    # per-task cost flat from 1e3 to 1e6: largest / smallest over the sizes run
    by_pattern: dict[tuple[str, str], dict[int, float]] = {}
    for key, row in peers["per_task_ns"].items():
        pattern, n = key.split()
        for name in SIMPLER:
            if row.get(name) is not None:
                by_pattern.setdefault((pattern, name[-3:]), {})[int(n)] = row[name]
    for e in runtime:
        if e["what"] == "row updates on one buffer (tracked deps), per task":
            by_pattern.setdefault(("row updates", RUNTIME_SHORT[e["runtime"]]), {})[e["tasks"]] = e["value"]
    for (pattern, rt), sizes in sorted(by_pattern.items()):
        if len(sizes) > 1:
            spread = max(sizes.values()) / min(sizes.values())
            lo, hi = min(sizes), max(sizes)
            t.add(f"{pattern} ({rt}), {sizes[lo]:.0f} ns at {lo:.0e} -> {sizes[hi]:.0f} at {hi:.0e}, max/min",
                  "<= 1.5", spread, None, None, spread <= 1.5)
    # what the flatness rows' 1e3 figures carry: a run's fixed cost
    one = peers.get("one_task_us", {})
    shares = []
    for (pattern, rt), sizes in sorted(by_pattern.items()):
        fixed = one.get(f"simpler-{rt}")
        if fixed is not None and 1000 in sizes and pattern != "row updates":
            shares.append(f"{pattern} ({rt}) {fixed * 1e3 / (1000 * sizes[1000]):.0%}")
    if shares:
        print("a run's fixed cost (one empty task: " +
              ", ".join(f"{n} {one[n]:.1f} us" for n in SIMPLER if n in one) +
              ") as a share of the 1e3 run: " + ", ".join(shares))
    # efficiency at ~100 us tasks against the kernel-only run
    for name in SIMPLER:
        ratios = {k: r["kernel_only_ratio"][name] for k, r in taskbench["patterns"].items()
                  if "kernel_only_ratio" in r}
        if ratios:
            worst = min(ratios, key=ratios.get)
            t.add(f"efficiency at ~100 us / kernel-only ({name[-3:]}), worst: {worst}", ">= 0.95",
                  ratios[worst], None, None, ratios[worst] >= 0.95, ".3f")
    print(f"\nissue 17's targets, this run ({results}); ratio = best simpler / best peer")
    t.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
