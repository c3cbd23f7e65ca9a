"""The host-level graph of a multi-chip Worker: nodes (chip runs, copies,
collective steps) whose order is derived from the memory they read and
write, the same rules as inside a chip, applied to host arrays and to each
chip's device tensors:

- a node that reads a region waits for the earlier nodes that write an
  overlapping part of it (read after write);
- a node that writes a region waits for the earlier nodes that read or
  write an overlapping part of it (write after read, write after write).

A region is a byte interval in one address space: host memory, or one
chip's GM (two chips' GM addresses may coincide, so each chip is a space
of its own). A host array's region is the span its elements cover, so two
interleaved views of one array (a[::2], a[1::2]) are ordered as if they
overlapped: never wrong, sometimes less concurrent than it could be.

Only read-after-write edges carry data, so only they carry a failure: a
node reading what a failed node should have written fails without
running (DeviceLost if the failed node's chip was lost, RunSkipped
otherwise, chained to the cause), and so does every node that reads it
later, until a node that succeeds writes the region again. Write-after
edges only order.

Ready nodes go to a feeder thread per chip, which starts them (a chip run
is submitted to its ChipWorker, which stages and executes it); a chip's
run completes on that ChipWorker's queue thread and the graph releases
what waited for it there, under one lock and without blocking, so no two
chips ever wait on each other's threads."""
from __future__ import annotations

import bisect
import collections
import concurrent.futures
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

from .errors import DeviceLost, InvalidState
from .run_queue import RunSkipped

HOST = -1   # the address space of host arrays; chips' spaces are their device ids


@dataclass(frozen=True)
class Region:
    """Bytes [lo, hi) of one address space (HOST, or a device id)."""

    space: int
    lo: int
    hi: int

    def overlaps(self, other: "Region") -> bool:
        return self.space == other.space and self.lo < other.hi and other.lo < self.hi

    def __repr__(self) -> str:
        where = "host" if self.space == HOST else f"chip {self.space}"
        return f"Region({where}, 0x{self.lo:x}..0x{self.hi:x})"


def array_region(a: Any) -> Region:
    """The bytes a host array's elements span (a numpy array or anything
    numpy can view without copying)."""
    arr = a if isinstance(a, np.ndarray) else np.asarray(a)
    ptr = arr.__array_interface__["data"][0]
    if arr.size == 0:
        return Region(HOST, ptr, ptr)
    lo = hi = ptr
    for n, stride in zip(arr.shape, arr.strides):
        step = (n - 1) * stride
        if step < 0:
            lo += step
        else:
            hi += step
    return Region(HOST, lo, hi + arr.itemsize)


class NodeHandle(concurrent.futures.Future):
    """One node of a Worker's graph: a concurrent.futures.Future (done(),
    result(), exception(), add_done_callback()) that is also awaitable.
    Its result is None; outputs are in the caller's arrays and tensors
    once it is done."""

    def __init__(self, what: str, device: int | None) -> None:
        super().__init__()
        self.what = what
        self.device = device

    def __await__(self):
        import asyncio
        return asyncio.wrap_future(self).__await__()

    def __repr__(self) -> str:
        state = ("cancelled" if self.cancelled() else "running" if self.running()
                 else "failed" if self.done() and self.exception() is not None
                 else "done" if self.done() else "waiting")
        return f"<NodeHandle {self.what} {state}>"


class _Node:
    __slots__ = ("handle", "device", "start", "waiting", "dependents", "data_deps", "error", "reads", "writes")

    def __init__(self, handle: NodeHandle, device: int | None, start: Callable[["_Node"], None],
                 reads: list[Region], writes: list[Region]) -> None:
        self.handle = handle
        self.device = device
        self.start = start
        self.waiting = 0
        self.dependents: list[tuple[_Node, bool]] = []  # (node, whether it reads what this one writes)
        self.error: BaseException | None = None
        self.reads = reads
        self.writes = writes


