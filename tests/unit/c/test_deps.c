/*
 * Unit tests for the dependency tracker (csrc/runtime/dependency_tracker): region overlap
 * and coverage, the edges the tracker reports, and brute-force checks of
 * both against byte sets enumerated element by element.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "common/error.h"
#include "runtime/dependency_tracker/region.h"
#include "runtime/dependency_tracker/tracker.h"
#include "simpler/simpler.h"

#define F32 SIMPLER_DTYPE_FLOAT32
#define BASE 0x100000ull

/* ---- helpers --------------------------------------------------------- */

static simpler_tensor tensor(uint64_t addr, uint64_t offset, uint32_t dtype, uint32_t ndim, const int64_t *shape,
                             const int64_t *strides)
{
    simpler_tensor t;
    memset(&t, 0, sizeof t);
    t.addr = addr;
    t.offset = offset;
    t.dtype = dtype;
    t.ndim = ndim;
    for (uint32_t d = 0; d < ndim; d++) {
        t.shape[d] = shape[d];
        t.strides[d] = strides[d];
    }
    return t;
}

/* A region that must initialise; a failure is a test failure. */
static dep_region region(uint64_t addr, uint64_t offset, uint32_t dtype, uint32_t ndim, const int64_t *shape,
                         const int64_t *strides)
{
    dep_region r;
    simpler_tensor t = tensor(addr, offset, dtype, ndim, shape, strides);
    int rc = dep_region_init(&r, &t);
    CHECKF(rc == SIMPLER_OK, "dep_region_init: %d %s", rc, simpler_last_error());
    return r;
}

/* n float32 elements from element `start` of BASE. */
static dep_region range1(uint64_t base, uint64_t start, int64_t n)
{
    return region(base, start, F32, 1, (int64_t[]){n}, (int64_t[]){1});
}

/* A rows x cols tile at (row, col) of a row-major float32 matrix with ld
 * columns at BASE. */
static dep_region tile(int64_t ld, int64_t row, int64_t col, int64_t rows, int64_t cols)
{
    return region(BASE, (uint64_t)(row * ld + col), F32, 2, (int64_t[]){rows, cols}, (int64_t[]){ld, 1});
}

/* Symmetric overlap, checked both ways. */
static int overlaps(const dep_region *a, const dep_region *b)
{
    int ab = dep_region_overlaps(a, b), ba = dep_region_overlaps(b, a);
    CHECKF(ab == ba, "overlaps is not symmetric (%d vs %d)", ab, ba);
    return ab;
}

/* ---- regions --------------------------------------------------------- */

static void test_ranges_1d(void)
{
    dep_region a = range1(BASE, 0, 10), b = range1(BASE, 10, 10), c = range1(BASE, 9, 10);
    dep_region d = range1(BASE, 2, 3), e = range1(BASE, 0, 10);
    CHECK(a.lo == BASE && a.hi == BASE + 40 && a.dense && a.boxed);
    CHECK(!overlaps(&a, &b)); /* adjacent */
    CHECK(overlaps(&a, &c));  /* one element in common */
    CHECK(overlaps(&b, &c));
    CHECK(overlaps(&a, &d)); /* contained */
    CHECK(overlaps(&a, &e)); /* identical */
    CHECK(overlaps(&a, &a));
    CHECK(dep_region_equal(&a, &e) && !dep_region_equal(&a, &c));

    /* Interleaved stride-2 views of one buffer never share an element. */
    dep_region even = region(BASE, 0, F32, 1, (int64_t[]){8}, (int64_t[]){2});
    dep_region odd = region(BASE, 1, F32, 1, (int64_t[]){8}, (int64_t[]){2});
    dep_region odd_late = region(BASE, 5, F32, 1, (int64_t[]){4}, (int64_t[]){2});
    dep_region even_late = region(BASE, 6, F32, 1, (int64_t[]){4}, (int64_t[]){2});
    CHECK(!even.dense && even.boxed);
    CHECK(!overlaps(&even, &odd));
    CHECK(!overlaps(&even, &odd_late));
    CHECK(overlaps(&odd, &odd_late));
    CHECK(overlaps(&even, &even_late));
    /* A dense range overlaps both. */
    CHECK(overlaps(&a, &even) && overlaps(&a, &odd));

    /* Same bytes through a different dtype: no longer comparable, but the
     * bytes meet. */
    dep_region bytes = region(BASE, 4, SIMPLER_DTYPE_UINT8, 1, (int64_t[]){1}, (int64_t[]){1});
    CHECK(overlaps(&even, &bytes) && overlaps(&a, &bytes));
    dep_region bytes_past = region(BASE, 40, SIMPLER_DTYPE_UINT8, 1, (int64_t[]){4}, (int64_t[]){1});
    CHECK(!overlaps(&a, &bytes_past));
}

static void test_tiles_2d(void)
{
    const int64_t ld = 64; /* 64 x 64 float32 matrix */
    dep_region t00 = tile(ld, 0, 0, 16, 16), t01 = tile(ld, 0, 16, 16, 16), t02 = tile(ld, 0, 32, 16, 16);
    dep_region t10 = tile(ld, 16, 0, 16, 16), t11 = tile(ld, 16, 16, 16, 16);
    dep_region mid = tile(ld, 8, 8, 16, 16), full = tile(ld, 0, 0, 64, 64);
    CHECK(t00.boxed && t01.boxed && mid.boxed && full.boxed && full.dense && !t00.dense);
    /* Same row band, different column tiles: interleaved byte ranges but
     * no shared element. */
    CHECK(t00.lo < t01.hi && t01.lo < t00.hi);
    CHECK(!overlaps(&t00, &t01));
    CHECK(!overlaps(&t00, &t02));
    CHECK(!overlaps(&t01, &t02));
    CHECK(!overlaps(&t00, &t10) && !overlaps(&t00, &t11) && !overlaps(&t01, &t10));
    /* A tile straddling four others overlaps each of them. */
    CHECK(overlaps(&mid, &t00) && overlaps(&mid, &t01) && overlaps(&mid, &t10) && overlaps(&mid, &t11));
    CHECK(!overlaps(&mid, &t02));
    CHECK(overlaps(&full, &t11) && overlaps(&full, &mid));
    /* Single row / column slivers. */
    dep_region col15 = tile(ld, 0, 15, 64, 1), col16 = tile(ld, 0, 16, 64, 1), row16 = tile(ld, 16, 0, 1, 64);
    CHECK(overlaps(&col15, &t00) && !overlaps(&col15, &t01));
    CHECK(overlaps(&col16, &t01) && !overlaps(&col16, &t00));
    CHECK(overlaps(&row16, &t10) && !overlaps(&row16, &t00) && overlaps(&row16, &col15));
    /* Tiles of a padded matrix (ld 70 > 64 columns used). */
    dep_region p0 = region(BASE, 0, F32, 2, (int64_t[]){8, 32}, (int64_t[]){70, 1});
    dep_region p1 = region(BASE, 32, F32, 2, (int64_t[]){8, 32}, (int64_t[]){70, 1});
    dep_region p2 = region(BASE, 31 + 70 * 7, F32, 2, (int64_t[]){1, 2}, (int64_t[]){70, 1});
    CHECK(p0.boxed && p1.boxed && p2.boxed);
    CHECK(!overlaps(&p0, &p1));
    CHECK(overlaps(&p0, &p2) && overlaps(&p1, &p2));
    /* 3-D blocks of a [4][8][8] tensor. */
    int64_t st3[3] = {64, 8, 1};
    dep_region b0 = region(BASE, 0, F32, 3, (int64_t[]){4, 4, 4}, st3);
    dep_region b1 = region(BASE, 4, F32, 3, (int64_t[]){4, 4, 4}, st3);
    dep_region b2 = region(BASE, 32, F32, 3, (int64_t[]){4, 4, 4}, st3);
    dep_region b3 = region(BASE, 64 * 2 + 8 * 3 + 3, F32, 3, (int64_t[]){1, 2, 2}, st3);
    /* b3: (2, 3..4, 3..4) straddles b0, b1 and b2; b4: (2, 3, 5..6) only b1. */
    dep_region b4 = region(BASE, 64 * 2 + 8 * 3 + 5, F32, 3, (int64_t[]){1, 1, 2}, st3);
    CHECK(b0.boxed && b1.boxed && b2.boxed && b3.boxed && b4.boxed);
    CHECK(!overlaps(&b0, &b1) && !overlaps(&b0, &b2) && !overlaps(&b1, &b2));
    CHECK(overlaps(&b3, &b0) && overlaps(&b3, &b1) && overlaps(&b3, &b2));
    CHECK(overlaps(&b4, &b1) && !overlaps(&b4, &b0) && !overlaps(&b4, &b2));
}

