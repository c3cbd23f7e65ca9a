"""pytest plugin (registered through the pytest11 entry point).

Options:
  --platform NAME   run device tests on this platform (repeatable); default:
                    every platform available on this machine
  --device N        device id (default 0)

Fixtures:
  chip_worker       a ChipWorker for (platform, runtime, device), shared by
                    all tests of this process (an xdist worker) and
                    finalized at the end of the session
  simpler_platform  the platform of this test instance (tests using a
                    worker are parametrized over the selected platforms)
  simpler_runtime   "host_build_graph" unless a conftest or
                    @pytest.mark.simpler_runtime("...") says otherwise
  kernel_compiler   a session-wide KernelCompiler
  golden            simpler.testing.assert_golden
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from . import testing
from .compiler import KernelCompiler
from .errors import SimplerError, Unsupported
from .worker import PLATFORMS, ChipWorker


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


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("simpler")
    group.addoption("--platform", action="append", choices=PLATFORMS, dest="simpler_platforms",
                    help="platform to run device tests on (repeatable; default: all available)")
    group.addoption("--device", type=int, default=0, dest="simpler_device",
                    help="device id for device tests (default 0)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "simpler_runtime(name): run this test on the given runtime")
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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "simpler_platform" in metafunc.fixturenames:
        metafunc.parametrize("simpler_platform", selected_platforms(metafunc.config), scope="session")


class WorkerPool:
    """One ChipWorker per (platform, runtime, device), made on first use."""

    def __init__(self) -> None:
        self._workers: dict[tuple[str, str, int], ChipWorker] = {}

    def get(self, platform: str, runtime: str, device_id: int) -> ChipWorker:
        key = (platform, runtime, device_id)
        worker = self._workers.get(key)
        if worker is None or not worker.usable:
            if worker is not None:
                worker.finalize()
            worker = ChipWorker(platform=platform, runtime=runtime, device_id=device_id)
            self._workers[key] = worker
        return worker

    def close(self) -> None:
        for worker in self._workers.values():
            worker.finalize()
        self._workers.clear()


@pytest.fixture(scope="session")
def simpler_worker_pool():
    pool = WorkerPool()
    yield pool
    pool.close()


@pytest.fixture
def simpler_runtime(request: pytest.FixtureRequest) -> str:
    marker = request.node.get_closest_marker("simpler_runtime")
    return marker.args[0] if marker else "host_build_graph"


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


@pytest.fixture(scope="session")
def kernel_compiler() -> KernelCompiler:
    return KernelCompiler()


@pytest.fixture
def golden():
    return testing.assert_golden
