"""simpler.testing's scene helper: a callable, its inputs and its golden,
run and compared per dtype; a mismatch names the scene, platform, runtime,
output and the first element that differs, with its index."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import simpler
from simpler.testing import Scene, run_scene

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "st"))
import scenes  # noqa: E402

F32 = np.float32


@pytest.fixture(scope="module")
def add(kc):
    return scenes.callable_(kc, "vector_add")   # out = a + b


@pytest.fixture(scope="module")
def chains(kc):
    return scenes.callable_(kc, "chains")       # X += 1, scalar times (inout)


def two_inputs():
    a = np.linspace(-1, 1, 300, dtype=F32)
    return [a, a * 2, np.zeros_like(a), 2]


def test_import_simpler_is_enough():
    assert simpler.testing.run_scene is run_scene and "testing" in simpler.__all__


def test_a_chip_callable_is_registered_for_the_run_only(chip_worker, add):
    before = chip_worker.stats["registered_callables"]
    [out] = run_scene(chip_worker, add, two_inputs, lambda a, b, out, n: a + b)
    np.testing.assert_array_equal(out, np.linspace(-1, 1, 300, dtype=F32) * 3)
    assert chip_worker.stats["registered_callables"] == before


def test_a_registration_and_an_inout_golden_sees_the_inputs_before_the_run(chip_worker, chains):
    start = np.arange(40, dtype=F32).reshape(5, 8)
    with chip_worker.register(chains) as reg:
        [x] = Scene(reg, lambda: [start.copy(), 7], lambda x, n: x + n).run(chip_worker, block_dim=2)
    np.testing.assert_array_equal(x, start + 7)


def test_a_wrong_golden_names_where_and_the_first_index(chip_worker, add):
    def golden(a, b, out, n):
        want = a + b
        want[[41, 200]] += 1
        return want

    with pytest.raises(AssertionError) as e:
        run_scene(chip_worker, add, two_inputs, golden, name="adder")
    msg = str(e.value)
    assert msg.startswith(f"scene adder on {chip_worker.platform}/{chip_worker.runtime}: output argument 2: "
                          f"2 of 300 elements differ")
    assert "first at (41,)" in msg
    with pytest.raises(AssertionError, match=f"^scene on {chip_worker.platform}/"):   # a lambda names nothing
        run_scene(chip_worker, add, lambda: two_inputs(), golden)


def test_tolerances_per_dtype_and_overall(chip_worker, add):
    off = 1e-3     # beyond float32's default tolerance, within the looser ones below

    def golden(a, b, out, n):
        return a + b + off

    with pytest.raises(AssertionError, match="first at"):
        run_scene(chip_worker, add, two_inputs, golden)
    run_scene(chip_worker, add, two_inputs, golden, tolerances={np.float32: (0.0, 2e-3)})
    run_scene(chip_worker, add, two_inputs, golden, atol=2e-3)
    with pytest.raises(AssertionError):   # an entry for another dtype leaves float32's default
        run_scene(chip_worker, add, two_inputs, golden, tolerances={np.float16: (0.0, 1.0)})


def test_outputs_are_chosen_and_counted(chip_worker, add):
    # compare an input too (it is unchanged): outputs given by index
    a_out = run_scene(chip_worker, add, two_inputs, lambda a, b, out, n: (a, a + b), outputs=[0, 2])
    assert len(a_out) == 2
    with pytest.raises(simpler.InvalidArgument, match="golden\\(\\) gave 1 result\\(s\\) for 2 output"):
        run_scene(chip_worker, add, two_inputs, lambda a, b, out, n: a + b, outputs=[0, 2])
    with pytest.raises(simpler.InvalidArgument, match="outputs \\[9\\] are not among its 4 arguments"):
        run_scene(chip_worker, add, two_inputs, lambda *args: args[0], outputs=[9])


def test_other_libraries_tensors_are_read_as_the_run_reads_them(chip_worker, add):
    class DLPackOnly:
        def __init__(self, a):
            self._a = a

        def __dlpack__(self, **kw):
            return self._a.__dlpack__(**kw)

        def __dlpack_device__(self):
            return self._a.__dlpack_device__()

    a = np.arange(32, dtype=F32)
    out = bytearray(a.nbytes)
    seen = []

    def golden(x, y, o, n):
        seen.append((x, o))
        return x + y

    [got] = run_scene(chip_worker, add, lambda: [DLPackOnly(a), a, memoryview(out).cast("f"), 1], golden)
    assert isinstance(seen[0][0], np.ndarray) and seen[0][0].dtype == F32     # not an object array
    np.testing.assert_array_equal(np.frombuffer(out, F32), 2 * a)
    assert np.shares_memory(got, np.frombuffer(out, F32))


def test_device_tensor_outputs_are_read_back(chip_worker, add):
    a = np.arange(16, dtype=F32)
    buf = chip_worker.malloc(a.nbytes)
    try:
        [out] = run_scene(chip_worker, add, lambda: [a, a, buf.as_tensor((16,), F32), 1],
                          lambda a, b, out, n: a + b, outputs=[2])
        np.testing.assert_array_equal(out, 2 * a)
    finally:
        buf.free()


@pytest.mark.parametrize("kwargs, message", [
    ({"callable_": "vector_add"}, "a scene's callable is a ChipCallable or a Registration, not str"),
    ({"make_inputs": [1, 2]}, "make_inputs must be a function, not list"),
    ({"golden": None}, "golden must be a function, not NoneType"),
    ({"outputs": ["out"]}, "outputs must be argument indices"),
    ({"rtol": -1}, "rtol must be a number >= 0"),
    ({"tolerances": {"float32": 1e-3}}, "must be \\(rtol, atol\\)"),
    ({"tolerances": {"nope": (0, 0)}}, "'nope' is not a dtype"),
    ({"config": {"block_dim": 2}}, "config must be a CallConfig, not dict"),
    ({"make_inputs": lambda: 5}, "make_inputs\\(\\) must return the run's arguments .* not int"),
    ({"worker": "sim"}, "a scene runs on a ChipWorker, not str"),
    ({"name": 3}, "a scene's name is a str, not int"),
])
def test_bad_arguments_are_invalid_argument(chip_worker, add, kwargs, message):
    args = {"worker": chip_worker, "callable_": add, "make_inputs": two_inputs,
            "golden": lambda a, b, out, n: a + b, **kwargs}
    with pytest.raises(simpler.InvalidArgument, match=message):
        run_scene(**args)


def test_private_device_dir_is_removed_and_the_variable_restored(monkeypatch):
    monkeypatch.setenv("SIMPLER_DEVICE_DIR", "/tmp/somewhere-else")
    with simpler.testing.private_device_dir() as d:
        assert os.environ["SIMPLER_DEVICE_DIR"] == str(d) and d.is_dir()
        assert d.stat().st_mode & 0o777 == 0o700
    assert not d.exists() and os.environ["SIMPLER_DEVICE_DIR"] == "/tmp/somewhere-else"
