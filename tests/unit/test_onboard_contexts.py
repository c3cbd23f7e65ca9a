"""Device contexts on onboard: each host connection's kernels run in a
process of their own that maps only that connection's GM. A kernel cannot
read or write another client's memory, a crash in one client's context
fails only that client, and clients that come and go leave nothing behind
in the device (processes, threads, descriptors, GM)."""
from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import simpler
from onboard_helpers import (CRASH, ORCH_FILL, alive, assert_fill_works, children, contexts, fill_callable,
                             scalar_callable, wait_until)

HERE = Path(__file__).resolve().parent

# out[i] = the float at the address in scalar 0.
PEEK = """
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) {
    const simpler_tensor *out = &args->tensors[0];
    for (int64_t i = 0; i < simpler_tensor_numel(out); i++)
        *(float *)simpler_tensor_at(out, i) = *(volatile float *)(uintptr_t)args->scalars[0];
}
"""
# Crashes as the device loads it, outside any launch: no turn on the chip
# keeps it from happening while another client's launch runs.
CRASH_ON_LOAD = """
#include <stdint.h>
#include <simpler/kernel.h>
__attribute__((constructor)) static void crash_on_load(void) { *(volatile int *)(uintptr_t)8 = 1; }
SIMPLER_KERNEL(kernel) { (void)args; }
"""


def peek_callable(kc: simpler.KernelCompiler) -> simpler.ChipCallable:
    k = simpler.CoreCallable(0, "aiv", kc.compile_source(PEEK), ["out"], num_scalars=1)
    return simpler.ChipCallable.build(kc.compile_source(ORCH_FILL), [k], [("out", np.float32), "scalar"])


def filled_buffer(w: simpler.ChipWorker, value: int) -> tuple[int, np.ndarray]:
    """A block of w's filled with value, by its address (a kernel is handed
    it as a plain number)."""
    data = np.full(1024, value, np.uint32)
    addr = int(w.malloc(data.nbytes))
    w.copy_to(addr, data)
    return addr, data


def test_a_kernel_cannot_write_another_clients_memory(private_device, kc):
    with simpler.ChipWorker("onboard") as a, simpler.ChipWorker("onboard") as b:
        pid = a.stats["device_pid"]
        assert b.stats["device_pid"] == pid and len(contexts(pid)) == 2
        addr, data = filled_buffer(a, 0x5A5A5A5A)
        cid = b.register(scalar_callable(kc, CRASH))
        # B's kernel writes A's address: B's context does not map it
        with pytest.raises(simpler.DeviceLost, match=r"context .*died of SIGSEGV.*kernel 'kernel'"):
            b.run(cid, [addr, 0])
        assert not b.usable
        np.testing.assert_array_equal(a.copy_from(addr, np.empty_like(data)), data)   # A's data is intact
        assert a.usable and a.stats["device_pid"] == pid and len(contexts(pid)) == 1
        assert_fill_works(a, kc)
        a.free(addr)


def test_a_kernel_cannot_read_another_clients_memory(private_device, kc):
    with simpler.ChipWorker("onboard") as a, simpler.ChipWorker("onboard") as b:
        addr, _ = filled_buffer(a, 0x3F800000)      # 1.0f
        with b.registered(peek_callable(kc)) as cid:
            out = np.zeros(4, np.float32)
            with pytest.raises(simpler.DeviceLost, match="died of SIGSEGV"):
                b.run(cid, simpler.TaskArgs(out, addr))
            assert not out.any()                    # nothing of A's came back
        assert_fill_works(a, kc)


def test_a_kernel_still_reaches_its_own_memory_by_address(private_device, kc):
    """What a context maps is exactly its client's blocks: its own raw
    addresses work, before and after other clients allocate and free."""
    with simpler.ChipWorker("onboard") as a, simpler.ChipWorker("onboard") as b:
        cid = a.register(peek_callable(kc))
        for round_ in range(3):
            other = int(b.malloc(1 << 20))
            addr, _ = filled_buffer(a, 0x40400000)  # 3.0f
            out = np.zeros(4, np.float32)
            a.run(cid, simpler.TaskArgs(out, addr))
            np.testing.assert_array_equal(out, 3.0)
            b.free(other)
            a.free(addr)
        a.unregister(cid)


