/*
 * The footprint of a tensor view, and when two footprints overlap.
 *
 * Overlap is decided on regions, never on base address alone. Two views of
 * the same base with the same dtype and strides, each fitting the strides'
 * mixed radix (every inner block lies within one step of the dimension
 * outside it, as tiles of a row-major matrix do), are compared exactly as
 * boxes of element coordinates. Anything else is compared by byte interval,
 * which may report a needless overlap but never misses a real one.
 */
#ifndef SIMPLER_DEPS_REGION_H
#define SIMPLER_DEPS_REGION_H

#include <stdint.h>

#include "simpler/types.h"

typedef struct dep_region {
    uint64_t base;                  /* the tensor's addr */
    uint64_t lo, hi;                /* absolute bytes [lo, hi) */
    uint32_t dtype;
    uint32_t ndim;
    int boxed;                      /* start/shape below are exact */
    int dense;                      /* every byte of [lo, hi) is in the view */
    int64_t strides[SIMPLER_MAX_DIMS];
    int64_t start[SIMPLER_MAX_DIMS];
    int64_t shape[SIMPLER_MAX_DIMS];
    int64_t lane;                   /* offset left below the innermost stride */
} dep_region;

/* SIMPLER_E_INVALID_ARGUMENT (message set) for a malformed view. A view
 * with no elements gives lo == hi. */
int dep_region_init(dep_region *r, const simpler_tensor *t);

int dep_region_empty(const dep_region *r);
int dep_region_overlaps(const dep_region *a, const dep_region *b);
/* True only if every byte of b is inside a (conservative: may say no). */
int dep_region_covers(const dep_region *a, const dep_region *b);
int dep_region_equal(const dep_region *a, const dep_region *b);

/* Up to this many pieces make up a minus b. */
#define DEP_REGION_MAX_PIECES (2 * SIMPLER_MAX_DIMS)

/* The part of a outside b, as pieces that together hold exactly the bytes
 * of a that b does not: boxes of a's own coordinate system when a and b
 * are comparable boxes, byte ranges when both are dense. Returns the
 * number of pieces (0: b covers a), or -1 when the rest has no such form
 * (strided views of different shapes); the caller then keeps a whole,
 * which is conservative. */
int dep_region_subtract(const dep_region *a, const dep_region *b, dep_region *pieces);

#endif
