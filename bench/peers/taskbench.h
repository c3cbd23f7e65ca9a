/* Task Bench's dependence patterns (Slaughter et al., "Task Bench", SC'20),
 * written from their published definitions, and the check every task makes
 * of its inputs. One definition for every runtime in the comparison: the
 * simpler orchestration and kernel (bench/orch/taskbench.c,
 * bench/kernels/taskbench.c) and the peers (omp_taskbench.c,
 * tbb_taskbench.cpp) all call tb_deps(), none keeps a table.
 *
 * A graph is `steps` timesteps of up to `width` points. Point p of step t
 * writes its own output (t, p) into buffer t % 2 of p and reads the outputs
 * of step t - 1 that tb_deps() names, from buffer (t - 1) % 2: double
 * buffering as Task Bench runs it, so a runtime must also order a write
 * after the reads of the step before (write after read). */
#ifndef BENCH_TASKBENCH_H
#define BENCH_TASKBENCH_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Python's bench/taskbench.py lists the names in this order. */
enum tb_pattern {
    TB_STENCIL_1D,
    TB_NEAREST_3,  /* nearest, radix 3 */
    TB_NEAREST_5,  /* nearest, radix 5 */
    TB_SPREAD,     /* radix min(3, width), period min(3, ceil(width / radix)) */
    TB_FFT,
    TB_TREE,
    TB_ALL_TO_ALL,
    TB_NUM_PATTERNS
};

#define TB_MAX_DEPS 16 /* the widest graph; a point has at most width inputs */

static const char *const tb_pattern_names[TB_NUM_PATTERNS] = {
    "stencil_1d", "nearest_3", "nearest_5", "spread", "fft", "tree", "all_to_all",
};

static inline int tb_pattern_by_name(const char *name)
{
    for (int i = 0; i < TB_NUM_PATTERNS; i++)
        if (!strcmp(name, tb_pattern_names[i]))
            return i;
    return -1;
}

/* Points of step t: all of them but in a tree, which doubles from one. */
static inline long tb_width_at(int pattern, long width, long t)
{
    if (t < 0)
        return 0;
    if (pattern == TB_TREE && t < 62 && (1L << t) < width)
        return 1L << t;
    return width;
}

/* Spread's radix and period: Task Bench's defaults (radix 3, period 3),
 * lowered where they would make a point depend on one output twice, which
 * Task Bench rejects (period at most ceil(width / radix)). */
static inline long tb_spread_radix(long width) { return width < 3 ? width : 3; }

static inline long tb_spread_period(long width)
{
    long r = tb_spread_radix(width), most = (width + r - 1) / r;
    return most < 3 ? most : 3;
}

/* The points of step t - 1 that point p of step t reads, in increasing
 * order for the interval patterns; returns how many (none at step 0). */
static inline uint32_t tb_deps(int pattern, long width, long t, long p, long deps[TB_MAX_DEPS])
{
    long last = tb_width_at(pattern, width, t - 1), lo = 0, hi = -1;
    uint32_t n = 0;
    if (last == 0 || width > TB_MAX_DEPS)
        return 0;
    switch (pattern) {
    case TB_STENCIL_1D:
    case TB_NEAREST_3: /* [p - radix/2, p + (radix-1)/2] */
        lo = p - 1, hi = p + 1;
        break;
    case TB_NEAREST_5:
        lo = p - 2, hi = p + 2;
        break;
    case TB_ALL_TO_ALL:
        lo = 0, hi = width - 1;
        break;
    case TB_TREE:
        lo = hi = p / 2;
        break;
    case TB_SPREAD: {
        long r = tb_spread_radix(width), dset = t % tb_spread_period(width);
        for (long i = 0; i < r; i++)
            deps[n++] = (p + i * width / r + (i > 0 ? dset : 0)) % width;
        break;
    }
    case TB_FFT: { /* butterflies of stride 1, 2, 4, ... in turn */
        long sets = 1;
        while ((1L << sets) < width)
            sets++;
        long stride = 1L << ((t + sets - 1) % sets);
        if (p - stride >= 0)
            deps[n++] = p - stride;
        deps[n++] = p;
        if (p + stride < width)
            deps[n++] = p + stride;
        break;
    }
    default:
        return 0;
    }
    for (long d = lo < 0 ? 0 : lo; d <= hi && d < width; d++)
        deps[n++] = d;
    /* Only points that exist at step t - 1 (a tree's first steps). */
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++)
        if (deps[i] < last)
            deps[kept++] = deps[i];
    return kept;
}

