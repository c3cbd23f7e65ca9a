/*
 * The sim platform: the whole chip inside the calling process.
 *
 * GM is one reserved mapping (pages are committed on first touch) managed
 * by the shared GM heap. The AICPU and the AICore are threads running the
 * code of libsimpler_aicpu.so and libsimpler_aicore.so, exactly as the
 * device would; threads are created on first use and kept for the life of
 * the device, sleeping in a futex while idle.
 */

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "callable/callable.h"
#include "common/error.h"
#include "common/gm_heap.h"
#include "common/platform_ops.h"
#include "common/so_load.h"

#define SIM_DEFAULT_GM_CAPACITY (16ull << 30)
/* A failed run's cores get this long to finish before they are stopped. */
#define SIM_CORE_GRACE_NS 200000000ull
/* The host's own deadline beyond the scheduler watchdog, and how often a
 * waiting host looks at progress. */
#define SIM_HOST_MARGIN_NS 10000000000ull
#define SIM_HOST_POLL_NS 1000000000ull
/* How long closing a lost device waits for each of its threads. */
#define SIM_LOST_JOIN_NS 200000000ull
/* How long a cancelled core has to exit. */
#define SIM_CANCEL_JOIN_NS 2000000000ull

typedef struct sim_core {
    struct platform_dev *dev;
    uint32_t idx;
    int running;                    /* thread started and not yet joined */
    pthread_t thread;
} sim_core;

typedef struct sim_aicpu {
    struct platform_dev *dev;
    uint32_t idx;
    pthread_t thread;
    simpler_event go;
} sim_aicpu;

struct platform_dev {
    int32_t device_id;
    uint8_t *gm;
    uint64_t gm_capacity;
    gm_heap heap;

    void *aicpu_so, *aicore_so;
    simpler_aicpu_main_fn aicpu_main;
    simpler_aicore_main_fn aicore_main;

    simpler_mailbox *mailboxes;     /* [SIMPLER_MAX_CORES] */
    sim_core cores[SIMPLER_MAX_CORES];
    uint32_t num_core_threads;
    sim_aicpu aicpu[SIMPLER_MAX_AICPU_THREADS + 1];
    uint32_t num_aicpu_threads;
    _Atomic uint32_t stopping;

    simpler_launch launch;
    _Atomic uint32_t running;       /* AICPU threads still in the launch */
    simpler_event done;

    _Atomic uint64_t loaded_objects;
    uint64_t core_resets;
    _Atomic int lost;               /* threads may still run device code: never unload it */
};

typedef struct sim_callable {
    uint32_t count;
    void *handles[];
} sim_callable;

static void *core_thread(void *arg)
{
    sim_core *c = arg;
    c->dev->aicore_main(&c->dev->mailboxes[c->idx]);
    return NULL;
}

static int start_core(platform_dev *d, uint32_t c)
{
    memset(&d->mailboxes[c], 0, sizeof d->mailboxes[c]);
    d->mailboxes[c].core = c;
    d->cores[c].dev = d;
    d->cores[c].idx = c;
    int e = pthread_create(&d->cores[c].thread, NULL, core_thread, &d->cores[c]);
    if (e)
        return simpler_fail(SIMPLER_E_SYSTEM, "sim: cannot start core thread %u: %s", c, strerror(e));
    d->cores[c].running = 1;
    return SIMPLER_OK;
}

static void *aicpu_thread(void *arg)
{
    sim_aicpu *a = arg;
    platform_dev *d = a->dev;
    uint32_t seen = 0;
    for (;;) {
        uint32_t seq = simpler_event_prepare(&a->go);
        if (seq == seen && !atomic_load(&d->stopping)) {
            simpler_event_sleep(&a->go, seq, 0);
            continue;
        }
        simpler_event_cancel(&a->go);
        seen = seq;
        if (atomic_load(&d->stopping))
            return NULL;
        d->aicpu_main(&d->launch, a->idx);
        if (atomic_fetch_sub(&d->running, 1) == 1)
            simpler_event_signal(&d->done);
    }
}

static int ensure_threads(platform_dev *d, uint32_t cores, uint32_t aicpus)
{
    int rc;
    while (d->num_core_threads < cores) {
        if ((rc = start_core(d, d->num_core_threads)))
            return rc;
        d->num_core_threads++;
    }
    while (d->num_aicpu_threads < aicpus) {
        sim_aicpu *a = &d->aicpu[d->num_aicpu_threads];
        a->dev = d;
        a->idx = d->num_aicpu_threads;
        int e = pthread_create(&a->thread, NULL, aicpu_thread, a);
        if (e)
            return simpler_fail(SIMPLER_E_SYSTEM, "sim: cannot start AICPU thread: %s", strerror(e));
        d->num_aicpu_threads++;
    }
    return SIMPLER_OK;
}