static void test_mixed_strides(void)
{
    /* A 16 x 16 matrix and its transpose view: not comparable as boxes, so
     * overlap falls back to byte intervals and must be reported whenever
     * bytes meet. */
    dep_region row0 = region(BASE, 0, F32, 2, (int64_t[]){1, 16}, (int64_t[]){16, 1});
    dep_region col0_t = region(BASE, 0, F32, 2, (int64_t[]){1, 16}, (int64_t[]){1, 16}); /* column 0 */
    dep_region col1_t = region(BASE, 1, F32, 2, (int64_t[]){1, 16}, (int64_t[]){1, 16}); /* column 1 */
    CHECK(overlaps(&row0, &col0_t)); /* element (0,0) */
    CHECK(overlaps(&row0, &col1_t)); /* element (0,1) */
    /* Different ndim, same bytes. */
    dep_region flat = range1(BASE, 17, 1); /* element (1,1) */
    dep_region t11 = tile(16, 1, 1, 1, 1);
    CHECK(overlaps(&flat, &t11));
    /* Strides differ and no byte is shared: fine either way, but a
     * stride-3 walk through a stride-2 walk that share element 6 must be
     * reported. */
    dep_region s2 = region(BASE, 0, F32, 1, (int64_t[]){8}, (int64_t[]){2});
    dep_region s3 = region(BASE, 0, F32, 1, (int64_t[]){5}, (int64_t[]){3});
    CHECK(overlaps(&s2, &s3));
    /* Negative strides: a reversed view covers the same bytes. */
    dep_region fwd = range1(BASE, 0, 8);
    dep_region rev = region(BASE, 7, F32, 1, (int64_t[]){8}, (int64_t[]){-1});
    CHECK(rev.lo == BASE && rev.hi == BASE + 32 && rev.dense && !rev.boxed);
    CHECK(overlaps(&fwd, &rev));
    CHECK(dep_region_covers(&rev, &fwd) && dep_region_covers(&fwd, &rev));
    /* A broadcast (stride 0) read of one element. */
    dep_region bcast = region(BASE, 3, F32, 2, (int64_t[]){4, 4}, (int64_t[]){0, 0});
    CHECK(bcast.lo == BASE + 12 && bcast.hi == BASE + 16);
    dep_region past = range1(BASE, 4, 4);
    CHECK(overlaps(&bcast, &fwd) && !overlaps(&bcast, &past));
}

static void test_bases(void)
{
    /* Two separate buffers. */
    dep_region a = range1(BASE, 0, 64), b = range1(BASE + 256, 0, 64);
    CHECK(!overlaps(&a, &b));
    /* Two tensors whose base addresses differ but whose memory is the same
     * (a view handed over as a new tensor): overlap is about bytes. */
    dep_region a_tail = range1(BASE, 32, 32), alias = range1(BASE + 128, 0, 32);
    CHECK(overlaps(&a_tail, &alias));
    CHECK(overlaps(&a, &alias));
    dep_region alias_tile = region(BASE + 64, 0, F32, 2, (int64_t[]){4, 4}, (int64_t[]){16, 1});
    dep_region own_tile = region(BASE, 16, F32, 2, (int64_t[]){4, 4}, (int64_t[]){16, 1});
    CHECK(alias_tile.boxed && own_tile.boxed);
    CHECK(overlaps(&alias_tile, &own_tile)); /* identical bytes, different base */
    dep_region other_buffer = range1(BASE + 4096, 16, 16);
    CHECK(!overlaps(&own_tile, &other_buffer));
}

static void test_covers(void)
{
    const int64_t ld = 64;
    dep_region full = tile(ld, 0, 0, 64, 64), t00 = tile(ld, 0, 0, 16, 16), t01 = tile(ld, 0, 16, 16, 16);
    dep_region mid = tile(ld, 8, 8, 16, 16), inner = tile(ld, 2, 3, 4, 5);
    CHECK(dep_region_covers(&full, &t00) && dep_region_covers(&full, &mid));
    CHECK(!dep_region_covers(&t00, &full));
    CHECK(dep_region_covers(&t00, &t00));
    CHECK(dep_region_covers(&t00, &inner));
    CHECK(!dep_region_covers(&t00, &t01));
    CHECK(!dep_region_covers(&t00, &mid) && !dep_region_covers(&mid, &t00));
    /* A tile does not cover a range inside its byte interval that crosses
     * into the neighbouring tile. */
    dep_region row_span = range1(BASE, 0, 32);
    CHECK(!dep_region_covers(&t00, &row_span));
    CHECK(dep_region_covers(&full, &row_span));
    /* Dense 1-D ranges. */
    dep_region a = range1(BASE, 0, 10), sub = range1(BASE, 3, 4), past = range1(BASE, 8, 4);
    CHECK(dep_region_covers(&a, &sub) && !dep_region_covers(&a, &past) && !dep_region_covers(&sub, &a));
    /* A strided (non-dense) view does not cover what lies between its
     * elements. */
    dep_region even = region(BASE, 0, F32, 1, (int64_t[]){5}, (int64_t[]){2});
    dep_region one_odd = range1(BASE, 3, 1);
    CHECK(!dep_region_covers(&even, &one_odd));
    CHECK(!dep_region_covers(&even, &a));
    CHECK(dep_region_covers(&a, &even)); /* dense, different strides */
    /* Another base: covers only through bytes. */
    dep_region a_alias = range1(BASE + 12, 0, 4);
    CHECK(dep_region_covers(&a, &a_alias));
    dep_region elsewhere = range1(BASE + 4096, 0, 10);
    CHECK(!dep_region_covers(&elsewhere, &sub));
}

/* A view whose element count equals its byte span only because some
 * elements repeat is not dense: bytes between its elements are not in it.
 * region.h: dense means "every byte of [lo, hi) is in the view", and
 * covers() is "true only if every byte of b is inside a". */
static void test_aliasing_view_not_dense(void)
{
    /* Elements at offsets {0, 0, 3, 3}: 4 elements, span 4, bytes of
     * elements 1 and 2 not in the view. */
    dep_region alias = region(BASE, 0, F32, 2, (int64_t[]){2, 2}, (int64_t[]){3, 0});
    dep_region elem1 = range1(BASE, 1, 1);
    CHECKF(!alias.dense, "[2,2] strides [3,0] marked dense (lo %llu hi %llu)",
           (unsigned long long)(alias.lo - BASE), (unsigned long long)(alias.hi - BASE));
    CHECKF(!dep_region_covers(&alias, &elem1), "covers() claims element 1, which the view never touches");
    /* Same with positive strides only: offsets {0,1,1,2,5,6,6,7}. */
    dep_region alias3 = region(BASE, 0, F32, 3, (int64_t[]){2, 2, 2}, (int64_t[]){5, 1, 1});
    dep_region elem3 = range1(BASE, 3, 2);
    CHECK(!alias3.dense);
    CHECK(!dep_region_covers(&alias3, &elem3));
}

static void test_empty(void)
{
    dep_region e = region(BASE, 0, F32, 2, (int64_t[]){0, 16}, (int64_t[]){16, 1});
    dep_region e2 = region(BASE, 5, F32, 2, (int64_t[]){4, 0}, (int64_t[]){16, 1});
    dep_region a = range1(BASE, 0, 64);
    CHECK(dep_region_empty(&e) && dep_region_empty(&e2) && !dep_region_empty(&a));
    CHECK(!overlaps(&e, &a) && !overlaps(&e, &e) && !overlaps(&e, &e2));
    CHECK(dep_region_covers(&a, &e));
    CHECK(!dep_region_covers(&e, &a));
}

static void test_init_errors(void)
{
    dep_region r;
    simpler_tensor t = tensor(BASE, 0, F32, 1, (int64_t[]){4}, (int64_t[]){1});
    CHECK(dep_region_init(&r, &t) == SIMPLER_OK);
    t.ndim = 0;
    CHECK(dep_region_init(&r, &t) == SIMPLER_E_INVALID_ARGUMENT && strstr(simpler_last_error(), "dimensions"));
    t.ndim = SIMPLER_MAX_DIMS + 1;
    CHECK(dep_region_init(&r, &t) == SIMPLER_E_INVALID_ARGUMENT);
    t.ndim = 1;
    t.dtype = 0;
    CHECK(dep_region_init(&r, &t) == SIMPLER_E_INVALID_ARGUMENT && strstr(simpler_last_error(), "dtype"));
    t.dtype = 0x700; /* size byte 0 */
    CHECK(dep_region_init(&r, &t) == SIMPLER_E_INVALID_ARGUMENT);
    t.dtype = F32;
    t.shape[0] = -1;
    CHECK(dep_region_init(&r, &t) == SIMPLER_E_INVALID_ARGUMENT);
    t.shape[0] = 4;
    t.strides[0] = -1; /* reaches 3 elements before the base */
    CHECK(dep_region_init(&r, &t) == SIMPLER_E_INVALID_ARGUMENT && strstr(simpler_last_error(), "before"));
    t.offset = 3;
    CHECK(dep_region_init(&r, &t) == SIMPLER_OK && r.lo == BASE);
    t.strides[0] = (INT64_C(1) << 48) + 1; /* beyond the 2^48-element reach */
    CHECK(dep_region_init(&r, &t) == SIMPLER_E_INVALID_ARGUMENT);
}

