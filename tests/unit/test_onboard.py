"""The onboard platform's own properties: the device process starts by
itself, gives each host process a context of its own, survives or reports
what kills a context, frees what dead clients held, deploys its binaries
once, and answers bad messages with errors. Each test that breaks a device
uses a private device directory."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
import time

import numpy as np
import pytest

import simpler
from long_runs import ticks_callable
from onboard_helpers import (CRASH, SPIN, alive, assert_fill_works, children, contexts, fill_callable,
                             only_context, scalar_callable, wait_until)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "st"))
import scenes  # noqa: E402




def test_crashing_kernel_loses_only_its_context(private_device, kc):
    with simpler.ChipWorker("onboard") as w:
        cid = w.register(scalar_callable(kc, CRASH))
        pid = w.stats["device_pid"]
        context = only_context(pid)
        assert w.stats["device_context_pid"] == context
        with pytest.raises(simpler.DeviceLost, match=r"context .*died of SIGSEGV.*core \d+ was running task \d+ "
                                                     r"\(func 0, kernel .kernel.\).*the device goes on"):
            w.run(cid, [8, 0])
        assert not w.usable
        with pytest.raises(simpler.DeviceLost):
            w.malloc(64)
        assert not alive(context) and children(pid) == []   # ended and reaped before the reply
    assert alive(pid)
    with simpler.ChipWorker("onboard") as fresh:      # the same device, a fresh context
        assert fresh.stats["device_pid"] == pid
        assert only_context(pid) != context
        assert fresh.stats["device_committed_bytes"] == fresh.stats["committed_bytes"]    # the lost one's GM is back
        assert_fill_works(fresh, kc)


def test_hanging_kernel_times_out_and_the_worker_goes_on(private_device, kc):
    with simpler.ChipWorker("onboard") as w:
        cid = w.register(scalar_callable(kc, SPIN))
        with pytest.raises(simpler.Timeout, match="scheduler timeout"):
            w.run(cid, [60_000_000, 0], scheduler_timeout=0.3)
        assert w.usable and w.stats["core_resets"] == 1
        assert_fill_works(w, kc)


def test_unstoppable_kernel_resets_its_context(private_device, kc):
    with simpler.ChipWorker("onboard") as w:
        cid = w.register(scalar_callable(kc, SPIN))
        pid = w.stats["device_pid"]
        context = only_context(pid)
        with pytest.raises(simpler.DeviceLost, match="could not be stopped"):
            w.run(cid, [600_000_000, 1], scheduler_timeout=0.3)
        assert not w.usable
        # the reset: the context ends, the stuck core with it; the device goes on
        assert not alive(context) and children(pid) == []
    assert alive(pid)
    with simpler.ChipWorker("onboard") as fresh:
        assert fresh.stats["device_pid"] == pid
        assert_fill_works(fresh, kc)


def test_hung_context_is_killed_and_the_device_goes_on(private_device, kc):
    """A context that stops answering (here: stopped by a signal) is
    killed by the device once the op deadline and its margin pass, before
    the host's own wait gives up on the device."""
    with simpler.ChipWorker("onboard") as w:
        cid = w.register(scalar_callable(kc, SPIN))
        pid = w.stats["device_pid"]
        context = only_context(pid)
        stopper = subprocess.Popen([sys.executable, "-c",
                                    f"import os, signal, time; time.sleep(0.3); os.kill({context}, signal.SIGSTOP)"])
        try:
            with pytest.raises(simpler.DeviceLost, match="context .*said nothing for too long and was killed"):
                w.run(cid, [2_000_000, 0], scheduler_timeout=1.0)
        finally:
            stopper.wait()
        assert not alive(context) and children(pid) == []
    assert alive(pid)
    with simpler.ChipWorker("onboard") as fresh:
        assert fresh.stats["device_pid"] == pid
        assert_fill_works(fresh, kc)


def test_hung_device_process_is_the_host_waits_timeout(private_device, kc, monkeypatch):
    """Launches go straight to the worker's context: a hung device process
    does not stop them. The next request of the device itself waits out
    the host's wait, and the host kills the hung device."""
    monkeypatch.setenv("SIMPLER_ONBOARD_REQUEST_WAIT_S", "1.5")
    with simpler.ChipWorker("onboard") as w:
        cid = w.register(scalar_callable(kc, SPIN))
        pid = w.stats["device_pid"]
        big = w.register(ticks_callable(kc))
        w.run(cid, [1000, 0])       # its run block is allocated once, here
        os.kill(pid, signal.SIGSTOP)
        try:
            w.run(cid, [1000, 0])
            # A graph that needs a larger run block asks the device: its
            # error says what lost the device, not that the graph does not fit.
            with pytest.raises(simpler.DeviceLost, match="host wait timeout.*was killed") as lost:
                w.run(big, [3000, 0])
            assert "does not fit" not in str(lost.value), lost.value
            with pytest.raises(simpler.DeviceLost, match="was lost after an earlier failure .*host wait timeout"):
                w.malloc(64)
            assert not w.usable
        finally:
            if alive(pid):
                os.kill(pid, signal.SIGCONT)
    assert wait_until(lambda: not alive(pid))
    with simpler.ChipWorker("onboard") as fresh:
        assert_fill_works(fresh, kc)


