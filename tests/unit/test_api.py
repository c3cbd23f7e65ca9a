"""The Python layer: callables, configs, exceptions, worker lifecycle and
device memory."""
from __future__ import annotations

import numpy as np
import pytest

import simpler
from simpler.errors import error_for

ORCH = """
#include <simpler/orch.h>
SIMPLER_ORCHESTRATION(orchestrate) {
    simpler_tensor t[2] = {args->tensors[0], args->tensors[1]};
    uint32_t tags[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    return simpler_submit(api, o, 3, SIMPLER_CORE_AIV, t, tags, 2, args->scalars, 1, NULL);
}
"""
SCALE = """
#include <simpler/kernel.h>
SIMPLER_KERNEL(scale) {
    const double *in = simpler_tensor_data(&args->tensors[0]);
    double *out = simpler_tensor_data(&args->tensors[1]);
    for (int64_t i = 0; i < simpler_tensor_numel(&args->tensors[1]); i++)
        out[i] = in[i] * simpler_scalar_f64(args->scalars[0]);
}
"""


@pytest.fixture(scope="module")
def scale_callable():
    kc = simpler.KernelCompiler()
    k = simpler.CoreCallable(3, "aiv", kc.compile_source(SCALE), ["in", "out"], num_scalars=1, entry="scale")
    return simpler.ChipCallable.build(kc.compile_source(ORCH), [k],
                                      [("in", np.float64), ("out", np.float64), "scalar"])


def test_callable_repr_and_signature(scale_callable):
    assert scale_callable.signature[0] == simpler.ArgSpec("in", np.dtype(np.float64))
    assert scale_callable.signature[2].is_scalar
    r = repr(scale_callable)
    assert "1 kernels" in r and "in, out, scalar" in r
    # a blob read back from bytes decodes the same signature
    again = simpler.ChipCallable.from_bytes(scale_callable.to_bytes())
    assert [s.direction for s in again.signature] == ["in", "out", "scalar"]


@pytest.mark.parametrize("kwargs, message", [
    ({"core_type": "gpu"}, "core type"),
    ({"signature": ["sideways"]}, "direction"),
])
def test_core_callable_rejects_bad_fields(kwargs, message):
    base = dict(func_id=0, core_type="aiv", binary=b"\x7fELF" + b"\0" * 60, signature=["in"])
    with pytest.raises(ValueError, match=message):
        simpler.CoreCallable(**{**base, **kwargs})


def test_build_validates_in_c(kernel_compiler):
    k = simpler.CoreCallable(0, "aiv", b"not an elf" * 10, ["in"])
    with pytest.raises(simpler.InvalidCallable, match="orchestration: ELF class 0 is not 64-bit"):
        simpler.ChipCallable.build(b"\x7fELF" + b"\0" * 100, [k], ["in"])
    orch = kernel_compiler.compile_source(
        "#include <simpler/orch.h>\nSIMPLER_ORCHESTRATION(orchestrate) { (void)api; (void)o; (void)args; return 0; }\n")
    with pytest.raises(simpler.InvalidCallable, match=r"kernel 0 \(func 0\): not an ELF object \(100 bytes"):
        simpler.ChipCallable.build(orch, [k], ["in"])


