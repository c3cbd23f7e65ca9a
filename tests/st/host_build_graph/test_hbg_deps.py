"""Dependency tracking on host_build_graph (tests in ../deps_tests.py)."""
import numpy as np

from deps_tests import *  # noqa: F401,F403


def test_host_memory_kept_follows_the_recent_runs(chip_worker, scene):
    """The builder's arrays and its dependency tracker are kept from one run
    for the next, so that a run of the size of the last allocates nothing;
    stats say how much is kept, and a much smaller run gives most of it
    back rather than holding the largest run's memory for ever."""
    cid = scene("stream")
    x = np.arange(512 * 4, dtype=np.float32).reshape(512, 4)
    y = np.zeros_like(x)
    chip_worker.run(cid, [x, y, 20_000])            # 40,000 tasks
    np.testing.assert_array_equal(y, 2 * x + 1)
    big = chip_worker.stats["host_cache_bytes"]
    assert big > 40_000 * 100, f"{big} bytes kept after 40,000 tasks"
    y[:] = 0
    chip_worker.run(cid, [x, y, 20_000])
    np.testing.assert_array_equal(y, 2 * x + 1)
    assert chip_worker.stats["host_cache_bytes"] == big, "a run of the same size grew what is kept"
    y[:] = 0
    chip_worker.run(cid, [x, y, 10])
    np.testing.assert_array_equal(y[:10], 2 * x[:10] + 1)
    small = chip_worker.stats["host_cache_bytes"]
    assert 0 < small and small * 8 < big, f"{small} bytes kept after 20 tasks, {big} after 40,000"
