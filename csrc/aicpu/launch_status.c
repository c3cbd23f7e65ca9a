#include "aicpu/launch_status.h"

#include <stdarg.h>
#include <stdio.h>

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
