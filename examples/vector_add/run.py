"""The smallest complete simpler program: compile a kernel and an
orchestration, register them as one callable, run it, check the result."""
from pathlib import Path

import numpy as np

import simpler

HERE = Path(__file__).resolve().parent


def main() -> None:
    compiler = simpler.KernelCompiler()
    add = simpler.CoreCallable(func_id=0, core_type="aiv", binary=compiler.compile(HERE / "kernel_add.c"),
                               signature=["in", "in", "out"], name="add")
    callable_ = simpler.ChipCallable.build(
        orchestration=compiler.compile(HERE / "orchestration.c"),
        kernels=[add],
        signature=[("in", np.float32), ("in", np.float32), ("out", np.float32)],
    )

    a = np.arange(8, dtype=np.float32)
    b = np.full(8, 10, dtype=np.float32)
    out = np.zeros(8, dtype=np.float32)
    with simpler.ChipWorker(platform="sim", runtime="host_build_graph") as worker:
        cid = worker.register(callable_)
        worker.run(cid, simpler.TaskArgs(a, b, out))
    print("a + b =", out)
    np.testing.assert_array_equal(out, a + b)
    print("OK")


if __name__ == "__main__":
    main()