class _Access:
    __slots__ = ("node", "region", "write")

    def __init__(self, node: _Node, region: Region, write: bool) -> None:
        self.node, self.region, self.write = node, region, write


class _Space:
    """The recorded accesses of one address space, sorted by start, so
    that finding the ones overlapping a region looks only at those that
    start less than the longest one's length before it (a few, where
    buffers are of like sizes) instead of every access pending."""

    __slots__ = ("starts", "items", "longest")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.items: list[_Access] = []
        self.longest = 0

    def _span(self, lo: int, hi: int) -> tuple[int, int]:
        return bisect.bisect_left(self.starts, lo - self.longest + 1), bisect.bisect_left(self.starts, hi)

    def overlapping(self, region: Region) -> list[_Access]:
        i, j = self._span(region.lo, region.hi)
        return [a for a in self.items[i:j] if a.region.hi > region.lo]

    def add(self, acc: _Access) -> None:
        r = acc.region
        k = bisect.bisect_right(self.starts, r.lo)
        self.starts.insert(k, r.lo)
        self.items.insert(k, acc)
        if r.hi - r.lo > self.longest:
            self.longest = r.hi - r.lo

    def drop_inside(self, region: Region, failed_only: bool = False) -> None:
        """Forget the accesses inside region (with failed_only: the failed writes)."""
        i = bisect.bisect_left(self.starts, region.lo)
        j = bisect.bisect_left(self.starts, region.hi)
        keep = [a for a in self.items[i:j]
                if a.region.hi > region.hi or (failed_only and a.node.error is None)]
        if len(keep) != j - i:
            self.items[i:j] = keep
            self.starts[i:j] = [a.region.lo for a in keep]

    def remove(self, node: "_Node", region: Region, write: bool) -> None:
        k = bisect.bisect_left(self.starts, region.lo)
        while k < len(self.starts) and self.starts[k] == region.lo:
            a = self.items[k]
            if a.node is node and a.write == write and a.region == region:
                del self.starts[k]
                del self.items[k]
                return
            k += 1


# Set on simpler's own threads (feeders, run queues): a node added there
# (from a done-callback) is never started inline, since starting may wait
# for a chip's run slot, which that very thread may be the one to free.
_OWN_THREAD = "simpler_own_thread"


def _skipped(node: _Node, cause_node: _Node) -> BaseException:
    cause = cause_node.error
    why = (f"{node.handle.what} was not run: it reads what {cause_node.handle.what} writes, "
           f"which failed ({type(cause).__name__}: {cause})")
    e: BaseException = DeviceLost(why) if isinstance(cause, DeviceLost) else RunSkipped(why)
    e.__cause__ = cause
    e.not_run = True    # type: ignore[attr-defined]  (root_cause follows it)
    return e


def root_cause(e: BaseException | None) -> BaseException | None:
    """The failure that started a chain of nodes not run because of it
    (each one's __cause__ is the one before)."""
    while e is not None and getattr(e, "not_run", False) and e.__cause__ is not None:
        e = e.__cause__
    return e


