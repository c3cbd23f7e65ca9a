/*
 * The AICore executor: the loop every compute core runs. Wait for the
 * doorbell, copy the payload, ack, run the kernel, publish finished, signal
 * the scheduler. Built as its own shared object (libsimpler_aicore.so).
 */
#include <limits.h>
#include <pthread.h>

#include "common/device_abi.h"
#include "simpler/kernel.h"

/* A core that just finished a task is likely to get the next one soon:
 * back off (pause, then yield) before sleeping on the doorbell; with its
 * scheduler on the same CPU, yield from the start. */
static uint32_t wait_doorbell(simpler_mailbox *mb, uint32_t last)
{
    uint32_t seq;
    simpler_backoff backoff = {0};
    if (atomic_load_explicit(&mb->scheduler_beside, memory_order_relaxed))
        simpler_backoff_skip_pauses(&backoff);
    do {
        seq = atomic_load_explicit(&mb->door.seq, memory_order_acquire);
        if (seq != last)
            return seq;
    } while (!simpler_backoff_step(&backoff));
    for (;;) {
        uint32_t seen = simpler_event_prepare(&mb->door);
        if (seen != last) {
            simpler_event_cancel(&mb->door);
            return seen;
        }
        simpler_event_sleep(&mb->door, seen, 0);
        seq = atomic_load_explicit(&mb->door.seq, memory_order_acquire);
        if (seq != last)
            return seq;
    }
}

/* A waiting core that backed off sleeps this long at a time, so that it
 * sees an abort even if nobody wakes it. */
#define EXECUTOR_WAIT_SLEEP_NS 1000000ull

/* Hold a follower until its producers on other cores have finished: spin
 * (a cache-line handoff away), yield, then sleep on the producer's
 * finished word. The waiters count and finished are paired like notify
 * below: the producer's core wakes the word only when someone sleeps on
 * it. Returns 0 if the launch aborted meanwhile. */
static int await_producers(const simpler_slot *slot, _Atomic uint32_t *abort)
{
    for (uint32_t i = 0; i < slot->num_waits; i++) {
        simpler_mailbox *p = (simpler_mailbox *)(uintptr_t)slot->waits[i].mailbox_addr;
        uint32_t seq = slot->waits[i].seq;
        simpler_backoff backoff = {0};
        while (simpler_seq_before(atomic_load_explicit(&p->finished, memory_order_acquire), seq)) {
            if (atomic_load_explicit(abort, memory_order_relaxed))
                return 0;
            if (!simpler_backoff_step(&backoff))
                continue;
            pthread_testcancel();
            atomic_fetch_add_explicit(&p->finished_waiters, 1, memory_order_seq_cst);
            uint32_t seen = atomic_load_explicit(&p->finished, memory_order_seq_cst);
            if (simpler_seq_before(seen, seq))
                simpler_futex_wait(&p->finished, seen, EXECUTOR_WAIT_SLEEP_NS);
            atomic_fetch_sub_explicit(&p->finished_waiters, 1, memory_order_relaxed);
        }
    }
    return 1;
}

/* Publish that the task posted as seq is over, and wake whoever waits for
 * it: the scheduler if it sleeps, cores holding a follower of it. */
static void publish_finished(simpler_mailbox *mb, uint32_t seq, simpler_event *notify)
{
    atomic_store_explicit(&mb->finished, seq, memory_order_seq_cst);
    if (atomic_load_explicit(&mb->finished_waiters, memory_order_seq_cst))
        simpler_futex_wake(&mb->finished, INT_MAX);
    if (atomic_load_explicit(&notify->sleepers, memory_order_seq_cst))
        simpler_event_signal(notify);
}

/* Run one kernel: stamp it for the watchdog, run it, trace it. The
 * caller makes the thread asynchronously cancellable around it. */
static void run_kernel(simpler_mailbox *mb, uint64_t kernel_addr, uint64_t task_id, uint32_t func_id,
                       const simpler_kernel_args *args, simpler_trace *trace)
{
    simpler_kernel_fn fn = (simpler_kernel_fn)(uintptr_t)kernel_addr;
    uint64_t started = trace ? simpler_now_ns() : 0;
    atomic_store_explicit(&mb->func_id, func_id, memory_order_relaxed);
    atomic_store_explicit(&mb->task_id, task_id, memory_order_relaxed);
    atomic_store_explicit(&mb->kernel_addr, kernel_addr, memory_order_relaxed);
    /* release: a watchdog that sees in_kernel also sees func_id and task_id */
    atomic_store_explicit(&mb->in_kernel, 1, memory_order_release);
    fn(args);
    atomic_store_explicit(&mb->in_kernel, 0, memory_order_relaxed);
    if (trace) {
        /* not cancelled halfway through an event */
        int old;
        pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &old);
        simpler_trace_record(trace, SIMPLER_TRACE_BLOCK, mb->core, task_id, func_id, args->block_idx, started,
                             simpler_now_ns());
        pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
    }
}

