"""Collectives across the chips of a Worker: allreduce, allgather,
reduce_scatter, broadcast and all_to_all on device tensors, one per chip.

Each collective is a few steps, and each step is a chip run: one task of
vector-core blocks on chip i (collective_kernels/step.c) that writes into
chip i's own tensor and reads its peers' tensors through windows (the
addresses Worker._window gives, passed as scalars). A step is a node of
the Worker's host graph whose reads and writes are the regions it really
touches, peers' included, so the graph orders the steps (an allreduce's
gather phase after the reductions it copies, RAW, and after the reductions
that read what it overwrites, WAR) and orders the collective against the
runs and copies around it. Nothing goes through host memory.

Reductions combine the chips' values in device order (0, 1, ..., n-1),
whichever chip computes them: results are bit-identical run to run and on
every chip.
"""
from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .callable import ChipCallable, CoreCallable
from .device_tensor import DeviceTensor
from .dtypes import dtype_code
from .errors import InvalidArgument, InvalidState
from .chip_tensor import ChipTensor
from .host_graph import NodeHandle, Region

# Worker and WorkerRegistration (simpler/multi_chip.py) are only named in
# annotations: multi_chip calls down into this module, never the reverse.

KERNELS = Path(__file__).resolve().parent / "collective_kernels"

# collective_kernels/collective.h
_REDUCE, _GATHER = 0, 1
OPS = {"sum": 0, "prod": 1, "max": 2, "min": 3}
_MAX_SRC = 32
_NO_SKIP = _MAX_SRC             # a segment index no step has
_NUM_SCALARS = 7 + _MAX_SRC

# What step.c reduces; gathers and copies move any dtype's bytes.
REDUCE_DTYPES = tuple(np.dtype(d) for d in ("int8", "uint8", "int16", "int32", "uint32", "int64", "uint64",
                                            "float16", "float32", "float64"))

_BLOCK_BYTES = 1 << 20          # a block's share of a step, about
_MAX_BLOCKS = 64

_lock = threading.Lock()
_callable: ChipCallable | None = None
_registrations: "weakref.WeakKeyDictionary[Worker, WorkerRegistration]" = weakref.WeakKeyDictionary()


def step_callable() -> ChipCallable:
    """The collectives' ChipCallable, compiled on first use (and cached
    by KernelCompiler across processes)."""
    global _callable
    with _lock:
        if _callable is None:
            from .compiler import KernelCompiler
            kc = KernelCompiler(cflags=["-O3"])
            step = CoreCallable(func_id=0, core_type="aiv", binary=kc.compile(KERNELS / "step.c"),
                                signature=["inout"], num_scalars=_NUM_SCALARS, name="collective_step")
            _callable = ChipCallable.build(kc.compile(KERNELS / "orchestration.c"), [step],
                                           ["nodep"] + ["scalar"] * _NUM_SCALARS)
        return _callable


def _registration(worker: "Worker") -> "WorkerRegistration":
    """The step callable registered on every chip of worker, once."""
    callable_ = step_callable()
    with _lock:
        reg = _registrations.get(worker)
    if reg is None or not reg.registered:
        reg = worker.register(callable_)
        with _lock:
            _registrations[worker] = reg
    return reg


class CollectiveHandle(NodeHandle):
    """A collective: done when all its steps are (``steps``, each a
    NodeHandle of the Worker's graph); fails with the first step's
    failure. It cannot be cancelled: its steps are queued already."""

    def __init__(self, what: str, steps: list[NodeHandle]) -> None:
        super().__init__(what, None)
        self.steps = steps
        self.set_running_or_notify_cancel()
        self._left = len(steps)
        self._count_lock = threading.Lock()
        if not steps:
            self.set_result(None)
        for s in steps:
            s.add_done_callback(self._step_done)

    def _step_done(self, _step: NodeHandle) -> None:
        with self._count_lock:
            self._left -= 1
            last = self._left == 0
        if last:
            failed = [s for s in self.steps if s.cancelled() or s.exception(0) is not None]
            if not failed:
                self.set_result(None)
            elif failed[0].cancelled():
                import concurrent.futures
                self.set_exception(concurrent.futures.CancelledError(f"{failed[0].what} was cancelled"))
            else:
                self.set_exception(failed[0].exception(0))

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, {len(self.steps)} steps>"


