"""KernelCompiler: caching by content, errors, concurrent compiles."""
from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pytest

import simpler

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
