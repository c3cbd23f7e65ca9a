"""Thread placement on host_build_graph (tests in ../placement_tests.py)."""
from placement_tests import *  # noqa: F401,F403