/* Tasks in the graph. */
static inline long tb_num_tasks(int pattern, long width, long steps)
{
    long n = 0;
    for (long t = 0; t < steps; t++)
        n += tb_width_at(pattern, width, t);
    return n;
}

/* What a task leaves in its output: its step and point. */
typedef struct tb_stamp {
    uint64_t t, point;
} tb_stamp;

/* The error record a run shares (untracked): how many checks failed, and
 * the first failure: step, point, input index, and the stamp expected and
 * the one found (step, point each). */
enum { TB_ERR_COUNT, TB_ERR_T, TB_ERR_POINT, TB_ERR_INPUT, TB_ERR_WANT_T, TB_ERR_WANT_P, TB_ERR_GOT_T,
       TB_ERR_GOT_P, TB_ERR_WORDS };

static inline void tb_fail(uint64_t *err, long t, long p, long input, long want_t, long want_p,
                           const tb_stamp *got)
{
    if (__atomic_fetch_add(&err[TB_ERR_COUNT], 1, __ATOMIC_RELAXED))
        return;
    err[TB_ERR_T] = (uint64_t)t, err[TB_ERR_POINT] = (uint64_t)p, err[TB_ERR_INPUT] = (uint64_t)input;
    err[TB_ERR_WANT_T] = (uint64_t)want_t, err[TB_ERR_WANT_P] = (uint64_t)want_p;
    err[TB_ERR_GOT_T] = got ? got->t : UINT64_MAX, err[TB_ERR_GOT_P] = got ? got->point : UINT64_MAX;
}

/* Point p of step t: check that its n inputs are, in order, the outputs of
 * step t - 1 tb_deps() names (a missing or extra input is an error of its
 * own: input index n, got stamp all ones), then stamp its own output. */
static inline void tb_task(int pattern, long width, long t, long p, const tb_stamp *const *inputs, uint32_t n,
                           tb_stamp *output, uint64_t *err)
{
    long deps[TB_MAX_DEPS];
    uint32_t want = tb_deps(pattern, width, t, p, deps);
    if (want != n)
        tb_fail(err, t, p, n, t - 1, want, NULL);
    for (uint32_t k = 0; k < n && k < want; k++)
        if (inputs[k]->t != (uint64_t)(t - 1) || inputs[k]->point != (uint64_t)deps[k])
            tb_fail(err, t, p, k, t - 1, deps[k], inputs[k]);
    output->t = (uint64_t)t;
    output->point = (uint64_t)p;
}

/* After a run: the last two steps' outputs must be in their buffers
 * (outputs[buffer * width + point]), or some task never ran. */
static inline void tb_check_final(int pattern, long width, long steps, const tb_stamp *outputs, uint64_t *err)
{
    for (long t = steps - 2 < 0 ? 0 : steps - 2; t < steps; t++)
        for (long p = 0; p < tb_width_at(pattern, width, t); p++) {
            const tb_stamp *s = &outputs[(t % 2) * width + p];
            if (s->t != (uint64_t)t || s->point != (uint64_t)p)
                tb_fail(err, steps, p, -1, t, p, s);
        }
}

/* A peer's exit: print the first failure and return 1, or 0 if none. */
static inline int tb_report(const char *pattern, const uint64_t *err)
{
    if (!err[TB_ERR_COUNT])
        return 0;
    fprintf(stderr, "%s: %llu failed checks; first: step %lld point %lld input %lld wanted (%lld, %lld), "
            "found (%lld, %lld)\n", pattern, (unsigned long long)err[TB_ERR_COUNT], (long long)err[TB_ERR_T],
            (long long)err[TB_ERR_POINT], (long long)err[TB_ERR_INPUT], (long long)err[TB_ERR_WANT_T],
            (long long)err[TB_ERR_WANT_P], (long long)err[TB_ERR_GOT_T], (long long)err[TB_ERR_GOT_P]);
    return 1;
}

#endif
