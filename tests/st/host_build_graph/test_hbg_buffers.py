"""Callable buffers on host_build_graph (tests in ../buffer_tests.py)."""
from buffer_tests import *  # noqa: F401,F403
