"""A task whose blocks split the work: one saxpy task of 4 blocks on the 4
vector cores of 2 clusters (block_dim=2). Each block computes its own
slice and records its index beside it; the trace shows the blocks on
distinct cores."""
from pathlib import Path

import numpy as np

import simpler

HERE = Path(__file__).resolve().parent
BLOCKS = 4          # blocks of the task (the kernel's block_num)
CLUSTERS = 2        # block_dim: 2 clusters = 2 AIC + 4 AIV cores, one AIV core per block


def main() -> None:
    kc = simpler.KernelCompiler()
    saxpy = simpler.CoreCallable(func_id=0, core_type="aiv", binary=kc.compile(HERE / "kernel_saxpy.c"),
                                 signature=["in", "in", "out", "out"], num_scalars=1, name="saxpy")
    callable_ = simpler.ChipCallable.build(
        kc.compile(HERE / "orchestration.c"), [saxpy],
        [("in", np.float32), ("in", np.float32), ("out", np.float32), ("out", np.int32),
         ("scalar", np.float64), ("scalar", np.int64)])

    n = 1002    # not a multiple of BLOCKS: the last block's slice is shorter
    x = np.arange(n, dtype=np.float32)
    y = np.ones(n, dtype=np.float32)
    out = np.zeros(n, dtype=np.float32)
    owner = np.full(n, -1, dtype=np.int32)
    with simpler.ChipWorker(platform="sim", runtime="host_build_graph") as worker:
        with worker.registered(callable_) as cid:
            worker.run(cid, simpler.TaskArgs(x, y, out, owner, 2.0, BLOCKS), block_dim=CLUSTERS, trace=True)
        trace = worker.last_trace

    np.testing.assert_array_equal(out, 2 * x + y)
    per = -(-n // BLOCKS)      # ceil: what simpler_block_range gives each block
    np.testing.assert_array_equal(owner, np.arange(n) // per)
    for b in range(BLOCKS):
        lo, hi = np.flatnonzero(owner == b)[[0, -1]]
        print(f"block {b}: elements {lo}..{hi}")
    blocks = trace.blocks
    cores = sorted({int(c) for c in blocks["where"]})
    print(f"{len(blocks)} blocks of 1 task ran on cores {cores}")
    assert len(blocks) == BLOCKS and sorted(int(b) for b in blocks["block"]) == list(range(BLOCKS))
    print("OK")


if __name__ == "__main__":
    main()
