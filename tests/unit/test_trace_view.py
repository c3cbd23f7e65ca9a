"""What a trace shows of itself: spans named by kernel, dependency arrows,
the summary (per kernel, per core, critical path) and the swimlane
picture, on a small trace made by hand whose answers are known."""
from __future__ import annotations

import json
import os
import re
import sys
import xml.etree.ElementTree as ET

import pytest

import simpler
from simpler._native import lib
from simpler.trace import MAX_RECTS
from trace_records import trace_bytes

B, SLEEP = lib.SIMPLER_TRACE_BLOCK, lib.SIMPLER_TRACE_SLEEP

# (task, start, end, kind, where, func, block). Core 0 is an AIC, 1 and 2 AIVs.
EVENTS = [
    (0, 0, 1000, B, 0, 5, 0),          # gemm
    (1, 1100, 1600, B, 1, 6, 0),       # func 6 (unnamed), two blocks: first starts on core 1,
    (1, 1200, 2000, B, 2, 6, 1),       # the last ends on core 2
    (2, 1000, 1500, B, 0, 5, 0),       # gemm
    (3, 2100, 2600, B, 1, 6, 0),
    (0, 0, 2600, SLEEP, 0, 0, 0),      # an AICPU thread: not a task
]
# 2 -> 1 ended after 1 started: not what 1 waited on. 99 was never traced: no arrow.
EDGES = [(0, 1), (1, 3), (2, 3), (2, 1), (3, 99)]
NAMES = {5: "gemm"}


@pytest.fixture
def trace() -> simpler.Trace:
    return simpler.Trace(trace_bytes(EVENTS, EDGES, callable_id=3), names=NAMES)


def spans(doc):
    return [e for e in doc["traceEvents"] if e["ph"] == "X" and e["pid"] == 1]


def test_block_spans_are_named_by_kernel_with_their_task_block_and_core(trace):
    assert trace.callable_id == 3
    got = sorted((e["name"], e["args"]["task"], e["args"]["func_id"], e["args"]["block"], e["args"]["core"], e["tid"])
                 for e in spans(trace.to_chrome()))
    assert got == [("func 6", 1, 6, 0, 1, 2), ("func 6", 1, 6, 1, 2, 3), ("func 6", 3, 6, 0, 1, 2),
                   ("gemm", 0, 5, 0, 0, 1), ("gemm", 2, 5, 0, 0, 1)]
    # Without names (a bare Trace(raw)) spans go by func id.
    assert {e["name"] for e in spans(simpler.Trace(trace_bytes(EVENTS, EDGES)).to_chrome())} == {"func 5", "func 6"}


def test_every_traced_edge_is_one_flow_from_the_producers_last_block_to_the_consumers_first(trace):
    doc = trace.to_chrome()
    starts = {e["id"]: e for e in doc["traceEvents"] if e["ph"] == "s"}
    ends = {e["id"]: e for e in doc["traceEvents"] if e["ph"] == "f"}
    assert set(starts) == set(ends) and len(starts) == 4             # (3, 99): its consumer never ran
    assert all(e["bp"] == "e" for e in ends.values())
    by_pos = {(e["tid"], e["ts"]): e for e in spans(doc)}

    def span_of(flow):   # the span the flow sits inside, on its own track
        inside = [s for (tid, ts), s in by_pos.items() if tid == flow["tid"] and ts <= flow["ts"] <= ts + s["dur"]]
        assert len(inside) == 1, flow
        return inside[0]["args"]["task"], inside[0]["args"]["block"]

    pairs = sorted((span_of(starts[i]), span_of(ends[i])) for i in starts)
    # task 1 ended on its block 1 (core 2) and started on its block 0 (core 1).
    assert pairs == [((0, 0), (1, 0)), ((1, 1), (3, 0)), ((2, 0), (1, 0)), ((2, 0), (3, 0))]


