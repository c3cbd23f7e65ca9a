/* Task-Bench style patterns of compute tasks (the work kernel, scalar[2]
 * rounds each), over a grid of scalar[1] steps x scalar[0] columns:
 *   scalar[3] = 0 stencil_1d: (s, i) depends on (s-1, i-1), (s-1, i), (s-1, i+1)
 *               1 independent: no dependencies
 *               2 chain: each column is a chain */
#include <stdlib.h>

#include <simpler/orch.h>

SIMPLER_ORCHESTRATION(orchestrate)
{
    uint64_t width = args->scalars[0], steps = args->scalars[1], rounds = args->scalars[2];
    uint64_t pattern = args->scalars[3];
    simpler_task_id *prev = calloc(width, sizeof *prev), *cur = calloc(width, sizeof *cur);
    if (!prev || !cur) {
        free(prev);
        free(cur);
        return api->fail(o, "stencil: out of memory");
    }
    int rc = 0;
    for (uint64_t s = 0; s < steps && !rc; s++) {
        for (uint64_t i = 0; i < width && !rc; i++) {
            simpler_task_id deps[3];
            uint32_t n = 0;
            if (s > 0 && pattern == 0) {
                if (i > 0)
                    deps[n++] = prev[i - 1];
                deps[n++] = prev[i];
                if (i + 1 < width)
                    deps[n++] = prev[i + 1];
            } else if (s > 0 && pattern == 2) {
                deps[n++] = prev[i];
            }
            simpler_task t = {0, SIMPLER_CORE_AIV, 1, 0, NULL, NULL, 1, &rounds, n, deps};
            rc = api->submit(o, &t, &cur[i]);
        }
        simpler_task_id *tmp = prev;
        prev = cur;
        cur = tmp;
    }
    free(prev);
    free(cur);
    return rc;
}