def test_executor_registered_once_and_runs_do_not_grow_gm(private_device, kc):
    with simpler.ChipWorker("onboard") as w:
        cid = w.register(fill_callable(kc))
        out = np.zeros(16, np.float32)
        w.run(cid, simpler.TaskArgs(out, 1))
        before = w.stats
        for i in range(1000):
            w.run(cid, simpler.TaskArgs(out, i))
        after = w.stats
        np.testing.assert_array_equal(out, 999)
        assert after["executor_registrations"] == 1
        assert after["device_executor_loads"] == before["device_executor_loads"] == 1
        for k in ("committed_bytes", "device_committed_bytes", "live_allocations", "loaded_objects"):
            assert after[k] == before[k], k
        with simpler.ChipWorker("onboard") as other:     # a context of its own loads its own
            assert other.stats["executor_registrations"] == 1
            assert other.stats["device_executor_loads"] == 1
            assert len(contexts(w.stats["device_pid"])) == 2
        assert w.stats["device_executor_loads"] == 1
    with simpler.ChipWorker("onboard") as again:     # a new context registers its own
        assert again.stats["executor_registrations"] == 1
        assert again.stats["device_committed_bytes"] == again.stats["committed_bytes"]


HOLDER = textwrap.dedent("""
    import sys, time, numpy as np, simpler
    w = simpler.ChipWorker("onboard")
    w.register(simpler.ChipCallable.from_bytes(open(sys.argv[1], "rb").read()))
    w.malloc(64 << 20)
    print(w.stats["device_pid"], flush=True)
    time.sleep(600)
""")


def test_gm_of_a_killed_client_is_freed(private_device, kc, tmp_path):
    blob = tmp_path / "fill.bin"
    blob.write_bytes(fill_callable(kc).to_bytes())
    with simpler.ChipWorker("onboard") as w:
        base = w.stats["device_committed_bytes"]
        holders = [subprocess.Popen([sys.executable, "-c", HOLDER, str(blob)], stdout=subprocess.PIPE, text=True)
                   for _ in range(2)]
        try:
            pids = {int(h.stdout.readline()) for h in holders}
            assert pids == {w.stats["device_pid"]}
            assert w.stats["device_committed_bytes"] >= base + 2 * (64 << 20)
            assert w.stats["device_clients"] == 3
        finally:
            for h in holders:
                h.kill()
                h.wait()
        assert wait_until(lambda: w.stats["device_committed_bytes"] == base)
        assert wait_until(lambda: w.stats["device_clients"] == 1)
        # their contexts are ended and reaped: only this worker's is left
        assert wait_until(lambda: len(children(w.stats["device_pid"])) == 1)
        assert_fill_works(w, kc)


RACER = textwrap.dedent("""
    import json, sys, time, simpler
    while time.time() < float(sys.argv[1]):
        pass
    with simpler.ChipWorker("onboard") as w:
        s = w.stats
        print(json.dumps({k: s[k] for k in ("device_pid", "aicpu_uploads", "device_binary_installs")}))
""")


def test_racing_first_users_start_one_device_and_install_one_binary(private_device):
    go = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(go)], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len({r["device_pid"] for r in results}) == 1          # exactly one started it
    assert all(r["aicpu_uploads"] <= 1 for r in results)
    assert sum(r["aicpu_uploads"] for r in results) >= 1
    installed = sorted(p.name for p in private_device.store.iterdir())
    assert len(installed) == 1 and installed[0].startswith("aicpu-") and installed[0].endswith(".so")
    fingerprint = int(installed[0][6:-3], 16)
    data = (private_device.store / installed[0]).read_bytes()
    h = 0xcbf29ce484222325
    for byte in data:   # FNV-1a 64: the name is the content's fingerprint, so the file is whole
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    assert h == fingerprint
    assert max(r["device_binary_installs"] for r in results) == 1


def test_process_level_cache_skips_repeat_uploads(private_device):
    uploads = []
    for _ in range(3):
        with simpler.ChipWorker("onboard") as w:
            uploads.append(w.stats["aicpu_uploads"])
    assert uploads[0] >= 1 and uploads == [uploads[0]] * 3


