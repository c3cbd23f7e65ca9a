/* One pipeline stage: out = x * a + b in one task of 2 blocks. Run
 * arguments: x, out, then the scalars a and b (doubles). */
#include <simpler/orch.h>

#define FUNC_AFFINE 0

SIMPLER_ORCHESTRATION(orchestrate)
{
    if (args->num_tensors != 2 || args->num_scalars != 2 || !simpler_same_shape(&args->tensors[0], &args->tensors[1]))
        return api->fail(o, "affine takes x and out of one shape, then a and b");
    simpler_tensor t[2] = {args->tensors[0], args->tensors[1]};
    uint32_t tags[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    simpler_task task = {FUNC_AFFINE, SIMPLER_CORE_AIV, 2, 2, t, tags, 2, &args->scalars[0], 0, NULL};
    return api->submit(o, &task, NULL);
}
