"""Runs in flight, shared by the runtime suites: submit() and RunHandle,
the run queue's order, failures in the middle of a queue, cancel, drain,
and what queued runs leave behind (GM, threads)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import numpy as np
import pytest

import scenes
import simpler

F32 = np.float32


def held(w):
    """GM committed but for the run blocks kept from run to run (one per run in flight)."""
    st = w.stats
    return st["committed_bytes"] - st["run_block_bytes"]


def simpler_threads():
    return sum(t.name == "simpler-runs" for t in threading.enumerate())


def wait_for(cond, seconds=10.0):
    """Poll until cond() holds (not a timing assertion: a generous bound on a condition)."""
    deadline = time.monotonic() + seconds
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    return cond()


@pytest.fixture
def own_worker(simpler_platform, simpler_runtime):
    """A worker of the test's own: these tests finalize it."""
    w = simpler.ChipWorker(simpler_platform, simpler_runtime)
    yield w
    w.finalize()


def test_a_thousand_runs_through_device_tensors_give_the_serial_answer(chip_worker, scene):
    """Each run reads what the run before wrote (ping-pong between two device
    tensors): a run started early, or out of order, gives a different sum."""
    add = scene("vector_add")
    n = 256
    rng = np.random.default_rng(7)
    x0 = rng.integers(0, 8, n).astype(F32)
    steps = rng.integers(0, 4, 1000).astype(F32)
    bufs = [chip_worker.malloc(n * 4) for _ in range(2)]
    incs = [chip_worker.malloc(n * 4) for _ in range(4)]
    for k, inc in enumerate(incs):
        chip_worker.copy_to(inc, np.full(n, k, F32))
    chip_worker.copy_to(bufs[0], x0)
    handles = []
    for i, s in enumerate(steps):
        src, dst = bufs[i % 2], bufs[(i + 1) % 2]
        handles.append(chip_worker.submit(add, [src.as_tensor((n,), F32), incs[int(s)].as_tensor((n,), F32),
                                                dst.as_tensor((n,), F32), 1]))
    for h in handles:
        assert h.result() is None
    out = chip_worker.copy_from(bufs[len(steps) % 2], np.empty(n, F32))
    np.testing.assert_array_equal(out, x0 + steps.sum())
    assert all(h.done() and h.exception() is None for h in handles)
    for b in bufs + incs:
        b.free()


def test_outputs_arrive_when_the_handle_completes_and_inputs_may_be_reused(chip_worker, scene):
    add = scene("vector_add")
    a = np.arange(64, dtype=F32)
    outs = []
    handles = []
    for k in range(20):
        a[:] = k                            # reused as soon as submit returns
        out = np.full(64, -1, F32)
        handles.append(chip_worker.submit(add, [a, np.ones(64, F32), out, 1]))
        outs.append(out)
    chip_worker.wait()
    for k, (h, out) in enumerate(zip(handles, outs)):
        assert h.done()
        np.testing.assert_array_equal(out, np.full(64, k + 1, F32))


def test_await_and_callbacks(chip_worker, scene):
    add = scene("vector_add")
    a = np.arange(32, dtype=F32)
    out = np.zeros(32, F32)
    called = []

    async def go():
        h = chip_worker.submit(add, [a, a, out, 1])
        h.add_done_callback(lambda f: called.append(f.exception()))
        return await h

    assert asyncio.run(go()) is None
    np.testing.assert_array_equal(out, 2 * a)
    assert wait_for(lambda: called == [None])


