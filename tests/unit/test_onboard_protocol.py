"""The driver protocol as a misbehaving client would speak it: every
malformed or out-of-order message gets an error reply (or, when the stream
cannot be framed any more, a reply and a closed connection), and the
device process keeps serving everyone else."""
from __future__ import annotations

import os
import socket

import pytest

import simpler
from simpler._native import lib
from onboard_helpers import PrivateDevice, alive, wait_until
import protocol_layout as P

# The layouts and codes come from C: protocol.h (parsed) and the public
# header (through the extension).
MAGIC, VERSION, REPLY = P.ONB_MAGIC, P.ONB_VERSION, P.ONB_REPLY
HEADER = P.layout("onb_header")
HELLO, GM_ALLOC, GM_FREE, COUNTERS = P.ONB_HELLO, P.ONB_GM_ALLOC, P.ONB_GM_FREE, P.ONB_COUNTERS
BINARY_INSTALL, EXECUTOR_REGISTER, CALLABLE_LOAD, LAUNCH = (P.ONB_BINARY_INSTALL, P.ONB_EXECUTOR_REGISTER,
                                                           P.ONB_CALLABLE_LOAD, P.ONB_LAUNCH)
GM, HELLO_IN, LOAD, BINARY = P.layout("onb_gm"), P.layout("onb_hello"), P.layout("onb_callable_load"), P.layout("onb_binary")
E_INVALID_ARGUMENT, E_NOT_FOUND, E_STATE = lib.SIMPLER_E_INVALID_ARGUMENT, lib.SIMPLER_E_NOT_FOUND, lib.SIMPLER_E_STATE
E_UNSUPPORTED, E_OUT_OF_MEMORY, E_INVALID_CALLABLE = (lib.SIMPLER_E_UNSUPPORTED, lib.SIMPLER_E_OUT_OF_MEMORY,
                                                      lib.SIMPLER_E_INVALID_CALLABLE)


@pytest.fixture
def device(monkeypatch):
    d = PrivateDevice(monkeypatch)
    simpler.device.start(0, idle_timeout=60)
    yield d
    d.close()


class Client:
    def __init__(self, d: PrivateDevice) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(d.dir / "device-0.sock"))
        self.seq = 0

    def send(self, mtype: int, payload: bytes = b"", *, version: int = VERSION, magic: int = MAGIC,
             size: int | None = None, fds: list[int] = ()) -> None:
        self.seq += 1
        data = HEADER.pack(magic, version, mtype, self.seq, len(payload) if size is None else size) + payload
        if fds:
            assert socket.send_fds(self.sock, [data], list(fds)) == len(data)
        else:
            self.sock.sendall(data)

    def recv(self, keep_fds: list | None = None) -> tuple[int, int, bytes]:
        """(reply type, status, body) of the next message; descriptors that
        came with it go to keep_fds, or are closed."""
        msg, fds, _, _ = socket.recv_fds(self.sock, HEADER.size, 4)
        for fd in fds:
            if keep_fds is None:
                os.close(fd)
            else:
                keep_fds.append(fd)
        if not msg:
            raise ConnectionError("closed")
        magic, _, mtype, seq, size = HEADER.unpack(msg)
        assert magic == MAGIC and seq == self.seq
        body = b""
        while len(body) < size:
            chunk = self.sock.recv(size - len(body))
            if not chunk:
                raise ConnectionError("closed mid-message")
            body += chunk
        reply = P.layout("onb_reply")
        status, _ = reply.unpack(body[:reply.size])
        return mtype, status, body[reply.size:]

    def call(self, mtype: int, payload: bytes = b"", **kw) -> tuple[int, bytes]:
        self.send(mtype, payload, **kw)
        rtype, status, body = self.recv()
        assert rtype == mtype | REPLY
        return status, body

    def hello(self) -> None:
        status, body = self.call(HELLO, HELLO_IN.pack(0, 0, os.getpid(), 0))
        assert status == 0, body


def assert_error(result: tuple[int, bytes], code: int, words: str) -> None:
    status, body = result
    assert status == code and words in body.decode(), (status, body)


