/* Two kernels in one source, each its own entry symbol (CoreCallable's
 * entry=): a matmul for the cube cores and an epilogue for the vector
 * cores. Both honour their tensors' strides, so they work on views. */
#include <simpler/kernel.h>

/* AIC: C = A @ B for A (M x K), B (K x N); each block computes a band of
 * C's rows. */
SIMPLER_KERNEL(matmul)
{
    const simpler_tensor *A = &args->tensors[0], *B = &args->tensors[1], *C = &args->tensors[2];
    const float *a = simpler_tensor_data(A), *b = simpler_tensor_data(B);
    float *c = simpler_tensor_data(C);
    int64_t K = A->shape[1], N = B->shape[1], lo, hi;
    simpler_block_range(args, A->shape[0], &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        for (int64_t j = 0; j < N; j++) {
            float acc = 0;
            for (int64_t k = 0; k < K; k++)
                acc += a[i * A->strides[0] + k * A->strides[1]] * b[k * B->strides[0] + j * B->strides[1]];
            c[i * C->strides[0] + j * C->strides[1]] = acc;
        }
}

/* AIV: out = max(C + bias, 0), bias one value per column; each block a
 * band of rows. */
SIMPLER_KERNEL(bias_relu)
{
    const simpler_tensor *C = &args->tensors[0], *bias = &args->tensors[1], *out = &args->tensors[2];
    const float *c = simpler_tensor_data(C), *b = simpler_tensor_data(bias);
    float *o = simpler_tensor_data(out);
    int64_t N = C->shape[1], lo, hi;
    simpler_block_range(args, C->shape[0], &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        for (int64_t j = 0; j < N; j++) {
            float v = c[i * C->strides[0] + j * C->strides[1]] + b[j * bias->strides[0]];
            o[i * out->strides[0] + j * out->strides[1]] = v > 0 ? v : 0;
        }
}
