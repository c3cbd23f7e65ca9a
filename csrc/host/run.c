/*
 * Runs: their arguments checked and host tensors staged in GM, and the
 * device's run queue. simpler_run_prepare stages a run in a free run block
 * (host inputs are copied then, so the caller may reuse them once it
 * returns; a host-built graph is orchestrated and uploaded then too);
 * simpler_run_execute launches it when it heads the queue, waits, and
 * copies its outputs back. Where the platform allows it the launch waits
 * with the device's lock released, so the next run is prepared while this
 * one executes; runs still reach the cores one after the other, in the
 * order they were prepared.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/dtype.h"
#include "common/error.h"
#include "common/trace.h"
#include "host/device.h"
#include "runtime/recorded_graph.h"

#define DEFAULT_AICPU_THREADS 2
#define DEFAULT_SCHEDULER_TIMEOUT_MS 30000
#define DEFAULT_MAX_TASKS (4u << 20)
/* How often a run waiting for its turn checks its poll (interrupts). */
#define RUN_TURN_POLL_NS 50000000ll

enum run_state { RUN_PREPARED, RUN_EXECUTING, RUN_DONE };

struct simpler_run_handle {
    simpler_device *dev;            /* NULL once its worker was finalized */
    host_callable *callable;
    host_graph *graph;              /* a replay's graph, or NULL */
    run_keep_fn keep;               /* a recording's: takes its graph */
    uint32_t recorded_id;           /* a recording that succeeded: its graph's id */
    struct simpler_run_handle *next;       /* in the device's queue */
    uint32_t slot;                  /* its run block */
    enum run_state state;
    _Atomic int cancelled;
    platform_poll poll;             /* its launch's: the cancel, then the device's poll */
    runtime_run run;
    runtime_launch launch;
    runtime_result result;
    uint32_t num_args;
    simpler_tensor tensors[CALLABLE_MAX_ARGS];
    uint64_t scalars[CALLABLE_MAX_ARGS];
    uint64_t staged[CALLABLE_MAX_ARGS];     /* GM of host tensors, 0 for others */
    uint64_t sizes[CALLABLE_MAX_ARGS];
    void *out_host[CALLABLE_MAX_ARGS];      /* where an output goes back, NULL for inputs */
};

static const char *tag_name(uint32_t kind)
{
    switch (kind) {
    case SIMPLER_INPUT: return "input";
    case SIMPLER_OUTPUT_EXISTING: return "output";
    case SIMPLER_INOUT: return "inout";
    case SIMPLER_NO_DEP: return "no-dep";
    default: return "scalar";
    }
}

/* Check one run argument against its signature entry; fills the tensor's
 * row-major strides and returns its size in bytes. */
static int check_arg(const callable_arg *spec, const simpler_arg *a, uint32_t i, simpler_tensor *t, uint64_t *bytes)
{
    if (spec->kind == CALLABLE_ARG_SCALAR) {
        if (a->kind != SIMPLER_ARG_SCALAR)
            return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "argument %u: the signature expects a scalar", i);
        return SIMPLER_OK;
    }
    if (a->kind != SIMPLER_ARG_HOST_TENSOR && a->kind != SIMPLER_ARG_DEVICE_TENSOR)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "argument %u: the signature expects a tensor (%s)", i,
                            tag_name(spec->kind));
    *t = a->tensor;
    if (!simpler_dtype_known(t->dtype))
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "argument %u: unknown dtype 0x%x", i, t->dtype);
    if (spec->dtype && t->dtype != spec->dtype)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "argument %u: dtype %s does not match the signature's %s",
                            i, simpler_dtype_name(t->dtype), simpler_dtype_name(spec->dtype));
    if (t->ndim == 0 || t->ndim > SIMPLER_MAX_DIMS)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "argument %u: tensors have 1..%d dimensions, not %u", i,
                            SIMPLER_MAX_DIMS, t->ndim);
    uint64_t n = t->dtype & 0xFF;
    for (int d = (int)t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] < 0)
            return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "argument %u: negative shape", i);
        t->strides[d] = (int64_t)(n / (t->dtype & 0xFF));
        if (__builtin_mul_overflow(n, (uint64_t)t->shape[d], &n) || n > (UINT64_C(1) << 44))
            return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "argument %u: tensor too large", i);
    }
    for (uint32_t d = t->ndim; d < SIMPLER_MAX_DIMS; d++) {
        t->shape[d] = 1;
        t->strides[d] = 0;
    }
    t->offset = 0;
    if (a->kind == SIMPLER_ARG_HOST_TENSOR && !a->host && n)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "argument %u: host data is NULL", i);
    *bytes = n;
    return SIMPLER_OK;
}

