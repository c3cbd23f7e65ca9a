"""The tensormap_and_ringbuffer runtime's device side under the sanitizers,
without Python in the loop: tests/unit/c/test_tmr.c runs the orchestrator
thread and the scheduler threads (csrc/aicpu) and the AICore executor
(csrc/aicore) with threads of its own, an orchestration function and
kernels of its own, and run blocks laid out like
runtime/tensormap_and_ringbuffer/host/ring_setup.c lays them out in GM. It is built
here once with ThreadSanitizer and once with AddressSanitizer + UBSan.

Cases (each for aicpu_thread_num, block_dim in (1, 1), (2, 2), (3, 1)):
a 3,000-task INOUT chain through a 64-slot task ring, the same chain through
2 slots, interleaved chains, a streaming loop of scopes with runtime-
allocated OUTPUTs through small rings, write-after-read ordering, a scope
deadlock on the task ring and an OUTPUT larger than the heap ring.

A data race ThreadSanitizer finds in the runtime fails the test; it is not
suppressed. Races between scheduler threads need the right interleaving,
so the ThreadSanitizer build runs the whole list several times.
"""
from __future__ import annotations

import pytest

from device_programs import run_checked

# argv: scale (percent of the default sizes), rounds of the whole case list
ARGS = {"thread": ["100", "3"], "address": ["100", "1"]}


@pytest.mark.parametrize("sanitizer", ["thread", "address"])
def test_tmr_under_sanitizer(tmp_path, sanitizer):
    # runs of queued tasks are sized to ~20 us of kernels; under a sanitizer
    # every task is slower than that would batch (test_c_scheduler_tsan.py)
    run_checked(tmp_path, "tests/unit/c/test_tmr.c", sanitizer, ARGS[sanitizer],
                defines=("SCHED_RUN_TARGET_NS=2000000ull",))
