/* Orchestration mistakes, chosen by scalar[0], each must fail the run
 * with OrchestrationError and leave the worker usable:
 * 0 a view outside its tensor, 1 wrong tensor count for the kernel,
 * 2 wrong core type, 3 unknown func_id, 4 a scope left open,
 * 5 a dependency on a task not yet submitted, 6 a nonzero return,
 * 7 an unknown tensor base address, 8 a run of one hanging task,
 * 9 an explicit dependency on an id no submit returned. */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    simpler_tensor x = args->tensors[0];
    uint64_t one = f64_bits(1.0);
    uint32_t inout = SIMPLER_INOUT;
    simpler_tensor t2[2] = {x, x};
    uint32_t tags2[2] = {SIMPLER_INOUT, SIMPLER_INOUT};
    switch (args->scalars[0]) {
    case 0: {
        int64_t start = x.shape[0] - 1, len = 2;
        simpler_tensor v = simpler_view(&x, &start, &len);
        return simpler_submit(api, o, F_INC, SIMPLER_CORE_AIV, &v, &inout, 1, &one, 1, NULL);
    }
    case 1: return simpler_submit(api, o, F_INC, SIMPLER_CORE_AIV, t2, tags2, 2, &one, 1, NULL);
    case 2: return simpler_submit(api, o, F_INC, SIMPLER_CORE_AIC, &x, &inout, 1, &one, 1, NULL);
    case 3: return simpler_submit(api, o, 999, SIMPLER_CORE_AIV, &x, &inout, 1, &one, 1, NULL);
    case 4: return api->scope_begin(o);
    case 5: {
        simpler_task_id later = 5;
        simpler_task t = {F_INC, SIMPLER_CORE_AIV, 1, 1, &x, &inout, 1, &one, 1, &later};
        return api->submit(o, &t, NULL);
    }
    case 6: return 42;
    case 7: {
        simpler_tensor bogus = x;
        bogus.addr += 1u << 20;
        return simpler_submit(api, o, F_INC, SIMPLER_CORE_AIV, &bogus, &inout, 1, &one, 1, NULL);
    }
    case 8: return simpler_submit(api, o, F_HANG, SIMPLER_CORE_AIV, NULL, NULL, 0, NULL, 0, NULL);
    case 9: {
        simpler_task_id first, bogus = 0x7FFFFFFF;
        CHECK(simpler_submit(api, o, F_INC, SIMPLER_CORE_AIV, &x, &inout, 1, &one, 1, &first));
        simpler_task t = {F_INC, SIMPLER_CORE_AIV, 1, 1, &x, &inout, 1, &one, 1, &bogus};
        return api->submit(o, &t, NULL);
    }
    default: return api->fail(o, "misuse: unknown case");
    }
}
