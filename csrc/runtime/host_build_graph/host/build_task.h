/*
 * What host_build_graph's builder records as the orchestration submits:
 * a task and an edge, before either is laid out in an image (whole,
 * graph_image.h, or streamed, stream_image.h).
 */
#ifndef SIMPLER_HBG_BUILD_TASK_H
#define SIMPLER_HBG_BUILD_TASK_H

#include <stdint.h>

typedef struct build_task {
    uint64_t kernel_addr;
    uint64_t args_off;          /* into the args buffer: tensors, then scalars */
    uint32_t func_id, core_type, block_num;
    uint32_t num_tensors, num_scalars;
    uint32_t fanin;
    uint32_t fanout_count;
    uint32_t stamp;             /* last consumer an edge was added for, + 1 */
} build_task;

/* Edges are recorded in consumer order: a task's come as it is submitted. */
typedef struct edge {
    uint32_t producer, consumer;
} edge;

#endif
