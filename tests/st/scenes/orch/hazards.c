/* Write-after-read and write-after-write, on every row of X.
 * WAR: Y[r] = X[r] read late (spins scalar[0]), then X[r] = 7 at once:
 *      without the edge the fill runs first and Y[r] reads 7.
 * WAW: X[r] = 1 written late, then X[r] = 2 at once: without the edge the
 *      slow write lands last and X[r] ends as 1.
 * Expected: Y = old X, X = 2. */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *X = &args->tensors[0], *Y = &args->tensors[1];
    uint64_t delay = args->scalars[0];
    int64_t rows = X->shape[0], cols = X->shape[1];
    uint32_t in_write[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    uint32_t write[1] = {SIMPLER_OUTPUT_EXISTING};
    for (int64_t r = 0; r < rows; r++) {
        simpler_tensor rd[2] = {simpler_view2d(X, r, 0, 1, cols), simpler_view2d(Y, r, 0, 1, cols)};
        CHECK(simpler_submit(api, o, F_SLOW_COPY, SIMPLER_CORE_AIV, rd, in_write, 2, &delay, 1, NULL));
    }
    for (int64_t r = 0; r < rows; r++) {
        simpler_tensor x = simpler_view2d(X, r, 0, 1, cols);
        uint64_t s[2] = {0, f64_bits(7.0)};
        CHECK(simpler_submit(api, o, F_FILL, SIMPLER_CORE_AIV, &x, write, 1, s, 2, NULL));
    }
    for (int64_t r = 0; r < rows; r++) {
        simpler_tensor x = simpler_view2d(X, r, 0, 1, cols);
        uint64_t slow[2] = {delay, f64_bits(1.0)}, fast[2] = {0, f64_bits(2.0)};
        CHECK(simpler_submit(api, o, F_FILL, SIMPLER_CORE_AIV, &x, write, 1, slow, 2, NULL));
        CHECK(simpler_submit(api, o, F_FILL, SIMPLER_CORE_AIV, &x, write, 1, fast, 2, NULL));
    }
    return 0;
}
