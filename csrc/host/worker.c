/*
 * The public host API (simpler/simpler.h): argument checks, the device
 * context's state, callable registration, and staging a run's arguments in
 * and out of GM around the runtime.
 */

#include <dlfcn.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/array.h"
#include "common/dtype.h"
#include "common/error.h"
#include "common/gm_heap.h"
#include "host/device.h"

#define MAX_DEVICE_ID 63



int simpler_device_create(simpler_device **out)
{
    if (!out)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_device_create: out is NULL");
    simpler_device *dev = calloc(1, sizeof *dev);
    if (!dev)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "simpler_device_create: out of host memory");
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, worker_watch_forks);
    pthread_mutex_init(&dev->lock, NULL);
    pthread_cond_init(&dev->changed, NULL);
    dev->max_inflight = HOST_DEFAULT_INFLIGHT;
    dev->state = DEVICE_CREATED;
    *out = dev;
    return SIMPLER_OK;
}

/* The directory of this library: the AICPU and AICore objects sit beside it. */
static int lib_dir(char *out, size_t size)
{
    Dl_info info;
    if (!dladdr((void *)lib_dir, &info) || !info.dli_fname)
        return simpler_fail(SIMPLER_E_SYSTEM, "cannot find where libsimpler is installed");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", info.dli_fname);
    snprintf(out, size, "%s", dirname(tmp));
    return SIMPLER_OK;
}

int simpler_device_init(simpler_device *dev, const char *platform, const char *runtime, int32_t device_id,
                        const simpler_device_options *options)
{
    if (!dev || !platform || !runtime)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_device_init: device, platform and runtime are required");
    pthread_mutex_lock(&dev->lock);
    int rc = SIMPLER_OK;
    if (dev->state != DEVICE_CREATED) {
        rc = simpler_fail(SIMPLER_E_STATE, "simpler_device_init: device is already %s",
                          dev->state == DEVICE_READY ? "initialised" : "finalized");
    } else if (device_id < 0 || device_id > MAX_DEVICE_ID) {
        rc = simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "device_id %d out of range 0..%d", device_id, MAX_DEVICE_ID);
    } else if (!(dev->ops = platform_find(platform))) {
        rc = SIMPLER_E_INVALID_ARGUMENT;
    }
    if (!rc && !(dev->runtime = runtime_find(runtime)))
        rc = SIMPLER_E_INVALID_ARGUMENT;
    char dir[4096];
    if (!rc)
        rc = lib_dir(dir, sizeof dir);
    if (!rc)
        rc = dev->ops->open(platform, device_id, options, dir, &dev->pdev);
    if (!rc) {
        dev->device_id = device_id;
        snprintf(dev->platform, sizeof dev->platform, "%s", platform);
        dev->forks = worker_forks_so_far();
        dev->owner_pid = getpid();
        dev->state = DEVICE_READY;
    }
    pthread_mutex_unlock(&dev->lock);
    return rc;
}


static void callable_free(simpler_device *dev, host_callable *c)
{
    /* An orchestration thread that would not stop may still run in it. */
    if (c->buffer && !dev->host_lost && dev->runtime->release) {
        runtime_env env = worker_env(dev, &dev->blocks[0]);
        dev->runtime->release(&env, &c->view);
    }
    callable_buffer_release(dev, c->buffer);
    free(c);
}

