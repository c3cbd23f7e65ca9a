"""Bad input, shared by the runtime suites: each mistake gives its typed
exception with a useful message, and the worker keeps working after it."""
from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest

import scenes
import simpler

F32 = np.float32


def assert_still_works(worker, kernel_compiler):
    """A vector add on the same worker after the failure."""
    cid = worker.register(scenes.callable_(kernel_compiler, "vector_add"))
    try:
        a = np.arange(100, dtype=F32)
        out = np.zeros_like(a)
        worker.run(cid, simpler.TaskArgs(a, a, out, 1))
        np.testing.assert_array_equal(out, 2 * a)
    finally:
        worker.unregister(cid)


def test_wrong_argument_count(chip_worker, scene, kernel_compiler):
    cid = scene("vector_add")
    a = np.zeros(4, F32)
    with pytest.raises(simpler.InvalidArgument, match="takes 4 arguments, got 3"):
        chip_worker.run(cid, simpler.TaskArgs(a, a, a))
    assert_still_works(chip_worker, kernel_compiler)


def test_dtype_mismatch(chip_worker, scene, kernel_compiler):
    cid = scene("vector_add")
    a = np.zeros(4, F32)
    with pytest.raises(simpler.InvalidArgument, match="argument 1: dtype float64 does not match the signature's float32"):
        chip_worker.run(cid, simpler.TaskArgs(a, np.zeros(4, np.float64), a, 1))
    assert_still_works(chip_worker, kernel_compiler)


def test_scalar_where_tensor_expected(chip_worker, scene, kernel_compiler):
    cid = scene("vector_add")
    a = np.zeros(4, F32)
    with pytest.raises(simpler.InvalidArgument, match="argument 2 is a tensor \\('out'\\)"):
        chip_worker.run(cid, simpler.TaskArgs(a, a, 3.0, 1))
    with pytest.raises(simpler.InvalidArgument, match="argument 3: the signature expects a scalar"):
        chip_worker.run(cid, simpler.TaskArgs(a, a, a, a))
    assert_still_works(chip_worker, kernel_compiler)


def test_python_object_where_tensor_expected(chip_worker, scene, kernel_compiler):
    cid = scene("vector_add")
    a = np.zeros(4, F32)
    with pytest.raises(simpler.InvalidArgument, match="argument 0 is a tensor .* numpy array .* not list"):
        chip_worker.run(cid, simpler.TaskArgs([1.0, 2.0, 3.0, 4.0], a, a, 1))
    with pytest.raises(simpler.InvalidArgument, match="argument 3: scalar argument must be a number"):
        chip_worker.run(cid, simpler.TaskArgs(a, a, a, None))
    assert_still_works(chip_worker, kernel_compiler)


def test_shape_mismatch(chip_worker, scene, kernel_compiler):
    cid = scene("vector_add")
    out = np.zeros(4, F32)
    with pytest.raises(simpler.OrchestrationError, match="same shape"):
        chip_worker.run(cid, simpler.TaskArgs(np.zeros(5, F32), np.zeros(4, F32), out, 1))
    assert_still_works(chip_worker, kernel_compiler)


@pytest.mark.parametrize("case, message", [
    (0, "lies outside its tensor"),
    (1, "takes 1 tensors and 1 scalars, the task passes 2 and 1"),
    (2, "runs on AIV, but the task asks for AIC"),
    (3, "no kernel with func_id 999"),
    (4, "scope"),
    (5, "not submitted before it"),
    (6, "returned 42"),
    (7, "neither a run argument nor an earlier OUTPUT"),
    (9, "explicit dependency on task 2147483647, which was not submitted before it"),
])
def test_orchestration_mistakes(chip_worker, scene, kernel_compiler, case, message):
    cid = scene("misuse")
    x = np.zeros(16, F32)
    with pytest.raises(simpler.OrchestrationError, match=message):
        chip_worker.run(cid, simpler.TaskArgs(x, case))
    if case != 9:  # case 9 submits one good task first
        np.testing.assert_array_equal(x, 0)  # nothing ran
    assert_still_works(chip_worker, kernel_compiler)


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:100], "truncated"),
    (lambda b: b"XXXXXXXX" + b[8:], "bad magic"),
    (lambda b: b[:8] + (99).to_bytes(4, "little") + b[12:], "version 99"),
    (lambda b: b[:28] + (10**9).to_bytes(4, "little") + b[32:], "exceed the limit"),
    (lambda b: b[:48] + (len(b) - 8).to_bytes(8, "little") + b[56:], "outside the blob"),
    (lambda b: b[:48] + (80).to_bytes(8, "little") + b[56:], "overlaps"),
    (lambda b: b"", "shorter than"),
])
def test_malformed_blob(chip_worker, scene, kernel_compiler, mutate, message):
    blob = scenes.callable_(kernel_compiler, "vector_add").to_bytes()
    bad = simpler.ChipCallable.from_bytes(mutate(blob))
    with pytest.raises(simpler.InvalidCallable, match=message):
        chip_worker.register(bad)
    assert chip_worker.callables == {}
    assert_still_works(chip_worker, kernel_compiler)


