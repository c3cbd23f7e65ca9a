"""Recorded graphs on tensormap_and_ringbuffer (tests in ../replay_tests.py)."""
from replay_tests import *  # noqa: F401,F403
