/* scalar[0] scopes, each with an OUTPUT of scalar[1] floats, then one more
 * with an OUTPUT of scalar[2] floats: a large OUTPUT must fit once the
 * heap ring is empty again, wherever the ring had wrapped to. */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *x = &args->tensors[0];
    uint32_t in_out[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT};
    uint64_t one = f64_bits(1.0);
    for (uint64_t k = 0; k <= args->scalars[0]; k++) {
        int64_t n = (int64_t)(k < args->scalars[0] ? args->scalars[1] : args->scalars[2]);
        simpler_tensor xv = *x;
        xv.shape[0] = n;
        CHECK(api->scope_begin(o));
        simpler_tensor t[2] = {xv, simpler_tensor_new(x->dtype, 1, &n)};
        CHECK(simpler_submit(api, o, F_ADD_SCALAR, SIMPLER_CORE_AIV, t, in_out, 2, &one, 1, NULL));
        CHECK(api->scope_end(o));
    }
    return 0;
}
