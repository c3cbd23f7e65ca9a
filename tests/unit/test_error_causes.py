"""Errors keep their cause: what killed a device reaches Python whatever
the run staged, a device that dies while opening an orchestration is
DeviceLost, the device's op-execution timeout keeps its words, and every
exception carries its C code. Each onboard test uses a private device."""
from __future__ import annotations

import numpy as np
import pytest

import simpler
from onboard_helpers import CRASH, ORCH_SCALARS

RUNTIMES = ["host_build_graph", "tensormap_and_ringbuffer"]

# Opening it runs a constructor that crashes the process that opens it.
ORCH_CRASHES_ON_LOAD = """
#include <simpler/orch.h>
__attribute__((constructor)) static void crash(void) { *(volatile int *)8 = 1; }
SIMPLER_ORCHESTRATION(orchestrate) { return 0; }
"""
# Never returns, on the AICPU (tensormap_and_ringbuffer): its thread cannot stop.
ORCH_FOREVER = """
#include <simpler/orch.h>
SIMPLER_ORCHESTRATION(orchestrate) { for (volatile int forever = 1; forever;) ; return 0; }
"""




@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_reason_a_device_died_survives_the_frees_of_staged_arguments(private_device, kc, runtime):
    k = simpler.CoreCallable(0, "aiv", kc.compile_source(CRASH), [], num_scalars=2)
    c = simpler.ChipCallable.build(kc.compile_source(ORCH_SCALARS), [k],
                                   [("in", np.float32), ("out", np.float32), "scalar", "scalar"])
    with simpler.ChipWorker("onboard", runtime=runtime) as w:
        cid = w.register(c)
        a, out = np.ones(1024, np.float32), np.zeros(1024, np.float32)
        with pytest.raises(simpler.DeviceLost, match=r"died of SIGSEGV.*core \d+ was running task 0 \(func 0, kernel .kernel.\)"):
            w.run(cid, simpler.TaskArgs(a, out, 8, 0))


def test_a_device_that_dies_opening_an_orchestration_is_device_lost(private_device, kc):
    c = simpler.ChipCallable.build(kc.compile_source(ORCH_CRASHES_ON_LOAD), [], [])
    with simpler.ChipWorker("onboard", runtime="tensormap_and_ringbuffer") as w:
        with pytest.raises(simpler.DeviceLost, match="died of SIGSEGV"):
            w.register(c)
        assert not w.usable


def test_the_devices_op_execution_timeout_keeps_its_message(private_device, kc):
    c = simpler.ChipCallable.build(kc.compile_source(ORCH_FOREVER), [], [("in", np.float32)])
    with simpler.ChipWorker("onboard", runtime="tensormap_and_ringbuffer") as w:
        cid = w.register(c)
        with pytest.raises(simpler.DeviceLost, match="op execution timeout on simpler-device 0"):
            w.run(cid, simpler.TaskArgs(np.zeros(16, np.float32)), scheduler_timeout=0.3)


def test_every_exception_carries_its_c_code():
    from simpler._native import lib
    assert simpler.InvalidArgument("x").code == lib.SIMPLER_E_INVALID_ARGUMENT
    assert simpler.DeviceLost("x").code == lib.SIMPLER_E_DEVICE_LOST
    assert simpler.OrchestrationError("x").code == lib.SIMPLER_E_ORCHESTRATION
    with simpler.ChipWorker("sim") as w:
        with pytest.raises(simpler.InvalidArgument) as raised:      # raised in Python
            w.malloc(0)
        assert raised.value.code == lib.SIMPLER_E_INVALID_ARGUMENT
        with pytest.raises(simpler.NotRegistered) as raised:        # raised in C
            w.unregister(12345)
        assert raised.value.code == lib.SIMPLER_E_NOT_FOUND
