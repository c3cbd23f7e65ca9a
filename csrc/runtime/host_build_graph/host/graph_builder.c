/*
 * host_build_graph, host side: run the orchestration on the host, derive
 * the edges, lay the graph out as one image in GM and launch the AICPU
 * scheduler on it.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/addr_map.h"
#include "common/array.h"
#include "common/error.h"
#include "runtime/dependency_tracker/tracker.h"
#include "runtime/host_build_graph/graph_image.h"
#include "runtime/host_build_graph/host/build_task.h"
#include "runtime/host_build_graph/host/graph_builder.h"
#include "runtime/host_build_graph/host/graph_stream.h"
#include "runtime/host_build_graph/host/orchestration_thread.h"
#include "runtime/recorded_graph.h"
#include "runtime/runtime.h"
#include "runtime/first_failure.h"
#include "runtime/task_check.h"

#define HBG_MAX_BLOCKS 4096

/* The builder's arrays and the image's host staging buffer: kept on the
 * device from one run for the next (the runtime's cache), so that a run of
 * the size of the last faults in no fresh pages. Contents are the last
 * run's; only the capacities count. */
typedef struct hbg_arrays {
    build_task *tasks;
    uint64_t cap_tasks;
    edge *edges;
    uint64_t cap_edges;
    uint8_t *args;
    uint64_t args_cap;
    uint8_t *image;
    uint64_t image_cap;
} hbg_arrays;

typedef struct hbg_cache {
    hbg_arrays mem;
    dep_tracker *tracker;       /* emptied for the next run (dep_tracker_reset), its memory kept */
    hbg_orch_thread *thread;    /* the orchestration's (orchestration_thread.h) */
    uint64_t stream_need;       /* run block bytes the last streamed graph used (graph_stream.h) */
} hbg_cache;

/* An array more than this many times what the last run used (and over
 * KEEP_MIN bytes) is freed rather than kept: what the worker holds
 * follows its recent runs, so a small run after a huge one gives the
 * memory back (the tracker does the same, dep_tracker_reset). */
#define KEEP_FACTOR 8
#define KEEP_MIN (1ull << 20)

static void keep_or_free(void *p, uint64_t *cap, uint64_t used, size_t elem)
{
    if (*cap * elem <= KEEP_MIN || *cap <= used * KEEP_FACTOR)
        return;
    void *old;
    memcpy(&old, p, sizeof old);    /* p is a T **, as for array_reserve */
    free(old);
    memset(p, 0, sizeof old);
    *cap = 0;
}

static uint64_t arrays_bytes(const hbg_arrays *m)
{
    return m->cap_tasks * sizeof *m->tasks + m->cap_edges * sizeof *m->edges + m->args_cap + m->image_cap;
}

/* A run's builder. It holds its own copies of the environment and the
 * run: an orchestration that cannot be stopped keeps the builder, and
 * must not point into its caller's frame. */
typedef struct builder {
    runtime_env env;
    runtime_run run;
    simpler_orch_fn orch;
    hbg_arrays mem;
    uint32_t num_tasks;
    uint64_t num_edges;
    uint64_t args_size;
    uint64_t image_size;        /* of the last build_image */
    addr_map extents;           /* bases the run knows: arguments and OUTPUTs, with sizes */
    uint64_t *outputs;          /* GM the runtime allocated for OUTPUT tensors */
    uint32_t num_outputs;
    uint64_t cap_outputs;
    dep_tracker *tracker;
    uint32_t current;           /* task being submitted */
    int scope_depth;
    int failed;                 /* first error code; the message is in the thread's error */
    int probe;                  /* a recording's probe: its memory is its own, not the cache's */
    /* Streaming (graph_stream.h): may_stream when the run may; stream once
     * the first segment is published, and streaming tells the stage's
     * wait so (the launch goes on while the orchestration does). */
    int may_stream;
    hbg_stream_host *stream;
    _Atomic uint32_t streaming;
    uint64_t started_ns;        /* when the orchestration started */
    uint64_t ended_ns;          /* and when a streamed one ended */
    hbg_orch_thread *thread;    /* a streamed orchestration's, taken from the cache until it ends */
    hbg_orch_thread *on;        /* the thread the orchestration runs on (its calls' hbg_orch_enter) */
    /* The run's arguments (last: only the part in use is written). */
    simpler_tensor tensors[CALLABLE_MAX_ARGS];
    uint64_t scalars[CALLABLE_MAX_ARGS];
} builder;


static int add_extent(builder *b, uint64_t base, uint64_t size)
{
    addr_entry *e = addr_map_get(&b->extents, base);
    if (e && e->size >= size)
        return 0;
    return addr_map_put(&b->extents, base, size, 0, 0);
}

static int add_edge(builder *b, uint32_t producer, uint32_t consumer)
{
    build_task *p = &b->mem.tasks[producer];
    if (p->stamp == consumer + 1)
        return 0;
    p->stamp = consumer + 1;
    if (array_reserve(&b->mem.edges, &b->mem.cap_edges, b->num_edges + 1, sizeof *b->mem.edges))
        return first_failure(&b->failed, SIMPLER_E_NO_HOST_MEMORY, "host_build_graph: out of host memory for edges");
    b->mem.edges[b->num_edges++] = (edge){producer, consumer};
    p->fanout_count++;
    b->mem.tasks[consumer].fanin++;
    return 0;
}

static int emit_edge(void *ctx, uint32_t producer)
{
    builder *b = ctx;
    return add_edge(b, producer, b->current);
}

/* Check one tensor argument against the kernel's signature and the run's
 * known buffers; allocate it if it is an OUTPUT; record its accesses. */
