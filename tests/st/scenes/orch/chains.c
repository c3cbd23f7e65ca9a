/* Independent INOUT chains: every row of X is incremented scalar[0] times,
 * one task per increment (rows x steps tasks). A missed edge loses an
 * update. */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *X = &args->tensors[0];
    int64_t steps = (int64_t)args->scalars[0];
    if (X->ndim != 2)
        return api->fail(o, "chains: X must be 2-D");
    uint32_t tag = SIMPLER_INOUT;
    uint64_t one = f64_bits(1.0);
    for (int64_t s = 0; s < steps; s++)
        for (int64_t r = 0; r < X->shape[0]; r++) {
            simpler_tensor row = simpler_view2d(X, r, 0, 1, X->shape[1]);
            CHECK(simpler_submit(api, o, F_INC, SIMPLER_CORE_AIV, &row, &tag, 1, &one, 1, NULL));
        }
    return 0;
}
