#include "aicpu/sched_loop.h"

#include <inttypes.h>
#include <stdio.h>

#include "aicpu/launch_status.h"
#include "simpler/simpler.h"

/* A sleeping thread wakes this often to run the watchdog. */
#define SCHED_SLEEP_NS 20000000ull

typedef struct core_slot {
    uint32_t core;
    uint32_t type;
    uint32_t seq;       /* doorbell value of the last post */
    uint32_t busy;
    uint64_t task;
} core_slot;

typedef struct loop {
    simpler_launch *launch;
    const sched_ops *ops;
    void *rt;
    uint32_t thread_idx;
    uint32_t num_slots;
    core_slot slots[SIMPLER_MAX_CORES];
} loop;

void sched_wake_others(simpler_launch *L, uint32_t except)
{
    for (uint32_t t = 0; t < L->p.aicpu_thread_num; t++) {
        simpler_event *e = &L->thread_events[t];
        if (t != except && atomic_load(&e->sleepers))
            simpler_event_signal(e);
    }
}

static void post(loop *l, core_slot *c, const sched_post *p)
{
    simpler_mailbox *mb = &l->launch->mailboxes[c->core];
    mb->kernel_addr = p->kernel_addr;
    mb->tensors_addr = p->tensors_addr;
    mb->scalars_addr = p->scalars_addr;
    mb->num_tensors = p->num_tensors;
    mb->num_scalars = p->num_scalars;
    mb->block_idx = p->block;
    mb->block_num = p->block_num;
    atomic_store_explicit(&mb->func_id, p->func_id, memory_order_relaxed);
    atomic_store_explicit(&mb->task_id, p->task_id, memory_order_relaxed);
    mb->notify = &l->launch->thread_events[l->thread_idx];
    mb->trace = l->launch->trace;
    c->seq++;
    c->busy = 1;
    c->task = p->task;
    simpler_event_signal(&mb->door);
}

static int core_finished(loop *l, core_slot *c)
{
    simpler_mailbox *mb = &l->launch->mailboxes[c->core];
    return c->busy && atomic_load_explicit(&mb->finished, memory_order_acquire) == c->seq;
}

static int should_stop(loop *l)
{
    return atomic_load(&l->launch->abort) || l->ops->done(l->rt);
}

/* Anything this thread could do now without waiting. */
static int has_work(loop *l)
{
    for (uint32_t i = 0; i < l->num_slots; i++) {
        core_slot *c = &l->slots[i];
        if (core_finished(l, c) || (!c->busy && l->ops->ready(l->rt, c->type)))
            return 1;
    }
    return should_stop(l);
}

static void report_timeout(loop *l, uint64_t stalled_ns)
{
    simpler_launch *L = l->launch;
    char list[768], summary[128];
    size_t n = 0;
    uint32_t stuck = 0;
    list[0] = '\0';
    for (uint32_t c = 0; c < L->num_cores; c++) {
        simpler_mailbox *mb = &L->mailboxes[c];
        if (!atomic_load(&mb->in_kernel))
            continue;
        stuck++;
        uint64_t task = atomic_load_explicit(&mb->task_id, memory_order_relaxed);
        uint32_t func = atomic_load_explicit(&mb->func_id, memory_order_relaxed);
        if (n < sizeof list - 80)
            n += (size_t)snprintf(list + n, sizeof list - n, "%stask %" PRIu64 " (func %u) on core %u (%s)",
                                  stuck > 1 ? ", " : "", task, func, c, simpler_core_type_of(c) ? "AIV" : "AIC");
    }
    l->ops->summary(l->rt, summary, sizeof summary);
    aicpu_launch_fail(L, SIMPLER_E_TIMEOUT,
                      "scheduler timeout: no task finished for %.1f s (limit %u ms); %s; stuck: %s",
                      (double)stalled_ns / 1e9, L->p.scheduler_timeout_ms, summary,
                      stuck ? list : "none running (tasks waiting on each other?)");
}

int sched_loop(simpler_launch *L, uint32_t thread_idx, const sched_ops *ops, void *rt)
{
    loop *l = &(loop){0};
    l->launch = L;
    l->ops = ops;
    l->rt = rt;
    l->thread_idx = thread_idx;
    for (uint32_t c = thread_idx; c < L->num_cores; c += L->p.aicpu_thread_num) {
        core_slot *slot = &l->slots[l->num_slots++];
        slot->core = c;
        slot->type = simpler_core_type_of(c);
        slot->seq = atomic_load(&L->mailboxes[c].door.seq);
    }

    uint64_t timeout_ns = (uint64_t)L->p.scheduler_timeout_ms * 1000000ull;
    uint64_t seen_done = UINT64_MAX, seen_at = 0;
    simpler_backoff backoff = {0};
    simpler_event *me = &L->thread_events[thread_idx];

    while (!should_stop(l)) {
        int progress = 0;
        for (uint32_t i = 0; i < l->num_slots; i++) {
            core_slot *c = &l->slots[i];
            if (core_finished(l, c)) {
                c->busy = 0;
                atomic_fetch_add_explicit(&L->blocks_completed, 1, memory_order_relaxed);
                ops->finish(rt, c->task);
                progress = 1;
            }
            sched_post p;
            if (!c->busy && ops->take(rt, c->type, &p)) {
                post(l, c, &p);
                progress = 1;
            }
        }
        if (progress) {
            simpler_backoff_reset(&backoff);
            continue;
        }
        if (!simpler_backoff_step(&backoff))
            continue;

        /* Idle for a while: run the watchdog, then sleep until a core of
         * ours finishes, a task becomes ready, or the watchdog is due. */
        uint64_t now = simpler_now_ns();
        uint64_t done = atomic_load(&L->blocks_completed);
        if (done != seen_done || !ops->in_flight(rt)) {
            seen_done = done;
            seen_at = now;
        } else if (now - seen_at >= timeout_ns) {
            report_timeout(l, now - seen_at);
            break;
        }
        uint32_t seq = simpler_event_prepare(me);
        if (has_work(l)) {
            simpler_event_cancel(me);
            continue;
        }
        simpler_event_sleep(me, seq, SCHED_SLEEP_NS);
        if (L->trace)
            simpler_trace_record(L->trace, SIMPLER_TRACE_SLEEP, thread_idx, 0, 0, 0, now, simpler_now_ns());
    }
    return atomic_load(&L->status);
}
