"""Churn counters on host_build_graph (tests in ../churn_tests.py)."""
from churn_tests import *  # noqa: F401,F403
