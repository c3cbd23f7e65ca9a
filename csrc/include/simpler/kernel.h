/*
 * simpler/kernel.h: the kernel ABI.
 *
 * A kernel is a C function in its own shared object, compiled for one core
 * type. Each block of a task calls it once with the task's tensors (views
 * into GM), its scalars, and which block of how many it is:
 *
 *     #include <simpler/kernel.h>
 *     SIMPLER_KERNEL(kernel) {
 *         float *a = simpler_tensor_data(&args->tensors[0]);
 *         ...
 *     }
 *
 * Kernels must not block, allocate or keep state between calls: a core runs
 * one task after another and a timed-out kernel is stopped where it stands.
 */
#ifndef SIMPLER_KERNEL_H
#define SIMPLER_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "simpler/types.h"

typedef struct simpler_kernel_args {
    const simpler_tensor *tensors;
    const uint64_t *scalars;
    uint32_t num_tensors;   /* at most SIMPLER_MAX_TASK_TENSORS (types.h) */
    uint32_t num_scalars;   /* at most SIMPLER_MAX_TASK_SCALARS */
    uint32_t block_idx;   /* 0 .. block_num-1 */
    uint32_t block_num;
} simpler_kernel_args;

typedef void (*simpler_kernel_fn)(const simpler_kernel_args *args);

#define SIMPLER_KERNEL(name) \
    __attribute__((visibility("default"))) void name(const simpler_kernel_args *args)

static inline size_t simpler_dtype_size(uint32_t dtype) { return dtype & 0xFFu; }

/* Address of the view's first element. On a core, device addresses are
 * directly usable. */
static inline void *simpler_tensor_data(const simpler_tensor *t)
{
    return (char *)(uintptr_t)t->addr + t->offset * simpler_dtype_size(t->dtype);
}

static inline int64_t simpler_tensor_numel(const simpler_tensor *t)
{
    int64_t n = 1;
    for (uint32_t i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

/* Address of element i of the view in row-major order (any strides). */
static inline void *simpler_tensor_at(const simpler_tensor *t, int64_t i)
{
    int64_t off = (int64_t)t->offset;
    for (int d = (int)t->ndim - 1; d >= 0; d--) {
        int64_t n = t->shape[d];
        off += (i % n) * t->strides[d];
        i /= n;
    }
    return (char *)(uintptr_t)t->addr + off * (int64_t)simpler_dtype_size(t->dtype);
}

/* The slice [lo, hi) of n elements that block block_idx of block_num owns. */
static inline void simpler_block_range(const simpler_kernel_args *args, int64_t n, int64_t *lo, int64_t *hi)
{
    int64_t per = (n + args->block_num - 1) / args->block_num;
    *lo = per * args->block_idx;
    *hi = *lo + per < n ? *lo + per : n;
    if (*lo > n)
        *lo = n;
}

static inline double simpler_scalar_f64(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static inline int64_t simpler_scalar_i64(uint64_t bits) { return (int64_t)bits; }

#endif
