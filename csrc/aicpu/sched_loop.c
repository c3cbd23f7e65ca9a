#include "aicpu/sched_loop.h"

#include <inttypes.h>
#include <stdio.h>

#include "aicpu/launch_status.h"
#include "simpler/simpler.h"

/* A sleeping thread wakes this often to run the watchdog. */
#define SCHED_SLEEP_NS 20000000ull

/*
 * A core's mailbox holds SIMPLER_MAILBOX_SLOTS tasks. What goes in beyond
 * the one it runs:
 *   - a follower: a successor of the last task posted whose only
 *     unfinished producer is that task (ops->follow). The core runs it as
 *     soon as its producer returns, without a round trip through this
 *     loop; a chain runs back to back.
 *   - queued tasks, ahead of time, only while there are more of them than
 *     cores of the type, so that no task waits behind a long one while a
 *     core idles.
 */
/* A follower of the last task posted is looked for once right after the
 * post, and again when the core has run everything it was given (its
 * other producers may have finished meanwhile); not on every pass of the
 * loop, which in tensormap_and_ringbuffer takes a lock the orchestrator
 * needs, and would pile a stencil's successors onto one core. */
enum { FOLLOW_NONE, FOLLOW_AT_RETIRE, FOLLOW_NOW };

typedef struct core_slot {
    uint32_t core;
    uint32_t type;
    uint32_t posted;    /* seq of the last task posted */
    uint32_t rung;      /* doorbell value: posts the core has been told of */
    uint32_t retired;   /* finished tasks handed to ops->finish */
    int follow;         /* FOLLOW_*: when to look for a follower of last */
    uint64_t last;      /* the runtime's reference of the last task posted */
    uint64_t tasks[SIMPLER_MAILBOX_SLOTS]; /* posted, by seq like the mailbox */
} core_slot;

typedef struct loop {
    simpler_launch *launch;
    const sched_ops *ops;
    void *rt;
    uint32_t thread_idx;
    uint32_t num_slots;
    uint32_t cores_of_type[2];  /* in the launch, all threads' */
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
    uint32_t seq = c->posted + 1;
    simpler_slot *slot = &mb->slots[(seq - 1) % SIMPLER_MAILBOX_SLOTS];
    slot->kernel_addr = p->kernel_addr;
    slot->tensors_addr = p->tensors_addr;
    slot->scalars_addr = p->scalars_addr;
    slot->task_id = p->task_id;
    slot->num_tensors = p->num_tensors;
    slot->num_scalars = p->num_scalars;
    slot->block_idx = p->block;
    slot->block_num = p->block_num;
    slot->func_id = p->func_id;
    c->tasks[(seq - 1) % SIMPLER_MAILBOX_SLOTS] = p->task;
    c->posted = seq;
    c->last = p->task;
    c->follow = p->block_num == 1 && l->ops->follow ? FOLLOW_NOW : FOLLOW_NONE;
}

/* Ring the doorbell once for everything posted since the last ring: one
 * cache-line handoff to the core for a batch of followers. */
static void ring(loop *l, core_slot *c)
{
    if (c->rung != c->posted) {
        simpler_event_signal_n(&l->launch->mailboxes[c->core].door, c->posted - c->rung);
        c->rung = c->posted;
    }
}

static uint32_t room(const core_slot *c) { return SIMPLER_MAILBOX_SLOTS - (c->posted - c->retired); }

static uint32_t finished_of(loop *l, const core_slot *c)
{
    /* seq_cst: pairs with the core's finished store and sleepers load
     * (executor.c), for a scheduler about to sleep. */
    return atomic_load(&l->launch->mailboxes[c->core].finished);
}

/* Queued work this core may take now: any if it idles, else only a
 * surplus over the cores of its type. */
static int may_take(loop *l, const core_slot *c)
{
    int queued = l->ops->ready(l->rt, c->type);
    if (c->posted == c->retired)
        return queued > 0;
    return queued > (int)l->cores_of_type[c->type];
}

/* Retire what the core finished, then fill its mailbox. */
static int drive(loop *l, core_slot *c)
{
    int progress = 0;
    uint32_t finished = finished_of(l, c);
    while (c->retired != finished) {
        uint32_t seq = c->retired + 1;
        uint64_t task = c->tasks[(seq - 1) % SIMPLER_MAILBOX_SLOTS];
        /* The core ran everything it had: a follower of its last task
         * goes to it now, before finishing that task would queue the
         * follower for any scheduler to take (and maybe an idle core,
         * which would have to be woken). */
        sched_post p;
        if (seq == c->posted && c->follow) {
            if (l->ops->follow(l->rt, task, c->type, &p)) {
                post(l, c, &p);
                ring(l, c); /* before finishing its producer: the core may go on at once */
            } else {
                c->follow = FOLLOW_NONE;
            }
        }
        c->retired = seq;
        atomic_fetch_add_explicit(&l->launch->blocks_completed, 1, memory_order_relaxed);
        l->ops->finish(l->rt, task);
        progress = 1;
    }
    while (room(c)) {
        sched_post p;
        int followed = c->follow == FOLLOW_NOW && l->ops->follow(l->rt, c->last, c->type, &p);
        if (!followed && c->follow == FOLLOW_NOW)
            c->follow = FOLLOW_AT_RETIRE;
        if (!followed && !(may_take(l, c) && l->ops->take(l->rt, c->type, &p)))
            break;
        post(l, c, &p);
        progress = 1;
    }
    ring(l, c);
    return progress;
}

static int should_stop(loop *l)
{
    return atomic_load(&l->launch->abort) || l->ops->done(l->rt);
}

/* Anything this thread could do now without waiting. A follower that
 * may yet appear is not: its producer's finish or the orchestrator's
 * submit wakes this thread. */
static int has_work(loop *l)
{
    for (uint32_t i = 0; i < l->num_slots; i++) {
        core_slot *c = &l->slots[i];
        if (finished_of(l, c) != c->retired || (room(c) && may_take(l, c)))
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
    for (uint32_t c = 0; c < L->num_cores; c++)
        l->cores_of_type[simpler_core_type_of(c)]++;
    for (uint32_t c = thread_idx; c < L->num_cores; c += L->p.aicpu_thread_num) {
        core_slot *slot = &l->slots[l->num_slots++];
        simpler_mailbox *mb = &L->mailboxes[c];
        slot->core = c;
        slot->type = simpler_core_type_of(c);
        slot->posted = slot->retired = slot->rung = atomic_load(&mb->door.seq);
        /* Read by the core after the doorbell of our first post. */
        mb->notify = &L->thread_events[thread_idx];
        mb->trace = L->trace;
    }

    uint64_t timeout_ns = (uint64_t)L->p.scheduler_timeout_ms * 1000000ull;
    uint64_t seen_done = UINT64_MAX, seen_at = 0;
    simpler_backoff backoff = {0};
    simpler_event *me = &L->thread_events[thread_idx];

    while (!should_stop(l)) {
        int progress = 0;
        for (uint32_t i = 0; i < l->num_slots; i++)
            progress |= drive(l, &l->slots[i]);
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
