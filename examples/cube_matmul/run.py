"""A cube-core kernel: out = relu(A @ B + bias), the matmul on the AIC
cores and the epilogue on the AIV cores. With block_dim=2 clusters there
are 2 AIC and 4 AIV cores: the matmul task has 2 blocks (a band of rows
each), the epilogue 4."""
from pathlib import Path

import numpy as np

import simpler

HERE = Path(__file__).resolve().parent
CLUSTERS = 2    # block_dim; the matmul runs CLUSTERS blocks, the epilogue 2 * CLUSTERS


def main() -> None:
    kc = simpler.KernelCompiler()
    kernels = kc.compile(HERE / "kernels.c")
    matmul = simpler.CoreCallable(0, "aic", kernels, ["in", "in", "out"], entry="matmul", name="matmul")
    bias_relu = simpler.CoreCallable(1, "aiv", kernels, ["in", "in", "out"], entry="bias_relu", name="bias_relu")
    callable_ = simpler.ChipCallable.build(
        kc.compile(HERE / "orchestration.c"), [matmul, bias_relu],
        [("in", np.float32), ("in", np.float32), ("in", np.float32), ("out", np.float32), ("scalar", np.int64)])

    rng = np.random.default_rng(0)
    A = rng.standard_normal((64, 32), dtype=np.float32)
    B = rng.standard_normal((32, 48), dtype=np.float32)
    bias = rng.standard_normal(48, dtype=np.float32)
    out = np.zeros((64, 48), dtype=np.float32)
    with simpler.ChipWorker(platform="sim", runtime="host_build_graph") as worker:
        with worker.registered(callable_) as cid:
            worker.run(cid, simpler.TaskArgs(A, B, bias, out, CLUSTERS), block_dim=CLUSTERS, trace=True)
        trace = worker.last_trace

    expected = np.maximum(A @ B + bias, 0)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    print(f"relu(A @ B + bias): {out.shape}, max error {np.abs(out - expected).max():.2g}")
    # Cores are numbered by cluster: 3c is the cluster's AIC, 3c+1 and 3c+2 its AIVs.
    for func, name in ((0, "matmul"), (1, "bias_relu")):
        cores = sorted({int(c) for c in trace.blocks[trace.blocks["func_id"] == func]["where"]})
        kinds = {"AIC" if c % 3 == 0 else "AIV" for c in cores}
        print(f"{name}: {int((trace.blocks['func_id'] == func).sum())} blocks on {'/'.join(sorted(kinds))} "
              f"cores {cores}")
        assert kinds == {"AIC" if func == 0 else "AIV"}
    print("OK")


if __name__ == "__main__":
    main()
