/* libFuzzer target: the ChipCallable parser on arbitrary bytes. A blob it
 * accepts must describe only bytes inside itself. */
#include <stdint.h>
#include <stdlib.h>

#include "callable/callable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy of exactly size bytes, so reads past the end trip ASan. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    for (size_t i = 0; i < size; i++)
        copy[i] = data[i];
    callable_info *info;
    if (callable_parse(copy, size, &info) == 0) {
        volatile uint8_t sink = 0;
        for (uint32_t k = 0; k < info->num_kernels; k++) {
            const callable_kernel *kn = &info->kernels[k];
            for (uint64_t b = 0; b < kn->so_size; b++)    /* every byte it points at is readable */
                sink ^= kn->so[b];
        }
        (void)sink;
        callable_info_free(info);
    }
    free(copy);
    return 0;
}
