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

__attribute__((visibility("default"))) int simpler_aicpu_main(simpler_launch *launch,
                                                               uint32_t thread_idx)
{
    switch (launch->p.runtime) {
    case SIMPLER_RUNTIME_HOST_BUILD_GRAPH:
        return hbg_schedule(launch, thread_idx);
    case SIMPLER_RUNTIME_TMR:
        return thread_idx < launch->p.aicpu_thread_num ? tmr_schedule(launch, thread_idx)
                                                       : tmr_orchestrate(launch, thread_idx);
    default:
        aicpu_launch_fail(launch, SIMPLER_E_UNSUPPORTED, "AICPU runtime: unknown runtime kind %u",
                          launch->p.runtime);
        return SIMPLER_E_UNSUPPORTED;
    }
}
