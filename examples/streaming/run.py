"""A 200,000-task stream on tensormap_and_ringbuffer: the orchestration
runs on the chip's AICPU while the tasks execute, through rings of 256
task slots, and prints how much of the rings it used."""
from pathlib import Path

import numpy as np

import simpler

HERE = Path(__file__).resolve().parent


def main() -> None:
    kc = simpler.KernelCompiler()
    scale = simpler.CoreCallable(0, "aiv", kc.compile(HERE / "kernels.c", defines={"KERNEL_OP": 1}),
                                 ["in", "out"], num_scalars=1, name="scale")
    add = simpler.CoreCallable(1, "aiv", kc.compile(HERE / "kernels.c", defines={"KERNEL_OP": 2}),
                               ["in", "in", "out"], name="add")
    stream = simpler.ChipCallable.build(kc.compile(HERE / "orchestration.c"), [scale, add],
                                        [("in", np.float32), ("out", np.float32), "scalar"])

    X = np.arange(64 * 16, dtype=np.float32).reshape(64, 16)
    Y = np.zeros_like(X)
    steps = 100_000  # two tasks each
    with simpler.ChipWorker(platform="sim", runtime="tensormap_and_ringbuffer") as worker:
        with worker.registered(stream) as cid:
            worker.run(cid, simpler.TaskArgs(X, Y, steps), task_ring_size=256, heap_ring_size=1 << 20)
        st = worker.stats
    print(f"{st['last_run_tasks']:,} tasks; at most {st['last_run_peak_tasks']} task slots and "
          f"{st['last_run_peak_heap_bytes']:,} heap bytes in use at once")
    np.testing.assert_array_equal(Y, 3 * X)
    print("OK")


if __name__ == "__main__":
    main()
