"""Progress bars for long runs, through tqdm where it is installed.

A run that lasts more than about a second shows tasks finished of tasks
submitted, with a rate. Nothing is counted per task: the C side calls the
Python poll about every 50 ms while a run waits (simpler_device_set_poll),
and the poll reads the device's two counters (simpler_device_progress)
once the run has lasted a second. The bar is on where output is
interactive (a terminal on stderr, where tqdm writes, or a notebook),
off otherwise, with tqdm missing, or with ``CallConfig(progress=False)``;
``progress=True`` shows it wherever tqdm is importable.
"""
from __future__ import annotations

import importlib
import logging
import sys
import time
from typing import Any

from ._native import ffi, lib, watched

log = logging.getLogger("simpler")

# A run shorter than this shows no bar at all.
SHOW_AFTER_S = 1.0


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    try:
        ip = get() if get else None
    except Exception:       # an IPython half torn down
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


_tty: tuple[Any, bool] = (None, False)   # (the stderr last asked, whether it is a terminal)


def interactive() -> bool:
    """Whether a bar would be seen: a notebook, or stderr on a terminal."""
    global _tty
    if _in_notebook():
        return True
    err = sys.stderr
    if err is not _tty[0]:      # asked once per stream: this is on every run's path
        try:
            _tty = (err, err is not None and err.isatty())
        except (AttributeError, ValueError):    # replaced or closed
            _tty = (err, False)
    return _tty[1]


_tqdm_missing = False     # looked for once: a failed import searches the whole path each time


def _bar_class() -> Any:
    """tqdm's bar class (the notebook widget in a notebook), None without tqdm."""
    global _tqdm_missing
    if _tqdm_missing and "tqdm" not in sys.modules:
        return None
    try:
        tqdm = importlib.import_module("tqdm")
    except ImportError:
        _tqdm_missing = "tqdm" not in sys.modules
        return None
    if _in_notebook():
        try:
            notebook = importlib.import_module("tqdm.notebook")
        except Exception:
            notebook = None
        # Without ipywidgets tqdm.notebook imports but its bar raises when
        # made (and its __del__ prints a traceback): the text bar works in
        # a notebook too.
        if notebook is not None and getattr(notebook, "IProgress", None) is not None:
            return notebook.tqdm
    return getattr(tqdm, "tqdm", None)


def check_setting(value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        from .errors import InvalidArgument
        raise InvalidArgument(f"progress must be True, False or None (automatic), not {value!r}")


class RunProgress:
    """The bar of one run, made once the run has lasted SHOW_AFTER_S."""

    def __init__(self, dev: Any, what: str, bar_class: Any) -> None:
        self._dev = dev
        self._what = what
        self._bar_class = bar_class
        self._bar: Any = None
        self._start = time.monotonic()
        self._counts = ffi.new("uint64_t[2]")

    def __repr__(self) -> str:
        return f"<RunProgress {self._what} {'shown' if self._bar is not None else 'not shown'}>"

    def _read(self) -> tuple[int, int]:
        c = self._counts
        if lib.simpler_device_progress(self._dev, c, c + 1):
            return 0, 0
        return int(c[0]), int(c[1])

    def poll(self) -> None:
        """From the run's poll: show or move the bar."""
        if self._bar is None and time.monotonic() - self._start < SHOW_AFTER_S:
            return
        done, submitted = self._read()
        if self._bar is None:
            if not submitted:       # onboard: not heard from the device yet
                return
            self._bar = self._bar_class(total=submitted, unit="task", desc=self._what, leave=True)
            self._backdate()
        self._show(done, submitted)

    def _backdate(self) -> None:
        """The bar shows once the run has lasted a second, but the run's
        time and rate count from its start: tqdm's clock is moved back by
        that much (else the tasks of the first second read as done in no
        time, and the rate starts far too high)."""
        bar, ran = self._bar, time.monotonic() - self._start
        for clock in ("start_t", "last_print_t"):
            if isinstance(getattr(bar, clock, None), (int, float)):
                setattr(bar, clock, getattr(bar, clock) - ran)

    def _show(self, done: int, submitted: int) -> None:
        bar = self._bar
        if submitted != bar.total:  # a device orchestration is still submitting
            bar.total = submitted
            bar.refresh()
        if done > bar.n:
            bar.update(done - bar.n)

    def close(self, succeeded: bool) -> None:
        if self._bar is None:
            return
        try:
            if succeeded:       # the final counts: every task done
                self._show(*self._read())
        finally:
            self._bar.close()
            self._bar = None


def watch(dev: Any, setting: "bool | None", what: str) -> "RunProgress | None":
    """A RunProgress for a run with this setting, or None when no bar is wanted."""
    if setting is False or (setting is None and not interactive()):
        return None
    cls = _bar_class()
    return RunProgress(dev, what, cls) if cls is not None else None


def begin_showing(progress: RunProgress) -> "RunProgress | None":
    """The run executes on this thread from now: its poll moves the bar.
    Returns what was shown before, for end_showing."""
    progress._start = time.monotonic()
    previous = getattr(watched, "current", None)
    watched.current = progress
    return previous


def end_showing(progress: RunProgress, previous: "RunProgress | None", succeeded: bool) -> None:
    watched.current = previous
    try:
        progress.close(succeeded)
    except Exception as e:  # a broken bar never fails the run
        log.debug("progress bar: %s", e)
