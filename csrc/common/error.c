#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_message[SIMPLER_MESSAGE_MAX];
static _Thread_local unsigned hold_depth;

/* Every simpler_error with its name and what it means, the one list both
 * simpler_strerror and simpler_err_name read. */
static const struct error_entry {
    int code;
    const char *name;
    const char *words;
} error_table[] = {
    {SIMPLER_OK, "SIMPLER_OK", "ok"},
    {SIMPLER_E_INVALID_ARGUMENT, "SIMPLER_E_INVALID_ARGUMENT", "invalid argument"},
    {SIMPLER_E_NO_HOST_MEMORY, "SIMPLER_E_NO_HOST_MEMORY", "out of host memory"},
    {SIMPLER_E_OUT_OF_MEMORY, "SIMPLER_E_OUT_OF_MEMORY", "out of device memory"},
    {SIMPLER_E_INVALID_CALLABLE, "SIMPLER_E_INVALID_CALLABLE", "invalid callable"},
    {SIMPLER_E_ORCHESTRATION, "SIMPLER_E_ORCHESTRATION", "orchestration error"},
    {SIMPLER_E_TIMEOUT, "SIMPLER_E_TIMEOUT", "timeout"},
    {SIMPLER_E_DEVICE_LOST, "SIMPLER_E_DEVICE_LOST", "device lost"},
    {SIMPLER_E_NOT_FOUND, "SIMPLER_E_NOT_FOUND", "not found"},
    {SIMPLER_E_EXISTS, "SIMPLER_E_EXISTS", "already exists"},
    {SIMPLER_E_STATE, "SIMPLER_E_STATE", "invalid state"},
    {SIMPLER_E_UNSUPPORTED, "SIMPLER_E_UNSUPPORTED", "unsupported"},
    {SIMPLER_E_CAPACITY, "SIMPLER_E_CAPACITY", "capacity exceeded"},
    {SIMPLER_E_SYSTEM, "SIMPLER_E_SYSTEM", "system error"},
    {SIMPLER_E_INTERRUPTED, "SIMPLER_E_INTERRUPTED", "interrupted"},
};

static const struct error_entry *error_entry_of(int code)
{
    for (size_t i = 0; i < sizeof error_table / sizeof error_table[0]; i++)
        if (error_table[i].code == code)
            return &error_table[i];
    return NULL;
}

const char *simpler_strerror(int code)
{
    const struct error_entry *e = error_entry_of(code);
    return e ? e->words : "unknown error code";
}

const char *simpler_err_name(int code)
{
    const struct error_entry *e = error_entry_of(code);
    return e ? e->name : "(not a simpler_error code)";
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
