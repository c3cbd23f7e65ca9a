/* The same patterns with OpenMP tasks and depend clauses (gcc's libgomp,
 * or LLVM's libomp when built with clang -fopenmp).
 *   omp_patterns PATTERN WIDTH STEPS ROUNDS   -> prints wall seconds of the
 *       second of two runs (the first starts the thread team)
 * PATTERN: stencil | independent | chain | fan (a root, children, a join)
 * | serial (ROUNDS x WIDTH x STEPS on one thread, no runtime) */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "work.h"

int main(int argc, char **argv)
{
    if (argc != 5)
        return fprintf(stderr, "usage: %s PATTERN WIDTH STEPS ROUNDS\n", argv[0]), 2;
    const char *pattern = argv[1];
    long width = atol(argv[2]), steps = atol(argv[3]);
    unsigned long long rounds = strtoull(argv[4], NULL, 10);
    char *cells = calloc((size_t)width, 1); /* dependence objects, one per column */
    /* Two passes, the second timed: the first starts the thread team, which
     * simpler's worker has before its runs are timed. */
    double wall = 0;
    for (int pass = 0; pass < 2; pass++) {
        double t0 = omp_get_wtime();
        if (!strcmp(pattern, "serial")) {
            for (long k = 0; k < width * steps; k++)
                bench_work(rounds, (uint64_t)k);
        } else if (!strcmp(pattern, "fan")) {
            long kids = width * steps > 2 ? width * steps - 2 : 0;
            char root_done = 0;
#pragma omp parallel
#pragma omp single
            {
#pragma omp task depend(out : root_done)
                bench_work(rounds, 0);
                for (long i = 0; i < kids; i++) {
#pragma omp task depend(in : root_done)
                    bench_work(rounds, (uint64_t)i);
                }
#pragma omp taskwait
#pragma omp task
                bench_work(rounds, 1);
            }
        } else {
            int stencil = !strcmp(pattern, "stencil"), chain = !strcmp(pattern, "chain");
            char *prev = calloc((size_t)width, 1), *cur = calloc((size_t)width, 1);
#pragma omp parallel
#pragma omp single
            for (long s = 0; s < steps; s++) {
                for (long i = 0; i < width; i++) {
                    char *l = &prev[i > 0 ? i - 1 : i], *c = &prev[i], *r = &prev[i + 1 < width ? i + 1 : i];
                    if (stencil) {
#pragma omp task depend(in : l[0], c[0], r[0]) depend(out : cur[i])
                        bench_work(rounds, (uint64_t)i);
                    } else if (chain) {
#pragma omp task depend(inout : cells[i])
                        bench_work(rounds, (uint64_t)i);
                    } else {
#pragma omp task
                        bench_work(rounds, (uint64_t)i);
                    }
                }
                char *tmp = prev;
                prev = cur;
                cur = tmp;
            }
            free(prev);
            free(cur);
        }
        wall = omp_get_wtime() - t0;
    }
    printf("%.9f\n", wall);
    free(cells);
    return 0;
}
