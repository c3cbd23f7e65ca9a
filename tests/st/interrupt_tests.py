"""Ctrl-C during a run, shared by the runtime suites: the run stops as the
watchdog would stop it, KeyboardInterrupt is raised at once, and the worker
keeps working."""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import numpy as np
import pytest

import simpler
from error_tests import assert_still_works

F32 = np.float32
# The runs below would wait this long for their watchdog if an interrupt
# did nothing; the bound checked is far below it and far above the ~0.3 s
# an interrupt takes.
WATCHDOG_S = 60.0
BOUND_S = 20.0


@contextlib.contextmanager
def sigint_after(seconds: float, once=None):
    """Send this process SIGINT, as Ctrl-C does, from a thread: seconds
    after once() first holds (polled, up to a minute), or after seconds."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    old = signal.signal(signal.SIGINT, signal.default_int_handler)

    def later():
        deadline = time.monotonic() + 60
        while once is not None and not once() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(seconds)
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Thread(target=later)
    timer.start()
    try:
        yield
    finally:
        timer.join()
        signal.signal(signal.SIGINT, old)


def task_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_interrupt_stops_a_hanging_kernel(chip_worker, scene, kernel_compiler):
    cid = scene("misuse")   # scalar 8: one task of a kernel that never returns
    before = chip_worker.stats
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with sigint_after(0.5):
            chip_worker.run(cid, simpler.TaskArgs(np.zeros(4, F32), 8), scheduler_timeout=WATCHDOG_S)
    assert time.monotonic() - start < BOUND_S
    after = chip_worker.stats
    assert after["core_resets"] >= before["core_resets"] + 1   # the core running it was reset
    kept = after["run_block_bytes"] - before["run_block_bytes"]  # GM kept for the next run
    assert after["committed_bytes"] == before["committed_bytes"] + kept
    assert chip_worker.usable
    assert_still_works(chip_worker, kernel_compiler)


def test_a_handler_that_does_not_raise_lets_the_run_finish(chip_worker, scene):
    """Only an exception from the signal handler stops a run."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    cid = scene("blocks")
    seen = []
    old = signal.signal(signal.SIGINT, lambda *a: seen.append(a))
    try:
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        before = chip_worker.stats["tasks_completed"]
        chip_worker.run(cid, simpler.TaskArgs(4, 200_000), block_dim=1)  # ~0.4 s
        timer.join()
    finally:
        signal.signal(signal.SIGINT, old)
    assert seen
    assert chip_worker.stats["tasks_completed"] == before + 1


def test_interrupt_and_timeout_stop_a_host_orchestration_that_never_returns(chip_worker, scene, kernel_compiler,
                                                                            simpler_runtime):
    if simpler_runtime != "host_build_graph":
        pytest.skip("the host runs only host_build_graph's orchestration")
    cid = scene("forever")
    threads = task_threads()
    for sleeping in (0, 1):     # spinning, and sleeping in libc
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            with sigint_after(0.5):
                chip_worker.run(cid, simpler.TaskArgs(sleeping), scheduler_timeout=WATCHDOG_S)
        assert time.monotonic() - start < BOUND_S
        with pytest.raises(simpler.Timeout, match="ran for more than 0.3 s .* and was stopped"):
            chip_worker.run(cid, simpler.TaskArgs(sleeping), scheduler_timeout=0.3)
    assert chip_worker.usable
    assert_still_works(chip_worker, kernel_compiler)
    assert task_threads() <= threads + 1    # the orchestration's thread, started afresh
