"""Fuzzing, for a bounded time: the driver protocol as a client sends it
(tests/fuzz/fuzz_protocol.c) and the callable parser (fuzz_callable.c).

With clang's libFuzzer installed the targets are coverage-guided;
otherwise they link tests/fuzz/driver.c, a mutation loop over the same
seeds. Either way under ASan + UBSan. Every file in
tests/fuzz/regressions/<target>/ (inputs that once failed) runs first.
SIMPLER_FUZZ_SECONDS sets the time per target (default 10).
"""
from __future__ import annotations

import os
import runpy
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

import simpler
from simpler import _cflags

REPO = Path(__file__).resolve().parents[2]
FUZZ = REPO / "tests" / "fuzz"
SECONDS = float(os.environ.get("SIMPLER_FUZZ_SECONDS", "10"))
DEVICE_SOURCES = [s for s in runpy.run_path(str(REPO / "simpler" / "_build_ffi.py"))["DEVICE_PROGRAMS"]
                  ["simpler-device"] if not s.endswith("device/main.c")]
TARGETS = {
    "protocol": DEVICE_SOURCES,
    "callable": ["csrc/callable/callable.c", "csrc/common/elf_check.c", "csrc/common/error.c"],
}
FLAGS = _cflags.LANGUAGE + _cflags.DEBUG + ["-fno-sanitize-recover=all"] + [f"-I{d}" for d in _cflags.INCLUDE_DIRS]


def libfuzzer_available(tmp: Path) -> bool:
    if not shutil.which("clang"):
        return False
    probe = tmp / "probe.c"
    probe.write_text("#include <stdint.h>\n#include <stddef.h>\n"
                     "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n")
    r = subprocess.run(["clang", "-fsanitize=fuzzer", str(probe), "-o", str(tmp / "probe")], capture_output=True)
    return r.returncode == 0


def protocol_seeds() -> list[bytes]:
    def msg(mtype: int, payload: bytes = b"", seq: int = 1) -> bytes:
        return struct.pack("<IHHII", 0x4C504D53, 1, mtype, seq, len(payload)) + payload

    hello = msg(1, struct.pack("<QQII", 0, 0, 1, 0))
    alloc = msg(2, struct.pack("<QQ", 0, 4096), 2)
    return [
        hello,
        hello + alloc + msg(11, b"", 3) + msg(3, struct.pack("<QQ", 0, 0), 4),
        hello + msg(4, struct.pack("<QQ", 1, 0), 2) + msg(5, struct.pack("<QQ", 0x2F0B3D8F21234567, 3) + b"abc", 3),
        hello + alloc + msg(6, struct.pack("<QQ", 0, 64), 3) + msg(8, struct.pack("<QQ", 0, 64), 4),
        hello + msg(10, bytes(56), 2) + msg(7, bytes(8), 3) + msg(9, bytes(8), 4) + msg(12, bytes(8), 5),
        msg(11) + msg(1, b"x", 2),
    ]


def callable_seeds() -> list[bytes]:
    kc = simpler.KernelCompiler()
    k = simpler.CoreCallable(3, "aiv", kc.compile_source(
        "#include <simpler/kernel.h>\nSIMPLER_KERNEL(kernel) { (void)args; }\n"), ["in", "out"], num_scalars=1)
    orch = kc.compile_source("#include <simpler/orch.h>\n"
                             "SIMPLER_ORCHESTRATION(orchestrate) { (void)api; (void)o; (void)args; return 0; }\n")
    blob = simpler.ChipCallable.build(orch, [k], [("in", "float32"), ("out", "float32"), "scalar"]).to_bytes()
    return [blob, blob[:80], blob[:200]]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz(target: str, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for i, data in enumerate(protocol_seeds() if target == "protocol" else callable_seeds()):
        (seeds / f"seed{i}").write_bytes(data)
    regressions = FUZZ / "regressions" / target
    exe = tmp_path / f"fuzz_{target}"
    sources = [str(FUZZ / f"fuzz_{target}.c")] + TARGETS[target]
    if libfuzzer_available(tmp_path):
        cmd = ["clang", *FLAGS, "-fsanitize=fuzzer,address,undefined"]
        corpus = tmp_path / "corpus"    # libFuzzer writes new inputs into the first directory
        corpus.mkdir()
        dirs = [corpus, seeds]
    else:
        cmd = ["cc", *FLAGS, "-fsanitize=address,undefined"]
        sources.append(str(FUZZ / "driver.c"))
        dirs = [seeds]
    if regressions.is_dir():    # inputs that once failed go first (libFuzzer: after the corpus it grows)
        dirs.insert(0 if len(dirs) == 1 else 1, regressions)
    build = subprocess.run([*cmd, "-o", str(exe), *sources, "-ldl"], cwd=REPO, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="print_stacktrace=1")
    run = subprocess.run([str(exe), f"-max_total_time={SECONDS:g}", "-seed=1", f"-artifact_prefix={tmp_path}/",
                          *map(str, dirs)], cwd=tmp_path, capture_output=True, text=True, errors="replace",
                         env=env, timeout=SECONDS * 6 + 120)
    tail = run.stderr[-6000:]
    assert run.returncode == 0, (f"fuzz_{target} failed; copy the input it names into {regressions} "
                                 f"as a regression test once fixed:\n{tail}")
    assert "Done" in tail, tail
