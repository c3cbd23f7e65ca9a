"""Worker: one object over several chips, with a host-level graph of their
runs, copies and collectives (simpler/host_graph.py orders them)."""
from __future__ import annotations

import concurrent.futures
import threading
from typing import Any, Iterable, Sequence

import numpy as np

from . import collectives, mpi
from .callable import ChipCallable
from .device_tensor import DeviceTensor, _checked_int
from .errors import DeviceLost, InvalidArgument, InvalidState, SimplerError
from .handles import Registration
from .chip_tensor import ChipTensor
from .host_graph import HostGraph, NodeHandle, Region, array_region
from .worker import CallConfig, ChipWorker, TaskArgs

# Scratch tensors a Worker keeps per chip for its collectives, at most.
_SCRATCHES_PER_CHIP = 4


class WorkerRegistration:
    """A callable registered on every chip of a Worker; ``chips[d]`` is its
    Registration on device d. A context manager: unregistered on exit."""

    def __init__(self, worker: "Worker", callable_: ChipCallable, chips: dict[int, Registration]) -> None:
        self._worker = worker
        self.callable = callable_
        self.chips = chips

    @property
    def registered(self) -> bool:
        return all(r.registered for r in self.chips.values())

    def unregister(self) -> None:
        self._worker.unregister(self)

    def __enter__(self) -> "WorkerRegistration":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.registered and not self._worker.closed:
            self.unregister()

    def __repr__(self) -> str:
        state = "" if self.registered else " (unregistered)"
        return f"<WorkerRegistration {self.callable!r} on chips {list(self.chips)}{state}>"


def _host_view(a: Any) -> np.ndarray | None:
    """A numpy view of a host tensor argument's memory (None for a scalar)."""
    if isinstance(a, np.ndarray):
        return a
    if isinstance(a, (int, float, np.generic, DeviceTensor)):
        return None
    if hasattr(a, "__array_interface__") or isinstance(a, (bytearray, memoryview)):
        return np.asarray(a)
    if hasattr(a, "__dlpack__"):
        return np.from_dlpack(a)
    try:
        return np.asarray(memoryview(a))
    except TypeError:
        return None