int simpler_device_finalize(simpler_device *dev)
{
    if (!dev)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_device_finalize: device is NULL");
    if (dev->state == DEVICE_READY && worker_forked(dev)) {
        /* The parent's: touch none of it (its lock may even be held by a
         * thread the fork left behind). The child's copy is only memory. */
        dev->state = DEVICE_FINALIZED;
        return SIMPLER_OK;
    }
    peer_close_all(dev);    /* before our lock: it takes other devices' locks */
    pthread_mutex_lock(&dev->lock);
    if (dev->state == DEVICE_READY) {
        worker_quiesce(dev);
        worker_runs_end(dev);
        worker_graphs_release(dev, NULL);
        for (uint32_t i = 0; i < dev->num_callables; i++)
            callable_free(dev, dev->callables[i]);
        free(dev->callables);
        dev->callables = NULL;
        dev->num_callables = dev->cap_callables = 0;
        free(dev->buffers);
        dev->buffers = NULL;
        dev->num_buffers = dev->cap_buffers = 0;
        for (uint32_t i = 0; i < HOST_MAX_INFLIGHT; i++)
            run_block_free(dev->ops, dev->pdev, &dev->blocks[i]);
        dev->ops->close(dev->pdev);
        dev->pdev = NULL;
    }
    free(dev->last_trace);
    dev->last_trace = NULL;
    dev->last_trace_size = 0;
    free(dev->failure);
    dev->failure = NULL;
    free(dev->launch_report);
    dev->launch_report = NULL;
    dev->failure_found = 0;
    if (dev->runtime_cache)
        dev->runtime->drop_cache(dev->runtime_cache);
    dev->runtime_cache = NULL;
    dev->state = DEVICE_FINALIZED;
    pthread_mutex_unlock(&dev->lock);
    return SIMPLER_OK;
}

void simpler_device_destroy(simpler_device *dev)
{
    if (!dev)
        return;
    int parents = dev->state == DEVICE_READY && worker_forked(dev);
    simpler_device_finalize(dev);
    if (parents)
        return;
    pthread_mutex_destroy(&dev->lock);
    pthread_cond_destroy(&dev->changed);
    free(dev);
}

int simpler_device_set_poll(simpler_device *dev, simpler_poll_fn fn, void *ctx)
{
    int rc = worker_enter(dev, "simpler_device_set_poll");
    if (rc)
        return rc;
    dev->poll = (platform_poll){.fn = fn, .ctx = ctx};
    return worker_leave(dev, SIMPLER_OK);
}

int simpler_device_progress(simpler_device *dev, uint64_t *tasks_done, uint64_t *tasks_submitted)
{
    /* No lock: the launch waits with it held on platforms that launch
     * alone, and this is called from the poll of that very wait. */
    if (!dev || !tasks_done || !tasks_submitted)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_device_progress: %s is NULL",
                            !dev ? "dev" : !tasks_done ? "tasks_done" : "tasks_submitted");
    *tasks_submitted = atomic_load_explicit(&dev->progress.tasks_submitted, memory_order_relaxed);
    *tasks_done = atomic_load_explicit(&dev->progress.tasks_done, memory_order_relaxed);
    /* Stored as two words: never show more done than known. */
    if (*tasks_done > *tasks_submitted)
        *tasks_submitted = *tasks_done;
    return SIMPLER_OK;
}

