import pytest


@pytest.fixture
def simpler_runtime() -> str:
    return "host_build_graph"