def test_a_failing_run_in_the_middle_of_a_queue(chip_worker, scene):
    """The failing run raises what run() raises; the runs queued behind it fail
    with RunSkipped naming it; the worker goes on."""
    add = scene("vector_add")
    misuse = scene("misuse")
    before = held(chip_worker)
    a = np.ones(16, F32)
    chip_worker.max_inflight = 4
    try:
        outs = [np.zeros(16, F32) for _ in range(3)]
        first = chip_worker.submit(add, [a, a, outs[0], 1])
        # A kernel that never finishes: the watchdog fails it as it executes.
        bad = chip_worker.submit(misuse, [np.zeros(4, F32), 8], scheduler_timeout=0.3)
        later = [chip_worker.submit(add, [a, a, o, 1]) for o in outs[1:]]
        assert first.result() is None
        with pytest.raises(simpler.Timeout) as failed:
            bad.result()
        for h in later:
            e = h.exception()
            # Skipped if still queued when the failure came; a run already
            # executing or done when it came has its own outcome.
            assert e is None or (isinstance(e, simpler.RunSkipped) and e.__cause__ is failed.value), e
        np.testing.assert_array_equal(outs[0], 2 * a)
    finally:
        chip_worker.max_inflight = 2
    out = np.zeros(16, F32)
    chip_worker.submit(add, [a, a, out, 1]).result()
    np.testing.assert_array_equal(out, 2 * a)
    assert held(chip_worker) == before, (held(chip_worker), before)


def test_cancel_before_start_and_finalize_with_cancel(own_worker, kernel_compiler):
    with own_worker as w:
        spin = w.register(scenes.callable_(kernel_compiler, "blocks"))
        add = w.register(scenes.callable_(kernel_compiler, "vector_add"))
        before = held(w)
        a = np.ones(8, F32)
        out = np.zeros(8, F32)
        running = w.submit(spin, [1, 200000])    # 0.2 s: the next is still queued
        queued = w.submit(add, [a, a, out, 1])
        cancelled = queued.cancel()
        running.result()
        if cancelled:                      # it had not started
            assert queued.cancelled()
            with pytest.raises(concurrent.futures.CancelledError):
                queued.result()
            np.testing.assert_array_equal(out, 0)
        else:
            queued.result()
        w.wait()
        assert held(w) == before
        hs = [w.submit(add, [a, a, np.zeros(8, F32), 1]) for _ in range(2)]
        w.finalize(cancel=True)
        assert all(h.done() for h in hs)
        assert all(h.cancelled() or h.exception() is None for h in hs)


def test_queued_runs_leave_nothing_behind(chip_worker, scene):
    add = scene("vector_add")
    a = np.ones(128, F32)
    chip_worker.run(add, [a, a, np.zeros(128, F32), 1])
    before = held(chip_worker)
    for _ in range(5):
        hs = [chip_worker.submit(add, [a, a, np.zeros(128, F32), 1]) for _ in range(50)]
        for h in hs:
            h.result()
    assert held(chip_worker) == before
    assert wait_for(lambda: simpler_threads() == 0)       # the queue's thread ends when idle
    chip_worker.submit(add, [a, a, np.zeros(128, F32), 1])
    chip_worker.wait()
    assert simpler_threads() == 0                         # and at once after wait()


def test_wait_in_a_done_callback_is_refused(chip_worker, scene):
    """wait() on the queue's thread, with a run still in flight, would wait
    for itself: it raises instead of hanging."""
    spin, add = scene("blocks"), scene("vector_add")
    a = np.ones(64, F32)
    seen = []

    def waits(_h):
        try:
            chip_worker.wait()
            seen.append((threading.current_thread().name, None))
        except simpler.InvalidState as e:
            seen.append((threading.current_thread().name, e))

    first = chip_worker.submit(spin, [1, 200000])    # 0.2 s: the callback is added before it ends
    first.add_done_callback(waits)
    second = chip_worker.submit(add, [a, a, np.zeros(64, F32), 1])
    concurrent.futures.wait([second])    # waits without executing runs itself: the queue's thread does
    chip_worker.wait()
    [(thread, error)] = seen
    assert thread == "simpler-runs"
    assert isinstance(error, simpler.InvalidState) and "done callback" in str(error)


def test_unregister_and_finalize_wait_for_runs_in_flight(own_worker, kernel_compiler):
    w = own_worker
    add = w.register(scenes.callable_(kernel_compiler, "vector_add"))
    a = np.ones(64, F32)
    outs = [np.zeros(64, F32) for _ in range(10)]
    hs = [w.submit(add, [a, a, o, 1]) for o in outs]
    w.unregister(add)
    assert all(h.done() and h.exception() is None for h in hs)
    add2 = w.register(scenes.callable_(kernel_compiler, "vector_add"))
    hs = [w.submit(add2, [a, a, o, 1]) for o in outs]
    w.finalize()
    assert all(h.done() and h.exception() is None for h in hs)
    for o in outs:
        np.testing.assert_array_equal(o, 2 * a)


