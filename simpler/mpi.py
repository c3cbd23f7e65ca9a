"""Across hosts: a Worker whose chips span the ranks of an MPI communicator.

``simpler.Worker(..., comm=MPI.COMM_WORLD)`` (mpi4py) makes each rank drive
its own devices; ``attach`` records every rank's device list, so a chip of
the whole job is (rank, device). simpler brings no transport of its own:
the cross-rank steps are MPI point-to-point messages on a duplicate of the
caller's communicator, so they never match the caller's own messages.

A Worker with comm= routes its collectives (allreduce, reduce_scatter,
allgather, broadcast, all_to_all) to worker_* here: on the rank's chips
what they can do among themselves, one host node exchanging with the
other ranks (after the ranks agree that every rank's part is there), and
copies back to the chips.

Collectives on host buffers (every rank calls them in the same order, with
the same shapes and dtypes):

- ``cross_rank_allreduce(comm, buf, op)``: in place; sum, max, min or prod.
- ``cross_rank_allgather(comm, send, recv)``, ``cross_rank_reduce_scatter``,
  ``cross_rank_broadcast``, ``cross_rank_all_to_all``.

Deterministic: an allreduce is a reduce-scatter (each rank sends chunk j of
its buffer to rank j, as an Alltoallv), a reduction of each chunk in rank
order 0, 1, ..., n-1 by the rank that owns it, and an allgather of the
reduced chunks. Each element is reduced once, by one rank, in one order, so
the result is bit-identical run to run and on every rank, whatever the
message timing (MPI's own Allreduce promises neither).

Failures: every message is nonblocking and polled against a deadline
(``timeout=`` seconds; default SIMPLER_MPI_TIMEOUT_S or 60). A rank that
does not answer in time ends the collective with simpler.Timeout naming
the ranks whose messages did not arrive, instead of a hang. The
communicator is then unusable (MPI cannot take back a half-done
exchange): later collectives on it raise InvalidState at once, and the
program should end with ``comm.Abort()`` (MPI_Finalize may wait for the
dead rank). What mpiexec itself does when a rank dies is in
docs/multi-chip.md "Across hosts: MPI".

mpi4py is imported here only, so ``import simpler`` never needs it.
"""
from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from typing import Any, Sequence

import numpy as np

from . import collectives, errors
from .chip_tensor import ChipTensor
from .errors import InvalidArgument, InvalidState, SimplerError, Timeout, Unsupported
from .host_graph import NodeHandle, array_region, root_cause
from .run_queue import RunSkipped

# Worker (simpler/multi_chip.py) is only named in annotations: multi_chip
# calls down into this module, never the reverse.

OPS = {"sum": np.add, "max": np.maximum, "min": np.minimum, "prod": np.multiply}
DEFAULT_TIMEOUT_S = 60.0
TIMEOUT_ENV = "SIMPLER_MPI_TIMEOUT_S"

# Each exchange of a collective has its own tag, so a message of one step
# never matches a receive of the next.
_TAG_SCATTER, _TAG_GATHER, _TAG_BCAST, _TAG_ALLTOALL, _TAG_ATTACH, _TAG_STATUS = 101, 102, 103, 104, 105, 106


