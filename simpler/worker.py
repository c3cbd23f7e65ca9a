"""ChipWorker: one device context (platform, runtime, device id) from Python."""
from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import operator
import os
import struct
import time
import weakref
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence, Union

import numpy as np

from ._native import check, ffi, lib
from .callable import ChipCallable
from .dtypes import dtype_code
from .errors import DeviceLost, InvalidArgument, InvalidState
from .failure import RunWatch, dump_dir_setting
from .progress import check_setting as progress_setting, watch as progress_watch
from .device_tensor import DeviceTensor, _checked_int
from .handles import DeviceBuffer, Graph, Registration
from .run_queue import RunHandle, RunQueue, prepared
from .trace import Trace

log = logging.getLogger("simpler")

PLATFORMS = ("sim", "onboard")   # and "faulty:<platform>", for tests (ChipWorker.inject_fault)
RUNTIMES = ("host_build_graph", "tensormap_and_ringbuffer")


Arg = Union[np.ndarray, DeviceTensor, int, float, np.generic]


class TaskArgs:
    """The arguments of a run, in signature order: numpy arrays or
    DeviceTensors for tensors, Python or numpy numbers for scalars. Where an
    array goes, so does another library's tensor: anything exporting
    __dlpack__ (a torch CPU tensor), __array_interface__ or the buffer
    protocol (bytearray, array.array, memoryview).

    Input arrays are copied to the device; "out" and "inout" arrays are
    written back in place (into the exporter's own memory) when the run
    succeeds.
    """

    def __init__(self, *args: Arg) -> None:
        self.args = list(args)

    def __len__(self) -> int:
        return len(self.args)

    def __repr__(self) -> str:
        def show(a: Arg) -> str:
            if isinstance(a, np.ndarray):
                return f"array{a.shape}:{a.dtype}"
            if isinstance(a, (DeviceTensor, int, float, np.generic)):
                return repr(a)
            shape = getattr(a, "shape", None)   # another library's tensor: its kind, not its elements
            return f"{type(a).__name__}{tuple(shape) if shape is not None else ''}"
        return f"TaskArgs({', '.join(show(a) for a in self.args)})"


@dataclass
class CallConfig:
    """Per-run settings; None keeps the runtime's default."""

    block_dim: int | None = None              # clusters (1 AIC + 2 AIV each); default: host cores / 2, at least 1
    aicpu_thread_num: int | None = None       # AICPU scheduler threads; default 2
    scheduler_timeout: float | None = None    # seconds without a finished task; default 30
    max_tasks: int | None = None              # host_build_graph graph capacity; default 4Mi
    # tensormap_and_ringbuffer rings, per scope depth (env SIMPLER_TASK_RING_SIZE,
    # SIMPLER_HEAP_RING_SIZE, SIMPLER_DEP_POOL_SIZE when None)
    task_ring_size: int | None = None         # task slots; default 1024, at most 32768
    heap_ring_size: int | None = None         # bytes of OUTPUT tensors; default 16 MiB
    dep_pool_size: int | None = None          # dependency list nodes; default 65536
    # Record a trace (ChipWorker.last_trace): True for up to 200,000 events,
    # or a number of events. Off by default, and free when off.
    trace: bool | int = False
    # A tqdm progress bar for runs longer than about a second: None shows
    # it where output is interactive (a terminal, a notebook), True
    # wherever tqdm is installed, False never.
    progress: bool | None = None
    # A failed run writes its report and tensors into a new directory
    # here (None: $SIMPLER_DUMP_DIR, if set).
    dump_dir: "str | os.PathLike | None" = None

    def _to_c(self):
        cfg = ffi.new("simpler_run_config *")
        for name, v in self.__dict__.items():  # the fields, without dataclasses.fields()'s cost per run
            if v is None:
                continue
            if name == "progress":      # Python's alone (worker._watch)
                progress_setting(v)
            elif name == "dump_dir":
                dump_dir_setting(v)
            elif name == "trace":
                cfg.trace_events = (200_000 if v is True else 0 if v is False
                                    else _checked_int("trace", v, 26, minimum=1))
            elif name == "scheduler_timeout":
                if not (isinstance(v, (int, float)) and 0 < v < 4_000_000):
                    raise InvalidArgument(f"scheduler_timeout must be a positive number of seconds, not {v!r}")
                cfg.scheduler_timeout_ms = max(1, int(round(v * 1000)))
            else:
                bits = 64 if name == "heap_ring_size" else 32
                setattr(cfg, name, _checked_int(name, v, bits, minimum=1))
        return cfg


