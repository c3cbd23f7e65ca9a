"""Scene tests shared by the runtime suites: each suite's conftest chooses
the runtime, and its test module imports these."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

import scenes
import simpler
from simpler.testing import run_scene

F32 = np.float32
RNG = np.random.default_rng(1234)


def vector_add_inputs(n: int, blocks: int):
    def make():
        a = RNG.standard_normal(n).astype(F32)
        b = RNG.standard_normal(n).astype(F32)
        return [a, b, np.full_like(a, np.nan), blocks]
    return make


def test_vector_add(chip_worker, scene):
    run_scene(chip_worker, scene("vector_add"), vector_add_inputs(1000, 1), lambda a, b, out, blocks: a + b)


def test_vector_add_multiblock(chip_worker, scene):
    """One task over 7 blocks: every block must run once with its index."""
    run_scene(chip_worker, scene("vector_add"), vector_add_inputs(10007, 7), lambda a, b, out, blocks: a + b)


def test_vector_add_2d_noncontiguous_inputs(chip_worker, scene, golden):
    cid = scene("vector_add")
    a = RNG.standard_normal((64, 32)).astype(F32)
    b = RNG.standard_normal((32, 64)).astype(F32).T  # a transposed view
    out = np.zeros((64, 32), F32)
    chip_worker.run(cid, simpler.TaskArgs(a, b, out, 1))
    golden(out, a + b)


def run_fused(chip_worker, cid, golden):
    a = RNG.standard_normal(4096).astype(F32)
    b = RNG.standard_normal(4096).astype(F32)
    out = np.zeros_like(a)
    chip_worker.run(cid, simpler.TaskArgs(a, b, out))
    s = a + b
    golden(out, (s + 1) * (s + 2) + s, rtol=1e-5, atol=1e-5)
    return a, b


def test_fused_expression(chip_worker, scene, golden):
    run_fused(chip_worker, scene("fused"), golden)


def test_matmul_diamond(chip_worker, scene):
    def inputs():
        shapes = [(48, 32), (32, 40), (32, 40), (40, 24)]
        return [RNG.standard_normal(s).astype(F32) for s in shapes] + [np.zeros((48, 24), F32)]
    run_scene(chip_worker, scene("matmul_diamond"), inputs, lambda A, W1, W2, W3, out: (A @ W1 + A @ W2) @ W3,
              rtol=1e-4, atol=1e-3)


def test_fanout_fanin_both_core_types(chip_worker, scene, golden):
    cid = scene("fanout_fanin")
    parts, n = 64, 64 * 16
    x = RNG.standard_normal(n).astype(F32)
    out = np.zeros(1, F32)
    chip_worker.run(cid, simpler.TaskArgs(x, out, parts))
    expected = (x.astype(np.float64) + 1 + np.repeat(np.arange(parts), n // parts)).sum()
    golden(out, np.array([expected], F32), rtol=1e-5, atol=1e-3)


def test_tiled_matmul_on_views(chip_worker, scene, golden):
    cid = scene("tiled_matmul")
    A = RNG.standard_normal((128, 96)).astype(F32)
    B = RNG.standard_normal((96, 64)).astype(F32)
    C = np.full((128, 64), np.nan, F32)
    chip_worker.run(cid, simpler.TaskArgs(A, B, C, 16), block_dim=4)
    golden(C, A @ B, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("rows", [3, 4000])
def test_thousands_of_ready_tasks_each_see_their_own_arguments(chip_worker, scene, rows):
    """Every task ready at once, AIV and AIC alternating, each with its own
    tensors and scalars: handed out in runs where the scheduler can
    (host_build_graph reads a run's tasks straight from the image, stepping
    over the other core type's), each must still run once with its own."""
    cid = scene("row_values")
    X = np.full((rows, 4), np.nan, F32)
    Y = RNG.integers(0, 100, (rows, 6)).astype(F32)
    S = np.full((rows, 1), np.nan, F32)
    for _ in range(2):
        chip_worker.run(cid, simpler.TaskArgs(X, Y, S), trace=True, block_dim=2)
        np.testing.assert_array_equal(X, np.repeat(np.arange(rows, dtype=F32)[:, None] + 0.5, 4, axis=1))
        np.testing.assert_array_equal(S[:, 0], Y.sum(axis=1))
        blocks = chip_worker.last_trace.blocks
        assert sorted(blocks["task"].tolist()) == sorted(set(blocks["task"].tolist())), "a task ran twice"
        assert len(blocks) == 2 * rows
        X[:] = np.nan
        S[:] = np.nan


def test_fifty_thousand_tasks(chip_worker, scene, golden):
    """500 independent INOUT chains of 100 increments: 50,000 tasks."""
    cid = scene("chains")
    X = RNG.integers(0, 100, (500, 8)).astype(F32)
    expected = X + 100
    chip_worker.run(cid, simpler.TaskArgs(X, 100), block_dim=4)
    golden(X, expected)
    assert chip_worker.stats["tasks_completed"] >= 50_000


def test_write_after_read_and_write_after_write(chip_worker, scene, golden):
    cid = scene("hazards")
    X = RNG.standard_normal((32, 64)).astype(F32)
    Y = np.zeros_like(X)
    original = X.copy()
    chip_worker.run(cid, simpler.TaskArgs(X, Y, 200_000), block_dim=4)
    golden(Y, original, name="WAR: Y read X before X was overwritten")
    golden(X, np.full_like(X, 2), name="WAW: the later write wins")


def test_runs_after_a_larger_graph_start_clean(chip_worker, scene, golden):
    """A worker keeps its run block (the graph image and its host staging,
    or the rings) from one run for the next: nothing a larger graph, or the
    same multi-block task, left there may leak into the next run."""
    chains, fused, add = scene("chains"), scene("fused"), scene("vector_add")
    X = RNG.integers(0, 100, (500, 8)).astype(F32)
    expected = X + 10
    chip_worker.run(chains, simpler.TaskArgs(X, 10), block_dim=4)
    golden(X, expected)
    for _ in range(2):
        a, b = run_fused(chip_worker, fused, golden)
        out = np.full_like(a, np.nan)
        chip_worker.run(add, simpler.TaskArgs(a, b, out, 7))
        golden(out, a + b)


LIBM_KERNEL = """
#include <math.h>
#include <simpler/kernel.h>

/* out = sqrt(a) + exp(b): calls into libm. */
SIMPLER_KERNEL(kernel)
{
    const simpler_tensor *a = &args->tensors[0], *b = &args->tensors[1], *out = &args->tensors[2];
    int64_t lo, hi;
    simpler_block_range(args, simpler_tensor_numel(out), &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        *(float *)simpler_tensor_at(out, i) =
            (float)sqrt(*(float *)simpler_tensor_at(a, i)) + expf(*(float *)simpler_tensor_at(b, i));
}
"""


def _plain_cc(tmp_path: Path) -> bytes:
    """The kernel linked without -lm, as a C user's own build might: the
    process that runs the chip must resolve sqrt and expf itself."""
    src, so = tmp_path / "libm_kernel.c", tmp_path / "libm_kernel.so"
    src.write_text(LIBM_KERNEL)
    subprocess.run(["cc", "-std=c11", "-O2", "-fPIC", "-shared", f"-I{simpler._native.include_dir()}",
                    str(src), "-o", str(so)], check=True, capture_output=True)
    return so.read_bytes()


@pytest.mark.parametrize("build", ["kernel_compiler", "plain_cc"])
def test_kernel_calling_libm(chip_worker, kernel_compiler, golden, tmp_path, build):
    """The same kernel runs on both platforms: whatever the host resolves
    for a kernel (libm), the device process resolves too."""
    binary = kernel_compiler.compile_source(LIBM_KERNEL, name="libm_kernel.c") if build == "kernel_compiler" \
        else _plain_cc(tmp_path)
    kernel = simpler.CoreCallable(0, "aiv", binary, ["in", "in", "out"], name="libm_kernel")
    orch = kernel_compiler.compile(scenes.HERE / "orch" / "vector_add.c")
    cid = chip_worker.register(simpler.ChipCallable.build(orch, [kernel], scenes.SIGNATURES["vector_add"]))
    try:
        a = RNG.uniform(0, 100, 1000).astype(F32)
        b = RNG.uniform(-5, 5, 1000).astype(F32)
        out = np.zeros_like(a)
        chip_worker.run(cid, simpler.TaskArgs(a, b, out, 2))
        golden(out, np.sqrt(a) + np.exp(b))
    finally:
        chip_worker.unregister(cid)