def _mpi():
    """mpi4py's MPI module, or Unsupported naming the extra to install."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise Unsupported(f"MPI needs mpi4py and an MPI library: pip install 'simpler[mpi]' ({e})") from None
    return MPI


def default_timeout() -> float:
    """Seconds a cross-rank step waits for the other ranks: SIMPLER_MPI_TIMEOUT_S, or 60."""
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        t = float(raw)
    except ValueError:
        raise InvalidArgument(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if not t > 0:
        raise InvalidArgument(f"{TIMEOUT_ENV}={raw!r} must be positive")
    return t


def _timeout(timeout: float | None) -> float:
    if timeout is None:
        return default_timeout()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise InvalidArgument(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


def _op(op: Any):
    ufunc = OPS.get(op) if isinstance(op, str) else None
    if ufunc is None:
        raise InvalidArgument(f"op must be one of {sorted(OPS)}, not {op!r}")
    return ufunc


# -- communicators -------------------------------------------------------------

# Communicators a collective gave up on (by MPI handle), with the buffers
# their unfinished messages may still read or write: those are kept alive
# for ever rather than freed under MPI.
_broken: dict[int, tuple[str, list]] = {}
_broken_lock = threading.Lock()


def _check_comm(comm: Any, what: str = "comm"):
    MPI = _mpi()
    if not isinstance(comm, MPI.Comm):
        raise InvalidArgument(f"{what} must be an mpi4py communicator (e.g. MPI.COMM_WORLD), "
                              f"not {type(comm).__name__}")
    if comm == MPI.COMM_NULL:
        raise InvalidArgument(f"{what} is MPI.COMM_NULL")
    if not isinstance(comm, MPI.Intracomm) or comm.Is_inter():
        raise InvalidArgument(f"{what} must be an intracommunicator, not {type(comm).__name__}")
    with _broken_lock:
        broken = _broken.get(comm.py2f())
    if broken is not None:
        raise InvalidState(f"this communicator is unusable after an earlier failure ({broken[0]}); "
                           f"end the job (comm.Abort())")
    return MPI


def _flat(a: Any, name: str, writeable: bool) -> np.ndarray:
    """a's bytes as a flat uint8 view (no copy), or InvalidArgument."""
    if not isinstance(a, np.ndarray):
        raise InvalidArgument(f"{name} must be a numpy array, not {type(a).__name__}")
    if not a.flags.c_contiguous:
        raise InvalidArgument(f"{name} must be C-contiguous")
    if writeable and not a.flags.writeable:
        raise InvalidArgument(f"{name} must be writeable")
    if a.dtype.hasobject:
        raise InvalidArgument(f"{name} holds Python objects ({a.dtype}); MPI moves only plain bytes")
    return a.reshape(-1).view(np.uint8)


def _exchange(comm: Any, sends: Sequence[tuple[int, np.ndarray]], recvs: Sequence[tuple[int, np.ndarray]],
              tag: int, timeout: float, what: str) -> None:
    """Send each (rank, bytes) and receive each (rank, bytes) at once, all
    nonblocking, polled until done or the deadline. A receive must get
    exactly its buffer's size. Timeout names the ranks not heard from."""
    MPI = _mpi()
    reqs = [comm.Irecv([buf, MPI.BYTE], source=r, tag=tag) for r, buf in recvs]
    nrecv = len(reqs)
    reqs += [comm.Isend([buf, MPI.BYTE], dest=r, tag=tag) for r, buf in sends]
    statuses = [MPI.Status() for _ in reqs]
    start = time.monotonic()
    try:
        while not MPI.Request.Testall(reqs, statuses):
            now = time.monotonic()
            if now > start + timeout:
                done = [req.Test() for req in reqs]
                silent = sorted({recvs[i][0] for i in range(nrecv) if not done[i]})
                unsent = sorted({sends[i - nrecv][0] for i in range(nrecv, len(reqs)) if not done[i]})
                why = (f"{what} on rank {comm.Get_rank()} of {comm.Get_size()}: rank(s) {silent or unsent} "
                       f"did not answer within {timeout:g} s (a rank that died or that did not call the same "
                       f"collective; set timeout= or {TIMEOUT_ENV})")
                _give_up(comm, reqs, [b for _, b in (*recvs, *sends)], why)
                raise Timeout(why)
            # Every test drives MPI's progress (a large shared-memory message
            # moves a piece per test), so keep testing, yielding the CPU to a
            # rank that shares it; after a second, a peer is late, not busy:
            # test every millisecond.
            if now - start < 1.0:
                _yield()
            else:
                time.sleep(0.001)
    except MPI.Exception as e:
        _give_up(comm, reqs, [b for _, b in (*recvs, *sends)], f"{what}: MPI error")
        raise InvalidArgument(f"{what} on rank {comm.Get_rank()}: {e.Get_error_string()} (ranks called it "
                              f"with different sizes?)") from None
    for i in range(nrecv):
        got = statuses[i].Get_count(MPI.BYTE)
        if got != recvs[i][1].nbytes:
            raise InvalidArgument(f"{what} on rank {comm.Get_rank()}: rank {recvs[i][0]} sent {got} bytes, "
                                  f"{recvs[i][1].nbytes} expected (every rank must pass the same "
                                  f"shape and dtype)")