# -- checks --------------------------------------------------------------
def _tensors(worker: "Worker", tensors: Any, what: str) -> "list[ChipTensor]":
    """tensors as one ChipTensor per chip of worker, in device order, all
    of one shape and dtype, or InvalidArgument saying which is wrong."""
    worker._g()
    if isinstance(tensors, ChipTensor) or not isinstance(tensors, Sequence):
        raise InvalidArgument(f"{what} must be a list of ChipTensors, one per chip {list(worker.devices)}, "
                              f"not {type(tensors).__name__}")
    tensors = list(tensors)
    if len(tensors) != len(worker.devices):
        raise InvalidArgument(f"{what}: {len(tensors)} tensors for {len(worker.devices)} chips "
                              f"{list(worker.devices)}: give one per chip")
    for d, t in zip(worker.devices, tensors):
        if not isinstance(t, ChipTensor):
            raise InvalidArgument(f"{what}[chip {d}] must be a ChipTensor (Worker.malloc), not "
                                  f"{type(t).__name__}")
        if worker.chips.get(t.device) is not t.buffer._worker:
            raise InvalidArgument(f"{what}[chip {d}]: {t!r} is a tensor of another Worker")
        if t.device != d:
            raise InvalidArgument(f"{what}[chip {d}]: {t!r} is on chip {t.device}; the tensors go in device "
                                  f"order {list(worker.devices)}")
        if t.buffer.freed:
            raise InvalidState(f"{what}[chip {d}]: {t!r} is freed")
    first = tensors[0]
    for d, t in zip(worker.devices, tensors):
        if t.shape != first.shape or t.dtype != first.dtype:
            raise InvalidArgument(f"{what}[chip {d}] is {t.dtype}{list(t.shape)}, {what}[chip "
                                  f"{worker.devices[0]}] {first.dtype}{list(first.shape)}: a collective's "
                                  f"tensors have one shape and dtype")
    dtype_code(first.dtype)     # InvalidArgument for a dtype simpler cannot pass
    return tensors


def _op(op: Any, dtype: np.dtype) -> int:
    if not isinstance(op, str) or op not in OPS:
        raise InvalidArgument(f"op must be one of {', '.join(OPS)}, not {op!r}")
    if dtype not in REDUCE_DTYPES:
        raise InvalidArgument(f"no reduction for {dtype} (reductions: "
                              f"{', '.join(str(d) for d in REDUCE_DTYPES)})")
    return OPS[op]


def _numel(t: "ChipTensor") -> int:
    return int(np.prod(t.shape, dtype=np.int64))


def _sized(outputs: "list[ChipTensor]", inputs: "list[ChipTensor]", what: str, out_numel: int, rule: str) -> None:
    """outputs hold out_numel elements of the inputs' dtype (rule says
    why), and no output is an input."""
    o, i = outputs[0], inputs[0]
    if o.dtype != i.dtype or _numel(o) != out_numel:
        raise InvalidArgument(f"{what}: outputs are {o.dtype}{list(o.shape)}, inputs {i.dtype}{list(i.shape)}: "
                              f"outputs must be {i.dtype} with {rule} ({out_numel} elements)")
    for t in outputs:
        for u in inputs:
            if t.region.overlaps(u.region):
                raise InvalidArgument(f"{what}: output {t!r} is input {u!r}: give outputs of their own")


