"""Dependency tracking on graphs whose history would pile up, shared by the
runtime suites: the graph's edges stay within a constant factor of the true
dependencies however long it runs, and the results stay right."""
from __future__ import annotations

import numpy as np
import pytest

import simpler

U32 = np.uint32
RNG = np.random.default_rng(4321)
WIDTH, COLS = 4, 8


def stencil_golden(a: np.ndarray, b: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """What tests/st/scenes/orch/stencil.c computes (kernels/stencil3.c)."""
    bufs = [a.astype(np.uint64), b.astype(np.uint64)]
    width = a.shape[0]
    for s in range(steps):
        src, dst = bufs[s % 2], bufs[1 - s % 2]
        new = dst.copy()
        for i in range(width):
            lo, hi = max(i - 1, 0), min(i + 2, width)
            weights = np.arange(1, hi - lo + 1, dtype=np.uint64)[:, None]
            new[i] = (1 + (weights * src[lo:hi]).sum(axis=0)) % (1 << 32)
        bufs[1 - s % 2] = new
    return bufs[0].astype(U32), bufs[1].astype(U32)


def stencil_true_edges(width: int, steps: int) -> tuple[int, int]:
    """Edges and the largest fan-in of the stencil's true dependencies: per
    row of each buffer, its last writer and the readers since."""
    writer = [[None] * width for _ in range(2)]
    readers = [[[] for _ in range(width)] for _ in range(2)]
    edges = max_fanin = 0
    for s in range(steps):
        src, dst = s % 2, 1 - s % 2
        for i in range(width):
            task = s * width + i
            lo, hi = max(i - 1, 0), min(i + 2, width)
            need = {writer[src][j] for j in range(lo, hi)} | {writer[dst][i]} | set(readers[dst][i])
            need.discard(None)
            edges += len(need)
            max_fanin = max(max_fanin, len(need))
            for j in range(lo, hi):
                readers[src][j].append(task)
            writer[dst][i], readers[dst][i] = task, []
    return edges, max_fanin


@pytest.mark.parametrize("steps", [250, 1000])
def test_stencil_edges_stay_bounded(chip_worker, scene, simpler_runtime, steps):
    cid = scene("stencil")
    a = RNG.integers(0, 1 << 32, (WIDTH, COLS), dtype=U32)
    b = RNG.integers(0, 1 << 32, (WIDTH, COLS), dtype=U32)
    want_a, want_b = stencil_golden(a, b, steps)
    chip_worker.run(cid, simpler.TaskArgs(a, b, steps), trace=True, block_dim=2)
    np.testing.assert_array_equal(a, want_a)
    np.testing.assert_array_equal(b, want_b)
    assert chip_worker.stats["last_run_tasks"] == WIDTH * steps

    trace = chip_worker.last_trace
    true_edges, true_fanin = stencil_true_edges(WIDTH, steps)
    edges = len(trace.edges) + trace.dropped_edges
    assert trace.dropped_edges == 0
    fanin = np.bincount(trace.edges["consumer"].astype(np.int64)).max()
    if simpler_runtime == "host_build_graph":
        # The whole graph is known before launch: every true edge is in it.
        assert true_edges <= edges <= 2 * true_edges, (edges, true_edges)
    else:
        # Edges to producers that already finished are not linked (nor
        # traced): at most the true ones, give or take the constant.
        assert edges <= 2 * true_edges, (edges, true_edges)
    assert fanin <= 2 * true_fanin, (fanin, true_fanin)
