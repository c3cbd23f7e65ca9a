"""The multi-chip Worker on tensormap_and_ringbuffer (tests in ../multi_chip_tests.py)."""
from multi_chip_tests import *  # noqa: F401,F403
