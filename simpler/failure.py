"""What a failed run leaves: a FailureReport on the exception (``e.report``)
and, with ``CallConfig(dump_dir=...)`` or ``SIMPLER_DUMP_DIR``, a directory
with the report and the run's tensors as .npy files to replay it offline.

The tasks come from the C side (simpler_last_failure): what the cores held
as the launch failed (platform/chip/failure_report.c). The arguments and the
kernels' names and tags come from Python, which knows what it passed.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ._native import ffi, lib
from .device_tensor import DeviceTensor
from .dtypes import numpy_dtype
from .errors import DeviceLost, InvalidArgument, OrchestrationError, Timeout
from .progress import RunProgress, begin_showing, end_showing

log = logging.getLogger("simpler")

# The failures a report is made for: the run itself went wrong.
REPORTED = (Timeout, OrchestrationError, DeviceLost, KeyboardInterrupt)
DUMP_ENV = "SIMPLER_DUMP_DIR"
_STATES = {lib.SIMPLER_REPORT_RUNNING: "running", lib.SIMPLER_REPORT_POSTED: "waiting",
           lib.SIMPLER_REPORT_FINISHED: "finished"}


@dataclass
class TensorInfo:
    """A task's tensor: base device address, view (offset, shape, strides in
    elements), dtype and how the kernel uses it (its signature's tag)."""

    addr: int
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: str
    tag: str | None

    def __str__(self) -> str:
        return (f"{self.tag or '?'} {self.dtype}{list(self.shape)} at 0x{self.addr:x}"
                f"{f' offset {self.offset}' if self.offset else ''} strides {list(self.strides)}")


@dataclass
class TaskInfo:
    """A task as a core held it when the run failed."""

    task_id: int
    state: str                      # "running" (in its kernel), "waiting" (posted, not started), "finished"
    kernel: str                     # the CoreCallable's name, "" if unknown
    func_id: int
    core: int
    block: tuple[int, int]          # (block index, blocks)
    tensors: list[TensorInfo]
    scalars: list[int]
    num_tensors: int                # the task's; the report keeps the first few
    num_scalars: int
    waits_for: list[int]            # unfinished producer tasks (on other cores)

    def __str__(self) -> str:
        core = f"core {self.core} ({'AIC' if self.core % 3 == 0 else 'AIV'})"
        block = f", block {self.block[0]} of {self.block[1]}" if self.block[1] > 1 else ""
        lines = [f"task {self.task_id} {self.kernel or '?'!r} (func {self.func_id}) on {core}{block}"]
        lines += [f"    tensor {i}: {t}" for i, t in enumerate(self.tensors)]
        if self.num_tensors > len(self.tensors):
            lines.append(f"    ... {self.num_tensors - len(self.tensors)} more tensors")
        lines += [f"    scalar {i}: {s} (0x{s:x})" for i, s in enumerate(self.scalars)]
        if self.num_scalars > len(self.scalars):
            lines.append(f"    ... {self.num_scalars - len(self.scalars)} more scalars")
        if self.waits_for:
            lines.append(f"    waits for task {', '.join(map(str, self.waits_for))}")
        return "\n".join(lines)


@dataclass
class ArgInfo:
    """One argument of the run as it was passed."""

    index: int
    kind: str                       # "host array", "device tensor", "scalar"
    direction: str | None           # the run signature's
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    addr: int | None = None         # a device tensor's
    value: Any = None               # a scalar's
    file: str | None = None         # its .npy in the dump

    def __str__(self) -> str:
        if self.kind == "scalar":
            return f"{self.index}: scalar {self.value!r}"
        where = f" at 0x{self.addr:x}" if self.addr is not None else ""
        saved = f" -> {self.file}" if self.file else ""
        return f"{self.index}: {self.direction or '?'} {self.kind} {self.dtype}{list(self.shape or ())}{where}{saved}"


@dataclass
class FailureReport:
    """Why and where a run failed: str() reads as text, to_dict() is JSON."""

    error: str                      # the exception's class
    message: str
    run: str                        # "run(callable_id=1)", "replay of graph 2"
    platform: str
    runtime: str
    tasks_completed: int = 0
    tasks_submitted: int = 0
    running: list[TaskInfo] = field(default_factory=list)
    waiting: list[TaskInfo] = field(default_factory=list)
    finished: list[TaskInfo] = field(default_factory=list)   # the last few, newest first
    tasks_left_out: int = 0
    from_device: bool = False       # False: it failed before its launch (no task state)
    arguments: list[ArgInfo] = field(default_factory=list)
    dump_dir: str | None = None

    @property
    def stuck(self) -> list[TaskInfo]:
        """The running tasks and the tasks queued behind them."""
        return self.running + self.waiting

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __repr__(self) -> str:
        return (f"<FailureReport {self.error} in {self.run}: {len(self.running)} running, "
                f"{len(self.waiting)} waiting, {len(self.finished)} finished>")

    def __str__(self) -> str:
        out = [f"{self.error} in {self.run} ({self.platform}, {self.runtime})", f"  {self.message}"]
        if self.from_device:
            out.append(f"tasks: {self.tasks_completed} of {self.tasks_submitted} submitted finished")
        else:
            out.append("it failed before its launch: no task was running")
        for title, tasks in (("running (in a kernel)", self.running), ("waiting (posted to a core)", self.waiting),
                             ("last finished", self.finished)):
            if tasks:
                out.append(f"{title}:")
                out += ["  " + str(t).replace("\n", "\n  ") for t in tasks]
        if self.tasks_left_out:
            out.append(f"({self.tasks_left_out} more tasks left out)")
        if self.arguments:
            out.append("run arguments:")
            out += [f"  {a}" for a in self.arguments]
        if self.dump_dir:
            out.append(f"dumped to {self.dump_dir}")
        return "\n".join(out)


def _tensor(t, tag: str | None) -> TensorInfo:
    n = int(t.ndim)
    try:
        dtype = str(numpy_dtype(int(t.dtype)))
    except KeyError:
        dtype = f"dtype 0x{int(t.dtype):x}"
    return TensorInfo(int(t.addr), int(t.offset), tuple(int(t.shape[d]) for d in range(n)),
                      tuple(int(t.strides[d]) for d in range(n)), dtype, tag)


def _task(t, kernels: dict) -> TaskInfo:
    core_callable = kernels.get(int(t.func_id))
    tags = core_callable.signature if core_callable is not None else ()
    nt = min(int(t.num_tensors), lib.SIMPLER_REPORT_TENSORS)
    ns = min(int(t.num_scalars), lib.SIMPLER_REPORT_SCALARS)
    name = core_callable.name if core_callable is not None else ffi.string(t.kernel).decode("utf-8", "replace")
    return TaskInfo(int(t.task_id), _STATES.get(int(t.state), "?"), name, int(t.func_id), int(t.core),
                    (int(t.block_idx), int(t.block_num)),
                    [_tensor(t.tensors[i], tags[i] if i < len(tags) else None) for i in range(nt)],
                    [int(t.scalars[i]) for i in range(ns)], int(t.num_tensors), int(t.num_scalars),
                    [int(t.waits_for[i]) for i in range(min(int(t.num_waits), lib.SIMPLER_REPORT_WAITS))])


# os.environ.get of a name that is not set raises and catches a KeyError
# inside (1.7 us here, on every run's path); the dict os.environ keeps up
# to date with every change made through it answers in 0.05.
_ENVIRON = getattr(os.environ, "_data", None)
_DUMP_KEY = os.environ.encodekey(DUMP_ENV) if _ENVIRON is not None and hasattr(os.environ, "encodekey") else None


def _dump_env() -> "str | None":
    if _DUMP_KEY is not None:
        value = _ENVIRON.get(_DUMP_KEY)
        return os.environ.decodevalue(value) if value else None
    return os.environ.get(DUMP_ENV) or None


def dump_dir_setting(value: Any) -> "str | None":
    """The dump directory a run asks for: CallConfig.dump_dir, else $SIMPLER_DUMP_DIR."""
    if value is None:
        return _dump_env()
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise InvalidArgument(f"dump_dir must be a directory path, not {value!r}")
    return os.fspath(value)


class RunWatch:
    """What one run's execution shows and leaves: its progress bar, and
    the report attached to its exception if it fails."""

    __slots__ = ("what", "config", "progress", "dump_dir", "_worker", "_callable", "_specs", "_items", "_previous")

    def __init__(self, worker: Any, what: str, callable_: Any, items: Sequence[Any], specs: Sequence[Any],
                 progress: "RunProgress | None", dump_dir: "str | None") -> None:
        self.what = what
        self.config = None          # the run's CallConfig, if it had one
        self.progress = progress
        self.dump_dir = dump_dir
        self._worker = worker
        self._callable = callable_
        self._specs = specs
        # The arguments as passed: copies when they are to be dumped (a
        # submitted run's arrays may be reused before it fails).
        self._items = ([np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in items] if dump_dir
                       else items)
        self._previous: Any = None

    def __repr__(self) -> str:
        return f"<RunWatch {self.what} progress={self.progress is not None} dump_dir={self.dump_dir!r}>"

    # ``with watch:`` around the C call that executes the run: its bar
    # moves meanwhile, and its exception gets the report. A class, not a
    # generator: this is on every run's path.
    def __enter__(self) -> "RunWatch":
        if self.progress is not None:
            self._previous = begin_showing(self.progress)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self.progress is not None:
            end_showing(self.progress, self._previous, exc_type is None)
        if exc is not None and isinstance(exc, REPORTED):
            self.attach(exc)
        return False

    def failed(self, exc: BaseException) -> None:
        """A failure outside the execution (a host orchestration's, in prepare)."""
        if isinstance(exc, REPORTED):
            self.attach(exc)

    def attach(self, exc: BaseException) -> None:
        """Give exc its report (and write the dump); never raises."""
        try:
            report = self.report(exc)
        except Exception as e:      # a report that cannot be made never hides the failure
            log.warning("no failure report for %s: %s", self.what, e)
            return
        if self.dump_dir:
            try:
                report.dump_dir = str(self._dump(report))
            except OSError as e:
                log.warning("could not write the failure dump into %s: %s", self.dump_dir, e)
        exc.report = report

    def report(self, exc: BaseException) -> FailureReport:
        w = self._worker
        # A KeyboardInterrupt carries no message: say what it did to the run.
        message = str(exc) or ("interrupted (SIGINT) while it ran" if isinstance(exc, KeyboardInterrupt) else "")
        report = FailureReport(type(exc).__name__, message, self.what, w.platform, w.runtime,
                               arguments=self._arguments())
        raw, found = ffi.new("simpler_failure_report *"), ffi.new("int32_t *")
        dev = w._handle
        if dev is not None and lib.simpler_last_failure(dev, raw, found) == 0 and found[0]:
            report.from_device = True
            report.tasks_completed = int(raw.tasks_completed)
            report.tasks_submitted = int(raw.tasks_submitted)
            report.tasks_left_out = int(raw.tasks_left_out)
            kernels = self._callable.kernels if self._callable is not None else {}
            for i in range(min(int(raw.num_tasks), lib.SIMPLER_REPORT_MAX_TASKS)):
                task = _task(raw.tasks[i], kernels)
                {"running": report.running, "waiting": report.waiting}.get(task.state, report.finished).append(task)
            report.finished.sort(key=lambda t: t.task_id, reverse=True)
        return report

    def _arguments(self) -> list[ArgInfo]:
        out = []
        for i, a in enumerate(self._items):
            spec = self._specs[i] if i < len(self._specs) else None
            direction = None if spec is None or spec.is_scalar else spec.direction
            if isinstance(a, np.ndarray):
                out.append(ArgInfo(i, "host array", direction, str(a.dtype), tuple(a.shape)))
            elif isinstance(a, DeviceTensor):
                out.append(ArgInfo(i, "device tensor", direction, str(a.dtype), tuple(a.shape), addr=int(a.addr)))
            else:
                value = a.item() if isinstance(a, np.generic) else a
                out.append(ArgInfo(i, "scalar", None, value=value))
        return out

    def _dump(self, report: FailureReport) -> Path:
        root = Path(self.dump_dir)
        root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1000):   # a new directory per failure
            target = root / f"{stamp}-{os.getpid()}-{n}"
            try:
                target.mkdir()
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"no free name for a dump in {root}")
        for arg, a in zip(report.arguments, self._items):
            if isinstance(a, np.ndarray):
                arg.file = f"arg{arg.index}.npy"
                np.save(target / arg.file, a)
        report.dump_dir = str(target)
        (target / "report.txt").write_text(str(report) + "\n")
        (target / "report.json").write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
        log.info("simpler: the failed %s was dumped to %s", self.what, target)
        return target