def _segments(n: int, count: int) -> list[int]:
    """Segment bounds of count elements over n chips (step.c's formula)."""
    return [s * count // n for s in range(n + 1)]


def _blocks(nbytes: int) -> int:
    return max(1, min(_MAX_BLOCKS, -(-nbytes // _BLOCK_BYTES)))


# -- steps -----------------------------------------------------------------
class _Steps:
    """The steps of one collective on one Worker. Steps are only queued
    by add(); handle() opens every window first and submits after, so a
    chip lost before the collective raises DeviceLost with nothing
    submitted, and one lost during it (its first step failing) cannot
    make the rest of the submission fail half way."""

    def __init__(self, worker: "Worker", what: str) -> None:
        self.worker = worker
        self.what = what
        self.cid = {d: r.id for d, r in _registration(worker).chips.items()}
        self.queued: list[tuple[int, "ChipTensor", list[Any], list[tuple[int, "ChipTensor", int]],
                                list[Region], list[Region]]] = []

    def addr(self, device: int, t: "ChipTensor", elem: int = 0) -> tuple[int, "ChipTensor", int]:
        """Where chip device's kernels reach element elem of t (resolved
        to an address, through a window onto t's chip, by handle())."""
        return (device, t, elem)

    def add(self, device: int, own: "ChipTensor", mode: int, op: int, count: int, dst_off: int,
            srcs: list[tuple[int, "ChipTensor", int]], skip: int, reads: list[Region],
            writes: list[Region]) -> None:
        """A step on chip device writing count elements of own from dst_off."""
        if count == 0 or not writes:
            return
        head = [mode, op, _blocks(count * own.dtype.itemsize), count, dst_off, len(srcs), skip]
        self.queued.append((device, own, head, srcs, reads, writes))

    def handle(self) -> CollectiveHandle:
        window = self.worker._window
        resolved = [[window(d, t) + elem * t.dtype.itemsize for d, t, elem in step[3]] for step in self.queued]
        handles = []
        for (device, own, head, _, reads, writes), srcs in zip(self.queued, resolved):
            flat = DeviceTensor(own.addr, (_numel(own),), own.dtype)
            scalars = [*head, *srcs, *[0] * (_MAX_SRC - len(srcs))]
            handles.append(self.worker._submit_run(f"{self.what} step on chip {device}", device,
                                                   self.cid[device], [flat, *scalars], reads, writes))
        return CollectiveHandle(self.what, handles)


def _part(t: "ChipTensor", lo: int, hi: int) -> Region:
    """Elements [lo, hi) of t, as a region of its chip."""
    es = t.dtype.itemsize
    return Region(t.device, t.addr + lo * es, t.addr + hi * es)


def _check_devices(worker: "Worker") -> None:
    if len(worker.devices) > _MAX_SRC:
        raise InvalidArgument(f"collectives span at most {_MAX_SRC} chips, not {len(worker.devices)}")


# -- the collectives ---------------------------------------------------------
def allreduce(worker: "Worker", tensors: Sequence["ChipTensor"], op: str = "sum") -> CollectiveHandle:
    """Every chip's tensor becomes the elementwise op of all of them, in
    place. Reduce-scatter then allgather: chip i reduces segment i of
    every chip's tensor into its own, then copies every other chip's
    segment from it."""
    ts = _tensors(worker, tensors, "allreduce tensors")
    opcode = _op(op, ts[0].dtype)
    _check_devices(worker)
    devs, n, count = worker.devices, len(ts), _numel(ts[0])
    steps = _Steps(worker, f"allreduce({op}, {n} chips, {ts[0].dtype}{list(ts[0].shape)})")
    if n == 1:
        return steps.handle()
    b = _segments(n, count)
    for i, d in enumerate(devs):
        lo, hi = b[i], b[i + 1]
        steps.add(d, ts[i], _REDUCE, opcode, hi - lo, lo, [steps.addr(d, t, lo) for t in ts], _NO_SKIP,
                  [_part(t, lo, hi) for t in ts], [_part(ts[i], lo, hi)] if hi > lo else [])
    for i, d in enumerate(devs):
        others = [s for s in range(n) if s != i and b[s + 1] > b[s]]
        steps.add(d, ts[i], _GATHER, 0, count, 0, [steps.addr(d, ts[s], b[s]) for s in range(n)], i,
                  [_part(ts[s], b[s], b[s + 1]) for s in others], [_part(ts[i], b[s], b[s + 1]) for s in others])
    return steps.handle()


def reduce_scatter(worker: "Worker", outputs: Sequence["ChipTensor"], inputs: Sequence["ChipTensor"],
                   op: str = "sum") -> CollectiveHandle:
    """outputs[i] (M elements) = op over j of inputs[j]'s elements
    [i*M, (i+1)*M) (inputs of n*M elements, flat in row-major order)."""
    ins = _tensors(worker, inputs, "reduce_scatter inputs")
    outs = _tensors(worker, outputs, "reduce_scatter outputs")
    opcode = _op(op, ins[0].dtype)
    _check_devices(worker)
    n = len(ins)
    count = _numel(ins[0])
    if count % n:
        raise InvalidArgument(f"reduce_scatter: {count} elements do not split into {n} equal blocks, one per chip")
    m = count // n
    _sized(outs, ins, "reduce_scatter", m, f"1/{n} of the inputs' elements")
    steps = _Steps(worker, f"reduce_scatter({op}, {n} chips, {ins[0].dtype}[{m * n}])")
    for i, d in enumerate(worker.devices):
        steps.add(d, outs[i], _REDUCE, opcode, m, 0, [steps.addr(d, t, i * m) for t in ins], _NO_SKIP,
                  [_part(t, i * m, (i + 1) * m) for t in ins], [outs[i].region])
    return steps.handle()


def allgather(worker: "Worker", outputs: Sequence["ChipTensor"], inputs: Sequence["ChipTensor"]) -> CollectiveHandle:
    """Every outputs[i] (n*M elements, flat) = inputs[0], inputs[1], ...
    one after the other (inputs of M elements)."""
    ins = _tensors(worker, inputs, "allgather inputs")
    outs = _tensors(worker, outputs, "allgather outputs")
    _check_devices(worker)
    n = len(ins)
    _sized(outs, ins, "allgather", n * _numel(ins[0]), f"{n} times the inputs' elements")
    steps = _Steps(worker, f"allgather({n} chips, {ins[0].dtype}{list(ins[0].shape)})")
    for i, d in enumerate(worker.devices):
        steps.add(d, outs[i], _GATHER, 0, _numel(outs[i]), 0, [steps.addr(d, t) for t in ins], _NO_SKIP,
                  [t.region for t in ins], [outs[i].region])
    return steps.handle()


def all_to_all(worker: "Worker", outputs: Sequence["ChipTensor"], inputs: Sequence["ChipTensor"]) -> CollectiveHandle:
    """outputs[i]'s elements [j*M, (j+1)*M) = inputs[j]'s [i*M, (i+1)*M)
    (both of n*M elements, flat): chip j's i-th block goes to chip i."""
    ins = _tensors(worker, inputs, "all_to_all inputs")
    outs = _tensors(worker, outputs, "all_to_all outputs")
    _check_devices(worker)
    n = len(ins)
    count = _numel(ins[0])
    if count % n:
        raise InvalidArgument(f"all_to_all: {count} elements do not split into {n} equal blocks, one per chip")
    _sized(outs, ins, "all_to_all", count, "the inputs' elements")
    m = count // n
    steps = _Steps(worker, f"all_to_all({n} chips, {ins[0].dtype}{list(ins[0].shape)})")
    for i, d in enumerate(worker.devices):
        steps.add(d, outs[i], _GATHER, 0, count, 0, [steps.addr(d, t, i * m) for t in ins], _NO_SKIP,
                  [_part(t, i * m, (i + 1) * m) for t in ins], [outs[i].region])
    return steps.handle()


def broadcast(worker: "Worker", tensors: Sequence["ChipTensor"], root: int) -> CollectiveHandle:
    """Every chip's tensor becomes a copy of chip root's."""
    ts = _tensors(worker, tensors, "broadcast tensors")
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or int(root) not in worker.devices:
        raise InvalidArgument(f"broadcast root must be a device of this Worker ({list(worker.devices)}), "
                              f"not {root!r}")
    src = ts[worker.devices.index(int(root))]
    steps = _Steps(worker, f"broadcast(from chip {root}, {src.dtype}{list(src.shape)})")
    for d, t in zip(worker.devices, ts):
        if t is not src:
            steps.add(d, t, _GATHER, 0, _numel(t), 0, [steps.addr(d, src)], _NO_SKIP, [src.region], [t.region])
    return steps.handle()
