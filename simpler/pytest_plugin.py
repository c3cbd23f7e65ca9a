"""pytest plugin (registered through the pytest11 entry point).

Options:
  --platform NAME   run device tests on this platform (repeatable); default:
                    every platform available on this machine
  --runtime NAME    run device tests on this runtime (repeatable); default:
                    both runtimes
  --device N        device id (default 0)
  --devices LIST    the devices of multi-chip tests: a count ("4": 0-3), a
                    range ("0-3") or a list ("0,2,5"); default 0-3

Tests that use chip_worker, private_chip_worker or simpler_runtime are
parametrized over the selected platforms and runtimes, as their ids show
(test_x[sim-host_build_graph]), except where a conftest, module or class
defines simpler_runtime itself (the runtime it returns), the test
parametrizes it itself, or @pytest.mark.simpler_runtime("...") restricts
it to some runtimes.

Fixtures:
  chip_worker          a ChipWorker for (platform, runtime, device), shared
                       by all tests of this process (an xdist worker) and
                       finalized at the end of the session
  private_chip_worker  a ChipWorker on a device of its own (onboard: in a
                       device directory of its own), for tests that crash
                       or hang it; stopped and removed at teardown
  simpler_platform     the platform of this test instance
  simpler_runtime      the runtime of this test instance
  simpler_device       --device
  simpler_devices      --devices, as a list of device ids
  simpler_worker       a simpler.Worker over --devices for (platform,
                       runtime), shared by the tests of this process like
                       chip_worker; each test gets it with nothing pending
  kernel_compiler      a session-wide KernelCompiler
  golden               simpler.testing.assert_golden
"""
from __future__ import annotations

import argparse
import os
from typing import Any
from pathlib import Path

import pytest

from . import testing
from .compiler import KernelCompiler
from .errors import SimplerError, Unsupported
from .worker import PLATFORMS, RUNTIMES, ChipWorker


def platform_available(platform: str) -> tuple[bool, str]:
    """Whether this platform exists here. onboard is available when its
    device process is installed: whether a device can be reached right now
    is for the tests to find out (every xdist worker must collect the same
    tests, whatever the shared device is doing at that moment)."""
    if platform == "onboard":
        exe = Path(__file__).resolve().parent / "simpler-device"
        if exe.is_file() and os.access(exe, os.X_OK):
            return True, ""
        return False, f"{exe} is not installed"
    try:
        ChipWorker(platform=platform).finalize()
    except Unsupported as e:
        return False, str(e)
    except SimplerError as e:
        return False, str(e)
    return True, ""


def _device_id(text: str) -> int:
    """--device's value: a usage error when it is no device id, rather
    than every device test failing on it."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"a device id is an integer >= 0, not {text!r}")
    return value


def parse_devices(text: str) -> list[int]:
    """--devices' value: "4" (devices 0-3), "0-3" or "0,2,5"."""
    ids: list[int] = []
    try:
        if "," not in text and "-" not in text:
            count = int(text)
            if not 1 <= count <= 64:
                raise ValueError
            return list(range(count))
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            first, last = int(lo), int(hi) if hi else int(lo)
            if first < 0 or last < first:
                raise ValueError
            ids.extend(range(first, last + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--devices takes a count (4), a range (0-3) or a list (0,2,5), "
                                         f"not {text!r}") from None
    if len(set(ids)) != len(ids):
        raise argparse.ArgumentTypeError(f"--devices {text!r} names a device twice")
    return ids


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("simpler")
    group.addoption("--platform", action="append", choices=PLATFORMS, dest="simpler_platforms",
                    help="platform to run device tests on (repeatable; default: all available)")
    group.addoption("--runtime", action="append", choices=RUNTIMES, dest="simpler_runtimes",
                    help="runtime to run device tests on (repeatable; default: all)")
    group.addoption("--device", type=_device_id, default=0, dest="simpler_device",
                    help="device id for device tests (default 0)")
    group.addoption("--devices", type=parse_devices, default=[0, 1, 2, 3], dest="simpler_devices",
                    help="devices of multi-chip tests: a count, a range (0-3) or a list (0,2,5); default 0-3")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "simpler_runtime(name, ...): run this test only on these runtimes")
    # The device directory the shared workers use, whatever a test sets
    # SIMPLER_DEVICE_DIR to while it runs (private_chip_worker does).
    config._simpler_device_dir = os.environ.get("SIMPLER_DEVICE_DIR")  # type: ignore[attr-defined]
    requested = config.getoption("simpler_platforms")
    if requested:  # asked for by name: say at once if one is missing
        for p in requested:
            ok, why = platform_available(p)
            if not ok:
                raise pytest.UsageError(f"--platform {p}: not available here: {why}")
        config._simpler_platforms = list(dict.fromkeys(requested))  # type: ignore[attr-defined]


