"""Recorded graphs, shared by the runtime suites: a replay gives what a
normal run of the same arguments gives, for new data and new tensors; it
checks shapes, dtypes and the scalars the graph depends on; graphs go with
release, their callable and their worker, and leave nothing behind."""
from __future__ import annotations

import numpy as np
import pytest

import scenes
import simpler
from churn_tests import process_counters

F32 = np.float32
RNG = np.random.default_rng(2468)
M64 = (1 << 64) - 1


def held(w):
    """GM committed but for the run blocks kept from run to run."""
    st = w.stats
    return st["committed_bytes"] - st["run_block_bytes"]


def random_dag_reference(X: np.ndarray, seed: int, tasks: int) -> np.ndarray:
    """What scenes/orch/random_dag.c computes, serially, in float32 as the
    kernels do (a sum of two floats rounds the same either way)."""
    X = X.copy()
    state, rows = seed, X.shape[0]

    def nxt():
        nonlocal state
        state = (state * 6364136223846793005 + 1442695040888963407) & M64
        return state >> 33

    for _ in range(tasks):
        out = nxt() % rows
        a = (out + 1 + nxt() % (rows - 1)) % rows
        b = (out + 1 + nxt() % (rows - 1)) % rows
        X[out] = X[a] + X[b] if nxt() % 3 else X[a] + F32(0.5)
    return X


@pytest.mark.parametrize("seed", [1, 7, 12345])
def test_a_replay_of_a_random_graph_equals_a_normal_run_with_new_data(chip_worker, scene, golden, seed):
    dag = scene("random_dag")
    tasks = 300
    X0 = RNG.standard_normal((16, 32)).astype(F32)
    rec = X0.copy()
    with chip_worker.record(dag, [rec, seed, tasks]) as graph:
        assert graph.num_tasks == tasks and graph.num_edges > 0
        assert graph.fixed_scalars == (0, 1)            # the seed and the count shape the graph
        golden(rec, random_dag_reference(X0, seed, tasks), rtol=1e-6, atol=1e-6)
        for _ in range(3):
            X = RNG.standard_normal((16, 32)).astype(F32)
            replayed, normal = X.copy(), X.copy()
            graph.run([replayed, seed, tasks])
            chip_worker.run(dag, [normal, seed, tasks])
            np.testing.assert_array_equal(replayed, normal)


