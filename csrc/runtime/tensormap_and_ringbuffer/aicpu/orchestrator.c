/*
 * tensormap_and_ringbuffer: the orchestrator thread.
 *
 * Runs the orchestration function on the AICPU. Each submit takes a slot
 * from the task ring of its scope depth, allocates OUTPUT tensors from
 * that depth's heap ring, asks the tensor map (the dependency tracker) for
 * its producers, links itself into their fanout lists and publishes the
 * task. Everything is reclaimed as tasks finish and scopes end:
 *
 *  - a task slot, once its task finished and (inside an explicit scope)
 *    that scope ended;
 *  - a heap buffer, once its scope ended (the run's end at top level) and
 *    every task using it finished; a wide task's argument block (more
 *    tensors or scalars than its slot holds) once that task finished;
 *  - dependency nodes, when their producer finishes;
 *  - tensor-map entries, swept a few per submit once their tasks finished,
 *    and all of a buffer's when it is freed.
 *
 * A full ring makes the orchestrator wait. A wait that cannot end, because
 * the oldest slot or buffer is pinned by a scope that is still open, fails
 * the run at once with what to change.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aicpu/aicpu_runtime.h"
#include "aicpu/launch_status.h"
#include "aicpu/dispatch_loop.h"
#include "runtime/tensormap_and_ringbuffer/aicpu/shared_state.h"
#include "common/addr_map.h"
#include "common/error.h"
#include "runtime/dependency_tracker/tracker.h"
#include "runtime/first_failure.h"
#include "runtime/task_check.h"
#include "simpler/simpler.h"

#define MAX_SCOPE_DEPTH 63
#define MAX_BLOCKS 4096
#define SWEEP_PER_SUBMIT 8
#define WAIT_SLEEP_NS 1000000ull
#define KNOWN_HEAP 1    /* addr_map tag of heap-ring buffers */

typedef struct heap_rec {
    uint64_t end;               /* ring position just past it */
    uint64_t addr;              /* its data */
    uint64_t scope;             /* the scope instance that owns it, */
    uint32_t depth;             /* at this depth */
    uint32_t args;              /* a task's argument block: only its users pin it */
} heap_rec;

typedef struct heap_ring {
    uint64_t head, tail;        /* byte positions; ring offset = position % size */
    heap_rec *recs;             /* FIFO of live buffers */
    uint64_t rec_head, rec_tail, rec_cap;
} heap_ring;

typedef struct tmr_orch {
    tmr_ctx c;
    const tmr_callable *cal;
    const tmr_kernel *kernels;
    const int32_t *func_index;
    dep_tracker *tracker;
    addr_map known;             /* buffers a view may use: run arguments and live OUTPUTs */
    uint64_t task_head[TMR_DEPTHS], task_tail[TMR_DEPTHS];
    heap_ring heap[TMR_DEPTHS];
    uint32_t depth;
    uint64_t begun[MAX_SCOPE_DEPTH + 1], ended[MAX_SCOPE_DEPTH + 1];
    uint64_t scope_first_rec[MAX_SCOPE_DEPTH + 1]; /* heap record count of its ring at scope_begin */
    uint64_t seq;               /* tasks submitted */
    uint32_t current;           /* handle of the task being submitted */
    uint32_t free_nodes, fresh_nodes;
    simpler_backoff backoff;
    int failed;
} tmr_orch;


static uint32_t ring_of(uint32_t depth) { return depth < TMR_DEPTHS ? depth : TMR_DEPTHS - 1; }

static int scope_ended(const tmr_orch *o, uint32_t depth, uint64_t scope) { return o->ended[depth] > scope; }

/* Whether a heap buffer's scope still holds it (an argument block has no
 * scope). */
static int rec_pinned(const tmr_orch *o, const heap_rec *r) { return !r->args && !scope_ended(o, r->depth, r->scope); }

/* Wait a little for schedulers to finish tasks: pause, yield, then sleep
 * until `completions` more tasks finished (the scheduler that finishes the
 * last of them signals us), or a millisecond passed. Returns 1 when no
 * task is in flight (so none will free anything: the caller looks once
 * more, then gives up), -1 on abort. */