/* Inputs at the limits dep_region_init accepts must not overflow: run each
 * in a child so a sanitizer abort is reported as a failed check. */
typedef struct extreme_case {
    const char *what;
    simpler_tensor t;
} extreme_case;

static int init_extreme(const simpler_tensor *t)
{
    dep_region r;
    int rc = dep_region_init(&r, t);
    if (rc == SIMPLER_OK && r.lo > r.hi) {
        fprintf(stderr, "    accepted with lo 0x%llx > hi 0x%llx\n", (unsigned long long)r.lo,
                (unsigned long long)r.hi);
        return 1;
    }
    if (rc != SIMPLER_OK && rc != SIMPLER_E_INVALID_ARGUMENT)
        return 1;
    return 0;
}

static void test_extremes(void)
{
    const int64_t big = INT64_C(1) << 40;
    extreme_case cases[] = {
        {"shape 2^40 x stride 2^40", tensor(BASE, 0, F32, 1, (int64_t[]){big}, (int64_t[]){big})},
        {"shape 2^40 x stride -2^40", tensor(BASE, 0, F32, 1, (int64_t[]){big}, (int64_t[]){-big})},
        {"2-D reach near 2^62 at offset 2^62",
         tensor(BASE, UINT64_C(1) << 62, F32, 2, (int64_t[]){1 << 22, 1 << 18}, (int64_t[]){big, big})},
        {"offset INT64_MAX", tensor(BASE, INT64_MAX, F32, 1, (int64_t[]){2}, (int64_t[]){1})},
        {"offset UINT64_MAX", tensor(BASE, UINT64_MAX, F32, 1, (int64_t[]){1}, (int64_t[]){1})},
        {"bytes past the top of the address space", tensor(UINT64_MAX - 15, 0, F32, 1, (int64_t[]){8}, (int64_t[]){1})},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0)
            _exit(init_extreme(&cases[i].t));
        int status = 0;
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
        CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "dep_region_init on %s: %s %d", cases[i].what,
               WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
}

/* ---- brute force: regions against enumerated bytes -------------------- */

#define WIN 512 /* bytes of memory the random views live in */

typedef struct view {
    simpler_tensor t;
    uint8_t bytes[WIN]; /* byte i of the window is in the view */
    int count;          /* elements, counting repeats */
} view;

static void enumerate(view *v)
{
    memset(v->bytes, 0, sizeof v->bytes);
    const simpler_tensor *t = &v->t;
    uint64_t esize = t->dtype & 0xFF;
    int64_t idx[SIMPLER_MAX_DIMS] = {0};
    v->count = 0;
    for (uint32_t d = 0; d < t->ndim; d++)
        if (t->shape[d] == 0)
            return;
    for (;;) {
        int64_t off = (int64_t)t->offset;
        for (uint32_t d = 0; d < t->ndim; d++)
            off += idx[d] * t->strides[d];
        uint64_t at = t->addr - BASE + (uint64_t)off * esize;
        for (uint64_t k = 0; k < esize; k++)
            v->bytes[at + k] = 1;
        v->count++;
        uint32_t d = t->ndim;
        while (d > 0 && ++idx[d - 1] == t->shape[d - 1])
            idx[--d] = 0;
        if (d == 0)
            return;
    }
}

static const uint32_t dtypes[] = {SIMPLER_DTYPE_INT8, SIMPLER_DTYPE_FLOAT16, F32, F32, F32, SIMPLER_DTYPE_FLOAT64};

/* A random view inside the window; like != NULL copies its base, dtype
 * and strides so the pair is comparable when both are boxed. */
static int g_one_base; /* random views all use BASE as their address */

static void random_view(view *v, const view *like, unsigned long long *rng)
{
    simpler_tensor *t = &v->t;
    memset(t, 0, sizeof *t);
    if (like) {
        t->addr = like->t.addr;
        t->dtype = like->t.dtype;
        t->ndim = like->t.ndim;
        memcpy(t->strides, like->t.strides, sizeof t->strides);
    } else {
        t->addr = BASE + (g_one_base ? 0 : 16 * (check_rand(rng) % 4));
        t->dtype = dtypes[check_rand(rng) % (sizeof dtypes / sizeof *dtypes)];
        t->ndim = 1 + (uint32_t)(check_rand(rng) % 3);
        if (check_rand(rng) % 2) {
            /* row-major-like strides (often boxed tiles) */
            int64_t s = 1 + (int64_t)(check_rand(rng) % 2);
            for (int d = (int)t->ndim - 1; d >= 0; d--) {
                t->strides[d] = s;
                s *= 2 + (int64_t)(check_rand(rng) % 4);
            }
        } else {
            for (uint32_t d = 0; d < t->ndim; d++)
                t->strides[d] = (int64_t)(check_rand(rng) % 12) - 3;
        }
    }
    uint64_t esize = t->dtype & 0xFF;
    int64_t limit = (int64_t)((WIN - (t->addr - BASE)) / esize); /* elements that fit */
    for (int attempt = 0;; attempt++) {
        int64_t lo = 0, hi = 0;
        for (uint32_t d = 0; d < t->ndim; d++) {
            t->shape[d] = check_rand(rng) % 40 == 0 ? 0 : 1 + (int64_t)(check_rand(rng) % 5);
            if (attempt > 20)
                t->shape[d] = t->shape[d] ? 1 : 0;
            int64_t reach = (t->shape[d] ? t->shape[d] - 1 : 0) * t->strides[d];
            if (reach < 0)
                lo += reach;
            else
                hi += reach;
        }
        int64_t room = limit - (hi - lo);
        if (room <= 0)
            continue;
        t->offset = (uint64_t)(-lo + (int64_t)(check_rand(rng) % (uint64_t)room));
        break;
    }
    enumerate(v);
}

static void test_brute_force_regions(void)
{
    static view a, b;
    unsigned long long rng = 0xdeb5;
    unsigned missed = 0, inexact = 0, bad_cover = 0, exact_cover = 0, bad_bounds = 0, bad_dense = 0;
    unsigned comparable = 0, true_overlaps = 0, init_failed = 0;
    const int rounds = 200000;
    for (int i = 0; i < rounds; i++) {
        random_view(&a, NULL, &rng);
        random_view(&b, check_rand(&rng) % 2 ? &a : NULL, &rng);
        dep_region ra, rb;
        if (dep_region_init(&ra, &a.t) || dep_region_init(&rb, &b.t)) {
            init_failed++;
            continue;
        }
        int truth = 0, b_in_a = 1;
        for (int k = 0; k < WIN; k++) {
            truth |= a.bytes[k] & b.bytes[k];
            if (b.bytes[k] && !a.bytes[k])
                b_in_a = 0;
        }
        true_overlaps += truth;
        int got = dep_region_overlaps(&ra, &rb);
        int same_system = ra.boxed && rb.boxed && ra.base == rb.base && ra.dtype == rb.dtype && ra.ndim == rb.ndim &&
                          memcmp(ra.strides, rb.strides, sizeof ra.strides) == 0;
        comparable += same_system;
        if (truth && !got) {
            if (missed++ < 5)
                fprintf(stderr, "    missed overlap in round %d\n", i);
        }
        if (same_system && got != truth)
            inexact++;
        if (dep_region_overlaps(&rb, &ra) != got)
            inexact++;
        int cov = dep_region_covers(&ra, &rb);
        if (cov && !b_in_a) {
            if (bad_cover++ < 5)
                fprintf(stderr, "    round %d: covers() but b has bytes outside a (a ndim %u shape [%lld %lld %lld] "
                        "strides [%lld %lld %lld])\n", i, a.t.ndim, (long long)a.t.shape[0], (long long)a.t.shape[1],
                        (long long)a.t.shape[2], (long long)a.t.strides[0], (long long)a.t.strides[1],
                        (long long)a.t.strides[2]);
        }
        if (same_system && cov != b_in_a)
            exact_cover++;
        /* [lo, hi) is the tight byte hull; dense means the hull is full. */
        const view *vs[2] = {&a, &b};
        const dep_region *rs[2] = {&ra, &rb};
        for (int s = 0; s < 2; s++) {
            int64_t first = -1, last = -1, n = 0;
            for (int k = 0; k < WIN; k++)
                if (vs[s]->bytes[k]) {
                    if (first < 0)
                        first = k;
                    last = k;
                    n++;
                }
            if (first < 0) {
                if (!dep_region_empty(rs[s]))
                    bad_bounds++;
                continue;
            }
            if (rs[s]->lo != BASE + (uint64_t)first || rs[s]->hi != BASE + (uint64_t)last + 1)
                bad_bounds++;
            if (rs[s]->dense && n != last - first + 1)
                bad_dense++;
        }
    }
    printf("regions: %d pairs, %u truly overlapping, %u comparable\n", rounds, true_overlaps, comparable);
    CHECK(init_failed == 0);
    CHECKF(missed == 0, "%u real overlaps reported as disjoint", missed);
    CHECKF(inexact == 0, "%u comparable pairs answered inexactly (or asymmetrically)", inexact);
    CHECKF(bad_bounds == 0, "%u regions with lo/hi not the byte hull", bad_bounds);
    CHECKF(bad_dense == 0, "%u regions marked dense with holes", bad_dense);
    CHECKF(bad_cover == 0, "%u covers() answers claiming bytes outside a", bad_cover);
    CHECKF(exact_cover == 0, "%u comparable pairs with an inexact covers()", exact_cover);
    CHECKF(true_overlaps > rounds / 10 && comparable > rounds / 20, "generator too weak: %u overlaps, %u comparable",
           true_overlaps, comparable);
}

