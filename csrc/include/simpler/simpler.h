/*
 * simpler/simpler.h: the host API.
 *
 * A device context owns one chip (a platform + a device id) and one runtime.
 * Every fallible call returns SIMPLER_OK or a negative simpler_error;
 * simpler_strerror() says what the code means, simpler_err_name() gives its
 * name ("SIMPLER_E_TIMEOUT"), and simpler_last_error() gives the
 * message of the last failure on the calling thread.
 *
 * Device addresses are opaque 64-bit numbers: only the simpler_gm_* calls
 * may read or write the memory behind them.
 *
 * This header is parsed by cffi (see simpler/_build_ffi.py): keep it to
 * plain declarations.
 */
#ifndef SIMPLER_SIMPLER_H
#define SIMPLER_SIMPLER_H

#include <stdint.h>
#include "simpler/types.h"

#define SIMPLER_VERSION_MAJOR 0
#define SIMPLER_VERSION_MINOR 1

typedef enum simpler_error {
    SIMPLER_OK = 0,
    SIMPLER_E_INVALID_ARGUMENT = -1,   /* a bad pointer, size, id or value */
    SIMPLER_E_NO_HOST_MEMORY = -2,     /* host malloc failed */
    SIMPLER_E_OUT_OF_MEMORY = -3,      /* device GM exhausted */
    SIMPLER_E_INVALID_CALLABLE = -4,   /* malformed or unloadable callable */
    SIMPLER_E_ORCHESTRATION = -5,      /* the orchestration function failed */
    SIMPLER_E_TIMEOUT = -6,            /* watchdog or deadline fired */
    SIMPLER_E_DEVICE_LOST = -7,        /* the device is gone or unusable */
    SIMPLER_E_NOT_FOUND = -8,          /* no such callable or allocation */
    SIMPLER_E_EXISTS = -9,             /* id already in use */
    SIMPLER_E_STATE = -10,             /* call not valid in this state */
    SIMPLER_E_UNSUPPORTED = -11,       /* platform or runtime not available */
    SIMPLER_E_CAPACITY = -12,          /* graph larger than the set capacity */
    SIMPLER_E_SYSTEM = -13,            /* an operating-system call failed */
    SIMPLER_E_INTERRUPTED = -14        /* the caller's poll asked to stop (an interrupt) */
} simpler_error;

typedef struct simpler_device simpler_device;

/* Options fixed for the lifetime of a device context. Zero means default. */
typedef struct simpler_device_options {
    uint64_t gm_capacity;       /* bytes of GM; default 16 GiB (reserved lazily) */
} simpler_device_options;

/* Per-run settings. Zero means default. */
typedef struct simpler_run_config {
    uint32_t block_dim;             /* clusters in use (1 AIC + 2 AIV each); default: host cores / 2, at least 1 */
    uint32_t aicpu_thread_num;      /* AICPU scheduler threads; default 2 */
    uint32_t scheduler_timeout_ms;  /* no task finished for this long: timeout; default 30000 */
    uint32_t max_tasks;             /* host_build_graph capacity in tasks; default 4194304 */
    /* tensormap_and_ringbuffer rings, per scope depth; 0 takes the
     * environment (SIMPLER_TASK_RING_SIZE, SIMPLER_DEP_POOL_SIZE,
     * SIMPLER_HEAP_RING_SIZE) or the default. */
    uint32_t task_ring_size;        /* task slots; default 1024, at most 32768 */
    uint32_t dep_pool_size;         /* dependency list nodes; default 65536 */
    uint64_t heap_ring_size;        /* bytes for OUTPUT tensors; default 16 MiB */
    /* Record a trace of up to this many events (and edges): each task's
     * blocks on their cores, scheduler sleeps, the orchestrator; read it
     * with simpler_last_trace. 0: no trace, at no cost. */
    uint32_t trace_events;
    uint32_t reserved;
} simpler_run_config;

/* One argument of a run, matched against the callable's signature entry of
 * the same position (the signature says which are tensors and scalars and
 * how tensors are used). */
typedef enum simpler_arg_kind {
    SIMPLER_ARG_HOST_TENSOR = 1,    /* host memory; staged in and out by simpler_run */
    SIMPLER_ARG_DEVICE_TENSOR = 2,  /* already in GM: tensor.addr is a device address */
    SIMPLER_ARG_SCALAR = 3
} simpler_arg_kind;