_yield = getattr(os, "sched_yield", lambda: time.sleep(0))


def _give_up(comm: Any, reqs: list, buffers: list, why: str) -> None:
    """Cancel what can be cancelled and mark comm unusable; its buffers
    stay referenced, since MPI may still touch them."""
    MPI = _mpi()
    for req in reqs:
        if req != MPI.REQUEST_NULL:
            try:
                req.Cancel()
            except Exception:       # a send may not be cancellable; it stays pending
                pass
    with _broken_lock:
        _broken.setdefault(comm.py2f(), (why, []))[1].append((reqs, buffers))


# Per communicator, the receive space of its reductions, kept from call to
# call: fresh memory costs a page fault per 4 KiB on first touch, which
# was most of a megabyte allreduce's time. Collectives on one communicator
# are never concurrent (MPI requires them ordered), so one space each.
_scratch_space: dict[int, np.ndarray] = {}


def _scratch(comm: Any, n: int, count: int, dtype: np.dtype) -> dict[int, np.ndarray]:
    """count elements of dtype from each rank other than this one."""
    me, itemsize = comm.Get_rank(), np.dtype(dtype).itemsize
    need = (n - 1) * count * itemsize
    key = comm.py2f()
    space = _scratch_space.get(key)
    if space is None or space.size < need:
        space = _scratch_space[key] = np.empty(need, np.uint8)
    out, at = {}, 0
    for r in range(n):
        if r != me:
            out[r] = space[at:at + count * itemsize].view(dtype)
            at += count * itemsize
    return out


def _chunks(n: int, parts: int) -> list[tuple[int, int]]:
    """[lo, hi) element ranges of n split into parts near-equal chunks."""
    base, extra = divmod(n, parts)
    out, lo = [], 0
    for i in range(parts):
        hi = lo + base + (1 if i < extra else 0)
        out.append((lo, hi))
        lo = hi
    return out


# -- collectives on host buffers ---------------------------------------------------

def cross_rank_allreduce(comm: Any, buf: np.ndarray, op: str = "sum", timeout: float | None = None) -> np.ndarray:
    """Reduce buf over every rank of comm, in place, and return it: element
    i becomes op over ranks 0, 1, ..., n-1 in that order, bit-identical on
    every rank and run to run."""
    _check_comm(comm)
    ufunc = _op(op)
    _flat(buf, "buf", writeable=True)
    if buf.dtype.kind not in "biufc":
        raise InvalidArgument(f"allreduce needs a numeric dtype, not {buf.dtype}")
    timeout = _timeout(timeout)
    n, me = comm.Get_size(), comm.Get_rank()
    if n == 1 or buf.size == 0:
        return buf
    flat = buf.reshape(-1)
    chunks = _chunks(flat.size, n)
    lo, hi = chunks[me]
    # Reduce-scatter: chunk j of every rank goes to rank j.
    incoming = _scratch(comm, n, hi - lo, buf.dtype)
    _exchange(comm, [(r, flat[a:b].view(np.uint8)) for r, (a, b) in enumerate(chunks) if r != me and b > a],
              [(r, x.view(np.uint8)) for r, x in incoming.items() if x.size],
              _TAG_SCATTER, timeout, f"allreduce({op}) reduce-scatter")
    mine = flat[lo:hi]
    acc = incoming[0] if me != 0 else mine      # rank 0's part is first in the order: reduce into it
    for r in range(1, n):
        ufunc(acc, mine if r == me else incoming[r], out=acc)
    if acc is not mine:
        mine[...] = acc
    # Allgather of the reduced chunks.
    _exchange(comm, [(r, mine.view(np.uint8)) for r in range(n) if r != me and mine.size],
              [(r, flat[a:b].view(np.uint8)) for r, (a, b) in enumerate(chunks) if r != me and b > a],
              _TAG_GATHER, timeout, f"allreduce({op}) allgather")
    return buf


