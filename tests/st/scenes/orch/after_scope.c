/* B is made inside a scope and used after the scope ended: an error
 * under tensormap_and_ringbuffer, whose scopes bound OUTPUT lifetimes. */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *x = &args->tensors[0];
    uint32_t in_out[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT};
    uint64_t one = f64_bits(1.0);
    int64_t n = x->shape[0];
    CHECK(api->scope_begin(o));
    simpler_tensor t1[2] = {*x, simpler_tensor_new(x->dtype, 1, &n)};
    CHECK(simpler_submit(api, o, F_ADD_SCALAR, SIMPLER_CORE_AIV, t1, in_out, 2, &one, 1, NULL));
    CHECK(api->scope_end(o));
    simpler_tensor t2[2] = {t1[1], simpler_tensor_new(x->dtype, 1, &n)};
    return simpler_submit(api, o, F_ADD_SCALAR, SIMPLER_CORE_AIV, t2, in_out, 2, &one, 1, NULL);
}
