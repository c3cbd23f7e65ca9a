"""A run's trace: every block of every task on its core, with start and end;
the AICPU threads' sleeps and the orchestrator's work and waits; the
dependency edges. Written as a Chrome trace (opens in Perfetto or
chrome://tracing, block spans named by kernel, dependencies as arrows) and
as a DOT or JSON graph; summarised (per kernel, per core, critical path);
drawn as a swimlane inline in a notebook or with matplotlib.

    worker.run(cid, args, trace=True)
    trace = worker.last_trace
    trace.save_chrome("run.json")     # ui.perfetto.dev: open trace file
    print(trace.summary())
"""
from __future__ import annotations

import html
import json
import os
import zlib
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ._simpler_c import ffi, lib
from .errors import InvalidArgument, Unsupported


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
# The swimlane draws at most this many rectangles: a notebook cell of a
# 200,000-block trace stays a few hundred kilobytes.
MAX_RECTS = 3000


def _core_name(core: int) -> str:
    return f"core {core} ({'AIC' if core % 3 == 0 else 'AIV'})"   # a cluster: one AIC, then two AIV


def _writing(path: Any):
    """A file opened to write a trace into. Only a path: open() takes an
    int as a file descriptor, which it would write into and close."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise InvalidArgument(f"path must be a file path (str or os.PathLike), not {path!r}")
    return open(path, "w")


def _colour(name: str) -> str:
    """A colour per kernel name, the same in every run and process."""
    h = zlib.crc32(name.encode())
    return f"hsl({h % 360},{55 + (h >> 9) % 25}%,{48 + (h >> 17) % 14}%)"


def _blocks(n) -> str:
    return f"{int(n)} block{'s' if n != 1 else ''}"


def _fmt_ns(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if abs(ns) >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.0f} ns"


@dataclass(frozen=True)
class _Tasks:
    """The trace's tasks, one row each (sorted by id): their kernel, when
    their first block started and their last ended, and which block rows
    (indices into Trace.blocks) those were."""

    ids: np.ndarray
    func_id: np.ndarray
    start_ns: np.ndarray
    end_ns: np.ndarray
    first: np.ndarray        # the block that started first
    last: np.ndarray         # the block that ended last
    num_blocks: np.ndarray

    def index(self, task_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of these task ids, and which of them were traced at all."""
        pos = np.searchsorted(self.ids, task_ids)
        pos = np.minimum(pos, max(len(self.ids) - 1, 0))
        found = self.ids[pos] == task_ids if len(self.ids) else np.zeros(len(task_ids), bool)
        return pos, found


@dataclass(frozen=True)
class KernelStats:
    """One kernel's tasks: a task's time is its first block's start to its
    last block's end."""

    name: str
    count: int
    blocks: int
    total_ns: int
    mean_ns: float
    p50_ns: float
    p99_ns: float