static int prepare_tensor(builder *b, const task_kernel *k, uint32_t i, simpler_tensor *t, uint32_t tag)
{
    uint32_t id = b->num_tasks;
    int rc = task_check_tag(k, id, i, tag);
    if (rc)
        return first_failure_keep(&b->failed, rc);
    if (tag == SIMPLER_OUTPUT) {
        uint64_t bytes, addr;
        if ((rc = task_output_bytes(k, id, i, t, &bytes)))
            return first_failure_keep(&b->failed, rc);
        if ((rc = b->env.ops->gm_alloc(b->env.pdev, bytes ? bytes : 1, &addr)))
            return first_failure(&b->failed, rc, "task %u (kernel '%s'): allocating OUTPUT tensor %u: %s", id, k->name, i,
                        simpler_last_error());
        if (array_reserve(&b->outputs, &b->cap_outputs, b->num_outputs + 1ull, sizeof *b->outputs)) {
            b->env.ops->gm_free(b->env.pdev, addr);
            return first_failure(&b->failed, SIMPLER_E_NO_HOST_MEMORY, "host_build_graph: out of host memory");
        }
        b->outputs[b->num_outputs++] = addr;
        t->addr = addr;
        if (add_extent(b, addr, bytes))
            return first_failure(&b->failed, SIMPLER_E_NO_HOST_MEMORY, "host_build_graph: out of host memory");
    }
    dep_region r;
    addr_entry *buffer;
    if ((rc = task_tensor_region(k, id, i, t, &b->extents, &r, &buffer)) ||
        (rc = task_check_write(k, id, i, tag, buffer)))
        return first_failure_keep(&b->failed, rc);
    if (tag == SIMPLER_NO_DEP)
        return 0;
    rc = dep_tracker_access(b->tracker, id, &r, task_tag_reads(tag), task_tag_writes(tag), emit_edge, b);
    if (rc)
        return first_failure(&b->failed, rc, "task %u: %s", id, simpler_last_error());
    return 0;
}

/* A segment's worth of tasks is submitted: publish it, the first one
 * starting the stream (and the stage's wait returns, so that the launch
 * can start). A stream that cannot start leaves the graph to be built
 * whole; a segment that cannot be published fails the run. */
static int stream_segment(builder *b)
{
    int rc;
    if (!b->stream) {
        simpler_error_hold(SIMPLER_OK);
        rc = hbg_stream_open(&b->env, b->run.config.max_tasks, (*(hbg_cache **)b->env.cache)->stream_need,
                             &b->stream);
        simpler_error_release(SIMPLER_OK);
        if (rc) {
            b->may_stream = 0;
            return SIMPLER_OK;
        }
    }
    rc = hbg_stream_publish(b->stream, b->mem.tasks, b->num_tasks, b->mem.edges, b->num_edges, b->mem.args,
                            b->args_size);
    if (rc)
        return first_failure_keep(&b->failed, rc);
    if (!atomic_load_explicit(&b->streaming, memory_order_relaxed)) {
        atomic_store(&b->streaming, 1);
        hbg_orch_thread_nudge();
    }
    return SIMPLER_OK;
}

/* After a streamed orchestration returned (orc its result): publish the
 * rest and seal the graph, or tell the schedulers it failed. */
static void stream_end(builder *b, int orc)
{
    int rc = b->failed || orc || b->scope_depth;
    if (!rc && (rc = hbg_stream_publish(b->stream, b->mem.tasks, b->num_tasks, b->mem.edges, b->num_edges,
                                        b->mem.args, b->args_size)))
        first_failure_keep(&b->failed, rc);
    if (rc)
        hbg_stream_fail(b->stream);
    else
        hbg_stream_seal(b->stream);
}

static int submit_task(simpler_orch *o, simpler_task *task, simpler_task_id *id_out)
{
    builder *b = (builder *)o;
    if (b->failed)
        return b->failed;
    if (!task)
        return first_failure(&b->failed, SIMPLER_E_ORCHESTRATION, "submit: task is NULL");
    const runtime_callable *cb = b->run.callable;
    uint32_t id = b->num_tasks;
    if (id >= b->run.config.max_tasks)
        return first_failure(&b->failed, SIMPLER_E_CAPACITY,
                    "graph capacity exceeded: more than %u tasks (raise CallConfig.max_tasks)",
                    b->run.config.max_tasks);
    if (task->func_id > cb->max_func_id || cb->kernel_of_func[task->func_id] < 0)
        return first_failure(&b->failed, SIMPLER_E_ORCHESTRATION, "task %u: no kernel with func_id %u in this callable", id,
                    task->func_id);
    int32_t kernel = cb->kernel_of_func[task->func_id];
    const callable_kernel *ck = &cb->info->kernels[kernel];
    task_kernel k = {ck->name, ck->core_type, ck->num_tensors, ck->num_scalars, ck->tags};
    int rc = task_check(&k, task, id, HBG_MAX_BLOCKS);
    if (rc)
        return first_failure_keep(&b->failed, rc);

    if (array_reserve(&b->mem.tasks, &b->mem.cap_tasks, id + 1ull, sizeof *b->mem.tasks))
        return first_failure(&b->failed, SIMPLER_E_NO_HOST_MEMORY, "host_build_graph: out of host memory for tasks");
    build_task *bt = &b->mem.tasks[id];
    memset(bt, 0, sizeof *bt);
    bt->kernel_addr = cb->kernels[kernel].addr;
    bt->func_id = task->func_id;
    bt->core_type = task->core_type;
    bt->block_num = task->block_num ? task->block_num : 1;
    bt->num_tensors = task->num_tensors;
    bt->num_scalars = task->num_scalars;
    b->current = id;

    for (uint32_t i = 0; i < task->num_deps; i++) {
        simpler_task_id d = task->deps[i];
        if (d < 0 || d >= (simpler_task_id)id)
            return first_failure(&b->failed, SIMPLER_E_ORCHESTRATION,
                        "task %u: explicit dependency on task %" PRId64 ", which was not submitted before it", id, d);
        if (add_edge(b, (uint32_t)d, id))
            return b->failed;
    }
    for (uint32_t i = 0; i < task->num_tensors; i++)
        if (prepare_tensor(b, &k, i, &task->tensors[i], task->tags[i]))
            return b->failed;

    uint64_t bytes = task->num_tensors * sizeof(simpler_tensor) + task->num_scalars * sizeof(uint64_t);
    if (array_reserve(&b->mem.args, &b->mem.args_cap, b->args_size + bytes, 1))
        return first_failure(&b->failed, SIMPLER_E_NO_HOST_MEMORY, "host_build_graph: out of host memory for arguments");
    bt->args_off = b->args_size;
    if (task->num_tensors)
        memcpy(b->mem.args + b->args_size, task->tensors, task->num_tensors * sizeof(simpler_tensor));
    if (task->num_scalars)
        memcpy(b->mem.args + b->args_size + task->num_tensors * sizeof(simpler_tensor), task->scalars,
               task->num_scalars * sizeof(uint64_t));
    b->args_size += bytes;
    b->num_tasks++;
    if (id_out)
        *id_out = id;
    if (b->may_stream && (b->num_tasks & (HBG_STREAM_SEG_TASKS - 1)) == 0)
        return stream_segment(b);
    return SIMPLER_OK;
}

