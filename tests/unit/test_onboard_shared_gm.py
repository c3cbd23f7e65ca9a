"""Several host processes sharing one onboard device (what pytest-xdist
workers do): one client's frees never reach memory another client was
given. Large frees are punched out of the GM segment; a range being
punched must not be handed out meanwhile, or the punch zeroes what its new
owner wrote (tensors read back as zeros, callable blobs that no longer
parse, a device that crashes on orchestration code turned to zeros).

Bounded stress loops: each process runs for a fixed time and reports what
it saw; any corruption or error fails the test."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import simpler
from onboard_helpers import PrivateDevice, wait_until

RUNTIMES = ["host_build_graph", "tensormap_and_ringbuffer"]
SECONDS = 6.0

# Allocate blocks (of 4 KiB .. 64 MiB in the first test), fill each with a value of its own,
# read it back at once and again just before freeing it (oldest first, a
# few live at a time).
CHURN = textwrap.dedent("""
    import json, random, sys, time
    import numpy as np
    import simpler
    end, seed, runtime = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    smallest, largest = int(sys.argv[4]), int(sys.argv[5])     # 4 KiB << smallest .. 4 KiB << largest
    rng = random.Random(seed)
    seen = {"rounds": 0, "corrupt": 0, "errors": []}
    with simpler.ChipWorker("onboard", runtime=runtime) as w:
        live = []
        def check(addr, n, value):
            got = w.copy_from(addr, np.empty(n // 4, np.uint32))
            bad = int(np.count_nonzero(got != value))
            if bad:
                seen["corrupt"] += 1
                seen["errors"].append(f"{bad} of {n // 4} words of a {n}-byte block lost value {value:#x}")
        while time.time() < end:
            n = 4096 << rng.randint(smallest, largest)
            value = (seed << 24 | seen["rounds"]) & 0xFFFFFFFF or 1
            try:
                addr = w.malloc(n)
            except simpler.OutOfMemory:
                n, addr = 0, None
            if addr is not None:
                w.copy_to(addr, np.full(n // 4, value, np.uint32))
                check(addr, n, value)
                live.append((addr, n, value))
            if len(live) > 3 or (addr is None and live):
                old = live.pop(0)
                check(*old)
                w.free(old[0])
            seen["rounds"] += 1
        for old in live:
            check(*old)
            w.free(old[0])
    print(json.dumps(seen))
""")

# Register callables (each blob is uploaded to GM and parsed there), run
# the newest, check its output, unregister the oldest (its buffer is
# freed), again. The kernels carry 1 MiB of constants, so their blobs are
# as large as the blocks that are punched and take turns with them for
# the same ranges.
PADDED_FILL = """
#include <simpler/kernel.h>
const volatile unsigned char simpler_test_pad[1 << 20] = {VARIANT};
SIMPLER_KERNEL(kernel) {
    const simpler_tensor *out = &args->tensors[0];
    for (int64_t i = 0; i < simpler_tensor_numel(out); i++)
        *(float *)simpler_tensor_at(out, i) = (float)args->scalars[0] + simpler_test_pad[1] - simpler_test_pad[1];
}
"""
REGISTER = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import simpler
    sys.path.insert(0, sys.argv[4])
    from onboard_helpers import ORCH_FILL
    end, seed, runtime, kernel = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[5]
    kc = simpler.KernelCompiler()
    def variant(i):
        k = simpler.CoreCallable(0, "aiv", kc.compile_source(kernel.replace("VARIANT", str(seed * 8 + i))),
                                 ["out"], num_scalars=1)
        return simpler.ChipCallable.build(kc.compile_source(ORCH_FILL), [k], [("out", np.float32), "scalar"])
    variants = [variant(i) for i in range(3)]
    seen = {"rounds": 0, "corrupt": 0, "errors": []}
    with simpler.ChipWorker("onboard", runtime=runtime) as w:
        out = np.zeros(4096, np.float32)
        held = []
        while time.time() < end:
            try:
                held.append(w.register(variants[seen["rounds"] % 3]))
                value = seen["rounds"] % 1000 + 1
                w.run(held[-1], simpler.TaskArgs(out, value))
                if len(held) > 1:
                    w.unregister(held.pop(0))
                if not (out == value).all():
                    seen["corrupt"] += 1
                    seen["errors"].append(f"output {out[:4]} after a fill with {value}")
            except simpler.SimplerError as e:
                seen["corrupt"] += 1
                seen["errors"].append(f"{type(e).__name__}: {e}")
                if not w.usable:
                    break
            seen["rounds"] += 1
    print(json.dumps(seen))
""")


@pytest.fixture
def private_device(monkeypatch):
    d = PrivateDevice(monkeypatch)
    yield d
    d.close()


def run_clients(scripts: list[tuple[str, list[str]]]) -> list[dict]:
    end = time.time() + 1.0 + SECONDS     # every client connected before the churn starts
    procs = [subprocess.Popen([sys.executable, "-c", script, str(end), str(i + 1), *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, (script, args) in enumerate(scripts)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=SECONDS + 120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def assert_clean(results: list[dict]) -> None:
    assert all(r["rounds"] > 0 for r in results), results   # every client did work
    errors = [e for r in results for e in r["errors"]]
    assert sum(r["corrupt"] for r in results) == 0, errors[:10]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_concurrent_frees_never_corrupt_another_clients_blocks(private_device, runtime):
    with simpler.ChipWorker("onboard", runtime=runtime) as w:
        base = w.stats["device_committed_bytes"]
        pid = w.stats["device_pid"]
        assert_clean(run_clients([(CHURN, [runtime, "0", "14"])] * 3))
        assert w.usable and w.stats["device_pid"] == pid
        # every client's memory is back
        assert wait_until(lambda: w.stats["device_committed_bytes"] == base)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_concurrent_frees_never_corrupt_registrations(private_device, runtime):
    here = str(Path(__file__).resolve().parent)
    with simpler.ChipWorker("onboard", runtime=runtime) as w:
        base = w.stats["device_committed_bytes"]
        pid = w.stats["device_pid"]
        # Many blocks that are punched (1 to 4 MiB), and no small holes
        # elsewhere to take the registrations' small allocations.
        results = run_clients([(CHURN, [runtime, "8", "10"]), (CHURN, [runtime, "8", "10"]), (REGISTER, [runtime, here, PADDED_FILL]),
                               (REGISTER, [runtime, here, PADDED_FILL])])
        assert_clean(results)
        assert w.usable and w.stats["device_pid"] == pid     # the device did not die
        assert wait_until(lambda: w.stats["device_committed_bytes"] == base)
        assert wait_until(lambda: w.stats["device_clients"] == 1)