def test_error_classes():
    assert isinstance(error_for(-3, "x"), MemoryError)
    assert isinstance(error_for(-6, "x"), TimeoutError)
    assert isinstance(error_for(-4, "x"), ValueError)
    assert isinstance(error_for(-8, "gone"), KeyError) and str(error_for(-8, "gone")) == "gone"
    for code in range(-1, -14, -1):
        e = error_for(code, "msg")
        assert isinstance(e, simpler.SimplerError) and e.code == code


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"platform": "tpu"}, simpler.InvalidArgument, "unknown platform 'tpu'"),
    ({"runtime": "magic"}, simpler.InvalidArgument, "unknown runtime 'magic'"),
    ({"device_id": 99}, simpler.InvalidArgument, "device_id 99 out of range"),
    ({"gm_capacity": -5}, simpler.InvalidArgument, "gm_capacity"),
])
def test_worker_init_errors(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        simpler.ChipWorker(**kwargs)


def test_worker_lifecycle_and_repr(scale_callable):
    w = simpler.ChipWorker("sim", "host_build_graph", 0)
    assert "platform='sim'" in repr(w) and "0 callables" in repr(w)
    with w:
        cid = w.register(scale_callable)
        assert "1 callables" in repr(w)
        x = np.arange(5, dtype=np.float64)
        out = np.zeros_like(x)
        w.run(cid, [x, out, 2.5])
        np.testing.assert_array_equal(out, x * 2.5)
    assert w.closed and "finalized" in repr(w)
    with pytest.raises(simpler.InvalidState, match="finalized"):
        w.run(cid, [x, out, 2.5])
    w.finalize()  # idempotent


def test_device_memory_roundtrip_and_device_tensors(scale_callable):
    with simpler.ChipWorker() as w:
        cid = w.register(scale_callable)  # holds the callable's own GM
        base = w.committed_memory
        x = np.linspace(0, 1, 1000)
        addr_x, addr_y = w.malloc(x.nbytes), w.malloc(x.nbytes)
        assert w.committed_memory >= base + 2 * x.nbytes
        w.copy_to(addr_x, x)
        assert w.copy_from(addr_x, 16) == x[:2].tobytes()
        w.run(cid, simpler.TaskArgs(simpler.DeviceTensor(addr_x, x.shape, x.dtype),
                                    simpler.DeviceTensor(addr_y, x.shape, np.float64), -1.0))
        y = w.copy_from(addr_y, np.empty_like(x))
        np.testing.assert_array_equal(y, -x)
        w.free(addr_x)
        w.free(addr_y)
        # The run's graph image stays in GM for the next run, reported apart.
        assert w.stats["run_block_bytes"] > 0
        assert w.committed_memory - w.stats["run_block_bytes"] == base


def test_copies_take_arrays_of_any_dtype_read_only_or_empty():
    # The pointer comes from the array's bytes (worker._host_pointer),
    # whatever the dtype: datetime64 has no buffer format of its own.
    with simpler.ChipWorker() as w:
        base = w.committed_memory
        buf = w.malloc(64)
        days = np.array(["2020-01-01", "2026-12-06"], dtype="datetime64[D]")
        w.copy_to(buf, days)
        np.testing.assert_array_equal(w.copy_from(buf, np.zeros(2, np.int64)), days.view(np.int64))
        frozen = np.arange(4, dtype=np.float32)
        frozen.flags.writeable = False
        w.copy_to(buf, frozen)
        np.testing.assert_array_equal(w.copy_from(buf, np.zeros(4, np.float32)), frozen)
        w.copy_to(buf, np.zeros(0))
        w.free(buf)
        assert w.committed_memory == base


def test_outputs_written_back_into_noncontiguous_arrays(scale_callable):
    with simpler.ChipWorker() as w:
        cid = w.register(scale_callable)
        x = np.arange(10, dtype=np.float64)
        out = np.zeros((10, 2))[:, 0]  # a strided view
        w.run(cid, [x, out, 3.0])
        np.testing.assert_array_equal(out, 3 * x)


def test_call_config_checks():
    with pytest.raises(simpler.InvalidArgument, match="scheduler_timeout"):
        simpler.CallConfig(scheduler_timeout=0)._to_c()
    cfg = simpler.CallConfig(block_dim=3, scheduler_timeout=1.5)._to_c()
    assert cfg.block_dim == 3 and cfg.scheduler_timeout_ms == 1500


def test_unsupported_dtype_and_scalar(scale_callable):
    with simpler.ChipWorker() as w:
        cid = w.register(scale_callable)
        x = np.zeros(3, np.complex64)
        with pytest.raises(simpler.InvalidArgument, match="complex64 is not supported"):
            w.run(cid, [x, x, 1.0])
        with pytest.raises(simpler.InvalidArgument, match="scalar argument must be a number"):
            w.run(cid, [np.zeros(3), np.zeros(3), "two"])


def test_read_only_output_array_is_refused(scale_callable):
    with simpler.ChipWorker() as w:
        cid = w.register(scale_callable)
        x = np.arange(4, dtype=np.float64)
        frozen = np.frombuffer(bytes(32), dtype=np.float64)  # read-only view of immutable bytes
        with pytest.raises(simpler.InvalidArgument, match="argument 1 is an output, but its array is read-only"):
            w.run(cid, [x, frozen, 2.0])
        assert frozen.tobytes() == bytes(32)
        ro_in = x.copy()
        ro_in.flags.writeable = False
        out = np.zeros(4)
        w.run(cid, [ro_in, out, 2.0])  # a read-only input is fine
        np.testing.assert_array_equal(out, 2 * x)


def test_noncontiguous_input_is_not_written_back(scale_callable):
    with simpler.ChipWorker() as w:
        cid = w.register(scale_callable)
        base = np.arange(8, dtype=np.float64)
        view = base[::2]
        out = np.zeros(4)
        w.run(cid, [view, out, 1.0])
        np.testing.assert_array_equal(base, np.arange(8))
        np.testing.assert_array_equal(out, [0, 2, 4, 6])


FIRST_ONLY = """
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) {
    double *out = simpler_tensor_data(&args->tensors[0]);
    out[0] = (double)simpler_scalar_i64(args->scalars[0]);
    if (args->scalars[1])  /* write everything */
        for (int64_t i = 1; i < simpler_tensor_numel(&args->tensors[0]); i++)
            out[i] = out[0];
}
"""
ORCH_FIRST_ONLY = """
#include <simpler/orch.h>
SIMPLER_ORCHESTRATION(orchestrate) {
    simpler_tensor t = args->tensors[0];
    uint32_t tag = SIMPLER_OUTPUT_EXISTING;
    return simpler_submit(api, o, 0, SIMPLER_CORE_AIV, &t, &tag, 1, args->scalars, 2, NULL);
}
"""


def test_output_elements_a_kernel_skips_keep_their_values():
    """"out" arrays are staged with their contents, so GM left over from
    earlier runs never leaks into them."""
    kc = simpler.KernelCompiler()
    k = simpler.CoreCallable(0, "aiv", kc.compile_source(FIRST_ONLY), ["out"], num_scalars=2)
    c = simpler.ChipCallable.build(kc.compile_source(ORCH_FIRST_ONLY), [k], [("out", np.float64), "scalar", "scalar"])
    with simpler.ChipWorker() as w:
        cid = w.register(c)
        out = np.zeros(1000)
        w.run(cid, [out, 99, 1])  # leaves 99s in the GM block the next run reuses
        assert (out == 99).all()
        out = np.full(1000, 7.0)
        w.run(cid, [out, 1, 0])
        assert out[0] == 1 and (out[1:] == 7).all()


def test_bfloat16_signatures_decode():
    kc = simpler.KernelCompiler()
    k = simpler.CoreCallable(0, "aiv", kc.compile_source(FIRST_ONLY), ["out"], num_scalars=2)
    c = simpler.ChipCallable.build(kc.compile_source(ORCH_FIRST_ONLY), [k], [("in", "bfloat16"), "scalar"])
    again = simpler.ChipCallable.from_bytes(c.to_bytes())
    assert again.signature[0].dtype == "bfloat16" and "in, scalar" in repr(again)


@pytest.mark.parametrize("call, message", [
    (lambda w: w.register(None), "takes a ChipCallable"),
    (lambda w: w.unregister(-1), "callable_id -1 is out of range"),
    (lambda w: w.run(2**40, []), "callable_id 1099511627776 is out of range"),
    (lambda w: w.copy_from(2**64, 8), "address .* out of range"),
    (lambda w: w.copy_to(0, b"x"), "not allocated device memory"),
])
def test_out_of_range_values_are_invalid_arguments(call, message):
    with simpler.ChipWorker() as w:
        with pytest.raises(simpler.InvalidArgument, match=message):
            call(w)


def test_finalize_while_in_use_elsewhere_is_an_error_not_a_crash(scale_callable):
    w = simpler.ChipWorker()
    cid = w.register(scale_callable)
    w.finalize()
    for call in (lambda: w.run(cid, []), lambda: w.malloc(8), lambda: w.stats):
        with pytest.raises(simpler.InvalidState):
            call()
    assert not w.usable
