/* One task per row of X (rows x cols), each updating its own row in place:
 * n independent tasks over one buffer, the pattern that stresses the
 * dependency tracker's lookups. scalar[0] = passes over the rows. */
#include <simpler/orch.h>

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *X = &args->tensors[0];
    uint32_t tag = SIMPLER_INOUT;
    for (uint64_t p = 0; p < args->scalars[0]; p++)
        for (int64_t r = 0; r < X->shape[0]; r++) {
            simpler_tensor row = simpler_view2d(X, r, 0, 1, X->shape[1]);
            int rc = simpler_submit(api, o, 1, SIMPLER_CORE_AIV, &row, &tag, 1, NULL, 0, NULL);
            if (rc)
                return rc;
        }
    return 0;
}
