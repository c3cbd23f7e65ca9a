#include "runtime/dependency_tracker/region.h"

#include <inttypes.h>
#include <string.h>

#include "common/error.h"

/* Limits that keep every product below in 64 bits: a view reaches at most
 * 2^48 elements from its base. */
#define MAX_REACH (INT64_C(1) << 48)

/* Every element distinct and together filling [lo, hi): the non-trivial
 * dimensions, ordered by |stride|, are a permutation of a row-major layout
 * (possibly walked backwards). */
static int is_dense(const simpler_tensor *t)
{
    int64_t strides[SIMPLER_MAX_DIMS], shapes[SIMPLER_MAX_DIMS];
    uint32_t n = 0;
    for (uint32_t d = 0; d < t->ndim; d++) {
        if (t->shape[d] == 1)
            continue;
        int64_t stride = t->strides[d] < 0 ? -t->strides[d] : t->strides[d];
        uint32_t i = n++;
        while (i > 0 && strides[i - 1] > stride) {
            strides[i] = strides[i - 1];
            shapes[i] = shapes[i - 1];
            i--;
        }
        strides[i] = stride;
        shapes[i] = t->shape[d];
    }
    int64_t expect = 1;
    for (uint32_t i = 0; i < n; i++) {
        if (strides[i] != expect)
            return 0;
        expect *= shapes[i];
    }
    return 1;
}

/* is_dense's usual case without its sort: the non-trivial dimensions,
 * innermost first, already are a row-major layout (every stride
 * positive). 0 says only that this order is not one. */
static int is_row_major(const simpler_tensor *t)
{
    int64_t expect = 1;
    for (uint32_t d = t->ndim; d-- > 0;) {
        if (t->shape[d] == 1)
            continue;
        if (t->strides[d] != expect)
            return 0;
        expect *= t->shape[d];
    }
    return 1;
}

/* Zero what a return below may leave unset, field by field: every
 * orchestration submit makes a region for each of its tensors, and a
 * memset of the whole struct compiled to a rep stos, a third of this
 * function's samples (itself a fifth of a host orchestration's, on Task
 * Bench's stencil). Dimensions past ndim stay zero: regions are compared
 * with memcmp over all of them. */
static void region_clear(dep_region *r)
{
    r->base = r->lo = r->hi = 0;
    r->dtype = r->ndim = 0;
    r->boxed = r->dense = 0;
    r->lane = 0;
    memset(r->strides, 0, sizeof r->strides);
    memset(r->start, 0, sizeof r->start);
    memset(r->shape, 0, sizeof r->shape);
}

int dep_region_init(dep_region *r, const simpler_tensor *t)
{
    region_clear(r);
    uint64_t esize = t->dtype & 0xFFu;
    if (t->ndim == 0 || t->ndim > SIMPLER_MAX_DIMS)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "tensor has %u dimensions (1..%d allowed)", t->ndim,
                            SIMPLER_MAX_DIMS);
    if (esize == 0)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "tensor has unknown dtype 0x%x", t->dtype);
    r->base = t->addr;
    r->dtype = t->dtype;
    r->ndim = t->ndim;
    /* Element offsets reached, relative to the view's first element. */
    int64_t min_off = 0, max_off = 0;
    for (uint32_t d = 0; d < t->ndim; d++) {
        int64_t reach;
        if (t->shape[d] < 0 || t->shape[d] > MAX_REACH || t->strides[d] < -MAX_REACH || t->strides[d] > MAX_REACH)
            return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "tensor dimension %u: shape %" PRId64
                                " or stride %" PRId64 " out of range", d, t->shape[d], t->strides[d]);
        if (t->shape[d] == 0)
            return SIMPLER_OK; /* empty: lo == hi == 0 */
        if (__builtin_mul_overflow(t->shape[d] - 1, t->strides[d], &reach) || reach > MAX_REACH ||
            reach < -MAX_REACH)
            return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "tensor dimension %u reaches too far", d);
        if (reach < 0)
            min_off += reach;
        else
            max_off += reach;
        r->strides[d] = t->strides[d];
        r->shape[d] = t->shape[d];
    }
    if (t->offset > (uint64_t)MAX_REACH || max_off > MAX_REACH || min_off < -MAX_REACH)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "tensor view reaches too far from its base");
    if ((int64_t)t->offset + min_off < 0)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "tensor view reaches before its base address");
    uint64_t lo_bytes = (uint64_t)((int64_t)t->offset + min_off) * esize;
    uint64_t hi_bytes = ((uint64_t)((int64_t)t->offset + max_off) + 1) * esize;
    if (__builtin_add_overflow(t->addr, lo_bytes, &r->lo) || __builtin_add_overflow(t->addr, hi_bytes, &r->hi))
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "tensor view wraps past the end of the address space");
    r->dense = is_row_major(t) || is_dense(t);

    /* Mixed-radix decomposition of the offset (see region.h). */
    int64_t rem = (int64_t)t->offset;
    for (uint32_t d = 0; d < t->ndim; d++) {
        int64_t stride = t->strides[d];
        if (stride <= 0)
            return SIMPLER_OK;
        /* A power of two (the innermost 1, and most strides of a view of
         * a row-major tensor) shifts and masks instead of dividing: the
         * same, as rem is never negative (the offset, then remainders). */
        if ((stride & (stride - 1)) == 0) {
            r->start[d] = rem >> __builtin_ctzll((uint64_t)stride);
            rem &= stride - 1;
        } else {
            r->start[d] = rem / stride;
            rem %= stride;
        }
    }
    r->lane = rem;
    /* Each inner block within one step of the dimension outside it: the
     * span of dimensions d.. (summed from the innermost out) below the
     * stride of d - 1. */
    int64_t span = r->lane;
    for (uint32_t d = t->ndim - 1; d > 0; d--) {
        span += (r->start[d] + r->shape[d] - 1) * r->strides[d];
        if (span >= r->strides[d - 1])
            return SIMPLER_OK;
    }
    r->boxed = 1;
    return SIMPLER_OK;
}

