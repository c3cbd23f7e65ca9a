"""simpler: a task-graph runtime for an accelerator chip.

    import simpler
    with simpler.ChipWorker(platform="sim", runtime="host_build_graph") as w:
        reg = w.register(simpler.ChipCallable.build(orch_so, [kernel], ["in", "in", "out"]))
        reg.run(simpler.TaskArgs(a, b, out))
"""
import logging as _logging

# Long compiles and the onboard device's start say what they do at INFO
# on this logger; silent unless the application configures logging.
_logging.getLogger("simpler").addHandler(_logging.NullHandler())

from .callable import ArgSpec, ChipCallable, CoreCallable, CoreType, Tag
from .compiler import CompileError, KernelCompiler
from .failure import FailureReport, TaskInfo, TensorInfo
from .errors import (AlreadyRegistered, CapacityExceeded, DeviceLost, InvalidArgument, InvalidCallable,
                     InvalidState, NotRegistered, OrchestrationError, OutOfMemory, PlatformError,
                     SimplerError, Timeout, Unsupported)
from . import device
from .handles import DeviceBuffer, Graph, Registration
from .run_queue import RunHandle, RunSkipped
from .trace import KernelStats, Trace, TraceSummary
from .device_tensor import DeviceTensor
from .worker import PLATFORMS, RUNTIMES, CallConfig, ChipWorker, TaskArgs
from .multi_chip import ChipTensor, Worker
from . import testing

__version__ = "0.1.0"

__all__ = [
    "device", "testing",
    "AlreadyRegistered", "ArgSpec", "CallConfig", "CapacityExceeded", "ChipCallable", "ChipWorker",
    "CompileError", "CoreCallable", "CoreType", "DeviceBuffer", "FailureReport", "TaskInfo", "TensorInfo",
    "Graph", "DeviceLost", "DeviceTensor", "InvalidArgument",
    "InvalidCallable", "InvalidState", "KernelCompiler", "NotRegistered", "OrchestrationError",
    "OutOfMemory", "PLATFORMS", "PlatformError", "RUNTIMES", "Registration", "RunHandle", "RunSkipped", "SimplerError", "Tag", "TaskArgs",
    "KernelStats", "Timeout", "Trace", "TraceSummary", "Unsupported", "ChipTensor", "Worker",
]
