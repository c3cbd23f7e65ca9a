/*
 * Recording into a run's trace (layout: the public simpler/trace.h). One
 * buffer in GM, appended to with an atomic counter; when full, later
 * records are counted as dropped. With no buffer (the default) nothing is
 * recorded and the cost is one branch.
 */
#ifndef SIMPLER_COMMON_TRACE_H
#define SIMPLER_COMMON_TRACE_H

#include <stdatomic.h>
#include <stdint.h>

#include "simpler/trace.h"

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

_Static_assert(sizeof(simpler_trace) <= 64, "the trace header must fit before events_off");

static inline void simpler_trace_init(simpler_trace *t, uint32_t max_events, uint32_t max_edges)
{
    t->magic = SIMPLER_TRACE_MAGIC;
    t->max_events = max_events;
    t->max_edges = max_edges;
    atomic_init(&t->num_events, 0);
    atomic_init(&t->num_edges, 0);
    atomic_init(&t->dropped_events, 0);
    atomic_init(&t->dropped_edges, 0);
    t->callable_id = 0;
    t->reserved = 0;
    t->events_off = 64;
    t->edges_off = 64 + (uint64_t)max_events * sizeof(simpler_trace_event);
}

#endif
