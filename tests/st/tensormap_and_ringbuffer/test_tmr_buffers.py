"""Callable buffers on tensormap_and_ringbuffer (tests in ../buffer_tests.py)."""
from buffer_tests import *  # noqa: F401,F403
