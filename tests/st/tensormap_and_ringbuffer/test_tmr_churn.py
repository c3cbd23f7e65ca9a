"""Churn counters on tensormap_and_ringbuffer (tests in ../churn_tests.py)."""
from churn_tests import *  # noqa: F401,F403
