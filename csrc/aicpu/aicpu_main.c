/*
 * The AICPU runtime's entry point (libsimpler_aicpu.so). The platform calls
 * simpler_aicpu_main on each of the launch's AICPU threads; the runtime
 * named in the launch decides what those threads do.
 */
#include <stdarg.h>
#include <stdio.h>

#include "aicpu/hbg_scheduler.h"
#include "aicpu/launch_status.h"
#include "aicpu/tmr_shared.h"
#include "common/error.h"
#include "common/so_load.h"
#include "simpler/simpler.h"

void aicpu_wake_all(simpler_launch *launch)
{
    for (uint32_t t = 0; t < launch->p.aicpu_thread_num + launch->p.extra_threads; t++)
        simpler_event_signal(&launch->thread_events[t]);
}

static void set_status(simpler_launch *launch, int code, const char *fmt, va_list ap)
{
    int32_t expected = 0;
    if (atomic_compare_exchange_strong(&launch->status, &expected, code))
        vsnprintf(launch->message, sizeof launch->message, fmt, ap);
}

void aicpu_launch_error(simpler_launch *launch, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_status(launch, code, fmt, ap);
    va_end(ap);
}

void aicpu_launch_fail(simpler_launch *launch, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_status(launch, code, fmt, ap);
    va_end(ap);
    atomic_store_explicit(&launch->abort, 1, memory_order_release);
    aicpu_wake_all(launch);
}

/* Opening and closing a registration's orchestration, on the AICPU: the
 * shared object is read in place from the callable's blob in GM. */

static int tmr_load(simpler_launch *launch)
{
    tmr_callable *c = (tmr_callable *)(uintptr_t)launch->p.image_addr;
    const uint8_t *blob = (const uint8_t *)(uintptr_t)c->blob_addr;
    void *handle, *fn;
    int rc = so_load(blob + c->orch_offset, c->orch_size, "orchestration", &handle);
    if (!rc && (rc = so_symbol(handle, c->orch_entry, "orchestration", &fn)))
        so_unload(handle);
    if (rc) {
        aicpu_launch_error(launch, rc, "%s", simpler_last_error());
        return rc;
    }
    c->orch_handle = (uint64_t)(uintptr_t)handle;
    c->orch_fn = (uint64_t)(uintptr_t)fn;
    return SIMPLER_OK;
}

static int tmr_unload(simpler_launch *launch)
{
    tmr_callable *c = (tmr_callable *)(uintptr_t)launch->p.image_addr;
    so_unload((void *)(uintptr_t)c->orch_handle);
    c->orch_handle = c->orch_fn = 0;
    return SIMPLER_OK;
}

__attribute__((visibility("default"))) int simpler_aicpu_main(simpler_launch *launch,
                                                               uint32_t thread_idx)
{
    switch (launch->p.runtime) {
    case SIMPLER_RUNTIME_HOST_BUILD_GRAPH:
        return hbg_schedule(launch, thread_idx);
    case SIMPLER_RUNTIME_TMR:
        return thread_idx < launch->p.aicpu_thread_num ? tmr_schedule(launch, thread_idx)
                                                       : tmr_orchestrate(launch, thread_idx);
    case SIMPLER_RUNTIME_TMR_LOAD:
        return thread_idx == 0 ? tmr_load(launch) : SIMPLER_OK;
    case SIMPLER_RUNTIME_TMR_UNLOAD:
        return thread_idx == 0 ? tmr_unload(launch) : SIMPLER_OK;
    default:
        aicpu_launch_fail(launch, SIMPLER_E_UNSUPPORTED, "AICPU runtime: unknown runtime kind %u",
                          launch->p.runtime);
        return SIMPLER_E_UNSUPPORTED;
    }
}
