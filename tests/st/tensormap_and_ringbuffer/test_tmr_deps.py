"""Dependency tracking on tensormap_and_ringbuffer (tests in ../deps_tests.py)."""
from deps_tests import *  # noqa: F401,F403