def test_a_freed_block_is_out_of_reach(private_device, kc):
    """Once freed, a block is no longer mapped in the context that held
    it, by the time the allocator hands it to another client."""
    with simpler.ChipWorker("onboard") as a, simpler.ChipWorker("onboard") as b:
        with a.registered(peek_callable(kc)) as cid:
            addr, data = filled_buffer(a, 0x40000000)  # 2.0f
            out = np.zeros(4, np.float32)
            a.run(cid, simpler.TaskArgs(out, addr))
            np.testing.assert_array_equal(out, 2.0)
            a.free(addr)
            held = []                               # B asks until it is given A's old block
            assert wait_until(lambda: held.append(int(b.malloc(data.nbytes))) or held[-1] == addr)
            for other in held[:-1]:
                b.free(other)
            b.copy_to(addr, np.full(1024, 0x40A00000, np.uint32))     # 5.0f, B's now
            with pytest.raises(simpler.DeviceLost, match="died of SIGSEGV"):
                a.run(cid, simpler.TaskArgs(out, addr))
            np.testing.assert_array_equal(out, 2.0)     # nothing of B's came back
        np.testing.assert_array_equal(b.copy_from(addr, np.empty(1024, np.uint32)), 0x40A00000)
        assert_fill_works(b, kc)


def test_a_block_freed_before_its_context_looked_is_out_of_reach(private_device, kc):
    """A block allocated and freed between two launches is taken back from
    the context's map ring before the context maps it: the context never
    sees it, and it goes straight to the next client."""
    with simpler.ChipWorker("onboard") as a, simpler.ChipWorker("onboard") as b:
        with a.registered(peek_callable(kc)) as cid:
            out = np.zeros(4, np.float32)
            mine, _ = filled_buffer(a, 0x40000000)      # 2.0f
            a.run(cid, simpler.TaskArgs(out, mine))
            addr, data = filled_buffer(a, 0x40400000)   # never launched with
            a.free(addr)
            held = []
            assert wait_until(lambda: held.append(int(b.malloc(data.nbytes))) or held[-1] == addr)
            for other in held[:-1]:
                b.free(other)
            b.copy_to(addr, np.full(1024, 0x40A00000, np.uint32))
            with pytest.raises(simpler.DeviceLost, match="died of SIGSEGV"):
                a.run(cid, simpler.TaskArgs(out, addr))
            np.testing.assert_array_equal(out, 2.0)


def test_thousands_of_blocks_between_launches_are_all_mapped(private_device, kc):
    """More blocks than the map ring holds, allocated between two launches:
    the ones past its end are announced by message, and a launch right
    after reaches every one of them."""
    with simpler.ChipWorker("onboard") as a:
        with a.registered(peek_callable(kc)) as cid:
            out = np.zeros(4, np.float32)
            first, _ = filled_buffer(a, 0)
            a.run(cid, simpler.TaskArgs(out, first))    # the run block is allocated here
            live = a.stats["live_allocations"]
            blocks = [int(a.malloc(4096)) for _ in range(5000)]
            for i in (0, 4095, 4096, 4999):
                a.copy_to(blocks[i], np.full(1024, np.float32(i + 1).view(np.uint32), np.uint32))
                a.run(cid, simpler.TaskArgs(out, blocks[i]))
                np.testing.assert_array_equal(out, i + 1)
            for addr in blocks:
                a.free(addr)
            assert a.stats["live_allocations"] == live


