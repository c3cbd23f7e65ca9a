/* Wait scalar[0] iterations, then out = a: a late reader, for hazard tests. */
#include <simpler/kernel.h>

SIMPLER_KERNEL(kernel)
{
    for (volatile uint64_t spin = 0; spin < args->scalars[0]; spin++)
        ;
    const simpler_tensor *a = &args->tensors[0], *out = &args->tensors[1];
    int64_t n = simpler_tensor_numel(out);
    for (int64_t i = 0; i < n; i++)
        *(float *)simpler_tensor_at(out, i) = *(float *)simpler_tensor_at(a, i);
}
