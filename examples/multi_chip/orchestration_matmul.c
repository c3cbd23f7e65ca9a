/* C = A @ B in one task on the cube cores, its blocks splitting C's rows.
 * Run arguments: A, B, C, then the scalar blocks. */
#include <simpler/orch.h>

#define FUNC_MATMUL 0

SIMPLER_ORCHESTRATION(orchestrate)
{
    if (args->num_tensors != 3 || args->num_scalars != 1)
        return api->fail(o, "matmul takes A, B, C and blocks");
    const simpler_tensor *A = &args->tensors[0], *B = &args->tensors[1], *C = &args->tensors[2];
    if (A->ndim != 2 || B->ndim != 2 || C->ndim != 2 || A->shape[1] != B->shape[0] ||
        C->shape[0] != A->shape[0] || C->shape[1] != B->shape[1])
        return api->fail(o, "matmul: A (M x K), B (K x N) and C (M x N)");
    int64_t blocks = (int64_t)args->scalars[0];
    if (blocks < 1 || blocks > 64)
        return api->fail(o, "matmul: blocks must be 1 .. 64");
    simpler_tensor t[3] = {*A, *B, *C};
    uint32_t tags[3] = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    simpler_task task = {FUNC_MATMUL, SIMPLER_CORE_AIC, (uint32_t)blocks, 3, t, tags, 0, NULL, 0, NULL};
    return api->submit(o, &task, NULL);
}
