/*
 * The host_build_graph scheduler: the shared dispatch loop over a graph
 * image. The ready queues (one per core type) and the tasks' pending
 * counts are shared by all threads and live in the image.
 *
 * A task is pushed to its ready queue once, by whoever finishes its last
 * predecessor, unless a scheduler followed it: posted it to a core, to
 * wait there for its predecessors, once all of them were posted
 * (dispatch_loop.c). A
 * thread takes a block only when one of its own cores of that type has
 * room, so a taken block is dispatched at once.
 */
#include <inttypes.h>
#include <stdio.h>

#include "aicpu/aicpu_runtime.h"
#include "aicpu/dispatch_loop.h"
#include "aicpu/launch_status.h"
#include "runtime/host_build_graph/aicpu/queue_claim.h"
#include "runtime/host_build_graph/graph_image.h"

typedef struct hbg {
    simpler_launch *launch;
    uint32_t thread_idx;
    uint8_t *base;
    hbg_header *hdr;
    hbg_task *tasks;
    const uint32_t *fanout;
    _Atomic uint32_t *queue[2];
} hbg;

static void push_ready(hbg *s, uint32_t task)
{
    uint32_t type = s->tasks[task].core_type;
    uint64_t pos = atomic_fetch_add(&s->hdr->queue_tail[type], 1);
    atomic_store(&s->queue[type][pos], task + 1);
    sched_wake_others(s->launch, s->thread_idx);
}

static void fill(hbg *s, uint32_t task, uint32_t block, sched_post *out)
{
    hbg_task *t = &s->tasks[task];
    *out = (sched_post){
        .kernel_addr = t->kernel_addr,
        .tensors_addr = (uint64_t)(uintptr_t)(s->base + t->tensors_off),
        .scalars_addr = (uint64_t)(uintptr_t)(s->base + t->scalars_off),
        .num_tensors = t->num_tensors,
        .num_scalars = t->num_scalars,
        .block = block,
        .block_num = t->block_num,
        .func_id = t->func_id,
        .task = task,
        .task_id = task,
    };
}

/* Claim the next ready block of this core type. */
static int take(void *rt, uint32_t type, sched_post *out)
{
    hbg *s = rt;
    _Atomic uint64_t *head = &s->hdr->queue_head[type];
    for (;;) {
        uint64_t h = atomic_load(head);
        if (h >= atomic_load(&s->hdr->queue_tail[type]))
            return 0;
        uint32_t v = atomic_load(&s->queue[type][h]);
        if (v == 0)
            return 0; /* being published; the pusher will wake us */
        hbg_task *t = &s->tasks[v - 1];
        int64_t b = hbg_claim_block(s->launch, s->thread_idx, head, h, t->block_num, &t->next_block);
        if (b < 0)
            continue;
        fill(s, v - 1, (uint32_t)b, out);
        return 1;
    }
}

/* Tasks apart in the image, at most, that a run may step over: queued
 * tasks of one type between tasks of the other (a graph that alternates
 * AIC and AIV tasks queues every other one). */
#define HBG_RUN_STEP_MAX 16

/* Whether queue entry v (task index + 1) goes on the post being formed,
 * a run of count tasks of one kernel from first stepping by step (set by
 * the second), up to run_max. */
static int extends(const hbg *s, uint32_t v, uint32_t first, uint32_t count, uint32_t *step, uint32_t run_max)
{
    if (count >= run_max || v <= first || s->tasks[v - 1].func_id != s->tasks[first - 1].func_id)
        return 0;
    if (count == 1) {
        if (v - first > HBG_RUN_STEP_MAX)
            return 0;
        *step = v - first;
        return 1;
    }
    return v == first + count * *step;
}

/* Claim up to max posts of single-block tasks at the head of the queue
 * with one move of head (a task of several blocks is taken alone, by
 * take). Tasks queued one after the other that are also evenly spaced in
 * the image, of one kernel and up to sched_run_max of them, go as one
 * post: a run the core reads
 * from the image (a graph's roots are queued in order, and the tasks a
 * finish makes ready in the order of its fanout). */
