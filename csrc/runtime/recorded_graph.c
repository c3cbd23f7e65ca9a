/* Recorded graphs: patch sites found once, replays checked and staged. */
#include "runtime/recorded_graph.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "common/dtype.h"
#include "common/error.h"
#include "runtime/host_build_graph/graph_image.h"

static int add_patch(recorded_graph *g, uint64_t off, uint32_t kind, uint32_t index)
{
    if (array_reserve(&g->patches, &g->cap_patches, g->num_patches + 1ull, sizeof *g->patches))
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "recording: out of host memory for patch sites");
    g->patches[g->num_patches++] = (graph_patch){off, kind, index};
    return SIMPLER_OK;
}

/* Walk the image's task arguments and note where the run's go. A task
 * tensor is a run tensor's when it is based at its address (views keep the
 * base and move offset); the first such run tensor wins, and a replay that
 * gives two run tensors recorded at one address different ones is refused. */
static int find_sites(recorded_graph *g)
{
    const hbg_header *h = (const hbg_header *)g->image;
    const hbg_task *tasks = (const hbg_task *)(g->image + h->tasks_off);
    for (uint32_t i = 0; i < h->num_tasks; i++) {
        const hbg_task *t = &tasks[i];
        for (uint32_t j = 0; j < t->num_tensors; j++) {
            uint64_t off = t->tensors_off + j * sizeof(simpler_tensor);
            uint64_t addr;
            memcpy(&addr, g->image + off, sizeof addr);
            for (uint32_t a = 0; a < g->num_tensors; a++)
                if (g->tensors[a].addr == addr) {
                    if (add_patch(g, off + offsetof(simpler_tensor, addr), GRAPH_PATCH_TENSOR, a))
                        return SIMPLER_E_NO_HOST_MEMORY;
                    break;
                }
        }
        for (uint32_t j = 0; j < t->num_scalars; j++) {
            uint64_t off = t->scalars_off + j * sizeof(uint64_t);
            uint64_t v;
            memcpy(&v, g->image + off, sizeof v);
            for (uint32_t a = 0; a < g->num_scalars; a++)
                if (g->scalars[a] == v) {
                    if (add_patch(g, off, GRAPH_PATCH_SCALAR, a))
                        return SIMPLER_E_NO_HOST_MEMORY;
                    break;
                }
        }
    }
    return SIMPLER_OK;
}

int recorded_graph_make(const runtime_run *run, const uint8_t *image, uint64_t size, const uint64_t *edge_pairs,
                        uint64_t num_edges, recorded_graph **out)
{
    *out = NULL;
    recorded_graph *g = calloc(1, sizeof *g);
    if (!g)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "recording: out of host memory");
    g->num_tensors = run->args.num_tensors;
    g->num_scalars = run->args.num_scalars;
    memcpy(g->tensors, run->args.tensors, g->num_tensors * sizeof *g->tensors);
    memcpy(g->scalars, run->args.scalars, g->num_scalars * sizeof *g->scalars);
    int rc = SIMPLER_OK;
    if (size) {
        g->image = malloc(size);
        g->scratch = malloc(size);
        g->edge_pairs = malloc((num_edges ? num_edges : 1) * 2 * sizeof *g->edge_pairs);
        if (!g->image || !g->scratch || !g->edge_pairs)
            rc = simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "recording: out of host memory for a %" PRIu64 "-byte image",
                              size);
        if (!rc) {
            memcpy(g->image, image, size);
            if (num_edges)
                memcpy(g->edge_pairs, edge_pairs, num_edges * 2 * sizeof *edge_pairs);
            g->image_size = size;
            g->num_tasks = ((const hbg_header *)image)->num_tasks;
            g->num_edges = num_edges;
            rc = find_sites(g);
        }
    }
    if (rc) {
        recorded_graph_free(NULL, NULL, g);
        return rc;
    }
    *out = g;
    return SIMPLER_OK;
}

void recorded_graph_clear_scalar_sites(recorded_graph *g)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < g->num_patches; i++)
        if (g->patches[i].kind != GRAPH_PATCH_SCALAR)
            g->patches[n++] = g->patches[i];
    g->num_patches = n;
}

int recorded_graph_add_site(recorded_graph *g, uint64_t off, uint32_t scalar)
{
    return add_patch(g, off, GRAPH_PATCH_SCALAR, scalar);
}

