/* One task: out = a + b. The run passes a, b and out; the task reads a and
 * b and writes out, so it depends on nothing and nothing waits for it. */
#include <simpler/orch.h>

#define FUNC_ADD 0

SIMPLER_ORCHESTRATION(orchestrate)
{
    if (args->num_tensors != 3)
        return api->fail(o, "vector_add takes a, b and out");
    if (!simpler_same_shape(&args->tensors[0], &args->tensors[1]) ||
        !simpler_same_shape(&args->tensors[0], &args->tensors[2]))
        return api->fail(o, "vector_add: a, b and out must have the same shape");
    simpler_tensor t[3] = {args->tensors[0], args->tensors[1], args->tensors[2]};
    uint32_t tags[3] = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    return simpler_submit(api, o, FUNC_ADD, SIMPLER_CORE_AIV, t, tags, 3, NULL, 0, NULL);
}
