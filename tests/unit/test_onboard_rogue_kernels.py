"""Kernels that take their device context down in ways a crash report
alone does not cover, and still the host learns of it at once, the message
says what happened, the device process goes on and the next worker gets a
fresh context:

- a kernel that forks a child that lingers, then crashes: the device
  watches the context process itself, not only its link (a child forked
  behind libc's back, by a raw system call, keeps the link open), and the
  context's whole process group ends with it, so no child outlives it
  holding its descriptors or mappings of GM that the allocator hands to
  other clients next;
- a kernel that closes every descriptor: the context's link is gone, so
  the context exits, and the device says how it ended."""
from __future__ import annotations

import os
import signal

import pytest

import simpler
from onboard_helpers import alive, assert_fill_works, children, only_context, scalar_callable, wait_until

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
    """How the host watches the device process, and the device its
    contexts: a pidfd, or /proc where pidfd_open is missing (Linux < 5.3)."""
    if request.param == "proc":
        monkeypatch.setenv("SIMPLER_ONBOARD_NO_PIDFD", "1")
    return request.param


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("how", ["fork", "raw"])
def test_kernel_forking_a_lingering_child_loses_its_context_at_once(private_device, kc, tmp_path, watch, how):
    pid_file = tmp_path / "child.pid"
    callable_ = scalar_callable(kc, FORK_THEN_CRASH.replace("PID_FILE", str(pid_file)))
    fds = open_fds()
    orphan = 0
    try:
        with simpler.ChipWorker("onboard") as w:
            cid = w.register(callable_)
            pid = w.stats["device_pid"]
            context = only_context(pid)
            # Without the watch on the context this waits out the device's
            # silence deadline (1 + 5 + 2.5 s) and reports it hung, not dead.
            with pytest.raises(simpler.DeviceLost, match=r"context .*ended during a launch.*died of SIGSEGV") as lost:
                w.run(cid, [int(how == "raw"), 0], scheduler_timeout=1.0)
            assert "said nothing" not in str(lost.value) and "host wait timeout" not in str(lost.value)
            assert not w.usable
            orphan = int(pid_file.read_text())
            # the context's group ended with it, the child too; nothing is left unreaped
            assert not alive(context) and children(pid) == []
            assert wait_until(lambda: not alive(orphan))
        assert alive(pid)
        with simpler.ChipWorker("onboard") as fresh:    # the same device, a fresh context
            assert fresh.stats["device_pid"] == pid
            assert_fill_works(fresh, kc)
        assert open_fds() == fds      # the lost worker's watch and socket are closed too
    finally:
        if not orphan and pid_file.exists():
            orphan = int(pid_file.read_text() or 0)
        if orphan and alive(orphan):
            os.kill(orphan, signal.SIGKILL)


def test_kernel_closing_every_descriptor_ends_its_context(private_device, kc, watch):
    callable_ = scalar_callable(kc, CLOSE_ALL)
    fds = open_fds()
    with simpler.ChipWorker("onboard") as w:
        cid = w.register(callable_)
        pid = w.stats["device_pid"]
        context = only_context(pid)
        with pytest.raises(simpler.DeviceLost, match=r"context .*ended during a launch: it exited \(status \d+\) "
                                                     r"without answering \(did a kernel call exit\(\), or close the context's descriptors"):
            w.run(cid, [0, 0], scheduler_timeout=1.0)
        assert not w.usable
        assert not alive(context) and children(pid) == []
    assert alive(pid)
    with simpler.ChipWorker("onboard") as fresh:
        assert fresh.stats["device_pid"] == pid
        assert_fill_works(fresh, kc)
    assert open_fds() == fds
