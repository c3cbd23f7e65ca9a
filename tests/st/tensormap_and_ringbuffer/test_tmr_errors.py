"""Bad input on tensormap_and_ringbuffer (tests in ../error_tests.py)."""
from error_tests import *  # noqa: F401,F403