static int wait_round(tmr_orch *o, uint64_t completions)
{
    simpler_launch *L = o->c.launch;
    if (atomic_load(&L->abort)) {
        first_failure(&o->failed, SIMPLER_E_TIMEOUT, "run aborted while the orchestrator waited");
        return -1;
    }
    if (atomic_load(&L->tasks_completed) == atomic_load(&o->c.run->submitted))
        return 1;
    uint64_t t0 = simpler_now_ns();
    if (simpler_backoff_step(&o->backoff)) {
        simpler_event *e = &L->thread_events[o->c.orchestrator_idx];
        uint64_t target = atomic_load(&L->tasks_completed) + completions;
        atomic_store(&o->c.run->wake_at, target);
        uint32_t seq = simpler_event_prepare(e);
        if (atomic_load(&L->tasks_completed) >= target)
            simpler_event_cancel(e);
        else
            simpler_event_sleep(e, seq, WAIT_SLEEP_NS);
        atomic_store(&o->c.run->wake_at, UINT64_MAX);
    }
    uint64_t t1 = simpler_now_ns();
    o->c.run->wait_ns += t1 - t0;
    if (L->trace && t1 - t0 > 1000) /* sleeps, not single pauses */
        simpler_trace_record(L->trace, SIMPLER_TRACE_WAIT, o->c.orchestrator_idx, o->seq, 0, 0, t0, t1);
    return 0;
}

static int task_live(void *ctx, uint32_t handle)
{
    tmr_orch *o = ctx;
    tmr_task *t = tmr_task_of(&o->c, handle);
    return (t->generation & 0x3FFFu) == tmr_handle_gen(handle) && !atomic_load(&t->completed);
}

/* ---- task ring ---------------------------------------------------------------- */

static void reclaim_tasks(tmr_orch *o, uint32_t rd)
{
    while (o->task_tail[rd] < o->task_head[rd]) {
        tmr_task *t = &o->c.tasks[(uint64_t)rd * o->c.ring + o->task_tail[rd] % o->c.ring];
        if (!tmr_reusable(t))
            break;
        if (t->depth > 0 && !scope_ended(o, t->depth, t->scope))
            break;
        t->generation++; /* handles to the old task are now stale */
        o->task_tail[rd]++;
    }
}

static tmr_task *take_slot(tmr_orch *o, uint32_t rd, uint32_t *slot_out)
{
    simpler_backoff_reset(&o->backoff);
    /* Once the ring was full, wait for a batch of free slots rather than
     * one: the orchestrator then sleeps through many completions instead
     * of being woken by each. */
    uint64_t batch = o->c.ring / 8 ? o->c.ring / 8 : 1, need = 1;
    int idle_rounds = 0;
    for (;;) {
        reclaim_tasks(o, rd);
        uint64_t free_slots = o->c.ring - (o->task_head[rd] - o->task_tail[rd]);
        if (free_slots >= need)
            break;
        tmr_task *oldest = &o->c.tasks[(uint64_t)rd * o->c.ring + o->task_tail[rd] % o->c.ring];
        /* Pinned by a scope that is still open (it may also have finished
         * just now, after reclaim looked: then simply look again). */
        if (atomic_load(&oldest->completed) && oldest->depth > 0 && !scope_ended(o, oldest->depth, oldest->scope)) {
            if (free_slots)
                break; /* no more will come free: use what there is */
            first_failure(&o->failed, SIMPLER_E_ORCHESTRATION,
                 "scope deadlock: the task ring for scope depth %u is full (%u slots) of tasks that finished "
                 "but stay pinned until their scope at depth %u ends, and that scope is still open; raise the "
                 "task ring size (CallConfig.task_ring_size or SIMPLER_TASK_RING_SIZE) above the tasks one "
                 "scope submits, or end the scope sooner", rd, o->c.ring, oldest->depth);
            return NULL;
        }
        need = batch;
        o->c.run->waits++;
        int w = wait_round(o, need - free_slots);
        if (w < 0)
            return NULL;
        if (w > 0 && free_slots)
            break; /* nothing in flight: what is free is all there will be */
        if (w > 0 && idle_rounds++) {
            first_failure(&o->failed, SIMPLER_E_ORCHESTRATION, "the task ring for scope depth %u (%u slots) is full and no task in "
                 "flight will free a slot; raise the task ring size (CallConfig.task_ring_size or "
                 "SIMPLER_TASK_RING_SIZE)", rd, o->c.ring);
            return NULL;
        }
    }
    uint32_t slot = (uint32_t)(o->task_head[rd] % o->c.ring);
    tmr_task *t = &o->c.tasks[(uint64_t)rd * o->c.ring + slot];
    if (o->task_head[rd] < o->c.ring) { /* first use of the slot in this run: GM holds garbage */
        t->generation = 0;
        t->stamp = 0;
        atomic_store(&t->lock, 0);
    }
    o->task_head[rd]++;
    uint64_t live = o->task_head[rd] - o->task_tail[rd];
    if (live > o->c.run->peak_live_tasks)
        o->c.run->peak_live_tasks = live;
    *slot_out = slot;
    return t;
}