def selected_platforms(config: pytest.Config) -> list[str]:
    """The platforms device tests run on. Probed on first use, so sessions
    with no device tests never open a device."""
    selected = getattr(config, "_simpler_platforms", None)
    if selected is None:
        selected = [p for p in PLATFORMS if platform_available(p)[0]]
        config._simpler_platforms = selected  # type: ignore[attr-defined]
    return selected


def selected_runtimes(config: pytest.Config) -> list[str]:
    """The runtimes device tests run on: --runtime's, else all."""
    return list(dict.fromkeys(config.getoption("simpler_runtimes") or RUNTIMES))


def _parametrized_by_test(metafunc: pytest.Metafunc, name: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if name in names:
            return True
    return False


def _runtime_is_ours(metafunc: pytest.Metafunc) -> bool:
    """Whether simpler_runtime is this plugin's fixture for this test, not
    one a conftest, module or class defines (which picks the runtime)."""
    # pytest's own record of the fixtures that apply, innermost last
    defs = getattr(metafunc, "_arg2fixturedefs", {}).get("simpler_runtime")
    return not defs or defs[-1].func.__module__ == __name__


def _runtime_params(metafunc: pytest.Metafunc) -> list:
    selected = selected_runtimes(metafunc.config)
    marker = metafunc.definition.get_closest_marker("simpler_runtime")
    if marker is None:
        return selected
    wanted = list(marker.args)
    unknown = [r for r in wanted if r not in RUNTIMES]
    if not wanted or unknown:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: @pytest.mark.simpler_runtime takes runtime "
                                f"names ({', '.join(RUNTIMES)}), not {wanted!r}")
    chosen = [r for r in wanted if r in selected]
    if chosen:
        return chosen
    # None of the test's runtimes is selected: one instance, skipped with why.
    return [pytest.param(wanted[0], marks=pytest.mark.skip(
        reason=f"runs on {', '.join(wanted)}; --runtime selects {', '.join(selected)}"))]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "simpler_platform" in metafunc.fixturenames and not _parametrized_by_test(metafunc, "simpler_platform"):
        metafunc.parametrize("simpler_platform", selected_platforms(metafunc.config), scope="session")
    if ("simpler_runtime" in metafunc.fixturenames and not _parametrized_by_test(metafunc, "simpler_runtime")
            and _runtime_is_ours(metafunc)):
        metafunc.parametrize("simpler_runtime", _runtime_params(metafunc), scope="session")


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    """A runtime a conftest picks that --runtime does not select: the test
    is skipped (pytest tests/st --runtime tensormap_and_ringbuffer runs
    that suite's half only)."""
    value = yield
    if fixturedef.argname == "simpler_runtime" and isinstance(value, str):
        selected = selected_runtimes(request.config)
        if value not in selected:
            pytest.skip(f"runtime {value}; --runtime selects {', '.join(selected)}")
    return value