static int scope_begin(simpler_orch *o)
{
    builder *b = (builder *)o;
    if (b->failed)
        return b->failed;
    b->scope_depth++;
    return SIMPLER_OK;
}

static int scope_end(simpler_orch *o)
{
    builder *b = (builder *)o;
    if (b->failed)
        return b->failed;
    if (b->scope_depth == 0)
        return first_failure(&b->failed, SIMPLER_E_ORCHESTRATION, "scope_end without a matching scope_begin");
    b->scope_depth--;
    return SIMPLER_OK;
}

static int fail_run(simpler_orch *o, const char *message)
{
    return first_failure(&((builder *)o)->failed, SIMPLER_E_ORCHESTRATION, "%s", message ? message : "(no message)");
}

/* The orchestration's calls, each out of reach of a cancel (orch_thread.h). */
static int hbg_submit(simpler_orch *o, simpler_task *task, simpler_task_id *id_out)
{
    hbg_orch_thread *on = ((builder *)o)->on;
    int entered = hbg_orch_enter(on), rc = submit_task(o, task, id_out);
    hbg_orch_leave(on, entered);
    return rc;
}

static int hbg_scope_begin(simpler_orch *o)
{
    hbg_orch_thread *on = ((builder *)o)->on;
    int entered = hbg_orch_enter(on), rc = scope_begin(o);
    hbg_orch_leave(on, entered);
    return rc;
}

static int hbg_scope_end(simpler_orch *o)
{
    hbg_orch_thread *on = ((builder *)o)->on;
    int entered = hbg_orch_enter(on), rc = scope_end(o);
    hbg_orch_leave(on, entered);
    return rc;
}

static int hbg_fail(simpler_orch *o, const char *message)
{
    hbg_orch_thread *on = ((builder *)o)->on;
    int entered = hbg_orch_enter(on), rc = fail_run(o, message);
    hbg_orch_leave(on, entered);
    return rc;
}

static const simpler_orch_api hbg_api = {
    .version = SIMPLER_ORCH_API_VERSION,
    .size = sizeof(simpler_orch_api),
    .submit = hbg_submit,
    .scope_begin = hbg_scope_begin,
    .scope_end = hbg_scope_end,
    .fail = hbg_fail,
};

/* Where each part of the graph's image goes (graph_image.h). */
typedef struct image_layout {
    uint64_t tasks_off, fanout_off, queue_off[2], args_off, total;
} image_layout;

static image_layout layout_of(const builder *b)
{
    image_layout L;
    uint64_t n = b->num_tasks;
    L.tasks_off = (sizeof(hbg_header) + 63) & ~63ull;
    L.fanout_off = L.tasks_off + n * sizeof(hbg_task);
    L.queue_off[0] = (L.fanout_off + b->num_edges * 4 + 63) & ~63ull;
    L.queue_off[1] = L.queue_off[0] + ((n * 4 + 63) & ~63ull);
    L.args_off = L.queue_off[1] + ((n * 4 + 63) & ~63ull);
    L.total = L.args_off + b->args_size;
    return L;
}

/* Lay the graph out as one image at img, the staging buffer or the run
 * block itself: every byte the scheduler reads is written here, as the
 * memory holds the last run's image. */
