/*
 * tensormap_and_ringbuffer scheduling: the shared dispatch loop over task
 * slots that the orchestrator fills while it runs.
 *
 * Ready queues are rings of queue_cap cells; head and tail only grow. A
 * cell names the position it belongs to (low 32 bits, in its high half)
 * and holds handle + 1 once published, 0 while free:
 *   free for position p:  p << 32 | 0      published: p << 32 | handle + 1
 * The pusher of p waits until its cell is free for p; whoever moves head
 * past p frees the cell for p + queue_cap. A scheduler that read head long
 * ago sees another position's tag and takes nothing. (The queue never
 * holds more tasks than there are task slots, so a pusher waits only
 * for a consumer between its head CAS and its release.) As in
 * host_build_graph, a task with several blocks stays at the head while its
 * blocks are claimed.
 */
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>

#include "aicpu/launch_status.h"
#include "aicpu/dispatch_loop.h"
#include "runtime/tensormap_and_ringbuffer/aicpu/shared_state.h"

void tmr_ctx_init(tmr_ctx *c, simpler_launch *L, uint32_t thread_idx)
{
    c->launch = L;
    c->base = (uint8_t *)(uintptr_t)L->p.image_addr;
    c->run = (tmr_run *)c->base;
    c->tasks = (tmr_task *)(c->base + c->run->tasks_off);
    c->heap = c->base + c->run->heap_off;
    c->deps = (tmr_dep_node *)(c->base + c->run->deps_off);
    c->queue[0] = (_Atomic uint64_t *)(c->base + c->run->queue_off);
    c->queue[1] = c->queue[0] + c->run->queue_cap;
    c->ring = c->run->sizes.task_ring;
    c->qmask = c->run->queue_cap - 1;
    c->thread_idx = thread_idx;
    c->orchestrator_idx = L->p.aicpu_thread_num;
}

void tmr_wake_orchestrator(tmr_ctx *c)
{
    simpler_event *e = &c->launch->thread_events[c->orchestrator_idx];
    if (atomic_load(&e->sleepers))
        simpler_event_signal(e);
}

static uint64_t cell_tag(uint64_t pos) { return (pos & 0xFFFFFFFFull) << 32; }

void tmr_push_ready(tmr_ctx *c, uint32_t handle)
{
    uint32_t type = tmr_task_of(c, handle)->core_type;
    uint64_t pos = atomic_fetch_add(&c->run->queue_tail[type], 1);
    _Atomic uint64_t *cell = &c->queue[type][pos & c->qmask];
    while (atomic_load(cell) != cell_tag(pos))
        sched_yield();
    atomic_store(cell, cell_tag(pos) | (handle + 1));
    sched_wake_others(c->launch, c->thread_idx);
}

/* A core reads a run of tasks straight from the ring (dispatch_loop.h). */
SIMPLER_AS_RUN_ENTRY(tmr_task, kernel_addr, kernel_addr);
SIMPLER_AS_RUN_ENTRY(tmr_task, tensors, tensors_off);
SIMPLER_AS_RUN_ENTRY(tmr_task, scalars, scalars_off);
SIMPLER_AS_RUN_ENTRY(tmr_task, num_tensors, num_tensors);
SIMPLER_AS_RUN_ENTRY(tmr_task, num_scalars, num_scalars);
SIMPLER_AS_RUN_ENTRY(tmr_task, func_id, func_id);

static void fill(tmr_task *t, uint32_t handle, uint32_t block, sched_post *out)
{
    *out = (sched_post){
        .kernel_addr = t->kernel_addr,
        .tensors_addr = (uint64_t)(uintptr_t)t->tensors,
        .scalars_addr = (uint64_t)(uintptr_t)t->scalars,
        .num_tensors = t->num_tensors,
        .num_scalars = t->num_scalars,
        .block = block,
        .block_num = t->block_num,
        .func_id = atomic_load_explicit(&t->func_id, memory_order_relaxed),
        .task = handle,
        .task_id = atomic_load_explicit(&t->seq, memory_order_relaxed) - 1,
    };
}

/* Move head past h (if nobody did); the winner frees the cell for the
 * position one lap on. */
static void advance(tmr_ctx *c, uint32_t type, uint64_t h)
{
    if (atomic_compare_exchange_strong(&c->run->queue_head[type], &h, h + 1))
        atomic_store(&c->queue[type][h & c->qmask], cell_tag(h + c->qmask + 1));
}

