/*
 * A standalone test of the device-side scheduling core: the host_build_graph
 * scheduler (csrc/aicpu) driving the AICore executor (csrc/aicore) through
 * the mailboxes, with no Python, no dlopen and no platform library. Built
 * with ThreadSanitizer (and with ASan/UBSan) by
 * tests/unit/test_c_scheduler_tsan.py.
 *
 * The program plays the sim platform, simplified: it starts one thread per
 * core running simpler_aicore_main(), and for each launch runs
 * aicpu_thread_num threads calling simpler_aicpu_main() and joins them. The
 * graph images are laid out by hand following graph_image.h, and the
 * kernels are functions of this file.
 *
 * Kernels keep their bookkeeping in atomics so that any race ThreadSanitizer
 * reports is the runtime's. One exception is deliberate: each block writes
 * its result into a plain array that its successors read, the way a
 * consumer kernel reads its producer's output tensor; the runtime must order
 * a task after all blocks of its predecessors, so TSan checks that too.
 *
 * Usage: test_scheduler [scale]   (scale in percent of the default sizes,
 * default 100; smaller is faster)
 */
#include <pthread.h>
#include <stdarg.h>
#include <inttypes.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aicpu/dispatch_loop.h"
#include "check.h"
#include "common/device_abi.h"
#include "runtime/host_build_graph/graph_image.h"
#include "runtime/host_build_graph/stream_image.h"
#include "simpler/kernel.h"
#include "simpler/simpler.h"

#define MAX_BLOCK_DIM 4
#define NUM_CORES (MAX_BLOCK_DIM * SIMPLER_CORES_PER_CLUSTER)
#define MAX_TASKS 6000
#define MAX_BLOCKS 8
#define NORMAL_TIMEOUT_MS 60000
#define WATCHDOG_TIMEOUT_MS 200
#define SPIN_FUNC_ID 7
#define SLOW_FUNC_ID 9
/* A slow task's time: longer than the run target this test is built with
 * (SCHED_RUN_TARGET_NS, test_c_scheduler_tsan.py), so never batched. */
#define SLOW_TASK_NS 5000000ull
/* A hung launch kills the program (SIGALRM) instead of hanging the suite. */
#define LAUNCH_ALARM_S 120

#include "device_harness.h"

/* Wait until every core finished what was posted to it. */
static int cores_idle(uint64_t timeout_ns)
{
    uint64_t deadline = simpler_now_ns() + timeout_ns;
    for (uint32_t c = 0; c < NUM_CORES; c++) {
        simpler_mailbox *mb = &mailboxes[c];
        while (atomic_load(&mb->finished) != atomic_load(&mb->door.seq)) {
            if (simpler_now_ns() > deadline)
                return 0;
            sched_yield();
        }
    }
    return 1;
}

/* ---- kernels and their bookkeeping ------------------------------------ */

/* What the kernels of the current graph check against; written by main
 * before a launch and only read by kernels. */
static uint32_t g_blocks[MAX_TASKS];
static uint32_t g_num_cores;

static _Atomic uint32_t block_runs[MAX_TASKS * MAX_BLOCKS];
static _Atomic uint32_t blocks_done[MAX_TASKS];
static _Atomic uint32_t order_pos;
static _Atomic uint32_t order[MAX_TASKS];
static _Atomic int32_t ran_on[MAX_TASKS];   /* the core block 0 ran on */
/* Plain data flowing along the edges: depth of the task in its graph. */
static uint32_t depth_out[MAX_TASKS * MAX_BLOCKS];

/* Most tasks posted behind a root task when it started, on its core. */
static _Atomic uint32_t root_ahead;
/* Tasks that ran as one of a run (a slot of several, device_abi.h), and
 * of those, not as its first. */
static _Atomic uint32_t ran_in_run, ran_inside_run, ran_inside_run_on[2]; /* the last by core type */
static _Atomic uint32_t spin_release;
static _Atomic uint32_t spin_started;


/* Notes whether the task running on this core is one of a run. */
static void note_run(void)
{
    int32_t core = tls_core;
    if (core < 0 || (uint32_t)core >= g_num_cores)
        return;
    simpler_mailbox *mb = &mailboxes[core];
    const simpler_slot *slot = &mb->slots[(atomic_load(&mb->ack) - 1) % SIMPLER_MAILBOX_SLOTS];
    if (slot->run_count > 1) {
        atomic_fetch_add(&ran_in_run, 1);
        if (atomic_load_explicit(&mb->task_id, memory_order_relaxed) != slot->task_id) {
            atomic_fetch_add(&ran_inside_run, 1);
            atomic_fetch_add(&ran_inside_run_on[simpler_core_type_of((uint32_t)core)], 1);
        }
    }
}

/*
 * The kernel of every ordinary task. scalars: [0] task index, [1] core type,
 * [2] number of predecessors, [3..] the predecessors.
 */
