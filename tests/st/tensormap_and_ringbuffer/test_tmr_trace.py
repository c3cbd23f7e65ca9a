"""The trace on tensormap_and_ringbuffer (tests in ../trace_tests.py)."""
from trace_tests import *  # noqa: F401,F403
