/* A collective's step on one chip: one AIV task of COLL_BLOCKS blocks over
 * the run's tensor (the chip's own), its scalars passed on as they are. */
#include <simpler/orch.h>

#include "collective.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    if (args->num_tensors != 1 || args->num_scalars != COLL_NUM_SCALARS)
        return api->fail(o, "collective step: takes one tensor and the step's scalars");
    const uint64_t *s = args->scalars;
    if (s[COLL_MODE] > COLL_GATHER || s[COLL_OP] > COLL_MIN)
        return api->fail(o, "collective step: unknown mode or op");
    if (s[COLL_BLOCKS] < 1 || s[COLL_BLOCKS] > 4096)
        return api->fail(o, "collective step: blocks must be 1 .. 4096");
    if (s[COLL_NSRC] < 1 || s[COLL_NSRC] > COLL_MAX_SRC)
        return api->fail(o, "collective step: 1 .. 32 sources");
    switch (args->tensors[0].dtype) {
    case SIMPLER_DTYPE_INT8: case SIMPLER_DTYPE_UINT8: case SIMPLER_DTYPE_INT16:
    case SIMPLER_DTYPE_INT32: case SIMPLER_DTYPE_UINT32: case SIMPLER_DTYPE_INT64:
    case SIMPLER_DTYPE_UINT64: case SIMPLER_DTYPE_FLOAT32: case SIMPLER_DTYPE_FLOAT64:
        break;
    case SIMPLER_DTYPE_FLOAT16:
#ifdef __FLT16_MAX__
        break;
#endif
    default:
        if (s[COLL_MODE] == COLL_REDUCE)
            return api->fail(o, "collective step: no reduction for this dtype");
    }
    simpler_tensor t = args->tensors[0];
    uint32_t tag = SIMPLER_INOUT;
    simpler_task task = {COLL_FUNC_STEP, SIMPLER_CORE_AIV, (uint32_t)s[COLL_BLOCKS], 1, &t, &tag,
                         COLL_NUM_SCALARS, s, 0, NULL};
    return api->submit(o, &task, NULL);
}
