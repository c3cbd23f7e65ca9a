"""Collectives across the chips of a Worker (simpler/collectives.py): each
equals its numpy definition, reductions are bit-identical run to run and on
every chip, the host graph orders the steps by itself, and bad arguments
are InvalidArgument naming what is wrong."""
from __future__ import annotations

import threading
import zlib

import numpy as np
import pytest

import simpler
from simpler.multi_chip import Worker
from simpler.pytest_plugin import _runtime_params


def pytest_generate_tests(metafunc):
    # The unit suite's conftest pins one runtime; a step is a chip run, so
    # these tests run on each runtime --runtime selects.
    if "simpler_runtime" in metafunc.fixturenames:
        metafunc.parametrize("simpler_runtime", _runtime_params(metafunc), scope="module")


_workers: dict = {}


@pytest.fixture(scope="module")
def workers():
    """Sim Workers by (runtime, chips), made on first use, shared by the
    module's tests (each test frees what it allocates)."""
    yield lambda runtime, n: _workers.get((runtime, n)) or _workers.setdefault((runtime, n),
                                                                                Worker("sim", runtime, n))
    for w in _workers.values():
        w.finalize()
    _workers.clear()


def _random(rng, dtype, shape):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    # products of up to 8 of these wrap; numpy's wrap the same way
    return rng.integers(max(info.min, -50), min(info.max, 50), shape, endpoint=True).astype(dtype)


def _upload(w, arrays):
    ts = [w.malloc(d, a.shape, a.dtype) for d, a in zip(w.devices, arrays)]
    for t, a in zip(ts, arrays):
        w.copy(t, a)
    return ts


def _download(w, ts):
    outs = [np.empty(t.shape, t.dtype) for t in ts]
    for o, t in zip(outs, ts):
        w.copy(o, t)
    w.wait()
    return outs


def _free(w, ts):
    for t in ts:
        w.free(t)


_UFUNCS = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum}


def _reference(op, arrays):
    """op over the chips, in the dtype (numpy's sum would widen int8)."""
    return _UFUNCS[op].reduce(np.stack(arrays), axis=0, dtype=arrays[0].dtype)


def _assert_reduced(got, want):
    if want.dtype.kind == "f":
        tol = {2: 1e-2, 4: 1e-5, 8: 1e-12}[want.dtype.itemsize]
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=tol, atol=tol * 8)
    else:
        np.testing.assert_array_equal(got, want)


CASES = [  # dtype, shape, op
    (np.float32, (1,), "sum"),
    (np.float32, (1003,), "sum"),
    (np.float64, (37, 29), "sum"),
    (np.float16, (4097,), "sum"),
    (np.int32, (1 << 20,), "sum"),        # 4 MiB: several blocks a step
    (np.int64, (5000,), "prod"),
    (np.int8, (777,), "sum"),
    (np.uint8, (3, 5, 7), "max"),
    (np.float32, (2, 3, 4, 5, 6), "min"),
    (np.int16, (999,), "max"),
    (np.float64, (123,), "prod"),
    (np.uint32, (17,), "min"),
]


