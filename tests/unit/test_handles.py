"""register() returns a Registration and malloc() a DeviceBuffer: objects
that act through their worker, stand for their int wherever one is taken,
and say InvalidState (never crash) once unregistered, freed or finalized."""
from __future__ import annotations

import gc
import operator
import os
import sys
import weakref

import numpy as np
import pytest

import simpler

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "st"))
import scenes  # noqa: E402

F32 = np.float32


@pytest.fixture(scope="module")
def add(kc):
    return scenes.callable_(kc, "vector_add")


def counts(w):
    st = w.stats
    return st["registered_callables"], st["live_allocations"], st["committed_bytes"] - st["run_block_bytes"]


@pytest.fixture
def warm(chip_worker, add):
    """chip_worker after one small run, so that the GM a run keeps for the
    next (its run block: one allocation) is there before a test counts."""
    with chip_worker.register(add) as reg:
        run_add(reg.run, n=32)
    return chip_worker


def run_add(run, *, n=16):
    a, b, out = np.arange(n, dtype=F32), np.full(n, 2, F32), np.zeros(n, F32)
    run(simpler.TaskArgs(a, b, out, 1))
    np.testing.assert_array_equal(out, a + 2)


def test_a_registration_is_an_object_and_its_id(warm, chip_worker, add):
    before = counts(chip_worker)
    reg = chip_worker.register(add)
    assert isinstance(reg, simpler.Registration) and reg.registered and reg.callable is add
    cid = reg.id
    assert type(cid) is int and int(reg) == operator.index(reg) == cid and f"{reg}" == str(cid)
    assert reg == cid and reg in chip_worker.callables and chip_worker.callables[reg] is add
    r = repr(reg)
    assert f"id={cid}" in r and f"{add.num_kernels} kernels" in r and "ChipWorker" in r
    assert counts(chip_worker)[0] == before[0] + 1
    # every form runs it: the object's method, the worker with the object, the worker with the int
    run_add(lambda args: reg.run(args=args, config=simpler.CallConfig(block_dim=1)))
    run_add(lambda args: chip_worker.run(reg, args))
    run_add(lambda args: chip_worker.run(cid, args))
    assert chip_worker.callable_buffer(reg) == chip_worker.callable_buffer(cid)
    reg.unregister()
    assert not reg.registered and "was unregistered" in repr(reg)
    assert counts(chip_worker) == before


def test_a_registration_used_after_unregister_is_invalid_state(warm, chip_worker, add):
    before = counts(chip_worker)
    reg = chip_worker.register(add)
    chip_worker.unregister(int(reg))            # through the int form
    again = chip_worker.register(add, callable_id=reg.id)   # the same id, a new registration
    uses = [reg.unregister, lambda: reg.run([]), lambda: chip_worker.run(reg, []), lambda: int(reg),
            lambda: chip_worker.callable_buffer(reg), lambda: chip_worker.unregister(reg)]
    for use in uses:
        with pytest.raises(simpler.InvalidState, match=f"registration {reg.id} was unregistered"):
            use()
    assert again.registered and again in chip_worker.callables   # the stale handle never reached it
    run_add(again.run)
    again.unregister()
    assert counts(chip_worker) == before


def test_registration_context_manager(warm, chip_worker, add):
    before = counts(chip_worker)
    with chip_worker.register(add) as reg:
        run_add(reg.run)
        assert counts(chip_worker)[0] == before[0] + 1
    assert not reg.registered and counts(chip_worker) == before
    with pytest.raises(RuntimeError, match="inside"):
        with chip_worker.registered(add) as inner:
            assert isinstance(inner, simpler.Registration)
            raise RuntimeError("inside")
    assert not inner.registered and counts(chip_worker) == before
    with chip_worker.register(add) as reg:
        reg.unregister()                        # already gone: exit leaves it be
    assert counts(chip_worker) == before


def test_a_handle_of_another_worker_is_refused(chip_worker, add, simpler_platform):
    with simpler.ChipWorker(simpler_platform) as other:
        reg, buf = other.register(add), other.malloc(64)
        for use in (lambda: chip_worker.run(reg, []), lambda: chip_worker.unregister(reg),
                    lambda: chip_worker.free(buf), lambda: chip_worker.copy_from(buf, 8)):
            with pytest.raises(simpler.InvalidArgument, match="belongs to another ChipWorker"):
                use()
        assert reg.registered and not buf.freed
        buf.free()
        reg.unregister()


