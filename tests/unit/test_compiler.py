"""KernelCompiler: caching by content, errors, concurrent compiles."""
from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import simpler

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "st"))
import scenes  # noqa: E402  (the scene kernels, shared with the suites)

SOURCE = """
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) { (void)args; }
"""


def test_compile_source_is_cached_on_disk(tmp_path):
    kc = simpler.KernelCompiler(cache_dir=tmp_path)
    so = kc.compile_source(SOURCE)
    assert so[:4] == b"\x7fELF"
    assert (kc.misses, kc.hits) == (1, 0)
    assert kc.compile_source(SOURCE) == so  # memo
    fresh = simpler.KernelCompiler(cache_dir=tmp_path)
    assert fresh.compile_source(SOURCE) == so  # disk cache, no compiler run
    assert (fresh.misses, fresh.hits) == (0, 1)
    assert len(list((tmp_path / "kernels").iterdir())) == 1


def test_defines_and_headers_change_the_key(tmp_path):
    kc = simpler.KernelCompiler(cache_dir=tmp_path)
    source = SOURCE + "#ifdef X\nint x = X;\n#endif\n"
    kc.compile_source(source)
    kc.compile_source(source, defines={"X": 1})
    assert kc.misses == 2
    # Same preprocessed text as the first compile: the same object, no compile.
    kc.compile_source(SOURCE, defines={"UNUSED": 1})
    assert (kc.misses, kc.hits) == (2, 1)
    header = tmp_path / "src" / "h.h"
    header.parent.mkdir()
    header.write_text("#define V 1\n")
    src = tmp_path / "src" / "k.c"
    src.write_text('#include "h.h"\n' + SOURCE)
    kc.compile(src)
    header.write_text("#define V 2\nint v = V;\n")
    kc.compile(src)
    assert kc.misses == 3, "a changed header must change the key"


def test_compile_error_names_the_file_and_line(tmp_path):
    src = tmp_path / "broken.c"
    src.write_text("#include <simpler/kernel.h>\nSIMPLER_KERNEL(kernel) { nope; }\n")
    with pytest.raises(simpler.CompileError, match=r"broken\.c:2"):
        simpler.KernelCompiler(cache_dir=tmp_path / "cache").compile(src)
    assert not list((tmp_path / "cache" / "kernels").glob(".tmp-*"))


def test_implicit_declarations_are_errors(tmp_path):
    with pytest.raises(simpler.CompileError, match="implicit"):
        simpler.KernelCompiler(cache_dir=tmp_path).compile_source(
            "#include <simpler/kernel.h>\nSIMPLER_KERNEL(kernel) { undeclared_fn(); }\n")


def _compile_in_child(cache_dir: str, source: str, barrier, queue) -> None:
    barrier.wait()
    queue.put(simpler.KernelCompiler(cache_dir=cache_dir).compile_source(source))


def test_concurrent_compiles_of_the_same_source(tmp_path):
    source = SOURCE + "/* unique to this test */ int concurrent_marker;\n"
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_compile_in_child, args=(str(tmp_path), source, barrier, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(set(results)) == 1
    files = sorted(os.listdir(tmp_path / "kernels"))
    assert len(files) == 1 and not files[0].startswith(".tmp-"), files


def test_repr_shows_cache_and_counts(tmp_path):
    kc = simpler.KernelCompiler(cache_dir=tmp_path)
    assert str(tmp_path) in repr(kc) and "hits=0" in repr(kc)


def test_cflags_reach_the_preprocessor(tmp_path):
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "extra.h").write_text("#define EXTRA 3\n")
    kc = simpler.KernelCompiler(cflags=[f"-I{inc}"], cache_dir=tmp_path / "cache")
    so = kc.compile_source('#include "extra.h"\n' + SOURCE + "int extra = EXTRA;\n")
    assert so[:4] == b"\x7fELF"


