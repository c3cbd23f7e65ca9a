#include "aicpu/dispatch_loop.h"

#include <inttypes.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "aicpu/launch_status.h"
#include "simpler/simpler.h"

/* A sleeping thread wakes this often to run the watchdog. */
#define SCHED_SLEEP_NS 20000000ull

/*
 * A core's mailbox holds SIMPLER_MAILBOX_SLOTS tasks. What goes in beyond
 * the one it runs:
 *   - followers: a successor of a task just posted whose producers are all
 *     posted too (ops->follow). The loop keeps a plan of when each post
 *     should be over, counting posts as if each took one time (a
 *     follower is not timed), and a follower goes to the core that would
 *     start it first (fits): a chain stays on its core, a wide step
 *     spreads evenly. The slot names its producers on other cores; the
 *     core runs it as soon as they are done, with no round trip through
 *     this loop, so a stencil's cores wait on each other directly.
 *   - queued tasks, ahead of time, only while there are more of them than
 *     cores of the type, so that no task waits behind a long one while a
 *     core idles.
 * Followers of a core's last post are looked for right after the post;
 * again, if one had no core with room (or only one far ahead), once a
 * core of this thread retires a post; and when the core has run
 * everything it was given (a successor submitted since may be ready to
 * follow). Not on every pass of the loop:
 * in tensormap_and_ringbuffer a look takes a lock the orchestrator needs.
 */
enum { FOLLOW_NONE, FOLLOW_AT_RETIRE, FOLLOW_NOW, FOLLOW_BLOCKED };

typedef struct core_slot {
    uint32_t core;
    uint32_t type;
    uint32_t posted;    /* seq of the last task posted */
    uint32_t rung;      /* doorbell value: posts the core has been told of */
    uint32_t beside;    /* the mailbox's scheduler_beside, as last stored */
    uint32_t retired;   /* finished tasks handed to ops->finish */
    int follow;         /* FOLLOW_*: when to look for followers of last */
    uint64_t last;      /* the runtime's reference of the last task posted */
    uint64_t tasks[SIMPLER_MAILBOX_SLOTS]; /* posted, by seq like the mailbox */
    /* A run's step from one task reference to the next (its length and
     * whether it was timed are in the mailbox slot, which stays until
     * retired). */
    uint32_t steps[SIMPLER_MAILBOX_SLOTS];
    /* When each post should be over, and the last (end), on the loop's
     * clock of posts (loop.now): where a follower would start. */
    uint64_t due[SIMPLER_MAILBOX_SLOTS];
    uint64_t end;
} core_slot;

typedef struct loop {
    simpler_launch *launch;
    const sched_ops *ops;
    void *rt;
    uint32_t thread_idx;
    uint32_t num_slots;
    uint32_t cores_of_type[2];  /* in the launch, all threads' */
    /* A queued task's time on a core, by kernel (func_id modulo
     * SCHED_RUN_FUNCS), as recently timed (0: none timed yet): what
     * sizes a run (sched_run_max). */
    uint64_t task_ns[SCHED_RUN_FUNCS];
    core_slot slots[SIMPLER_MAX_CORES];
    core_slot *of_core[SIMPLER_MAX_CORES]; /* this thread's, or NULL */
    /* A clock that counts posts, as if each took one time: the latest
     * due of a retired post. It places followers (fits). */
    uint64_t now;
    int hand_over;      /* a core on this thread's CPU was rung: yield the CPU at the end of the pass */
    /* Posted tasks a follower of which was refused a core (fits), looked
     * at again once a core retires: the oldest are dropped when full. */
    uint32_t num_deferred;
    struct deferred {
        core_slot *src;
        uint64_t task;
        uint32_t seq;
    } deferred[SCHED_DEFERRED];
} loop;

