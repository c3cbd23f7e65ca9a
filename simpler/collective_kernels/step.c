/* A collective's step, one slice per block (collective.h says what the
 * modes do). Reductions go through a chunk on the stack so the
 * destination may be one of the sources (an allreduce's own segment),
 * and combine the sources in their given order, so every chip and every
 * run computes bit-identical results. */
#include <simpler/kernel.h>

#include "collective.h"

#define CHUNK 512   /* elements combined at a time: 4 KiB of doubles */

/* Integers combine as their unsigned type (wrapping, as numpy does, not
 * undefined); floats as themselves. max and min keep a NaN, as numpy's
 * maximum and minimum do. */
#define REDUCE_FN(NAME, T, U)                                                          \
    static void NAME(char *dst, const uint64_t *src, int nsrc, int64_t lo, int64_t hi, \
                     int op)                                                           \
    {                                                                                  \
        T acc[CHUNK];                                                                  \
        for (int64_t c = lo; c < hi; c += CHUNK) {                                     \
            int64_t m = hi - c < CHUNK ? hi - c : CHUNK;                               \
            memcpy(acc, (const T *)(uintptr_t)src[0] + c, (size_t)m * sizeof(T));      \
            for (int j = 1; j < nsrc; j++) {                                           \
                const T *s = (const T *)(uintptr_t)src[j] + c;                         \
                switch (op) {                                                          \
                case COLL_SUM:                                                         \
                    for (int64_t k = 0; k < m; k++)                                    \
                        acc[k] = (T)((U)acc[k] + (U)s[k]);                             \
                    break;                                                             \
                case COLL_PROD:                                                        \
                    for (int64_t k = 0; k < m; k++)                                    \
                        acc[k] = (T)((U)acc[k] * (U)s[k]);                             \
                    break;                                                             \
                case COLL_MAX:                                                         \
                    for (int64_t k = 0; k < m; k++)                                    \
                        acc[k] = (s[k] > acc[k] || s[k] != s[k]) ? s[k] : acc[k];      \
                    break;                                                             \
                default:                                                               \
                    for (int64_t k = 0; k < m; k++)                                    \
                        acc[k] = (s[k] < acc[k] || s[k] != s[k]) ? s[k] : acc[k];      \
                    break;                                                             \
                }                                                                      \
            }                                                                          \
            memcpy((T *)dst + c, acc, (size_t)m * sizeof(T));                          \
        }                                                                              \
    }

REDUCE_FN(reduce_i8, int8_t, uint8_t)
REDUCE_FN(reduce_u8, uint8_t, uint8_t)
REDUCE_FN(reduce_i16, int16_t, uint16_t)
REDUCE_FN(reduce_i32, int32_t, uint32_t)
REDUCE_FN(reduce_u32, uint32_t, uint32_t)
REDUCE_FN(reduce_i64, int64_t, uint64_t)
REDUCE_FN(reduce_u64, uint64_t, uint64_t)
REDUCE_FN(reduce_f32, float, float)
REDUCE_FN(reduce_f64, double, double)
#ifdef __FLT16_MAX__
REDUCE_FN(reduce_f16, _Float16, _Float16)
#endif

typedef void (*reduce_fn)(char *, const uint64_t *, int, int64_t, int64_t, int);

static reduce_fn reducer(uint32_t dtype)
{
    switch (dtype) {
    case SIMPLER_DTYPE_INT8: return reduce_i8;
    case SIMPLER_DTYPE_UINT8: return reduce_u8;
    case SIMPLER_DTYPE_INT16: return reduce_i16;
    case SIMPLER_DTYPE_INT32: return reduce_i32;
    case SIMPLER_DTYPE_UINT32: return reduce_u32;
    case SIMPLER_DTYPE_INT64: return reduce_i64;
    case SIMPLER_DTYPE_UINT64: return reduce_u64;
    case SIMPLER_DTYPE_FLOAT32: return reduce_f32;
    case SIMPLER_DTYPE_FLOAT64: return reduce_f64;
#ifdef __FLT16_MAX__
    case SIMPLER_DTYPE_FLOAT16: return reduce_f16;
#endif
    default: return NULL;   /* the orchestration refused it */
    }
}

/* Copy what of dst's segments meets [lo, hi). */
static void gather(char *dst, size_t es, const uint64_t *src, int nsrc, int64_t count, int64_t skip,
                   int64_t lo, int64_t hi)
{
    for (int s = 0; s < nsrc; s++) {
        int64_t b = (int64_t)((uint64_t)s * (uint64_t)count / (uint64_t)nsrc);
        int64_t e = (int64_t)((uint64_t)(s + 1) * (uint64_t)count / (uint64_t)nsrc);
        int64_t from = b > lo ? b : lo, to = e < hi ? e : hi;
        if (s == skip || from >= to)
            continue;
        memcpy(dst + (size_t)from * es, (const char *)(uintptr_t)src[s] + (size_t)(from - b) * es,
               (size_t)(to - from) * es);
    }
}

SIMPLER_KERNEL(kernel)
{
    const uint64_t *s = args->scalars;
    const simpler_tensor *t = &args->tensors[0];
    size_t es = simpler_dtype_size(t->dtype);
    int64_t count = (int64_t)s[COLL_COUNT];
    char *dst = (char *)simpler_tensor_data(t) + (size_t)s[COLL_DST_OFF] * es;
    int64_t lo, hi;
    simpler_block_range(args, count, &lo, &hi);
    if (lo >= hi)
        return;
    if (s[COLL_MODE] == COLL_GATHER) {
        gather(dst, es, &s[COLL_SRC], (int)s[COLL_NSRC], count, (int64_t)s[COLL_SKIP], lo, hi);
        return;
    }
    reduce_fn f = reducer(t->dtype);
    if (f)
        f(dst, &s[COLL_SRC], (int)s[COLL_NSRC], lo, hi, (int)s[COLL_OP]);
}
