/*
 * Recorded graphs, the worker's side: the device's table of graphs (ids
 * from 1, never reused while the device lives), recording as a run that
 * keeps its graph, replays as runs of a graph, and release, by hand or
 * with the callable. A replay is a run like any other (run.c): it takes a
 * run block and a slot in the run queue, and counts as a run of its
 * callable, so neither the graph nor the callable goes while it is in
 * flight.
 */
#include <stdlib.h>

#include "common/array.h"
#include "common/error.h"
#include "host/device.h"
#include "runtime/recorded_graph.h"

static int graph_add(simpler_device *dev, host_callable *c, recorded_graph *g, const simpler_run_config *config,
                     uint32_t *id)
{
    host_graph *h = calloc(1, sizeof *h);
    if (!h || array_reserve(&dev->graphs, &dev->cap_graphs, dev->num_graphs + 1ull, sizeof *dev->graphs)) {
        free(h);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "recording: out of host memory");
    }
    *h = (host_graph){.id = ++dev->next_graph_id, .callable = c, .graph = g, .config = *config};
    dev->graphs[dev->num_graphs++] = h;
    *id = h->id;
    return SIMPLER_OK;
}

static host_graph *find_graph(simpler_device *dev, uint32_t id, uint32_t *index)
{
    for (uint32_t i = 0; i < dev->num_graphs; i++)
        if (dev->graphs[i]->id == id) {
            if (index)
                *index = i;
            return dev->graphs[i];
        }
    return NULL;
}

static int no_graph(uint32_t id)
{
    return simpler_fail(SIMPLER_E_NOT_FOUND, "graph %u is not recorded on this worker (released, or its callable "
                        "was unregistered)", id);
}

static void graph_free(simpler_device *dev, uint32_t index)
{
    host_graph *h = dev->graphs[index];
    recorded_graph_free(dev->ops, dev->pdev, h->graph);
    free(h);
    dev->graphs[index] = dev->graphs[--dev->num_graphs];
}

void worker_graphs_release(simpler_device *dev, host_callable *c)
{
    for (uint32_t i = dev->num_graphs; i-- > 0;)
        if (!c || dev->graphs[i]->callable == c)
            graph_free(dev, i);
    if (!c) {
        free(dev->graphs);
        dev->graphs = NULL;
        dev->num_graphs = 0;
        dev->cap_graphs = 0;
    }
}

int simpler_graph_record(simpler_device *dev, uint32_t callable_id, const simpler_arg *args, uint32_t num_args,
                         const simpler_run_config *config, uint32_t *graph_id)
{
    if (!graph_id)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_graph_record: graph_id is NULL");
    *graph_id = 0;
    host_callable *c;
    int rc = worker_enter_callable(dev, "simpler_graph_record", callable_id, &c);
    if (rc)
        return rc;
    simpler_run_handle *r = NULL;
    rc = worker_leave(dev, run_prepare(dev, c, NULL, args, num_args, config, graph_add, &r));
    if (rc)
        return rc;
    return run_execute_free(r, graph_id);
}

int simpler_graph_prepare(simpler_device *dev, uint32_t graph_id, const simpler_arg *args, uint32_t num_args,
                          simpler_run_handle **out)
{
    if (!out)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_graph_prepare: out is NULL");
    *out = NULL;
    int rc = worker_enter(dev, "simpler_graph_prepare");
    if (rc)
        return rc;
    host_graph *h = find_graph(dev, graph_id, NULL);
    if (!h)
        return worker_leave(dev, no_graph(graph_id));
    return worker_leave(dev, run_prepare(dev, h->callable, h, args, num_args, NULL, NULL, out));
}

int simpler_graph_run(simpler_device *dev, uint32_t graph_id, const simpler_arg *args, uint32_t num_args)
{
    simpler_run_handle *r;
    int rc = simpler_graph_prepare(dev, graph_id, args, num_args, &r);
    if (rc)
        return rc;
    return run_execute_free(r, NULL);
}

int simpler_graph_release(simpler_device *dev, uint32_t graph_id)
{
    int rc = worker_enter(dev, "simpler_graph_release");
    if (rc)
        return rc;
    uint32_t i;
    host_graph *h = find_graph(dev, graph_id, &i);
    if (!h)
        return worker_leave(dev, no_graph(graph_id));
    if (h->runs)
        return worker_leave(dev, simpler_fail(SIMPLER_E_STATE, "graph %u has %u replay%s in flight: wait for them "
                                              "before releasing it", graph_id, h->runs, h->runs == 1 ? "" : "s"));
    worker_quiesce(dev);
    graph_free(dev, i);
    return worker_leave(dev, SIMPLER_OK);
}

int simpler_graph_info_get(simpler_device *dev, uint32_t graph_id, simpler_graph_info *out)
{
    if (!out)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_graph_info_get: out is NULL");
    int rc = worker_enter(dev, "simpler_graph_info_get");
    if (rc)
        return rc;
    host_graph *h = find_graph(dev, graph_id, NULL);
    if (!h)
        return worker_leave(dev, no_graph(graph_id));
    const recorded_graph *g = h->graph;
    *out = (simpler_graph_info){.callable_id = h->callable->id, .num_tasks = g->num_tasks,
                                .num_edges = g->num_edges, .image_bytes = g->image_size,
                                .num_patches = g->num_patches};
    for (uint32_t i = 0; i < g->num_gm_held; i++)
        out->held_bytes += dev->ops->gm_size_of(dev->pdev, g->gm_held[i]);
    for (uint32_t k = 0; k < g->num_scalars && k < 32; k++)
        out->fixed_scalars |= (uint32_t)g->scalar_fixed[k] << k;
    return worker_leave(dev, SIMPLER_OK);
}