struct sched_place {
    loop *l;
    core_slot *src;             /* where the task whose successors are looked at went */
    uint32_t src_seq;
    int refused;                /* a candidate found no core with room */
    core_slot *chosen;
    uint32_t num_waits;         /* the chosen core's waits, one per other core */
    sched_where waits[SIMPLER_SLOT_WAITS];
    uint64_t start;             /* when the chosen core would start it (loop.now's clock) */
};

void sched_wake_others(simpler_launch *L, uint32_t except)
{
    for (uint32_t t = 0; t < L->p.aicpu_thread_num; t++) {
        simpler_event *e = &L->thread_events[t];
        if (t != except && atomic_load(&e->sleepers))
            simpler_event_signal(e);
    }
}

static uint32_t outstanding(const core_slot *c) { return c->posted - c->retired; }

static uint32_t room(const core_slot *c) { return SIMPLER_MAILBOX_SLOTS - outstanding(c); }

/* When the post at w should be over, on the loop's clock: as planned,
 * or later if its core is behind (what it holds up to w, from now). 0
 * once w is done. Another thread's core by its finished word alone. */
static uint64_t due_of(const loop *l, sched_where w)
{
    const core_slot *c = l->of_core[w.core];
    uint32_t done = c ? c->retired
                      : atomic_load_explicit(&l->launch->mailboxes[w.core].finished, memory_order_relaxed);
    if (!simpler_seq_before(done, w.seq))
        return 0;
    uint64_t behind = l->now + (w.seq - done);
    uint64_t planned = c ? c->due[(w.seq - 1) % SIMPLER_MAILBOX_SLOTS] : 0;
    return planned > behind ? planned : behind;
}

/* When a post to c now would start: once c ran what it holds. */
static uint64_t free_at(const loop *l, const core_slot *c)
{
    uint64_t behind = l->now + (c->posted - c->retired);
    return c->end > behind ? c->end : behind;
}

/* Whether a candidate follower of this core type, with these waits, has a
 * core to go to now; the choice is kept in pl for the post. */
static int fits(sched_place *pl, uint32_t type, const sched_post *cand)
{
    loop *l = pl->l;
    /* The candidate's producers, and the task whose successors are looked
     * at (the runtime may or may not have named it). */
    sched_where prod[SIMPLER_SLOT_WAITS + 1];
    uint32_t n = cand->num_waits;
    for (uint32_t i = 0; i < n; i++)
        prod[i] = cand->waits[i];
    prod[n++] = (sched_where){pl->src->core, pl->src_seq};

    /* Each core of the type with room could take it: it would start once
     * the core ran what it holds and its producers elsewhere are over,
     * on the loop's clock of posts (a follower is not timed). The
     * earliest start wins; at a tie, a core whose last post is a
     * producer (the candidate follows it at once, waiting on nobody: a
     * chain stays on its core), then the least loaded. Placing only
     * behind a producer, as before, left Task Bench's stencil of width 8
     * on two cores with 204 tasks on one and 276 on the other (0.5-0.8 of
     * the kernel-only run's efficiency); by load alone, balanced, each
     * core waited a fifth of the run for the other's tasks; by the plan,
     * both are gone. */
    uint64_t due[SIMPLER_SLOT_WAITS + 1];
    for (uint32_t i = 0; i < n; i++)
        due[i] = due_of(l, prod[i]);
    core_slot *best = NULL;
    uint64_t best_start = 0;
    int best_after = 0;
    for (uint32_t s = 0; s < l->num_slots; s++) {
        core_slot *c = &l->slots[s];
        if (c->type != type || !room(c))
            continue;
        uint64_t free = free_at(l, c), start = free;
        int after = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (prod[i].core == c->core)
                after |= c->posted == prod[i].seq;
            else if (due[i] > start)
                start = due[i];
        }
        /* A gap in a busy core's plan is taken only near the clock: far
         * ahead the plan is least sure, and a task placed there holds
         * back whatever the core gets after it. With no other core, the
         * candidate is refused and looked at again as posts retire
         * (defer). */
        if (start > free && outstanding(c) && start > l->now + SCHED_GAP_AHEAD)
            continue;
        if (!best || start < best_start ||
            (start == best_start &&
             (after > best_after || (after == best_after && outstanding(c) < outstanding(best))))) {
            best = c;
            best_start = start;
            best_after = after;
        }
    }
    pl->start = best_start;
    if (!best) {
        pl->refused = 1;
        return 0;
    }
    /* The producers on other cores, the latest per core, but for those
     * done already: a slot with no waits may carry a run of followers
     * (sched_follow_run_max), and its core checks none. Acquire: the
     * producer's writes are then before the post, which the core reads
     * with acquire, as a wait on its finished would have made them. */
    pl->num_waits = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t w = 0;
        if (prod[i].core == best->core ||
            !simpler_seq_before(atomic_load_explicit(&l->launch->mailboxes[prod[i].core].finished,
                                                     memory_order_acquire),
                                prod[i].seq))
            continue;
        while (w < pl->num_waits && pl->waits[w].core != prod[i].core)
            w++;
        if (w == pl->num_waits) {
            if (w == SIMPLER_SLOT_WAITS)
                return 0;
            pl->waits[pl->num_waits++] = prod[i];
        } else if (simpler_seq_before(pl->waits[w].seq, prod[i].seq)) {
            pl->waits[w].seq = prod[i].seq;
        }
    }
    pl->chosen = best;
    return 1;
}

