"""What only tensormap_and_ringbuffer has: streaming through rings far
smaller than the graph, scopes bounding lifetimes, back-pressure, the
scope-deadlock diagnosis, undersized rings, and the orchestration loaded
on the AICPU once per registration."""
from __future__ import annotations

import numpy as np
import pytest

import scenes
import simpler

F32 = np.float32
SMALL = dict(task_ring_size=64, heap_ring_size=64 << 10, dep_pool_size=256)


def test_million_task_stream_through_small_rings(chip_worker, scene, golden):
    cid = scene("stream")
    X = np.arange(64 * 4, dtype=F32).reshape(64, 4)
    Y = np.zeros_like(X)
    before = chip_worker.stats["tasks_completed"]
    chip_worker.run(cid, simpler.TaskArgs(X, Y, 500_000), block_dim=2, **SMALL)
    golden(Y, 2 * X + 1)
    st = chip_worker.stats
    assert st["tasks_completed"] == before + 1_000_000
    # Bounded memory, by counters: slots, heap and tensor-map regions in use
    # stayed at ring scale while a million tasks went through.
    assert st["last_run_peak_tasks"] <= 64 * 4
    assert st["last_run_peak_heap_bytes"] <= 64 << 10
    assert st["last_run_peak_regions"] < 5_000
    assert st["last_run_ring_waits"] > 0  # back-pressure happened


def test_scope_deadlock_is_diagnosed(chip_worker, scene, kernel_compiler):
    cid = scene("one_scope")
    X = np.zeros((4, 4), F32)
    with pytest.raises(simpler.OrchestrationError,
                       match=r"scope deadlock: the task ring for scope depth 1 is full \(8 slots\).*"
                             r"CallConfig.task_ring_size or SIMPLER_TASK_RING_SIZE"):
        chip_worker.run(cid, simpler.TaskArgs(X, 20), task_ring_size=8, scheduler_timeout=30)
    # The tasks that were submitted ran; the worker is fine; a ring that
    # holds the scope works.
    assert chip_worker.usable
    X = np.zeros((4, 4), F32)
    chip_worker.run(cid, simpler.TaskArgs(X, 20), task_ring_size=32)
    np.testing.assert_array_equal(X, 5)


def test_ring_size_from_the_environment(chip_worker, scene, monkeypatch):
    cid = scene("one_scope")
    monkeypatch.setenv("SIMPLER_TASK_RING_SIZE", "8")
    with pytest.raises(simpler.OrchestrationError, match=r"full \(8 slots\)"):
        chip_worker.run(cid, simpler.TaskArgs(np.zeros((4, 4), F32), 20))
    monkeypatch.setenv("SIMPLER_TASK_RING_SIZE", "64")
    X = np.zeros((4, 4), F32)
    chip_worker.run(cid, simpler.TaskArgs(X, 20))
    np.testing.assert_array_equal(X, 5)
    monkeypatch.setenv("SIMPLER_HEAP_RING_SIZE", "lots")
    with pytest.raises(simpler.InvalidArgument, match="SIMPLER_HEAP_RING_SIZE='lots' is not a positive size"):
        chip_worker.run(cid, simpler.TaskArgs(X, 20))
    monkeypatch.setenv("SIMPLER_HEAP_RING_SIZE", "1M")
    chip_worker.run(cid, simpler.TaskArgs(X, 20))  # K/M/G suffixes
    np.testing.assert_array_equal(X, 10)


def test_nested_scopes_retire_inside_an_open_outer_scope(chip_worker, scene, golden):
    cid = scene("nested")
    x = np.arange(8, dtype=F32)
    Y = np.zeros((500, 8), F32)
    chip_worker.run(cid, simpler.TaskArgs(x, Y), task_ring_size=8, heap_ring_size=8 << 10, dep_pool_size=64)
    golden(Y, x[None, :] + 10 + np.arange(500, dtype=F32)[:, None])


def test_output_larger_than_the_heap_ring(chip_worker, scene):
    cid = scene("outputs")
    x = np.zeros(4096, F32)  # 16 KiB OUTPUT
    with pytest.raises(simpler.OrchestrationError,
                       match=r"OUTPUT tensor of 16384 bytes does not fit in the heap ring of 8192 bytes.*"
                             r"heap_ring_size"):
        chip_worker.run(cid, simpler.TaskArgs(x, 1), heap_ring_size=8192)
    assert chip_worker.usable