static int fill_defaults(const simpler_run_config *cfg, simpler_run_config *out)
{
    simpler_run_config c = cfg ? *cfg : (simpler_run_config){0};
    if (c.block_dim > SIMPLER_MAX_CLUSTERS)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "block_dim %u out of range 1..%d", c.block_dim,
                            SIMPLER_MAX_CLUSTERS);
    if (c.trace_events > (1u << 26))
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "trace_events %u exceeds %u", c.trace_events, 1u << 26);
    if (c.aicpu_thread_num > SIMPLER_MAX_AICPU_THREADS)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "aicpu_thread_num %u out of range 1..%d",
                            c.aicpu_thread_num, SIMPLER_MAX_AICPU_THREADS);
    if (!c.block_dim) {
        /* The platforms run each core as a host thread: one cluster (3
         * cores) per two host cores keeps them from crowding out the
         * schedulers (a 2-wide stencil: 5.8 us/task with 2 clusters on 2
         * host cores, 0.25 us with 1). */
        static _Atomic long host_cpus; /* sysconf reads /sys: ~10 us, so once */
        long cpus = atomic_load_explicit(&host_cpus, memory_order_relaxed);
        if (!cpus) {
            cpus = sysconf(_SC_NPROCESSORS_ONLN);
            atomic_store_explicit(&host_cpus, cpus, memory_order_relaxed);
        }
        c.block_dim = cpus >= 4 ? (uint32_t)(cpus / 2 < SIMPLER_MAX_CLUSTERS ? cpus / 2 : SIMPLER_MAX_CLUSTERS) : 1;
    }
    if (!c.aicpu_thread_num)
        c.aicpu_thread_num = DEFAULT_AICPU_THREADS;
    if (!c.scheduler_timeout_ms)
        c.scheduler_timeout_ms = DEFAULT_SCHEDULER_TIMEOUT_MS;
    if (!c.max_tasks)
        c.max_tasks = DEFAULT_MAX_TASKS;
    *out = c;
    return SIMPLER_OK;
}

/* A GM trace buffer for the run, if it asks for one. */
static int trace_begin(simpler_device *dev, const simpler_run_config *cfg, uint64_t *addr)
{
    *addr = 0;
    if (!cfg->trace_events)
        return SIMPLER_OK;
    uint64_t bytes = simpler_trace_bytes(cfg->trace_events, cfg->trace_events);
    int rc = dev->ops->gm_alloc(dev->pdev, bytes, addr);
    if (rc)
        return simpler_fail_prefix(rc, "trace buffer of %u events (%" PRIu64 " bytes)", cfg->trace_events, bytes);
    simpler_trace hdr;
    simpler_trace_init(&hdr, cfg->trace_events, cfg->trace_events);
    if ((rc = dev->ops->copy_to_device(dev->pdev, *addr, &hdr, sizeof hdr))) {
        dev->ops->gm_free(dev->pdev, *addr);
        *addr = 0;
    }
    return rc;
}