def test_out_of_order_and_malformed_requests_get_errors(device):
    c = Client(device)
    assert_error(c.call(COUNTERS), E_STATE, "before HELLO")
    assert_error(c.call(HELLO, b"short"), E_INVALID_ARGUMENT, "payload of 5 bytes")
    assert_error(c.call(HELLO, bytes(HELLO_IN.size), version=99), E_UNSUPPORTED, "protocol version 99")
    assert_error(c.call(77), E_INVALID_ARGUMENT, "unknown message type 77")
    c.hello()
    assert_error(c.call(HELLO, bytes(HELLO_IN.size)), E_STATE, "second HELLO")
    assert_error(c.call(GM_ALLOC, GM.pack(0, 0)), E_INVALID_ARGUMENT, "size is 0")
    assert_error(c.call(GM_ALLOC, GM.pack(0, 1 << 62)), E_OUT_OF_MEMORY, "GM exhausted")
    assert_error(c.call(GM_FREE, GM.pack(0x1234, 0)), E_INVALID_ARGUMENT, "not an allocation of this client")
    status, body = c.call(GM_ALLOC, GM.pack(0, 4096))
    assert status == 0
    addr = GM.unpack(body)[0]
    # a region larger than the allocation, and bytes that are no executor or callable
    assert_error(c.call(EXECUTOR_REGISTER, GM.pack(addr, 8192)), E_INVALID_ARGUMENT, "not an allocation")
    assert_error(c.call(EXECUTOR_REGISTER, GM.pack(addr, 4096)), E_INVALID_CALLABLE, "AICore executor")
    assert_error(c.call(CALLABLE_LOAD, LOAD.pack(addr, 4096, 0, 0)), E_INVALID_CALLABLE, "")
    # a launch naming no registered executor (its image is the client's)
    launch = P.layout("onb_launch").pack(1, 1, 1, 1000, 0, 0, addr, 0, 0, 1, 12345)
    assert_error(c.call(LAUNCH, launch), E_NOT_FOUND, "executor 12345 is not registered")
    install = BINARY.pack(1, 3) + b"abc"
    assert_error(c.call(BINARY_INSTALL, install), E_INVALID_ARGUMENT, "do not have fingerprint")
    assert_error(c.call(BINARY_INSTALL, BINARY.pack(1, 9) + b"abc"), E_INVALID_ARGUMENT, "9 bytes announced")
    # the connection still works after all of that
    status, body = c.call(GM_FREE, GM.pack(addr, 0))
    assert status == 0


def test_unframeable_stream_is_answered_and_closed(device):
    pid = simpler.device.status(0).pid
    for kwargs in ({"magic": 0xDEAD}, {"size": 1 << 30}):
        c = Client(device)
        c.send(HELLO, **kwargs)
        _, status, body = c.recv()
        assert status == E_INVALID_ARGUMENT and b"malformed" in body
        with pytest.raises(ConnectionError):
            c.recv()
    # and a client that sends half a message and leaves
    c = Client(device)
    c.sock.sendall(HEADER.pack(MAGIC, VERSION, HELLO, 1, HELLO_IN.size) + b"half")
    c.sock.close()
    assert alive(pid) and simpler.device.status(0).pid == pid
    with simpler.ChipWorker("onboard") as w:
        assert w.stats["device_pid"] == pid


def test_the_launch_link_is_handed_over_once_and_takes_only_launches(device):
    c = Client(device)
    c.hello()
    LINK, END = P.ONB_LAUNCH_LINK, P.ONB_CONTEXT_END
    assert_error(c.call(END, P.layout("onb_context_end").pack(0, 0)), E_STATE, "has no device context")
    assert_error(c.call(LINK, b"x"), E_INVALID_ARGUMENT, "payload of 1 bytes")
    fds: list[int] = []
    c.send(LINK)
    rtype, status, body = c.recv(keep_fds=fds)
    assert rtype == LINK | REPLY and status == 0 and len(fds) == 1, (status, body)
    (context_pid,) = P.layout("onb_launch_link_result").unpack(body)
    assert alive(context_pid)
    assert_error(c.call(LINK), E_STATE, "handed over already")
    assert_error(c.call(END, P.layout("onb_context_end").pack(2, 0)), E_INVALID_ARGUMENT, "hung is 0 or 1")
    # on the link, the context answers a launch as the device would, and
    # refuses anything else without dropping the link
    link = Client.__new__(Client)
    link.sock, link.seq = socket.socket(fileno=fds[0]), 100
    link.sock.settimeout(10)
    assert_error(link.call(COUNTERS), E_INVALID_ARGUMENT, "is not a LAUNCH")
    # the device's own messages to a context (DEVCTX_MAP, context.h) are not
    # the host's to send: refused, and the context goes on
    assert_error(link.call(0x101, GM.pack(0x1000, 4096)), E_INVALID_ARGUMENT, "is not a LAUNCH")
    assert alive(context_pid)
    launch = P.layout("onb_launch").pack(1, 1, 1, 1000, 0, 0, 0x1000, 0, 0, 1, 12345)
    assert_error(link.call(LAUNCH, launch), E_NOT_FOUND, "executor 12345 is not registered")
    # a host whose link broke says so: the context is ended, and the
    # reply says how; the connection closes after it
    link.sock.close()
    status, body = c.call(END, P.layout("onb_context_end").pack(0, 0))
    assert status == lib.SIMPLER_E_DEVICE_LOST and b"ended during a launch" in body, body
    assert wait_until(lambda: not alive(context_pid))
    with pytest.raises(ConnectionError):
        c.recv()