static void sim_close(platform_dev *d);

static int load_lib(const char *dir, const char *name, const char *sym, void **so, void **fn)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!*so)
        return simpler_fail(SIMPLER_E_SYSTEM, "sim: cannot load %s: %s", path, dlerror());
    *fn = dlsym(*so, sym);
    if (!*fn)
        return simpler_fail(SIMPLER_E_SYSTEM, "sim: %s has no %s", path, sym);
    return SIMPLER_OK;
}

static int sim_open(int32_t device_id, const simpler_device_options *options, const char *lib_dir,
                    platform_dev **out)
{
    platform_dev *d = calloc(1, sizeof *d);
    if (!d)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "sim: out of host memory");
    d->device_id = device_id;
    d->gm_capacity = options && options->gm_capacity ? options->gm_capacity : SIM_DEFAULT_GM_CAPACITY;
    d->gm_capacity = (d->gm_capacity + 4095) & ~4095ull;
    d->gm = mmap(NULL, d->gm_capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
    int rc;
    if (d->gm == MAP_FAILED) {
        rc = simpler_fail(SIMPLER_E_OUT_OF_MEMORY, "sim: cannot reserve %" PRIu64 " bytes of GM: %s",
                          d->gm_capacity, strerror(errno));
        d->gm = NULL;
        goto fail;
    }
    d->mailboxes = aligned_alloc(64, sizeof(simpler_mailbox) * SIMPLER_MAX_CORES);
    if (!d->mailboxes) {
        rc = simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "sim: out of host memory");
        goto fail;
    }
    if ((rc = gm_heap_init(&d->heap, (uint64_t)(uintptr_t)d->gm, d->gm_capacity)) ||
        (rc = load_lib(lib_dir, "libsimpler_aicpu.so", SIMPLER_AICPU_MAIN_SYMBOL, &d->aicpu_so,
                       (void **)&d->aicpu_main)) ||
        (rc = load_lib(lib_dir, "libsimpler_aicore.so", SIMPLER_AICORE_MAIN_SYMBOL, &d->aicore_so,
                       (void **)&d->aicore_main)))
        goto fail;
    *out = d;
    return SIMPLER_OK;
fail:
    sim_close(d);
    return rc;
}

/* Join a thread, giving up after timeout_ns. */
static int join_within(pthread_t thread, uint64_t timeout_ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + timeout_ns;
    ts.tv_sec += (time_t)(ns / 1000000000ull);
    ts.tv_nsec = (long)(ns % 1000000000ull);
    return pthread_timedjoin_np(thread, NULL, &ts);
}

/*
 * Stop every thread. A device that is lost may have threads stuck in a
 * kernel: they get a moment to notice, and the ones that do not stop are
 * detached and everything they might touch (the device state, GM, the
 * executor and kernel code) is left in place on purpose. A small leak is
 * the price of never unmapping code that a thread is running.
 */
static void sim_close(platform_dev *d)
{
    if (!d)
        return;
    int lost = atomic_load(&d->lost), stuck = 0;
    atomic_store(&d->stopping, 1);
    for (uint32_t c = 0; c < d->num_core_threads; c++) {
        atomic_store(&d->mailboxes[c].exit, 1);
        simpler_event_signal(&d->mailboxes[c].door);
    }
    for (uint32_t i = 0; i < d->num_aicpu_threads; i++) {
        atomic_store(&d->launch.abort, 1);
        simpler_event_signal(&d->aicpu[i].go);
        simpler_event_signal(&d->launch.thread_events[i]);
        if (!lost)
            pthread_join(d->aicpu[i].thread, NULL);
        else if (join_within(d->aicpu[i].thread, SIM_LOST_JOIN_NS) != 0 && ++stuck)
            pthread_detach(d->aicpu[i].thread);
    }
    for (uint32_t c = 0; c < d->num_core_threads; c++) {
        if (!d->cores[c].running)
            continue;
        if (!lost)
            pthread_join(d->cores[c].thread, NULL);
        else if (join_within(d->cores[c].thread, SIM_LOST_JOIN_NS) != 0 && ++stuck)
            pthread_detach(d->cores[c].thread);
    }
    if (stuck)
        return;
    if (d->heap.live)
        gm_heap_destroy(&d->heap);
    if (d->gm)
        munmap(d->gm, d->gm_capacity);
    if (d->aicpu_so)
        dlclose(d->aicpu_so);
    if (d->aicore_so)
        dlclose(d->aicore_so);
    free(d->mailboxes);
    free(d);
}

static int sim_gm_check(platform_dev *d, uint64_t addr, uint64_t size, const char *what)
{
    if (!gm_heap_is_allocated(&d->heap, addr, size))
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT,
                            "%s: [0x%" PRIx64 ", +%" PRIu64 ") is not allocated device memory of this device", what,
                            addr, size);
    return SIMPLER_OK;
}