/* ---- heap ring ---------------------------------------------------------------- */

static void reclaim_heap(tmr_orch *o, uint32_t rd)
{
    heap_ring *h = &o->heap[rd];
    while (h->rec_tail < h->rec_head) {
        heap_rec *r = &h->recs[h->rec_tail % h->rec_cap];
        tmr_heap_header *hdr = (tmr_heap_header *)(uintptr_t)(r->addr - TMR_HEAP_HEADER);
        if (rec_pinned(o, r) || atomic_load_explicit(&hdr->users, memory_order_acquire))
            break;
        if (!r->args) {
            addr_map_remove(&o->known, r->addr);
            dep_tracker_forget(o->tracker, r->addr);
        }
        h->tail = r->end;
        h->rec_tail++;
    }
}

/* Bytes from the heap ring of depth rd: an OUTPUT tensor (a buffer views
 * may name from now on), or an argument block (args), whose one user is
 * the task being submitted. */
static uint64_t heap_alloc(tmr_orch *o, uint32_t rd, uint64_t bytes, int args)
{
    heap_ring *h = &o->heap[rd];
    uint64_t size = o->c.run->sizes.heap_ring;
    uint64_t need = TMR_HEAP_HEADER + ((bytes + 63) & ~63ull);
    if (need > size) {
        first_failure(&o->failed, SIMPLER_E_ORCHESTRATION,
             "%s of %" PRIu64 " bytes does not fit in the heap ring of %" PRIu64 " bytes for scope "
             "depth %u; raise the heap ring size (CallConfig.heap_ring_size or SIMPLER_HEAP_RING_SIZE)",
             args ? "a task's argument block" : "an OUTPUT tensor", bytes, size, rd);
        return 0;
    }
    if (h->rec_head - h->rec_tail == h->rec_cap) {
        uint64_t cap = h->rec_cap ? h->rec_cap * 2 : 256;
        heap_rec *recs = malloc(cap * sizeof *recs);
        if (!recs) {
            first_failure(&o->failed, SIMPLER_E_NO_HOST_MEMORY, "orchestrator: out of memory");
            return 0;
        }
        for (uint64_t i = h->rec_tail; i < h->rec_head; i++)
            recs[i % cap] = h->recs[i % h->rec_cap];
        free(h->recs);
        h->recs = recs;
        h->rec_cap = cap;
    }
    simpler_backoff_reset(&o->backoff);
    uint64_t pad;
    int idle_rounds = 0;
    for (;;) {
        reclaim_heap(o, rd);
        if (h->rec_tail == h->rec_head)
            h->head = h->tail = 0; /* empty: start from the ring's beginning, not where it wrapped */
        uint64_t off = h->head % size;
        pad = off + need > size ? size - off : 0;
        if (h->head - h->tail + pad + need <= size)
            break;
        heap_rec *oldest = &h->recs[h->rec_tail % h->rec_cap]; /* not empty: it would have fitted */
        if (rec_pinned(o, oldest)) {
            if (oldest->depth == 0)
                first_failure(&o->failed, SIMPLER_E_ORCHESTRATION,
                     "heap ring full: the %" PRIu64 "-byte heap ring for the run's top level holds OUTPUT "
                     "tensors that live until the run ends; raise the heap ring size (CallConfig.heap_ring_size "
                     "or SIMPLER_HEAP_RING_SIZE) or allocate OUTPUTs inside scopes", size);
            else
                first_failure(&o->failed, SIMPLER_E_ORCHESTRATION,
                     "scope deadlock: the heap ring for scope depth %u (%" PRIu64 " bytes) is full of OUTPUT "
                     "tensors pinned until their scope at depth %u ends, and that scope is still open; raise the "
                     "heap ring size (CallConfig.heap_ring_size or SIMPLER_HEAP_RING_SIZE) or end the scope sooner",
                     rd, size, oldest->depth);
            return 0;
        }
        o->c.run->waits++;
        int w = wait_round(o, 1);
        if (w < 0)
            return 0;
        if (w > 0 && idle_rounds++) {
            first_failure(&o->failed, SIMPLER_E_ORCHESTRATION,
                 "the heap ring for scope depth %u (%" PRIu64 " bytes) has no room for %" PRIu64 " more bytes and no "
                 "task in flight will free any; raise the heap ring size (CallConfig.heap_ring_size or "
                 "SIMPLER_HEAP_RING_SIZE)", rd, size, need);
            return 0;
        }
    }
    uint64_t start = h->head + pad;
    h->head = start + need;
    if (h->head - h->tail > o->c.run->peak_heap_bytes)
        o->c.run->peak_heap_bytes = h->head - h->tail;
    uint64_t addr = (uint64_t)(uintptr_t)(o->c.heap + (uint64_t)rd * size + start % size) + TMR_HEAP_HEADER;
    tmr_heap_header *hdr = (tmr_heap_header *)(uintptr_t)(addr - TMR_HEAP_HEADER);
    atomic_store(&hdr->users, args ? 1 : 0);
    h->recs[h->rec_head++ % h->rec_cap] = (heap_rec){h->head, addr, o->begun[o->depth] - 1, o->depth, args != 0};
    if (!args && addr_map_put(&o->known, addr, bytes, KNOWN_HEAP, rd)) {
        first_failure(&o->failed, SIMPLER_E_NO_HOST_MEMORY, "orchestrator: out of memory");
        return 0;
    }
    return addr;
}