def cross_rank_reduce_scatter(comm: Any, send: np.ndarray, recv: np.ndarray, op: str = "sum",
                              timeout: float | None = None) -> np.ndarray:
    """send holds size x recv.size elements; rank r's recv becomes op over
    every rank's chunk r (in rank order)."""
    _check_comm(comm)
    ufunc = _op(op)
    _flat(send, "send", writeable=False)
    _flat(recv, "recv", writeable=True)
    n, me = comm.Get_size(), comm.Get_rank()
    if send.dtype != recv.dtype or send.size != n * recv.size:
        raise InvalidArgument(f"reduce_scatter: send ({send.size} x {send.dtype}) must hold {n} x recv "
                              f"({recv.size} x {recv.dtype}) elements of recv's dtype")
    if send.dtype.kind not in "biufc":
        raise InvalidArgument(f"reduce_scatter needs a numeric dtype, not {send.dtype}")
    timeout = _timeout(timeout)
    k = recv.size
    flat = send.reshape(-1)
    incoming = _scratch(comm, n, k, send.dtype)
    if k:
        _exchange(comm, [(r, flat[r * k:(r + 1) * k].view(np.uint8)) for r in range(n) if r != me],
                  [(r, x.view(np.uint8)) for r, x in incoming.items()],
                  _TAG_SCATTER, timeout, f"reduce_scatter({op})")
    out = recv.reshape(-1)
    out[...] = incoming[0] if me != 0 else flat[0:k]
    for r in range(1, n):
        ufunc(out, flat[me * k:(me + 1) * k] if r == me else incoming[r], out=out)
    return recv


def cross_rank_allgather(comm: Any, send: np.ndarray, recv: np.ndarray, timeout: float | None = None) -> np.ndarray:
    """recv (size x send's bytes) gets every rank's send, in rank order."""
    _check_comm(comm)
    s = _flat(send, "send", writeable=False)
    out = _flat(recv, "recv", writeable=True)
    n, me = comm.Get_size(), comm.Get_rank()
    if out.size != n * s.size:
        raise InvalidArgument(f"allgather: recv has {out.size} bytes, {n} ranks x {s.size} expected")
    timeout = _timeout(timeout)
    k = s.size
    out[me * k:(me + 1) * k] = s
    if k:
        _exchange(comm, [(r, s) for r in range(n) if r != me],
                  [(r, out[r * k:(r + 1) * k]) for r in range(n) if r != me], _TAG_GATHER, timeout, "allgather")
    return recv


def cross_rank_broadcast(comm: Any, buf: np.ndarray, root: int = 0, timeout: float | None = None) -> np.ndarray:
    """buf on every rank becomes root's buf."""
    _check_comm(comm)
    b = _flat(buf, "buf", writeable=True)
    n, me = comm.Get_size(), comm.Get_rank()
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= root < n:
        raise InvalidArgument(f"root must be a rank 0..{n - 1}, not {root!r}")
    timeout = _timeout(timeout)
    if b.size and n > 1:
        if me == root:
            _exchange(comm, [(r, b) for r in range(n) if r != me], [], _TAG_BCAST, timeout, "broadcast")
        else:
            _exchange(comm, [], [(int(root), b)], _TAG_BCAST, timeout, "broadcast")
    return buf


def cross_rank_all_to_all(comm: Any, send: np.ndarray, recv: np.ndarray, timeout: float | None = None) -> np.ndarray:
    """send and recv hold size equal chunks: chunk j of send goes to rank
    j, and chunk j of recv comes from rank j."""
    _check_comm(comm)
    s = _flat(send, "send", writeable=False)
    out = _flat(recv, "recv", writeable=True)
    n, me = comm.Get_size(), comm.Get_rank()
    if s.size != out.size or s.size % n:
        raise InvalidArgument(f"all_to_all: send ({s.size} bytes) and recv ({out.size} bytes) must be the "
                              f"same size, a multiple of {n} ranks")
    timeout = _timeout(timeout)
    k = s.size // n
    out[me * k:(me + 1) * k] = s[me * k:(me + 1) * k]
    if k:
        _exchange(comm, [(r, s[r * k:(r + 1) * k]) for r in range(n) if r != me],
                  [(r, out[r * k:(r + 1) * k]) for r in range(n) if r != me], _TAG_ALLTOALL, timeout,
                  "all_to_all")
    return recv


