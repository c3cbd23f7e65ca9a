/* out = (a+b+1)*(a+b+2)+(a+b): five tasks, intermediates are OUTPUT
 * tensors the runtime allocates. */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *a = &args->tensors[0], *b = &args->tensors[1], *out = &args->tensors[2];
    if (!simpler_same_shape(a, b) || !simpler_same_shape(a, out))
        return api->fail(o, "fused: a, b and out must have the same shape");
    simpler_tensor c = simpler_tensor_new(a->dtype, a->ndim, a->shape);
    simpler_tensor d = c, e = c, f = c;
    uint32_t in_in_out[3] = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT};
    uint32_t in_out[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT};
    uint64_t one = f64_bits(1.0), two = f64_bits(2.0);

    simpler_tensor t1[3] = {*a, *b, c};
    CHECK(simpler_submit(api, o, F_ADD, SIMPLER_CORE_AIV, t1, in_in_out, 3, NULL, 0, NULL));
    c = t1[2]; /* now has its device address */
    simpler_tensor t2[2] = {c, d};
    CHECK(simpler_submit(api, o, F_ADD_SCALAR, SIMPLER_CORE_AIV, t2, in_out, 2, &one, 1, NULL));
    d = t2[1];
    simpler_tensor t3[2] = {c, e};
    CHECK(simpler_submit(api, o, F_ADD_SCALAR, SIMPLER_CORE_AIV, t3, in_out, 2, &two, 1, NULL));
    e = t3[1];
    simpler_tensor t4[3] = {d, e, f};
    CHECK(simpler_submit(api, o, F_MUL, SIMPLER_CORE_AIV, t4, in_in_out, 3, NULL, 0, NULL));
    f = t4[2];
    simpler_tensor t5[3] = {f, c, *out};
    uint32_t last[3] = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    return simpler_submit(api, o, F_ADD, SIMPLER_CORE_AIV, t5, last, 3, NULL, 0, NULL);
}
