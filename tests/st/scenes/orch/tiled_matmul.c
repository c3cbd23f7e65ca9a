/* C = A @ B by tiles of one large matrix each: for every C tile (i, j),
 * C[i,j] = A[i,0] @ B[0,j], then C[i,j] += A[i,k] @ B[k,j] for k > 0.
 * Tile size is scalar[0]; the accumulations form INOUT chains per tile
 * and tiles in the same row band must not wait for each other. */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *A = &args->tensors[0], *B = &args->tensors[1], *C = &args->tensors[2];
    int64_t t = (int64_t)args->scalars[0];
    int64_t M = A->shape[0], K = A->shape[1], N = B->shape[1];
    if (t <= 0 || M % t || K % t || N % t || B->shape[0] != K || C->shape[0] != M || C->shape[1] != N)
        return api->fail(o, "tiled_matmul: shapes must chain and divide by the tile size");
    for (int64_t i = 0; i < M / t; i++)
        for (int64_t j = 0; j < N / t; j++)
            for (int64_t k = 0; k < K / t; k++) {
                simpler_tensor v[3] = {simpler_view2d(A, i * t, k * t, t, t), simpler_view2d(B, k * t, j * t, t, t),
                                       simpler_view2d(C, i * t, j * t, t, t)};
                uint32_t tags[3] = {SIMPLER_INPUT, SIMPLER_INPUT, k ? SIMPLER_INOUT : SIMPLER_OUTPUT_EXISTING};
                CHECK(simpler_submit(api, o, k ? F_MATMUL_ACC : F_MATMUL, SIMPLER_CORE_AIC, v, tags, 3, NULL, 0,
                                     NULL));
            }
    return 0;
}
