"""C is the one source of every layout Python reads: error codes and their
names, dtype codes, the trace buffer and the callable blob all come from
the public headers through the extension. These tests hold Python's view
against the C constants and against C parsing what C built."""
from __future__ import annotations

import re

import os
import sys

import numpy as np
import pytest

import simpler
from simpler._native import ffi, lib
from simpler.dtypes import dtype_code, numpy_dtype
from simpler.errors import err_name, error_for
from trace_records import trace_bytes

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "st"))
import scenes  # noqa: E402

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


def test_trace_reads_what_c_lays_out():
    events = [(7, 100, 250, lib.SIMPLER_TRACE_BLOCK, 2, 5, 0), (8, 300, 400, lib.SIMPLER_TRACE_BLOCK, 4, 6, 1),
              (0, 50, 500, lib.SIMPLER_TRACE_SLEEP, 1, 0, 0), (2**64 - 1, 1, 2, lib.SIMPLER_TRACE_WAIT, 0, 0, 0)]
    t = simpler.Trace(trace_bytes(events, [(7, 8), (1, 2**63)], dropped=(3, 9)))
    assert [tuple(int(x) for x in e) for e in t.events] == events
    assert [(int(p), int(c)) for p, c in t.edges] == [(7, 8), (1, 2**63)]
    assert (t.dropped_events, t.dropped_edges) == (3, 9)
    assert list(t.blocks["task"]) == [7, 8] and list(t.blocks["where"]) == [2, 4]
    names = {e["name"] for e in t.to_chrome()["traceEvents"] if e["ph"] == "X"}
    assert names == {"func 5", "func 6", "sleep", "wait"}   # no kernel names given: func ids


_NUM_EVENTS = ffi.offsetof("simpler_trace", "num_events")


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:20], "shorter than its header"),
    (lambda b: b"\0" * 8 + b[8:], "bad magic"),
    (lambda b: b[:_NUM_EVENTS] + (5).to_bytes(4, "little") + b[_NUM_EVENTS + 4:], "5 events .* do not fit"),
    (lambda b: b[:-8], "edges .* do not fit"),                                              # cut short
])
def test_a_damaged_trace_is_refused(damage, message):
    raw = trace_bytes([(1, 2, 3, 0, 0, 0, 0)], [(1, 2)])
    with pytest.raises(ValueError, match=message):
        simpler.Trace(damage(raw))


# -- the callable blob: built by C, parsed by C ---------------------------

F32 = np.float32


@pytest.fixture(scope="module")
def objects(kc):
    """vector_add's orchestration and the add kernel (func 0: in, in, out) from the scene library."""
    return kc.compile(scenes.HERE / "orch" / "vector_add.c"), scenes.kernel(kc, "add").binary


class Desc:
    """A simpler_callable_desc of vector_add's orchestration and two kernels
    of the add binary (func 0 and 1), made with the C declarations, that a
    test may spoil field by field."""

    def __init__(self, orch: bytes, kernel: bytes) -> None:
        self.keep = []
        self.c = ffi.new("simpler_callable_desc *")
        self.c.orchestration, self.c.orchestration_size = self.buf(orch), len(orch)
        self.c.entry = self.name("orchestrate")
        self.args = ffi.new("simpler_callable_arg[]", [(lib.SIMPLER_INPUT, lib.SIMPLER_DTYPE_FLOAT32),
                                                       (lib.SIMPLER_INPUT, 0),
                                                       (lib.SIMPLER_OUTPUT_EXISTING, lib.SIMPLER_DTYPE_FLOAT32),
                                                       (lib.SIMPLER_CALLABLE_SCALAR, 0)])
        self.c.args, self.c.num_args = self.args, 4
        self.kernels = ffi.new("simpler_kernel_desc[]", 2)
        self.tags = ffi.new("uint32_t[]", [lib.SIMPLER_INPUT, lib.SIMPLER_INPUT, lib.SIMPLER_OUTPUT])
        for i in range(2):
            k = self.kernels[i]
            k.func_id, k.core_type, k.num_tensors, k.num_scalars = i, lib.SIMPLER_CORE_AIV, 3, 0
            k.tags = self.tags
            k.binary, k.binary_size = self.buf(kernel), len(kernel)   # the same bytes, two buffers
            k.entry, k.name = self.name("kernel"), self.name(f"add{i}")
        self.c.kernels, self.c.num_kernels = self.kernels, 2

    def buf(self, data: bytes):
        self.keep.append(ffi.new("char[]", data))
        return self.keep[-1]

    def name(self, s: str):
        self.keep.append(ffi.new("char[]", s.encode()))
        return self.keep[-1]

    def build(self) -> "tuple[int, bytes]":
        size = ffi.new("uint64_t *")
        rc = lib.simpler_callable_build(self.c, ffi.NULL, 0, size)
        if rc:
            return rc, b""
        out = bytearray(size[0])
        rc = lib.simpler_callable_build(self.c, ffi.from_buffer(out, require_writable=True), len(out), size)
        return rc, bytes(out)