static int take(void *rt, uint32_t type, sched_post *out)
{
    tmr_ctx *c = rt;
    _Atomic uint64_t *head = &c->run->queue_head[type];
    for (;;) {
        uint64_t h = atomic_load(head);
        if (h >= atomic_load(&c->run->queue_tail[type]))
            return 0;
        uint64_t v = atomic_load(&c->queue[type][h & c->qmask]);
        if ((v & ~0xFFFFFFFFull) != cell_tag(h)) {
            if (atomic_load(head) == h)
                return 0; /* freed but not yet refilled for h: look again later */
            continue;     /* head moved on while we looked */
        }
        if ((uint32_t)v == 0)
            return 0; /* being published; the pusher will wake us */
        uint32_t handle = (uint32_t)v - 1;
        tmr_task *t = tmr_task_of(c, handle);
        /* Claim a block through the slot's claim word, which names the
         * task occupying it. Another generation there means this entry's
         * task got all its blocks, ran and left: help move the head on. */
        uint64_t old = atomic_load(&t->claim);
        uint32_t block_num = (uint32_t)(old >> 32) & 0xFFFFu, block = (uint32_t)old;
        if (((old >> 48) & 0x3FFFu) != tmr_handle_gen(handle) || block >= block_num) {
            advance(c, type, h);
            continue;
        }
        if (!atomic_compare_exchange_weak(&t->claim, &old, old + 1))
            continue;
        if (block + 1 == block_num)
            advance(c, type, h);
        else
            sched_wake_others(c->launch, c->thread_idx); /* more blocks for other idle cores */
        fill(t, handle, block, out);
        return 1;
    }
}

/* Slots apart in a ring, at most, that a run may step over: queued tasks
 * of one type between tasks of the other. */
#define TMR_RUN_STEP_MAX 16

/* A post being formed from queued tasks: a run of count tasks from
 * handle first, each the next by step in handle and id_step in seq. */
typedef struct forming {
    uint32_t first, count, step, id_step, most, func_id;
    uint64_t first_seq;
} forming;

/* Whether the task at handle (seq, kernel func_id) goes on post f: of
 * its kernel, the next slot of the same ring, lap and stride, and of the
 * same seq stride, as a core reads a run straight from the ring
 * (dispatch_loop.h); no more than f->most. */
static int extends(const forming *f, uint32_t handle, uint64_t seq, uint32_t func_id)
{
    if (f->count >= f->most || func_id != f->func_id || tmr_handle_depth(handle) != tmr_handle_depth(f->first) ||
        tmr_handle_gen(handle) != tmr_handle_gen(f->first) || tmr_handle_slot(handle) <= tmr_handle_slot(f->first) ||
        seq <= f->first_seq)
        return 0;
    uint32_t slots = tmr_handle_slot(handle) - tmr_handle_slot(f->first);
    if (f->count == 1)
        return slots <= TMR_RUN_STEP_MAX && seq - f->first_seq <= UINT32_MAX;
    return slots == f->count * (f->step >> 14) && seq - f->first_seq == (uint64_t)f->count * f->id_step;
}

/* Make out (filled for f's first task) the run f formed, if it has more
 * than one task: the core reads each entry straight from the ring. */
static void make_run(const tmr_ctx *c, const forming *f, sched_post *out)
{
    if (f->count < 2)
        return;
    out->run = f->count;
    out->run_step = f->step;
    out->run_id_step = f->id_step;
    out->run_addr = (uint64_t)(uintptr_t)tmr_task_of(c, f->first);
    out->run_base = 0;
    out->run_stride = (uint64_t)(f->step >> 14) * sizeof(tmr_task);
}

/* Add handle (seq) to f, which extends accepted it. */
static void join(forming *f, uint32_t handle, uint64_t seq)
{
    if (f->count == 1) {
        f->step = handle - f->first;
        f->id_step = (uint32_t)(seq - f->first_seq);
    }
    f->count++;
}

/* Claim up to max posts of single-block tasks from the head of the queue:
 * each task through its claim word as take does, then head moved past
 * the lot at once and their cells freed. Tasks queued one after the other
 * that are also evenly spaced in one lap of a ring go as one post, a run
 * of one kernel's tasks, up to sched_run_max. Another scheduler may meanwhile see a claimed task
 * at the head and move the head past it (take's "help move the head
 * on"); then each position is advanced one by one, its winner freeing
 * its cell, as take would have. A task of several blocks, or anything
 * take would look again for, ends the scan (and is left to take when
 * nothing was claimed). */
