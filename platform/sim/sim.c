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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/error.h"
#include "common/gm_heap.h"
#include "common/platform_ops.h"
#include "common/so_load.h"
#include "chip/chip.h"
#include "chip/kernel_set.h"

#define SIM_DEFAULT_GM_CAPACITY (16ull << 30)
/* How long the chip waits beyond the scheduler watchdog before it calls
 * the op timed out. In one process there is no separate host wait. */
#define SIM_OP_MARGIN_NS 10000000000ull

struct platform_dev {
    int32_t device_id;
    uint8_t *gm;
    uint64_t gm_capacity;
    gm_heap heap;

    void *aicpu_so, *aicore_so;
    simpler_aicpu_main_fn aicpu_main;
    chip chip;
    int chip_live;

    _Atomic uint64_t loaded_objects;
    _Atomic uint64_t peer_windows;
};


static void sim_close(platform_dev *d);

/*
 * A kernel runs inside the caller's process on sim: when it crashes (a
 * fatal signal) or calls exit(), the process ends. Before it does, say
 * which kernel did it, as onboard's crash file does; and an exit() during
 * a run ends the process with SIM_EXIT_STATUS, not the kernel's 0, so a
 * CI job does not take a dead test run for a passed one.
 */
#define SIM_MAX_IN_FLIGHT 64
#define SIM_EXIT_STATUS 70          /* EX_SOFTWARE */

static chip *_Atomic g_in_flight[SIM_MAX_IN_FLIGHT];   /* chips with a launch running */
static const int g_fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
static struct sigaction g_before[sizeof g_fatal / sizeof *g_fatal];

/* Write "simpler (sim, pid N): <what>; core 1 was running ..." to stderr
 * if a run is in flight; 0 if none is. */
static int report_in_flight(const char *what)
{
    char line[2048];
    int n = snprintf(line, sizeof line, "simpler (sim, pid %d): %s", (int)getpid(), what), any = 0;
    for (int i = 0; i < SIM_MAX_IN_FLIGHT && n > 0 && (size_t)n + 200 < sizeof line; i++) {
        chip *c = atomic_load(&g_in_flight[i]);
        if (!c)
            continue;
        any = 1;
        char running[1024];
        chip_running_report(c, running, sizeof running);
        if (running[0])
            n += snprintf(line + n, sizeof line - (size_t)n, "; %s", running);
    }
    if (any && n > 0) {
        line[(size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2] = '\n';
        if (write(2, line, (size_t)n + 1 < sizeof line ? (size_t)n + 1 : sizeof line - 1) < 0) {
        }
    }
    return any;
}

static void on_fatal(int sig)
{
    char what[128];
    snprintf(what, sizeof what, "a kernel crashed the process with %s", chip_signal_name(sig));
    report_in_flight(what);
    /* Then whatever handled it before us (Python's faulthandler, or the
     * default: death by the same signal). */
    for (size_t i = 0; i < sizeof g_fatal / sizeof *g_fatal; i++)
        if (g_fatal[i] == sig)
            sigaction(sig, &g_before[i], NULL);
    raise(sig);
}

static void on_exit_in_flight(void)
{
    /* Only device code's exit: the program's own (sys.exit while another
     * thread runs) ends it as it asks. */
    if (chip_on_device_thread() && report_in_flight("exit() was called while a run was in flight (by a kernel?); the process ends with "
                         "status 70 instead of its own"))
        _exit(SIM_EXIT_STATUS);
}

static void watch_process(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_fatal;
    sa.sa_flags = SA_NODEFER;
    for (size_t i = 0; i < sizeof g_fatal / sizeof *g_fatal; i++)
        sigaction(g_fatal[i], &sa, &g_before[i]);
    atexit(on_exit_in_flight);
}

/* Mark the chip's launch in flight for the reports; -1 if there is no room
 * (the launch runs unreported). */
static int in_flight_begin(chip *c)
{
    for (int i = 0; i < SIM_MAX_IN_FLIGHT; i++) {
        chip *none = NULL;
        if (atomic_compare_exchange_strong(&g_in_flight[i], &none, c))
            return i;
    }
    return -1;
}

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

static int sim_open(const char *name, int32_t device_id, const simpler_device_options *options, const char *lib_dir,
                    platform_dev **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, watch_process);
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
    simpler_aicore_main_fn aicore_main;
    if ((rc = chip_init(&d->chip, "sim")))
        goto fail;
    d->chip_live = 1;
    if ((rc = gm_heap_init(&d->heap, (uint64_t)(uintptr_t)d->gm, d->gm_capacity)) ||
        (rc = load_lib(lib_dir, "libsimpler_aicpu.so", SIMPLER_AICPU_MAIN_SYMBOL, &d->aicpu_so,
                       (void **)&d->aicpu_main)) ||
        (rc = load_lib(lib_dir, "libsimpler_aicore.so", SIMPLER_AICORE_MAIN_SYMBOL, &d->aicore_so,
                       (void **)&aicore_main)) ||
        (rc = chip_set_executor(&d->chip, aicore_main)))
        goto fail;
    *out = d;
    return SIMPLER_OK;
fail:
    sim_close(d);
    return rc;
}

/* A chip that would not stop may still run kernel or executor code, or
 * touch GM: then all of it stays mapped (chip_close). */
