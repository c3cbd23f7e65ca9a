/*
 * The host side of a device context: what simpler_device holds. Private to
 * csrc/host/: a runtime sees only its environment (runtime/runtime.h).
 */
#ifndef SIMPLER_HOST_DEVICE_H
#define SIMPLER_HOST_DEVICE_H

#include <pthread.h>
#include <stdint.h>

#include "callable/callable.h"
#include "host/callable_buffer.h"
#include "common/platform_ops.h"
#include "runtime/runtime.h"
#include "simpler/simpler.h"

/* A registered callable: the shared buffer of its content (blob in GM,
 * parsed view, kernels on the device) and the runtime's view of it. */
typedef struct host_callable {
    uint32_t id;
    callable_buffer *buffer;
    runtime_callable view;          /* what the runtime sees (its state included) */
} host_callable;

enum device_state { DEVICE_CREATED, DEVICE_READY, DEVICE_FINALIZED };

struct simpler_device {
    pthread_mutex_t lock;           /* one API call at a time */
    enum device_state state;
    int32_t device_id;
    const platform_ops *ops;
    platform_dev *pdev;
    const runtime_ops *runtime;
    host_callable **callables;
    uint32_t num_callables;
    uint64_t cap_callables;
    callable_buffer **buffers;      /* one per distinct callable content */
    uint32_t num_buffers;
    uint64_t cap_buffers;
    uint64_t callable_uploads;
    uint64_t runs;
    uint64_t tasks_completed;
    uint64_t orchestration_loads;
    runtime_result last_run;
    void *last_trace;               /* host copy of the last trace */
    uint64_t last_trace_size;
    run_block block;                /* the runtime's GM kept from run to run */
    void *runtime_cache;            /* the runtime's host memory kept from run to run */
    platform_poll poll;             /* what waits check between slices (simpler_device_set_poll) */
    int host_lost;                  /* a host orchestration would not stop: it may run in a callable */
    uint64_t forks;                 /* forks before it was initialised: it belongs to that process */
    int32_t owner_pid;
};

#endif
