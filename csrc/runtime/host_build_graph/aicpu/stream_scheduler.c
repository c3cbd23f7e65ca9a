/*
 * The host_build_graph scheduler over a streamed image (stream_image.h):
 * the shared dispatch loop, started on the graph's first segment while
 * the host is still adding the rest.
 *
 * A task is queued by whoever takes its pending count to 0: a scheduler
 * finishing its last producer or the host publishing it; or it is
 * followed (dispatch_loop.c), once all its producers are posted, which the
 * host and the schedulers count together (stream_image.h). The launch is
 * over once the host sealed the graph and every task it holds finished.
 */
#include <inttypes.h>
#include <stdio.h>

#include "aicpu/aicpu_runtime.h"
#include "aicpu/dispatch_loop.h"
#include "aicpu/launch_status.h"
#include "runtime/host_build_graph/aicpu/queue_claim.h"
#include "runtime/host_build_graph/graph_image.h"
#include "runtime/host_build_graph/stream_image.h"
#include "simpler/simpler.h"

/* How long an idle thread sleeps while the host still streams: nothing
 * wakes it when a segment comes (the host cannot reach the threads'
 * events), so it looks again this often. */
#define STREAM_IDLE_NS 100000ull

typedef struct hbg_stream {
    simpler_launch *launch;
    uint32_t thread_idx;
    hbg_stream_header *hdr;
    _Atomic uint64_t *dir;
    uint32_t shift;
    uint32_t seen_published;    /* for the watchdog: a segment published is progress */
    uint32_t told_published;    /* last stored in the launch's tasks_submitted */
} hbg_stream;

/* The tasks the launch knows of, for progress and for the chip's own
 * deadline (which counts them as progress too), once per segment. */
static uint32_t tell_published(hbg_stream *s)
{
    uint32_t p = atomic_load(&s->hdr->published);
    if (p != s->told_published) {
        s->told_published = p;
        atomic_store_explicit(&s->launch->tasks_submitted, p, memory_order_relaxed);
    }
    return p;
}

static hbg_stream_task *task_at(hbg_stream *s, uint64_t i)
{
    /* acquire: the host made the segment before it stored its address */
    uint64_t seg = atomic_load_explicit(&s->dir[i >> s->shift], memory_order_acquire);
    return (hbg_stream_task *)(uintptr_t)seg + (i & ((1ull << s->shift) - 1));
}

/* Queue slot pos, or NULL while its segment is not there yet. */
static _Atomic uint32_t *slot_at(hbg_stream *s, uint32_t type, uint64_t pos)
{
    uint64_t seg = atomic_load_explicit(&s->dir[pos >> s->shift], memory_order_acquire);
    if (!seg)
        return NULL;
    return (_Atomic uint32_t *)(uintptr_t)(seg + hbg_stream_queue_off(s->shift, type)) + (pos & ((1ull << s->shift) - 1));
}

static void push_ready(hbg_stream *s, uint32_t task, uint32_t type)
{
    uint64_t pos = atomic_fetch_add(&s->hdr->queue_tail[type], 1);
    /* The task is published, so are the segments up to its own: pos is
     * below the tasks in them. */
    atomic_store(slot_at(s, type, pos), task + 1);
    sched_wake_others(s->launch, s->thread_idx);
}

