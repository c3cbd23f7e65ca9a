#include "runtime/deps/region.h"

#include <inttypes.h>
#include <string.h>

#include "common/error.h"

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
    int64_t min_off = 0, max_off = 0, numel = 1;
    for (uint32_t d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0 || t->shape[d] > (INT64_C(1) << 40) || t->strides[d] < -(INT64_C(1) << 40) ||
            t->strides[d] > (INT64_C(1) << 40))
            return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "tensor dimension %u: shape %" PRId64
                                " or stride %" PRId64 " out of range", d, t->shape[d], t->strides[d]);
        if (t->shape[d] == 0)
            return SIMPLER_OK; /* empty: lo == hi == 0 */
        int64_t reach = (t->shape[d] - 1) * t->strides[d];
        if (reach < 0)
            min_off += reach;
        else
            max_off += reach;
        numel *= t->shape[d];
        if (numel > (INT64_C(1) << 40))
            return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "tensor has too many elements");
        r->strides[d] = t->strides[d];
        r->shape[d] = t->shape[d];
    }
    if ((int64_t)t->offset + min_off < 0)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "tensor view reaches before its base address");
    r->lo = t->addr + ((uint64_t)((int64_t)t->offset + min_off)) * esize;
    r->hi = t->addr + ((uint64_t)((int64_t)t->offset + max_off) + 1) * esize;
    r->dense = (uint64_t)numel * esize == r->hi - r->lo;

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
