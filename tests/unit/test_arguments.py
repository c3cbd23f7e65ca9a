"""Arguments are checked and converted, never wrapped: scalars outside 64
bits, typed scalars converted to their dtype (or refused), and every bad
argument of every public function a SimplerError subclass."""
from __future__ import annotations

import numpy as np
import pytest

import simpler
from simpler import device

from test_api import ORCH, SCALE  # the one-task callable and its scaling kernel

# out = in + (the scalar as the int32 it is declared).
ADD_I32 = """
#include <string.h>
#include <simpler/kernel.h>
SIMPLER_KERNEL(scale) {
    const double *in = simpler_tensor_data(&args->tensors[0]);
    double *out = simpler_tensor_data(&args->tensors[1]);
    int32_t s;
    memcpy(&s, &args->scalars[0], sizeof s);
    for (int64_t i = 0; i < simpler_tensor_numel(&args->tensors[1]); i++)
        out[i] = in[i] + s;
}
"""


def build(kc, kernel, scalar_spec):
    k = simpler.CoreCallable(3, "aiv", kc.compile_source(kernel), ["in", "out"], num_scalars=1, entry="scale")
    return simpler.ChipCallable.build(kc.compile_source(ORCH), [k],
                                      [("in", np.float64), ("out", np.float64), scalar_spec])


def test_a_typed_scalar_is_converted_to_its_dtype(chip_worker, kc):
    with chip_worker.registered(build(kc, SCALE, ("scalar", np.float64))) as cid:
        a, out = np.arange(8, dtype=np.float64), np.zeros(8)
        for two in (2, np.int64(2), 2.0, np.float32(2)):
            out[:] = 0
            chip_worker.run(cid, simpler.TaskArgs(a, out, two))
            np.testing.assert_array_equal(out, 2 * a)
    with chip_worker.registered(build(kc, ADD_I32, ("scalar", np.int32))) as cid:
        chip_worker.run(cid, simpler.TaskArgs(a, out, -3))
        np.testing.assert_array_equal(out, a - 3)
        chip_worker.run(cid, simpler.TaskArgs(a, out, 4.0))   # integral: fits
        np.testing.assert_array_equal(out, a + 4)
        for bad, message in ((2.5, "2.5 is not an integer"), (2**31, "out of range for int32"),
                             ("3", "must be a number")):
            with pytest.raises(simpler.InvalidArgument, match=message):
                chip_worker.run(cid, simpler.TaskArgs(a, out, bad))


def test_untyped_scalars_keep_their_bits_and_never_wrap(chip_worker, kc):
    with chip_worker.registered(build(kc, SCALE, "scalar")) as cid:
        a, out = np.arange(4, dtype=np.float64), np.zeros(4)
        chip_worker.run(cid, simpler.TaskArgs(a, out, 0.5))
        np.testing.assert_array_equal(out, a / 2)
        for bad, message in ((2**64 + 5, "does not fit in 64 bits"), (2**100, "does not fit in 64 bits"),
                             (-(2**63) - 1, "does not fit in 64 bits"),
                             (np.longdouble(1), "scalars are at most 8"), (np.complex128(1), "scalars are at most 8"),
                             ("x", "must be a number")):
            with pytest.raises(simpler.InvalidArgument, match=message):
                chip_worker.run(cid, simpler.TaskArgs(a, out, bad))
        chip_worker.run(cid, simpler.TaskArgs(a, out, 2**64 - 1))     # the largest that fits goes through