def test_max_inflight_is_checked(chip_worker):
    assert chip_worker.max_inflight == 2
    for bad in (0, 9, -1, "2", True, 2.0):
        with pytest.raises(simpler.InvalidArgument):
            chip_worker.max_inflight = bad
    chip_worker.max_inflight = 1
    assert chip_worker.max_inflight == 1
    chip_worker.max_inflight = 2


def test_ctrl_c_while_runs_are_queued(own_worker, kernel_compiler):
    """SIGINT while result() waits: the executing run stops, the queued ones
    are cancelled, nothing is left held, and the worker runs on."""
    import signal
    w = own_worker
    spin = w.register(scenes.callable_(kernel_compiler, "blocks"))
    add = w.register(scenes.callable_(kernel_compiler, "vector_add"))
    a = np.ones(8, F32)
    w.run(spin, [1, 10])
    before = held(w)
    w.max_inflight = 4
    running = w.submit(spin, [1, 5_000_000])                  # 5 s: stopped long before
    queued = [w.submit(add, [a, a, np.zeros(8, F32), 1]) for _ in range(3)]
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    signal.signal(signal.SIGALRM, lambda *_: signal.raise_signal(signal.SIGINT))
    try:
        with pytest.raises(KeyboardInterrupt):
            queued[-1].result(timeout=30)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, old)
    w.wait()
    assert all(h.cancelled() for h in queued)
    assert isinstance(running.exception(), (KeyboardInterrupt, simpler.SimplerError))
    assert held(w) == before and w.usable
    out = np.zeros(8, F32)
    w.run(add, [a, a, out, 1])
    np.testing.assert_array_equal(out, 2 * a)


def test_lowering_max_inflight_gives_back_the_run_blocks(own_worker, kernel_compiler):
    w = own_worker
    spin = w.register(scenes.callable_(kernel_compiler, "blocks"))
    w.max_inflight = 4
    hs = [w.submit(spin, [1, 20000]) for _ in range(4)]
    w.wait()
    assert all(h.exception() is None for h in hs)
    four = w.stats["run_block_bytes"]
    w.max_inflight = 1
    one = w.stats["run_block_bytes"]
    assert one < four and one <= four // 2
    w.run(spin, [1, 10])
    assert w.stats["run_block_bytes"] == one


def test_finalize_racing_with_submits_from_another_thread(simpler_platform, simpler_runtime, kernel_compiler):
    """Every submit either raises (the worker is finalizing or finalized)
    or gives a handle that is done when finalize() returns; no thread is
    left."""
    w = simpler.ChipWorker(simpler_platform, simpler_runtime)
    add = w.register(scenes.callable_(kernel_compiler, "vector_add"))
    a = np.ones(64, F32)
    handles, refused = [], []

    def submitter():
        for _ in range(3000):
            try:
                handles.append(w.submit(add, [a, a, np.zeros(64, F32), 1]))
            except simpler.InvalidState as e:
                refused.append(e)
                return

    t = threading.Thread(target=submitter)
    t.start()
    wait_for(lambda: len(handles) > 20)
    w.finalize()
    finalized_with = [h for h in handles if not h.done()]
    t.join()
    assert not finalized_with
    assert all(h.exception() is None for h in handles)
    assert refused or len(handles) == 3000
    assert wait_for(lambda: simpler_threads() == 0)