LONG_RUN = textwrap.dedent("""
    import json, sys
    import numpy as np
    import simpler
    sys.path.insert(0, sys.argv[1])
    from onboard_helpers import ORCH_FILL
    # Spins scalar 1 microseconds, then fills its output with scalar 0.
    SLOW_FILL = '''
    #define _POSIX_C_SOURCE 200809L
    #include <time.h>
    #include <simpler/kernel.h>
    SIMPLER_KERNEL(kernel) {
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        do
            clock_gettime(CLOCK_MONOTONIC, &t);
        while ((t.tv_sec - t0.tv_sec) * 1000000 + (t.tv_nsec - t0.tv_nsec) / 1000 < (long)args->scalars[1]);
        const simpler_tensor *out = &args->tensors[0];
        for (int64_t i = 0; i < simpler_tensor_numel(out); i++)
            *(float *)simpler_tensor_at(out, i) = (float)args->scalars[0];
    }
    '''
    ORCH = '''
    #include <simpler/orch.h>
    SIMPLER_ORCHESTRATION(orchestrate) {
        simpler_tensor out = args->tensors[0];
        uint8_t tag = SIMPLER_OUTPUT_EXISTING;
        return simpler_submit(api, o, 0, SIMPLER_CORE_AIV, &out, &tag, 1, args->scalars, 2, NULL);
    }
    '''
    kc = simpler.KernelCompiler()
    k = simpler.CoreCallable(0, "aiv", kc.compile_source(SLOW_FILL), ["out"], num_scalars=2)
    c = simpler.ChipCallable.build(kc.compile_source(ORCH), [k], [("out", np.float32), "scalar", "scalar"])
    seen = {"ok": 0, "errors": []}
    with simpler.ChipWorker("onboard") as w:
        cid = w.register(c)
        print("ready", w.stats["device_pid"], flush=True)
        sys.stdin.readline()                        # the other client is about to crash
        for i, spin in enumerate([3_000_000] + [1000] * 20):
            out = np.zeros(256, np.float32)
            try:
                w.run(cid, simpler.TaskArgs(out, i + 1, spin))
                if (out == i + 1).all():
                    seen["ok"] += 1
                else:
                    seen["errors"].append(f"run {i}: {out[:4]}")
            except simpler.SimplerError as e:
                seen["errors"].append(f"run {i}: {type(e).__name__}: {e}")
                break
    print(json.dumps(seen), flush=True)
""")


