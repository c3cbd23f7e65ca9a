#include "runtime/host_build_graph/host/orchestration_thread.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/wait.h"

/* How long a cancelled job has to end before it is given up. */
#define ORCH_CANCEL_JOIN_NS 1000000000ull
/* Built for a test only (tests/unit/test_c_units.py): a leave that never
 * sees the stop, as one racing with it may not, so that the waiter's
 * second look is what ends the job. */
#ifdef HBG_ORCH_TEST_MISSED_LEAVE
#define LEAVE_LOOKS_AT_STOP 0
#else
#define LEAVE_LOOKS_AT_STOP 1
#endif
/* How often the waiter looks again at a stopped job that was inside a
 * call (stop_job). */
#define ORCH_STOP_LOOK_NS 200000ull

struct hbg_orch_thread {
    pthread_t thread;
    simpler_event go;               /* seq counts jobs posted */
    simpler_event done;             /* signalled when a job finishes, or nudges its waiter */
    _Atomic uint32_t finished;      /* the job posted last has finished */
    _Atomic uint32_t stopping;
    /* The stop (orchestration_thread.h): stop is set once, by the
     * waiter; in_api is the depth of simpler's calls the job is inside,
     * written by the job's thread only. */
    _Atomic uint32_t stop;
    _Atomic uint32_t in_api;
    hbg_orch_job job;
    void *arg;
    int result;
    char message[SIMPLER_MESSAGE_MAX];
};

/* The thread a job runs on, for hbg_orch_thread_nudge from inside it. */
static _Thread_local hbg_orch_thread *current;

static void *orch_main(void *arg)
{
    hbg_orch_thread *t = arg;
    current = t;
    uint32_t seen = 0;
    for (;;) {
        /* A cancel that came as the job ended acts here (the caller wakes
         * us for it): the idle wait has no cancellation point of its own. */
        pthread_testcancel();
        if (atomic_load(&t->stop))
            return NULL; /* stopped as its job ended: the waiter joins it */
        /* Runs come in bursts: back off before sleeping, as the AICPU
         * threads do, so the next run's handoff is a cache line. */
        simpler_backoff backoff = {0};
        while (atomic_load_explicit(&t->go.seq, memory_order_acquire) == seen && !atomic_load(&t->stopping) &&
               !simpler_backoff_step(&backoff))
            ;
        uint32_t seq = simpler_event_prepare(&t->go);
        if (seq == seen && !atomic_load(&t->stopping)) {
            simpler_event_sleep(&t->go, seq, 0);
            continue;
        }
        simpler_event_cancel(&t->go);
        if (atomic_load(&t->stopping))
            return NULL;
        seen = seq;
        simpler_clear_error();
        int old;
        pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
        int r = t->job(t, t->arg);
        pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &old);
        t->result = r;
        snprintf(t->message, sizeof t->message, "%s", simpler_last_error());
        atomic_store_explicit(&t->finished, 1, memory_order_release);
        simpler_event_signal(&t->done);
    }
}

/* Both sides of the stop fence (seq_cst): the job's store of in_api
 * before its load of stop, the waiter's store of stop before its load of
 * in_api, so that one of them sees the other. An asymmetric fence
 * (membarrier on the waiter, only the compiler's on the job) would make
 * the job's side free, but registering for membarrier cost the process
 * on every context switch: Task Bench stencil_1d at 100 us tasks on
 * host_build_graph fell from 0.82-0.88 efficiency to 0.34-0.69. */
static inline void stop_fence(void) { atomic_thread_fence(memory_order_seq_cst); }

/* Stop the job running on t (see orchestration_thread.h) and join its
 * thread within ORCH_CANCEL_JOIN_NS; 0 once joined. A job inside a call
 * ends itself as the call returns if it sees the stop there; leave has
 * no fence, so it may not see it at once: while the thread lives, the
 * waiter looks at its depth again and cancels it once it is outside. */
static int stop_job(hbg_orch_thread *t)
{
    atomic_store_explicit(&t->stop, 1, memory_order_relaxed);
    stop_fence();
    int cancelled = 0;
    uint64_t end = simpler_now_ns() + ORCH_CANCEL_JOIN_NS;
    for (;;) {
        if (!cancelled && !atomic_load_explicit(&t->in_api, memory_order_acquire)) {
            pthread_cancel(t->thread);
            cancelled = 1;
        }
        simpler_event_signal(&t->go); /* in case it is idle already: it sees stop */
        uint64_t now = simpler_now_ns();
        if (now >= end)
            return -1;
        uint64_t slice = cancelled ? end - now : ORCH_STOP_LOOK_NS;
        if (!simpler_join_within(t->thread, slice < end - now ? slice : end - now))
            return 0;
    }
}

static int start(hbg_orch_thread **out)
{
    hbg_orch_thread *t = calloc(1, sizeof *t);
    if (!t)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "host_build_graph: out of host memory");
    int e = pthread_create(&t->thread, NULL, orch_main, t);
    if (e) {
        free(t);
        return simpler_fail(SIMPLER_E_SYSTEM, "host_build_graph: cannot start the orchestration thread: %s",
                            strerror(e));
    }
    pthread_setname_np(t->thread, "simpler-orch");
    *out = t;
    return SIMPLER_OK;
}

/* The job is over, or its waiter was asked to return early. */
static int wait_over(hbg_orch_thread *t, _Atomic uint32_t *early)
{
    return atomic_load_explicit(&t->finished, memory_order_acquire) || (early && atomic_load(early));
}

