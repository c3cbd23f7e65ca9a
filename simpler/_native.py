"""The compiled extension and the one place C return codes become exceptions."""
from __future__ import annotations

import threading
from pathlib import Path

from ._simpler_c import ffi, lib  # noqa: F401  (re-exported)
from .errors import error_for

PACKAGE_DIR = Path(__file__).resolve().parent
# The source tree first: in an editable install the copy beside the package
# is only as new as the last build.
INCLUDE_DIR_CANDIDATES = (PACKAGE_DIR.parent / "csrc" / "include", PACKAGE_DIR / "include")


def last_error() -> str:
    return ffi.string(lib.simpler_last_error()).decode("utf-8", "replace")


# Waiting C calls (runs, registrations) call simpler_py_poll on their own
# thread every 50 ms. Entering Python there runs pending signal handlers:
# a KeyboardInterrupt from Ctrl-C (or Jupyter's interrupt) escapes the
# poll, is kept here, the C side cancels what it waits for and returns
# SIMPLER_E_INTERRUPTED, and check() raises the kept exception.
_interrupts = threading.local()
# The progress bar of the run this thread executes (progress.py), moved
# from the same poll.
watched = threading.local()


def _poll_raised(exc_type, exc_value, traceback) -> int:
    _interrupts.pending = exc_value
    return 1


@ffi.def_extern(error=1, onerror=_poll_raised)
def simpler_py_poll(ctx) -> int:
    progress = getattr(watched, "current", None)
    if progress is not None:
        try:
            progress.poll()
        except Exception:   # a failing bar is dropped; only an interrupt stops the run
            watched.current = None
    return 0


def check(rc: int, context: str = "") -> None:
    """Raise the typed exception for a failed C call (rc < 0)."""
    pending = getattr(_interrupts, "pending", None)
    if rc == 0:
        if pending is not None:     # the call ended as the interrupt came: it is still Ctrl-C
            _interrupts.pending = None
            raise pending
        return
    _interrupts.pending = None
    if rc == lib.SIMPLER_E_INTERRUPTED:
        raise pending if pending is not None else KeyboardInterrupt(last_error())
    message = last_error() or ffi.string(lib.simpler_strerror(rc)).decode()
    if context:
        message = f"{context}: {message}"
    if pending is not None:     # Ctrl-C is never demoted to a cause
        raise pending from error_for(rc, message)
    raise error_for(rc, message)


def include_dir() -> Path:
    """Where the public headers are (for compiling kernels)."""
    for candidate in INCLUDE_DIR_CANDIDATES:
        if (candidate / "simpler" / "kernel.h").is_file():
            return candidate
    raise FileNotFoundError("simpler's C headers are not installed (csrc/include/simpler)")