BAD_CALLS = [
    (lambda: simpler.ChipWorker(platform=None), "platform must be one of"),
    (lambda: simpler.ChipWorker(runtime=3), "runtime must be one of"),
    (lambda: simpler.ChipWorker(gm_capacity="1G"), "gm_capacity must be an integer"),
    (lambda: simpler.ChipWorker(gm_capacity=1.5e9), "gm_capacity must be an integer"),
    (lambda: simpler.ChipWorker(device_id=2**40), "device_id 1099511627776 is out of range"),
    (lambda: simpler.ChipWorker(device_id=0.5), "device_id must be an integer"),
    (lambda: simpler.CoreCallable(func_id=-1, core_type="aiv", binary=b"x", signature=[]), "func_id -1 is out of range"),
    (lambda: simpler.CoreCallable(func_id=1.9, core_type="aiv", binary=b"x", signature=[]), "func_id must be an integer"),
    (lambda: simpler.CoreCallable(0, "gpu", b"x", []), "core type must be"),
    (lambda: simpler.CoreCallable(0, 7, b"x", []), "core type must be"),
    (lambda: simpler.CoreCallable(0, "aiv", 12, []), "a binary is bytes or a path"),
    (lambda: simpler.CoreCallable(0, "aiv", b"x", ["sideways"]), "kernel tensor direction"),
    (lambda: simpler.CoreCallable(0, "aiv", b"x", "in"), "not the string"),
    (lambda: simpler.CoreCallable(0, "aiv", b"x", [], num_scalars=-2), "num_scalars -2 is out of range"),
    (lambda: simpler.CoreCallable(0, "aiv", b"x", ["in"] * 65), "at most 64 tensors and 64 scalars, not 65"),
    (lambda: simpler.CoreCallable(0, "aiv", b"x", [], num_scalars=65), "at most 64 tensors and 64 scalars"),
    (lambda: simpler.ChipCallable.build(b"x", [], [("in", "complex256")]), "not"),
    (lambda: simpler.ChipCallable.build(b"x", ["kernel"], []), "kernels are CoreCallables"),
    (lambda: simpler.ChipCallable.build(b"x", [], [("in", np.float32, 3)]), "a signature entry is"),
    (lambda: simpler.DeviceTensor("0x10", (4,), np.float32), "device tensor address must be an integer"),
    (lambda: simpler.DeviceTensor(16, (4.5,), np.float32), "dimension must be an integer"),
    (lambda: simpler.DeviceTensor(16, (4,), "nonsense"), "is not a dtype"),
    (lambda: device.status(2**40), "device_id 1099511627776 is out of range"),
]


@pytest.mark.parametrize("call, message", BAD_CALLS)
def test_bad_arguments_are_simpler_errors(call, message):
    with pytest.raises(simpler.InvalidArgument, match=message):
        call()


def test_bad_worker_call_arguments_are_simpler_errors(kc):
    with simpler.ChipWorker("sim") as w:
        cid = w.register(build(kc, SCALE, "scalar"))
        a, out = np.zeros(4), np.zeros(4)
        for call, message in [
            (lambda: w.run(cid, simpler.TaskArgs(a, out, 1), block_dim=1.9), "block_dim must be an integer"),
            (lambda: w.run(1.9, simpler.TaskArgs(a, out, 1)), "callable_id must be an integer"),
            (lambda: w.run(cid, simpler.TaskArgs(a, out, 1), bogus=3), "unknown run setting"),
            (lambda: w.run(cid, simpler.TaskArgs(a, out, 1), config="fast"), "config must be a CallConfig"),
            (lambda: simpler.CallConfig(bogus=3), "unexpected keyword argument 'bogus'.*its fields: block_dim"),
            (lambda: simpler.CallConfig(*range(12)), "positional arguments"),
            (lambda: w.run(cid, 5), "args must be"),
            (lambda: w.malloc(1.5), "malloc size must be an integer"),
            (lambda: w.malloc("64"), "malloc size must be an integer"),
            (lambda: w.register(build(kc, SCALE, "scalar"), callable_id=1.9), "callable_id must be an integer"),
            (lambda: w.copy_to(w.malloc(64), 5), "copy_to takes a numpy array or bytes"),
            (lambda: w.copy_to(w.malloc(64), "text"), "copy_to takes a numpy array or bytes"),
            (lambda: w.copy_from(w.malloc(64), 2.0), "copy_from takes an array to fill or a byte count"),
            (lambda: w.free(-1), "address -1 is out of range"),
        ]:
            with pytest.raises(simpler.InvalidArgument, match=message):
                call()
        w.run(cid, simpler.TaskArgs(a, out, 1))     # and it still works


def test_cli_start_on_a_running_device_says_so(monkeypatch):
    import os
    import subprocess
    import sys

    from onboard_helpers import PrivateDevice
    d = PrivateDevice(monkeypatch)
    try:
        start = [sys.executable, "-m", "simpler", "device", "start"]
        first = subprocess.run(start, capture_output=True, text=True, env=os.environ, timeout=60)
        again = subprocess.run(start, capture_output=True, text=True, env=os.environ, timeout=60)
        assert first.returncode == 0 and "running, pid" in first.stdout, first
        assert again.returncode == 0 and "already running" in again.stdout, again
        assert "AlreadyRegistered" not in again.stderr
    finally:
        d.close()


@pytest.mark.parametrize("signature", [5, None, 2.5])
def test_a_signature_that_is_not_a_list_is_invalid_argument(kc, signature):
    orch = kc.compile_source(ORCH)
    with pytest.raises(simpler.InvalidArgument, match="signature is a list"):
        simpler.ChipCallable.build(orch, [], signature)
    with pytest.raises(simpler.InvalidArgument, match="signature is a list"):
        simpler.CoreCallable(0, "aiv", kc.compile_source(SCALE), signature)
