/* Two vector-core kernels, compiled twice with a different KERNEL_OP:
 *   SCALE: out = a * s          ADD: out = a + b */
#include <simpler/kernel.h>

SIMPLER_KERNEL(kernel)
{
    const float *a = simpler_tensor_data(&args->tensors[0]);
    int64_t n = simpler_tensor_numel(&args->tensors[0]);
#if KERNEL_OP == 1 /* SCALE */
    float *out = simpler_tensor_data(&args->tensors[1]);
    float s = (float)simpler_scalar_f64(args->scalars[0]);
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] * s;
#else /* ADD */
    const float *b = simpler_tensor_data(&args->tensors[1]);
    float *out = simpler_tensor_data(&args->tensors[2]);
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
#endif
}
