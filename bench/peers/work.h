/* The compute-bound kernel every runtime in the comparison runs: n rounds
 * of a 64-bit LCG, its result kept so it cannot be optimised away. The
 * empty asm hides x from the optimiser each round: without it clang
 * rewrites the loop into one ~10x faster than gcc's (measured: 7.4 against
 * 91 us for 34,040 rounds), so OpenMP-LLVM ran a cheaper kernel than
 * everyone else. */
#ifndef BENCH_WORK_H
#define BENCH_WORK_H

#include <stdint.h>

static volatile uint64_t bench_sink;

static inline void bench_work(uint64_t n, uint64_t seed)
{
    uint64_t x = seed;
    for (uint64_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        __asm__ volatile("" : "+r"(x));
    }
    bench_sink = x;
}

#endif
