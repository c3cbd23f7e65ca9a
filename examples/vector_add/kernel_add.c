/* out = a + b, elementwise, on a vector core. Each block takes a slice. */
#include <simpler/kernel.h>

SIMPLER_KERNEL(kernel)
{
    const float *a = simpler_tensor_data(&args->tensors[0]);
    const float *b = simpler_tensor_data(&args->tensors[1]);
    float *out = simpler_tensor_data(&args->tensors[2]);
    int64_t n = simpler_tensor_numel(&args->tensors[2]);
    int64_t per = (n + args->block_num - 1) / args->block_num;
    int64_t lo = per * args->block_idx, hi = lo + per < n ? lo + per : n;
    for (int64_t i = lo; i < hi; i++)
        out[i] = a[i] + b[i];
}
