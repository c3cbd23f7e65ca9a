/*
 * tensormap_and_ringbuffer, host side. Registration uploads a kernel table
 * and a record naming the orchestration, which the platform opened on the
 * device with the callable's kernels. A run lays out its block of GM
 * (arguments and rings, sized per run) and launches the schedulers plus
 * one orchestrator thread; the graph is built on the device while it runs.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/so_load.h"
#include "runtime/host_build_graph/host/graph_builder.h"
#include "runtime/runtime.h"
#include "runtime/tensormap_and_ringbuffer/device_layout.h"

#define DEFAULT_TASK_RING 1024
#define DEFAULT_DEP_POOL 65536
#define DEFAULT_HEAP_RING (16ull << 20)
/* A recording's capture of the submitted tasks (a few hundred bytes each). */
#define CAPTURE_BYTES (16ull << 20)

/* GM a registration holds. */
typedef struct tmr_state {
    uint64_t record;                /* tmr_callable; the blob is the shared callable buffer */
    uint64_t kernels;
    uint64_t func_index;
} tmr_state;

static void free_gm(const runtime_env *env, uint64_t *addr)
{
    if (*addr)
        env->ops->gm_free(env->pdev, *addr);
    *addr = 0;
}

/* Allocate GM and fill it from host memory. */
static int upload(const runtime_env *env, const void *src, uint64_t size, uint64_t *addr, const char *what)
{
    int rc = env->ops->gm_alloc(env->pdev, size ? size : 1, addr);
    if (rc)
        return simpler_fail_prefix(rc, "tensormap_and_ringbuffer: uploading %s (%" PRIu64 " bytes)", what, size);
    if (size && (rc = env->ops->copy_to_device(env->pdev, *addr, src, size)))
        free_gm(env, addr);
    return rc;
}

static void tmr_release(const runtime_env *env, runtime_callable *c)
{
    tmr_state *s = c->state;
    if (!s)
        return;
    free_gm(env, &s->record);
    free_gm(env, &s->kernels);
    free_gm(env, &s->func_index);
    free(s);
    c->state = NULL;
}

static int tmr_prepare(const runtime_env *env, runtime_callable *c)
{
    const callable_info *info = c->info;
    tmr_state *s = calloc(1, sizeof *s);
    tmr_kernel *kernels = calloc(info->num_kernels + 1ull, sizeof *kernels);
    if (!s || !kernels) {
        free(s);
        free(kernels);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "register: out of host memory");
    }
    c->state = s;
    for (uint32_t k = 0; k < info->num_kernels; k++) {
        const callable_kernel *kn = &info->kernels[k];
        kernels[k] = (tmr_kernel){.addr = c->kernels[k].addr, .func_id = kn->func_id, .core_type = kn->core_type,
                                  .num_tensors = kn->num_tensors, .num_scalars = kn->num_scalars};
        memcpy(kernels[k].tags, kn->tags, sizeof kernels[k].tags);
        snprintf(kernels[k].name, sizeof kernels[k].name, "%.*s", (int)sizeof kernels[k].name - 1, kn->name);
    }
    tmr_callable rec = {.num_kernels = info->num_kernels, .max_func_id = c->max_func_id};
    snprintf(rec.orch_entry, sizeof rec.orch_entry, "%s", info->orch_entry);
    for (uint32_t a = 0, i = 0; a < info->num_args && i < 256; a++) { /* i: the tensor's index in a run */
        if (info->args[a].kind == CALLABLE_ARG_SCALAR)
            continue;
        if (info->args[a].kind == SIMPLER_INPUT)
            rec.input_tensors[i / 64] |= 1ull << (i % 64);
        i++;
    }
    int rc;
    if (!(rc = upload(env, kernels, info->num_kernels * sizeof *kernels, &s->kernels, "the kernel table")) &&
        !(rc = upload(env, c->kernel_of_func, (c->max_func_id + 1ull) * sizeof(int32_t), &s->func_index,
                      "the kernel index"))) {
        rec.orch_fn = c->orchestration; /* the platform opened it with the kernels */
        rec.kernels_addr = s->kernels;
        rec.func_index_addr = s->func_index;
        rc = upload(env, &rec, sizeof rec, &s->record, "the registration record");
    }
    free(kernels);
    if (rc) {
        simpler_error_hold(rc);
        tmr_release(env, c);
        simpler_error_release(rc);
    }
    return rc;
}

