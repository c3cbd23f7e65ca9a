/* out = a + s (s is a double scalar). */
#include <simpler/kernel.h>

SIMPLER_KERNEL(kernel)
{
    const simpler_tensor *a = &args->tensors[0], *out = &args->tensors[1];
    float s = (float)simpler_scalar_f64(args->scalars[0]);
    int64_t n = simpler_tensor_numel(out);
    for (int64_t i = 0; i < n; i++)
        *(float *)simpler_tensor_at(out, i) = *(float *)simpler_tensor_at(a, i) + s;
}