def test_top_level_outputs_fill_the_heap_ring(chip_worker, scene):
    cid = scene("outputs")
    x = np.zeros(256, F32)  # 1 KiB each, 64 of them in a 16 KiB ring
    with pytest.raises(simpler.OrchestrationError, match="heap ring full.*top level.*inside scopes"):
        chip_worker.run(cid, simpler.TaskArgs(x, 64), heap_ring_size=16 << 10)
    chip_worker.run(cid, simpler.TaskArgs(x, 8), heap_ring_size=16 << 10)


@pytest.mark.parametrize("setting, value, message", [
    ("task_ring_size", 40_000, "task_ring_size 40000 out of range"),
    ("dep_pool_size", 4, "dep_pool_size 4 out of range"),
    ("heap_ring_size", 100, "heap_ring_size 100 out of range"),
])
def test_ring_settings_are_checked(chip_worker, scene, setting, value, message):
    cid = scene("outputs")
    with pytest.raises(simpler.InvalidArgument, match=message):
        chip_worker.run(cid, simpler.TaskArgs(np.zeros(4, F32), 1), **{setting: value})


def test_orchestration_is_loaded_once_per_registration(chip_worker, kernel_compiler):
    callable_ = scenes.callable_(kernel_compiler, "vector_add")
    loads = chip_worker.stats["orchestration_loads"]
    a = np.ones(16, F32)
    out = np.zeros_like(a)
    with chip_worker.registered(callable_) as cid:
        assert chip_worker.stats["orchestration_loads"] == loads + 1
        for _ in range(50):
            chip_worker.run(cid, simpler.TaskArgs(a, a, out, 1))
        assert chip_worker.stats["orchestration_loads"] == loads + 1
    with chip_worker.registered(callable_) as cid:
        chip_worker.run(cid, simpler.TaskArgs(a, a, out, 1))
        assert chip_worker.stats["orchestration_loads"] == loads + 2
    np.testing.assert_array_equal(out, 2)


def test_large_output_fits_once_the_heap_ring_is_empty_again(chip_worker, scene):
    """256 small OUTPUTs leave the ring's position mid-ring; a 3000-byte
    OUTPUT in a 4096-byte ring must then fit (the ring restarts when
    empty)."""
    cid = scene("heap_wrap")
    chip_worker.run(cid, simpler.TaskArgs(np.zeros(1024, F32), 256, 250, 750), heap_ring_size=4096,
                    scheduler_timeout=5)


def test_output_used_after_its_scope_ended_is_refused(chip_worker, scene):
    cid = scene("after_scope")
    with pytest.raises(simpler.OrchestrationError, match="neither a run argument nor an earlier OUTPUT still alive"):
        chip_worker.run(cid, simpler.TaskArgs(np.zeros(64, F32)))
    assert chip_worker.usable


def test_run_block_is_kept_between_runs(chip_worker, scene):
    """A run's rings stay in GM for the next run (no allocation, no page
    faults, ready queues carried on where the last run left them); a
    failed run's queues are laid out afresh, and a run that needs larger
    rings gets a larger block."""
    cid = scene("one_scope")

    def run_ok(**cfg):
        X = np.zeros((4, 4), F32)
        chip_worker.run(cid, simpler.TaskArgs(X, 20), **cfg)
        np.testing.assert_array_equal(X, 5)

    run_ok()
    kept, committed = chip_worker.stats["run_block_bytes"], chip_worker.committed_memory
    assert kept > 0
    for _ in range(20):
        run_ok()
    assert (chip_worker.stats["run_block_bytes"], chip_worker.committed_memory) == (kept, committed)

    with pytest.raises(simpler.OrchestrationError, match="scope deadlock"):
        chip_worker.run(cid, simpler.TaskArgs(np.zeros((4, 4), F32), 20), task_ring_size=8)
    run_ok()
    assert chip_worker.stats["run_block_bytes"] == kept

    run_ok(task_ring_size=4096)
    assert chip_worker.stats["run_block_bytes"] > kept
    run_ok()
