"""C is the one source of every layout Python reads: error codes and their
names, dtype codes, the trace buffer and the callable blob all come from
the public headers through the extension. These tests hold Python's view
against the C constants and against C parsing what C built."""
from __future__ import annotations

import numpy as np
import pytest

import simpler
from simpler._native import ffi, lib
from simpler.dtypes import dtype_code, numpy_dtype
from simpler.errors import err_name, error_for

# numpy's name for each simpler_dtype, written out here (not derived), so a
# mapping that drifted from the header fails.
NUMPY_OF = {
    "SIMPLER_DTYPE_INT8": np.int8, "SIMPLER_DTYPE_UINT8": np.uint8, "SIMPLER_DTYPE_INT16": np.int16,
    "SIMPLER_DTYPE_FLOAT16": np.float16, "SIMPLER_DTYPE_INT32": np.int32, "SIMPLER_DTYPE_UINT32": np.uint32,
    "SIMPLER_DTYPE_FLOAT32": np.float32, "SIMPLER_DTYPE_INT64": np.int64, "SIMPLER_DTYPE_UINT64": np.uint64,
    "SIMPLER_DTYPE_FLOAT64": np.float64,
}


@pytest.mark.parametrize("cname", sorted(NUMPY_OF))
def test_dtype_codes_are_the_header_constants(cname):
    code = getattr(lib, cname)
    dt = np.dtype(NUMPY_OF[cname])
    assert dtype_code(dt) == code and dtype_code(NUMPY_OF[cname]) == code
    assert numpy_dtype(code) == dt
    assert code & 0xFF == dt.itemsize      # the header's rule: the low byte is the size


def test_every_header_dtype_is_known():
    header = {v for k, v in ffi.typeof("simpler_dtype").relements.items() if k != "SIMPLER_DTYPE_INVALID"}
    assert header == {getattr(lib, n) for n in NUMPY_OF} | {lib.SIMPLER_DTYPE_BFLOAT16}
    assert dtype_code("bfloat16") == lib.SIMPLER_DTYPE_BFLOAT16
    assert numpy_dtype(lib.SIMPLER_DTYPE_BFLOAT16) == "bfloat16"
    for code in header:
        assert dtype_code(code) == code
    with pytest.raises(simpler.InvalidArgument, match="unknown simpler dtype code 0x1234"):
        dtype_code(0x1234)
    with pytest.raises(simpler.InvalidArgument, match="complex64 is not supported"):
        dtype_code(np.complex64)


def test_err_name_names_every_code():
    for cname, code in ffi.typeof("simpler_error").relements.items():
        assert err_name(code) == cname
        assert ffi.string(lib.simpler_strerror(code))     # and words for it
    for unknown in (1, -15, -1000, 2**31 - 1):
        name = lib.simpler_err_name(unknown)
        assert name != ffi.NULL and ffi.string(name) == b"(not a simpler_error code)"


def test_exceptions_show_the_code_name():
    e = simpler.Timeout("stuck")
    assert e.name == "SIMPLER_E_TIMEOUT" and e.code == lib.SIMPLER_E_TIMEOUT
    assert repr(e) == "Timeout('stuck', code=SIMPLER_E_TIMEOUT)"
    for cname, code in ffi.typeof("simpler_error").relements.items():
        if code < 0:
            assert error_for(code, "m").name == cname
    assert "SIMPLER_E_CAPACITY" in str(error_for(lib.SIMPLER_E_CAPACITY, ""))   # no message: the name
    assert error_for(-99, "m").name == "(not a simpler_error code)"
