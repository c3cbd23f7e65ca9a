/*
 * tensormap_and_ringbuffer: what the host lays out in GM for the AICPU.
 *
 * Registration uploads a kernel table (tmr_callable) beside the callable's
 * shared buffer in GM, and a load launch has the AICPU open the
 * orchestration straight from that buffer. A run gets one block of GM
 * (tmr_run) holding its arguments and every ring:
 *
 *   tmr_run | task rings [TMR_DEPTHS][task_ring] | heap rings [TMR_DEPTHS][heap_ring]
 *           | dependency node pool [dep_pool] | ready queues [2][queue_cap] (u64 cells)
 *
 * Rings are per scope depth (scopes deeper than TMR_DEPTHS - 1 share the
 * last), so an inner scope's tasks and buffers are reclaimed while an
 * outer scope is still open.
 */
#ifndef SIMPLER_TMR_LAYOUT_H
#define SIMPLER_TMR_LAYOUT_H

#include <stdatomic.h>
#include <stdint.h>

#include "simpler/types.h"

#define TMR_DEPTHS 4
/* Arguments a task slot holds itself. A task with more (up to
 * SIMPLER_MAX_TASK_TENSORS and _SCALARS) keeps them in a block of its
 * depth's heap ring, freed when the task finishes: a slot sized for the
 * limit would take ~7 KiB instead of ~2 for every task. */
#define TMR_INLINE_TENSORS 16
#define TMR_INLINE_SCALARS 16
#define TMR_MAX_RING_SLOTS 32768     /* task handles keep 15 bits of slot */
#define TMR_NONE UINT32_MAX

/* A kernel as the orchestrator checks tasks against it. */
typedef struct tmr_kernel {
    uint64_t addr;
    uint32_t func_id;
    uint32_t core_type;
    uint32_t num_tensors;
    uint32_t num_scalars;
    uint8_t tags[SIMPLER_MAX_TASK_TENSORS];
    char name[64];
} tmr_kernel;

/* Registration record, in GM for the life of the registration. */
typedef struct tmr_callable {
    char orch_entry[256];           /* its name, for messages */
    uint64_t kernels_addr;          /* tmr_kernel[num_kernels] */
    uint64_t func_index_addr;       /* int32[max_func_id + 1]: kernel index or -1 */
    uint32_t num_kernels;
    uint32_t max_func_id;
    uint64_t input_tensors[4];      /* bit i: run tensor i is declared "in" (tensors come first) */
    /* The orchestration's entry point, opened by the platform with the kernels. */
    uint64_t orch_fn;
} tmr_callable;

static inline int tmr_input_tensor(const tmr_callable *c, uint32_t i)
{
    return i < 256 && (c->input_tensors[i / 64] >> (i % 64) & 1);
}

/* Producers' places a task keeps for its wait as a follower. */
#define TMR_WAITS 4
#define TMR_POSTED (1ull << 63)

/* A task slot. id is the task's sequence number + 1 (0: never used); the
 * slot is reused only after the task completed and its scope ended. */