int simpler_device_stats_get(simpler_device *dev, simpler_device_stats *out)
{
    if (!out)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_device_stats_get: out is NULL");
    int rc = worker_enter(dev, "simpler_device_stats_get");
    if (rc)
        return rc;
    worker_quiesce(dev);
    platform_counters pc = {0};
    dev->ops->counters(dev->pdev, &pc);
    if (dev->ops->is_lost(dev->pdev)) {     /* the counters' request found the device (context) gone */
        const char *why = dev->ops->lost_why ? dev->ops->lost_why(dev->pdev) : NULL;
        return worker_leave(dev, simpler_fail(SIMPLER_E_DEVICE_LOST, "simpler_device_stats_get: device %d was "
                                              "lost%s%s", dev->device_id, why && why[0] ? ": " : "",
                                              why ? why : ""));
    }
    memset(out, 0, sizeof *out);
    out->gm_capacity = pc.gm_capacity;
    out->committed_bytes = pc.committed_bytes;
    out->peak_committed_bytes = pc.peak_committed_bytes;
    out->live_allocations = pc.live_allocations;
    out->loaded_objects = pc.loaded_objects;
    /* Orchestrations on the host: the platform counts those on the device. */
    for (uint32_t i = 0; i < dev->num_buffers; i++)
        out->loaded_objects += dev->buffers[i]->host_orchestration != NULL;
    out->orchestration_loads = dev->orchestration_loads;
    for (uint32_t i = 0; i < HOST_MAX_INFLIGHT; i++)
        out->run_block_bytes += dev->blocks[i].size;
    if (dev->runtime_cache && dev->runtime->cache_bytes)
        out->host_cache_bytes = dev->runtime->cache_bytes(dev->runtime_cache);
    out->callable_buffers = dev->num_buffers;
    out->callable_uploads = dev->callable_uploads;
    out->last_run_tasks = dev->last_run.tasks_submitted;
    out->last_run_orchestration_ns = dev->last_run.orchestration_ns;
    out->last_run_wait_ns = dev->last_run.wait_ns;
    out->last_run_peak_tasks = dev->last_run.peak_tasks;
    out->last_run_peak_heap_bytes = dev->last_run.peak_heap_bytes;
    out->last_run_peak_regions = dev->last_run.peak_regions;
    out->last_run_ring_waits = dev->last_run.ring_waits;
    out->registered_callables = dev->num_callables;
    out->recorded_graphs = dev->num_graphs;
    out->runs = dev->runs;
    out->tasks_completed = dev->tasks_completed;
    out->core_threads = pc.core_threads;
    out->aicpu_threads = pc.aicpu_threads;
    out->core_resets = pc.core_resets;
    out->device_pid = pc.device_pid;
    out->device_clients = pc.device_clients;
    out->device_committed_bytes = pc.device_committed_bytes;
    out->device_binary_installs = pc.device_binary_installs;
    out->device_executor_loads = pc.device_executor_loads;
    out->aicpu_uploads = pc.aicpu_uploads;
    out->executor_registrations = pc.executor_registrations;
    out->device_context_pid = pc.device_context_pid;
    out->peer_windows = peer_windows_held(dev);
    out->device_peer_windows = pc.peer_windows;
    return worker_leave(dev, SIMPLER_OK);
}

int simpler_committed_memory(simpler_device *dev, uint64_t *bytes_out)
{
    if (!bytes_out)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_committed_memory: bytes_out is NULL");
    simpler_device_stats st;
    int rc = simpler_device_stats_get(dev, &st);
    if (!rc)
        *bytes_out = st.committed_bytes;
    return rc;
}

int simpler_gm_alloc(simpler_device *dev, uint64_t size, uint64_t *addr_out)
{
    if (!addr_out)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_gm_alloc: addr_out is NULL");
    int rc = worker_enter(dev, "simpler_gm_alloc");
    return rc ? rc : worker_leave(dev, dev->ops->gm_alloc(dev->pdev, size, addr_out));
}


int simpler_gm_free(simpler_device *dev, uint64_t addr)
{
    int rc = worker_enter(dev, "simpler_gm_free");
    if (rc)
        return rc;
    if ((rc = worker_check_user_range(dev, addr, 1, "simpler_gm_free")) || (rc = peer_check_free(dev, addr)))
        return worker_leave(dev, rc);
    return worker_leave(dev, dev->ops->gm_free(dev->pdev, addr));
}

int simpler_gm_copy_to_device(simpler_device *dev, uint64_t dst, const void *src, uint64_t size)
{
    if (!src && size)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_gm_copy_to_device: src is NULL");
    int rc = worker_enter(dev, "simpler_gm_copy_to_device");
    if (rc)
        return rc;
    if ((rc = worker_check_user_range(dev, dst, size, "simpler_gm_copy_to_device")))
        return worker_leave(dev, rc);
    return worker_leave(dev, dev->ops->copy_to_device(dev->pdev, dst, src, size));
}

int simpler_gm_copy_from_device(simpler_device *dev, void *dst, uint64_t src, uint64_t size)
{
    if (!dst && size)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_gm_copy_from_device: dst is NULL");
    int rc = worker_enter(dev, "simpler_gm_copy_from_device");
    return rc ? rc : worker_leave(dev, dev->ops->copy_from_device(dev->pdev, dst, src, size));
}

int simpler_callable_validate(const void *blob, uint64_t size)
{
    callable_info *info;
    int rc = callable_parse(blob, size, &info);
    callable_info_free(info);
    return rc;
}


