/* All-to-all over 32 rows, 64 tensors and 64 scalars in one task (the
 * per-task limits): tensors 0..31 are inputs, 32..63 outputs, all of n
 * float32; scalars 0..31 are weights and 32..63 biases (float64 bits):
 * out_j = bias_j + sum_i weight_i * in_i. */
#include <simpler/kernel.h>

#define ROWS 32

SIMPLER_KERNEL(kernel)
{
    int64_t n = simpler_tensor_numel(&args->tensors[0]);
    for (int j = 0; j < ROWS; j++)
        for (int64_t e = 0; e < n; e++) {
            double acc = simpler_scalar_f64(args->scalars[ROWS + j]);
            for (int i = 0; i < ROWS; i++)
                acc += simpler_scalar_f64(args->scalars[i]) * *(const float *)simpler_tensor_at(&args->tensors[i], e);
            *(float *)simpler_tensor_at(&args->tensors[ROWS + j], e) = (float)acc;
        }
}
