/*
 * A platform is this table of operations: the only way from the host down
 * to a device. sim implements it in-process; onboard through a driver
 * protocol. A fault-injecting test platform can wrap either.
 *
 * Every operation returns SIMPLER_OK or a simpler_error with the message
 * set (common/error.h).
 */
#ifndef SIMPLER_COMMON_PLATFORM_OPS_H
#define SIMPLER_COMMON_PLATFORM_OPS_H

#include <stdint.h>

#include "common/device_abi.h"
#include "simpler/simpler.h"

typedef struct platform_dev platform_dev;   /* a platform's own device state */

/* A kernel of a registered callable as the device sees it. */
typedef struct platform_kernel {
    uint64_t addr;                          /* callable on a core of the device */
} platform_kernel;

typedef struct platform_counters {
    uint64_t gm_capacity;
    uint64_t committed_bytes;
    uint64_t peak_committed_bytes;
    uint64_t live_allocations;
    uint64_t loaded_objects;
    uint64_t core_threads;
    uint64_t aicpu_threads;
    uint64_t core_resets;
    /* onboard only */
    uint64_t device_pid;
    uint64_t device_clients;
    uint64_t device_committed_bytes;
    uint64_t device_binary_installs;
    uint64_t device_executor_loads;
    uint64_t aicpu_uploads;
    uint64_t executor_registrations;
    uint64_t device_context_pid;
    uint64_t peer_windows;                  /* windows mapped for this device's kernels (peer_map) */
} platform_counters;

/* A launch's progress as its waiter last saw it, for
 * simpler_device_progress on any thread: the platform stores the launch's
 * tasks finished and known so far while it waits (sim before each poll;
 * onboard as the device's progress messages come, about once a second). */
typedef struct platform_progress {
    _Atomic uint64_t tasks_done;
    _Atomic uint64_t tasks_submitted;
} platform_progress;

/* What a launch's waiter checks between slices of its wait (simpler.h's
 * simpler_poll_fn and its context); fn NULL: nothing. */
typedef struct platform_poll {
    simpler_poll_fn fn;
    void *ctx;
    platform_progress *progress;    /* NULL: nobody watches */
    /* A failed launch's report goes to params.failure_addr in GM; a
     * platform whose GM may be gone before the host reads it (onboard,
     * a context that died) copies it here instead, magic set. NULL: none. */
    simpler_failure_report *failure;
    /* Poll once right after the launch starts, before any slice: the
     * fault platform cancels a launch this way the moment it is running. */
    int at_once;
} platform_poll;

/* callable_load flags. */
#define PLATFORM_LOAD_ORCHESTRATION 1u  /* the orchestration runs on the device, not the host */

/* How often a waiting launch calls its poll. */
#define PLATFORM_POLL_NS 50000000ull