# -- a Worker over ranks --------------------------------------------------------

class MpiContext:
    """What a Worker with comm= knows of the job: its rank, the number of
    ranks, every rank's device list (so a chip of the job is (rank,
    device)), and the private duplicate of comm its collectives use."""

    def __init__(self, comm: Any, private: Any, devices_by_rank: list[tuple[int, ...]]) -> None:
        self.comm = comm
        self.private = private
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.devices_by_rank = devices_by_rank
        # Every cross-rank step writes this byte, so the graph starts them in
        # the order they were issued: the same order on every rank, as MPI
        # needs, whatever order their inputs become ready in.
        self.token = np.zeros(1, np.uint8)

    @property
    def chips(self) -> list[tuple[int, int]]:
        """Every chip of the job as (rank, device), in global order."""
        return [(r, d) for r, devs in enumerate(self.devices_by_rank) for d in devs]

    def close(self) -> None:
        """Free the private communicator (local; not after a failure, when
        MPI may still hold messages on it)."""
        private, self.private = self.private, None
        if private is None:
            return
        key = private.py2f()
        _scratch_space.pop(key, None)
        with _broken_lock:
            broken = key in _broken
        if not broken:
            private.Free()

    def __repr__(self) -> str:
        return f"<MpiContext rank {self.rank} of {self.size}, chips {self.chips}>"


def attach(worker: "Worker", comm: Any, timeout: float | None = None) -> MpiContext:
    """Make worker one rank of comm's job (Worker(comm=) calls this; every
    rank must construct its Worker). Sets worker.comm and worker.mpi."""
    MPI = _check_comm(comm)
    if MPI.Query_thread() < MPI.THREAD_MULTIPLE:
        raise Unsupported("a Worker's cross-rank steps run on its host thread while yours may use MPI too: "
                          "MPI must be initialised with MPI_THREAD_MULTIPLE (mpi4py's default; see "
                          "mpi4py.rc.thread_level)")
    timeout = _timeout(timeout)
    private, req = comm.Idup()
    _wait_request(comm, req, timeout, "Worker(comm=): duplicating the communicator")
    n = comm.Get_size()
    devices = np.asarray(worker.devices, np.int64)
    counts = np.empty(n, np.int64)
    cross_rank_allgather(private, np.array([devices.size], np.int64), counts, timeout)
    width = int(counts.max())
    padded = np.full(width, -1, np.int64)
    padded[:devices.size] = devices
    lists = np.empty((n, width), np.int64)
    cross_rank_allgather(private, padded, lists, timeout)
    ctx = MpiContext(comm, private, [tuple(int(d) for d in lists[r, :counts[r]]) for r in range(n)])
    worker.comm = comm
    worker.mpi = ctx
    return ctx


