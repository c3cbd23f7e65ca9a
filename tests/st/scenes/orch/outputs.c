/* scalar[0] tasks at the top level, each making an OUTPUT copy of x + 1:
 * top-level OUTPUTs live until the run ends. */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *x = &args->tensors[0];
    uint32_t in_out[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT};
    uint64_t one = f64_bits(1.0);
    for (uint64_t i = 0; i < args->scalars[0]; i++) {
        simpler_tensor t[2] = {*x, simpler_tensor_new(x->dtype, x->ndim, x->shape)};
        CHECK(simpler_submit(api, o, F_ADD_SCALAR, SIMPLER_CORE_AIV, t, in_out, 2, &one, 1, NULL));
    }
    return 0;
}