def test_graphs_use_the_kernel_names(trace, tmp_path):
    trace.save_graph_json(tmp_path / "g.json")
    g = json.loads((tmp_path / "g.json").read_text())
    assert g["tasks"] == [{"id": 0, "func_id": 5, "name": "gemm"}, {"id": 1, "func_id": 6, "name": "func 6"},
                          {"id": 2, "func_id": 5, "name": "gemm"}, {"id": 3, "func_id": 6, "name": "func 6"}]
    assert g["edges"] == [list(e) for e in EDGES]
    trace.save_dot(tmp_path / "g.dot")
    dot = (tmp_path / "g.dot").read_text()
    assert 't0 [label="0\\ngemm"]' in dot and 't1 [label="1\\nfunc 6"]' in dot and dot.count("->") == len(EDGES)


def test_summary_per_kernel_per_core_and_the_critical_path(trace):
    s = trace.summary()
    assert s.wall_ns == 2600
    k = {x.name: x for x in s.kernels}
    assert (k["gemm"].count, k["gemm"].blocks, k["gemm"].total_ns, k["gemm"].mean_ns) == (2, 2, 1500, 750)
    assert (k["func 6"].count, k["func 6"].blocks, k["func 6"].total_ns) == (2, 3, 1400)   # task 1: 1100..2000
    assert k["func 6"].p50_ns == 700 and 500 < k["func 6"].p99_ns <= 900
    assert s.cores == pytest.approx({0: 1500 / 2600, 1: 1000 / 2600, 2: 800 / 2600})
    # From task 3 (ended last): 1 ended after 2 and before 3 began; 1 waited
    # on 0, not on 2 (which ended after 1 began).
    assert s.critical_path == (0, 1, 3) and s.critical_path_names == ("gemm", "func 6", "func 6")
    assert (s.critical_path_ns, s.critical_busy_ns) == (2600, 1000 + 900 + 500)
    text = str(s)
    assert re.search(r"gemm\s+2\s+2\s+1.5 us", text) and "0 gemm -> 1 func 6 -> 3 func 6" in text
    assert "critical path: 3 tasks, 2.6 us of 2.6 us wall (100%)" in text
    assert "core busy: core 0 (AIC) 58%, core 1 (AIV) 38%, core 2 (AIV) 31%" in text
    assert "<table>" in s._repr_html_() and "gemm" in s._repr_html_()


def test_summary_says_when_edges_were_dropped():
    s = simpler.Trace(trace_bytes(EVENTS, EDGES, dropped=(0, 7)), names=NAMES).summary()
    assert s.dropped_edges == 7 and "7 edges dropped: it may stop short" in str(s)
    assert "dropped" not in str(simpler.Trace(trace_bytes(EVENTS, EDGES)).summary())


def test_summary_of_a_trace_without_blocks():
    s = simpler.Trace(trace_bytes([(0, 0, 5, SLEEP, 0, 0, 0)], [])).summary()
    assert (s.wall_ns, s.kernels, s.critical_path) == (0, (), ())
    assert "critical path: 0 tasks" in str(s)


def titles(svg):
    return re.findall(r"<title>([^<]*)</title>", svg)


def test_the_swimlane_has_a_rectangle_per_block_coloured_per_kernel(trace):
    svg = trace._repr_html_()
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    got = sorted(titles(svg))
    assert len(got) == 5 and "gemm: task 0 block 0, core 0 (AIC), 1 us" in got
    assert "func 6: task 1 block 1, core 2 (AIV), 800 ns" in got
    pairs = set(re.findall(r"fill='([^']*)'><title>([^:]*):", svg))
    assert len(pairs) == 2 and len({f for f, _ in pairs}) == 2          # one colour per kernel, two kernels
    again = simpler.Trace(trace_bytes(EVENTS[::-1], EDGES), names=NAMES)._repr_html_()
    assert set(re.findall(r"fill='([^']*)'><title>([^:]*):", again)) == pairs   # stable
    assert len(re.findall(r"<text[^>]*>core \d", svg)) == 3            # a lane per core


