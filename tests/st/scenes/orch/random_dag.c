/* A random graph over the rows of X, from a seed (scalar[0]): scalar[1]
 * tasks, each writing one row from two others (X[o] = X[a] + X[b], or
 * X[o] = X[a] + 0.5), so its edges are every kind the region rules
 * derive (read after write, write after read and after write). */
#include "funcs.h"

static uint64_t next(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return *state >> 33;
}

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *X = &args->tensors[0];
    uint64_t state = args->scalars[0], half = f64_bits(0.5);
    int64_t tasks = (int64_t)args->scalars[1], rows = X->shape[0], cols = X->shape[1];
    if (X->ndim != 2 || rows < 3)
        return api->fail(o, "random_dag: X must be 2-D with at least 3 rows");
    uint32_t add_tags[3] = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    uint32_t scalar_tags[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    for (int64_t i = 0; i < tasks; i++) {
        int64_t out = (int64_t)(next(&state) % (uint64_t)rows);
        int64_t a = (out + 1 + (int64_t)(next(&state) % (uint64_t)(rows - 1))) % rows;
        int64_t b = (out + 1 + (int64_t)(next(&state) % (uint64_t)(rows - 1))) % rows;
        simpler_tensor t[3] = {simpler_view2d(X, a, 0, 1, cols), simpler_view2d(X, b, 0, 1, cols),
                               simpler_view2d(X, out, 0, 1, cols)};
        if (next(&state) % 3) {
            CHECK(simpler_submit(api, o, F_ADD, SIMPLER_CORE_AIV, t, add_tags, 3, NULL, 0, NULL));
        } else {
            simpler_tensor u[2] = {t[0], t[2]};
            CHECK(simpler_submit(api, o, F_ADD_SCALAR, SIMPLER_CORE_AIV, u, scalar_tags, 2, &half, 1, NULL));
        }
    }
    return 0;
}