def test_peer_windows_go_on_the_launch_link_with_a_segment(device):
    c = Client(device)
    fds: list[int] = []
    c.send(HELLO, HELLO_IN.pack(0, 0, os.getpid(), 0))
    rtype, status, body = c.recv(keep_fds=fds)
    assert status == 0 and len(fds) == 1
    gm_fd = fds.pop()
    PEER_MAP, PEER_UNMAP = P.ONB_PEER_MAP, P.ONB_PEER_UNMAP
    MAP, WINDOW, COUNTS = P.layout("onb_peer_map"), P.layout("onb_peer_window"), P.layout("onb_counters")
    try:
        assert_error(c.call(PEER_MAP, MAP.pack(0, 4096)), E_INVALID_ARGUMENT, "PEER_MAP goes on the launch link")
        c.send(P.ONB_LAUNCH_LINK)
        _, status, _ = c.recv(keep_fds=fds)
        assert status == 0 and len(fds) == 1
        link = Client.__new__(Client)
        link.sock, link.seq = socket.socket(fileno=fds.pop()), 100
        link.sock.settimeout(10)

        def windows() -> int:
            status, body = c.call(COUNTERS)
            assert status == 0
            return COUNTS.unpack(body)[-1]  # peer_windows, the last field

        assert_error(link.call(PEER_MAP, MAP.pack(0, 4096)), E_INVALID_ARGUMENT, "without the peer's GM descriptor")
        size = os.fstat(gm_fd).st_size
        link.send(PEER_MAP, MAP.pack(size - 4096, 8192), fds=[gm_fd])
        rtype, status, body = link.recv()
        assert status == E_INVALID_ARGUMENT and b"not inside the peer's GM segment" in body, body
        link.send(PEER_MAP, MAP.pack(4196, 4000), fds=[gm_fd])
        rtype, status, body = link.recv()
        assert rtype == PEER_MAP | REPLY and status == 0, body
        (addr,) = WINDOW.unpack(body)
        assert addr % 4096 == 100 and windows() == 1
        assert link.call(PEER_UNMAP, WINDOW.pack(addr)) == (0, b"")
        assert_error(link.call(PEER_UNMAP, WINDOW.pack(addr)), E_NOT_FOUND, "is not a peer window")
        assert windows() == 0
        link.sock.close()
    finally:
        os.close(gm_fd)
        for fd in fds:
            os.close(fd)


def test_a_dead_clients_memory_is_freed(device):
    c = Client(device)
    c.hello()
    for _ in range(3):
        assert c.call(GM_ALLOC, GM.pack(0, 1 << 20))[0] == 0
    with simpler.ChipWorker("onboard") as w:
        assert w.stats["device_committed_bytes"] >= w.stats["committed_bytes"] + (3 << 20)
        c.sock.close()
        from onboard_helpers import wait_until
        assert wait_until(lambda: w.stats["device_committed_bytes"] == w.stats["committed_bytes"])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_other_users_cannot_reach_or_use_the_device(device):
    """The directory keeps other users out; should it be opened up, the
    device still refuses a peer of another uid."""
    sock = str(device.dir / "device-0.sock")

    def as_nobody() -> str:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                os.setgid(65534)
                os.setuid(65534)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(5)
                s.connect(sock)
                s.sendall(HEADER.pack(MAGIC, VERSION, HELLO, 1, HELLO_IN.size) + bytes(HELLO_IN.size))
                outcome = "answered" if s.recv(16) else "closed"
            except PermissionError:
                outcome = "denied"
            except OSError as e:
                outcome = f"closed ({e.__class__.__name__})"
            os.write(w, outcome.encode())
            os._exit(0)
        os.close(w)
        out = os.read(r, 100).decode()
        os.close(r)
        os.waitpid(pid, 0)
        return out

    assert as_nobody() == "denied"
    os.chmod(device.dir, 0o711)
    os.chmod(sock, 0o777)
    try:
        assert as_nobody().startswith("closed")
    finally:
        os.chmod(device.dir, 0o700)
        os.chmod(sock, 0o600)
    assert simpler.device.status(0).running