def _wait_request(comm: Any, req: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not req.Test():
        if time.monotonic() > deadline:
            why = f"{what}: not every rank of {comm.Get_size()} answered within {timeout:g} s"
            _give_up(comm, [req], [], why)
            raise Timeout(why)
        time.sleep(0.0005)


# -- collectives of a Worker over ranks ---------------------------------------------
#
# Each is nodes of the Worker's graph: what the local chips can do among
# themselves runs on the chips (simpler/collectives.py), the rank's part
# is copied to a host buffer, one host node exchanges it with the other
# ranks, and the result is copied back to the chips. Global chip order is
# (rank, device): the ranks' device lists, in rank order.

_STATUS_BYTES = 512     # one rank's status before an exchange: ok, or its failure


def _status(failure: BaseException | None) -> np.ndarray:
    record = np.zeros(_STATUS_BYTES, np.uint8)
    if failure is not None:
        name = type(failure).__name__ if isinstance(failure, SimplerError) else "SimplerError"
        text = f"{name}\0{failure}".encode("utf-8", "replace")[:_STATUS_BYTES - 1]
        record[0] = 1
        record[1:1 + len(text)] = np.frombuffer(text, np.uint8)
    return record


def _agree(comm: Any, failure: BaseException | None, what: str, timeout: float) -> None:
    """Every rank says whether its part of the collective is there (its
    copies to the host succeeded) before any data moves, so a rank whose
    chip was lost still takes part: then every rank raises the first
    failed rank's error (DeviceLost naming the rank and the chip), instead
    of the others waiting for data that never comes."""
    _check_comm(comm, "the Worker's communicator")     # broken by an earlier collective since this one was issued?
    n, me = comm.Get_size(), comm.Get_rank()
    records = np.empty((n, _STATUS_BYTES), np.uint8)
    records[me] = _status(failure)
    _exchange(comm, [(r, records[me]) for r in range(n) if r != me],
              [(r, records[r]) for r in range(n) if r != me], _TAG_STATUS, timeout, f"{what}, the ranks' status")
    for r in range(n):
        if records[r, 0]:
            name, _, message = bytes(records[r, 1:]).rstrip(b"\0").decode("utf-8", "replace").partition("\0")
            raise _ERRORS.get(name, SimplerError)(f"{what}: rank {r}: {message}")


# The error classes a rank's status can name, by name.
_ERRORS = {c.__name__: c for c in (*(v for v in vars(errors).values()
                                     if isinstance(v, type) and issubclass(v, SimplerError)), RunSkipped)}


class _AcrossRanks:
    """One collective of a Worker with comm= as nodes of its graph."""

    def __init__(self, worker: "Worker", what: str, timeout: float | None) -> None:
        ctx = getattr(worker, "mpi", None)
        if ctx is None:
            raise InvalidState(f"{worker!r} has no communicator: create it with Worker(..., comm=)")
        self.graph = worker._g()
        _check_comm(ctx.private, "the Worker's communicator")
        self.worker, self.ctx, self.timeout = worker, ctx, _timeout(timeout)
        self.what = f"{what} over {len(ctx.chips)} chips of {ctx.size} ranks"
        self.staged: list[NodeHandle] = []

    def equal_ranks(self) -> int:
        """Chips per rank, for collectives whose blocks follow the global
        chip order (reduce_scatter, allgather, all_to_all)."""
        counts = {len(d) for d in self.ctx.devices_by_rank}
        if len(counts) != 1:
            raise InvalidArgument(f"{self.what}: every rank must drive the same number of chips for this "
                                  f"collective (the ranks drive {[len(d) for d in self.ctx.devices_by_rank]})")
        return counts.pop()

    def to_host(self, host: np.ndarray, tensor: "ChipTensor") -> None:
        self.staged.append(self.worker.copy(host, tensor))

    def across(self, writes: Sequence[np.ndarray], exchange: Any) -> None:
        """The cross-rank node: after the copies to the host (ordered by
        writing what they wrote: an order, not a data edge, so it runs even
        when they failed, and says so to the other ranks), exchange()."""
        graph, comm, staged, what, timeout = self.graph, self.ctx.private, list(self.staged), self.what, self.timeout

        def start(node) -> None:
            try:
                failed = next((e for e in (root_cause(_failure(h)) for h in staged) if e is not None), None)
                _agree(comm, failed, what, timeout)
                exchange(comm, timeout)
            except BaseException as e:
                graph.finish(node, e)
            else:
                graph.finish(node, None)

        regions = [array_region(b) for b in writes] + [array_region(self.ctx.token)]
        graph.add(f"{what}: the exchange between ranks", None, [], regions, start)

    def handle(self, tensors: Sequence["ChipTensor"]) -> "NodeHandle":
        """A handle done (or failed with the root cause) once every tensor
        is written: a node reading them all."""
        graph = self.graph
        joined = graph.add(self.what, None, [t.region for t in tensors], [], lambda node: graph.finish(node, None))
        return _root_cause_handle(joined, self.what)


def _failure(h: "NodeHandle") -> BaseException | None:
    if h.cancelled():
        return RunSkipped(f"{h.what} was cancelled")
    return h.exception(0)


def worker_allreduce(worker: "Worker", tensors: Sequence["ChipTensor"], op: str = "sum",
                     timeout: float | None = None) -> "NodeHandle":
    """Allreduce over every chip of every rank: the on-chip allreduce over
    the local chips (combined in device order), chip 0's result to the
    host, the cross-rank allreduce of those (combined in rank order), and
    the result back to every local chip. Deterministic: the same on every
    chip of every rank, run to run."""
    plan = _AcrossRanks(worker, f"allreduce({op})", timeout)
    _op(op)     # InvalidArgument for an op there is none of
    ts = collectives._tensors(worker, tensors, "allreduce tensors")
    if ts[0].dtype.kind not in "biufc":
        raise InvalidArgument(f"allreduce needs a numeric dtype, not {ts[0].dtype}")
    if len(ts) > 1:
        collectives.allreduce(worker, ts, op)
    result = np.empty(ts[0].shape, ts[0].dtype)
    plan.to_host(result, ts[0])
    plan.across([result], lambda comm, timeout: cross_rank_allreduce(comm, result, op, timeout))
    for t in ts:
        worker.copy(t, result)
    return plan.handle(ts)


def worker_reduce_scatter(worker: "Worker", outputs: Sequence["ChipTensor"], inputs: Sequence["ChipTensor"],
                          op: str = "sum", timeout: float | None = None) -> "NodeHandle":
    """Chip g of the job (global order) gets, in outputs, op over every
    chip's inputs block g (inputs of G x M elements, outputs of M, for G
    chips in all). On the chips, a reduce-scatter over the local chips
    into scratch (chip l holds the local sum of its share of blocks); on
    the host, those one after the other are the rank's sum of the whole
    input; across ranks, a reduce-scatter of those, each rank keeping its
    chips' blocks; back on the chips, each its block."""
    plan = _AcrossRanks(worker, f"reduce_scatter({op})", timeout)
    _op(op)
    ins = collectives._tensors(worker, inputs, "reduce_scatter inputs")
    outs = collectives._tensors(worker, outputs, "reduce_scatter outputs")
    per_rank = plan.equal_ranks()
    total = len(plan.ctx.chips)
    count = collectives._numel(ins[0])
    if count % total:
        raise InvalidArgument(f"{plan.what}: {count} elements do not split into {total} equal blocks, one per chip")
    m = count // total
    collectives._sized(outs, ins, plan.what, m, f"1/{total} of the inputs' elements")
    if ins[0].dtype.kind not in "biufc":
        raise InvalidArgument(f"reduce_scatter needs a numeric dtype, not {ins[0].dtype}")
    local = np.empty(count, ins[0].dtype)
    share = count // per_rank
    if per_rank > 1:
        scratch = [worker._scratch(d, share, ins[0].dtype) for d in worker.devices]
        collectives.reduce_scatter(worker, scratch, ins, op)
        for i, t in enumerate(scratch):
            plan.to_host(local[i * share:(i + 1) * share], t)
    else:
        plan.to_host(local, ins[0])
    mine = np.empty(per_rank * m, ins[0].dtype)
    plan.across([local, mine], lambda comm, timeout: cross_rank_reduce_scatter(comm, local, mine, op, timeout))
    for i, t in enumerate(outs):
        worker.copy(t, mine[i * m:(i + 1) * m])
    return plan.handle(outs)


def worker_allgather(worker: "Worker", outputs: Sequence["ChipTensor"], inputs: Sequence["ChipTensor"],
                     timeout: float | None = None) -> "NodeHandle":
    """Every output (G x M elements) = every chip's input (M elements) in
    global chip order: the local inputs to the host one after the other,
    an allgather of those across ranks, the whole back to every chip."""
    plan = _AcrossRanks(worker, "allgather", timeout)
    ins = collectives._tensors(worker, inputs, "allgather inputs")
    outs = collectives._tensors(worker, outputs, "allgather outputs")
    per_rank = plan.equal_ranks()
    total = len(plan.ctx.chips)
    m = collectives._numel(ins[0])
    collectives._sized(outs, ins, plan.what, total * m, f"{total} times the inputs' elements")
    mine = np.empty(per_rank * m, ins[0].dtype)
    for i, t in enumerate(ins):
        plan.to_host(mine[i * m:(i + 1) * m], t)
    every = np.empty(total * m, ins[0].dtype)
    plan.across([mine, every], lambda comm, timeout: cross_rank_allgather(comm, mine, every, timeout))
    for t in outs:
        worker.copy(t, every)
    return plan.handle(outs)


def worker_broadcast(worker: "Worker", tensors: Sequence["ChipTensor"], root: Any,
                     timeout: float | None = None) -> "NodeHandle":
    """Every chip's tensor becomes a copy of chip root's, root = (rank,
    device). The root rank broadcasts on its chips and sends the root
    chip's tensor to the other ranks, which copy it to theirs."""
    plan = _AcrossRanks(worker, f"broadcast(from {root!r})", timeout)
    ts = collectives._tensors(worker, tensors, "broadcast tensors")
    chips = plan.ctx.chips
    if (not isinstance(root, tuple) or len(root) != 2
            or not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in root)
            or (int(root[0]), int(root[1])) not in chips):
        raise InvalidArgument(f"a Worker with comm= broadcasts from a chip of the job as (rank, device), one of "
                              f"{chips}, not {root!r}")
    rank, device = int(root[0]), int(root[1])
    buf = np.empty(ts[0].shape, ts[0].dtype)
    if rank == plan.ctx.rank:
        if len(ts) > 1:
            collectives.broadcast(worker, ts, device)
        plan.to_host(buf, ts[worker.devices.index(device)])
    plan.across([buf], lambda comm, timeout: cross_rank_broadcast(comm, buf, rank, timeout))
    if rank != plan.ctx.rank:
        for t in ts:
            worker.copy(t, buf)
    return plan.handle(ts)