def test_replays_of_made_tensors_and_views(chip_worker, scene, golden):
    """fanout_fanin makes T and S itself (kept with the graph) and works on
    views of them; a replay reuses them for new data."""
    ff = scene("fanout_fanin")
    parts, n = 16, 16 * 8
    with chip_worker.record(ff, [RNG.standard_normal(n).astype(F32), np.zeros(1, F32), parts]) as graph:
        assert graph.info["held_bytes"] > 0
        for _ in range(3):
            x = RNG.standard_normal(n).astype(F32)
            out = np.zeros(1, F32)
            graph.run([x, out, parts])
            expected = (x.astype(np.float64) + 1 + np.repeat(np.arange(parts), n // parts)).sum()
            golden(out, np.array([expected], F32), rtol=1e-5, atol=1e-3)


def test_a_scalar_reaches_kernels_and_one_that_shapes_the_graph_is_fixed(chip_worker, scene, golden):
    """scaled: out = x + 2 s + steps. s = 1.0 when recorded, equal to the
    constant 1.0 the orchestration passes each step: only s's own sites
    follow it in a replay."""
    scaled = scene("scaled")
    x = RNG.standard_normal(64).astype(F32)
    out = np.zeros_like(x)
    graph = chip_worker.record(scaled, [x, out, 1.0, 3])
    golden(out, x + 2 + 3)
    assert graph.fixed_scalars == (1,)
    for s in (2.5, -4.0, 1.0):
        graph.run([x, out, s, 3])
        golden(out, x + 2 * s + 3)
    with pytest.raises(simpler.InvalidArgument, match="scalar argument 1"):
        graph.run([x, out, 2.5, 4])
    graph.release()


def test_replay_with_other_arrays_and_device_tensors(chip_worker, scene, golden):
    add = scene("vector_add")
    a, b = RNG.standard_normal(256).astype(F32), RNG.standard_normal(256).astype(F32)
    out = np.zeros_like(a)
    with chip_worker.record(add, [a, b, out, 1]) as graph:
        with chip_worker.malloc(a.nbytes) as da, chip_worker.malloc(a.nbytes) as dout:
            ta, tout = da.as_tensor(a.shape, F32), dout.as_tensor(a.shape, F32)
            chip_worker.copy_to(da, 3 * a)
            graph.run([ta, b, tout, 1])
            golden(chip_worker.copy_from(dout, np.empty_like(a)), 3 * a + b)
            c = RNG.standard_normal(256).astype(F32)
            graph.run([c, ta, out, 1])
            golden(out, c + 3 * a)
            with pytest.raises(simpler.InvalidArgument, match="were two tensors when recorded"):
                graph.run([ta, b, ta, 1])       # recorded apart: one now would lose the edges


def test_a_replay_checks_shapes_dtypes_and_counts(chip_worker, scene):
    add = scene("vector_add")
    a = np.ones(64, F32)
    with chip_worker.record(add, [a, a, np.zeros_like(a), 1]) as graph:
        with pytest.raises(simpler.InvalidArgument, match="tensor argument 1.*65.*64"):
            graph.run([a, np.ones(65, F32), np.zeros_like(a), 1])
        with pytest.raises(simpler.InvalidArgument, match="argument 0"):
            graph.run([np.ones(64, np.float64), a, np.zeros_like(a), 1])
        with pytest.raises(simpler.InvalidArgument, match="argument 0.*\\(8, 8\\).*\\(64\\)"):
            graph.run([np.ones((8, 8), F32), a, np.zeros_like(a), 1])
        with pytest.raises(simpler.InvalidArgument, match="takes 4 arguments"):
            graph.run([a, a])
        out = np.zeros_like(a)
        graph.run([a, a, out, 1])              # still usable after each refusal
        np.testing.assert_array_equal(out, 2 * a)


def test_graphs_go_with_release_unregister_and_finalize(chip_worker, kernel_compiler, simpler_platform,
                                                        simpler_runtime):
    add = chip_worker.register(scenes.callable_(kernel_compiler, "vector_add"))
    a = np.ones(8, F32)
    g1 = chip_worker.record(add, [a, a, np.zeros_like(a), 1])
    g2 = chip_worker.record(add, [a, a, np.zeros_like(a), 1])
    assert chip_worker.stats["recorded_graphs"] == 2 and set(chip_worker.graphs) == {g1.id, g2.id}
    g1.release()
    assert g1.released and "released" in repr(g1)
    with pytest.raises(simpler.InvalidState, match="released"):
        g1.run([a, a, np.zeros_like(a), 1])
    with pytest.raises(simpler.InvalidState):
        g1.release()
    chip_worker.unregister(add)
    assert g2.released and chip_worker.stats["recorded_graphs"] == 0
    with pytest.raises(simpler.InvalidState, match="unregistered"):
        g2.submit([a, a, np.zeros_like(a), 1])
    with simpler.ChipWorker(simpler_platform, simpler_runtime) as w:
        reg = w.register(scenes.callable_(kernel_compiler, "vector_add"))
        g3 = w.record(reg, [a, a, np.zeros_like(a), 1])
    assert g3.released


def test_replays_and_runs_queue_in_order_through_device_tensors(chip_worker, scene):
    """Ping-pong through device tensors, alternating normal runs and
    replays, all submitted: the serial answer."""
    add = scene("vector_add")
    n = 128
    one = np.ones(n, F32)
    with chip_worker.malloc(4 * n) as p, chip_worker.malloc(4 * n) as q:
        tp, tq = p.as_tensor((n,), F32), q.as_tensor((n,), F32)
        chip_worker.copy_to(p, np.zeros(n, F32))
        graph = chip_worker.record(add, [tp, one, tq, 1])   # q = p + 1
        handles = []
        for i in range(200):
            src, dst = (tq, tp) if i % 2 == 0 else (tp, tq)
            if i % 3:
                handles.append(graph.submit([src, one, dst, 1]))
            else:
                handles.append(chip_worker.submit(add, [src, one, dst, 1]))
        for h in handles:
            h.result()
        out = chip_worker.copy_from(q if len(handles) % 2 == 0 else p, np.empty(n, F32))
        np.testing.assert_array_equal(out, np.full(n, 1 + 200, F32))
        graph.release()


def test_a_failed_recording_keeps_no_graph(chip_worker, scene):
    misuse = scene("misuse")
    x = np.zeros(16, F32)
    try:
        chip_worker.record(misuse, [x, 6])
    except simpler.OrchestrationError:
        pass
    before = held(chip_worker)
    with pytest.raises(simpler.OrchestrationError):
        chip_worker.record(misuse, [x, 6])
    assert chip_worker.stats["recorded_graphs"] == 0
    assert held(chip_worker) == before


def test_record_release_churn_leaves_memory_at_baseline(chip_worker, scene):
    ff = scene("fanout_fanin")
    x, out = np.ones(64, F32), np.zeros(1, F32)
    chip_worker.record(ff, [x, out, 8]).release()      # warm
    st0, proc0 = held(chip_worker), process_counters()
    allocs0 = chip_worker.stats["live_allocations"]
    for _ in range(1000):
        graph = chip_worker.record(ff, [x, out, 8])
        graph.run([x, out, 8])
        graph.release()
    assert held(chip_worker) == st0
    assert chip_worker.stats["live_allocations"] == allocs0
    assert chip_worker.stats["recorded_graphs"] == 0
    assert (now := process_counters()) == proc0, (now, proc0)
