"""A four-stage pipeline over four chips: stage k runs on chip k
(out = x * a_k + b_k), and each micro-batch moves from chip to chip by
device-to-device copies. Every run and copy is a node of the Worker's
graph; the order comes from the tensors they read and write, so while
chip 1 works on micro-batch m, chip 0 is already on m + 1. Two buffers
per stage (micro-batch m uses buffer m % 2) let neighbouring stages
overlap instead of waiting for each other's buffer (write after read).

    python examples/multi_chip/pipeline.py [--platform sim|onboard] [--micro-batches N]
"""
import argparse
from pathlib import Path

import numpy as np

import simpler

HERE = Path(__file__).resolve().parent
STAGES = 4
SLOTS = 2
COEFFS = [(2.0, 1.0), (0.5, -3.0), (3.0, 0.25), (-1.0, 4.0)]   # (a_k, b_k): stage k computes x * a_k + b_k


def affine_callable(kc: simpler.KernelCompiler) -> simpler.ChipCallable:
    affine = simpler.CoreCallable(func_id=0, core_type="aiv", binary=kc.compile(HERE / "kernel_affine.c"),
                                  signature=["in", "out"], num_scalars=2, name="affine")
    return simpler.ChipCallable.build(kc.compile(HERE / "orchestration_affine.c"), [affine],
                                      [("in", np.float32), ("out", np.float32),
                                       ("scalar", np.float64), ("scalar", np.float64)])


def run_pipeline(worker: simpler.Worker, reg: simpler.WorkerRegistration, batches: list[np.ndarray]) -> list[np.ndarray]:
    """Push every micro-batch through the stages; returns the outputs."""
    chips = list(worker.devices[:STAGES])
    n = batches[0].size
    ins = [[worker.malloc(d, (n,), np.float32) for _ in range(SLOTS)] for d in chips]
    outs = [[worker.malloc(d, (n,), np.float32) for _ in range(SLOTS)] for d in chips]
    results = [np.empty(n, dtype=np.float32) for _ in batches]
    try:
        for m, x in enumerate(batches):
            s = m % SLOTS
            worker.copy(ins[0][s], x)                                   # host -> chip 0
            for k, d in enumerate(chips):
                a, b = COEFFS[k]
                worker.submit(d, reg, [ins[k][s], outs[k][s], a, b])   # stage k on chip k
                if k + 1 < len(chips):
                    worker.copy(ins[k + 1][s], outs[k][s])              # chip k -> chip k + 1, GM to GM
            worker.copy(results[m], outs[-1][s])                        # last chip -> host
        worker.wait()
    finally:
        for t in [*sum(ins, []), *sum(outs, [])]:
            worker.free(t)
    return results


def serial(x: np.ndarray) -> np.ndarray:
    for a, b in COEFFS:
        x = x * np.float32(a) + np.float32(b)
    return x


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--platform", default="sim", choices=["sim", "onboard"])
    p.add_argument("--micro-batches", type=int, default=1000)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal(256, dtype=np.float32) for _ in range(args.micro_batches)]
    with simpler.Worker(platform=args.platform, devices=range(STAGES)) as worker:
        with worker.register(affine_callable(simpler.KernelCompiler())) as reg:
            results = run_pipeline(worker, reg, batches)
        print(f"{len(batches)} micro-batches through {STAGES} chips: {worker.edges} host-level edges")
    for x, y in zip(batches, results):
        np.testing.assert_array_equal(y, serial(x))
    print("OK")


if __name__ == "__main__":
    main()
