/* A 3-point stencil on rows of uint32: out[0][c] = 1 + sum over the rows r
 * of a of (r + 1) * a[r][c], wrapping. Weights by position, so a row read
 * out of place (or too early) changes the result. */
#include <simpler/kernel.h>

SIMPLER_KERNEL(kernel)
{
    const simpler_tensor *a = &args->tensors[0], *out = &args->tensors[1];
    int64_t rows = a->shape[0], cols = a->shape[1];
    for (int64_t c = 0; c < cols; c++) {
        uint32_t acc = 1;
        for (int64_t r = 0; r < rows; r++)
            acc += (uint32_t)(r + 1) * *(uint32_t *)simpler_tensor_at(a, r * cols + c);
        *(uint32_t *)simpler_tensor_at(out, c) = acc;
    }
}