typedef struct simpler_arg {
    uint32_t kind;
    uint32_t reserved;
    void *host;                /* HOST_TENSOR: C-contiguous data */
    uint64_t scalar;           /* SCALAR: the value's bits */
    simpler_tensor tensor;     /* tensors: dtype, ndim, shape (and addr for DEVICE) */
} simpler_arg;

/* Counters a test or a tool can watch. */
typedef struct simpler_device_stats {
    uint64_t gm_capacity;
    uint64_t committed_bytes;      /* GM bytes allocated now */
    uint64_t peak_committed_bytes;
    uint64_t live_allocations;
    uint64_t registered_callables;
    uint64_t loaded_objects;       /* shared objects currently loaded for callables */
    uint64_t runs;
    uint64_t tasks_completed;
    uint64_t core_threads;         /* AICore threads alive */
    uint64_t aicpu_threads;        /* AICPU threads alive */
    uint64_t core_resets;          /* cores restarted after a timeout */
    uint64_t orchestration_loads;  /* orchestrations loaded where they run (host or AICPU), one per distinct callable content */
    uint64_t callable_buffers;     /* distinct callables held in GM (shared by registrations) */
    uint64_t callable_uploads;     /* callable blobs ever uploaded */
    uint64_t last_run_tasks;       /* tasks the last run submitted */
    uint64_t last_run_orchestration_ns; /* time its orchestration function took (submits included) */
    uint64_t last_run_wait_ns;     /* of which the orchestrator waited for ring space */
    /* The last tensormap_and_ringbuffer run's high-water marks. */
    uint64_t last_run_peak_tasks;  /* task slots in use */
    uint64_t last_run_peak_heap_bytes; /* of one scope depth's heap ring */
    uint64_t last_run_peak_regions;    /* live tensor-map regions */
    uint64_t last_run_ring_waits;      /* times the orchestrator waited for ring space */
    uint64_t run_block_bytes;      /* of committed_bytes, GM kept from one run for the next (freed at finalize) */
    uint64_t host_cache_bytes;     /* host memory the runtime keeps from one run for the next (freed at finalize) */
    uint64_t recorded_graphs;      /* graphs recorded and not released */
    /* onboard only (0 on sim) */
    uint64_t device_pid;               /* the simpler-device process */
    uint64_t device_clients;           /* host processes connected to it */
    uint64_t device_committed_bytes;   /* GM in use by all of them */
    uint64_t device_binary_installs;   /* AICPU runtimes it installed into the store */
    uint64_t device_executor_loads;    /* distinct AICore executors it loaded */
    uint64_t aicpu_uploads;            /* AICPU runtime uploads by this host process */
    uint64_t executor_registrations;   /* AICore executor registrations by this context */
    uint64_t device_context_pid;       /* the process running this worker's kernels (its device context), 0: none yet */
    /* peer memory (simpler_peer_window_open) */
    uint64_t peer_windows;             /* windows this device holds open onto other devices' GM */
    uint64_t device_peer_windows;      /* of which the platform has mapped for its kernels (onboard: its context's) */
} simpler_device_stats;

/* A device process as `python -m simpler device status` shows it. */
typedef struct simpler_onboard_info {
    int32_t running;
    uint32_t pid;
    uint32_t clients;                  /* host processes connected, besides the one asking */
    uint32_t core_threads;
    uint64_t gm_capacity;
    uint64_t committed_bytes;
    uint64_t uptime_ms;
    uint64_t launches;
} simpler_onboard_info;

/* Fault injection, for testing error paths (the "faulty:<platform>"
 * platform, which wraps any other and forwards every operation). Armed
 * with kinds and nth, it fails the nth operation of those kinds from then
 * on, once, with a real error code and a message saying it was injected:
 * GM_ALLOC OUT_OF_MEMORY; COPY (either direction, or a peer copy) SYSTEM; CALLABLE_LOAD
 * INVALID_CALLABLE; LAUNCH (the launch does not start) DEVICE_LOST, and
 * the context is lost; WAIT (the launch starts, is cancelled through the
 * poll, and its wait fails) TIMEOUT, the context stays usable. */
