/* Which simpler_dtype values exist. */
#ifndef SIMPLER_COMMON_DTYPE_H
#define SIMPLER_COMMON_DTYPE_H

#include <stdint.h>

#include "simpler/types.h"

static inline int simpler_dtype_known(uint32_t d)
{
    switch (d) {
    case SIMPLER_DTYPE_INT8: case SIMPLER_DTYPE_UINT8: case SIMPLER_DTYPE_INT16:
    case SIMPLER_DTYPE_FLOAT16: case SIMPLER_DTYPE_BFLOAT16: case SIMPLER_DTYPE_INT32:
    case SIMPLER_DTYPE_UINT32: case SIMPLER_DTYPE_FLOAT32: case SIMPLER_DTYPE_INT64:
    case SIMPLER_DTYPE_UINT64: case SIMPLER_DTYPE_FLOAT64:
        return 1;
    default:
        return 0;
    }
}

static inline const char *simpler_dtype_name(uint32_t d)
{
    switch (d) {
    case SIMPLER_DTYPE_INT8: return "int8";
    case SIMPLER_DTYPE_UINT8: return "uint8";
    case SIMPLER_DTYPE_INT16: return "int16";
    case SIMPLER_DTYPE_FLOAT16: return "float16";
    case SIMPLER_DTYPE_BFLOAT16: return "bfloat16";
    case SIMPLER_DTYPE_INT32: return "int32";
    case SIMPLER_DTYPE_UINT32: return "uint32";
    case SIMPLER_DTYPE_FLOAT32: return "float32";
    case SIMPLER_DTYPE_INT64: return "int64";
    case SIMPLER_DTYPE_UINT64: return "uint64";
    case SIMPLER_DTYPE_FLOAT64: return "float64";
    default: return "unknown";
    }
}

#endif
