"""The fault loop, as SQLite's test VFS: on faulty:<platform>, fail the
Nth device operation (GM allocation, copy, callable load, launch, wait)
of a register + run + unregister sequence, for N = 1, 2, ... until the
sequence passes with no fault fired. After each N: the error is a typed
SimplerError saying it was injected, the worker is usable (and a clean
sequence gives the right answer) or says it is not, and every counter is
back at its baseline: GM bytes, allocations, loaded objects, threads,
descriptors, temp files."""
from __future__ import annotations

import ctypes
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import simpler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "st"))
from scenes import callable_ as scene_callable  # noqa: E402

RUNTIMES = ("host_build_graph", "tensormap_and_ringbuffer")
RNG = np.random.default_rng(13)
FUSED_TASKS = 5  # tests/st/scenes/orch/fused.c
MAX_N = 200     # a sequence of far fewer operations: a loop that never ends is a bug
# Host memory the whole loop may gain (Python's own noise is a few KiB);
# one leaked copy of the callable is 200 KiB.
HEAP_SLACK = 64 << 10


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


_libc = ctypes.CDLL(None)
_libc.mallinfo2.restype = _MallInfo2


def host_heap() -> int:
    """Bytes malloc has handed out and not had back (glibc)."""
    gc.collect()
    m = _libc.mallinfo2()
    return m.uordblks + m.hblkhd


def threads(expected: int | None = None) -> int:
    """Threads of this process. A joined thread can stay listed in
    /proc/self/task for a moment (its tid is released before the kernel
    reaps it), so with expected, wait up to a second for the count."""
    deadline = time.monotonic() + 1.0
    while True:
        n = len(os.listdir("/proc/self/task"))
        if expected is None or n == expected or time.monotonic() > deadline:
            return n
        time.sleep(0.01)


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def gm(worker: simpler.ChipWorker) -> dict[str, int]:
    """What the worker holds in GM and on the device, the run block it
    keeps from run to run left out."""
    st = worker.stats
    kept = st["run_block_bytes"]
    return {"committed_bytes": st["committed_bytes"] - kept,
            "live_allocations": st["live_allocations"] - (1 if kept else 0),
            "loaded_objects": st["loaded_objects"],
            "registered_callables": st["registered_callables"],
            "callable_buffers": st["callable_buffers"]}


def fused_inputs():
    a = RNG.standard_normal(1024).astype(np.float32)
    b = RNG.standard_normal(1024).astype(np.float32)
    c = a + b
    return a, b, (c + 1) * (c + 2) + c


def sequence(worker: simpler.ChipWorker, callable_) -> simpler.SimplerError | None:
    """register (twice: the second shares the first's buffer), run each
    (one with a trace, one with an input already in device memory), checked,
    unregister; the error, if one was raised."""
    a, b, expected = fused_inputs()
    out = np.full_like(a, np.nan)
    cids: list[int] = []
    addr = None
    try:
        cids.append(worker.register(callable_))
        cids.append(worker.register(callable_))
        done = worker.stats["tasks_completed"]
        worker.run(cids[0], simpler.TaskArgs(a, b, out), trace=64)
        np.testing.assert_allclose(out, expected, rtol=1e-5)
        assert worker.last_trace is not None             # asked for, so there (or the run failed)
        st = worker.stats
        assert (st["last_run_tasks"], st["tasks_completed"]) == (FUSED_TASKS, done + FUSED_TASKS)
        addr = worker.malloc(a.nbytes)
        worker.copy_to(addr, a)
        out[:] = np.nan
        worker.run(cids[1], simpler.TaskArgs(simpler.DeviceTensor(addr, a.shape, a.dtype), b, out))
        np.testing.assert_allclose(out, expected, rtol=1e-5)
        np.testing.assert_array_equal(worker.copy_from(addr, np.empty_like(a)), a)
        worker.free(addr)
        addr = None
        while cids:
            worker.unregister(cids.pop())
    except simpler.SimplerError as e:
        if worker.usable:               # the fault fired once: these must pass
            for cid in cids:            # a failure leaves registrations as they were
                out[:] = np.nan
                worker.run(cid, simpler.TaskArgs(a, b, out))
                np.testing.assert_allclose(out, expected, rtol=1e-5)
            if addr is not None:
                worker.free(addr)
            for cid in cids:
                worker.unregister(cid)
        return e
    return None