@pytest.mark.parametrize("chips", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("dtype,shape,op", CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_allreduce_equals_numpy_and_repeats_bitwise(workers, simpler_runtime, chips, dtype, shape, op):
    w = workers(simpler_runtime, chips)
    rng = np.random.default_rng(zlib.crc32(repr((chips, np.dtype(dtype).str, shape, op)).encode()))
    arrays = [_random(rng, dtype, shape) for _ in range(chips)]
    want = _reference(op, arrays)
    results = []
    for _ in range(2):
        ts = _upload(w, arrays)
        h = w.allreduce(ts, op)
        results.append(_download(w, ts))
        assert h.done() and h.exception() is None
        _free(w, ts)
    for got in results[0]:
        _assert_reduced(got, want)
    first = results[0][0].tobytes()
    for got in results[0] + results[1]:     # every chip, both runs: the same bits
        assert got.tobytes() == first


def test_allreduce_64mib(workers, simpler_runtime):
    w = workers(simpler_runtime, 4)
    n = (64 << 20) // 4
    arrays = [np.full(n, d + 1, np.int32) for d in range(4)]
    arrays[2][::4097] = -7          # and not all alike
    want = _reference("sum", arrays)
    ts = _upload(w, arrays)
    w.allreduce(ts)
    for got in _download(w, ts):
        np.testing.assert_array_equal(got, want)
    _free(w, ts)


def test_graph_orders_the_phases(workers, simpler_runtime):
    """The gather phase is ordered after the reductions by the regions
    alone: chip i's gather waits for every other chip's reduction (RAW on
    its segment, WAR on what chip i's reduction read), so with the inputs
    held back by a gate, every edge is there: one from each reduction to
    the gate, and from each gather to the gate and the n-1 reductions."""
    n = 4
    w = workers(simpler_runtime, n)
    arrays = [np.arange(1000, dtype=np.int64) * (d + 1) for d in range(n)]
    ts = _upload(w, arrays)
    w.wait()
    gate = threading.Event()
    graph = w._g()

    def held(node):
        gate.wait(30)
        graph.finish(node, None)

    before = w.edges
    graph.add("gate", None, [], [t.region for t in ts], held)
    h = w.allreduce(ts)
    try:
        assert w.edges - before == n + n * n
        assert not any(s.done() for s in h.steps)
    finally:
        gate.set()
    h.result(30)
    for got in _download(w, ts):
        np.testing.assert_array_equal(got, _reference("sum", arrays))
    _free(w, ts)


def test_collective_then_run_order(workers, simpler_runtime):
    """Collectives order against what follows: a second allreduce on the
    result reads the first's output (sum of sums), submitted at once."""
    w = workers(simpler_runtime, 3)
    arrays = [np.arange(10, dtype=np.float64) + d for d in range(3)]
    ts = _upload(w, arrays)
    w.allreduce(ts)
    w.allreduce(ts, "max")
    w.allreduce(ts)
    for got in _download(w, ts):
        np.testing.assert_array_equal(got, 3 * _reference("sum", arrays))
    _free(w, ts)


def test_a_chip_lost_by_its_first_step_fails_the_collective_not_the_call(simpler_runtime, monkeypatch):
    """Every window is opened before any step is submitted: with each step
    run to its end as it is submitted (the slowest submission there can
    be), chip 1's first step losing chip 1 fails the collective's handle
    with DeviceLost, and allreduce() itself returns (it used to raise
    DeviceLost half way, opening a window onto chip 1's tensor for chip
    2's step, with chips 0 and 1's steps already queued)."""
    with Worker("faulty:sim", simpler_runtime, 4) as w:
        ts = _upload(w, [np.full(64, d, np.float32) for d in range(4)])
        w.wait()
        submit = w._submit_run

        def at_once(*args, **kw):
            h = submit(*args, **kw)
            try:
                h.result(30)
            except simpler.SimplerError:
                pass
            return h

        monkeypatch.setattr(w, "_submit_run", at_once)
        w.chips[1].inject_fault(1, "launch")
        h = w.allreduce(ts)
        with pytest.raises(simpler.DeviceLost, match="chip 1"):
            h.result(30)
        with pytest.raises(simpler.DeviceLost):
            w.wait()
        monkeypatch.undo()
        # chip 1 is gone; a later collective fails likewise; chip 0's tensor,
        # poisoned by the failed collective until written again, is written
        # and read back
        with pytest.raises(simpler.DeviceLost, match="chip 1"):
            w.allreduce(ts).result(30)
        with pytest.raises(simpler.DeviceLost):
            w.wait()
        fresh, got = np.arange(64, dtype=np.float32), np.empty(64, np.float32)
        w.copy(ts[0], fresh)
        w.copy(got, ts[0])
        w.wait()
        np.testing.assert_array_equal(got, fresh)


@pytest.mark.parametrize("chips", [1, 2, 3, 4])
def test_allgather(workers, simpler_runtime, chips):
    w = workers(simpler_runtime, chips)
    rng = np.random.default_rng(chips)
    arrays = [_random(rng, np.float32, (5, 7)) for _ in range(chips)]
    ins = _upload(w, arrays)
    outs = [w.malloc(d, (chips * 5, 7), np.float32) for d in w.devices]
    w.allgather(outs, ins)
    for got in _download(w, outs):
        np.testing.assert_array_equal(got, np.concatenate(arrays))
    _free(w, ins + outs)


@pytest.mark.parametrize("chips", [1, 3, 4])
@pytest.mark.parametrize("op", ["sum", "max"])
def test_reduce_scatter(workers, simpler_runtime, chips, op):
    w = workers(simpler_runtime, chips)
    rng = np.random.default_rng(chips)
    m = 1001
    arrays = [_random(rng, np.int32, (chips * m,)) for _ in range(chips)]
    ins = _upload(w, arrays)
    outs = [w.malloc(d, (m,), np.int32) for d in w.devices]
    w.reduce_scatter(outs, ins, op)
    want = _reference(op, arrays)
    for i, got in enumerate(_download(w, outs)):
        np.testing.assert_array_equal(got, want[i * m:(i + 1) * m])
    _free(w, ins + outs)


@pytest.mark.parametrize("chips,root", [(1, 0), (3, 0), (4, 2)])
def test_broadcast(workers, simpler_runtime, chips, root):
    w = workers(simpler_runtime, chips)
    rng = np.random.default_rng(chips)
    arrays = [_random(rng, np.uint8, (3, 333)) for _ in range(chips)]
    ts = _upload(w, arrays)
    w.broadcast(ts, root)
    for got in _download(w, ts):
        np.testing.assert_array_equal(got, arrays[root])
    _free(w, ts)


@pytest.mark.parametrize("chips", [1, 2, 4])
def test_all_to_all(workers, simpler_runtime, chips):
    w = workers(simpler_runtime, chips)
    rng = np.random.default_rng(chips)
    m = 257
    arrays = [_random(rng, np.float64, (chips, m)) for _ in range(chips)]
    ins = _upload(w, arrays)
    outs = [w.malloc(d, (chips * m,), np.float64) for d in w.devices]
    w.all_to_all(outs, ins)
    for i, got in enumerate(_download(w, outs)):
        np.testing.assert_array_equal(got.reshape(chips, m), np.stack([a[i] for a in arrays]))
    _free(w, ins + outs)


def test_bad_arguments(workers, simpler_runtime):
    w = workers(simpler_runtime, 3)
    ts = [w.malloc(d, (8,), np.float32) for d in w.devices]
    odd_shape = w.malloc(1, (9,), np.float32)
    odd_dtype = w.malloc(2, (8,), np.int32)
    cases = [
        (lambda: w.allreduce(ts[:2]), "2 tensors for 3 chips"),
        (lambda: w.allreduce([ts[0], odd_shape, ts[2]]), r"chip 1\] is float32\[9\]"),
        (lambda: w.allreduce([ts[0], ts[1], odd_dtype]), r"chip 2\] is int32\[8\]"),
        (lambda: w.allreduce([ts[1], ts[0], ts[2]]), r"\[chip 0\].* is on chip 1"),
        (lambda: w.allreduce([ts[0], np.zeros(8, np.float32), ts[2]]), r"\[chip 1\] must be a ChipTensor"),
        (lambda: w.allreduce(ts[0]), "must be a list of ChipTensors"),
        (lambda: w.allreduce(ts, "mean"), "op must be one of sum, prod, max, min"),
        (lambda: w.allgather(ts, ts), "outputs must be float32 with 3 times"),
        (lambda: w.reduce_scatter(ts, ts), "do not split into 3 equal blocks"),
        (lambda: w.all_to_all(ts, ts), "do not split into 3 equal blocks"),
        (lambda: w.broadcast(ts, 7), "root must be a device of this Worker"),
    ]
    try:
        for call, message in cases:
            with pytest.raises(simpler.InvalidArgument, match=message):
                call()
        nine = [w.malloc(d, (9,), np.float32) for d in w.devices]
        with pytest.raises(simpler.InvalidArgument, match="is input"):
            w.all_to_all(nine, nine)
        _free(w, nine)
        with Worker("sim", simpler_runtime, 3) as other:
            foreign = other.malloc(1, (8,), np.float32)
            with pytest.raises(simpler.InvalidArgument, match=r"\[chip 1\].*another Worker"):
                w.allreduce([ts[0], foreign, ts[2]])
        w.free(odd_dtype)
        with pytest.raises(simpler.InvalidState, match="freed"):
            w.broadcast([ts[0], ts[1], odd_dtype], 0)
    finally:
        _free(w, ts + [odd_shape])


def test_a_dtype_simpler_cannot_pass(workers, simpler_runtime):
    w = workers(simpler_runtime, 2)
    ts = [w.malloc(d, (4,), np.complex64) for d in w.devices]
    try:
        with pytest.raises(simpler.InvalidArgument, match="complex64"):
            w.allreduce(ts)
    finally:
        _free(w, ts)


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_every_collective_on_each_platform(simpler_platform, simpler_runtime, dtype):
    """Every collective over 4 chips (on onboard: 4 device processes, peers
    reached through windows onto their GM), against numpy, the allreduce
    bitwise the same twice."""
    rng = np.random.default_rng(11)
    n = 4
    with Worker(simpler_platform, simpler_runtime, n) as w:
        for size in (1, 1000, 1 << 18):
            for op in ("sum", "max"):
                arrays = [_random(rng, dtype, size) for _ in range(n)]
                got = []
                for _ in range(2):
                    ts = _upload(w, arrays)
                    w.allreduce(ts, op)
                    got.append(_download(w, ts))
                    _free(w, ts)
                want = _reference(op, arrays)
                for chip, g in enumerate(got[0]):
                    _assert_reduced(g, want)
                    assert g.tobytes() == got[1][chip].tobytes() == got[0][0].tobytes(), f"chip {chip}"
        m = 257
        inputs = [_random(rng, dtype, n * m) for _ in range(n)]
        ins = _upload(w, inputs)
        outs = [w.malloc(d, (n * m,), dtype) for d in w.devices]
        w.all_to_all(outs, ins)
        for i, o in enumerate(_download(w, outs)):
            np.testing.assert_array_equal(o, np.concatenate([inputs[j][i * m:(i + 1) * m] for j in range(n)]))
        small = [w.malloc(d, (m,), dtype) for d in w.devices]
        w.reduce_scatter(small, ins, "sum")
        for i, o in enumerate(_download(w, small)):
            _assert_reduced(o, _reference("sum", [a[i * m:(i + 1) * m] for a in inputs]))
        w.allgather(outs, small)
        gathered = _download(w, small)
        for o in _download(w, outs):
            np.testing.assert_array_equal(o, np.concatenate(gathered))
        w.broadcast(ins, w.devices[2])
        for o in _download(w, ins):
            np.testing.assert_array_equal(o, inputs[2])
        _free(w, ins + outs + small)
