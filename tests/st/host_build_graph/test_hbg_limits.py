"""Per-task limits on host_build_graph (tests in ../limits_tests.py)."""
from limits_tests import *  # noqa: F401,F403
