"""The swimlane trace, shared by the runtime suites: every task's blocks on
cores of the right type, edges that are real dependencies, a Chrome trace
Perfetto can open, and nothing recorded unless asked."""
from __future__ import annotations

import json

import numpy as np

import scenes
import simpler

F32 = np.float32
ROWS, STEPS = 10, 100  # the chains scene: 1,000 tasks, task id = step * ROWS + row


def test_trace_of_a_thousand_tasks(chip_worker, scene, tmp_path, simpler_runtime):
    cid = scene("chains")
    X = np.zeros((ROWS, 4), F32)
    chip_worker.run(cid, simpler.TaskArgs(X, STEPS), trace=True, block_dim=2)
    np.testing.assert_array_equal(X, STEPS)
    trace = chip_worker.last_trace
    blocks = trace.blocks
    assert sorted(blocks["task"].tolist()) == list(range(ROWS * STEPS))
    assert (blocks["where"] % 3 != 0).all()        # inc runs on AIV cores only
    assert (blocks["where"] < 6).all()             # block_dim=2: cores 0..5
    assert (blocks["start_ns"] <= blocks["end_ns"]).all()
    assert trace.dropped_events == 0
    # Every recorded edge is a real dependency: the same row, one step on.
    diffs = (trace.edges["consumer"].astype(np.int64) - trace.edges["producer"].astype(np.int64))
    assert (diffs == ROWS).all()
    if simpler_runtime == "host_build_graph":
        assert len(trace.edges) == ROWS * (STEPS - 1)  # the whole graph is known
    # A task runs only after its producer ended.
    end = {int(t): int(e) for t, e in zip(blocks["task"], blocks["end_ns"])}
    start = {int(t): int(s) for t, s in zip(blocks["task"], blocks["start_ns"])}
    assert all(start[int(c)] >= end[int(p)] for p, c in trace.edges)

    path = tmp_path / "run.json"
    trace.save_chrome(path)
    doc = json.loads(path.read_text())
    spans = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["pid"] == 1]
    assert len(spans) == ROWS * STEPS
    recorded_us = (blocks["end_ns"].astype(np.int64) - blocks["start_ns"].astype(np.int64)).sum() / 1000
    assert abs(sum(e["dur"] for e in spans) - recorded_us) < 1e-3 * max(recorded_us, 1)
    assert {e["tid"] - 1 for e in spans} == set(blocks["where"].tolist())  # each block on its own core's track
    names = {e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"}
    assert any("AIV" in n for n in names)
    trace.save_graph_json(tmp_path / "graph.json")
    graph = json.loads((tmp_path / "graph.json").read_text())
    assert len(graph["tasks"]) == ROWS * STEPS and len(graph["edges"]) == len(trace.edges)
    trace.save_dot(tmp_path / "graph.dot")
    assert (tmp_path / "graph.dot").read_text().count("->") == len(trace.edges)


def test_trace_is_off_unless_asked(simpler_platform, simpler_runtime, kernel_compiler):
    with simpler.ChipWorker(simpler_platform, simpler_runtime) as w:
        cid = w.register(scenes.callable_(kernel_compiler, "chains"))
        w.run(cid, simpler.TaskArgs(np.zeros((2, 2), F32), 5))
        assert w.last_trace is None
        w.run(cid, simpler.TaskArgs(np.zeros((2, 2), F32), 50), trace=20)  # a small buffer: the rest is counted
        trace = w.last_trace
        assert len(trace.events) == 20 and trace.dropped_events > 0
        # A traced run that fails before launching leaves no trace, not an old one.
        try:
            w.run(cid, simpler.TaskArgs(np.zeros((2, 2), np.float64), 5), trace=20)
        except simpler.InvalidArgument:
            pass
        assert w.last_trace is None