/* Keep the run's trace on the host, compacted to what was recorded, and
 * release its GM. Sizes come from the host's own request, not from what
 * device code may have scribbled in the header. A trace that cannot be
 * read back fails the run: it was asked for, and is not silently missing. */
static int trace_end(simpler_device *dev, uint64_t addr, uint32_t capacity, uint32_t callable_id)
{
    if (!addr)
        return SIMPLER_OK;
    simpler_trace hdr, *copy = NULL;
    int rc = dev->ops->copy_from_device(dev->pdev, &hdr, addr, sizeof hdr);
    if (!rc) {
        simpler_trace fresh;
        simpler_trace_init(&fresh, capacity, capacity);
        uint32_t events = atomic_load(&hdr.num_events), edges = atomic_load(&hdr.num_edges);
        events = events < capacity ? events : capacity;
        edges = edges < capacity ? edges : capacity;
        uint64_t ev_bytes = (uint64_t)events * sizeof(simpler_trace_event);
        uint64_t size = simpler_trace_bytes(events, edges);
        copy = malloc(size);
        if (!copy)
            rc = simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "out of host memory for the trace (%" PRIu64 " bytes)", size);
        if (!rc) {
            simpler_trace_init(copy, events, edges);
            atomic_store(&copy->num_events, events);
            atomic_store(&copy->num_edges, edges);
            atomic_store(&copy->dropped_events, atomic_load(&hdr.dropped_events));
            atomic_store(&copy->dropped_edges, atomic_load(&hdr.dropped_edges));
            copy->callable_id = callable_id;
            if (events)
                rc = dev->ops->copy_from_device(dev->pdev, (uint8_t *)copy + copy->events_off,
                                                addr + fresh.events_off, ev_bytes);
            if (!rc && edges)
                rc = dev->ops->copy_from_device(dev->pdev, (uint8_t *)copy + copy->edges_off, addr + fresh.edges_off,
                                                (uint64_t)edges * sizeof(simpler_trace_edge));
        }
        if (!rc) {
            free(dev->last_trace);
            dev->last_trace = copy;
            dev->last_trace_size = size;
        } else {
            free(copy);
        }
    }
    if (rc)
        rc = simpler_fail_prefix(rc, "reading back the run's trace");
    simpler_error_hold(rc);
    dev->ops->gm_free(dev->pdev, addr);
    simpler_error_release(rc);
    return rc;
}

int simpler_last_trace(simpler_device *dev, void *buf, uint64_t size, uint64_t *size_out)
{
    if (!size_out)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_last_trace: size_out is NULL");
    int rc = worker_enter(dev, "simpler_last_trace");
    if (rc)
        return rc;
    *size_out = dev->last_trace_size;
    if (buf && size >= dev->last_trace_size && dev->last_trace)
        memcpy(buf, dev->last_trace, dev->last_trace_size);
    else if (buf && dev->last_trace)
        rc = simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_last_trace: buffer of %" PRIu64 " bytes, the trace "
                          "needs %" PRIu64, size, dev->last_trace_size);
    return worker_leave(dev, rc);
}


/* ------------------------------------------------------------------ */
/* staging */

static int run_poll(void *ctx)
{
    simpler_run_handle *r = ctx;
    if (atomic_load_explicit(&r->cancelled, memory_order_relaxed))
        return 1;
    const platform_poll *p = &r->dev->poll;
    return p->fn ? p->fn(p->ctx) : 0;
}

static void staging_free(simpler_device *dev, simpler_run_handle *r)
{
    for (uint32_t i = 0; i < r->num_args; i++)
        if (r->staged[i])
            dev->ops->gm_free(dev->pdev, r->staged[i]);
    memset(r->staged, 0, sizeof r->staged);
}

/* Check the arguments and stage host tensors (inputs and outputs, so that
 * elements a kernel does not write keep the caller's values). */
