"""Runs in flight: RunHandle (a Future of one submitted run) and the run
queue of a ChipWorker, whose thread executes the prepared runs in order
(a caller that would wait for a run executes it itself).

A submitted run is prepared on the caller's thread (arguments checked,
host inputs staged, a host-built graph orchestrated), so its input arrays
may be reused once submit() returns; the queue's thread executes it when
the runs before it are done, copies its outputs back and completes its
handle. The thread exists only while runs are queued."""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ._native import check, ffi, lib
from .errors import InvalidState, OutOfMemory

if TYPE_CHECKING:
    from .failure import RunWatch

# The queue's thread ends after this long with nothing to run.
_IDLE_EXIT_S = 0.5
# While callers execute runs themselves (they wait for results), the
# queue's thread leaves a run this long for them before taking it: waking
# a thread costs more than a small run, and a run taken by the queue's
# thread is one the caller then waits for, asleep.
_HELPED_RECENTLY_S = 0.01
_LEAVE_FOR_CALLER_S = 0.002


class RunSkipped(InvalidState):
    """A run queued behind a run that failed: it was not started. Its
    __cause__ is the earlier run's exception."""


class RunHandle(concurrent.futures.Future):
    """One submitted run: a concurrent.futures.Future (done(), result(),
    exception(), add_done_callback(), cancel() before it starts) that is
    also awaitable (``await handle``). Its result is None; outputs are in
    the caller's arrays once it is done, not before."""

    def __init__(self, queue: "RunQueue", crun, keep: list, writeback: list, watch: "RunWatch") -> None:
        super().__init__()
        self._queue = queue
        self._crun = crun               # simpler_run_handle *, freed once it ran or was dropped
        self._keep = keep               # the arrays and C arguments the run reads and writes
        self._writeback = writeback
        self._watch = watch             # its progress bar, and its report if it fails
        self._what = watch.what
        self.seq = 0

    def result(self, timeout: float | None = None) -> Any:
        try:
            if timeout is None:
                self._queue.help_until(self)
            return super().result(timeout)
        except KeyboardInterrupt:
            # Ctrl-C while waiting: stop this run and everything queued.
            self._queue.interrupt()
            raise

    def exception(self, timeout: float | None = None) -> BaseException | None:
        try:
            if timeout is None:
                self._queue.help_until(self)
            return super().exception(timeout)
        except KeyboardInterrupt:
            self._queue.interrupt()
            raise

    def __await__(self):
        return asyncio.wrap_future(self).__await__()

    def __repr__(self) -> str:
        state = ("cancelled" if self.cancelled() else "running" if self.running()
                 else "failed" if self.done() and self.exception() is not None
                 else "done" if self.done() else "queued")
        return f"<RunHandle #{self.seq} {self._what} {state}>"


