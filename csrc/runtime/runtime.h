/*
 * The runtime contract: what the worker (csrc/host/) asks of a runtime and
 * what it hands down. A runtime is a table of operations (prepare a
 * registration, stage a run up to its launch, finish it after, release
 * the registration) over an environment: the platform table and device,
 * the GM block the run is laid out in (kept from run to run), and the
 * runtime's own host cache. The worker launches between stage and
 * finish. A run fills a result struct; the worker copies it into its
 * counters. Nothing here knows the worker: data flows down, results
 * come back as values.
 */
#ifndef SIMPLER_RUNTIME_RUNTIME_H
#define SIMPLER_RUNTIME_RUNTIME_H

#include <stdint.h>

#include "callable/callable.h"
#include "common/gm_heap.h"
#include "common/platform_ops.h"
#include "simpler/orch.h"
#include "simpler/simpler.h"

/* The run block: one GM block per device a runtime lays its run out in
 * (graph image, rings, arguments), kept from one run to the next so that a
 * run neither allocates nor (on sim) faults in its working memory each
 * time. A larger need replaces it; a block over RUN_BLOCK_KEEP is freed
 * after its run. stats' run_block_bytes is its size. */
typedef struct run_block {
    uint64_t addr, size;
    /* The runtime's record of what the block holds from the last run;
     * zero when the block is new. */
    uint64_t layout[4];
} run_block;

#define RUN_BLOCK_KEEP (256ull << 20)

/* Every run block ends in the GM a failed launch's report is written to
 * (simpler_failure_report, platform/chip/failure_report.c), past what the
 * runtime asked for: one per run in flight, kept with its block. */
#define RUN_BLOCK_REPORT_BYTES \
    ((sizeof(simpler_failure_report) + SIMPLER_GM_ALIGN - 1) & ~(uint64_t)(SIMPLER_GM_ALIGN - 1))

static inline uint64_t run_block_report(const run_block *b)
{
    return b->addr && b->size >= RUN_BLOCK_REPORT_BYTES ? b->addr + b->size - RUN_BLOCK_REPORT_BYTES : 0;
}

typedef struct runtime_env {
    const platform_ops *ops;
    platform_dev *pdev;
    const platform_poll *poll;      /* what waits check between slices (interrupts) */
    run_block *block;               /* the device's run block (run_block_reserve) */
    void **cache;                   /* the runtime's host memory kept from run to run, NULL at first */
} runtime_env;

/* A registered callable as a runtime sees it: the parsed blob and where its
 * parts are on the device. Shared by registrations of the same content,
 * except state. */
typedef struct runtime_callable {
    const callable_info *info;      /* the blob, parsed (host copy) */
    const platform_kernel *kernels; /* [info->num_kernels] */
    const int32_t *kernel_of_func;  /* [max_func_id + 1]: kernel index, or -1 */
    uint32_t max_func_id;
    uint64_t orchestration;         /* its entry point where it runs: on the device for a runtime with
                                     * device_orchestration (opened by the platform), else on the host
                                     * (loaded by the worker); once per distinct blob */
    void *state;                    /* the runtime's per-registration state */
} runtime_callable;

/* One run: checked arguments (tensors in GM) and settings with defaults
 * filled in. Valid from stage() to finish(). */
typedef struct runtime_run {
    const runtime_callable *callable;
    simpler_run_config config;
    simpler_orch_args args;
    uint64_t trace_addr;            /* GM simpler_trace, or 0 */
    int record;                     /* keep the run's graph (runtime_launch.recorded) */
} runtime_run;

/* What a run reports, filled whether it succeeded or not (as far as known). */
typedef struct runtime_result {
    uint64_t tasks_submitted;
    uint64_t tasks_completed;       /* counted only when the launch succeeded (a later copy-back may still fail the run) */
    uint64_t orchestration_ns;      /* the orchestration function, submits included */
    uint64_t wait_ns;               /* of which it waited for ring space */
    uint64_t peak_tasks;            /* task slots in use at once */
    uint64_t peak_heap_bytes;       /* of one scope depth's heap ring */
    uint64_t peak_regions;          /* live tensor-map regions */
    uint64_t ring_waits;            /* times the orchestrator waited for ring space */
    /* A host orchestration that would not stop runs on in a callable:
     * nothing of the device may be released under it any more. */
    int host_lost;
} runtime_result;

/* A run between its stage and its finish: what the worker launches (it
 * launches when it is the run's turn on the device, perhaps while the
 * next run is staged), and what finish() reads back. */
typedef struct runtime_launch {
    int launch;                     /* 0: nothing to launch (an empty graph) */
    simpler_launch_params params;
    uint64_t own[4];                /* the runtime's own record of the run, for finish */
    uint64_t *gm_held;              /* GM the run's tasks use (tensors the runtime made): finish frees it */
    uint32_t num_gm_held;
    /* A recording run's graph (recorded_graph.h), made by stage or finish;
     * the worker takes it when the run succeeded and frees it otherwise. */
    struct recorded_graph *recorded;
} runtime_launch;