/* A ring setting: the run's, else the environment's (a number, with an
 * optional K, M or G), else the default. */
static int setting(uint64_t configured, const char *env, uint64_t fallback, uint64_t *out)
{
    *out = configured ? configured : fallback;
    const char *v = getenv(env);
    if (configured || !v || !*v)
        return SIMPLER_OK;
    char *end;
    unsigned long long n = strtoull(v, &end, 0);
    unsigned shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20
                   : *end == 'G' || *end == 'g' ? 30 : 0;
    if (shift)
        end++;
    if (end == v || *end || n == 0 || n > (UINT64_MAX >> shift))
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "%s='%s' is not a positive size (e.g. 4096, 64K, 16M)",
                            env, v);
    *out = (uint64_t)n << shift;
    return SIMPLER_OK;
}

static int sizes_for(const simpler_run_config *cfg, tmr_sizes *out)
{
    uint64_t task_ring, dep_pool, heap_ring;
    int rc;
    if ((rc = setting(cfg->task_ring_size, "SIMPLER_TASK_RING_SIZE", DEFAULT_TASK_RING, &task_ring)) ||
        (rc = setting(cfg->dep_pool_size, "SIMPLER_DEP_POOL_SIZE", DEFAULT_DEP_POOL, &dep_pool)) ||
        (rc = setting(cfg->heap_ring_size, "SIMPLER_HEAP_RING_SIZE", DEFAULT_HEAP_RING, &heap_ring)))
        return rc;
    if (task_ring < 1 || task_ring > TMR_MAX_RING_SLOTS)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "task_ring_size %" PRIu64 " out of range 1..%d", task_ring,
                            TMR_MAX_RING_SLOTS);
    if (dep_pool < 16 || dep_pool > (1u << 28))
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "dep_pool_size %" PRIu64 " out of range 16..%u", dep_pool,
                            1u << 28);
    if (heap_ring < 4096 || heap_ring > (1ull << 40))
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "heap_ring_size %" PRIu64 " out of range 4 KiB..1 TiB",
                            heap_ring);
    *out = (tmr_sizes){(uint32_t)task_ring, (uint32_t)dep_pool, (heap_ring + 63) & ~63ull};
    return SIMPLER_OK;
}