def test_kernel_that_is_not_a_shared_object(chip_worker, kernel_compiler):
    k = simpler.CoreCallable(0, "aiv", b"\x7fELF" + b"\0" * 200, ["in"], name="bogus")
    orch = kernel_compiler.compile(scenes.HERE / "orch" / "vector_add.c")
    with pytest.raises(simpler.InvalidCallable, match=r"kernel 0 \(func 0\): ELF class 0 is not 64-bit"):
        simpler.ChipCallable.build(orch, [k], ["in"])
    assert_still_works(chip_worker, kernel_compiler)


def _object_of(blob: bytes, kernel: int | None) -> tuple[int, int, int]:
    """(where the size field is, offset, size) of a kernel's object, or the
    orchestration's when kernel is None."""
    if kernel is None:
        off, size = struct.unpack_from("<QQ", blob, 48)
        return 56, off, size
    entry = struct.unpack_from("<Q", blob, 40)[0] + 64 * kernel
    off, size = struct.unpack_from("<QQ", blob, entry + 16)
    return entry + 24, off, size


def _edit_object(blob: bytes, kernel: int | None, edit) -> bytes:
    """The blob with one object edited in place (edit(bytearray) -> None)."""
    _, off, size = _object_of(blob, kernel)
    b = bytearray(blob)
    obj = bytearray(b[off:off + size])
    edit(obj)
    b[off:off + size] = obj
    return bytes(b)


def _shrink_object(blob: bytes, kernel: int | None, size: int) -> bytes:
    """The blob with the object's size field cut to size: a truncated object."""
    field, _, _ = _object_of(blob, kernel)
    return blob[:field] + struct.pack("<Q", size) + blob[field + 8:]


def _phdr(obj: bytearray, ptype: int) -> int:
    """Offset of the first program header of ptype."""
    phoff, = struct.unpack_from("<Q", obj, 32)
    phnum, = struct.unpack_from("<H", obj, 56)
    for i in range(phnum):
        if struct.unpack_from("<I", obj, phoff + 56 * i)[0] == ptype:
            return phoff + 56 * i
    raise AssertionError(f"no program header of type {ptype}")


def _last_load(obj: bytearray) -> int:
    phoff, = struct.unpack_from("<Q", obj, 32)
    phnum, = struct.unpack_from("<H", obj, 56)
    return max(phoff + 56 * i for i in range(phnum) if struct.unpack_from("<I", obj, phoff + 56 * i)[0] == 1)


def _set(fmt: str, at, value):
    return lambda obj: struct.pack_into(fmt, obj, at(obj) if callable(at) else at, value)


