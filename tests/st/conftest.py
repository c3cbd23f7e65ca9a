"""Shared by the scene suites: the scene library and a registered-callable
fixture that unregisters after each test."""
from __future__ import annotations

import pytest

import scenes


@pytest.fixture
def scene(chip_worker, kernel_compiler):
    """scene(name) -> callable id registered on chip_worker for this test."""
    ids = []

    def register(name: str) -> int:
        cid = chip_worker.register(scenes.callable_(kernel_compiler, name))
        ids.append(cid)
        return cid

    yield register
    for cid in ids:
        if chip_worker.usable and cid in chip_worker.callables:
            chip_worker.unregister(cid)