def test_a_device_buffer_is_an_object_and_its_address(chip_worker):
    before = counts(chip_worker)
    buf = chip_worker.malloc(64)
    assert isinstance(buf, simpler.DeviceBuffer) and buf.nbytes == 64 and not buf.freed
    addr = buf.addr
    assert type(addr) is int and int(buf) == operator.index(buf) == addr and buf == addr
    assert f"{buf:#x}" == hex(addr) and hex(addr) in repr(buf) and "64 bytes" in repr(buf)
    assert counts(chip_worker)[1] == before[1] + 1
    data = np.arange(16, dtype=F32)
    chip_worker.copy_to(buf, data)              # the object
    assert chip_worker.copy_from(addr, 64) == data.tobytes()    # the int
    out = np.zeros(16, F32)
    chip_worker.copy_from(buf, out)
    np.testing.assert_array_equal(out, data)
    assert simpler.DeviceTensor(buf, (16,), F32).addr == addr
    buf.free()
    assert buf.freed and "was freed" in repr(buf) and buf.addr == addr
    with pytest.raises(simpler.InvalidState, match="was freed"):
        buf.free()                              # a second free: InvalidState, never a double free
    assert counts(chip_worker) == before


def test_as_tensor_runs_and_checks_its_size(chip_worker, add):
    n = 32
    a, b, out = chip_worker.malloc(n * 4), chip_worker.malloc(n * 4), chip_worker.malloc(n * 4 + 8)
    try:
        chip_worker.copy_to(a, np.arange(n, dtype=F32))
        chip_worker.copy_to(b, np.ones(n, F32))
        ta, tb, tout = a.as_tensor((n,), F32), b.as_tensor(n, np.float32), out.as_tensor((4, 8), "float32")
        assert isinstance(tout, simpler.DeviceTensor) and tout.addr == out.addr and tout.shape == (4, 8)
        with chip_worker.registered(add) as reg:
            reg.run([ta, tb, out.as_tensor((n,), F32), 1])
        np.testing.assert_array_equal(chip_worker.copy_from(out, np.zeros(n, F32)), np.arange(n) + 1)
        with pytest.raises(simpler.InvalidArgument, match=r"needs 132 bytes; device buffer .* has 128"):
            a.as_tensor((33,), F32)
        with pytest.raises(simpler.InvalidArgument, match="not supported"):
            a.as_tensor((2,), np.complex64)
        with pytest.raises(simpler.InvalidArgument):
            a.as_tensor((-1,), F32)
    finally:
        for buf in (a, b, out):
            buf.free()


def test_device_buffer_context_manager_and_int_free(chip_worker):
    before = counts(chip_worker)
    with chip_worker.malloc(256) as buf:
        chip_worker.copy_to(buf, bytes(256))
        assert counts(chip_worker)[1] == before[1] + 1
    assert buf.freed and counts(chip_worker) == before
    other = chip_worker.malloc(128)
    chip_worker.free(int(other))                # through the int form: the object knows
    for use in (other.free, lambda: chip_worker.copy_to(other, b"x"), lambda: other.as_tensor((1,), F32),
                lambda: simpler.DeviceTensor(other, (1,), F32)):
        with pytest.raises(simpler.InvalidState, match="was freed"):
            use()
    with chip_worker.malloc(64) as inner:
        inner.free()                            # freed inside: exit leaves it be
    assert counts(chip_worker) == before


@pytest.mark.parametrize("simpler_runtime", simpler.RUNTIMES)
def test_handles_after_finalize_are_invalid_state(simpler_platform, simpler_runtime, add):
    w = simpler.ChipWorker(simpler_platform, simpler_runtime)
    reg, buf, freed = w.register(add), w.malloc(64), w.malloc(64)
    freed.free()
    w.finalize()
    for use in (lambda: reg.run([]), reg.unregister, lambda: int(reg), buf.free, lambda: int(buf),
                lambda: buf.as_tensor((4,), F32), lambda: w.run(reg, []), lambda: w.free(buf)):
        with pytest.raises(simpler.InvalidState):
            use()
    assert "finalized" in repr(reg) and "finalized" in repr(buf) and "was freed" in repr(freed)
    with reg, buf:                              # exits after finalize touch nothing
        pass
    with simpler.ChipWorker(simpler_platform, simpler_runtime) as w2:     # and the device goes on
        with w2.register(add) as r2:
            run_add(r2.run)


def test_handles_hold_nothing_once_released(warm, chip_worker, add):
    """Many registrations and buffers come and go: the device counters come
    back, and the worker keeps no handle it no longer needs."""
    before = counts(chip_worker)
    refs = []
    for i in range(50):
        with chip_worker.register(add) as reg, chip_worker.malloc(1024 + i) as buf:
            chip_worker.copy_to(buf, bytes(16))
            refs += [weakref.ref(reg), weakref.ref(buf)]
    del reg, buf
    gc.collect()
    assert counts(chip_worker) == before
    assert all(r() is None for r in refs)
    # A buffer dropped unfreed is still allocated (as its int would be), and free(addr) ends it.
    addr = int(chip_worker.malloc(64))
    gc.collect()
    assert counts(chip_worker)[1] == before[1] + 1
    chip_worker.free(addr)
    assert counts(chip_worker) == before
