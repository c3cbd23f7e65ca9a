"""Runs in flight on tensormap_and_ringbuffer (tests in ../submit_tests.py)."""
from submit_tests import *  # noqa: F401,F403
