"""The compiled extension and the one place C return codes become exceptions."""
from __future__ import annotations

from pathlib import Path

from ._simpler_c import ffi, lib  # noqa: F401  (re-exported)
from .errors import error_for

PACKAGE_DIR = Path(__file__).resolve().parent
# The source tree first: in an editable install the copy beside the package
# is only as new as the last build.
INCLUDE_DIR_CANDIDATES = (PACKAGE_DIR.parent / "csrc" / "include", PACKAGE_DIR / "include")


def last_error() -> str:
    return ffi.string(lib.simpler_last_error()).decode("utf-8", "replace")


def check(rc: int, context: str = "") -> None:
    """Raise the typed exception for a failed C call (rc < 0)."""
    if rc == 0:
        return
    message = last_error() or ffi.string(lib.simpler_strerror(rc)).decode()
    if context:
        message = f"{context}: {message}"
    raise error_for(rc, message)


def include_dir() -> Path:
    """Where the public headers are (for compiling kernels)."""
    for candidate in INCLUDE_DIR_CANDIDATES:
        if (candidate / "simpler" / "kernel.h").is_file():
            return candidate
    raise FileNotFoundError("simpler's C headers are not installed (csrc/include/simpler)")
