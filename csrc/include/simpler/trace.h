/*
 * simpler/trace.h: the layout of a run's trace, as simpler_last_trace
 * hands it out.
 *
 * When a run asks for a trace, cores record each block they ran (core,
 * start, end), scheduler threads their sleeps, the orchestrator its run and
 * its waits, and the runtime the graph's edges. It is one buffer: this
 * header, then max_events events at events_off, then max_edges edges at
 * edges_off (offsets from the buffer's start; the header fits in 64 bytes). While a run records, the
 * counters are bumped atomically and records past the end are counted as
 * dropped; the copy simpler_last_trace gives is compacted to what was
 * recorded (num_events <= max_events, num_edges <= max_edges).
 *
 * This header is parsed by cffi (simpler/_build_ffi.py), which knows no
 * _Atomic: it reads those counters as the plain integers of the same size
 * they are here, and checks the struct's size and offsets when it builds.
 */
#ifndef SIMPLER_TRACE_H
#define SIMPLER_TRACE_H

#include <stdint.h>

#define SIMPLER_TRACE_MAGIC 0x31434152544c5053ull /* "SPLTRAC1" */

typedef enum simpler_trace_kind {
    SIMPLER_TRACE_BLOCK = 0,        /* a block of a task on a core (where = core) */
    SIMPLER_TRACE_SLEEP = 1,        /* an AICPU thread asleep (where = thread) */
    SIMPLER_TRACE_ORCHESTRATE = 2,  /* the orchestration function (where = thread) */
    SIMPLER_TRACE_WAIT = 3          /* the orchestrator waiting for ring space */
} simpler_trace_kind;

typedef struct simpler_trace_event {
    uint64_t task;                  /* task id (host_build_graph index, or submit order) */
    uint64_t start_ns;              /* CLOCK_MONOTONIC */
    uint64_t end_ns;
    uint32_t kind;                  /* simpler_trace_kind */
    uint32_t where;
    uint32_t func_id;
    uint32_t block;
} simpler_trace_event;

typedef struct simpler_trace_edge {
    uint64_t producer;
    uint64_t consumer;
} simpler_trace_edge;

typedef struct simpler_trace {
    uint64_t magic;                 /* SIMPLER_TRACE_MAGIC */
    uint32_t max_events;
    uint32_t max_edges;
    _Atomic uint32_t num_events;
    _Atomic uint32_t num_edges;
    _Atomic uint32_t dropped_events;
    _Atomic uint32_t dropped_edges;
    uint64_t events_off;
    uint64_t edges_off;
    uint32_t callable_id;           /* the callable that ran (set by the host when it reads the trace back),
                                     * so a viewer can name its kernels */
    uint32_t reserved;
} simpler_trace;

#endif