/* ---- tracker --------------------------------------------------------- */

#define MAX_PREDS 4096

typedef struct preds {
    uint32_t n;
    uint32_t id[MAX_PREDS];
    int abort_on; /* emit returns non-zero for this producer (-1: never) */
} preds;

static int collect(void *ctx, uint32_t producer)
{
    preds *p = ctx;
    if ((int64_t)producer == p->abort_on)
        return 1;
    for (uint32_t i = 0; i < p->n; i++)
        if (p->id[i] == producer)
            return 0;
    if (p->n < MAX_PREDS)
        p->id[p->n++] = producer;
    return 0;
}

static int has(const preds *p, uint32_t id)
{
    for (uint32_t i = 0; i < p->n; i++)
        if (p->id[i] == id)
            return 1;
    return 0;
}

enum { RD = 1, WR = 2, RW = 3 };

/* Record an access and return the predecessors found. */
static preds track(dep_tracker *t, uint32_t task, const dep_region *r, int mode)
{
    preds p = {.n = 0, .abort_on = -1};
    int rc = dep_tracker_access(t, task, r, mode & RD, (mode & WR) != 0, collect, &p);
    CHECKF(rc == SIMPLER_OK, "dep_tracker_access: %d %s", rc, simpler_last_error());
    return p;
}

/* preds equal exactly the listed ids. */
static int exactly(const preds *p, uint32_t n, const uint32_t *ids)
{
    if (p->n != n)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        if (!has(p, ids[i]))
            return 0;
    return 1;
}

#define EXACTLY(p, ...) exactly(&(p), sizeof((uint32_t[]){__VA_ARGS__}) / sizeof(uint32_t), (uint32_t[]){__VA_ARGS__})

static void test_tracker_basic_edges(void)
{
    dep_tracker *t = NULL;
    if (!CHECK(dep_tracker_create(&t) == SIMPLER_OK && t))
        return;
    dep_region r = range1(BASE, 0, 64);
    preds p;
    p = track(t, 1, &r, WR);
    CHECK(p.n == 0);
    p = track(t, 2, &r, RD); /* read after write */
    CHECK(EXACTLY(p, 1));
    p = track(t, 3, &r, RD); /* readers do not wait for readers */
    CHECK(EXACTLY(p, 1));
    p = track(t, 4, &r, WR); /* write after read (and after write) */
    CHECK(EXACTLY(p, 1, 2, 3));
    p = track(t, 5, &r, WR); /* write after write */
    CHECK(EXACTLY(p, 4));
    CHECK(dep_tracker_live_regions(t) == 1);
    /* No self edges when a task reads and writes the same region. */
    p = track(t, 6, &r, RD);
    CHECK(EXACTLY(p, 5));
    p = track(t, 6, &r, WR);
    CHECK(EXACTLY(p, 5));
    p = track(t, 7, &r, RD);
    CHECK(EXACTLY(p, 6));
    /* Disjoint and empty accesses find nothing. */
    dep_region other = range1(BASE, 64, 64);
    p = track(t, 8, &other, WR);
    CHECK(p.n == 0);
    dep_region empty = region(BASE, 0, F32, 1, (int64_t[]){0}, (int64_t[]){1});
    uint64_t live = dep_tracker_live_regions(t);
    p = track(t, 9, &empty, RW);
    CHECK(p.n == 0 && dep_tracker_live_regions(t) == live);
    p = track(t, 9, &r, 0); /* neither read nor write */
    CHECK(p.n == 0 && dep_tracker_live_regions(t) == live);
    dep_tracker_destroy(t);
    dep_tracker_destroy(NULL);
}

static void test_tracker_supersede(void)
{
    dep_tracker *t = NULL;
    if (!CHECK(dep_tracker_create(&t) == SIMPLER_OK))
        return;
    const int64_t ld = 64;
    dep_region t00 = tile(ld, 0, 0, 32, 32), t01 = tile(ld, 0, 32, 32, 32), t10 = tile(ld, 32, 0, 32, 32);
    dep_region full = tile(ld, 0, 0, 64, 64);
    preds p;
    track(t, 1, &t00, WR);
    track(t, 2, &t01, WR);
    track(t, 3, &t10, RD);
    CHECK(dep_tracker_live_regions(t) == 3);
    p = track(t, 4, &full, WR);
    CHECK(EXACTLY(p, 1, 2, 3));
    CHECK(dep_tracker_live_regions(t) == 1);
    /* The superseded writers are gone: a reader waits for the new one. */
    p = track(t, 5, &t00, RD);
    CHECK(EXACTLY(p, 4));
    /* A write that covers only part of a region trims it to the rest:
     * full becomes rows 32..63 and the tile at (0, 0). */
    p = track(t, 6, &t01, WR);
    CHECK(EXACTLY(p, 4));
    CHECK(dep_tracker_live_regions(t) == 4); /* two pieces of full, t00 (read), t01 */
    p = track(t, 7, &t01, RD);
    CHECK(EXACTLY(p, 6));
    p = track(t, 8, &t10, RD); /* the rest of full still has its writer */
    CHECK(EXACTLY(p, 4));
    /* Superseding a dense 1-D range by a larger one. */
    dep_region small = range1(BASE + 65536, 8, 8), large = range1(BASE + 65536, 0, 32);
    uint64_t live = dep_tracker_live_regions(t);
    track(t, 8, &small, WR);
    CHECK(dep_tracker_live_regions(t) == live + 1);
    p = track(t, 9, &large, WR);
    CHECK(EXACTLY(p, 8) && dep_tracker_live_regions(t) == live + 1);
    dep_tracker_destroy(t);
}

static void test_tracker_disjoint_readers(void)
{
    dep_tracker *t = NULL;
    if (!CHECK(dep_tracker_create(&t) == SIMPLER_OK))
        return;
    const int64_t ld = 64;
    dep_region full = tile(ld, 0, 0, 64, 64);
    preds p = track(t, 1, &full, WR);
    /* 16 readers, one per 16 x 16 tile: each waits for the writer only. */
    for (uint32_t i = 0; i < 16; i++) {
        dep_region ti = tile(ld, 16 * (i / 4), 16 * (i % 4), 16, 16);
        p = track(t, 2 + i, &ti, RD);
        CHECKF(EXACTLY(p, 1), "reader %u found %u predecessors", i, p.n);
    }
    /* Writers of disjoint tiles in the same row band wait for their own
     * tile's reader (and the old full writer), not the neighbours'. */
    for (uint32_t i = 0; i < 4; i++) {
        dep_region ti = tile(ld, 0, 16 * i, 16, 16);
        p = track(t, 100 + i, &ti, WR);
        CHECKF(EXACTLY(p, 1, 2 + i), "writer of tile %u: %u predecessors", i, p.n);
    }
    /* Readers of columns of the band: each column tile's writer only. */
    for (uint32_t i = 0; i < 4; i++) {
        dep_region ci = tile(ld, 0, 16 * i + 5, 16, 3);
        p = track(t, 200 + i, &ci, RD);
        CHECKF(has(&p, 100 + i) && !has(&p, 100 + (i + 1) % 4) && !has(&p, 100 + (i + 3) % 4),
               "column reader %u", i);
    }
    dep_tracker_destroy(t);
}