def test_quoted_includes_resolve_beside_the_file_not_the_cwd(tmp_path, monkeypatch):
    src_dir = tmp_path / "src"
    src_dir.mkdir()
    (src_dir / "v.h").write_text("#define VAL 1\n")
    src = src_dir / "k.c"
    src.write_text('#include "v.h"\n' + SOURCE + "int val = VAL;\n")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    (elsewhere / "v.h").write_text("#define VAL 999\n")
    monkeypatch.chdir(elsewhere)
    kc = simpler.KernelCompiler(cache_dir=tmp_path / "cache")
    first = kc.compile(src)
    (src_dir / "v.h").write_text("#define VAL 2\n")
    second = kc.compile(src)
    assert kc.misses == 2 and first != second


def _cc(*args: str) -> None:
    subprocess.run(["cc", *args], check=True, capture_output=True)


def _helper_object(tmp_path: Path, value: int) -> Path:
    """helper.o with helper() returning value, rebuilt in place."""
    src = tmp_path / "helper.c"
    src.write_text(f"int helper(void) {{ return {value}; }}\n")
    _cc("-c", "-fPIC", "-O2", str(src), "-o", str(tmp_path / "helper.o"))
    return tmp_path / "helper.o"


USES_HELPER = SOURCE + "int helper(void);\nint use_helper(void) { return helper(); }\n"


@pytest.mark.parametrize("form", ["object", "archive", "library"])
def test_rebuilt_link_input_changes_the_result(tmp_path, form):
    """An object or archive named in the flags is part of the key: after it
    is rebuilt the kernel is linked again, not taken stale from the cache."""
    obj = _helper_object(tmp_path, 1)
    archive = tmp_path / "libhelper.a"

    def link_input() -> list[str]:
        if form == "object":
            return [str(obj)]
        archive.unlink(missing_ok=True)
        subprocess.run(["ar", "rcs", str(archive), str(obj)], check=True)
        if form == "library":   # found through -L, as the linker would
            return [f"-L{tmp_path}", "-Wl,--whole-archive", "-lhelper", "-Wl,--no-whole-archive"]
        return [f"-Wl,--whole-archive,{archive},--no-whole-archive"]

    flags = link_input()
    first = simpler.KernelCompiler(cflags=flags, cache_dir=tmp_path / "cache").compile_source(USES_HELPER)
    assert simpler.KernelCompiler(cflags=flags, cache_dir=tmp_path / "cache").compile_source(USES_HELPER) == first
    _helper_object(tmp_path, 2)
    flags = link_input()
    kc = simpler.KernelCompiler(cflags=flags, cache_dir=tmp_path / "cache")
    second = kc.compile_source(USES_HELPER)
    assert kc.misses == 1 and second != first
    lib = ctypes.CDLL(str(_write(tmp_path / "second.so", second)))
    assert lib.use_helper() == 2


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_compile_error_in_source_names_it(tmp_path):
    """compile_source's name, not <stdin>, is where the compiler points."""
    bad = "#include <simpler/kernel.h>\n\nSIMPLER_KERNEL(kernel) { (void)args; nope; }\n"
    with pytest.raises(simpler.CompileError, match=r"my_kernel\.c:3:\d+") as e:
        simpler.KernelCompiler(cache_dir=tmp_path).compile_source(bad, name="my_kernel.c")
    assert "<stdin>" not in str(e.value)
    with pytest.raises(simpler.CompileError, match=r'we"ird\\name\.c:3:\d+'):
        simpler.KernelCompiler(cache_dir=tmp_path).compile_source(bad, name='we"ird\\name.c')
    pre = "#include <simpler/kernel.h>\n#error stop here\n"
    with pytest.raises(simpler.CompileError, match=r"(?s)preprocessing cell_7.*cell_7:2:\d+"):
        simpler.KernelCompiler(cache_dir=tmp_path).compile_source(pre, name="cell_7")


def test_debug_info_keeps_line_numbers_in_the_key(tmp_path):
    """With -g, the same code on other lines is another object (its debug
    line table differs); without -g moving code is still a cache hit."""
    moved = "/* a comment */\n\n\n" + SOURCE
    plain = simpler.KernelCompiler(cache_dir=tmp_path)
    plain.compile_source(SOURCE)
    plain.compile_source(moved)
    assert (plain.misses, plain.hits) == (1, 1)
    debug = simpler.KernelCompiler(cflags=["-g"], cache_dir=tmp_path)
    first = debug.compile_source(SOURCE)
    second = debug.compile_source(moved)
    assert (debug.misses, debug.hits) == (2, 0) and first != second
    assert debug.compile_source(moved) == second and debug.hits == 1
    # -g0 turns it off again: back to the key without line markers
    off = simpler.KernelCompiler(cflags=["-g", "-g0"], cache_dir=tmp_path)
    assert not off._debug_info()


