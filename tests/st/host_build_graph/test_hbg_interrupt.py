"""Ctrl-C during a run on host_build_graph (tests in ../interrupt_tests.py)."""
from interrupt_tests import *  # noqa: F401,F403
