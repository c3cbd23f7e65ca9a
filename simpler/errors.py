"""The exceptions simpler raises: one base class, one subclass per failure a
caller may want to handle. Each carries the C error code and the device's
message."""
from __future__ import annotations


class SimplerError(Exception):
    """Base class of every simpler error."""

    code: int = 0

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidArgument(SimplerError, ValueError):
    """A bad value: argument count, dtype, shape, size, id or setting."""


class OutOfMemory(SimplerError, MemoryError):
    """Device GM (or host memory) is exhausted."""


class InvalidCallable(SimplerError, ValueError):
    """A malformed or unloadable ChipCallable blob or kernel."""


class OrchestrationError(SimplerError):
    """The orchestration function failed or submitted an invalid task."""


class Timeout(SimplerError, TimeoutError):
    """The scheduler watchdog or a deadline fired; the message names the stuck tasks."""


class DeviceLost(SimplerError):
    """The device is gone or unusable; create a new ChipWorker."""


class NotRegistered(SimplerError, KeyError):
    """No callable is registered under that id (or no allocation at that address)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


class AlreadyRegistered(SimplerError):
    """The callable id is already in use on this worker."""


class InvalidState(SimplerError):
    """The worker is not initialised or already finalized."""


class Unsupported(SimplerError, NotImplementedError):
    """The platform or runtime is not available in this build or on this machine."""


class CapacityExceeded(SimplerError):
    """The task graph is larger than the configured capacity (CallConfig.max_tasks)."""


class PlatformError(SimplerError, OSError):
    """An operating-system call inside the platform failed."""


_BY_CODE: dict[int, type[SimplerError]] = {
    -1: InvalidArgument,
    -2: OutOfMemory,
    -3: OutOfMemory,
    -4: InvalidCallable,
    -5: OrchestrationError,
    -6: Timeout,
    -7: DeviceLost,
    -8: NotRegistered,
    -9: AlreadyRegistered,
    -10: InvalidState,
    -11: Unsupported,
    -12: CapacityExceeded,
    -13: PlatformError,
}


def error_for(code: int, message: str) -> SimplerError:
    """The exception for a C error code."""
    cls = _BY_CODE.get(code, SimplerError)
    return cls(message or f"simpler error {code}", code)
