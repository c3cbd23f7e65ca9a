"""Peer memory between two chips of one process (device ids 0 and 1; on
onboard each its own device process): GM-to-GM copies, and windows that
let one chip's kernels read and write the other's GM."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import simpler
from onboard_helpers import assert_fill_works

# The window's address comes as scalar 0; scalar 1 says which way:
# 0: mine[i] = 2 * window[i]; 1: window[i] = 3 * mine[i].
KERNEL = """
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) {
    const simpler_tensor *t = &args->tensors[0];
    float *mine = simpler_tensor_data(t);
    float *window = (float *)(uintptr_t)args->scalars[0];
    for (int64_t i = 0; i < simpler_tensor_numel(t); i++) {
        if (args->scalars[1] == 0)
            mine[i] = 2 * window[i];
        else
            window[i] = 3 * mine[i];
    }
}
"""
ORCH = """
#include <simpler/orch.h>
SIMPLER_ORCHESTRATION(orchestrate) {
    simpler_tensor t = args->tensors[0];
    uint32_t tag = SIMPLER_INOUT;
    return simpler_submit(api, o, 0, SIMPLER_CORE_AIV, &t, &tag, 1, args->scalars, 2, NULL);
}
"""


def _pair(platform: str, runtime: str):
    a = simpler.ChipWorker(platform, runtime, device_id=0)
    try:
        b = simpler.ChipWorker(platform, runtime, device_id=1)
    except BaseException:
        a.finalize()
        raise
    return a, b


@pytest.fixture
def pair(simpler_platform, simpler_runtime):
    a, b = _pair(simpler_platform, simpler_runtime)
    yield a, b
    a.finalize(cancel=True)
    b.finalize(cancel=True)


@pytest.fixture(scope="module")
def window_callable(kc):
    k = simpler.CoreCallable(0, "aiv", kc.compile_source(KERNEL), ["inout"], num_scalars=2)
    return simpler.ChipCallable.build(kc.compile_source(ORCH), [k], [("inout", np.float32), "scalar", "scalar"])


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_copy_peer_both_ways_equals_the_source(pair):
    a, b = pair
    rng = np.random.default_rng(7)
    for n in (1, 7, 4097, (1 << 20) + 3):
        x, y = a.malloc(n + 16), b.malloc(n + 16)
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        b.copy_to(y, data + bytes(16))
        a.copy_peer(int(x) + 5, b, y, n)            # odd offsets, inside the allocations
        assert a.copy_from(int(x) + 5, n) == data
        back = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        a.copy_to(x, back + bytes(16))
        b.copy_peer(int(y) + 3, a, x, n)
        assert b.copy_from(int(y) + 3, n) == back
        a.free(x)
        b.free(y)


def test_copy_peer_on_one_device_is_a_memmove(pair):
    a, _ = pair
    x = a.malloc(1000)
    ref = np.arange(1000, dtype=np.uint8)
    a.copy_to(x, ref)
    a.copy_peer(int(x) + 10, a, x, 500)     # forward overlap
    ref[10:510] = ref[0:500].copy()
    a.copy_peer(x, a, int(x) + 3, 600)      # backward overlap
    ref[0:600] = ref[3:603].copy()
    np.testing.assert_array_equal(np.frombuffer(a.copy_from(x, 1000), np.uint8), ref)


def test_copy_peer_errors_are_typed_and_say_where(pair, simpler_platform, simpler_runtime):
    a, b = pair
    x, y = a.malloc(128), b.malloc(64)
    with pytest.raises(simpler.InvalidArgument, match=rf"device 1.*0x{int(y):x}, \+65\)"):
        a.copy_peer(x, b, y, 65)
    with pytest.raises(simpler.InvalidArgument, match=rf"device 0.*0x{int(x) + 72:x}, \+64\)"):
        a.copy_peer(int(x) + 72, b, y, 64)
    dead = int(y)
    b.free(y)
    with pytest.raises(simpler.InvalidArgument, match=rf"device 1.*0x{dead:x}"):
        a.copy_peer(x, b, dead, 8)
    with pytest.raises(simpler.InvalidArgument, match="src_worker must be a ChipWorker"):
        a.copy_peer(x, "b", 0, 8)
    other = "sim" if simpler_platform != "sim" else "faulty:sim"
    with simpler.ChipWorker(other, simpler_runtime, device_id=1) as c:
        z = c.malloc(64)
        with pytest.raises(simpler.Unsupported, match=rf"'{simpler_platform}'.*'{other}'"):
            a.copy_peer(x, c, z, 8)
        with pytest.raises(simpler.Unsupported, match=rf"'{other}'.*'{simpler_platform}'"):
            c.open_window(a, x, 8)
    with pytest.raises(simpler.InvalidState):
        a.copy_peer(x, c, 0, 8)


def test_a_lost_peer_is_device_lost(kc, simpler_platform, simpler_runtime):
    a, b = _pair(f"faulty:{simpler_platform}", simpler_runtime)
    with a, b:
        x, y = a.malloc(64), b.malloc(64)
        b.inject_fault(1, "launch")
        with pytest.raises(simpler.DeviceLost):
            assert_fill_works(b, kc)
        with pytest.raises(simpler.DeviceLost, match="device 1"):
            a.copy_peer(x, b, y, 8)
        with pytest.raises(simpler.DeviceLost, match="device 1"):
            a.open_window(b, y, 8)
        a.inject_fault(1, "copy")       # a peer copy is a copy to the fault platform
        z = a.malloc(64)
        with pytest.raises(simpler.PlatformError, match="injected fault: peer copy"):
            a.copy_peer(z, a, x, 8)


def test_kernels_read_and_write_another_chips_gm_through_a_window(pair, window_callable):
    a, b = pair
    n = 1000
    theirs = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    y = b.malloc(theirs.nbytes)
    b.copy_to(y, theirs)
    win = a.open_window(b, y, theirs.nbytes)
    with a.registered(window_callable) as cid:
        mine = np.zeros(n, np.float32)
        a.run(cid, simpler.TaskArgs(mine, win, 0))
        np.testing.assert_array_equal(mine, 2 * theirs)
        src = np.arange(n, dtype=np.float32)
        a.run(cid, simpler.TaskArgs(src, win, 1))
    got = np.zeros(n, np.float32)
    np.testing.assert_array_equal(b.copy_from(y, got), 3 * src)
    a.close_window(win)


def test_memory_under_a_window_is_not_freed_until_it_closes(pair):
    a, b = pair
    y = b.malloc(8192)
    win = a.open_window(b, int(y) + 100, 4000)
    assert a.stats["peer_windows"] == 1 and b.stats["peer_windows"] == 0
    with pytest.raises(simpler.InvalidState, match=rf"open on it by device 0 .*0x{win:x}"):
        b.free(y)
    with pytest.raises(simpler.InvalidArgument, match="device 1.*not allocated"):
        a.open_window(b, int(y) + 8000, 4000)           # runs past the allocation
    with pytest.raises(simpler.InvalidArgument, match="same device"):
        a.open_window(a, a.malloc(64), 64)
    with pytest.raises(simpler.InvalidArgument, match="nbytes 0"):
        a.open_window(b, y, 0)
    a.close_window(win)
    with pytest.raises(simpler.NotRegistered, match=rf"device 0 has no peer window open at 0x{win:x}"):
        a.close_window(win)
    b.free(y)
    assert a.stats["peer_windows"] == 0


def test_window_churn_leaves_nothing_behind(pair, simpler_platform):
    a, b = pair
    y = b.malloc(1 << 16)
    before = a.stats
    pid = before["device_context_pid"] if simpler_platform == "onboard" else 0
    fds = _fds(pid) if pid else 0
    wins = [a.open_window(b, int(y) + 64 * i, 64) for i in range(50)]
    st = a.stats
    assert st["peer_windows"] == 50 and st["device_peer_windows"] == 50
    for w in wins:
        a.close_window(w)
    for i in range(500):
        a.close_window(a.open_window(b, int(y) + (i % 1000) * 64, 64))
    after = a.stats
    assert after["peer_windows"] == before["peer_windows"] == 0
    assert after["device_peer_windows"] == before["device_peer_windows"] == 0
    if pid:
        assert after["device_context_pid"] == pid and _fds(pid) == fds
    b.free(y)


def test_finalizing_either_side_closes_its_windows(pair, simpler_platform, simpler_runtime, kc):
    a, b = pair
    y = b.malloc(4096)
    a.open_window(b, y, 4096)
    assert a.stats["device_peer_windows"] == 1
    b.finalize()                            # the peer first
    st = a.stats
    assert st["peer_windows"] == 0 and st["device_peer_windows"] == 0
    assert_fill_works(a, kc)                # the holder is still usable
    with simpler.ChipWorker(simpler_platform, simpler_runtime, device_id=1) as c:
        z = c.malloc(4096)
        a.open_window(c, z, 4096)
        a.finalize()                        # the holder first: the peer may free it now
        c.free(z)


def test_two_devices_holding_windows_on_each_other_finalize_at_once(pair):
    a, b = pair
    x, y = a.malloc(4096), b.malloc(4096)
    for _ in range(3):
        a.open_window(b, y, 4096)
        b.open_window(a, x, 4096)
    threads = [threading.Thread(target=w.finalize) for w in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "finalize deadlocked"
    assert a.closed and b.closed
