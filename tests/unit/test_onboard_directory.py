"""The onboard device directory is safe against other users: no directory
above it may be changed by anyone but root and this user, no file in it is
opened through a symbolic link, and a host talks only to a device process
of its own user.

"Another user" is uid 65534 (nobody): the tests that need one run as root,
which may give files away and drop its uid in a child."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

import simpler
from onboard_helpers import CRASH, alive, assert_fill_works, scalar_callable, wait_until

OTHER_UID = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")




def use_dir(monkeypatch, path) -> None:
    monkeypatch.setenv("SIMPLER_DEVICE_DIR", str(path))


@as_root
def test_a_directory_above_owned_by_another_user_is_refused(private_device, monkeypatch):
    theirs = private_device.dir / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, OTHER_UID, OTHER_UID)
    ours = theirs / "dev"
    ours.mkdir(mode=0o700)          # ours and private: only its parent is wrong
    use_dir(monkeypatch, ours)
    with pytest.raises(simpler.PlatformError, match=rf"{theirs}, above the device directory, belongs to uid "
                                                    rf"{OTHER_UID}"):
        simpler.ChipWorker("onboard")
    assert list(ours.iterdir()) == []     # nothing was started or created there


def test_a_directory_above_others_may_write_is_refused_unless_sticky(private_device, monkeypatch, kc):
    shared = private_device.dir / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    use_dir(monkeypatch, shared / "dev")
    with pytest.raises(simpler.PlatformError, match=rf"{shared}, above the device directory, may be written by "
                                                    r"other users \(mode 777, not sticky\)"):
        simpler.ChipWorker("onboard")
    assert not (shared / "dev").exists()
    shared.chmod(0o1777)            # like /tmp: others may add entries, not swap ours
    with simpler.ChipWorker("onboard") as w:
        assert_fill_works(w, kc)
    assert (shared / "dev" / "device-0.sock").is_socket()


@as_root
def test_a_symbolic_link_above_is_resolved_and_checked(private_device, monkeypatch):
    theirs = private_device.dir / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, OTHER_UID, OTHER_UID)
    (theirs / "dev").mkdir(mode=0o700)
    link = private_device.dir / "link"
    link.symlink_to(theirs)
    use_dir(monkeypatch, link / "dev")
    with pytest.raises(simpler.PlatformError, match=rf"{theirs}, above the device directory, belongs to uid"):
        simpler.ChipWorker("onboard")


def test_log_and_crash_files_are_never_written_through_links(private_device, kc, tmp_path):
    victims = {}
    for name in ("device-0.log", "device-0.crash"):
        victim = tmp_path / f"victim-{name}"
        victim.write_text("precious\n")
        (private_device.dir / name).symlink_to(victim)
        victims[name] = victim
    with simpler.ChipWorker("onboard") as w:
        cid = w.register(scalar_callable(kc, CRASH))
        with pytest.raises(simpler.DeviceLost, match="died of SIGSEGV"):
            w.run(cid, [8, 0])      # a context's crash: its line goes to the device's log
        pid = w.stats["device_pid"] if w.usable else simpler.device.status(0).pid
    # the device process itself dying writes device-0.crash: through no link either
    crash = private_device.dir / "device-0.crash"
    crash.symlink_to(victims["device-0.crash"])
    os.kill(pid, signal.SIGSEGV)
    assert wait_until(lambda: not alive(pid))
    for name, victim in victims.items():
        assert victim.read_text() == "precious\n", name
        assert not (private_device.dir / name).is_symlink(), name
    log = (private_device.dir / "device-0.log").read_text()
    assert "serving" in log and "context (pid" in log and "died of SIGSEGV" in log
    assert f"(pid {pid}) died of SIGSEGV" in crash.read_text()


# Listens on the device's socket as another user (bound as root, which
# may write the private directory, then listening as nobody: a peer's
# credentials are the listener's at listen()), and reports how many bytes
# a client sent it.
FAKE_SERVER = textwrap.dedent("""
    import os, socket, sys
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sys.argv[1])
    os.setgid(int(sys.argv[2]))
    os.setuid(int(sys.argv[2]))
    s.listen(8)
    print("listening", flush=True)
    s.settimeout(60)
    conn, _ = s.accept()
    conn.settimeout(5)
    got = b""
    try:
        while chunk := conn.recv(4096):
            got += chunk
    except socket.timeout:
        pass
    print(len(got), flush=True)
""")


@as_root
def test_host_refuses_a_device_process_of_another_user(private_device):
    sock = private_device.dir / "device-0.sock"
    fake = subprocess.Popen([sys.executable, "-c", FAKE_SERVER, str(sock), str(OTHER_UID)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert fake.stdout.readline().strip() == "listening"
        with pytest.raises(simpler.PlatformError, match=rf"{sock} is served by pid {fake.pid} of uid {OTHER_UID}"):
            simpler.ChipWorker("onboard")
        assert fake.stdout.readline().strip() == "0"       # it heard nothing, not even HELLO
        assert fake.wait(timeout=30) == 0
    finally:
        if fake.poll() is None:
            fake.kill()
            fake.wait()
    assert not list(private_device.dir.glob("device-0.pid"))   # nor was a device started beside it
