"""Bad input on host_build_graph (tests in ../error_tests.py)."""
from error_tests import *  # noqa: F401,F403