/* The content's shared buffer, then the runtime's own preparation. */
static int callable_load(simpler_device *dev, host_callable *c, const void *blob, uint64_t size)
{
    int rc = callable_buffer_acquire(dev, blob, size, &c->buffer);
    if (rc)
        return rc;
    const callable_buffer *b = c->buffer;
    c->view = (runtime_callable){.info = b->info, .kernels = b->kernels, .kernel_of_func = b->kernel_of_func,
                                 .max_func_id = b->max_func_id, .orchestration = b->orchestration};
    runtime_env env = worker_env(dev, &dev->blocks[0]);
    return dev->runtime->prepare ? dev->runtime->prepare(&env, &c->view) : SIMPLER_OK;
}

int simpler_callable_register(simpler_device *dev, uint32_t callable_id, const void *blob, uint64_t size)
{
    if (!blob)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_callable_register: blob is NULL");
    int rc = worker_enter(dev, "simpler_callable_register");
    if (rc)
        return rc;
    worker_quiesce(dev);    /* loading may talk to the device, which a launch has to itself */
    if (worker_find_callable(dev, callable_id, NULL))
        return worker_leave(dev, simpler_fail(SIMPLER_E_EXISTS,
                                       "callable id %u is already registered (unregister it first)", callable_id));
    if (array_reserve(&dev->callables, &dev->cap_callables, dev->num_callables + 1ull, sizeof *dev->callables))
        return worker_leave(dev, simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "register: out of host memory"));
    host_callable *c = calloc(1, sizeof *c);
    if (!c)
        return worker_leave(dev, simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "register: out of host memory"));
    c->id = callable_id;
    rc = callable_load(dev, c, blob, size);
    if (rc) {
        simpler_error_hold(rc);
        callable_free(dev, c);
        simpler_error_release(rc);
        return worker_leave(dev, rc);
    }
    dev->callables[dev->num_callables++] = c;
    return worker_leave(dev, SIMPLER_OK);
}

int simpler_callable_buffer(simpler_device *dev, uint32_t callable_id, uint64_t *addr_out, uint64_t *size_out)
{
    if (!addr_out || !size_out)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_callable_buffer: addr_out and size_out are required");
    int rc = worker_enter(dev, "simpler_callable_buffer");
    if (rc)
        return rc;
    host_callable *c = worker_find_callable(dev, callable_id, NULL);
    if (!c)
        return worker_leave(dev, simpler_fail(SIMPLER_E_NOT_FOUND, "callable id %u is not registered", callable_id));
    *addr_out = c->buffer->gm_addr;
    *size_out = c->buffer->size;
    return worker_leave(dev, SIMPLER_OK);
}

int simpler_callable_unregister(simpler_device *dev, uint32_t callable_id)
{
    int rc = worker_enter(dev, "simpler_callable_unregister");
    if (rc)
        return rc;
    uint32_t i;
    host_callable *c = worker_find_callable(dev, callable_id, &i);
    if (!c)
        return worker_leave(dev, simpler_fail(SIMPLER_E_NOT_FOUND, "callable id %u is not registered", callable_id));
    if (c->runs)
        return worker_leave(dev, simpler_fail(SIMPLER_E_STATE, "callable id %u has %u run%s in flight: wait for "
                                              "them (or cancel them) before unregistering it", callable_id, c->runs,
                                              c->runs == 1 ? "" : "s"));
    worker_quiesce(dev);
    worker_graphs_release(dev, c);
    callable_free(dev, c);
    dev->callables[i] = dev->callables[--dev->num_callables];
    return worker_leave(dev, SIMPLER_OK);
}

/* ------------------------------------------------------------------ */
/* fault injection (the faulty platform) */