def _summary(blob: bytes):
    s = ffi.new("simpler_callable_summary *")
    args = ffi.new("simpler_callable_arg[]", 8)
    simpler._native.check(lib.simpler_callable_inspect(blob, len(blob), s, args, 8))
    return s, [(args[i].kind, args[i].dtype) for i in range(s.num_args)]


def test_what_c_builds_c_parses(objects):
    d = Desc(*objects)
    rc, blob = d.build()
    assert rc == lib.SIMPLER_OK
    assert lib.simpler_callable_validate(blob, len(blob)) == lib.SIMPLER_OK
    s, args = _summary(blob)
    assert (s.num_args, s.num_kernels, s.num_tensor_args, s.num_scalar_args) == (4, 2, 3, 1)
    assert s.orchestration_size == len(objects[0])
    assert args == [(lib.SIMPLER_INPUT, lib.SIMPLER_DTYPE_FLOAT32), (lib.SIMPLER_INPUT, 0),
                    (lib.SIMPLER_OUTPUT_EXISTING, lib.SIMPLER_DTYPE_FLOAT32), (lib.SIMPLER_CALLABLE_SCALAR, 0)]
    # The two kernels' equal bytes are stored once: one more distinct binary grows the blob by its size.
    other = objects[1] + b"\0" * 8
    d.kernels[1].binary, d.kernels[1].binary_size = d.buf(other), len(other)
    rc, apart = d.build()
    assert rc == lib.SIMPLER_OK and len(apart) >= len(blob) + len(other)
    # Python's ChipCallable gives the same blob as C did for the same description.
    ks = [simpler.CoreCallable(i, "aiv", objects[1], ["in", "in", "out"], name=f"add{i}") for i in range(2)]
    py = simpler.ChipCallable.build(objects[0], ks, [("in", F32), "in", ("out", F32), "scalar"])
    assert py.to_bytes() == blob
    again = simpler.ChipCallable.from_bytes(blob)
    assert again.num_kernels == 2 and [a.direction for a in again.signature] == ["in", "in", "out", "scalar"]
    assert again.signature[0].dtype == np.dtype(F32) and again.signature[1].dtype is None


def test_a_built_callable_runs(chip_worker, objects):
    k = simpler.CoreCallable(0, "aiv", objects[1], ["in", "in", "out"])
    c = simpler.ChipCallable.build(objects[0], [k], [("in", F32), ("in", F32), ("out", F32), "scalar"])
    a, out = np.arange(8, dtype=F32), np.zeros(8, F32)
    with chip_worker.registered(c) as reg:
        chip_worker.run(reg, [a, a, out, 1])
    np.testing.assert_array_equal(out, a * 2)


def _set(path: str, value):
    """A spoiler setting one field of a Desc: "c.entry", "kernels[1].func_id", "tags[1]"."""
    def spoil(d: Desc) -> None:
        *parts, last = path.split(".")
        obj = d
        for p in parts:
            obj = getattr(obj, p[:-3])[int(p[-2])] if p.endswith("]") else getattr(obj, p)
        v = d.name(value) if isinstance(value, str) else value
        if last.endswith("]"):
            getattr(obj, last[:-3])[int(last[-2])] = v
        else:
            setattr(obj, last, v)
    return spoil


