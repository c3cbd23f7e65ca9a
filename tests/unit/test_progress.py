"""Progress on long runs: a run longer than about a second moves a tqdm
bar (here a fake tqdm module, injected) from the device's counters, up to
every task; never with progress=False, nor by default when output is not
interactive; and the simpler logger says what long work does."""
from __future__ import annotations

import io
import logging
import sys
import time
import types

import pytest

import simpler
from simpler import progress
from long_runs import ticks_callable

RUNTIMES = ("host_build_graph", "tensormap_and_ringbuffer")
# 20 tasks of 0.2 s on the 2 AIV cores of one cluster: ~2 s.
TASKS, TASK_US = 20, 200_000


class FakeBar:
    """Records what tqdm's bar would show: (n, total) after each change."""

    made: list["FakeBar"] = []

    def __init__(self, total=None, unit="it", desc=None, leave=True, **kw) -> None:
        self.total, self.unit, self.desc, self.n = total, unit, desc, 0
        self.made_at = self.start_t = self.last_print_t = time.time()     # tqdm's clocks
        self.shown: list[tuple[int, int]] = []
        self.closed = False
        FakeBar.made.append(self)

    def update(self, k: int) -> None:
        self.n += k
        self.shown.append((self.n, self.total))

    def refresh(self) -> None:
        self.shown.append((self.n, self.total))

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_tqdm(monkeypatch):
    FakeBar.made = []
    module = types.ModuleType("tqdm")
    module.tqdm = FakeBar
    monkeypatch.setitem(sys.modules, "tqdm", module)
    return FakeBar


@pytest.fixture(params=RUNTIMES)
def ticks(request, simpler_platform, kc):
    with simpler.ChipWorker(simpler_platform, request.param) as w:
        yield w, w.register(ticks_callable(kc))


def assert_counted_to_the_end(bars: list[FakeBar]) -> None:
    assert len(bars) == 1
    bar = bars[0]
    assert bar.closed and bar.unit == "task"
    ns = [n for n, _ in bar.shown]
    assert ns == sorted(ns)                     # never backwards
    assert bar.shown[-1] == (TASKS, TASKS)      # every task, of every task
    assert ns[0] < TASKS                        # seen while it ran, not only at the end


def test_a_long_run_shows_its_progress(fake_tqdm, ticks):
    w, cid = ticks
    w.run(cid, [TASKS, TASK_US], block_dim=1, progress=True)
    assert_counted_to_the_end(fake_tqdm.made)
    assert "callable_id" in fake_tqdm.made[0].desc
    # the bar is made once the run has lasted SHOW_AFTER_S, and counts its
    # time (and rate) from the run's start, not from then
    bar = fake_tqdm.made[0]
    assert bar.made_at - bar.start_t >= simpler.progress.SHOW_AFTER_S
    assert bar.made_at - bar.last_print_t >= simpler.progress.SHOW_AFTER_S


def test_a_submitted_run_shows_its_progress(fake_tqdm, ticks):
    w, cid = ticks
    handle = w.submit(cid, [TASKS, TASK_US], simpler.CallConfig(block_dim=1, progress=True))
    handle.result()
    assert_counted_to_the_end(fake_tqdm.made)


def test_a_replay_shows_its_progress(fake_tqdm, ticks):
    w, cid = ticks
    with w.record(cid, [TASKS, TASK_US], block_dim=1, progress=True) as graph:
        FakeBar.made = []
        graph.run([TASKS, TASK_US])
        assert_counted_to_the_end(fake_tqdm.made)


def test_progress_false_shows_nothing(fake_tqdm, ticks, monkeypatch):
    monkeypatch.setattr(progress, "interactive", lambda: True)
    w, cid = ticks
    w.run(cid, [TASKS, TASK_US], block_dim=1, progress=False)
    assert fake_tqdm.made == []


def test_by_default_only_interactive_output_shows_a_bar(fake_tqdm, ticks, monkeypatch):
    w, cid = ticks
    monkeypatch.setattr(sys, "stderr", io.StringIO())   # not a terminal, and no notebook
    assert not progress.interactive()
    w.run(cid, [TASKS, TASK_US], block_dim=1)
    assert fake_tqdm.made == []
    monkeypatch.setattr(progress, "interactive", lambda: True)   # a terminal, a notebook
    w.run(cid, [TASKS, TASK_US], block_dim=1)
    assert_counted_to_the_end(fake_tqdm.made)