int hbg_orch_thread_wait(hbg_orch_thread **tp, uint64_t timeout_ns, const platform_poll *poll,
                         _Atomic uint32_t *early, int *result)
{
    hbg_orch_thread *t = *tp;
    int polled = poll && poll->fn;
    uint64_t now = simpler_now_ns(), deadline = now + timeout_ns;
    uint64_t next_poll = polled ? now + PLATFORM_POLL_NS : UINT64_MAX;
    simpler_backoff backoff = {0};
    while (!wait_over(t, early) && !simpler_backoff_step(&backoff))
        ;
    int stop = SIMPLER_OK;
    for (;;) {
        uint32_t seq = simpler_event_prepare(&t->done);
        if (wait_over(t, early)) {
            simpler_event_cancel(&t->done);
            break;
        }
        now = simpler_now_ns();
        if (now >= next_poll) {
            if (poll->fn(poll->ctx))
                stop = SIMPLER_E_INTERRUPTED;
            next_poll = now + PLATFORM_POLL_NS;
        }
        if (!stop && now >= deadline)
            stop = SIMPLER_E_TIMEOUT;
        if (stop) {
            simpler_event_cancel(&t->done);
            break;
        }
        uint64_t until = deadline < next_poll ? deadline : next_poll;
        simpler_event_sleep(&t->done, seq, until - now);
    }
    if (stop && atomic_load_explicit(&t->finished, memory_order_acquire))
        stop = SIMPLER_OK;      /* it finished as we gave up on it */
    if (!stop) {
        if (!atomic_load_explicit(&t->finished, memory_order_acquire))
            return HBG_ORCH_RUNNING;
        *result = t->result;
        simpler_fail(SIMPLER_OK, "%s", t->message);
        return SIMPLER_OK;
    }

    *tp = NULL;
    if (stop_job(t) != 0)
        return simpler_fail(SIMPLER_E_DEVICE_LOST,
                            "the host orchestration %s and could not be stopped (it blocks cancellation?); "
                            "this worker is unusable: create a new one",
                            stop == SIMPLER_E_INTERRUPTED ? "was interrupted" : "timed out");
    free(t);
    if (stop == SIMPLER_E_INTERRUPTED)
        return simpler_fail(stop, "the orchestration was interrupted");
    if (!timeout_ns)
        return simpler_fail(stop, "the orchestration was stopped");
    return simpler_fail(stop, "the orchestration ran for more than %.3g s (the scheduler timeout) and was stopped",
                        (double)timeout_ns / 1e9);
}

int hbg_orch_thread_run(hbg_orch_thread **tp, hbg_orch_job job, void *arg, uint64_t timeout_ns,
                        const platform_poll *poll, _Atomic uint32_t *early, int *result)
{
    int rc;
    if (!*tp && (rc = start(tp)))
        return rc;
    hbg_orch_thread *t = *tp;
    t->job = job;
    t->arg = arg;
    atomic_store_explicit(&t->finished, 0, memory_order_relaxed); /* published by go's signal */
    simpler_event_signal(&t->go);
    return hbg_orch_thread_wait(tp, timeout_ns, poll, early, result);
}

void hbg_orch_thread_nudge(void)
{
    if (current)
        simpler_event_signal(&current->done);
}

void hbg_orch_thread_free(hbg_orch_thread *t)
{
    if (!t)
        return;
    atomic_store(&t->stopping, 1);
    simpler_event_signal(&t->go);
    pthread_join(t->thread, NULL);
    free(t);
}

/* The job was stopped while inside simpler's calls, or as one began: end
 * it here, where simpler's state is whole, by cancelling itself. Unless
 * the thread is ending already: a stop's unwinding runs the job's
 * cleanup (a C++ guard's destructor, a pthread_cleanup_push handler),
 * which may call simpler, and there the cancel is ignored (glibc acts
 * on no cancel once the thread is exiting) and the call goes on. */
static void end_job(void)
{
    int ignored;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &ignored);
    pthread_cancel(pthread_self());
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &ignored);
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &ignored);
}

int hbg_orch_enter(hbg_orch_thread *t)
{
    /* Only on the job's own thread: a stop cancels no other thread the
     * orchestration may have started. */
    if (!t || !pthread_equal(pthread_self(), t->thread))
        return 0;
    uint32_t depth = atomic_load_explicit(&t->in_api, memory_order_relaxed);
    atomic_store_explicit(&t->in_api, depth + 1, memory_order_relaxed);
    stop_fence();
    if (!depth && atomic_load_explicit(&t->stop, memory_order_relaxed))
        end_job();
    return 1;
}

void hbg_orch_leave(hbg_orch_thread *t, int entered)
{
    if (!entered)
        return;
    atomic_signal_fence(memory_order_seq_cst);   /* the call's own work stays before */
    uint32_t depth = atomic_load_explicit(&t->in_api, memory_order_relaxed) - 1;
    /* release: a waiter that sees the depth fall sees the call's work done */
    atomic_store_explicit(&t->in_api, depth, memory_order_release);
    /* No fence (one a call was ~5 ns of a 20 ns submit): a stop this load
     * misses, the waiter's next look at in_api catches (stop_job). */
    if (LEAVE_LOOKS_AT_STOP && !depth && atomic_load_explicit(&t->stop, memory_order_relaxed))
        end_job();
}
