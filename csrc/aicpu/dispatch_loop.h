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

/* Where a task was posted: a core and that mailbox's seq. Runtimes keep
 * it packed in a uint64_t (sched_pack). */
typedef struct sched_where {
    uint32_t core, seq;
} sched_where;

static inline uint64_t sched_pack(uint32_t core, uint32_t seq) { return (uint64_t)core << 32 | seq; }

static inline sched_where sched_unpack(uint64_t at) { return (sched_where){(uint32_t)(at >> 32), (uint32_t)at}; }

/* Note in a successor that one of its producers was posted at (packed):
 * entries past max are counted, not kept, and make it unfollowable. */
static inline void sched_note_wait(_Atomic uint32_t *num_waits, uint64_t *waits, uint32_t max, uint64_t at)
{
    uint32_t w = atomic_fetch_add_explicit(num_waits, 1, memory_order_relaxed);
    if (w < max)
        waits[w] = at;
}

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
    /* A run (device_abi.h): run > 1 single-block tasks with references
     * task, task + run_step, task + 2 * run_step, ... and ids task_id,
     * task_id + run_id_step, ..., whose entries are run_stride bytes
     * apart from run_addr (the fields above describe the first). 0 or 1:
     * the one task above. */
    uint32_t run, run_step, run_id_step;
    uint64_t run_addr, run_base, run_stride;
    /* A follower's producers to wait for, where they were posted (the
     * loop drops the ones on the follower's own core). */
    uint32_t num_waits;
    sched_where waits[SIMPLER_SLOT_WAITS];
} sched_post;

/* Successors of one task a follow looks at, at most, and the fanout up to
 * which a posted task tells its successors where it went: a wide fan-out
 * is better spread over the cores by the ready queues. */
#define SCHED_FOLLOW_SCAN 4

/* Posted tasks whose refused followers the loop looks at again, at most. */
#define SCHED_DEFERRED 8

/* How far past the loop's clock (in posts) a follower may be placed
 * behind a gap in a busy core's plan (dispatch_loop.c, fits); further
 * ahead such a core is not a candidate. With no limit a stencil of width
 * 8 placed far ahead waited on itself (Task Bench stencil_1d w8, 300
 * steps of ~100 us tasks on 2 cores: 82 us a task against 54 with 2);
 * with none allowed, the tree of width 2, whose followers are one post
 * off the plan each step, went through the ready queue (90 against 50). */
#define SCHED_GAP_AHEAD 2

/* Queued tasks a core is given, at most, beyond the one it runs: the rest
 * of its mailbox is for followers, which go where their producers are
 * anyway, while a queued task held behind others on one core could have
 * run on another. */
#define SCHED_TAKE_AHEAD 8

/* Posts of queued tasks planned, taken (sched_ops.take_run) and posted
 * at a time, at most. */
#define SCHED_TAKE_BATCH 16

/* A run is sized to keep a core busy about this long, at most: long
 * enough that a post's handoffs (a few hundred ns) are a small part of
 * it, short enough that what a run holds back (its tasks' successors,
 * progress, another core's share, the watchdog's sight of progress) is
 * not held long. Tasks of 200 ms go one at a time; empty ones 256 at a
 * time. */
#ifndef SCHED_RUN_TARGET_NS /* the C tests raise it: under a sanitizer every task is slow */
#define SCHED_RUN_TARGET_NS 20000ull
#endif

/* Tasks in one run, at most. */
#define SCHED_RUN_MAX 256

/* Kernels whose time is kept apart (by func_id, modulo this). */
#define SCHED_RUN_FUNCS 64

/* How long runs of queued tasks may be now (sched_ops.take_run): the
 * loop's share of the queue, and each kernel's recent time a task on a
 * core (0: not timed yet). */
typedef struct sched_run_limit {
    uint32_t share;
    const uint64_t *task_ns;    /* [SCHED_RUN_FUNCS] */
} sched_run_limit;

/* Tasks of kernel func_id one run may carry: the share, and no more than
 * SCHED_RUN_TARGET_NS of them as last timed; one until one was timed, so
 * that a kernel's first tasks go alone and are timed. */
static inline uint32_t sched_run_max(const sched_run_limit *lim, uint32_t func_id)
{
    uint64_t ns = lim->task_ns[func_id % SCHED_RUN_FUNCS];
    if (lim->share < 2 || !ns)
        return 1;
    uint64_t fits = SCHED_RUN_TARGET_NS / ns;
    return fits >= lim->share ? lim->share : fits > 1 ? (uint32_t)fits : 1;
}

