/*
 * The host_build_graph image: the whole task graph as one block of GM,
 * built on the host and scheduled by the AICPU threads.
 *
 * Position-independent: every reference is an offset from the image's
 * start, so the host can build it in host memory and copy it anywhere.
 *
 *   hbg_header | hbg_task[num_tasks] | uint32 fanout[num_edges]
 *   | uint32 ready queue per core type [num_tasks each]
 *   | per-task tensors and scalars
 *
 * The tasks' pending counts and the ready queues are the scheduler's
 * working state: the host initialises them and the AICPU updates them.
 */
#ifndef SIMPLER_HBG_GRAPH_IMAGE_H
#define SIMPLER_HBG_GRAPH_IMAGE_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/device_abi.h"

#define HBG_IMAGE_MAGIC 0x31474248524c504dull /* "MPLRHBG1" */

/* In a task's pending count: a scheduler posted it to a core to wait
 * there for its unfinished predecessors, so it never enters a ready
 * queue (csrc/aicpu/dispatch_loop.c, "follower"). */
#define HBG_FOLLOWED 0x80000000u

/* Where a task's predecessors went, kept for a follower's waits. */
#define HBG_WAITS 4

typedef struct hbg_header {
    uint64_t magic;
    uint64_t total_size;
    uint32_t num_tasks;
    uint32_t num_roots;         /* tasks with no predecessor, pre-queued */
    uint64_t tasks_off;
    uint64_t fanout_off;
    uint64_t queue_off[2];      /* ready queue per core type */
    /* Ready queues: slots [head, tail) hold task index + 1; a slot still 0
     * below tail is being published. Each task is pushed exactly once, so
     * a queue of num_tasks slots never wraps. A task with several blocks
     * stays at the head until its last block is claimed, so every
     * scheduler thread's idle cores can take its blocks. */
    _Atomic uint64_t queue_head[2];
    _Atomic uint64_t queue_tail[2];
} hbg_header;

typedef struct hbg_task {
    /* As a simpler_run_entry (device_abi.h), offsets from the image's
     * start: a core reads a run of tasks straight from the image. */
    uint64_t kernel_addr;
    uint64_t tensors_off;       /* simpler_tensor[num_tensors] */
    uint64_t scalars_off;       /* uint64_t[num_scalars] */
    uint32_t num_tensors;
    uint32_t num_scalars;
    uint32_t func_id;
    uint32_t core_type;
    uint64_t fanout_start;      /* index into the fanout array */
    uint32_t fanout_count;
    uint32_t block_num;
    _Atomic uint32_t pending;   /* predecessors not yet finished, | HBG_FOLLOWED */
    _Atomic uint32_t next_block; /* blocks claimed by schedulers (may pass block_num) */
    _Atomic uint32_t blocks_done; /* finished blocks of a task of several (one: not counted) */
    /* Predecessors not yet posted to a core. Only a single-block task
     * with at most SCHED_FOLLOW_SCAN successors counts its post here, so
     * 0 means every predecessor is posted and can be waited for: the task
     * may follow them (sched_loop.c). */
    _Atomic uint32_t unposted;
    _Atomic uint32_t num_waits; /* entries written to waits (may pass HBG_WAITS) */
    uint64_t waits[HBG_WAITS];  /* where those predecessors went: core << 32 | seq */
} hbg_task;

SIMPLER_AS_RUN_ENTRY(hbg_task, kernel_addr, kernel_addr);
SIMPLER_AS_RUN_ENTRY(hbg_task, tensors_off, tensors_off);
SIMPLER_AS_RUN_ENTRY(hbg_task, scalars_off, scalars_off);
SIMPLER_AS_RUN_ENTRY(hbg_task, num_tensors, num_tensors);
SIMPLER_AS_RUN_ENTRY(hbg_task, num_scalars, num_scalars);
SIMPLER_AS_RUN_ENTRY(hbg_task, func_id, func_id);

#endif
