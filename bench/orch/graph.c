/* Benchmark graphs of no-op tasks. scalar[0] = pattern, scalar[1] = tasks:
 *   0 empty: submits nothing
 *   1 independent: tasks with no edges
 *   2 chain: each task depends on the previous one (explicit edge)
 *   3 fan: one root, tasks-2 children, joins depending on all of them */
#include <stdlib.h>

#include <simpler/orch.h>

SIMPLER_ORCHESTRATION(orchestrate)
{
    uint64_t pattern = args->scalars[0], n = args->scalars[1];
    simpler_task t = {0, SIMPLER_CORE_AIV, 1, 0, NULL, NULL, 0, NULL, 0, NULL};
    simpler_task_id prev = -1, root = -1;
    int rc = 0;
    switch (pattern) {
    case 0:
        return 0;
    case 1:
        for (uint64_t i = 0; i < n && !rc; i++)
            rc = api->submit(o, &t, NULL);
        return rc;
    case 2:
        for (uint64_t i = 0; i < n && !rc; i++) {
            t.num_deps = prev >= 0;
            t.deps = &prev;
            rc = api->submit(o, &t, &prev);
        }
        return rc;
    case 3: {
        /* Ids are opaque (only host_build_graph numbers them 0, 1, ...):
         * keep the children's. */
        simpler_task_id *kids = malloc(n * sizeof *kids);
        if (!kids)
            return api->fail(o, "graph: out of memory");
        uint64_t num_kids = n > 2 ? n - 2 : 0;
        rc = api->submit(o, &t, &root);
        for (uint64_t i = 0; i < num_kids && !rc; i++) {
            simpler_task c = t;
            c.num_deps = 1;
            c.deps = &root;
            rc = api->submit(o, &c, &kids[i]);
        }
        /* The join: explicit edges from every child, through joins of 256. */
        simpler_task_id deps[256], joined = root;
        for (uint64_t i = 0; i < num_kids && !rc; i += 255) {
            uint32_t m = 0;
            deps[m++] = joined;
            for (uint64_t k = i; k < num_kids && m < 256; k++)
                deps[m++] = kids[k];
            simpler_task j = t;
            j.num_deps = m;
            j.deps = deps;
            rc = api->submit(o, &j, &joined);
        }
        free(kids);
        return rc;
    }
    default:
        return api->fail(o, "graph: unknown pattern");
    }
}
