"""A Worker across MPI ranks (simpler/mpi.py), as a user launches it: small
programs under mpiexec -n 2 and -n 4 on this host (tests/unit/mpi_programs/),
each bounded in time. Skipped, with the reason, where mpi4py or mpiexec is
missing (pip install -e '.[test]' brings both)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = Path(__file__).resolve().parent / "mpi_programs"

try:
    import mpi4py  # noqa: F401  (only whether it is installed: MPI itself starts in the children)
    MPIEXEC = shutil.which("mpiexec")
    WHY = None if MPIEXEC else "mpiexec is not on PATH (pip install 'simpler[mpi]')"
except ImportError:
    MPIEXEC, WHY = None, "mpi4py is not installed (pip install 'simpler[mpi]')"

pytestmark = pytest.mark.skipif(WHY is not None, reason=WHY or "")


def mpiexec(n: int, *args: str, options: tuple[str, ...] = (), env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    path = os.environ.get("PYTHONPATH")
    full_env = dict(os.environ, PYTHONPATH=str(ROOT) + (os.pathsep + path if path else ""), **(env or {}))
    return subprocess.run([MPIEXEC, *options, "-n", str(n), sys.executable, *args], env=full_env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("ranks", [2, 4])
def test_collectives_across_ranks_equal_numpy_and_are_bit_identical(ranks):
    proc = mpiexec(ranks, str(PROGRAMS / "collectives.py"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # findall, not lines: mpiexec may interleave two ranks' lines
    assert sorted(re.findall(r"OK rank (\d+)", proc.stdout)) == [str(r) for r in range(ranks)], \
        proc.stdout + proc.stderr


@pytest.mark.parametrize("ranks", [2, 4])
@pytest.mark.parametrize("case", ["collectives", "lost"])
def test_worker_collectives_across_ranks(ranks, case):
    # collectives: reduce_scatter, allgather, broadcast and all_to_all of a
    # Worker with comm= over every chip of the job equal numpy's, bit-
    # identical twice. lost: a chip lost in the on-chip part of an allreduce
    # fails it on every rank with DeviceLost naming the rank and the chip
    # (the ranks agree before any data moves), not a Timeout or a hang.
    proc = mpiexec(ranks, str(PROGRAMS / "worker_collectives.py"), *(["lost"] if case == "lost" else []),
                   env={"SIMPLER_MPI_TIMEOUT_S": "30"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(re.findall(r"OK rank (\d+)", proc.stdout)) == [str(r) for r in range(ranks)], \
        proc.stdout + proc.stderr


def dead_rank_job(ranks: int, how: str, reports: Path) -> subprocess.CompletedProcess:
    # -disable-auto-cleanup: without it hydra kills every rank when one dies
    # (test_under_plain_mpiexec_a_killed_rank_ends_the_job), and there is no
    # survivor to look at.
    return mpiexec(ranks, str(PROGRAMS / "dead_rank.py"), how, str(reports),
                   options=("-disable-auto-cleanup",), env={"SIMPLER_MPI_TIMEOUT_S": "3"})


def check_report(reports: Path, r: int, dead: int) -> None:
    report = (reports / f"{r}.txt").read_text()
    assert re.search(rf"^TIMEOUT rank {r} after \d+\.\d s: allreduce\(sum\) .* rank\(s\) \[{dead}\] did not "
                     rf"answer within 3 s", report, re.M), report
    assert re.search(rf"^BROKEN rank {r}: this communicator is unusable", report, re.M), report


@pytest.mark.parametrize("ranks", [2, 4])
def test_a_rank_that_exits_ends_the_others_collective_with_timeout(ranks, tmp_path):
    proc = dead_rank_job(ranks, "exit", tmp_path)
    dead = ranks - 1
    assert proc.returncode == 3, proc.stdout + proc.stderr
    for r in range(dead):
        assert (tmp_path / f"{r}.txt").exists(), f"rank {r} wrote no report:\n{proc.stdout}{proc.stderr}"
        check_report(tmp_path, r, dead)
    assert not (tmp_path / f"{dead}.txt").exists()


@pytest.mark.parametrize("ranks", [2, 4])
def test_a_killed_rank_ends_the_others_collective_with_timeout_or_mpiexec_ends_them(ranks, tmp_path):
    # A rank killed by a signal: hydra sends SIGUSR1 to the others (the
    # program ignores it) and now and then kills them anyway (about one
    # run in eight here). Either way the job ends; a survivor that lives
    # reports the Timeout naming the dead rank, and no other error.
    proc = dead_rank_job(ranks, "kill", tmp_path)
    dead = ranks - 1
    assert proc.returncode == 9, proc.stdout + proc.stderr
    for r in range(dead):
        if (tmp_path / f"{r}.txt").exists():
            check_report(tmp_path, r, dead)
    assert not (tmp_path / f"{dead}.txt").exists()


def test_under_plain_mpiexec_a_killed_rank_ends_the_job(tmp_path):
    # What docs/multi-chip.md says hydra does by default: the others are
    # killed too, so the job ends (no hang) with the dead rank's status.
    proc = mpiexec(2, str(PROGRAMS / "dead_rank.py"), "kill", str(tmp_path), env={"SIMPLER_MPI_TIMEOUT_S": "60"})
    assert proc.returncode == 9, proc.stdout + proc.stderr
    assert not list(tmp_path.iterdir())


def test_the_mpi_example_runs_from_any_directory(tmp_path):
    proc = mpiexec(2, str(ROOT / "examples" / "mpi" / "allreduce.py"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 ranks x 2 chips: [(0, 0), (0, 1), (1, 0), (1, 1)]" in proc.stdout
    assert "allreduce(sum) = [22. 26. 30. 34. 38. 42. 46. 50.]" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "OK"
    assert not list(tmp_path.iterdir())


def test_import_simpler_needs_no_mpi4py(tmp_path):
    # A site directory whose mpi4py cannot be imported: simpler still
    # imports, a Worker without comm= works, and comm= says what to install.
    blocker = tmp_path / "mpi4py"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('mpi4py blocked for this test')\n")
    code = ("import numpy as np, simpler\n"
            "with simpler.Worker(platform='sim', devices=[0]) as w: pass\n"
            "try:\n"
            "    simpler.Worker(platform='sim', devices=[0], comm=object())\n"
            "except simpler.Unsupported as e:\n"
            "    print('UNSUPPORTED', e)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "UNSUPPORTED MPI needs mpi4py and an MPI library: pip install 'simpler[mpi]'" in proc.stdout
