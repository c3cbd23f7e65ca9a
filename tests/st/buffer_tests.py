"""Callable buffers, shared by the runtime suites: one upload per distinct
content, shared by registrations, freed with the last; the blob in GM is
byte for byte the blob registered (nothing patches the orchestration)."""
from __future__ import annotations

import numpy as np
import pytest

import scenes
import simpler

F32 = np.float32


def counters(w):
    """Buffers, uploads, and GM committed but for the block runs keep."""
    st = w.stats
    return st["callable_buffers"], st["callable_uploads"], st["committed_bytes"] - st["run_block_bytes"]


def test_one_upload_per_distinct_content(chip_worker, kernel_compiler):
    add = scenes.callable_(kernel_compiler, "vector_add")
    fused = scenes.callable_(kernel_compiler, "fused")
    buffers0, uploads0, committed0 = counters(chip_worker)
    ids = [chip_worker.register(add) for _ in range(3)]
    buffers1, uploads1, committed1 = counters(chip_worker)
    assert (buffers1, uploads1) == (buffers0 + 1, uploads0 + 1)
    addrs = {chip_worker.callable_buffer(cid) for cid in ids}
    assert len(addrs) == 1  # all three share it
    addr, size = addrs.pop()
    assert size == len(add.to_bytes()) and committed1 - committed0 >= size

    other = chip_worker.register(fused)
    assert counters(chip_worker)[:2] == (buffers0 + 2, uploads0 + 2)
    assert chip_worker.callable_buffer(other)[0] != addr

    # Byte for byte what was registered: the orchestration is used in place.
    assert chip_worker.copy_from(addr, size) == add.to_bytes()
    # Shared by registrations, so not the user's to free or write.
    with pytest.raises(simpler.InvalidArgument, match="registered callable's buffer, which is read-only"):
        chip_worker.free(addr)
    with pytest.raises(simpler.InvalidArgument, match="read-only"):
        chip_worker.copy_to(addr + 100, b"oops")
    a = np.zeros(4, F32)
    with pytest.raises(simpler.InvalidArgument, match="read-only"):
        chip_worker.run(ids[0], simpler.TaskArgs(a, a, simpler.DeviceTensor(addr, (4,), F32), 1))
    assert chip_worker.copy_from(addr, size) == add.to_bytes()

    chip_worker.unregister(ids[0])
    chip_worker.unregister(ids[1])
    assert counters(chip_worker)[0] == buffers0 + 2  # still held by ids[2]
    a = np.arange(32, dtype=F32)
    out = np.zeros_like(a)
    chip_worker.run(ids[2], simpler.TaskArgs(a, a, out, 1))
    np.testing.assert_array_equal(out, 2 * a)
    chip_worker.unregister(ids[2])
    chip_worker.unregister(other)
    assert counters(chip_worker)[0] == buffers0 and counters(chip_worker)[2] == committed0


# An orchestration that counts its runs in a static variable: which
# instance a registration runs shows in the count it reports.
COUNTING_ORCHESTRATION = """
#include <simpler/orch.h>
static int runs;
SIMPLER_ORCHESTRATION(orchestrate)
{
    if (args->num_scalars != 1)
        return api->fail(o, "one scalar expected");
    return ++runs == (int)args->scalars[0] ? 0 : api->fail(o, "unexpected run count");
}
"""


def test_registrations_of_one_content_share_one_orchestration(chip_worker, kernel_compiler):
    """Both runtimes load the orchestration once per callable buffer (on
    the host or on the AICPU): registrations of the same bytes share it and
    its static state; the last unregister unloads it."""
    orch = kernel_compiler.compile_source(COUNTING_ORCHESTRATION, name="counting")
    callable_ = simpler.ChipCallable.build(orch, [], ["scalar"])
    loads, objects = chip_worker.stats["orchestration_loads"], chip_worker.stats["loaded_objects"]
    first, second = chip_worker.register(callable_), chip_worker.register(callable_)
    assert chip_worker.stats["orchestration_loads"] == loads + 1
    assert chip_worker.stats["loaded_objects"] == objects + 1
    chip_worker.run(first, simpler.TaskArgs(1))
    chip_worker.run(second, simpler.TaskArgs(2))   # the same instance: its second run
    chip_worker.unregister(first)
    chip_worker.run(second, simpler.TaskArgs(3))
    chip_worker.unregister(second)
    assert chip_worker.stats["loaded_objects"] == objects
    with chip_worker.registered(callable_) as again:   # a fresh instance
        chip_worker.run(again, simpler.TaskArgs(1))
    assert chip_worker.stats["orchestration_loads"] == loads + 2