typedef struct tmr_task {
    /* As a simpler_run_entry (device_abi.h), with absolute addresses (a
     * run's base is 0): a core reads a run of tasks straight from the
     * ring. The arguments: in the slot below, or in a heap-ring block of
     * their own (args_block, its data) for a task with more than fit. */
    uint64_t kernel_addr;
    simpler_tensor *tensors;
    uint64_t *scalars;
    uint32_t num_tensors;
    uint32_t num_scalars;
    /* Atomic, as seq: a scheduler holding a stale queue entry reads it
     * (take_run's run forming) while the orchestrator may be refilling
     * the slot; its claim then fails, and the value read goes unused. */
    _Atomic uint32_t func_id;
    uint32_t core_type;
    _Atomic uint64_t seq;
    _Atomic uint32_t lock;          /* guards fanout and completed */
    _Atomic uint32_t completed;
    _Atomic uint32_t pending;       /* predecessors left, + 1 while being submitted */
    _Atomic uint32_t blocks_done;
    /* Claiming blocks: generation (16) | block_num (16) | next block (32).
     * A scheduler holding a stale queue entry sees another generation and
     * claims nothing: the slot may have been reused by then. */
    _Atomic uint64_t claim;
    uint32_t fanout;                /* first dependency node, TMR_NONE for none */
    uint32_t generation;            /* for task handles */
    uint32_t block_num;
    uint32_t depth;                 /* scope depth it was submitted at (0: top level) */
    uint64_t heap_mask;             /* tensors whose base is a heap-ring buffer */
    uint64_t scope;                 /* which instance of that depth's scopes */
    uint64_t stamp;                 /* orchestrator: last consumer linked (its seq + 1), for dedup */
    /* Where the task went, for its consumers' waits: TMR_POSTED | core <<
     * 32 | seq once a scheduler posted it whole (under lock), else 0. */
    uint64_t posted_at;
    /* Producers not yet posted, + 1 while being submitted. A single-block
     * producer tells the first SCHED_FOLLOW_SCAN consumers in its fanout
     * when it is posted, and a consumer linked later reads posted_at;
     * 0 means the task may follow its producers (sched_loop.c). */
    _Atomic uint32_t unposted;
    _Atomic uint32_t num_waits;     /* entries written to waits (may pass TMR_WAITS) */
    uint64_t waits[TMR_WAITS];      /* where its producers went: core << 32 | seq */
    uint64_t args_block;            /* 0, or that block's data address */
    simpler_tensor inline_tensors[TMR_INLINE_TENSORS];
    uint64_t inline_scalars[TMR_INLINE_SCALARS];
} tmr_task;

/* Every heap-ring buffer starts with this header; the data follows. users
 * counts the submitted tasks that reference the buffer and have not
 * finished: the buffer is freed once its scope ended and users is 0. */
#define TMR_HEAP_HEADER 64
typedef struct tmr_heap_header {
    _Atomic uint32_t users;
} tmr_heap_header;

/* A task handle: ring depth, slot and the slot's generation, so a handle
 * to a reused slot is recognisably stale. Never equal to TMR_NONE. */
static inline uint32_t tmr_handle(uint32_t ring_depth, uint32_t slot, uint32_t generation)
{
    return ring_depth << 29 | slot << 14 | (generation & 0x3FFFu);
}
static inline uint32_t tmr_handle_depth(uint32_t h) { return h >> 29; }
static inline uint32_t tmr_handle_slot(uint32_t h) { return (h >> 14) & 0x7FFFu; }
static inline uint32_t tmr_handle_gen(uint32_t h) { return h & 0x3FFFu; }

/* A successor in a producer's fanout list. */
typedef struct tmr_dep_node {
    uint32_t consumer;              /* task handle */
    _Atomic uint32_t next;
} tmr_dep_node;

/* Ring settings; zero means default. */
typedef struct tmr_sizes {
    uint32_t task_ring;             /* task slots per scope depth */
    uint32_t dep_pool;              /* dependency nodes */
    uint64_t heap_ring;             /* bytes of OUTPUT buffers per scope depth */
} tmr_sizes;