static int stage_args(simpler_device *dev, simpler_run_handle *r, const simpler_arg *args)
{
    const callable_info *info = r->callable->buffer->info;
    uint32_t nt = 0, ns = 0;
    for (uint32_t i = 0; i < r->num_args; i++) {
        int rc = check_arg(&info->args[i], &args[i], i, &r->tensors[nt], &r->sizes[i]);
        if (rc)
            return rc;
        if (args[i].kind == SIMPLER_ARG_SCALAR) {
            r->scalars[ns++] = args[i].scalar;
            continue;
        }
        if (args[i].kind == SIMPLER_ARG_DEVICE_TENSOR) {
            char what[48];
            snprintf(what, sizeof what, "argument %u (device tensor)", i);
            if ((rc = worker_check_user_range(dev, r->tensors[nt].addr, r->sizes[i], what)))
                return rc;
            uint64_t have = dev->ops->gm_size_of(dev->pdev, r->tensors[nt].addr);
            if (have < r->sizes[i] || have == 0)
                return simpler_fail(SIMPLER_E_INVALID_ARGUMENT,
                                    "argument %u (device tensor at 0x%" PRIx64 ", %" PRIu64 " bytes): %s", i,
                                    r->tensors[nt].addr, r->sizes[i],
                                    have ? "larger than its allocation"
                                         : "not the start of an allocation (pass the address malloc returned)");
        }
        if (args[i].kind == SIMPLER_ARG_HOST_TENSOR) {
            rc = dev->ops->gm_alloc(dev->pdev, r->sizes[i] ? r->sizes[i] : 1, &r->staged[i]);
            if (rc) {
                r->staged[i] = 0;
                return simpler_fail_prefix(rc, "staging argument %u (%" PRIu64 " bytes)", i, r->sizes[i]);
            }
            r->tensors[nt].addr = r->staged[i];
            if (r->sizes[i] && (rc = dev->ops->copy_to_device(dev->pdev, r->staged[i], args[i].host, r->sizes[i])))
                return rc;
            if (info->args[i].kind != SIMPLER_INPUT)
                r->out_host[i] = args[i].host;
        }
        nt++;
    }
    r->run.args = (simpler_orch_args){r->tensors, r->scalars, nt, ns};
    return SIMPLER_OK;
}

/* Take the run out of the queue and give back what it holds. */
static void run_end(simpler_device *dev, simpler_run_handle *r)
{
    simpler_run_handle **p = &dev->queue_head;
    while (*p && *p != r)
        p = &(*p)->next;
    if (*p) {
        *p = r->next;
        if (dev->queue_tail == r) {
            dev->queue_tail = NULL;
            for (simpler_run_handle *q = dev->queue_head; q; q = q->next)
                dev->queue_tail = q;
        }
    }
    r->next = NULL;
    staging_free(dev, r);
    if (r->run.trace_addr)
        dev->ops->gm_free(dev->pdev, r->run.trace_addr);
    r->run.trace_addr = 0;
    dev->block_busy[r->slot] = 0;
    if (r->slot >= dev->max_inflight)   /* max_inflight was lowered: this slot's block is not kept */
        run_block_free(dev->ops, dev->pdev, &dev->blocks[r->slot]);
    dev->inflight--;
    r->callable->runs--;
    if (r->graph)
        r->graph->runs--;
    if (r->launch.recorded) {       /* a recording that failed, or never ran */
        recorded_graph_free(dev->ops, dev->pdev, r->launch.recorded);
        r->launch.recorded = NULL;
    }
    r->state = RUN_DONE;
    pthread_cond_broadcast(&dev->changed);
}

/* A prepared run that will not execute: the runtime releases what it
 * staged (its block), as after a launch that did not happen. */
