/* One task of scalar[0] blocks, each busy scalar[1] microseconds. */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    uint64_t us = args->scalars[1];
    simpler_task t = {F_SPIN_US, SIMPLER_CORE_AIV, (uint32_t)args->scalars[0], 0, NULL, NULL, 1, &us, 0, NULL};
    return api->submit(o, &t, NULL);
}
