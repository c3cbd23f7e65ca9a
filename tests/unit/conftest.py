"""Fixtures of the unit tests: the runtime of chip_worker, a private
onboard device directory (for tests that crash, hang or stop their device)
and a module's compiler."""
from __future__ import annotations

import pytest

import simpler
from onboard_helpers import PrivateDevice


@pytest.fixture
def simpler_runtime() -> str:
    """The unit tests test the host side, which both runtimes share: they
    run on one (the runtime suites in tests/st run on each)."""
    return "host_build_graph"


@pytest.fixture
def private_device(monkeypatch):
    d = PrivateDevice(monkeypatch)
    yield d
    d.close()


@pytest.fixture(scope="module")
def kc():
    return simpler.KernelCompiler()
