"""Tensors from other libraries: whatever exports __dlpack__,
__array_interface__ or the buffer protocol goes where a numpy array goes,
its outputs written back into its own memory; anything else is an
InvalidArgument naming its type."""
from __future__ import annotations

import array
import os
import sys

import numpy as np
import pytest

import simpler

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "st"))
import scenes  # noqa: E402

F32 = np.float32
N = 64


class DLPackOnly:
    """Exports a numpy array through DLPack and nothing else."""

    def __init__(self, a: np.ndarray) -> None:
        self._a = a

    def __dlpack__(self, **kw):
        return self._a.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


class ArrayInterfaceOnly:
    """Exports a numpy array's memory through __array_interface__ only."""

    def __init__(self, a: np.ndarray) -> None:
        self._a = a
        self.__array_interface__ = a.__array_interface__


@pytest.fixture(scope="module")
def add(kc):
    return scenes.callable_(kc, "vector_add")   # out = a + b, all float32


@pytest.fixture
def reg(chip_worker, add):
    with chip_worker.register(add) as r:
        yield r


def inputs():
    a = np.arange(N, dtype=F32)
    return a, a * 3


@pytest.mark.parametrize("wrap", [DLPackOnly, ArrayInterfaceOnly, memoryview], ids=lambda w: w.__name__)
def test_exporters_go_in_and_outputs_come_back_in_place(chip_worker, reg, wrap):
    a, b = inputs()
    out = np.full(N, np.nan, F32)
    chip_worker.run(reg, [wrap(a), wrap(b), wrap(out), 1])
    np.testing.assert_array_equal(out, a + b)     # written into the exporter's memory


def test_array_array_bytearray_and_a_cast_memoryview(chip_worker, reg):
    a, b = inputs()
    out = array.array("f", [0.0] * N)               # float32 array.array
    chip_worker.run(reg, [array.array("f", a.tolist()), memoryview(bytearray(b.tobytes())).cast("f"), out, 1])
    np.testing.assert_array_equal(np.frombuffer(out, F32), a + b)
    raw = bytearray(N * 4)
    chip_worker.run(reg, [a, b, memoryview(raw).cast("f"), 1])
    np.testing.assert_array_equal(np.frombuffer(raw, F32), a + b)


def test_a_strided_buffer_output_is_written_back_into_its_elements(chip_worker, reg):
    a, b = inputs()
    backing = array.array("f", [-1.0] * (2 * N))
    chip_worker.run(reg, [a, b, memoryview(backing)[::2], 1])
    got = np.frombuffer(backing, F32)
    np.testing.assert_array_equal(got[::2], a + b)
    np.testing.assert_array_equal(got[1::2], -1)    # the elements between are not touched


def test_graph_replays_and_submits_take_them_too(chip_worker, reg):
    a, b = inputs()
    out = array.array("f", [0.0] * N)
    chip_worker.submit(reg, [DLPackOnly(a), b, out, 1]).result()
    np.testing.assert_array_equal(np.frombuffer(out, F32), a + b)
    graph = chip_worker.record(reg, [a, b, np.zeros(N, F32), 1])
    try:
        out2 = np.zeros(N, F32)
        graph.run([ArrayInterfaceOnly(b), DLPackOnly(a), memoryview(out2), 1])
        np.testing.assert_array_equal(out2, a + b)
    finally:
        graph.release()


def test_a_read_only_export_as_an_output_is_refused(chip_worker, reg):
    a, b = inputs()
    frozen = np.zeros(N, F32)
    frozen.flags.writeable = False
    for out, kind in [(bytes(N * 4), "bytes"), (memoryview(frozen), "memoryview"),
                      (ArrayInterfaceOnly(frozen), "ArrayInterfaceOnly")]:
        with pytest.raises(simpler.InvalidArgument, match=f"argument 2 is an output, but its {kind}'s memory "
                                                          f"is read-only"):
            chip_worker.run(reg, [a, b, out, 1])
    # as an input it is fine
    out = np.zeros(N, F32)
    chip_worker.run(reg, [memoryview(a.tobytes()).cast("f"), b, out, 1])
    np.testing.assert_array_equal(out, a + b)


@pytest.mark.parametrize("bad", [[1.0] * N, "text", object(), {"a": 1}], ids=lambda b: type(b).__name__)
def test_anything_else_is_invalid_argument_naming_its_type(chip_worker, reg, bad):
    a, _ = inputs()
    with pytest.raises(simpler.InvalidArgument, match=f"argument 1 is a tensor .* not {type(bad).__name__}$"):
        chip_worker.run(reg, [a, bad, np.zeros(N, F32), 1])


def test_an_exporter_that_refuses_is_invalid_argument_with_its_reason(chip_worker, reg):
    class Refuses:
        def __dlpack__(self, **kw):
            raise BufferError("not on the host")

        def __dlpack_device__(self):
            return (1, 0)

    a, b = inputs()
    with pytest.raises(simpler.InvalidArgument, match="argument 0: a .*Refuses cannot be read as a host array"):
        chip_worker.run(reg, [Refuses(), b, np.zeros(N, F32), 1])
    # read, but of an element type no tensor has
    with pytest.raises(simpler.InvalidArgument, match=r"argument 1: dtype \|S1 is not supported"):
        chip_worker.run(reg, [a, memoryview(b"abc").cast("c"), np.zeros(N, F32), 1])


def test_untyped_arguments_take_exporters_and_scalars_stay_scalars(chip_worker, kc):
    """Without dtypes in the signature an exporter is still a tensor, and
    numpy scalars (which export the buffer protocol too) are scalars."""
    k = scenes.kernel(kc, "add")
    untyped = simpler.ChipCallable.build(kc.compile(scenes.HERE / "orch" / "vector_add.c"),
                                         [k], ["in", "in", "out", "scalar"])
    a, b = inputs()
    out = bytearray(N * 4)
    with chip_worker.registered(untyped) as cid:
        chip_worker.run(cid, [DLPackOnly(a), memoryview(b), memoryview(out).cast("f"), np.int64(1)])
    np.testing.assert_array_equal(np.frombuffer(out, F32), a + b)


def test_torch_cpu_tensors(chip_worker, reg):
    torch = pytest.importorskip("torch")
    a = torch.arange(N, dtype=torch.float32)
    b = a * 3
    out = torch.zeros(N, dtype=torch.float32)
    chip_worker.run(reg, [a, b, out, 1])
    assert torch.equal(out, a + b)
    strided = torch.zeros(2 * N, dtype=torch.float32)[::2]    # a view: written through to its storage
    chip_worker.run(reg, [a, b, strided, 1])
    assert torch.equal(strided, a + b)
    with pytest.raises(simpler.InvalidArgument, match="cannot be read as a host array"):
        chip_worker.run(reg, [a.clone().requires_grad_(), b, out, 1])


def test_task_args_repr_shows_an_exporters_kind_not_its_elements():
    r = repr(simpler.TaskArgs(ArrayInterfaceOnly(np.zeros(3, F32)), memoryview(bytearray(8)), 2))
    assert r == "TaskArgs(ArrayInterfaceOnly, memoryview(8,), 2)"
