/*
 * The dispatch loop both runtimes' schedulers run. Each scheduler thread
 * owns every n-th core and drives it through its mailbox; a runtime only
 * says how to take the next ready block, what finishing one means, and
 * when the work is over.
 */
#ifndef SIMPLER_AICPU_SCHED_LOOP_H
#define SIMPLER_AICPU_SCHED_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "common/device_abi.h"

/* One block, as a core will run it. */
typedef struct sched_post {
    uint64_t kernel_addr;
    uint64_t tensors_addr;
    uint64_t scalars_addr;
    uint32_t num_tensors;
    uint32_t num_scalars;
    uint32_t block;
    uint32_t block_num;
    uint32_t func_id;
    uint64_t task;          /* the runtime's task reference */
    uint64_t task_id;       /* for the watchdog's report */
} sched_post;

/* Successors of one task a follow looks at, at most: a fan-out's other
 * successors are better spread over idle cores than queued on this one. */
#define SCHED_FOLLOW_SCAN 4

typedef struct sched_ops {
    /* Claim the next ready block for a core of this type. */
    int (*take)(void *rt, uint32_t type, sched_post *out);
    /* Claim a successor of task (a whole task, posted to a core of this
     * type) whose only unfinished producer is task, so that it can run
     * right after it on the same core; its finish then must not queue
     * it. NULL: the runtime never follows. */
    int (*follow)(void *rt, uint64_t task, uint32_t type, sched_post *out);
    /* A block of task finished (called by the thread that saw it). */
    void (*finish)(void *rt, uint64_t task);
    /* How many tasks are queued for this core type (0: none). */
    int (*ready)(void *rt, uint32_t type);
    /* All work is over: stop. */
    int (*done)(void *rt);
    /* Work is in flight, so a long silence is a stall. */
    int (*in_flight)(void *rt);
    /* "N of M tasks done" for the timeout message. */
    void (*summary)(void *rt, char *buf, size_t len);
} sched_ops;

/* Run the loop until ops->done or an abort; returns the launch status. */
int sched_loop(simpler_launch *launch, uint32_t thread_idx, const sched_ops *ops, void *rt);

/* Wake sleeping scheduler threads other than except (UINT32_MAX: none
 * excepted): new work may suit their idle cores. */
void sched_wake_others(simpler_launch *launch, uint32_t except);

#endif
