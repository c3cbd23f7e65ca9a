/*
 * A standalone test of the tensormap_and_ringbuffer runtime's device side:
 * the orchestrator thread (csrc/runtime/tensormap_and_ringbuffer/aicpu/orchestrator.c) building the
 * graph while the scheduler threads (tmr_scheduler.c over sched_loop.c)
 * dispatch it to the AICore executor (csrc/aicore) through the mailboxes.
 * No Python, no dlopen, no platform library: the sources are linked in.
 * Built with ThreadSanitizer (and with ASan/UBSan) by
 * tests/unit/test_c_tmr_sanitizers.py.
 *
 * The program plays the sim platform, simplified: one thread per core runs
 * simpler_aicore_main(); a launch runs aicpu_thread_num scheduler threads
 * plus one orchestrator thread, each calling simpler_aicpu_main(), and
 * joins them. The run block is laid out the way
 * runtime/tensormap_and_ringbuffer/host/ring_setup.c lays it out in GM, in plain
 * 64-byte-aligned host memory (on sim a device address is a host address).
 * The registration record's orch_fn points straight at an orchestration
 * function of this file, and its kernel table at kernels of this file.
 *
 * Kernels read and write the tensors with plain loads and stores, the way
 * real kernels do: the runtime must order a consumer after its producer
 * (and a writer after earlier readers), so a missing edge shows up both as
 * a wrong value and as a ThreadSanitizer report.
 *
 * Usage: test_tmr [scale [rounds [case]]]
 *   scale: percent of the default sizes (default 100; smaller is faster);
 *   rounds: times to run the whole list (default 1): races between
 *           scheduler threads need the right interleaving, so a sanitizer
 *           run gains from several rounds;
 *   case: run only the cases whose name contains it.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/device_abi.h"
#include "runtime/tensormap_and_ringbuffer/device_layout.h"
#include "simpler/kernel.h"
#include "simpler/orch.h"
#include "simpler/simpler.h"

#define MAX_BLOCK_DIM 2
#define NUM_CORES (MAX_BLOCK_DIM * SIMPLER_CORES_PER_CLUSTER)
#define NORMAL_TIMEOUT_MS 60000
/* A hung launch kills the program (SIGALRM) instead of hanging the suite. */
#define LAUNCH_ALARM_S 120

#include "device_harness.h"

/* Wait until every core finished what was posted to it. */
static int cores_idle(uint64_t timeout_ns)
{
    uint64_t deadline = simpler_now_ns() + timeout_ns;
    while (busy_cores()) {
        if (simpler_now_ns() > deadline)
            return 0;
        sched_yield();
    }
    return 1;
}

/* ---- kernels ------------------------------------------------------------ */

static _Atomic uint64_t kernel_runs;
static _Atomic uint32_t spin_sink;
/* Kernels that ran inside a run of tasks (a slot of several, not as its
 * first: device_abi.h). */
static _Atomic uint32_t ran_inside_run;


static void kernel_enter(const simpler_kernel_args *args, uint32_t type, uint32_t tensors, uint32_t scalars,
                         const char *name)
{
    atomic_fetch_add_explicit(&kernel_runs, 1, memory_order_relaxed);
    int32_t core = tls_core;
    if (core >= 0 && (uint32_t)core < launch.num_cores) {
        simpler_mailbox *mb = &mailboxes[core];
        const simpler_slot *slot = &mb->slots[(atomic_load(&mb->ack) - 1) % SIMPLER_MAILBOX_SLOTS];
        if (slot->run_count > 1 && atomic_load_explicit(&mb->task_id, memory_order_relaxed) != slot->task_id)
            atomic_fetch_add_explicit(&ran_inside_run, 1, memory_order_relaxed);
    }
    if (core < 0 || (uint32_t)core >= launch.num_cores || simpler_core_type_of((uint32_t)core) != type)
        kernel_error("%s (core type %u) ran on core %d of %u", name, type, core, launch.num_cores);
    if (args->num_tensors != tensors || args->num_scalars != scalars || args->block_num != 1 ||
        args->block_idx != 0)
        kernel_error("%s: %u tensors, %u scalars, block %u of %u", name, args->num_tensors, args->num_scalars,
                     args->block_idx, args->block_num);
}

static float *at(const simpler_tensor *t, int64_t i) { return (float *)simpler_tensor_at(t, i); }

/* Spin a while, so that tasks overlap. */
static void spin(uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        atomic_fetch_add_explicit(&spin_sink, 1, memory_order_relaxed);
        simpler_cpu_relax();
    }
}

/* t0 (INOUT) += 1 */
static void inc(const simpler_kernel_args *args, uint32_t type)
{
    kernel_enter(args, type, 1, 0, "inc");
    const simpler_tensor *t = &args->tensors[0];
    for (int64_t i = 0, n = simpler_tensor_numel(t); i < n; i++)
        *at(t, i) += 1.0f;
}

/* t1 (OUTPUT) = 2 * t0 (INPUT) */
static void dbl(const simpler_kernel_args *args, uint32_t type)
{
    kernel_enter(args, type, 2, 0, "double");
    const simpler_tensor *x = &args->tensors[0], *y = &args->tensors[1];
    int64_t n = simpler_tensor_numel(x);
    if (simpler_tensor_numel(y) != n) {
        kernel_error("double: %" PRId64 " in, %" PRId64 " out", n, simpler_tensor_numel(y));
        return;
    }
    for (int64_t i = 0; i < n; i++)
        *at(y, i) = 2.0f * *at(x, i);
}

/* t1 (OUTPUT_EXISTING) = t0 (INPUT) + 1 */
static void add1(const simpler_kernel_args *args, uint32_t type)
{
    kernel_enter(args, type, 2, 0, "add1");
    const simpler_tensor *x = &args->tensors[0], *y = &args->tensors[1];
    int64_t n = simpler_tensor_numel(x);
    if (simpler_tensor_numel(y) != n) {
        kernel_error("add1: %" PRId64 " in, %" PRId64 " out", n, simpler_tensor_numel(y));
        return;
    }
    for (int64_t i = 0; i < n; i++)
        *at(y, i) = *at(x, i) + 1.0f;
}

/* Spin scalar[0] rounds, then t1 (OUTPUT_EXISTING) = t0 (INPUT). */
static void slow_copy(const simpler_kernel_args *args, uint32_t type)
{
    kernel_enter(args, type, 2, 1, "slow_copy");
    spin((uint32_t)args->scalars[0]);
    const simpler_tensor *x = &args->tensors[0], *y = &args->tensors[1];
    int64_t n = simpler_tensor_numel(x);
    if (simpler_tensor_numel(y) != n) {
        kernel_error("slow_copy: %" PRId64 " in, %" PRId64 " out", n, simpler_tensor_numel(y));
        return;
    }
    for (int64_t i = 0; i < n; i++)
        *at(y, i) = *at(x, i);
}