class HostGraph:
    """Nodes in submission order, started as their dependencies finish."""

    def __init__(self, devices: Iterable[int]) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        # Accesses of nodes not yet finished, and failed writes (which
        # fail their later readers), per address space.
        self._accesses: dict[int, _Space] = collections.defaultdict(_Space)
        self._pending = 0                   # nodes added and not finished
        self._failures: list[NodeHandle] = []  # since the last take_failures()
        self._closed = False
        self._feeders = {d: _Feeder(self, d) for d in devices}
        self._host_feeder = _Feeder(self, None)
        self.edges = 0                      # dependency edges made, for the bench and tests
        self.cancelled_why: str | None = None  # set by cancel_waiting() until nothing is pending

    # -- adding ---------------------------------------------------------
    def add(self, what: str, device: int | None, reads: Iterable[Region], writes: Iterable[Region],
            start: Callable[[_Node], None], quick: Callable[[], bool] | None = None) -> NodeHandle:
        """A node that runs start(node) on device's feeder thread once the
        earlier nodes it depends on are done; start must end with
        finish(node, error) exactly once, on any thread. quick() true: start
        would only hand the work on, without waiting (a chip run's submit
        with a free run slot), so a node ready at once, added on a thread
        of the caller's while its chip's feeder is idle, starts on the
        caller's thread: one thread hand-off fewer (the wake of a sleeping
        feeder, ~40 us here) for every independent run."""
        reads = [r for r in reads if r.hi > r.lo]
        writes = [r for r in writes if r.hi > r.lo]
        handle = NodeHandle(what, device)
        node = _Node(handle, device, start, reads, writes)
        with self._lock:
            if self._closed:
                raise InvalidState("this Worker is finalized")
            failed_dep = None
            deps: dict[int, tuple[_Node, bool]] = {}
            for region, write in [*((r, False) for r in reads), *((w, True) for w in writes)]:
                for acc in self._accesses[region.space].overlapping(region):
                    if acc.node is node or not (acc.write or write):
                        continue
                    data = acc.write and not write
                    if acc.node.error is not None:      # a failed write
                        if data and failed_dep is None:
                            failed_dep = acc.node
                        continue
                    prev = deps.get(id(acc.node))
                    deps[id(acc.node)] = (acc.node, data or (prev is not None and prev[1]))
            self._pending += 1
            if failed_dep is not None:
                node.error = _skipped(node, failed_dep)
                self._record(node, poison=True)
                self._pending -= 1
                self._failures.append(handle)
                ready = False
            else:
                for dep, data in deps.values():
                    dep.dependents.append((node, data))
                node.waiting = len(deps)
                self.edges += len(deps)
                self._record(node, poison=False)
                ready = node.waiting == 0
        if node.error is not None:
            handle.set_running_or_notify_cancel()
            handle.set_exception(node.error)
        elif ready:
            feeder = self._feeder(device)
            if (quick is not None and not getattr(threading.current_thread(), _OWN_THREAD, False)
                    and feeder.idle() and quick()):
                self.start(node)
            else:
                feeder.push(node)
        return handle

    def start(self, node: _Node) -> None:
        """Start a ready node (or fail it, if cancelled meanwhile)."""
        why = self.cancelled_why
        if why is not None:
            self.finish(node, concurrent.futures.CancelledError(why))
            return
        if not node.handle.set_running_or_notify_cancel():
            self.finish(node, concurrent.futures.CancelledError(f"{node.handle.what} was cancelled"))
            return
        try:
            node.start(node)
        except BaseException as e:      # start failed before handing the work on
            self.finish(node, e)
            if isinstance(e, KeyboardInterrupt) and not getattr(threading.current_thread(), _OWN_THREAD, False):
                raise                   # Ctrl-C on the caller's thread is the caller's

    def _record(self, node: _Node, poison: bool) -> None:
        """Note node's accesses (under the lock). A write drops the
        entries it covers: later nodes order behind this write, which
        orders behind them. A node failed at once keeps only its writes,
        as failed writes."""
        for w in node.writes:
            space = self._accesses[w.space]
            if not poison:      # a write that never runs orders nothing: what it covers stays
                space.drop_inside(w)
            space.add(_Access(node, w, True))
        if not poison:
            for r in node.reads:
                self._accesses[r.space].add(_Access(node, r, False))

    def _feeder(self, device: int | None) -> "_Feeder":
        return self._host_feeder if device is None else self._feeders[device]

    # -- finishing ------------------------------------------------------
    def finish(self, node: _Node, error: BaseException | None) -> None:
        """node's work ended (error None: it succeeded). Releases the
        nodes waiting for it; the ones that read what it failed to write
        fail too, and theirs after them."""
        done: list[tuple[_Node, BaseException | None]] = [(node, error)]
        to_start: list[_Node] = []
        with self._lock:
            i = 0
            while i < len(done):
                n, err = done[i]
                i += 1
                n.error = err
                self._pending -= 1
                self._forget(n, keep_writes=err is not None)
                if err is not None:
                    self._failures.append(n.handle)
                for dep, data in n.dependents:
                    if dep.error is not None:
                        continue
                    if err is not None and data:
                        dep.error = _skipped(dep, n)
                        done.append((dep, dep.error))
                        continue
                    dep.waiting -= 1
                    if dep.waiting == 0:
                        to_start.append(dep)
                n.dependents = []
            if self._pending == 0:
                self.cancelled_why = None
                self._idle.notify_all()
        for n, err in done:
            h = n.handle
            if h.cancelled() or (n is not node and not h.set_running_or_notify_cancel()):
                continue
            if err is None:
                h.set_result(None)
            else:
                h.set_exception(err)
        for n in to_start:
            if n.error is None:
                self._feeder(n.device).push(n)

    def _forget(self, node: _Node, keep_writes: bool) -> None:
        """Drop a finished node's accesses (under the lock); a failed
        node's writes stay, to fail the nodes that read them later."""
        for r in node.reads:
            self._accesses[r.space].remove(node, r, False)
        if not keep_writes:
            for w in node.writes:
                self._accesses[w.space].remove(node, w, True)

    def forget_space(self, region: Region) -> None:
        """A tensor was freed: failed writes inside it fail no one any more."""
        with self._lock:
            self._accesses[region.space].drop_inside(region, failed_only=True)

    # -- waiting --------------------------------------------------------
    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no node is pending; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def take_failures(self) -> list[NodeHandle]:
        with self._lock:
            failed, self._failures = self._failures, []
        return failed

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def cancel_waiting(self, why: str) -> None:
        """Fail every node not started yet (Ctrl-C, a cancelling close)."""
        # Nodes still waiting on dependencies end when those do: each
        # feeder fails what reaches it until nothing is pending.
        with self._lock:
            if self._pending:
                self.cancelled_why = why
        for f in [*self._feeders.values(), self._host_feeder]:
            for node in f.take_all():
                self.finish(node, concurrent.futures.CancelledError(why))

    def close(self) -> None:
        """No more nodes; end the feeder threads (after wait())."""
        with self._lock:
            self._closed = True
        for f in [*self._feeders.values(), self._host_feeder]:
            f.stop()


