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


# -- the trace buffer (simpler/trace.h) ----------------------------------

def test_trace_records_are_laid_out_as_in_c():
    from simpler.trace import EDGE, EVENT, KINDS
    for dtype, ctype in ((EVENT, "simpler_trace_event"), (EDGE, "simpler_trace_edge")):
        assert dtype.itemsize == ffi.sizeof(ctype)
        assert list(dtype.names) == [name for name, _ in ffi.typeof(ctype).fields]
        for name, field in ffi.typeof(ctype).fields:
            assert dtype.fields[name][1] == ffi.offsetof(ctype, name)
            assert dtype.fields[name][0].itemsize == ffi.sizeof(field.type)
    assert KINDS == {lib.SIMPLER_TRACE_BLOCK: "block", lib.SIMPLER_TRACE_SLEEP: "sleep",
                     lib.SIMPLER_TRACE_ORCHESTRATE: "orchestrate", lib.SIMPLER_TRACE_WAIT: "wait"}


def _trace_bytes(events, edges, *, dropped=(0, 0)):
    """A trace buffer laid out through the C declarations: header, events, edges."""
    hdr_size, ev_size, ed_size = (ffi.sizeof(t) for t in ("simpler_trace", "simpler_trace_event",
                                                          "simpler_trace_edge"))
    raw = bytearray(hdr_size + len(events) * ev_size + len(edges) * ed_size)
    hdr = ffi.from_buffer("simpler_trace *", raw, require_writable=True)
    hdr.magic = lib.SIMPLER_TRACE_MAGIC
    hdr.max_events = hdr.num_events = len(events)
    hdr.max_edges = hdr.num_edges = len(edges)
    hdr.dropped_events, hdr.dropped_edges = dropped
    hdr.events_off = hdr_size
    hdr.edges_off = hdr_size + len(events) * ev_size
    ev = ffi.cast("simpler_trace_event *", ffi.from_buffer(raw, require_writable=True) + hdr.events_off)
    for i, (task, start, end, kind, where, func, block) in enumerate(events):
        ev[i].task, ev[i].start_ns, ev[i].end_ns = task, start, end
        ev[i].kind, ev[i].where, ev[i].func_id, ev[i].block = kind, where, func, block
    ed = ffi.cast("simpler_trace_edge *", ffi.from_buffer(raw, require_writable=True) + hdr.edges_off)
    for i, (p, c) in enumerate(edges):
        ed[i].producer, ed[i].consumer = p, c
    return bytes(raw)


def test_trace_reads_what_c_lays_out():
    events = [(7, 100, 250, lib.SIMPLER_TRACE_BLOCK, 2, 5, 0), (8, 300, 400, lib.SIMPLER_TRACE_BLOCK, 4, 6, 1),
              (0, 50, 500, lib.SIMPLER_TRACE_SLEEP, 1, 0, 0), (2**64 - 1, 1, 2, lib.SIMPLER_TRACE_WAIT, 0, 0, 0)]
    t = simpler.Trace(_trace_bytes(events, [(7, 8), (1, 2**63)], dropped=(3, 9)))
    assert [tuple(int(x) for x in e) for e in t.events] == events
    assert [(int(p), int(c)) for p, c in t.edges] == [(7, 8), (1, 2**63)]
    assert (t.dropped_events, t.dropped_edges) == (3, 9)
    assert list(t.blocks["task"]) == [7, 8] and list(t.blocks["where"]) == [2, 4]
    names = {e["name"] for e in t.to_chrome()["traceEvents"] if e["ph"] == "X"}
    assert names == {"task 7 (func 5)", "task 8 (func 6)", "sleep", "wait"}


_NUM_EVENTS = ffi.offsetof("simpler_trace", "num_events")


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:20], "shorter than its header"),
    (lambda b: b"\0" * 8 + b[8:], "bad magic"),
    (lambda b: b[:_NUM_EVENTS] + (5).to_bytes(4, "little") + b[_NUM_EVENTS + 4:], "5 events .* do not fit"),
    (lambda b: b[:-8], "edges .* do not fit"),                                              # cut short
])
def test_a_damaged_trace_is_refused(damage, message):
    raw = _trace_bytes([(1, 2, 3, 0, 0, 0, 0)], [(1, 2)])
    with pytest.raises(ValueError, match=message):
        simpler.Trace(damage(raw))