static int take_run(void *rt, uint32_t type, sched_post *out, uint32_t max, const sched_run_limit *lim)
{
    tmr_ctx *c = rt;
    _Atomic uint64_t *head = &c->run->queue_head[type];
    uint64_t h = atomic_load(head), tail = atomic_load(&c->run->queue_tail[type]);
    uint32_t n = 0, m = 0;
    forming f[SCHED_TAKE_BATCH];
    if (max > SCHED_TAKE_BATCH)
        max = SCHED_TAKE_BATCH;
    while (h + m < tail) {
        uint64_t v = atomic_load(&c->queue[type][(h + m) & c->qmask]);
        if ((v & ~0xFFFFFFFFull) != cell_tag(h + m) || (uint32_t)v == 0)
            break;
        uint32_t handle = (uint32_t)v - 1;
        tmr_task *t = tmr_task_of(c, handle);
        uint64_t old = atomic_load(&t->claim);
        if (((old >> 48) & 0x3FFFu) != tmr_handle_gen(handle) || (uint32_t)(old >> 32 & 0xFFFFu) != 1 ||
            (uint32_t)old != 0)
            break;
        uint64_t seq = atomic_load_explicit(&t->seq, memory_order_relaxed);
        uint32_t func_id = atomic_load_explicit(&t->func_id, memory_order_relaxed);
        int joins = n && extends(&f[n - 1], handle, seq, func_id);
        if ((!joins && n == max) || !atomic_compare_exchange_strong(&t->claim, &old, old + 1))
            break;
        if (joins) {
            join(&f[n - 1], handle, seq);
        } else {
            f[n++] = (forming){handle, 1, 0, 0, sched_run_max(lim, func_id), func_id, seq};
        }
        m++;
    }
    if (m == 0)
        return take(rt, type, out);
    uint64_t expect = h;
    if (atomic_compare_exchange_strong(head, &expect, h + m)) {
        for (uint32_t i = 0; i < m; i++)
            atomic_store(&c->queue[type][(h + i) & c->qmask], cell_tag(h + i + c->qmask + 1));
    } else {
        for (uint32_t i = 0; i < m; i++)
            advance(c, type, h + i);
    }
    for (uint32_t i = 0; i < n; i++) {
        fill(tmr_task_of(c, f[i].first), f[i].first, 0, &out[i]);
        make_run(c, &f[i], &out[i]);
    }
    return (int)n;
}

/* Tell the first consumers in task's fanout where it went
 * (sched_ops.posted); later ones read posted_at when they link. */
static void posted(void *rt, uint64_t task, uint32_t core, uint32_t seq)
{
    tmr_ctx *c = rt;
    tmr_task *t = tmr_task_of(c, (uint32_t)task);
    uint64_t at = sched_pack(core, seq);
    tmr_lock(&t->lock);
    t->posted_at = TMR_POSTED | at;
    uint32_t n = t->fanout;
    for (uint32_t i = 0; i < SCHED_FOLLOW_SCAN && n != TMR_NONE; i++) {
        tmr_task *f = tmr_task_of(c, c->deps[n].consumer);
        tmr_note_wait(f, at);
        atomic_fetch_sub_explicit(&f->unposted, 1, memory_order_release);
        n = atomic_load_explicit(&c->deps[n].next, memory_order_relaxed);
    }
    tmr_unlock(&t->lock);
}

_Static_assert(TMR_WAITS <= SIMPLER_SLOT_WAITS, "a follower's waits fit its slot");

/* A follower first was claimed: make its post a run of up to most tasks
 * (a chain, as submitted), each one in the fanout of the one before and
 * waiting for it alone, claimed in turn, laid out in the ring as
 * take_run's runs are. A successor in prev's fanout counts prev in its
 * pending, and the orchestrator's hold on it (tmr_submit) is one more
 * until it is fully written and linked: seen under prev's lock, which
 * links take, a pending of 1 is prev alone, every other producer
 * finished, the task's fields published. */