class WorkerPool:
    """One ChipWorker per (platform, runtime, device), made on first use,
    in the session's device directory."""

    def __init__(self, device_dir: str | None = None) -> None:
        self._workers: dict[tuple[str, str, int], ChipWorker] = {}
        self._multi: dict[tuple[str, str, tuple[int, ...]], Any] = {}
        self._device_dir = device_dir

    def get(self, platform: str, runtime: str, device_id: int) -> ChipWorker:
        key = (platform, runtime, device_id)
        worker = self._workers.get(key)
        if worker is None or not worker.usable:
            if worker is not None:
                worker.finalize()
            with testing._environ(SIMPLER_DEVICE_DIR=self._device_dir):
                worker = ChipWorker(platform=platform, runtime=runtime, device_id=device_id)
            self._workers[key] = worker
        return worker

    def get_multi(self, platform: str, runtime: str, devices: list[int]) -> "Worker":
        from .multi_chip import Worker
        key = (platform, runtime, tuple(devices))
        worker = self._multi.get(key)
        if worker is None or not all(c.usable for c in worker.chips.values()):
            if worker is not None:
                worker.finalize()
            with testing._environ(SIMPLER_DEVICE_DIR=self._device_dir):
                worker = Worker(platform, runtime, devices)
            self._multi[key] = worker
        return worker

    def close(self) -> None:
        for worker in [*self._workers.values(), *self._multi.values()]:
            worker.finalize()
        self._workers.clear()
        self._multi.clear()


@pytest.fixture(scope="session")
def simpler_worker_pool(pytestconfig: pytest.Config):
    pool = WorkerPool(getattr(pytestconfig, "_simpler_device_dir", os.environ.get("SIMPLER_DEVICE_DIR")))
    yield pool
    pool.close()


@pytest.fixture
def simpler_runtime(request: pytest.FixtureRequest) -> str:
    # Reached only where the test was not parametrized (getfixturevalue).
    marker = request.node.get_closest_marker("simpler_runtime")
    return marker.args[0] if marker else selected_runtimes(request.config)[0]


@pytest.fixture
def simpler_device(request: pytest.FixtureRequest) -> int:
    return request.config.getoption("simpler_device")


@pytest.fixture
def chip_worker(simpler_worker_pool: WorkerPool, simpler_platform: str, simpler_runtime: str,
                simpler_device: int) -> ChipWorker:
    worker = simpler_worker_pool.get(simpler_platform, simpler_runtime, simpler_device)
    yield worker
    if worker.usable:   # the next test gets a worker with nothing in flight and no run thread
        worker.wait()


@pytest.fixture
def simpler_devices(request: pytest.FixtureRequest) -> list[int]:
    return list(request.config.getoption("simpler_devices"))


@pytest.fixture
def simpler_worker(simpler_worker_pool: WorkerPool, simpler_platform: str, simpler_runtime: str,
                   simpler_devices: list[int]):
    """A simpler.Worker over --devices. xdist workers share the devices as
    they share chip_worker's: on sim every Worker's chips are its own; on
    onboard each is a client of the device processes, whose memory is
    its own and whose launches take turns on the chip."""
    worker = simpler_worker_pool.get_multi(simpler_platform, simpler_runtime, simpler_devices)
    yield worker
    if not worker.closed:
        try:
            worker.wait()
        except SimplerError:
            pass        # the test saw (or ignored) its own failures; the next test starts clean


@pytest.fixture
def private_chip_worker(simpler_platform: str, simpler_runtime: str, simpler_device: int) -> ChipWorker:
    """A ChipWorker no other test shares. On onboard it is on a device of
    its own, in a fresh device directory that SIMPLER_DEVICE_DIR names for
    the test's duration (so workers the test makes, simpler.device calls
    and `python -m simpler device` reach that device too); at teardown the
    worker is finalized, the device stopped (killed if hung) and the
    directory removed. On sim a worker is a chip of its own already."""
    if simpler_platform.rsplit(":", 1)[-1] != "onboard":
        worker = ChipWorker(platform=simpler_platform, runtime=simpler_runtime, device_id=simpler_device)
        yield worker
        worker.finalize(cancel=True)
        return
    with testing.private_device_dir():
        worker = ChipWorker(platform=simpler_platform, runtime=simpler_runtime, device_id=simpler_device)
        try:
            yield worker
        finally:
            worker.finalize(cancel=True)


@pytest.fixture(scope="session")
def kernel_compiler() -> KernelCompiler:
    return KernelCompiler()


@pytest.fixture
def golden():
    return testing.assert_golden