class Worker:
    """Several chips as one: ``chips[d]`` is the ChipWorker of device d.

    >>> with simpler.Worker(platform="sim", devices=[0, 1, 2, 3]) as w:
    ...     reg = w.register(callable_)
    ...     x = w.malloc(0, (1024,), np.float32)
    ...     w.submit(0, reg, [a, x])       # runs on chip 0
    ...     w.submit(1, reg, [b, out])     # concurrently on chip 1
    ...     w.wait()

    Runs, copies and collectives are nodes of one graph: each waits for the
    earlier nodes whose host arrays or device tensors it reads or writes
    (read after write, write after read and write; simpler/host_graph.py),
    and nodes on different chips run concurrently.
    """

    def __init__(self, platform: str = "sim", runtime: str = "host_build_graph",
                 devices: Iterable[int] | int = (0,), *, gm_capacity: int | None = None, comm: Any = None) -> None:
        self._graph: HostGraph | None = None
        self.chips: dict[int, ChipWorker] = {}
        if isinstance(devices, (int, np.integer)):
            devices = range(_checked_int("devices", devices, 16, minimum=1))
        try:
            ids = [_checked_int("device id", d, 31) for d in devices]
        except TypeError:
            raise InvalidArgument(f"devices must be a count or a list of device ids, not {devices!r}") from None
        if not ids:
            raise InvalidArgument("a Worker needs at least one device")
        if len(set(ids)) != len(ids):
            raise InvalidArgument(f"devices {ids} names a device twice")
        self.platform = platform
        self.runtime = runtime
        self.devices = tuple(ids)
        self._registrations: list[WorkerRegistration] = []
        self._windows: dict[tuple[int, int, int, int], int] = {}   # (chip, peer, addr, nbytes) -> address
        self._scratches: dict[tuple[int, int, str], ChipTensor] = {}  # (chip, elements, dtype) -> tensor
        self._lock = threading.Lock()
        try:
            for d in ids:
                self.chips[d] = ChipWorker(platform, runtime, d, gm_capacity=gm_capacity)
        except BaseException:
            for chip in self.chips.values():
                chip.finalize()
            raise
        self._graph = HostGraph(ids)
        self.comm = None
        self.mpi = None     # simpler.mpi.MpiContext with comm=: rank, size, every rank's devices
        if comm is not None:
            try:
                mpi.attach(self, comm)
            except BaseException:
                self.finalize()
                raise

    # -- lifecycle -------------------------------------------------------
    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.finalize(cancel=exc_type is not None)

    def finalize(self, cancel: bool = False) -> None:
        """Wait for every node (with cancel: fail the ones not started with
        CancelledError), then finalize every chip. Idempotent. Failures of
        nodes nobody looked at are not raised here: wait() raises them."""
        graph, self._graph = self._graph, None
        if graph is not None:
            if cancel:
                graph.cancel_waiting("the Worker was finalized with cancel")
            try:
                graph.wait()
            except KeyboardInterrupt:
                graph.cancel_waiting("interrupted")
                for chip in self.chips.values():
                    chip._queue.interrupt()
                graph.wait()
                raise
            finally:
                graph.close()
                self._close_windows()
                for t in self._scratches.values():
                    try:
                        t.buffer.free()
                    except DeviceLost:
                        pass        # it went with its chip
                self._scratches.clear()
        for chip in self.chips.values():
            chip.finalize(cancel=cancel)
        mpi, self.mpi = self.mpi, None
        if mpi is not None:
            mpi.close()

    @property
    def closed(self) -> bool:
        return self._graph is None

    def _g(self) -> HostGraph:
        g = self._graph
        if g is None:
            raise InvalidState("this Worker is finalized")
        return g

    def _chip(self, device: Any, what: str = "device") -> ChipWorker:
        if isinstance(device, bool) or not isinstance(device, (int, np.integer)):
            raise InvalidArgument(f"{what} must be a device id of this Worker ({list(self.chips)}), "
                                  f"not {device!r}")
        chip = self.chips.get(int(device))
        if chip is None:
            raise InvalidArgument(f"{what} {device} is not a device of this Worker ({list(self.chips)})")
        return chip

    def __repr__(self) -> str:
        state = "finalized" if self.closed else f"{self._graph.pending} nodes pending"
        return (f"<Worker platform={self.platform!r} runtime={self.runtime!r} devices={list(self.devices)} "
                f"{state}>")

    # -- callables -------------------------------------------------------
    def register(self, callable_: ChipCallable) -> WorkerRegistration:
        """Register a ChipCallable on every chip (one upload per chip per content)."""
        self._g()
        if not isinstance(callable_, ChipCallable):
            raise InvalidArgument(f"register() takes a ChipCallable, not {type(callable_).__name__}")
        regs: dict[int, Registration] = {}
        try:
            for d, chip in self.chips.items():
                regs[d] = chip.register(callable_)
        except BaseException:
            for r in regs.values():
                r.unregister()
            raise
        reg = WorkerRegistration(self, callable_, regs)
        with self._lock:
            self._registrations.append(reg)
        return reg

    def unregister(self, reg: WorkerRegistration) -> None:
        """Unregister from every chip, once the nodes pending are done."""
        if not isinstance(reg, WorkerRegistration) or reg._worker is not self:
            raise InvalidArgument(f"unregister() takes a registration of this Worker, not {reg!r}")
        self._g().wait()
        for r in reg.chips.values():
            if r.registered:
                r.unregister()
        with self._lock:
            if reg in self._registrations:
                self._registrations.remove(reg)

    def _registration(self, device: int, callable_: Any) -> tuple[int, ChipCallable]:
        if isinstance(callable_, WorkerRegistration):
            if callable_._worker is not self:
                raise InvalidArgument(f"{callable_!r} is a registration of another Worker")
            r = callable_.chips[device]
            if not r.registered:
                raise InvalidState(f"{callable_!r} is unregistered")
            return r.id, callable_.callable
        if isinstance(callable_, Registration):
            chip = self.chips[device]
            if callable_._worker is not chip:
                raise InvalidArgument(f"{callable_!r} is not a registration of chip {device}")
            return callable_.id, callable_.callable
        raise InvalidArgument(f"submit() takes a Worker.register() registration, not "
                              f"{type(callable_).__name__}")

    # -- device memory -----------------------------------------------------
    def malloc(self, device: int, shape: Sequence[int] | int, dtype: Any) -> ChipTensor:
        """A tensor in device's GM (uninitialised)."""
        chip = self._chip(device)
        probe = DeviceTensor(0, shape, dtype)
        buf = chip.malloc(max(probe.nbytes, 1))
        try:
            return ChipTensor(buf, int(device), probe.shape, probe.dtype)
        except BaseException:
            buf.free()
            raise

    def free(self, tensor: ChipTensor) -> None:
        """Free a tensor once the nodes that use it are done."""
        if not isinstance(tensor, ChipTensor) or self.chips.get(tensor.device) is not tensor.buffer._worker:
            raise InvalidArgument(f"free() takes a tensor from this Worker's malloc(), not {tensor!r}")
        if tensor.buffer.freed:
            raise InvalidState(f"{tensor!r} is freed already")
        graph = self._g()
        graph.add(f"free({tensor!r})", tensor.device, [], [tensor.region],
                  lambda node: graph.finish(node, None)).result()
        graph.forget_space(tensor.region)
        self._close_windows(tensor)
        tensor.buffer.free()

    # -- runs -----------------------------------------------------------
    def _regions(self, device: int, specs, items: list) -> tuple[list[Region], list[Region]]:
        """What a run's arguments read and write, checked against the
        signature (count, tensor or scalar) and against device."""
        if specs and len(items) != len(specs):
            raise InvalidArgument(f"the callable takes {len(specs)} arguments, not {len(items)}")
        reads: list[Region] = []
        writes: list[Region] = []
        for i, a in enumerate(items):
            spec = specs[i] if specs else None
            if isinstance(a, ChipTensor):
                if a.device != device:
                    raise InvalidArgument(f"argument {i} is a tensor of chip {a.device}; this run is on chip "
                                          f"{device}: copy it there first (Worker.copy)")
                if a.buffer.freed:
                    raise InvalidState(f"argument {i}: {a!r} is freed")
                region = a.region
            elif isinstance(a, DeviceTensor):
                region = Region(device, a.addr, a.addr + a.nbytes)
            else:
                view = _host_view(a)
                if view is None:
                    if spec is not None and not spec.is_scalar:
                        raise InvalidArgument(f"argument {i} is a tensor ({spec.direction!r}), not "
                                              f"{type(a).__name__}")
                    continue
                if spec is not None and spec.dtype is not None and view.dtype != np.dtype(spec.dtype):
                    raise InvalidArgument(f"argument {i} must be {np.dtype(spec.dtype)}, not {view.dtype}")
                region = array_region(view)
            if spec is not None and spec.is_scalar:
                raise InvalidArgument(f"argument {i} is a scalar, not a tensor")
            direction = spec.direction if spec is not None else "inout"
            if direction in ("in", "inout", "nodep"):
                reads.append(region)
            if direction in ("out", "inout", "nodep"):
                writes.append(region)
        return reads, writes

    def submit(self, device: int, callable_: "WorkerRegistration | Registration",
               args: "TaskArgs | Iterable[Any]" = (), config: CallConfig | None = None,
               **config_kw: Any) -> NodeHandle:
        """Queue a run of callable_ on chip device; returns its handle at
        once. It starts when the earlier nodes it depends on are done
        (until then its input arrays must stay as they are: they are
        staged when it starts); outputs are in place once it is done."""
        self._chip(device)      # InvalidArgument for a device not of this Worker
        device = int(device)
        cid, callable_obj = self._registration(device, callable_)
        items = list(args.args if isinstance(args, TaskArgs) else args)
        reads, writes = self._regions(device, callable_obj.signature, items)
        return self._submit_run(f"run(chip {device}, callable {cid})", device, cid, items, reads, writes,
                                config, config_kw)

    def _submit_run(self, what: str, device: int, cid: int, items: list, reads: list[Region],
                    writes: list[Region], config: CallConfig | None = None,
                    config_kw: dict | None = None) -> NodeHandle:
        """A chip run as a node whose regions the caller gives (a
        collective's step reads peers' tensors through windows, which its
        arguments do not show)."""
        graph = self._g()
        chip = self.chips[device]
        kw = config_kw or {}

        def start(node) -> None:
            try:
                h = chip.submit(cid, items, config, **kw)
            except SimplerError as e:
                graph.finish(node, _on_chip(e, device))
            else:
                h.add_done_callback(lambda f: graph.finish(node, _on_chip(_outcome(f), device)))

        return graph.add(what, device, reads, writes, start, quick=chip._queue.has_free_slot)

    def _window(self, device: int, tensor: ChipTensor) -> int:
        """The address at which chip device's kernels reach tensor (on its
        own chip or a peer's): a window onto the peer's GM, opened once
        and kept until the tensor is freed or the Worker finalized."""
        if tensor.device == device:
            return tensor.addr
        key = (device, tensor.device, tensor.addr, tensor.nbytes)
        with self._lock:
            addr = self._windows.get(key)
        if addr is None:
            chip = self.chips[device]
            addr = chip.open_window(self.chips[tensor.device], tensor.buffer, tensor.nbytes)
            with self._lock:
                self._windows[key] = addr
        return addr

    def _scratch(self, device: int, count: int, dtype: np.dtype) -> ChipTensor:
        """A tensor of the Worker's own on chip device, for the middle of a
        collective (reduce_scatter across ranks), kept for the next one of
        the same size: the graph orders the uses by its region, and
        finalize() frees it."""
        key = (device, count, np.dtype(dtype).str)
        t = self._scratches.get(key)
        if t is None:
            mine = [k for k in self._scratches if k[0] == device]
            if len(mine) >= _SCRATCHES_PER_CHIP:     # a bound on GM kept: the oldest goes
                self.free(self._scratches.pop(mine[0]))
            t = self._scratches[key] = self.malloc(device, (count,), dtype)
        return t

    def _close_windows(self, tensor: ChipTensor | None = None) -> None:
        """Close the windows onto tensor (all of them with None)."""
        with self._lock:
            keys = [k for k in self._windows
                    if tensor is None or (k[1] == tensor.device and k[2] == tensor.addr)]
            closing = [(k[0], self._windows.pop(k)) for k in keys]
        for device, addr in closing:
            try:
                self.chips[device].close_window(addr)
            except DeviceLost:
                pass        # the window went with its chip (or the peer's): nothing is left to close

    def run(self, device: int, callable_: "WorkerRegistration | Registration",
            args: "TaskArgs | Iterable[Any]" = (), config: CallConfig | None = None, **config_kw: Any) -> None:
        """submit(...) and wait for it."""
        self._result(self.submit(device, callable_, args, config, **config_kw))

    def _result(self, handle: NodeHandle) -> None:
        try:
            handle.result()
        except KeyboardInterrupt:
            self.interrupt()
            raise

    # -- copies -----------------------------------------------------------
    def copy(self, dst: "ChipTensor | np.ndarray", src: "ChipTensor | np.ndarray") -> NodeHandle:
        """Copy src into dst (same number of bytes) as a node of the graph:
        chip to chip directly GM to GM, host to chip or chip to host."""
        graph = self._g()
        for name, t in (("dst", dst), ("src", src)):
            if isinstance(t, ChipTensor):
                if self.chips.get(t.device) is not t.buffer._worker:
                    raise InvalidArgument(f"copy {name} {t!r} is a tensor of another Worker")
                if t.buffer.freed:
                    raise InvalidState(f"copy {name} {t!r} is freed")
            elif not isinstance(t, np.ndarray):
                raise InvalidArgument(f"copy {name} must be a ChipTensor or a numpy array, not {type(t).__name__}")
        if dst.nbytes != src.nbytes:
            raise InvalidArgument(f"copy of {src.nbytes} bytes into {dst.nbytes}: the sizes differ")
        if isinstance(dst, np.ndarray):
            if not (dst.flags.c_contiguous and dst.flags.writeable):
                raise InvalidArgument("copy dst array must be C-contiguous and writeable")
        if isinstance(src, np.ndarray) and not src.flags.c_contiguous:
            raise InvalidArgument("copy src array must be C-contiguous")
        dregion = dst.region if isinstance(dst, ChipTensor) else array_region(dst)
        sregion = src.region if isinstance(src, ChipTensor) else array_region(src)
        if isinstance(dst, ChipTensor) and isinstance(src, ChipTensor):
            chip, device = self.chips[dst.device], dst.device
            work = lambda: chip.copy_peer(dst.buffer, self.chips[src.device], src.buffer, src.nbytes)
            what = f"copy(chip {src.device} -> chip {dst.device}, {src.nbytes} bytes)"
        elif isinstance(dst, ChipTensor):
            chip, device = self.chips[dst.device], dst.device
            work = lambda: chip.copy_to(dst.buffer, src)
            what = f"copy(host -> chip {dst.device}, {src.nbytes} bytes)"
        elif isinstance(src, ChipTensor):
            chip, device = self.chips[src.device], src.device
            work = lambda: chip.copy_from(src.buffer, dst)
            what = f"copy(chip {src.device} -> host, {src.nbytes} bytes)"
        else:
            device = None
            work = lambda: np.copyto(dst.reshape(-1).view(np.uint8), src.reshape(-1).view(np.uint8))
            what = f"copy(host -> host, {src.nbytes} bytes)"

        def start(node) -> None:
            try:
                work()
            except BaseException as e:
                graph.finish(node, e)
            else:
                graph.finish(node, None)

        return graph.add(what, device, [sregion], [dregion], start)

    # -- waiting --------------------------------------------------------
    def wait(self) -> None:
        """Wait for every node submitted. If any failed since the last
        wait(), raise the first one's exception (its message counts the
        others); the handles hold each one's."""
        graph = self._g()
        try:
            graph.wait()
        except KeyboardInterrupt:
            self.interrupt()
            raise
        failed = [h for h in graph.take_failures() if not h.cancelled()]
        if failed:
            first = failed[0].exception(0)
            if len(failed) > 1 and isinstance(first, SimplerError):
                raise type(first)(f"{first} (and {len(failed) - 1} more nodes failed)") from first
            raise first

    def interrupt(self) -> None:
        """Fail the nodes not started (CancelledError) and stop the chips' runs."""
        graph = self._graph
        if graph is not None:
            graph.cancel_waiting("interrupted")
        for chip in self.chips.values():
            if chip._queue is not None:
                chip._queue.interrupt()

    @property
    def pending(self) -> int:
        """Nodes submitted and not finished."""
        return self._g().pending

    @property
    def edges(self) -> int:
        """Host-level dependency edges derived so far."""
        return self._g().edges

    # -- collectives (simpler/collectives.py) -------------------------------
    # One ChipTensor per chip, in device order, of one shape and dtype;
    # each returns a handle done when every chip's steps are.
    def allreduce(self, tensors: Sequence[ChipTensor], op: str = "sum") -> NodeHandle:
        """Every tensor becomes the elementwise op (sum, prod, max, min) of all, in place.
        With comm=, of every chip of every rank (within the host on the
        chips, between hosts over MPI)."""
        if self.mpi is not None:
            return mpi.worker_allreduce(self, tensors, op)
        return collectives.allreduce(self, tensors, op)

    def reduce_scatter(self, outputs: Sequence[ChipTensor], inputs: Sequence[ChipTensor],
                       op: str = "sum") -> NodeHandle:
        """outputs[i] = the op of every input's i-th of n equal blocks.
        With comm=, n counts every chip of every rank, in (rank, device) order."""
        if self.mpi is not None:
            return mpi.worker_reduce_scatter(self, outputs, inputs, op)
        return collectives.reduce_scatter(self, outputs, inputs, op)

    def allgather(self, outputs: Sequence[ChipTensor], inputs: Sequence[ChipTensor]) -> NodeHandle:
        """Every outputs[i] = the inputs one after the other (with comm=,
        every rank's, in (rank, device) order)."""
        if self.mpi is not None:
            return mpi.worker_allgather(self, outputs, inputs)
        return collectives.allgather(self, outputs, inputs)

    def broadcast(self, tensors: Sequence[ChipTensor], root: "int | tuple[int, int]") -> NodeHandle:
        """Every tensor becomes a copy of chip root's (with comm=, root is
        (rank, device))."""
        if self.mpi is not None:
            return mpi.worker_broadcast(self, tensors, root)
        return collectives.broadcast(self, tensors, root)

    def all_to_all(self, outputs: Sequence[ChipTensor], inputs: Sequence[ChipTensor]) -> NodeHandle:
        """outputs[i]'s j-th of n blocks = inputs[j]'s i-th (with comm=,
        over every chip of every rank)."""
        if self.mpi is not None:
            return mpi.worker_all_to_all(self, outputs, inputs)
        return collectives.all_to_all(self, outputs, inputs)


def _on_chip(e: BaseException | None, device: int) -> BaseException | None:
    """e, its message naming the chip (a chip's own errors name the run, not the device)."""
    if isinstance(e, SimplerError) and not e.message.startswith("chip "):
        e.message = f"chip {device}: {e.message}"
        e.args = (e.message,)
    return e


def _outcome(f: concurrent.futures.Future) -> BaseException | None:
    if f.cancelled():
        return concurrent.futures.CancelledError(f"{f!r} was cancelled")
    return concurrent.futures.Future.exception(f, 0)
