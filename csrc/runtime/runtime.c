/* The runtimes by name, and what they share: the run block and trace edges. */
#include "runtime/runtime.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/gm_heap.h"
#include "common/trace.h"

static const runtime_ops *const g_runtimes[] = {&runtime_host_build_graph, &runtime_tensormap_and_ringbuffer};

#define NUM_RUNTIMES (sizeof g_runtimes / sizeof g_runtimes[0])

const runtime_ops *runtime_find(const char *name)
{
    for (size_t i = 0; i < NUM_RUNTIMES; i++)
        if (strcmp(g_runtimes[i]->name, name) == 0)
            return g_runtimes[i];
    char known[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < NUM_RUNTIMES && used < sizeof known; i++) {
        int w = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", g_runtimes[i]->name);
        if (w > 0)
            used += (size_t)w;
    }
    simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "unknown runtime '%s' (known: %s)", name, known);
    return NULL;
}

void run_block_free(const platform_ops *ops, platform_dev *pdev, run_block *b)
{
    if (b->addr)
        ops->gm_free(pdev, b->addr);
    memset(b, 0, sizeof *b);
}

int run_block_reserve(const runtime_env *env, uint64_t size, run_block **out)
{
    run_block *b = env->block;
    size += RUN_BLOCK_REPORT_BYTES;     /* the tail a failed launch's report goes to */
    if (b->addr && b->size < size)
        run_block_free(env->ops, env->pdev, b);
    if (!b->addr) {
        /* Whole heap units: the size is what the heap commits, and what
         * stats report as kept. */
        size = (size + SIMPLER_GM_ALIGN - 1) & ~(uint64_t)(SIMPLER_GM_ALIGN - 1);
        int rc = env->ops->gm_alloc(env->pdev, size, &b->addr);
        if (rc) {
            b->addr = 0;
            return rc;
        }
        b->size = size;
        memset(b->layout, 0, sizeof b->layout);
    }
    *out = b;
    return SIMPLER_OK;
}

void run_block_done(const runtime_env *env)
{
    if (env->block->size > RUN_BLOCK_KEEP)
        run_block_free(env->ops, env->pdev, env->block);
}

/* What a staged or in-place image's launch shares once the image is in
 * the run block; the block is given back on a failure. */
static int launch_image(const runtime_env *env, int rc, const simpler_run_config *cfg, uint64_t trace_addr,
                        const uint64_t *pairs, uint64_t num_edges, runtime_launch *launch)
{
    if (!rc && trace_addr)
        rc = runtime_trace_edges(env, trace_addr, pairs, num_edges);
    if (rc) {
        simpler_error_hold(rc);
        run_block_done(env);
        simpler_error_release(rc);
        return rc;
    }
    launch->launch = 1;
    launch->params = runtime_launch_params(SIMPLER_RUNTIME_HOST_BUILD_GRAPH, cfg, env->block->addr, trace_addr, 0);
    return SIMPLER_OK;
}

static int reserve_image(const runtime_env *env, uint64_t size, const char *what, uint32_t num_tasks,
                         run_block **out)
{
    int rc = run_block_reserve(env, size, out);
    if (rc)
        return simpler_fail_prefix(rc, "%s of %u tasks (%" PRIu64 "-byte image) %s", what, num_tasks, size,
                                   run_block_failure(rc));
    memset((*out)->layout, 0, sizeof (*out)->layout);   /* what another runtime kept there is gone */
    return SIMPLER_OK;
}

int runtime_stage_image(const runtime_env *env, const void *image, uint64_t size, const char *what,
                        uint32_t num_tasks, const simpler_run_config *cfg, uint64_t trace_addr,
                        const uint64_t *pairs, uint64_t num_edges, runtime_launch *launch)
{
    run_block *rb;
    int rc = reserve_image(env, size, what, num_tasks, &rb);
    if (rc)
        return rc;
    rc = env->ops->copy_to_device(env->pdev, rb->addr, image, size);
    return launch_image(env, rc, cfg, trace_addr, pairs, num_edges, launch);
}

int runtime_image_in_place(const runtime_env *env, uint64_t size, const char *what, uint32_t num_tasks,
                           void **view_out)
{
    *view_out = NULL;
    if (!env->ops->gm_host_view)
        return SIMPLER_OK;
    run_block *rb;
    int rc = reserve_image(env, size, what, num_tasks, &rb);
    if (!rc && (rc = env->ops->gm_host_view(env->pdev, rb->addr, size, view_out))) {
        *view_out = NULL;
        simpler_error_hold(rc);
        run_block_done(env);
        simpler_error_release(rc);
    }
    return rc;
}

int runtime_launch_in_place(const runtime_env *env, const simpler_run_config *cfg, uint64_t trace_addr,
                            const uint64_t *pairs, uint64_t num_edges, runtime_launch *launch)
{
    return launch_image(env, SIMPLER_OK, cfg, trace_addr, pairs, num_edges, launch);
}

int runtime_trace_edges(const runtime_env *env, uint64_t trace_addr, const uint64_t *pairs, uint64_t num_edges)
{
    simpler_trace hdr;
    int rc = env->ops->copy_from_device(env->pdev, &hdr, trace_addr, sizeof hdr);
    if (rc)
        return rc;
    uint64_t n = num_edges < hdr.max_edges ? num_edges : hdr.max_edges;
    if (n)
        rc = env->ops->copy_to_device(env->pdev, trace_addr + hdr.edges_off, pairs, n * sizeof(simpler_trace_edge));
    atomic_store(&hdr.num_edges, (uint32_t)n);
    atomic_store(&hdr.dropped_edges, (uint32_t)(num_edges - n));
    if (!rc)
        rc = env->ops->copy_to_device(env->pdev, trace_addr, &hdr, sizeof hdr);
    return rc;
}
