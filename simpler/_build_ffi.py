"""cffi build module: the extension is the public C header, compiled in API mode.

The declarations handed to cffi are read from ``csrc/include/simpler/`` so the
header stays the single contract; only preprocessor lines are dropped (cffi
parses plain C), except ``#define NAME <integer>`` constants (their C
suffix dropped), and the ``_Atomic`` qualifier, which cffi's parser does not
know: such a field is read as the plain integer of the same size, and cffi
checks every struct's size and offsets against the C compiler's when the
extension is built.
"""
from __future__ import annotations

import re
import runpy
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
INCLUDE = ROOT / "csrc" / "include"

HOST_SOURCES = [
    "csrc/common/addr_map.c",
    "csrc/common/array.c",
    "csrc/common/platform_registry.c",
    "csrc/common/error.c",
    "csrc/common/gm_heap.c",
    "csrc/common/so_load.c",
    "csrc/common/elf_check.c",
    "csrc/callable/callable.c",
    "csrc/callable/callable_build.c",
    "csrc/runtime/dependency_tracker/region.c",
    "csrc/runtime/dependency_tracker/tracker.c",
    "csrc/runtime/task_check.c",
    "csrc/runtime/first_failure.c",
    "csrc/runtime/runtime.c",
    "csrc/runtime/recorded_graph.c",
    "csrc/runtime/host_build_graph/host/graph_builder.c",
    "csrc/runtime/host_build_graph/host/orchestration_thread.c",
    "csrc/runtime/host_build_graph/host/graph_stream.c",
    "csrc/runtime/tensormap_and_ringbuffer/host/ring_setup.c",
    "csrc/host/callable_buffer.c",
    "csrc/host/worker.c",
    "csrc/host/device_entry.c",
    "csrc/host/run.c",
    "csrc/host/graph.c",
    "csrc/host/peer.c",
    "csrc/host/failure_report.c",
    "platform/chip/chip.c",
    "platform/chip/failure_report.c",
    "platform/chip/kernel_set.c",
    "platform/sim/sim.c",
    "platform/onboard/paths.c",
    "platform/onboard/wire.c",
    "platform/onboard/driver.c",
    "platform/faulty/faulty.c",
]

# The device programs the platform loads; setup.py builds them, and the
# sanitizer tests link the same sources straight into their test programs.
DEVICE_LIBS = {
    "libsimpler_aicpu.so": [
        "csrc/aicpu/aicpu_main.c", "csrc/aicpu/launch_status.c", "csrc/aicpu/dispatch_loop.c",
        "csrc/runtime/host_build_graph/aicpu/graph_scheduler.c",
        "csrc/runtime/host_build_graph/aicpu/stream_scheduler.c",
        "csrc/runtime/tensormap_and_ringbuffer/aicpu/scheduler.c",
        "csrc/runtime/tensormap_and_ringbuffer/aicpu/orchestrator.c",
        # shared with the host library: each program gets its own copy
        "csrc/common/error.c", "csrc/common/so_load.c", "csrc/common/elf_check.c", "csrc/common/addr_map.c", "csrc/common/array.c",
        "csrc/runtime/dependency_tracker/region.c", "csrc/runtime/dependency_tracker/tracker.c", "csrc/runtime/task_check.c",
        "csrc/runtime/first_failure.c",
    ],
    "libsimpler_aicore.so": ["csrc/aicore/executor.c"],
}

# The onboard platform's device process, installed beside them.
DEVICE_PROGRAMS = {
    "simpler-device": [
        "platform/onboard/device/main.c", "platform/onboard/device/server.c",
        "platform/onboard/device/context.c", "platform/onboard/device/context_link.c",
        "platform/onboard/wire.c", "platform/onboard/paths.c",
        "platform/chip/chip.c", "platform/chip/failure_report.c", "platform/chip/kernel_set.c",
        "csrc/callable/callable.c",
        "csrc/common/error.c", "csrc/common/gm_heap.c", "csrc/common/so_load.c", "csrc/common/elf_check.c", "csrc/common/addr_map.c",
        "csrc/common/array.c",
    ],
}

FLAGS = runpy.run_path(str(Path(__file__).resolve().parent / "_cflags.py"))
CFLAGS = FLAGS["HOST"]

_DEFINE = re.compile(r"^#define\s+(\w+)\s+(-?\d+|0x[0-9a-fA-F]+)[uUlL]*\s*$")
PUBLIC_HEADERS = ("types.h", "simpler.h", "trace.h")


def cdef_source() -> str:
    """The public host API as cffi declarations."""
    out = []
    for name in PUBLIC_HEADERS:
        text = (INCLUDE / "simpler" / name).read_text()
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        text = re.sub(r"\b_Atomic\s+", "", text)
        for line in text.splitlines():
            if line.startswith("#"):
                m = _DEFINE.match(line)
                if m and not m.group(1).endswith("_H"):
                    out.append(f"#define {m.group(1)} {m.group(2)}")
                continue
            out.append(line)
    return "\n".join(out)


ffibuilder = FFI()
# The Python poll (_native.py): runs check for signals and move their
# progress bars through it.
ffibuilder.cdef(cdef_source() + '\nextern "Python" int simpler_py_poll(void *);\n')
ffibuilder.set_source(
    "simpler._simpler_c",
    '#include "simpler/simpler.h"\n#include "simpler/trace.h"\n',
    # setuptools wants paths relative to setup.py (ROOT), where it runs us.
    sources=HOST_SOURCES,
    include_dirs=FLAGS["INCLUDE_DIRS"],
    extra_compile_args=CFLAGS,
    libraries=["dl", "pthread"],
    # setuptools rebuilds the extension only when one of these is newer:
    # without the headers, a changed struct (the mailbox, say) left a
    # stale extension beside freshly built device libraries.
    depends=sorted(str(p.relative_to(ROOT)) for d in ("csrc", "platform") for p in (ROOT / d).rglob("*.h")),
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
