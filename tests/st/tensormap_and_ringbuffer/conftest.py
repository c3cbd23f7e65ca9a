import pytest


@pytest.fixture
def simpler_runtime() -> str:
    return "tensormap_and_ringbuffer"
