#include "common/array.h"

#include <stdlib.h>
#include <string.h>

#include "simpler/simpler.h"

#define ARRAY_FIRST_CAP 16

int array_reserve(void *p, uint64_t *cap, uint64_t need, size_t elem)
{
    if (need <= *cap)
        return SIMPLER_OK;
    uint64_t c = *cap ? *cap : ARRAY_FIRST_CAP;
    while (c < need) {
        if (c > UINT64_MAX / 2)
            return SIMPLER_E_NO_HOST_MEMORY;
        c *= 2;
    }
    if (elem && c > SIZE_MAX / elem)
        return SIMPLER_E_NO_HOST_MEMORY;
    void *old;
    memcpy(&old, p, sizeof old);   /* p is a T **: any object pointer */
    void *grown = realloc(old, (size_t)c * elem);
    if (!grown)
        return SIMPLER_E_NO_HOST_MEMORY;
    memcpy(p, &grown, sizeof grown);
    *cap = c;
    return SIMPLER_OK;
}
