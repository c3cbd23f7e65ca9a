/* The kernel-only reference: the tasks of a Task Bench graph (taskbench.h)
 * with no runtime at all. One plain pthread per host CPU (as many as
 * simpler's sim chip has core threads running kernels on this machine)
 * runs its share of the tasks back to back, ignoring dependencies: what
 * the kernels alone reach on these CPUs, the ceiling a runtime's
 * efficiency at large tasks is judged against (its threads, not its
 * graph, are what would keep the cores below it).
 *   kernel_only PATTERN WIDTH STEPS ROUNDS  -> prints wall seconds, from
 *   the first thread's start (all of them up) to the last one's end */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "taskbench.h"
#include "work.h"

#define KO_MAX_THREADS 256

typedef struct share {
    pthread_t thread;
    long first, count; /* the tasks this thread runs */
    uint64_t rounds;
    double started;    /* when it left the barrier */
} share;

/* The threads are up before the clock starts, as a runtime's are before
 * its runs are timed: they wait here, and the clock starts when the first
 * of them leaves (not when the main thread, one thread more than there
 * are CPUs, gets a CPU again). */
static pthread_barrier_t start;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *run_share(void *arg)
{
    share *s = arg;
    pthread_barrier_wait(&start);
    s->started = now_s();
    for (long k = 0; k < s->count; k++)
        bench_work(s->rounds, (uint64_t)(s->first + k) + 1);
    return NULL;
}

int main(int argc, char **argv)
{
    int pattern = argc == 5 ? tb_pattern_by_name(argv[1]) : -1;
    long width = argc == 5 ? atol(argv[2]) : 0, steps = argc == 5 ? atol(argv[3]) : 0;
    if (pattern < 0 || width < 1 || width > TB_MAX_DEPS || steps < 1)
        return fprintf(stderr, "usage: %s PATTERN WIDTH STEPS ROUNDS\n", argv[0]), 2;
    uint64_t rounds = strtoull(argv[4], NULL, 10);
    long tasks = tb_num_tasks(pattern, width, steps), cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long threads = cpus < 1 ? 1 : cpus > KO_MAX_THREADS ? KO_MAX_THREADS : cpus;
    static share shares[KO_MAX_THREADS];
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    for (long i = 0, first = 0; i < threads; i++) {
        long count = tasks / threads + (i < tasks % threads);
        shares[i] = (share){.first = first, .count = count, .rounds = rounds};
        first += count;
        int e = pthread_create(&shares[i].thread, NULL, run_share, &shares[i]);
        if (e)
            return fprintf(stderr, "kernel_only: pthread_create: %s\n", strerror(e)), 1;
    }
    double t0 = 1e30;
    for (long i = 0; i < threads; i++) {
        pthread_join(shares[i].thread, NULL);
        t0 = shares[i].started < t0 ? shares[i].started : t0;
    }
    printf("%.9f\n", now_s() - t0);
    return 0;
}