int sched_claim(sched_place *pl, uint32_t type, _Atomic uint32_t *pending, uint32_t flag, uint32_t num_waits,
                const uint64_t *waits, uint32_t max_waits, sched_post *out)
{
    uint32_t p = atomic_load_explicit(pending, memory_order_relaxed);
    if (p == 0 || (p & flag) || num_waits > max_waits)
        return 0;
    out->num_waits = num_waits;
    for (uint32_t w = 0; w < num_waits; w++)
        out->waits[w] = sched_unpack(waits[w]);
    if (!fits(pl, type, out))
        return 0;
    while (p != 0 && !(p & flag))
        if (atomic_compare_exchange_weak(pending, &p, p | flag))
            return 1;
    return 0;
}

uint32_t sched_follow_run_max(const sched_place *pl, uint32_t func_id)
{
    const loop *l = pl->l;
    uint64_t ns = l->task_ns[func_id % SCHED_RUN_FUNCS];
    if (!l->ops->runs || pl->num_waits || !ns)
        return 1;
    uint64_t fits = SCHED_RUN_TARGET_NS / ns;
    return fits >= SCHED_RUN_MAX ? SCHED_RUN_MAX : fits > 1 ? (uint32_t)fits : 1;
}

/* Write p into c's next slot, with the waits pl chose (NULL: none). The
 * doorbell rings later, once for the batch (ring). The core times a
 * queued post (timed), for the size of the next runs. */
static void post(loop *l, core_slot *c, const sched_post *p, const sched_place *pl, int timed)
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
    uint32_t run = p->run > 1 ? p->run : 1;
    slot->run_count = timed || run > 1 ? run : 0;
    if (run > 1) {
        /* queued tasks, no waits (the run's fields share their place) */
        slot->num_waits = 0;
        slot->run_addr = p->run_addr;
        slot->run_base = p->run_base;
        slot->run_stride = p->run_stride;
        slot->run_id_step = p->run_id_step;
    } else {
        slot->num_waits = pl ? pl->num_waits : 0;
        for (uint32_t i = 0; i < slot->num_waits; i++) {
            slot->waits[i].mailbox_addr = (uint64_t)(uintptr_t)&l->launch->mailboxes[pl->waits[i].core];
            slot->waits[i].seq = pl->waits[i].seq;
        }
    }
    uint64_t start = free_at(l, c);
    if (pl && pl->start > start)
        start = pl->start;
    c->end = c->due[(seq - 1) % SIMPLER_MAILBOX_SLOTS] = start + 1;
    c->tasks[(seq - 1) % SIMPLER_MAILBOX_SLOTS] = p->task;
    c->steps[(seq - 1) % SIMPLER_MAILBOX_SLOTS] = p->run_step;
    c->posted = seq;
    c->last = p->task + (uint64_t)(run - 1) * p->run_step;
    c->follow = FOLLOW_NONE;
    if (p->block_num == 1) {
        /* A follower of a task in a run waits for the whole run: its
         * producer is done when the slot is. */
        for (uint32_t i = 0; l->ops->posted && i < run; i++)
            l->ops->posted(l->rt, p->task + (uint64_t)i * p->run_step, c->core, seq);
        if (l->ops->follow)
            c->follow = FOLLOW_NOW;
    }
}

