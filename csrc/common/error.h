/* Error reporting inside the host library: a named code plus a message kept
 * per thread, so simpler_last_error() after a failed call says what failed. */
#ifndef SIMPLER_COMMON_ERROR_H
#define SIMPLER_COMMON_ERROR_H

#include "simpler/simpler.h"

#define SIMPLER_MESSAGE_MAX 1024

/* Record a message for the calling thread and return code, so call sites
 * read `return simpler_fail(SIMPLER_E_..., "...", ...);`. */
int simpler_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Keep the current message but put context in front of it. */
int simpler_fail_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void simpler_clear_error(void);

/* The first error wins. While a failure is being cleaned up (staging
 * freed, a half-made registration undone), the cleanup's own failures must
 * not replace the message that says what went wrong: between
 * simpler_error_hold(rc) and simpler_error_release(rc), with rc a failure,
 * simpler_fail and simpler_fail_prefix only return their code. With rc ==
 * SIMPLER_OK both do nothing, so a cleanup that fails after a success still
 * reports itself. Holds nest. */
void simpler_error_hold(int rc);
void simpler_error_release(int rc);

#endif
