"""A worker used in a forked child (multiprocessing's default on Linux):
the child gets InvalidState at once, and neither the parent nor the device
notices."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import simpler

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "st"))
import scenes  # noqa: E402

F32 = np.float32


def child_uses(worker: simpler.ChipWorker, cid: int) -> int:
    """In the child: every call is InvalidState naming the fix."""
    try:
        for call in (lambda: worker.run(cid, simpler.TaskArgs(np.ones(4, F32), np.ones(4, F32),
                                                             np.zeros(4, F32), 1)),
                     lambda: worker.malloc(64), lambda: worker.stats):
            try:
                call()
                return 2
            except simpler.InvalidState as e:
                if "create a ChipWorker in the child" not in str(e):
                    return 3
        if worker.usable:
            return 4
        worker.finalize()           # touches nothing of the parent's
        return 0
    except BaseException:
        return 5


@pytest.mark.parametrize("runtime", ["host_build_graph", "tensormap_and_ringbuffer"])
def test_a_forked_child_cannot_use_the_parents_worker(simpler_platform, runtime, kernel_compiler):
    with simpler.ChipWorker(simpler_platform, runtime) as w:
        cid = w.register(scenes.callable_(kernel_compiler, "vector_add"))
        a = np.arange(64, dtype=F32)
        out = np.zeros_like(a)
        w.run(cid, simpler.TaskArgs(a, a, out, 1))
        before = w.stats
        pid = os.fork()
        if pid == 0:
            os._exit(child_uses(w, cid))
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        # The parent goes on as if nothing happened, on the same device.
        out[:] = 0
        w.run(cid, simpler.TaskArgs(a, a, out, 1))
        np.testing.assert_array_equal(out, 2 * a)
        after = w.stats
        assert after["device_pid"] == before["device_pid"]
        assert after["core_resets"] == before["core_resets"] or simpler_platform == "onboard"
        assert after["committed_bytes"] == before["committed_bytes"]