typedef struct runtime_ops {
    const char *name;
    int device_orchestration;       /* the orchestration runs on the AICPU: the platform opens it */
    /* After the blob is in GM and its kernels and orchestration are
     * loaded: what the runtime keeps per registration (sets c->state).
     * prepare and release may be NULL: nothing to keep. */
    int (*prepare)(const runtime_env *env, runtime_callable *c);
    void (*release)(const runtime_env *env, runtime_callable *c);
    /* Lay the run out in env->block, up to its launch (a host-built graph
     * is orchestrated and uploaded here). On failure nothing is left to
     * finish. */
    int (*stage)(const runtime_env *env, const runtime_run *run, runtime_launch *launch, runtime_result *result);
    /* After the launch (launch_rc its outcome; SIMPLER_OK when there was
     * none): read back the run's figures, release what the run held of
     * env->block. Returns the run's outcome. The env is the one it was
     * staged with. */
    int (*finish)(const runtime_env *env, const runtime_run *run, runtime_launch *launch, int launch_rc,
                  runtime_result *result);
    /* Free *env->cache (NULL: the runtime keeps none). */
    void (*drop_cache)(void *cache);
    /* Host bytes the cache holds (NULL: the runtime keeps none). */
    uint64_t (*cache_bytes)(const void *cache);
} runtime_ops;

/* The launch parameters of a run of the given kind on its image (or run
 * block), with the run's settings. */
static inline simpler_launch_params runtime_launch_params(uint32_t kind, const simpler_run_config *cfg,
                                                          uint64_t image_addr, uint64_t trace_addr,
                                                          uint32_t extra_threads)
{
    return (simpler_launch_params){
        .runtime = kind,
        .block_dim = cfg->block_dim,
        .aicpu_thread_num = cfg->aicpu_thread_num,
        .scheduler_timeout_ms = cfg->scheduler_timeout_ms,
        .extra_threads = extra_threads,
        .image_addr = image_addr,
        .trace_addr = trace_addr,
    };
}

/* The runtime of that name, or NULL with the error set, naming the known
 * ones. */
const runtime_ops *runtime_find(const char *name);

/* The run block, at least size bytes (whole GM units). */
int run_block_reserve(const runtime_env *env, uint64_t size, run_block **out);
/* What a failed run_block_reserve says of the run: only OutOfMemory means
 * it does not fit (a lost device, say, is its own cause). */
static inline const char *run_block_failure(int rc)
{
    return rc == SIMPLER_E_OUT_OF_MEMORY ? "does not fit in GM" : "could not be given its GM";
}
/* After the run that used it: keep it, unless it is too large to hold. */
void run_block_done(const runtime_env *env);
void run_block_free(const platform_ops *ops, platform_dev *pdev, run_block *b);

/* Add the graph's edges (producer, consumer task pairs) to a run's trace,
 * for runtimes that know them before launch. */
int runtime_trace_edges(const runtime_env *env, uint64_t trace_addr, const uint64_t *pairs, uint64_t num_edges);

/* Stage a host-built graph image (host_build_graph's, or a recorded
 * graph's) for its launch: into the run block, with its edges into the
 * run's trace when it has one (pairs: num_edges task index pairs), and
 * the launch's parameters set. what ("graph", "recorded graph") and
 * num_tasks name it in a failure; the block is given back on one. */
int runtime_stage_image(const runtime_env *env, const void *image, uint64_t size, const char *what,
                        uint32_t num_tasks, const simpler_run_config *cfg, uint64_t trace_addr,
                        const uint64_t *pairs, uint64_t num_edges, runtime_launch *launch);

/* Where a host-built graph image of size bytes can be written in place,
 * straight into the run block (*view_out), on a platform whose GM this
 * process can touch (gm_host_view: sim's heap, onboard's shared mapping):
 * no staging copy, and no staging buffer to keep.
 * *view_out is NULL, and nothing reserved, where it cannot; then the
 * image is built on the host and staged (runtime_stage_image). On a
 * failure the block is given back. */
int runtime_image_in_place(const runtime_env *env, uint64_t size, const char *what, uint32_t num_tasks,
                           void **view_out);

/* The launch of an image written in place: its edges into the run's
 * trace, and the launch's parameters set (as runtime_stage_image does
 * after its copy). The block is given back on a failure. */
int runtime_launch_in_place(const runtime_env *env, const simpler_run_config *cfg, uint64_t trace_addr,
                            const uint64_t *pairs, uint64_t num_edges, runtime_launch *launch);

extern const runtime_ops runtime_host_build_graph;
extern const runtime_ops runtime_tensormap_and_ringbuffer;

#endif
