/* Function ids of the scene kernels (see scenes.py, which builds the
 * callables with the same ids). */
#ifndef SCENE_FUNCS_H
#define SCENE_FUNCS_H

#include <simpler/orch.h>

enum {
    F_ADD = 0,          /* AIV  out = a + b */
    F_MUL = 1,          /* AIV  out = a * b */
    F_ADD_SCALAR = 2,   /* AIV  out = a + s */
    F_INC = 3,          /* AIV  x += s */
    F_MATMUL = 4,       /* AIC  C = A @ B */
    F_MATMUL_ACC = 5,   /* AIC  C += A @ B */
    F_REDUCE_SUM = 6,   /* AIC  out[0] = sum(a) */
    F_SLOW_COPY = 7,    /* AIV  spin s0, out = a */
    F_FILL = 8,         /* AIV  spin s0, x = s1 */
    F_HANG = 9,         /* AIV  never returns */
    F_SPIN_US = 10,     /* AIV  busy for s0 microseconds */
    F_STENCIL3 = 11,    /* AIV  out[0][c] = 1 + sum_r (r + 1) * a[r][c], uint32 */
    F_ALL_TO_ALL = 12   /* AIV  32 in, 32 out, 64 scalars: out_j = b_j + sum_i w_i in_i */
};

static inline uint64_t f64_bits(double d)
{
    uint64_t u;
    __builtin_memcpy(&u, &d, sizeof u);
    return u;
}

#define CHECK(expr)             \
    do {                        \
        int rc_ = (expr);       \
        if (rc_)                \
            return rc_;         \
    } while (0)

#endif