static void test_tracker_inout_chain(void)
{
    dep_tracker *t = NULL;
    if (!CHECK(dep_tracker_create(&t) == SIMPLER_OK))
        return;
    dep_region acc = tile(64, 8, 0, 8, 64);
    for (uint32_t k = 1; k <= 50; k++) {
        preds p = track(t, k, &acc, RW);
        if (k == 1)
            CHECK(p.n == 0);
        else
            CHECKF(EXACTLY(p, k - 1), "INOUT %u: %u predecessors", k, p.n);
    }
    CHECK(dep_tracker_live_regions(t) == 1);
    /* Two interleaved chains on disjoint tiles stay separate. */
    dep_region x = tile(64, 0, 0, 8, 32), y = tile(64, 0, 32, 8, 32);
    for (uint32_t k = 0; k < 20; k++) {
        preds p = track(t, 100 + k, k % 2 ? &y : &x, RW);
        if (k >= 2)
            CHECKF(EXACTLY(p, 100 + k - 2), "interleaved INOUT %u", k);
        else
            CHECK(p.n == 0);
    }
    dep_tracker_destroy(t);
}

static void test_tracker_abort_and_bases(void)
{
    dep_tracker *t = NULL;
    if (!CHECK(dep_tracker_create(&t) == SIMPLER_OK))
        return;
    dep_region r = range1(BASE, 0, 16);
    track(t, 1, &r, WR);
    preds p = {.n = 0, .abort_on = 1};
    CHECK(dep_tracker_access(t, 2, &r, 1, 0, collect, &p) == SIMPLER_E_ORCHESTRATION);
    /* Many bases: the per-base table grows and every base keeps its own
     * history. */
    for (uint32_t i = 0; i < 2000; i++) {
        dep_region ri = range1(BASE + 0x10000ull * (i + 1), 0, 16);
        p = track(t, 10 + i, &ri, WR);
        CHECK(p.n == 0);
    }
    for (uint32_t i = 0; i < 2000; i++) {
        dep_region ri = range1(BASE + 0x10000ull * (i + 1), 4, 4);
        p = track(t, 5000 + i, &ri, RD);
        if (!CHECK(EXACTLY(p, 10 + i)))
            break;
    }
    CHECK(dep_tracker_live_regions(t) >= 4001);
    dep_tracker_destroy(t);
}

/* Work per access stays flat however many regions are live: 50,000 rows of
 * one matrix written, then read, then written again, one task each, with
 * a whole-matrix reader and a row-band writer mixed in. The entries each
 * access examines (a counter, not a clock) must stay a small constant. */
static void test_tracker_flat_cost(void)
{
    dep_tracker *t = NULL;
    if (!CHECK(dep_tracker_create(&t) == SIMPLER_OK))
        return;
    enum { ROWS = 50000, COLS = 8 };
    uint32_t task = 0, accesses = 0;
    for (int pass = 0; pass < 3; pass++)
        for (int64_t r = 0; r < ROWS; r++) {
            dep_region row = tile(COLS, r, 0, 1, COLS);
            preds p = track(t, task++, &row, pass == 1 ? RD : RW);
            accesses++;
            /* pass 1 reads after pass 0's write; pass 2 writes after both */
            if (pass > 0 && !CHECKF(p.n == (uint32_t)pass, "row %lld pass %d: %u predecessors", (long long)r,
                                    pass, p.n))
                break;
        }
    CHECK(dep_tracker_live_regions(t) == ROWS);
    double per_access = (double)dep_tracker_visits(t) / accesses;
    CHECKF(per_access <= 4.0, "%.1f entries examined per access with %d live rows", per_access, ROWS);

    /* A tile spanning many rows finds exactly the rows it covers. */
    dep_region band = tile(COLS, 1000, 0, 64, COLS);
    uint64_t before = dep_tracker_visits(t);
    preds p = track(t, task++, &band, WR);
    CHECKF(p.n == 64 || p.n == MAX_PREDS, "row band found %u predecessors", p.n);
    CHECKF(dep_tracker_visits(t) - before <= 64 + 4, "row band examined %llu entries",
           (unsigned long long)(dep_tracker_visits(t) - before));
    CHECK(dep_tracker_live_regions(t) == ROWS - 64 + 1);
    dep_tracker_destroy(t);
}

/* Many disjoint in-place updates of one buffer, as an orchestration
 * updating a matrix row by row makes them (rows of 3 floats, so that rows
 * share and straddle grid cells), then accesses overlapping many rows:
 * each finds exactly the last writers of the rows it touches, through
 * cells several rows are listed in. Then a reset: nothing from before it
 * is found again, a use of the same size keeps the memory, and a reset
 * after a much smaller use gives most of it back. */
static int rows_round(dep_tracker *t)
{
    enum { ROWS = 20000, COLS = 3 };
    int ok = 1;
    for (int64_t r = 0; r < ROWS && ok; r++) {
        dep_region row = tile(COLS, r, 0, 1, COLS);
        preds p = track(t, (uint32_t)r, &row, RW);
        ok = CHECKF(p.n == 0, "row %lld: %u predecessors on the first pass", (long long)r, p.n);
    }
    for (int64_t r = 0; r < ROWS && ok; r++) {
        dep_region row = tile(COLS, r, 0, 1, COLS);
        preds p = track(t, (uint32_t)(ROWS + r), &row, RW);
        ok = CHECKF(EXACTLY(p, (uint32_t)r), "row %lld: %u predecessors on the second pass", (long long)r, p.n);
    }
    CHECK(dep_tracker_live_regions(t) == ROWS);
    /* A band of 300 rows waits for each of their writers. */
    dep_region band = tile(COLS, 5000, 0, 300, COLS);
    preds p = track(t, 2 * ROWS, &band, RD);
    int all = p.n == 300;
    for (uint32_t i = 0; i < 300 && all; i++)
        all = has(&p, ROWS + 5000 + i);
    CHECKF(all, "a read of 300 rows found %u of their writers", p.n);
    /* The middle column of rows 100..109 (trims those rows), then whole
     * rows 100..109: their writers, the column's writer, and the band
     * reader is not among them (other rows). */
    dep_region column = tile(COLS, 100, 1, 10, 1);
    p = track(t, 2 * ROWS + 1, &column, WR);
    all = p.n == 10;
    for (uint32_t i = 0; i < 10 && all; i++)
        all = has(&p, ROWS + 100 + i);
    CHECKF(all, "a write of one column of 10 rows found %u predecessors", p.n);
    dep_region rows = tile(COLS, 100, 0, 10, COLS);
    p = track(t, 2 * ROWS + 2, &rows, WR);
    all = p.n == 11 && has(&p, 2 * ROWS + 1);
    for (uint32_t i = 0; i < 10 && all; i++)
        all = has(&p, ROWS + 100 + i);
    CHECKF(all, "a write of 10 trimmed rows found %u predecessors", p.n);
    return ok;
}

static void test_tracker_rows_and_reset(void)
{
    dep_tracker *t = NULL;
    if (!CHECK(dep_tracker_create(&t) == SIMPLER_OK))
        return;
    rows_round(t);
    uint64_t bytes = dep_tracker_bytes(t);
    dep_tracker_reset(t);
    CHECK(dep_tracker_live_regions(t) == 0);
    CHECKF(dep_tracker_bytes(t) * 10 > bytes * 9, "a reset gave back memory (%llu of %llu bytes kept)",
           (unsigned long long)dep_tracker_bytes(t), (unsigned long long)bytes);
    rows_round(t); /* finds nothing from before the reset on its first pass */
    CHECKF(dep_tracker_bytes(t) == bytes, "a use of the same size after a reset grew the tracker to %llu bytes "
           "(from %llu)", (unsigned long long)dep_tracker_bytes(t), (unsigned long long)bytes);
    dep_tracker_reset(t);
    for (uint32_t i = 0; i < 10; i++) {
        dep_region row = tile(4, i, 0, 1, 4);
        track(t, i, &row, WR);
    }
    dep_tracker_reset(t);
    CHECKF(dep_tracker_bytes(t) * 8 < bytes, "%llu bytes kept after a small use (%llu after a large one)",
           (unsigned long long)dep_tracker_bytes(t), (unsigned long long)bytes);
    dep_region row = tile(4, 3, 0, 1, 4);
    preds p = track(t, 100, &row, RD);
    CHECKF(p.n == 0, "a read after a reset found %u predecessors", p.n);
    dep_tracker_destroy(t);
}

static int live_below(void *ctx, uint32_t task) { return task >= *(uint32_t *)ctx; }

/* Sweeping drops finished tasks' entries; forgetting a base drops all of
 * its entries and its bucket, so a new buffer at the same address starts
 * clean. Memory follows the live regions, not the tasks ever seen. */
