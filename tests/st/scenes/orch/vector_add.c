/* out = a + b in one task, split over scalar[0] blocks (default 1). */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    if (!simpler_same_shape(&args->tensors[0], &args->tensors[1]) ||
        !simpler_same_shape(&args->tensors[0], &args->tensors[2]))
        return api->fail(o, "vector_add: a, b and out must have the same shape");
    simpler_tensor t[3] = {args->tensors[0], args->tensors[1], args->tensors[2]};
    uint32_t tags[3] = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    simpler_task task = {F_ADD, SIMPLER_CORE_AIV, (uint32_t)args->scalars[0], 3, t, tags, 0, NULL, 0, NULL};
    return api->submit(o, &task, NULL);
}