#define SIMPLER_FAULT_GM_ALLOC 1
#define SIMPLER_FAULT_COPY 2
#define SIMPLER_FAULT_CALLABLE_LOAD 4
#define SIMPLER_FAULT_LAUNCH 8
#define SIMPLER_FAULT_WAIT 16
#define SIMPLER_FAULT_ALL 31

typedef struct simpler_fault_counts {
    uint64_t ops;                  /* operations of the armed kinds from arming until it fired */
    uint64_t fired;                /* faults injected in this context's life */
    uint64_t pending;              /* 1 while armed and not yet fired */
} simpler_fault_counts;

/* A waiting call (a run, a registration that launches on the device)
 * calls this on its own thread about every 50 ms; a non-zero return
 * cancels what it waits for as the watchdog would (the cores are reset, or
 * the host orchestration is stopped) and the call returns
 * SIMPLER_E_INTERRUPTED, with the worker still usable (or
 * SIMPLER_E_DEVICE_LOST when a core cannot be stopped). Python's binding
 * checks for signals here, so Ctrl-C stops a run. */
typedef int (*simpler_poll_fn)(void *ctx);

const char *simpler_strerror(int code);
/* "SIMPLER_E_TIMEOUT" for SIMPLER_E_TIMEOUT; never NULL (an unknown code
 * gives "(not a simpler_error code)"). */
const char *simpler_err_name(int code);
const char *simpler_last_error(void);

int simpler_device_create(simpler_device **out);
int simpler_device_init(simpler_device *dev, const char *platform, const char *runtime,
                        int32_t device_id, const simpler_device_options *options);
int simpler_device_finalize(simpler_device *dev);
void simpler_device_destroy(simpler_device *dev);
/* The poll for this context's waits (NULL: none, the default). */
int simpler_device_set_poll(simpler_device *dev, simpler_poll_fn fn, void *ctx);
int simpler_device_stats_get(simpler_device *dev, simpler_device_stats *out);
/* The executing run's tasks finished and submitted so far (a host-built
 * graph's are all submitted as it starts; a device orchestration's grow
 * as it submits), as the platform last saw them: sim before each poll,
 * onboard from the device's progress messages (about once a second).
 * Once the run is done, its final counts; before the first, 0 and 0. It
 * reads two counters and takes no lock: call it from the poll, or from
 * any thread while the context is not destroyed. */
int simpler_device_progress(simpler_device *dev, uint64_t *tasks_done, uint64_t *tasks_submitted);
int simpler_committed_memory(simpler_device *dev, uint64_t *bytes_out);

int simpler_gm_alloc(simpler_device *dev, uint64_t size, uint64_t *addr_out);
int simpler_gm_free(simpler_device *dev, uint64_t addr);
int simpler_gm_copy_to_device(simpler_device *dev, uint64_t dst, const void *src, uint64_t size);
int simpler_gm_copy_from_device(simpler_device *dev, void *dst, uint64_t src, uint64_t size);

/*
 * Peer memory: between devices of this process open on the same platform
 * (else SIMPLER_E_UNSUPPORTED naming both platforms). Each range lies
 * inside one live allocation of its device (else
 * SIMPLER_E_INVALID_ARGUMENT naming the device and the range); a lost
 * device is SIMPLER_E_DEVICE_LOST.
 */
/* Copy GM to GM directly (no staging buffer); dst == src with
 * overlapping ranges copies as memmove does. */
int simpler_gm_copy_peer(simpler_device *dst, uint64_t dst_addr, simpler_device *src, uint64_t src_addr,
                         uint64_t size);
/* Make size bytes of peer's GM at peer_addr readable and writable by
 * dev's kernels; *addr_out is the address they use (pass it as a scalar).
 * It waits for dev's executing run. While the window is open the
 * allocation cannot be freed (simpler_gm_free: SIMPLER_E_STATE naming
 * dev); finalizing either device closes it. */
int simpler_peer_window_open(simpler_device *dev, simpler_device *peer, uint64_t peer_addr, uint64_t size,
                             uint64_t *addr_out);
/* Close a window dev opened (addr: its *addr_out); SIMPLER_E_NOT_FOUND if
 * dev has none there. dev's kernels must not touch it after. */
int simpler_peer_window_close(simpler_device *dev, uint64_t addr);

