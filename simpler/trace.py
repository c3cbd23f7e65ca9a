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
from typing import Any

import numpy as np

from ._simpler_c import ffi, lib


def _record_dtype(ctype: str) -> np.dtype:
    """A numpy dtype laid out exactly as the C struct: its fields' names,
    sizes and offsets from cffi, its item size from sizeof."""
    names, formats, offsets = [], [], []
    for name, f in ffi.typeof(ctype).fields:
        if f.type.kind != "primitive" or not f.type.cname.startswith("uint"):
            raise TypeError(f"{ctype}.{name}: a trace record holds unsigned integers only")
        names.append(name)
        formats.append(f"=u{ffi.sizeof(f.type)}")
        offsets.append(f.offset)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": ffi.sizeof(ctype)})


EVENT = _record_dtype("simpler_trace_event")
EDGE = _record_dtype("simpler_trace_edge")
# simpler_trace_kind: SIMPLER_TRACE_BLOCK -> "block", ...
KINDS = {code: cname.removeprefix("SIMPLER_TRACE_").lower()
         for code, cname in ffi.typeof("simpler_trace_kind").elements.items()}
_BLOCK = lib.SIMPLER_TRACE_BLOCK


class Trace:
    """A parsed run trace. ``events`` and ``edges`` are numpy record arrays."""

    def __init__(self, raw: bytes, platform: str = "sim") -> None:
        raw = bytes(raw)
        if len(raw) < ffi.sizeof("simpler_trace"):
            raise ValueError(f"not a simpler trace ({len(raw)} bytes is shorter than its header)")
        hdr = ffi.from_buffer("simpler_trace *", raw)
        if hdr.magic != lib.SIMPLER_TRACE_MAGIC:
            raise ValueError("not a simpler trace (bad magic)")
        self.events = self._records(raw, EVENT, hdr.num_events, hdr.max_events, hdr.events_off, "events")
        self.edges = self._records(raw, EDGE, hdr.num_edges, hdr.max_edges, hdr.edges_off, "edges")
        self.dropped_events = int(hdr.dropped_events)
        self.dropped_edges = int(hdr.dropped_edges)
        self.platform = platform

    @staticmethod
    def _records(raw: bytes, dtype: np.dtype, count: int, capacity: int, offset: int, what: str) -> np.ndarray:
        if count > capacity or offset + count * dtype.itemsize > len(raw):
            raise ValueError(f"not a simpler trace: {count} {what} at offset {offset} do not fit "
                             f"(capacity {capacity}, {len(raw)} bytes)")
        return np.frombuffer(raw, dtype, count, offset).copy()

    @property
    def blocks(self) -> np.ndarray:
        """The task blocks that ran: task, core (``where``), start and end."""
        return self.events[self.events["kind"] == _BLOCK]

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