static void lay_out(builder *b, uint8_t *img, const image_layout *L)
{
    uint64_t n = b->num_tasks, tasks_off = L->tasks_off, fanout_off = L->fanout_off, args_off = L->args_off;
    uint64_t q0 = L->queue_off[0], q1 = L->queue_off[1], total = L->total;
    memset(img, 0, tasks_off);
    memset(img + q0, 0, args_off - q0); /* both ready queues: a 0 cell is not yet published */
    hbg_header *h = (hbg_header *)img;
    h->magic = HBG_IMAGE_MAGIC;
    h->total_size = total;
    h->num_tasks = (uint32_t)n;
    h->tasks_off = tasks_off;
    h->fanout_off = fanout_off;
    h->queue_off[0] = q0;
    h->queue_off[1] = q1;

    hbg_task *tasks = (hbg_task *)(img + tasks_off);
    uint32_t *fanout = (uint32_t *)(img + fanout_off);
    uint64_t pos = 0;
    uint32_t *queue[2] = {(uint32_t *)(img + q0), (uint32_t *)(img + q1)};
    uint32_t tail[2] = {0, 0};      /* stored once: an atomic add per root cost a locked op */
    for (uint64_t i = 0; i < n; i++) {
        build_task *bt = &b->mem.tasks[i];
        hbg_task *t = &tasks[i];
        t->kernel_addr = bt->kernel_addr;
        t->tensors_off = args_off + bt->args_off;
        t->scalars_off = t->tensors_off + bt->num_tensors * sizeof(simpler_tensor);
        t->fanout_start = pos;
        t->fanout_count = 0;
        pos += bt->fanout_count;
        t->num_tensors = bt->num_tensors;
        t->num_scalars = bt->num_scalars;
        t->func_id = bt->func_id;
        t->core_type = bt->core_type;
        t->block_num = bt->block_num;
        atomic_init(&t->pending, bt->fanin);
        atomic_init(&t->next_block, 0);
        atomic_init(&t->blocks_done, 0);
        atomic_init(&t->unposted, bt->fanin);
        atomic_init(&t->num_waits, 0);
        if (bt->fanin == 0)
            queue[bt->core_type][tail[bt->core_type]++] = (uint32_t)i + 1;
    }
    atomic_store_explicit(&h->queue_tail[0], tail[0], memory_order_relaxed);
    atomic_store_explicit(&h->queue_tail[1], tail[1], memory_order_relaxed);
    h->num_roots = tail[0] + tail[1];
    /* Edges were added in consumer order; bucket them by producer. */
    for (uint64_t e = 0; e < b->num_edges; e++) {
        hbg_task *t = &tasks[b->mem.edges[e].producer];
        fanout[t->fanout_start + t->fanout_count++] = b->mem.edges[e].consumer;
    }
    if (b->args_size)
        memcpy(img + args_off, b->mem.args, b->args_size);
}

/* The image in the staging buffer (kept from run to run). */
static int build_image(builder *b, uint8_t **image_out, uint64_t *size_out)
{
    image_layout L = layout_of(b);
    if (array_reserve(&b->mem.image, &b->mem.image_cap, L.total, 1))
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "host_build_graph: no host memory for a %" PRIu64
                            "-byte image", L.total);
    b->image_size = L.total;
    lay_out(b, b->mem.image, &L);
    *image_out = b->mem.image;
    *size_out = L.total;
    return SIMPLER_OK;
}

static void builder_release(builder *b)
{
    hbg_cache *kc = *b->env.cache;
    if (b->stream && kc && !b->probe)
        kc->stream_need = hbg_stream_need(b->stream);
    hbg_stream_free(b->stream);
    for (uint32_t i = 0; i < b->num_outputs; i++)
        b->env.ops->gm_free(b->env.pdev, b->outputs[i]);
    addr_map_free(&b->extents);
    free(b->outputs);

    hbg_arrays *m = &b->mem;
    hbg_cache *k = *b->env.cache;
    if (k && !b->probe) {
        keep_or_free(&m->tasks, &m->cap_tasks, b->num_tasks, sizeof *m->tasks);
        keep_or_free(&m->edges, &m->cap_edges, b->num_edges, sizeof *m->edges);
        keep_or_free(&m->args, &m->args_cap, b->args_size, 1);
        keep_or_free(&m->image, &m->image_cap, b->image_size, 1);
        k->mem = *m;
        dep_tracker_reset(b->tracker);
        k->tracker = b->tracker;
    } else {
        dep_tracker_destroy(b->tracker);
        free(m->tasks);
        free(m->edges);
        free(m->args);
        free(m->image);
    }
    free(b);
}

static void hbg_drop_cache(void *cache)
{
    hbg_cache *k = cache;
    hbg_orch_thread_free(k->thread);
    dep_tracker_destroy(k->tracker);
    free(k->mem.tasks);
    free(k->mem.edges);
    free(k->mem.args);
    free(k->mem.image);
    free(k);
}

static uint64_t hbg_cache_bytes(const void *cache)
{
    const hbg_cache *k = cache;
    return sizeof *k + arrays_bytes(&k->mem) + (k->tracker ? dep_tracker_bytes(k->tracker) : 0);
}

/* The edges as task index pairs (malloc'd), or NULL out of memory. */
static uint64_t *edge_pairs(const builder *b)
{
    uint64_t *pairs = malloc((b->num_edges + 1) * 2 * sizeof *pairs);
    for (uint64_t e = 0; pairs && e < b->num_edges; e++) {
        pairs[2 * e] = b->mem.edges[e].producer;
        pairs[2 * e + 1] = b->mem.edges[e].consumer;
    }
    return pairs;
}

/* The image goes to the device's run block, kept from run to run, so
 * that it is not faulted in again each run: written there in place where
 * this process can touch GM (gm_host_view; not for a recording, which
 * keeps the staged image), else built in the staging buffer, kept
 * likewise, and copied. The launch is left to the worker. */
