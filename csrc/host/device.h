/*
 * The host side of a device context: what simpler_device holds and what a
 * host runtime may use of it. Runtimes see the platform only through
 * device_* helpers and the ops table.
 */
#ifndef SIMPLER_HOST_DEVICE_H
#define SIMPLER_HOST_DEVICE_H

#include <pthread.h>
#include <stdint.h>

#include "callable/callable.h"
#include "host/callable_buffer.h"
#include "common/platform_ops.h"
#include "simpler/orch.h"
#include "simpler/simpler.h"

/* A registered callable: the shared buffer of its content (blob in GM,
 * parsed view, kernels on the device) and the runtime's per-registration
 * state. */
typedef struct host_callable {
    uint32_t id;
    callable_buffer *buffer;
    void *orch_so;                  /* host_build_graph: the orchestration on the host */
    simpler_orch_fn orch;
    void *runtime_state;            /* the runtime's per-registration state */
} host_callable;

/* The run's arguments as the orchestration sees them. */
typedef struct host_run {
    host_callable *callable;
    simpler_run_config config;      /* defaults filled in */
    simpler_orch_args args;
    uint64_t trace_addr;            /* GM simpler_trace, or 0 */
} host_run;

typedef struct host_runtime {
    const char *name;
    int device_orchestration;       /* the orchestration runs on the AICPU: the platform opens it */
    /* After the blob is parsed and the kernels loaded: get the
     * orchestration ready to run (on the host, or on the AICPU). */
    int (*prepare)(simpler_device *dev, host_callable *c);
    void (*release)(simpler_device *dev, host_callable *c);
    int (*run)(simpler_device *dev, const host_run *run);
    /* Free dev->runtime_cache (NULL: the runtime keeps none). */
    void (*drop_cache)(simpler_device *dev);
} host_runtime;

enum device_state { DEVICE_CREATED, DEVICE_READY, DEVICE_FINALIZED };

/* A GM block a runtime keeps from one run to the next, so that a run does
 * not allocate (and on sim fault in) its working memory each time. One
 * per device context, freed at finalize; a larger need replaces it. */
typedef struct device_scratch {
    uint64_t addr, size;
    /* The runtime's record of what the block holds; zero when the block
     * is new. */
    uint64_t note[4];
} device_scratch;

/* Blocks larger than this are freed after their run, not kept. */
#define DEVICE_SCRATCH_KEEP (256ull << 20)

struct simpler_device {
    pthread_mutex_t lock;           /* one API call at a time */
    enum device_state state;
    int32_t device_id;
    const platform_ops *ops;
    platform_dev *pdev;
    const host_runtime *runtime;
    host_callable **callables;
    uint32_t num_callables, cap_callables;
    callable_buffer **buffers;      /* one per distinct callable content */
    uint32_t num_buffers, cap_buffers;
    uint64_t callable_uploads;
    uint64_t runs;
    uint64_t tasks_completed;
    uint64_t orchestration_loads;
    uint64_t last_run_peaks[4];     /* tasks, heap bytes, regions, ring waits */
    uint64_t last_run_tasks;
    uint64_t last_run_orchestration_ns;
    uint64_t last_run_wait_ns;
    void *last_trace;               /* host copy of the last trace */
    uint64_t last_trace_size;
    device_scratch scratch;
    void *runtime_cache;            /* the runtime's host memory kept from run to run */
    platform_poll poll;             /* what waits check between slices (simpler_device_set_poll) */
    int host_lost;                  /* a host orchestration would not stop: it may run in a callable */
    uint64_t forks;                 /* forks before it was initialised: it belongs to that process */
    int32_t owner_pid;
};

/* The scratch block, at least size bytes. */
int device_scratch_get(simpler_device *dev, uint64_t size, device_scratch **out);
/* After the run that used it: keep it, unless it is too large to hold. */
void device_scratch_done(simpler_device *dev);
void device_scratch_free(simpler_device *dev);

/* Add the graph's edges to a run's trace (for runtimes that know them
 * before launch). */
int host_trace_edges(simpler_device *dev, uint64_t trace_addr, const uint64_t *pairs, uint64_t num_edges);

extern const host_runtime simpler_runtime_host_build_graph;
extern const host_runtime simpler_runtime_tensormap_and_ringbuffer;

#endif
