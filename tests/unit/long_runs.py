"""Callables for the progress and failure-report tests: a slow graph of
independent spinning tasks, and a chain with a kernel that never returns
in the middle."""
from __future__ import annotations

from pathlib import Path

import numpy as np

import simpler

# Busy for scalar 0 microseconds (by the clock): the scene kernel.
TICK = Path(__file__).resolve().parent.parent / "st" / "scenes" / "kernels" / "spin_us.c"
# scalar 0 tasks of TICK, scalar 1 microseconds each.
ORCH_TICKS = """
#include <simpler/orch.h>
SIMPLER_ORCHESTRATION(orchestrate) {
    for (uint64_t i = 0; i < args->scalars[0]; i++) {
        int rc = simpler_submit(api, o, 0, SIMPLER_CORE_AIV, NULL, NULL, 0, &args->scalars[1], 1, NULL);
        if (rc)
            return rc;
    }
    return 0;
}
"""
# x += 1 (float32), in place.
BUMP = """
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) {
    const simpler_tensor *x = &args->tensors[0];
    for (int64_t i = 0; i < simpler_tensor_numel(x); i++)
        *(float *)simpler_tensor_at(x, i) += 1.0f;
}
"""
# Never returns (cancellable).
STALL = """
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) {
    for (volatile int forever = 1; forever;)
        ;
}
"""
# On a (4, 8) float32 X: bump row 0; stall on row 2 with the run's
# scalar; then bump all of X, which waits for both.
ORCH_STUCK = """
#include <simpler/orch.h>
SIMPLER_ORCHESTRATION(orchestrate) {
    simpler_tensor *X = &args->tensors[0];
    uint32_t inout = SIMPLER_INOUT;
    simpler_tensor row0 = simpler_view2d(X, 0, 0, 1, X->shape[1]);
    simpler_tensor row2 = simpler_view2d(X, 2, 0, 1, X->shape[1]);
    int rc = simpler_submit(api, o, 1, SIMPLER_CORE_AIV, &row0, &inout, 1, NULL, 0, NULL);
    if (!rc)
        rc = simpler_submit(api, o, 2, SIMPLER_CORE_AIV, &row2, &inout, 1, args->scalars, 1, NULL);
    if (!rc)
        rc = simpler_submit(api, o, 1, SIMPLER_CORE_AIV, X, &inout, 1, NULL, 0, NULL);
    return rc;
}
"""
STUCK_SHAPE = (4, 8)


def ticks_callable(kc: simpler.KernelCompiler) -> simpler.ChipCallable:
    tick = simpler.CoreCallable(0, "aiv", kc.compile(TICK), [], num_scalars=1, name="tick")
    return simpler.ChipCallable.build(kc.compile_source(ORCH_TICKS, name="ticks.c"), [tick], ["scalar", "scalar"])


def stuck_callable(kc: simpler.KernelCompiler) -> simpler.ChipCallable:
    bump = simpler.CoreCallable(1, "aiv", kc.compile_source(BUMP, name="bump.c"), ["inout"], name="bump")
    stall = simpler.CoreCallable(2, "aiv", kc.compile_source(STALL, name="stall.c"), ["inout"], num_scalars=1,
                                 name="stall")
    return simpler.ChipCallable.build(kc.compile_source(ORCH_STUCK, name="stuck.c"), [bump, stall],
                                      [("inout", np.float32), "scalar"])