int dep_region_empty(const dep_region *r) { return r->lo == r->hi; }

/* Both exact and in the same coordinate system. */
static int comparable(const dep_region *a, const dep_region *b)
{
    return a->boxed && b->boxed && a->base == b->base && a->dtype == b->dtype && a->ndim == b->ndim &&
           memcmp(a->strides, b->strides, sizeof a->strides) == 0;
}

int dep_region_overlaps(const dep_region *a, const dep_region *b)
{
    if (a->lo >= b->hi || b->lo >= a->hi)
        return 0;
    if (!comparable(a, b))
        return 1;
    if (a->lane != b->lane)
        return 0;
    for (uint32_t d = 0; d < a->ndim; d++)
        if (a->start[d] >= b->start[d] + b->shape[d] || b->start[d] >= a->start[d] + a->shape[d])
            return 0;
    return 1;
}

int dep_region_covers(const dep_region *a, const dep_region *b)
{
    if (dep_region_empty(b))
        return 1;
    if (comparable(a, b)) {
        if (a->lane != b->lane)
            return 0;
        for (uint32_t d = 0; d < a->ndim; d++)
            if (b->start[d] < a->start[d] || b->start[d] + b->shape[d] > a->start[d] + a->shape[d])
                return 0;
        return 1;
    }
    return a->dense && a->lo <= b->lo && b->hi <= a->hi;
}

int dep_region_equal(const dep_region *a, const dep_region *b)
{
    return a->lo == b->lo && a->hi == b->hi && a->base == b->base && a->dtype == b->dtype &&
           a->ndim == b->ndim && memcmp(a->strides, b->strides, sizeof a->strides) == 0 &&
           memcmp(a->shape, b->shape, sizeof a->shape) == 0;
}

/* ---- subtraction ------------------------------------------------------- */

/* The box [start, start + shape) of a's coordinate system. Sub-boxes of a
 * boxed region are boxed (their spans are no larger), so this fails only
 * if that reasoning does. */
static int box_piece(const dep_region *a, const int64_t *start, const int64_t *shape, dep_region *out)
{
    simpler_tensor t;
    memset(&t, 0, sizeof t);
    t.addr = a->base;
    t.dtype = a->dtype;
    t.ndim = a->ndim;
    int64_t offset = a->lane;
    for (uint32_t d = 0; d < a->ndim; d++) {
        t.shape[d] = shape[d];
        t.strides[d] = a->strides[d];
        offset += start[d] * a->strides[d];
    }
    t.offset = (uint64_t)offset;
    return dep_region_init(out, &t) == SIMPLER_OK && out->boxed ? 0 : -1;
}

/* The bytes [lo, hi) as a contiguous 1-D view: in a's dtype when the cut
 * falls on its elements, else in bytes. */
static int byte_piece(const dep_region *a, uint64_t lo, uint64_t hi, dep_region *out)
{
    uint32_t dtype = a->dtype;
    uint64_t esize = dtype & 0xFFu;
    if ((lo - a->base) % esize || (hi - lo) % esize) {
        dtype = SIMPLER_DTYPE_UINT8;
        esize = 1;
    }
    simpler_tensor t;
    memset(&t, 0, sizeof t);
    t.addr = a->base;
    t.offset = (lo - a->base) / esize;
    t.dtype = dtype;
    t.ndim = 1;
    t.shape[0] = (int64_t)((hi - lo) / esize);
    t.strides[0] = 1;
    return dep_region_init(out, &t) == SIMPLER_OK ? 0 : -1;
}

/* Box minus box, one dimension at a time: the slabs of what is left below
 * and above b in dimension d, then narrow to b's extent in d and go on. */
static int subtract_boxes(const dep_region *a, const dep_region *b, dep_region *pieces)
{
    int64_t start[SIMPLER_MAX_DIMS], shape[SIMPLER_MAX_DIMS];
    memcpy(start, a->start, sizeof start);
    memcpy(shape, a->shape, sizeof shape);
    int n = 0;
    for (uint32_t d = 0; d < a->ndim; d++) {
        int64_t end = start[d] + shape[d];
        int64_t lo = b->start[d] > start[d] ? b->start[d] : start[d];
        int64_t hi = b->start[d] + b->shape[d] < end ? b->start[d] + b->shape[d] : end; /* lo < hi: they overlap */
        if (start[d] < lo) {
            shape[d] = lo - start[d];
            if (box_piece(a, start, shape, &pieces[n++]))
                return -1;
        }
        if (hi < end) {
            start[d] = hi;
            shape[d] = end - hi;
            if (box_piece(a, start, shape, &pieces[n++]))
                return -1;
        }
        start[d] = lo;
        shape[d] = hi - lo;
    }
    return n;
}

int dep_region_subtract(const dep_region *a, const dep_region *b, dep_region *pieces)
{
    if (!dep_region_overlaps(a, b)) {
        pieces[0] = *a;
        return 1;
    }
    if (comparable(a, b)) /* overlapping, so the same lane */
        return subtract_boxes(a, b, pieces);
    if (!a->dense || !b->dense)
        return -1;
    int n = 0;
    if (a->lo < b->lo && byte_piece(a, a->lo, b->lo, &pieces[n++]))
        return -1;
    if (b->hi < a->hi && byte_piece(a, b->hi, a->hi, &pieces[n++]))
        return -1;
    return n;
}
