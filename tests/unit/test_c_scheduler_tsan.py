"""The device-side scheduling core under the sanitizers, without Python in
the loop: tests/unit/c/test_scheduler.c drives the host_build_graph
scheduler (csrc/aicpu) and the AICore executor (csrc/aicore) with threads of
its own and hand-built graph images. Under a sanitizer every task takes
microseconds, more than the scheduler batches into runs of queued tasks in
a real run, so the build raises the run's time target (dispatch_loop.c,
SCHED_RUN_TARGET_NS) to keep the runs covered."""
from __future__ import annotations

import pytest

from device_programs import run_checked


@pytest.mark.parametrize("sanitizer", ["thread", "address"])
def test_scheduler_under_sanitizer(tmp_path, sanitizer):
    run_checked(tmp_path, "tests/unit/c/test_scheduler.c", sanitizer, defines=("SCHED_RUN_TARGET_NS=2000000ull",))
