"""Every scene on host_build_graph (tests in ../scene_tests.py)."""
from scene_tests import *  # noqa: F401,F403
