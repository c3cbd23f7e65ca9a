/*
 * The collectives' step: what the orchestration and the kernel agree on
 * (simpler/collectives.py mirrors these numbers).
 *
 * A step runs on one chip and writes into that chip's own tensor (the
 * run's one tensor argument, flat). It reads its sources at the addresses
 * it is given: the chip's own GM or a window onto a peer's. The host
 * graph orders steps by the regions simpler/collectives.py declares, so
 * a step never waits for anything itself.
 */
#ifndef SIMPLER_COLLECTIVE_H
#define SIMPLER_COLLECTIVE_H

/* Scalars of a step, in this order. */
enum {
    COLL_MODE,      /* COLL_REDUCE or COLL_GATHER */
    COLL_OP,        /* COLL_SUM .. COLL_MIN (reduce mode) */
    COLL_BLOCKS,    /* blocks of the kernel's task */
    COLL_COUNT,     /* elements written */
    COLL_DST_OFF,   /* first element written, in the tensor argument */
    COLL_NSRC,      /* sources, 1 .. COLL_MAX_SRC */
    COLL_SKIP,      /* gather mode: a segment not copied (-1: none) */
    COLL_SRC,       /* the sources' addresses, COLL_MAX_SRC of them */
    COLL_NUM_SCALARS = COLL_SRC + 32
};
#define COLL_MAX_SRC 32

/* reduce: dst[k] = src[0][k] op src[1][k] op ... in that order, k < count.
 * gather: dst's count elements are nsrc segments, segment s being
 * [s * count / nsrc, (s + 1) * count / nsrc); dst's segment s is a copy
 * of src[s]'s first elements (segment skip is left alone). */
enum { COLL_REDUCE = 0, COLL_GATHER = 1 };
enum { COLL_SUM = 0, COLL_PROD = 1, COLL_MAX = 2, COLL_MIN = 3 };

#define COLL_FUNC_STEP 0

#endif
