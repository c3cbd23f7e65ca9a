/*
 * The host_build_graph scheduler. Each AICPU thread owns every
 * aicpu_thread_num-th core and drives them through their mailboxes; the
 * ready queues (one per core type) and the tasks' pending counts are shared
 * by all threads and live in the graph image.
 *
 * A task is pushed to its ready queue once, by whoever finishes its last
 * predecessor; a thread takes a block only when one of its own cores of
 * that type is idle, so a taken block is dispatched at once.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "aicpu/hbg_scheduler.h"
#include "aicpu/launch_status.h"
#include "runtime/host_build_graph/graph_image.h"
#include "simpler/simpler.h"

/* A sleeping thread wakes this often to run the watchdog. */
#define SCHED_SLEEP_NS 20000000ull

typedef struct core_slot {
    uint32_t core;
    uint32_t type;
    uint32_t seq;       /* doorbell value of the last post */
    uint32_t busy;
    uint32_t task;
} core_slot;

typedef struct sched {
    simpler_launch *launch;
    uint8_t *base;
    hbg_header *hdr;
    hbg_task *tasks;
    const uint32_t *fanout;
    _Atomic uint32_t *queue[2];
    uint32_t thread_idx;
    uint32_t num_slots;
    core_slot slots[SIMPLER_MAX_CORES];
} sched;

/* Another thread may own an idle core for new work; wake only sleepers. */
static void wake_others(sched *s)
{
    for (uint32_t t = 0; t < s->launch->p.aicpu_thread_num; t++) {
        simpler_event *e = &s->launch->thread_events[t];
        if (t != s->thread_idx && atomic_load(&e->sleepers))
            simpler_event_signal(e);
    }
}

static void push_ready(sched *s, uint32_t task)
{
    uint32_t type = s->tasks[task].core_type;
    uint64_t pos = atomic_fetch_add(&s->hdr->queue_tail[type], 1);
    atomic_store(&s->queue[type][pos], task + 1);
    wake_others(s);
}

/* Claim the next ready block of this core type: returns 1 with *task and
 * *block set, or 0 when nothing is ready. */
static int take_block(sched *s, uint32_t type, uint32_t *task, uint32_t *block)
{
    _Atomic uint64_t *head = &s->hdr->queue_head[type];
    for (;;) {
        uint64_t h = atomic_load(head);
        if (h >= atomic_load(&s->hdr->queue_tail[type]))
            return 0;
        uint32_t v = atomic_load(&s->queue[type][h]);
        if (v == 0)
            return 0; /* being published; the pusher will wake us */
        hbg_task *t = &s->tasks[v - 1];
        if (t->block_num == 1) {
            if (!atomic_compare_exchange_weak(head, &h, h + 1))
                continue;
            *task = v - 1;
            *block = 0;
            return 1;
        }
        /* Several blocks: claim one; whoever claims the last (or finds
         * them all claimed) moves the head on. head only grows, so a
         * stale h makes the CAS fail and the claim land past block_num. */
        uint32_t b = atomic_fetch_add(&t->next_block, 1);
        if (b + 1 >= t->block_num)
            atomic_compare_exchange_strong(head, &h, h + 1);
        if (b >= t->block_num)
            continue;
        if (b + 1 < t->block_num)
            wake_others(s); /* more blocks for other threads' idle cores */
        *task = v - 1;
        *block = b;
        return 1;
    }
}

static int ready_nonempty(sched *s, uint32_t type)
{
    return atomic_load(&s->hdr->queue_head[type]) < atomic_load(&s->hdr->queue_tail[type]);
}

static void post(sched *s, core_slot *c, uint32_t task, uint32_t block)
{
    hbg_task *t = &s->tasks[task];
    simpler_mailbox *mb = &s->launch->mailboxes[c->core];
    mb->kernel_addr = t->kernel_addr;
    mb->tensors_addr = (uint64_t)(uintptr_t)(s->base + t->tensors_off);
    mb->scalars_addr = (uint64_t)(uintptr_t)(s->base + t->scalars_off);
    mb->num_tensors = t->num_tensors;
    mb->num_scalars = t->num_scalars;
    mb->block_idx = block;
    mb->block_num = t->block_num;
    atomic_store_explicit(&mb->func_id, t->func_id, memory_order_relaxed);
    atomic_store_explicit(&mb->task_id, task, memory_order_relaxed);
    mb->notify = &s->launch->thread_events[s->thread_idx];
    c->seq++;
    c->busy = 1;
    c->task = task;
    simpler_event_signal(&mb->door);
}

