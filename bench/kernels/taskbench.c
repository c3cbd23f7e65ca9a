/* A Task Bench task (bench/peers/taskbench.h): check the inputs, stamp the
 * output, then the compute kernel every runtime runs (bench/peers/work.h).
 * Tensors: the inputs (one per dependency, as many as the func_id the
 * orchestration chose), the output, the run's error record (untracked).
 * Scalars: rounds of compute, step, point, pattern, width. */
#include <simpler/kernel.h>

#include "../peers/taskbench.h"
#include "../peers/work.h"

SIMPLER_KERNEL(kernel)
{
    const uint64_t *s = args->scalars;
    uint32_t n = args->num_tensors - 2;
    const tb_stamp *inputs[TB_MAX_DEPS];
    for (uint32_t k = 0; k < n && k < TB_MAX_DEPS; k++)
        inputs[k] = simpler_tensor_data(&args->tensors[k]);
    tb_task((int)s[3], (long)s[4], (long)s[1], (long)s[2], inputs, n, simpler_tensor_data(&args->tensors[n]),
            simpler_tensor_data(&args->tensors[n + 1]));
    bench_work(s[0], s[2] + 1);
}