/* Ring each core's doorbell once for everything posted since its last
 * ring: one cache-line handoff to a core for a batch of posts. A core
 * whose thread is pinned to the CPU this thread runs on cannot start its
 * posts before this thread leaves that CPU, which a thread with work to
 * do does only when preempted or idle: so the pass ends with a yield of
 * the CPU (hand_over), and the core is told (scheduler_beside) to wait
 * for its next post with yields from the start, not pauses that keep
 * this thread off the CPU. On 2 CPUs the scheduler shares one with the
 * second AIV (chip.c): that core's starts were 10-50 us late 800 times
 * in 8,000 empty tasks of Task Bench's stencil_1d w8, 12.6 ms of a 14.4
 * ms run, before the yield (docs/performance.md). */
static void ring(loop *l)
{
    int cpu = -1;
    for (uint32_t i = 0; i < l->num_slots; i++) {
        core_slot *c = &l->slots[i];
        if (c->rung != c->posted) {
            simpler_mailbox *mb = &l->launch->mailboxes[c->core];
            if (mb->pinned && cpu < 0)
                cpu = sched_getcpu();
            uint32_t beside = mb->pinned && (int)mb->cpu == cpu;
            if (beside != c->beside) { /* before the ring, so that the core's next wait sees it */
                c->beside = beside;
                atomic_store_explicit(&mb->scheduler_beside, beside, memory_order_relaxed);
            }
            simpler_event_signal_n(&mb->door, c->posted - c->rung);
            c->rung = c->posted;
            l->hand_over |= beside;
        }
    }
}

/* The yield that ring leaves for the end of a pass: not from the middle
 * of a retire, whose finishes (and the posts they make ready, maybe for
 * cores on other CPUs) would wait behind that core's kernel. */
static void hand_over(loop *l)
{
    if (l->hand_over) {
        l->hand_over = 0;
        sched_yield();
    }
}

/* Keep a posted task whose follower was refused, to look again (a core's
 * last post is looked at again anyway: FOLLOW_BLOCKED). */
static void defer(loop *l, core_slot *src, uint64_t task, uint32_t seq)
{
    for (uint32_t i = 0; i < l->num_deferred; i++)
        if (l->deferred[i].task == task)
            return;
    if (l->num_deferred == SCHED_DEFERRED) {
        for (uint32_t i = 1; i < SCHED_DEFERRED; i++)
            l->deferred[i - 1] = l->deferred[i];
        l->num_deferred--;
    }
    l->deferred[l->num_deferred++] = (struct deferred){src, task, seq};
}

/* Post every follower of task (posted on src as seq) that has a core to
 * go to now. Returns whether any was posted. */
static int follow_from(loop *l, core_slot *src, uint64_t task, uint32_t seq)
{
    sched_place pl = {.l = l, .src = src, .src_seq = seq};
    sched_post p;
    int any = 0;
    while (l->ops->follow(l->rt, task, &pl, &p)) {
        post(l, pl.chosen, &p, &pl, 0);
        any = 1;
    }
    if (src->last == task)
        src->follow = pl.refused ? FOLLOW_BLOCKED : FOLLOW_AT_RETIRE;
    else if (pl.refused)
        defer(l, src, task, seq);
    return any;
}

/* Look again at the followers refused a core (a retire moved the clock,
 * and may have opened one), where their producer is not done yet. An
 * entry stays while one of them is still refused. */
