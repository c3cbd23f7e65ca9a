/* A stream of 2 * scalar[0] tasks through rings far smaller than it:
 * iteration i, in its own scope, makes T = x[r] + 1 (an OUTPUT the
 * runtime allocates) and then Y[r] = T + x[r], for row r = i % rows.
 * Expected: Y = 2x + 1. */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *X = &args->tensors[0], *Y = &args->tensors[1];
    uint64_t iterations = args->scalars[0];
    int64_t rows = X->shape[0], cols = X->shape[1], row_shape[2] = {1, cols};
    uint64_t one = f64_bits(1.0);
    uint32_t in_out[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT};
    uint32_t in_in_write[3] = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    for (uint64_t i = 0; i < iterations; i++) {
        int64_t r = (int64_t)(i % (uint64_t)rows);
        CHECK(api->scope_begin(o));
        simpler_tensor x = simpler_view2d(X, r, 0, 1, cols);
        simpler_tensor t1[2] = {x, simpler_tensor_new(X->dtype, 2, row_shape)};
        CHECK(simpler_submit(api, o, F_ADD_SCALAR, SIMPLER_CORE_AIV, t1, in_out, 2, &one, 1, NULL));
        simpler_tensor t2[3] = {t1[1], x, simpler_view2d(Y, r, 0, 1, cols)};
        CHECK(simpler_submit(api, o, F_ADD, SIMPLER_CORE_AIV, t2, in_in_write, 3, NULL, 0, NULL));
        CHECK(api->scope_end(o));
    }
    return 0;
}
