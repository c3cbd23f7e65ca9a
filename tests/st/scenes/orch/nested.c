/* Nested scopes: the outer scope keeps T0 = x + 10 alive while, for each
 * row i of Y, an inner scope makes T1 = T0 + i and writes Y[i] = T1 + 0.
 * With small rings this needs the inner scope's ring to recycle while the
 * outer scope is open. Expected: Y[i] = x + 10 + i. */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *x = &args->tensors[0], *Y = &args->tensors[1];
    int64_t cols = x->shape[0], row_shape[2] = {1, cols};
    uint32_t in_out[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT};
    uint32_t in_write[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    uint64_t ten = f64_bits(10.0), zero = f64_bits(0.0);
    CHECK(api->scope_begin(o));
    simpler_tensor xr = *x;
    xr.ndim = 2;
    xr.shape[0] = 1;
    xr.shape[1] = cols;
    xr.strides[0] = cols;
    xr.strides[1] = 1;
    simpler_tensor t0[2] = {xr, simpler_tensor_new(x->dtype, 2, row_shape)};
    CHECK(simpler_submit(api, o, F_ADD_SCALAR, SIMPLER_CORE_AIV, t0, in_out, 2, &ten, 1, NULL));
    for (int64_t i = 0; i < Y->shape[0]; i++) {
        CHECK(api->scope_begin(o));
        uint64_t s = f64_bits((double)i);
        simpler_tensor t1[2] = {t0[1], simpler_tensor_new(x->dtype, 2, row_shape)};
        CHECK(simpler_submit(api, o, F_ADD_SCALAR, SIMPLER_CORE_AIV, t1, in_out, 2, &s, 1, NULL));
        CHECK(api->scope_begin(o)); /* a third level, for good measure */
        simpler_tensor t2[2] = {t1[1], simpler_view2d(Y, i, 0, 1, cols)};
        CHECK(simpler_submit(api, o, F_ADD_SCALAR, SIMPLER_CORE_AIV, t2, in_write, 2, &zero, 1, NULL));
        CHECK(api->scope_end(o));
        CHECK(api->scope_end(o));
    }
    return api->scope_end(o);
}
