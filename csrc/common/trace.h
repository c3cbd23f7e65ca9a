/*
 * The run trace: when a run asks for it, cores record each block they ran
 * (core, start, end), scheduler threads their sleeps, the orchestrator its
 * run and its waits, and the runtime the graph's edges. One buffer in GM,
 * appended to with an atomic counter; when full, later records are
 * counted as dropped. With no buffer (the default) nothing is recorded
 * and the cost is one branch.
 */
#ifndef SIMPLER_COMMON_TRACE_H
#define SIMPLER_COMMON_TRACE_H

#include <stdatomic.h>
#include <stdint.h>

#define SIMPLER_TRACE_MAGIC 0x31434152544c5053ull /* "SPLTRAC1" */

enum simpler_trace_kind {
    SIMPLER_TRACE_BLOCK = 0,        /* a block of a task on a core (where = core) */
    SIMPLER_TRACE_SLEEP = 1,        /* an AICPU thread asleep (where = thread) */
    SIMPLER_TRACE_ORCHESTRATE = 2,  /* the orchestration function (where = thread) */
    SIMPLER_TRACE_WAIT = 3          /* the orchestrator waiting for ring space */
};

typedef struct simpler_trace_event {
    uint64_t task;                  /* task id (host_build_graph index, or submit order) */
    uint64_t start_ns, end_ns;      /* CLOCK_MONOTONIC */
    uint32_t kind;
    uint32_t where;
    uint32_t func_id;
    uint32_t block;
} simpler_trace_event;

typedef struct simpler_trace_edge {
    uint64_t producer, consumer;
} simpler_trace_edge;

typedef struct simpler_trace {
    uint64_t magic;
    uint32_t max_events, max_edges;
    _Atomic uint32_t num_events, num_edges;
    _Atomic uint32_t dropped_events, dropped_edges;
    uint64_t events_off, edges_off;  /* from the buffer's start */
} simpler_trace;

static inline void simpler_trace_record(simpler_trace *t, uint32_t kind, uint32_t where, uint64_t task,
                                        uint32_t func_id, uint32_t block, uint64_t start_ns, uint64_t end_ns)
{
    uint32_t i = atomic_fetch_add_explicit(&t->num_events, 1, memory_order_relaxed);
    if (i >= t->max_events) {
        atomic_fetch_add_explicit(&t->dropped_events, 1, memory_order_relaxed);
        return;
    }
    simpler_trace_event *e = (simpler_trace_event *)((uint8_t *)t + t->events_off) + i;
    *e = (simpler_trace_event){task, start_ns, end_ns, kind, where, func_id, block};
}

static inline void simpler_trace_edge_record(simpler_trace *t, uint64_t producer, uint64_t consumer)
{
    uint32_t i = atomic_fetch_add_explicit(&t->num_edges, 1, memory_order_relaxed);
    if (i >= t->max_edges) {
        atomic_fetch_add_explicit(&t->dropped_edges, 1, memory_order_relaxed);
        return;
    }
    ((simpler_trace_edge *)((uint8_t *)t + t->edges_off))[i] = (simpler_trace_edge){producer, consumer};
}

/* Bytes of a buffer for this many events and edges. */
static inline uint64_t simpler_trace_bytes(uint32_t max_events, uint32_t max_edges)
{
    return 64 + (uint64_t)max_events * sizeof(simpler_trace_event) + (uint64_t)max_edges * sizeof(simpler_trace_edge);
}

static inline void simpler_trace_init(simpler_trace *t, uint32_t max_events, uint32_t max_edges)
{
    t->magic = SIMPLER_TRACE_MAGIC;
    t->max_events = max_events;
    t->max_edges = max_edges;
    atomic_init(&t->num_events, 0);
    atomic_init(&t->num_edges, 0);
    atomic_init(&t->dropped_events, 0);
    atomic_init(&t->dropped_edges, 0);
    t->events_off = 64;
    t->edges_off = 64 + (uint64_t)max_events * sizeof(simpler_trace_event);
}

#endif
