/*
 * The device side of a C test program: core threads running the AICore
 * executor on their mailboxes, and one launch struct, as the sim platform
 * keeps them. Define NUM_CORES before including.
 */
#ifndef SIMPLER_TEST_DEVICE_HARNESS_H
#define SIMPLER_TEST_DEVICE_HARNESS_H

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chip/core_pinning.h"
#include "common/device_abi.h"

int simpler_aicpu_main(simpler_launch *launch, uint32_t thread_idx);
void simpler_aicore_main(simpler_mailbox *mailbox);

/* ---- the device: cores, mailboxes, one launch struct ------------------ */

static simpler_mailbox *mailboxes;
static pthread_t core_threads[NUM_CORES];
static uint32_t core_ids[NUM_CORES];
static simpler_launch launch; /* kept for the whole run, like sim.c */

/* The core a thread runs, for kernels to check where they are. */
static _Thread_local int32_t tls_core = -1;

static void *core_main(void *arg)
{
    uint32_t c = *(const uint32_t *)arg;
    tls_core = (int32_t)c;
    simpler_aicore_main(&mailboxes[c]);
    return NULL;
}

/* Pin core c's thread as chip.c does, so that the scheduler's hand-over
 * to a core on its own CPU (dispatch_loop.c, ring) runs here too. */
static void pin_core(uint32_t c)
{
    cpu_set_t cpus;
    if (sched_getaffinity(0, sizeof cpus, &cpus) == 0)
        chip_pin_core(core_threads[c], &mailboxes[c], chip_core_cpu(&cpus, c));
}

static void start_cores(void)
{
    mailboxes = aligned_alloc(64, sizeof(simpler_mailbox) * NUM_CORES);
    if (!mailboxes) {
        perror("aligned_alloc");
        exit(2);
    }
    memset(mailboxes, 0, sizeof(simpler_mailbox) * NUM_CORES);
    for (uint32_t c = 0; c < NUM_CORES; c++) {
        core_ids[c] = c;
        if (pthread_create(&core_threads[c], NULL, core_main, &core_ids[c])) {
            perror("pthread_create");
            exit(2);
        }
        pin_core(c);
    }
}

static void stop_cores(void)
{
    for (uint32_t c = 0; c < NUM_CORES; c++) {
        simpler_mailbox *mb = &mailboxes[c];
        atomic_store(&mb->exit, 1);
        simpler_event_signal(&mb->door);
        pthread_join(core_threads[c], NULL);
    }
    free(mailboxes);
}

/* Set the launch up for p as chip_launch does, and note each core's
 * doorbell in seq_before[NUM_CORES], for checking which were posted to. */
static void begin_launch(const simpler_launch_params *p, uint32_t *seq_before)
{
    launch.p = *p;
    launch.num_cores = p->block_dim * SIMPLER_CORES_PER_CLUSTER;
    launch.mailboxes = mailboxes;
    atomic_store(&launch.status, 0);
    atomic_store(&launch.abort, 0);
    atomic_store(&launch.tasks_completed, 0);
    atomic_store(&launch.blocks_completed, 0);
    atomic_store(&launch.tasks_submitted, 0);
    launch.message[0] = '\0';
    for (uint32_t c = 0; c < NUM_CORES; c++)
        seq_before[c] = atomic_load(&mailboxes[c].door.seq);
}

/* Cores that have not finished (and acked) everything posted to them. */
static uint32_t busy_cores(void)
{
    uint32_t busy = 0;
    for (uint32_t c = 0; c < NUM_CORES; c++) {
        simpler_mailbox *mb = &mailboxes[c];
        uint32_t seq = atomic_load(&mb->door.seq);
        if (atomic_load(&mb->finished) != seq || atomic_load(&mb->ack) != seq || atomic_load(&mb->in_kernel))
            busy++;
    }
    return busy;
}

/* Run one launch: n AICPU threads calling simpler_aicpu_main on `launch`,
 * each return code into rc[t]; a hang is killed by SIGALRM. */
typedef struct aicpu_arg {
    uint32_t idx;
    int rc;
} aicpu_arg;

/* A CPU to pin every AICPU thread of the next launches to (-1: none),
 * for a test of what a scheduler does beside a core. */
static int aicpu_cpu = -1;

static void *aicpu_thread(void *arg)
{
    aicpu_arg *a = arg;
    if (aicpu_cpu >= 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(aicpu_cpu, &one);
        pthread_setaffinity_np(pthread_self(), sizeof one, &one);
    }
    a->rc = simpler_aicpu_main(&launch, a->idx);
    return NULL;
}

static void run_aicpu_threads(uint32_t n, int *rc, unsigned alarm_s)
{
    pthread_t th[SIMPLER_MAX_AICPU_THREADS + 1];
    aicpu_arg a[SIMPLER_MAX_AICPU_THREADS + 1];
    alarm(alarm_s);
    for (uint32_t t = 0; t < n; t++) {
        a[t] = (aicpu_arg){.idx = t, .rc = 1};
        if (pthread_create(&th[t], NULL, aicpu_thread, &a[t])) {
            perror("pthread_create");
            exit(2);
        }
    }
    for (uint32_t t = 0; t < n; t++) {
        pthread_join(th[t], NULL);
        rc[t] = a[t].rc;
    }
    alarm(0);
}

/* A check that failed inside a kernel: counted (main reports the count)
 * and, for the first few, printed. */
static _Atomic uint32_t kernel_errors;

static void kernel_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void kernel_error(const char *fmt, ...)
{
    if (atomic_fetch_add(&kernel_errors, 1) < 20) {
        char line[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        fprintf(stderr, "kernel error: %s\n", line);
    }
}

#endif
