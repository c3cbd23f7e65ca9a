"""A core that cannot be stopped: the device is lost, says so on every
call, finalizes without crashing or hanging, and a new worker works.

sim only: the kernel waits on a host address so the test can let the stuck
thread go at the end."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

import simpler

STUCK = """
#include <pthread.h>
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) {
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);   /* refuses to be stopped */
    volatile int32_t *release = (volatile int32_t *)(uintptr_t)args->scalars[0];
    while (!*release)
        ;
    pthread_setcancelstate(old, &old);
}
"""
ORCH = """
#include <simpler/orch.h>
SIMPLER_ORCHESTRATION(orchestrate) {
    return simpler_submit(api, o, 0, SIMPLER_CORE_AIV, NULL, NULL, 0, args->scalars, 1, NULL);
}
"""


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_lost_device_reports_itself_and_finalizes():
    kc = simpler.KernelCompiler()
    k = simpler.CoreCallable(0, "aiv", kc.compile_source(STUCK), [], num_scalars=1)
    c = simpler.ChipCallable.build(kc.compile_source(ORCH), [k], ["scalar"])
    release = np.zeros(1, np.int32)
    before = threads()
    w = simpler.ChipWorker("sim")
    cid = w.register(c)
    try:
        with pytest.raises(simpler.DeviceLost, match="could not be stopped"):
            w.run(cid, [release.ctypes.data], scheduler_timeout=0.3)
        assert not w.usable
        for call in (lambda: w.stats, lambda: w.malloc(64), lambda: w.unregister(cid),
                     lambda: w.run(cid, [release.ctypes.data])):
            with pytest.raises(simpler.DeviceLost, match="lost"):
                call()
        w.finalize()  # must neither crash (unloading running code) nor hang (joining it)
    finally:
        release[0] = 1  # let the stuck core go: it leaves on its own
    deadline = time.monotonic() + 30
    while threads() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threads() == before

    with simpler.ChipWorker("sim") as fresh:
        cid = fresh.register(c)
        release[0] = 1
        fresh.run(cid, [release.ctypes.data])