static void sim_close(platform_dev *d)
{
    if (!d)
        return;
    if (d->chip_live && chip_close(&d->chip))
        return;
    if (d->heap.free_list)
        gm_heap_destroy(&d->heap);
    if (d->gm)
        munmap(d->gm, d->gm_capacity);
    if (d->aicpu_so)
        dlclose(d->aicpu_so);
    if (d->aicore_so)
        dlclose(d->aicore_so);
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
    /* Give large freed ranges' pages back so resident memory follows the
     * accounting: while the range is still allocated, so that no other
     * thread's new allocation there is zeroed under it. */
    uint64_t size = gm_heap_size_of(&d->heap, addr);
    if (size >= (1u << 20)) {
        uint64_t lo = (addr + 4095) & ~4095ull, hi = (addr + size) & ~4095ull;
        if (hi > lo)
            madvise((void *)(uintptr_t)lo, hi - lo, MADV_DONTNEED);
    }
    return gm_heap_free(&d->heap, addr, &size);
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

/* GM is this process's memory, at its own addresses: the host sees it
 * there, and so do every chip's kernels (all threads of this process). */
static int sim_gm_host_view(platform_dev *d, uint64_t addr, uint64_t size, void **out)
{
    int rc = sim_gm_check(d, addr, size, "peer copy");
    if (!rc)
        *out = (void *)(uintptr_t)addr;
    return rc;
}

static int sim_peer_map(platform_dev *d, platform_dev *peer, uint64_t peer_addr, uint64_t size, uint64_t *addr_out)
{
    int rc = sim_gm_check(peer, peer_addr, size, "peer window");
    if (!rc) {
        *addr_out = peer_addr;
        atomic_fetch_add(&d->peer_windows, 1);
    }
    return rc;
}

static int sim_peer_unmap(platform_dev *d, uint64_t addr)
{
    (void)addr;
    atomic_fetch_sub(&d->peer_windows, 1);
    return SIMPLER_OK;
}

static void sim_callable_release(platform_dev *d, void *handle)
{
    kernel_set *k = handle;
    if (!k)
        return;
    atomic_fetch_sub(&d->loaded_objects, k->objects);
    /* A stuck core may be running this code: leave it mapped. */
    if (chip_is_lost(&d->chip))
        kernel_set_abandon(k);
    else
        kernel_set_unload(k);
}

static int sim_callable_load(platform_dev *d, const void *blob, uint64_t size, uint64_t gm_addr, uint32_t flags,
                             platform_kernel *kernels, uint64_t *orchestration_out, void **handle_out)
{
    kernel_set *k;
    int rc = kernel_set_load(blob, size, flags & PLATFORM_LOAD_ORCHESTRATION, &k);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < k->count; i++)
        kernels[i].addr = k->kernels[i].addr;
    *orchestration_out = k->orch_addr;
    atomic_fetch_add(&d->loaded_objects, k->objects);
    *handle_out = k;
    return SIMPLER_OK;
}

static int sim_poll(void *arg)
{
    const platform_poll *p = arg;
    return p->fn(p->ctx);
}

static void sim_counts(void *arg, uint64_t tasks_done, uint64_t tasks_submitted)
{
    const platform_poll *p = arg;
    atomic_store_explicit(&p->progress->tasks_done, tasks_done, memory_order_relaxed);
    atomic_store_explicit(&p->progress->tasks_submitted, tasks_submitted, memory_order_relaxed);
}

static int sim_launch(platform_dev *d, const simpler_launch_params *p, const platform_poll *poll)
{
    chip_waiter w = {.poll = poll && poll->fn ? sim_poll : NULL,
                     .counts = poll && poll->progress ? sim_counts : NULL,
                     .arg = (void *)poll, .poll_at_once = poll && poll->at_once};
    int slot = in_flight_begin(&d->chip);
    int rc = chip_launch(&d->chip, d->aicpu_main, p, SIM_OP_MARGIN_NS, &w);
    if (slot >= 0)
        atomic_store(&g_in_flight[slot], NULL);
    return rc;
}

static int sim_is_lost(platform_dev *d) { return chip_is_lost(&d->chip); }

static void sim_counters(platform_dev *d, platform_counters *out)
{
    out->gm_capacity = d->gm_capacity;
    out->committed_bytes = gm_heap_committed(&d->heap);
    out->peak_committed_bytes = gm_heap_peak(&d->heap);
    out->live_allocations = gm_heap_live_count(&d->heap);
    out->loaded_objects = atomic_load(&d->loaded_objects);
    out->core_threads = d->chip.num_core_threads;
    out->aicpu_threads = d->chip.num_aicpu_threads;
    out->core_resets = d->chip.core_resets;
    out->peer_windows = atomic_load(&d->peer_windows);
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
    .gm_host_view = sim_gm_host_view,
    .peer_map = sim_peer_map,
    .peer_unmap = sim_peer_unmap,
    .callable_load = sim_callable_load,
    .callable_release = sim_callable_release,
    .launch = sim_launch,
    .concurrent_launch = 1,
    .concurrent_gm = 1,
    .is_lost = sim_is_lost,
    .counters = sim_counters,
};

PLATFORM_REGISTER(simpler_platform_sim);
