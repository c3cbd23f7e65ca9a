/*
 * Recorded graphs: a run's task graph kept to be launched again with new
 * argument data, without running the orchestration or deriving a
 * dependency again. Both runtimes record into the host_build_graph image
 * (graph_image.h): host_build_graph keeps the image it built, and
 * tensormap_and_ringbuffer lays out the task stream its device-side
 * orchestration submitted. A replay copies the image into the run's block,
 * writes the new arguments into it (the patch sites) and launches the
 * host_build_graph scheduler on it.
 *
 * What a replay may change: the data and addresses of tensor arguments
 * (same shapes and dtypes), and a scalar argument where it reaches a
 * kernel as one of its scalars. A scalar the graph's shape depends on
 * ("fixed") must have its recorded value.
 */
#ifndef SIMPLER_RUNTIME_RECORDED_GRAPH_H
#define SIMPLER_RUNTIME_RECORDED_GRAPH_H

#include <stdint.h>

#include "runtime/runtime.h"

enum graph_patch_kind { GRAPH_PATCH_TENSOR, GRAPH_PATCH_SCALAR };

/* One place in the image the run's arguments go: a task tensor's addr (of
 * run tensor index) or a task scalar (run scalar index). */
typedef struct graph_patch {
    uint64_t off;
    uint32_t kind;
    uint32_t index;
} graph_patch;

typedef struct recorded_graph {
    uint8_t *image;                 /* host copy, as built: the scheduler's state is fresh */
    uint8_t *scratch;               /* a replay's patched copy (stages run one at a time) */
    uint64_t image_size;            /* 0: an empty graph (nothing to launch) */
    uint32_t num_tasks;
    uint64_t num_edges;
    uint64_t *edge_pairs;           /* producer, consumer: for traces */
    graph_patch *patches;
    uint32_t num_patches;
    uint64_t cap_patches;
    uint64_t *gm_held;              /* tensors the orchestration made: the graph's, reused by replays */
    uint32_t num_gm_held;
    /* The recorded arguments: replays are checked against them. */
    uint32_t num_tensors, num_scalars;
    simpler_tensor tensors[CALLABLE_MAX_ARGS];
    uint64_t scalars[CALLABLE_MAX_ARGS];
    uint8_t scalar_fixed[CALLABLE_MAX_ARGS];
} recorded_graph;

/* A graph of the image (copied) for the run's arguments: tensor patch
 * sites are the task tensors based at a run tensor's address; scalar
 * sites, the task scalars equal to a run scalar's value (a runtime that
 * can tell better narrows them: recorded_graph_drop_site). The caller
 * then hands it the GM the graph's tasks use (gm_held). */
int recorded_graph_make(const runtime_run *run, const uint8_t *image, uint64_t size, const uint64_t *edge_pairs,
                        uint64_t num_edges, recorded_graph **out);
/* For a runtime that can tell which task scalars are which run scalar's:
 * forget the sites found by value, add them one by one, and mark a
 * scalar the graph depends on. */
void recorded_graph_clear_scalar_sites(recorded_graph *g);
int recorded_graph_add_site(recorded_graph *g, uint64_t off, uint32_t scalar);
void recorded_graph_fix_scalar(recorded_graph *g, uint32_t k);
void recorded_graph_free(const platform_ops *ops, platform_dev *pdev, recorded_graph *g);

/* Check a replay's arguments (run->args) against the recording; the
 * message names the argument. */
int recorded_graph_check(const recorded_graph *g, const runtime_run *run);
/* Stage a replay in env->block (as runtime_ops.stage; its arguments
 * passed recorded_graph_check) and finish it. */
int recorded_graph_stage(const runtime_env *env, recorded_graph *g, const runtime_run *run,
                         runtime_launch *launch, runtime_result *result);
int recorded_graph_finish(const runtime_env *env, const recorded_graph *g, runtime_launch *launch, int launch_rc,
                          runtime_result *result);

#endif
