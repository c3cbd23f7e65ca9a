/* C = A @ B on 2-D views (MxK)(KxN); with ACCUMULATE defined, C += A @ B. */
#include <simpler/kernel.h>

SIMPLER_KERNEL(kernel)
{
    const simpler_tensor *A = &args->tensors[0], *B = &args->tensors[1], *C = &args->tensors[2];
    const float *a = simpler_tensor_data(A), *b = simpler_tensor_data(B);
    float *c = simpler_tensor_data(C);
    int64_t M = A->shape[0], K = A->shape[1], N = B->shape[1];
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float acc = 0;
            for (int64_t k = 0; k < K; k++)
                acc += a[i * A->strides[0] + k * A->strides[1]] * b[k * B->strides[0] + j * B->strides[1]];
#ifdef ACCUMULATE
            c[i * C->strides[0] + j * C->strides[1]] += acc;
#else
            c[i * C->strides[0] + j * C->strides[1]] = acc;
#endif
        }
}
