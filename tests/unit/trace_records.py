"""Trace buffers made in the tests, laid out through the C declarations
(simpler/trace.h), for the tests of what Python reads and shows of them."""
from __future__ import annotations

from simpler._native import ffi, lib


def trace_bytes(events, edges, *, dropped=(0, 0), callable_id=0):
    """A trace buffer laid out through the C declarations: header, events, edges."""
    hdr_size, ev_size, ed_size = (ffi.sizeof(t) for t in ("simpler_trace", "simpler_trace_event",
                                                          "simpler_trace_edge"))
    raw = bytearray(hdr_size + len(events) * ev_size + len(edges) * ed_size)
    hdr = ffi.from_buffer("simpler_trace *", raw, require_writable=True)
    hdr.magic = lib.SIMPLER_TRACE_MAGIC
    hdr.max_events = hdr.num_events = len(events)
    hdr.max_edges = hdr.num_edges = len(edges)
    hdr.dropped_events, hdr.dropped_edges = dropped
    hdr.callable_id = callable_id
    hdr.events_off = hdr_size
    hdr.edges_off = hdr_size + len(events) * ev_size
    ev = ffi.cast("simpler_trace_event *", ffi.from_buffer(raw, require_writable=True) + hdr.events_off)
    for i, (task, start, end, kind, where, func, block) in enumerate(events):
        ev[i].task, ev[i].start_ns, ev[i].end_ns = task, start, end
        ev[i].kind, ev[i].where, ev[i].func_id, ev[i].block = kind, where, func, block
    ed = ffi.cast("simpler_trace_edge *", ffi.from_buffer(raw, require_writable=True) + hdr.edges_off)
    for i, (p, c) in enumerate(edges):
        ed[i].producer, ed[i].consumer = p, c
    return bytes(raw)