static void test_tracker_sweep_and_forget(void)
{
    dep_tracker *t = NULL;
    if (!CHECK(dep_tracker_create(&t) == SIMPLER_OK))
        return;
    for (uint32_t i = 0; i < 1000; i++) {
        dep_region r = tile(8, i, 0, 1, 8);
        track(t, i, &r, WR);
    }
    CHECK(dep_tracker_live_regions(t) == 1000);
    uint32_t first_live = 900; /* tasks below it finished */
    dep_tracker_sweep(t, 5000, live_below, &first_live);
    CHECK(dep_tracker_live_regions(t) == 100);
    dep_region r = tile(8, 5, 0, 1, 8);
    preds p = track(t, 2000, &r, RD);
    CHECKF(p.n == 0, "a read after a swept (finished) writer found %u predecessors", p.n);

    for (uint64_t round = 0; round < 50; round++) {
        uint64_t base = BASE + 0x100000 + (round % 3) * 0x10000;
        for (uint32_t i = 0; i < 200; i++) {
            dep_region v = region(base, i * 4, F32, 1, (int64_t[]){4}, (int64_t[]){1});
            track(t, 3000 + i, &v, WR);
        }
        dep_tracker_forget(t, base);
        dep_region again = region(base, 0, F32, 1, (int64_t[]){4}, (int64_t[]){1});
        p = track(t, 4000, &again, RD);
        CHECKF(p.n == 0, "round %llu: a read of a forgotten base found %u predecessors", (unsigned long long)round,
               p.n);
        dep_tracker_forget(t, base);
    }
    CHECKF(dep_tracker_live_regions(t) == 101, "%llu live regions after forgetting",
           (unsigned long long)dep_tracker_live_regions(t));
    dep_tracker_forget(t, 0xdead0000); /* unknown: nothing happens */
    dep_tracker_destroy(t);
}

/*
 * Brute force: random accesses checked against a per-byte model. For every
 * byte, the model keeps the last writer and the readers since. A task must
 * be ordered (directly or through other reported edges) after the last
 * writer of each byte it touches, and, if it writes, after the readers
 * since. Edges only point backwards, so ancestor sets are bitsets.
 */
#define BF_TASKS 192
#define BF_WORDS (BF_TASKS / 64)

typedef struct bitset {
    uint64_t w[BF_WORDS];
} bitset;

static void bs_set(bitset *b, uint32_t i) { b->w[i / 64] |= 1ull << (i % 64); }
static int bs_has(const bitset *b, uint32_t i) { return (b->w[i / 64] >> (i % 64)) & 1; }

static void test_brute_force_tracker(void)
{
    static view v;
    static uint32_t last_writer[WIN];
    static bitset readers[WIN], anc[BF_TASKS];
    unsigned long long rng = 0x7eac;
    unsigned missing = 0, trials = 300, accesses = 0;
    /* One base address: the tracker keeps history per base, and callers
     * guarantee different bases never share memory (tracker.h). */
    g_one_base = 1;
    for (unsigned trial = 0; trial < trials; trial++) {
        dep_tracker *t = NULL;
        if (!CHECK(dep_tracker_create(&t) == SIMPLER_OK))
            return;
        for (int k = 0; k < WIN; k++) {
            last_writer[k] = DEP_NO_TASK;
            memset(&readers[k], 0, sizeof readers[k]);
        }
        memset(anc, 0, sizeof anc);
        /* A few shared shapes so accesses often meet exactly. */
        static view pool[6];
        for (int i = 0; i < 6; i++)
            random_view(&pool[i], i % 2 && i ? &pool[i - 1] : NULL, &rng);
        for (uint32_t task = 0; task < BF_TASKS; task++) {
            /* 1..3 accesses per task, like a task's tensors. */
            uint32_t nacc = 1 + (uint32_t)(check_rand(&rng) % 3);
            bitset need;
            memset(&need, 0, sizeof need);
            preds p = {.n = 0, .abort_on = -1};
            for (uint32_t a = 0; a < nacc; a++) {
                const view *vp;
                if (check_rand(&rng) % 3) {
                    vp = &pool[check_rand(&rng) % 6];
                } else {
                    random_view(&v, check_rand(&rng) % 2 ? &pool[check_rand(&rng) % 6] : NULL, &rng);
                    vp = &v;
                }
                int mode = 1 + (int)(check_rand(&rng) % 3);
                dep_region r;
                if (!CHECK(dep_region_init(&r, &vp->t) == SIMPLER_OK))
                    continue;
                int rc = dep_tracker_access(t, task, &r, mode & RD, (mode & WR) != 0, collect, &p);
                CHECK(rc == SIMPLER_OK);
                accesses++;
                for (int k = 0; k < WIN; k++) {
                    if (!vp->bytes[k])
                        continue;
                    if (last_writer[k] != DEP_NO_TASK && last_writer[k] != task)
                        bs_set(&need, last_writer[k]);
                    if (mode & WR) {
                        for (int w = 0; w < BF_WORDS; w++)
                            need.w[w] |= readers[k].w[w];
                    }
                }
                /* The model applies each access as the tracker does:
                 * immediately, in order. */
                for (int k = 0; k < WIN; k++) {
                    if (!vp->bytes[k])
                        continue;
                    if (mode & WR) {
                        last_writer[k] = task;
                        memset(&readers[k], 0, sizeof readers[k]);
                    } else if (last_writer[k] != task) {
                        bs_set(&readers[k], task);
                    }
                }
            }
            /* Ancestors: reported predecessors and theirs. */
            for (uint32_t i = 0; i < p.n; i++) {
                uint32_t q = p.id[i];
                if (!CHECKF(q < task, "task %u reported predecessor %u (not earlier)", task, q))
                    continue;
                bs_set(&anc[task], q);
                for (int w = 0; w < BF_WORDS; w++)
                    anc[task].w[w] |= anc[q].w[w];
            }
            for (uint32_t q = 0; q < task; q++)
                if (bs_has(&need, q) && !bs_has(&anc[task], q) && missing++ < 5)
                    fprintf(stderr, "    trial %u: task %u is not ordered after task %u\n", trial, task, q);
        }
        dep_tracker_destroy(t);
    }
    g_one_base = 0;
    printf("tracker: %u trials, %u accesses\n", trials, accesses);
    CHECKF(missing == 0, "%u required orderings missing", missing);
}

/* ---- subtraction: what a partial write leaves of a region -------------- */

/* The view a boxed region stands for (pieces are always boxed). */
static simpler_tensor region_view(const dep_region *r)
{
    simpler_tensor t;
    memset(&t, 0, sizeof t);
    t.addr = r->base;
    t.dtype = r->dtype;
    t.ndim = r->ndim;
    int64_t offset = r->lane;
    for (uint32_t d = 0; d < r->ndim; d++) {
        t.shape[d] = r->shape[d];
        t.strides[d] = r->strides[d];
        offset += r->start[d] * r->strides[d];
    }
    t.offset = (uint64_t)offset;
    return t;
}

static void test_subtract(void)
{
    dep_region pieces[DEP_REGION_MAX_PIECES];
    /* 1-D: [0, 10) minus [3, 5) is [0, 3) and [5, 10). */
    dep_region a = range1(BASE, 0, 10), mid = range1(BASE, 3, 2);
    int n = dep_region_subtract(&a, &mid, pieces);
    dep_region left = range1(BASE, 0, 3), right = range1(BASE, 5, 5);
    CHECK(n == 2 && dep_region_equal(&pieces[0], &left) && dep_region_equal(&pieces[1], &right));
    CHECK(dep_region_subtract(&a, &a, pieces) == 0);
    CHECK(dep_region_subtract(&mid, &a, pieces) == 0);
    /* Disjoint: a is left as it is. */
    dep_region past = range1(BASE, 10, 4);
    CHECK(dep_region_subtract(&a, &past, pieces) == 1 && dep_region_equal(&pieces[0], &a));
    /* 2-D: a tile minus a tile at its centre leaves 4 boxes (above, below,
     * left, right), none of them the hole. */
    dep_region big = tile(64, 0, 0, 16, 16), hole = tile(64, 4, 4, 8, 8);
    n = dep_region_subtract(&big, &hole, pieces);
    CHECK(n == 4);
    for (int i = 0; i < n; i++)
        CHECK(pieces[i].boxed && !dep_region_overlaps(&pieces[i], &hole) && dep_region_covers(&big, &pieces[i]));
    /* Dense ranges of different dtypes: cut as bytes, in the element type
     * when the cut falls on elements. */
    dep_region f32 = range1(BASE, 0, 8);
    dep_region bytes = region(BASE, 6, SIMPLER_DTYPE_UINT8, 1, (int64_t[]){4}, (int64_t[]){1}); /* bytes 6..9 */
    n = dep_region_subtract(&f32, &bytes, pieces);
    CHECK(n == 2 && pieces[0].lo == BASE && pieces[0].hi == BASE + 6 && pieces[1].lo == BASE + 10 &&
          pieces[1].hi == BASE + 32 && pieces[0].dtype == SIMPLER_DTYPE_UINT8);
    dep_region f64 = region(BASE, 1, SIMPLER_DTYPE_FLOAT64, 1, (int64_t[]){1}, (int64_t[]){1}); /* bytes 8..15 */
    n = dep_region_subtract(&f32, &f64, pieces);
    CHECK(n == 2 && pieces[0].dtype == F32 && pieces[0].hi == BASE + 8 && pieces[1].lo == BASE + 16);
    /* A strided view cut by a view of other strides: no exact form. */
    dep_region even = region(BASE, 0, F32, 1, (int64_t[]){8}, (int64_t[]){2});
    dep_region col = region(BASE, 0, F32, 2, (int64_t[]){4, 1}, (int64_t[]){4, 1});
    CHECK(dep_region_subtract(&even, &col, pieces) == -1);
}

