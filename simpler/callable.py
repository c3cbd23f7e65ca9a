"""ChipCallable and CoreCallable: a task graph's code as one versioned blob.

A ChipCallable holds the orchestration shared object, its kernels (each a
CoreCallable: core type, tensor directions, scalar count, shared object) and
the run signature. The blob is laid out by C (simpler_callable_build) and
read back through C (simpler_callable_inspect): its format lives in
csrc/callable/callable.h alone, and Python knows no offset in it.
"""
from __future__ import annotations

import enum
import operator
import os
from dataclasses import dataclass
from typing import Iterable, Sequence, Union

from . import _native
from ._native import ffi, lib
from .dtypes import dtype_code, numpy_dtype
from .errors import InvalidArgument, SimplerError

Binary = Union[bytes, bytearray, memoryview, str, os.PathLike]


class CoreType(enum.IntEnum):
    """simpler_core_type."""

    AIC = lib.SIMPLER_CORE_AIC  # cube core: one per cluster
    AIV = lib.SIMPLER_CORE_AIV  # vector core: two per cluster

    @classmethod
    def parse(cls, value: "CoreType | str | int") -> "CoreType":
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                raise InvalidArgument(f"core type must be 'aic' or 'aiv', not {value!r}") from None
        try:
            return cls(value)
        except ValueError:
            raise InvalidArgument(f"core type must be 'aic' or 'aiv', not {value!r}") from None


class Tag(enum.IntEnum):
    """How a tensor is used (simpler_tag)."""

    INPUT = lib.SIMPLER_INPUT
    OUTPUT = lib.SIMPLER_OUTPUT
    INOUT = lib.SIMPLER_INOUT
    OUTPUT_EXISTING = lib.SIMPLER_OUTPUT_EXISTING
    NO_DEP = lib.SIMPLER_NO_DEP


# Kernel tensor directions as written in Python, and run-argument directions.
_KERNEL_DIRECTIONS = {"in": Tag.INPUT, "out": Tag.OUTPUT, "inout": Tag.INOUT, "nodep": Tag.NO_DEP}
_ARG_DIRECTIONS = {"in": Tag.INPUT, "out": Tag.OUTPUT_EXISTING, "inout": Tag.INOUT, "nodep": Tag.NO_DEP}


def _read_binary(binary: Binary) -> bytes:
    if isinstance(binary, (bytes, bytearray, memoryview)):
        return bytes(binary)
    if not isinstance(binary, (str, os.PathLike)):
        raise InvalidArgument(f"a binary is bytes or a path to a shared object, not {type(binary).__name__}")
    with open(binary, "rb") as f:
        return f.read()


def _u32(name: str, value) -> int:
    """A field of the blob's uint32 kind, or InvalidArgument."""
    try:
        v = operator.index(value)
    except TypeError:
        raise InvalidArgument(f"{name} must be an integer, not {value!r}") from None
    if not 0 <= v < 1 << 32:
        raise InvalidArgument(f"{name} {v} is out of range 0..{(1 << 32) - 1}")
    return v


def _name(what: str, value) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a str, not {type(value).__name__}")
    if "\0" in value:  # C would read up to it: the builder could not see the rest
        raise InvalidArgument(f"{what} {value!r} is not a C identifier (it holds a NUL)")
    return value


def _what(value) -> str:
    return f"the string {value!r}" if isinstance(value, str) else repr(value)


@dataclass(frozen=True)
class ArgSpec:
    """One entry of a ChipCallable's run signature."""

    direction: str            # "in", "out", "inout", "nodep" or "scalar"
    dtype: object = None      # numpy dtype the tensor must have; None accepts any

    @classmethod
    def parse(cls, spec: "ArgSpec | str | tuple") -> "ArgSpec":
        if isinstance(spec, ArgSpec):
            return spec
        if isinstance(spec, str):
            spec = (spec,)
        if not isinstance(spec, tuple) or not 1 <= len(spec) <= 2:
            raise InvalidArgument(f"a signature entry is a direction or (direction, dtype), not {spec!r}")
        direction, *rest = spec
        if direction not in _ARG_DIRECTIONS and direction != "scalar":
            raise InvalidArgument(f"argument direction must be one of in/out/inout/nodep/scalar, not {direction!r}")
        if rest and rest[0] is not None:
            dtype_code(rest[0])     # InvalidArgument for what is not a supported dtype
        return cls(direction, rest[0] if rest else None)

    @property
    def is_scalar(self) -> bool:
        return self.direction == "scalar"

    def encode(self) -> tuple[int, int]:
        kind = lib.SIMPLER_CALLABLE_SCALAR if self.is_scalar else int(_ARG_DIRECTIONS[self.direction])
        return kind, (dtype_code(self.dtype) if self.dtype is not None else 0)


