/*
 * Entering a device context: what every API call on a simpler_device does
 * first (checks, the lock, lost and forked devices), and the lookups the
 * calls share. The floor of csrc/host/: worker.c (the context, callables,
 * memory), run.c (runs) and graph.c (recorded graphs) build on it and it
 * calls none of them.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>

#include "common/error.h"
#include "host/device.h"

/* Forks so far: a context made before the last fork belongs to the
 * parent. Its child has the memory but none of the threads, and shares
 * the parent's connection to an onboard device: using it there would hang
 * on threads that do not exist or talk over the parent's socket. */
static _Atomic uint64_t g_forks;

static void count_fork(void) { atomic_fetch_add(&g_forks, 1); }

void worker_watch_forks(void) { pthread_atfork(NULL, NULL, count_fork); }

uint64_t worker_forks_so_far(void) { return atomic_load(&g_forks); }

int worker_forked(const simpler_device *dev) { return dev->forks != atomic_load_explicit(&g_forks, memory_order_relaxed); }

/* Enter an API call on dev: checks the pointer, takes the lock, and checks
 * the device is initialised. */
int worker_enter(simpler_device *dev, const char *what)
{
    if (!dev)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "%s: device is NULL", what);
    if (dev->state == DEVICE_READY && worker_forked(dev))
        return simpler_fail(SIMPLER_E_STATE, "%s: this ChipWorker belongs to process %d, and this is a forked "
                            "child of it: create a ChipWorker in the child", what, (int)dev->owner_pid);
    pthread_mutex_lock(&dev->lock);
    if (dev->state != DEVICE_READY) {
        pthread_mutex_unlock(&dev->lock);
        return simpler_fail(SIMPLER_E_STATE, "%s: device is %s", what,
                            dev->state == DEVICE_CREATED ? "not initialised" : "finalized");
    }
    if (dev->host_lost || dev->ops->is_lost(dev->pdev)) {
        /* A loss the worker did not see (a stats request found the
         * context dead): the platform's own account of it. */
        const char *why = dev->ops->lost_why ? dev->ops->lost_why(dev->pdev) : NULL;
        if (!dev->lost_why[0] && why && why[0])
            snprintf(dev->lost_why, sizeof dev->lost_why, "%s", why);
        int rc = dev->lost_why[0]
                     ? simpler_fail(SIMPLER_E_DEVICE_LOST, "%s: device %d was lost after an earlier failure (%s); "
                                    "finalize this worker and create a new one", what, dev->device_id, dev->lost_why)
                     : simpler_fail(SIMPLER_E_DEVICE_LOST, "%s: device %d was lost after an earlier failure; "
                                    "finalize this worker and create a new one", what, dev->device_id);
        pthread_mutex_unlock(&dev->lock);
        return rc;
    }
    simpler_clear_error();
    return SIMPLER_OK;
}

int worker_leave(simpler_device *dev, int rc)
{
    /* The first loss is the cause every later call names. */
    if (rc == SIMPLER_E_DEVICE_LOST && !dev->lost_why[0])
        snprintf(dev->lost_why, sizeof dev->lost_why, "%s", simpler_last_error());
    pthread_mutex_unlock(&dev->lock);
    return rc;
}

void worker_quiesce(simpler_device *dev)
{
    while (dev->executing)
        pthread_cond_wait(&dev->changed, &dev->lock);
}

runtime_env worker_env(simpler_device *dev, run_block *block)
{
    return (runtime_env){dev->ops, dev->pdev, &dev->poll, block, &dev->runtime_cache};
}

/* Callable buffers: their content is shared by every registration of it. */
int worker_check_user_range(simpler_device *dev, uint64_t addr, uint64_t size, const char *what)
{
    for (uint32_t i = 0; i < dev->num_buffers; i++) {
        const callable_buffer *b = dev->buffers[i];
        if (addr < b->gm_addr + b->size && b->gm_addr < addr + (size ? size : 1))
            return simpler_fail(SIMPLER_E_INVALID_ARGUMENT,
                                "%s: 0x%" PRIx64 " is a registered callable's buffer, which is read-only", what, addr);
    }
    return SIMPLER_OK;
}

host_callable *worker_find_callable(simpler_device *dev, uint32_t id, uint32_t *index)
{
    for (uint32_t i = 0; i < dev->num_callables; i++)
        if (dev->callables[i]->id == id) {
            if (index)
                *index = i;
            return dev->callables[i];
        }
    return NULL;
}

int worker_enter_callable(simpler_device *dev, const char *what, uint32_t id, host_callable **out)
{
    *out = NULL;
    int rc = worker_enter(dev, what);
    if (rc)
        return rc;
    if (!(*out = worker_find_callable(dev, id, NULL)))
        return worker_leave(dev, simpler_fail(SIMPLER_E_NOT_FOUND, "callable id %u is not registered", id));
    return SIMPLER_OK;
}