static int take_run(void *rt, uint32_t type, sched_post *out, uint32_t max, const sched_run_limit *lim)
{
    hbg *s = rt;
    _Atomic uint64_t *head = &s->hdr->queue_head[type];
    if (max > SCHED_TAKE_BATCH)
        max = SCHED_TAKE_BATCH;
    for (;;) {
        uint64_t h = atomic_load(head), tail = atomic_load(&s->hdr->queue_tail[type]);
        uint32_t n = 0, m = 0, v;
        uint32_t first[SCHED_TAKE_BATCH], count[SCHED_TAKE_BATCH], step[SCHED_TAKE_BATCH], most[SCHED_TAKE_BATCH];
        while (h + m < tail && (v = atomic_load(&s->queue[type][h + m])) != 0 && s->tasks[v - 1].block_num == 1) {
            if (!n || !extends(s, v, first[n - 1], count[n - 1], &step[n - 1], most[n - 1])) {
                if (n == max)
                    break;
                first[n] = v;
                count[n] = 1;
                most[n] = sched_run_max(lim, s->tasks[v - 1].func_id);
                step[n++] = 1;
            } else {
                count[n - 1]++;
            }
            m++;
        }
        if (n == 0)
            return take(rt, type, out);
        if (!atomic_compare_exchange_weak(head, &h, h + m))
            continue;
        for (uint32_t i = 0; i < n; i++) {
            fill(s, first[i] - 1, 0, &out[i]);
            if (count[i] > 1) {
                out[i].run = count[i];
                out[i].run_step = out[i].run_id_step = step[i];
                out[i].run_addr = (uint64_t)(uintptr_t)&s->tasks[first[i] - 1];
                out[i].run_base = (uint64_t)(uintptr_t)s->base;
                out[i].run_stride = (uint64_t)step[i] * sizeof(hbg_task);
            }
        }
        return (int)n;
    }
}

_Static_assert(HBG_WAITS <= SIMPLER_SLOT_WAITS, "a follower's waits fit its slot");

/* Tell task's successors where it went (sched_ops.posted). */
static void posted(void *rt, uint64_t task, uint32_t core, uint32_t seq)
{
    hbg *s = rt;
    hbg_task *t = &s->tasks[task];
    if (t->fanout_count > SCHED_FOLLOW_SCAN)
        return;
    const uint32_t *succ = s->fanout + t->fanout_start;
    for (uint32_t i = 0; i < t->fanout_count; i++) {
        hbg_task *f = &s->tasks[succ[i]];
        /* Followed already (the next task of a run, say): where its
         * producers went no longer matters, and the flag stays. */
        if (atomic_load_explicit(&f->pending, memory_order_relaxed) & HBG_FOLLOWED)
            continue;
        sched_note_wait(&f->num_waits, f->waits, HBG_WAITS, sched_pack(core, seq));
        /* release: whoever sees unposted 0 sees every producer's entry */
        atomic_fetch_sub_explicit(&f->unposted, 1, memory_order_release);
    }
}

/* A follower first was claimed: make its post a run of up to most tasks,
 * each the successor of the one before whose every other producer has
 * finished (its pending count is 1: that one), claimed in turn, of first's
 * kernel, evenly spaced in the image (a chain, as submitted). */
static void follow_run(hbg *s, uint32_t first, uint32_t most, sched_post *out)
{
    const hbg_task *f = &s->tasks[first];
    uint32_t prev = first, count = 1, step = 0;
    while (count < most) {
        const hbg_task *p = &s->tasks[prev];
        if (p->fanout_count > SCHED_FOLLOW_SCAN)
            break;
        const uint32_t *succ = s->fanout + p->fanout_start;
        uint32_t next = 0;
        for (uint32_t i = 0; i < p->fanout_count && !next; i++) {
            uint32_t g = succ[i];
            hbg_task *t = &s->tasks[g];
            if (g <= prev || (step ? g != prev + step : g - prev > HBG_RUN_STEP_MAX) || t->func_id != f->func_id ||
                t->core_type != f->core_type || t->block_num != 1)
                continue;
            uint32_t one = 1;
            if (atomic_compare_exchange_strong(&t->pending, &one, 1 | HBG_FOLLOWED))
                next = g;
        }
        if (!next)
            break;
        if (!step)
            step = next - first;
        prev = next;
        count++;
    }
    if (count > 1) {
        out->run = count;
        out->run_step = out->run_id_step = step;
        out->run_addr = (uint64_t)(uintptr_t)f;
        out->run_base = (uint64_t)(uintptr_t)s->base;
        out->run_stride = (uint64_t)step * sizeof(hbg_task);
    }
}

