/*
 * tensormap_and_ringbuffer on the AICPU: the state the orchestrator thread
 * and the scheduler threads share, and the operations both use.
 */
#ifndef SIMPLER_AICPU_TMR_SHARED_H
#define SIMPLER_AICPU_TMR_SHARED_H

#include "aicpu/dispatch_loop.h"
#include "common/device_abi.h"
#include "runtime/tensormap_and_ringbuffer/device_layout.h"

typedef struct tmr_ctx {
    simpler_launch *launch;
    tmr_run *run;
    uint8_t *base;
    tmr_task *tasks;                /* [TMR_DEPTHS][task_ring] */
    uint8_t *heap;                  /* [TMR_DEPTHS][heap_ring] */
    tmr_dep_node *deps;
    _Atomic uint64_t *queue[2];     /* [queue_cap] cells each: see tmr_scheduler.c */
    uint32_t ring;
    uint64_t qmask;
    uint32_t thread_idx;
    uint32_t orchestrator_idx;      /* the orchestrator's event index */
} tmr_ctx;

void tmr_ctx_init(tmr_ctx *c, simpler_launch *launch, uint32_t thread_idx);

static inline tmr_task *tmr_task_of(const tmr_ctx *c, uint32_t handle)
{
    return &c->tasks[(uint64_t)tmr_handle_depth(handle) * c->ring + tmr_handle_slot(handle)];
}

/* A short lock: held for a few stores, so spin, yielding if the holder
 * was preempted. */
static inline void tmr_lock(_Atomic uint32_t *l)
{
    uint32_t spins = 0;
    while (atomic_exchange_explicit(l, 1, memory_order_acquire)) {
        if (++spins % 64 == 0)
            sched_yield();
        else
            simpler_cpu_relax();
    }
}

static inline void tmr_unlock(_Atomic uint32_t *l) { atomic_store_explicit(l, 0, memory_order_release); }

/* pending of a followed task: its last producer's finish sees this flag
 * (plus 1) and does not queue it. */
#define TMR_FOLLOWED 0x80000000u

/* A finished task's slot may be reused once no producer's finish will
 * touch it again. A follower waits on its producers' cores, not on their
 * finish, so it can finish (and complete) before a producer's finish has
 * decremented its pending count; until then the slot stays. */
static inline int tmr_reusable(tmr_task *t)
{
    return atomic_load_explicit(&t->completed, memory_order_acquire) &&
           (atomic_load_explicit(&t->pending, memory_order_acquire) & ~TMR_FOLLOWED) == 0;
}

/* Note in t that one of its producers was posted at (sched_pack). */
static inline void tmr_note_wait(tmr_task *t, uint64_t at)
{
    sched_note_wait(&t->num_waits, t->waits, TMR_WAITS, at);
}

/* Queue a task whose last predecessor finished (or that had none). */
void tmr_push_ready(tmr_ctx *c, uint32_t handle);

/* Wake the orchestrator if it sleeps waiting for ring space. */
void tmr_wake_orchestrator(tmr_ctx *c);

/* Scheduler threads' entry. */
int tmr_schedule(simpler_launch *launch, uint32_t thread_idx);
/* The orchestrator thread's entry. */
int tmr_orchestrate(simpler_launch *launch, uint32_t thread_idx);

#endif
