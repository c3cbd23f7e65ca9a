/* A diamond: B = A @ W1 and C = A @ W2 on AIC cores, D = B + C on an AIV,
 * out = D @ W3 on an AIC. */
#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *A = &args->tensors[0], *W1 = &args->tensors[1], *W2 = &args->tensors[2],
                         *W3 = &args->tensors[3], *out = &args->tensors[4];
    if (A->ndim != 2 || W1->ndim != 2 || A->shape[1] != W1->shape[0] || !simpler_same_shape(W1, W2) ||
        W3->shape[0] != W1->shape[1] || out->shape[0] != A->shape[0] || out->shape[1] != W3->shape[1])
        return api->fail(o, "matmul_diamond: shapes do not chain");
    int64_t mid[2] = {A->shape[0], W1->shape[1]};
    simpler_tensor B = simpler_tensor_new(A->dtype, 2, mid), C = B, D = B;
    uint32_t mm[3] = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT};

    simpler_tensor t1[3] = {*A, *W1, B};
    CHECK(simpler_submit(api, o, F_MATMUL, SIMPLER_CORE_AIC, t1, mm, 3, NULL, 0, NULL));
    simpler_tensor t2[3] = {*A, *W2, C};
    CHECK(simpler_submit(api, o, F_MATMUL, SIMPLER_CORE_AIC, t2, mm, 3, NULL, 0, NULL));
    simpler_tensor t3[3] = {t1[2], t2[2], D};
    CHECK(simpler_submit(api, o, F_ADD, SIMPLER_CORE_AIV, t3, mm, 3, NULL, 0, NULL));
    simpler_tensor t4[3] = {t3[2], *W3, *out};
    uint32_t last[3] = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING};
    return simpler_submit(api, o, F_MATMUL, SIMPLER_CORE_AIC, t4, last, 3, NULL, 0, NULL);
}