def worker_all_to_all(worker: "Worker", outputs: Sequence["ChipTensor"], inputs: Sequence["ChipTensor"],
                      timeout: float | None = None) -> "NodeHandle":
    """outputs of chip g, block j = inputs of chip j, block g (G blocks of
    M elements each, global chip order): the local inputs to the host,
    rearranged there so each rank's blocks are contiguous, an all-to-all
    across ranks, rearranged into each local chip's output."""
    plan = _AcrossRanks(worker, "all_to_all", timeout)
    ins = collectives._tensors(worker, inputs, "all_to_all inputs")
    outs = collectives._tensors(worker, outputs, "all_to_all outputs")
    per_rank = plan.equal_ranks()
    ranks, total = plan.ctx.size, len(plan.ctx.chips)
    count = collectives._numel(ins[0])
    if count % total:
        raise InvalidArgument(f"{plan.what}: {count} elements do not split into {total} equal blocks, one per chip")
    collectives._sized(outs, ins, plan.what, count, "the inputs' elements")
    m = count // total
    staged = np.empty((per_rank, count), ins[0].dtype)
    for i, t in enumerate(ins):
        plan.to_host(staged[i], t)
    result = np.empty((per_rank, count), ins[0].dtype)

    def exchange(comm: Any, timeout: float) -> None:
        # send[r, l, k]: local chip l's block for chip k of rank r
        send = np.ascontiguousarray(staged.reshape(per_rank, ranks, per_rank, m).transpose(1, 0, 2, 3))
        recv = np.empty_like(send)      # recv[s, l, k]: chip l of rank s's block for local chip k
        cross_rank_all_to_all(comm, send, recv, timeout)
        result[...] = recv.transpose(2, 0, 1, 3).reshape(per_rank, count)

    plan.across([staged, result], exchange)
    for i, t in enumerate(outs):
        worker.copy(t, result[i])
    return plan.handle(outs)


def _root_cause_handle(joined: "NodeHandle", what: str) -> "NodeHandle":
    """A handle that ends as joined does, but fails with the error that
    started a chain of skipped nodes (the Timeout of the cross-rank step,
    not "copy ... was not run")."""

    handle = NodeHandle(what, None)
    handle.set_running_or_notify_cancel()

    def relay(f) -> None:
        if f.cancelled():
            handle.set_exception(concurrent.futures.CancelledError(f"{what} was cancelled"))
            return
        e = root_cause(f.exception())
        if e is None:
            handle.set_result(None)
        else:
            handle.set_exception(e)

    joined.add_done_callback(relay)
    return handle