/* ---- dependency nodes ------------------------------------------------------------ */

static uint32_t take_node(tmr_orch *o)
{
    simpler_backoff_reset(&o->backoff);
    int idle_rounds = 0;
    for (;;) {
        if (o->free_nodes != TMR_NONE) {
            uint32_t n = o->free_nodes;
            o->free_nodes = atomic_load_explicit(&o->c.deps[n].next, memory_order_relaxed);
            return n;
        }
        if (o->fresh_nodes < o->c.run->sizes.dep_pool)
            return o->fresh_nodes++;
        o->free_nodes = atomic_exchange(&o->c.run->dep_free, TMR_NONE);
        if (o->free_nodes != TMR_NONE)
            continue;
        o->c.run->waits++;
        int w = wait_round(o, 1);
        if (w < 0)
            return TMR_NONE;
        if (w > 0 && idle_rounds++) {
            first_failure(&o->failed, SIMPLER_E_ORCHESTRATION, "the dependency pool (%u nodes) is exhausted and no task in flight "
                 "will free a node; raise CallConfig.dep_pool_size or SIMPLER_DEP_POOL_SIZE",
                 o->c.run->sizes.dep_pool);
            return TMR_NONE;
        }
    }
}

/* The tracker (or an explicit dependency) found a producer of the task
 * being submitted: link the two unless the producer already finished. */
static int link_producer(void *ctx, uint32_t producer)
{
    tmr_orch *o = ctx;
    if (producer == o->current)
        return 0;
    tmr_task *p = tmr_task_of(&o->c, producer);
    uint64_t stamp = o->seq + 1;
    if ((p->generation & 0x3FFFu) != tmr_handle_gen(producer) || p->stamp == stamp ||
        atomic_load(&p->completed))
        return 0;
    p->stamp = stamp;
    uint32_t n = take_node(o);
    if (n == TMR_NONE)
        return 1;
    tmr_task *self = tmr_task_of(&o->c, o->current);
    tmr_lock(&p->lock);
    if (atomic_load(&p->completed)) {
        tmr_unlock(&p->lock);
        atomic_store_explicit(&o->c.deps[n].next, o->free_nodes, memory_order_relaxed);
        o->free_nodes = n;
        return 0;
    }
    o->c.deps[n].consumer = o->current;
    atomic_store_explicit(&o->c.deps[n].next, p->fanout, memory_order_relaxed);
    p->fanout = n;
    atomic_fetch_add(&self->pending, 1);
    if (p->posted_at)
        tmr_note_wait(self, p->posted_at & ~TMR_POSTED);
    else
        atomic_fetch_add_explicit(&self->unposted, 1, memory_order_relaxed); /* its post will tell */
    tmr_unlock(&p->lock);
    if (o->c.launch->trace)
        simpler_trace_edge_record(o->c.launch->trace, atomic_load(&p->seq) - 1, o->seq);
    return 0;
}

