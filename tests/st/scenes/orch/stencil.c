/* The double-buffered stencil: A and B are [width][cols] uint32; step s,
 * task i reads rows [i-1, i+1] (clipped) of one and writes row i of the
 * other, and the two swap every step (scalar[0] steps). Each task has
 * about 4 true dependencies, however many steps run; a tracker that kept
 * the readers of rows later overwritten one by one would give each
 * writer a fan-in growing with the steps. */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *buf[2] = {&args->tensors[0], &args->tensors[1]};
    uint64_t steps = args->scalars[0];
    int64_t width = buf[0]->shape[0], cols = buf[0]->shape[1];
    uint32_t tags[2] = {SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    for (uint64_t s = 0; s < steps; s++) {
        const simpler_tensor *src = buf[s % 2], *dst = buf[1 - s % 2];
        for (int64_t i = 0; i < width; i++) {
            int64_t lo = i ? i - 1 : 0, hi = i + 2 < width ? i + 2 : width;
            simpler_tensor t[2] = {simpler_view2d(src, lo, 0, hi - lo, cols), simpler_view2d(dst, i, 0, 1, cols)};
            CHECK(simpler_submit(api, o, F_STENCIL3, SIMPLER_CORE_AIV, t, tags, 2, NULL, 0, NULL));
        }
    }
    return 0;
}