class RunQueue:
    """The prepared runs of one worker, executed in order by a thread of
    its own. At most max_inflight runs are prepared and not yet done."""

    def __init__(self, max_inflight: int) -> None:
        lock = self._lock = threading.RLock()
        self._cond = threading.Condition(lock)   # callers wait on it (slots, drain)
        self._cond_waiters = 0          # how many: a slot given back with none waiting notifies no one
        self._wake = threading.Condition(lock)   # the queue's thread waits on it
        # Held from a run's prepare (which places it in the device's queue)
        # to its push here: two threads submitting at once would otherwise
        # queue their runs in opposite orders, and the head of this queue
        # would wait for its device turn behind a run queued after it.
        self.ordering = threading.Lock()
        self._queued: collections.deque[RunHandle] = collections.deque()
        self._running: RunHandle | None = None
        self._inflight = 0              # slots taken: queued, running, or a synchronous run()
        self._thread: threading.Thread | None = None
        self._exit = False              # drain() asks an idle thread to end now
        self._closed = False            # the worker is finalizing: no more runs
        self._helped_at = -1.0          # when a caller last executed a run or waited for one
        self._seq = 0
        self.max_inflight = max_inflight

    # -- slots -----------------------------------------------------------
    def has_free_slot(self) -> bool:
        """Whether take_slot() would not wait now (a hint: another thread
        may take the slot first)."""
        return self._inflight < self.max_inflight

    def take_slot(self) -> None:
        """Wait until fewer than max_inflight runs are in flight, and take
        one. A caller that would wait while no thread executes a run
        executes the next one itself: no hand-over to the queue's thread
        and back."""
        while True:
            with self._cond:
                if self._closed:
                    raise InvalidState("the ChipWorker is being finalized: no more runs")
                if self._inflight < self.max_inflight:
                    self._inflight += 1
                    return
                if self._running is not None or not self._queued:
                    self._helped_at = time.monotonic()
                    self._wait_cond()
                    continue
            self._step()

    def _wait_cond(self) -> None:
        self._cond_waiters += 1
        try:
            self._cond.wait()
        finally:
            self._cond_waiters -= 1

    # give_slot and idle_slot are on every run()'s path: the lock itself
    # (not the Condition's Python-level enter), and no notify with nobody
    # waiting.
    def give_slot(self) -> None:
        with self._lock:
            self._inflight -= 1
            if self._cond_waiters:
                self._cond.notify_all()

    def idle_slot(self) -> bool:
        """Take a slot if nothing is in flight (a run() may then run on its caller's thread)."""
        with self._lock:
            if self._inflight:
                return False
            self._inflight = 1
            return True

    # -- handles ---------------------------------------------------------
    def push(self, handle: RunHandle) -> None:
        with self._cond:
            if self._closed:
                raise InvalidState("the ChipWorker is being finalized: no more runs")
            self._seq += 1
            handle.seq = self._seq
            self._queued.append(handle)
            self._exit = False
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="simpler-runs", daemon=True)
                self._thread.simpler_own_thread = True  # type: ignore[attr-defined]  (host_graph._OWN_THREAD)
                self._thread.start()
            elif time.monotonic() - self._helped_at >= _HELPED_RECENTLY_S:
                self._wake.notify()

    def _serve(self) -> None:
        deferred, until = None, 0.0     # the head left for a caller, and until when
        idle_since = time.monotonic()
        while True:
            with self._cond:
                now = time.monotonic()
                # While callers execute runs (or wait for them), they are not
                # woken for, nor do they wake this thread: it looks every
                # few milliseconds instead, and takes a run only if no caller
                # did. Each wake-up would also hand the GIL over and back.
                callers = now - self._helped_at < _HELPED_RECENTLY_S
                nap = _LEAVE_FOR_CALLER_S if callers else _IDLE_EXIT_S
                if self._queued or self._running is not None:
                    idle_since = now
                if not self._queued:
                    if self._running is None and (self._exit or now - idle_since >= _IDLE_EXIT_S):
                        self._thread = None
                        return
                    self._wake.wait(nap)
                    continue
                if self._running is not None:     # a caller executes one
                    self._wake.wait(nap)
                    continue
                if callers:
                    head = self._queued[0]
                    if head is not deferred:
                        deferred, until = head, now + _LEAVE_FOR_CALLER_S
                    if now < until:
                        self._wake.wait(until - now)
                        continue                    # a caller may have taken it meanwhile
            self._step()

    def wait_oldest(self) -> bool:
        """Wait until the oldest run in flight is done; False if none is."""
        with self._cond:
            oldest = self._running or (self._queued[0] if self._queued else None)
        if oldest is None:
            return False
        self.help_until(oldest)
        concurrent.futures.wait([oldest])
        return True

    def help_until(self, handle: RunHandle) -> None:
        """Execute runs on this thread, in order, until handle is done or
        another thread executes: a caller about to wait for handle runs
        what is before it itself rather than wake the queue's thread."""
        while not handle.done():
            with self._cond:
                if self._running is not None or handle not in self._queued:
                    self._helped_at = time.monotonic()  # a caller waits: leave it the next run
                    return
            self._step()

    def _step(self) -> None:
        """Execute the run at the head of the queue, unless a thread
        executes one already; complete its handle (and, if it failed, the
        handles of the runs queued behind it). A KeyboardInterrupt that
        stopped the run is raised again here, once that is done."""
        with self._cond:
            if self._running is not None or not self._queued:
                return
            handle = self._queued.popleft()
            if not handle.set_running_or_notify_cancel():
                self._drop(handle)
                return
            self._running = handle
            if threading.current_thread() is not self._thread:
                self._helped_at = time.monotonic()
        error = self._execute(handle)
        with self._cond:
            self._running = None
            skipped = list(self._queued) if error is not None else []
            self._queued.clear() if skipped else None
            self._cond.notify_all()
        self._drop(handle)
        if error is None:
            handle.set_result(None)
        else:
            handle.set_exception(error)
        for later in skipped:
            if later.set_running_or_notify_cancel():
                e = RunSkipped(f"{later._what} was not run: run #{handle.seq} before it failed "
                               f"({type(error).__name__}: {error})")
                e.__cause__ = error
                later.set_exception(e)
            self._drop(later)
        if isinstance(error, KeyboardInterrupt) and threading.current_thread() is not self._thread:
            raise error

    @staticmethod
    def _execute(handle: RunHandle) -> BaseException | None:
        try:
            with handle._watch:
                check(lib.simpler_run_execute(handle._crun), handle._what)
            for dst, src in handle._writeback:
                np.copyto(dst, src)
        except BaseException as e:     # KeyboardInterrupt included: the run was stopped
            return e
        return None

    def _drop(self, handle: RunHandle) -> None:
        """Free the C run (a run not executed gives back what it staged) and its slot."""
        crun, handle._crun = handle._crun, None
        if crun is not None:
            lib.simpler_run_free(crun)
            handle._keep = handle._writeback = handle._watch = None
            self.give_slot()

    def interrupt(self) -> None:
        """Cancel what is queued and stop the run executing."""
        with self._cond:
            queued = list(self._queued)
            self._queued.clear()
            # Under the lock: the thread frees the running run only after
            # clearing _running, which it does under the lock too.
            if self._running is not None and self._running._crun is not None:
                lib.simpler_run_cancel(self._running._crun)
        for h in queued:
            h.cancel()
            self._drop(h)

    def close(self) -> None:
        """Refuse runs from now on (a finalize is under way); drain() then
        waits for the ones already queued."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def drain(self, cancel: bool = False) -> None:
        """Wait until nothing is in flight, and for the queue's thread to
        end (so a drained worker holds no thread); with cancel, cancel what
        has not started first."""
        if cancel:
            with self._cond:
                queued = list(self._queued)
                self._queued.clear()
            for h in queued:
                h.cancel()
                self._drop(h)
        with self._cond:
            if self._inflight and self._thread is threading.current_thread():
                raise InvalidState("wait() in a run's done callback would wait for the runs "
                                   "this thread executes")
            thread = self._thread
        while True:
            with self._cond:
                if not self._inflight:
                    thread = self._thread
                    break
                can_help = self._running is None and bool(self._queued)
                if not can_help:
                    self._wait_cond()
                    continue
            self._step()
        with self._cond:
            if thread is threading.current_thread():   # drained from a done callback
                return
            self._exit = True
            self._wake.notify_all()
        if thread is not None:
            thread.join()

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._inflight


def prepared(queue: RunQueue, prepare: Callable[[Any], int], keep: list, writeback: list,
             watch: "RunWatch") -> RunHandle:
    """Prepare a run in a slot (taken here) and queue its handle. A run
    that does not fit in GM while others are in flight waits for the
    oldest of them to end (it gives back its run block and staging) and
    tries again; with none in flight, OutOfMemory is the answer."""
    out = ffi.new("simpler_run_handle **")
    while True:
        queue.take_slot()
        with queue.ordering:
            try:
                check(prepare(out), watch.what)
            except OutOfMemory as e:
                queue.give_slot()
                no_room = e
            except BaseException as e:
                queue.give_slot()
                watch.failed(e)             # a host orchestration fails here
                raise
            else:
                handle = RunHandle(queue, out[0], keep, writeback, watch)
                try:
                    queue.push(handle)
                except BaseException:       # refused: the prepared run gives back what it staged
                    lib.simpler_run_free(out[0])
                    queue.give_slot()
                    raise
                return handle
        if not queue.wait_oldest():         # outside the lock: other submitters go on meanwhile
            raise no_room