# (what is damaged, kernel index or None for the orchestration, blob -> damaged blob, message)
BROKEN_OBJECTS = [
    ("truncated kernel", 0, lambda b: _shrink_object(b, 0, _object_of(b, 0)[2] // 2),
     r"kernel 0 \(func 0\): ELF (program header \d+: segment extends past|section header table)"),
    ("truncated orchestration", None, lambda b: _shrink_object(b, None, 4096),
     r"orchestration: ELF .*extends past the object's 4096 bytes"),
    ("program headers beyond the end", 1, lambda b: _edit_object(b, 1, _set("<Q", 32, 1 << 40)),
     r"kernel 1 \(func 1\): ELF program header table .* extends past"),
    ("segment beyond the end", 2, lambda b: _edit_object(b, 2, _set("<Q", lambda o: _last_load(o) + 32, 1 << 20)),
     r"kernel 2 \(func 2\): ELF program header \d+: segment extends past the object's \d+ bytes"),
    ("file size over memory size", 3, lambda b: _edit_object(
        b, 3, _set("<Q", lambda o: _last_load(o) + 40, 0)),
     r"kernel 3 \(func 3\): ELF program header \d+: file size \d+ exceeds memory size 0"),
    ("section headers beyond the end", 0, lambda b: _edit_object(b, 0, _set("<Q", 40, 1 << 33)),
     r"ELF section header table .* extends past"),
    ("section beyond the end", 0, lambda b: _edit_object(b, 0, _set(
        "<Q", lambda o: struct.unpack_from("<Q", o, 40)[0] + 64 * 2 + 24, 1 << 30)),
     r"ELF section header 2: section .* extends past"),
    ("dynamic table outside its segment", 4, lambda b: _edit_object(
        b, 4, _set("<Q", lambda o: _phdr(o, 2) + 16, 1 << 36)),
     r"kernel 4 \(func 4\): ELF program header \d+: segment .* lies outside every loaded segment"),
    ("another machine", 0, lambda b: _edit_object(b, 0, _set("<H", 18, 183)), r"ELF machine 183 is not this host's"),
    ("an executable", 0, lambda b: _edit_object(b, 0, _set("<H", 16, 2)), r"ELF type 2 is not a shared object"),
]


@pytest.mark.parametrize("what, kernel, damage, message", BROKEN_OBJECTS, ids=[c[0] for c in BROKEN_OBJECTS])
def test_broken_shared_object(chip_worker, kernel_compiler, tmp_path, monkeypatch, what, kernel, damage, message):
    """A truncated or edited object inside a valid blob is refused before
    anything loads it (a crash in the loader would take down the process
    or the device), and leaves no file behind."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))     # where so_load wrote its files on sim
    tmp = Path(tempfile.gettempdir())
    before = set(tmp.glob("simpler-so-*"))
    blob = scenes.callable_(kernel_compiler, "vector_add").to_bytes()
    bad = simpler.ChipCallable.from_bytes(damage(blob))
    with pytest.raises(simpler.InvalidCallable, match=message):
        chip_worker.register(bad)
    assert chip_worker.usable and chip_worker.callables == {}
    assert_still_works(chip_worker, kernel_compiler)
    assert not list(tmp_path.glob("simpler-so-*"))
    assert set(tmp.glob("simpler-so-*")) <= before


def test_missing_kernel_entry_symbol(chip_worker, kernel_compiler):
    binary = kernel_compiler.compile(scenes.HERE / "kernels" / "add.c")
    k = simpler.CoreCallable(0, "aiv", binary, ["in", "in", "out"], entry="no_such_function", name="add")
    orch = kernel_compiler.compile(scenes.HERE / "orch" / "vector_add.c")
    with pytest.raises(simpler.InvalidCallable, match="no symbol 'no_such_function'"):
        chip_worker.register(simpler.ChipCallable.build(orch, [k], ["in", "in", "out", "scalar"]))
    assert_still_works(chip_worker, kernel_compiler)


def test_register_twice(chip_worker, scene, kernel_compiler):
    callable_ = scenes.callable_(kernel_compiler, "vector_add")
    cid = scene("vector_add")
    with pytest.raises(simpler.AlreadyRegistered, match=f"callable id {cid} is already registered"):
        chip_worker.register(callable_, callable_id=cid)
    assert_still_works(chip_worker, kernel_compiler)


def test_run_after_unregister(chip_worker, kernel_compiler):
    reg = chip_worker.register(scenes.callable_(kernel_compiler, "vector_add"))
    cid = int(reg)      # the int form: the C core says it is not registered
    chip_worker.unregister(cid)
    a = np.zeros(4, F32)
    with pytest.raises(simpler.NotRegistered, match=f"callable id {cid} is not registered"):
        chip_worker.run(cid, simpler.TaskArgs(a, a, a, 1))
    with pytest.raises(simpler.NotRegistered):
        chip_worker.unregister(cid)
    # the Registration knows it was unregistered (through the int form too)
    for use in (lambda: reg.run([a, a, a, 1]), reg.unregister, lambda: chip_worker.run(reg, [a, a, a, 1]),
                lambda: int(reg)):
        with pytest.raises(simpler.InvalidState, match=f"registration {cid} was unregistered"):
            use()
    assert_still_works(chip_worker, kernel_compiler)


def test_graph_over_capacity(chip_worker, scene, kernel_compiler, simpler_runtime):
    if simpler_runtime != "host_build_graph":
        pytest.skip("a graph capacity is host_build_graph's limit; tensormap_and_ringbuffer streams")
    cid = scene("chains")
    X = np.zeros((10, 4), F32)
    before = chip_worker.committed_memory
    with pytest.raises(simpler.CapacityExceeded, match="more than 25 tasks.*max_tasks"):
        chip_worker.run(cid, simpler.TaskArgs(X, 3), max_tasks=25)
    np.testing.assert_array_equal(X, 0)  # failed before launch: nothing ran
    assert chip_worker.committed_memory == before
    assert_still_works(chip_worker, kernel_compiler)


def test_kernel_that_never_finishes(chip_worker, scene, kernel_compiler):
    cid = scene("misuse")
    before = chip_worker.stats
    with pytest.raises(simpler.Timeout, match=r"no task finished.*task 0 \(func 9\) on core"):
        chip_worker.run(cid, simpler.TaskArgs(np.zeros(4, F32), 8), scheduler_timeout=0.3)
    after = chip_worker.stats
    if chip_worker.platform == "sim":
        assert after["core_resets"] == before["core_resets"] + 1
    else:  # the device's count: other host processes may be resetting cores too
        assert after["core_resets"] >= before["core_resets"] + 1
    kept = after["run_block_bytes"] - before["run_block_bytes"]  # a first run keeps its run block
    assert after["committed_bytes"] == before["committed_bytes"] + kept
    assert chip_worker.usable
    assert_still_works(chip_worker, kernel_compiler)


def test_watchdog_counts_blocks_not_tasks(chip_worker, scene, kernel_compiler):
    """One task of 12 blocks of 100 ms on 2 AIV cores takes ~0.6 s, longer
    than the 0.3 s watchdog; blocks keep finishing, so it is not stuck."""
    cid = scene("blocks")
    before = chip_worker.stats["tasks_completed"]
    chip_worker.run(cid, simpler.TaskArgs(12, 100_000), block_dim=1, scheduler_timeout=0.3)
    assert chip_worker.stats["tasks_completed"] == before + 1


def test_bad_config(chip_worker, scene, kernel_compiler):
    cid = scene("vector_add")
    a = np.zeros(4, F32)
    with pytest.raises(simpler.InvalidArgument, match="block_dim 1000 out of range"):
        chip_worker.run(cid, simpler.TaskArgs(a, a, a, 1), block_dim=1000)
    with pytest.raises(simpler.InvalidArgument, match="block_dim -1 is out of range"):
        chip_worker.run(cid, simpler.TaskArgs(a, a, a, 1), block_dim=-1)
    with pytest.raises(simpler.InvalidArgument, match="block_dim 8589934592 is out of range"):
        chip_worker.run(cid, simpler.TaskArgs(a, a, a, 1), block_dim=2**33)
    with pytest.raises(simpler.InvalidArgument, match="aicpu_thread_num 9 out of range"):
        chip_worker.run(cid, simpler.TaskArgs(a, a, a, 1), aicpu_thread_num=9)
    for bad in (float("nan"), 1e10, -1):
        with pytest.raises(simpler.InvalidArgument, match="scheduler_timeout"):
            chip_worker.run(cid, simpler.TaskArgs(a, a, a, 1), scheduler_timeout=bad)
    assert_still_works(chip_worker, kernel_compiler)


def test_device_memory_misuse(chip_worker, kernel_compiler):
    with pytest.raises(simpler.NotRegistered, match="not the start of a live allocation"):
        chip_worker.free(12345)
    buf = chip_worker.malloc(256)
    addr = int(buf)     # the int form: the C core catches its misuse
    chip_worker.free(addr)
    with pytest.raises(simpler.NotRegistered, match="freed twice"):
        chip_worker.free(addr)
    with pytest.raises(simpler.InvalidArgument, match="not allocated device memory"):
        chip_worker.copy_to(8, b"abc")
    with pytest.raises(simpler.InvalidArgument, match="not allocated device memory"):
        chip_worker.copy_from(addr, 16)  # freed above
    # the DeviceBuffer knows it was freed (through the int form too)
    for use in (buf.free, lambda: chip_worker.free(buf), lambda: chip_worker.copy_from(buf, 16),
                lambda: chip_worker.copy_to(buf, b"abc"), lambda: buf.as_tensor((4,), F32), lambda: int(buf)):
        with pytest.raises(simpler.InvalidState, match=f"device buffer 0x{addr:x} .* was freed"):
            use()
    live = chip_worker.malloc(64)
    with pytest.raises(simpler.InvalidArgument, match="not allocated device memory"):
        chip_worker.copy_to(live, bytes(65))  # one byte past the allocation
    with pytest.raises(simpler.InvalidArgument):
        chip_worker.malloc(0)
    with pytest.raises(simpler.InvalidArgument, match="out of range"):
        chip_worker.malloc(2**64)
    with pytest.raises(simpler.InvalidArgument, match="out of range"):
        chip_worker.free(-1)
    chip_worker.free(live)
    assert_still_works(chip_worker, kernel_compiler)


def test_gm_exhausted(simpler_platform, simpler_runtime, kernel_compiler):
    """A small device: staging, outputs, rings and malloc past capacity fail
    with OutOfMemory, and the device recovers once memory is freed."""
    tmr = simpler_runtime == "tensormap_and_ringbuffer"
    small_rings = dict(task_ring_size=16, heap_ring_size=64 << 10, dep_pool_size=64) if tmr else {}
    with simpler.ChipWorker(simpler_platform, simpler_runtime, gm_capacity=1 << 20) as w:
        with pytest.raises(simpler.OutOfMemory, match="GM exhausted"):
            w.malloc(2 << 20)
        cid = w.register(scenes.callable_(kernel_compiler, "fused"))
        base = w.committed_memory  # the registration's own GM
        big = np.zeros(100_000, F32)  # 400 KB: three do not fit
        # (onboard's quota counts whole pages, so the registration's small
        # blocks may leave room for only one)
        with pytest.raises(simpler.OutOfMemory, match="staging argument [12]"):
            w.run(cid, simpler.TaskArgs(big, big, big.copy()), **small_rings)
        assert w.committed_memory == base
        if tmr:  # default rings (several MB) do not fit in 1 MB of GM
            with pytest.raises(simpler.OutOfMemory, match="the run's rings"):
                w.run(cid, simpler.TaskArgs(big[:10], big[:10], big[:10].copy()))
        else:
            mid = np.zeros(60_000, F32)  # 240 KB: the arguments fit, the intermediates do not
            with pytest.raises(simpler.OutOfMemory, match="allocating OUTPUT tensor"):
                w.run(cid, simpler.TaskArgs(mid, mid, mid.copy()))
        assert w.committed_memory == base
        small = np.ones(1000, F32)
        out = np.zeros_like(small)
        w.run(cid, simpler.TaskArgs(small, small, out), **small_rings)
        np.testing.assert_allclose(out, (2 + 1) * (2 + 2) + 2)


def test_device_tensor_outside_device_memory(chip_worker, scene, kernel_compiler):
    cid = scene("vector_add")
    a = np.zeros(4, F32)
    bogus = simpler.DeviceTensor(0x1000, (4,), F32)
    a20 = np.zeros(20, F32)
    with pytest.raises(simpler.InvalidArgument, match="argument 1 \\(device tensor.*not the start of an allocation"):
        chip_worker.run(cid, simpler.TaskArgs(a, bogus, a, 1))
    small = chip_worker.malloc(8)
    try:
        with pytest.raises(simpler.InvalidArgument, match="argument 2 \\(device tensor.*larger than its allocation"):
            chip_worker.run(cid, simpler.TaskArgs(a20, a20, simpler.DeviceTensor(small, (20,), F32), 1))
    finally:
        chip_worker.free(small)
    assert_still_works(chip_worker, kernel_compiler)


def test_a_task_that_writes_an_in_argument_is_an_orchestration_error(chip_worker, kernel_compiler):
    """Nothing copies an "in" argument back: a task writing it would leave
    the caller's array silently unchanged."""
    wrong = simpler.ChipCallable.build(kernel_compiler.compile(scenes.HERE / "orch" / "chains.c"),
                                       [scenes.kernel(kernel_compiler, k) for k in scenes.KERNELS],
                                       [("in", F32), "scalar"])   # chains increments it: "inout"
    with chip_worker.registered(wrong) as cid:
        x = np.zeros((2, 8), F32)
        with pytest.raises(simpler.OrchestrationError,
                           match=r"task 0 \(kernel 'inc'\): tensor 0 writes the run's tensor argument 0, "
                                 r"which the signature declares \"in\""):
            chip_worker.run(cid, simpler.TaskArgs(x, 1))
    assert_still_works(chip_worker, kernel_compiler)


def _header_fields(obj: bytes) -> list[tuple[int, int]]:
    """(offset, width) of the size, offset and type fields of an object's
    ELF header, program headers and section headers."""
    phoff, shoff = struct.unpack_from("<QQ", obj, 32)
    phnum, shnum = struct.unpack_from("<H", obj, 56)[0], struct.unpack_from("<H", obj, 60)[0]
    fields = [(32, 8), (40, 8), (52, 2), (54, 2), (56, 2), (58, 2), (60, 2), (62, 2)]
    for i in range(phnum):       # type, flags, offset, vaddr, filesz, memsz, align
        fields += [(phoff + 56 * i + o, w) for o, w in ((0, 4), (4, 4), (8, 8), (16, 8), (32, 8), (40, 8), (48, 8))]
    for i in range(shnum):       # type, flags, addr, offset, size, align
        fields += [(shoff + 64 * i + o, w) for o, w in ((4, 4), (8, 8), (16, 8), (24, 8), (32, 8), (48, 8))]
    return fields


def test_register_survives_damaged_headers(chip_worker, kernel_compiler):
    """Mutants of the size and offset fields of the objects in a blob (once
    10 in 10,000 crashed register()): each registers or is InvalidCallable,
    and the worker goes on."""
    import random
    rng = random.Random(5)
    orch = kernel_compiler.compile(scenes.HERE / "orch" / "vector_add.c")
    blob = simpler.ChipCallable.build(orch, [scenes.kernel(kernel_compiler, "add")],
                                      scenes.SIGNATURES["vector_add"]).to_bytes()
    objects = [_object_of(blob, None), _object_of(blob, 0)]
    fields = [_header_fields(blob[off:off + size]) for _, off, size in objects]
    outcomes = {"registered": 0, "refused": 0}
    for _ in range(1000):
        which = rng.randrange(2)
        size_field, off, size = objects[which]
        b = bytearray(blob)
        if rng.random() < 0.1:
            struct.pack_into("<Q", b, size_field, rng.randrange(size))      # truncated
        for _ in range(rng.choice((1, 1, 2))):
            at, width = rng.choice(fields[which])
            old = int.from_bytes(b[off + at:off + at + width], "little")
            value = rng.choice((0, 1, size, size - 1, size + 8, old + rng.randrange(-64, 64),
                                1 << rng.randrange(8 * width), rng.randrange(2 * size), rng.getrandbits(8 * width)))
            b[off + at:off + at + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
        try:
            cid = chip_worker.register(simpler.ChipCallable.from_bytes(bytes(b)))
        except simpler.InvalidCallable:
            outcomes["refused"] += 1
        else:
            outcomes["registered"] += 1
            chip_worker.unregister(cid)
        assert chip_worker.usable
    assert outcomes["refused"] > 500 and outcomes["registered"] > 20, outcomes
    assert chip_worker.callables == {}
    assert_still_works(chip_worker, kernel_compiler)
