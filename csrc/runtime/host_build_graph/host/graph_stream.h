/*
 * The host's side of a streamed host_build_graph image (stream_image.h):
 * publishing the builder's tasks a segment at a time while the AICPU
 * threads already schedule the ones published before.
 *
 * Only on a platform whose GM the host may allocate and write from any
 * thread while a launch runs (platform_ops.concurrent_gm): the segments
 * are made by the orchestration's thread, as it submits.
 */
#ifndef SIMPLER_HBG_GRAPH_STREAM_H
#define SIMPLER_HBG_GRAPH_STREAM_H

#include <stdint.h>

#include "runtime/host_build_graph/host/build_task.h"
#include "runtime/runtime.h"

/* Tasks per segment: the first is published once this many tasks are
 * submitted, so a graph smaller than that is built whole, as before. */
#define HBG_STREAM_SEG_SHIFT 10
#define HBG_STREAM_SEG_TASKS (1u << HBG_STREAM_SEG_SHIFT)

typedef struct hbg_stream_host hbg_stream_host;

/* A stream for up to max_tasks tasks, its header in env's run block,
 * reserved for expect bytes of it (what the last stream needed, or 0):
 * the segments are carved from the block while they fit. */
int hbg_stream_open(const runtime_env *env, uint32_t max_tasks, uint64_t expect, hbg_stream_host **out);

/* Publish tasks [published, num_tasks) in one segment (a whole one but for
 * the last): their edges are edges[edges_published, num_edges) and their
 * arguments args[tasks[published].args_off, args_end). */
int hbg_stream_publish(hbg_stream_host *s, const build_task *tasks, uint32_t num_tasks, const edge *edges,
                       uint64_t num_edges, const uint8_t *args, uint64_t args_end);

/* Tasks published so far. */
uint32_t hbg_stream_published(const hbg_stream_host *s);

/* The run block's bytes the stream would have used whole (for the next
 * stream's expect). */
uint64_t hbg_stream_need(const hbg_stream_host *s);

/* The graph is whole: the launch ends when its tasks have finished. */
void hbg_stream_seal(hbg_stream_host *s);

/* The orchestration failed: the schedulers stop the launch. */
void hbg_stream_fail(hbg_stream_host *s);

/* Whether hbg_stream_fail was called. */
int hbg_stream_failed(const hbg_stream_host *s);

/* The header's GM address: the launch's image. */
uint64_t hbg_stream_addr(const hbg_stream_host *s);

/* Free the segments (after the launch), and s. */
void hbg_stream_free(hbg_stream_host *s);

#endif
