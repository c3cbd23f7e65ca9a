#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_message[SIMPLER_MESSAGE_MAX];
static _Thread_local unsigned hold_depth;

const char *simpler_strerror(int code)
{
    switch (code) {
    case SIMPLER_OK: return "ok";
    case SIMPLER_E_INVALID_ARGUMENT: return "invalid argument";
    case SIMPLER_E_NO_HOST_MEMORY: return "out of host memory";
    case SIMPLER_E_OUT_OF_MEMORY: return "out of device memory";
    case SIMPLER_E_INVALID_CALLABLE: return "invalid callable";
    case SIMPLER_E_ORCHESTRATION: return "orchestration error";
    case SIMPLER_E_TIMEOUT: return "timeout";
    case SIMPLER_E_DEVICE_LOST: return "device lost";
    case SIMPLER_E_NOT_FOUND: return "not found";
    case SIMPLER_E_EXISTS: return "already exists";
    case SIMPLER_E_STATE: return "invalid state";
    case SIMPLER_E_UNSUPPORTED: return "unsupported";
    case SIMPLER_E_CAPACITY: return "capacity exceeded";
    case SIMPLER_E_SYSTEM: return "system error";
    case SIMPLER_E_INTERRUPTED: return "interrupted";
    default: return "unknown error code";
    }
}

const char *simpler_last_error(void) { return last_message; }

void simpler_clear_error(void) { last_message[0] = '\0'; }

void simpler_error_hold(int rc)
{
    if (rc != SIMPLER_OK)
        hold_depth++;
}

void simpler_error_release(int rc)
{
    if (rc != SIMPLER_OK && hold_depth)
        hold_depth--;
}

int simpler_fail(int code, const char *fmt, ...)
{
    if (hold_depth)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    return code;
}

int simpler_fail_prefix(int code, const char *fmt, ...)
{
    if (hold_depth)
        return code;
    /* Room for both parts; the result is cut to the message size. */
    char joined[2 * SIMPLER_MESSAGE_MAX + 8];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(joined, SIMPLER_MESSAGE_MAX, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n >= SIMPLER_MESSAGE_MAX)
        n = SIMPLER_MESSAGE_MAX - 1;
    size_t old = strnlen(last_message, SIMPLER_MESSAGE_MAX - 1);
    memcpy(joined + n, ": ", 2);
    memcpy(joined + n + 2, last_message, old);
    joined[(size_t)n + 2 + old] = '\0';
    snprintf(last_message, sizeof last_message, "%.*s", SIMPLER_MESSAGE_MAX - 1, joined);
    return code;
}