/* Give an idle core the next ready block of its type. */
static int dispatch(sched *s, core_slot *c)
{
    uint32_t task, block;
    if (!take_block(s, c->type, &task, &block))
        return 0;
    post(s, c, task, block);
    return 1;
}

static void finish_block(sched *s, uint32_t task)
{
    hbg_task *t = &s->tasks[task];
    atomic_fetch_add_explicit(&s->launch->blocks_completed, 1, memory_order_relaxed);
    if (atomic_fetch_add(&t->blocks_done, 1) + 1 < t->block_num)
        return;
    const uint32_t *succ = s->fanout + t->fanout_start;
    for (uint32_t i = 0; i < t->fanout_count; i++)
        if (atomic_fetch_sub(&s->tasks[succ[i]].pending, 1) == 1)
            push_ready(s, succ[i]);
    if (atomic_fetch_add(&s->launch->tasks_completed, 1) + 1 == s->hdr->num_tasks)
        aicpu_wake_all(s->launch);
}

static int core_finished(sched *s, core_slot *c)
{
    simpler_mailbox *mb = &s->launch->mailboxes[c->core];
    return c->busy && atomic_load_explicit(&mb->finished, memory_order_acquire) == c->seq;
}

static int should_stop(sched *s)
{
    return atomic_load(&s->launch->abort) ||
           atomic_load(&s->launch->tasks_completed) == s->hdr->num_tasks;
}

/* Anything this thread could do now without waiting. */
static int has_work(sched *s)
{
    for (uint32_t i = 0; i < s->num_slots; i++) {
        core_slot *c = &s->slots[i];
        if (core_finished(s, c) || (!c->busy && ready_nonempty(s, c->type)))
            return 1;
    }
    return should_stop(s);
}

static void report_timeout(sched *s, uint64_t stalled_ns)
{
    simpler_launch *L = s->launch;
    char list[768];
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
                                  stuck > 1 ? ", " : "", task, func, c,
                                  simpler_core_type_of(c) ? "AIV" : "AIC");
    }
    uint64_t done = atomic_load(&L->tasks_completed);
    aicpu_launch_fail(L, SIMPLER_E_TIMEOUT,
                      "scheduler timeout: no task finished for %.1f s (limit %u ms); "
                      "%" PRIu64 " of %u tasks done; stuck: %s",
                      (double)stalled_ns / 1e9, L->p.scheduler_timeout_ms, done, s->hdr->num_tasks,
                      stuck ? list : "none running (tasks waiting on each other?)");
}

int hbg_schedule(simpler_launch *L, uint32_t thread_idx)
{
    sched *s = &(sched){0};
    s->launch = L;
    s->base = (uint8_t *)(uintptr_t)L->p.image_addr;
    s->hdr = (hbg_header *)s->base;
    s->tasks = (hbg_task *)(s->base + s->hdr->tasks_off);
    s->fanout = (const uint32_t *)(s->base + s->hdr->fanout_off);
    s->queue[0] = (_Atomic uint32_t *)(s->base + s->hdr->queue_off[0]);
    s->queue[1] = (_Atomic uint32_t *)(s->base + s->hdr->queue_off[1]);
    s->thread_idx = thread_idx;
    for (uint32_t c = thread_idx; c < L->num_cores; c += L->p.aicpu_thread_num) {
        core_slot *slot = &s->slots[s->num_slots++];
        slot->core = c;
        slot->type = simpler_core_type_of(c);
        slot->seq = atomic_load(&L->mailboxes[c].door.seq);
    }

    uint64_t timeout_ns = (uint64_t)L->p.scheduler_timeout_ms * 1000000ull;
    uint64_t seen_done = UINT64_MAX, seen_at = 0;
    simpler_backoff backoff = {0};
    simpler_event *me = &L->thread_events[thread_idx];

    while (!should_stop(s)) {
        int progress = 0;
        for (uint32_t i = 0; i < s->num_slots; i++) {
            core_slot *c = &s->slots[i];
            if (core_finished(s, c)) {
                c->busy = 0;
                finish_block(s, c->task);
                progress = 1;
            }
            if (!c->busy)
                progress |= dispatch(s, c);
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
        if (done != seen_done) {
            seen_done = done;
            seen_at = now;
        } else if (now - seen_at >= timeout_ns) {
            report_timeout(s, now - seen_at);
            break;
        }
        uint32_t seq = simpler_event_prepare(me);
        if (has_work(s)) {
            simpler_event_cancel(me);
            continue;
        }
        simpler_event_sleep(me, seq, SCHED_SLEEP_NS);
    }
    return atomic_load(&L->status);
}