static int tmr_stage(const runtime_env *env, const runtime_run *run, runtime_launch *launch, runtime_result *result)
{
    (void)result;
    tmr_state *s = run->callable->state;
    tmr_run hdr = {0};
    int rc = sizes_for(&run->config, &hdr.sizes);
    if (rc)
        return rc;
    tmr_sizes sizes = hdr.sizes;
    uint64_t tensors_off, scalars_off;
    uint64_t off = tmr_layout(&hdr, &sizes, run->args.num_tensors, run->args.num_scalars, &tensors_off, &scalars_off);

    run_block *rb;
    if ((rc = run_block_reserve(env, off, &rb)))
        return simpler_fail_prefix(rc, "tensormap_and_ringbuffer: the run's rings (%" PRIu64 " bytes), a run block that %s",
                                   off, run_block_failure(rc));
    uint64_t block = rb->addr;
    hdr.callable_addr = s->record;
    hdr.tensors_addr = block + tensors_off;
    hdr.scalars_addr = block + scalars_off;
    hdr.num_tensors = run->args.num_tensors;
    hdr.num_scalars = run->args.num_scalars;
    atomic_init(&hdr.dep_free, TMR_NONE);
    if (run->record) {
        if ((rc = env->ops->gm_alloc(env->pdev, CAPTURE_BYTES, &hdr.capture_addr))) {
            run_block_done(env);
            return simpler_fail_prefix(rc, "recording: a %llu-byte capture of the submitted tasks",
                                       (unsigned long long)CAPTURE_BYTES);
        }
        hdr.capture_cap = CAPTURE_BYTES;
    }

    /* The header, the arguments, and the ready queues; task slots, nodes
     * and the heap are initialised by the orchestrator as it uses them.
     * Queues a run left empty are good for the next as they are: cells
     * are tagged by position, and head and tail go on from there. */
    uint64_t *note = rb->layout;
    if (note[0] == block + hdr.queue_off && note[1] == hdr.queue_cap) {
        atomic_init(&hdr.queue_head[0], note[2]);
        atomic_init(&hdr.queue_tail[0], note[2]);
        atomic_init(&hdr.queue_head[1], note[3]);
        atomic_init(&hdr.queue_tail[1], note[3]);
    } else {
        uint64_t *cells = malloc(tmr_queue_bytes(&hdr));
        if (cells)
            tmr_queue_init(&hdr, cells);
        else
            rc = simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "tensormap_and_ringbuffer: out of host memory");
        if (!rc)
            rc = env->ops->copy_to_device(env->pdev, block + hdr.queue_off, cells, tmr_queue_bytes(&hdr));
        free(cells);
    }
    memset(note, 0, 4 * sizeof *note); /* until this run leaves its queues empty */
    if (!rc)
        rc = env->ops->copy_to_device(env->pdev, block, &hdr, sizeof hdr);
    if (!rc && run->args.num_tensors)
        rc = env->ops->copy_to_device(env->pdev, hdr.tensors_addr, run->args.tensors,
                                      run->args.num_tensors * sizeof(simpler_tensor));
    if (!rc && run->args.num_scalars)
        rc = env->ops->copy_to_device(env->pdev, hdr.scalars_addr, run->args.scalars,
                                      run->args.num_scalars * sizeof(uint64_t));
    if (rc) {
        simpler_error_hold(rc);
        if (hdr.capture_addr)
            env->ops->gm_free(env->pdev, hdr.capture_addr);
        run_block_done(env);
        simpler_error_release(rc);
        return rc;
    }
    launch->own[2] = hdr.capture_addr;
    launch->launch = 1;
    launch->params = runtime_launch_params(SIMPLER_RUNTIME_TMR, &run->config, block, run->trace_addr, 1);
    launch->own[0] = hdr.queue_off;
    launch->own[1] = hdr.queue_cap;
    return SIMPLER_OK;
}

/* Which task scalars follow which run scalar: where the orchestration
 * object loads on the host too (the device is this machine's
 * architecture), the host runs it again with each scalar changed. Where
 * it does not, a scalar given to no kernel stays fixed. */
static void probe_on_host(const runtime_env *env, const runtime_run *run, recorded_graph *g)
{
    const callable_info *info = run->callable->info;
    void *handle = NULL, *fn = NULL;
    if (!g->num_scalars)
        return;
    simpler_error_hold(SIMPLER_OK);
    if (!so_load(info->orch, info->orch_size, "orchestration", &handle) &&
        !so_symbol(handle, info->orch_entry, "orchestration", &fn))
        hbg_probe_scalars(env, run, (uint64_t)(uintptr_t)fn, g);
    simpler_error_release(SIMPLER_OK);
    if (handle)
        so_unload(handle);
}

/* A recording that ran: read back the tasks its orchestration submitted
 * and lay them out as a graph to replay. Called with the run's outcome
 * held (SIMPLER_OK): its own failure is the first error. */
