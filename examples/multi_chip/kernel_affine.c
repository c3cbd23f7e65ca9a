/* out = x * a + b on a vector core, one slice per block. */
#include <simpler/kernel.h>

SIMPLER_KERNEL(kernel)
{
    const float *x = simpler_tensor_data(&args->tensors[0]);
    float *out = simpler_tensor_data(&args->tensors[1]);
    float a = (float)simpler_scalar_f64(args->scalars[0]);
    float b = (float)simpler_scalar_f64(args->scalars[1]);
    int64_t lo, hi;
    simpler_block_range(args, simpler_tensor_numel(&args->tensors[1]), &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        out[i] = x[i] * a + b;
}