static void run_discard(simpler_device *dev, simpler_run_handle *r)
{
    simpler_error_hold(SIMPLER_E_INTERRUPTED);
    runtime_env env = worker_env(dev, &dev->blocks[r->slot]);
    runtime_result ignored = {0};
    if (r->graph)
        recorded_graph_finish(&env, r->graph->graph, &r->launch, SIMPLER_E_INTERRUPTED, &ignored);
    else
        dev->runtime->finish(&env, &r->run, &r->launch, SIMPLER_E_INTERRUPTED, &ignored);
    run_end(dev, r);
    simpler_error_release(SIMPLER_E_INTERRUPTED);
}

void worker_runs_end(simpler_device *dev)
{
    while (dev->queue_head) {
        simpler_run_handle *r = dev->queue_head;
        run_discard(dev, r);
        r->dev = NULL;
    }
}

/* ------------------------------------------------------------------ */
/* the API */

int simpler_device_set_max_inflight(simpler_device *dev, uint32_t max_inflight)
{
    if (max_inflight < 1 || max_inflight > HOST_MAX_INFLIGHT)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "max_inflight %u out of range 1..%d", max_inflight,
                            HOST_MAX_INFLIGHT);
    int rc = worker_enter(dev, "simpler_device_set_max_inflight");
    if (rc)
        return rc;
    dev->max_inflight = max_inflight;   /* fewer than in flight now: new runs wait until they are fewer */
    /* Only slots below it are used from now on: the blocks of the others
     * go (those in use, when their run ends). */
    for (uint32_t i = max_inflight; i < HOST_MAX_INFLIGHT; i++)
        if (!dev->block_busy[i])
            run_block_free(dev->ops, dev->pdev, &dev->blocks[i]);
    return worker_leave(dev, SIMPLER_OK);
}

int simpler_device_max_inflight(simpler_device *dev, uint32_t *out)
{
    if (!out)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_device_max_inflight: out is NULL");
    int rc = worker_enter(dev, "simpler_device_max_inflight");
    if (rc)
        return rc;
    *out = dev->max_inflight;
    return worker_leave(dev, SIMPLER_OK);
}

int run_prepare(simpler_device *dev, host_callable *c, host_graph *g, const simpler_arg *args, uint32_t num_args,
                const simpler_run_config *config, run_keep_fn keep, simpler_run_handle **out)
{
    dev->runs++;
    dev->failure_found = 0;     /* a report is of the last run that failed, never an older one */
    const callable_info *info = c->buffer->info;
    if (num_args != info->num_args)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "callable %u takes %u arguments, got %u", c->id,
                            info->num_args, num_args);
    if (num_args && !args)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "args is NULL");
    if (dev->inflight >= dev->max_inflight)
        return simpler_fail(SIMPLER_E_STATE, "%u runs are in flight (max_inflight %u): execute or free one first",
                            dev->inflight, dev->max_inflight);
    uint32_t slot = 0;
    while (slot < HOST_MAX_INFLIGHT && dev->block_busy[slot])
        slot++;
    simpler_run_handle *r = slot < HOST_MAX_INFLIGHT ? calloc(1, sizeof *r) : NULL;
    if (!r)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "preparing a run: out of host memory");
    *r = (simpler_run_handle){.dev = dev, .callable = c, .graph = g, .slot = slot, .num_args = num_args};
    r->poll = (platform_poll){.fn = run_poll, .ctx = r, .progress = &dev->progress};
    r->run.callable = &c->view;
    r->run.record = keep != NULL;
    r->keep = keep;
    dev->block_busy[slot] = 1;
    dev->inflight++;
    c->runs++;
    if (g)
        g->runs++;
    int rc = fill_defaults(g ? &g->config : config, &r->run.config);
    if (!rc && r->run.config.trace_events) {    /* this run's trace or none, never an older one */
        free(dev->last_trace);
        dev->last_trace = NULL;
        dev->last_trace_size = 0;
    }
    if (!rc)
        rc = stage_args(dev, r, args);
    if (!rc && g)       /* before the trace buffer: a bad argument costs nothing */
        rc = recorded_graph_check(g->graph, &r->run);
    if (!rc)
        rc = trace_begin(dev, &r->run.config, &r->run.trace_addr);
    if (!rc) {
        runtime_env env = worker_env(dev, &dev->blocks[slot]);
        env.poll = &r->poll;
        if (g) {
            rc = recorded_graph_stage(&env, g->graph, &r->run, &r->launch, &r->result);
        } else {
            rc = dev->runtime->stage(&env, &r->run, &r->launch, &r->result);
            if (rc) {
                dev->last_run = r->result;
                if (r->result.host_lost)
                    dev->host_lost = 1;
            }
        }
    }
    if (rc) {
        simpler_error_hold(rc);
        run_end(dev, r);
        simpler_error_release(rc);
        free(r);
        return rc;
    }
    if (dev->queue_tail)
        dev->queue_tail->next = r;
    else
        dev->queue_head = r;
    dev->queue_tail = r;
    *out = r;
    return SIMPLER_OK;
}

