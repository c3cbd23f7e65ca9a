/*
 * The ABI inside a device: what a platform hands the AICPU runtime and the
 * AICore executor, and how they talk to each other. Host code never sees
 * these structs; it only fills a simpler_launch_params.
 *
 * Dispatch is a per-core mailbox handshake: the scheduler that owns a core
 * writes a payload into the next of the mailbox's slots, then rings the
 * doorbell (door.seq counts posted tasks); the core runs the posted tasks
 * in order, and for each acks its seq, runs the kernel, publishes
 * finished = seq and, if its scheduler sleeps, signals it.
 *
 * Several slots let a core go on to its next task without waiting for the
 * scheduler: tasks it was given ahead, and followers, tasks whose
 * producers are all posted (sched_loop.c). A follower's producers on the
 * same core are met by in-order execution; for each one on another core
 * the slot names a wait: the core holds the task until that core's
 * finished reaches the producer's seq.
 */
#ifndef SIMPLER_COMMON_DEVICE_ABI_H
#define SIMPLER_COMMON_DEVICE_ABI_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/trace.h"
#include "common/wait.h"

#define SIMPLER_MAX_CLUSTERS 32
#define SIMPLER_CORES_PER_CLUSTER 3
#define SIMPLER_MAX_CORES (SIMPLER_MAX_CLUSTERS * SIMPLER_CORES_PER_CLUSTER)
#define SIMPLER_MAX_AICPU_THREADS 8
#define SIMPLER_LAUNCH_MESSAGE_MAX 1024

/* Core i of a device is in cluster i / 3; the first core of a cluster is
 * the AIC, the other two are AIVs. */
static inline uint32_t simpler_core_type_of(uint32_t core) { return core % 3 == 0 ? 0u : 1u; }

typedef enum simpler_runtime_kind {
    SIMPLER_RUNTIME_HOST_BUILD_GRAPH = 1,
    SIMPLER_RUNTIME_TMR = 2,            /* a tensormap_and_ringbuffer run */
    SIMPLER_RUNTIME_HBG_STREAM = 3      /* a host_build_graph run on a streamed image */
} simpler_runtime_kind;

/* Slots per mailbox: the task a core runs and the ones queued behind it.
 * Deep enough that a scheduler posting a chain or a stencil ahead rarely
 * finds a full mailbox: with 8, a stencil's core waited for the scheduler
 * every 4-5 tasks (stencil of empty tasks: ~730 ns per task with 8 slots,
 * ~490 with 16, ~360 with 32). */
#define SIMPLER_MAILBOX_SLOTS 32

/* Whether mailbox sequence number a comes before b (they wrap). */
static inline int simpler_seq_before(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }

/* Producers on other cores a posted task may wait for. */
#define SIMPLER_SLOT_WAITS 4

/* Hold the task until another core's finished has reached seq. */
typedef struct simpler_wait {
    uint64_t mailbox_addr;          /* that core's simpler_mailbox */
    uint32_t seq;
    uint32_t reserved;
} simpler_wait;

/* One task of a run, as the core reads it: the first fields of the
 * runtime's own task entry (a runtime keeps its entries in this layout and
 * asserts it), with the arguments as offsets from the run's base. */
typedef struct simpler_run_entry {
    uint64_t kernel_addr;
    uint64_t tensors_off;           /* simpler_tensor[num_tensors], from run_base */
    uint64_t scalars_off;           /* uint64_t[num_scalars], from run_base */
    uint32_t num_tensors;
    uint32_t num_scalars;
    uint32_t func_id;
} simpler_run_entry;

/* A runtime's task entry T keeps field where simpler_run_entry keeps
 * entry_field, of its size. */