static int upload_image(builder *b, runtime_launch *launch)
{
    const runtime_env *env = &b->env;
    image_layout L = layout_of(b);
    void *view = NULL;
    int rc = b->run.record ? SIMPLER_OK : runtime_image_in_place(env, L.total, "graph", b->num_tasks, &view);
    if (rc)
        return rc;
    uint64_t *pairs = NULL;     /* the edges, only for a trace */
    if (b->run.trace_addr && !(pairs = edge_pairs(b))) {
        if (view)
            run_block_done(env);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "trace: out of host memory");
    }
    if (view) {
        lay_out(b, view, &L);
        rc = runtime_launch_in_place(env, &b->run.config, b->run.trace_addr, pairs, b->num_edges, launch);
    } else {
        uint8_t *img = NULL;
        uint64_t size = 0;
        if (!(rc = build_image(b, &img, &size)))
            rc = runtime_stage_image(env, img, size, "graph", b->num_tasks, &b->run.config, b->run.trace_addr,
                                     pairs, b->num_edges, launch);
    }
    free(pairs);
    if (rc)
        return rc;
    launch->own[0] = b->num_tasks;
    /* The tensors the orchestration made live until the run is done. */
    launch->gm_held = b->outputs;
    launch->num_gm_held = b->num_outputs;
    b->outputs = NULL;
    b->num_outputs = 0;
    return SIMPLER_OK;
}

/* The job of the orchestration thread. */
static int orchestrate(hbg_orch_thread *self, void *arg)
{
    builder *b = arg;
    b->on = self;
    int orc = b->orch(&hbg_api, (simpler_orch *)b, &b->run.args);
    if (b->stream) {
        int entered = hbg_orch_enter(self);
        stream_end(b, orc);
        b->ended_ns = simpler_now_ns();
        hbg_orch_leave(self, entered);
    }
    return orc;
}

/* The run's outcome once its orchestration returned (rc how the wait for
 * it ended, orc what it returned). */
static int judge(builder *b, int rc, int orc)
{
    const char *entry = b->run.callable->info->orch_entry;
    if (rc)
        return simpler_fail_prefix(rc, "orchestration '%s'", entry);
    if (b->failed)
        return simpler_fail_prefix(b->failed, "orchestration '%s'", entry);
    if (orc)
        return simpler_fail(SIMPLER_E_ORCHESTRATION, "orchestration '%s' returned %d", entry, orc);
    if (b->scope_depth)
        return simpler_fail(SIMPLER_E_ORCHESTRATION, "orchestration '%s' returned with %d scope(s) open", entry,
                            b->scope_depth);
    return SIMPLER_OK;
}

/* An orchestration that would not stop: its thread runs on in the
 * builder, which is never freed, and fails every call it still makes. */
static int orchestration_lost(builder *b, runtime_result *result)
{
    __atomic_store_n(&b->failed, SIMPLER_E_DEVICE_LOST, __ATOMIC_SEQ_CST);
    result->host_lost = 1;
    return simpler_fail_prefix(SIMPLER_E_DEVICE_LOST, "orchestration '%s'", b->run.callable->info->orch_entry);
}

/*
 * Whether a run's graph may stream (graph_stream.h): where the platform
 * lets the orchestration's thread make GM (concurrent_gm: sim), unless the
 * run needs it whole first (a recording keeps the image, a trace names the
 * edges before the launch). SIMPLER_HBG_STREAM=1 streams, =0 never; by
 * default only with more host CPUs than the launch's threads (its cores
 * and schedulers), so that the orchestration has one of its own: on sim
 * the device's threads are host threads, and with fewer CPUs the build
 * and the execution take turns on them anyway (on 2 CPUs a streamed 1e6
 * chain cost 10-15% more CPU and wall than built whole, and gained
 * nothing: docs/performance.md).
 */
static int may_stream(const runtime_env *env, const runtime_run *run)
{
    if (run->record || run->trace_addr || !env->ops->concurrent_gm || !env->ops->gm_host_view)
        return 0;
    const char *v = getenv("SIMPLER_HBG_STREAM");
    if (v && *v)
        return strcmp(v, "0") != 0;
    static _Atomic long host_cpus; /* sysconf reads /sys: once */
    long cpus = atomic_load_explicit(&host_cpus, memory_order_relaxed);
    if (!cpus) {
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
        atomic_store_explicit(&host_cpus, cpus, memory_order_relaxed);
    }
    uint32_t cores = run->config.block_dim * SIMPLER_CORES_PER_CLUSTER;
    uint32_t schedulers = run->config.aicpu_thread_num < run->config.block_dim ? run->config.aicpu_thread_num
                                                                                : run->config.block_dim;
    return cpus > (long)(cores + schedulers);
}

/* Run the orchestration into a new builder for run (with scalars, the
 * run's own or a probe's). On success *out holds it, to release; on
 * failure it is released, unless the orchestration would not stop. */
