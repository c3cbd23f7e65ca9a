"""The swimlane trace, shared by the runtime suites: every task's blocks on
cores of the right type, edges that are real dependencies, a Chrome trace
Perfetto can open (spans named by kernel, an arrow per edge; its schema
checked field by field: Perfetto's own trace processor downloads a binary
when it starts, which a test cannot rely on), the summary and the
swimlane, and nothing recorded unless asked."""
from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np

import scenes
import simpler
from simpler.trace import MAX_RECTS

F32 = np.float32
ROWS, STEPS = 10, 100  # the chains scene: 1,000 tasks, task id = step * ROWS + row
NUMBER = (int, float)


def check_chrome_schema(doc: dict) -> dict[int, tuple[dict, dict]]:
    """Assert doc is a valid Chrome trace-event document as simpler writes
    it; return its flows, {id: (start, finish)}."""
    assert isinstance(doc, dict) and isinstance(doc["traceEvents"], list)
    json.dumps(doc, allow_nan=False)            # a NaN or infinity is no JSON a viewer reads
    named_tracks, named_pids, used = set(), set(), set()
    flows: dict[str, dict[int, dict]] = {"s": {}, "f": {}}
    for e in doc["traceEvents"]:
        assert isinstance(e["name"], str) and e["name"], e
        assert e["ph"] in ("X", "M", "s", "f"), e
        for field in ("pid", "tid"):
            assert type(e[field]) is int and e[field] >= 0, e
        assert type(e["ts"]) in NUMBER and e["ts"] >= 0, e
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name") and isinstance(e["args"]["name"], str), e
            (named_pids.add(e["pid"]) if e["name"] == "process_name" else named_tracks.add((e["pid"], e["tid"])))
            continue
        used.add((e["pid"], e["tid"]))
        if e["ph"] == "X":
            assert type(e["dur"]) in NUMBER and e["dur"] >= 0 and isinstance(e.get("args", {}), dict), e
        else:
            assert type(e["id"]) is int and isinstance(e["cat"], str), e
            assert e["id"] not in flows[e["ph"]], f"flow id {e['id']} used twice"
            assert e["ph"] == "s" or e["bp"] == "e", e     # a finish binds to the span it is in
            flows[e["ph"]][e["id"]] = e
    assert flows["s"].keys() == flows["f"].keys(), "flow starts and finishes do not pair up"
    assert used <= named_tracks and {pid for pid, _ in used} <= named_pids, "a track without a name"
    return {i: (flows["s"][i], flows["f"][i]) for i in flows["s"]}


def span_at(spans: list[dict], flow: dict) -> dict:
    """The one block span a flow event sits in, on its own track."""
    inside = [s for s in spans if s["tid"] == flow["tid"] and s["ts"] <= flow["ts"] <= s["ts"] + s["dur"]]
    assert len(inside) == 1, (flow, inside)
    return inside[0]


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
    flows = check_chrome_schema(doc)
    spans = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["pid"] == 1]
    assert len(spans) == ROWS * STEPS
    # Named by kernel, with the task, func id, block and core in the args.
    assert {e["name"] for e in spans} == {"inc"}
    assert sorted(e["args"]["task"] for e in spans) == list(range(ROWS * STEPS))
    assert all(e["args"]["func_id"] == scenes.KERNELS["inc"][0] and e["args"]["core"] == e["tid"] - 1
               and e["args"]["block"] == 0 for e in spans)
    # An arrow per edge, from its producer's span to its consumer's.
    assert len(flows) == len(trace.edges) > 0
    arrows = sorted((span_at(spans, s)["args"]["task"], span_at(spans, f)["args"]["task"]) for s, f in flows.values())
    assert arrows == sorted((int(p), int(c)) for p, c in trace.edges)
    recorded_us = (blocks["end_ns"].astype(np.int64) - blocks["start_ns"].astype(np.int64)).sum() / 1000
    assert abs(sum(e["dur"] for e in spans) - recorded_us) < 1e-3 * max(recorded_us, 1)
    assert {e["tid"] - 1 for e in spans} == set(blocks["where"].tolist())  # each block on its own core's track
    names = {e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"}
    assert any("AIV" in n for n in names)
    trace.save_graph_json(tmp_path / "graph.json")
    graph = json.loads((tmp_path / "graph.json").read_text())
    assert len(graph["tasks"]) == ROWS * STEPS and len(graph["edges"]) == len(trace.edges)
    assert {t["name"] for t in graph["tasks"]} == {"inc"}
    trace.save_dot(tmp_path / "graph.dot")
    dot = (tmp_path / "graph.dot").read_text()
    assert dot.count("->") == len(trace.edges) and dot.count("\\ninc\"") == ROWS * STEPS


def random_dag_kernels(seed: int, tasks: int) -> list[str]:
    """The kernel of each task scenes/orch/random_dag.c submits, in order."""
    state, out = seed, []

    def nxt() -> int:
        nonlocal state
        state = (state * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        return state >> 33

    for _ in range(tasks):
        nxt(), nxt(), nxt()     # the row written and the two read
        out.append("add" if nxt() % 3 else "add_scalar")
    return out


def test_summary_and_swimlane_of_a_random_graph(chip_worker, scene):
    cid = scene("random_dag")
    tasks, rows = 1000, 16
    chip_worker.run(cid, [np.ones((rows, 32), F32), 7, tasks], trace=True)
    trace = chip_worker.last_trace
    assert trace.callable_id == int(cid) and trace.names == chip_worker.callables[int(cid)].kernel_names
    kernels = random_dag_kernels(7, tasks)
    s = trace.summary()
    assert {k.name: k.count for k in s.kernels} == Counter(kernels)
    assert all(k.blocks == k.count and 0 <= k.p50_ns <= k.p99_ns for k in s.kernels)
    # The critical path: a chain of real edges, each task after the one it
    # waited on, ending with the task that ended last.
    t = trace.blocks
    start = dict(zip(t["task"].tolist(), t["start_ns"].tolist()))
    end = dict(zip(t["task"].tolist(), t["end_ns"].tolist()))
    edges = {(int(p), int(c)) for p, c in trace.edges}
    path = s.critical_path
    assert len(path) > 1 and end[path[-1]] == max(end.values())
    assert all((a, b) in edges and end[a] <= start[b] for a, b in zip(path, path[1:]))
    assert [kernels[i] for i in path] == list(s.critical_path_names)
    longest = max(end[i] - start[i] for i in end)
    assert longest <= s.critical_path_ns <= s.wall_ns and s.critical_busy_ns <= s.critical_path_ns
    assert all(0 < f <= 1 for f in s.cores.values()) and set(s.cores) == set(t["where"].tolist())
    assert "add_scalar" in str(s) and f"critical path: {len(path)} tasks" in str(s)
    # The swimlane: a rectangle per block (1,000 < MAX_RECTS), its hover
    # text naming the kernel and task.
    svg = trace._repr_html_()
    titles = re.findall(r"<title>([^<]*)</title>", svg)
    assert len(titles) == tasks < MAX_RECTS
    assert sorted(int(re.match(r"(\w+): task (\d+)", x).group(2)) for x in titles) == list(range(tasks))
    assert all(x.startswith(kernels[int(re.match(r"\w+: task (\d+)", x).group(1))] + ":") for x in titles)
    assert "merged" not in svg


def test_kernel_names_come_from_the_blob(kernel_compiler):
    built = scenes.callable_(kernel_compiler, "chains")
    names = {fid: name for name, (fid, *_) in scenes.KERNELS.items()}
    assert built.kernel_names == names
    assert simpler.ChipCallable.from_bytes(built.to_bytes()).kernel_names == names


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
