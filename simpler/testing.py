"""Helpers for device tests: golden comparison with dtype-aware tolerances,
scene tests (a callable, its inputs, its golden), and a device directory of
a test's own (for tests that crash or hang their device).

``import simpler`` loads this module as ``simpler.testing``; the pytest
plugin (simpler/pytest_plugin.py) builds its fixtures on it.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from . import device
from .callable import ChipCallable
from .device_tensor import DeviceTensor
from .errors import InvalidArgument, SimplerError
from .handles import Registration
from .worker import CallConfig, ChipWorker, TaskArgs, _foreign_array

# (rtol, atol) by dtype kind and size: loose enough for reassociated float
# sums, tight enough to catch a wrong element.
_TOLERANCES = {
    np.dtype(np.float16): (1e-2, 1e-2),
    np.dtype(np.float32): (1e-5, 1e-6),
    np.dtype(np.float64): (1e-12, 1e-12),
}


def tolerances(dtype) -> tuple[float, float]:
    """Default (rtol, atol) for comparing results of this dtype."""
    return _TOLERANCES.get(np.dtype(dtype), (0.0, 0.0))


def assert_golden(actual: np.ndarray, expected: np.ndarray, rtol: float | None = None,
                  atol: float | None = None, name: str = "result") -> None:
    """Assert actual matches the golden result: same shape, elements within
    tolerance (exact for integers). The message says how many elements differ
    and shows the worst."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{name}: shape {actual.shape} != golden shape {expected.shape}")
    d_rtol, d_atol = tolerances(actual.dtype)
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    close = np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return
    bad = [tuple(int(i) for i in idx) for idx in np.argwhere(~close)]
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    # Among the differing elements only; a NaN difference counts as the worst.
    diff = np.where(close, -1.0, np.where(np.isnan(diff), np.inf, diff))
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), actual.shape))
    raise AssertionError(
        f"{name}: {len(bad)} of {actual.size} elements differ beyond rtol={rtol}, atol={atol}; "
        f"first at {bad[0]}: {actual[bad[0]]} vs {expected[bad[0]]}; "
        f"worst at {worst}: {actual[worst]} vs {expected[worst]}")


def _tolerance(dtype: np.dtype, rtol: float | None, atol: float | None,
               per_dtype: Mapping[Any, tuple[float, float]] | None) -> tuple[float, float]:
    """(rtol, atol) for one output: per_dtype's entry for its dtype, else
    the defaults; an explicit rtol or atol wins over both."""
    found = None
    for key, value in (per_dtype or {}).items():
        if np.dtype(key) == dtype:
            found = value
    d_rtol, d_atol = found if found is not None else tolerances(dtype)
    return (d_rtol if rtol is None else rtol), (d_atol if atol is None else atol)


def _check_tolerances(per_dtype: Any) -> None:
    if per_dtype is None:
        return
    if not isinstance(per_dtype, Mapping):
        raise InvalidArgument(f"tolerances must map dtypes to (rtol, atol), not {type(per_dtype).__name__}")
    for key, value in per_dtype.items():
        try:
            np.dtype(key)
        except TypeError:
            raise InvalidArgument(f"tolerances: {key!r} is not a dtype") from None
        if (not isinstance(value, tuple) or len(value) != 2
                or not all(isinstance(v, (int, float)) and v >= 0 for v in value)):
            raise InvalidArgument(f"tolerances[{key!r}] must be (rtol, atol), two numbers >= 0, not {value!r}")


def _as_args(made: Any) -> list:
    if isinstance(made, TaskArgs):
        return list(made.args)
    if isinstance(made, (list, tuple)):
        return list(made)
    raise InvalidArgument(f"make_inputs() must return the run's arguments (a list, tuple or TaskArgs), "
                          f"not {type(made).__name__}")


def _snapshot(a: Any) -> Any:
    """What the golden sees of an argument: arrays as they were before the
    run (an inout tensor is overwritten by it), anything else as given."""
    if isinstance(a, np.ndarray):
        return a.copy()
    if isinstance(a, (DeviceTensor, int, float, np.generic)):
        return a
    try:    # another library's tensor (DLPack, array interface, buffer), as the run reads it
        view = _foreign_array(0, a, None)
    except InvalidArgument:   # the run refuses it and says why
        return a
    return view.copy() if isinstance(view, np.ndarray) else a