def fresh_worker(platform: str, runtime: str, callable_) -> simpler.ChipWorker:
    """A worker on faulty:<platform> after one clean sequence, so that
    threads, the run block and the device's first-use work are in place."""
    worker = simpler.ChipWorker(platform=f"faulty:{platform}", runtime=runtime)
    assert sequence(worker, callable_) is None
    return worker


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """A temp dir of this test's own, so its listing is exact."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setenv("TMPDIR", str(d))
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


def check_error(n: int, error: simpler.SimplerError | None) -> None:
    if error is not None:       # typed, and it says what happened
        assert type(error) is not simpler.SimplerError, (n, error)
        assert "injected fault" in str(error), (n, error)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_fault_loop(simpler_platform, runtime, kernel_compiler, private_tmp):
    callable_ = scene_callable(kernel_compiler, "fused")
    worker = fresh_worker(simpler_platform, runtime, callable_)
    base_gm, base_threads, base_fds, base_heap = gm(worker), threads(), fds(), host_heap()
    seen_kinds: set[str] = set()
    n = 0
    try:
        while True:
            n += 1
            assert n < MAX_N, "the sequence never ran without a fault"
            fired_before = worker.faults_fired
            worker.inject_fault(n)
            error = sequence(worker, callable_)
            counts = worker.fault_counts
            fired = counts["fired"] - fired_before
            if error is None and fired == 0:
                assert counts["ops"] == n - 1, counts      # every armed operation was counted, none failed
                break
            assert fired == 1 and counts["pending"] == 0, (n, counts, error)
            check_error(n, error)
            if error is not None:
                seen_kinds.add(type(error).__name__)
            if worker.usable:
                assert gm(worker) == base_gm, (n, error)
                assert sequence(worker, callable_) is None, n
            else:
                assert isinstance(error, simpler.DeviceLost), (n, error)
                with pytest.raises((simpler.DeviceLost, simpler.InvalidState)):
                    worker.register(callable_)
                with pytest.raises((simpler.DeviceLost, simpler.InvalidState)):
                    worker.stats
                worker.finalize()
                worker = fresh_worker(simpler_platform, runtime, callable_)
                assert gm(worker) == base_gm, (n, error)
            assert threads(base_threads) == base_threads, (n, error)
            assert fds() == base_fds, (n, error)
            assert os.listdir(private_tmp) == [], (n, error)
        assert host_heap() - base_heap < HEAP_SLACK
    finally:
        worker.finalize()
    # the loop reached every kind of failure it injects
    assert {"OutOfMemory", "PlatformError", "InvalidCallable", "DeviceLost", "Timeout"} <= seen_kinds, seen_kinds


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_fault_loop_cold(simpler_platform, runtime, kernel_compiler, private_tmp):
    """The same loop on a new worker each time, so that a worker's first
    run (its run block, the chip's threads) is in the sequence; after
    finalize, threads, descriptors and host memory are back."""
    callable_ = scene_callable(kernel_compiler, "fused")
    with simpler.ChipWorker(platform=f"faulty:{simpler_platform}", runtime=runtime) as worker:
        opened = gm(worker)         # what a context holds from its start (onboard: the executor)
        assert sequence(worker, callable_) is None     # the device's first use, compiles
    base_threads, base_fds, base_heap = threads(), fds(), host_heap()
    for n in range(1, MAX_N):
        with simpler.ChipWorker(platform=f"faulty:{simpler_platform}", runtime=runtime) as worker:
            worker.inject_fault(n)
            error = sequence(worker, callable_)
            check_error(n, error)
            counts = worker.fault_counts
            if error is None and counts["fired"] == 0:
                break
            assert counts["fired"] == 1, (n, counts, error)
            if worker.usable:
                assert gm(worker) == opened, (n, error)
                assert sequence(worker, callable_) is None, n
            else:
                assert isinstance(error, simpler.DeviceLost), (n, error)
        assert threads(base_threads) == base_threads, (n, error)
        assert fds() == base_fds, (n, error)
        assert os.listdir(private_tmp) == [], (n, error)
    else:
        pytest.fail("the sequence never ran without a fault")
    assert host_heap() - base_heap < HEAP_SLACK


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("kind", ["alloc", "copy", "load", "launch", "wait"])
def test_one_kind_fails_as_documented(simpler_platform, runtime, kind, kernel_compiler):
    """The first operation of each kind fails with its documented error."""
    expected = {"alloc": simpler.OutOfMemory, "copy": simpler.PlatformError, "load": simpler.InvalidCallable,
                "launch": simpler.DeviceLost, "wait": simpler.Timeout}[kind]
    callable_ = scene_callable(kernel_compiler, "fused")
    with fresh_worker(simpler_platform, runtime, callable_) as worker:
        worker.inject_fault(1, kinds=kind)
        error = sequence(worker, callable_)
        assert type(error) is expected and "injected fault" in str(error), error
        assert worker.fault_counts == {"ops": 1, "fired": 1, "pending": 0}
        assert worker.usable == (kind != "launch")


def test_registry_names_the_known_platforms():
    with pytest.raises(simpler.InvalidArgument, match=r"unknown platform 'tpu' \(known: onboard, sim, "
                                                        r"faulty:<platform>\)"):
        simpler.ChipWorker(platform="tpu")
    with pytest.raises(simpler.InvalidArgument, match="platform 'faulty:tpu': unknown platform 'tpu'"):
        simpler.ChipWorker(platform="faulty:tpu")


def test_fault_calls_on_a_platform_without_faults():
    with simpler.ChipWorker(platform="sim") as worker:
        with pytest.raises(simpler.Unsupported, match="use faulty:sim"):
            worker.inject_fault(1)
        with pytest.raises(simpler.Unsupported):
            worker.fault_counts
    with simpler.ChipWorker(platform="faulty:sim") as worker:
        with pytest.raises(simpler.InvalidArgument):
            worker.inject_fault(1, kinds=["disk"])
        worker.inject_fault(0)
        assert worker.fault_counts == {"ops": 0, "fired": 0, "pending": 0}
        # the C calls check their arguments too
        from simpler._native import ffi, lib
        assert lib.simpler_device_inject_fault(worker._dev, 0x100, 1) == lib.SIMPLER_E_INVALID_ARGUMENT
        assert lib.simpler_device_inject_fault(worker._dev, 0, 1) == lib.SIMPLER_E_INVALID_ARGUMENT
        assert lib.simpler_device_inject_fault(ffi.NULL, 1, 1) == lib.SIMPLER_E_INVALID_ARGUMENT
        assert lib.simpler_device_fault_counts(worker._dev, ffi.NULL) == lib.SIMPLER_E_INVALID_ARGUMENT
        worker.inject_fault(5, kinds=["copy", "wait"])
        assert worker.fault_counts == {"ops": 0, "fired": 0, "pending": 1}
        handle = worker._dev
    # finalized: the counts say so instead of reading freed state
    from simpler._native import ffi, lib
    assert lib.simpler_device_fault_counts(handle, ffi.new("simpler_fault_counts *")) == lib.SIMPLER_E_STATE


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_wait_fault_cancels_a_running_launch(simpler_platform, runtime, kernel_compiler):
    """A wait fault on a launch that would run for long: the inner platform
    really cancels it (a launch left running would end in the watchdog's
    own timeout after 2 s instead) and the worker runs again."""
    callable_ = scene_callable(kernel_compiler, "blocks")
    with simpler.ChipWorker(platform=f"faulty:{simpler_platform}", runtime=runtime) as worker:
        cid = worker.register(callable_)
        worker.run(cid, [1, 0])
        before = worker.stats
        worker.inject_fault(1, kinds="wait")
        with pytest.raises(simpler.Timeout, match="^run.*: injected fault: the wait for a started launch failed"):
            worker.run(cid, [1, 10_000_000], scheduler_timeout=2)   # one block busy for 10 s
        assert worker.usable
        worker.run(cid, [2, 0])
        after = worker.stats
        assert after["tasks_completed"] == before["tasks_completed"] + 1
        assert after["committed_bytes"] == before["committed_bytes"]
        worker.unregister(cid)