SPOILED = [
    ("orchestration NULL", _set("c.orchestration", ffi.NULL), "orchestration binary is NULL"),
    ("orchestration empty", _set("c.orchestration_size", 0), "orchestration binary is empty"),
    ("huge object", _set("c.orchestration_size", 1 << 60), "larger than the limit"),
    ("entry NULL", _set("c.entry", ffi.NULL), "orchestration entry name is NULL"),
    ("entry empty", _set("c.entry", ""), "orchestration entry name is empty"),
    ("entry digit", _set("c.entry", "9lives"), r"orchestration entry name \"9lives\" is not a C identifier"),
    ("entry long", _set("c.entry", "x" * 256), "longer than 255 bytes"),
    ("too many args", _set("c.num_args", 257), "257 arguments exceed the limit of 256"),
    ("args NULL", _set("c.args", ffi.NULL), "args is NULL but num_args is 4"),
    ("arg kind", _set("args[0].kind", 99), "argument 0: kind 99 is none of"),
    ("kernel-only tag", _set("args[2].kind", lib.SIMPLER_OUTPUT), "argument 2: kind 2 is none of"),
    ("arg dtype", _set("args[0].dtype", 0x1234), "argument 0: unknown dtype 0x1234"),
    ("scalar first", _set("args[0].kind", lib.SIMPLER_CALLABLE_SCALAR), "argument 1: tensors must come before"),
    ("too many kernels", _set("c.num_kernels", 4097), "4097 kernels exceed the limit of 4096"),
    ("kernels NULL", _set("c.kernels", ffi.NULL), "kernels is NULL but num_kernels is 2"),
    ("func_id", _set("kernels[1].func_id", 70000), "kernel 1: func_id 70000 is above the limit 65535"),
    ("func_id twice", _set("kernels[1].func_id", 0), "kernels 0 and 1 share func_id 0"),
    ("core type", _set("kernels[0].core_type", 7), "kernel 0: core_type 7 is neither AIC"),
    ("tensors", _set("kernels[0].num_tensors", 65), "kernel 0: 65 tensors and 0 scalars exceed the limits 64"),
    ("scalars", _set("kernels[0].num_scalars", 65), "kernel 0: 3 tensors and 65 scalars exceed"),
    ("tags NULL", _set("kernels[0].tags", ffi.NULL), "kernel 0: tags is NULL but num_tensors is 3"),
    ("tag", _set("tags[2]", 6), "kernel 0: tensor 2 has unknown direction 6"),
    ("binary NULL", _set("kernels[1].binary", ffi.NULL), "kernel 1 binary is NULL"),
    ("binary empty", _set("kernels[1].binary_size", 0), "kernel 1 binary is empty"),
    ("kernel entry", _set("kernels[0].entry", ffi.NULL), "kernel 0 entry name is NULL"),
    ("kernel name", _set("kernels[1].name", "a-b"), r"kernel 1 name \"a-b\" is not a C identifier \(byte 1"),
]


@pytest.mark.parametrize("what, spoil, message", SPOILED, ids=[s[0] for s in SPOILED])
def test_the_builder_checks_every_field(objects, what, spoil, message):
    d = Desc(*objects)
    spoil(d)
    rc, _ = d.build()
    assert rc == lib.SIMPLER_E_INVALID_ARGUMENT
    msg = simpler._native.last_error()
    assert msg.startswith("simpler_callable_build: ")
    assert re.search(message, msg), msg


def test_the_builder_checks_its_buffer(objects):
    d = Desc(*objects)
    size = ffi.new("uint64_t *")
    assert lib.simpler_callable_build(d.c, ffi.NULL, 0, ffi.NULL) == lib.SIMPLER_E_INVALID_ARGUMENT
    assert lib.simpler_callable_build(ffi.NULL, ffi.NULL, 0, size) == lib.SIMPLER_E_INVALID_ARGUMENT
    assert lib.simpler_callable_build(d.c, ffi.NULL, 0, size) == lib.SIMPLER_OK
    short = ffi.new("char[]", size[0] - 1)
    assert lib.simpler_callable_build(d.c, short, size[0] - 1, size) == lib.SIMPLER_E_INVALID_ARGUMENT
    assert "too small" in simpler._native.last_error()


def test_inspect_refuses_what_validate_refuses(objects):
    _, blob = Desc(*objects).build()
    s = ffi.new("simpler_callable_summary *")
    assert lib.simpler_callable_inspect(blob, len(blob), ffi.NULL, ffi.NULL, 0) == lib.SIMPLER_E_INVALID_ARGUMENT
    assert lib.simpler_callable_inspect(blob, len(blob), s, ffi.NULL, 3) == lib.SIMPLER_E_INVALID_ARGUMENT
    assert lib.simpler_callable_inspect(blob, len(blob), s, ffi.NULL, 0) == lib.SIMPLER_OK and s.num_kernels == 2
    bad = blob[:-1]
    assert lib.simpler_callable_inspect(bad, len(bad), s, ffi.NULL, 0) == lib.SIMPLER_E_INVALID_CALLABLE
    c = simpler.ChipCallable.from_bytes(bad)
    assert "not valid (InvalidCallable)" in repr(c)
    with pytest.raises(simpler.InvalidCallable, match="truncated"):
        c.signature


def test_python_refuses_a_name_c_would_cut(objects):
    with pytest.raises(simpler.InvalidArgument, match="holds a NUL"):
        simpler.CoreCallable(0, "aiv", objects[1], ["in"], entry="ker\0nel")
    k = simpler.CoreCallable(0, "aiv", objects[1], ["in", "in", "out"])
    with pytest.raises(simpler.InvalidArgument, match="simpler_callable_build: orchestration entry name .* is not a C"):
        simpler.ChipCallable.build(objects[0], [k], ["in", "in", "out", "scalar"], entry="orch-estrate")