static int orchestrate_run(const runtime_env *env, const runtime_run *run, const uint64_t *scalars, int probe,
                           runtime_result *result, builder **out)
{
    *out = NULL;
    hbg_cache *k = *env->cache;
    /* On the heap: an orchestration that cannot be stopped keeps it. */
    builder *b = malloc(sizeof *b);
    if (!b)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "host_build_graph: out of host memory");
    memset(b, 0, offsetof(builder, tensors)); /* not the argument copies: 29 KB, written as used */
    b->env = *env;
    b->run = *run;
    b->probe = probe;
    b->orch = (simpler_orch_fn)(uintptr_t)run->callable->orchestration;
    memcpy(b->tensors, run->args.tensors, run->args.num_tensors * sizeof *b->tensors);
    memcpy(b->scalars, scalars, run->args.num_scalars * sizeof *b->scalars);
    b->run.args.tensors = b->tensors;
    b->run.args.scalars = b->scalars;
    int rc = SIMPLER_OK;
    if (!probe && k->tracker) { /* the last run's memory, taken until builder_release */
        b->tracker = k->tracker;
        k->tracker = NULL;
    } else if ((rc = dep_tracker_create(&b->tracker))) {
        free(b);
        return rc;
    }
    if (!probe) {
        b->mem = k->mem;
        k->mem = (hbg_arrays){0};
    }
    const callable_info *info = run->callable->info;
    for (uint32_t a = 0, i = 0; a < info->num_args && !rc; a++) { /* i: the tensor's index in the run */
        if (info->args[a].kind == CALLABLE_ARG_SCALAR)
            continue;
        if (task_known_argument(&b->extents, &run->args.tensors[i], i, info->args[a].kind == SIMPLER_INPUT))
            rc = simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "host_build_graph: out of host memory");
        i++;
    }
    b->may_stream = !probe && may_stream(env, run);
    if (!rc) {
        b->started_ns = simpler_now_ns();
        int orc = 0;
        rc = hbg_orch_thread_run(&k->thread, orchestrate, b, run->config.scheduler_timeout_ms * 1000000ull,
                                 env->poll, &b->streaming, &orc);
        result->orchestration_ns = simpler_now_ns() - b->started_ns;
        result->tasks_submitted = b->num_tasks;
        if (rc == HBG_ORCH_RUNNING || (rc == SIMPLER_OK && b->stream)) {
            /* Streaming: hbg_finish waits for the rest, on the thread the
             * run takes along (the next run's orchestration gets another). */
            b->thread = k->thread;
            k->thread = NULL;
            *out = b;
            return SIMPLER_OK;
        }
        if (rc == SIMPLER_E_DEVICE_LOST)
            return orchestration_lost(b, result);
        rc = judge(b, rc, orc);
    }
    if (rc) {
        simpler_error_hold(rc);
        builder_release(b);
        simpler_error_release(rc);
        return rc;
    }
    *out = b;
    return SIMPLER_OK;
}

/* Whether two images have the same shape: everything before the task
 * arguments but what build_image leaves as the buffer had it (the
 * follower waits, the scheduler's scratch, and alignment padding). */
static int same_shape(const uint8_t *x, const uint8_t *y)
{
    const hbg_header *h = (const hbg_header *)x;
    const hbg_task *tx = (const hbg_task *)(x + h->tasks_off), *ty = (const hbg_task *)(y + h->tasks_off);
    uint64_t args_off = tx[0].tensors_off, fanout_bytes = 0;
    for (uint32_t i = 0; i < h->num_tasks; i++)
        fanout_bytes += tx[i].fanout_count * 4ull;
    if (memcmp(x, y, h->tasks_off) || memcmp(x + h->fanout_off, y + h->fanout_off, fanout_bytes) ||
        memcmp(x + h->queue_off[0], y + h->queue_off[0], args_off - h->queue_off[0]))
        return 0;
    for (uint32_t i = 0; i < h->num_tasks; i++)
        if (memcmp(&tx[i], &ty[i], offsetof(hbg_task, num_waits) + sizeof tx[i].num_waits))
            return 0;
    return 1;
}

/* Which of the graph's task scalars follow run scalar k: orchestrate again
 * with k one higher and compare the images. A site that went from s to s +
 * 1 passes k through to a kernel; any other difference (tasks, edges,
 * tensors, another scalar) means the graph depends on k, which a replay
 * must then give its recorded value. */
static void probe_scalar(const runtime_env *env, const runtime_run *run, const uint64_t *made_by_base,
                         uint32_t num_made, recorded_graph *g, uint32_t k)
{
    const uint8_t *image = g->image;
    uint64_t *scalars = malloc(CALLABLE_MAX_ARGS * sizeof *scalars);
    builder *p = NULL;
    uint8_t *pimg = NULL;
    uint64_t psize = 0;
    runtime_result ignored = {0};
    int fixed = 1;
    if (!scalars)
        goto out;
    memcpy(scalars, run->args.scalars, g->num_scalars * sizeof *scalars);
    scalars[k]++;
    simpler_error_hold(SIMPLER_OK);
    int rc = orchestrate_run(env, run, scalars, 1, &ignored, &p);
    if (!rc && p->num_tasks == g->num_tasks && p->num_edges == g->num_edges && p->num_tasks)
        rc = build_image(p, &pimg, &psize);
    simpler_error_release(SIMPLER_OK);
    if (rc || !p || p->num_tasks != g->num_tasks || p->num_edges != g->num_edges)
        goto out;
    if (!p->num_tasks) {
        fixed = 0;
        goto out;
    }
    const hbg_header *h = (const hbg_header *)image;
    if (psize != g->image_size || !same_shape(image, pimg))
        goto out;
    /* The tensors the orchestration made are at different addresses in the
     * probe: the j-th made in one is the j-th in the other. */
    addr_map made = {0};
    if (num_made != p->num_outputs)
        goto out;
    for (uint32_t j = 0; j < num_made; j++)
        if (addr_map_put(&made, made_by_base[j], 0, p->outputs[j], 0)) {
            addr_map_free(&made);
            goto out;
        }
    const hbg_task *tasks = (const hbg_task *)(image + h->tasks_off);
    int differs = 0;
    for (uint32_t i = 0; i < h->num_tasks && !differs; i++) {
        const hbg_task *t = &tasks[i];
        for (uint32_t j = 0; j < t->num_tensors && !differs; j++) {
            simpler_tensor a, b;
            memcpy(&a, image + t->tensors_off + j * sizeof a, sizeof a);
            memcpy(&b, pimg + t->tensors_off + j * sizeof b, sizeof b);
            if (a.addr != b.addr) {
                addr_entry *e = addr_map_get(&made, a.addr);
                differs = !e || e->tag != b.addr;
            }
            a.addr = b.addr = 0;
            differs = differs || memcmp(&a, &b, sizeof a);
        }
        for (uint32_t j = 0; j < t->num_scalars && !differs; j++) {
            uint64_t off = t->scalars_off + j * sizeof(uint64_t), a, b;
            memcpy(&a, image + off, sizeof a);
            memcpy(&b, pimg + off, sizeof b);
            if (a == b)
                continue;
            if (a == run->args.scalars[k] && b == a + 1) {
                if (recorded_graph_add_site(g, off, k))
                    differs = 1;    /* out of memory: keep k fixed instead */
            } else {
                differs = 1;
            }
        }
    }
    addr_map_free(&made);
    fixed = differs;
out:
    if (fixed)
        recorded_graph_fix_scalar(g, k);
    if (p)
        builder_release(p);
    free(scalars);
}

