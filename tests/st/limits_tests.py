"""Per-task limits, shared by the runtime suites: a task of 64 tensors and 64
scalars (SIMPLER_MAX_TASK_TENSORS, SIMPLER_MAX_TASK_SCALARS) runs the same
on both runtimes, one more is an OrchestrationError that says so."""
from __future__ import annotations

import numpy as np
import pytest

import simpler

F32 = np.float32
ROWS, N = 32, 16
RNG = np.random.default_rng(77)


def mix(x: np.ndarray) -> np.ndarray:
    """What kernels/all_to_all.c computes, in float64 then float32."""
    w = 1.0 / (np.arange(ROWS) + 33)
    b = (np.arange(ROWS) + 1) / 8.0
    return (b[:, None] + (w[:, None] * x.astype(np.float64)).sum(axis=0)[None, :]).astype(F32)


def test_tasks_of_64_tensors_and_64_scalars(chip_worker, scene, golden, simpler_runtime):
    """20 rounds of two all-to-all tasks, each round in a scope with 32
    OUTPUT rows between them. Under tensormap_and_ringbuffer a small heap
    ring holds only a few rounds of OUTPUTs and argument blocks, so the
    run finishes only if each is freed when its tasks finish."""
    cid = scene("all_to_all")
    x = RNG.standard_normal((ROWS, N)).astype(F32)
    y = np.zeros_like(x)
    cfg = {"heap_ring_size": 64 << 10} if simpler_runtime == "tensormap_and_ringbuffer" else {}
    rounds = 20
    chip_worker.run(cid, simpler.TaskArgs(x, y, rounds, 0), **cfg)
    golden(y, mix(mix(x)), rtol=1e-6, atol=1e-6)
    st = chip_worker.stats
    assert st["last_run_tasks"] == 2 * rounds
    if simpler_runtime == "tensormap_and_ringbuffer":
        assert 0 < st["last_run_peak_heap_bytes"] <= 64 << 10


@pytest.mark.parametrize("mode, what", [(1, "65 tensors and 64 scalars"), (2, "64 tensors and 65 scalars")])
def test_one_over_the_limit_is_an_orchestration_error(chip_worker, scene, mode, what):
    cid = scene("all_to_all")
    x = np.ones((ROWS, N), F32)
    y = np.zeros_like(x)
    with pytest.raises(simpler.OrchestrationError, match=f"{what}; a task takes at most 64 tensors and 64 scalars"):
        chip_worker.run(cid, simpler.TaskArgs(x, y, 1, mode))
    assert (y == 0).all()
    chip_worker.run(cid, simpler.TaskArgs(x, y, 1, 0))  # the worker is still usable
    np.testing.assert_allclose(y, mix(mix(x)), rtol=1e-6)