static void follow_run(tmr_ctx *c, uint32_t first, uint32_t most, sched_post *out)
{
    const tmr_task *ft = tmr_task_of(c, first);
    forming f = {first, 1, 0, 0, most, atomic_load_explicit(&ft->func_id, memory_order_relaxed),
                 atomic_load_explicit(&ft->seq, memory_order_relaxed)};
    for (uint32_t prev = first, next = first; f.count < most; prev = next) {
        tmr_task *p = tmr_task_of(c, prev);
        uint64_t next_seq = 0;
        tmr_lock(&p->lock);
        uint32_t n = p->fanout;
        for (uint32_t i = 0; i < SCHED_FOLLOW_SCAN && n != TMR_NONE && next == prev; i++) {
            uint32_t g = c->deps[n].consumer;
            tmr_task *t = tmr_task_of(c, g);
            n = atomic_load_explicit(&c->deps[n].next, memory_order_relaxed);
            uint64_t seq = atomic_load_explicit(&t->seq, memory_order_relaxed);
            uint32_t func_id = atomic_load_explicit(&t->func_id, memory_order_relaxed), one = 1;
            if (t->block_num == 1 && t->core_type == ft->core_type && extends(&f, g, seq, func_id) &&
                atomic_compare_exchange_strong(&t->pending, &one, 1 | TMR_FOLLOWED)) {
                next = g;
                next_seq = seq;
            }
        }
        tmr_unlock(&p->lock);
        if (next == prev)
            break;
        join(&f, next, next_seq);
    }
    make_run(c, &f, out);
}

/* task is posted to one of this thread's cores and not yet finished (only
 * this thread finishes it), so its fanout list only grows, at the head,
 * under its lock. A consumer in it with unposted 0 is fully submitted and
 * all its producers are posted; the unfinished ones only finish. */
static int follow(void *rt, uint64_t task, sched_place *place, sched_post *out)
{
    tmr_ctx *c = rt;
    tmr_task *t = tmr_task_of(c, (uint32_t)task);
    tmr_lock(&t->lock);
    uint32_t n = t->fanout, handle = 0;
    int found = 0;
    for (uint32_t i = 0; i < SCHED_FOLLOW_SCAN && n != TMR_NONE && !found; i++) {
        handle = c->deps[n].consumer;
        tmr_task *f = tmr_task_of(c, handle);
        n = atomic_load_explicit(&c->deps[n].next, memory_order_relaxed);
        if (f->block_num != 1 || atomic_load_explicit(&f->unposted, memory_order_acquire) != 0)
            continue;
        fill(f, handle, 0, out);
        found = sched_claim(place, f->core_type, &f->pending, TMR_FOLLOWED,
                            atomic_load_explicit(&f->num_waits, memory_order_relaxed), f->waits, TMR_WAITS, out);
    }
    tmr_unlock(&t->lock);
    if (found) {
        /* after the unlock: follow_run takes the followers' locks */
        uint32_t most = sched_follow_run_max(place, out->func_id);
        if (most > 1)
            follow_run(c, handle, most, out);
    }
    return found;
}

/* A finished task's list of dependency nodes, which no other thread reads
 * any more, turned round if it is longer than SCHED_FOLLOW_SCAN (a
 * fan-out; a short one stays as it is): returns its head. */
static uint32_t reverse_fanout(tmr_ctx *c, uint32_t n)
{
    uint32_t p = n;
    for (uint32_t i = 0; i < SCHED_FOLLOW_SCAN && p != TMR_NONE; i++)
        p = atomic_load_explicit(&c->deps[p].next, memory_order_relaxed);
    if (p == TMR_NONE)
        return n;
    uint32_t prev = TMR_NONE;
    while (n != TMR_NONE) {
        uint32_t next = atomic_load_explicit(&c->deps[n].next, memory_order_relaxed);
        atomic_store_explicit(&c->deps[n].next, prev, memory_order_relaxed);
        prev = n;
        n = next;
    }
    return prev;
}

/* A block finished; the last one completes the task: release its
 * successors, its heap buffers and its dependency nodes. */
