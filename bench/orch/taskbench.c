/* Task Bench's patterns (bench/peers/taskbench.h) as a stream of tasks.
 * Tensors: the outputs, uint64 [2][width][2] (buffer, point, stamp), and
 * the error record the kernels share (passed NO_DEP: it orders nothing).
 * Scalars: pattern, width, steps, rounds of compute per task.
 *
 * Each point's dependencies come from tb_deps() as the graph is built, and
 * the runtime derives the edges from the tensors' tags alone: a task reads
 * (INPUT) the outputs of step t - 1 it depends on and writes
 * (OUTPUT_EXISTING) its own output of buffer t % 2, so it waits for its
 * producers and for the readers of what it overwrites. Kernel func_id n
 * takes n inputs. */
#include <simpler/orch.h>

#include "../peers/taskbench.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *outputs = &args->tensors[0];
    simpler_tensor err = args->tensors[1];
    int pattern = (int)args->scalars[0];
    long width = (long)args->scalars[1], steps = (long)args->scalars[2];
    if (pattern < 0 || pattern >= TB_NUM_PATTERNS || width < 1 || width > TB_MAX_DEPS ||
        outputs->ndim != 3 || outputs->shape[0] != 2 || outputs->shape[1] != width || outputs->shape[2] != 2)
        return api->fail(o, "taskbench: bad pattern, width or outputs shape");
    simpler_tensor tensors[TB_MAX_DEPS + 2];
    uint32_t tags[TB_MAX_DEPS + 2];
    int64_t one[3] = {1, 1, 2};
    for (long t = 0; t < steps; t++)
        for (long p = 0; p < tb_width_at(pattern, width, t); p++) {
            long deps[TB_MAX_DEPS];
            uint32_t n = tb_deps(pattern, width, t, p, deps);
            for (uint32_t k = 0; k < n; k++) {
                int64_t at[3] = {(t - 1) % 2, deps[k], 0};
                tensors[k] = simpler_view(outputs, at, one);
                tags[k] = SIMPLER_INPUT;
            }
            int64_t mine[3] = {t % 2, p, 0};
            tensors[n] = simpler_view(outputs, mine, one);
            tensors[n + 1] = err;
            tags[n] = SIMPLER_OUTPUT_EXISTING;
            tags[n + 1] = SIMPLER_NO_DEP;
            uint64_t scalars[5] = {args->scalars[3], (uint64_t)t, (uint64_t)p, (uint64_t)pattern, (uint64_t)width};
            int rc = simpler_submit(api, o, n, SIMPLER_CORE_AIV, tensors, tags, n + 2, scalars, 5, NULL);
            if (rc)
                return rc;
        }
    return 0;
}