def test_a_crash_in_one_client_leaves_another_clients_long_run_alone(private_device, kc):
    other = subprocess.Popen([sys.executable, "-c", LONG_RUN, str(HERE)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        word, pid = other.stdout.readline().split()
        assert word == "ready"
        with simpler.ChipWorker("onboard") as w:
            assert w.stats["device_pid"] == int(pid)
            other.stdin.write("go\n")
            other.stdin.flush()
            # The other's 3 s run is on the chip now (or about to be): this
            # client's kernels crash as they load, which takes no turn.
            with pytest.raises(simpler.DeviceLost, match="context .*died of SIGSEGV"):
                w.register(scalar_callable(kc, CRASH_ON_LOAD))
            assert not w.usable
        out, err = other.communicate(timeout=120)
        assert other.returncode == 0, err
        seen = json.loads(out.strip().splitlines()[-1])
        assert seen == {"ok": 21, "errors": []}
        assert alive(int(pid))
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()


def test_a_crash_between_another_clients_runs_leaves_them_alone(private_device, kc):
    """The crash takes its turn on the chip; the other client's runs before
    and after it are unaffected (its context never noticed)."""
    with simpler.ChipWorker("onboard") as a, simpler.ChipWorker("onboard") as b:
        with a.registered(fill_callable(kc)) as fill:
            out = np.zeros(64, np.float32)
            a.run(fill, simpler.TaskArgs(out, 1))
            crash = b.register(scalar_callable(kc, CRASH))
            with pytest.raises(simpler.DeviceLost):
                b.run(crash, [8, 0])
            for i in range(2, 50):
                a.run(fill, simpler.TaskArgs(out, i))
                np.testing.assert_array_equal(out, i)
            assert a.stats["core_resets"] == 0


# Leaves a thread behind that crashes the context a moment after the run.
CRASH_LATER = """
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <simpler/kernel.h>
static void *later(void *arg) {
    struct timespec t = {0, 200000000};
    nanosleep(&t, NULL);
    *(volatile int *)(uintptr_t)arg = 1;      /* arg: address 8 */
    return arg;
}
SIMPLER_KERNEL(kernel) {
    pthread_t t;
    if (pthread_create(&t, NULL, later, (void *)(uintptr_t)8) == 0)
        pthread_detach(t);
}
"""


def test_a_context_dying_between_requests_is_reaped_at_once(private_device, kc):
    with simpler.ChipWorker("onboard") as w:
        cid = w.register(scalar_callable(kc, CRASH_LATER))
        pid, context = w.stats["device_pid"], w.stats["device_context_pid"]
        w.run(cid, [0, 0])                      # fine: the crash comes after it
        # nobody asks the device anything: it notices the death by itself
        assert wait_until(lambda: not alive(context) and children(pid) == [])
        with pytest.raises(simpler.DeviceLost, match=r"context .*died of SIGSEGV"):
            w.run(cid, [0, 0])                  # the next request says how it ended
    assert alive(pid)


def test_a_context_killed_between_runs_is_named_by_every_later_call(private_device, kc):
    """The first request that finds the context gone (here, stats) loses the
    worker, and every later call says what ended the context."""
    with simpler.ChipWorker("onboard") as w:
        pid, context = w.stats["device_pid"], w.stats["device_context_pid"]
        os.kill(context, signal.SIGKILL)
        assert wait_until(lambda: not alive(context) and children(pid) == [])   # the device reaped it
        with pytest.raises(simpler.DeviceLost, match="killed by signal 9"):
            w.stats
        assert not w.usable
        with pytest.raises(simpler.DeviceLost, match=r"lost after an earlier failure \(.*killed by signal 9"):
            w.malloc(64)
    assert alive(pid)


HOLDER = textwrap.dedent("""
    import sys, time, simpler
    w = simpler.ChipWorker("onboard")
    w.register(simpler.ChipCallable.from_bytes(open(sys.argv[1], "rb").read()))
    w.malloc(1 << 20)
    print("held", flush=True)
    time.sleep(600)
""")


def device_census(pid: int) -> dict:
    return {"threads": len(os.listdir(f"/proc/{pid}/task")), "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "children": sorted(children(pid))}


def test_clients_that_come_and_go_leave_nothing_in_the_device(private_device, kc, tmp_path):
    blob = tmp_path / "fill.bin"
    blob.write_bytes(fill_callable(kc).to_bytes())
    with simpler.ChipWorker("onboard") as observer:
        pid = observer.stats["device_pid"]
        base = observer.stats["device_committed_bytes"]
        assert base == observer.stats["committed_bytes"]
        before = device_census(pid)
        assert len(before["children"]) == 1         # the observer's context
        for _ in range(3):
            with simpler.ChipWorker("onboard") as w:    # one that closes
                assert_fill_works(w, kc)
            with simpler.ChipWorker("onboard") as w:    # one whose context crashes
                cid = w.register(scalar_callable(kc, CRASH))
                with pytest.raises(simpler.DeviceLost):
                    w.run(cid, [8, 0])
            holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(blob)], stdout=subprocess.PIPE, text=True)
            try:                                        # one that is killed
                assert holder.stdout.readline().strip() == "held"
                assert len(contexts(pid)) == 2
            finally:
                holder.kill()
                holder.wait()
        assert wait_until(lambda: observer.stats["device_clients"] == 1)
        assert wait_until(lambda: device_census(pid) == before), (device_census(pid), before)
        assert observer.stats["device_committed_bytes"] == base
        assert_fill_works(observer, kc)


def test_a_program_a_kernel_starts_inherits_no_context_descriptor(private_device, kc, tmp_path):
    """The link, the last-words pipe and the GM memfd are close-on-exec in
    the context: a kernel's system() child sees none of them."""
    listing = tmp_path / "fds.txt"
    lister = f"""
#include <stdlib.h>
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) {{ if (system("ls -l /proc/$$/fd > {listing} 2>&1")) {{}} }}
"""
    with simpler.ChipWorker("onboard") as w:
        cid = w.register(scalar_callable(kc, lister))
        w.run(cid, [0, 0])
    fds = listing.read_text()
    assert "memfd:" not in fds and "socket:" not in fds and "pipe:" not in fds, fds


def stopped(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "T"
    except OSError:
        return False


def test_a_stopped_context_is_ended_and_the_device_goes_on(private_device, kc):
    """A context that stops reading its link (here: stopped by a thread a
    kernel left behind) fails its own client's calls with DeviceLost; it
    does not block the device until the host's wait kills it, and another
    client carries on."""
    stopper = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <simpler/kernel.h>
static void *later(void *a) { struct timespec t = {0, 100000000}; nanosleep(&t, NULL); kill(getpid(), SIGSTOP); return a; }
SIMPLER_KERNEL(kernel) { pthread_t t; if (pthread_create(&t, NULL, later, NULL) == 0) pthread_detach(t); }
"""
    with simpler.ChipWorker("onboard") as other, simpler.ChipWorker("onboard") as w:
        device = other.stats["device_pid"]
        cid = w.register(scalar_callable(kc, stopper))
        context = w.stats["device_context_pid"]
        w.run(cid, [0, 0])
        # Under load the stop can come late: fill the link only once it came.
        assert wait_until(lambda: stopped(context))
        with pytest.raises(simpler.DeviceLost, match="device context"):
            for _ in range(200000):   # fills the link with map batches until a send blocks
                w.malloc(4096)
        assert alive(device)
        assert_fill_works(other, kc)


def test_the_quota_bounds_the_pages_a_client_holds(private_device):
    """Blocks take whole pages: a 1 MiB quota holds at most 256 blocks,
    however small, not 1 MiB of 64-byte ones (64 times the memory)."""
    with simpler.ChipWorker("onboard", gm_capacity=1 << 20) as w:
        held = []
        with pytest.raises(simpler.OutOfMemory, match="whole pages"):
            for _ in range(1 << 14):
                held.append(w.malloc(64))
        assert len(held) <= (1 << 20) // 4096


HOLD_THE_CHIP = textwrap.dedent("""
    import sys
    import simpler
    sys.path.insert(0, sys.argv[1])
    from onboard_helpers import SPIN, scalar_callable
    with simpler.ChipWorker("onboard") as w:
        cid = w.register(scalar_callable(simpler.KernelCompiler(), SPIN))
        print(w.stats["device_context_pid"], flush=True)
        sys.stdin.readline()
        w.run(cid, [600_000_000, 0], scheduler_timeout=1.0)   # stopped in it, with its context
""")


def test_a_hung_context_whose_host_is_stopped_does_not_keep_the_chip(private_device, kc):
    """A context hung in its turn on the chip, whose host is stopped too
    (so nobody asks the device to end it): once it is past its launch's
    deadline and the margin, a context waiting for the chip ends it, and
    the waiting run completes."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_CHIP, str(HERE)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        context = int(holder.stdout.readline())
        with simpler.ChipWorker("onboard") as w, concurrent.futures.ThreadPoolExecutor(1) as pool:
            launches = simpler.device.status(0).launches
            holder.stdin.write("go\n")
            holder.stdin.flush()
            # its launch has taken the chip (the count moves as a turn is taken)
            assert wait_until(lambda: simpler.device.status(0).launches > launches)
            os.kill(holder.pid, signal.SIGSTOP)
            os.kill(context, signal.SIGSTOP)
            # waits out the holder's deadline (1 + 5 + 2 + 2.5 s), not for ever
            pool.submit(assert_fill_works, w, kc).result(timeout=90)
            assert wait_until(lambda: not alive(context))
    finally:
        holder.kill()
        holder.wait()
