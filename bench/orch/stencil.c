/* Task-Bench style patterns of compute tasks (the work kernel, scalar[2]
 * rounds each), over a grid of scalar[1] steps x scalar[0] columns:
 *   scalar[3] = 0 stencil_1d: (s, i) depends on (s-1, i-1), (s-1, i), (s-1, i+1)
 *               1 independent: no dependencies
 *               2 chain: each column is a chain
 *               3 fan: one root, width x steps - 2 children, one join of all */
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
    if (pattern == 3) {
        uint64_t n = width * steps, kids = n > 2 ? n - 2 : 0;
        simpler_task_id root, *ids = malloc((kids + 1) * sizeof *ids);
        simpler_task t = {0, SIMPLER_CORE_AIV, 1, 0, NULL, NULL, 1, &rounds, 0, NULL};
        rc = ids ? api->submit(o, &t, &root) : api->fail(o, "stencil: out of memory");
        for (uint64_t i = 0; i < kids && !rc; i++) {
            simpler_task c = t;
            c.num_deps = 1;
            c.deps = &root;
            rc = api->submit(o, &c, &ids[i]);
        }
        if (!rc && n > 1) {
            simpler_task j = t;
            j.num_deps = (uint32_t)kids;
            j.deps = ids;
            rc = api->submit(o, &j, NULL);
        }
        free(ids);
        free(prev);
        free(cur);
        return rc;
    }
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
