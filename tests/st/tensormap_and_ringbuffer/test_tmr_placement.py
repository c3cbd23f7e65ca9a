"""Thread placement on tensormap_and_ringbuffer (tests in ../placement_tests.py)."""
from placement_tests import *  # noqa: F401,F403