class _Feeder:
    """Starts a chip's ready nodes in order, on a thread of its own (started
    on first use, ended by stop()). Starting a chip run may wait for one of
    the chip's in-flight slots; it waits here, not on any chip's thread."""

    def __init__(self, graph: HostGraph, device: int | None) -> None:
        self._graph = graph
        self._device = device
        self._cond = threading.Condition()
        self._ready: collections.deque[_Node] = collections.deque()
        self._thread: threading.Thread | None = None
        self._stop = False
        self._starting = False      # a node taken from _ready is being started

    def idle(self) -> bool:
        """Nothing queued or being started: a node started elsewhere now
        overtakes no earlier ready node of this chip."""
        with self._cond:
            return not self._ready and not self._starting

    def push(self, node: _Node) -> None:
        with self._cond:
            self._ready.append(node)
            if self._thread is None:
                name = "simpler-host" if self._device is None else f"simpler-chip{self._device}-feeder"
                self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
                setattr(self._thread, _OWN_THREAD, True)
                self._thread.start()
            else:
                self._cond.notify()

    def take_all(self) -> list[_Node]:
        with self._cond:
            nodes = list(self._ready)
            self._ready.clear()
        return nodes

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._ready and not self._stop:
                    self._cond.wait()
                if not self._ready:
                    return
                node = self._ready.popleft()
                self._starting = True
            self._graph.start(node)
            with self._cond:
                self._starting = False

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