static int record_capture(const runtime_env *env, const runtime_run *run, const tmr_run *after,
                          runtime_launch *launch)
{
    simpler_error_release(SIMPLER_OK);
    int rc = SIMPLER_OK;
    if (after->capture_overflow)
        rc = simpler_fail(SIMPLER_E_CAPACITY, "recording: the orchestration submitted more than the %llu bytes of "
                          "task records a recording captures (%u tasks fitted); record a smaller graph",
                          (unsigned long long)CAPTURE_BYTES, after->capture_tasks);
    uint64_t used = after->capture_used;
    uint32_t n = after->capture_tasks;
    uint8_t *bytes = NULL;
    simpler_task *tasks = NULL;
    if (!rc && used > after->capture_cap)
        rc = simpler_fail(SIMPLER_E_DEVICE_LOST, "recording: the device reports a capture of %" PRIu64
                          " bytes in a buffer of %" PRIu64, used, after->capture_cap);
    if (!rc) {
        bytes = malloc(used ? used : 1);
        tasks = calloc(n ? n : 1, sizeof *tasks);
        if (!bytes || !tasks)
            rc = simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "recording: out of host memory for %u tasks", n);
    }
    if (!rc && used)
        rc = env->ops->copy_from_device(env->pdev, bytes, launch->own[2], used);
    /* Parse what device code wrote, checking every length against the buffer. */
    uint64_t pos = 0;
    for (uint32_t t = 0; t < n && !rc; t++) {
        tmr_capture_task h;
        if (pos + sizeof h > used) {
            rc = simpler_fail(SIMPLER_E_DEVICE_LOST, "recording: task record %u runs past the capture", t);
            break;
        }
        memcpy(&h, bytes + pos, sizeof h);
        if (h.num_tensors > SIMPLER_MAX_TASK_TENSORS || h.num_scalars > SIMPLER_MAX_TASK_SCALARS ||
            h.num_deps > t || pos + tmr_capture_bytes(h.num_tensors, h.num_scalars, h.num_deps) > used) {
            rc = simpler_fail(SIMPLER_E_DEVICE_LOST, "recording: task record %u is malformed", t);
            break;
        }
        uint8_t *p = bytes + pos + sizeof h;
        tasks[t] = (simpler_task){h.func_id, h.core_type, h.block_num, h.num_tensors, (simpler_tensor *)p, NULL,
                                  h.num_scalars, NULL, h.num_deps, NULL};
        p += h.num_tensors * sizeof(simpler_tensor);
        tasks[t].tags = (const uint32_t *)p;
        p += (h.num_tensors * 4ull + 7) & ~7ull;
        tasks[t].scalars = (const uint64_t *)p;
        p += h.num_scalars * 8ull;
        tasks[t].deps = (const simpler_task_id *)p;
        pos += tmr_capture_bytes(h.num_tensors, h.num_scalars, h.num_deps);
    }
    if (!rc)
        rc = hbg_record_stream(env, run, tasks, n, &launch->recorded);
    if (!rc)
        probe_on_host(env, run, launch->recorded);
    free(tasks);
    free(bytes);
    simpler_error_hold(rc);
    return rc;
}

static int tmr_finish(const runtime_env *env, const runtime_run *run, runtime_launch *launch, int rc,
                      runtime_result *result)
{
    (void)run;
    uint64_t block = launch->params.image_addr, *note = env->block->layout;
    simpler_error_hold(rc); /* what follows only reads back the run's figures */
    tmr_run after;
    int read_rc = env->ops->copy_from_device(env->pdev, &after, block, sizeof after);
    /* After a run that succeeded, figures that cannot be read would be
     * silently wrong counters: that fails the run. */
    if (read_rc && !rc) {
        simpler_error_release(rc); /* nothing held yet: this is the first error */
        rc = simpler_fail_prefix(read_rc, "tensormap_and_ringbuffer: reading back the run's figures");
        simpler_error_hold(rc);
    }
    if (!read_rc) {
        if (!rc)
            result->tasks_completed = atomic_load(&after.submitted);
        result->tasks_submitted = atomic_load(&after.submitted);
        result->peak_tasks = after.peak_live_tasks;
        result->peak_heap_bytes = after.peak_heap_bytes;
        result->peak_regions = after.peak_regions;
        result->ring_waits = after.waits;
        result->orchestration_ns = after.orchestration_ns;
        result->wait_ns = after.wait_ns;
        uint64_t h0 = atomic_load(&after.queue_head[0]), h1 = atomic_load(&after.queue_head[1]);
        if (!rc && h0 == atomic_load(&after.queue_tail[0]) && h1 == atomic_load(&after.queue_tail[1])) {
            note[0] = block + launch->own[0];
            note[1] = launch->own[1];
            note[2] = h0;
            note[3] = h1;
        }
    }
    if (launch->own[2]) {
        if (!rc && !read_rc)
            rc = record_capture(env, run, &after, launch);
        env->ops->gm_free(env->pdev, launch->own[2]);
        launch->own[2] = 0;
    }
    run_block_done(env);
    simpler_error_release(rc);
    return rc;
}

const runtime_ops runtime_tensormap_and_ringbuffer = {
    .name = "tensormap_and_ringbuffer",
    .device_orchestration = 1,
    .prepare = tmr_prepare,
    .release = tmr_release,
    .stage = tmr_stage,
    .finish = tmr_finish,
};
