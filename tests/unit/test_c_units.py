"""C unit tests (tests/unit/c), built and run under ASan + UBSan + LSan.

Each program links the C sources it tests, prints failing CHECKs to stderr
and ends with "N passed, M failed"; it exits non-zero on any failure or
sanitizer report.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from simpler import _cflags

REPO = Path(__file__).resolve().parents[2]
TEST_DIR = REPO / "tests" / "unit" / "c"

CFLAGS = _cflags.CHECKED + ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"] + [
    f"-I{d}" for d in _cflags.INCLUDE_DIRS]

# Program -> the sources under test (csrc/common/error.c is always linked),
# and the defines it is built with ("program:variant" builds program.c).
ORCH_THREAD = ["csrc/runtime/host_build_graph/host/orchestration_thread.c"]
PROGRAMS = {
    "test_callable": ["csrc/callable/callable.c", "csrc/callable/callable_build.c", "csrc/common/elf_check.c"],
    "test_deps": ["csrc/runtime/dependency_tracker/region.c", "csrc/runtime/dependency_tracker/tracker.c",
                  "csrc/common/addr_map.c", "csrc/common/array.c"],
    "test_gm_heap": ["csrc/common/gm_heap.c", "csrc/common/addr_map.c", "csrc/common/array.c"],
    "test_orch_thread": ORCH_THREAD,
    # every stop of a job inside a call ended by the waiter's second look
    "test_orch_thread:missed_leave": ORCH_THREAD + ["-DHBG_ORCH_TEST_MISSED_LEAVE"],
}
COMMON = ["csrc/common/error.c"]
# A thread ended by cancellation or pthread_exit unwinds past ASan's view
# of its stack, and ASan's own sigaltstack call at the thread's end then
# reads that stack as overflowed (GCC 12's libsanitizer).
ASAN_EXTRA = {"test_orch_thread": ":use_sigaltstack=0"}

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)


def _run(cmd: list[str], timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", timeout=timeout, env=env)


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_c_unit(program: str, tmp_path: Path) -> None:
    exe = tmp_path / program.replace(":", "_")
    sources = [str(TEST_DIR / f"{program.split(':')[0]}.c")] + COMMON + PROGRAMS[program]
    build = _run(["cc", *CFLAGS, "-o", str(exe), *sources], timeout=300)
    if build.returncode != 0:
        pytest.fail(f"build of {program} failed:\n{build.stdout}", pytrace=False)

    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1" + ASAN_EXTRA.get(program.split(":")[0], "")
    env["UBSAN_OPTIONS"] = "print_stacktrace=1"
    result = _run([str(exe)], timeout=600, env=env)
    out = result.stdout
    summary = SUMMARY.findall(out)
    if result.returncode != 0 or not summary or summary[-1][1] != "0":
        pytest.fail(f"{program} exited with {result.returncode}:\n{out}", pytrace=False)
    assert int(summary[-1][0]) > 0, f"{program} checked nothing:\n{out}"


def test_sources_compile_warning_free(tmp_path: Path) -> None:
    """Every source under test builds with the test flags, -Werror included."""
    failures = []
    for i, src in enumerate(sorted({s for s in COMMON + sum(PROGRAMS.values(), []) if not s.startswith("-")})):
        r = _run(["cc", *CFLAGS, "-c", "-o", str(tmp_path / f"{i}.o"), src], timeout=300)
        if r.returncode != 0:
            failures.append(f"{src}:\n{r.stdout}")
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)