/*
 * ChipCallable blobs. A blob holds the orchestration shared object, its
 * kernels and the run signature; its format is private to the library
 * (csrc/callable/callable.h): build one from a description, read what a
 * caller needs back with simpler_callable_inspect.
 */
#define SIMPLER_CALLABLE_SCALAR 16          /* a run-signature entry's kind for a scalar */
#define SIMPLER_CALLABLE_MAX_ARGS 256
#define SIMPLER_CALLABLE_MAX_KERNELS 4096
#define SIMPLER_CALLABLE_MAX_NAME 255       /* bytes of an entry or kernel name */
#define SIMPLER_CALLABLE_MAX_FUNC_ID 65535

/* One entry of a run signature: kind is the simpler_tag of a run argument
 * (INPUT, OUTPUT_EXISTING, INOUT or NO_DEP; tensors first) or
 * SIMPLER_CALLABLE_SCALAR; dtype a simpler_dtype the argument must have, 0
 * for any. */
typedef struct simpler_callable_arg {
    uint32_t kind;
    uint32_t dtype;
} simpler_callable_arg;

/* A kernel (CoreCallable). Names are NUL-terminated C identifiers of at
 * most SIMPLER_CALLABLE_MAX_NAME bytes; name may be NULL or "". */
typedef struct simpler_kernel_desc {
    uint32_t func_id;               /* at most SIMPLER_CALLABLE_MAX_FUNC_ID, unique in the callable */
    uint32_t core_type;             /* simpler_core_type */
    uint32_t num_tensors;           /* at most SIMPLER_MAX_TASK_TENSORS */
    uint32_t num_scalars;           /* at most SIMPLER_MAX_TASK_SCALARS */
    const uint32_t *tags;           /* num_tensors simpler_tag values */
    const void *binary;             /* the kernel's ELF shared object */
    uint64_t binary_size;
    const char *entry;              /* its entry function */
    const char *name;
} simpler_kernel_desc;

typedef struct simpler_callable_desc {
    const void *orchestration;      /* the orchestration's ELF shared object */
    uint64_t orchestration_size;
    const char *entry;              /* its entry function */
    uint32_t num_args;              /* at most SIMPLER_CALLABLE_MAX_ARGS */
    uint32_t num_kernels;           /* at most SIMPLER_CALLABLE_MAX_KERNELS */
    const simpler_callable_arg *args;
    const simpler_kernel_desc *kernels;
} simpler_callable_desc;

/* What simpler_callable_inspect reports of a blob. */
typedef struct simpler_callable_summary {
    uint32_t num_args;
    uint32_t num_kernels;
    uint32_t num_tensor_args;
    uint32_t num_scalar_args;
    uint64_t orchestration_size;
} simpler_callable_summary;

/* Lay out the blob desc describes. *size_out is its size; it is written to
 * out if capacity suffices (out NULL asks for the size only). Every field
 * is checked (SIMPLER_E_INVALID_ARGUMENT names the bad one); the objects'
 * ELF contents are checked when the blob is validated or registered.
 * Kernels holding the same bytes share one stored copy. */
int simpler_callable_build(const simpler_callable_desc *desc, void *out, uint64_t capacity,
                           uint64_t *size_out);
/* SIMPLER_E_INVALID_CALLABLE, with a message naming the bad field, for a
 * malformed blob. */
int simpler_callable_validate(const void *blob, uint64_t size);
/* Validate a blob and describe it: its counts in *out, and its first
 * min(num_args, max_args) signature entries in args (NULL if max_args is 0). */
int simpler_callable_inspect(const void *blob, uint64_t size, simpler_callable_summary *out,
                             simpler_callable_arg *args, uint32_t max_args);
/* A kernel of a blob as simpler_callable_kernels reports it. */
typedef struct simpler_callable_kernel_info {
    uint32_t func_id;
    uint32_t core_type;             /* simpler_core_type */
    char name[SIMPLER_CALLABLE_MAX_NAME + 1];   /* its name, or its entry when it has none */
} simpler_callable_kernel_info;
/* Validate a blob and describe its first min(num_kernels, max_kernels)
 * kernels in out, in the blob's order (*count_out: how many it holds). */
int simpler_callable_kernels(const void *blob, uint64_t size, simpler_callable_kernel_info *out,
                             uint32_t max_kernels, uint32_t *count_out);