/* Random pairs: whenever subtract answers, its pieces hold exactly the
 * bytes of a outside b. */
static void test_brute_force_subtract(void)
{
    static view a, b, piece;
    unsigned long long rng = 0x5ab7;
    unsigned wrong = 0, answered = 0, exact_cases = 0, unanswered_comparable = 0;
    for (int i = 0; i < 300000; i++) {
        random_view(&a, NULL, &rng);
        random_view(&b, check_rand(&rng) % 3 ? &a : NULL, &rng);
        dep_region ra, rb, pieces[DEP_REGION_MAX_PIECES];
        if (dep_region_init(&ra, &a.t) || dep_region_init(&rb, &b.t) || dep_region_empty(&ra) ||
            dep_region_empty(&rb))
            continue;
        int n = dep_region_subtract(&ra, &rb, pieces);
        if (!dep_region_overlaps(&ra, &rb)) { /* a is left as it is */
            CHECK(n == 1 && dep_region_equal(&pieces[0], &ra));
            continue;
        }
        int comparable = ra.boxed && rb.boxed && ra.base == rb.base && ra.dtype == rb.dtype &&
                         ra.ndim == rb.ndim && memcmp(ra.strides, rb.strides, sizeof ra.strides) == 0;
        if (n < 0) {
            unanswered_comparable += comparable;
            continue;
        }
        exact_cases += comparable;
        answered++;
        uint8_t got[WIN] = {0};
        for (int k = 0; k < n; k++) {
            if (!pieces[k].boxed) {
                wrong++;
                continue;
            }
            piece.t = region_view(&pieces[k]);
            enumerate(&piece);
            for (int x = 0; x < WIN; x++)
                got[x] |= piece.bytes[x];
        }
        /* Bytes of b are removed only when b truly holds them: the model
         * is bytes of a, minus those of b. */
        for (int x = 0; x < WIN; x++)
            if (got[x] != (a.bytes[x] && !b.bytes[x])) {
                if (wrong++ < 5)
                    fprintf(stderr, "    round %d: byte %d is %s the pieces\n", i, x, got[x] ? "wrongly in" : "missing from");
                break;
            }
    }
    printf("subtract: %u overlapping pairs answered, %u of them comparable\n", answered, exact_cases);
    CHECKF(wrong == 0, "%u wrong subtractions", wrong);
    CHECKF(unanswered_comparable == 0, "%u comparable pairs without an answer", unanswered_comparable);
    CHECKF(answered > 3000 && exact_cases > 2000, "%u overlapping pairs answered, %u comparable", answered,
           exact_cases);
}

/* ---- partial overwrites retire what they overwrite -------------------- */

static void test_tracker_trim(void)
{
    dep_tracker *t = NULL;
    if (!CHECK(dep_tracker_create(&t) == SIMPLER_OK))
        return;
    dep_region all = range1(BASE, 0, 10), mid = range1(BASE, 3, 2), left = range1(BASE, 0, 3);
    dep_region right = range1(BASE, 5, 5);
    preds p = track(t, 1, &all, RD);
    p = track(t, 2, &mid, WR); /* waits for the reader, trims its region */
    CHECK(EXACTLY(p, 1));
    CHECK(dep_tracker_live_regions(t) == 3);
    p = track(t, 3, &mid, RD); /* the last writer of mid is 2, not 1 */
    CHECK(EXACTLY(p, 2));
    p = track(t, 4, &left, WR); /* 1 still read the left part */
    CHECK(EXACTLY(p, 1));
    p = track(t, 5, &right, WR);
    CHECK(EXACTLY(p, 1));
    /* Reader 1 is gone with its last byte. */
    CHECK(dep_tracker_live_regions(t) == 3);
    p = track(t, 6, &all, WR);
    CHECK(EXACTLY(p, 2, 3, 4, 5));
    CHECK(dep_tracker_live_regions(t) == 1);
    dep_tracker_destroy(t);
}

/*
 * The double-buffered stencil: step s, task i reads slots [i-1, i+1]
 * (clipped) of one buffer and writes slot i of the other; the buffers
 * swap every step. Its true dependencies, per the slot model (last
 * writer, readers since), are about 4 per task; a tracker that retires
 * only what a write covers keeps every reader of the 3-slot intervals,
 * and each writer's fan-in grows with the steps. Slots are laid out
 * three ways: ranges of a 1-D buffer, rows of a matrix (boxes) and
 * columns of a matrix (strided boxes).
 */
enum { SLOTS_1D, SLOTS_ROWS, SLOTS_COLS };
#define STENCIL_MAX_W 8
#define SLOT_ELEMS 16

static dep_region stencil_slots(int layout, uint64_t base, int64_t width, int64_t first, int64_t n)
{
    if (layout == SLOTS_1D)
        return range1(base, (uint64_t)(first * SLOT_ELEMS), n * SLOT_ELEMS);
    if (layout == SLOTS_ROWS)
        return region(base, (uint64_t)(first * SLOT_ELEMS), F32, 2, (int64_t[]){n, SLOT_ELEMS},
                      (int64_t[]){SLOT_ELEMS, 1});
    return region(base, (uint64_t)first, F32, 2, (int64_t[]){SLOT_ELEMS, n}, (int64_t[]){width, 1});
}

typedef struct stencil_result {
    uint64_t edges, true_edges, missing, accesses, visits, live;
    uint32_t max_fanin, true_max_fanin;
    uint32_t steps_run;
} stencil_result;

static stencil_result run_stencil(int layout, uint32_t width, uint32_t steps)
{
    stencil_result res = {0};
    res.steps_run = steps;
    dep_tracker *t = NULL;
    if (!CHECK(dep_tracker_create(&t) == SIMPLER_OK))
        return res;
    uint64_t bases[2] = {BASE, BASE + 0x100000};
    /* The model: per buffer and slot, the last writer and the readers since. */
    uint32_t writer[2][STENCIL_MAX_W], readers[2][STENCIL_MAX_W][4], nreaders[2][STENCIL_MAX_W];
    for (int b = 0; b < 2; b++)
        for (uint32_t j = 0; j < width; j++) {
            writer[b][j] = DEP_NO_TASK;
            nreaders[b][j] = 0;
        }
    static preds p;
    for (uint32_t s = 0; s < steps; s++) {
        int src = s % 2, dst = 1 - src;
        for (uint32_t i = 0; i < width; i++) {
            uint32_t task = s * width + i;
            int64_t lo = i ? i - 1 : 0, hi = i + 2 < width ? i + 2 : width;
            dep_region in = stencil_slots(layout, bases[src], width, lo, hi - lo);
            dep_region out = stencil_slots(layout, bases[dst], width, i, 1);
            p.n = 0;
            p.abort_on = -1;
            CHECK(dep_tracker_access(t, task, &in, 1, 0, collect, &p) == SIMPLER_OK);
            CHECK(dep_tracker_access(t, task, &out, 0, 1, collect, &p) == SIMPLER_OK);
            res.accesses += 2;
            /* The true predecessors, deduplicated. */
            uint32_t need[16], nneed = 0;
#define NEED(x)                                      \
    do {                                             \
        uint32_t x_ = (x), k_ = 0;                   \
        while (k_ < nneed && need[k_] != x_)         \
            k_++;                                    \
        if (x_ != DEP_NO_TASK && k_ == nneed)        \
            need[nneed++] = x_;                      \
    } while (0)
            for (int64_t j = lo; j < hi; j++)
                NEED(writer[src][j]);
            NEED(writer[dst][i]);
            for (uint32_t k = 0; k < nreaders[dst][i]; k++)
                NEED(readers[dst][i][k]);
#undef NEED
            for (uint32_t k = 0; k < nneed; k++)
                res.missing += !has(&p, need[k]);
            res.edges += p.n;
            res.true_edges += nneed;
            if (p.n > res.max_fanin)
                res.max_fanin = p.n;
            if (nneed > res.true_max_fanin)
                res.true_max_fanin = nneed;
            if (p.n > 64) { /* fan-in is growing: stop here, the checks will fail */
                res.max_fanin = p.n;
                res.steps_run = s;
                goto out;
            }
            for (int64_t j = lo; j < hi; j++)
                readers[src][j][nreaders[src][j]++] = task;
            writer[dst][i] = task;
            nreaders[dst][i] = 0;
        }
    }
out:
    res.visits = dep_tracker_visits(t);
    res.live = dep_tracker_live_regions(t);
    dep_tracker_destroy(t);
    return res;
}

