/*
 * The faulty platform, as SQLite's test VFS: "faulty:<platform>" wraps
 * the platform of that name and forwards every operation to it, but once
 * armed (simpler_device_inject_fault) it fails the nth operation of the
 * chosen kinds with the error a real failure of that kind gives, its
 * message saying it was injected. Tests loop n over a whole sequence of
 * calls to walk every error path the host has.
 *
 * What each kind fails with (simpler.h says the same to users):
 *   GM_ALLOC       OUT_OF_MEMORY: the heap said no
 *   COPY           SYSTEM: the transfer (or a peer copy) failed, nothing or
 *                  part was copied
 *   CALLABLE_LOAD  INVALID_CALLABLE: the device could not load the kernels
 *   LAUNCH         DEVICE_LOST: the launch was refused; the context is
 *                  lost from then on, as a device that failed to start work
 *   WAIT           TIMEOUT: the launch really started and is cancelled
 *                  through the inner platform's poll (its cancel path), and
 *                  the wait reports the failure; the context stays usable
 * Frees and releases are never failed: they are what error paths run.
 */

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/platform_ops.h"

#define FAULTY_PREFIX "faulty:"

struct platform_dev {
    const platform_ops *inner;
    platform_dev *dev;              /* the inner platform's device */
    pthread_mutex_t lock;           /* a host orchestration thread may call in too */
    uint32_t kinds;                 /* armed kinds, 0 once fired or disarmed */
    uint64_t nth;                   /* the armed operation to fail, counted from arming */
    uint64_t ops;                   /* operations of the armed kinds since arming */
    uint64_t fired;
    int lost;                       /* an injected launch fault lost the context */
};

/* Whether this operation, of kind, is the one to fail: it fires once. */
static int hit(platform_dev *d, uint32_t kind, uint64_t *which)
{
    pthread_mutex_lock(&d->lock);
    int fire = 0;
    if (d->kinds & kind) {
        *which = ++d->ops;
        if (d->ops == d->nth) {
            fire = 1;
            d->kinds = 0;
            d->fired++;
        }
    }
    pthread_mutex_unlock(&d->lock);
    return fire;
}

static void faulty_close(platform_dev *d)
{
    if (!d)
        return;
    if (d->dev)
        d->inner->close(d->dev);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

static int faulty_open(const char *name, int32_t device_id, const simpler_device_options *options,
                       const char *lib_dir, platform_dev **out)
{
    const char *inner_name = name + strlen(FAULTY_PREFIX);
    const platform_ops *inner = platform_find(inner_name);
    if (!inner)
        return simpler_fail_prefix(SIMPLER_E_INVALID_ARGUMENT, "platform '%s'", name);
    platform_dev *d = calloc(1, sizeof *d);
    if (!d)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "faulty: out of host memory");
    d->inner = inner;
    pthread_mutex_init(&d->lock, NULL);
    int rc = inner->open(inner_name, device_id, options, lib_dir, &d->dev);
    if (rc) {
        d->dev = NULL;
        faulty_close(d);
        return rc;
    }
    *out = d;
    return SIMPLER_OK;
}

static int faulty_gm_alloc(platform_dev *d, uint64_t size, uint64_t *addr_out)
{
    uint64_t n;
    if (hit(d, SIMPLER_FAULT_GM_ALLOC, &n))
        return simpler_fail(SIMPLER_E_OUT_OF_MEMORY, "injected fault: GM allocation of %" PRIu64 " bytes "
                            "(armed operation %" PRIu64 ")", size, n);
    return d->inner->gm_alloc(d->dev, size, addr_out);
}

static int faulty_gm_free(platform_dev *d, uint64_t addr) { return d->inner->gm_free(d->dev, addr); }

static uint64_t faulty_gm_size_of(platform_dev *d, uint64_t addr) { return d->inner->gm_size_of(d->dev, addr); }

static int faulty_copy_to_device(platform_dev *d, uint64_t dst, const void *src, uint64_t size)
{
    uint64_t n;
    if (hit(d, SIMPLER_FAULT_COPY, &n))
        return simpler_fail(SIMPLER_E_SYSTEM, "injected fault: copy of %" PRIu64 " bytes to device 0x%" PRIx64
                            " (armed operation %" PRIu64 ")", size, dst, n);
    return d->inner->copy_to_device(d->dev, dst, src, size);
}

static int faulty_copy_from_device(platform_dev *d, void *dst, uint64_t src, uint64_t size)
{
    uint64_t n;
    if (hit(d, SIMPLER_FAULT_COPY, &n))
        return simpler_fail(SIMPLER_E_SYSTEM, "injected fault: copy of %" PRIu64 " bytes from device 0x%" PRIx64
                            " (armed operation %" PRIu64 ")", size, src, n);
    return d->inner->copy_from_device(d->dev, dst, src, size);
}

/* The host's view is where a peer copy reads or writes: a COPY fault. */
static int faulty_gm_host_view(platform_dev *d, uint64_t addr, uint64_t size, void **out)
{
    uint64_t n;
    if (!d->inner->gm_host_view)
        return simpler_fail(SIMPLER_E_UNSUPPORTED, "faulty:%s: no peer copies", d->inner->name);
    if (hit(d, SIMPLER_FAULT_COPY, &n))
        return simpler_fail(SIMPLER_E_SYSTEM, "injected fault: peer copy of %" PRIu64 " bytes at 0x%" PRIx64
                            " (armed operation %" PRIu64 ")", size, addr, n);
    return d->inner->gm_host_view(d->dev, addr, size, out);
}

