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
    uint32_t runs;                  /* prepared runs not yet done: it cannot be unregistered under them */
} host_callable;

struct recorded_graph;

/* A recorded graph (simpler_graph_record) and the settings it was recorded with. */
typedef struct host_graph {
    uint32_t id;
    host_callable *callable;
    struct recorded_graph *graph;
    simpler_run_config config;
    uint32_t runs;                  /* replays in flight */
} host_graph;

/* Runs on the device at once, at most (prepared and not yet done). */
#define HOST_MAX_INFLIGHT 8
#define HOST_DEFAULT_INFLIGHT 2

enum device_state { DEVICE_CREATED, DEVICE_READY, DEVICE_FINALIZED };

struct simpler_device {
    pthread_mutex_t lock;           /* one API call at a time */
    enum device_state state;
    int32_t device_id;
    const platform_ops *ops;
    char platform[64];              /* the name it was opened by ("faulty:sim"): peers must share it */
    platform_dev *pdev;
    const runtime_ops *runtime;
    host_callable **callables;
    uint32_t num_callables;
    uint64_t cap_callables;
    callable_buffer **buffers;      /* one per distinct callable content */
    uint32_t num_buffers;
    uint64_t cap_buffers;
    host_graph **graphs;
    uint32_t num_graphs;
    uint64_t cap_graphs;
    uint32_t next_graph_id;
    uint64_t callable_uploads;
    uint64_t runs;
    uint64_t tasks_completed;
    uint64_t orchestration_loads;
    runtime_result last_run;
    void *last_trace;               /* host copy of the last trace */
    uint64_t last_trace_size;
    /* One run block per run that may be in flight: a run is staged in a
     * free one while the run before it executes in another. */
    run_block blocks[HOST_MAX_INFLIGHT];
    uint8_t block_busy[HOST_MAX_INFLIGHT];
    uint32_t max_inflight;          /* 1..HOST_MAX_INFLIGHT */
    struct simpler_run_handle *queue_head; /* prepared runs in order: the head executes next */
    struct simpler_run_handle *queue_tail;
    uint32_t inflight;              /* runs prepared and not yet done */
    int executing;                  /* a launch runs, perhaps with the lock released */
    pthread_cond_t changed;         /* a run began or ended executing, or left the queue */
    void *runtime_cache;            /* the runtime's host memory kept from run to run */
    platform_poll poll;             /* what waits check between slices (simpler_device_set_poll) */
    /* The executing launch's counts as the platform last stored them,
     * then the run's final ones (simpler_device_progress reads them
     * without the lock, from any thread). */
    platform_progress progress;
    simpler_failure_report *failure;        /* the host copy of the last failed launch's report */
    simpler_failure_report *launch_report;  /* where the executing launch's platform may copy it */
    int failure_found;              /* the last failed launch left a report */
    int host_lost;                  /* a host orchestration would not stop: it may run in a callable */
    char lost_why[700];             /* the error that lost the device, said by every call after */
    int peer_closing;               /* finalizing: no new windows on or by it (under the window table's lock) */
    uint64_t forks;                 /* forks before it was initialised: it belongs to that process */
    int32_t owner_pid;
};

/* Forks so far are counted (worker_watch_forks, once): a context made
 * before the last fork belongs to the parent (worker_forked). */
void worker_watch_forks(void);
uint64_t worker_forks_so_far(void);
int worker_forked(const simpler_device *dev);
/* Enter an API call on dev (checks, takes the lock); leave it. */
int worker_enter(simpler_device *dev, const char *what);
int worker_leave(simpler_device *dev, int rc);
/* Wait, the lock held, until no launch runs: for calls that need the
 * device to themselves (registration, counters, finalize). */
void worker_quiesce(simpler_device *dev);
/* GM the runtime owns (callable buffers) is not the user's to free or write. */
int worker_check_user_range(simpler_device *dev, uint64_t addr, uint64_t size, const char *what);
host_callable *worker_find_callable(simpler_device *dev, uint32_t id, uint32_t *index);
/* worker_enter, then the registered callable id (SIMPLER_E_NOT_FOUND, the
 * lock given back, when there is none). */
int worker_enter_callable(simpler_device *dev, const char *what, uint32_t id, host_callable **out);
/* What the runtime works with: the platform, a run block, its cache. */
runtime_env worker_env(simpler_device *dev, run_block *block);
/* Release what runs still hold (at finalize, no launch running). */
void worker_runs_end(simpler_device *dev);
/* Keeps a recording's graph, recorded with config, as c's: its id in *id. */
typedef int (*run_keep_fn)(simpler_device *dev, host_callable *c, struct recorded_graph *g,
                           const simpler_run_config *config, uint32_t *id);
/* Prepare a run of c, the lock held: a replay of graph g when g is not
 * NULL, a recording when keep is not NULL (keep takes its graph once it
 * ran; run_execute_free gives its id). */
int run_prepare(simpler_device *dev, host_callable *c, host_graph *g, const simpler_arg *args, uint32_t num_args,
                const simpler_run_config *config, run_keep_fn keep, struct simpler_run_handle **out);
/* Execute r and free it, its error kept; a recording's graph id in
 * *recorded_id (if not NULL) when it succeeded. */
int run_execute_free(struct simpler_run_handle *r, uint32_t *recorded_id);
/* Failure reports (failure_report.c): before a launch, where its report
 * goes (its block's tail, and a host copy a platform may fill instead);
 * after it, if it failed, take the report. */
void failure_arm(simpler_device *dev, platform_poll *poll, simpler_launch_params *params, run_block *block);
void failure_collect(simpler_device *dev, const simpler_launch_params *params, int launch_rc);
/* Peer windows (peer.c): the table of every window of the process,
 * under one lock taken after any device's lock. */
/* SIMPLER_E_STATE if another device holds a window on dev's allocation at
 * addr (dev's lock held). */
int peer_check_free(simpler_device *dev, uint64_t addr);
/* Windows dev holds open (dev's lock held). */
uint64_t peer_windows_held(simpler_device *dev);
/* At finalize, before dev's lock is taken: close the windows dev opened
 * and those others hold on it, and refuse new ones. */
void peer_close_all(simpler_device *dev);
/* Release the graphs of callable c (NULL: all); none has runs in flight
 * (they count as runs of c). */
void worker_graphs_release(simpler_device *dev, host_callable *c);

#endif
