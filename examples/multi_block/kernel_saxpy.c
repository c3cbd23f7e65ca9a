/* out = s * x + y on a vector core, one slice per block; the block also
 * writes its index into owner[] for the elements it computed, so the run
 * shows which block did what. */
#include <simpler/kernel.h>

SIMPLER_KERNEL(kernel)
{
    const float *x = simpler_tensor_data(&args->tensors[0]);
    const float *y = simpler_tensor_data(&args->tensors[1]);
    float *out = simpler_tensor_data(&args->tensors[2]);
    int32_t *owner = simpler_tensor_data(&args->tensors[3]);
    float s = (float)simpler_scalar_f64(args->scalars[0]);
    int64_t lo, hi;
    /* Block block_idx of block_num owns [lo, hi): ceil(n / block_num)
     * elements each, the last block fewer. */
    simpler_block_range(args, simpler_tensor_numel(&args->tensors[2]), &lo, &hi);
    for (int64_t i = lo; i < hi; i++) {
        out[i] = s * x[i] + y[i];
        owner[i] = (int32_t)args->block_idx;
    }
}
