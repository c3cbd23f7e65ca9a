/* Task Bench's patterns (taskbench.h) with OpenMP tasks (gcc's libgomp, or
 * LLVM's libomp when built with clang -fopenmp): each task's depend clause
 * names the outputs of step t - 1 it reads (in) and its own output (out),
 * so the runtime orders it after its producers and after the readers of
 * the buffer it overwrites.
 *   omp_taskbench PATTERN WIDTH STEPS ROUNDS  -> prints wall seconds of the
 *       second of two runs (the first starts the thread team)
 *   omp_taskbench serial CALLS SAMPLES ROUNDS -> seconds of CALLS kernels
 *       back to back on one thread, no runtime, the fastest of SAMPLES
 *       timings (on a loaded machine the fastest is the one nothing else
 *       interrupted). Each call is seeded by the last, so the CPU cannot
 *       overlap them: a task's cost, not a throughput.
 * A failed check prints the first failure and exits 1. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taskbench.h"
#include "work.h"

static int serial(long calls, long samples, uint64_t rounds)
{
    double best = 1e30;
    for (long s = 0; s < samples; s++) {
        double t0 = omp_get_wtime();
        for (long k = 0; k < calls; k++)
            bench_work(rounds, bench_sink);
        double t = omp_get_wtime() - t0;
        best = t < best ? t : best;
    }
    printf("%.9f\n", best);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "serial"))
        return serial(atol(argv[2]), atol(argv[3]), strtoull(argv[4], NULL, 10));
    int pattern = argc == 5 ? tb_pattern_by_name(argv[1]) : -1;
    long width = argc == 5 ? atol(argv[2]) : 0, steps = argc == 5 ? atol(argv[3]) : 0;
    if (pattern < 0 || width < 1 || width > TB_MAX_DEPS || steps < 1)
        return fprintf(stderr, "usage: %s PATTERN WIDTH STEPS ROUNDS | serial CALLS SAMPLES ROUNDS\n", argv[0]), 2;
    uint64_t rounds = strtoull(argv[4], NULL, 10);
    tb_stamp *out = malloc(2 * (size_t)width * sizeof *out);
    uint64_t err[TB_ERR_WORDS] = {0};
    if (!out)
        return fprintf(stderr, "out of memory\n"), 1;
    /* Two passes, the second timed: the first starts the runtime's thread
     * team, which simpler's worker has before its runs are timed. */
    double wall = 0;
    for (int pass = 0; pass < 2; pass++) {
        memset(out, 0xff, 2 * (size_t)width * sizeof *out); /* no stamp yet */
        memset(err, 0, sizeof err);
        double t0 = omp_get_wtime();
#pragma omp parallel
#pragma omp single
        for (long t = 0; t < steps; t++)
            for (long p = 0; p < tb_width_at(pattern, width, t); p++) {
                long deps[TB_MAX_DEPS];
                uint32_t n = tb_deps(pattern, width, t, p, deps);
                tb_stamp *prev = &out[((t + 1) % 2) * width], *mine = &out[(t % 2) * width + p];
#pragma omp task firstprivate(deps) depend(iterator(k = 0 : n), in : prev[deps[k]]) depend(out : mine[0])
                {
                    const tb_stamp *inputs[TB_MAX_DEPS];
                    for (uint32_t k = 0; k < n; k++)
                        inputs[k] = &prev[deps[k]];
                    tb_task(pattern, width, t, p, inputs, n, mine, err);
                    bench_work(rounds, (uint64_t)p + 1);
                }
            }
        wall = omp_get_wtime() - t0;
        tb_check_final(pattern, width, steps, out, err);
        if (tb_report(argv[1], err))
            return free(out), 1;
    }
    free(out);
    printf("%.9f\n", wall);
    return 0;
}
