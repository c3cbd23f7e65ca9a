/* The compute-bound kernel every runtime in the comparison runs: n rounds
 * of a 64-bit LCG, its result kept so it cannot be optimised away. */
#ifndef BENCH_WORK_H
#define BENCH_WORK_H

#include <stdint.h>

static volatile uint64_t bench_sink;

static inline void bench_work(uint64_t n, uint64_t seed)
{
    uint64_t x = seed;
    for (uint64_t i = 0; i < n; i++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    bench_sink = x;
}

#endif
