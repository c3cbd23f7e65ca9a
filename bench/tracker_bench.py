"""The dependency tracker alone, on a Task Bench stencil_1d's accesses
(bench/tracker/stencil.c: per task up to three reads and one write of
3-D views of the outputs, as bench/orch/taskbench.c makes them, each
region made and looked up as a host orchestration's submit does): ns per
task, fastest of many runs. With --against REV, the tracker's sources at
that git revision are built and run in turn with
this tree's, and the ratio printed. No pass/fail.

    python bench/tracker_bench.py [--against REV] [--steps N] [--repeats N]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "simpler"))
import _cflags  # noqa: E402  (the one list of compiler flags, loaded without the extension)

SOURCES = ["csrc/runtime/dependency_tracker/tracker.c", "csrc/runtime/dependency_tracker/region.c",
           "csrc/common/addr_map.c", "csrc/common/array.c", "csrc/common/error.c"]


class CannotBuild(Exception):
    """A tree (a revision's, usually) the bench program does not build against."""


def build(tree: Path, out: Path) -> Path:
    """The bench program over the tracker sources and headers under tree
    (this checkout, or a revision's copy): its own headers only, so that
    an old revision is not measured with today's."""
    missing = [s for s in SOURCES if not (tree / s).exists()]
    if missing:
        raise CannotBuild(f"it has no {', '.join(missing)} (the tracker's sources as this bench knows them)")
    includes = [f"-I{tree / d}" for d in _cflags.INCLUDE_DIRS]
    cmd = ["gcc", *_cflags.HOST, *includes, str(ROOT / "bench" / "tracker" / "stencil.c"),
           *(str(tree / s) for s in SOURCES), "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise CannotBuild("the bench program does not compile against it (it needs dep_tracker_reset, and a "
                          f"tracker API like this tree's):\n{r.stderr.strip()}")
    return out


def checkout(rev: str, into: Path) -> Path:
    """The tree's csrc/ as at rev."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "csrc"], capture_output=True)
    if archive.returncode:
        raise CannotBuild(archive.stderr.decode(errors="replace").strip() or "git archive failed")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def run(exe: Path, width: int, steps: int, repeats: int) -> tuple[float, int]:
    ns, edges = subprocess.run([str(exe), str(width), str(steps), str(repeats)], capture_output=True, text=True,
                               check=True).stdout.split()
    return float(ns), int(edges)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", metavar="REV", help="also build the tracker as at this git revision")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=10,
                    help="turns each build takes, alternating (the machine's speed drifts between turns)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        try:
            builds = {"this tree": build(ROOT, tmp / "tracker-this")}
            if a.against:
                builds[a.against] = build(checkout(a.against, tmp / "rev"), tmp / "tracker-rev")
        except CannotBuild as e:
            print(f"tracker_bench: {a.against or 'this tree'}: {e}", file=sys.stderr)
            return 2
        print(f"dependency tracker, Task Bench stencil_1d accesses, {a.steps} steps; ns per task "
              f"(fastest of {a.rounds} x {a.repeats} runs)")
        print(f"{'width':<8}" + "".join(f"{name:>14}" for name in builds) + ("       ratio" if a.against else ""))
        for width in (2, 8):
            best: dict[str, float] = {}
            edges: dict[str, int] = {}
            for _ in range(a.rounds):
                for name, exe in builds.items():
                    ns, edges[name] = run(exe, width, a.steps, a.repeats)
                    best[name] = min(best.get(name, ns), ns)
            if len(set(edges.values())) != 1:
                # a tracker may name one producer more than once, so this
                # is a difference to look into, not proof of a missed edge
                print(f"  width {width}: the builds reported different numbers of edges: {edges}")
                return 1
            row = f"{width:<8}" + "".join(f"{best[name]:>14.1f}" for name in builds)
            if a.against:
                row += f"{best['this tree'] / best[a.against]:>12.2f}"
            print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