@dataclass
class Scene:
    """A device test as data: a callable, a function making its run
    arguments and one computing the expected outputs from them.

    ``Scene(reg, make_inputs, golden).run(worker)`` calls make_inputs()
    for the arguments (arrays, DeviceTensors, scalars, in signature
    order), golden(*args) on a copy of them taken before the run (an inout
    array as it was), runs the callable on worker, and compares each output
    argument with its golden (one array, or a sequence with one per
    output) by assert_golden: an AssertionError names the scene, platform,
    runtime and output, and the first element that differs with its index.

    callable: a ChipCallable (registered for the run, then unregistered)
    or a Registration of that worker. outputs: the indices of the arguments
    to compare; default the signature's "out" and "inout" tensors.
    Tolerances: assert_golden's per dtype, replaced per dtype by
    ``tolerances={np.float16: (rtol, atol)}``; rtol or atol given apply to
    every output. config and run()'s keywords are the run's settings.
    """

    callable: "ChipCallable | Registration"
    make_inputs: Callable[[], Any]
    golden: Callable[..., Any]
    outputs: Sequence[int] | None = None
    rtol: float | None = None
    atol: float | None = None
    tolerances: Mapping[Any, tuple[float, float]] | None = None
    config: CallConfig | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.callable, (ChipCallable, Registration)):
            raise InvalidArgument(f"a scene's callable is a ChipCallable or a Registration, "
                                  f"not {type(self.callable).__name__}")
        for field in ("make_inputs", "golden"):
            if not callable(getattr(self, field)):
                raise InvalidArgument(f"{field} must be a function, not {type(getattr(self, field)).__name__}")
        if self.outputs is not None:
            if isinstance(self.outputs, (int, np.integer)):
                self.outputs = (int(self.outputs),)
            if not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in self.outputs):
                raise InvalidArgument(f"outputs must be argument indices, not {self.outputs!r}")
            self.outputs = tuple(int(i) for i in self.outputs)
        for field in ("rtol", "atol"):
            v = getattr(self, field)
            if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0):
                raise InvalidArgument(f"{field} must be a number >= 0, not {v!r}")
        _check_tolerances(self.tolerances)
        if self.config is not None and not isinstance(self.config, CallConfig):
            raise InvalidArgument(f"config must be a CallConfig, not {type(self.config).__name__}")
        if self.name is not None and not isinstance(self.name, str):
            raise InvalidArgument(f"a scene's name is a str, not {type(self.name).__name__}")
        if self.name is None:   # the inputs' function names the scene, unless it is a lambda
            name = getattr(self.make_inputs, "__name__", "")
            self.name = "" if name == "<lambda>" else name

    @property
    def _what(self) -> str:
        return f"scene {self.name}" if self.name else "the scene"

    @property
    def chip_callable(self) -> ChipCallable:
        return self.callable if isinstance(self.callable, ChipCallable) else self.callable.callable

    def _output_indices(self, n: int) -> tuple[int, ...]:
        if self.outputs is not None:
            bad = [i for i in self.outputs if not 0 <= i < n]
            if bad:
                raise InvalidArgument(f"{self._what}: outputs {bad} are not among its {n} arguments")
            return self.outputs
        found = tuple(i for i, spec in enumerate(self.chip_callable.signature[:n])
                      if spec.direction in ("out", "inout"))
        if not found:
            raise InvalidArgument(f"{self._what}: its signature has no out or inout tensor; "
                                  f"say which arguments to compare (outputs=[...])")
        return found

    def run(self, worker: ChipWorker, **config_kw: Any) -> list[np.ndarray]:
        """Run on worker and compare; returns the outputs (host arrays)."""
        if not isinstance(worker, ChipWorker):
            raise InvalidArgument(f"a scene runs on a ChipWorker, not {type(worker).__name__}")
        args = _as_args(self.make_inputs())
        outputs = self._output_indices(len(args))
        expected = self.golden(*[_snapshot(a) for a in args])
        if isinstance(expected, (list, tuple)):
            expected = list(expected)
        else:
            expected = [expected]
        if len(expected) != len(outputs):
            raise InvalidArgument(f"{self._what}: golden() gave {len(expected)} result(s) for "
                                  f"{len(outputs)} output(s) (arguments {list(outputs)})")
        with contextlib.ExitStack() as stack:
            reg = self.callable
            if isinstance(reg, ChipCallable):
                reg = stack.enter_context(worker.registered(reg))
            worker.run(reg, args, self.config, **config_kw)
        where = f"scene {self.name + ' ' if self.name else ''}on {worker.platform}/{worker.runtime}"
        results = []
        for i, want in zip(outputs, expected):
            got = self._read(worker, args[i])
            want = np.asarray(want)
            rtol, atol = _tolerance(got.dtype, self.rtol, self.atol, self.tolerances)
            assert_golden(got, want, rtol=rtol, atol=atol, name=f"{where}: output argument {i}")
            results.append(got)
        return results

    @staticmethod
    def _read(worker: ChipWorker, a: Any) -> np.ndarray:
        if isinstance(a, DeviceTensor):
            return worker.copy_from(a.addr, np.empty(a.shape, a.dtype))
        if isinstance(a, np.ndarray):
            return a
        return np.asarray(_foreign_array(0, a, None))   # the exporter's memory, the run's output in it