static void work_kernel(const simpler_kernel_args *args)
{
    if (args->num_scalars < 3 || args->num_tensors != 0) {
        kernel_error("bad argument counts: %u scalars, %u tensors", args->num_scalars, args->num_tensors);
        return;
    }
    const uint64_t *sc = args->scalars;
    uint64_t idx = sc[0], type = sc[1], npred = sc[2];
    if (idx >= MAX_TASKS || args->num_scalars != 3 + npred) {
        kernel_error("bad scalars: task %" PRIu64 ", %" PRIu64 " predecessors, %u scalars", idx, npred,
                     args->num_scalars);
        return;
    }
    int32_t core = tls_core;
    if (core < 0 || (uint32_t)core >= g_num_cores || simpler_core_type_of((uint32_t)core) != type)
        kernel_error("task %" PRIu64 " of core type %" PRIu64 " ran on core %d of %u", idx, type, core,
                     g_num_cores);
    if (args->block_num != g_blocks[idx] || args->block_idx >= args->block_num)
        kernel_error("task %" PRIu64 ": block %u of %u, expected block_num %u", idx, args->block_idx,
                     args->block_num, g_blocks[idx]);
    uint32_t b = args->block_idx < MAX_BLOCKS ? args->block_idx : 0;

    uint32_t depth = 0;
    for (uint64_t p = 0; p < npred; p++) {
        uint64_t pred = sc[3 + p];
        if (pred >= MAX_TASKS) {
            kernel_error("task %" PRIu64 ": bad predecessor %" PRIu64, idx, pred);
            continue;
        }
        uint32_t done = atomic_load_explicit(&blocks_done[pred], memory_order_relaxed);
        if (done != g_blocks[pred])
            kernel_error("task %" PRIu64 " started with predecessor %" PRIu64 " at %u of %u blocks done", idx,
                         pred, done, g_blocks[pred]);
        /* Plain reads of every block's output of the predecessor. */
        for (uint32_t pb = 0; pb < g_blocks[pred] && pb < MAX_BLOCKS; pb++)
            if (depth_out[pred * MAX_BLOCKS + pb] > depth)
                depth = depth_out[pred * MAX_BLOCKS + pb];
    }
    depth_out[idx * MAX_BLOCKS + b] = depth + 1;
    if (npred == 0 && core >= 0 && (uint32_t)core < g_num_cores) {
        simpler_mailbox *mb = &mailboxes[core];
        uint32_t ahead = atomic_load(&mb->door.seq) - atomic_load_explicit(&mb->ack, memory_order_relaxed);
        for (uint32_t m = atomic_load(&root_ahead); ahead > m;)
            if (atomic_compare_exchange_weak(&root_ahead, &m, ahead))
                break;
    }

    note_run();
    atomic_fetch_add_explicit(&block_runs[idx * MAX_BLOCKS + b], 1, memory_order_relaxed);
    if (args->block_idx == 0) {
        atomic_store_explicit(&ran_on[idx], core, memory_order_relaxed);
        uint32_t pos = atomic_fetch_add_explicit(&order_pos, 1, memory_order_relaxed);
        if (pos < MAX_TASKS)
            atomic_store_explicit(&order[pos], (uint32_t)idx, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&blocks_done[idx], 1, memory_order_relaxed);
}

/* Tasks of the slow kernel that ran inside a run. */
static _Atomic uint32_t slow_in_run;

/* An ordinary task that takes SLOW_TASK_NS first. */
static void slow_kernel(const simpler_kernel_args *args)
{
    int32_t core = tls_core;
    if (core >= 0 && (uint32_t)core < g_num_cores) {
        simpler_mailbox *mb = &mailboxes[core];
        if (mb->slots[(atomic_load(&mb->ack) - 1) % SIMPLER_MAILBOX_SLOTS].run_count > 1)
            atomic_fetch_add(&slow_in_run, 1);
    }
    for (uint64_t until = simpler_now_ns() + SLOW_TASK_NS; simpler_now_ns() < until;)
        sched_yield();
    work_kernel(args);
}

/* Never returns until the test lets it. */
static void spin_kernel(const simpler_kernel_args *args)
{
    note_run();
    atomic_store(&spin_started, 1);
    while (!atomic_load(&spin_release))
        sched_yield();
}

/*
 * A core's first task holds it until every AIV core runs its first and
 * the scheduler has posted, across them, at least GATE_AHEAD tasks behind
 * the running ones (or 10 s went by), then notes the most any one core
 * had behind its own: how the queued tasks were shared out. Then it is
 * an ordinary task. Tasks, not posts: a post may be a run of several.
 */
#define GATE_AHEAD 4
static _Atomic uint32_t gate_passed[NUM_CORES];
static _Atomic uint32_t gate_most_ahead;

static uint32_t slot_tasks(const simpler_slot *slot) { return slot->run_count > 1 ? slot->run_count : 1; }

/* Tasks posted behind the running ones over the AIV cores, once every
 * AIV core runs its first (before, a core's own first one would count as
 * posted behind); 0 until then. A core's first task is the first of its
 * slot, so the rest of that slot's run is behind it. */
static uint32_t aiv_ahead(uint32_t *most)
{
    uint32_t sum = 0;
    *most = 0;
    for (uint32_t c = 0; c < g_num_cores; c++) {
        if (simpler_core_type_of(c) != 1)
            continue;
        simpler_mailbox *mb = &mailboxes[c];
        if (!atomic_load(&mb->in_kernel))
            return 0;
        uint32_t ack = atomic_load(&mb->ack), seq = atomic_load(&mb->door.seq);
        uint32_t ahead = slot_tasks(&mb->slots[(ack - 1) % SIMPLER_MAILBOX_SLOTS]) - 1;
        for (uint32_t s = ack + 1; s != seq + 1; s++)
            ahead += slot_tasks(&mb->slots[(s - 1) % SIMPLER_MAILBOX_SLOTS]);
        sum += ahead;
        *most = ahead > *most ? ahead : *most;
    }
    return sum;
}

static void gate_kernel(const simpler_kernel_args *args)
{
    int32_t core = tls_core;
    if (core >= 0 && (uint32_t)core < g_num_cores && !atomic_exchange(&gate_passed[core], 1)) {
        uint64_t until = simpler_now_ns() + 10000000000ull;
        uint32_t most;
        while (aiv_ahead(&most) < GATE_AHEAD && simpler_now_ns() < until)
            sched_yield();
        for (uint32_t m = atomic_load(&gate_most_ahead); most > m;)
            if (atomic_compare_exchange_weak(&gate_most_ahead, &m, most))
                break;
    }
    work_kernel(args);
}

/* ---- graphs and their images ------------------------------------------ */

typedef struct graph {
    uint32_t n;
    uint32_t num_edges;
    simpler_kernel_fn fn[MAX_TASKS];
    uint32_t type[MAX_TASKS], blocks[MAX_TASKS], func[MAX_TASKS];
    uint32_t pred_start[MAX_TASKS + 1];
    uint32_t *preds;
    uint32_t cap_edges;
} graph;

static graph *graph_new(uint32_t cap_edges)
{
    graph *g = calloc(1, sizeof *g);
    if (g)
        g->preds = malloc(sizeof(uint32_t) * (cap_edges ? cap_edges : 1));
    if (!g || !g->preds) {
        perror("graph_new");
        exit(2);
    }
    g->cap_edges = cap_edges;
    return g;
}

static void graph_free(graph *g)
{
    free(g->preds);
    free(g);
}

static uint32_t graph_add(graph *g, simpler_kernel_fn fn, uint32_t type, uint32_t blocks, uint32_t npred,
                          const uint32_t *preds)
{
    uint32_t i = g->n++;
    if (i >= MAX_TASKS || g->num_edges + npred > g->cap_edges || blocks > MAX_BLOCKS) {
        fprintf(stderr, "graph_add: graph too large\n");
        exit(2);
    }
    g->fn[i] = fn;
    g->type[i] = type;
    g->blocks[i] = blocks;
    g->func[i] = fn == spin_kernel ? SPIN_FUNC_ID : fn == slow_kernel ? SLOW_FUNC_ID : 1 + type;
    g->pred_start[i] = g->num_edges;
    for (uint32_t p = 0; p < npred; p++)
        g->preds[g->num_edges++] = preds[p];
    g->pred_start[i + 1] = g->num_edges;
    return i;
}

static uint64_t align64(uint64_t x) { return (x + 63) & ~63ull; }

/* Lay the graph out as graph_image.h says, roots pre-queued. */
static uint8_t *build_image(const graph *g)
{
    uint64_t n = g->n;
    uint64_t args_size = 0;
    for (uint32_t i = 0; i < n; i++)
        args_size += (3ull + g->pred_start[i + 1] - g->pred_start[i]) * sizeof(uint64_t);
    uint64_t tasks_off = align64(sizeof(hbg_header));
    uint64_t fanout_off = tasks_off + n * sizeof(hbg_task);
    uint64_t q0 = align64(fanout_off + g->num_edges * 4ull);
    uint64_t q1 = q0 + align64(n * 4);
    uint64_t args_off = q1 + align64(n * 4);
    uint64_t total = align64(args_off + args_size);
    uint8_t *img = aligned_alloc(64, total);
    uint32_t *fan_count = calloc(n, sizeof *fan_count);
    if (!img || !fan_count) {
        perror("build_image");
        exit(2);
    }
    memset(img, 0, total);

    hbg_header *h = (hbg_header *)img;
    h->magic = HBG_IMAGE_MAGIC;
    h->total_size = total;
    h->num_tasks = (uint32_t)n;
    h->tasks_off = tasks_off;
    h->fanout_off = fanout_off;
    h->queue_off[0] = q0;
    h->queue_off[1] = q1;
    atomic_init(&h->queue_head[0], 0);
    atomic_init(&h->queue_head[1], 0);

    hbg_task *tasks = (hbg_task *)(img + tasks_off);
    uint32_t *fanout = (uint32_t *)(img + fanout_off);
    for (uint32_t e = 0; e < g->num_edges; e++)
        fan_count[g->preds[e]]++;
    uint64_t fan_pos = 0, arg_pos = args_off, tail[2] = {0, 0};
    for (uint32_t i = 0; i < n; i++) {
        hbg_task *t = &tasks[i];
        uint32_t npred = g->pred_start[i + 1] - g->pred_start[i];
        t->kernel_addr = (uint64_t)(uintptr_t)g->fn[i];
        t->tensors_off = arg_pos;
        t->scalars_off = arg_pos;
        t->fanout_start = fan_pos;
        t->fanout_count = 0; /* counts up while the edges are bucketed below */
        fan_pos += fan_count[i];
        t->num_tensors = 0;
        t->num_scalars = 3 + npred;
        t->func_id = g->func[i];
        t->core_type = g->type[i];
        t->block_num = g->blocks[i];
        atomic_init(&t->pending, npred);
        atomic_init(&t->blocks_done, 0);
        atomic_init(&t->unposted, npred);
        atomic_init(&t->num_waits, 0);

        uint64_t *sc = (uint64_t *)(img + arg_pos);
        sc[0] = i;
        sc[1] = g->type[i];
        sc[2] = npred;
        for (uint32_t p = 0; p < npred; p++)
            sc[3 + p] = g->preds[g->pred_start[i] + p];
        arg_pos += t->num_scalars * sizeof(uint64_t);

        if (npred == 0) {
            uint32_t *q = (uint32_t *)(img + h->queue_off[g->type[i]]);
            q[tail[g->type[i]]++] = i + 1;
            h->num_roots++;
        }
    }
    atomic_init(&h->queue_tail[0], tail[0]);
    atomic_init(&h->queue_tail[1], tail[1]);
    for (uint32_t c = 0; c < n; c++)
        for (uint32_t e = g->pred_start[c]; e < g->pred_start[c + 1]; e++) {
            hbg_task *p = &tasks[g->preds[e]];
            fanout[p->fanout_start + p->fanout_count++] = c;
        }
    free(fan_count);
    return img;
}

/* ---- launching -------------------------------------------------------- */

static void reset_bookkeeping(const graph *g, uint32_t block_dim)
{
    for (uint32_t i = 0; i < MAX_TASKS; i++) {
        atomic_store_explicit(&blocks_done[i], 0, memory_order_relaxed);
        atomic_store_explicit(&order[i], UINT32_MAX, memory_order_relaxed);
        atomic_store_explicit(&ran_on[i], -1, memory_order_relaxed);
        for (uint32_t b = 0; b < MAX_BLOCKS; b++) {
            atomic_store_explicit(&block_runs[i * MAX_BLOCKS + b], 0, memory_order_relaxed);
            depth_out[i * MAX_BLOCKS + b] = 0;
        }
        g_blocks[i] = i < g->n ? g->blocks[i] : 0;
    }
    atomic_store(&order_pos, 0);
    atomic_store(&root_ahead, 0);
    atomic_store(&ran_in_run, 0);
    atomic_store(&ran_inside_run, 0);
    atomic_store(&ran_inside_run_on[0], 0);
    atomic_store(&ran_inside_run_on[1], 0);
    atomic_store(&kernel_errors, 0);
    g_num_cores = block_dim * SIMPLER_CORES_PER_CLUSTER;
}

/* One launch of img on threads AICPU threads and block_dim clusters; every
 * thread's return code must be the launch status, which is returned. */
static uint32_t last_followed; /* tasks of the last launch that went to a core as followers */
static uint32_t last_cross_followed; /* of which ran on another core than a predecessor */

static int launch_image(uint8_t *img, uint32_t threads, uint32_t block_dim, uint32_t timeout_ms)
{
    uint32_t seq_before[NUM_CORES];
    begin_launch(&(simpler_launch_params){.runtime = SIMPLER_RUNTIME_HOST_BUILD_GRAPH,
                                          .block_dim = block_dim,
                                          .aicpu_thread_num = threads,
                                          .scheduler_timeout_ms = timeout_ms,
                                          .image_addr = (uint64_t)(uintptr_t)img},
                 seq_before);

    int rcs[SIMPLER_MAX_AICPU_THREADS + 1];
    run_aicpu_threads(threads, rcs, LAUNCH_ALARM_S);
    int status = atomic_load(&launch.status);
    for (uint32_t t = 0; t < threads; t++)
        CHECKF(rcs[t] == status, "thread %u returned %d, launch status %d", t, rcs[t], status);
    /* Cores outside the launch's clusters were left alone. */
    for (uint32_t c = launch.num_cores; c < NUM_CORES; c++)
        CHECKF(atomic_load(&mailboxes[c].door.seq) == seq_before[c], "core %u of %u was posted to", c,
               launch.num_cores);
    return status;
}

/* What every successful launch of a graph, whole or streamed, shows: the
 * status, and every block of every task ran exactly once, after its
 * predecessors (work_kernel checks), its data flowing. */
static void check_ran(const graph *g, uint32_t threads, uint32_t block_dim, int status)
{
    CHECKF(status == SIMPLER_OK, "threads %u block_dim %u: status %d: %s", threads, block_dim, status,
           launch.message);
    CHECKF(launch.message[0] == '\0', "message on success: %s", launch.message);
    CHECKF(atomic_load(&launch.tasks_completed) == g->n, "tasks_completed %llu of %u",
           (unsigned long long)atomic_load(&launch.tasks_completed), g->n);
    CHECKF(atomic_load(&kernel_errors) == 0, "%u kernel errors", atomic_load(&kernel_errors));
    uint32_t bad_runs = 0, bad_done = 0, bad_depth = 0;
    for (uint32_t i = 0; i < g->n; i++) {
        for (uint32_t b = 0; b < MAX_BLOCKS; b++) {
            uint32_t r = atomic_load_explicit(&block_runs[i * MAX_BLOCKS + b], memory_order_relaxed);
            if (r != (b < g->blocks[i] ? 1u : 0u) && bad_runs++ < 5)
                fprintf(stderr, "    task %u block %u ran %u times (block_num %u)\n", i, b, r, g->blocks[i]);
        }
        if (atomic_load_explicit(&blocks_done[i], memory_order_relaxed) != g->blocks[i])
            bad_done++;
        uint32_t want = 0;
        for (uint32_t e = g->pred_start[i]; e < g->pred_start[i + 1]; e++) {
            uint32_t p = g->preds[e];
            if (depth_out[p * MAX_BLOCKS] > want)
                want = depth_out[p * MAX_BLOCKS];
        }
        for (uint32_t b = 0; b < g->blocks[i]; b++)
            if (depth_out[i * MAX_BLOCKS + b] != want + 1)
                bad_depth++;
    }
    CHECKF(bad_runs == 0, "%u task blocks ran a wrong number of times", bad_runs);
    CHECKF(bad_done == 0, "%u tasks with a wrong number of finished blocks", bad_done);
    CHECKF(bad_depth == 0, "%u task blocks computed a wrong depth", bad_depth);
}

/* The cores are all back to idle, and acked what they ran. */
static void check_cores_idle(void)
{
    uint32_t busy = busy_cores();
    CHECKF(busy == 0, "%u cores not idle after a successful launch", busy);
}

/* The checks every successful run of every whole graph gets. */
static int check_run(const graph *g, uint8_t *img, uint32_t threads, uint32_t block_dim, int status)
{
    uint32_t fails = (uint32_t)check_failed;
    hbg_header *h = (hbg_header *)img;
    hbg_task *tasks = (hbg_task *)(img + h->tasks_off);
    check_ran(g, threads, block_dim, status);

    uint32_t bad_state = 0;
    uint8_t *followed = calloc(g->n, 1);
    for (uint32_t i = 0; i < g->n; i++) {
        uint32_t pending = atomic_load(&tasks[i].pending);
        followed[i] = (pending & HBG_FOLLOWED) != 0;
        /* blocks_done counts only a task of several blocks: one block's
         * finish is its task's */
        uint32_t want_done = g->blocks[i] > 1 ? g->blocks[i] : 0;
        if ((pending & ~HBG_FOLLOWED) != 0 || atomic_load(&tasks[i].blocks_done) != want_done ||
            (followed[i] && g->blocks[i] != 1))
            bad_state++;
    }
    CHECKF(bad_state == 0, "%u tasks with pending != 0 or a wrong blocks_done in the image", bad_state);

    /* Each ready queue saw each task of its type exactly once, but for the
     * followers, which went straight to a core. */
    uint8_t *seen = calloc(g->n, 1);
    for (uint32_t type = 0; type < 2; type++) {
        uint32_t count = 0;
        for (uint32_t i = 0; i < g->n; i++)
            count += g->type[i] == type && !followed[i];
        uint64_t head = atomic_load(&h->queue_head[type]), tail = atomic_load(&h->queue_tail[type]);
        CHECKF(head == count && tail == count, "type %u: queue head %llu tail %llu, %u tasks", type,
               (unsigned long long)head, (unsigned long long)tail, count);
        const uint32_t *q = (const uint32_t *)(img + h->queue_off[type]);
        uint32_t bad = 0;
        for (uint64_t s = 0; s < tail && s < g->n; s++) {
            uint32_t v = q[s];
            if (v == 0 || v > g->n || g->type[v - 1] != type || followed[v - 1] || seen[v - 1]++)
                bad++;
        }
        CHECKF(bad == 0, "type %u: %u bad or repeated ready-queue entries", type, bad);
    }
    free(seen);
    last_followed = last_cross_followed = 0;
    for (uint32_t i = 0; i < g->n; i++) {
        last_followed += followed[i];
        int cross = 0;
        for (uint32_t p = g->pred_start[i]; followed[i] && p < g->pred_start[i + 1]; p++)
            cross |= atomic_load(&ran_on[g->preds[p]]) != atomic_load(&ran_on[i]);
        last_cross_followed += cross;
    }
    free(followed);
    check_cores_idle();
    return (uint32_t)check_failed == fails;
}

/* ---- the graphs ------------------------------------------------------- */

static unsigned long long rng = 12345;

static uint32_t rand_type(void) { return (uint32_t)(check_rand(&rng) & 1); }

static graph *make_chain(uint32_t n)
{
    graph *g = graph_new(n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t p = i - 1;
        graph_add(g, work_kernel, rand_type(), 1, i ? 1 : 0, &p);
    }
    return g;
}

/* A chain of one core type: after its first tasks are timed, its
 * followers go as runs, each task behind the one before in one slot. */
static graph *make_chain_of(uint32_t n, uint32_t type)
{
    graph *g = graph_new(n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t p = i - 1;
        graph_add(g, work_kernel, type, 1, i ? 1 : 0, &p);
    }
    return g;
}

/* A chain of AIV tasks each also after an AIC side task (one per four
 * chain tasks, submitted first): once its side task finished, a chain
 * task's only unfinished producer is the one before, and runs form. The
 * order the test checks is the chain's, after the side tasks. */
static uint32_t chain_sides;

static graph *make_chain_with_sides(uint32_t n)
{
    graph *g = graph_new(2 * n);
    chain_sides = (n + 3) / 4;
    for (uint32_t i = 0; i < chain_sides; i++)
        graph_add(g, work_kernel, 0, 1, 0, NULL);
    for (uint32_t j = 0; j < n; j++) {
        uint32_t p[2] = {j / 4, chain_sides + j - 1};
        graph_add(g, work_kernel, 1, 1, j ? 2 : 1, p);
    }
    return g;
}

static void chain_with_sides_extra(const graph *g)
{
    CHECK(depth_out[(g->n - 1) * MAX_BLOCKS] == g->n - chain_sides + 1);
}

static graph *make_independent(uint32_t n)
{
    graph *g = graph_new(0);
    for (uint32_t i = 0; i < n; i++)
        graph_add(g, work_kernel, i % 2, 1 + (check_rand(&rng) % 4 == 0), 0, NULL);
    return g;
}

static uint32_t fan_children_preds[MAX_TASKS];

static graph *make_fan(uint32_t width)
{
    graph *g = graph_new(2 * width);
    uint32_t root = graph_add(g, work_kernel, 0, 1, 0, NULL);
    for (uint32_t i = 0; i < width; i++)
        fan_children_preds[i] = graph_add(g, work_kernel, rand_type(), 1, 1, &root);
    graph_add(g, work_kernel, 1, 1, width, fan_children_preds);
    return g;
}

/* Task-Bench's stencil_1d: rows of AIV tasks, each depending on its
 * neighbours in the row before. */
static graph *make_stencil(uint32_t rows, uint32_t width)
{
    graph *g = graph_new(3 * rows * width);
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t j = 0; j < width; j++) {
            uint32_t p[3], n = 0;
            for (uint32_t k = j ? j - 1 : 0; r && k <= j + 1 && k < width; k++)
                p[n++] = (r - 1) * width + k;
            graph_add(g, work_kernel, 1, 1, n, p);
        }
    return g;
}

