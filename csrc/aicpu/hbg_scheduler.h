#ifndef SIMPLER_AICPU_HBG_SCHEDULER_H
#define SIMPLER_AICPU_HBG_SCHEDULER_H

#include "common/device_abi.h"

/* Schedule a host_build_graph image on this thread's share of the cores
 * until every task finished or the launch aborted. */
int hbg_schedule(simpler_launch *launch, uint32_t thread_idx);

#endif