/* The loop's side of a follow: which of this thread's cores a candidate
 * would go to (sched_loop.c). */
typedef struct sched_place sched_place;

/* Claim a follower candidate whose producers are all posted: unless its
 * pending count is 0 (it was queued) or carries flag (followed), or it has
 * more than max_waits producers to name, out (filled by the caller but
 * for its waits) gets the waits, each as sched_pack made it, and the
 * candidate is claimed by setting flag in pending if it fits a core.
 * Pending only falls meanwhile, as producers finish; the last one's
 * finish then sees the flag and does not queue it. */
int sched_claim(sched_place *place, uint32_t type, _Atomic uint32_t *pending, uint32_t flag,
                uint32_t num_waits, const uint64_t *waits, uint32_t max_waits, sched_post *out);

/* After sched_claim took a candidate: how many tasks of kernel func_id
 * its post may carry as a run of followers, each one's only unfinished
 * producer the one before it (a chain), so that the core runs them back
 * to back from one slot. 1 unless the candidate waits on no other core
 * (a run's slot names no waits), the runtime makes runs, and the kernel
 * was timed: then as many as fit SCHED_RUN_TARGET_NS, up to
 * SCHED_RUN_MAX. */
uint32_t sched_follow_run_max(const sched_place *place, uint32_t func_id);

typedef struct sched_ops {
    /* Claim the next ready block for a core of this type. */
    int (*take)(void *rt, uint32_t type, sched_post *out);
    /* Claim up to max ready blocks of this type at once, in queue order,
     * into out[]; returns how many (0: none ready). A runtime whose task
     * entries begin with a simpler_run_entry may make each post a run of
     * tasks of one kernel, up to sched_run_max(lim, func_id) of them
     * (out[i].run); one that does not leaves run 0. NULL: the loop calls
     * take for each. */
    int (*take_run)(void *rt, uint32_t type, sched_post *out, uint32_t max, const sched_run_limit *lim);
    /* A whole task was posted to core as seq: a runtime that keeps
     * where producers went (for followers' waits) notes it. NULL: none. */
    void (*posted)(void *rt, uint64_t task, uint32_t core, uint32_t seq);
    /* Claim a successor of task (a whole task, posted and not yet
     * finished) whose producers are all posted, so that a core runs it
     * as soon as they are done, with no trip through a ready queue; its
     * last producer's finish then must not queue it. A candidate is
     * claimed with sched_claim; out names its producers other than
     * task to wait for. It may make out a run of followers of up to
     * sched_follow_run_max tasks, each claimed too. NULL: the runtime
     * never follows. */
    int (*follow)(void *rt, uint64_t task, sched_place *place, sched_post *out);
    /* A block of task finished (called by the thread that saw it);
     * returns 1 if that completed the task (its last block). */
    int (*finish)(void *rt, uint64_t task);
    /* n tasks completed by the finishes just made: a core's finished
     * tasks are retired as a batch and counted once (the shared counters
     * are one atomic add a batch, not a task). */
    void (*completed)(void *rt, uint32_t n);
    /* How many tasks are queued for this core type (0: none). */
    int (*ready)(void *rt, uint32_t type);
    /* All work is over: stop. */
    int (*done)(void *rt);
    /* Work is in flight, so a long silence is a stall. */
    int (*in_flight)(void *rt);
    /* "N of M tasks done" for the timeout message. */
    void (*summary)(void *rt, char *buf, size_t len);
    /* How long an idle thread may sleep now, at most (0: the loop's
     * default); NULL: always the default. For work that comes with
     * nothing to wake the threads (a graph the host still streams). */
    uint64_t (*idle_ns)(void *rt);
    /* Whether take_run makes runs (its task entries begin with a
     * simpler_run_entry); 0: every post is one task. */
    int runs;
} sched_ops;

/* Run the loop until ops->done or an abort; returns the launch status. */
int sched_loop(simpler_launch *launch, uint32_t thread_idx, const sched_ops *ops, void *rt);

/* Wake sleeping scheduler threads other than except (UINT32_MAX: none
 * excepted): new work may suit their idle cores. */
void sched_wake_others(simpler_launch *launch, uint32_t except);

#endif
