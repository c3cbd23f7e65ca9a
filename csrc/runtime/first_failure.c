#include "runtime/first_failure.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/error.h"

int first_failure(int *failed, int code, const char *fmt, ...)
{
    if (!*failed) {
        char msg[SIMPLER_MESSAGE_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        simpler_fail(code, "%s", msg);
        *failed = code;
    }
    return *failed;
}

int first_failure_keep(int *failed, int rc)
{
    if (!*failed)
        *failed = rc;
    return *failed;
}