/* A first task on each AIV that holds its core until the scheduler has
 * nothing left to do but wait (it sleeps, or 10 s went by), then notes
 * how many tasks each AIV has posted behind it: the plan the scheduler
 * made ahead, with no core yet done. Then an ordinary task. */
static uint32_t plan_ahead[NUM_CORES];

static void plan_gate_kernel(const simpler_kernel_args *args)
{
    int32_t core = tls_core;
    if (core >= 0 && (uint32_t)core < g_num_cores && !atomic_exchange(&gate_passed[core], 1)) {
        uint64_t until = simpler_now_ns() + 10000000000ull;
        uint32_t most;
        while ((!aiv_ahead(&most) || !atomic_load(&launch.thread_events[0].sleepers)) && simpler_now_ns() < until)
            sched_yield();
        simpler_mailbox *mb = &mailboxes[core];
        plan_ahead[core] = atomic_load(&mb->door.seq) - atomic_load(&mb->ack);
    }
    work_kernel(args);
}

/* Layers of multi-block tasks, each depending on two of the layer before. */
static graph *make_multiblock(uint32_t layers, uint32_t width)
{
    graph *g = graph_new(2 * layers * width);
    for (uint32_t l = 0; l < layers; l++)
        for (uint32_t j = 0; j < width; j++) {
            uint32_t blocks = 3 + (uint32_t)(check_rand(&rng) % 3);
            uint32_t p[2] = {(l - 1) * width + j, (l - 1) * width + (j + 1) % width};
            graph_add(g, work_kernel, rand_type(), blocks, l ? (width > 1 ? 2 : 1) : 0, p);
        }
    return g;
}

