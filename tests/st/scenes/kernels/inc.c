/* x += s in place (s is a double scalar). */
#include <simpler/kernel.h>

SIMPLER_KERNEL(kernel)
{
    const simpler_tensor *x = &args->tensors[0];
    float s = (float)simpler_scalar_f64(args->scalars[0]);
    int64_t n = simpler_tensor_numel(x);
    for (int64_t i = 0; i < n; i++)
        *(float *)simpler_tensor_at(x, i) += s;
}
