"""The examples as a user runs them: each run.py as its own process from
an unrelated directory, and the kernel playground notebook executed
headless, with their outputs checked and nothing left in the working or
temporary directory."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOTEBOOK = EXAMPLES / "notebooks" / "kernel_playground.ipynb"

# example -> lines its output must contain (regular expressions), besides the final "OK"
EXPECTED = {
    "vector_add": [r"a \+ b = \[10\. 11\. 12\. 13\. 14\. 15\. 16\. 17\.\]"],
    "streaming": [r"200,000 tasks; at most \d+ task slots"],
    "multi_block": [r"block 0: elements 0\.\.250", r"block 3: elements 753\.\.1001", r"4 blocks of 1 task ran"],
    "cube_matmul": [r"matmul: 2 blocks on AIC cores", r"bias_relu: 4 blocks on AIV cores"],
    "multi_chip": [r"1000 micro-batches through 4 chips: \d+ host-level edges",
                   r"C = A @ B \(64, 48\) on 4 chips, rows split; max error [0-9.e+-]+, every chip's C identical"],
}


def _dirs(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """An empty working directory and an empty TMPDIR, and the environment
    that uses them (the worktree's simpler first on the path)."""
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    root = str(EXAMPLES.parent)
    path = os.environ.get("PYTHONPATH")
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONPATH=root + (os.pathsep + path if path else ""))
    return cwd, tmp, env


def test_every_example_is_tested():
    found = {p.parent.name for p in EXAMPLES.glob("*/run.py")}
    assert found == set(EXPECTED), f"examples without an expected output here: {found ^ set(EXPECTED)}"


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_example_runs_from_any_directory(example, tmp_path):
    cwd, tmp, env = _dirs(tmp_path)
    proc = subprocess.run([sys.executable, str(EXAMPLES / example / "run.py")], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines and lines[-1] == "OK", proc.stdout + proc.stderr
    for pattern in EXPECTED[example]:
        assert re.search(pattern, proc.stdout), f"{pattern!r} not in:\n{proc.stdout}"
    assert not list(cwd.iterdir()) and not list(tmp.iterdir())


def test_kernel_playground_notebook(simpler_platform, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    cwd, tmp, env = _dirs(tmp_path)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert 'PLATFORM = "sim"' in code[0].source
    code[0].source = code[0].source.replace('PLATFORM = "sim"', f"PLATFORM = {simpler_platform!r}")
    client = nbclient.NotebookClient(nb, timeout=60, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    with client.setup_kernel(env=env):
        for i, cell in enumerate(nb.cells):
            client.execute_cell(cell, i)

    def text(cell) -> str:
        return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.outputs)

    run, edited, traced = (next(c for c in code if marker in c.source)
                           for marker in ("np.testing.assert_array_equal(out, a + b)", "EDITED =", "trace=True"))
    # The first run adds, the edited kernel multiplies: the outputs show both.
    assert "check: out == a + b" in text(run) and "array([10., 11., 12.," in text(run), run.outputs
    assert "check: out == a * b" in text(edited) and "array([  0.,  10.,  20.," in text(edited), edited.outputs
    assert re.search(r"<Trace 1 tasks in 2 blocks on \d cores", text(traced)), traced.outputs
    # and the notebook draws it: an inline swimlane with the kernel's name
    html = "".join(o.get("data", {}).get("text/html", "") for o in traced.outputs)
    assert "<svg" in html and "playground" in html, traced.outputs
    assert not list(cwd.iterdir()) and not list(tmp.iterdir())
