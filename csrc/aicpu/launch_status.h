/* Reporting a failed launch from AICPU code: the first failure wins. */
#ifndef SIMPLER_AICPU_LAUNCH_STATUS_H
#define SIMPLER_AICPU_LAUNCH_STATUS_H

#include "common/device_abi.h"

/* Record status code and message unless another failure came first, stop
 * every AICPU thread of the launch and wake the sleeping ones. */
void aicpu_launch_fail(simpler_launch *launch, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record status code and message unless another failure came first, but
 * let the launch run down normally (tasks already submitted finish). */
void aicpu_launch_error(simpler_launch *launch, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Wake every AICPU thread of the launch (after the last task, or on abort). */
void aicpu_wake_all(simpler_launch *launch);

#endif
