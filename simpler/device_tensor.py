"""DeviceTensor: a tensor already in device memory, and the integer check
every C field taken from Python goes through."""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .errors import InvalidArgument


def _checked_int(name: str, value: Any, bits: int, minimum: int = 0) -> int:
    """value as an int that fits the C field, or InvalidArgument. Only
    integers (int, numpy integers, anything with __index__) pass: 1.9 is
    not quietly 1."""
    try:
        v = operator.index(value)
    except TypeError:
        raise InvalidArgument(f"{name} must be an integer, not {value!r}") from None
    if not minimum <= v < (1 << bits):
        raise InvalidArgument(f"{name} {v} is out of range {minimum}..{(1 << bits) - 1}")
    return v


@dataclass(frozen=True)
class DeviceTensor:
    """A tensor already in device memory (from ChipWorker.malloc: a
    DeviceBuffer or its int address; DeviceBuffer.as_tensor makes one)."""

    addr: int
    shape: tuple
    dtype: np.dtype

    def __init__(self, addr: int, shape: Sequence[int], dtype: Any) -> None:
        object.__setattr__(self, "addr", _checked_int("device tensor address", addr, 64))
        if isinstance(shape, (int, np.integer)):
            shape = (shape,)
        try:
            dims = tuple(_checked_int("device tensor dimension", s, 63) for s in shape)
        except TypeError:
            raise InvalidArgument(f"device tensor shape must be a sequence of integers, not {shape!r}") from None
        object.__setattr__(self, "shape", dims)
        try:
            object.__setattr__(self, "dtype", np.dtype(dtype))
        except TypeError:
            raise InvalidArgument(f"{dtype!r} is not a dtype") from None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def __repr__(self) -> str:
        return f"DeviceTensor(0x{self.addr:x}, shape={self.shape}, dtype={self.dtype})"
