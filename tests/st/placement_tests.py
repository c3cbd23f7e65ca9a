"""Where the chip's threads run, shared by the runtime suites: each core
thread on a CPU of its own choosing, and the first scheduler off the CPU of
the core a lone stream of work goes to (platform/chip/chip.c). Read from
/proc, of this process on sim and of the device process on onboard."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import simpler


def cpu_list(text: str) -> set[int]:
    """'0-2,5' -> {0, 1, 2, 5}"""
    cpus: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def thread_cpus(pid: int) -> dict[str, set[int]]:
    """The CPUs each simpler-* thread of process pid may run on."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            status = (task / "status").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        if name.startswith("simpler-"):
            line = next(s for s in status.splitlines() if s.startswith("Cpus_allowed_list:"))
            out[name] = cpu_list(line.split(":", 1)[1].strip())
    return out


def test_cores_are_pinned_and_the_scheduler_leaves_the_first_aiv_alone(chip_worker, scene):
    cid = scene("fused")
    a = np.arange(64, dtype=np.float32)
    out = np.zeros_like(a)
    chip_worker.run(cid, simpler.TaskArgs(a, a, out))
    # the chip's threads: in this process on sim, in this worker's device
    # context on onboard
    pid = chip_worker.stats.get("device_context_pid") or os.getpid()
    cpus = sorted(os.sched_getaffinity(pid))
    if len(cpus) < 2:
        pytest.skip("one CPU: nothing is pinned")

    threads = thread_cpus(pid)
    for core in range(3):
        assert threads[f"simpler-core{core}"] == {cpus[core % len(cpus)]}, core
    # Core 1, the cluster's first AIV, takes a lone stream (a chain): the
    # scheduler feeding it must not take turns with it on one CPU.
    assert threads["simpler-aicpu0"] == set(cpus) - {cpus[1]}