static int follow(void *rt, uint64_t task, sched_place *place, sched_post *out)
{
    hbg *s = rt;
    hbg_task *t = &s->tasks[task];
    if (t->fanout_count > SCHED_FOLLOW_SCAN)
        return 0; /* posted() did not count it: its successors never follow */
    const uint32_t *succ = s->fanout + t->fanout_start;
    for (uint32_t i = 0; i < t->fanout_count; i++) {
        hbg_task *f = &s->tasks[succ[i]];
        if (f->block_num != 1 || atomic_load_explicit(&f->unposted, memory_order_acquire) != 0)
            continue;
        fill(s, succ[i], 0, out);
        if (sched_claim(place, f->core_type, &f->pending, HBG_FOLLOWED,
                        atomic_load_explicit(&f->num_waits, memory_order_relaxed), f->waits, HBG_WAITS, out)) {
            uint32_t most = sched_follow_run_max(place, f->func_id);
            if (most > 1)
                follow_run(s, succ[i], most, out);
            return 1;
        }
    }
    return 0;
}

static int finish(void *rt, uint64_t task)
{
    hbg *s = rt;
    hbg_task *t = &s->tasks[task];
    /* one block: its finish is the task's (no atomic add, a locked
     * instruction, for every task of a run) */
    if (t->block_num > 1 && atomic_fetch_add(&t->blocks_done, 1) + 1 < t->block_num)
        return 0;
    const uint32_t *succ = s->fanout + t->fanout_start;
    for (uint32_t i = 0; i < t->fanout_count; i++) {
        _Atomic uint32_t *pending = &s->tasks[succ[i]].pending;
        /* A followed successor waiting for this task alone (a chain's
         * next): nothing else changes its count now, so a store does
         * what a locked subtraction would. */
        if (atomic_load_explicit(pending, memory_order_relaxed) == (1 | HBG_FOLLOWED))
            atomic_store_explicit(pending, HBG_FOLLOWED, memory_order_relaxed);
        else if (atomic_fetch_sub(pending, 1) == 1)
            push_ready(s, succ[i]);
    }
    return 1;
}

static void completed(void *rt, uint32_t n)
{
    hbg *s = rt;
    if (atomic_fetch_add(&s->launch->tasks_completed, n) + n == s->hdr->num_tasks)
        aicpu_wake_all(s->launch);
}

static int ready(void *rt, uint32_t type)
{
    hbg *s = rt;
    uint64_t h = atomic_load(&s->hdr->queue_head[type]), t = atomic_load(&s->hdr->queue_tail[type]);
    return t > h ? (int)(t - h < INT32_MAX ? t - h : INT32_MAX) : 0;
}

static int done(void *rt)
{
    hbg *s = rt;
    return atomic_load(&s->launch->tasks_completed) == s->hdr->num_tasks;
}

static int in_flight(void *rt) { return !done(rt); }

static void summary(void *rt, char *buf, size_t len)
{
    hbg *s = rt;
    snprintf(buf, len, "%" PRIu64 " of %u tasks done", atomic_load(&s->launch->tasks_completed),
             s->hdr->num_tasks);
}

static const sched_ops hbg_ops = {take, take_run, posted, follow, finish, completed, ready, done, in_flight,
                                   summary, NULL, 1};

/* Schedule the image on this thread's share of the cores until every task
 * finished or the launch aborted. */
static int hbg_schedule(simpler_launch *L, uint32_t thread_idx)
{
    hbg s = {.launch = L, .thread_idx = thread_idx};
    s.base = (uint8_t *)(uintptr_t)L->p.image_addr;
    s.hdr = (hbg_header *)s.base;
    s.tasks = (hbg_task *)(s.base + s.hdr->tasks_off);
    s.fanout = (const uint32_t *)(s.base + s.hdr->fanout_off);
    s.queue[0] = (_Atomic uint32_t *)(s.base + s.hdr->queue_off[0]);
    s.queue[1] = (_Atomic uint32_t *)(s.base + s.hdr->queue_off[1]);
    atomic_store_explicit(&L->tasks_submitted, s.hdr->num_tasks, memory_order_relaxed);   /* for progress */
    return sched_loop(L, thread_idx, &hbg_ops, &s);
}

AICPU_RUNTIME(hbg_runtime) = {SIMPLER_RUNTIME_HOST_BUILD_GRAPH, "host_build_graph", hbg_schedule};
