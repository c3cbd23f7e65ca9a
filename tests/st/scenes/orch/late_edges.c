/* Edges onto tasks that have finished already, for a host_build_graph
 * graph that streams (its first segments run while the orchestration goes
 * on, graph_stream.h). Scalars: n1, peek, n2, fail_at, stall.
 *
 * n1 tasks increment the rows of X round robin (a chain per row); then,
 * with peek > 0, the orchestration waits (up to 10 s) until the first peek
 * of them (those published: whole segments) show in X, read in place
 * (sim's GM is this process's memory: only sim may peek), so that the next
 * tasks depend on finished ones.
 * Then n2 more tasks go on round the rows, every 97th of all being
 * instead a 3-block spin with an explicit dependency on the task before
 * it. Last, seen[0] = 1 if the wait saw the first n1 done, else 0.
 * fail_at > 0: api->fail once that many tasks are submitted; stall: never
 * return after the first n1 (for the timeout and interrupt tests). */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "funcs.h"

#define MAX_ROWS 64

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const volatile float *row_head(const simpler_tensor *X, int64_t r)
{
    return (const volatile float *)(uintptr_t)X->addr + X->offset + r * X->strides[0];
}

SIMPLER_ORCHESTRATION(orchestrate)
{
    const simpler_tensor *X = &args->tensors[0];
    const simpler_tensor *seen = &args->tensors[1];
    int64_t n1 = (int64_t)args->scalars[0], n2 = (int64_t)args->scalars[2];
    int64_t peek = (int64_t)args->scalars[1], fail_at = (int64_t)args->scalars[3], stall = (int64_t)args->scalars[4];
    int64_t rows = X->shape[0];
    if (X->ndim != 2 || rows < 1 || rows > MAX_ROWS)
        return api->fail(o, "late_edges: X must be 2-D with 1 to 64 rows");
    float base[MAX_ROWS];
    for (int64_t r = 0; peek && r < rows; r++)
        base[r] = *row_head(X, r);
    uint32_t tag = SIMPLER_INOUT;
    uint64_t one = f64_bits(1.0), us = 1;
    simpler_task_id last = -1;
    double saw = 0;
    for (int64_t i = 0; i < n1 + n2; i++) {
        if (fail_at && i == fail_at)
            return api->fail(o, "late_edges: failing as asked");
        if (i == n1 && stall)
            for (volatile int forever = 1; forever;)
                nanosleep(&(struct timespec){0, 1000000}, NULL);
        if (i == n1 && peek) {
            double deadline = now_s() + 10;
            int done = 0;
            while (!done && now_s() < deadline) {
                done = 1;
                for (int64_t r = 0; r < rows && done; r++)
                    done = r >= peek || *row_head(X, r) == base[r] + (float)((peek - 1 - r) / rows + 1);
            }
            saw = done;
        }
        if (i >= n1 && i % 97 == 0) {
            simpler_task t = {F_SPIN_US, SIMPLER_CORE_AIV, 3, 0, NULL, NULL, 1, &us, last >= 0, &last};
            CHECK(api->submit(o, &t, &last));
            continue;
        }
        simpler_tensor row = simpler_view2d(X, i % rows, 0, 1, X->shape[1]);
        CHECK(simpler_submit(api, o, F_INC, SIMPLER_CORE_AIV, &row, &tag, 1, &one, 1, &last));
    }
    uint32_t out = SIMPLER_OUTPUT_EXISTING;
    uint64_t fill[2] = {0, f64_bits(saw)};
    simpler_tensor s = *seen;
    return simpler_submit(api, o, F_FILL, SIMPLER_CORE_AIV, &s, &out, 1, fill, 2, NULL);
}