int simpler_run_prepare(simpler_device *dev, uint32_t callable_id, const simpler_arg *args, uint32_t num_args,
                        const simpler_run_config *config, simpler_run_handle **out)
{
    if (!out)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_run_prepare: out is NULL");
    *out = NULL;
    host_callable *c;
    int rc = worker_enter_callable(dev, "simpler_run_prepare", callable_id, &c);
    if (rc)
        return rc;
    return worker_leave(dev, run_prepare(dev, c, NULL, args, num_args, config, NULL, out));
}

/* Wait, the lock held, until r heads the queue (an earlier run executes or
 * waits to). Returns non-zero when the run is cancelled meanwhile. */
static int wait_turn(simpler_device *dev, simpler_run_handle *r)
{
    while (dev->queue_head != r) {
        if (run_poll(r))
            return 1;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ns = ts.tv_nsec + RUN_TURN_POLL_NS;
        ts.tv_sec += (time_t)(ns / 1000000000ll);
        ts.tv_nsec = (long)(ns % 1000000000ll);
        pthread_cond_timedwait(&dev->changed, &dev->lock, &ts);
    }
    return 0;
}

/* A recording that ran: its graph becomes the device's. */
static int graph_keep(simpler_device *dev, simpler_run_handle *r)
{
    if (!r->launch.recorded)
        return simpler_fail(SIMPLER_E_UNSUPPORTED, "runtime '%s' recorded no graph", dev->runtime->name);
    int rc = r->keep(dev, r->callable, r->launch.recorded, &r->run.config, &r->recorded_id);
    if (!rc)
        r->launch.recorded = NULL;
    return rc;
}

/* After the launch: the runtime's figures, the trace, the outputs. */
static int run_complete(simpler_device *dev, simpler_run_handle *r, int rc)
{
    runtime_env env = worker_env(dev, &dev->blocks[r->slot]);
    if (r->graph)
        rc = recorded_graph_finish(&env, r->graph->graph, &r->launch, rc, &r->result);
    else
        rc = dev->runtime->finish(&env, &r->run, &r->launch, rc, &r->result);
    dev->last_run = r->result;
    dev->tasks_completed += r->result.tasks_completed;
    if (r->result.host_lost)
        dev->host_lost = 1;
    if (r->run.config.trace_events) {
        free(dev->last_trace);
        dev->last_trace = NULL;
        dev->last_trace_size = 0;
        simpler_error_hold(rc);
        int trace_rc = trace_end(dev, r->run.trace_addr, r->run.config.trace_events, r->callable->id);
        simpler_error_release(rc);
        r->run.trace_addr = 0;      /* trace_end freed it */
        rc = rc ? rc : trace_rc;
    }
    for (uint32_t i = 0; i < r->num_args && !rc; i++)
        if (r->out_host[i] && r->sizes[i])
            rc = dev->ops->copy_from_device(dev->pdev, r->out_host[i], r->staged[i], r->sizes[i]);
    if (!rc && r->run.record)
        rc = graph_keep(dev, r);
    return rc;
}