static void test_tracker_stencil(void)
{
    static const char *layouts[] = {"1-D ranges", "rows", "columns"};
    static const uint32_t widths[] = {2, 8};
    static const uint32_t steps[] = {250, 1000, 4000};
    for (int layout = 0; layout < 3; layout++)
        for (int w = 0; w < 2; w++)
            for (int s = 0; s < 3; s++) {
                stencil_result r = run_stencil(layout, widths[w], steps[s]);
                const char *what = layouts[layout];
                if (s == 1)
                    printf("stencil %s, width %u, %u of %u steps: %llu edges (true %llu), fan-in %u (true %u), %.1f "
                           "entries examined per access\n", what, widths[w], r.steps_run, steps[s],
                           (unsigned long long)r.edges, (unsigned long long)r.true_edges, r.max_fanin,
                           r.true_max_fanin, (double)r.visits / (double)r.accesses);
                CHECKF(r.missing == 0, "stencil %s width %u steps %u: %llu true dependencies missing", what,
                       widths[w], steps[s], (unsigned long long)r.missing);
                CHECKF(r.edges <= 2 * r.true_edges, "stencil %s width %u steps %u: %llu edges, %llu true", what,
                       widths[w], steps[s], (unsigned long long)r.edges, (unsigned long long)r.true_edges);
                CHECKF(r.max_fanin <= 2 * r.true_max_fanin, "stencil %s width %u steps %u: fan-in %u, true %u",
                       what, widths[w], steps[s], r.max_fanin, r.true_max_fanin);
                /* an access examines at most the live regions of its buffer */
                CHECKF(r.visits <= (4 * widths[w] + 4) * r.accesses, "stencil %s width %u steps %u: %llu entries examined by %llu "
                       "accesses", what, widths[w], steps[s], (unsigned long long)r.visits,
                       (unsigned long long)r.accesses);
                CHECKF(r.live <= 4 * widths[w], "stencil %s width %u steps %u: %llu live regions", what, widths[w],
                       steps[s], (unsigned long long)r.live);
            }
}

/*
 * Brute force with exact regions: every access a box of one coordinate
 * system (one base, dtype and strides), where overlap is exact and
 * trimming is exact, so the reported predecessors of each task must be
 * exactly the true ones: the last writer of every byte it touches and, for
 * a write, the readers since. Partial overwrites are the common case.
 */
static void test_brute_force_exact_edges(void)
{
    static view v;
    static uint32_t last_writer[WIN];
    static bitset readers[WIN];
    static preds p;
    unsigned long long rng = 0xe8ac7;
    unsigned wrong = 0, trials = 200, edges = 0;
    uint64_t max_live = 0;
    for (unsigned trial = 0; trial < trials; trial++) {
        dep_tracker *t = NULL;
        if (!CHECK(dep_tracker_create(&t) == SIMPLER_OK))
            return;
        for (int k = 0; k < WIN; k++) {
            last_writer[k] = DEP_NO_TASK;
            memset(&readers[k], 0, sizeof readers[k]);
        }
        /* The coordinate system: a row-major tensor filling the window,
         * [n], [n/16][16] or [n/64][8][8] elements of 1, 4 or 8 bytes. */
        simpler_tensor like;
        memset(&like, 0, sizeof like);
        like.addr = BASE;
        like.dtype = trial % 3 == 0 ? SIMPLER_DTYPE_FLOAT64 : trial % 3 == 1 ? F32 : SIMPLER_DTYPE_INT8;
        uint64_t esize = like.dtype & 0xFF;
        int64_t n = (int64_t)(WIN / esize);
        like.ndim = 1 + trial % 3;
        static const int64_t strides[3][3] = {{1}, {16, 1}, {64, 8, 1}};
        memcpy(like.strides, strides[like.ndim - 1], like.ndim * sizeof *like.strides);
        for (uint32_t task = 0; task < BF_TASKS; task++) {
            uint32_t nacc = 1 + (uint32_t)(check_rand(&rng) % 2);
            bitset need;
            memset(&need, 0, sizeof need);
            p.n = 0;
            p.abort_on = -1;
            for (uint32_t a = 0; a < nacc; a++) {
                /* a random box inside the tensor */
                memset(&v.t, 0, sizeof v.t);
                v.t.addr = like.addr;
                v.t.dtype = like.dtype;
                v.t.ndim = like.ndim;
                int64_t offset = 0;
                for (uint32_t d = 0; d < like.ndim; d++) {
                    int64_t extent = d == 0 ? n / like.strides[0] : like.strides[d - 1] / like.strides[d];
                    int64_t lo = (int64_t)(check_rand(&rng) % (uint64_t)extent);
                    int64_t len = 1 + (int64_t)(check_rand(&rng) % (uint64_t)(extent - lo));
                    if (len > 1 + extent / 2)
                        len = 1 + extent / 2;
                    v.t.strides[d] = like.strides[d];
                    v.t.shape[d] = len;
                    offset += lo * like.strides[d];
                }
                v.t.offset = (uint64_t)offset;
                enumerate(&v);
                dep_region r;
                if (!CHECK(dep_region_init(&r, &v.t) == SIMPLER_OK && r.boxed))
                    continue;
                int mode = 1 + (int)(check_rand(&rng) % 3);
                CHECK(dep_tracker_access(t, task, &r, mode & RD, (mode & WR) != 0, collect, &p) == SIMPLER_OK);
                for (int k = 0; k < WIN; k++) {
                    if (!v.bytes[k])
                        continue;
                    if (last_writer[k] != DEP_NO_TASK && last_writer[k] != task)
                        bs_set(&need, last_writer[k]);
                    if (mode & WR)
                        for (int w = 0; w < BF_WORDS; w++)
                            need.w[w] |= readers[k].w[w];
                }
                for (int k = 0; k < WIN; k++) {
                    if (!v.bytes[k])
                        continue;
                    if (mode & WR) {
                        last_writer[k] = task;
                        memset(&readers[k], 0, sizeof readers[k]);
                    } else {
                        bs_set(&readers[k], task);
                    }
                }
            }
            need.w[task / 64] &= ~(1ull << (task % 64)); /* no self edges */
            bitset got;
            memset(&got, 0, sizeof got);
            for (uint32_t i = 0; i < p.n; i++)
                bs_set(&got, p.id[i]);
            edges += p.n;
            if (memcmp(&got, &need, sizeof got) != 0 && wrong++ < 5) {
                for (uint32_t q = 0; q < task; q++)
                    if (bs_has(&need, q) != bs_has(&got, q))
                        fprintf(stderr, "    trial %u: task %u: predecessor %u %s\n", trial, task, q,
                                bs_has(&need, q) ? "missing" : "needless");
            }
            if (dep_tracker_live_regions(t) > max_live)
                max_live = dep_tracker_live_regions(t);
        }
        dep_tracker_destroy(t);
    }
    printf("exact tracker: %u trials, %u edges, at most %llu live regions\n", trials, edges,
           (unsigned long long)max_live);
    CHECKF(wrong == 0, "%u tasks with predecessors other than the true ones", wrong);
}

int main(void)
{
    test_ranges_1d();
    test_tiles_2d();
    test_mixed_strides();
    test_bases();
    test_covers();
    test_aliasing_view_not_dense();
    test_empty();
    test_init_errors();
    test_extremes();
    test_brute_force_regions();
    test_tracker_basic_edges();
    test_tracker_supersede();
    test_tracker_disjoint_readers();
    test_tracker_inout_chain();
    test_tracker_abort_and_bases();
    test_tracker_flat_cost();
    test_tracker_rows_and_reset();
    test_tracker_sweep_and_forget();
    test_brute_force_tracker();
    test_subtract();
    test_brute_force_subtract();
    test_tracker_trim();
    test_tracker_stencil();
    test_brute_force_exact_edges();
    return check_report();
}