def run_scene(worker: ChipWorker, callable_: "ChipCallable | Registration", make_inputs: Callable[[], Any],
              golden: Callable[..., Any], outputs: Sequence[int] | None = None, *,
              rtol: float | None = None, atol: float | None = None,
              tolerances: Mapping[Any, tuple[float, float]] | None = None,
              config: CallConfig | None = None, name: str | None = None, **config_kw: Any) -> list[np.ndarray]:
    """Scene(callable_, make_inputs, golden, ...).run(worker, **config_kw).
    With the chip_worker fixture, a test runs on every selected platform
    and runtime:

        def test_add(chip_worker, add):
            simpler.testing.run_scene(chip_worker, add, lambda: [a, b, np.zeros_like(a)],
                                      lambda a, b, out: a + b)
    """
    scene = Scene(callable_, make_inputs, golden, outputs, rtol, atol, tolerances, config, name)
    return scene.run(worker, **config_kw)


# -- a device of a test's own ------------------------------------------------

def _alive(pid: int) -> bool:
    """pid runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _is_device(pid: int) -> bool:
    try:
        return b"simpler-device" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def stop_devices(directory: "str | os.PathLike[str]") -> None:
    """End every device process whose pid file is in directory: asked to
    stop (force), killed if it has not gone within 5 s (a hung device).
    SIMPLER_DEVICE_DIR must name directory while this runs."""
    for pid_file in Path(directory).glob("device-*.pid"):
        try:
            device_id = int(pid_file.name[len("device-"):-len(".pid")])
            pid = int(pid_file.read_text().strip() or 0)
        except (OSError, ValueError):
            continue
        if not pid or not _alive(pid) or not _is_device(pid):
            continue
        with contextlib.suppress(SimplerError):
            device.stop(device_id, force=True)
        if not _wait_gone(pid, 5.0):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5.0)


def _setenv(values: Mapping[str, "str | None"]) -> None:
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@contextlib.contextmanager
def _environ(**values: "str | None") -> Iterator[None]:
    """Set (or, for None, unset) environment variables for a block."""
    old = {k: os.environ.get(k) for k in values}
    try:
        _setenv(values)
        yield
    finally:
        _setenv(old)


@contextlib.contextmanager
def private_device_dir() -> Iterator[Path]:
    """SIMPLER_DEVICE_DIR pointed at a fresh 0700 directory for the block,
    so an onboard ChipWorker made inside starts and uses a device of its
    own, which may crash or hang without touching the shared one. On exit
    its devices are stopped (killed if hung), the directory removed and
    the variable restored. Devices started there exit by themselves after
    60 s idle, should one be left behind."""
    # Short and under /tmp: the socket path inside must fit in 108 bytes.
    base = "/tmp" if os.path.isdir("/tmp") else None
    directory = Path(tempfile.mkdtemp(prefix="simpler-dev-", dir=base))
    try:
        with _environ(SIMPLER_DEVICE_DIR=str(directory), SIMPLER_DEVICE_IDLE_TIMEOUT="60"):
            try:
                yield directory
            finally:
                stop_devices(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
