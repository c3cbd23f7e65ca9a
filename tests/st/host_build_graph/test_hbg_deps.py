"""Dependency tracking on host_build_graph (tests in ../deps_tests.py)."""
from deps_tests import *  # noqa: F401,F403
