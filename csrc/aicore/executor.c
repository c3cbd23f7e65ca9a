/*
 * The AICore executor: the loop every compute core runs. Wait for the
 * doorbell, copy the payload, ack, run the kernel, publish finished, signal
 * the scheduler. Built as its own shared object (libsimpler_aicore.so).
 */
#include <pthread.h>

#include "common/device_abi.h"
#include "simpler/kernel.h"

/* A core that just finished a task is likely to get the next one soon:
 * back off (pause, then yield) before sleeping on the doorbell. */
static uint32_t wait_doorbell(simpler_mailbox *mb, uint32_t last)
{
    uint32_t seq;
    simpler_backoff backoff = {0};
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

__attribute__((visibility("default"))) void simpler_aicore_main(simpler_mailbox *mb)
{
    /* Not door.seq: a task may be posted before this thread first runs. */
    uint32_t last = atomic_load_explicit(&mb->finished, memory_order_acquire);
    for (;;) {
        /* A core being stopped after a timeout dies here if its cancel
         * arrived just after its kernel returned. */
        pthread_testcancel();
        uint32_t seq = wait_doorbell(mb, last);
        pthread_testcancel();
        last = seq;
        if (atomic_load_explicit(&mb->exit, memory_order_acquire))
            return;

        simpler_kernel_args args = {
            .tensors = (const simpler_tensor *)(uintptr_t)mb->tensors_addr,
            .scalars = (const uint64_t *)(uintptr_t)mb->scalars_addr,
            .num_tensors = mb->num_tensors,
            .num_scalars = mb->num_scalars,
            .block_idx = mb->block_idx,
            .block_num = mb->block_num,
        };
        simpler_kernel_fn fn = (simpler_kernel_fn)(uintptr_t)mb->kernel_addr;
        simpler_event *notify = mb->notify;
        simpler_trace *trace = mb->trace;
        uint64_t started = trace ? simpler_now_ns() : 0;
        atomic_store_explicit(&mb->ack, seq, memory_order_release);

        /* A kernel that never returns is stopped by the platform with
         * pthread_cancel; kernels hold no locks, so asynchronous
         * cancellation is safe inside them and only there. */
        /* release: a watchdog that sees in_kernel also sees the payload */
        atomic_store_explicit(&mb->in_kernel, 1, memory_order_release);
        int old;
        pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
        fn(&args);
        pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &old);
        atomic_store_explicit(&mb->in_kernel, 0, memory_order_relaxed);
        if (trace)
            simpler_trace_record(trace, SIMPLER_TRACE_BLOCK, mb->core,
                                 atomic_load_explicit(&mb->task_id, memory_order_relaxed),
                                 atomic_load_explicit(&mb->func_id, memory_order_relaxed), args.block_idx, started,
                                 simpler_now_ns());

        atomic_store_explicit(&mb->finished, seq, memory_order_release);
        simpler_event_signal(notify);
    }
}
