"""Building and running the C test programs that link the device code
(AICPU runtime and AICore executor) directly, under the sanitizers.

A program prints "N passed, M failed" as its last line and exits non-zero
on failure; a sanitizer report fails the test, and a data race is never
suppressed."""
from __future__ import annotations

import os
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest

from simpler import _cflags

ROOT = Path(__file__).resolve().parents[2]
DEVICE_SOURCES = [src for sources in runpy.run_path(str(ROOT / "simpler" / "_build_ffi.py"))["DEVICE_LIBS"].values()
                  for src in sources]
CFLAGS = _cflags.CHECKED + [f"-I{ROOT / d}" for d in _cflags.INCLUDE_DIRS]
TIMEOUT_S = 300
SANITIZERS = {
    "thread": (["-fsanitize=thread"], {"TSAN_OPTIONS": "halt_on_error=1 second_deadlock_stack=1"},
               "WARNING: ThreadSanitizer"),
    "address": (["-fsanitize=address,undefined", "-fno-sanitize-recover=all"],
                {"ASAN_OPTIONS": "abort_on_error=0 detect_stack_use_after_return=1",
                 "UBSAN_OPTIONS": "print_stacktrace=1"}, "ERROR: AddressSanitizer"),
}


def _show(what: str, proc) -> str:
    return f"{what} exited {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def build(tmp_path: Path, test_source: str, sanitizer: str, defines: tuple[str, ...] = ()) -> Path:
    cc = shutil.which("cc")
    if not cc:
        pytest.skip("no system C compiler (cc)")
    flags = [*SANITIZERS[sanitizer][0], *(f"-D{d}" for d in defines)]
    exe = tmp_path / f"{Path(test_source).stem}_{sanitizer}"
    cmd = [cc, *CFLAGS, *flags, str(ROOT / test_source), *(str(ROOT / s) for s in DEVICE_SOURCES), "-o", str(exe)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, _show(" ".join(cmd), proc)
    return exe


def run_checked(tmp_path: Path, test_source: str, sanitizer: str, args: list[str] = (),
                defines: tuple[str, ...] = ()) -> None:
    """Build test_source with the device sources under a sanitizer (and
    these -D defines), run it, and fail on a failed check, a non-zero exit
    or any sanitizer report."""
    exe = build(tmp_path, test_source, sanitizer, defines)
    _, env_extra, marker = SANITIZERS[sanitizer]
    try:
        proc = subprocess.run([str(exe), *args], cwd=ROOT, env=dict(os.environ, **env_extra), capture_output=True,
                              text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{exe.name} did not finish in {TIMEOUT_S} s\n{e.stdout!r}\n{e.stderr!r}")
    if sanitizer == "thread" and "unexpected memory mapping" in proc.stderr:
        pytest.skip("ThreadSanitizer cannot run with this kernel's address-space layout (vm.mmap_rnd_bits)")
    lines = proc.stdout.strip().splitlines()
    if (marker in proc.stderr or "runtime error:" in proc.stderr or proc.returncode != 0 or not lines
            or not lines[-1].endswith(" passed, 0 failed")):
        pytest.fail(_show(exe.name, proc), pytrace=False)