/* Spin scalar[1] rounds, then t0 (OUTPUT_EXISTING) = scalar[0] (a double). */
static void fill(const simpler_kernel_args *args, uint32_t type)
{
    kernel_enter(args, type, 1, 2, "fill");
    spin((uint32_t)args->scalars[1]);
    float v = (float)simpler_scalar_f64(args->scalars[0]);
    const simpler_tensor *t = &args->tensors[0];
    for (int64_t i = 0, n = simpler_tensor_numel(t); i < n; i++)
        *at(t, i) = v;
}

/* t3 (OUTPUT_EXISTING) = max(t0, t1, t2) + 1, all single elements: a
 * stencil cell from its neighbours in the row before. */
static void next(const simpler_kernel_args *args, uint32_t type)
{
    kernel_enter(args, type, 4, 0, "next");
    float m = *at(&args->tensors[0], 0);
    for (uint32_t i = 1; i < 3; i++)
        if (*at(&args->tensors[i], 0) > m)
            m = *at(&args->tensors[i], 0);
    *at(&args->tensors[3], 0) = m + 1.0f;
}

/* fill, once the orchestration has opened the gate (fan_gate), or after
 * ten seconds: a producer still running when all its consumers are
 * submitted. */
static _Atomic uint32_t fan_gate;

static void hold_aiv(const simpler_kernel_args *args)
{
    uint64_t give_up = simpler_now_ns() + 10000000000ull;
    while (!atomic_load(&fan_gate) && simpler_now_ns() < give_up)
        sched_yield();
    fill(args, SIMPLER_CORE_AIV);
}

#define PAIR(name)                                                            \
    static void name##_aic(const simpler_kernel_args *a) { name(a, SIMPLER_CORE_AIC); } \
    static void name##_aiv(const simpler_kernel_args *a) { name(a, SIMPLER_CORE_AIV); }
PAIR(inc)
PAIR(dbl)
PAIR(add1)
PAIR(slow_copy)
PAIR(fill)
PAIR(next)

/* func ids: deliberately not the table indices. */
enum {
    F_INC_AIC = 3, F_INC_AIV = 5, F_DBL_AIC = 7, F_DBL_AIV = 9, F_ADD1_AIC = 11, F_ADD1_AIV = 13,
    F_SLOW_AIC = 15, F_SLOW_AIV = 17, F_FILL_AIC = 19, F_FILL_AIV = 21, F_NEXT_AIC = 23, F_NEXT_AIV = 25,
    F_HOLD_AIV = 27, MAX_FUNC_ID = 29
};