/* ---- the orchestration API ------------------------------------------------------- */

/* Where the task's arguments live: in its slot if they fit, else in an
 * argument block of the heap ring, sized for them, that the task's finish
 * releases (tmr_scheduler.c). */
static int place_arguments(tmr_orch *o, tmr_task *t, const simpler_task *task, uint32_t rd)
{
    t->args_block = 0;
    t->tensors = t->inline_tensors;
    t->scalars = t->inline_scalars;
    if (task->num_tensors <= TMR_INLINE_TENSORS && task->num_scalars <= TMR_INLINE_SCALARS)
        return 0;
    uint64_t tensor_bytes = task->num_tensors * sizeof(simpler_tensor);
    uint64_t addr = heap_alloc(o, rd, tensor_bytes + task->num_scalars * sizeof(uint64_t), 1);
    if (!addr)
        return o->failed;
    t->args_block = addr;
    t->tensors = (simpler_tensor *)(uintptr_t)addr;
    t->scalars = (uint64_t *)(uintptr_t)(addr + tensor_bytes);
    return 0;
}

static int tensors_and_edges(tmr_orch *o, const task_kernel *k, tmr_task *t, simpler_task *task, uint32_t rd)
{
    uint64_t id = o->seq;
    int rc;
    /* OUTPUTs first: an allocation may wait for buffers to be freed, and
     * must not wait on a buffer this very task already holds. */
    for (uint32_t i = 0; i < task->num_tensors; i++) {
        simpler_tensor *tensor = &task->tensors[i];
        uint32_t tag = task->tags[i];
        if ((rc = task_check_tag(k, id, i, tag)))
            return first_failure_keep(&o->failed, rc);
        uint64_t bytes;
        if (tag == SIMPLER_OUTPUT) {
            if ((rc = task_output_bytes(k, id, i, tensor, &bytes)))
                return first_failure_keep(&o->failed, rc);
            if (!(tensor->addr = heap_alloc(o, rd, bytes, 0)))
                return o->failed;
        }
    }
    if ((rc = place_arguments(o, t, task, rd)))
        return rc;
    for (uint32_t i = 0; i < task->num_tensors; i++) {
        simpler_tensor *tensor = &task->tensors[i];
        uint32_t tag = task->tags[i];
        dep_region r;
        addr_entry *buffer;
        if ((rc = task_tensor_region(k, id, i, tensor, &o->known, &r, &buffer)) ||
            (rc = task_check_write(k, id, i, tag, buffer)))
            return first_failure_keep(&o->failed, rc);
        if (buffer && buffer->tag == KNOWN_HEAP) {
            tmr_heap_header *hdr = (tmr_heap_header *)(uintptr_t)(buffer->key - TMR_HEAP_HEADER);
            atomic_fetch_add(&hdr->users, 1);
            t->heap_mask |= 1ull << i;
        }
        if (tag != SIMPLER_NO_DEP &&
            (rc = dep_tracker_access(o->tracker, o->current, &r, task_tag_reads(tag), task_tag_writes(tag),
                                     link_producer, o)))
            return o->failed ? o->failed : first_failure(&o->failed, rc, "task %" PRIu64 ": %s", id, simpler_last_error());
        t->tensors[i] = *tensor;
    }
    return 0;
}

/* Task ids are seq << 17 | ring depth << 15 | slot: unique for the run,
 * and enough to find the slot and check it still holds that task. */
static simpler_task_id task_id(uint64_t seq, uint32_t rd, uint32_t slot)
{
    return (simpler_task_id)(seq << 17 | (uint64_t)rd << 15 | slot);
}

/* Link an explicit predecessor given by id, after checking it is an id a
 * submit of this run returned. */
