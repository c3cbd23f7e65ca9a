#include "runtime/deps/region.h"

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

int dep_region_init(dep_region *r, const simpler_tensor *t)
{
    memset(r, 0, sizeof *r);
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
    r->dense = is_dense(t);

    /* Mixed-radix decomposition of the offset (see region.h). */
    int64_t rem = (int64_t)t->offset;
    for (uint32_t d = 0; d < t->ndim; d++) {
        if (t->strides[d] <= 0)
            return SIMPLER_OK;
        r->start[d] = rem / t->strides[d];
        rem %= t->strides[d];
    }
    r->lane = rem;
    for (uint32_t d = 1; d < t->ndim; d++) {
        int64_t span = r->lane;
        for (uint32_t k = d; k < t->ndim; k++)
            span += (r->start[k] + r->shape[k] - 1) * r->strides[k];
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
