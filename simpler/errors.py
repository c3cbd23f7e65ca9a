"""The exceptions simpler raises: one base class, one subclass per failure a
caller may want to handle. Each carries the C error code (simpler_error in
csrc/include/simpler/simpler.h; raised from Python too, the class's own
code) and the device's message."""
from __future__ import annotations

from ._simpler_c import ffi as _ffi, lib as _lib


def err_name(code: int) -> str:
    """The C name of a simpler_error code ("SIMPLER_E_TIMEOUT"), from simpler_err_name."""
    return _ffi.string(_lib.simpler_err_name(code)).decode()


class SimplerError(Exception):
    """Base class of every simpler error."""

    code: int = 0   # each subclass: its simpler_error

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def name(self) -> str:
        """The code's C name, e.g. "SIMPLER_E_INVALID_ARGUMENT"."""
        return err_name(self.code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.name})"


class InvalidArgument(SimplerError, ValueError):
    """A bad value: argument count, dtype, shape, size, id or setting."""

    code = _lib.SIMPLER_E_INVALID_ARGUMENT


class OutOfMemory(SimplerError, MemoryError):
    """Device GM (or host memory) is exhausted."""

    code = _lib.SIMPLER_E_OUT_OF_MEMORY


class InvalidCallable(SimplerError, ValueError):
    """A malformed or unloadable ChipCallable blob or kernel."""

    code = _lib.SIMPLER_E_INVALID_CALLABLE


class OrchestrationError(SimplerError):
    """The orchestration function failed or submitted an invalid task."""

    code = _lib.SIMPLER_E_ORCHESTRATION


class Timeout(SimplerError, TimeoutError):
    """The scheduler watchdog or a deadline fired; the message names the stuck tasks."""

    code = _lib.SIMPLER_E_TIMEOUT


class DeviceLost(SimplerError):
    """The device is gone or unusable; create a new ChipWorker."""

    code = _lib.SIMPLER_E_DEVICE_LOST


class NotRegistered(SimplerError, KeyError):
    """No callable is registered under that id (or no allocation at that address)."""

    code = _lib.SIMPLER_E_NOT_FOUND

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


class AlreadyRegistered(SimplerError):
    """The callable id is already in use on this worker."""

    code = _lib.SIMPLER_E_EXISTS


class InvalidState(SimplerError):
    """The worker is not initialised or already finalized."""

    code = _lib.SIMPLER_E_STATE


class Unsupported(SimplerError, NotImplementedError):
    """The platform or runtime is not available in this build or on this machine."""

    code = _lib.SIMPLER_E_UNSUPPORTED


class CapacityExceeded(SimplerError):
    """The task graph is larger than the configured capacity (CallConfig.max_tasks)."""

    code = _lib.SIMPLER_E_CAPACITY


class PlatformError(SimplerError, OSError):
    """An operating-system call inside the platform failed."""

    code = _lib.SIMPLER_E_SYSTEM


_BY_CODE: dict[int, type[SimplerError]] = {
    cls.code: cls for cls in (InvalidArgument, OutOfMemory, InvalidCallable, OrchestrationError, Timeout,
                              DeviceLost, NotRegistered, AlreadyRegistered, InvalidState, Unsupported,
                              CapacityExceeded, PlatformError)
}
_BY_CODE[_lib.SIMPLER_E_NO_HOST_MEMORY] = OutOfMemory


def error_for(code: int, message: str) -> SimplerError:
    """The exception for a C error code."""
    cls = _BY_CODE.get(code, SimplerError)
    return cls(message or f"{err_name(code)}: {_ffi.string(_lib.simpler_strerror(code)).decode()}", code)