typedef struct tmr_run {
    uint64_t callable_addr;         /* tmr_callable */
    uint64_t tensors_addr;          /* the run's simpler_tensor[num_tensors] */
    uint64_t scalars_addr;
    uint32_t num_tensors;
    uint32_t num_scalars;
    tmr_sizes sizes;
    uint32_t queue_cap;             /* power of two >= every task slot */
    uint32_t reserved;
    uint64_t tasks_off, heap_off, deps_off, queue_off;  /* from this block's start */
    /* A recording run: where the orchestrator appends each task it
     * submits (tmr_capture_task records), 0 for none. */
    uint64_t capture_addr, capture_cap;
    uint64_t capture_used;          /* orchestrator only */
    uint32_t capture_overflow;      /* a record did not fit */
    uint32_t capture_tasks;

    /* Shared while running. */
    _Atomic uint64_t submitted;     /* tasks published */
    _Atomic uint32_t submit_done;   /* the orchestration returned */
    _Atomic uint64_t queue_head[2];
    _Atomic uint64_t queue_tail[2];
    /* Dependency nodes schedulers freed; only the orchestrator takes them
     * (all at once), so the stack has one consumer and no ABA. */
    _Atomic uint32_t dep_free;
    /* The orchestrator, waiting for ring space, wants a signal once this
     * many tasks have completed (UINT64_MAX: it is not waiting). */
    _Atomic uint64_t wake_at;
    /* Figures for tests and the docs. */
    uint64_t peak_live_tasks;
    uint64_t peak_heap_bytes;
    uint64_t waits;                 /* times the orchestrator waited for a ring */
    uint64_t peak_regions;          /* live tensor-map regions */
    uint64_t orchestration_ns;      /* time in the orchestration function, waits included */
    uint64_t wait_ns;               /* of which waiting for ring space */
} tmr_run;

/* One submitted task as a recording captures it: the header, then
 * simpler_tensor[num_tensors] (OUTPUT addresses filled in), uint32
 * tags[num_tensors] padded to 8 bytes, uint64 scalars[num_scalars] and
 * the explicit predecessors as submit sequence numbers, uint64[num_deps]. */
typedef struct tmr_capture_task {
    uint32_t func_id, core_type, block_num;
    uint32_t num_tensors, num_scalars, num_deps;
} tmr_capture_task;

static inline uint64_t tmr_capture_bytes(uint32_t num_tensors, uint32_t num_scalars, uint32_t num_deps)
{
    return sizeof(tmr_capture_task) + (uint64_t)num_tensors * sizeof(simpler_tensor) +
           (((uint64_t)num_tensors * 4 + 7) & ~7ull) + 8ull * num_scalars + 8ull * num_deps;
}

/* Ready-queue cells start free for the first lap: cell i for position i
 * (see csrc/runtime/tensormap_and_ringbuffer/aicpu/scheduler.c). */
static inline uint64_t tmr_queue_bytes(const tmr_run *run) { return 2ull * run->queue_cap * sizeof(uint64_t); }

static inline void tmr_queue_init(const tmr_run *run, uint64_t *cells)
{
    for (uint64_t i = 0; i < 2ull * run->queue_cap; i++)
        cells[i] = (i % run->queue_cap) << 32;
}

static inline uint64_t tmr_align64(uint64_t x) { return (x + 63) & ~63ull; }

/* Lay out a run block: fills sizes, queue_cap and the offsets in *run and
 * the arguments' offsets; returns the block's size in bytes. */
static inline uint64_t tmr_layout(tmr_run *run, const tmr_sizes *sizes, uint32_t num_tensors, uint32_t num_scalars,
                                  uint64_t *tensors_off, uint64_t *scalars_off)
{
    uint64_t slots = (uint64_t)TMR_DEPTHS * sizes->task_ring;
    run->sizes = *sizes;
    run->queue_cap = 1;
    while (run->queue_cap < slots)
        run->queue_cap *= 2;
    uint64_t off = tmr_align64(sizeof *run);
    *tensors_off = off;
    off = tmr_align64(off + num_tensors * sizeof(simpler_tensor));
    *scalars_off = off;
    off = tmr_align64(off + num_scalars * sizeof(uint64_t));
    run->tasks_off = off;
    off = tmr_align64(off + slots * sizeof(tmr_task));
    run->heap_off = off;
    off = tmr_align64(off + TMR_DEPTHS * sizes->heap_ring);
    run->deps_off = off;
    off = tmr_align64(off + (uint64_t)sizes->dep_pool * sizeof(tmr_dep_node));
    run->queue_off = off;
    return off + tmr_queue_bytes(run);
}

#endif
