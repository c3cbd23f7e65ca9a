/* Thousands of independent tasks of both core types, alternating, each
 * with arguments of its own: for every row r, X[r, :] = r + 0.5 (AIV fill,
 * scalar r + 0.5) and S[r] = sum(Y[r, :]) (AIC reduce_sum). All are ready
 * at once, so a scheduler may hand them out in runs; a task given another
 * task's arguments shows in X or S. */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *X = &args->tensors[0], *Y = &args->tensors[1], *S = &args->tensors[2];
    if (X->ndim != 2 || Y->ndim != 2 || S->ndim != 2 || Y->shape[0] != X->shape[0] || S->shape[0] != X->shape[0])
        return api->fail(o, "row_values: X, Y and S must be 2-D with one row per task pair");
    uint32_t out = SIMPLER_OUTPUT_EXISTING, in_out[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    for (int64_t r = 0; r < X->shape[0]; r++) {
        simpler_tensor row = simpler_view2d(X, r, 0, 1, X->shape[1]);
        uint64_t fill[2] = {0, f64_bits((double)r + 0.5)};
        CHECK(simpler_submit(api, o, F_FILL, SIMPLER_CORE_AIV, &row, &out, 1, fill, 2, NULL));
        simpler_tensor sum[2] = {simpler_view2d(Y, r, 0, 1, Y->shape[1]), simpler_view2d(S, r, 0, 1, 1)};
        CHECK(simpler_submit(api, o, F_REDUCE_SUM, SIMPLER_CORE_AIC, sum, in_out, 2, NULL, 0, NULL));
    }
    return 0;
}
