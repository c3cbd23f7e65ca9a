"""Runs in flight on host_build_graph (tests in ../submit_tests.py)."""
from submit_tests import *  # noqa: F401,F403