/* A spinning task with a successor, next to a few ordinary tasks. */
static graph *make_watchdog(void)
{
    graph *g = graph_new(4);
    uint32_t spin = graph_add(g, spin_kernel, 1, 1, 0, NULL);
    graph_add(g, work_kernel, 0, 1, 1, &spin);
    for (uint32_t i = 0; i < 4; i++)
        graph_add(g, work_kernel, i % 2, 1, 0, NULL);
    return g;
}

/* ---- cases ------------------------------------------------------------ */

static const uint32_t thread_nums[] = {1, 2, 3};
static const uint32_t block_dims[] = {1, 2, 4};

static int run_graph(const char *name, graph *g, uint32_t threads, uint32_t block_dim)
{
    uint8_t *img = build_image(g);
    reset_bookkeeping(g, block_dim);
    int status = launch_image(img, threads, block_dim, NORMAL_TIMEOUT_MS);
    int ok = check_run(g, img, threads, block_dim, status);
    if (!ok)
        fprintf(stderr, "  ^ in %s (%u tasks), aicpu_thread_num %u, block_dim %u\n", name, g->n, threads,
                block_dim);
    /* After a broken launch, cores may still be using the image. */
    CHECKF(ok || cores_idle(10000000000ull), "cores still busy 10 s after a failed launch");
    free(img);
    return ok;
}

