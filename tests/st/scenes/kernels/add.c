/* out = a + b, elementwise over any views of equal shape. */
#include <simpler/kernel.h>

SIMPLER_KERNEL(kernel)
{
    const simpler_tensor *a = &args->tensors[0], *b = &args->tensors[1], *out = &args->tensors[2];
    int64_t lo, hi;
    simpler_block_range(args, simpler_tensor_numel(out), &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        *(float *)simpler_tensor_at(out, i) = *(float *)simpler_tensor_at(a, i) + *(float *)simpler_tensor_at(b, i);
}
