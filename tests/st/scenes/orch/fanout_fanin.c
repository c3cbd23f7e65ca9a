/* Fan-out and fan-in across core types: T = x + 1 (AIV); for each of
 * scalar[0] slices, S[i] = T[i] + i (AIV, one task per slice); then
 * out[0] = sum(S) on an AIC waits for every slice. */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *x = &args->tensors[0], *out = &args->tensors[1];
    int64_t parts = (int64_t)args->scalars[0];
    if (x->ndim != 1 || parts <= 0 || x->shape[0] % parts)
        return api->fail(o, "fanout_fanin: x must be 1-D and split evenly into scalar[0] parts");
    int64_t n = x->shape[0], len = n / parts;
    simpler_tensor T = simpler_tensor_new(x->dtype, 1, &n), S = T;
    uint32_t in_out[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT};
    uint32_t in_write[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    uint64_t one = f64_bits(1.0);

    simpler_tensor t0[2] = {*x, T};
    CHECK(simpler_submit(api, o, F_ADD_SCALAR, SIMPLER_CORE_AIV, t0, in_out, 2, &one, 1, NULL));
    T = t0[1];
    /* S is allocated by a zero-cost first fill so the slices can be views of it. */
    uint64_t fill_args[2] = {0, f64_bits(0.0)};
    uint32_t out_only[1] = {SIMPLER_OUTPUT};
    simpler_tensor ts[1] = {S};
    CHECK(simpler_submit(api, o, F_FILL, SIMPLER_CORE_AIV, ts, out_only, 1, fill_args, 2, NULL));
    S = ts[0];
    for (int64_t i = 0; i < parts; i++) {
        int64_t start = i * len;
        simpler_tensor t[2] = {simpler_view(&T, &start, &len), simpler_view(&S, &start, &len)};
        uint64_t s = f64_bits((double)i);
        CHECK(simpler_submit(api, o, F_ADD_SCALAR, SIMPLER_CORE_AIV, t, in_write, 2, &s, 1, NULL));
    }
    simpler_tensor t2[2] = {S, *out};
    return simpler_submit(api, o, F_REDUCE_SUM, SIMPLER_CORE_AIC, t2, in_write, 2, NULL, 0, NULL);
}