/* What a case checks over all its runs, not each: whether a run formed
 * depends on timing (a preempted timed task makes the next ones too slow
 * to run together), so one run of nine without runs is no fault. */
enum { RUNS_UNCHECKED = -1, RUNS_ON_ANY = 2 };

static void case_graph(const char *name, graph *g, int reps, void (*extra)(const graph *), int runs_on)
{
    uint64_t t0 = simpler_now_ns();
    int runs = 0;
    uint32_t inside = 0, in_run = 0;
    for (int r = 0; r < reps; r++)
        for (size_t ti = 0; ti < sizeof thread_nums / sizeof *thread_nums; ti++)
            for (size_t bi = 0; bi < sizeof block_dims / sizeof *block_dims; bi++) {
                int ok = run_graph(name, g, thread_nums[ti], block_dims[bi]);
                if (ok && extra)
                    extra(g);
                in_run += atomic_load(&ran_in_run);
                inside += runs_on == RUNS_ON_ANY || runs_on < 0 ? atomic_load(&ran_inside_run)
                                                                : atomic_load(&ran_inside_run_on[runs_on]);
                runs++;
            }
    if (runs_on != RUNS_UNCHECKED)
        CHECKF(inside > 0, "%s: in %d runs of %u tasks none ran inside a run (%u in one)", name, runs, g->n, in_run);
    printf("%-14s %5u tasks x %d runs: %.2f s, %u inside runs\n", name, g->n, runs,
           (double)(simpler_now_ns() - t0) / 1e9, inside);
    fflush(stdout);
}

/* Independent tasks are all taken from the ready queue, none follows: a
 * core never has more than SCHED_TAKE_AHEAD of them waiting. */
/* Independent tasks of both types, alternating: each type's queue holds
 * every other task, taken as runs that step over the other type's. */
static void independent_extra(const graph *g)
{
    uint32_t ahead = atomic_load(&root_ahead);
    CHECKF(ahead <= SCHED_TAKE_AHEAD, "independent: %u posts were behind a running one", ahead);
}

static void chain_extra(const graph *g)
{
    uint32_t bad = 0;
    /* Neighbours of one core type: the second follows the first onto its
     * core, never through a ready queue. */
    CHECKF(last_followed > 0, "chain: no task was followed (%u tasks)", g->n);
    CHECKF(atomic_load(&order_pos) == g->n, "chain: %u tasks recorded", atomic_load(&order_pos));
    for (uint32_t i = 0; i < g->n; i++)
        if (atomic_load_explicit(&order[i], memory_order_relaxed) != i && bad++ < 5)
            fprintf(stderr, "    chain: position %u holds task %u\n", i,
                    atomic_load_explicit(&order[i], memory_order_relaxed));
    CHECKF(bad == 0, "chain: %u tasks out of order", bad);
    CHECK(depth_out[(g->n - 1) * MAX_BLOCKS] == g->n);
}

/* Followers with producers on other cores: the slot's waits held them
 * (work_kernel checks that every predecessor was done). Counted over all
 * of a case's runs, since one run's placement depends on timing. */
static uint32_t stencil_cross;

static void stencil_extra(const graph *g)
{
    stencil_cross += last_cross_followed;
    CHECK(depth_out[(g->n - 1) * MAX_BLOCKS] == g->n / 4);
}

static void fan_extra(const graph *g)
{
    /* Root first, join last. */
    CHECK(atomic_load_explicit(&order[0], memory_order_relaxed) == 0);
    CHECK(atomic_load_explicit(&order[g->n - 1], memory_order_relaxed) == g->n - 1);
    CHECK(depth_out[(g->n - 1) * MAX_BLOCKS] == 3);
}

/* Queued tasks ahead of time go round the idle cores of the type, one
 * post at a time: 8 independent tasks on the two AIVs of a cluster are 1
 * running + 2 posted behind it on each, 2 left queued (posted core by
 * core, the first took 6 and the second 2, and a 4-wide step of 100 us
 * tasks ran at 0.58 efficiency). One task a post: no task was timed yet,
 * so no run is sized. */
static void case_take_ahead_balance(void)
{
    graph *g = graph_new(0);
    for (uint32_t i = 0; i < 8; i++)
        graph_add(g, gate_kernel, 1, 1, 0, NULL);
    for (uint32_t c = 0; c < NUM_CORES; c++)
        atomic_store(&gate_passed[c], 0);
    atomic_store(&gate_most_ahead, 0);
    run_graph("take-ahead", g, 1, 1);
    uint32_t most = atomic_load(&gate_most_ahead);
    CHECKF(most == GATE_AHEAD / 2, "take-ahead: one AIV had %u tasks posted behind its first of 8 (want %u each)",
           most, GATE_AHEAD / 2);
    graph_free(g);
    printf("take-ahead     8 tasks: most posted behind one core %u\n", most);
}

/* A scheduler pinned to the CPU of core 1, the first AIV, which takes a
 * chain: it marks that core's mailbox as beside it when it rings it
 * (dispatch_loop.c, ring), so that the core waits for its posts with
 * yields, not pauses. Run again pinned elsewhere, the mark is gone.
 * Nothing to check with fewer than two CPUs: cores are not pinned. */
static void case_scheduler_beside(void)
{
    if (!mailboxes[1].pinned || !mailboxes[2].pinned || mailboxes[1].cpu == mailboxes[2].cpu) {
        printf("beside         skipped: cores 1 and 2 are not pinned to two CPUs\n");
        return;
    }
    graph *g = make_chain_of(50, 1);
    uint32_t here[2];
    for (int k = 0; k < 2; k++) {
        aicpu_cpu = (int)mailboxes[k ? 2 : 1].cpu;
        run_graph("beside", g, 1, 1);
        here[k] = atomic_load(&mailboxes[1].scheduler_beside);
    }
    aicpu_cpu = -1;
    CHECKF(here[0] == 1, "beside: a scheduler on core 1's CPU left its mailbox unmarked");
    CHECKF(here[1] == 0, "beside: core 1's mailbox still marked with the scheduler on another CPU");
    graph_free(g);
    printf("beside         50 tasks x 2 runs: marked %u, then %u\n", here[0], here[1]);
}

