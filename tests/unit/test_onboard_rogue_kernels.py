"""Kernels that take the onboard device process down in ways a crash
report alone does not cover, and still the host learns of it at once, the
message says what happened, and the next worker gets a fresh device:

- a kernel that forks a child that lingers, then crashes: the child must
  not keep the dead device's socket, pid lock or GM (it would hold the
  host's connection open, and new hosts would connect to nobody), and the
  host watches the device process itself, not only its socket (a child
  forked behind libc's back, by a raw system call, keeps everything);
- a kernel that closes every descriptor: the device's listener is gone,
  so the device exits (and says why) instead of spinning on it."""
from __future__ import annotations

import os
import signal

import pytest

import simpler
from onboard_helpers import alive, assert_fill_works, scalar_callable, wait_until

# Forks (by fork(), or by the raw system call when scalar 0 is set), notes
# the child's pid in PID_FILE, then crashes. The child waits for ever.
FORK_THEN_CRASH = """
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) {
    pid_t child = args->scalars[0] ? (pid_t)syscall(SYS_fork) : fork();
    if (child == 0)
        for (;;)
            pause();
    FILE *f = fopen("PID_FILE", "w");
    if (f) {
        fprintf(f, "%d\\n", (int)child);
        fclose(f);
    }
    *(volatile int *)(uintptr_t)8 = 1;
}
"""
CLOSE_ALL = """
#include <unistd.h>
#include <simpler/kernel.h>
SIMPLER_KERNEL(kernel) {
    for (int fd = 3; fd < 65536; fd++)
        close(fd);
}
"""




@pytest.fixture(params=["pidfd", "proc"])
def watch(request, monkeypatch):
    """How the host watches the device process: a pidfd, or /proc where
    pidfd_open is missing (Linux < 5.3)."""
    if request.param == "proc":
        monkeypatch.setenv("SIMPLER_ONBOARD_NO_PIDFD", "1")
    return request.param


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def device_fds(pid: int) -> list[str]:
    """What pid's descriptors name that belongs to a device process: a
    socket, the pid file, the GM segment."""
    names = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            names.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return [n for n in names if n.startswith("socket:") or n.endswith(".pid") or "simpler-gm" in n]


@pytest.mark.parametrize("how", ["fork", "raw"])
def test_kernel_forking_a_lingering_child_loses_the_device_at_once(private_device, kc, tmp_path, watch, how):
    pid_file = tmp_path / "child.pid"
    callable_ = scalar_callable(kc, FORK_THEN_CRASH.replace("PID_FILE", str(pid_file)))
    fds = open_fds()
    orphan = 0
    try:
        with simpler.ChipWorker("onboard") as w:
            cid = w.register(callable_)
            pid = w.stats["device_pid"]
            # Without the watch this waits out the host timeout (1 + 5 + 5 s)
            # and reports the device hung, not dead.
            with pytest.raises(simpler.DeviceLost, match=r"ended during a launch.*died of SIGSEGV") as lost:
                w.run(cid, [int(how == "raw"), 0], scheduler_timeout=1.0)
            assert "host wait timeout" not in str(lost.value)
            if how == "raw":    # the child holds the socket open: only the process watch knows
                assert "its process is gone; another process still holds its socket" in str(lost.value)
            assert not w.usable
        orphan = int(pid_file.read_text())
        assert alive(orphan)                  # the child lingers, as it should for the test
        assert wait_until(lambda: not alive(pid))
        if how == "fork":
            assert device_fds(orphan) == []   # no socket, pid lock or GM of the device
        with simpler.ChipWorker("onboard") as fresh:    # not the orphan's: a fresh device
            assert fresh.stats["device_pid"] not in (0, pid, orphan)
            assert_fill_works(fresh, kc)
        assert open_fds() == fds      # the lost worker's watch and socket are closed too
    finally:
        if not orphan and pid_file.exists():
            orphan = int(pid_file.read_text() or 0)
        if orphan and alive(orphan):
            os.kill(orphan, signal.SIGKILL)


def test_kernel_closing_every_descriptor_ends_the_device(private_device, kc, watch):
    callable_ = scalar_callable(kc, CLOSE_ALL)
    fds = open_fds()
    with simpler.ChipWorker("onboard") as w:
        cid = w.register(callable_)
        pid = w.stats["device_pid"]
        with pytest.raises(simpler.DeviceLost, match=rf"ended during a launch: simpler-device 0 \(pid {pid}\) "
                                                     r"exited: its listening socket was closed under it"):
            w.run(cid, [0, 0], scheduler_timeout=1.0)
        assert not w.usable
    assert wait_until(lambda: not alive(pid))     # it ended instead of spinning on a dead listener
    assert "exited: its listening socket was closed" in (private_device.dir / "device-0.crash").read_text()
    with simpler.ChipWorker("onboard") as fresh:
        assert fresh.stats["device_pid"] not in (0, pid)
        assert_fill_works(fresh, kc)
    assert open_fds() == fds
