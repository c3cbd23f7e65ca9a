"""Every scene on tensormap_and_ringbuffer (tests in ../scene_tests.py)."""
from scene_tests import *  # noqa: F401,F403
