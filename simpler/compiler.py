"""KernelCompiler: C kernels and orchestrations to shared objects, cached.

The system C compiler builds each source once: results are kept in a user
cache directory under the hash of the preprocessed source, the flags, the
contents of every file the flags name (archives and objects to link) and
the compiler's identity, so a notebook cell or a pytest-xdist worker never
compiles the same code twice. With debug info on (-g) the preprocessed text
keeps its line markers, so moving code to other lines recompiles it and the
debug line numbers stay true. Several processes compiling the same source
at once each write a private temporary file and rename it into place, so a
reader never sees a torn file.

Objects link libm, so a kernel calling sqrt carries its own NEEDED entry
and loads the same in any process.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence, Union

from . import _cflags, _native
from .errors import SimplerError

log = logging.getLogger("simpler")

PathLike = Union[str, os.PathLike]

DEFAULT_CFLAGS = tuple(_cflags.KERNEL)

# Libraries every object links (after its source, where the linker wants them).
LINK_LIBS = ("-lm",)


class CompileError(SimplerError):
    """The C compiler rejected a kernel or orchestration source."""


def default_cache_dir() -> Path:
    env = os.environ.get("SIMPLER_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "simpler"


class KernelCompiler:
    """Compiles C sources against simpler's headers into shared objects.

    >>> kc = KernelCompiler()
    >>> so = kc.compile("kernels/add.c")            # a file
    >>> so = kc.compile_source("SIMPLER_KERNEL(kernel) { ... }")  # a string
    """

    def __init__(self, cc: str | None = None, cflags: Sequence[str] = (),
                 cache_dir: PathLike | None = None) -> None:
        self.cc = cc or os.environ.get("CC") or shutil.which("cc") or "gcc"
        self.cflags = tuple(DEFAULT_CFLAGS) + tuple(cflags)
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.hits = 0
        self.misses = 0
        self._identity: str | None = None
        self._memo: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"KernelCompiler(cc={self.cc!r}, cache_dir='{self.cache_dir}', "
                f"hits={self.hits}, misses={self.misses})")

    def compile(self, path: PathLike, *, defines: dict[str, object] | None = None) -> bytes:
        """Compile a C file; its directory is on the include path."""
        path = Path(path)
        return self._build(path.read_text(), str(path), [f"-I{path.parent.resolve()}"], defines, path)

    def compile_source(self, source: str, *, name: str = "<source>",
                       defines: dict[str, object] | None = None) -> bytes:
        """Compile C source text, e.g. a notebook cell."""
        return self._build(source, name, [], defines)

    def compiler_identity(self) -> str:
        if self._identity is None:
            try:
                out = subprocess.run([self.cc, "--version"], capture_output=True, text=True, check=True)
            except (OSError, subprocess.CalledProcessError) as e:
                raise CompileError(f"C compiler {self.cc!r} is not usable: {e}") from None
            self._identity = out.stdout.splitlines()[0] if out.stdout else self.cc
        return self._identity

    def _flags(self, extra: list[str], defines: dict[str, object] | None) -> list[str]:
        flags = [f"-I{_native.include_dir()}", *extra]
        for k, v in sorted((defines or {}).items()):
            flags.append(f"-D{k}" if v is None else f"-D{k}={v}")
        return flags

    def _debug_info(self) -> bool:
        """Whether the flags ask for debug info (the last -g* flag wins)."""
        level = None
        for f in self.cflags:
            if f.startswith("-g") and not f.startswith("-gno-"):
                level = f
        return level is not None and level != "-g0"

    def _link_inputs(self) -> list[Path]:
        """Files the flags name for the linker: archives, objects, libraries
        found in -L directories (system libraries are the compiler's)."""
        files, lib_dirs, names, args = [], [], [], list(self.cflags)
        for i, f in enumerate(args):
            if f == "-L" and i + 1 < len(args):
                lib_dirs.append(args[i + 1])
            elif f.startswith("-L") and len(f) > 2:
                lib_dirs.append(f[2:])
        for f in args:
            if f.startswith("-Wl,"):
                # linker arguments: paths, or --script=path and the like
                for part in f[4:].split(","):
                    files += [part, part.partition("=")[2]]
            elif f.startswith("-l") and len(f) > 2:
                names.append(f[2:])
            elif not f.startswith("-"):
                files.append(f)
        for n in names:     # -lfoo: libfoo.so or libfoo.a; -l:name: that file
            candidates = [n[1:]] if n.startswith(":") else [f"lib{n}.so", f"lib{n}.a"]
            files += [os.path.join(d, c) for d in lib_dirs for c in candidates]
        return [Path(f) for f in files if f and os.path.isfile(f)]

    def _build(self, source: str, name: str, extra: list[str], defines: dict[str, object] | None,
               path: Path | None = None) -> bytes:
        flags = self._flags(extra, defines)
        if path is None:
            # Diagnostics and debug info name the source as the caller did,
            # not <stdin>.
            escaped = name.replace("\\", "\\\\").replace('"', '\\"')
            source = f'#line 1 "{escaped}"\n{source}'
        # The key covers what the compiler will see: the preprocessed text
        # (so included headers count), the flags, every file the flags name
        # and the compiler itself. Preprocessing runs every time; only
        # compiling is skipped. Preprocess exactly as the compile will read:
        # same flags, and a file by its path so its quoted includes resolve
        # beside it. Line markers stay in when debug info records lines.
        src = [str(path)] if path else ["-x", "c", "-"]
        pre_flags = [f for f in self.cflags if f != "-shared"]
        markers = [] if self._debug_info() else ["-P"]
        pre = self._run([self.cc, *pre_flags, *flags, "-E", *markers, *src], source, name, "preprocessing")
        parts = [self.compiler_identity(), " ".join(self.cflags), " ".join(LINK_LIBS), pre]
        if self._debug_info():
            parts.append(os.getcwd())   # debug info records the compile directory
        for f in self._link_inputs():
            parts += [str(f.resolve()), hashlib.sha256(f.read_bytes()).hexdigest()]
        key = hashlib.sha256("\0".join(parts).encode())
        digest = key.hexdigest()[:32]
        with self._lock:
            data = self._memo.get(digest)
        target = self.cache_dir / "kernels" / f"{digest}.so"
        if data is None and target.is_file():
            data = target.read_bytes()
        if data is not None:
            log.debug("%s: compiled already (%s)", name, target)
            with self._lock:
                self.hits += 1
        else:
            data = self._compile_to(target, source, name, flags, path)
            with self._lock:
                self.misses += 1
        with self._lock:
            self._memo[digest] = data
        return data

    def _compile_to(self, target: Path, source: str, name: str, flags: list[str],
                    path: Path | None) -> bytes:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".so", dir=target.parent)
        os.close(fd)
        try:
            # A file is compiled by name so diagnostics point into it.
            src = [str(path)] if path else ["-x", "c", "-"]
            log.info("compiling %s with %s", name, self.cc)
            start = time.monotonic()
            self._run([self.cc, *self.cflags, *flags, *src, *LINK_LIBS, "-o", tmp], source, name, "compiling")
            data = Path(tmp).read_bytes()
            os.replace(tmp, target)  # atomic: concurrent compilers all write whole files
            log.info("compiled %s in %.2f s: %d bytes, cached as %s", name, time.monotonic() - start, len(data),
                     target)
            return data
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _run(self, cmd: list[str], source: str, name: str, what: str) -> str:
        try:
            out = subprocess.run(cmd, input=source, capture_output=True, text=True)
        except OSError as e:
            raise CompileError(f"{what} {name}: cannot run {cmd[0]!r}: {e}") from None
        if out.returncode != 0:
            raise CompileError(f"{what} {name} failed:\n{out.stderr.strip()}")
        return out.stdout
