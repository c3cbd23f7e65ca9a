"""The tensormap_and_ringbuffer runtime's device side under the sanitizers,
without Python in the loop: tests/unit/c/test_tmr.c runs the orchestrator
thread and the scheduler threads (csrc/aicpu) and the AICore executor
(csrc/aicore) with threads of its own, an orchestration function and
kernels of its own, and run blocks laid out like
runtime/tensormap_and_ringbuffer/host.c lays them out in GM. It is built
here once with ThreadSanitizer and once with AddressSanitizer + UBSan.

Cases (each for aicpu_thread_num, block_dim in (1, 1), (2, 2), (3, 1)):
a 3,000-task INOUT chain through a 64-slot task ring, the same chain through
2 slots, interleaved chains, a streaming loop of scopes with runtime-
allocated OUTPUTs through small rings, write-after-read ordering, a scope
deadlock on the task ring and an OUTPUT larger than the heap ring.

A data race ThreadSanitizer finds in the runtime fails the test; it is not
suppressed. Races between scheduler threads need the right interleaving,
so the ThreadSanitizer build runs the whole list several times.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    "tests/unit/c/test_tmr.c",
    "csrc/aicpu/aicpu_main.c",
    "csrc/aicpu/sched_loop.c",
    "csrc/aicpu/hbg_scheduler.c",
    "csrc/aicpu/tmr_scheduler.c",
    "csrc/aicpu/tmr_orchestrator.c",
    "csrc/common/error.c",
    "csrc/common/so_load.c",
    "csrc/common/addr_map.c",
    "csrc/runtime/deps/region.c",
    "csrc/runtime/deps/tracker.c",
    "csrc/runtime/task_check.c",
    "csrc/aicore/executor.c",
]
CFLAGS = [
    "-std=c11", "-D_GNU_SOURCE", "-g", "-O1",
    "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror",
    "-pthread",
    "-I", str(ROOT / "csrc" / "include"),
    "-I", str(ROOT / "csrc"),
]
RUN_TIMEOUT_S = 240
# argv: scale (percent of the default sizes), rounds of the whole case list.
TSAN_ARGS = ["100", "3"]
ASAN_ARGS = ["100", "1"]


def _show(what: str, proc: subprocess.CompletedProcess) -> str:
    return f"{what} exited {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def _build(tmp_path: Path, name: str, sanitize: list[str]) -> Path:
    cc = shutil.which("cc")
    if not cc:
        pytest.skip("no system C compiler (cc)")
    exe = tmp_path / name
    cmd = [cc, *CFLAGS, *sanitize, *(str(ROOT / s) for s in SOURCES), "-o", str(exe)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    if proc.returncode != 0 and ("cannot find -ltsan" in proc.stderr or "cannot find -lasan" in proc.stderr
                                 or "cannot find -lubsan" in proc.stderr):
        pytest.skip(f"sanitizer runtime not installed: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, _show(" ".join(cmd), proc)
    return exe


def _run(exe: Path, args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, **env_extra)
    try:
        return subprocess.run([str(exe), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        pytest.fail(f"{exe.name} did not finish in {RUN_TIMEOUT_S} s\n--- stdout ---\n{out}\n--- stderr ---\n{err}")


def _check(exe: Path, proc: subprocess.CompletedProcess, sanitizer_marker: str) -> None:
    lines = proc.stdout.strip().splitlines()
    if (sanitizer_marker in proc.stderr or proc.returncode != 0 or "0 failed" not in proc.stdout
            or not lines or not lines[-1].endswith(" passed, 0 failed")):
        pytest.fail(_show(exe.name, proc), pytrace=False)


def test_tmr_under_thread_sanitizer(tmp_path: Path) -> None:
    exe = _build(tmp_path, "test_tmr_tsan", ["-fsanitize=thread"])
    proc = _run(exe, TSAN_ARGS, {"TSAN_OPTIONS": "halt_on_error=1 second_deadlock_stack=1"})
    if "unexpected memory mapping" in proc.stderr:
        pytest.skip("ThreadSanitizer cannot run with this kernel's address-space layout "
                    "(vm.mmap_rnd_bits too high)")
    _check(exe, proc, "WARNING: ThreadSanitizer")


def test_tmr_under_address_sanitizer(tmp_path: Path) -> None:
    exe = _build(tmp_path, "test_tmr_asan",
                 ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
    proc = _run(exe, ASAN_ARGS, {"ASAN_OPTIONS": "abort_on_error=0 detect_stack_use_after_return=1",
                                 "UBSAN_OPTIONS": "print_stacktrace=1"})
    _check(exe, proc, "ERROR: AddressSanitizer")
    if "runtime error:" in proc.stderr:
        pytest.fail(_show(exe.name, proc), pytrace=False)
