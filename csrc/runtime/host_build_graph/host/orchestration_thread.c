#include "runtime/host_build_graph/host/orchestration_thread.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/wait.h"

/* How long a cancelled job has to end before it is given up. */
#define ORCH_CANCEL_JOIN_NS 1000000000ull

struct hbg_orch_thread {
    pthread_t thread;
    simpler_event go;               /* seq counts jobs posted */
    simpler_event done;             /* signalled when a job finishes, or nudges its waiter */
    _Atomic uint32_t finished;      /* the job posted last has finished */
    _Atomic uint32_t stopping;
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
        int r = t->job(t->arg);
        pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &old);
        t->result = r;
        snprintf(t->message, sizeof t->message, "%s", simpler_last_error());
        atomic_store_explicit(&t->finished, 1, memory_order_release);
        simpler_event_signal(&t->done);
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

    pthread_cancel(t->thread);
    simpler_event_signal(&t->go);       /* in case it is idle already */
    *tp = NULL;
    if (simpler_join_within(t->thread, ORCH_CANCEL_JOIN_NS) != 0)
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

int hbg_orch_enter(void)
{
    int old;
    /* Disabled, not deferred: an API call may make system calls that are
     * cancellation points (onboard's requests), and a cancel there would
     * leave a request unanswered on the device's connection. */
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    return old;
}

void hbg_orch_leave(int entered)
{
    int ignored;
    pthread_setcancelstate(entered, &ignored); /* a cancel that waited acts now (the type is asynchronous) */
}
