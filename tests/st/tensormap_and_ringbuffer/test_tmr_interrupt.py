"""Ctrl-C during a run on tensormap_and_ringbuffer (tests in ../interrupt_tests.py)."""
from interrupt_tests import *  # noqa: F401,F403
