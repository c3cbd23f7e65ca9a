/* One task of `blocks` blocks: out = s * x + y, owner = which block wrote
 * each element. Run arguments: x, y, out, owner, then the scalars s
 * (a float) and blocks (an int). */
#include <simpler/orch.h>

#define FUNC_SAXPY 0

SIMPLER_ORCHESTRATION(orchestrate)
{
    if (args->num_tensors != 4 || args->num_scalars != 2)
        return api->fail(o, "multi_block takes x, y, out, owner, s and blocks");
    for (int i = 1; i < 4; i++)
        if (!simpler_same_shape(&args->tensors[0], &args->tensors[i]))
            return api->fail(o, "multi_block: x, y, out and owner must have the same shape");
    int64_t blocks = (int64_t)args->scalars[1];
    if (blocks < 1 || blocks > 4096)
        return api->fail(o, "multi_block: blocks must be 1 .. 4096");
    simpler_tensor t[4] = {args->tensors[0], args->tensors[1], args->tensors[2], args->tensors[3]};
    uint32_t tags[4] = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING, SIMPLER_OUTPUT_EXISTING};
    /* simpler_submit() makes tasks of one block; the full simpler_task sets
     * block_num, and each block runs on an AIV core of its own when there
     * are enough (block_dim clusters have 2 * block_dim AIV cores). */
    simpler_task task = {FUNC_SAXPY, SIMPLER_CORE_AIV, (uint32_t)blocks, 4, t, tags,
                         1, &args->scalars[0], 0, NULL};
    return api->submit(o, &task, NULL);
}