/* A recording: the graph of the image the run launches, with the tensors
 * the orchestration made (kept for replays), and its scalars probed. */
static int record_graph(builder *b, runtime_launch *launch)
{
    uint64_t size = launch->launch ? ((const hbg_header *)b->mem.image)->total_size : 0;
    uint64_t *pairs = edge_pairs(b);
    if (!pairs)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "recording: out of host memory");
    recorded_graph *g;
    int rc = recorded_graph_make(&b->run, b->mem.image, size, pairs, b->num_edges, &g);
    free(pairs);
    if (rc)
        return rc;
    /* The probes may overwrite nothing the graph keeps: they build in
     * memory of their own. */
    recorded_graph_clear_scalar_sites(g);
    for (uint32_t k = 0; k < g->num_scalars; k++)
        probe_scalar(&b->env, &b->run, launch->gm_held, launch->num_gm_held, g, k);
    g->gm_held = launch->gm_held;
    g->num_gm_held = launch->num_gm_held;
    launch->gm_held = NULL;
    launch->num_gm_held = 0;
    launch->recorded = g;
    return SIMPLER_OK;
}

static int hbg_stage(const runtime_env *env, const runtime_run *run, runtime_launch *launch, runtime_result *result)
{
    hbg_cache *k = *env->cache;
    if (!k && !(k = *env->cache = calloc(1, sizeof *k)))
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "host_build_graph: out of host memory");
    builder *b;
    int rc = orchestrate_run(env, run, run->args.scalars, 0, result, &b);
    if (rc)
        return rc;
    if (b->stream) {
        /* The orchestration goes on, adding to the launch's graph. */
        launch->launch = 1;
        launch->params = runtime_launch_params(SIMPLER_RUNTIME_HBG_STREAM, &run->config, hbg_stream_addr(b->stream),
                                               0, 0);
        launch->own[1] = (uint64_t)(uintptr_t)b;
        return SIMPLER_OK;
    }
    if (b->num_tasks)
        rc = upload_image(b, launch);
    if (!rc && run->record)
        rc = record_graph(b, launch);
    if (rc && launch->launch) {     /* uploaded, not to be launched */
        for (uint32_t i = 0; i < launch->num_gm_held; i++)
            env->ops->gm_free(env->pdev, launch->gm_held[i]);
        free(launch->gm_held);
        *launch = (runtime_launch){0};
        run_block_done(env);
    }
    simpler_error_hold(rc);
    builder_release(b);
    simpler_error_release(rc);
    return rc;
}

int hbg_record_stream(const runtime_env *env, const runtime_run *run, simpler_task *tasks, uint32_t num_tasks,
                      recorded_graph **out)
{
    *out = NULL;
    builder *b = calloc(1, sizeof *b);
    if (!b)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "recording: out of host memory");
    b->env = *env;
    b->run = *run;
    b->probe = 1;           /* memory of its own: the cache is host_build_graph's */
    b->run.args.tensors = b->tensors;
    b->run.args.scalars = b->scalars;
    memcpy(b->tensors, run->args.tensors, run->args.num_tensors * sizeof *b->tensors);
    memcpy(b->scalars, run->args.scalars, run->args.num_scalars * sizeof *b->scalars);
    addr_map moved = {0};
    int rc = dep_tracker_create(&b->tracker);
    const callable_info *info = run->callable->info;
    for (uint32_t a = 0, i = 0; a < info->num_args && !rc; a++) {
        if (info->args[a].kind == CALLABLE_ARG_SCALAR)
            continue;
        if (task_known_argument(&b->extents, &run->args.tensors[i], i, info->args[a].kind == SIMPLER_INPUT))
            rc = simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "recording: out of host memory");
        i++;
    }
    for (uint32_t t = 0; t < num_tasks && !rc; t++) {
        simpler_task *task = &tasks[t];
        uint64_t captured[SIMPLER_MAX_TASK_TENSORS];
        for (uint32_t i = 0; i < task->num_tensors && i < SIMPLER_MAX_TASK_TENSORS; i++) {
            captured[i] = task->tensors[i].addr;
            addr_entry *m = task->tags[i] == SIMPLER_OUTPUT ? NULL : addr_map_get(&moved, captured[i]);
            if (m)
                task->tensors[i].addr = m->tag;
        }
        rc = submit_task((simpler_orch *)b, task, NULL);
        for (uint32_t i = 0; !rc && i < task->num_tensors && i < SIMPLER_MAX_TASK_TENSORS; i++)
            if (task->tags[i] == SIMPLER_OUTPUT && addr_map_put(&moved, captured[i], 0, task->tensors[i].addr, 0))
                rc = simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "recording: out of host memory");
    }
    addr_map_free(&moved);
    if (rc)
        rc = simpler_fail_prefix(rc, "recording the submitted graph");
    uint8_t *image = NULL;
    uint64_t size = 0;
    if (!rc && b->num_tasks)
        rc = build_image(b, &image, &size);
    uint64_t *pairs = rc ? NULL : edge_pairs(b);
    if (!rc && !pairs)
        rc = simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "recording: out of host memory");
    if (!rc)
        rc = recorded_graph_make(run, image, size, pairs, b->num_edges, out);
    free(pairs);
    if (!rc) {
        /* Without a probe (the orchestration ran on the device), a scalar
         * no kernel was given may have shaped the graph: it keeps its
         * recorded value. */
        recorded_graph *g = *out;
        for (uint32_t k = 0; k < g->num_scalars; k++) {
            uint32_t sites = 0;
            for (uint32_t i = 0; i < g->num_patches; i++)
                sites += g->patches[i].kind == GRAPH_PATCH_SCALAR && g->patches[i].index == k;
            if (!sites)
                recorded_graph_fix_scalar(g, k);
        }
        (*out)->gm_held = b->outputs;
        (*out)->num_gm_held = b->num_outputs;
        b->outputs = NULL;
        b->num_outputs = 0;
    }
    simpler_error_hold(rc);
    builder_release(b);
    simpler_error_release(rc);
    return rc;
}

