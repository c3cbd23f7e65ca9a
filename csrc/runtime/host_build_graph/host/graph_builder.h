/*
 * host_build_graph's builder as a service to recordings: the graph of a
 * task stream another runtime captured (tensormap_and_ringbuffer's
 * device-side orchestration), laid out as a host_build_graph image.
 */
#ifndef SIMPLER_HBG_GRAPH_BUILDER_H
#define SIMPLER_HBG_GRAPH_BUILDER_H

#include "runtime/recorded_graph.h"
#include "runtime/runtime.h"

/* Submit the tasks in order, as an orchestration of run would: the
 * dependencies are derived again from their tags, and each OUTPUT tensor
 * gets GM of the graph's own; a later tensor based at an address a
 * captured OUTPUT had is moved to that OUTPUT's new memory (the captured
 * addresses were ring memory, reused). Explicit dependencies are indexes
 * into tasks. Scalar sites are found by value (recorded_graph_make). */
int hbg_record_stream(const runtime_env *env, const runtime_run *run, simpler_task *tasks, uint32_t num_tasks,
                      recorded_graph **out);

/* Find which of g's task scalars are which run scalar's by running the
 * orchestration again on the host (host_orchestration: its entry point
 * loaded here) with each scalar one higher: replaces the sites found by
 * value and the conservative fixing with what the probes show. */
void hbg_probe_scalars(const runtime_env *env, const runtime_run *run, uint64_t host_orchestration,
                       recorded_graph *g);

#endif