static int finish(void *rt, uint64_t task)
{
    tmr_ctx *c = rt;
    uint32_t handle = (uint32_t)task;
    tmr_task *t = tmr_task_of(c, handle);
    /* block_num first: once the last block is in, the slot may be reused.
     * One block: its finish is the task's (no locked add for every task
     * of a run). */
    uint32_t block_num = t->block_num;
    if (block_num > 1 && atomic_fetch_add(&t->blocks_done, 1) + 1 < block_num)
        return 0;
    for (uint64_t m = t->heap_mask, i; m; m &= m - 1) {
        i = (uint64_t)__builtin_ctzll(m);
        tmr_heap_header *h = (tmr_heap_header *)(uintptr_t)(t->tensors[i].addr - TMR_HEAP_HEADER);
        atomic_fetch_sub(&h->users, 1);
    }
    if (t->args_block) { /* last: the tensors above live in it */
        tmr_heap_header *h = (tmr_heap_header *)(uintptr_t)(t->args_block - TMR_HEAP_HEADER);
        atomic_fetch_sub(&h->users, 1);
    }
    tmr_lock(&t->lock);
    uint32_t first = t->fanout;
    t->fanout = TMR_NONE;
    atomic_store_explicit(&t->completed, 1, memory_order_release);
    tmr_unlock(&t->lock);

    /* The list is this thread's now. Consumers link at its head, so it
     * runs newest first: a fan-out's, turned round, queue in the order
     * they were submitted, the order in which take_run makes runs of them
     * (1,000 empty tasks queued newest first went a task a post, ~1 us a
     * task; in order, in runs). A short list is left as it is: turned
     * round too, Task Bench's empty stencil_1d w8 ran 4-8% slower
     * (docs/performance.md). */
    first = reverse_fanout(c, first);
    uint32_t last = TMR_NONE;
    for (uint32_t n = first; n != TMR_NONE; n = atomic_load_explicit(&c->deps[n].next, memory_order_relaxed)) {
        tmr_task *s = tmr_task_of(c, c->deps[n].consumer);
        /* A followed successor waiting for this task alone (a chain's
         * next): nothing else changes its count now, so a store does what
         * a locked subtraction would (release: the slot's reuse reads it). */
        if (atomic_load_explicit(&s->pending, memory_order_relaxed) == (1 | TMR_FOLLOWED))
            atomic_store_explicit(&s->pending, TMR_FOLLOWED, memory_order_release);
        else if (atomic_fetch_sub(&s->pending, 1) == 1)
            tmr_push_ready(c, c->deps[n].consumer);
        last = n;
    }
    if (last != TMR_NONE) { /* give the nodes back, all at once */
        uint32_t old = atomic_load(&c->run->dep_free);
        do
            atomic_store_explicit(&c->deps[last].next, old, memory_order_relaxed);
        while (!atomic_compare_exchange_weak(&c->run->dep_free, &old, first));
    }
    return 1;
}

static void completed(void *rt, uint32_t n)
{
    tmr_ctx *c = rt;
    uint64_t completed = atomic_fetch_add(&c->launch->tasks_completed, n) + n;
    if (completed >= atomic_load(&c->run->wake_at))
        tmr_wake_orchestrator(c);
    if (atomic_load(&c->run->submit_done) && completed == atomic_load(&c->run->submitted))
        aicpu_wake_all(c->launch);
}

static int ready(void *rt, uint32_t type)
{
    tmr_ctx *c = rt;
    uint64_t h = atomic_load(&c->run->queue_head[type]), t = atomic_load(&c->run->queue_tail[type]);
    return t > h ? (int)(t - h < INT32_MAX ? t - h : INT32_MAX) : 0;
}

static int done(void *rt)
{
    tmr_ctx *c = rt;
    return atomic_load(&c->run->submit_done) &&
           atomic_load(&c->launch->tasks_completed) == atomic_load(&c->run->submitted);
}

static int in_flight(void *rt)
{
    tmr_ctx *c = rt;
    return atomic_load(&c->launch->tasks_completed) < atomic_load(&c->run->submitted);
}

static void summary(void *rt, char *buf, size_t len)
{
    tmr_ctx *c = rt;
    snprintf(buf, len, "%" PRIu64 " of %" PRIu64 " submitted tasks done%s", atomic_load(&c->launch->tasks_completed),
             atomic_load(&c->run->submitted), atomic_load(&c->run->submit_done) ? "" : " (still submitting)");
}

static const sched_ops tmr_ops = {take, take_run, posted, follow, finish, completed, ready, done, in_flight,
                                   summary, NULL, 1};

int tmr_schedule(simpler_launch *L, uint32_t thread_idx)
{
    tmr_ctx c;
    tmr_ctx_init(&c, L, thread_idx);
    return sched_loop(L, thread_idx, &tmr_ops, &c);
}