static uint64_t sim_gm_size_of(platform_dev *d, uint64_t addr) { return gm_heap_size_of(&d->heap, addr); }

static int sim_gm_alloc(platform_dev *d, uint64_t size, uint64_t *addr_out)
{
    return gm_heap_alloc(&d->heap, size, addr_out);
}

static int sim_gm_free(platform_dev *d, uint64_t addr)
{
    uint64_t size;
    int rc = gm_heap_free(&d->heap, addr, &size);
    if (rc)
        return rc;
    /* Give large freed ranges' pages back so resident memory follows the
     * accounting. */
    if (size >= (1u << 20)) {
        uint64_t lo = (addr + 4095) & ~4095ull, hi = (addr + size) & ~4095ull;
        if (hi > lo)
            madvise((void *)(uintptr_t)lo, hi - lo, MADV_DONTNEED);
    }
    return SIMPLER_OK;
}

static int sim_copy_to_device(platform_dev *d, uint64_t dst, const void *src, uint64_t size)
{
    int rc = sim_gm_check(d, dst, size, "copy to device");
    if (!rc && size)
        memcpy((void *)(uintptr_t)dst, src, size);
    return rc;
}

static int sim_copy_from_device(platform_dev *d, void *dst, uint64_t src, uint64_t size)
{
    int rc = sim_gm_check(d, src, size, "copy from device");
    if (!rc && size)
        memcpy(dst, (const void *)(uintptr_t)src, size);
    return rc;
}

static void sim_callable_release(platform_dev *d, void *handle)
{
    sim_callable *c = handle;
    if (!c)
        return;
    /* A stuck core may be running this code: leave it mapped. */
    if (atomic_load(&d->lost)) {
        free(c);
        return;
    }
    for (uint32_t i = 0; i < c->count; i++) {
        if (c->handles[i]) {
            so_unload(c->handles[i]);
            atomic_fetch_sub(&d->loaded_objects, 1);
        }
    }
    free(c);
}

static int sim_callable_load(platform_dev *d, const void *blob, uint64_t size, platform_kernel *kernels,
                             void **handle_out)
{
    callable_info *info;
    int rc = callable_parse(blob, size, &info);
    if (rc)
        return rc;
    sim_callable *c = calloc(1, sizeof *c + info->num_kernels * sizeof(void *));
    if (!c) {
        callable_info_free(info);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "sim: out of host memory");
    }
    c->count = info->num_kernels;
    for (uint32_t k = 0; k < info->num_kernels && !rc; k++) {
        callable_kernel *kn = &info->kernels[k];
        char what[320];
        snprintf(what, sizeof what, "kernel '%s' (func %u)", kn->name[0] ? kn->name : kn->entry, kn->func_id);
        void *fn;
        rc = so_load(kn->so, kn->so_size, what, &c->handles[k]);
        if (!rc) {
            atomic_fetch_add(&d->loaded_objects, 1);
            rc = so_symbol(c->handles[k], kn->entry, what, &fn);
        }
        if (!rc)
            kernels[k].addr = (uint64_t)(uintptr_t)fn;
    }
    callable_info_free(info);
    if (rc) {
        sim_callable_release(d, c);
        return rc;
    }
    *handle_out = c;
    return SIMPLER_OK;
}

/* Bring every core of the last launch back to idle: wait a little for
 * running kernels, then stop the ones that will not finish and start fresh
 * threads in their place. */
static int recover_cores(platform_dev *d, uint32_t num_cores)
{
    uint64_t deadline = simpler_now_ns() + SIM_CORE_GRACE_NS;
    for (uint32_t c = 0; c < num_cores; c++) {
        simpler_mailbox *mb = &d->mailboxes[c];
        while (atomic_load(&mb->finished) != atomic_load(&mb->door.seq) && simpler_now_ns() < deadline)
            sched_yield();
        if (atomic_load(&mb->finished) == atomic_load(&mb->door.seq))
            continue;
        /* In a kernel the cancel acts at once; if the kernel has just
         * returned, the ring wakes the core to its next cancellation
         * point at the top of its loop. */
        pthread_cancel(d->cores[c].thread);
        simpler_event_signal(&mb->door);
        if (join_within(d->cores[c].thread, SIM_CANCEL_JOIN_NS) != 0) {
            atomic_store(&d->lost, 1);
            return simpler_fail(SIMPLER_E_DEVICE_LOST,
                                "sim: core %u could not be stopped after a failed run (its kernel blocks "
                                "cancellation?); the device is unusable, create a new worker", c);
        }
        d->cores[c].running = 0;
        d->core_resets++;
        int rc = start_core(d, c);
        if (rc) {
            atomic_store(&d->lost, 1);
            return simpler_fail_prefix(SIMPLER_E_DEVICE_LOST, "sim: restarting core %u", c);
        }
    }
    return SIMPLER_OK;
}

