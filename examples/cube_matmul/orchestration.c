/* out = relu(A @ B + bias): the matmul on the cube cores (AIC, one per
 * cluster), the epilogue on the vector cores (AIV, two per cluster). The
 * product C is an OUTPUT the runtime allocates in GM; the epilogue reads
 * it, so it waits for the matmul without an explicit dependency.
 * Run arguments: A, B, bias, out, then the scalar blocks (per task). */
#include <simpler/orch.h>

#define FUNC_MATMUL 0
#define FUNC_BIAS_RELU 1

SIMPLER_ORCHESTRATION(orchestrate)
{
    if (args->num_tensors != 4 || args->num_scalars != 1)
        return api->fail(o, "cube_matmul takes A, B, bias, out and blocks");
    const simpler_tensor *A = &args->tensors[0], *B = &args->tensors[1];
    const simpler_tensor *bias = &args->tensors[2], *out = &args->tensors[3];
    if (A->ndim != 2 || B->ndim != 2 || bias->ndim != 1 || out->ndim != 2 || A->shape[1] != B->shape[0] ||
        bias->shape[0] != B->shape[1] || out->shape[0] != A->shape[0] || out->shape[1] != B->shape[1])
        return api->fail(o, "cube_matmul: A (M x K), B (K x N), bias (N) and out (M x N)");
    uint32_t blocks = (uint32_t)args->scalars[0];
    if (blocks < 1 || blocks > 4096)
        return api->fail(o, "cube_matmul: blocks must be 1 .. 4096");

    int64_t shape[2] = {A->shape[0], B->shape[1]};
    simpler_tensor mm[3] = {*A, *B, simpler_tensor_new(A->dtype, 2, shape)};
    uint32_t mm_tags[3] = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT};
    simpler_task matmul = {FUNC_MATMUL, SIMPLER_CORE_AIC, blocks, 3, mm, mm_tags, 0, NULL, 0, NULL};
    int rc = api->submit(o, &matmul, NULL);
    if (rc)
        return rc;

    /* mm[2] now holds C's device address (submit filled it in). */
    simpler_tensor ep[3] = {mm[2], *bias, *out};
    uint32_t ep_tags[3] = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    simpler_task epilogue = {FUNC_BIAS_RELU, SIMPLER_CORE_AIV, 2 * blocks, 3, ep, ep_tags, 0, NULL, 0, NULL};
    return api->submit(o, &epilogue, NULL);
}