@dataclass(frozen=True)
class TraceSummary:
    """What Trace.summary() reports. ``cores`` maps a core to its busy
    fraction (time in blocks / wall time); ``critical_path`` lists task ids,
    first to last, each of which waited on the one before."""

    wall_ns: int
    kernels: tuple[KernelStats, ...]
    cores: dict[int, float]
    critical_path: tuple[int, ...]
    critical_path_names: tuple[str, ...]
    critical_path_ns: int       # the path's first start to its last end
    critical_busy_ns: int       # of which its tasks ran (the rest: waiting to be scheduled)
    dropped_edges: int = 0      # edges the full buffer did not keep: the path may stop short

    def _rows(self) -> list[tuple[str, ...]]:
        return [(k.name, str(k.count), str(k.blocks), _fmt_ns(k.total_ns), _fmt_ns(k.mean_ns), _fmt_ns(k.p50_ns),
                 _fmt_ns(k.p99_ns)) for k in self.kernels]

    _HEAD = ("kernel", "tasks", "blocks", "total", "mean", "p50", "p99")

    def _path_text(self, limit: int = 12) -> str:
        steps = [f"{t} {n}" for t, n in zip(self.critical_path, self.critical_path_names)]
        if len(steps) > limit:
            steps = steps[:limit // 2] + [f"... {len(steps) - limit} more ..."] + steps[-limit // 2:]
        return " -> ".join(steps)

    def _path_head(self) -> str:
        share = self.critical_path_ns / self.wall_ns if self.wall_ns else 0.0
        return (f"critical path: {len(self.critical_path)} tasks, {_fmt_ns(self.critical_path_ns)} of "
                f"{_fmt_ns(self.wall_ns)} wall ({share:.0%}), {_fmt_ns(self.critical_busy_ns)} of it running"
                + (f" ({self.dropped_edges} edges dropped: it may stop short; trace=<more events> keeps them)"
                   if self.dropped_edges else ""))

    def _busy_text(self) -> str:
        return ", ".join(f"{_core_name(c)} {f:.0%}" for c, f in sorted(self.cores.items()))

    def __str__(self) -> str:
        rows = [self._HEAD] + self._rows()
        widths = [max(len(r[i]) for r in rows) for i in range(len(self._HEAD))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                 for r in rows]
        busy = self._busy_text()
        return "\n".join(lines + [f"core busy: {busy or '-'}", self._path_head(),
                                  f"  {self._path_text() or '-'}"])

    def _repr_html_(self) -> str:
        cell = "<td style='text-align:{}'>{}</td>".format
        head = "".join(f"<th>{h}</th>" for h in self._HEAD)
        body = "".join("<tr>" + "".join(cell("left" if i == 0 else "right", html.escape(c))
                                        for i, c in enumerate(r)) + "</tr>" for r in self._rows())
        busy = self._busy_text()
        return (f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                f"<p>core busy: {html.escape(busy or '-')}<br>{html.escape(self._path_head())}<br>"
                f"<code>{html.escape(self._path_text() or '-')}</code></p>")


class Trace:
    """A parsed run trace. ``events`` and ``edges`` are numpy record arrays;
    ``names`` maps a func id to its kernel's name (ChipWorker.last_trace
    fills it from the callable that ran; a func id without one is
    "func <id>")."""

    def __init__(self, raw: bytes, platform: str = "sim", names: Mapping[int, str] | None = None) -> None:
        if not isinstance(raw, (bytes, bytearray, memoryview)):
            raise InvalidArgument(f"a trace is the bytes simpler_last_trace gives, not {type(raw).__name__}")
        if not isinstance(platform, str):
            raise InvalidArgument(f"platform must be a str, not {type(platform).__name__}")
        if names is None:
            names = {}
        if not isinstance(names, Mapping) or not all(
                isinstance(k, (int, np.integer)) and not isinstance(k, bool) and isinstance(v, str)
                for k, v in names.items()):
            raise InvalidArgument(f"names maps func ids (int) to kernel names (str), not {names!r}")
        for v in names.values():
            if not v.isprintable():     # a control character cannot be in the SVG's XML at all
                raise InvalidArgument(f"kernel name {v!r} holds a control character")
        raw = bytes(raw)
        if len(raw) < ffi.sizeof("simpler_trace"):
            raise InvalidArgument(f"not a simpler trace ({len(raw)} bytes is shorter than its header)")
        hdr = ffi.from_buffer("simpler_trace *", raw)
        if hdr.magic != lib.SIMPLER_TRACE_MAGIC:
            raise InvalidArgument("not a simpler trace (bad magic)")
        self.events = self._records(raw, EVENT, hdr.num_events, hdr.max_events, hdr.events_off, "events")
        self.edges = self._records(raw, EDGE, hdr.num_edges, hdr.max_edges, hdr.edges_off, "edges")
        self.dropped_events = int(hdr.dropped_events)
        self.dropped_edges = int(hdr.dropped_edges)
        self.callable_id = int(hdr.callable_id)
        self.platform = platform
        self.names: dict[int, str] = {int(k): v for k, v in names.items()}
        self._tasks: _Tasks | None = None

    @staticmethod
    def _records(raw: bytes, dtype: np.dtype, count: int, capacity: int, offset: int, what: str) -> np.ndarray:
        if count > capacity or offset + count * dtype.itemsize > len(raw):
            raise InvalidArgument(f"not a simpler trace: {count} {what} at offset {offset} do not fit "
                                  f"(capacity {capacity}, {len(raw)} bytes)")
        return np.frombuffer(raw, dtype, count, offset).copy()

    @property
    def blocks(self) -> np.ndarray:
        """The task blocks that ran: task, core (``where``), start and end."""
        return self.events[self.events["kind"] == _BLOCK]

    def kernel_name(self, func_id: int) -> str:
        """The name of the kernel with this func id, as spans are named."""
        if not isinstance(func_id, (int, np.integer)) or isinstance(func_id, bool):
            raise InvalidArgument(f"func_id must be an int, not {func_id!r}")
        return self.names.get(int(func_id), f"func {int(func_id)}")

    def __repr__(self) -> str:
        tasks = len(np.unique(self.blocks["task"]))
        cores = len(np.unique(self.blocks["where"]))
        return (f"<Trace {tasks} tasks in {len(self.blocks)} blocks on {cores} cores, {len(self.edges)} edges"
                f"{f', {self.dropped_events} events dropped' if self.dropped_events else ''}>")

    # -- tasks, from their blocks ----------------------------------------
    def _task_table(self) -> _Tasks:
        if self._tasks is None:
            b = self.blocks
            task = b["task"]
            by_start = np.lexsort((b["start_ns"], task))     # by task, then start
            by_end = np.lexsort((b["end_ns"], task))
            ids, first_pos, counts = np.unique(task[by_start], return_index=True, return_counts=True)
            first = by_start[first_pos]
            last = by_end[first_pos + counts - 1]
            self._tasks = _Tasks(ids, b["func_id"][first], b["start_ns"][first].astype(np.int64),
                                 b["end_ns"][last].astype(np.int64), first, last, counts)
        return self._tasks

    def _traced_edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Task-table rows of the producer and consumer of every edge whose
        two tasks both have blocks in the trace."""
        t = self._task_table()
        p, pf = t.index(self.edges["producer"])
        c, cf = t.index(self.edges["consumer"])
        keep = pf & cf
        return p[keep], c[keep]

    # -- Chrome trace ------------------------------------------------------
    def to_chrome(self) -> dict[str, Any]:
        """The trace as a Chrome trace-event document: one track per core
        (AIC/AIV) and per AICPU thread; block spans named by kernel with
        task, func id, block and core in their args; a flow (arrow) per
        dependency edge from the producer's last block to the consumer's
        first; times in microseconds from the first event."""
        if len(self.events) == 0:
            return {"traceEvents": [], "displayTimeUnit": "ns"}
        t0 = int(self.events["start_ns"].min())
        events: list[dict[str, Any]] = []
        named: set[tuple[int, int]] = set()

        def track(pid: int, tid: int, name: str) -> None:
            if (pid, tid) not in named:
                named.add((pid, tid))
                events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "ts": 0,
                               "args": {"name": name}})

        def us(ns: int) -> float:
            return (ns - t0) / 1000.0

        events.append({"ph": "M", "name": "process_name", "pid": 1, "tid": 0, "ts": 0, "args": {"name": "AICore"}})
        events.append({"ph": "M", "name": "process_name", "pid": 2, "tid": 0, "ts": 0, "args": {"name": "AICPU"}})
        ev = self.events
        columns = (ev[f].tolist() for f in ("kind", "start_ns", "end_ns", "where", "task", "func_id", "block"))
        for code, start, end, where, task, func_id, block in zip(*columns):   # Python ints: 10x numpy's scalars
            kind = KINDS.get(code, "event")
            where += 1  # tids from 1: some viewers treat tid 0 specially
            if kind == "block":
                track(1, where, _core_name(where - 1))
                events.append({"ph": "X", "pid": 1, "tid": where, "ts": us(start), "dur": max(end - start, 0) / 1e3,
                               "name": self.kernel_name(func_id), "cat": "block",
                               "args": {"task": task, "func_id": func_id, "block": block, "core": where - 1}})
            else:
                track(2, where, f"AICPU thread {where - 1}")
                events.append({"ph": "X", "pid": 2, "tid": where, "ts": us(start), "dur": max(end - start, 0) / 1e3,
                               "name": kind, "cat": kind,
                               "args": {"tasks_submitted": task} if kind != "sleep" else {}})
        events += self._flows(us)
        return {"traceEvents": events, "displayTimeUnit": "ns",
                "otherData": {"platform": self.platform, "callable_id": self.callable_id,
                              "dropped_events": self.dropped_events, "dropped_edges": self.dropped_edges}}

    def _flows(self, us) -> list[dict[str, Any]]:
        """A flow start ("s") inside the producer's last-ending block span
        and a finish ("f", bound to its enclosing slice: bp "e") inside the
        consumer's first-starting one, with one id per edge. Each sits in
        its span's middle: at an end point it could bind to a neighbour
        starting or ending at the same microsecond. Perfetto draws the
        arrow from the source span's end to the target span's start."""
        t, b = self._task_table(), self.blocks
        mid = ((b["start_ns"] + b["end_ns"]) // 2).tolist()     # monotonic ns: far from overflowing
        tid = (b["where"].astype(np.int64) + 1).tolist()
        p, c = self._traced_edges()
        flows = []
        for i, (src, dst) in enumerate(zip(t.last[p].tolist(), t.first[c].tolist())):
            flows.append({"ph": "s", "id": i, "name": "dependency", "cat": "dependency", "pid": 1,
                          "tid": tid[src], "ts": us(mid[src])})
            flows.append({"ph": "f", "bp": "e", "id": i, "name": "dependency", "cat": "dependency", "pid": 1,
                          "tid": tid[dst], "ts": us(mid[dst])})
        return flows

    def save_chrome(self, path: str | os.PathLike) -> None:
        with _writing(path) as f:
            json.dump(self.to_chrome(), f)

    # -- graphs ------------------------------------------------------------
    def _task_names(self) -> list[tuple[int, int, str]]:
        t = self._task_table()
        return [(int(i), int(f), self.kernel_name(f)) for i, f in zip(t.ids, t.func_id)]

    def save_dot(self, path: str | os.PathLike) -> None:
        """The dependency graph in Graphviz DOT: a node per task (labelled
        with its id and kernel), an edge per dependency the runtime recorded."""
        with _writing(path) as f:
            f.write("digraph simpler {\n  node [shape=box];\n")
            for task, _, name in self._task_names():
                label = name.replace("\\", "\\\\").replace('"', '\\"')
                f.write(f'  t{task} [label="{task}\\n{label}"];\n')
            for p, c in self.edges:
                f.write(f"  t{int(p)} -> t{int(c)};\n")
            f.write("}\n")

    def save_graph_json(self, path: str | os.PathLike) -> None:
        """The dependency graph as JSON: {"tasks": [{id, func_id, name}], "edges": [[producer, consumer]]}."""
        with _writing(path) as f:
            json.dump({"tasks": [{"id": t, "func_id": fn, "name": n} for t, fn, n in self._task_names()],
                       "edges": [[int(p), int(c)] for p, c in self.edges]}, f)

    # -- summary -----------------------------------------------------------
    def summary(self) -> TraceSummary:
        """Per kernel: tasks, blocks, total, mean, p50 and p99 time; per
        core: busy fraction; the critical path: from the task that ended
        last, back through the dependency that ended latest before each
        task started (the one it waited on), to a task that waited on none."""
        t, b = self._task_table(), self.blocks
        if len(b) == 0:
            return TraceSummary(0, (), {}, (), (), 0, 0, self.dropped_edges)
        wall = int(b["end_ns"].max()) - int(b["start_ns"].min())
        dur = t.end_ns - t.start_ns
        kernels = []
        for fid in np.unique(t.func_id):
            d = dur[t.func_id == fid]
            kernels.append(KernelStats(self.kernel_name(fid), len(d), int(t.num_blocks[t.func_id == fid].sum()),
                                       int(d.sum()), float(d.mean()), float(np.percentile(d, 50)),
                                       float(np.percentile(d, 99))))
        kernels.sort(key=lambda k: -k.total_ns)
        busy = (b["end_ns"].astype(np.int64) - b["start_ns"].astype(np.int64)).clip(0)
        cores = {int(c): float(busy[b["where"] == c].sum()) / wall if wall else 0.0 for c in np.unique(b["where"])}
        path = self._critical_path()
        return TraceSummary(wall, tuple(kernels), cores, tuple(int(t.ids[r]) for r in path),
                            tuple(self.kernel_name(t.func_id[r]) for r in path),
                            int(t.end_ns[path[-1]] - t.start_ns[path[0]]), int(dur[path].sum()),
                            self.dropped_edges)

    def _critical_path(self) -> list[int]:
        t = self._task_table()
        p, c = self._traced_edges()
        # For each consumer, its producers that ended no later than it
        # started, latest end first: the first one is what it waited on.
        ok = t.end_ns[p] <= t.start_ns[c]
        p, c = p[ok], c[ok]
        order = np.lexsort((-t.end_ns[p], c))
        p, c = p[order], c[order]
        consumers, at = np.unique(c, return_index=True)
        waited_on = dict(zip(consumers.tolist(), p[at].tolist()))
        row = int(np.argmax(t.end_ns))
        path = [row]
        while row in waited_on and len(path) <= len(t.ids):   # the bound: a cycle in a damaged trace
            row = waited_on[row]
            path.append(row)
        return path[::-1]

    # -- pictures ----------------------------------------------------------
    def _rects(self, max_rects: int) -> tuple[list[tuple[int, int, int, str, str]], str]:
        """(lane, start, end, kernel, hover text) per rectangle, and a note
        saying what was merged or left out to stay within max_rects."""
        b = self.blocks
        b = b[np.lexsort((b["start_ns"], b["where"]))]
        if len(b) <= max_rects:
            return [(int(e["where"]), int(e["start_ns"]), int(e["end_ns"]), self.kernel_name(e["func_id"]),
                     f"{self.kernel_name(e['func_id'])}: task {int(e['task'])} block {int(e['block'])}, "
                     f"{_core_name(int(e['where']))}, {_fmt_ns(int(e['end_ns']) - int(e['start_ns']))}")
                    for e in b], ""
        # Too many: merge neighbours on a lane that run the same kernel and
        # are closer than a gap (a core runs one block at a time, so a
        # block's neighbour on its lane is the one before), the gap doubling
        # up to about a pixel of a 1,000-pixel picture.
        lane, start, end, fid = (b[f].astype(np.int64) for f in ("where", "start_ns", "end_ns", "func_id"))
        t0 = int(start.min())
        wall = max(int(end.max()) - t0, 1)
        gap = wall / 16000
        while True:
            new = np.ones(len(b), bool)
            new[1:] = (lane[1:] != lane[:-1]) | (fid[1:] != fid[:-1]) | (start[1:] - end[:-1] > gap)
            heads = np.flatnonzero(new)
            if len(heads) <= max_rects or gap >= wall / 1000:
                break
            gap *= 2
        if len(heads) <= max_rects:
            counts = np.diff(np.append(heads, len(b)))
            return ([(int(lane[h]), int(start[h]), int(e), self.kernel_name(fid[h]),
                      f"{self.kernel_name(fid[h])}: {_blocks(n)}, {_fmt_ns(int(e) - int(start[h]))}")
                     for h, e, n in zip(heads, np.maximum.reduceat(end, heads), counts)],
                    f"{len(b)} blocks merged into {len(heads)} rectangles (same kernel, gaps under {_fmt_ns(gap)})")
        # Kernels interleave too finely: one rectangle per lane and time
        # bin, coloured by the kernel that ran most of it.
        lanes = np.unique(lane)
        bins = max_rects // len(lanes)
        if bins == 0:
            raise InvalidArgument(f"max_rects {max_rects} is fewer than the {len(lanes)} cores to draw")
        key = np.searchsorted(lanes, lane) * bins + np.minimum((start - t0) * bins // wall, bins - 1)
        keys, inverse = np.unique(key, return_inverse=True)
        order = np.argsort(key, kind="stable")
        sk = key[order]
        heads = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
        lo = np.minimum.reduceat(start[order], heads)
        hi = np.maximum.reduceat(end[order], heads)
        counts = np.diff(np.append(heads, len(b)))
        # time per (bin, kernel): the kernel with the most of it names the bin
        funcs, f_idx = np.unique(fid, return_inverse=True)
        busy = np.zeros((len(keys), len(funcs)))
        np.add.at(busy, (inverse, f_idx), (end - start).clip(0))
        top = busy.argmax(axis=1)
        share = busy.max(axis=1) / np.maximum(busy.sum(axis=1), 1)
        rects = []
        for i in range(len(keys)):
            name = self.kernel_name(funcs[top[i]])
            rects.append((int(lane[order[heads[i]]]), int(lo[i]), int(hi[i]), name,
                          f"{_blocks(counts[i])}, {_fmt_ns(int(hi[i]) - int(lo[i]))}: mostly {name} ({share[i]:.0%})"))
        return rects, f"{len(b)} blocks binned into {len(rects)} rectangles, each coloured by its busiest kernel"

    def to_svg(self, width: int = 960, max_rects: int = MAX_RECTS) -> str:
        """The blocks as an SVG swimlane: one lane per core, a rectangle
        per block coloured by kernel, hover text with kernel, task, block
        and duration; beyond max_rects blocks, neighbours are merged (and
        the picture says so)."""
        if isinstance(width, bool) or not isinstance(width, int) or width < 200:
            raise InvalidArgument(f"width is an int of at least 200 pixels, not {width!r}")
        if isinstance(max_rects, bool) or not isinstance(max_rects, int) or max_rects < 1:
            raise InvalidArgument(f"max_rects is a positive int, not {max_rects!r}")
        b = self.blocks
        if len(b) == 0:
            return "<svg xmlns='http://www.w3.org/2000/svg' width='300' height='20'><text x='4' y='14' " \
                   "font-size='12'>no blocks in this trace</text></svg>"
        t0 = int(b["start_ns"].min())
        wall = max(int(b["end_ns"].max()) - t0, 1)
        rects, note = self._rects(max_rects)
        lanes = sorted({r[0] for r in rects})
        lane_y = {c: i for i, c in enumerate(lanes)}
        left, lane_h, top = 110, 16, 20
        plot_w = width - left - 10
        kernels = sorted({r[3] for r in rects})
        height = top + lane_h * len(lanes) + 24 + 16 * (1 + len(kernels) // 6)
        out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
               f"font-family='sans-serif' font-size='11'>",
               f"<text x='{left}' y='13'>{html.escape(repr(self))}, wall {_fmt_ns(wall)}"
               f"{html.escape('; ' + note) if note else ''}</text>"]
        for c, i in lane_y.items():
            y = top + i * lane_h
            out.append(f"<text x='4' y='{y + 12}'>{_core_name(c)}</text>"
                       f"<line x1='{left}' x2='{width - 10}' y1='{y + lane_h}' y2='{y + lane_h}' stroke='#eee'/>")
        for lane, s, e, name, text in rects:
            x = left + (s - t0) / wall * plot_w
            w = max((e - s) / wall * plot_w, 0.5)      # a block shorter than a pixel still shows
            out.append(f"<rect x='{x:.2f}' y='{top + lane_y[lane] * lane_h + 1}' width='{w:.2f}' "
                       f"height='{lane_h - 2}' fill='{_colour(name)}'><title>{html.escape(text)}</title></rect>")
        y = top + lane_h * len(lanes) + 14
        out.append(f"<text x='{left}' y='{y}'>0</text><text x='{width - 10}' y='{y}' "
                   f"text-anchor='end'>{_fmt_ns(wall)}</text>")
        for i, name in enumerate(kernels):
            x, ky = left + (i % 6) * 140, y + 16 * (1 + i // 6)
            out.append(f"<rect x='{x}' y='{ky - 9}' width='10' height='10' fill='{_colour(name)}'/>"
                       f"<text x='{x + 14}' y='{ky}'>{html.escape(name)}</text>")
        out.append("</svg>")
        return "".join(out)

    def _repr_html_(self) -> str:
        return self.to_svg()

    def plot(self, ax=None):
        """Draw the swimlane with matplotlib (on ax, or a new figure's);
        returns the axes. Unsupported if matplotlib is not installed."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as e:
            raise Unsupported("Trace.plot() needs matplotlib (pip install matplotlib); "
                              "in a notebook the trace also shows itself without it") from e
        b = self.blocks
        if ax is None:
            _, ax = plt.subplots(figsize=(12, 0.4 * max(len(np.unique(b["where"])), 1) + 1.5))
        t0 = int(b["start_ns"].min()) if len(b) else 0
        lanes = {int(c): i for i, c in enumerate(sorted(np.unique(b["where"]).tolist()))}
        for fid in np.unique(b["func_id"]):
            sel = b[b["func_id"] == fid]
            name = self.kernel_name(fid)
            colour = _hsl_to_rgb(_colour(name))
            for core, row in lanes.items():
                s = sel[sel["where"] == core]
                if len(s):
                    bars = [((int(x) - t0) / 1e3, (int(y) - int(x)) / 1e3) for x, y in zip(s["start_ns"], s["end_ns"])]
                    ax.broken_barh(bars, (row - 0.4, 0.8), color=colour, label=name)
        ax.set_yticks(list(lanes.values()), [_core_name(c) for c in lanes])
        ax.invert_yaxis()       # core 0 on top, as in the SVG
        ax.set_xlabel("time (us)")
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        if unique:
            ax.legend(unique.values(), unique.keys(), loc="upper right", fontsize="small")
        return ax


def _hsl_to_rgb(hsl: str) -> tuple[float, float, float]:
    """matplotlib takes no hsl(): the same colour as the SVG's, as RGB."""
    import colorsys
    h, s, l = (float(v.rstrip("%")) for v in hsl[4:-1].split(","))
    r, g, b = colorsys.hls_to_rgb(h / 360, l / 100, s / 100)
    return r, g, b