@dataclass
class CoreCallable:
    """A kernel: a shared object with an entry function for one core type.

    ``signature`` lists the kernel's tensors as "in", "out", "inout" or
    "nodep"; ``num_scalars`` the scalars that follow them.
    """

    func_id: int
    core_type: CoreType
    binary: bytes
    signature: Sequence[str]
    num_scalars: int = 0
    entry: str = "kernel"
    name: str = ""

    def __init__(self, func_id: int, core_type: "CoreType | str", binary: Binary,
                 signature: Sequence[str], num_scalars: int = 0, entry: str = "kernel",
                 name: str = "") -> None:
        self.func_id = _u32("func_id", func_id)
        self.core_type = CoreType.parse(core_type)
        self.binary = _read_binary(binary)
        if isinstance(signature, str) or not isinstance(signature, Iterable):
            raise InvalidArgument(f"a kernel signature is a list of directions, not {_what(signature)}")
        for s in signature:
            if s not in _KERNEL_DIRECTIONS:
                raise InvalidArgument(f"kernel tensor direction must be in/out/inout/nodep, not {s!r}")
        self.signature = tuple(signature)
        self.num_scalars = _u32("num_scalars", num_scalars)
        lib = _native.lib   # one limit for both runtimes (simpler/types.h, docs/orchestration.md)
        if len(self.signature) > lib.SIMPLER_MAX_TASK_TENSORS or self.num_scalars > lib.SIMPLER_MAX_TASK_SCALARS:
            raise InvalidArgument(f"a kernel takes at most {lib.SIMPLER_MAX_TASK_TENSORS} tensors and "
                                  f"{lib.SIMPLER_MAX_TASK_SCALARS} scalars, not {len(self.signature)} and "
                                  f"{self.num_scalars}")
        self.entry = _name("entry", entry)
        self.name = _name("name", name) or entry

    def __repr__(self) -> str:
        return (f"CoreCallable(func_id={self.func_id}, {self.core_type.name}, name={self.name!r}, "
                f"signature={list(self.signature)}, num_scalars={self.num_scalars}, "
                f"{len(self.binary)} bytes)")