/* The tasks of a run after its first, in order (device_abi.h). An abort
 * drops the rest, as it drops what is still posted. */
static void run_rest(simpler_mailbox *mb, const simpler_slot *slot, _Atomic uint32_t *abort, simpler_trace *trace)
{
    const uint8_t *base = (const uint8_t *)(uintptr_t)slot->run_base;
    const uint8_t *entry = (const uint8_t *)(uintptr_t)slot->run_addr;
    for (uint32_t i = 1; i < slot->run_count; i++) {
        if (atomic_load_explicit(abort, memory_order_relaxed))
            return;
        const simpler_run_entry *e = (const simpler_run_entry *)(entry + (uint64_t)i * slot->run_stride);
        simpler_kernel_args args = {
            .tensors = (const simpler_tensor *)(base + e->tensors_off),
            .scalars = (const uint64_t *)(base + e->scalars_off),
            .num_tensors = e->num_tensors,
            .num_scalars = e->num_scalars,
            .block_idx = 0,
            .block_num = 1,
        };
        run_kernel(mb, e->kernel_addr, slot->task_id + (uint64_t)i * slot->run_id_step, e->func_id, &args, trace);
    }
}

/* Run the task (or run of tasks) posted as seq: ack, kernels, finished,
 * then a signal if the scheduler sleeps. The store of finished and the
 * load of sleepers are both seq_cst, against the scheduler's sleepers
 * increment and its load of finished (sched_loop.c): one of the two sides
 * sees the other, so no wake is lost and a spinning scheduler costs the
 * core no atomic add. */
static void run_slot(simpler_mailbox *mb, uint32_t seq, simpler_event *notify, _Atomic uint32_t *abort,
                     simpler_trace *trace)
{
    simpler_slot *slot = &mb->slots[(seq - 1) % SIMPLER_MAILBOX_SLOTS];
    simpler_kernel_args args = {
        .tensors = (const simpler_tensor *)(uintptr_t)slot->tensors_addr,
        .scalars = (const uint64_t *)(uintptr_t)slot->scalars_addr,
        .num_tensors = slot->num_tensors,
        .num_scalars = slot->num_scalars,
        .block_idx = slot->block_idx,
        .block_num = slot->block_num,
    };
    atomic_store_explicit(&mb->ack, seq, memory_order_release);
    /* A kernel that never returns is stopped by the platform with
     * pthread_cancel, and the core restarted. Kernels hold no locks, and
     * between the kernels of a run this loop holds none either (a few
     * stores to its own mailbox), so asynchronous cancellation is safe
     * there too: switched once a slot, not once a kernel (a pair of
     * switches costs ~45 ns here, more than an empty kernel). */
    uint32_t timed = slot->run_count;
    uint64_t started = timed ? simpler_now_ns() : 0;
    int old;
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
    run_kernel(mb, slot->kernel_addr, slot->task_id, slot->func_id, &args, trace);
    if (timed > 1)
        run_rest(mb, slot, abort, trace);
    pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &old);
    if (timed) /* in the slot, which the scheduler reads after finished, before it posts there again */
        slot->took_ns = simpler_now_ns() - started;
    publish_finished(mb, seq, notify);
}

__attribute__((visibility("default"))) void simpler_aicore_main(simpler_mailbox *mb)
{
    /* Not door.seq: a task may be posted before this thread first runs. */
    uint32_t done = atomic_load_explicit(&mb->finished, memory_order_acquire);
    for (;;) {
        /* A core being stopped after a timeout dies here if its cancel
         * arrived just after its kernel returned. */
        pthread_testcancel();
        uint32_t seq = wait_doorbell(mb, done);
        if (atomic_load_explicit(&mb->exit, memory_order_acquire))
            return;
        /* Set by the scheduler before its first post of the launch. */
        simpler_event *notify = mb->notify;
        simpler_trace *trace = mb->trace;
        _Atomic uint32_t *abort = mb->abort;
        /* Everything posted up to seq, in order. Whatever was posted
         * meanwhile goes round the outer loop again: a doorbell may also
         * be a stop (exit, nothing posted), and a new launch may have a
         * new notify and trace, so both are checked after every ring. */
        while (done != seq) {
            pthread_testcancel();
            done++;
            /* After an abort, what is still posted is dropped: the failed
             * run's cores come back idle without running it. */
            if (await_producers(&mb->slots[(done - 1) % SIMPLER_MAILBOX_SLOTS], abort) &&
                !atomic_load_explicit(abort, memory_order_relaxed))
                run_slot(mb, done, notify, abort, trace);
            else {
                atomic_store_explicit(&mb->ack, done, memory_order_release);
                publish_finished(mb, done, notify);
            }
        }
    }
}
