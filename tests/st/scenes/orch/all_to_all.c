/* Tasks at the per-task limits: 64 tensors and 64 scalars each
 * (kernels/all_to_all.c). X and Y are [32][n] float32; scalar[0] rounds,
 * scalar[1] what to submit:
 *   0: per round, in a scope: T = mix(X) into 32 new OUTPUT rows, then
 *      Y = mix(T); the OUTPUTs are tensors 32..63 of the first task and
 *      0..31 of the second, so each round's buffers are freed only if
 *      both are released when their tasks finish;
 *   1: one task with 65 tensors (one over the limit);
 *   2: one task with 65 scalars.
 * mix: out_j = (j + 1) / 8 + sum_i w_i * in_i, w_i = 1 / (i + 33). */
#include "funcs.h"

#define ROWS 32

static void weights(uint64_t *s)
{
    for (int i = 0; i < ROWS; i++) {
        s[i] = f64_bits(1.0 / (i + 33));
        s[ROWS + i] = f64_bits((i + 1) / 8.0);
    }
}

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *X = &args->tensors[0], *Y = &args->tensors[1];
    uint64_t rounds = args->scalars[0], mode = args->scalars[1];
    int64_t n = X->shape[1];
    simpler_tensor t[2 * ROWS + 1];
    uint32_t tags[2 * ROWS + 1];
    uint64_t s[2 * ROWS + 1];
    weights(s);
    s[2 * ROWS] = 0;
    if (mode == 1 || mode == 2) {
        for (int i = 0; i < ROWS; i++) {
            t[i] = simpler_view2d(X, i, 0, 1, n);
            t[ROWS + i] = simpler_view2d(Y, i, 0, 1, n);
            tags[i] = SIMPLER_INPUT;
            tags[ROWS + i] = SIMPLER_OUTPUT_EXISTING;
        }
        t[2 * ROWS] = t[0];
        tags[2 * ROWS] = SIMPLER_INPUT;
        simpler_task task = {F_ALL_TO_ALL, SIMPLER_CORE_AIV, 1, 2 * ROWS + (mode == 1), t, tags,
                             2 * ROWS + (mode == 2), s, 0, NULL};
        return api->submit(o, &task, NULL);
    }
    for (uint64_t r = 0; r < rounds; r++) {
        CHECK(api->scope_begin(o));
        int64_t row[1] = {n};
        for (int i = 0; i < ROWS; i++) {
            t[i] = simpler_view2d(X, i, 0, 1, n);
            t[ROWS + i] = simpler_tensor_new(SIMPLER_DTYPE_FLOAT32, 1, row);
            tags[i] = SIMPLER_INPUT;
            tags[ROWS + i] = SIMPLER_OUTPUT;
        }
        CHECK(simpler_submit(api, o, F_ALL_TO_ALL, SIMPLER_CORE_AIV, t, tags, 2 * ROWS, s, 2 * ROWS, NULL));
        for (int i = 0; i < ROWS; i++) {
            t[i] = t[ROWS + i]; /* submit filled in the OUTPUTs' addresses */
            t[ROWS + i] = simpler_view2d(Y, i, 0, 1, n);
            tags[ROWS + i] = SIMPLER_OUTPUT_EXISTING;
        }
        CHECK(simpler_submit(api, o, F_ALL_TO_ALL, SIMPLER_CORE_AIV, t, tags, 2 * ROWS, s, 2 * ROWS, NULL));
        CHECK(api->scope_end(o));
    }
    return 0;
}