def _checked_init(init):
    """CallConfig's own __init__, with a setting it does not have (or one
    too many) an InvalidArgument naming its fields, as run(**settings) has."""
    @functools.wraps(init)
    def __init__(self, *args: Any, **kw: Any) -> None:
        try:
            init(self, *args, **kw)
        except TypeError as e:
            raise InvalidArgument(f"CallConfig: {e} (its fields: {', '.join(CallConfig.__dataclass_fields__)})") \
                from None
    return __init__


CallConfig.__init__ = _checked_init(CallConfig.__init__)


@functools.cache
def _default_config():
    """The C defaults, built once: the C side only reads them."""
    return CallConfig()._to_c()


_U64 = (1 << 64) - 1
_ARG_SCALAR = lib.SIMPLER_ARG_SCALAR


def _untyped_scalar_bits(value: Any) -> int:
    """An untyped "scalar": the value's own bits (a float's IEEE double, an
    int's two's complement, a numpy scalar's bytes), at most 64 of them."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, np.generic):
        raw = np.asarray(value).tobytes()
        if len(raw) > 8:
            raise InvalidArgument(f"a {value.dtype} scalar is {len(raw)} bytes; scalars are at most 8")
        return int.from_bytes(raw.ljust(8, b"\0"), "little")
    if isinstance(value, int):
        if not -(1 << 63) <= value <= _U64:
            raise InvalidArgument(f"{value} does not fit in 64 bits")
        return value & _U64
    if isinstance(value, float):
        return struct.unpack("<Q", struct.pack("<d", value))[0]
    raise InvalidArgument(f"scalar argument must be a number, not {type(value).__name__}")


def _typed_scalar_bits(value: Any, dtype: "np.dtype | str") -> int:
    """A scalar the signature types: the value converted to that dtype (an
    int 2 for a float64 arrives as 2.0), or InvalidArgument if it does not
    fit (2.5 for an int32, 300 for a uint8)."""
    if (isinstance(value, (str, bytes, complex, np.complexfloating))
            or not isinstance(value, (int, float, np.number, np.bool_))):
        raise InvalidArgument(f"scalar argument must be a number (real), not {type(value).__name__}")
    try:
        return _convert_scalar(value, dtype)
    except OverflowError:
        raise InvalidArgument(f"{value!r} is out of range for {dtype}") from None


def _convert_scalar(value: Any, dtype: "np.dtype | str") -> int:
    if dtype == "bfloat16":
        f32 = _convert_scalar(value, np.dtype(np.float32))
        if (f32 >> 23) & 0xFF == 0xFF and f32 & 0x7FFFFF:
            return (f32 >> 16) | 0x40       # a NaN stays a NaN
        bits = (f32 + 0x7FFF + ((f32 >> 16) & 1)) >> 16 & 0xFFFF  # round to nearest even
        if bits & 0x7FFF == 0x7F80 and f32 & 0x7FFFFFFF != 0x7F800000:
            raise InvalidArgument(f"{value!r} is out of range for bfloat16")
        return bits
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        if isinstance(value, (float, np.floating)):
            if not float(value).is_integer():
                raise InvalidArgument(f"{value!r} is not an integer, and the signature says {dtype}")
            value = int(value)
        info = np.iinfo(dtype)
        if not info.min <= int(value) <= info.max:
            raise InvalidArgument(f"{value!r} is out of range for {dtype} ({info.min}..{info.max})")
        raw = np.array(int(value), dtype=dtype).tobytes()
    else:
        with np.errstate(over="ignore"):
            converted = np.array(float(value), dtype=dtype)
        if (isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
                and np.isfinite(converted) and int(converted) != int(value)):
            raise InvalidArgument(f"{value!r} has no exact {dtype} value")
        if np.isinf(converted) and np.isfinite(float(value)):
            raise InvalidArgument(f"{value!r} is out of range for {dtype}")
        raw = converted.tobytes()
    return int.from_bytes(raw.ljust(8, b"\0"), "little")


_NUMBERS = (int, float, complex, np.generic)   # scalars (numpy's export the buffer protocol too)
_TENSOR_KINDS = ("pass a numpy array or a DeviceTensor (or an object exporting __dlpack__, "
                 "__array_interface__ or the buffer protocol)")


def _host_pointer(arr: np.ndarray) -> Any:
    """A void * to a C-contiguous array's data (the caller keeps arr).
    ffi.from_buffer takes 0.3 us where arr.ctypes.data takes 2.3 (it
    builds a ctypes object), and this is on every run's path once per
    array argument. It takes every dtype, datetime64 and object too: it
    asks for the bytes, not a format."""
    return ffi.cast("void *", ffi.from_buffer(arr))


def _foreign_array(i: int, a: Any, spec: Any) -> "np.ndarray | Any":
    """A numpy view of another library's tensor (a torch CPU tensor, an
    array-interface object, a bytearray...), sharing its memory, so outputs
    written into the view land in the original; a that exports none of
    DLPack, the array interface or the buffer protocol as it is (a scalar,
    or the InvalidArgument naming its type where a tensor is expected)."""
    try:
        if hasattr(a, "__dlpack__"):
            return np.from_dlpack(a)
        if hasattr(a, "__array_interface__") or hasattr(a, "__array_struct__"):
            return np.asarray(a)
        try:
            view = memoryview(a)
        except TypeError:
            if spec is not None and not spec.is_scalar:
                raise InvalidArgument(f"argument {i} is a tensor ({spec.direction!r}): {_TENSOR_KINDS}, "
                                      f"not {type(a).__name__}") from None
            return a
        return np.asarray(view)
    except InvalidArgument:
        raise
    except Exception as e:  # the exporter's refusal (a GPU tensor, one that needs grad, a format numpy lacks)
        raise InvalidArgument(f"argument {i}: a {type(a).__module__}.{type(a).__qualname__} cannot be "
                              f"read as a host array: {e}") from None


class ChipWorker:
    """A device context: register callables, run them, manage device memory.

    >>> with simpler.ChipWorker(platform="sim") as w:
    ...     cid = w.register(callable_)
    ...     w.run(cid, simpler.TaskArgs(a, b, out))
    """

    def __init__(self, platform: str = "sim", runtime: str = "host_build_graph", device_id: int = 0,
                 *, gm_capacity: int | None = None) -> None:
        self._dev = self._handle = self._queue = None
        if not isinstance(platform, str):
            raise InvalidArgument(f"platform must be one of {', '.join(PLATFORMS)} or faulty:<platform>, "
                                  f"not {platform!r}")
        if not isinstance(runtime, str):
            raise InvalidArgument(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        device_id = _checked_int("device_id", device_id, 31)
        if gm_capacity is not None:
            gm_capacity = _checked_int("gm_capacity", gm_capacity, 64, minimum=1)
        self.platform = platform
        self.runtime = runtime
        self.device_id = device_id
        self._ids = itertools.count(1)
        self._callables: dict[int, ChipCallable] = {}
        self._registrations: dict[int, Registration] = {}
        self._graphs: dict[int, Graph] = {}
        # Live DeviceBuffers by address, to end one freed through its int
        # form; weak, since a buffer dropped unfreed releases nothing.
        self._buffers: "weakref.WeakValueDictionary[int, DeviceBuffer]" = weakref.WeakValueDictionary()
        pdev = ffi.new("simpler_device **")
        check(lib.simpler_device_create(pdev))
        dev = pdev[0]
        opts = ffi.new("simpler_device_options *")
        if gm_capacity is not None:
            opts.gm_capacity = gm_capacity
        onboard = platform.split(":")[-1] == "onboard"
        if onboard:     # the device process, and this worker's context in it, may start now: seconds
            log.info("connecting to simpler-device %d (started if it is not running)", device_id)
            started = time.monotonic()
        rc = lib.simpler_device_init(dev, platform.encode(), runtime.encode(), int(device_id), opts)
        if onboard and not rc:
            log.info("simpler-device %d ready in %.2f s", device_id, time.monotonic() - started)
        if rc:
            try:
                check(rc, f"ChipWorker(platform={platform!r}, runtime={runtime!r}, device_id={device_id})")
            finally:
                lib.simpler_device_destroy(dev)
        check(lib.simpler_device_set_poll(dev, lib.simpler_py_poll, ffi.NULL))
        max_inflight = ffi.new("uint32_t *")
        check(lib.simpler_device_max_inflight(dev, max_inflight))
        self._queue = RunQueue(int(max_inflight[0]))
        self._dev = dev
        self._handle = dev  # freed by __del__; _dev is None once finalized

    # -- lifecycle -------------------------------------------------------
    def __enter__(self) -> "ChipWorker":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        # Leaving the block normally waits for what was submitted; leaving
        # it by an exception cancels what has not started.
        self.finalize(cancel=exc_type is not None)

    def __del__(self) -> None:
        # Only now can no other thread be inside a call on this context.
        dev, self._handle = getattr(self, "_handle", None), None
        if dev is not None:
            lib.simpler_device_destroy(dev)

    def finalize(self, cancel: bool = False) -> None:
        """Release everything the worker holds on the device, after the
        submitted runs are done (with cancel: runs not started are
        cancelled, their handles raise CancelledError). Idempotent; calls
        racing with it from other threads fail with InvalidState."""
        if self._dev is not None and self._queue is not None:
            self._queue.close()     # a submit racing with this one from another thread is refused
            self._queue.drain(cancel=cancel)
        dev, self._dev = self._dev, None
        if dev is not None:
            lib.simpler_device_finalize(dev)
            self._callables.clear()
            for handle in [*self._registrations.values(), *self._buffers.values(), *self._graphs.values()]:
                handle._end("was released when its ChipWorker was finalized")
            self._registrations.clear()
            self._graphs.clear()
            self._buffers.clear()

    @property
    def closed(self) -> bool:
        return self._dev is None

    def _d(self):
        if self._dev is None:
            raise InvalidState("this ChipWorker is finalized")
        return self._dev

    def __repr__(self) -> str:
        state = "finalized" if self._dev is None else f"{len(self._callables)} callables"
        return (f"<ChipWorker platform={self.platform!r} runtime={self.runtime!r} "
                f"device_id={self.device_id} {state}>")

    def _callable_id(self, callable_id: "Registration | int") -> int:
        """The id of a Registration of this worker that is still registered,
        or an int id as given."""
        if isinstance(callable_id, Registration):
            return callable_id._live_number(self)
        return _checked_int("callable_id", callable_id, 32)

    def _address(self, addr: "DeviceBuffer | int", what: str = "address") -> int:
        """The address of a live DeviceBuffer of this worker, or an int address as given."""
        if isinstance(addr, DeviceBuffer):
            return addr._live_number(self)
        return _checked_int(what, addr, 64)

    # -- callables -------------------------------------------------------
    def register(self, callable_: ChipCallable, callable_id: int | None = None) -> Registration:
        """Register a ChipCallable; returns its Registration (int(reg) is
        its id, chosen if not given)."""
        if not isinstance(callable_, ChipCallable):
            raise InvalidArgument(f"register() takes a ChipCallable, not {type(callable_).__name__}")
        if callable_id is None:
            callable_id = next(i for i in self._ids if i not in self._callables)
        callable_id = _checked_int("callable_id", callable_id, 32)
        blob = callable_.to_bytes()
        check(lib.simpler_callable_register(self._d(), callable_id, blob, len(blob)),
              f"register(callable_id={callable_id})")
        self._callables[callable_id] = callable_
        reg = self._registrations[callable_id] = Registration(self, callable_id, callable_)
        return reg

    @contextlib.contextmanager
    def registered(self, callable_: ChipCallable) -> Iterator[Registration]:
        """Register for the duration of a with-block: ``with w.registered(c) as reg:``
        (the same as ``with w.register(c) as reg:``)."""
        with self.register(callable_) as reg:
            yield reg

    def unregister(self, callable_id: "Registration | int") -> None:
        """Unregister, once the runs in flight are done."""
        callable_id = self._callable_id(callable_id)
        if self._queue is not None:
            self._queue.drain()
        check(lib.simpler_callable_unregister(self._d(), callable_id), f"unregister({callable_id})")
        self._callables.pop(callable_id, None)
        reg = self._registrations.pop(callable_id, None)
        if reg is not None:
            reg._end("was unregistered")
        for gid, graph in list(self._graphs.items()):
            if graph.callable_id == callable_id:
                graph._end(f"was released when its callable {callable_id} was unregistered")
                del self._graphs[gid]

    def callable_buffer(self, callable_id: "Registration | int") -> tuple[int, int]:
        """(device address, size) of the registration's callable in GM, the
        one buffer every registration of the same content shares. Read it
        with copy_from; freeing or writing it is an InvalidArgument."""
        addr, size = ffi.new("uint64_t *"), ffi.new("uint64_t *")
        check(lib.simpler_callable_buffer(self._d(), self._callable_id(callable_id), addr, size))
        return int(addr[0]), int(size[0])

    @property
    def callables(self) -> dict[int, ChipCallable]:
        """Registered callables by id."""
        return dict(self._callables)

    # -- runs ------------------------------------------------------------
    def _run_args(self, callable_id, args, config, config_kw, what=None, watch_config=None):
        """The C arguments of a run: (callable id, simpler_arg[], count,
        config, keep, writeback, RunWatch or None)."""
        # The common case first, without a check it does not need: a
        # registered int id, a list or tuple of arguments, no settings.
        if type(callable_id) is not int or callable_id not in self._callables:
            callable_id = self._callable_id(callable_id)
        if type(args) is list or type(args) is tuple:
            items = args
        elif isinstance(args, TaskArgs):
            items = args.args
        else:
            if isinstance(args, (np.ndarray, DeviceTensor, int, float, np.generic)):
                raise InvalidArgument("args must be a TaskArgs or a sequence of arguments, not one argument")
            try:
                items = TaskArgs(*args).args
            except TypeError:
                raise InvalidArgument(f"args must be a TaskArgs or a sequence, not {type(args).__name__}") from None
        if config is None and not config_kw:
            cfg = _default_config()
        else:
            if config is not None and not isinstance(config, CallConfig):
                raise InvalidArgument(f"config must be a CallConfig, not {type(config).__name__}")
            if config_kw:
                base = config or CallConfig()
                unknown = set(config_kw) - set(base.__dict__)
                if unknown:
                    raise InvalidArgument(f"unknown run setting(s) {', '.join(sorted(unknown))} "
                                          f"(CallConfig has {', '.join(base.__dict__)})")
                config = CallConfig(**{**base.__dict__, **config_kw})
            cfg = config._to_c()
        registered = self._callables.get(callable_id)
        specs = registered.signature if registered is not None else ()
        n = len(items)
        c_args = ffi.new("simpler_arg[]", max(n, 1))
        keep: list[Any] = [c_args, cfg]
        writeback: list[tuple[np.ndarray, np.ndarray]] = []
        for i, a in enumerate(items):
            spec = specs[i] if i < len(specs) else None
            if type(a) is int and (spec is None or spec.dtype is None) and -(1 << 63) <= a <= _U64:
                if spec is not None and not spec.is_scalar:
                    raise InvalidArgument(f"argument {i} is a tensor ({spec.direction!r}): {_TENSOR_KINDS}, "
                                          f"not int")
                c = c_args[i]
                c.kind = _ARG_SCALAR
                c.scalar = a & _U64
                continue
            if spec is not None and not spec.is_scalar and isinstance(a, _NUMBERS):
                raise InvalidArgument(f"argument {i} is a tensor ({spec.direction!r}): {_TENSOR_KINDS}, "
                                      f"not {type(a).__name__}")
            written = spec is not None and spec.direction in ("out", "inout", "nodep")
            self._fill_arg(c_args[i], i, a, written, keep, writeback, spec)
        what = what or f"run(callable_id={callable_id})"
        watch = self._watch(what, registered, items, specs, watch_config or config)
        return callable_id, c_args, n, cfg, keep, writeback, watch

    def _watch(self, what: str, callable_: "ChipCallable | None", items, specs, config) -> RunWatch:
        """What the run shows as it executes (a progress bar) and leaves if it fails (a report, a dump)."""
        progress = config.progress if config is not None else None
        dump_dir = dump_dir_setting(config.dump_dir if config is not None else None)
        watch = RunWatch(self, what, callable_, items, specs, progress_watch(self._handle, progress, what), dump_dir)
        watch.config = config
        return watch

    def run(self, callable_id: "Registration | int", args: "TaskArgs | Iterable[Arg]" = (),
            config: CallConfig | None = None, **config_kw: Any) -> None:
        """Run a registered callable and wait for it: submit(...).result().
        Outputs are written back into the "out"/"inout" arrays. Keyword
        arguments override CallConfig fields."""
        dev = self._d()
        cid, c_args, n, cfg, keep, writeback, watch = self._run_args(callable_id, args, config, config_kw)
        if not self._queue.idle_slot():     # runs are in flight: this one goes behind them
            self._submit(dev, cid, c_args, n, cfg, keep, writeback, watch).result()
            return
        # Nothing in flight: run on this thread (no handoff; Ctrl-C reaches it directly).
        try:
            with watch:
                check(lib.simpler_run(dev, cid, c_args, n, cfg), watch.what)
        finally:
            self._queue.give_slot()
        for dst, src in writeback:
            np.copyto(dst, src)

    def submit(self, callable_id: "Registration | int", args: "TaskArgs | Iterable[Arg]" = (),
               config: CallConfig | None = None, **config_kw: Any) -> RunHandle:
        """Queue a run; returns its RunHandle at once (a Future, awaitable).
        Runs of a worker execute in submission order. Inputs are staged
        before this returns (their arrays may be reused); outputs are
        written back when the handle completes, not before: keep those
        arrays untouched until then. Waits while max_inflight runs are in
        flight. A failed run fails its handle with the exception run()
        raises; the runs queued behind it then fail with RunSkipped."""
        dev = self._d()
        cid, c_args, n, cfg, keep, writeback, watch = self._run_args(callable_id, args, config, config_kw)
        return self._submit(dev, cid, c_args, n, cfg, keep, writeback, watch)

    def _submit(self, dev, cid, c_args, n, cfg, keep, writeback, watch: RunWatch) -> RunHandle:
        return prepared(self._queue, lambda out: lib.simpler_run_prepare(dev, cid, c_args, n, cfg, out), keep,
                        writeback, watch)

    # -- recorded graphs -------------------------------------------------
    def record(self, callable_id: "Registration | int", args: "TaskArgs | Iterable[Arg]" = (),
               config: CallConfig | None = None, **config_kw: Any) -> Graph:
        """Run a registered callable once, as run() does (after the runs in
        flight), and keep the task graph its orchestration made: the Graph
        replays it with new argument data (graph.run / graph.submit)
        without running the orchestration or deriving a dependency. The
        replays use this run's settings."""
        dev = self._d()
        cid, c_args, n, cfg, keep, writeback, watch = self._run_args(callable_id, args, config, config_kw,
                                                                    f"record(callable_id={int(callable_id)})")
        out = ffi.new("uint32_t *")
        self._queue.take_slot()     # the device orders it behind the runs in flight
        try:
            with watch:
                check(lib.simpler_graph_record(dev, cid, c_args, n, cfg, out), watch.what)
        finally:
            self._queue.give_slot()
        for dst, src in writeback:
            np.copyto(dst, src)
        gid = int(out[0])
        graph = self._graphs[gid] = Graph(self, gid, cid, self._graph_info(gid))
        graph._settings = watch.config     # its replays' progress and dump settings
        return graph

    def _graph_info(self, graph: "Graph | int") -> dict[str, int]:
        info = ffi.new("simpler_graph_info *")
        check(lib.simpler_graph_info_get(self._d(), int(graph), info), f"graph {int(graph)}")
        return {name: int(getattr(info, name)) for name, _ in ffi.typeof("simpler_graph_info").fields}

    def _live_graph(self, graph: Graph) -> int:
        if not isinstance(graph, Graph):
            raise InvalidArgument(f"expected a Graph, not {type(graph).__name__}")
        return graph._live_number(self)

    def _replay(self, graph: Graph, args: "TaskArgs | Iterable[Arg]", wait: bool) -> "RunHandle | None":
        gid = self._live_graph(graph)
        dev = self._d()
        cid, c_args, n, _cfg, keep, writeback, watch = self._run_args(
            graph.callable_id, args, None, {}, f"replay of graph {gid}", graph._settings)
        if wait and self._queue.idle_slot():
            try:
                with watch:
                    check(lib.simpler_graph_run(dev, gid, c_args, n), watch.what)
            finally:
                self._queue.give_slot()
            for dst, src in writeback:
                np.copyto(dst, src)
            return None
        handle = prepared(self._queue, lambda out: lib.simpler_graph_prepare(dev, gid, c_args, n, out), keep,
                          writeback, watch)
        if wait:
            handle.result()
            return None
        return handle

    def _release_graph(self, graph: Graph) -> None:
        gid = self._live_graph(graph)
        self._queue.drain()
        check(lib.simpler_graph_release(self._d(), gid), f"release of graph {gid}")
        graph._end("was released")
        self._graphs.pop(gid, None)

    @property
    def graphs(self) -> dict[int, Graph]:
        """The recorded graphs not yet released, by id."""
        return dict(self._graphs)

    @property
    def max_inflight(self) -> int:
        """Runs on the device at once, at most: one executes while the next
        are staged (default 2, 1..8)."""
        return self._queue.max_inflight

    @max_inflight.setter
    def max_inflight(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= 8:
            raise InvalidArgument(f"max_inflight must be an int in 1..8, not {value!r}")
        value = int(value)
        check(lib.simpler_device_set_max_inflight(self._d(), value), "max_inflight")
        self._queue.max_inflight = value

    def wait(self) -> None:
        """Wait until every submitted run is done (their handles hold any error)."""
        self._queue.drain()

    @staticmethod
    def _fill_arg(c, i: int, a: Arg, written: bool, keep: list, writeback: list, spec=None) -> None:
        if isinstance(a, DeviceTensor):
            c.kind = lib.SIMPLER_ARG_DEVICE_TENSOR
            ChipWorker._fill_tensor(c.tensor, i, a.shape, a.dtype)
            c.tensor.addr = _checked_int("device tensor address", a.addr, 64)
            return
        given = a
        if not isinstance(a, np.ndarray) and not isinstance(a, _NUMBERS):
            a = _foreign_array(i, a, spec)   # another library's tensor: a numpy view of its memory
        if isinstance(a, np.ndarray):
            if written and not a.flags.writeable:
                what = "array" if given is a else f"{type(given).__name__}'s memory"
                raise InvalidArgument(f"argument {i} is an output, but its {what} is read-only")
            arr = a
            if not (a.flags.c_contiguous and a.flags.aligned):
                # The C side sees a contiguous copy; outputs are copied back.
                arr = np.ascontiguousarray(a)
                if written:
                    writeback.append((a, arr))
            keep.append(arr)
            c.kind = lib.SIMPLER_ARG_HOST_TENSOR
            ChipWorker._fill_tensor(c.tensor, i, arr.shape if arr.ndim else (1,), arr.dtype)
            c.host = _host_pointer(arr)
            return
        c.kind = lib.SIMPLER_ARG_SCALAR
        try:
            c.scalar = (_typed_scalar_bits(a, spec.dtype) if spec is not None and spec.dtype is not None
                        else _untyped_scalar_bits(a))
        except InvalidArgument as e:
            raise InvalidArgument(f"argument {i}: {e}") from None

    @staticmethod
    def _fill_tensor(t, i: int, shape: Sequence[int], dtype: Any) -> None:
        if not 1 <= len(shape) <= lib.SIMPLER_MAX_DIMS:
            raise InvalidArgument(f"argument {i}: tensors have 1..{lib.SIMPLER_MAX_DIMS} dimensions, "
                                  f"not {len(shape)}")
        try:
            t.dtype = dtype_code(dtype)
        except ValueError as e:
            raise InvalidArgument(f"argument {i}: {e}") from None
        t.ndim = len(shape)
        # One slice store, not one per dimension: each t.shape[d] made a
        # cdata of its own (1.0 us for three dimensions, 0.6 as one store).
        t.shape[0:len(shape)] = [int(s) for s in shape]

    # -- device memory ---------------------------------------------------
    def malloc(self, nbytes: int) -> DeviceBuffer:
        """Allocate device memory; returns its DeviceBuffer (int(buf) is
        the opaque device address)."""
        nbytes = _checked_int("malloc size", nbytes, 64, minimum=1)
        addr = ffi.new("uint64_t *")
        check(lib.simpler_gm_alloc(self._d(), nbytes, addr), f"malloc({nbytes})")
        buf = self._buffers[int(addr[0])] = DeviceBuffer(self, int(addr[0]), nbytes)
        return buf

    def free(self, addr: "DeviceBuffer | int") -> None:
        """Free device memory. A DeviceBuffer freed already is an
        InvalidState; an int address freed already is a NotRegistered."""
        addr = self._address(addr)
        check(lib.simpler_gm_free(self._d(), addr), f"free(0x{addr:x})")
        buf = self._buffers.pop(addr, None)
        if buf is not None:
            buf._end("was freed")

    def copy_to(self, addr: "DeviceBuffer | int", data: "np.ndarray | bytes") -> None:
        """Copy host data (array or bytes) to device memory at addr."""
        addr = self._address(addr)
        if isinstance(data, np.ndarray):
            buf = np.ascontiguousarray(data)
        elif isinstance(data, (bytes, bytearray, memoryview)):
            buf = bytes(data)
        else:  # bytes(5) would be five zero bytes
            raise InvalidArgument(f"copy_to takes a numpy array or bytes, not {type(data).__name__}")
        n = buf.nbytes if isinstance(buf, np.ndarray) else len(buf)
        src = _host_pointer(buf) if isinstance(buf, np.ndarray) else buf
        check(lib.simpler_gm_copy_to_device(self._d(), addr, src, n), "copy_to")

    def copy_from(self, addr: "DeviceBuffer | int", out: "np.ndarray | int") -> "np.ndarray | bytes":
        """Copy device memory into an array (filled in place and returned) or,
        given a byte count, return the bytes."""
        addr = self._address(addr)
        if isinstance(out, np.ndarray):
            if not (out.flags.c_contiguous and out.flags.writeable):
                raise InvalidArgument("copy_from needs a C-contiguous writeable array")
            check(lib.simpler_gm_copy_from_device(self._d(), _host_pointer(out), addr, out.nbytes), "copy_from")
            return out
        if isinstance(out, (bool, np.bool_)) or not isinstance(out, (int, np.integer)):
            raise InvalidArgument(f"copy_from takes an array to fill or a byte count, not {out!r}")
        nbytes = _checked_int("byte count", out, 40)
        buf = ffi.new("char[]", max(nbytes, 1))
        check(lib.simpler_gm_copy_from_device(self._d(), buf, addr, nbytes), "copy_from")
        return ffi.buffer(buf, nbytes)[:]

    # -- peer memory (another ChipWorker of this process, same platform) --
    def _peer(self, worker: "ChipWorker", what: str) -> Any:
        if not isinstance(worker, ChipWorker):
            raise InvalidArgument(f"{what} must be a ChipWorker, not {type(worker).__name__}")
        return worker._d()

    def copy_peer(self, dst: "DeviceBuffer | int", src_worker: "ChipWorker", src: "DeviceBuffer | int",
                  nbytes: int) -> None:
        """Copy nbytes from src_worker's device memory at src to this
        worker's at dst, GM to GM (no bounce through Python memory).
        src_worker may be this worker: overlapping ranges copy as memmove."""
        peer = self._peer(src_worker, "src_worker")
        dst, src = self._address(dst, "dst"), src_worker._address(src, "src")
        nbytes = _checked_int("nbytes", nbytes, 64)
        check(lib.simpler_gm_copy_peer(self._d(), dst, peer, src, nbytes),
              f"copy_peer(0x{dst:x}, device {src_worker.device_id}'s 0x{src:x}, {nbytes})")

    def open_window(self, peer_worker: "ChipWorker", addr: "DeviceBuffer | int", nbytes: int) -> int:
        """Make nbytes of peer_worker's device memory at addr readable and
        writable by this worker's kernels; returns the address they use
        (pass it as a scalar). The memory cannot be freed until the window
        is closed (close_window, or finalizing either worker)."""
        peer = self._peer(peer_worker, "peer_worker")
        addr = peer_worker._address(addr)
        nbytes = _checked_int("nbytes", nbytes, 64, minimum=1)
        out = ffi.new("uint64_t *")
        check(lib.simpler_peer_window_open(self._d(), peer, addr, nbytes, out),
              f"open_window(device {peer_worker.device_id}'s 0x{addr:x}, {nbytes})")
        return int(out[0])

    def close_window(self, addr: int) -> None:
        """Close a window open_window returned; this worker's kernels must
        not touch it after."""
        addr = _checked_int("window address", addr, 64)
        check(lib.simpler_peer_window_close(self._d(), addr), f"close_window(0x{addr:x})")

    # -- counters --------------------------------------------------------
    @property
    def stats(self) -> dict[str, int]:
        """Device counters: GM bytes, live allocations, loaded objects, threads, runs..."""
        st = ffi.new("simpler_device_stats *")
        check(lib.simpler_device_stats_get(self._d(), st))
        return {name: int(getattr(st, name)) for name, _ in ffi.typeof("simpler_device_stats").fields}

    @property
    def last_trace(self) -> "Trace | None":
        """The trace of the last run that asked for one (CallConfig.trace)."""
        size = ffi.new("uint64_t *")
        check(lib.simpler_last_trace(self._d(), ffi.NULL, 0, size))
        if not size[0]:
            return None
        buf = ffi.new("char[]", size[0])
        check(lib.simpler_last_trace(self._d(), buf, size[0], size))
        # Spans go by kernel name: the trace says which callable ran, its
        # blob names the kernels (a callable unregistered since: func ids).
        ran = self._callables.get(int(ffi.cast("simpler_trace *", buf).callable_id))
        return Trace(ffi.buffer(buf, size[0])[:], self.platform, ran.kernel_names if ran is not None else None)

    @property
    def committed_memory(self) -> int:
        """GM bytes allocated now (staging, graphs, malloc)."""
        out = ffi.new("uint64_t *")
        check(lib.simpler_committed_memory(self._d(), out))
        return int(out[0])

    # -- fault injection (platform="faulty:<platform>") ------------------
    FAULT_KINDS = {"alloc": lib.SIMPLER_FAULT_GM_ALLOC, "copy": lib.SIMPLER_FAULT_COPY,
                   "load": lib.SIMPLER_FAULT_CALLABLE_LOAD, "launch": lib.SIMPLER_FAULT_LAUNCH,
                   "wait": lib.SIMPLER_FAULT_WAIT}

    def inject_fault(self, nth: int, kinds: "str | Iterable[str]" = "all") -> None:
        """Fail the nth device operation of these kinds from now on, once
        ("all", or some of alloc, copy, load, launch, wait); nth 0 disarms.
        Only on a faulty:<platform> worker."""
        names = tuple(self.FAULT_KINDS) if kinds == "all" else (kinds,) if isinstance(kinds, str) else tuple(kinds)
        unknown = [k for k in names if k not in self.FAULT_KINDS]
        if unknown or not names:
            raise InvalidArgument(f"fault kinds must be 'all' or some of {', '.join(self.FAULT_KINDS)}, "
                                  f"not {kinds!r}")
        mask = functools.reduce(operator.or_, (self.FAULT_KINDS[k] for k in names))
        check(lib.simpler_device_inject_fault(self._d(), mask, _checked_int("nth", nth, 64)), "inject_fault")

    @property
    def fault_counts(self) -> dict[str, int]:
        """{"ops": armed-kind operations since arming, "fired": faults
        injected so far, "pending": 1 while armed}; readable after the
        fault that lost the device, too."""
        out = ffi.new("simpler_fault_counts *")
        check(lib.simpler_device_fault_counts(self._d(), out))
        return {name: int(getattr(out, name)) for name, _ in ffi.typeof("simpler_fault_counts").fields}

    @property
    def faults_fired(self) -> int:
        return self.fault_counts["fired"]

    @property
    def usable(self) -> bool:
        """False once finalized or once the device was lost; create a new
        worker then."""
        if self._dev is None:
            return False
        try:
            self.stats
        except (DeviceLost, InvalidState):
            return False
        return True
