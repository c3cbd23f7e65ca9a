"""A tensor-parallel matmul over four chips: C = A @ B with A split by
rows. Chip i holds its band of rows A_i and all of B, computes its band
C_i = A_i @ B on its cube cores, and an allgather over the chips (run on
the chips' vector cores, reading the peers' bands through windows onto
their GM) leaves the whole C on every chip.

    python examples/multi_chip/tensor_parallel.py [--platform sim|onboard]
"""
import argparse
from pathlib import Path

import numpy as np

import simpler

HERE = Path(__file__).resolve().parent
CHIPS = 4
BLOCKS = 2      # cube-core blocks per chip's matmul (one AIC core per cluster, block_dim=2)


def matmul_callable(kc: simpler.KernelCompiler) -> simpler.ChipCallable:
    # The matmul kernel of the cube_matmul example: a band of C's rows a block.
    matmul = simpler.CoreCallable(0, "aic", kc.compile(HERE.parent / "cube_matmul" / "kernels.c"),
                                  ["in", "in", "out"], entry="matmul", name="matmul")
    return simpler.ChipCallable.build(kc.compile(HERE / "orchestration_matmul.c"), [matmul],
                                      [("in", np.float32), ("in", np.float32), ("out", np.float32),
                                       ("scalar", np.int64)])


def tensor_parallel_matmul(worker: simpler.Worker, reg: simpler.WorkerRegistration, A: np.ndarray,
                           B: np.ndarray) -> list[np.ndarray]:
    """C = A @ B with A's rows split over the Worker's chips; returns the C
    each chip ends with (all equal)."""
    chips = list(worker.devices)
    M, N = A.shape[0], B.shape[1]
    if M % len(chips):
        raise ValueError(f"{M} rows do not split evenly over {len(chips)} chips")
    rows = M // len(chips)
    bands = [worker.malloc(d, (rows, N), np.float32) for d in chips]
    whole = [worker.malloc(d, (M, N), np.float32) for d in chips]
    results = [np.empty((M, N), dtype=np.float32) for _ in chips]
    try:
        for i, d in enumerate(chips):
            worker.submit(d, reg, [A[i * rows:(i + 1) * rows], B, bands[i], BLOCKS], block_dim=BLOCKS)
        worker.allgather(whole, bands)          # each chip's C: every chip's band, in chip order
        for d, t, out in zip(chips, whole, results):
            worker.copy(out, t)
        worker.wait()
    finally:
        for t in bands + whole:
            worker.free(t)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--platform", default="sim", choices=["sim", "onboard"])
    args = p.parse_args()
    rng = np.random.default_rng(0)
    A = rng.standard_normal((64, 32), dtype=np.float32)
    B = rng.standard_normal((32, 48), dtype=np.float32)
    with simpler.Worker(platform=args.platform, devices=range(CHIPS)) as worker:
        with worker.register(matmul_callable(simpler.KernelCompiler())) as reg:
            results = tensor_parallel_matmul(worker, reg, A, B)
    expected = A @ B
    for d, C in enumerate(results):
        np.testing.assert_allclose(C, expected, rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(C, results[0])
    print(f"C = A @ B {expected.shape} on {CHIPS} chips, rows split; max error "
          f"{max(float(np.abs(C - expected).max()) for C in results):.2g}, every chip's C identical")
    print("OK")


if __name__ == "__main__":
    main()
