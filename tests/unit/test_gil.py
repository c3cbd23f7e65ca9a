"""Long calls release the GIL: a kernel that waits for a flag only Python
can set finishes only if Python runs while simpler_run is in C.

sim only: the kernel reads a host address, which only the in-process
platform shares with the host."""
from __future__ import annotations

import threading
import time

import numpy as np

import simpler

WAIT_KERNEL = """
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) {
    *(volatile int32_t *)(uintptr_t)args->scalars[0] = 1;   /* started */
    volatile int32_t *go = (volatile int32_t *)(uintptr_t)args->scalars[1];
    while (*go == 0)
        ;
}
"""
ORCH = """
#include <simpler/orch.h>
SIMPLER_ORCHESTRATION(orchestrate) {
    return simpler_submit(api, o, 0, SIMPLER_CORE_AIV, NULL, NULL, 0, args->scalars, 2, NULL);
}
"""


def test_run_releases_the_gil():
    kc = simpler.KernelCompiler()
    k = simpler.CoreCallable(0, "aiv", kc.compile_source(WAIT_KERNEL), [], num_scalars=2)
    c = simpler.ChipCallable.build(kc.compile_source(ORCH), [k], ["scalar", "scalar"])
    started, go = np.zeros(1, np.int32), np.zeros(1, np.int32)
    errors = []
    with simpler.ChipWorker("sim") as w:
        cid = w.register(c)

        def run():
            try:
                w.run(cid, [started.ctypes.data, go.ctypes.data], scheduler_timeout=20)
            except Exception as e:  # reported below
                errors.append(e)

        t = threading.Thread(target=run)
        t.start()
        # The kernel is running, so the run thread is inside C: this loop
        # gets the GIL only if that call released it.
        while not started[0] and t.is_alive():
            time.sleep(0.001)
        go[0] = 1
        t.join(timeout=60)
        assert not t.is_alive() and errors == []
