/*
 * Failure reports: the platform fills the tail of a run's block
 * (run_block_report) when its launch fails (platform/chip/failure_report.c,
 * which also clears it as a launch starts), or, where that memory may be
 * gone by the time the host reads it (onboard, a context that died), copies
 * it into the launch's poll.failure. The host takes it only after a failed
 * launch; simpler_last_failure gives the last one.
 */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "host/device.h"

void failure_arm(simpler_device *dev, platform_poll *poll, simpler_launch_params *params, run_block *block)
{
    params->failure_addr = run_block_report(block);
    if (!dev->launch_report)        /* without it only the GM copy is read */
        dev->launch_report = malloc(sizeof *dev->launch_report);
    poll->failure = dev->launch_report;
    if (poll->failure)
        poll->failure->magic = 0;
}

void failure_collect(simpler_device *dev, const simpler_launch_params *params, int launch_rc)
{
    dev->failure_found = 0;
    if (!launch_rc || !params->failure_addr)
        return;
    if (!dev->failure && !(dev->failure = malloc(sizeof *dev->failure)))
        return;
    simpler_failure_report *r = dev->failure;
    if (dev->launch_report && dev->launch_report->magic == SIMPLER_REPORT_MAGIC) {
        memcpy(r, dev->launch_report, sizeof *r);
    } else {
        simpler_error_hold(launch_rc);
        if (dev->ops->copy_from_device(dev->pdev, r, params->failure_addr, sizeof *r))
            r->magic = 0;
        simpler_error_release(launch_rc);
    }
    if (r->magic != SIMPLER_REPORT_MAGIC)
        return;
    dev->failure_found = 1;
    if (r->num_tasks > SIMPLER_REPORT_MAX_TASKS)
        r->num_tasks = SIMPLER_REPORT_MAX_TASKS;
}

int simpler_last_failure(simpler_device *dev, simpler_failure_report *out, int32_t *found)
{
    if (!dev || !out || !found)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_last_failure: %s is NULL",
                            !dev ? "dev" : !out ? "out" : "found");
    /* Not worker_enter(): the report of the failure that lost the device
     * is read after it. */
    pthread_mutex_lock(&dev->lock);
    int rc = SIMPLER_OK;
    if (dev->state != DEVICE_READY || worker_forked(dev)) {
        rc = simpler_fail(SIMPLER_E_STATE, "simpler_last_failure: device is %s",
                          dev->state == DEVICE_CREATED ? "not initialised"
                          : dev->state == DEVICE_READY ? "a forked parent's" : "finalized");
    } else {
        *found = dev->failure_found;
        if (dev->failure_found)
            memcpy(out, dev->failure, sizeof *out);
        else
            memset(out, 0, sizeof *out);
    }
    pthread_mutex_unlock(&dev->lock);
    return rc;
}
