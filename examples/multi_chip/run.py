"""The multi-chip examples, one after the other: a four-stage pipeline
over four chips (pipeline.py) and a tensor-parallel matmul
(tensor_parallel.py). Each checks its result and prints OK."""
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    for name in ("pipeline", "tensor_parallel"):
        path = HERE / f"{name}.py"
        print(f"== {name}")
        sys.argv = [str(path)]
        runpy.run_path(str(path), run_name="__main__")
