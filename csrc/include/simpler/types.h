/*
 * simpler/types.h: the vocabulary every other public header shares.
 *
 * This header is parsed by cffi as well as by C compilers, so it holds only
 * plain declarations: integer #defines, enums and structs, no inline code.
 */
#ifndef SIMPLER_TYPES_H
#define SIMPLER_TYPES_H

#include <stdint.h>

#define SIMPLER_MAX_DIMS 5

/* The most tensors and scalars one task passes (and one kernel declares),
 * the same under both runtimes: docs/orchestration.md, "Limits". */
#define SIMPLER_MAX_TASK_TENSORS 64
#define SIMPLER_MAX_TASK_SCALARS 64

/* Element types. The value's low byte is the element size in bytes so the
 * runtime can size a region without a lookup table. */
typedef enum simpler_dtype {
    SIMPLER_DTYPE_INVALID = 0,
    SIMPLER_DTYPE_INT8 = 0x101,
    SIMPLER_DTYPE_UINT8 = 0x201,
    SIMPLER_DTYPE_INT16 = 0x302,
    SIMPLER_DTYPE_FLOAT16 = 0x402,
    SIMPLER_DTYPE_BFLOAT16 = 0x502,
    SIMPLER_DTYPE_INT32 = 0x604,
    SIMPLER_DTYPE_UINT32 = 0x704,
    SIMPLER_DTYPE_FLOAT32 = 0x804,
    SIMPLER_DTYPE_INT64 = 0x908,
    SIMPLER_DTYPE_UINT64 = 0xA08,
    SIMPLER_DTYPE_FLOAT64 = 0xB08
} simpler_dtype;

/* The two kinds of compute core in a cluster (1 AIC + 2 AIV). */
typedef enum simpler_core_type {
    SIMPLER_CORE_AIC = 0,
    SIMPLER_CORE_AIV = 1
} simpler_core_type;

/* How a task (or a run) uses a tensor argument. */
typedef enum simpler_tag {
    SIMPLER_INPUT = 1,           /* read only */
    SIMPLER_OUTPUT = 2,          /* a new tensor the runtime allocates */
    SIMPLER_INOUT = 3,           /* read, then written in place */
    SIMPLER_OUTPUT_EXISTING = 4, /* written into a tensor the caller gave */
    SIMPLER_NO_DEP = 5           /* passed through, never tracked */
} simpler_tag;

/*
 * A tensor as the runtime and kernels see it: a base device address and a
 * strided view of it. offset, shape and strides count elements, not bytes,
 * so a view of a view is plain integer arithmetic. Element (i0..in) lives at
 * addr + (offset + sum(ik * strides[k])) * element size.
 */
typedef struct simpler_tensor {
    uint64_t addr;
    uint64_t offset;
    int64_t shape[SIMPLER_MAX_DIMS];
    int64_t strides[SIMPLER_MAX_DIMS];
    uint32_t ndim;
    uint32_t dtype;
} simpler_tensor;

#endif
