"""sim: a kernel that takes the Python process down says which kernel it
was, and an exit() during a run does not end the process with status 0."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {here!r})
    import simpler
    from onboard_helpers import ORCH_SCALARS
    KERNEL = {kernel!r}
    kc = simpler.KernelCompiler()
    k = simpler.CoreCallable(0, "aiv", kc.compile_source(KERNEL), [], num_scalars=2, name="{name}")
    c = simpler.ChipCallable.build(kc.compile_source(ORCH_SCALARS), [k], ["scalar", "scalar"])
    w = simpler.ChipWorker("sim", {runtime!r})
    cid = w.register(c)
    print("running", flush=True)
    w.run(cid, [8, 0])
    print("returned", flush=True)
""")
SEGFAULT = """
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) { *(volatile int *)(uintptr_t)args->scalars[0] = 1; }
"""
ABORT = """
#include <stdlib.h>
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) { abort(); }
"""
EXIT0 = """
#include <stdlib.h>
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) { exit(0); }
"""


def run_script(kernel: str, name: str, runtime: str) -> subprocess.CompletedProcess:
    code = SCRIPT.format(here=HERE, kernel=kernel, name=name, runtime=runtime)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("runtime", ["host_build_graph", "tensormap_and_ringbuffer"])
@pytest.mark.parametrize("kernel, name, sig, what", [
    (SEGFAULT, "poke", signal.SIGSEGV, "SIGSEGV"),
    (ABORT, "giveup", signal.SIGABRT, "SIGABRT"),
])
def test_a_crashing_kernel_says_which_it_was(kernel, name, sig, what, runtime):
    r = run_script(kernel, name, runtime)
    assert r.returncode == -sig, (r.returncode, r.stderr)
    assert "running" in r.stdout and "returned" not in r.stdout
    assert f"a kernel crashed the process with {what}" in r.stderr, r.stderr
    assert f"was running task 0 (func 0, kernel '{name}')" in r.stderr, r.stderr


@pytest.mark.parametrize("runtime", ["host_build_graph", "tensormap_and_ringbuffer"])
def test_exit_during_a_run_is_not_success(runtime):
    r = run_script(EXIT0, "quitter", runtime)
    assert r.returncode == 70, (r.returncode, r.stderr)
    assert "exit() was called while a run was in flight" in r.stderr, r.stderr
    assert "kernel 'quitter'" in r.stderr


def test_exit_outside_a_run_is_left_alone():
    code = "import simpler, sys; w = simpler.ChipWorker('sim'); sys.exit(0)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "simpler (sim" not in r.stderr, r.stderr