def test_kernels_carry_libm(tmp_path):
    """A kernel calling sqrt names libm itself, so it loads in any process."""
    so = simpler.KernelCompiler(cache_dir=tmp_path).compile_source(
        "#include <math.h>\n" + SOURCE + "double root(double x) { return sqrt(x); }\n")
    assert b"libm.so.6" in so


def test_one_binary_under_several_kernels_is_stored_once(chip_worker, kernel_compiler):
    """A callable holding the same kernel binary for several func ids (one
    per signature) stores it once, and each kernel still runs."""
    add = scenes.kernel(kernel_compiler, "add")
    orch = kernel_compiler.compile(scenes.HERE / "orch" / "vector_add.c")
    sig = scenes.SIGNATURES["vector_add"]
    one = simpler.ChipCallable.build(orch, [add], sig)
    kernels = [add] + [simpler.CoreCallable(f, "aiv", add.binary, s, name=f"add{f}")
                       for f, s in ((1, ["in", "in", "out"]), (2, ["in", "in", "inout"]), (3, ["nodep", "in", "out"]))]
    many = simpler.ChipCallable.build(orch, kernels, sig)
    blob = many.to_bytes()
    assert blob.count(add.binary) == 1 and blob.count(b"\x7fELF") == 2     # the orchestration and one kernel
    assert len(many) < len(one) + 3 * (64 + 64)                            # table entries and names only
    before = chip_worker.stats["loaded_objects"]
    cid = chip_worker.register(many)
    try:
        a = np.arange(100, dtype=np.float32)
        out = np.zeros_like(a)
        chip_worker.run(cid, simpler.TaskArgs(a, a, out, 1))
        np.testing.assert_array_equal(out, 2 * a)
    finally:
        chip_worker.unregister(cid)
    assert chip_worker.stats["loaded_objects"] == before


def test_parser_allows_only_identical_shared_binaries(kernel_compiler):
    """Kernels may share one binary range exactly; a range that overlaps
    another's in any other way is still refused."""
    add = scenes.kernel(kernel_compiler, "add")
    orch = kernel_compiler.compile(scenes.HERE / "orch" / "vector_add.c")
    twin = simpler.CoreCallable(1, "aiv", add.binary, ["in", "in", "out"], name="twin")
    blob = bytearray(simpler.ChipCallable.build(orch, [add, twin], scenes.SIGNATURES["vector_add"]).to_bytes())
    kernels_off, = struct.unpack_from("<Q", blob, 40)
    so_off, so_size = struct.unpack_from("<QQ", blob, kernels_off + 16)
    assert struct.unpack_from("<QQ", blob, kernels_off + 64 + 16) == (so_off, so_size)   # shared
    shifted = bytearray(blob)
    struct.pack_into("<Q", shifted, kernels_off + 64 + 16, so_off + 8)
    struct.pack_into("<Q", shifted, kernels_off + 64 + 24, so_size - 8)
    with pytest.raises(simpler.InvalidCallable, match="kernel 0 binary overlaps kernel 1 binary"):
        simpler.ChipCallable.from_bytes(bytes(shifted)).validate()
    shorter = bytearray(blob)
    struct.pack_into("<Q", shorter, kernels_off + 64 + 24, so_size - 8)
    with pytest.raises(simpler.InvalidCallable, match="overlaps"):
        simpler.ChipCallable.from_bytes(bytes(shorter)).validate()
    onto_orch = bytearray(blob)
    orch_off, orch_size = struct.unpack_from("<QQ", blob, 48)
    struct.pack_into("<QQ", onto_orch, kernels_off + 64 + 16, orch_off, orch_size)
    with pytest.raises(simpler.InvalidCallable, match="overlaps"):
        simpler.ChipCallable.from_bytes(bytes(onto_orch)).validate()