int simpler_run_execute(simpler_run_handle *r)
{
    if (!r)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_run_execute: run is NULL");
    simpler_device *dev = r->dev;
    if (!dev)
        return simpler_fail(SIMPLER_E_STATE, "simpler_run_execute: the worker of this run was finalized before "
                            "it ran");
    int rc = worker_enter(dev, "simpler_run_execute");
    if (rc)
        return rc;
    if (r->state != RUN_PREPARED)
        return worker_leave(dev, simpler_fail(SIMPLER_E_STATE, "simpler_run_execute: this run has %s",
                                              r->state == RUN_DONE ? "already run" : "already started"));
    if (wait_turn(dev, r))
        return worker_leave(dev, simpler_fail(SIMPLER_E_INTERRUPTED, "the run was cancelled before it started"));
    r->state = RUN_EXECUTING;
    int launch_rc = SIMPLER_OK;
    if (r->launch.launch) {
        /* The platform says whether the next run may be staged meanwhile. */
        int concurrent = dev->ops->concurrent_launch;
        dev->executing = 1;
        /* A host-built graph's tasks are all known now; a device
         * orchestration's come as it submits them. */
        atomic_store(&dev->progress.tasks_done, 0);
        atomic_store(&dev->progress.tasks_submitted, r->result.tasks_submitted);
        failure_arm(dev, &r->poll, &r->launch.params, &dev->blocks[r->slot]);
        if (concurrent)
            pthread_mutex_unlock(&dev->lock);
        launch_rc = dev->ops->launch(dev->pdev, &r->launch.params, &r->poll);
        if (concurrent) {
            simpler_error_hold(launch_rc);
            pthread_mutex_lock(&dev->lock);
            simpler_error_release(launch_rc);
        }
        dev->executing = 0;
        failure_collect(dev, &r->launch.params, launch_rc);
    }
    if (!launch_rc && r->launch.launch == 0)
        dev->failure_found = 0;
    rc = run_complete(dev, r, launch_rc);
    if (!rc) {      /* what the run did in the end (a failed run keeps what was last seen) */
        atomic_store(&dev->progress.tasks_submitted, r->result.tasks_submitted);
        atomic_store(&dev->progress.tasks_done, r->result.tasks_completed);
    }
    simpler_error_hold(rc);
    run_end(dev, r);
    simpler_error_release(rc);
    return worker_leave(dev, rc);
}

void simpler_run_cancel(simpler_run_handle *r)
{
    if (r)
        atomic_store(&r->cancelled, 1);
}

int simpler_run_free(simpler_run_handle *r)
{
    if (!r)
        return SIMPLER_OK;
    simpler_device *dev = r->dev;
    if (dev && r->state == RUN_PREPARED) {
        pthread_mutex_lock(&dev->lock);
        if (r->dev && r->state == RUN_PREPARED)     /* finalize may have ended it meanwhile */
            run_discard(dev, r);
        pthread_mutex_unlock(&dev->lock);
    }
    if (r->state == RUN_EXECUTING)
        return simpler_fail(SIMPLER_E_STATE, "simpler_run_free: the run is executing");
    free(r);
    return SIMPLER_OK;
}

int simpler_run(simpler_device *dev, uint32_t callable_id, const simpler_arg *args, uint32_t num_args,
                const simpler_run_config *config)
{
    simpler_run_handle *r;
    int rc = simpler_run_prepare(dev, callable_id, args, num_args, config, &r);
    if (rc)
        return rc;
    return run_execute_free(r, NULL);
}

int run_execute_free(simpler_run_handle *r, uint32_t *recorded_id)
{
    int rc = simpler_run_execute(r);
    if (!rc && recorded_id)
        *recorded_id = r->recorded_id;
    simpler_error_hold(rc);
    simpler_run_free(r);
    simpler_error_release(rc);
    return rc;
}