static int link_explicit(tmr_orch *o, uint64_t id, simpler_task_id d)
{
    uint64_t dseq = (uint64_t)d >> 17;
    uint32_t rd = (uint32_t)(d >> 15) & 3u, slot = (uint32_t)d & 0x7FFFu;
    if (d < 0 || dseq >= id || slot >= o->c.ring || o->task_head[rd] <= slot)
        return first_failure(&o->failed, SIMPLER_E_ORCHESTRATION,
                    "task %" PRIu64 ": explicit dependency on task %" PRId64 ", which was not submitted before it",
                    id, d);
    tmr_task *p = &o->c.tasks[(uint64_t)rd * o->c.ring + slot];
    uint64_t pseq = atomic_load(&p->seq);
    if (pseq < dseq + 1)
        return first_failure(&o->failed, SIMPLER_E_ORCHESTRATION, "task %" PRIu64 ": explicit dependency %" PRId64
                    " is not an id submit returned", id, d);
    if (pseq > dseq + 1)
        return 0; /* the slot moved on: that task finished */
    return link_producer(o, tmr_handle(rd, slot, p->generation)) ? o->failed : 0;
}

/* A recording run: append the task as submitted, its OUTPUTs placed. */
static void capture(tmr_orch *o, const simpler_task *task)
{
    tmr_run *run = o->c.run;
    uint64_t need = tmr_capture_bytes(task->num_tensors, task->num_scalars, task->num_deps);
    if (run->capture_overflow || run->capture_used + need > run->capture_cap) {
        run->capture_overflow = 1;
        return;
    }
    uint8_t *p = (uint8_t *)(uintptr_t)(run->capture_addr + run->capture_used);
    tmr_capture_task h = {task->func_id, task->core_type, task->block_num ? task->block_num : 1,
                          task->num_tensors, task->num_scalars, task->num_deps};
    memcpy(p, &h, sizeof h);
    p += sizeof h;
    memcpy(p, task->tensors, task->num_tensors * sizeof(simpler_tensor));
    p += task->num_tensors * sizeof(simpler_tensor);
    memcpy(p, task->tags, task->num_tensors * sizeof(uint32_t));
    p += (task->num_tensors * 4ull + 7) & ~7ull;
    if (task->num_scalars)
        memcpy(p, task->scalars, task->num_scalars * sizeof(uint64_t));
    p += task->num_scalars * 8ull;
    for (uint32_t i = 0; i < task->num_deps; i++) {
        uint64_t seq = (uint64_t)task->deps[i] >> 17;
        memcpy(p + 8ull * i, &seq, sizeof seq);
    }
    run->capture_used += need;
    run->capture_tasks++;
}