static void fill(const hbg_stream_task *t, uint32_t task, uint32_t block, sched_post *out)
{
    *out = (sched_post){
        .kernel_addr = t->kernel_addr,
        .tensors_addr = t->tensors_addr,
        .scalars_addr = t->scalars_addr,
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
    hbg_stream *s = rt;
    _Atomic uint64_t *head = &s->hdr->queue_head[type];
    for (;;) {
        uint64_t h = atomic_load(head);
        if (h >= atomic_load(&s->hdr->queue_tail[type]))
            return 0;
        _Atomic uint32_t *slot = slot_at(s, type, h);
        uint32_t v = slot ? atomic_load(slot) : 0;
        if (v == 0)
            return 0; /* being published; the pusher will wake us */
        hbg_stream_task *t = task_at(s, v - 1);
        int64_t b = hbg_claim_block(s->launch, s->thread_idx, head, h, t->block_num, &t->next_block);
        if (b < 0)
            continue;
        fill(t, v - 1, (uint32_t)b, out);
        return 1;
    }
}

_Static_assert(HBG_STREAM_WAITS <= SIMPLER_SLOT_WAITS, "a follower's waits fit its slot");

static const hbg_stream_edge *node_at(uint64_t at) { return (const hbg_stream_edge *)(uintptr_t)at; }

/* Tell the task's successors so far where it went (sched_ops.posted); the
 * host tells the later ones. A wide fan-out is better spread over the
 * cores by the ready queues: its successors are left uncounted, never to
 * follow, as in graph_scheduler.c. */
static void posted(void *rt, uint64_t task, uint32_t core, uint32_t seq)
{
    hbg_stream *s = rt;
    uint64_t at = sched_pack(core, seq), first = hbg_stream_mark_posted(task_at(s, task), at), n = 0;
    for (uint64_t e = first; e && n <= SCHED_FOLLOW_SCAN; e = node_at(e)->next)
        n++;
    if (n > SCHED_FOLLOW_SCAN)
        return;
    for (uint64_t e = first; e; e = node_at(e)->next) {
        hbg_stream_task *f = task_at(s, node_at(e)->consumer);
        sched_note_wait(&f->num_waits, f->waits, HBG_STREAM_WAITS, at);
        /* release: whoever sees unposted 0 sees every producer's entry */
        atomic_fetch_sub_explicit(&f->unposted, 1, memory_order_release);
    }
}

static int follow(void *rt, uint64_t task, sched_place *place, sched_post *out)
{
    hbg_stream *s = rt;
    uint64_t e = atomic_load_explicit(&task_at(s, task)->fanout, memory_order_acquire);
    if (e & HBG_STREAM_CLOSED)
        return 0;
    e &= ~HBG_STREAM_FLAGS;
    for (uint32_t i = 0; e && i < SCHED_FOLLOW_SCAN; e = node_at(e)->next, i++) {
        uint32_t c = node_at(e)->consumer;
        hbg_stream_task *f = task_at(s, c);
        if (f->block_num != 1 || atomic_load_explicit(&f->unposted, memory_order_acquire) != 0)
            continue;
        fill(f, c, 0, out);
        if (sched_claim(place, f->core_type, &f->pending, HBG_FOLLOWED,
                        atomic_load_explicit(&f->num_waits, memory_order_relaxed), f->waits, HBG_STREAM_WAITS, out))
            return 1;
    }
    return 0;
}

static int finish(void *rt, uint64_t task)
{
    hbg_stream *s = rt;
    hbg_stream_task *t = task_at(s, task);
    if (atomic_fetch_add(&t->blocks_done, 1) + 1 < t->block_num)
        return 0;
    for (uint64_t e = hbg_stream_close(t); e; e = node_at(e)->next) {
        uint32_t c = node_at(e)->consumer;
        hbg_stream_task *f = task_at(s, c);
        if (hbg_stream_producer_done(f))
            push_ready(s, c, f->core_type);
    }
    return 1;
}

static void completed(void *rt, uint32_t n)
{
    hbg_stream *s = rt;
    uint64_t done = atomic_fetch_add(&s->launch->tasks_completed, n) + n;
    tell_published(s);
    if (atomic_load(&s->hdr->sealed) && done == atomic_load(&s->hdr->published))
        aicpu_wake_all(s->launch);
}

static int ready(void *rt, uint32_t type)
{
    hbg_stream *s = rt;
    uint64_t h = atomic_load(&s->hdr->queue_head[type]), t = atomic_load(&s->hdr->queue_tail[type]);
    return t > h ? (int)(t - h < INT32_MAX ? t - h : INT32_MAX) : 0;
}

static int done(void *rt)
{
    hbg_stream *s = rt;
    if (atomic_load(&s->hdr->failed)) {
        aicpu_launch_fail(s->launch, SIMPLER_E_ORCHESTRATION, "the host orchestration failed while its graph ran");
        return 1;
    }
    /* sealed first: once it is set, published is the graph's size */
    if (!atomic_load(&s->hdr->sealed))
        return 0;
    return atomic_load(&s->launch->tasks_completed) == atomic_load(&s->hdr->published);
}

/* Work is in flight unless the host just published more: a segment is
 * progress as a finished block is, so only a host that adds nothing and
 * tasks that finish nothing for the timeout are a stall (a hung
 * orchestration then times out as a hung kernel does). */
static int in_flight(void *rt)
{
    hbg_stream *s = rt;
    uint32_t p = tell_published(s);
    if (p != s->seen_published) {
        s->seen_published = p;
        return 0;
    }
    return !done(rt);
}

static void summary(void *rt, char *buf, size_t len)
{
    hbg_stream *s = rt;
    snprintf(buf, len, "%" PRIu64 " of %u tasks done%s", atomic_load(&s->launch->tasks_completed),
             atomic_load(&s->hdr->published),
             atomic_load(&s->hdr->sealed) ? "" : " (the host orchestration was still adding tasks)");
}

static uint64_t idle_ns(void *rt)
{
    hbg_stream *s = rt;
    return atomic_load(&s->hdr->sealed) ? 0 : STREAM_IDLE_NS;
}

static const sched_ops stream_ops = {
    .take = take, .posted = posted, .follow = follow, .finish = finish, .completed = completed,
    .ready = ready, .done = done, .in_flight = in_flight, .summary = summary, .idle_ns = idle_ns,
};

static int stream_schedule(simpler_launch *L, uint32_t thread_idx)
{
    hbg_stream s = {.launch = L, .thread_idx = thread_idx};
    s.hdr = (hbg_stream_header *)(uintptr_t)L->p.image_addr;
    s.dir = (_Atomic uint64_t *)((uint8_t *)s.hdr + s.hdr->dir_off);
    s.shift = s.hdr->seg_shift;
    s.seen_published = atomic_load(&s.hdr->published);
    return sched_loop(L, thread_idx, &stream_ops, &s);
}

AICPU_RUNTIME(hbg_stream_runtime) = {SIMPLER_RUNTIME_HBG_STREAM, "host_build_graph (streamed)", stream_schedule};