static int follow_deferred(loop *l)
{
    uint32_t n = l->num_deferred;
    int any = 0;
    struct deferred again[SCHED_DEFERRED];
    for (uint32_t i = 0; i < n; i++)
        again[i] = l->deferred[i];
    l->num_deferred = 0;
    /* Only tasks not retired yet: a finished one's successors are the
     * ready queues' now, and a runtime may reuse its reference (tmr's
     * ring). */
    for (uint32_t i = 0; i < n; i++)
        if (simpler_seq_before(again[i].src->retired, again[i].seq))
            any |= follow_from(l, again[i].src, again[i].task, again[i].seq);
    return any;
}

static uint32_t finished_of(loop *l, const core_slot *c)
{
    /* seq_cst: pairs with the core's finished store and sleepers load
     * (executor.c), for a scheduler about to sleep. */
    return atomic_load(&l->launch->mailboxes[c->core].finished);
}

/* How many queued tasks a post may carry as a run, by the queue: none
 * unless there are more than two a core of the type, then a share that
 * shrinks with the queue (as OpenMP's guided schedule does), so that the
 * last runs are short and no core is left with a long one while the
 * others idle. Each kernel's recent time caps it further
 * (sched_run_max). A run delays its tasks' successors until the whole
 * run is over; with that many tasks ready, the cores have other work
 * meanwhile. */
static uint32_t run_share(const loop *l, uint32_t type, int queued)
{
    uint32_t share = (uint32_t)queued / (2 * l->cores_of_type[type]);
    return share < 2 ? 1 : share < SCHED_RUN_MAX ? share : SCHED_RUN_MAX;
}

/* Whether a core with this many posts outstanding may take one more of
 * queued: any if it idles, else only a surplus over the cores of its
 * type, and never more than SCHED_TAKE_AHEAD posts ahead, or one run
 * ahead of the one it runs (a run is many tasks: one behind the other
 * keeps the core busy until the scheduler comes back). */
static int may_take_with(loop *l, const core_slot *c, uint32_t outstanding_now, int queued, uint32_t share)
{
    if (outstanding_now >= SIMPLER_MAILBOX_SLOTS)
        return 0;
    if (outstanding_now == 0)
        return queued > 0;
    if (share > 1)
        return outstanding_now < 2;
    return outstanding_now < SCHED_TAKE_AHEAD && queued > (int)l->cores_of_type[c->type];
}

static int may_take(loop *l, const core_slot *c)
{
    int queued = l->ops->ready(l->rt, c->type);
    return may_take_with(l, c, outstanding(c), queued, l->ops->runs ? run_share(l, c->type, queued) : 1);
}

/*
 * Hand queued tasks of one type to this thread's cores: one post per core
 * per round, as may_take_with allows (a core that took all it may would
 * leave its peers of the type idle once the rest ran out: an all-to-all
 * of 8 tasks a step ran 6 on one core, 2 on the other). The rounds are
 * planned first, against one look at the queue, and the planned posts are
 * taken at once (ops->take_run: one claim for the lot, not one a task),
 * each a run of up to run_share tasks where the runtime can, then posted.
 * Returns whether any was posted.
 */
