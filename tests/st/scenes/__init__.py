"""The scenes both runtime suites run: kernels, orchestrations and the
callables built from them. Function ids match scenes/orch/funcs.h."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

import simpler

HERE = Path(__file__).parent
F32 = np.float32

# name: (func_id, core type, source, tensor directions, scalars, defines)
KERNELS = {
    "add": (0, "aiv", "add.c", ["in", "in", "out"], 0, None),
    "mul": (1, "aiv", "mul.c", ["in", "in", "out"], 0, None),
    "add_scalar": (2, "aiv", "add_scalar.c", ["in", "out"], 1, None),
    "inc": (3, "aiv", "inc.c", ["inout"], 1, None),
    "matmul": (4, "aic", "matmul.c", ["in", "in", "out"], 0, None),
    "matmul_acc": (5, "aic", "matmul.c", ["in", "in", "inout"], 0, {"ACCUMULATE": 1}),
    "reduce_sum": (6, "aic", "reduce_sum.c", ["in", "out"], 0, None),
    "slow_copy": (7, "aiv", "slow_copy.c", ["in", "out"], 1, None),
    "fill": (8, "aiv", "fill.c", ["out"], 2, None),
    "hang": (9, "aiv", "hang.c", [], 0, None),
    "spin_us": (10, "aiv", "spin_us.c", [], 1, None),
    "stencil3": (11, "aiv", "stencil3.c", ["in", "out"], 0, None),
    "all_to_all": (12, "aiv", "all_to_all.c", ["in"] * 32 + ["out"] * 32, 64, None),
}

# orchestration: run signature
SIGNATURES = {
    "vector_add": [("in", F32), ("in", F32), ("out", F32), "scalar"],
    "fused": [("in", F32), ("in", F32), ("out", F32)],
    "matmul_diamond": [("in", F32)] * 4 + [("out", F32)],
    "fanout_fanin": [("in", F32), ("out", F32), "scalar"],
    "tiled_matmul": [("in", F32), ("in", F32), ("out", F32), "scalar"],
    "chains": [("inout", F32), "scalar"],
    "hazards": [("inout", F32), ("out", F32), "scalar"],
    "misuse": [("inout", F32), "scalar"],
    "blocks": ["scalar", "scalar"],
    "stream": [("in", F32), ("out", F32), "scalar"],
    "one_scope": [("inout", F32), "scalar"],
    "nested": [("in", F32), ("out", F32)],
    "outputs": [("in", F32), "scalar"],
    "heap_wrap": [("in", F32), "scalar", "scalar", "scalar"],
    "after_scope": [("in", F32)],
    "forever": ["scalar"],
    "stencil": [("inout", np.uint32), ("inout", np.uint32), "scalar"],
    "all_to_all": [("in", F32), ("out", F32), "scalar", "scalar"],
    "scaled": [("in", F32), ("out", F32), "scalar", "scalar"],
    "random_dag": [("inout", F32), "scalar", "scalar"],
    "late_edges": [("inout", F32), ("inout", F32), "scalar", "scalar", "scalar", "scalar", "scalar"],
    "row_values": [("out", F32), ("in", F32), ("out", F32)],
}


@functools.lru_cache(maxsize=None)
def kernel(compiler: simpler.KernelCompiler, name: str) -> simpler.CoreCallable:
    func_id, core, src, sig, nscalars, defines = KERNELS[name]
    binary = compiler.compile(HERE / "kernels" / src, defines=defines)
    return simpler.CoreCallable(func_id, core, binary, sig, num_scalars=nscalars, name=name)


@functools.lru_cache(maxsize=None)
def callable_(compiler: simpler.KernelCompiler, orchestration: str) -> simpler.ChipCallable:
    """The scene's ChipCallable, with every scene kernel."""
    return simpler.ChipCallable.build(
        orchestration=compiler.compile(HERE / "orch" / f"{orchestration}.c"),
        kernels=[kernel(compiler, k) for k in KERNELS],
        signature=SIGNATURES[orchestration],
    )