static int sim_launch(platform_dev *d, const simpler_launch_params *p)
{
    if (atomic_load(&d->lost))
        return simpler_fail(SIMPLER_E_DEVICE_LOST, "sim: device %d is unusable after an earlier failure; "
                            "create a new worker", d->device_id);
    if (p->block_dim == 0 || p->block_dim > SIMPLER_MAX_CLUSTERS)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "block_dim %u out of range 1..%d", p->block_dim,
                            SIMPLER_MAX_CLUSTERS);
    if (p->aicpu_thread_num == 0 || p->aicpu_thread_num > SIMPLER_MAX_AICPU_THREADS)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "aicpu_thread_num %u out of range 1..%d",
                            p->aicpu_thread_num, SIMPLER_MAX_AICPU_THREADS);
    uint32_t cores = p->block_dim * SIMPLER_CORES_PER_CLUSTER;
    simpler_launch *L = &d->launch;
    L->p = *p;
    /* A thread with no core of its own would only watch. */
    if (L->p.aicpu_thread_num > cores)
        L->p.aicpu_thread_num = cores;
    if (p->extra_threads > 1)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "sim: at most one extra AICPU thread");
    uint32_t threads = L->p.aicpu_thread_num + p->extra_threads;
    int rc = ensure_threads(d, cores, threads);
    if (rc)
        return rc;
    L->num_cores = cores;
    L->mailboxes = d->mailboxes;
    L->trace = (simpler_trace *)(uintptr_t)p->trace_addr;
    atomic_store(&L->status, 0);
    atomic_store(&L->abort, 0);
    atomic_store(&L->tasks_completed, 0);
    atomic_store(&L->blocks_completed, 0);
    L->message[0] = '\0';
    atomic_store(&L->heartbeat, 0);
    atomic_store(&d->running, threads);
    for (uint32_t t = 0; t < threads; t++)
        simpler_event_signal(&d->aicpu[t].go);

    /* The host's deadline follows progress: it moves whenever a task
     * finishes, so only a scheduler that stopped counting (and whose own
     * watchdog did not fire) is declared lost. */
    uint64_t limit = (uint64_t)p->scheduler_timeout_ms * 1000000ull + SIM_HOST_MARGIN_NS;
    uint64_t seen_done = 0, deadline = simpler_now_ns() + limit;
    for (;;) {
        uint32_t seq = simpler_event_prepare(&d->done);
        if (atomic_load(&d->running) == 0) {
            simpler_event_cancel(&d->done);
            break;
        }
        uint64_t now = simpler_now_ns();
        uint64_t done = atomic_load(&L->blocks_completed) + atomic_load(&L->heartbeat);
        if (done != seen_done) {
            seen_done = done;
            deadline = now + limit;
        }
        if (now >= deadline) {
            simpler_event_cancel(&d->done);
            atomic_store(&L->abort, 1);
            atomic_store(&d->lost, 1);
            return simpler_fail(SIMPLER_E_DEVICE_LOST,
                                "sim: no task finished for %.0f s and the AICPU scheduler did not stop; "
                                "the device is unusable, create a new worker", (double)limit / 1e9);
        }
        simpler_event_sleep(&d->done, seq, deadline - now < SIM_HOST_POLL_NS ? deadline - now : SIM_HOST_POLL_NS);
    }
    int status = atomic_load(&L->status);
    if (status == SIMPLER_OK)
        return SIMPLER_OK;
    simpler_fail(status, "%s", L->message);
    rc = recover_cores(d, cores);
    return rc ? rc : simpler_fail(status, "%s", L->message);
}

static int sim_is_lost(platform_dev *d) { return atomic_load(&d->lost); }

static void sim_counters(platform_dev *d, platform_counters *out)
{
    out->gm_capacity = d->gm_capacity;
    out->committed_bytes = gm_heap_committed(&d->heap);
    out->peak_committed_bytes = gm_heap_peak(&d->heap);
    out->live_allocations = gm_heap_live_count(&d->heap);
    out->loaded_objects = atomic_load(&d->loaded_objects);
    out->core_threads = d->num_core_threads;
    out->aicpu_threads = d->num_aicpu_threads;
    out->core_resets = d->core_resets;
}

const platform_ops simpler_platform_sim = {
    .name = "sim",
    .open = sim_open,
    .close = sim_close,
    .gm_alloc = sim_gm_alloc,
    .gm_free = sim_gm_free,
    .gm_size_of = sim_gm_size_of,
    .copy_to_device = sim_copy_to_device,
    .copy_from_device = sim_copy_from_device,
    .callable_load = sim_callable_load,
    .callable_release = sim_callable_release,
    .launch = sim_launch,
    .is_lost = sim_is_lost,
    .counters = sim_counters,
};
