"""What ChipWorker.register() and malloc() return: a Registration and a
DeviceBuffer. Each knows its worker and acts through it; each also stands
for its int (the callable id, the device address) wherever one is taken.

A handle is live from the call that made it until it is unregistered or
freed (through the handle or through the int form) or its worker is
finalized; after that every use of it (its methods, ``int()``, passing it to
the worker) is an InvalidState. Dropping a handle releases nothing: like
the int it replaces, it leaves the registration or the memory in place
until unregister/free or finalize.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .device_tensor import DeviceTensor
from .dtypes import dtype_code
from .errors import InvalidArgument, InvalidState

if TYPE_CHECKING:
    from .callable import ChipCallable


class _Owner(Protocol):
    """What a handle asks of the worker that made it (ChipWorker): the
    handles module knows the worker only through this, so it sits below
    worker.py."""

    usable: bool

    def run(self, callable_id: Any, args: Any = ..., config: Any = ..., **config_kw: Any) -> None: ...
    def submit(self, callable_id: Any, args: Any = ..., config: Any = ..., **config_kw: Any) -> Any: ...
    def record(self, callable_id: Any, args: Any = ..., config: Any = ..., **config_kw: Any) -> Any: ...
    def unregister(self, callable_id: Any) -> None: ...
    def free(self, addr: Any) -> None: ...
    def _replay(self, graph: Any, args: Any, wait: bool) -> Any: ...
    def _release_graph(self, graph: Any) -> None: ...
    def _graph_info(self, graph: Any) -> dict[str, int]: ...


class _Handle:
    """What the two handles share: their worker, their number, and why they
    are no longer live (None while they are)."""

    __slots__ = ("_worker", "_number", "_gone", "__weakref__")

    def __init__(self, worker: _Owner, number: int) -> None:
        self._worker = worker
        self._number = number
        self._gone: str | None = None

    def _end(self, why: str) -> None:
        if self._gone is None:
            self._gone = why

    def _live_number(self, worker: "_Owner | None" = None) -> int:
        """The number, if this handle may still be used (on worker, if given)."""
        if worker is not None and self._worker is not worker:
            raise InvalidArgument(f"{self._describe()} belongs to another ChipWorker ({self._worker!r})")
        if self._gone is not None:
            raise InvalidState(f"{self._describe()} {self._gone}")
        return self._number

    def _describe(self) -> str:
        raise NotImplementedError

    def __index__(self) -> int:
        return self._live_number()

    __int__ = __index__

    def __format__(self, spec: str) -> str:
        """As the number: f"callable {reg}" and f"{buf:#x}" read as with the
        int form (repr() says what the handle is)."""
        return format(self._number, spec)

    # A handle compares equal to its number, so it finds the int form in
    # dicts and sets (``reg in worker.callables``); two handles are equal
    # only if they are the same one.
    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Handle):
            return self is other
        if isinstance(other, (int, np.integer)) and not isinstance(other, (bool, np.bool_)):
            return self._number == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._number)

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._gone is None and self._worker.usable:
            self._release()

    def _release(self) -> None:
        raise NotImplementedError


class Registration(_Handle):
    """A callable registered on a ChipWorker: ``run()`` it, ``unregister()``
    it, or use it as a context manager (unregistered on exit). ``int(reg)``
    is the callable id, which every ChipWorker method that takes an id also
    accepts."""

    __slots__ = ("_callable",)

    def __init__(self, worker: _Owner, callable_id: int, callable_: "ChipCallable") -> None:
        super().__init__(worker, callable_id)
        self._callable = callable_

    @property
    def id(self) -> int:
        return self._number

    @property
    def callable(self) -> "ChipCallable":
        return self._callable

    @property
    def registered(self) -> bool:
        return self._gone is None

    def run(self, args: Any = (), config: Any = None, **config_kw: Any) -> None:
        """ChipWorker.run of this registration."""
        self._worker.run(self, args, config, **config_kw)

    def submit(self, args: Any = (), config: Any = None, **config_kw: Any) -> Any:
        """ChipWorker.submit of this registration: a RunHandle."""
        return self._worker.submit(self, args, config, **config_kw)

    def record(self, args: Any = (), config: Any = None, **config_kw: Any) -> "Graph":
        """ChipWorker.record of this registration: a Graph."""
        return self._worker.record(self, args, config, **config_kw)

    def unregister(self) -> None:
        self._worker.unregister(self)

    def _release(self) -> None:
        self.unregister()

    def _describe(self) -> str:
        return f"registration {self._number}"

    def __repr__(self) -> str:
        state = "" if self._gone is None else f" ({self._gone})"
        return f"<Registration id={self._number} {self._callable!r} on {self._worker!r}{state}>"


class DeviceBuffer(_Handle):
    """Device memory from ChipWorker.malloc: ``free()`` it (once: a second
    free is an InvalidState), use it as a context manager (freed on exit), or
    view it as a tensor with ``as_tensor(shape, dtype)``. ``int(buf)`` is the
    device address, which free, copy_to, copy_from and DeviceTensor also
    accept."""

    __slots__ = ("_nbytes",)

    def __init__(self, worker: _Owner, addr: int, nbytes: int) -> None:
        super().__init__(worker, addr)
        self._nbytes = nbytes

    @property
    def addr(self) -> int:
        """The device address (readable after free too, for messages; using
        the buffer is not)."""
        return self._number

    @property
    def nbytes(self) -> int:
        return self._nbytes

    @property
    def freed(self) -> bool:
        return self._gone is not None

    def free(self) -> None:
        self._worker.free(self)

    def _release(self) -> None:
        self.free()

    def as_tensor(self, shape: Any, dtype: Any) -> "DeviceTensor":
        """A DeviceTensor over the buffer's start; InvalidArgument if it
        does not fit in the buffer."""
        addr = self._live_number()
        dtype_code(dtype)       # InvalidArgument for what simpler cannot pass
        t = DeviceTensor(addr, shape, dtype)
        if t.nbytes > self._nbytes:
            raise InvalidArgument(f"a tensor of shape {t.shape} and dtype {t.dtype} needs {t.nbytes} bytes; "
                                  f"{self._describe()} has {self._nbytes}")
        return t

    def _describe(self) -> str:
        return f"device buffer 0x{self._number:x} ({self._nbytes} bytes)"

    def __repr__(self) -> str:
        state = "" if self._gone is None else f" ({self._gone})"
        return f"<DeviceBuffer 0x{self._number:x} {self._nbytes} bytes on {self._worker!r}{state}>"


class Graph(_Handle):
    """A recorded task graph (ChipWorker.record): ``run(args)`` and
    ``submit(args)`` launch it again with new argument data, without the
    orchestration. Tensor arguments keep their recorded shapes and dtypes
    (their data, and which array or device tensor, may change); a scalar
    argument reaches the kernels it was passed to; a scalar the graph's
    shape depends on must keep its recorded value (``fixed_scalars``).
    ``release()`` it, or use it as a context manager; unregistering its
    callable releases it too. ``int(graph)`` is its id on the worker."""

    __slots__ = ("_callable_id", "_info", "_settings")

    def __init__(self, worker: _Owner, graph_id: int, callable_id: int, info: dict[str, int]) -> None:
        super().__init__(worker, graph_id)
        self._callable_id = callable_id
        self._info = info
        self._settings = None       # the recording's CallConfig, for its replays

    @property
    def id(self) -> int:
        return self._number

    @property
    def callable_id(self) -> int:
        return self._callable_id

    @property
    def num_tasks(self) -> int:
        return self._info["num_tasks"]

    @property
    def num_edges(self) -> int:
        return self._info["num_edges"]

    @property
    def fixed_scalars(self) -> tuple[int, ...]:
        """Indexes (among the scalar arguments) of the scalars a replay must
        pass with their recorded values: the graph depends on them."""
        bits = self._info["fixed_scalars"]
        return tuple(k for k in range(32) if bits >> k & 1)

    @property
    def info(self) -> dict[str, int]:
        """Tasks, edges, image and held bytes, patch sites, fixed scalars (a bit mask)."""
        return dict(self._info)

    @property
    def released(self) -> bool:
        return self._gone is not None

    def run(self, args: Any = ()) -> None:
        """Replay and wait; outputs are written back as by ChipWorker.run."""
        self._worker._replay(self, args, True)

    def submit(self, args: Any = ()) -> Any:
        """Queue a replay behind the worker's runs: a RunHandle."""
        return self._worker._replay(self, args, False)

    def release(self) -> None:
        """Give back the graph's memory (after its replays in flight)."""
        self._worker._release_graph(self)

    def _release(self) -> None:
        self.release()

    def _describe(self) -> str:
        return f"graph {self._number}"

    def __repr__(self) -> str:
        state = "" if self._gone is None else f" ({self._gone})"
        return (f"<Graph id={self._number} of callable {self._callable_id}: {self.num_tasks} tasks, "
                f"{self.num_edges} edges on {self._worker!r}{state}>")
