"""A failed run's report: on a timeout, an orchestration error, an
interrupt and (onboard) a crashing kernel, the exception's report names
the stuck task's kernel, its tensors and scalars, and what finished
before; with a dump directory it is written there with the run's arrays
as .npy files, and nothing is written when the run succeeds."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

import simpler
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "st"))
from interrupt_tests import sigint_after  # noqa: E402
from long_runs import STUCK_SHAPE, stuck_callable
from onboard_helpers import CRASH, scalar_callable


RUNTIMES = ("host_build_graph", "tensormap_and_ringbuffer")
ROW = STUCK_SHAPE[1]    # elements per row: the stalled task's view starts 2 rows in
FAILING_ORCH = """
#include <simpler/orch.h>
SIMPLER_ORCHESTRATION(orchestrate) {
    simpler_tensor *X = &args->tensors[0];
    uint32_t inout = SIMPLER_INOUT;
    int rc = simpler_submit(api, o, 1, SIMPLER_CORE_AIV, X, &inout, 1, NULL, 0, NULL);
    return rc ? rc : api->fail(o, "the orchestration gives up");
}
"""


@pytest.fixture(params=RUNTIMES)
def stuck(request, simpler_platform, kc):
    with simpler.ChipWorker(simpler_platform, request.param) as w:
        yield w, w.register(stuck_callable(kc))


def inputs() -> np.ndarray:
    return np.arange(np.prod(STUCK_SHAPE), dtype=np.float32).reshape(STUCK_SHAPE)


def assert_names_the_stalled_task(report: simpler.FailureReport) -> None:
    assert report.from_device
    [task] = [t for t in report.running if t.kernel == "stall"]
    assert (task.func_id, task.num_tensors, task.scalars) == (2, 1, [7])
    [t] = task.tensors
    assert (t.shape, t.offset, t.dtype, t.tag) == ((1, ROW), 2 * ROW, "float32", "inout")
    bumped = [f for f in report.finished if f.kernel == "bump"]
    assert bumped and bumped[0].tensors[0].addr == t.addr      # the same run argument, another view
    assert bumped[0].tensors[0].offset == 0
    text = str(report)
    assert "'stall' (func 2)" in text and "scalar 0: 7" in text and f"offset {2 * ROW}" in text
    assert report.arguments[0].kind == "host array" and report.arguments[0].shape == STUCK_SHAPE
    assert report.arguments[1].value == 7


def test_a_timeout_reports_the_stuck_task(stuck):
    w, cid = stuck
    with pytest.raises(simpler.Timeout) as info:
        w.run(cid, [inputs(), 7], scheduler_timeout=0.3)
    report = info.value.report
    assert report.error == "Timeout" and report.run == f"run(callable_id={int(cid)})"
    assert_names_the_stalled_task(report)
    assert report.tasks_completed >= 1 and report.tasks_submitted == 3
    assert report.dump_dir is None
    assert w.usable


def test_a_dump_holds_the_report_and_the_inputs(stuck, tmp_path):
    w, cid = stuck
    x = inputs()
    passed = x.copy()
    with pytest.raises(simpler.Timeout) as info:
        w.run(cid, [x, 7], scheduler_timeout=0.3, dump_dir=tmp_path)
    report = info.value.report
    [made] = list(tmp_path.iterdir())
    assert report.dump_dir == str(made)
    assert sorted(p.name for p in made.iterdir()) == ["arg0.npy", "report.json", "report.txt"]  # no temp files
    np.testing.assert_array_equal(np.load(made / "arg0.npy"), passed)
    saved = json.loads((made / "report.json").read_text())
    assert saved["error"] == "Timeout" and saved["running"][0]["kernel"] == "stall"
    assert saved["arguments"][0]["file"] == "arg0.npy"
    assert "'stall'" in (made / "report.txt").read_text()


def test_the_dump_env_var_and_a_submitted_run(stuck, tmp_path, monkeypatch):
    monkeypatch.setenv("SIMPLER_DUMP_DIR", str(tmp_path / "dumps"))
    w, cid = stuck
    x = inputs()
    handle = w.submit(cid, [x, 7], scheduler_timeout=0.3)
    x[:] = -1           # reused once submit returned: the dump has what was passed
    error = handle.exception()
    assert isinstance(error, simpler.Timeout)
    assert_names_the_stalled_task(error.report)
    [made] = list((tmp_path / "dumps").iterdir())
    np.testing.assert_array_equal(np.load(made / "arg0.npy"), inputs())


def test_no_dump_when_the_run_succeeds(simpler_platform, kc, tmp_path):
    from long_runs import ticks_callable
    with simpler.ChipWorker(simpler_platform) as w:
        cid = w.register(ticks_callable(kc))
        w.run(cid, [3, 10], dump_dir=tmp_path)
        w.submit(cid, [3, 10], dump_dir=tmp_path).result()
    assert list(tmp_path.iterdir()) == []


def tasks_done(w: simpler.ChipWorker, n: int) -> bool:
    """Whether the worker's running launch has finished n tasks (read as the
    progress bar reads them)."""
    from simpler._native import ffi, lib
    counts = ffi.new("uint64_t[2]")
    return lib.simpler_device_progress(w._d(), counts, counts + 1) == 0 and counts[0] >= n


def test_an_interrupt_reports_the_stuck_task(stuck):
    w, cid = stuck
    with pytest.raises(KeyboardInterrupt) as info:
        # once the first bump finished, so the interrupt finds the stall
        # on its core however slowly the launch started
        with sigint_after(0.1, once=lambda: tasks_done(w, 1)):
            w.run(cid, [inputs(), 7], scheduler_timeout=60)
    assert_names_the_stalled_task(info.value.report)
    assert info.value.report.message == "interrupted (SIGINT) while it ran"   # not an empty line
    assert "\n  interrupted (SIGINT) while it ran\n" in str(info.value.report)
    assert w.usable


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_an_orchestration_error_has_a_report(simpler_platform, runtime, kc, tmp_path):
    bump = stuck_callable(kc).kernels[1]
    failing = simpler.ChipCallable.build(kc.compile_source(FAILING_ORCH, name="failing.c"), [bump],
                                         [("inout", np.float32)])
    with simpler.ChipWorker(simpler_platform, runtime) as w:
        cid = w.register(failing)
        with pytest.raises(simpler.OrchestrationError, match="gives up") as info:
            w.run(cid, [inputs()], dump_dir=tmp_path)
        report = info.value.report
        assert report.error == "OrchestrationError" and "gives up" in report.message
        assert report.arguments[0].shape == STUCK_SHAPE
        # host_build_graph fails on the host before launching; a device
        # orchestration fails its launch, with what the cores held
        assert report.from_device == (runtime == "tensormap_and_ringbuffer")
        [made] = list(tmp_path.iterdir())
        np.testing.assert_array_equal(np.load(made / "arg0.npy"), inputs())


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_crashing_kernel_onboard_reports_its_task(private_device, kc, runtime, tmp_path):
    with simpler.ChipWorker("onboard", runtime) as w:
        cid = w.register(scalar_callable(kc, CRASH))
        with pytest.raises(simpler.DeviceLost, match="SIGSEGV") as info:
            w.run(cid, [8, 0], dump_dir=tmp_path)
        report = info.value.report
        [task] = report.running
        assert (task.kernel, task.func_id, task.scalars) == ("kernel", 0, [8, 0])
        assert "died of SIGSEGV" in report.message
        assert [a.value for a in report.arguments] == [8, 0]
        [made] = list(tmp_path.iterdir())
        assert sorted(p.name for p in made.iterdir()) == ["report.json", "report.txt"]   # no arrays passed
        assert not w.usable


# Rows of X: row k stalls (its scalar is k), every other row is bumped;
# all independent, so thousands are ready at once and go to the cores in
# runs of tasks (dispatch_loop.c), the stalled one most likely inside one.
ORCH_STALL_AMONG_MANY = """
#include <simpler/orch.h>
SIMPLER_ORCHESTRATION(orchestrate) {
    simpler_tensor *X = &args->tensors[0];
    uint32_t inout = SIMPLER_INOUT;
    uint64_t k = args->scalars[0];
    int rc = 0;
    for (int64_t r = 0; r < X->shape[0] && !rc; r++) {
        simpler_tensor row = simpler_view2d(X, r, 0, 1, X->shape[1]);
        uint64_t s = (uint64_t)r;
        rc = (uint64_t)r == k ? simpler_submit(api, o, 2, SIMPLER_CORE_AIV, &row, &inout, 1, &s, 1, NULL)
                              : simpler_submit(api, o, 1, SIMPLER_CORE_AIV, &row, &inout, 1, NULL, 0, NULL);
    }
    return rc;
}
"""


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_task_stuck_among_thousands_of_ready_ones_is_the_one_reported(simpler_platform, kc, runtime):
    import long_runs
    bump = simpler.CoreCallable(1, "aiv", kc.compile_source(long_runs.BUMP, name="bump.c"), ["inout"], name="bump")
    stall = simpler.CoreCallable(2, "aiv", kc.compile_source(long_runs.STALL, name="stall.c"), ["inout"],
                                 num_scalars=1, name="stall")
    chip = simpler.ChipCallable.build(kc.compile_source(ORCH_STALL_AMONG_MANY, name="stall_among.c"), [bump, stall],
                                      [("inout", np.float32), "scalar"])
    rows, k = 6000, 4321
    with simpler.ChipWorker(simpler_platform, runtime) as w:
        cid = w.register(chip)
        X = np.zeros((rows, ROW), np.float32)
        with pytest.raises(simpler.Timeout) as info:
            w.run(cid, [X, k], scheduler_timeout=0.5)
        report = info.value.report
        [task] = [t for t in report.running if t.kernel == "stall"]
        assert (task.func_id, task.scalars) == (2, [k])
        assert task.tensors[0].offset == k * ROW
        assert all(t.kernel == "bump" for t in report.running if t is not task)
        assert w.usable


def test_no_report_for_a_bad_argument(stuck):
    w, cid = stuck
    with pytest.raises(simpler.InvalidArgument) as info:
        w.run(cid, [np.zeros(3, np.int32), 7])
    assert not hasattr(info.value, "report")


def test_last_failure_checks_its_arguments():
    from simpler._native import ffi, lib
    with simpler.ChipWorker("sim") as w:
        out, found = ffi.new("simpler_failure_report *"), ffi.new("int32_t *")
        assert lib.simpler_last_failure(ffi.NULL, out, found) == lib.SIMPLER_E_INVALID_ARGUMENT
        assert lib.simpler_last_failure(w._handle, ffi.NULL, found) == lib.SIMPLER_E_INVALID_ARGUMENT
        assert lib.simpler_last_failure(w._handle, out, ffi.NULL) == lib.SIMPLER_E_INVALID_ARGUMENT
        assert lib.simpler_last_failure(w._handle, out, found) == 0 and found[0] == 0
        w.finalize()
        assert lib.simpler_last_failure(w._handle, out, found) == lib.SIMPLER_E_STATE


@pytest.mark.parametrize("value", [3, b"dir", ""])
def test_dump_dir_must_be_a_path(value):
    with simpler.ChipWorker("sim") as w, pytest.raises(simpler.InvalidArgument, match="dump_dir"):
        w.run(1, [], dump_dir=value)
