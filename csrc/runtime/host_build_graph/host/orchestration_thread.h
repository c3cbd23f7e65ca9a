/*
 * The thread a host_build_graph orchestration runs on.
 *
 * The orchestration is user code running on the host. Called on the
 * caller's thread, one that never returns would hang the caller for good,
 * deaf to Ctrl-C. So it runs on a thread of its own, kept for the life of
 * the device context (a handoff to a thread that is still backing off
 * costs a cache line, not a thread start), and the caller waits for it in
 * slices: the device's poll (an interrupt) or the scheduler timeout stops
 * it.
 *
 * Stopping is asynchronous cancellation while user code runs, and never
 * inside simpler's own calls (hbg_orch_enter/leave around them), so a
 * cancel never lands inside simpler's bookkeeping. A cancel that lands
 * while user code is inside libc (malloc, printf) may leave a libc lock
 * held: that price is paid only on an interrupt or a timeout, where the
 * alternative is a thread that never ends.
 *
 * Keeping the cancel out of simpler's calls: pthread_setcancelstate
 * cannot. glibc 2.36 acts on a cancel that was sent while the thread had
 * cancellation enabled even if it has disabled it since (the signal is
 * in flight), and it costs two atomic read-modify-writes a call (about
 * 40 ns a pair here, most of a submit's cost). So the calls count their
 * depth in a word of the thread's, and the waiter asks for the stop
 * first: it sets stop, fences (as each call does between raising its
 * depth and its look at stop: one side sees the other), and cancels the
 * job only once it is not inside a call. A call that was inside ends the
 * job itself as it returns if it sees the stop (it cancels itself); it
 * does not fence there, so it may miss it, and the waiter looks at the
 * depth again every ORCH_STOP_LOOK_NS until it can cancel. A call that
 * begins after the stop sees it and ends the job before doing anything,
 * so a cancel still in flight finds nothing half done. A call made by
 * the job's cleanup as it ends goes on as usual.
 */
#ifndef SIMPLER_RUNTIME_HBG_ORCH_THREAD_H
#define SIMPLER_RUNTIME_HBG_ORCH_THREAD_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/platform_ops.h"

typedef struct hbg_orch_thread hbg_orch_thread;

/* A job, given the thread it runs on (for hbg_orch_enter). */
typedef int (*hbg_orch_job)(hbg_orch_thread *self, void *arg);

/* hbg_orch_thread_run's or _wait's: the job goes on (the waiter was
 * asked to return early); wait for it later. */
#define HBG_ORCH_RUNNING 1

/*
 * Run job(arg) on *t's thread (started when *t is NULL) and wait for it,
 * calling poll every PLATFORM_POLL_NS. Returns SIMPLER_OK with the job's
 * result in *result and its thread's error message as the caller's; or,
 * after stopping the job, SIMPLER_E_INTERRUPTED (the poll asked) or
 * SIMPLER_E_TIMEOUT (it ran past timeout_ns) and a fresh thread next time;
 * or SIMPLER_E_DEVICE_LOST when the job would not stop: its thread is then
 * left running, and arg must stay valid for ever. With early (may be
 * NULL), the job may ask its waiter to return before it ends: it sets
 * *early and calls hbg_orch_thread_nudge; the wait then returns
 * HBG_ORCH_RUNNING, and the job keeps *t's thread until it is waited for
 * again (a caller that runs other jobs meanwhile takes *t and sets it
 * NULL, so that they get a thread of their own).
 */
int hbg_orch_thread_run(hbg_orch_thread **t, hbg_orch_job job, void *arg, uint64_t timeout_ns,
                        const platform_poll *poll, _Atomic uint32_t *early, int *result);

/* Wait again for a job hbg_orch_thread_run left running, as it does
 * (early may be NULL). timeout_ns 0 stops it at once unless it is over. */
int hbg_orch_thread_wait(hbg_orch_thread **t, uint64_t timeout_ns, const platform_poll *poll,
                         _Atomic uint32_t *early, int *result);

/* From inside a job: wake its waiter to look at *early. */
void hbg_orch_thread_nudge(void);

/* Stop an idle thread and free it. */
void hbg_orch_thread_free(hbg_orch_thread *t);

/* Around simpler's code called from a job on self (NULL when not called
 * from one): a stop waits until leave. */
int hbg_orch_enter(hbg_orch_thread *self);
void hbg_orch_leave(hbg_orch_thread *self, int entered);

#endif
