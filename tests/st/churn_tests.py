"""Churn counters, shared by the runtime suites: long-lived workers must
not grow. Each test checks the device's own counters (GM bytes, live
allocations, loaded objects, threads) and the process's (file descriptors,
threads, temporary files), not only results."""
from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import scenes
import simpler
from simpler.run_queue import _IDLE_EXIT_S

F32 = np.float32


def process_counters() -> dict[str, int]:
    # A worker's run-queue thread ends by itself once idle for _IDLE_EXIT_S
    # (simpler/run_queue.py); one left by an earlier test's submit() would
    # end in the middle of a count and read as a thread given back. Wait
    # for those (a thread that does not end is still counted).
    for t in [t for t in threading.enumerate() if t.name == "simpler-runs"]:
        t.join(timeout=10 * _IDLE_EXIT_S)
    # A join returns just before the OS thread is gone from /proc (a
    # finalize's 16 joins of chip threads, or the run-queue thread's):
    # let the count settle. A thread that stays is still counted.
    deadline, count = time.monotonic() + 1.0, len(os.listdir("/proc/self/task"))
    while time.monotonic() < deadline:
        time.sleep(0.01)
        now = len(os.listdir("/proc/self/task"))
        if now == count:
            break
        count = now
    tmp = Path(tempfile.gettempdir())
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": len(os.listdir("/proc/self/task")),
        "temp_so_files": len(list(tmp.glob(f"simpler-so-{os.getpid()}-*"))),
    }


def device_counters(worker) -> dict[str, int]:
    """This worker's device counters. On onboard the thread counts are the
    device process's, which other host processes (xdist workers) grow by
    running wider launches; tests/unit/test_onboard.py checks them on a
    private device."""
    st = worker.stats
    keys = ["committed_bytes", "live_allocations", "loaded_objects", "registered_callables"]
    if not st.get("device_pid"):
        keys += ["core_threads", "aicpu_threads"]
    return {k: st[k] for k in keys}


def test_the_process_counts_do_not_see_a_run_queue_thread_that_ends_by_itself(chip_worker, scene):
    # replay_tests' record/release churn failed in CI this way: a submit()
    # just before the baseline left the queue's thread alive, and it ended
    # while the churn ran.
    ff = scene("fanout_fanin")
    x, out = np.ones(64, F32), np.zeros(1, F32)
    chip_worker.submit(ff, [x, out, 8]).result()
    before = process_counters()
    time.sleep(2 * _IDLE_EXIT_S)
    assert process_counters() == before


def test_register_unregister_churn(chip_worker, kernel_compiler):
    callable_ = scenes.callable_(kernel_compiler, "vector_add")
    a = np.ones(64, F32)
    out = np.zeros_like(a)
    cid = chip_worker.register(callable_)  # warm: threads exist, caches filled
    chip_worker.run(cid, simpler.TaskArgs(a, a, out, 1))
    chip_worker.unregister(cid)
    dev0, proc0 = device_counters(chip_worker), process_counters()

    for _ in range(1000):
        cid = chip_worker.register(callable_)
        chip_worker.unregister(cid)

    assert device_counters(chip_worker) == dev0
    assert (now := process_counters()) == proc0, (now, proc0)


def test_run_churn(chip_worker, scene):
    cid = scene("fused")
    a = np.arange(256, dtype=F32)
    out = np.zeros_like(a)
    chip_worker.run(cid, simpler.TaskArgs(a, a, out))
    dev0, proc0 = device_counters(chip_worker), process_counters()
    tasks0 = chip_worker.stats["tasks_completed"]

    for _ in range(1000):
        chip_worker.run(cid, simpler.TaskArgs(a, a, out))

    np.testing.assert_allclose(out, (2 * a + 1) * (2 * a + 2) + 2 * a)
    assert device_counters(chip_worker) == dev0
    assert (now := process_counters()) == proc0, (now, proc0)
    assert chip_worker.stats["tasks_completed"] == tasks0 + 5 * 1000


def test_failed_runs_do_not_leak(chip_worker, scene):
    cid = scene("misuse")
    x = np.zeros(16, F32)
    try:  # warm: threads are started on first use
        chip_worker.run(cid, simpler.TaskArgs(x, 6))
    except simpler.OrchestrationError:
        pass
    dev0 = device_counters(chip_worker)
    for case in (0, 1, 2, 3, 4, 5, 6, 7, 9):
        for _ in range(20):
            try:
                chip_worker.run(cid, simpler.TaskArgs(x, case))
            except simpler.OrchestrationError:
                pass
    assert device_counters(chip_worker) == dev0


def test_finalize_releases_threads_and_memory(simpler_platform, simpler_runtime, kernel_compiler):
    proc0 = process_counters()
    for _ in range(3):
        with simpler.ChipWorker(simpler_platform, simpler_runtime) as w:
            cid = w.register(scenes.callable_(kernel_compiler, "chains"))
            X = np.zeros((8, 4), F32)
            w.run(cid, simpler.TaskArgs(X, 10), block_dim=4, aicpu_thread_num=3)
            orchestrators = 1 if simpler_runtime == "tensormap_and_ringbuffer" else 0
            threads = (w.stats["core_threads"], w.stats["aicpu_threads"])
            if simpler_platform == "sim":
                assert threads == (12, 3 + orchestrators)
            else:  # the device process's threads serve every host process sharing it
                assert threads[0] >= 12 and threads[1] >= 3 + orchestrators
            np.testing.assert_array_equal(X, 10)
        assert w.closed
    assert (now := process_counters()) == proc0, (now, proc0)