int simpler_device_inject_fault(simpler_device *dev, uint32_t kinds, uint64_t nth)
{
    int rc = worker_enter(dev, "simpler_device_inject_fault");
    if (rc)
        return rc;
    if (!dev->ops->fault_arm)
        return worker_leave(dev, simpler_fail(SIMPLER_E_UNSUPPORTED, "simpler_device_inject_fault: platform '%s' injects "
                                       "no faults (use faulty:%s)", dev->ops->name, dev->ops->name));
    if (kinds & ~(uint32_t)SIMPLER_FAULT_ALL || (nth && !kinds))
        return worker_leave(dev, simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_device_inject_fault: kinds 0x%x: "
                                       "expected a non-empty mask of SIMPLER_FAULT_* (0x%x)", kinds,
                                       SIMPLER_FAULT_ALL));
    return worker_leave(dev, dev->ops->fault_arm(dev->pdev, kinds, nth));
}

int simpler_device_fault_counts(simpler_device *dev, simpler_fault_counts *out)
{
    if (!dev || !out)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_device_fault_counts: device and out are required");
    /* Not worker_enter(): a test reads them after the fault that lost the
     * context, too. */
    pthread_mutex_lock(&dev->lock);
    int rc = SIMPLER_OK;
    if (dev->state != DEVICE_READY || worker_forked(dev))
        rc = simpler_fail(SIMPLER_E_STATE, "simpler_device_fault_counts: device is %s",
                          dev->state == DEVICE_CREATED ? "not initialised" : dev->state == DEVICE_READY
                          ? "a forked parent's" : "finalized");
    else if (!dev->ops->fault_counts)
        rc = simpler_fail(SIMPLER_E_UNSUPPORTED, "simpler_device_fault_counts: platform '%s' injects no faults",
                          dev->ops->name);
    else {
        memset(out, 0, sizeof *out);
        dev->ops->fault_counts(dev->pdev, out);
    }
    pthread_mutex_unlock(&dev->lock);
    return rc;
}

/* ------------------------------------------------------------------ */
/* a platform's device process, by hand (only onboard has one) */

static int check_device_id(int32_t device_id)
{
    if (device_id < 0 || device_id > MAX_DEVICE_ID)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "device_id %d out of range 0..%d", device_id, MAX_DEVICE_ID);
    return SIMPLER_OK;
}

/* The table of the platform the simpler_onboard_* calls are for, once it
 * says it manages a device process. */
static int service_platform(const char *what, int32_t device_id, const platform_ops **out)
{
    int rc = check_device_id(device_id);
    if (rc)
        return rc;
    const platform_ops *p = platform_find("onboard");
    if (!p)
        return SIMPLER_E_UNSUPPORTED;
    if (!p->service_start || !p->service_status || !p->service_stop)
        return simpler_fail(SIMPLER_E_UNSUPPORTED, "%s: platform '%s' has no device process to manage", what,
                            p->name);
    *out = p;
    return SIMPLER_OK;
}

int simpler_onboard_start(int32_t device_id, uint64_t gm_capacity, double idle_timeout_s)
{
    char dir[4096];
    const platform_ops *p;
    int rc = service_platform("simpler_onboard_start", device_id, &p);
    if (!rc && !(idle_timeout_s >= 0))
        rc = simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "idle_timeout_s must be >= 0");
    if (!rc && gm_capacity && gm_capacity < 4096)
        rc = simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "gm_capacity must be at least 4096 bytes");
    return rc ? rc : (rc = lib_dir(dir, sizeof dir)) ? rc : p->service_start(dir, device_id, gm_capacity, idle_timeout_s);
}

int simpler_onboard_status(int32_t device_id, simpler_onboard_info *out)
{
    char dir[4096];
    if (!out)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_onboard_status: out is NULL");
    const platform_ops *p;
    int rc = service_platform("simpler_onboard_status", device_id, &p);
    return rc ? rc : (rc = lib_dir(dir, sizeof dir)) ? rc : p->service_status(dir, device_id, out);
}

int simpler_onboard_stop(int32_t device_id, int32_t force)
{
    char dir[4096];
    const platform_ops *p;
    int rc = service_platform("simpler_onboard_stop", device_id, &p);
    return rc ? rc : (rc = lib_dir(dir, sizeof dir)) ? rc : p->service_stop(dir, device_id, force);
}
