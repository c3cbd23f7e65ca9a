"""ChipTensor: a device tensor that knows its chip, the unit of a
multi-chip Worker's memory (below the Worker, its collectives and MPI,
which all take it from here)."""
from __future__ import annotations

from typing import Any, Sequence

from .device_tensor import DeviceTensor
from .handles import DeviceBuffer
from .host_graph import Region


class ChipTensor(DeviceTensor):
    """A device tensor of one chip of a Worker (Worker.malloc): its GM,
    its device id, and the buffer it owns (Worker.free frees it)."""

    device: int
    buffer: DeviceBuffer

    def __init__(self, buffer: DeviceBuffer, device: int, shape: Sequence[int], dtype: Any) -> None:
        super().__init__(buffer.addr, shape, dtype)
        object.__setattr__(self, "device", device)
        object.__setattr__(self, "buffer", buffer)

    @property
    def region(self) -> Region:
        return Region(self.device, self.addr, self.addr + self.nbytes)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ChipTensor) and other.device == self.device and other.addr == self.addr
                and other.shape == self.shape and other.dtype == self.dtype)

    def __hash__(self) -> int:
        return hash((self.device, self.addr, self.shape, self.dtype.str))

    def __repr__(self) -> str:
        state = " freed" if self.buffer.freed else ""
        return f"ChipTensor(chip {self.device}, 0x{self.addr:x}, shape={self.shape}, dtype={self.dtype}{state})"
