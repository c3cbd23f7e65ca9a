"""The trace on host_build_graph (tests in ../trace_tests.py)."""
from trace_tests import *  # noqa: F401,F403
