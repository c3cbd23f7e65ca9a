"""simpler in a Jupyter kernel: the interrupt button (SIGINT to the
kernel) stops a run that hangs, the cell ends in KeyboardInterrupt, and the
next cell uses the same worker."""
from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

SCENES = Path(__file__).resolve().parent.parent / "st"

SETUP = f"""
import sys, time
import numpy as np
sys.path.insert(0, {str(SCENES)!r})
import scenes, simpler
kc = simpler.KernelCompiler()
w = simpler.ChipWorker(platform=PLATFORM, runtime=RUNTIME)
hang = w.register(scenes.callable_(kc, "misuse"))
add = w.register(scenes.callable_(kc, "vector_add"))
"""
HANG = "print('running', flush=True)\nw.run(hang, simpler.TaskArgs(np.zeros(4, np.float32), 8), scheduler_timeout=60)"
AFTER = """
a = np.arange(8, dtype=np.float32); out = np.zeros_like(a)
w.run(add, simpler.TaskArgs(a, a, out, 1))
assert (out == 2 * a).all() and w.usable
print("usable", w.stats["core_resets"])
w.finalize()
"""


@pytest.mark.parametrize("runtime", ["host_build_graph", "tensormap_and_ringbuffer"])
def test_interrupt_button_stops_a_hanging_run(simpler_platform, runtime):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"PLATFORM, RUNTIME = {simpler_platform!r}, {runtime!r}\n" + SETUP),
                nbformat.v4.new_code_cell(HANG), nbformat.v4.new_code_cell(AFTER)]
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True)
    with client.setup_kernel():
        client.execute_cell(nb.cells[0], 0)
        assert not [o for o in nb.cells[0].outputs if o.output_type == "error"], nb.cells[0].outputs

        def interrupt_when_running():
            # The cell prints before it runs; interrupt a moment after.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not nb.cells[1].get("outputs"):
                time.sleep(0.05)
            time.sleep(0.5)
            asyncio.run(client.km.interrupt_kernel())   # what the interrupt button does

        t = threading.Thread(target=interrupt_when_running)
        t.start()
        start = time.monotonic()
        client.execute_cell(nb.cells[1], 1)
        elapsed = time.monotonic() - start
        t.join()
        errors = [o for o in nb.cells[1].outputs if o.output_type == "error"]
        assert errors and errors[0].ename == "KeyboardInterrupt", nb.cells[1].outputs
        assert elapsed < 30     # the run's watchdog would have waited 60 s
        client.execute_cell(nb.cells[2], 2)
        text = "".join(o.get("text", "") for o in nb.cells[2].outputs)
        assert "usable" in text, nb.cells[2].outputs


AWAIT = """
import asyncio
a = np.arange(64, dtype=np.float32)
outs = [np.zeros_like(a) for _ in range(6)]
handles = [w.submit(add, [a, a * i, out, 1]) for i, out in enumerate(outs)]
await handles[-1]
await asyncio.gather(*map(asyncio.wrap_future, handles))
graph = w.record(add, [a, a, outs[0], 1])
await graph.submit([a, 3 * a, outs[1], 1])
assert all((out == a * (1 + i)).all() for i, out in enumerate(outs) if i > 1)
assert (outs[1] == 4 * a).all()
print("awaited", [h.done() for h in handles].count(True))
w.finalize()
"""


@pytest.mark.parametrize("runtime", ["host_build_graph", "tensormap_and_ringbuffer"])
def test_runs_are_awaited_in_a_cell(simpler_platform, runtime):
    """Top-level await of a RunHandle (and of a replay) in a notebook cell."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"PLATFORM, RUNTIME = {simpler_platform!r}, {runtime!r}\n" + SETUP),
                nbformat.v4.new_code_cell(AWAIT)]
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True)
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            client.execute_cell(cell, i)
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert not errors, errors
    text = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert "awaited 6" in text, nb.cells[1].outputs