class ChipCallable:
    """An orchestration function and its kernels, as one blob."""

    def __init__(self, blob: bytes) -> None:
        self._blob = bytes(blob)
        self._signature: list[ArgSpec] | None = None
        self._summary = None
        self._kernels: dict[int, CoreCallable] = {}
        self._kernel_names: dict[int, str] | None = None

    @classmethod
    def build(cls, orchestration: Binary, kernels: Iterable[CoreCallable],
              signature: Sequence["ArgSpec | str | tuple"], entry: str = "orchestrate") -> "ChipCallable":
        """Assemble and validate a callable.

        ``signature`` describes the run's arguments in order: tensors as
        "in"/"out"/"inout"/"nodep" (optionally ``(direction, dtype)``), then
        scalars as "scalar". Kernels holding the same binary (one per
        signature, say) share one stored copy.
        """
        orch = _read_binary(orchestration)
        kernels = list(kernels)
        for k in kernels:
            if not isinstance(k, CoreCallable):
                raise InvalidArgument(f"kernels are CoreCallables, not {type(k).__name__}")
        if isinstance(signature, str) or not isinstance(signature, Iterable):
            raise InvalidArgument(f"a run signature is a list of entries, not {_what(signature)}")
        specs = [ArgSpec.parse(s) for s in signature]
        entry = _name("entry", entry)
        desc, keep = _describe(orch, kernels, specs, entry)
        size = ffi.new("uint64_t *")
        _native.check(lib.simpler_callable_build(desc, ffi.NULL, 0, size))
        blob = bytearray(size[0])
        _native.check(lib.simpler_callable_build(desc, ffi.from_buffer(blob, require_writable=True), len(blob),
                                                 size))
        del keep    # what desc pointed into
        callable_ = cls(bytes(blob))
        callable_.validate()
        callable_._signature = specs
        callable_._kernels = {k.func_id: k for k in kernels}
        return callable_

    @classmethod
    def from_bytes(cls, blob: bytes) -> "ChipCallable":
        """Wrap an existing blob (validated when registered, or by validate())."""
        return cls(blob)

    def to_bytes(self) -> bytes:
        return self._blob

    @property
    def kernels(self) -> dict[int, CoreCallable]:
        """The CoreCallables it was built from, by func_id (empty for
        from_bytes: a blob keeps no Python objects)."""
        return dict(self._kernels)

    def validate(self) -> None:
        """Raise InvalidCallable with the parser's message if the blob is malformed."""
        _native.check(_native.lib.simpler_callable_validate(self._blob, len(self._blob)))

    def _inspect(self) -> "tuple[object, list[tuple[int, int]]]":
        """The blob's counts and signature entries, as C reads them (it validates first)."""
        if self._summary is None:
            summary = ffi.new("simpler_callable_summary *")
            args = ffi.new("simpler_callable_arg[]", lib.SIMPLER_CALLABLE_MAX_ARGS)
            _native.check(lib.simpler_callable_inspect(self._blob, len(self._blob), summary, args,
                                                       lib.SIMPLER_CALLABLE_MAX_ARGS))
            self._summary = (summary, [(args[i].kind, args[i].dtype) for i in range(summary.num_args)])
        return self._summary

    @property
    def signature(self) -> list[ArgSpec]:
        """The run signature, decoded from the blob."""
        if self._signature is None:
            kinds = {int(v): k for k, v in _ARG_DIRECTIONS.items()}
            self._signature = [ArgSpec("scalar" if kind == lib.SIMPLER_CALLABLE_SCALAR else kinds[kind],
                                       numpy_dtype(dt) if dt else None) for kind, dt in self._inspect()[1]]
        return self._signature

    @property
    def num_kernels(self) -> int:
        return int(self._inspect()[0].num_kernels)

    @property
    def kernel_names(self) -> dict[int, str]:
        """{func_id: name} of the blob's kernels (a kernel's name defaults to
        its entry symbol), as a trace names its spans."""
        if self._kernel_names is None:
            n = self.num_kernels
            infos = ffi.new("simpler_callable_kernel_info[]", max(n, 1))
            count = ffi.new("uint32_t *")
            _native.check(lib.simpler_callable_kernels(self._blob, len(self._blob), infos, n, count))
            self._kernel_names = {int(infos[i].func_id): ffi.string(infos[i].name).decode()
                                  for i in range(min(n, count[0]))}
        return dict(self._kernel_names)

    def __len__(self) -> int:
        return len(self._blob)

    def __repr__(self) -> str:
        try:
            sig = ", ".join(s.direction for s in self.signature)
            return f"<ChipCallable {len(self._blob)} bytes, {self.num_kernels} kernels, signature ({sig})>"
        except SimplerError as e:
            return f"<ChipCallable {len(self._blob)} bytes, not valid ({type(e).__name__})>"


def _describe(orch: bytes, kernels: "list[CoreCallable]", specs: "list[ArgSpec]", entry: str):
    """A simpler_callable_desc for the builder, and what its pointers point
    into (kept alive by the caller while the builder runs)."""
    keep: list = []

    def c_bytes(b: bytes):
        keep.append(ffi.from_buffer(b))
        return keep[-1]

    def c_name(s: str):
        keep.append(ffi.new("char[]", s.encode()))
        return keep[-1]

    desc = ffi.new("simpler_callable_desc *")
    desc.orchestration, desc.orchestration_size = c_bytes(orch), len(orch)
    desc.entry = c_name(entry)
    args = ffi.new("simpler_callable_arg[]", max(len(specs), 1))
    for i, spec in enumerate(specs):
        args[i].kind, args[i].dtype = spec.encode()
    descs = ffi.new("simpler_kernel_desc[]", max(len(kernels), 1))
    for i, k in enumerate(kernels):
        d = descs[i]
        d.func_id, d.core_type = k.func_id, int(k.core_type)
        d.num_tensors, d.num_scalars = len(k.signature), k.num_scalars
        tags = ffi.new("uint32_t[]", [int(_KERNEL_DIRECTIONS[s]) for s in k.signature] or [0])
        keep.append(tags)
        d.tags = tags
        d.binary, d.binary_size = c_bytes(k.binary), len(k.binary)
        d.entry, d.name = c_name(k.entry), c_name(k.name)
    keep += [args, descs]
    desc.num_args, desc.args = len(specs), args
    desc.num_kernels, desc.kernels = len(kernels), descs
    return desc, keep
