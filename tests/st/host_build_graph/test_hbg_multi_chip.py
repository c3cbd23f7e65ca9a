"""The multi-chip Worker on host_build_graph (tests in ../multi_chip_tests.py)."""
from multi_chip_tests import *  # noqa: F401,F403
