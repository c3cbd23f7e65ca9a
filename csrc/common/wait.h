/*
 * Waiting primitives shared by the host, the AICPU runtime and the AICore
 * executor. The policy (DESIGN.md, "Waiting"): spin with a pause while work
 * flows, since a cache-line handoff costs ~130 ns here; block in a futex only
 * after a stretch of idleness, since a futex wake costs ~38 us.
 */
#ifndef SIMPLER_COMMON_WAIT_H
#define SIMPLER_COMMON_WAIT_H

#include <errno.h>
#include <sched.h>
#include <limits.h>
#include <pthread.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline void simpler_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline uint64_t simpler_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sleep while *word == expected, at most timeout_ns (0: no limit). Returns
 * at once if the word already differs; spurious returns are possible. */
static inline void simpler_futex_wait(_Atomic uint32_t *word, uint32_t expected, uint64_t timeout_ns)
{
    struct timespec ts, *tp = NULL;
    if (timeout_ns) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000ull);
        ts.tv_nsec = (long)(timeout_ns % 1000000000ull);
        tp = &ts;
    }
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, tp, NULL, 0);
}

static inline void simpler_futex_wake(_Atomic uint32_t *word, int count)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

/*
 * Backing off while idle, before blocking. First a few pauses (the work
 * may be a cache-line handoff away), then yields: with more threads than
 * host cores, the thread that will make our work is often waiting for a
 * CPU, and a yield hands it ours. After about what a futex wake costs
 * (~38 us here) of that, the caller blocks: yielding longer only takes
 * CPU from running kernels (with 200 us, a 2-task-wide stencil of 80 us
 * kernels ran at 54% efficiency; with 50 us, 85%).
 */
#define SIMPLER_BACKOFF_PAUSES 64
#define SIMPLER_BACKOFF_YIELD_NS 50000ull

typedef struct simpler_backoff {
    uint32_t rounds;
    uint64_t since;
} simpler_backoff;

static inline void simpler_backoff_reset(simpler_backoff *b) { b->rounds = 0; }

/* Start with the yields: for a wait on a thread that shares our CPU,
 * which cannot make progress while we pause. */
static inline void simpler_backoff_skip_pauses(simpler_backoff *b) { b->rounds = SIMPLER_BACKOFF_PAUSES; }

/* One idle round; returns 1 when the caller should block. */
static inline int simpler_backoff_step(simpler_backoff *b)
{
    if (b->rounds < SIMPLER_BACKOFF_PAUSES) {
        b->rounds++;
        simpler_cpu_relax();
        return 0;
    }
    if (b->rounds++ == SIMPLER_BACKOFF_PAUSES)
        b->since = simpler_now_ns();
    else if ((b->rounds & 7) == 0 && simpler_now_ns() - b->since >= SIMPLER_BACKOFF_YIELD_NS)
        return 1;
    sched_yield();
    return 0;
}

/*
 * A wake-up word: whoever changes what the sleeper waits for
 * calls simpler_event_signal(); the sleeper calls simpler_event_prepare(),
 * rechecks its condition, then simpler_event_sleep(). No wake is lost: the
 * signal bumps seq, so a sleep that races with it returns at once.
 */
typedef struct simpler_event {
    _Atomic uint32_t seq;
    _Atomic uint32_t sleepers;
} simpler_event;

static inline uint32_t simpler_event_prepare(simpler_event *e)
{
    atomic_fetch_add_explicit(&e->sleepers, 1, memory_order_seq_cst);
    return atomic_load_explicit(&e->seq, memory_order_seq_cst);
}

static inline void simpler_event_sleep(simpler_event *e, uint32_t seen, uint64_t timeout_ns)
{
    simpler_futex_wait(&e->seq, seen, timeout_ns);
    atomic_fetch_sub_explicit(&e->sleepers, 1, memory_order_relaxed);
}

static inline void simpler_event_cancel(simpler_event *e)
{
    atomic_fetch_sub_explicit(&e->sleepers, 1, memory_order_relaxed);
}

/* Signal n changes at once (a doorbell that counts what it announces). */
static inline void simpler_event_signal_n(simpler_event *e, uint32_t n)
{
    atomic_fetch_add_explicit(&e->seq, n, memory_order_seq_cst);
    if (atomic_load_explicit(&e->sleepers, memory_order_seq_cst))
        simpler_futex_wake(&e->seq, INT_MAX);
}

static inline void simpler_event_signal(simpler_event *e) { simpler_event_signal_n(e, 1); }

/* Join a thread, giving up after timeout_ns (non-zero then). */
static inline int simpler_join_within(pthread_t thread, uint64_t timeout_ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + timeout_ns;
    ts.tv_sec += (time_t)(ns / 1000000000ull);
    ts.tv_nsec = (long)(ns % 1000000000ull);
    return pthread_timedjoin_np(thread, NULL, &ts);
}

#endif
