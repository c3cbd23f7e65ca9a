"""ChipCallable and CoreCallable: a task graph's code as one versioned blob.

A ChipCallable holds the orchestration shared object, its kernels (each a
CoreCallable: core type, tensor directions, scalar count, shared object) and
the run signature. ``to_bytes()`` gives the blob the C core parses
(format in csrc/callable/callable.h); the C parser validates every field.
"""
from __future__ import annotations

import enum
import operator
import os
import struct
from dataclasses import dataclass, field
from typing import Iterable, Sequence, Union

from . import _native
from .dtypes import dtype_code, numpy_dtype
from .errors import InvalidArgument

MAGIC = b"SMPLCHIP"
FORMAT_VERSION = 1
HEADER_SIZE = 80
KERNEL_ENTRY_SIZE = 64
ARG_SCALAR = 16

Binary = Union[bytes, bytearray, memoryview, str, os.PathLike]


class CoreType(enum.IntEnum):
    AIC = 0  # cube core: one per cluster
    AIV = 1  # vector core: two per cluster

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

    INPUT = 1
    OUTPUT = 2
    INOUT = 3
    OUTPUT_EXISTING = 4
    NO_DEP = 5


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
    return value


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
        kind = ARG_SCALAR if self.is_scalar else int(_ARG_DIRECTIONS[self.direction])
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
        if isinstance(signature, str):
            raise InvalidArgument(f"a kernel signature is a list of directions, not the string {signature!r}")
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


@dataclass
class _Layout:
    """Appends regions to a blob, aligned, and remembers their offsets."""

    data: bytearray = field(default_factory=lambda: bytearray(HEADER_SIZE))

    def add(self, payload: bytes, align: int = 8) -> int:
        self.data += b"\0" * (-len(self.data) % align)
        offset = len(self.data)
        self.data += payload
        return offset


class ChipCallable:
    """An orchestration function and its kernels, as one blob."""

    def __init__(self, blob: bytes) -> None:
        self._blob = bytes(blob)
        self._signature: list[ArgSpec] | None = None

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
        if isinstance(signature, str):
            raise InvalidArgument(f"a run signature is a list of entries, not the string {signature!r}")
        specs = [ArgSpec.parse(s) for s in signature]
        entry = _name("entry", entry)
        lay = _Layout()
        args_off = lay.add(b"".join(struct.pack("<II", *s.encode()) for s in specs))
        kernels_off = lay.add(b"\0" * (KERNEL_ENTRY_SIZE * len(kernels)))
        orch_off = lay.add(orch)
        entry_b = entry.encode()
        entry_off = lay.add(entry_b, 1)
        stored: dict[bytes, int] = {}   # a binary held by several kernels is stored once
        for i, k in enumerate(kernels):
            so_off = stored.get(k.binary)
            if so_off is None:
                so_off = stored[k.binary] = lay.add(k.binary)
            sig_off = lay.add(b"".join(struct.pack("<I", _KERNEL_DIRECTIONS[s]) for s in k.signature))
            kentry, kname = k.entry.encode(), k.name.encode()
            kentry_off = lay.add(kentry, 1)
            kname_off = lay.add(kname, 1)
            struct.pack_into("<IIIIQQQQQII", lay.data, kernels_off + i * KERNEL_ENTRY_SIZE,
                             k.func_id, int(k.core_type), len(k.signature), k.num_scalars,
                             so_off, len(k.binary), sig_off, kentry_off, kname_off,
                             len(kentry), len(kname))
        struct.pack_into("<8sIIQIIQQQQQII", lay.data, 0, MAGIC, FORMAT_VERSION, HEADER_SIZE,
                         len(lay.data), len(specs), len(kernels), args_off, kernels_off,
                         orch_off, len(orch), entry_off, len(entry_b), 0)
        callable_ = cls(bytes(lay.data))
        callable_.validate()
        callable_._signature = specs
        return callable_

    @classmethod
    def from_bytes(cls, blob: bytes) -> "ChipCallable":
        """Wrap an existing blob (validated when registered, or by validate())."""
        return cls(blob)

    def to_bytes(self) -> bytes:
        return self._blob

    def validate(self) -> None:
        """Raise InvalidCallable with the parser's message if the blob is malformed."""
        _native.check(_native.lib.simpler_callable_validate(self._blob, len(self._blob)))

    @property
    def signature(self) -> list[ArgSpec]:
        """The run signature, decoded from the blob."""
        if self._signature is None:
            self.validate()
            num_args, = struct.unpack_from("<I", self._blob, 24)
            args_off, = struct.unpack_from("<Q", self._blob, 32)
            kinds = {int(v): k for k, v in _ARG_DIRECTIONS.items()}
            specs = []
            for i in range(num_args):
                kind, dt = struct.unpack_from("<II", self._blob, args_off + 8 * i)
                specs.append(ArgSpec("scalar" if kind == ARG_SCALAR else kinds[kind],
                                     numpy_dtype(dt) if dt else None))
            self._signature = specs
        return self._signature

    def __len__(self) -> int:
        return len(self._blob)

    def __repr__(self) -> str:
        sig = ", ".join(s.direction for s in self.signature)
        nk = struct.unpack_from("<I", self._blob, 28)[0] if len(self._blob) >= 32 else "?"
        return f"<ChipCallable {len(self._blob)} bytes, {nk} kernels, signature ({sig})>"
