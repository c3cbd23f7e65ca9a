"""The pytest plugin, tried on small generated suites (pytester): --platform
and --runtime parametrize the device fixtures and show in test ids, a
marker or a conftest chooses a test's runtime, private_chip_worker is a
device of the test's own, and run_scene runs on every selection."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import simpler

pytest_plugins = ["pytester"]

ST = Path(__file__).resolve().parents[1] / "st"
HBG, TMR = simpler.RUNTIMES


# In-process runs re-import other plugins each time: the ones this machine
# may have besides simpler's, which the generated suites do not use, stay out.
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:anyio", "-p", "no:benchmark")


def run(pytester: pytest.Pytester, *args: str):
    """The generated suite's outcomes: ({passed node ids}, {skipped}, {failed})."""
    reprec = pytester.inline_run(*QUIET, *args)
    passed, skipped, failed = reprec.listoutcomes()
    return ({r.nodeid.split("::", 1)[1] for r in passed}, {r.nodeid.split("::", 1)[1] for r in skipped},
            {r.nodeid.split("::", 1)[1] for r in failed})


RUNTIME_ONLY = """
def test_r(simpler_platform, simpler_runtime):
    assert simpler_runtime in {runtimes!r}
"""


def test_without_runtime_every_platform_runs_both_runtimes(pytester):
    pytester.makepyfile(RUNTIME_ONLY.format(runtimes=simpler.RUNTIMES))
    passed, skipped, failed = run(pytester, "--platform", "sim", "--platform", "onboard")
    assert passed == {f"test_r[{p}-{r}]" for p in ("sim", "onboard") for r in simpler.RUNTIMES}
    assert not skipped and not failed


@pytest.mark.parametrize("selected", [[TMR], [HBG], [TMR, HBG]])
def test_runtime_selects_the_runtimes(pytester, selected):
    pytester.makepyfile(RUNTIME_ONLY.format(runtimes=tuple(selected)))
    args = [a for r in selected for a in ("--runtime", r)]
    passed, skipped, failed = run(pytester, "--platform", "sim", *args)
    assert passed == {f"test_r[sim-{r}]" for r in selected}
    assert not skipped and not failed


def test_an_unknown_runtime_is_a_usage_error(pytester):
    pytester.makepyfile(RUNTIME_ONLY.format(runtimes=simpler.RUNTIMES))
    result = pytester.runpytest(*QUIET, "--runtime", "magic")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "invalid choice: 'magic'" in result.stderr.str()


@pytest.mark.parametrize("device", ["-1", "x", "1.5"])
def test_a_device_that_is_no_device_id_is_a_usage_error(pytester, device):
    pytester.makepyfile(RUNTIME_ONLY.format(runtimes=simpler.RUNTIMES))
    result = pytester.runpytest(*QUIET, f"--device={device}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"a device id is an integer >= 0, not '{device}'" in result.stderr.str()


def test_the_marker_restricts_a_test_to_its_runtimes(pytester):
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.simpler_runtime("{TMR}")
        def test_marked(simpler_platform, simpler_runtime):
            assert simpler_runtime == "{TMR}"

        def test_unmarked(simpler_platform, simpler_runtime):
            pass
    """)
    passed, skipped, failed = run(pytester, "--platform", "sim")
    assert passed == {f"test_marked[sim-{TMR}]", f"test_unmarked[sim-{HBG}]", f"test_unmarked[sim-{TMR}]"}
    # Its runtime not selected: the test shows as skipped, saying why.
    passed, skipped, failed = run(pytester, "--platform", "sim", "--runtime", HBG)
    assert passed == {f"test_unmarked[sim-{HBG}]"} and skipped == {f"test_marked[sim-{TMR}]"}
    assert not failed


def test_a_bad_marker_is_an_error_naming_the_test(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.simpler_runtime("magic")
        def test_bad(simpler_runtime):
            pass
    """)
    result = pytester.runpytest(*QUIET)
    assert result.ret != pytest.ExitCode.OK
    assert "test_bad: @pytest.mark.simpler_runtime takes runtime names" in result.stdout.str()


def test_a_conftest_that_picks_the_runtime_keeps_it(pytester):
    """As tests/st's suites do: their conftest's runtime, not doubled; a
    --runtime that does not select it skips them."""
    pytester.makeconftest(f"""
        import pytest

        @pytest.fixture
        def simpler_runtime():
            return "{TMR}"
    """)
    pytester.makepyfile(f"""
        import pytest

        def test_c(simpler_platform, simpler_runtime):
            assert simpler_runtime == "{TMR}"

        @pytest.mark.parametrize("simpler_runtime", ["{HBG}"])
        def test_own_parametrize(simpler_platform, simpler_runtime):
            assert simpler_runtime == "{HBG}"
    """)
    passed, skipped, failed = run(pytester, "--platform", "sim")
    assert passed == {"test_c[sim]", f"test_own_parametrize[sim-{HBG}]"} and not skipped and not failed
    passed, skipped, failed = run(pytester, "--platform", "sim", "--runtime", HBG)
    assert passed == {f"test_own_parametrize[sim-{HBG}]"} and skipped == {"test_c[sim]"} and not failed