static int take_queued(loop *l, uint32_t type)
{
    int progress = 0;
    for (;;) {
        int queued = l->ops->ready(l->rt, type);
        uint32_t share = l->ops->runs ? run_share(l, type, queued) : 1;
        uint32_t n = 0, planned[SIMPLER_MAX_CORES];
        core_slot *to[SCHED_TAKE_BATCH];
        /* Only this thread's slots: zeroing the whole array was a quarter
         * of the loop's own time on independent tasks. */
        for (uint32_t i = 0; i < l->num_slots; i++)
            planned[i] = 0;
        for (int took = 1; took && n < SCHED_TAKE_BATCH;) {
            took = 0;
            for (uint32_t i = 0; i < l->num_slots && n < SCHED_TAKE_BATCH; i++) {
                core_slot *c = &l->slots[i];
                if (c->type == type && may_take_with(l, c, outstanding(c) + planned[i], queued, share)) {
                    to[n++] = c;
                    planned[i]++;
                    queued -= (int)share;
                    took = 1;
                }
            }
        }
        if (!n)
            return progress;
        sched_post got[SCHED_TAKE_BATCH];
        sched_run_limit lim = {share, l->task_ns};
        uint32_t k = 0;
        if (l->ops->take_run)
            k = (uint32_t)l->ops->take_run(l->rt, type, got, n, &lim);
        else
            while (k < n && l->ops->take(l->rt, type, &got[k]))
                k++;
        /* Runs are sized by how long queued tasks take: only a runtime
         * that makes runs has its cores pay for the clock. */
        for (uint32_t i = 0; i < k; i++)
            post(l, to[i], &got[i], NULL, l->ops->runs);
        progress |= k > 0;
        /* Fewer than planned: the queue ran short (or holds a task of
         * several blocks, taken alone); the next pass looks again. */
        if (k < n)
            return progress;
    }
}

/* A timed post's time on its core, into its kernel's recent time a
 * task. A core preempted mid-run (more threads than CPUs) times the run
 * long, never short: the estimate follows a shorter time at once and a
 * longer one by an eighth a post, unless the post ran well past the
 * target, which a longer kernel does every time (that is followed at
 * once: a run sized by a stale, short time must not recur). */
static void note_time(loop *l, uint32_t func_id, uint64_t took_ns, uint32_t tasks)
{
    uint64_t per_task = took_ns / tasks + 1;
    uint64_t *est = &l->task_ns[func_id % SCHED_RUN_FUNCS], grown = *est + *est / 8 + 1;
    *est = !*est || per_task < grown || took_ns > 4 * SCHED_RUN_TARGET_NS ? per_task : grown;
}

/* Hand what the core finished to the runtime, as one batch. */
static int retire(loop *l, core_slot *c)
{
    uint32_t finished = finished_of(l, c), blocks = 0, tasks = 0;
    /* After an abort, cores drop what is still posted (executor.c):
     * those tasks did not run, so they are not finished either. A core
     * drops only after it saw the abort, before it publishes finished,
     * so one look after reading finished sees every abort that matters. */
    if (c->retired == finished || atomic_load_explicit(&l->launch->abort, memory_order_relaxed))
        return 0;
    while (c->retired != finished) {
        uint32_t seq = c->retired + 1;
        uint64_t task = c->tasks[(seq - 1) % SIMPLER_MAILBOX_SLOTS];
        uint64_t step = c->steps[(seq - 1) % SIMPLER_MAILBOX_SLOTS];
        const simpler_slot *slot = &l->launch->mailboxes[c->core].slots[(seq - 1) % SIMPLER_MAILBOX_SLOTS];
        uint32_t run = slot->run_count > 1 ? slot->run_count : 1;
        /* The core ran everything it had: a follower of its last task
         * goes to it now, before finishing that task would queue the
         * follower for any scheduler to take (and maybe an idle core,
         * which would have to be woken). */
        if (seq == c->posted && c->follow != FOLLOW_NONE) {
            uint64_t last = task + (run - 1) * step;
            if (follow_from(l, c, last, seq))
                ring(l); /* before finishing its producer: the core may go on at once */
            if (c->last == last)
                c->follow = FOLLOW_NONE;
        }
        if (slot->run_count) /* timed: finished (read above) publishes the core's took_ns */
            note_time(l, slot->func_id, slot->took_ns, run);
        c->retired = seq;
        uint64_t due = c->due[(seq - 1) % SIMPLER_MAILBOX_SLOTS];
        if (due > l->now)
            l->now = due;
        blocks += run;
        for (uint32_t i = 0; i < run; i++)
            tasks += l->ops->finish(l->rt, task + i * step);
    }
    atomic_fetch_add_explicit(&l->launch->blocks_completed, blocks, memory_order_relaxed);
    if (tasks)
        l->ops->completed(l->rt, tasks);
    return 1;
}