void hbg_probe_scalars(const runtime_env *env, const runtime_run *run, uint64_t host_orchestration,
                       recorded_graph *g)
{
    hbg_cache *k = calloc(1, sizeof *k);
    if (!k)
        return;     /* the scalars stay as conservative as they are */
    void *cache = k;
    runtime_env probe_env = *env;
    probe_env.cache = &cache;
    runtime_callable c = *run->callable;
    c.orchestration = host_orchestration;
    runtime_run probe_run = *run;
    probe_run.callable = &c;
    probe_run.record = 0;
    probe_run.trace_addr = 0;
    memset(g->scalar_fixed, 0, sizeof g->scalar_fixed);
    recorded_graph_clear_scalar_sites(g);
    for (uint32_t i = 0; i < g->num_scalars; i++)
        probe_scalar(&probe_env, &probe_run, g->gm_held, g->num_gm_held, g, i);
    hbg_drop_cache(cache);
}

/* After a streamed graph's launch: the orchestration's end and outcome.
 * A launch that failed for its own reasons (a fault, a timeout, an
 * interrupt) stops the orchestration, and its failure is the run's; one
 * the host failed (hbg_stream_fail) fails with the orchestration's. */
static int finish_stream(const runtime_env *env, builder *b, int launch_rc, runtime_result *result)
{
    hbg_cache *k = *env->cache;
    int host_failed = hbg_stream_failed(b->stream), orc = 0, rc;
    int launch_failed = launch_rc && !host_failed; /* its message stands, the wait's does not */
    uint64_t timeout_ns = launch_failed ? 0 : b->run.config.scheduler_timeout_ms * 1000000ull;
    if (launch_failed)
        simpler_error_hold(launch_rc);
    rc = hbg_orch_thread_wait(&b->thread, timeout_ns, env->poll, NULL, &orc);
    if (launch_failed)
        simpler_error_release(launch_rc);
    if (b->thread && !k->thread)    /* its thread goes back for the next run (NULL: stopped, or lost) */
        k->thread = b->thread;
    else
        hbg_orch_thread_free(b->thread);
    b->thread = NULL;
    /* ended_ns: the job's own, read once it is over (rc OK: the wait saw it end) */
    result->orchestration_ns = (rc == SIMPLER_OK && b->ended_ns ? b->ended_ns : simpler_now_ns()) - b->started_ns;
    result->tasks_submitted = b->num_tasks;
    if (rc == SIMPLER_E_DEVICE_LOST) {
        simpler_error_hold(launch_rc);
        orchestration_lost(b, result);
        simpler_error_release(launch_rc);
        return launch_rc ? launch_rc : SIMPLER_E_DEVICE_LOST;
    }
    if (!launch_failed) {
        launch_rc = judge(b, rc, orc);
        if (!launch_rc)
            result->tasks_completed = b->num_tasks;
    }
    simpler_error_hold(launch_rc);
    builder_release(b);
    run_block_done(env);
    simpler_error_release(launch_rc);
    return launch_rc;
}

static int hbg_finish(const runtime_env *env, const runtime_run *run, runtime_launch *launch, int launch_rc,
                      runtime_result *result)
{
    (void)run;
    if (launch->own[1])
        return finish_stream(env, (builder *)(uintptr_t)launch->own[1], launch_rc, result);
    if (!launch_rc)
        result->tasks_completed = launch->own[0];
    for (uint32_t i = 0; i < launch->num_gm_held; i++)
        env->ops->gm_free(env->pdev, launch->gm_held[i]);
    free(launch->gm_held);
    if (launch->launch)
        run_block_done(env);
    return launch_rc;
}

const runtime_ops runtime_host_build_graph = {
    .name = "host_build_graph",
    /* No per-registration state: the worker loaded the orchestration on
     * the host (runtime_callable.orchestration is its entry point). */
    .stage = hbg_stage,
    .finish = hbg_finish,
    .drop_cache = hbg_drop_cache,
    .cache_bytes = hbg_cache_bytes,
};
