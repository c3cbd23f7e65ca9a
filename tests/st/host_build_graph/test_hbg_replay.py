"""Recorded graphs on host_build_graph (tests in ../replay_tests.py)."""
from replay_tests import *  # noqa: F401,F403