static uint64_t scalar_f64(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* ---- the registration: kernel table, func index, record ------------------ */

static tmr_kernel kernel_table[13];
static int32_t func_index[MAX_FUNC_ID + 1];
static tmr_callable callable;

static void add_kernel(uint32_t i, simpler_kernel_fn fn, uint32_t func_id, uint32_t type, uint32_t nt,
                       uint32_t ns, const uint8_t *tags, const char *name)
{
    tmr_kernel *k = &kernel_table[i];
    memset(k, 0, sizeof *k);
    k->addr = (uint64_t)(uintptr_t)fn;
    k->func_id = func_id;
    k->core_type = type;
    k->num_tensors = nt;
    k->num_scalars = ns;
    memcpy(k->tags, tags, nt);
    snprintf(k->name, sizeof k->name, "%s", name);
    func_index[func_id] = (int32_t)i;
}

static void register_callable(void)
{
    static const uint8_t t_inout[] = {SIMPLER_INOUT};
    static const uint8_t t_in_out[] = {SIMPLER_INPUT, SIMPLER_OUTPUT};
    static const uint8_t t_in_outx[] = {SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    static const uint8_t t_outx[] = {SIMPLER_OUTPUT_EXISTING};
    static const uint8_t t_in3_outx[] = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    for (uint32_t f = 0; f <= MAX_FUNC_ID; f++)
        func_index[f] = -1;
    /* Table order differs from func id order. */
    add_kernel(0, fill_aiv, F_FILL_AIV, SIMPLER_CORE_AIV, 1, 2, t_outx, "fill_aiv");
    add_kernel(1, fill_aic, F_FILL_AIC, SIMPLER_CORE_AIC, 1, 2, t_outx, "fill_aic");
    add_kernel(2, inc_aic, F_INC_AIC, SIMPLER_CORE_AIC, 1, 0, t_inout, "inc_aic");
    add_kernel(3, inc_aiv, F_INC_AIV, SIMPLER_CORE_AIV, 1, 0, t_inout, "inc_aiv");
    add_kernel(4, dbl_aic, F_DBL_AIC, SIMPLER_CORE_AIC, 2, 0, t_in_out, "double_aic");
    add_kernel(5, dbl_aiv, F_DBL_AIV, SIMPLER_CORE_AIV, 2, 0, t_in_out, "double_aiv");
    add_kernel(6, add1_aic, F_ADD1_AIC, SIMPLER_CORE_AIC, 2, 0, t_in_outx, "add1_aic");
    add_kernel(7, add1_aiv, F_ADD1_AIV, SIMPLER_CORE_AIV, 2, 0, t_in_outx, "add1_aiv");
    add_kernel(8, slow_copy_aic, F_SLOW_AIC, SIMPLER_CORE_AIC, 2, 1, t_in_outx, "slow_copy_aic");
    add_kernel(9, slow_copy_aiv, F_SLOW_AIV, SIMPLER_CORE_AIV, 2, 1, t_in_outx, "slow_copy_aiv");
    add_kernel(10, next_aic, F_NEXT_AIC, SIMPLER_CORE_AIC, 4, 0, t_in3_outx, "next_aic");
    add_kernel(11, next_aiv, F_NEXT_AIV, SIMPLER_CORE_AIV, 4, 0, t_in3_outx, "next_aiv");
    add_kernel(12, hold_aiv, F_HOLD_AIV, SIMPLER_CORE_AIV, 1, 2, t_outx, "hold_aiv");
    memset(&callable, 0, sizeof callable);
    snprintf(callable.orch_entry, sizeof callable.orch_entry, "test_orchestration");
    callable.kernels_addr = (uint64_t)(uintptr_t)kernel_table;
    callable.func_index_addr = (uint64_t)(uintptr_t)func_index;
    callable.num_kernels = sizeof kernel_table / sizeof *kernel_table;
    callable.max_func_id = MAX_FUNC_ID;
}

/* ---- buffers and the run block ------------------------------------------- */

static float *new_floats(uint64_t n)
{
    float *p = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
    if (!p) {
        perror("aligned_alloc");
        exit(2);
    }
    memset(p, 0, n * sizeof(float));
    return p;
}

static simpler_tensor tensor_of(float *p, uint32_t ndim, const int64_t *shape)
{
    simpler_tensor t = simpler_tensor_new(SIMPLER_DTYPE_FLOAT32, ndim, shape);
    t.addr = (uint64_t)(uintptr_t)p;
    return t;
}

/* The run block as tmr_run_graph lays it out (tmr_layout): header,
 * arguments, task rings, heap rings, dependency nodes, ready queues. Task
 * slots, nodes and the heap get garbage, as fresh GM would hold. */
static tmr_run *build_run(const simpler_tensor *tensors, uint32_t num_tensors, uint32_t task_ring,
                          uint32_t dep_pool, uint64_t heap_ring)
{
    tmr_run hdr;
    memset(&hdr, 0, sizeof hdr);
    tmr_sizes sizes = {task_ring, dep_pool, (heap_ring + 63) & ~63ull};
    uint64_t tensors_off, scalars_off;
    uint64_t total = tmr_align64(tmr_layout(&hdr, &sizes, num_tensors, 0, &tensors_off, &scalars_off));
    uint8_t *block = aligned_alloc(64, total);
    if (!block) {
        perror("aligned_alloc");
        exit(2);
    }
    memset(block, 0xA5, total);
    hdr.callable_addr = (uint64_t)(uintptr_t)&callable;
    hdr.tensors_addr = (uint64_t)(uintptr_t)(block + tensors_off);
    hdr.scalars_addr = (uint64_t)(uintptr_t)(block + scalars_off);
    hdr.num_tensors = num_tensors;
    hdr.num_scalars = 0;
    atomic_init(&hdr.dep_free, TMR_NONE);
    memcpy(block, &hdr, sizeof hdr);
    if (num_tensors)
        memcpy(block + tensors_off, tensors, num_tensors * sizeof(simpler_tensor));
    tmr_queue_init(&hdr, (uint64_t *)(block + hdr.queue_off));
    return (tmr_run *)block;
}

/* ---- launching -------------------------------------------------------- */

/* What the orchestration of a run saw; written by the orchestrator thread,
 * read by main after the join. */
typedef struct orch_result {
    int rc;                  /* what the orchestration returned */
    uint32_t submitted;      /* submits that returned SIMPLER_OK */
    int failed_rc;           /* the first failing submit's code */
    uint32_t failed_at;      /* its index (UINT32_MAX: none failed) */
    int scope_rc;            /* first failing scope_begin/scope_end */
} orch_result;

static orch_result result;

static void result_reset(void)
{
    result = (orch_result){0, 0, 0, UINT32_MAX, 0};
}

/* Submit and record the outcome; returns the submit's code. */
static int submit(const simpler_orch_api *api, simpler_orch *o, uint32_t func, uint32_t type,
                  simpler_tensor *tensors, const uint32_t *tags, uint32_t nt, const uint64_t *scalars,
                  uint32_t ns)
{
    int rc = simpler_submit(api, o, func, type, tensors, tags, nt, scalars, ns, NULL);
    if (rc == SIMPLER_OK)
        result.submitted++;
    else if (result.failed_at == UINT32_MAX) {
        result.failed_at = result.submitted;
        result.failed_rc = rc;
    }
    return rc;
}

static int scope(int rc)
{
    if (rc && !result.scope_rc)
        result.scope_rc = rc;
    return rc;
}

/* One launch on threads scheduler threads + the orchestrator and block_dim
 * clusters. Every thread's return code must be the launch status, which
 * is returned; the general checks of any launch are made here. */
static int launch_run(const char *name, tmr_run *run, simpler_orch_fn fn, uint32_t threads,
                      uint32_t block_dim)
{
    callable.orch_fn = (uint64_t)(uintptr_t)fn;
    result_reset();
    atomic_store(&kernel_errors, 0);
    atomic_store(&kernel_runs, 0);

    uint32_t seq_before[NUM_CORES];
    begin_launch(&(simpler_launch_params){.runtime = SIMPLER_RUNTIME_TMR,
                                          .block_dim = block_dim,
                                          .aicpu_thread_num = threads,
                                          .scheduler_timeout_ms = NORMAL_TIMEOUT_MS,
                                          .extra_threads = 1,
                                          .image_addr = (uint64_t)(uintptr_t)run},
                 seq_before);

    uint32_t n = threads + 1;
    int rcs[SIMPLER_MAX_AICPU_THREADS + 1];
    run_aicpu_threads(n, rcs, LAUNCH_ALARM_S);

    int status = atomic_load(&launch.status);
    uint64_t done = atomic_load(&launch.tasks_completed), submitted = atomic_load(&run->submitted);
    uint32_t fails = (uint32_t)check_failed;
    for (uint32_t t = 0; t < n; t++)
        CHECKF(rcs[t] == status, "%s thread %u returned %d, launch status %d",
               t < threads ? "scheduler" : "orchestrator", t, rcs[t], status);
    /* Whatever the outcome, everything published ran, exactly once, and
     * nothing is left on a core. */
    CHECKF(done == submitted, "tasks_completed %" PRIu64 ", submitted %" PRIu64, done, submitted);
    CHECKF(submitted == result.submitted, "run->submitted %" PRIu64 ", the orchestration's submits %u", submitted,
           result.submitted);
    CHECKF(atomic_load(&kernel_runs) == submitted, "%" PRIu64 " kernel runs for %" PRIu64 " tasks",
           (uint64_t)atomic_load(&kernel_runs), submitted);
    CHECK(atomic_load(&run->submit_done) == 1);
    uint32_t busy = busy_cores();
    CHECKF(busy == 0, "%u cores not idle after all threads returned", busy);
    uint64_t posts = 0;
    for (uint32_t c = 0; c < NUM_CORES; c++) {
        uint32_t d = atomic_load(&mailboxes[c].door.seq) - seq_before[c];
        posts += d;
        CHECKF(c < launch.num_cores || d == 0, "core %u of %u was posted to", c, launch.num_cores);
    }
    /* one post a task, or one for a run of several (each run once: kernel_runs) */
    CHECKF(posts <= submitted && (posts > 0) == (submitted > 0), "%" PRIu64 " posts for %" PRIu64 " tasks", posts,
           submitted);
    for (uint32_t type = 0; type < 2; type++)
        CHECKF(atomic_load(&run->queue_head[type]) == atomic_load(&run->queue_tail[type]),
               "ready queue %u: head %" PRIu64 " tail %" PRIu64, type, (uint64_t)atomic_load(&run->queue_head[type]),
               (uint64_t)atomic_load(&run->queue_tail[type]));
    CHECKF(atomic_load(&kernel_errors) == 0, "%u kernel errors", atomic_load(&kernel_errors));
    if ((uint32_t)check_failed != fails)
        fprintf(stderr, "  ^ in %s, aicpu_thread_num %u, block_dim %u: status %d: %s\n", name, threads, block_dim,
                status, launch.message);
    /* After a broken launch cores may still use the block. */
    if (busy)
        CHECKF(cores_idle(10000000000ull), "cores still busy 10 s after the launch");
    return status;
}

static int check_ok(const char *name, tmr_run *run, int status, uint32_t expect_tasks)
{
    uint32_t fails = (uint32_t)check_failed;
    CHECKF(status == SIMPLER_OK, "%s: status %d: %s", name, status, launch.message);
    CHECKF(launch.message[0] == '\0', "%s: message on success: %s", name, launch.message);
    CHECKF(result.rc == 0 && result.failed_at == UINT32_MAX && result.scope_rc == 0,
           "%s: orchestration returned %d, submit %u failed with %d, scope call failed with %d", name, result.rc,
           result.failed_at, result.failed_rc, result.scope_rc);
    CHECKF(atomic_load(&run->submitted) == expect_tasks, "%s: %" PRIu64 " submitted, expected %u", name,
           (uint64_t)atomic_load(&run->submitted), expect_tasks);
    CHECKF(atomic_load(&launch.tasks_completed) == atomic_load(&run->submitted), "%s: %" PRIu64 " of %" PRIu64
           " completed", name, (uint64_t)atomic_load(&launch.tasks_completed), (uint64_t)atomic_load(&run->submitted));
    return (uint32_t)check_failed == fails;
}

/* ---- scenario 1: a long INOUT chain through a small task ring --------------- */

static uint32_t chain_len; /* scenario 1 */
static uint32_t chain_n;   /* the run's */
#define CHAIN_ELEMS 16

static int orch_chain(const simpler_orch_api *api, simpler_orch *o, const simpler_orch_args *args)
{
    static const uint32_t tags[1] = {SIMPLER_INOUT};
    for (uint32_t i = 0; i < chain_n; i++) {
        simpler_tensor t = args->tensors[0];
        int rc = i % 2 ? submit(api, o, F_INC_AIC, SIMPLER_CORE_AIC, &t, tags, 1, NULL, 0)
                       : submit(api, o, F_INC_AIV, SIMPLER_CORE_AIV, &t, tags, 1, NULL, 0);
        if (rc)
            return result.rc = rc;
    }
    return result.rc = 0;
}

static void chain_run(const char *name, uint32_t threads, uint32_t block_dim, uint32_t ring, uint32_t n)
{
    chain_n = n;
    float *buf = new_floats(CHAIN_ELEMS);
    int64_t shape[1] = {CHAIN_ELEMS};
    simpler_tensor t = tensor_of(buf, 1, shape);
    tmr_run *run = build_run(&t, 1, ring, 1024, 4096);
    int status = launch_run(name, run, orch_chain, threads, block_dim);
    if (check_ok(name, run, status, n)) {
        uint32_t bad = 0;
        for (uint32_t i = 0; i < CHAIN_ELEMS; i++)
            if (buf[i] != (float)n && bad++ < 3)
                fprintf(stderr, "    %s: element %u is %.1f, expected %u\n", name, i, buf[i], n);
        CHECKF(bad == 0, "chain: %u elements wrong", bad);
        /* Back-pressure: the ring was reused many times. */
        CHECKF(run->peak_live_tasks <= ring, "chain: peak live tasks %" PRIu64 " of %u", run->peak_live_tasks,
               ring);
        CHECKF(run->waits > 0, "chain: the orchestrator never waited for the task ring");
    }
    free(run);
    free(buf);
}

static void case_chain(uint32_t threads, uint32_t block_dim)
{
    chain_run("chain", threads, block_dim, 64, chain_len);
}

/* The same chain through a ring of 2 slots: every slot is reused right
 * after its task finished, while other schedulers may still be looking at
 * the ready-queue entry that named it. */
static void case_tight(uint32_t threads, uint32_t block_dim)
{
    chain_run("tight-chain", threads, block_dim, 2, chain_len / 3 > 2 ? chain_len / 3 : 2);
}

/* ---- lanes: interleaved INOUT chains, many tasks ready at once -------------- */

#define LANES 8
static uint32_t lane_len;

/* Task k increments row k % LANES: LANES independent chains side by side,
 * so several tasks are ready at once and the schedulers compete for them
 * while the 16-slot ring turns over. */
static int orch_lanes(const simpler_orch_api *api, simpler_orch *o, const simpler_orch_args *args)
{
    static const uint32_t tags[1] = {SIMPLER_INOUT};
    for (uint32_t k = 0; k < lane_len * LANES; k++) {
        uint32_t lane = k % LANES;
        simpler_tensor t = simpler_view2d(&args->tensors[0], lane, 0, 1, CHAIN_ELEMS);
        int rc = (lane + k / LANES) % 2 ? submit(api, o, F_INC_AIC, SIMPLER_CORE_AIC, &t, tags, 1, NULL, 0)
                                        : submit(api, o, F_INC_AIV, SIMPLER_CORE_AIV, &t, tags, 1, NULL, 0);
        if (rc)
            return result.rc = rc;
    }
    return result.rc = 0;
}

/* A run of fn over a rows x CHAIN_ELEMS buffer whose tasks each
 * increment one row, each row times times: every element must end at
 * times, after rows x times tasks. */
static void run_increments(const char *name, simpler_orch_fn fn, uint32_t rows, uint32_t times,
                           uint32_t task_ring, uint32_t threads, uint32_t block_dim)
{
    float *buf = new_floats(rows * CHAIN_ELEMS);
    int64_t shape[2] = {rows, CHAIN_ELEMS};
    simpler_tensor t = tensor_of(buf, 2, shape);
    tmr_run *run = build_run(&t, 1, task_ring, 4 * task_ring > 1024 ? 4 * task_ring : 1024, 4096);
    int status = launch_run(name, run, fn, threads, block_dim);
    if (check_ok(name, run, status, rows * times)) {
        uint32_t bad = 0;
        for (uint32_t i = 0; i < rows * CHAIN_ELEMS; i++)
            if (buf[i] != (float)times && bad++ < 3)
                fprintf(stderr, "    %s: element %u is %.1f, expected %u\n", name, i, buf[i], times);
        CHECKF(bad == 0, "%s: %u elements wrong", name, bad);
    }
    free(run);
    free(buf);
}

static void case_lanes(uint32_t threads, uint32_t block_dim)
{
    run_increments("lanes", orch_lanes, LANES, lane_len, 16, threads, block_dim);
}

/* ---- chain-runs: followers posted as runs ------------------------------------ */

/* A chain of one kernel on one core type, with the orchestrator free to
 * run ahead through a ring of 256 slots: the scheduler posts followers
 * as runs, each task the only successor of the one before, read straight
 * from the ring (scheduler.c, follow_run); every increment must still
 * land once, in order. */
static int orch_one_kernel_chain(const simpler_orch_api *api, simpler_orch *o, const simpler_orch_args *args)
{
    static const uint32_t tags[1] = {SIMPLER_INOUT};
    for (uint32_t i = 0; i < chain_n; i++) {
        simpler_tensor t = args->tensors[0];
        int rc = submit(api, o, F_INC_AIV, SIMPLER_CORE_AIV, &t, tags, 1, NULL, 0);
        if (rc)
            return result.rc = rc;
    }
    return result.rc = 0;
}

/* Whether followers formed runs is checked by run_case over all combos:
 * on a loaded machine one run may see every follower arrive late. */
static void case_chain_runs(uint32_t threads, uint32_t block_dim)
{
    run_increments("chain-runs", orch_one_kernel_chain, 1, chain_n = chain_len, 256, threads, block_dim);
}

/* ---- independent: many tasks ready at once, taken as runs -------------------- */

#define INDEP_ROWS 512
static uint32_t indep_rounds;

/* Round r increments every row once: within a round no task depends on
 * another, so whole runs of them are ready at once and the schedulers take
 * them as runs (sched_ops.take_run), competing for the queue head. */
static int orch_independent(const simpler_orch_api *api, simpler_orch *o, const simpler_orch_args *args)
{
    static const uint32_t tags[1] = {SIMPLER_INOUT};
    for (uint32_t k = 0; k < indep_rounds * INDEP_ROWS; k++) {
        simpler_tensor t = simpler_view2d(&args->tensors[0], k % INDEP_ROWS, 0, 1, CHAIN_ELEMS);
        int rc = k % 7 == 3 ? submit(api, o, F_INC_AIC, SIMPLER_CORE_AIC, &t, tags, 1, NULL, 0)
                            : submit(api, o, F_INC_AIV, SIMPLER_CORE_AIV, &t, tags, 1, NULL, 0);
        if (rc)
            return result.rc = rc;
    }
    return result.rc = 0;
}

/* Consecutive slots of a ring, one lap: posted as runs, read from it;
 * run_case checks, over all combos, that some task ran inside a run. */
static void case_independent(uint32_t threads, uint32_t block_dim)
{
    run_increments("independent", orch_independent, INDEP_ROWS, indep_rounds, 1024, threads, block_dim);
}

/* ---- fan: one producer's many consumers, released at once ------------------ */

#define FAN_WIDTH 256

/* Row 0 is filled with 1 by a producer held until every consumer is
 * submitted, so its finish releases them all at once; consumer k sets
 * row k to row 0 + 1. The finish must queue them in the order they were
 * submitted, as runs form only of tasks queued in ring order
 * (scheduler.c, reverse_fanout): run_case checks that some ran inside a
 * run. */
static int orch_fan(const simpler_orch_api *api, simpler_orch *o, const simpler_orch_args *args)
{
    static const uint32_t hold_tags[1] = {SIMPLER_OUTPUT_EXISTING};
    static const uint32_t add1_tags[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    const simpler_tensor *x = &args->tensors[0];
    simpler_tensor root = simpler_view2d(x, 0, 0, 1, CHAIN_ELEMS);
    uint64_t sc[2] = {scalar_f64(1.0), 0};
    int rc = submit(api, o, F_HOLD_AIV, SIMPLER_CORE_AIV, &root, hold_tags, 1, sc, 2);
    for (uint32_t k = 1; k <= FAN_WIDTH && !rc; k++) {
        simpler_tensor t[2] = {root, simpler_view2d(x, k, 0, 1, CHAIN_ELEMS)};
        rc = submit(api, o, F_ADD1_AIV, SIMPLER_CORE_AIV, t, add1_tags, 2, NULL, 0);
    }
    atomic_store(&fan_gate, 1);
    return result.rc = rc;
}

static void case_fan(uint32_t threads, uint32_t block_dim)
{
    float *buf = new_floats((FAN_WIDTH + 1) * CHAIN_ELEMS);
    int64_t shape[2] = {FAN_WIDTH + 1, CHAIN_ELEMS};
    simpler_tensor t = tensor_of(buf, 2, shape);
    tmr_run *run = build_run(&t, 1, 512, 2048, 4096);
    atomic_store(&fan_gate, 0);
    int status = launch_run("fan", run, orch_fan, threads, block_dim);
    if (check_ok("fan", run, status, FAN_WIDTH + 1)) {
        uint32_t bad = 0;
        for (uint32_t i = 0; i < (FAN_WIDTH + 1) * CHAIN_ELEMS; i++)
            if (buf[i] != (i < CHAIN_ELEMS ? 1.0f : 2.0f) && bad++ < 3)
                fprintf(stderr, "    fan: element %u is %.1f\n", i, buf[i]);
        CHECKF(bad == 0, "fan: %u elements wrong", bad);
    }
    free(run);
    free(buf);
}

/* ---- stencil: every task waits for its neighbours in the row before -------- */

#define STENCIL_WIDTH 4
static uint32_t stencil_rows;

/* Row 0 is filled with 1; cell (r, j) = max of (r-1, j-1..j+1) + 1 = r + 1.
 * Mostly AIV, as Task-Bench's stencil runs on one kind of core, with an
 * AIC cell now and then for followers of another core type. With
 * stencil_scoped, odd rows sit in a nested scope: producers and their
 * followers then live in different task rings, which turn over at
 * different times. */
static int stencil_scoped;

static int orch_stencil(const simpler_orch_api *api, simpler_orch *o, const simpler_orch_args *args)
{
    static const uint32_t fill_tags[1] = {SIMPLER_OUTPUT_EXISTING};
    static const uint32_t next_tags[4] = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    const simpler_tensor *x = &args->tensors[0];
    int rc;
    for (uint32_t j = 0; j < STENCIL_WIDTH; j++) {
        simpler_tensor t = simpler_view2d(x, 0, j, 1, 1);
        uint64_t sc[2] = {scalar_f64(1.0), 0};
        if ((rc = submit(api, o, F_FILL_AIV, SIMPLER_CORE_AIV, &t, fill_tags, 1, sc, 2)))
            return result.rc = rc;
    }
    for (uint32_t r = 1; r < stencil_rows; r++) {
        int nested = stencil_scoped && r % 2;
        if (nested && (rc = scope(api->scope_begin(o))))
            return result.rc = rc;
        for (uint32_t j = 0; j < STENCIL_WIDTH; j++) {
            uint32_t lo = j ? j - 1 : 0, hi = j + 1 < STENCIL_WIDTH ? j + 1 : j;
            simpler_tensor t[4] = {simpler_view2d(x, r - 1, lo, 1, 1), simpler_view2d(x, r - 1, j, 1, 1),
                                   simpler_view2d(x, r - 1, hi, 1, 1), simpler_view2d(x, r, j, 1, 1)};
            int aic = (r * STENCIL_WIDTH + j) % 7 == 0;
            if ((rc = submit(api, o, aic ? F_NEXT_AIC : F_NEXT_AIV, aic ? SIMPLER_CORE_AIC : SIMPLER_CORE_AIV, t,
                             next_tags, 4, NULL, 0)))
                return result.rc = rc;
        }
        if (nested && (rc = scope(api->scope_end(o))))
            return result.rc = rc;
    }
    return result.rc = 0;
}

static void stencil_run(const char *name, uint32_t threads, uint32_t block_dim, int scoped, uint32_t ring)
{
    float *buf = new_floats((uint64_t)stencil_rows * STENCIL_WIDTH);
    int64_t shape[2] = {stencil_rows, STENCIL_WIDTH};
    simpler_tensor t = tensor_of(buf, 2, shape);
    tmr_run *run = build_run(&t, 1, ring, 1024, 4096);
    stencil_scoped = scoped;
    int status = launch_run(name, run, orch_stencil, threads, block_dim);
    if (check_ok(name, run, status, stencil_rows * STENCIL_WIDTH)) {
        /* Every producer's finish reached its consumer, in the slot the
         * consumer still had: no count left over, none wrapped below 0. */
        tmr_task *tasks = (tmr_task *)((uint8_t *)run + run->tasks_off);
        uint32_t bad_pending = 0;
        uint64_t used = atomic_load(&run->submitted); /* slots never used hold build_run's poison */
        for (uint64_t i = 0; i < (uint64_t)TMR_DEPTHS * run->sizes.task_ring; i++)
            if (atomic_load(&tasks[i].seq) - 1 < used && (atomic_load(&tasks[i].pending) & ~0x80000000u) != 0 &&
                bad_pending++ < 3)
                fprintf(stderr, "    %s: slot %" PRIu64 " (task %" PRIu64 ") pending %#x\n", name, i,
                        (uint64_t)atomic_load(&tasks[i].seq) - 1, atomic_load(&tasks[i].pending));
        CHECKF(bad_pending == 0, "%s: %u task slots with pending left over", name, bad_pending);
        uint32_t bad = 0;
        for (uint32_t r = 0; r < stencil_rows; r++)
            for (uint32_t j = 0; j < STENCIL_WIDTH; j++)
                if (buf[r * STENCIL_WIDTH + j] != (float)(r + 1) && bad++ < 3)
                    fprintf(stderr, "    stencil: cell (%u, %u) is %.1f, expected %u\n", r, j,
                            buf[r * STENCIL_WIDTH + j], r + 1);
        CHECKF(bad == 0, "stencil: %u cells wrong", bad);
    }
    free(run);
    free(buf);
}

static void case_stencil(uint32_t threads, uint32_t block_dim)
{
    stencil_run("stencil", threads, block_dim, 0, 64);
    stencil_run("scoped-stencil", threads, block_dim, 1, 8);
}

/* ---- scenario 2: streaming with scopes and runtime-allocated OUTPUTs -------- */

static uint32_t stream_iters;
#define STREAM_COLS 256

static int orch_stream(const simpler_orch_api *api, simpler_orch *o, const simpler_orch_args *args)
{
    static const uint32_t t1_tags[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT};
    static const uint32_t t2_tags[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    const simpler_tensor *x = &args->tensors[0], *out = &args->tensors[1];
    int64_t shape[1] = {STREAM_COLS};
    int rc;
    for (uint32_t i = 0; i < stream_iters; i++) {
        if ((rc = scope(api->scope_begin(o))))
            return result.rc = rc;
        simpler_tensor t1[2] = {simpler_view2d(x, i, 0, 1, STREAM_COLS),
                                simpler_tensor_new(SIMPLER_DTYPE_FLOAT32, 1, shape)};
        rc = i % 2 ? submit(api, o, F_DBL_AIC, SIMPLER_CORE_AIC, t1, t1_tags, 2, NULL, 0)
                   : submit(api, o, F_DBL_AIV, SIMPLER_CORE_AIV, t1, t1_tags, 2, NULL, 0);
        if (rc)
            return result.rc = rc;
        if (t1[1].addr == 0)
            return result.rc = api->fail(o, "stream: OUTPUT got no address");
        /* Every third iteration the consumer sits in a nested scope. */
        int nested = i % 3 == 0;
        if (nested && (rc = scope(api->scope_begin(o))))
            return result.rc = rc;
        simpler_tensor t2[2] = {t1[1], simpler_view2d(out, i, 0, 1, STREAM_COLS)};
        rc = i % 2 ? submit(api, o, F_ADD1_AIV, SIMPLER_CORE_AIV, t2, t2_tags, 2, NULL, 0)
                   : submit(api, o, F_ADD1_AIC, SIMPLER_CORE_AIC, t2, t2_tags, 2, NULL, 0);
        if (rc)
            return result.rc = rc;
        if (nested && (rc = scope(api->scope_end(o))))
            return result.rc = rc;
        if ((rc = scope(api->scope_end(o))))
            return result.rc = rc;
    }
    return result.rc = 0;
}

static void case_stream(uint32_t threads, uint32_t block_dim)
{
    uint64_t n = (uint64_t)stream_iters * STREAM_COLS;
    float *x = new_floats(n), *out = new_floats(n);
    for (uint64_t i = 0; i < n; i++) {
        x[i] = (float)(i % 1000);
        out[i] = -1.0f;
    }
    int64_t shape[2] = {stream_iters, STREAM_COLS};
    simpler_tensor t[2] = {tensor_of(x, 2, shape), tensor_of(out, 2, shape)};
    tmr_run *run = build_run(t, 2, 16, 32, 16 << 10);
    int status = launch_run("stream", run, orch_stream, threads, block_dim);
    if (check_ok("stream", run, status, 2 * stream_iters)) {
        uint32_t bad = 0;
        for (uint64_t i = 0; i < n; i++)
            if (out[i] != 2.0f * (float)(i % 1000) + 1.0f && bad++ < 3)
                fprintf(stderr, "    stream: out[%" PRIu64 "] = %.1f, expected %.1f\n", i, out[i],
                        2.0f * (float)(i % 1000) + 1.0f);
        CHECKF(bad == 0, "stream: %u elements wrong", bad);
        /* Slots, heap and nodes were reused many times over. */
        CHECKF(run->peak_live_tasks <= 16, "stream: peak live tasks %" PRIu64, run->peak_live_tasks);
        CHECKF(run->peak_heap_bytes <= 16 << 10, "stream: peak heap bytes %" PRIu64, run->peak_heap_bytes);
    }
    free(run);
    free(x);
    free(out);
}

/* ---- scenario 3: write-after-read ------------------------------------------ */

#define WAR_READERS 12
#define WAR_ROUNDS 6
#define WAR_ELEMS 64
#define WAR_WINDOW 16
#define WAR_SPIN 3000

/* Round r: WAR_READERS slow readers copy overlapping windows of R (which
 * holds r + 1), then one writer fills all of R with r + 2. */
static int orch_war(const simpler_orch_api *api, simpler_orch *o, const simpler_orch_args *args)
{
    static const uint32_t rtags[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    static const uint32_t wtags[1] = {SIMPLER_OUTPUT_EXISTING};
    const simpler_tensor *r = &args->tensors[0], *copies = &args->tensors[1];
    int rc;
    for (uint32_t round = 0; round < WAR_ROUNDS; round++) {
        for (uint32_t k = 0; k < WAR_READERS; k++) {
            uint64_t sc[1] = {WAR_SPIN};
            simpler_tensor t[2] = {simpler_view2d(r, 0, k * 4, 1, WAR_WINDOW),
                                   simpler_view2d(copies, round * WAR_READERS + k, 0, 1, WAR_WINDOW)};
            rc = k % 2 ? submit(api, o, F_SLOW_AIC, SIMPLER_CORE_AIC, t, rtags, 2, sc, 1)
                       : submit(api, o, F_SLOW_AIV, SIMPLER_CORE_AIV, t, rtags, 2, sc, 1);
            if (rc)
                return result.rc = rc;
        }
        uint64_t sc[2] = {scalar_f64(round + 2.0), 0};
        simpler_tensor w = *r;
        rc = round % 2 ? submit(api, o, F_FILL_AIC, SIMPLER_CORE_AIC, &w, wtags, 1, sc, 2)
                       : submit(api, o, F_FILL_AIV, SIMPLER_CORE_AIV, &w, wtags, 1, sc, 2);
        if (rc)
            return result.rc = rc;
    }
    return result.rc = 0;
}

static void case_war(uint32_t threads, uint32_t block_dim)
{
    float *r = new_floats(WAR_ELEMS), *copies = new_floats(WAR_ROUNDS * WAR_READERS * WAR_WINDOW);
    for (uint32_t i = 0; i < WAR_ELEMS; i++)
        r[i] = 1.0f;
    int64_t rshape[2] = {1, WAR_ELEMS}, cshape[2] = {WAR_ROUNDS * WAR_READERS, WAR_WINDOW};
    simpler_tensor t[2] = {tensor_of(r, 2, rshape), tensor_of(copies, 2, cshape)};
    tmr_run *run = build_run(t, 2, 64, 1024, 4096);
    int status = launch_run("war", run, orch_war, threads, block_dim);
    if (check_ok("war", run, status, WAR_ROUNDS * (WAR_READERS + 1))) {
        uint32_t bad = 0;
        for (uint32_t round = 0; round < WAR_ROUNDS; round++)
            for (uint32_t k = 0; k < WAR_READERS; k++)
                for (uint32_t j = 0; j < WAR_WINDOW; j++) {
                    float v = copies[(round * WAR_READERS + k) * WAR_WINDOW + j];
                    if (v != round + 1.0f && bad++ < 3)
                        fprintf(stderr, "    war: round %u reader %u saw %.1f, expected %.1f\n", round, k, v,
                                round + 1.0f);
                }
        CHECKF(bad == 0, "war: %u copied elements wrong", bad);
        bad = 0;
        for (uint32_t i = 0; i < WAR_ELEMS; i++)
            bad += r[i] != WAR_ROUNDS + 1.0f;
        CHECKF(bad == 0, "war: %u elements of R not %.1f at the end", bad, WAR_ROUNDS + 1.0);
    }
    free(run);
    free(r);
    free(copies);
}

/* ---- scenario 4: a scope that outgrows the task ring ----------------------- */

#define DEADLOCK_TASKS 20
#define DEADLOCK_RING 8
#define DEADLOCK_SPIN 20000

static int orch_deadlock(const simpler_orch_api *api, simpler_orch *o, const simpler_orch_args *args)
{
    static const uint32_t tags[1] = {SIMPLER_OUTPUT_EXISTING};
    int rc;
    if ((rc = scope(api->scope_begin(o))))
        return result.rc = rc;
    for (uint32_t k = 0; k < DEADLOCK_TASKS; k++) {
        uint64_t sc[2] = {scalar_f64(k + 1.0), DEADLOCK_SPIN};
        simpler_tensor t = simpler_view2d(&args->tensors[0], k, 0, 1, 16);
        rc = k % 2 ? submit(api, o, F_FILL_AIC, SIMPLER_CORE_AIC, &t, tags, 1, sc, 2)
                   : submit(api, o, F_FILL_AIV, SIMPLER_CORE_AIV, &t, tags, 1, sc, 2);
        if (rc)
            return result.rc = rc; /* scope left open: the run fails anyway */
    }
    scope(api->scope_end(o));
    return result.rc = 0;
}

static void case_deadlock(uint32_t threads, uint32_t block_dim)
{
    float *d = new_floats(DEADLOCK_TASKS * 16);
    int64_t shape[2] = {DEADLOCK_TASKS, 16};
    simpler_tensor t = tensor_of(d, 2, shape);
    tmr_run *run = build_run(&t, 1, DEADLOCK_RING, 1024, 4096);
    uint64_t t0 = simpler_now_ns();
    int status = launch_run("deadlock", run, orch_deadlock, threads, block_dim);
    double took = (double)(simpler_now_ns() - t0) / 1e9;
    CHECKF(status == SIMPLER_E_ORCHESTRATION, "deadlock: status %d: %s", status, launch.message);
    CHECKF(strstr(launch.message, "scope deadlock") && strstr(launch.message, "task ring"),
           "deadlock: message: %s", launch.message);
    CHECKF(result.failed_at == DEADLOCK_RING && result.failed_rc == SIMPLER_E_ORCHESTRATION &&
               result.rc == SIMPLER_E_ORCHESTRATION,
           "deadlock: submit %u failed with %d, orchestration returned %d", result.failed_at, result.failed_rc,
           result.rc);
    CHECKF(atomic_load(&run->submitted) == DEADLOCK_RING, "deadlock: %" PRIu64 " submitted",
           (uint64_t)atomic_load(&run->submitted));
    CHECKF(!atomic_load(&launch.abort), "deadlock: the run was aborted instead of draining");
    CHECKF(took < 30.0, "deadlock: took %.1f s", took);
    /* The tasks submitted before the failure ran; the rest did not. */
    uint32_t bad = 0;
    for (uint32_t k = 0; k < DEADLOCK_TASKS; k++)
        for (uint32_t j = 0; j < 16; j++)
            bad += d[k * 16 + j] != (k < DEADLOCK_RING ? k + 1.0f : 0.0f);
    CHECKF(bad == 0, "deadlock: %u elements wrong", bad);
    free(run);
    free(d);
}

/* ---- scenario 5: an OUTPUT larger than the heap ring ------------------------ */

#define BIG_ELEMS 2048 /* 8 KiB: more than the 4 KiB heap ring */

static int orch_heap_small(const simpler_orch_api *api, simpler_orch *o, const simpler_orch_args *args)
{
    static const uint32_t tags[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT};
    int64_t small[1] = {64}, big[1] = {BIG_ELEMS};
    simpler_tensor t0[2] = {simpler_view2d(&args->tensors[0], 0, 0, 1, 64),
                            simpler_tensor_new(SIMPLER_DTYPE_FLOAT32, 1, small)};
    int rc = submit(api, o, F_DBL_AIV, SIMPLER_CORE_AIV, t0, tags, 2, NULL, 0);
    if (rc)
        return result.rc = rc;
    simpler_tensor t1[2] = {t0[1], simpler_tensor_new(SIMPLER_DTYPE_FLOAT32, 1, big)};
    rc = submit(api, o, F_DBL_AIC, SIMPLER_CORE_AIC, t1, tags, 2, NULL, 0);
    if (rc)
        return result.rc = rc;
    return result.rc = 0;
}

static void case_heap_small(uint32_t threads, uint32_t block_dim)
{
    float *x = new_floats(BIG_ELEMS);
    int64_t shape[2] = {1, BIG_ELEMS};
    simpler_tensor t = tensor_of(x, 2, shape);
    tmr_run *run = build_run(&t, 1, 64, 1024, 4096);
    int status = launch_run("heap-small", run, orch_heap_small, threads, block_dim);
    CHECKF(status == SIMPLER_E_ORCHESTRATION, "heap-small: status %d: %s", status, launch.message);
    CHECKF(strstr(launch.message, "does not fit in the heap ring") != NULL, "heap-small: message: %s",
           launch.message);
    CHECKF(result.failed_at == 1 && result.failed_rc == SIMPLER_E_ORCHESTRATION, "heap-small: submit %u failed with %d",
           result.failed_at, result.failed_rc);
    CHECKF(atomic_load(&run->submitted) == 1, "heap-small: %" PRIu64 " submitted",
           (uint64_t)atomic_load(&run->submitted));
    free(run);
    free(x);
}

/* ---- main --------------------------------------------------------------- */

static const uint32_t combos[][2] = {{1, 1}, {2, 2}, {3, 1}};

typedef void (*case_fn)(uint32_t threads, uint32_t block_dim);

static const char *only; /* run only the cases whose name contains this */

/* As test_scheduler.c names them: no check, or runs on any core type. */
enum { RUNS_UNCHECKED = -1, RUNS_ON_ANY = 2 };

/* want_runs: some task of the case, over all its combos, ran inside a run
 * of tasks. Checked once: any single run may form none under load (CI
 * failed so), at the price of not seeing runs stop forming in one combo
 * while another still forms them. */
static void run_case(const char *name, case_fn fn, int want_runs)
{
    if (only && !strstr(name, only))
        return;
    uint64_t t0 = simpler_now_ns();
    atomic_store(&ran_inside_run, 0);
    for (size_t i = 0; i < sizeof combos / sizeof *combos; i++)
        fn(combos[i][0], combos[i][1]);
    if (want_runs == RUNS_ON_ANY)
        CHECKF(atomic_load(&ran_inside_run) > 0, "%s: no task ran inside a run of tasks in %zu runs", name,
               sizeof combos / sizeof *combos);
    printf("%-12s x %zu runs: %.2f s\n", name, sizeof combos / sizeof *combos,
           (double)(simpler_now_ns() - t0) / 1e9);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int scale = argc > 1 ? atoi(argv[1]) : 100;
    if (scale < 1)
        scale = 1;
#define SCALED(x) ((uint32_t)((x) * scale / 100 > 2 ? (x) * scale / 100 : 2))
    int rounds = argc > 2 ? atoi(argv[2]) : 1;
    only = argc > 3 ? argv[3] : NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    chain_len = SCALED(3000);
    stream_iters = SCALED(200);
    lane_len = SCALED(300);
    indep_rounds = SCALED(6);
    stencil_rows = SCALED(300);
    register_callable();
    start_cores();

    for (int r = 0; r < rounds; r++) {
        if (rounds > 1)
            printf("round %d of %d\n", r + 1, rounds);
        run_case("chain", case_chain, RUNS_UNCHECKED);
        run_case("tight-chain", case_tight, RUNS_UNCHECKED);
        run_case("chain-runs", case_chain_runs, RUNS_ON_ANY);
        run_case("lanes", case_lanes, RUNS_UNCHECKED);
        run_case("independent", case_independent, RUNS_ON_ANY);
        run_case("fan", case_fan, RUNS_ON_ANY);
        run_case("stencil", case_stencil, RUNS_UNCHECKED);
        run_case("stream", case_stream, RUNS_UNCHECKED);
        run_case("war", case_war, RUNS_UNCHECKED);
        run_case("deadlock", case_deadlock, RUNS_UNCHECKED);
        run_case("heap-small", case_heap_small, RUNS_UNCHECKED);
        /* The cores serve ordinary runs after the failed ones. */
        run_case("chain-again", case_chain, RUNS_UNCHECKED);
    }

    stop_cores();
    return check_report();
}
