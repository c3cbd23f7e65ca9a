/* A chain through tensors the orchestration makes: T = x + s, then
 * scalar[1] steps of T = T + 1.0, then out = T + s, so out = x + 2s +
 * steps. s (scalar[0], a double) reaches kernels as their scalar; steps
 * shapes the graph; the constant 1.0 is no run argument's, though it may
 * equal s. For recorded graphs. */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *x = &args->tensors[0], *out = &args->tensors[1];
    uint64_t s = args->scalars[0], one = f64_bits(1.0);
    int64_t steps = (int64_t)args->scalars[1], n = x->shape[0];
    if (x->ndim != 1 || !simpler_same_shape(x, out) || steps < 0 || steps > 10000)
        return api->fail(o, "scaled: x and out must be 1-D of one shape, and 0 <= steps <= 10000");
    uint32_t in_out[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT};
    uint32_t in_write[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    simpler_tensor t[2] = {*x, simpler_tensor_new(x->dtype, 1, &n)};
    CHECK(simpler_submit(api, o, F_ADD_SCALAR, SIMPLER_CORE_AIV, t, in_out, 2, &s, 1, NULL));
    simpler_tensor T = t[1];
    for (int64_t i = 0; i < steps; i++) {
        simpler_tensor u[2] = {T, simpler_tensor_new(x->dtype, 1, &n)};
        CHECK(simpler_submit(api, o, F_ADD_SCALAR, SIMPLER_CORE_AIV, u, in_out, 2, &one, 1, NULL));
        T = u[1];
    }
    simpler_tensor v[2] = {T, *out};
    return simpler_submit(api, o, F_ADD_SCALAR, SIMPLER_CORE_AIV, v, in_write, 2, &s, 1, NULL);
}