static int tmr_submit(simpler_orch *so, simpler_task *task, simpler_task_id *id_out)
{
    tmr_orch *o = (tmr_orch *)so;
    if (o->failed)
        return o->failed;
    if (!task)
        return first_failure(&o->failed, SIMPLER_E_ORCHESTRATION, "submit: task is NULL");
    uint64_t id = o->seq;
    if (task->func_id > o->cal->max_func_id || o->func_index[task->func_id] < 0)
        return first_failure(&o->failed, SIMPLER_E_ORCHESTRATION, "task %" PRIu64 ": no kernel with func_id %u in this callable", id,
                    task->func_id);
    const tmr_kernel *kn = &o->kernels[o->func_index[task->func_id]];
    task_kernel k = {kn->name, kn->core_type, kn->num_tensors, kn->num_scalars, kn->tags};
    int rc = task_check(&k, task, id, MAX_BLOCKS);
    if (rc)
        return first_failure_keep(&o->failed, rc);

    uint32_t rd = ring_of(o->depth), slot;
    tmr_task *t = take_slot(o, rd, &slot);
    if (!t)
        return o->failed;
    /* Relaxed: the slot is reusable (take_slot read that with acquire), so
     * no other thread touches it again until it is published, through a
     * producer's lock (link_producer) or the release below. */
    atomic_store_explicit(&t->seq, id + 1, memory_order_relaxed); /* a dependency naming the old task reads "moved on" */
    atomic_store_explicit(&t->pending, 1, memory_order_relaxed);  /* held until the task is fully linked */
    atomic_store_explicit(&t->completed, 0, memory_order_relaxed);
    atomic_store_explicit(&t->blocks_done, 0, memory_order_relaxed);
    atomic_store_explicit(&t->unposted, 1, memory_order_relaxed); /* held until the task is fully written */
    atomic_store_explicit(&t->num_waits, 0, memory_order_relaxed);
    t->posted_at = 0;
    t->fanout = TMR_NONE;
    t->block_num = task->block_num ? task->block_num : 1;
    t->core_type = task->core_type;
    atomic_store_explicit(&t->func_id, task->func_id, memory_order_relaxed);
    t->num_tensors = task->num_tensors;
    t->num_scalars = task->num_scalars;
    t->depth = o->depth;
    t->scope = o->begun[o->depth] - 1;
    t->heap_mask = 0;
    t->kernel_addr = kn->addr;
    o->current = tmr_handle(rd, slot, t->generation);
    atomic_store_explicit(&t->claim, (uint64_t)(t->generation & 0xFFFFu) << 48 | (uint64_t)t->block_num << 32,
                          memory_order_relaxed);

    for (uint32_t i = 0; i < task->num_deps; i++)
        if (link_explicit(o, id, task->deps[i]))
            return o->failed;
    if ((rc = tensors_and_edges(o, &k, t, task, rd)))
        return rc;
    if (task->num_scalars)
        memcpy(t->scalars, task->scalars, task->num_scalars * sizeof(uint64_t));
    if (o->c.run->capture_addr)
        capture(o, task);

    /* Publish: from here schedulers may run it. */
    /* This thread alone writes both counts: stores, not locked adds. The
     * count is stored before the task can run (the release below), so no
     * scheduler sees its finish counted and it not. */
    o->seq++;
    atomic_store_explicit(&o->c.run->submitted, o->seq, memory_order_release);
    atomic_store_explicit(&o->c.launch->tasks_submitted,
                          atomic_load_explicit(&o->c.launch->tasks_submitted, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    /* release: a scheduler that sees 0 sees the whole task and its waits */
    atomic_fetch_sub_explicit(&t->unposted, 1, memory_order_release);
    if (atomic_fetch_sub(&t->pending, 1) == 1)
        tmr_push_ready(&o->c, o->current);
    dep_tracker_sweep(o->tracker, SWEEP_PER_SUBMIT, task_live, o);
    uint64_t regions = dep_tracker_live_regions(o->tracker);
    if (regions > o->c.run->peak_regions)
        o->c.run->peak_regions = regions;
    if (id_out)
        *id_out = task_id(id, rd, slot);
    return SIMPLER_OK;
}

static int tmr_scope_begin(simpler_orch *so)
{
    tmr_orch *o = (tmr_orch *)so;
    if (o->failed)
        return o->failed;
    if (o->depth == MAX_SCOPE_DEPTH)
        return first_failure(&o->failed, SIMPLER_E_ORCHESTRATION, "scopes nest at most %d deep", MAX_SCOPE_DEPTH);
    o->depth++;
    o->begun[o->depth]++;
    o->scope_first_rec[o->depth] = o->heap[ring_of(o->depth)].rec_head;
    return SIMPLER_OK;
}

static int tmr_scope_end(simpler_orch *so)
{
    tmr_orch *o = (tmr_orch *)so;
    if (o->failed)
        return o->failed;
    if (o->depth == 0)
        return first_failure(&o->failed, SIMPLER_E_ORCHESTRATION, "scope_end without a matching scope_begin");
    /* Its OUTPUTs are gone for the orchestration from now on (their memory
     * lives until the tasks using them finish). */
    heap_ring *h = &o->heap[ring_of(o->depth)];
    uint64_t instance = o->begun[o->depth] - 1;
    for (uint64_t i = o->scope_first_rec[o->depth] > h->rec_tail ? o->scope_first_rec[o->depth] : h->rec_tail;
         i < h->rec_head; i++) {
        heap_rec *r = &h->recs[i % h->rec_cap];
        if (r->depth == o->depth && r->scope == instance && !r->args)
            addr_map_remove(&o->known, r->addr);
    }
    o->ended[o->depth]++;
    o->depth--;
    return SIMPLER_OK;
}

static int tmr_fail(simpler_orch *so, const char *message)
{
    return first_failure(&((tmr_orch *)so)->failed, SIMPLER_E_ORCHESTRATION, "%s", message ? message : "(no message)");
}

static const simpler_orch_api tmr_api = {
    .version = SIMPLER_ORCH_API_VERSION,
    .size = sizeof(simpler_orch_api),
    .submit = tmr_submit,
    .scope_begin = tmr_scope_begin,
    .scope_end = tmr_scope_end,
    .fail = tmr_fail,
};

/* ---- the thread ------------------------------------------------------------------- */

static void release(tmr_orch *o)
{
    dep_tracker_destroy(o->tracker);
    addr_map_free(&o->known);
    for (int d = 0; d < TMR_DEPTHS; d++)
        free(o->heap[d].recs);
    free(o);
}

int tmr_orchestrate(simpler_launch *L, uint32_t thread_idx)
{
    tmr_orch *o = calloc(1, sizeof *o);
    if (!o) {
        aicpu_launch_fail(L, SIMPLER_E_NO_HOST_MEMORY, "orchestrator: out of memory");
        return SIMPLER_E_NO_HOST_MEMORY;
    }
    tmr_ctx_init(&o->c, L, thread_idx);
    tmr_run *run = o->c.run;
    o->cal = (const tmr_callable *)(uintptr_t)run->callable_addr;
    o->kernels = (const tmr_kernel *)(uintptr_t)o->cal->kernels_addr;
    o->func_index = (const int32_t *)(uintptr_t)o->cal->func_index_addr;
    o->free_nodes = TMR_NONE;
    o->begun[0] = 1; /* the top level */
    atomic_store(&run->wake_at, UINT64_MAX);
    const simpler_tensor *tensors = (const simpler_tensor *)(uintptr_t)run->tensors_addr;
    int rc = dep_tracker_create(&o->tracker);
    for (uint32_t i = 0; i < run->num_tensors && !rc; i++)
        if (task_known_argument(&o->known, &tensors[i], i, tmr_input_tensor(o->cal, i)))
            rc = SIMPLER_E_NO_HOST_MEMORY;
    if (rc) {
        release(o);
        aicpu_launch_fail(L, SIMPLER_E_NO_HOST_MEMORY, "orchestrator: out of memory");
        return SIMPLER_E_NO_HOST_MEMORY;
    }

    simpler_orch_args args = {tensors, (const uint64_t *)(uintptr_t)run->scalars_addr, run->num_tensors,
                              run->num_scalars};
    simpler_orch_fn fn = (simpler_orch_fn)(uintptr_t)o->cal->orch_fn;
    uint64_t t0 = simpler_now_ns();
    int orc = fn(&tmr_api, (simpler_orch *)o, &args);
    run->orchestration_ns = simpler_now_ns() - t0;
    if (L->trace)
        simpler_trace_record(L->trace, SIMPLER_TRACE_ORCHESTRATE, thread_idx, o->seq, 0, 0, t0, t0 + run->orchestration_ns);
    if (!o->failed && orc)
        first_failure(&o->failed, SIMPLER_E_ORCHESTRATION, "orchestration '%s' returned %d", o->cal->orch_entry, orc);
    else if (!o->failed && o->depth)
        first_failure(&o->failed, SIMPLER_E_ORCHESTRATION, "orchestration '%s' returned with %u scope(s) open", o->cal->orch_entry,
             o->depth);
    else if (o->failed && !atomic_load(&L->abort))
        simpler_fail_prefix(o->failed, "orchestration '%s'", o->cal->orch_entry);

    /* Tasks already submitted still run to completion; then the run ends
     * with the orchestration's error, if any. */
    if (o->failed && !atomic_load(&L->abort))
        aicpu_launch_error(L, o->failed, "%s", simpler_last_error());
    atomic_store(&run->submit_done, 1);
    aicpu_wake_all(L);
    rc = o->failed;
    release(o);
    return rc;
}

/* Threads 0 .. aicpu_thread_num - 1 schedule; the extra one orchestrates. */
static int tmr_thread_main(simpler_launch *L, uint32_t thread_idx)
{
    return thread_idx < L->p.aicpu_thread_num ? tmr_schedule(L, thread_idx) : tmr_orchestrate(L, thread_idx);
}

AICPU_RUNTIME(tmr_runtime) = {SIMPLER_RUNTIME_TMR, "tensormap_and_ringbuffer", tmr_thread_main};
