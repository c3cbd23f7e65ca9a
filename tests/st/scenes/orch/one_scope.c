/* scalar[0] independent increments of the rows of X, all inside one
 * scope: more than a task ring holds is a scope deadlock. */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *X = &args->tensors[0];
    uint32_t tag = SIMPLER_INOUT;
    uint64_t one = f64_bits(1.0);
    CHECK(api->scope_begin(o));
    for (uint64_t i = 0; i < args->scalars[0]; i++) {
        simpler_tensor row = simpler_view2d(X, (int64_t)(i % (uint64_t)X->shape[0]), 0, 1, X->shape[1]);
        CHECK(simpler_submit(api, o, F_INC, SIMPLER_CORE_AIV, &row, &tag, 1, &one, 1, NULL));
    }
    return api->scope_end(o);
}