def test_chip_worker_is_on_the_test_instances_platform_and_runtime(pytester):
    pytester.makepyfile("""
        def test_w(chip_worker, simpler_platform, simpler_runtime, simpler_device):
            assert (chip_worker.platform, chip_worker.runtime, chip_worker.device_id) == \\
                (simpler_platform, simpler_runtime, simpler_device)
            assert chip_worker.usable
    """)
    passed, skipped, failed = run(pytester, "--platform", "sim")
    assert passed == {f"test_w[sim-{r}]" for r in simpler.RUNTIMES} and not failed


def test_private_chip_worker_on_sim_is_its_own_and_finalized(pytester):
    pytester.makepyfile("""
        SEEN = []

        def test_a(private_chip_worker, chip_worker, simpler_runtime):
            assert private_chip_worker is not chip_worker and private_chip_worker.usable
            assert private_chip_worker.runtime == simpler_runtime
            SEEN.append(private_chip_worker)

        def test_b():
            assert SEEN and all(w.closed for w in SEEN)
    """)
    passed, skipped, failed = run(pytester, "--platform", "sim")
    assert passed == {f"test_a[sim-{r}]" for r in simpler.RUNTIMES} | {"test_b"} and not failed


CRASH = """
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) { *(volatile int *)(uintptr_t)args->scalars[0] = 1; }
"""
ORCH_SCALAR = """
#include <simpler/orch.h>
SIMPLER_ORCHESTRATION(orchestrate) {
    return simpler_submit(api, o, 0, SIMPLER_CORE_AIV, NULL, NULL, 0, args->scalars, 1, NULL);
}
"""


def test_a_crash_on_the_private_device_leaves_the_shared_one_alone(pytester):
    if not os.access(Path(simpler.__file__).parent / "simpler-device", os.X_OK):
        pytest.skip("onboard is not installed")
    pytester.makepyfile(f"""
        import os
        from pathlib import Path
        import pytest
        import simpler

        CRASH = {CRASH!r}
        ORCH = {ORCH_SCALAR!r}
        SHARED = {{}}

        def test_a_shared(chip_worker):
            SHARED["pid"] = chip_worker.stats["device_pid"]
            SHARED["dir"] = os.environ.get("SIMPLER_DEVICE_DIR")

        def test_b_private_crashes(private_chip_worker, kernel_compiler):
            w = private_chip_worker
            private_dir = os.environ["SIMPLER_DEVICE_DIR"]
            assert private_dir != SHARED["dir"] and Path(private_dir).is_dir()
            assert w.stats["device_pid"] != SHARED["pid"]
            SHARED["private"] = (private_dir, w.stats["device_pid"])
            k = simpler.CoreCallable(0, "aiv", kernel_compiler.compile_source(CRASH), [], num_scalars=1)
            cid = w.register(simpler.ChipCallable.build(kernel_compiler.compile_source(ORCH), [k], ["scalar"]))
            with pytest.raises(simpler.DeviceLost):
                w.run(cid, [8])

        def test_c_shared_goes_on(chip_worker):
            assert os.environ.get("SIMPLER_DEVICE_DIR") == SHARED["dir"]
            assert chip_worker.usable and chip_worker.stats["device_pid"] == SHARED["pid"]
            private_dir, pid = SHARED["private"]
            assert not Path(private_dir).exists()
            assert not Path(f"/proc/{{pid}}").exists() or "Z" in Path(f"/proc/{{pid}}/stat").read_text().split(")")[-1][:3]
    """)
    passed, skipped, failed = run(pytester, "--platform", "onboard", "--runtime", HBG)
    assert passed == {f"test_a_shared[onboard-{HBG}]", f"test_b_private_crashes[onboard-{HBG}]",
                      f"test_c_shared_goes_on[onboard-{HBG}]"}, failed


SCENE_SUITE = f"""
import sys
import numpy as np
import simpler
sys.path.insert(0, {str(ST)!r})
import scenes

def inputs():
    a = np.arange(100, dtype=np.float32)
    return [a, a * 2, np.zeros_like(a), 1]

def test_add(chip_worker, kernel_compiler):
    simpler.testing.run_scene(chip_worker, scenes.callable_(kernel_compiler, "vector_add"), inputs,
                              lambda a, b, out, blocks: {{golden}})
"""


def test_run_scene_runs_on_every_platform_and_runtime(pytester):
    pytester.makepyfile(SCENE_SUITE.format(golden="a + b"))
    passed, skipped, failed = run(pytester, "--platform", "sim")
    assert passed == {f"test_add[sim-{r}]" for r in simpler.RUNTIMES} and not failed


def test_a_wrong_golden_fails_on_each_naming_the_first_index(pytester):
    pytester.makepyfile(SCENE_SUITE.format(golden="np.where(np.arange(100) == 37, -1, a + b)"))
    result = pytester.runpytest(*QUIET, "--platform", "sim")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    for r in simpler.RUNTIMES:
        assert f"scene inputs on sim/{r}: output argument 2: 1 of 100 elements differ" in out
    assert "first at (37,): 111.0 vs -1.0" in out