def test_a_short_run_shows_no_bar(fake_tqdm, ticks):
    w, cid = ticks
    w.run(cid, [4, 10], progress=True)
    assert fake_tqdm.made == []


def test_without_tqdm_a_run_goes_on_without_a_bar(monkeypatch, ticks):
    monkeypatch.setitem(sys.modules, "tqdm", None)      # import tqdm raises ImportError
    w, cid = ticks
    assert progress.watch(w._handle, True, "run") is None
    w.run(cid, [TASKS, TASK_US // 10], block_dim=1, progress=True)


def test_a_failing_bar_never_fails_the_run(monkeypatch, ticks):
    class Broken(FakeBar):
        def update(self, k):
            raise RuntimeError("a broken terminal")

    module = types.ModuleType("tqdm")
    module.tqdm = Broken
    monkeypatch.setitem(sys.modules, "tqdm", module)
    w, cid = ticks
    w.run(cid, [TASKS, TASK_US], block_dim=1, progress=True)
    assert w.stats["last_run_tasks"] == TASKS


@pytest.mark.parametrize("widgets", [True, False])
def test_a_notebook_without_ipywidgets_gets_the_text_bar(fake_tqdm, monkeypatch, widgets):
    class WidgetBar(FakeBar):
        pass

    notebook = types.ModuleType("tqdm.notebook")   # as tqdm.notebook is without ipywidgets: IProgress None
    notebook.tqdm, notebook.IProgress = WidgetBar, (object if widgets else None)
    monkeypatch.setitem(sys.modules, "tqdm.notebook", notebook)
    monkeypatch.setattr(progress, "_in_notebook", lambda: True)
    assert progress._bar_class() is (WidgetBar if widgets else FakeBar)


@pytest.mark.parametrize("value", [1, "yes", 0.5])
def test_progress_must_be_a_bool_or_none(value):
    with simpler.ChipWorker("sim") as w, pytest.raises(simpler.InvalidArgument, match="progress must be"):
        w.run(1, [], progress=value)


def test_device_progress_checks_its_arguments():
    from simpler._native import ffi, lib
    with simpler.ChipWorker("sim") as w:
        out = ffi.new("uint64_t[2]")
        assert lib.simpler_device_progress(ffi.NULL, out, out + 1) == lib.SIMPLER_E_INVALID_ARGUMENT
        assert lib.simpler_device_progress(w._handle, ffi.NULL, out + 1) == lib.SIMPLER_E_INVALID_ARGUMENT
        assert lib.simpler_device_progress(w._handle, out, out + 1) == 0
        assert (out[0], out[1]) == (0, 0)       # before any run


def test_the_simpler_logger_is_silent_by_default():
    logger = logging.getLogger("simpler")
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)


def test_a_compile_says_what_it_does_at_info(tmp_path, caplog):
    kc = simpler.KernelCompiler(cache_dir=tmp_path)
    source = "#include <simpler/kernel.h>\nSIMPLER_KERNEL(kernel) { (void)args; }\n"
    with caplog.at_level(logging.INFO, logger="simpler"):
        kc.compile_source(source, name="quiet.c")
    said = [r.getMessage() for r in caplog.records if r.name == "simpler" and r.levelno == logging.INFO]
    assert any(m.startswith("compiling quiet.c") for m in said), said
    assert any(m.startswith("compiled quiet.c in") for m in said), said
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="simpler"):
        kc.compile_source(source, name="quiet.c")     # from the cache: nothing long to tell
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []


def test_the_onboard_device_start_says_what_it_does_at_info(private_device, caplog):
    with caplog.at_level(logging.INFO, logger="simpler"):
        assert simpler.device.start()
        with simpler.ChipWorker("onboard"):
            pass
    said = [r.getMessage() for r in caplog.records if r.name == "simpler" and r.levelno == logging.INFO]
    assert "starting simpler-device 0" in said
    assert any(m.startswith("simpler-device 0 started in") for m in said), said
    assert any(m.startswith("connecting to simpler-device 0") for m in said), said
    assert any(m.startswith("simpler-device 0 ready in") for m in said), said
