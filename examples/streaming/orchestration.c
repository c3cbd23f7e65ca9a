/* A stream far larger than the rings it runs through: for each of
 * scalar[0] steps, in a scope of its own, T = 2 * X[r] (a tensor the
 * runtime allocates and frees) and Y[r] = T + X[r], for row r = step % rows.
 * The scope lets the step's task slots and T be reclaimed as the stream
 * moves on. Expected: Y = 3 X. */
#include <simpler/orch.h>

enum { SCALE = 0, ADD = 1 };

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *X = &args->tensors[0], *Y = &args->tensors[1];
    int64_t rows = X->shape[0], cols = X->shape[1], row_shape[2] = {1, cols};
    double two = 2.0;
    uint64_t two_bits;
    __builtin_memcpy(&two_bits, &two, sizeof two_bits);
    uint32_t in_out[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT};
    uint32_t in_in_write[3] = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    for (uint64_t step = 0; step < args->scalars[0]; step++) {
        int64_t r = (int64_t)(step % (uint64_t)rows);
        int rc = api->scope_begin(o);
        simpler_tensor x = simpler_view2d(X, r, 0, 1, cols);
        simpler_tensor t1[2] = {x, simpler_tensor_new(X->dtype, 2, row_shape)};
        if (!rc)
            rc = simpler_submit(api, o, SCALE, SIMPLER_CORE_AIV, t1, in_out, 2, &two_bits, 1, NULL);
        simpler_tensor t2[3] = {t1[1], x, simpler_view2d(Y, r, 0, 1, cols)};
        if (!rc)
            rc = simpler_submit(api, o, ADD, SIMPLER_CORE_AIV, t2, in_in_write, 3, NULL, 0, NULL);
        if (!rc)
            rc = api->scope_end(o);
        if (rc)
            return rc;
    }
    return 0;
}