void recorded_graph_fix_scalar(recorded_graph *g, uint32_t k)
{
    if (k < CALLABLE_MAX_ARGS)
        g->scalar_fixed[k] = 1;
}

void recorded_graph_free(const platform_ops *ops, platform_dev *pdev, recorded_graph *g)
{
    if (!g)
        return;
    for (uint32_t i = 0; ops && i < g->num_gm_held; i++)
        ops->gm_free(pdev, g->gm_held[i]);
    free(g->gm_held);
    free(g->image);
    free(g->scratch);
    free(g->edge_pairs);
    free(g->patches);
    free(g);
}

static void shape_text(const simpler_tensor *t, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = 0;
    for (uint32_t d = 0; d < t->ndim && used + 24 < len; d++)
        used += (size_t)snprintf(buf + used, len - used, "%s%" PRId64, d ? ", " : "", t->shape[d]);
}

int recorded_graph_check(const recorded_graph *g, const runtime_run *run)
{
    const simpler_orch_args *a = &run->args;
    for (uint32_t i = 0; i < g->num_tensors; i++) {
        const simpler_tensor *was = &g->tensors[i], *now = &a->tensors[i];
        int same = was->ndim == now->ndim && was->dtype == now->dtype;
        for (uint32_t d = 0; same && d < was->ndim; d++)
            same = was->shape[d] == now->shape[d];
        if (!same) {
            char ws[160], ns[160];
            shape_text(was, ws, sizeof ws);
            shape_text(now, ns, sizeof ns);
            return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "tensor argument %u: %s (%s) differs from the recorded "
                                "%s (%s); record the graph again for it", i, simpler_dtype_name(now->dtype), ns,
                                simpler_dtype_name(was->dtype), ws);
        }
        for (uint32_t j = 0; j < i; j++) {
            if (was->addr == g->tensors[j].addr && now->addr != a->tensors[j].addr)
                return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "tensor arguments %u and %u were one tensor when "
                                    "recorded: the graph cannot tell them apart; pass one tensor for both or "
                                    "record again", j, i);
            /* The other way round the graph would lack the edges between
             * their tasks (device tensors start at their allocation, so
             * two overlap only when they are one). */
            if (was->addr != g->tensors[j].addr && now->addr == a->tensors[j].addr)
                return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "tensor arguments %u and %u were two tensors when "
                                    "recorded and are one now: the graph has no dependencies between their "
                                    "tasks; record it again with them as one", j, i);
        }
    }
    for (uint32_t k = 0; k < g->num_scalars; k++)
        if (g->scalar_fixed[k] && a->scalars[k] != g->scalars[k])
            return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "scalar argument %u: %" PRIu64 " differs from the recorded "
                                "%" PRIu64 ", and the recorded graph depends on it (its tasks or their arguments "
                                "other than that value); record the graph again for it", k, a->scalars[k],
                                g->scalars[k]);
    return SIMPLER_OK;
}

int recorded_graph_stage(const runtime_env *env, recorded_graph *g, const runtime_run *run, runtime_launch *launch,
                         runtime_result *result)
{
    if (!g->image_size)
        return SIMPLER_OK;
    int rc;
    memcpy(g->scratch, g->image, g->image_size);
    for (uint32_t i = 0; i < g->num_patches; i++) {
        const graph_patch *p = &g->patches[i];
        uint64_t v = p->kind == GRAPH_PATCH_TENSOR ? run->args.tensors[p->index].addr : run->args.scalars[p->index];
        memcpy(g->scratch + p->off, &v, sizeof v);
    }
    if ((rc = runtime_stage_image(env, g->scratch, g->image_size, "recorded graph", g->num_tasks, &run->config,
                                  run->trace_addr, g->edge_pairs, g->num_edges, launch)))
        return rc;
    result->tasks_submitted = g->num_tasks;
    return SIMPLER_OK;
}

int recorded_graph_finish(const runtime_env *env, const recorded_graph *g, runtime_launch *launch, int launch_rc,
                          runtime_result *result)
{
    if (!launch_rc && launch->launch)
        result->tasks_completed = g->num_tasks;
    if (launch->launch)
        run_block_done(env);
    return launch_rc;
}
