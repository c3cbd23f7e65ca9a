/*
 * simpler/orch.h: the orchestration API.
 *
 * An orchestration is a C function in its own shared object. It receives
 * the run's arguments and submits tasks through the table it is handed; it
 * links no runtime code, so the same object runs under either runtime:
 *
 *     #include <simpler/orch.h>
 *     SIMPLER_ORCHESTRATION(orchestrate) {
 *         simpler_tensor t[3] = {args->tensors[0], args->tensors[1], args->tensors[2]};
 *         uint32_t tags[3] = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
 *         return simpler_submit(api, o, 0, SIMPLER_CORE_AIV, t, tags, 3, NULL, 0, NULL);
 *     }
 *
 * Dependencies follow from the tags: a task that reads a region waits for
 * the last task that wrote an overlapping region; a task that writes waits
 * for earlier readers and writers of it. Explicit predecessors (task.deps,
 * ids returned by earlier submits) and scopes add to that. Every call returns SIMPLER_OK (0) or a negative simpler_error; a
 * non-zero return from the orchestration fails the run.
 */
#ifndef SIMPLER_ORCH_H
#define SIMPLER_ORCH_H

#include <stddef.h>
#include <stdint.h>
#include "simpler/types.h"

#define SIMPLER_ORCH_API_VERSION 1

typedef struct simpler_orch simpler_orch;   /* the runtime's state, opaque */
typedef int64_t simpler_task_id;

typedef struct simpler_task {
    uint32_t func_id;            /* which kernel of the callable */
    uint32_t core_type;          /* must match the kernel's core type */
    uint32_t block_num;          /* blocks (cores) the task spans; 0 means 1 */
    uint32_t num_tensors;        /* at most SIMPLER_MAX_TASK_TENSORS (types.h) */
    simpler_tensor *tensors;     /* OUTPUT entries get their addr filled in */
    const uint32_t *tags;        /* one simpler_tag per tensor */
    uint32_t num_scalars;        /* at most SIMPLER_MAX_TASK_SCALARS */
    const uint64_t *scalars;
    uint32_t num_deps;           /* explicit predecessors */
    const simpler_task_id *deps;
} simpler_task;

typedef struct simpler_orch_args {
    const simpler_tensor *tensors;
    const uint64_t *scalars;
    uint32_t num_tensors;
    uint32_t num_scalars;
} simpler_orch_args;

typedef struct simpler_orch_api {
    uint32_t version;   /* SIMPLER_ORCH_API_VERSION */
    uint32_t size;      /* sizeof(simpler_orch_api) of the runtime */
    int (*submit)(simpler_orch *o, simpler_task *task, simpler_task_id *id_out);
    int (*scope_begin)(simpler_orch *o);
    int (*scope_end)(simpler_orch *o);
    /* Fail the run with a message (e.g. "shapes of a and b differ"). Returns
     * SIMPLER_E_ORCHESTRATION so the caller can return it straight away. */
    int (*fail)(simpler_orch *o, const char *message);
} simpler_orch_api;

typedef int (*simpler_orch_fn)(const simpler_orch_api *api, simpler_orch *o,
                               const simpler_orch_args *args);

#define SIMPLER_ORCHESTRATION(name)                                             \
    __attribute__((visibility("default"))) int name(const simpler_orch_api *api, \
                                                    simpler_orch *o,            \
                                                    const simpler_orch_args *args)

/* True when two tensors have the same shape. */
static inline int simpler_same_shape(const simpler_tensor *a, const simpler_tensor *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (uint32_t i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}

/* Submit a task in one call; id_out may be NULL. */
static inline int simpler_submit(const simpler_orch_api *api, simpler_orch *o, uint32_t func_id,
                                 uint32_t core_type, simpler_tensor *tensors,
                                 const uint32_t *tags, uint32_t num_tensors,
                                 const uint64_t *scalars, uint32_t num_scalars,
                                 simpler_task_id *id_out)
{
    simpler_task t = {func_id, core_type, 1, num_tensors, tensors, tags,
                      num_scalars, scalars, 0, NULL};
    return api->submit(o, &t, id_out);
}

/* A new tensor for an OUTPUT argument: dtype and shape, row-major strides;
 * submit fills in the address. */
static inline simpler_tensor simpler_tensor_new(uint32_t dtype, uint32_t ndim, const int64_t *shape)
{
    simpler_tensor t;
    t.addr = 0;
    t.offset = 0;
    t.ndim = ndim;
    t.dtype = dtype;
    int64_t stride = 1;
    for (int i = SIMPLER_MAX_DIMS - 1; i >= 0; i--) {
        t.shape[i] = (uint32_t)i < ndim ? shape[i] : 1;
        t.strides[i] = (uint32_t)i < ndim ? stride : 0;
        if ((uint32_t)i < ndim)
            stride *= shape[i];
    }
    return t;
}

/* A sub-region of t: start and shape per dimension, same strides. The
 * runtime checks at submit that the view lies inside its base tensor's
 * allocation. */
static inline simpler_tensor simpler_view(const simpler_tensor *t, const int64_t *start,
                                          const int64_t *shape)
{
    simpler_tensor v = *t;
    for (uint32_t i = 0; i < t->ndim && i < SIMPLER_MAX_DIMS; i++) {
        v.offset += (uint64_t)(start[i] * t->strides[i]);
        v.shape[i] = shape[i];
    }
    return v;
}

static inline simpler_tensor simpler_view2d(const simpler_tensor *t, int64_t row, int64_t col,
                                            int64_t rows, int64_t cols)
{
    int64_t start[2] = {row, col}, shape[2] = {rows, cols};
    return simpler_view(t, start, shape);
}

#endif
