"""A run's trace: every block of every task on its core, with start and end;
the AICPU threads' sleeps and the orchestrator's work and waits; the
dependency edges. Written as a Chrome trace (opens in Perfetto or
chrome://tracing) and as a DOT or JSON graph.

    worker.run(cid, args, trace=True)
    worker.last_trace.save_chrome("run.json")     # ui.perfetto.dev: open trace file
"""
from __future__ import annotations

import json
import os
import struct
from typing import Any

import numpy as np

KINDS = {0: "block", 1: "sleep", 2: "orchestrate", 3: "wait"}
EVENT = np.dtype([("task", "<u8"), ("start_ns", "<u8"), ("end_ns", "<u8"), ("kind", "<u4"), ("where", "<u4"),
                  ("func_id", "<u4"), ("block", "<u4")])
EDGE = np.dtype([("producer", "<u8"), ("consumer", "<u8")])
_HEADER = struct.Struct("<QIIIIIIQQ")  # csrc/common/trace.h: simpler_trace
MAGIC = 0x31434152544C5053


class Trace:
    """A parsed run trace. ``events`` and ``edges`` are numpy record arrays."""

    def __init__(self, raw: bytes, platform: str = "sim") -> None:
        (magic, max_events, max_edges, n_events, n_edges, dropped_events, dropped_edges, events_off,
         edges_off) = _HEADER.unpack_from(raw, 0)
        if magic != MAGIC:
            raise ValueError("not a simpler trace")
        self.events = np.frombuffer(raw, EVENT, n_events, events_off).copy()
        self.edges = np.frombuffer(raw, EDGE, n_edges, edges_off).copy()
        self.dropped_events = dropped_events
        self.dropped_edges = dropped_edges
        self.platform = platform

    @property
    def blocks(self) -> np.ndarray:
        """The task blocks that ran: task, core (``where``), start and end."""
        return self.events[self.events["kind"] == 0]

    def __repr__(self) -> str:
        tasks = len(np.unique(self.blocks["task"]))
        cores = len(np.unique(self.blocks["where"]))
        return (f"<Trace {tasks} tasks in {len(self.blocks)} blocks on {cores} cores, {len(self.edges)} edges"
                f"{f', {self.dropped_events} events dropped' if self.dropped_events else ''}>")

    def to_chrome(self) -> dict[str, Any]:
        """The trace as a Chrome trace-event document: one track per core
        (AIC/AIV) and per AICPU thread; times in microseconds from the
        first event."""
        if len(self.events) == 0:
            return {"traceEvents": [], "displayTimeUnit": "ns"}
        t0 = int(self.events["start_ns"].min())
        events: list[dict[str, Any]] = []
        named: set[tuple[int, int]] = set()

        def track(pid: int, tid: int, name: str) -> None:
            if (pid, tid) not in named:
                named.add((pid, tid))
                events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}})

        events.append({"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "AICore"}})
        events.append({"ph": "M", "name": "process_name", "pid": 2, "args": {"name": "AICPU"}})
        for e in self.events:
            kind = KINDS.get(int(e["kind"]), "event")
            ts = (int(e["start_ns"]) - t0) / 1000.0
            dur = max(int(e["end_ns"]) - int(e["start_ns"]), 0) / 1000.0
            where = int(e["where"]) + 1  # tids from 1: some viewers treat tid 0 specially
            if kind == "block":
                track(1, where, f"core {where - 1} ({'AIC' if (where - 1) % 3 == 0 else 'AIV'})")
                events.append({"ph": "X", "pid": 1, "tid": where, "ts": ts, "dur": dur,
                               "name": f"task {int(e['task'])} (func {int(e['func_id'])})",
                               "args": {"task": int(e["task"]), "func_id": int(e["func_id"]),
                                        "block": int(e["block"])}})
            else:
                track(2, where, f"AICPU thread {where - 1}")
                events.append({"ph": "X", "pid": 2, "tid": where, "ts": ts, "dur": dur, "name": kind,
                               "args": {"tasks_submitted": int(e["task"])} if kind != "sleep" else {}})
        return {"traceEvents": events, "displayTimeUnit": "ns",
                "otherData": {"platform": self.platform, "dropped_events": self.dropped_events,
                              "dropped_edges": self.dropped_edges}}

    def save_chrome(self, path: str | os.PathLike) -> None:
        with open(path, "w") as f:
            json.dump(self.to_chrome(), f)

    def save_dot(self, path: str | os.PathLike) -> None:
        """The dependency graph in Graphviz DOT: a node per task (labelled
        with its function), an edge per dependency the runtime recorded."""
        funcs = {int(t): int(f) for t, f in zip(self.blocks["task"], self.blocks["func_id"])}
        with open(path, "w") as f:
            f.write("digraph simpler {\n  node [shape=box];\n")
            for task, func in sorted(funcs.items()):
                f.write(f'  t{task} [label="{task}\\nfunc {func}"];\n')
            for p, c in self.edges:
                f.write(f"  t{int(p)} -> t{int(c)};\n")
            f.write("}\n")

    def save_graph_json(self, path: str | os.PathLike) -> None:
        """The dependency graph as JSON: {"tasks": [{id, func_id}], "edges": [[producer, consumer]]}."""
        funcs = {int(t): int(f) for t, f in zip(self.blocks["task"], self.blocks["func_id"])}
        with open(path, "w") as f:
            json.dump({"tasks": [{"id": t, "func_id": fn} for t, fn in sorted(funcs.items())],
                       "edges": [[int(p), int(c)] for p, c in self.edges]}, f)