typedef struct platform_ops {
    /* What platform_find matches; a name ending in ':' matches every name
     * it begins (faulty: wraps the platform named after the colon). */
    const char *name;
    /* name is the whole name the platform was found by; lib_dir holds
     * libsimpler_aicpu.so and libsimpler_aicore.so. */
    int (*open)(const char *name, int32_t device_id, const simpler_device_options *options, const char *lib_dir,
                platform_dev **out);
    void (*close)(platform_dev *dev);

    int (*gm_alloc)(platform_dev *dev, uint64_t size, uint64_t *addr_out);
    int (*gm_free)(platform_dev *dev, uint64_t addr);
    /* Size of the live allocation that starts at addr; 0 if there is none. */
    uint64_t (*gm_size_of)(platform_dev *dev, uint64_t addr);
    int (*copy_to_device)(platform_dev *dev, uint64_t dst, const void *src, uint64_t size);
    int (*copy_from_device)(platform_dev *dev, void *dst, uint64_t src, uint64_t size);

    /* Load the kernels of a validated callable blob onto the device; the
     * same bytes are already in GM at gm_addr. Fills kernels[i] for the
     * blob's kernel i. With PLATFORM_LOAD_ORCHESTRATION the device also
     * opens the blob's orchestration (in place, from those bytes) and
     * *orchestration_out is its entry point there; otherwise 0. *handle
     * releases them all. */
    int (*callable_load)(platform_dev *dev, const void *blob, uint64_t size, uint64_t gm_addr, uint32_t flags,
                         platform_kernel *kernels, uint64_t *orchestration_out, void **handle_out);
    void (*callable_release)(platform_dev *dev, void *handle);

    /* Start a run on the AICPU threads and wait for it, calling poll
     * (may be NULL) every PLATFORM_POLL_NS: when it says stop, the launch
     * is cancelled as the watchdog cancels it and SIMPLER_E_INTERRUPTED
     * returned. On failure the launch's status code and message are
     * returned, and the platform has already brought its cores back to
     * idle (or reports the device lost). */
    int (*launch)(platform_dev *dev, const simpler_launch_params *params, const platform_poll *poll);
    /* Non-zero: the other operations may be called, from another thread,
     * while a launch waits (the next run is staged meanwhile). Zero: a
     * launch has the device to itself. */
    int concurrent_launch;
    /* Non-zero: gm_alloc, gm_free and gm_host_view may be called from any
     * thread at any time, also during another operation (a host-built
     * graph streams its segments from its orchestration's thread while
     * the worker goes on). sim: its heap is locked and GM is this
     * process's memory. onboard: not (one request at a time, by the
     * worker), so its host-built graphs are built whole. */
    int concurrent_gm;

    /* Non-zero once the device cannot be used any more (a stuck core, a
     * scheduler that did not stop): every later call but close fails. */
    int (*is_lost)(platform_dev *dev);
    /* What lost it, when the platform saw it first (NULL or "": unknown);
     * may be NULL. The worker names it in every later call. */
    const char *(*lost_why)(platform_dev *dev);
    void (*counters)(platform_dev *dev, platform_counters *out);

    /* Optional (NULL: the platform has none; the API says UNSUPPORTED). */
    /* A device process managed by hand (simpler_onboard_*), outside any
     * context: only platforms whose device is a separate process. */
    int (*service_start)(const char *lib_dir, int32_t device_id, uint64_t gm_capacity, double idle_s);
    int (*service_status)(const char *lib_dir, int32_t device_id, simpler_onboard_info *out);
    int (*service_stop)(const char *lib_dir, int32_t device_id, int force);
    /* Peer memory (simpler_gm_copy_peer, simpler_peer_window_*). peer is
     * a device of the same platform (the worker checks), whose caller
     * holds its lock too. gm_host_view: where this process can touch
     * [addr, +size), which must lie inside one live allocation. peer_map:
     * make [peer_addr, +size) of peer's GM (likewise inside one
     * allocation) reachable by dev's kernels at *addr_out; peer_unmap
     * takes it away again (no launch of dev runs meanwhile). */
    int (*gm_host_view)(platform_dev *dev, uint64_t addr, uint64_t size, void **out);
    int (*peer_map)(platform_dev *dev, platform_dev *peer, uint64_t peer_addr, uint64_t size, uint64_t *addr_out);
    int (*peer_unmap)(platform_dev *dev, uint64_t addr);
    /* Fault injection (the faulty platform): fail the nth operation of the
     * kinds (SIMPLER_FAULT_*) from now on; nth 0 disarms. */
    int (*fault_arm)(platform_dev *dev, uint32_t kinds, uint64_t nth);
    void (*fault_counts)(platform_dev *dev, simpler_fault_counts *out);
} platform_ops;

/* The registry (common/platform_registry.c): the platform a name selects,
 * or NULL with the error set, naming the known platforms. */
const platform_ops *platform_find(const char *name);

/* A platform puts its table in the registry with PLATFORM_REGISTER(table)
 * beside its definition: the linker gathers the entries into one section,
 * so the host names no platform (platforms build on csrc/common, and
 * nothing in csrc points up at them). */
#define PLATFORM_REGISTER(table)                                                                    \
    static const platform_ops *const platform_entry_##table                                          \
        __attribute__((used, section("simpler_platforms"), aligned(__alignof__(void *)))) = &table

#endif
