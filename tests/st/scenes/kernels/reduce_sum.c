/* out[0] = sum of every element of a. */
#include <simpler/kernel.h>

SIMPLER_KERNEL(kernel)
{
    const simpler_tensor *a = &args->tensors[0];
    double acc = 0;
    int64_t n = simpler_tensor_numel(a);
    for (int64_t i = 0; i < n; i++)
        acc += *(float *)simpler_tensor_at(a, i);
    *(float *)simpler_tensor_data(&args->tensors[1]) = (float)acc;
}