def test_a_run_that_does_not_fit_waits_for_the_runs_in_flight(simpler_platform, kernel_compiler):
    """tensormap_and_ringbuffer's run blocks (its rings) are ~75 MB: in a
    300 MiB quota at most three fit with room to spare. Eight submits in a
    row wait for blocks rather than fail; alone, one that cannot fit is
    OutOfMemory."""
    with simpler.ChipWorker(simpler_platform, "tensormap_and_ringbuffer", gm_capacity=300 << 20) as w:
        spin = w.register(scenes.callable_(kernel_compiler, "blocks"))
        w.max_inflight = 8
        hs = [w.submit(spin, [1, 20000]) for _ in range(8)]
        w.wait()
        assert all(h.exception() is None for h in hs)
        with pytest.raises(simpler.OutOfMemory):
            w.submit(spin, [1, 10], heap_ring_size=400 << 20)
        w.run(spin, [1, 10])


# Sets word 2 of the block at scalar 0, waits (up to 20 s) until word 0
# is set, then writes 1 to word 1 (2 when it gave up).
WAIT_FOR_FLAG = """
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <time.h>
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) {
    volatile uint32_t *flag = (volatile uint32_t *)(uintptr_t)args->scalars[0];
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    flag[2] = 1;
    while (!flag[0]) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 20) {
            flag[1] = 2;
            return;
        }
    }
    flag[1] = 1;
}
"""
ORCH_TWO_SCALARS = """
#include <simpler/orch.h>
SIMPLER_ORCHESTRATION(orchestrate) {
    return simpler_submit(api, o, 0, SIMPLER_CORE_AIV, NULL, NULL, 0, args->scalars, 2, NULL);
}
"""


def test_the_next_run_is_staged_and_the_worker_usable_while_one_executes(own_worker, kernel_compiler):
    """While run N executes, run N+1's submit() stages it and returns, and
    the worker's other calls (a copy, a malloc) go on: here run N cannot
    end before the copy that sets its flag, which comes after the next
    submit returned (on every platform, onboard too: its launches go on a
    link of their own)."""
    w = own_worker
    k = simpler.CoreCallable(0, "aiv", kernel_compiler.compile_source(WAIT_FOR_FLAG), [], num_scalars=2)
    waiter = w.register(simpler.ChipCallable.build(kernel_compiler.compile_source(ORCH_TWO_SCALARS), [k],
                                                   ["scalar", "scalar"]))
    add = w.register(scenes.callable_(kernel_compiler, "vector_add"))
    flag = w.malloc(4096)
    words = lambda: w.copy_from(int(flag), np.empty(3, np.uint32))
    w.copy_to(int(flag), np.zeros(3, np.uint32))
    first = w.submit(waiter, [int(flag), 0], simpler.CallConfig(scheduler_timeout=60.0))
    assert wait_for(lambda: words()[2] == 1, 30.0)     # it executes
    a, b, out = np.ones(8, F32), np.full(8, 2, F32), np.zeros(8, F32)
    second = w.submit(add, [a, b, out, 8])
    assert not first.done()
    scratch = w.malloc(64)
    w.copy_to(int(flag), np.ones(1, np.uint32))
    first.result()
    second.result()
    np.testing.assert_array_equal(out, 3)
    np.testing.assert_array_equal(words(), [1, 1, 1])
    w.free(scratch)
    w.free(flag)


def test_runs_submitted_from_two_threads_at_once_all_complete(own_worker, kernel_compiler):
    """Two threads submit to one worker at once: the device's queue and the
    worker's must agree on the order (each run is placed in both in one
    step), or a run waits for its turn behind one queued after it, for
    ever."""
    add = own_worker.register(scenes.callable_(kernel_compiler, "vector_add"))
    a = np.ones(64, F32)
    handles: list[list] = [[], []]

    def submitter(mine):
        for _ in range(300):
            out = np.zeros(64, F32)
            mine.append((own_worker.submit(add, [a, a, out, 1]), out))

    threads = [threading.Thread(target=submitter, args=(h,)) for h in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    everything = [h for mine in handles for h, _ in mine]
    done, stuck = concurrent.futures.wait(everything, timeout=60)
    if stuck:       # free the one waiting at the head of the device's queue, so the worker can end
        own_worker._queue.interrupt()
    assert not stuck and not any(t.is_alive() for t in threads)
    for mine in handles:
        for h, out in mine:
            assert h.exception() is None
            np.testing.assert_array_equal(out, 2)