#define SIMPLER_AS_RUN_ENTRY(T, field, entry_field)                                                          \
    _Static_assert(offsetof(T, field) == offsetof(simpler_run_entry, entry_field) &&                       \
                       sizeof(((T *)0)->field) == sizeof(((simpler_run_entry *)0)->entry_field),          \
                   #T " is a run entry: " #field)

/* One posted task, or a run of them, cache lines of its own.
 *
 * A run (run_count > 1) is run_count single-block tasks with no waits,
 * posted as one: entry i is at run_addr + i * run_stride, its task id is
 * task_id + i * run_id_step. The core runs them in order and publishes
 * finished once,
 * for the slot: one post, one doorbell and one retire for the lot instead
 * of one each (1e6 independent empty tasks: see docs/performance.md). The
 * slot's own kernel and argument fields then describe entry 0. */
typedef struct __attribute__((aligned(64))) simpler_slot {
    uint64_t kernel_addr;
    uint64_t tensors_addr;          /* simpler_tensor[num_tensors] */
    uint64_t scalars_addr;          /* uint64_t[num_scalars] */
    uint64_t task_id;               /* for the watchdog's report and the trace */
    uint32_t num_tensors;
    uint32_t num_scalars;
    uint32_t block_idx;
    uint32_t block_num;
    uint32_t func_id;
    uint32_t num_waits;
    uint32_t run_count;             /* 0: one task, untimed; 1: one, timed (took_ns); more: a run (timed) */
    uint32_t run_id_step;           /* from one task id of a run to the next */
    union {
        simpler_wait waits[SIMPLER_SLOT_WAITS];
        struct {                    /* a timed slot (run_count > 0) has no waits */
            uint64_t run_addr;      /* simpler_run_entry of the run's first task */
            uint64_t run_base;      /* what the entries' offsets are from */
            uint64_t run_stride;    /* bytes from one entry to the next */
            uint64_t took_ns;       /* written by the core before finished: the slot's time */
        };
    };
} simpler_slot;

_Static_assert(sizeof(simpler_slot) == 128, "a slot is two cache lines");

typedef struct __attribute__((aligned(64))) simpler_mailbox {
    /* Written by the owning scheduler before it rings the doorbell: task
     * seq lives in slots[(seq - 1) % SIMPLER_MAILBOX_SLOTS], posted only
     * once the core finished seq - SIMPLER_MAILBOX_SLOTS. */
    simpler_slot slots[SIMPLER_MAILBOX_SLOTS];
    simpler_event *notify;          /* signalled after finished is published */
    simpler_trace *trace;           /* record the block here, if set */
    _Atomic uint32_t *abort;        /* the launch's abort flag: skip what is still posted */
    uint32_t core;                  /* this mailbox's core, set by the platform */
    /* Set by the platform: the core's thread is pinned to host CPU cpu
     * (sim and the device process, whenever the process may use two CPUs
     * or more), so a scheduler on that CPU holds the core off it while it
     * runs. */
    uint32_t pinned, cpu;
    /* Set by the scheduler when it rings: it runs on this core's CPU, so
     * a core waiting for its next post yields at once (pauses would only
     * hold the scheduler off the CPU it needs to make that post). */
    _Atomic uint32_t scheduler_beside;

    /* The doorbell: seq counts posted tasks; cores sleep on it when idle. */
    __attribute__((aligned(64))) simpler_event door;
    _Atomic uint32_t exit;          /* set with a doorbell ring to stop the core */

    /* Written by the core, once a task, and read by the scheduler and
     * the cores holding followers, which poll it: a line of its own, so
     * that their polling does not take the line below from the core
     * while it stamps a task (1e6 independent empty tasks: the scheduler
     * spent 210-228 ns of CPU a task, 231-309 with all on one line). */
    __attribute__((aligned(64))) _Atomic uint32_t finished;
    _Atomic uint32_t finished_waiters; /* other cores asleep until finished moves */

    /* Written by the core. The watchdog's report (any AICPU thread, or
     * the device's crash handler) reads func_id and task_id while
     * in_kernel is set (and kernel_addr, for a crash report). */
    __attribute__((aligned(64))) _Atomic uint32_t ack;
    _Atomic uint32_t in_kernel;
    _Atomic uint32_t func_id;
    _Atomic uint64_t task_id;
    _Atomic uint64_t kernel_addr;   /* for crash reports: which kernel */
} simpler_mailbox;

/* What the host asks for; a platform turns it into a simpler_launch. */
typedef struct simpler_launch_params {
    uint32_t runtime;               /* simpler_runtime_kind */
    uint32_t block_dim;
    uint32_t aicpu_thread_num;
    uint32_t scheduler_timeout_ms;
    uint32_t extra_threads;         /* AICPU threads beyond the schedulers (an orchestrator) */
    uint32_t reserved;
    uint64_t image_addr;            /* the runtime's graph image or run block in GM */
    uint64_t trace_addr;            /* a simpler_trace in GM, or 0: no tracing */
    uint64_t failure_addr;          /* a simpler_failure_report in GM the platform fills if the launch fails, or 0 */
} simpler_launch_params;

typedef struct simpler_launch {
    simpler_launch_params p;
    uint32_t num_cores;             /* 3 * block_dim */
    simpler_mailbox *mailboxes;     /* the device's cores, [num_cores] in use */
    simpler_trace *trace;           /* p.trace_addr, or NULL */
    /* One per AICPU thread: schedulers first, then any extra threads. */
    simpler_event thread_events[SIMPLER_MAX_AICPU_THREADS + 1];

    /* Results: the first failure wins the status and writes the message. */
    _Atomic int32_t status;
    _Atomic uint32_t abort;
    _Atomic uint64_t tasks_completed;
    _Atomic uint64_t blocks_completed;  /* progress, for the watchdogs */
    /* Tasks the launch knows of: host_build_graph's whole graph, stored as
     * its schedulers start; tensormap_and_ringbuffer's, counted as its
     * orchestrator publishes them (progress for the watchdogs too). */
    _Atomic uint64_t tasks_submitted;
    char message[SIMPLER_LAUNCH_MESSAGE_MAX];
} simpler_launch;

/* Entry points the platform looks up by name. */
typedef int (*simpler_aicpu_main_fn)(simpler_launch *launch, uint32_t thread_idx);
typedef void (*simpler_aicore_main_fn)(simpler_mailbox *mailbox);

#define SIMPLER_AICPU_MAIN_SYMBOL "simpler_aicpu_main"
#define SIMPLER_AICORE_MAIN_SYMBOL "simpler_aicore_main"

#endif