int simpler_callable_register(simpler_device *dev, uint32_t callable_id,
                              const void *blob, uint64_t size);
int simpler_callable_unregister(simpler_device *dev, uint32_t callable_id);
/* Where a registration's callable lives in GM (shared by every
 * registration of the same content). */
int simpler_callable_buffer(simpler_device *dev, uint32_t callable_id, uint64_t *addr_out, uint64_t *size_out);

int simpler_run(simpler_device *dev, uint32_t callable_id, const simpler_arg *args,
                uint32_t num_args, const simpler_run_config *config);

/*
 * Runs in flight. simpler_run is prepare, execute, free. Split, a run is
 * prepared on one thread (its arguments checked, host tensors staged:
 * inputs are copied, so their memory may be reused once it returns; a
 * host-built graph is orchestrated and uploaded) while the run before it
 * executes on another. Runs of a device execute in the order they were
 * prepared: simpler_run_execute waits for the runs before it. Outputs are
 * copied back to the host pointers given at prepare when the run has
 * executed, not before: their memory must stay valid until then.
 * At most max_inflight runs (default 2, 1..8) are prepared and not yet
 * done: one more is SIMPLER_E_STATE. Unregistering a callable with runs
 * in flight is SIMPLER_E_STATE; finalize discards runs not yet executed
 * (their execute is then SIMPLER_E_STATE; free them still).
 */
typedef struct simpler_run_handle simpler_run_handle;

int simpler_run_prepare(simpler_device *dev, uint32_t callable_id, const simpler_arg *args, uint32_t num_args,
                        const simpler_run_config *config, simpler_run_handle **out);
/* Launch it when the runs before it are done, wait, copy outputs back. A
 * run cancelled before it started returns SIMPLER_E_INTERRUPTED at once;
 * one cancelled while it runs is stopped as an interrupt stops it. */
int simpler_run_execute(simpler_run_handle *run);
/* Ask the run to stop (or never to start); thread-safe, returns at once. */
void simpler_run_cancel(simpler_run_handle *run);
/* Release it; a run not executed gives back what it staged. NULL: nothing.
 * SIMPLER_E_STATE (and nothing freed) while it executes. */
int simpler_run_free(simpler_run_handle *run);

/*
 * Recorded graphs. simpler_graph_record runs a callable once, as
 * simpler_run does, and keeps the task graph its orchestration made; a
 * replay (prepare, execute, free: a run in flight like any other) launches
 * that graph again with new arguments without running the orchestration
 * or deriving a dependency. Tensor arguments must have the recorded
 * shapes and dtypes (their data and addresses may differ); a scalar
 * argument reaches the kernels it was passed to as their scalar, and one
 * the graph depends on (its tasks, their tensors or other scalars) must
 * have its recorded value. Each is SIMPLER_E_INVALID_ARGUMENT naming the
 * argument. The settings are the recorded run's. A graph is released
 * with simpler_graph_release or with its callable (unregister); runs of
 * it in flight make both SIMPLER_E_STATE. Ids are the device's, from 1.
 */
typedef struct simpler_graph_info {
    uint32_t callable_id;
    uint32_t num_tasks;
    uint64_t num_edges;
    uint64_t image_bytes;           /* the image a replay uploads */
    uint64_t held_bytes;            /* GM of the tensors the orchestration made, kept with the graph */
    uint32_t num_patches;           /* argument sites written per replay */
    uint32_t fixed_scalars;         /* bit k: scalar argument k must keep its recorded value (k < 32) */
} simpler_graph_info;

int simpler_graph_record(simpler_device *dev, uint32_t callable_id, const simpler_arg *args, uint32_t num_args,
                         const simpler_run_config *config, uint32_t *graph_id);
int simpler_graph_prepare(simpler_device *dev, uint32_t graph_id, const simpler_arg *args, uint32_t num_args,
                          simpler_run_handle **out);
int simpler_graph_run(simpler_device *dev, uint32_t graph_id, const simpler_arg *args, uint32_t num_args);
int simpler_graph_release(simpler_device *dev, uint32_t graph_id);
int simpler_graph_info_get(simpler_device *dev, uint32_t graph_id, simpler_graph_info *out);

