/* out = a * b, elementwise. */
#include <simpler/kernel.h>

SIMPLER_KERNEL(kernel)
{
    const simpler_tensor *a = &args->tensors[0], *b = &args->tensors[1], *out = &args->tensors[2];
    int64_t n = simpler_tensor_numel(out);
    for (int64_t i = 0; i < n; i++)
        *(float *)simpler_tensor_at(out, i) = *(float *)simpler_tensor_at(a, i) * *(float *)simpler_tensor_at(b, i);
}