def test_device_directory_must_be_private(monkeypatch, tmp_path):
    d = tmp_path / "open"
    d.mkdir(mode=0o755)
    d.chmod(0o755)
    monkeypatch.setenv("SIMPLER_DEVICE_DIR", str(d))
    with pytest.raises(simpler.PlatformError, match="open to other users"):
        simpler.ChipWorker("onboard")


def test_cli_start_status_stop_and_idle_exit(private_device):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "simpler", "device", *args], capture_output=True, text=True,
                              timeout=60)

    # The idle time must outlast the second start's interpreter start-up,
    # which under a loaded machine took more than a second.
    r = cli("start", "--idle-timeout", "5", "5")
    assert r.returncode == 0 and "running, pid" in r.stdout, r.stderr
    r = cli("start", "5")      # not an error: it says so
    assert r.returncode == 0 and "already running" in r.stdout, r.stderr
    assert simpler.device.status(5).running
    # idle exit (each status request is a client too: ask less often than the idle time)
    assert wait_until(lambda: not simpler.device.status(5).running, 40, interval=6.0)
    assert "not running" in cli("status", "5").stdout

    with simpler.ChipWorker("onboard", device_id=5) as w:
        with pytest.raises(simpler.InvalidState, match="1 other host process is connected"):
            simpler.device.stop(5)
        r = cli("stop", "--force", "5")
        assert r.returncode == 0 and "stopped" in r.stdout
        with pytest.raises(simpler.DeviceLost, match="ended during"):
            w.malloc(64)
    assert "was not running" in cli("stop", "5").stdout


def test_device_of_another_build_is_replaced_when_idle(private_device, tmp_path):
    """After a reinstall the old device process must not run the new
    runtime: a worker replaces it when nobody else uses it."""
    other = tmp_path / "simpler-device"
    other.write_bytes((Path(simpler.__file__).parent / "simpler-device").read_bytes() + b"another build")
    other.chmod(0o755)
    subprocess.run([str(other), "--device-id", "0"], check=True, timeout=30)
    old = simpler.device.status(0)
    assert old.running
    with simpler.ChipWorker("onboard") as w:
        assert w.stats["device_pid"] != old.pid
    assert wait_until(lambda: not alive(old.pid))


def test_host_orchestration_timeout_mid_request_leaves_the_worker_usable(private_device, kc):
    """host_build_graph's orchestration spends its time in submits that ask
    the device for OUTPUT memory. A timeout cancels it: the cancel must wait
    for the request's answer (a cancel inside a request left its reply
    unread, and the next request found it and declared the device lost)."""
    callable_ = scenes.callable_(kc, "outputs")
    x = np.ones(16, np.float32)
    for trial in range(3):
        with simpler.ChipWorker("onboard", runtime="host_build_graph") as w:
            base = w.stats["live_allocations"], w.committed_memory
            cid = w.register(callable_)
            with pytest.raises(simpler.Timeout):
                w.run(cid, simpler.TaskArgs(x, 10**9), scheduler_timeout=0.3)
            assert w.usable, trial
            w.unregister(cid)
            assert (w.stats["live_allocations"], w.committed_memory) == base


@pytest.mark.parametrize("runtime", ["host_build_graph", "tensormap_and_ringbuffer"])
def test_a_crash_in_the_middle_of_a_queue(private_device, kc, runtime):
    """A kernel that crashes its context while runs are queued behind it:
    its handle fails with DeviceLost, every later submit fails or is
    skipped with that cause, nothing waits forever, and the device goes on
    for a fresh worker."""
    with simpler.ChipWorker("onboard", runtime) as w:
        fill = w.register(fill_callable(kc))
        crash = w.register(scalar_callable(kc, CRASH))
        outs = [np.zeros(64, np.float32) for _ in range(4)]
        w.max_inflight = 8
        before = [w.submit(fill, simpler.TaskArgs(out, 3)) for out in outs[:2]]
        crashed = w.submit(crash, [8, 0])
        after = []
        for out in outs[2:]:
            try:
                after.append(w.submit(fill, simpler.TaskArgs(out, 5)))
            except simpler.DeviceLost:      # the crash came first: no run is queued on a lost worker
                pass
        for h in before:
            assert h.exception(timeout=60) is None
        assert isinstance(crashed.exception(timeout=60), simpler.DeviceLost)
        for h in after:
            e = h.exception(timeout=60)
            assert isinstance(e, (simpler.RunSkipped, simpler.DeviceLost)), e
            if isinstance(e, simpler.RunSkipped):
                assert isinstance(e.__cause__, simpler.DeviceLost)
        for out in outs[:2]:
            np.testing.assert_array_equal(out, 3)
        assert not w.usable
    with simpler.ChipWorker("onboard", runtime) as fresh:
        assert_fill_works(fresh, kc)