/* peer is a faulty device too (the worker checks the platforms match):
 * the inner platform gets its inner device. */
static int faulty_peer_map(platform_dev *d, platform_dev *peer, uint64_t peer_addr, uint64_t size,
                           uint64_t *addr_out)
{
    if (!d->inner->peer_map)
        return simpler_fail(SIMPLER_E_UNSUPPORTED, "faulty:%s: no peer windows", d->inner->name);
    return d->inner->peer_map(d->dev, peer->dev, peer_addr, size, addr_out);
}

static int faulty_peer_unmap(platform_dev *d, uint64_t addr)
{
    return d->inner->peer_unmap ? d->inner->peer_unmap(d->dev, addr) : SIMPLER_OK;
}

static int faulty_callable_load(platform_dev *d, const void *blob, uint64_t size, uint64_t gm_addr, uint32_t flags,
                                platform_kernel *kernels, uint64_t *orchestration_out, void **handle_out)
{
    uint64_t n;
    if (hit(d, SIMPLER_FAULT_CALLABLE_LOAD, &n))
        return simpler_fail(SIMPLER_E_INVALID_CALLABLE, "injected fault: loading a callable's kernels "
                            "(armed operation %" PRIu64 ")", n);
    return d->inner->callable_load(d->dev, blob, size, gm_addr, flags, kernels, orchestration_out, handle_out);
}

static void faulty_callable_release(platform_dev *d, void *handle) { d->inner->callable_release(d->dev, handle); }

/* The wait fault's poll: stop at once. */
static int stop_now(void *ctx) { return 1; }

static int faulty_launch(platform_dev *d, const simpler_launch_params *p, const platform_poll *poll)
{
    uint64_t n;
    if (d->lost)
        return simpler_fail(SIMPLER_E_DEVICE_LOST, "faulty:%s: the device was lost to an injected fault; create a "
                            "new worker", d->inner->name);
    if (hit(d, SIMPLER_FAULT_LAUNCH, &n)) {
        d->lost = 1;
        return simpler_fail(SIMPLER_E_DEVICE_LOST, "injected fault: the launch did not start and the device is "
                            "lost (armed operation %" PRIu64 ")", n);
    }
    if (!hit(d, SIMPLER_FAULT_WAIT, &n))
        return d->inner->launch(d->dev, p, poll);
    /* Started for real, then cancelled: a launch that finished before the
     * cancel reached it fails its wait all the same. */
    platform_poll stop = {.fn = stop_now, .at_once = 1};
    int rc = d->inner->launch(d->dev, p, &stop);
    if (rc == SIMPLER_OK || rc == SIMPLER_E_INTERRUPTED)
        return simpler_fail(SIMPLER_E_TIMEOUT, "injected fault: the wait for a started launch failed and the "
                            "launch was cancelled (armed operation %" PRIu64 ")", n);
    return simpler_fail_prefix(rc, "after an injected wait fault (armed operation %" PRIu64 ")", n);
}

static int faulty_is_lost(platform_dev *d) { return d->lost || d->inner->is_lost(d->dev); }

static const char *faulty_lost_why(platform_dev *d)
{
    return d->inner->lost_why ? d->inner->lost_why(d->dev) : "";
}

static void faulty_counters(platform_dev *d, platform_counters *out) { d->inner->counters(d->dev, out); }

static int faulty_fault_arm(platform_dev *d, uint32_t kinds, uint64_t nth)
{
    pthread_mutex_lock(&d->lock);
    d->kinds = nth ? kinds : 0;
    d->nth = nth;
    d->ops = 0;
    pthread_mutex_unlock(&d->lock);
    return SIMPLER_OK;
}

static void faulty_fault_counts(platform_dev *d, simpler_fault_counts *out)
{
    pthread_mutex_lock(&d->lock);
    out->ops = d->ops;
    out->fired = d->fired;
    out->pending = d->kinds != 0;
    pthread_mutex_unlock(&d->lock);
}

const platform_ops simpler_platform_faulty = {
    .name = FAULTY_PREFIX,
    .open = faulty_open,
    .close = faulty_close,
    .gm_alloc = faulty_gm_alloc,
    .gm_free = faulty_gm_free,
    .gm_size_of = faulty_gm_size_of,
    .copy_to_device = faulty_copy_to_device,
    .copy_from_device = faulty_copy_from_device,
    .gm_host_view = faulty_gm_host_view,
    .peer_map = faulty_peer_map,
    .peer_unmap = faulty_peer_unmap,
    .callable_load = faulty_callable_load,
    .callable_release = faulty_callable_release,
    .launch = faulty_launch,
    .is_lost = faulty_is_lost,
    .lost_why = faulty_lost_why,
    .counters = faulty_counters,
    .fault_arm = faulty_fault_arm,
    .fault_counts = faulty_fault_counts,
};

PLATFORM_REGISTER(simpler_platform_faulty);