/* One pass over this thread's cores: retire, take queued work, post
 * followers, ring. */
static int pass(loop *l)
{
    int retired = 0, progress = 0;
    for (uint32_t i = 0; i < l->num_slots; i++)
        retired |= retire(l, &l->slots[i]);
    for (uint32_t type = 0; type < 2; type++)
        if (l->cores_of_type[type])
            progress |= take_queued(l, type);
    for (int again = 1; again;) {
        again = 0;
        for (uint32_t i = 0; i < l->num_slots; i++) {
            core_slot *c = &l->slots[i];
            if (c->follow == FOLLOW_NOW || (c->follow == FOLLOW_BLOCKED && retired))
                again |= follow_from(l, c, c->last, c->posted);
        }
        if (retired && l->num_deferred)
            again |= follow_deferred(l);
        progress |= again;
    }
    ring(l);
    hand_over(l);
    return progress | retired;
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

/* Whole clusters per thread when there are enough of them: one thread
 * then drives both AIVs of a cluster, so a successor of tasks on both can
 * be posted behind them without crossing threads. With more threads than
 * clusters (a test's choice; the platform clamps), cores go round. */
static uint32_t owner_of(const simpler_launch *L, uint32_t core)
{
    uint32_t threads = L->p.aicpu_thread_num, clusters = L->num_cores / SIMPLER_CORES_PER_CLUSTER;
    if (threads <= clusters)
        return core / SIMPLER_CORES_PER_CLUSTER % threads;
    return core % threads;
}

int sched_loop(simpler_launch *L, uint32_t thread_idx, const sched_ops *ops, void *rt)
{
    /* Zeroed only where it is read: the slots of cores this thread does
     * not drive, most of the loop's 66 KB, never are (a whole-struct
     * zeroing was a tenth of a scheduler's samples in one-task runs). */
    loop storage, *l = &storage;
    memset(l, 0, offsetof(loop, slots));
    memset(l->of_core, 0, sizeof l->of_core);
    l->now = 0;
    l->hand_over = 0;
    l->num_deferred = 0;
    l->launch = L;
    l->ops = ops;
    l->rt = rt;
    l->thread_idx = thread_idx;
    for (uint32_t c = 0; c < L->num_cores; c++)
        l->cores_of_type[simpler_core_type_of(c)]++;
    for (uint32_t c = 0; c < L->num_cores; c++) {
        if (owner_of(L, c) != thread_idx)
            continue;
        core_slot *slot = l->of_core[c] = &l->slots[l->num_slots++];
        memset(slot, 0, sizeof *slot);
        simpler_mailbox *mb = &L->mailboxes[c];
        slot->core = c;
        slot->type = simpler_core_type_of(c);
        slot->posted = slot->retired = slot->rung = atomic_load(&mb->door.seq);
        /* Read by the core after the doorbell of our first post. */
        mb->notify = &L->thread_events[thread_idx];
        mb->trace = L->trace;
        mb->abort = &L->abort;
        atomic_store_explicit(&mb->scheduler_beside, 0, memory_order_relaxed);
    }

    uint64_t timeout_ns = (uint64_t)L->p.scheduler_timeout_ms * 1000000ull;
    uint64_t seen_done = UINT64_MAX, seen_at = 0;
    simpler_backoff backoff = {0};
    simpler_event *me = &L->thread_events[thread_idx];

    while (!should_stop(l)) {
        if (pass(l)) {
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
        uint64_t sleep_ns = ops->idle_ns ? ops->idle_ns(rt) : 0;
        simpler_event_sleep(me, seq, sleep_ns ? sleep_ns : SCHED_SLEEP_NS);
        if (L->trace)
            simpler_trace_record(L->trace, SIMPLER_TRACE_SLEEP, thread_idx, 0, 0, 0, now, simpler_now_ns());
    }
    return atomic_load(&L->status);
}