/* A stencil 8 wide on one cluster's two AIVs, behind two roots (one on
 * each AIV, four successors each) held until the scheduler has placed all
 * it can ahead. Its followers are placed by when each would start: the
 * first row's go on both AIVs, behind either root, and the plan goes on
 * into the next row as far as SCHED_GAP_AHEAD lets a gap be planned (3
 * and 2, or 7 and 2, as the roots' posts fall). Placed only behind a
 * producer, as before, each root had one or two followers and the rest
 * waited for the ready queue (and Task
 * Bench's stencil of width 8 ran at 0.5-0.8 of the kernel-only run's
 * efficiency). */
static void case_wide_stencil(void)
{
    enum { ROWS = 40, WIDTH = 8 };
    graph *g = graph_new(3 * ROWS * WIDTH + WIDTH);
    uint32_t roots[2];
    for (uint32_t k = 0; k < 2; k++)
        roots[k] = graph_add(g, plan_gate_kernel, 1, 1, 0, NULL);
    for (uint32_t r = 0; r < ROWS; r++)
        for (uint32_t j = 0; j < WIDTH; j++) {
            uint32_t p[3], n = 0;
            if (!r)
                p[n++] = roots[j / (WIDTH / 2)];
            for (uint32_t k = j ? j - 1 : 0; r && k <= j + 1 && k < WIDTH; k++)
                p[n++] = 2 + (r - 1) * WIDTH + k;
            graph_add(g, work_kernel, 1, 1, n, p);
        }
    for (uint32_t c = 0; c < NUM_CORES; c++)
        atomic_store(&gate_passed[c], 0), plan_ahead[c] = 0;
    run_graph("wide stencil", g, 1, 1);
    /* The cluster's AIVs are cores 1 and 2 (simpler_core_type_of). */
    uint32_t a = plan_ahead[1], b = plan_ahead[2], fewer = a < b ? a : b;
    CHECKF(a + b >= 5 && fewer >= 2,
           "wide stencil: %u and %u tasks placed ahead on the two AIVs", a, b);
    printf("wide stencil   %u tasks: placed ahead %u and %u\n", g->n, a, b);
    graph_free(g);
}

/* The watchdog: a kernel that never finishes times the launch out with a
 * message naming it; once let go, the cores serve the next launch. */
static void case_watchdog(uint32_t threads, uint32_t block_dim)
{
    graph *g = make_watchdog();
    uint8_t *img = build_image(g);
    reset_bookkeeping(g, block_dim);
    atomic_store(&spin_release, 0);
    atomic_store(&spin_started, 0);
    uint64_t t0 = simpler_now_ns();
    int status = launch_image(img, threads, block_dim, WATCHDOG_TIMEOUT_MS);
    uint64_t took = simpler_now_ns() - t0;
    CHECKF(status == SIMPLER_E_TIMEOUT, "watchdog: status %d (%s)", status, launch.message);
    CHECKF(strstr(launch.message, "no task finished") != NULL, "watchdog message: %s", launch.message);
    char want[64];
    snprintf(want, sizeof want, "task 0 (func %d) on core", SPIN_FUNC_ID);
    CHECKF(strstr(launch.message, want) != NULL, "watchdog message does not name the spinning task: %s",
           launch.message);
    CHECKF(took >= WATCHDOG_TIMEOUT_MS * 1000000ull, "watchdog fired after %.3f s", (double)took / 1e9);
    CHECK(atomic_load(&spin_started) == 1);
    CHECK(atomic_load(&launch.abort) == 1);
    CHECKF(atomic_load(&launch.tasks_completed) < g->n, "tasks_completed %llu",
           (unsigned long long)atomic_load(&launch.tasks_completed));
    uint32_t in_kernel = 0;
    for (uint32_t c = 0; c < NUM_CORES; c++)
        in_kernel += atomic_load(&mailboxes[c].in_kernel);
    CHECKF(in_kernel >= 1, "%u cores in a kernel after the timeout", in_kernel);

    /* Let the kernel go; the core must catch up before the image goes. */
    atomic_store(&spin_release, 1);
    CHECKF(cores_idle(30000000000ull), "cores did not finish after the spinning kernel was released");
    /* The spinning task's successor may have been posted to a core to
     * wait for it; after the abort it is dropped, never run. */
    CHECKF(atomic_load(&block_runs[1 * MAX_BLOCKS]) == 0, "the successor of the timed-out task ran");
    free(img);
    graph_free(g);

    /* The same cores run the next graph. */
    graph *next = make_independent(200);
    run_graph("after-watchdog", next, threads, block_dim);
    graph_free(next);
    printf("watchdog       threads %u block_dim %u: %.2f s\n", threads, block_dim,
           (double)(simpler_now_ns() - t0) / 1e9);
    fflush(stdout);
}

/* ---- streamed images (stream_image.h) ---------------------------------- */

/* 32 tasks per segment: the graphs above stream in many segments. */
#define STREAM_SHIFT 5
#define STREAM_SEG (1u << STREAM_SHIFT)
#define STREAM_MAX_SEGS (MAX_TASKS / STREAM_SEG + 1)

enum { STREAM_EAGER, STREAM_LATE, STREAM_FAIL, STREAM_STALL };

/* The host of a streamed launch: publishes g a segment at a time with the
 * protocol's own functions while the AICPU threads run. STREAM_LATE waits
 * before each segment until every task published has finished, so that
 * its edges meet finished producers; STREAM_FAIL gives up after two
 * segments, STREAM_STALL stops adding after two (the watchdog's case). */
typedef struct stream_host {
    const graph *g;
    int mode;
    uint8_t *img;               /* the header and its directory */
    hbg_stream_header *hdr;
    _Atomic uint64_t *dir;
    uint8_t *seg[STREAM_MAX_SEGS];
    uint32_t num_segs;
    uint32_t timeouts;          /* waits of STREAM_LATE that gave up */
} stream_host;

static hbg_stream_task *stream_task(stream_host *s, uint32_t i)
{
    return (hbg_stream_task *)s->seg[i >> STREAM_SHIFT] + (i & (STREAM_SEG - 1));
}

static void stream_push(stream_host *s, uint32_t i)
{
    uint32_t type = s->g->type[i];
    uint64_t pos = atomic_fetch_add(&s->hdr->queue_tail[type], 1);
    _Atomic uint32_t *q = (_Atomic uint32_t *)(s->seg[pos >> STREAM_SHIFT] + hbg_stream_queue_off(STREAM_SHIFT, type));
    atomic_store(&q[pos & (STREAM_SEG - 1)], i + 1);
}

