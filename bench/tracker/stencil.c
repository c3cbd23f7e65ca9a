/* The dependency tracker alone (csrc/runtime/dependency_tracker/), on the
 * accesses a Task Bench stencil_1d makes as bench/orch/taskbench.c tags
 * them: task (t, p) reads points p-1..p+1 of buffer (t+1) % 2 and writes
 * point p of buffer t % 2, each point a view {1, 1, 2} of the outputs,
 * uint64 [2][width][2], as simpler_view makes it there. Each
 * access makes its region (dep_region_init) and asks the tracker, as the
 * host orchestration does for every tensor of a submit.
 *   stencil WIDTH STEPS REPEATS -> prints "ns_per_task edges" (the fastest
 *   of REPEATS runs of the whole graph, the tracker reset before each) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/dependency_tracker/tracker.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int count_edge(void *ctx, uint32_t producer)
{
    (void)producer;
    ++*(uint64_t *)ctx;
    return 0;
}

static int access_point(dep_tracker *tr, uint32_t task, long buffer, long point, long width, int writes,
                        uint64_t *edges)
{
    simpler_tensor t;
    memset(&t, 0, sizeof t);
    t.addr = 1u << 20;
    t.dtype = SIMPLER_DTYPE_UINT64;
    t.ndim = 3;
    t.shape[0] = 1;
    t.shape[1] = 1;
    t.shape[2] = 2;
    t.strides[0] = 2 * width;
    t.strides[1] = 2;
    t.strides[2] = 1;
    t.offset = (uint64_t)(buffer * 2 * width + point * 2);
    dep_region r;
    if (dep_region_init(&r, &t))
        return -1;
    return dep_tracker_access(tr, task, &r, !writes, writes, count_edge, edges);
}

int main(int argc, char **argv)
{
    long width = argc == 4 ? atol(argv[1]) : 0, steps = argc == 4 ? atol(argv[2]) : 0;
    long repeats = argc == 4 ? atol(argv[3]) : 0;
    if (width < 1 || steps < 1 || repeats < 1)
        return fprintf(stderr, "usage: %s WIDTH STEPS REPEATS\n", argv[0]), 2;
    dep_tracker *tr;
    if (dep_tracker_create(&tr))
        return fprintf(stderr, "dep_tracker_create failed\n"), 1;
    double best = 1e30;
    uint64_t edges = 0;
    for (long rep = 0; rep < repeats; rep++) {
        dep_tracker_reset(tr);
        edges = 0;
        uint32_t task = 0;
        double t0 = now_s();
        for (long s = 0; s < steps; s++)
            for (long p = 0; p < width; p++, task++) {
                for (long q = p - 1; s > 0 && q <= p + 1; q++)
                    if (q >= 0 && q < width && access_point(tr, task, (s + 1) % 2, q, width, 0, &edges))
                        return fprintf(stderr, "read failed\n"), 1;
                if (access_point(tr, task, s % 2, p, width, 1, &edges))
                    return fprintf(stderr, "write failed\n"), 1;
            }
        double wall = now_s() - t0;
        best = wall < best ? wall : best;
    }
    dep_tracker_destroy(tr);
    printf("%.1f %llu\n", best / (double)(width * steps) * 1e9, (unsigned long long)edges);
    return 0;
}
