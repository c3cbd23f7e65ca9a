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

# Program -> the sources under test (csrc/common/error.c is always linked).
PROGRAMS = {
    "test_callable": ["csrc/callable/callable.c", "csrc/callable/callable_build.c", "csrc/common/elf_check.c"],
    "test_deps": ["csrc/runtime/dependency_tracker/region.c", "csrc/runtime/dependency_tracker/tracker.c",
                  "csrc/common/addr_map.c", "csrc/common/array.c"],
    "test_gm_heap": ["csrc/common/gm_heap.c", "csrc/common/addr_map.c", "csrc/common/array.c"],
}
COMMON = ["csrc/common/error.c"]

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)


def _run(cmd: list[str], timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", timeout=timeout, env=env)


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_c_unit(program: str, tmp_path: Path) -> None:
    exe = tmp_path / program
    sources = [str(TEST_DIR / f"{program}.c")] + COMMON + PROGRAMS[program]
    build = _run(["cc", *CFLAGS, "-o", str(exe), *sources], timeout=300)
    if build.returncode != 0:
        pytest.fail(f"build of {program} failed:\n{build.stdout}", pytrace=False)

    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1"
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
    for i, src in enumerate(sorted(set(COMMON + sum(PROGRAMS.values(), [])))):
        r = _run(["cc", *CFLAGS, "-c", "-o", str(tmp_path / f"{i}.o"), src], timeout=300)
        if r.returncode != 0:
            failures.append(f"{src}:\n{r.stdout}")
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)
