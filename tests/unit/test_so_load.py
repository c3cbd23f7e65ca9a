"""Shared objects load from memory: a process that dies while loading one
leaves no file behind (thousands of simpler-so-* files once piled up in
the temporary directory after crashes).

onboard: the crash takes down a private device process, not pytest."""
from __future__ import annotations

import pytest

import simpler
from onboard_helpers import PrivateDevice, alive, assert_fill_works, wait_until

# A kernel whose constructor crashes the process that loads it.
CRASH_ON_LOAD = """
#include <signal.h>
#include <simpler/kernel.h>
__attribute__((constructor)) static void crash_on_load(void) { raise(SIGSEGV); }
SIMPLER_KERNEL(kernel) { (void)args; }
"""
ORCH = """
#include <simpler/orch.h>
SIMPLER_ORCHESTRATION(orchestrate) { (void)api; (void)o; (void)args; return 0; }
"""


@pytest.fixture
def private_device(monkeypatch, tmp_path):
    monkeypatch.setenv("TMPDIR", str(tmp_path))     # the device process it starts inherits this
    d = PrivateDevice(monkeypatch)
    yield d
    d.close()


def test_crash_while_loading_leaves_no_file(private_device, tmp_path):
    kc = simpler.KernelCompiler()
    k = simpler.CoreCallable(0, "aiv", kc.compile_source(CRASH_ON_LOAD, name="crash_on_load.c"), [])
    c = simpler.ChipCallable.build(kc.compile_source(ORCH), [k], [])
    with simpler.ChipWorker("onboard", runtime="host_build_graph") as w:
        pid = w.stats["device_pid"]
        context = w.stats["device_context_pid"]
        with pytest.raises(simpler.DeviceLost, match="context .*died of SIGSEGV"):
            w.register(c)
    assert wait_until(lambda: not alive(context))       # the kernel's context died, not the device
    assert not list(tmp_path.glob("simpler-so-*")), "the dead context left its shared object behind"
    with simpler.ChipWorker("onboard", runtime="host_build_graph") as w:   # a fresh context works
        assert w.stats["device_pid"] == pid and w.stats["device_context_pid"] not in (0, context)
        assert_fill_works(w, kc)


def _loaded_object_names() -> list[str]:
    """The path the dynamic loader recorded for each loaded object (what a
    debugger reads symbols through), from dl_iterate_phdr."""
    import ctypes

    class Info(ctypes.Structure):
        _fields_ = [("addr", ctypes.c_void_p), ("name", ctypes.c_char_p)]

    names: list[str] = []
    callback_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(Info), ctypes.c_size_t, ctypes.c_void_p)

    def collect(info, size, data):
        names.append((info.contents.name or b"").decode())
        return 0

    libc = ctypes.CDLL(None)
    libc.dl_iterate_phdr(callback_t(collect), None)
    return names


def test_objects_load_under_a_path_a_debugger_can_open():
    """A kernel's recorded path names this process's pid, not /proc/self:
    gdb opens that path itself to read the kernel's symbols, and through
    /proc/self it read its own descriptor (it hung on its own pipe)."""
    import os
    kc = simpler.KernelCompiler()
    k = simpler.CoreCallable(0, "aiv", kc.compile_source("#include <simpler/kernel.h>\n"
                                                          "SIMPLER_KERNEL(kernel) { (void)args; }"), [])
    c = simpler.ChipCallable.build(kc.compile_source(ORCH), [k], [])
    with simpler.ChipWorker("sim", runtime="host_build_graph") as w:
        before = set(_loaded_object_names())
        with w.registered(c):
            new = [n for n in _loaded_object_names() if n not in before]
    assert new, "registering loaded no object on sim"
    assert all(n.startswith(f"/proc/{os.getpid()}/fd/") for n in new), new