int simpler_device_set_max_inflight(simpler_device *dev, uint32_t max_inflight);
int simpler_device_max_inflight(simpler_device *dev, uint32_t *out);

/* Arm the fault platform (nth 0 disarms); other platforms:
 * SIMPLER_E_UNSUPPORTED. The counts can be read even once the context
 * is lost. */
int simpler_device_inject_fault(simpler_device *dev, uint32_t kinds, uint64_t nth);
int simpler_device_fault_counts(simpler_device *dev, simpler_fault_counts *out);

/*
 * What the cores held when a run failed in its launch (a timeout, an
 * error of a device orchestration, an interrupt, a crashing kernel on
 * onboard): the tasks running in a kernel, the tasks posted to a core
 * behind them with the producers they wait for, and the last few each
 * core finished, as the schedulers had handed them out. Tasks a
 * scheduler had not yet handed to a core are not in it. Bounded: at most
 * SIMPLER_REPORT_MAX_TASKS tasks, each with its first
 * SIMPLER_REPORT_TENSORS tensors and SIMPLER_REPORT_SCALARS scalars (its
 * counts say how many it has).
 */
#define SIMPLER_REPORT_MAGIC 0x53464c52u   /* "RLFS": the report was written */
#define SIMPLER_REPORT_MAX_TASKS 32
#define SIMPLER_REPORT_TENSORS 4
#define SIMPLER_REPORT_SCALARS 8
#define SIMPLER_REPORT_WAITS 4
#define SIMPLER_REPORT_RECENT 4             /* finished tasks per core, at most */
#define SIMPLER_REPORT_NAME 64

typedef enum simpler_report_state {
    SIMPLER_REPORT_RUNNING = 1,     /* in its kernel */
    SIMPLER_REPORT_POSTED = 2,      /* handed to a core, not started */
    SIMPLER_REPORT_FINISHED = 3
} simpler_report_state;

typedef struct simpler_report_task {
    uint64_t task_id;
    uint64_t waits_for[SIMPLER_REPORT_WAITS];   /* unfinished producers on other cores (task ids) */
    uint64_t scalars[SIMPLER_REPORT_SCALARS];
    simpler_tensor tensors[SIMPLER_REPORT_TENSORS];
    uint32_t state;                 /* simpler_report_state */
    uint32_t core;
    uint32_t func_id;
    uint32_t block_idx;
    uint32_t block_num;
    uint32_t num_tensors;           /* the task's; the first SIMPLER_REPORT_TENSORS are above */
    uint32_t num_scalars;
    uint32_t num_waits;
    uint32_t seq;                   /* its place on its core: a core runs its tasks in seq order */
    uint32_t reserved;
    char kernel[SIMPLER_REPORT_NAME];   /* its kernel's name, "" if unknown */
} simpler_report_task;

typedef struct simpler_failure_report {
    uint32_t magic;                 /* SIMPLER_REPORT_MAGIC once written */
    int32_t status;                 /* the launch's error */
    uint32_t num_tasks;
    uint32_t tasks_left_out;        /* that did not fit */
    uint64_t tasks_completed;
    uint64_t tasks_submitted;
    simpler_report_task tasks[SIMPLER_REPORT_MAX_TASKS];
} simpler_failure_report;

/* The report of the last run that failed in its launch; *found 0 when the
 * last failed run failed before it launched (its arguments, a host
 * orchestration) or no run failed. Readable after the failure that lost
 * the device, too. */
int simpler_last_failure(simpler_device *dev, simpler_failure_report *out, int32_t *found);

/* The trace of the last run that asked for one (its layout:
 * simpler/trace.h): copied into buf if size suffices; *size_out is its
 * size (0 if there is none). */
int simpler_last_trace(simpler_device *dev, void *buf, uint64_t size, uint64_t *size_out);

/* The onboard platform's device process, by hand. A worker starts it on
 * first use anyway; these start one with settings (gm_capacity 0 and
 * idle_timeout_s 0 take the defaults), report on it, and stop it (force:
 * even while other host processes use it). */
int simpler_onboard_start(int32_t device_id, uint64_t gm_capacity, double idle_timeout_s);
int simpler_onboard_status(int32_t device_id, simpler_onboard_info *out);
int simpler_onboard_stop(int32_t device_id, int32_t force);

#endif