static void stream_publish(stream_host *s, uint32_t from, uint32_t to)
{
    const graph *g = s->g;
    uint32_t k = s->num_segs, ne = g->pred_start[to] - g->pred_start[from];
    uint64_t edges_off = hbg_stream_edges_off(STREAM_SHIFT);
    uint64_t args_off = align64(edges_off + ne * sizeof(hbg_stream_edge));
    uint64_t args_size = 0;
    for (uint32_t i = from; i < to; i++)
        args_size += (3ull + g->pred_start[i + 1] - g->pred_start[i]) * sizeof(uint64_t);
    uint8_t *seg = aligned_alloc(64, align64(args_off + args_size));
    if (!seg) {
        perror("stream_publish");
        exit(2);
    }
    memset(seg, 0, args_off);
    s->seg[k] = seg;
    s->num_segs++;
    uint64_t arg_pos = args_off;
    for (uint32_t i = from; i < to; i++) {
        hbg_stream_task *t = (hbg_stream_task *)seg + (i - from);
        uint32_t npred = g->pred_start[i + 1] - g->pred_start[i];
        uint64_t *sc = (uint64_t *)(seg + arg_pos);
        sc[0] = i;
        sc[1] = g->type[i];
        sc[2] = npred;
        for (uint32_t p = 0; p < npred; p++)
            sc[3 + p] = g->preds[g->pred_start[i] + p];
        t->kernel_addr = (uint64_t)(uintptr_t)g->fn[i];
        t->tensors_addr = t->scalars_addr = (uint64_t)(uintptr_t)sc;
        t->num_scalars = 3 + npred;
        t->func_id = g->func[i];
        t->core_type = g->type[i];
        t->block_num = g->blocks[i];
        atomic_init(&t->pending, npred + 1);
        atomic_init(&t->unposted, npred + 1);
        arg_pos += t->num_scalars * sizeof(uint64_t);
    }
    atomic_store_explicit(&s->dir[k], (uint64_t)(uintptr_t)seg, memory_order_release);
    hbg_stream_edge *node = (hbg_stream_edge *)(seg + edges_off);
    for (uint32_t c = from; c < to; c++)
        for (uint32_t e = g->pred_start[c]; e < g->pred_start[c + 1]; e++, node++) {
            node->consumer = c;
            hbg_stream_add_edge(stream_task(s, g->preds[e]), node, (uint64_t)(uintptr_t)node, stream_task(s, c));
        }
    for (uint32_t i = from; i < to; i++)
        if (hbg_stream_release(stream_task(s, i)))
            stream_push(s, i);
    atomic_store(&s->hdr->published, to);
}

static void *stream_host_main(void *arg)
{
    stream_host *s = arg;
    const graph *g = s->g;
    for (uint32_t from = 0, k = 0; from < g->n; from += STREAM_SEG, k++) {
        if (k == 2 && s->mode == STREAM_FAIL) {
            atomic_store(&s->hdr->failed, 1);
            return NULL;
        }
        if (k == 2 && s->mode == STREAM_STALL)
            return NULL;
        if (s->mode == STREAM_LATE) {
            uint64_t deadline = simpler_now_ns() + 10000000000ull;
            while (atomic_load(&launch.tasks_completed) < from && simpler_now_ns() < deadline)
                sched_yield();
            s->timeouts += atomic_load(&launch.tasks_completed) < from;
        } else if (k % 4 == 1) {
            sched_yield(); /* let the schedulers run ahead, now and then */
        }
        stream_publish(s, from, from + STREAM_SEG < g->n ? from + STREAM_SEG : g->n);
    }
    atomic_store(&s->hdr->sealed, 1);
    return NULL;
}

static int run_streamed(const char *name, graph *g, uint32_t threads, uint32_t block_dim, int mode)
{
    uint32_t fails = (uint32_t)check_failed;
    stream_host s = {.g = g, .mode = mode};
    uint64_t dir_off = align64(sizeof(hbg_stream_header));
    s.img = aligned_alloc(64, align64(dir_off + STREAM_MAX_SEGS * 8));
    if (!s.img) {
        perror("run_streamed");
        exit(2);
    }
    memset(s.img, 0, align64(dir_off + STREAM_MAX_SEGS * 8));
    s.hdr = (hbg_stream_header *)s.img;
    s.hdr->magic = HBG_STREAM_MAGIC;
    s.hdr->seg_shift = STREAM_SHIFT;
    s.hdr->max_segments = STREAM_MAX_SEGS;
    s.hdr->dir_off = dir_off;
    s.dir = (_Atomic uint64_t *)(s.img + dir_off);
    reset_bookkeeping(g, block_dim);

    uint32_t seq_before[NUM_CORES];
    begin_launch(&(simpler_launch_params){.runtime = SIMPLER_RUNTIME_HBG_STREAM,
                                          .block_dim = block_dim,
                                          .aicpu_thread_num = threads,
                                          .scheduler_timeout_ms = mode == STREAM_STALL ? WATCHDOG_TIMEOUT_MS
                                                                                       : NORMAL_TIMEOUT_MS,
                                          .image_addr = (uint64_t)(uintptr_t)s.img},
                 seq_before);
    pthread_t host;
    if (pthread_create(&host, NULL, stream_host_main, &s)) {
        perror("pthread_create");
        exit(2);
    }
    int rcs[SIMPLER_MAX_AICPU_THREADS + 1];
    run_aicpu_threads(threads, rcs, LAUNCH_ALARM_S);
    pthread_join(host, NULL);
    int status = atomic_load(&launch.status);
    for (uint32_t t = 0; t < threads; t++)
        CHECKF(rcs[t] == status, "thread %u returned %d, launch status %d", t, rcs[t], status);

    if (mode == STREAM_FAIL) {
        CHECKF(status == SIMPLER_E_ORCHESTRATION, "a failed stream: status %d (%s)", status, launch.message);
    } else if (mode == STREAM_STALL) {
        CHECKF(status == SIMPLER_E_TIMEOUT, "a stalled stream: status %d (%s)", status, launch.message);
        CHECKF(strstr(launch.message, "still adding tasks") != NULL, "stalled stream's message: %s", launch.message);
    } else {
        check_ran(g, threads, block_dim, status);
        CHECKF(s.timeouts == 0, "%u segments waited in vain for the tasks before them", s.timeouts);
        /* Every task was queued or followed once, and its list closed. */
        uint32_t bad = 0, followed = 0;
        for (uint32_t i = 0; i < g->n; i++) {
            hbg_stream_task *t = stream_task(&s, i);
            uint32_t pending = atomic_load(&t->pending);
            followed += (pending & HBG_FOLLOWED) != 0;
            bad += (pending & ~HBG_FOLLOWED) != 0 || atomic_load(&t->fanout) != HBG_STREAM_CLOSED;
        }
        CHECKF(bad == 0, "%u streamed tasks left pending or open", bad);
        uint64_t queued = atomic_load(&s.hdr->queue_tail[0]) + atomic_load(&s.hdr->queue_tail[1]);
        CHECKF(queued + followed == g->n, "%llu queued + %u followed of %u tasks", (unsigned long long)queued,
               followed, g->n);
        last_followed = followed;
        check_cores_idle();
    }
    int ok = (uint32_t)check_failed == fails;
    if (!ok)
        fprintf(stderr, "  ^ in streamed %s (%u tasks, mode %d), aicpu_thread_num %u, block_dim %u\n", name, g->n,
                mode, threads, block_dim);
    CHECKF(cores_idle(10000000000ull), "cores still busy 10 s after a streamed launch");
    for (uint32_t k = 0; k < s.num_segs; k++)
        free(s.seg[k]);
    free(s.img);
    return ok;
}

