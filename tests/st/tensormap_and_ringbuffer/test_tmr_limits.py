"""Per-task limits on tensormap_and_ringbuffer (tests in ../limits_tests.py)."""
from limits_tests import *  # noqa: F401,F403
