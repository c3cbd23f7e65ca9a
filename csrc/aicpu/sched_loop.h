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
    /* A follower's producers to wait for, where they were posted (the
     * loop drops the ones on the follower's own core). */
    uint32_t num_waits;
    struct { uint32_t core, seq; } waits[SIMPLER_SLOT_WAITS];
} sched_post;

/* Successors of one task a follow looks at, at most, and the fanout up to
 * which a posted task tells its successors where it went: a wide fan-out
 * is better spread over the cores by the ready queues. */
#define SCHED_FOLLOW_SCAN 4

/* The loop's side of a follow: which of this thread's cores a candidate
 * would go to (sched_loop.c). */
typedef struct sched_place sched_place;

/* Whether a candidate follower of this core type, with these waits, has a
 * core to go to now; the choice is kept for the post. A runtime asks
 * before it claims the candidate. */
int sched_fits(sched_place *place, uint32_t type, const sched_post *candidate);

/* Claim a follower candidate whose producers are all posted: unless its
 * pending count is 0 (it was queued) or carries flag (followed), or it has
 * more than max_waits producers to name, out (filled by the caller but
 * for its waits) gets the waits, each core << 32 | seq, and the
 * candidate is claimed by setting flag in pending if it fits a core.
 * Pending only falls meanwhile, as producers finish; the last one's
 * finish then sees the flag and does not queue it. */
int sched_claim(sched_place *place, uint32_t type, _Atomic uint32_t *pending, uint32_t flag,
                uint32_t num_waits, const uint64_t *waits, uint32_t max_waits, sched_post *out);

typedef struct sched_ops {
    /* Claim the next ready block for a core of this type. */
    int (*take)(void *rt, uint32_t type, sched_post *out);
    /* A whole task was posted to core as seq: a runtime that keeps
     * where producers went (for followers' waits) notes it. NULL: none. */
    void (*posted)(void *rt, uint64_t task, uint32_t core, uint32_t seq);
    /* Claim a successor of task (a whole task, posted and not yet
     * finished) whose producers are all posted, so that a core runs it
     * as soon as they are done, with no trip through a ready queue; its
     * last producer's finish then must not queue it. A candidate is
     * claimed only if sched_fits; out names its producers other than
     * task to wait for. NULL: the runtime never follows. */
    int (*follow)(void *rt, uint64_t task, sched_place *place, sched_post *out);
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
