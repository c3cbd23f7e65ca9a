/* Wait scalar[0] iterations, then x[:] = scalar[1] (a double). */
#include <simpler/kernel.h>

SIMPLER_KERNEL(kernel)
{
    for (volatile uint64_t spin = 0; spin < args->scalars[0]; spin++)
        ;
    const simpler_tensor *x = &args->tensors[0];
    float v = (float)simpler_scalar_f64(args->scalars[1]);
    int64_t n = simpler_tensor_numel(x);
    for (int64_t i = 0; i < n; i++)
        *(float *)simpler_tensor_at(x, i) = v;
}
