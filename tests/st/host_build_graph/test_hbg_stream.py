"""A host-built graph streamed to the scheduler (graph_stream.h): on sim,
once a segment of 1024 tasks is submitted, the AICPU runs it while the
orchestration goes on adding tasks, whose edges may then point at tasks
that have finished already. onboard builds every graph whole first; the
same runs must give the same results there. Streaming is forced on
(SIMPLER_HBG_STREAM=1): by default it waits for a host with CPUs to spare."""
from __future__ import annotations

import time

import numpy as np
import pytest

import simpler
from error_tests import assert_still_works
from interrupt_tests import BOUND_S, WATCHDOG_S, sigint_after
from replay_tests import random_dag_reference

F32 = np.float32
SEGMENT = 1024
RNG = np.random.default_rng(97)


@pytest.fixture(autouse=True)
def streaming(monkeypatch):
    monkeypatch.setenv("SIMPLER_HBG_STREAM", "1")


def late_edges_expected(X0: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """What scenes/orch/late_edges.c computes: one increment per task, round
    the rows, but for every 97th task after the first n1 (a spin)."""
    X = X0.copy()
    rows = X.shape[0]
    for i in range(n1 + n2):
        if not (i >= n1 and i % 97 == 0):
            X[i % rows] += 1
    return X


def late_edges(worker, cid, X, n1, n2, peek=0, fail_at=0, stall=0, **cfg):
    seen = np.full(1, -1, F32)
    worker.run(cid, simpler.TaskArgs(X, seen, n1, peek, n2, fail_at, stall), **cfg)
    return seen[0]


# stream "0": built whole, the wait in the orchestration sees nothing run
# (and gives up after its 10 s)
@pytest.mark.parametrize("rows,stream", [(1, "1"), (7, "1"), (64, "1"), (7, "0")])
def test_edges_onto_tasks_that_have_finished(chip_worker, scene, simpler_platform, rows, stream, monkeypatch):
    """The orchestration waits until its first tasks have run before it adds
    their successors: each new edge meets a finished producer, which must
    not count (the consumer would wait for ever) and must still order it
    (an increment lost or doubled shows in X). Chains (rows 1), and
    multi-block tasks with explicit dependencies among them."""
    monkeypatch.setenv("SIMPLER_HBG_STREAM", stream)
    cid = scene("late_edges")
    n1, n2 = 2 * SEGMENT + 37, 3 * SEGMENT + 5
    X0 = RNG.integers(-50, 50, (rows, 8)).astype(F32)   # integers: the sums are exact
    X = X0.copy()
    # sim: wait until the two segments published have run
    seen = late_edges(chip_worker, cid, X, n1, n2, peek=2 * SEGMENT if simpler_platform == "sim" else 0)
    np.testing.assert_array_equal(X, late_edges_expected(X0, n1, n2))
    # Only a streamed graph runs its first tasks before the orchestration
    # returns: then the edges above did meet finished tasks.
    streamed = simpler_platform == "sim" and stream == "1"
    assert seen == (1 if streamed else 0)


@pytest.mark.parametrize("seed", [3, 11, 2024])
def test_a_random_graph_streamed_equals_a_serial_run(chip_worker, scene, seed):
    """Segments of a random graph with every kind of edge, against the same
    graph computed serially."""
    dag = scene("random_dag")
    tasks = 5 * SEGMENT + 300
    X0 = RNG.standard_normal((48, 16)).astype(F32)
    X = X0.copy()
    before = chip_worker.stats["tasks_completed"]
    chip_worker.run(dag, [X, seed, tasks])
    np.testing.assert_allclose(X, random_dag_reference(X0, seed, tasks), rtol=1e-6, atol=1e-6)
    st = chip_worker.stats      # the run's figures, as a graph built whole reports them
    assert st["last_run_tasks"] == tasks and st["tasks_completed"] == before + tasks
    assert 0 < st["last_run_orchestration_ns"] < 60e9


@pytest.mark.parametrize("steps", [SEGMENT // 8, 3 * SEGMENT // 4])
def test_chains_and_fans_across_segments(chip_worker, scene, steps):
    """Chains of increments (one per row, each crossing segments), then a
    fan-in and fan-out over the same data."""
    chains = scene("chains")
    X = np.zeros((16, 4), F32)
    chip_worker.run(chains, [X, steps])
    np.testing.assert_array_equal(X, steps)
    ff = scene("fanout_fanin")
    parts = 3 * SEGMENT
    x = RNG.standard_normal(parts * 2).astype(F32)
    out = np.zeros(1, F32)
    chip_worker.run(ff, [x, out, parts])
    expected = (x.astype(np.float64) + 1 + np.repeat(np.arange(parts), 2)).sum()
    np.testing.assert_allclose(out[0], expected, rtol=1e-5)


def test_a_capacity_error_mid_stream_fails_the_run_and_the_next_runs(chip_worker, scene, kernel_compiler):
    """max_tasks reached after segments already ran: the run fails with the
    capacity error, not a timeout, and the worker goes on."""
    cid = scene("late_edges")
    X = np.zeros((4, 8), F32)
    with pytest.raises(simpler.CapacityExceeded, match="more than 2500 tasks"):
        late_edges(chip_worker, cid, X, 2 * SEGMENT, 2 * SEGMENT, max_tasks=2500)
    assert chip_worker.usable
    X0 = np.zeros((4, 8), F32)
    X = X0.copy()
    late_edges(chip_worker, cid, X, 2 * SEGMENT, SEGMENT)
    np.testing.assert_array_equal(X, late_edges_expected(X0, 2 * SEGMENT, SEGMENT))
    assert_still_works(chip_worker, kernel_compiler)


def test_an_orchestration_failing_mid_stream_names_its_own_error(chip_worker, scene, kernel_compiler):
    cid = scene("late_edges")
    X = np.zeros((4, 8), F32)
    with pytest.raises(simpler.OrchestrationError, match="failing as asked"):
        late_edges(chip_worker, cid, X, SEGMENT, 3 * SEGMENT, fail_at=3 * SEGMENT + 1)
    assert chip_worker.usable
    assert_still_works(chip_worker, kernel_compiler)


def test_a_stalled_stream_times_out_and_an_interrupt_stops_it(chip_worker, scene, kernel_compiler):
    """The orchestration stops adding tasks after its first segments have
    run: the scheduler timeout stops the run (nothing finishes, nothing is
    added), and so does Ctrl-C, at once."""
    cid = scene("late_edges")
    X = np.zeros((4, 8), F32)
    with pytest.raises(simpler.Timeout):
        late_edges(chip_worker, cid, X, 2 * SEGMENT, SEGMENT, stall=1, scheduler_timeout=0.5)
    assert chip_worker.usable
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with sigint_after(0.5):
            late_edges(chip_worker, cid, X, 2 * SEGMENT, SEGMENT, stall=1, scheduler_timeout=WATCHDOG_S)
    assert time.monotonic() - start < BOUND_S
    assert chip_worker.usable
    assert_still_works(chip_worker, kernel_compiler)


def test_streamed_runs_in_flight_together(chip_worker, scene):
    """Runs submitted back to back: each one's orchestration may still be
    streaming while the next is prepared, and each keeps its own thread and
    graph."""
    dag = scene("random_dag")
    tasks = 3 * SEGMENT + 11
    starts = [RNG.standard_normal((24, 8)).astype(F32) for _ in range(4)]
    arrays = [x.copy() for x in starts]
    handles = [chip_worker.submit(dag, [x, seed, tasks]) for seed, x in enumerate(arrays)]
    for h in handles:
        h.result()
    for seed, (x0, x) in enumerate(zip(starts, arrays)):
        np.testing.assert_allclose(x, random_dag_reference(x0, seed, tasks), rtol=1e-6, atol=1e-6)