/* Each graph streamed, eagerly and late, on a few shapes of the device. */
static void case_streamed(const char *name, graph *g, int chain)
{
    static const uint32_t shapes[][2] = {{1, 1}, {2, 2}, {3, 4}};
    uint64_t t0 = simpler_now_ns();
    uint32_t followed = 0;
    int runs = 0;
    for (int mode = STREAM_EAGER; mode <= STREAM_LATE; mode++)
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++, runs++)
            if (run_streamed(name, g, shapes[i][0], shapes[i][1], mode))
                followed += last_followed;
    if (chain)
        CHECKF(followed > 0, "streamed %s: no task was followed", name);
    printf("streamed %-10s %5u tasks x %d runs: %.2f s\n", name, g->n, runs, (double)(simpler_now_ns() - t0) / 1e9);
    fflush(stdout);
}

/* A task that never finishes in the middle of a run of independent ones,
 * which the scheduler takes from the ready queue as one post
 * (sched_ops.take_run): the watchdog still names that task, no task runs
 * twice, and the rest of the run is dropped. */
static void case_stuck_in_a_run(void)
{
    enum { N = 200, STUCK = 150 };
    graph *g = graph_new(0);
    for (uint32_t i = 0; i < N; i++)
        graph_add(g, i == STUCK ? spin_kernel : work_kernel, 1, 1, 0, NULL);
    uint8_t *img = build_image(g);
    reset_bookkeeping(g, 1);
    atomic_store(&spin_release, 0);
    atomic_store(&spin_started, 0);
    int status = launch_image(img, 1, 1, WATCHDOG_TIMEOUT_MS);
    CHECKF(status == SIMPLER_E_TIMEOUT, "stuck in a run: status %d (%s)", status, launch.message);
    char want[64];
    snprintf(want, sizeof want, "task %d (func %d) on core", STUCK, SPIN_FUNC_ID);
    CHECKF(strstr(launch.message, want) != NULL, "stuck in a run: the message does not name task %d: %s", STUCK,
           launch.message);
    CHECK(atomic_load(&spin_started) == 1);
    /* once the first tasks were timed, the rest went as runs */
    CHECKF(atomic_load(&ran_inside_run) > 0, "stuck in a run: no task ran inside a run");
    atomic_store(&spin_release, 1);
    CHECKF(cores_idle(30000000000ull), "cores did not finish after the spinning kernel was released");
    uint32_t ran = 0, twice = 0;
    for (uint32_t i = 0; i < N; i++) {
        uint32_t r = atomic_load(&block_runs[i * MAX_BLOCKS]);
        ran += r;
        twice += r > 1;
    }
    CHECKF(twice == 0, "stuck in a run: %u tasks ran more than once", twice);
    CHECKF(atomic_load(&launch.tasks_completed) <= ran, "stuck in a run: %llu tasks counted complete, %u ran",
           (unsigned long long)atomic_load(&launch.tasks_completed), ran);
    free(img);
    graph_free(g);
    printf("stuck-in-run   %u tasks: %u ran before the timeout\n", N, ran);
}

/* Runs are sized by each kernel's own time: after thousands of quick
 * tasks, a slow kernel's tasks, queued all at once, still go one a post
 * (one estimate for every kernel sized them by the quick ones', 10 a run
 * of 5 ms tasks here). */
static void case_slow_after_quick(void)
{
    graph *g = graph_new(0);
    for (uint32_t i = 0; i < 2000; i++)
        graph_add(g, work_kernel, 1, 1, 0, NULL);
    for (uint32_t i = 0; i < 40; i++)
        graph_add(g, slow_kernel, 1, 1, 0, NULL);
    atomic_store(&slow_in_run, 0);
    run_graph("slow-after-quick", g, 1, 1);
    CHECKF(atomic_load(&ran_inside_run) > 0, "slow after quick: no quick task ran inside a run");
    CHECKF(atomic_load(&slow_in_run) == 0, "slow after quick: %u slow tasks ran inside runs",
           atomic_load(&slow_in_run));
    graph_free(g);
    printf("slow-after-quick 2040 tasks: %u slow ones in runs\n", atomic_load(&slow_in_run));
}

int main(int argc, char **argv)
{
    int scale = argc > 1 ? atoi(argv[1]) : 100;
    if (scale < 1)
        scale = 1;
#define SCALED(x) ((uint32_t)((x) * scale / 100 > 2 ? (x) * scale / 100 : 2))
    setvbuf(stdout, NULL, _IOLBF, 0);
    start_cores();

    graph *g = make_chain(SCALED(2000));
    case_graph("chain", g, 1, chain_extra, RUNS_UNCHECKED);
    graph_free(g);

    g = make_chain_of(SCALED(2000), 1);
    case_graph("chain of one type", g, 1, chain_extra, RUNS_ON_ANY);
    graph_free(g);

    g = make_chain_with_sides(SCALED(2000));
    /* the chain's runs, on AIVs: the side tasks are queued AIC roots, runs of their own */
    case_graph("chain with sides", g, 1, chain_with_sides_extra, 1);
    graph_free(g);

    g = make_independent(SCALED(5000));
    case_graph("independent", g, 1, independent_extra, RUNS_ON_ANY);
    graph_free(g);

    case_take_ahead_balance();
    case_scheduler_beside();

    g = make_fan(SCALED(500));
    /* the children, queued by the root's finish in order, go as runs */
    case_graph("fan-out/in", g, 2, fan_extra, RUNS_ON_ANY);
    graph_free(g);

    g = make_stencil(SCALED(500), 4);
    case_graph("stencil", g, 1, stencil_extra, RUNS_UNCHECKED);
    CHECKF(stencil_cross > 0, "stencil: no follower waited for a producer on another core");
    graph_free(g);

    case_wide_stencil();

    g = make_multiblock(SCALED(20), 10);
    case_graph("multi-block", g, 1, NULL, RUNS_UNCHECKED);
    graph_free(g);

    for (size_t ti = 0; ti < sizeof thread_nums / sizeof *thread_nums; ti++)
        case_watchdog(thread_nums[ti], ti == 2 ? 1 : 2);

    case_stuck_in_a_run();
    case_slow_after_quick();
    g = make_chain(SCALED(1000));
    case_streamed("chain", g, 1);
    graph_free(g);
    g = make_independent(SCALED(2000));
    case_streamed("independent", g, 0);
    graph_free(g);
    g = make_fan(SCALED(300));
    case_streamed("fan-out/in", g, 0);
    graph_free(g);
    g = make_stencil(SCALED(200), 4);
    case_streamed("stencil", g, 0);
    graph_free(g);
    g = make_multiblock(SCALED(20), 10);
    case_streamed("multi-block", g, 0);
    graph_free(g);
    g = make_independent(8 * STREAM_SEG); /* the host stops after 2 segments of 8 */
    for (int mode = STREAM_FAIL; mode <= STREAM_STALL; mode++)
        run_streamed("stopped", g, 2, 2, mode);
    graph_free(g);

    /* A last run after every watchdog case. */
    g = make_chain(SCALED(200));
    case_graph("chain-again", g, 1, chain_extra, RUNS_UNCHECKED);
    graph_free(g);

    stop_cores();
    return check_report();
}
