"""Shared by the onboard tests: one-kernel callables, and a private device
directory so a test may crash, hang or stop its device without touching
the one other xdist workers share."""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import numpy as np

import simpler

# One task of func 0 on an AIV core; its scalars are the run's scalars.
ORCH_SCALARS = """
#include <simpler/orch.h>
SIMPLER_ORCHESTRATION(orchestrate) {
    return simpler_submit(api, o, 0, SIMPLER_CORE_AIV, NULL, NULL, 0, args->scalars, 2, NULL);
}
"""
# out[i] = value for one tensor.
ORCH_FILL = """
#include <simpler/orch.h>
SIMPLER_ORCHESTRATION(orchestrate) {
    simpler_tensor out = args->tensors[0];
    uint8_t tag = SIMPLER_OUTPUT_EXISTING;
    return simpler_submit(api, o, 0, SIMPLER_CORE_AIV, &out, &tag, 1, args->scalars, 1, NULL);
}
"""
FILL = """
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) {
    const simpler_tensor *out = &args->tensors[0];
    for (int64_t i = 0; i < simpler_tensor_numel(out); i++)
        *(float *)simpler_tensor_at(out, i) = (float)args->scalars[0];
}
"""
# Writes through the address in scalar 0: address 8 crashes the device.
CRASH = """
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) { *(volatile int *)(uintptr_t)args->scalars[0] = 1; }
"""
# Spins until scalar 0 microseconds have passed; scalar 1 set: refuses
# to be cancelled.
SPIN = """
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <time.h>
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) {
    int old;
    if (args->scalars[1])
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000 + (t.tv_nsec - t0.tv_nsec) / 1000 < (long)args->scalars[0]);
}
"""


def scalar_callable(kc: simpler.KernelCompiler, kernel: str) -> simpler.ChipCallable:
    k = simpler.CoreCallable(0, "aiv", kc.compile_source(kernel), [], num_scalars=2)
    return simpler.ChipCallable.build(kc.compile_source(ORCH_SCALARS), [k], ["scalar", "scalar"])


def fill_callable(kc: simpler.KernelCompiler) -> simpler.ChipCallable:
    k = simpler.CoreCallable(0, "aiv", kc.compile_source(FILL), ["out"], num_scalars=1)
    return simpler.ChipCallable.build(kc.compile_source(ORCH_FILL), [k], [("out", np.float32), "scalar"])


def assert_fill_works(worker: simpler.ChipWorker, kc: simpler.KernelCompiler, value: int = 7) -> None:
    with worker.registered(fill_callable(kc)) as cid:
        out = np.zeros(64, np.float32)
        worker.run(cid, simpler.TaskArgs(out, value))
        np.testing.assert_array_equal(out, value)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def children(pid: int) -> list[int]:
    """The processes whose parent is pid (zombies included: a child not
    reaped is a leak too)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def contexts(device_pid: int) -> list[int]:
    """The device contexts (simpler-device --context) of a device process."""
    out = []
    for pid in children(device_pid):
        try:
            if b"--context" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                out.append(pid)
        except OSError:
            pass
    return out


def only_context(device_pid: int) -> int:
    """The one context of a device that one worker uses."""
    found = contexts(device_pid)
    assert len(found) == 1, found
    return found[0]


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


class PrivateDevice:
    """SIMPLER_DEVICE_DIR pointed at a fresh 0700 directory."""

    def __init__(self, monkeypatch) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sd-", dir="/tmp"))
        monkeypatch.setenv("SIMPLER_DEVICE_DIR", str(self.dir))
        monkeypatch.setenv("SIMPLER_DEVICE_IDLE_TIMEOUT", "60")

    @property
    def store(self) -> Path:
        return self.dir / "store"

    def close(self) -> None:
        for sub in [self.dir, *(p for p in self.dir.rglob("*") if p.is_dir() and not p.is_symlink())]:
            kill_devices(sub)
        shutil.rmtree(self.dir, ignore_errors=True)


def kill_devices(directory: Path) -> None:
    """SIGKILL the device processes whose pid files are in directory."""
    for pid_file in directory.glob("device-*.pid"):
        try:
            pid = int(pid_file.read_text().strip() or 0)
        except (OSError, ValueError):
            continue
        if pid and alive(pid) and b"simpler-device" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not alive(pid), 10)