def test_a_big_trace_is_drawn_with_at_most_max_rects_and_says_so():
    # Runs of one kernel per core: neighbours merge, each rectangle names its kernel.
    events = [(i, 100 * i, 100 * i + 90, B, i % 4, i // 5000, 0) for i in range(20_000)]
    svg = simpler.Trace(trace_bytes(events, [])).to_svg()
    assert len(titles(svg)) <= MAX_RECTS and "20000 blocks merged into" in svg
    assert {t.split(":")[0] for t in titles(svg)} == {"func 0", "func 1", "func 2", "func 3"}
    assert sum(int(re.search(r": (\d+) blocks", t).group(1)) for t in titles(svg)) == 20_000
    # Kernels alternating block by block: binned, each bin coloured by the kernel that ran most of it.
    events = [(i, 100 * i, 100 * i + (90 if i % 3 else 30), B, i % 4, i % 3, 0) for i in range(20_000)]
    svg = simpler.Trace(trace_bytes(events, [])).to_svg()
    assert len(titles(svg)) <= MAX_RECTS and "20000 blocks binned into" in svg
    assert sum(int(re.match(r"(\d+) blocks", t).group(1)) for t in titles(svg)) == 20_000
    assert all(re.search(r"mostly func [12] \(\d+%\)", t) for t in titles(svg))   # func 0's blocks are short
    small = simpler.Trace(trace_bytes(EVENTS, EDGES)).to_svg(max_rects=4)
    assert len(titles(small)) <= 4 and "5 blocks merged into 4 rectangles" in small
    assert "func 5: 2 blocks, 1.5 us" in titles(small)     # tasks 0 and 2, back to back on core 0
    small = simpler.Trace(trace_bytes(EVENTS, EDGES)).to_svg(max_rects=3)
    assert len(titles(small)) == 3 and "binned" in small and "1 block, 800 ns: mostly func 6 (100%)" in titles(small)
    with pytest.raises(simpler.InvalidArgument, match="fewer than the 3 cores"):
        simpler.Trace(trace_bytes(EVENTS, EDGES)).to_svg(max_rects=2)


def test_pictures_check_their_arguments(trace):
    for bad in (dict(width=10), dict(width="wide"), dict(max_rects=0), dict(max_rects=True)):
        with pytest.raises(simpler.InvalidArgument):
            trace.to_svg(**bad)
    with pytest.raises(simpler.InvalidArgument, match="names maps func ids"):
        simpler.Trace(trace_bytes(EVENTS, EDGES), names={"gemm": 5})
    with pytest.raises(simpler.InvalidArgument, match="control character"):
        simpler.Trace(trace_bytes(EVENTS, EDGES), names={5: "ge\x01mm"})
    # Any printable name is drawn into well-formed XML.
    ET.fromstring(simpler.Trace(trace_bytes(EVENTS, EDGES), names={5: "<g&\"'>加"}).to_svg())
    with pytest.raises(simpler.InvalidArgument, match="not int"):
        simpler.Trace(12)


def test_writers_take_only_paths_and_kernel_name_only_ints(trace, tmp_path):
    # open() would take an int as a file descriptor: write into it and close it.
    r, w = os.pipe()
    try:
        for save in (trace.save_chrome, trace.save_dot, trace.save_graph_json):
            for bad in (w, None, b"", ""):
                with pytest.raises(simpler.InvalidArgument, match="must be a file path"):
                    save(bad)
        os.fstat(w)                                          # still open
    finally:
        os.close(r)
        os.close(w)
    for bad in ("5", None, 1.5, True):
        with pytest.raises(simpler.InvalidArgument, match="func_id must be an int"):
            trace.kernel_name(bad)
    assert trace.kernel_name(5) == "gemm"


def test_plot_without_matplotlib_says_what_to_install(trace, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import matplotlib raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(simpler.Unsupported, match="pip install matplotlib"):
        trace.plot()


def test_plot_with_matplotlib_draws_a_bar_per_block(trace):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    ax = trace.plot()
    bars = sum(len(c.get_paths()) for c in ax.collections)
    assert bars == 5 and {t.get_text() for t in ax.get_legend().get_texts()} == {"gemm", "func 6"}
