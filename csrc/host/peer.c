/*
 * Peer memory (simpler.h): copies between the GM of two devices of this
 * process, and windows that let one device's kernels reach another's GM.
 *
 * Every window of the process is in one table under one lock (g_table).
 * Lock order: device locks first (two at once only in address order, by
 * enter_pair), the table's lock last; nothing waits for a device's lock
 * while holding the table's. Finalizing a device closes the windows on or
 * by it one at a time, holding no lock but the one of the window's holder
 * while it unmaps; a window being closed is marked so, and whoever else
 * needs it gone waits on the table's condition, so two devices finalized
 * at once by two threads each close their own share and wait for the rest.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "host/device.h"

typedef struct peer_window {
    struct peer_window *next;
    simpler_device *holder;         /* whose kernels use it */
    simpler_device *peer;           /* whose GM it shows */
    uint64_t peer_addr, size;
    uint64_t addr;                  /* where the holder's kernels see it */
    int closing;                    /* being unmapped by some thread: gone once it leaves the table */
} peer_window;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;         /* a window left the table */
    peer_window *head;
} g_table = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL};

/* ------------------------------------------------------------------ */
/* entering two devices */

/* worker_enter on both (one if they are the same), in address order so
 * that two threads entering the same pair never wait for each other. */
static int enter_pair(simpler_device *a, simpler_device *b, const char *what)
{
    if (a == b)
        return worker_enter(a, what);
    simpler_device *first = (uintptr_t)a < (uintptr_t)b ? a : b, *second = first == a ? b : a;
    int rc = worker_enter(first, what);
    if (rc)
        return rc;
    if ((rc = worker_enter(second, what)))
        pthread_mutex_unlock(&first->lock);
    return rc;
}

static int leave_pair(simpler_device *a, simpler_device *b, int rc)
{
    if (a != b)
        worker_leave(b, rc);
    return worker_leave(a, rc);
}

/* Both devices' platforms must be the same: each one's state is its own
 * platform's, and only the same platform can read the other's. */
static int same_platform(simpler_device *a, simpler_device *b, const char *what)
{
    if (strcmp(a->platform, b->platform) != 0 || a->ops != b->ops)
        return simpler_fail(SIMPLER_E_UNSUPPORTED, "%s: device %d is on platform '%s' and device %d on '%s': "
                            "peer memory is between devices of one platform", what, a->device_id, a->platform,
                            b->device_id, b->platform);
    return SIMPLER_OK;
}

/* The platform's check of a range, said as the device's. */
static int host_view(simpler_device *dev, uint64_t addr, uint64_t size, const char *what, void **out)
{
    int rc = dev->ops->gm_host_view(dev->pdev, addr, size, out);
    return rc ? simpler_fail_prefix(rc, "%s: device %d", what, dev->device_id) : SIMPLER_OK;
}

/* ------------------------------------------------------------------ */
/* copies */

int simpler_gm_copy_peer(simpler_device *dst, uint64_t dst_addr, simpler_device *src, uint64_t src_addr,
                         uint64_t size)
{
    static const char what[] = "simpler_gm_copy_peer";
    if (!dst || !src)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "%s: %s device is NULL", what, !dst ? "the dst" : "the src");
    int rc = enter_pair(dst, src, what);
    if (rc)
        return rc;
    void *to, *from;
    if (!(rc = same_platform(dst, src, what)) && !dst->ops->gm_host_view)
        rc = simpler_fail(SIMPLER_E_UNSUPPORTED, "%s: platform '%s' cannot copy between devices", what,
                          dst->platform);
    if (!rc)
        rc = worker_check_user_range(dst, dst_addr, size, what);
    if (!rc && !(rc = host_view(dst, dst_addr, size, what, &to)) && !(rc = host_view(src, src_addr, size, what, &from))
        && size)
        memmove(to, from, size);    /* the same device's ranges may overlap */
    return leave_pair(dst, src, rc);
}

/* ------------------------------------------------------------------ */
/* the window table */

static void table_remove(peer_window *w)
{
    for (peer_window **p = &g_table.head; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    pthread_cond_broadcast(&g_table.changed);
}

int peer_check_free(simpler_device *dev, uint64_t addr)
{
    uint64_t size = dev->ops->gm_size_of(dev->pdev, addr);
    int rc = SIMPLER_OK;
    pthread_mutex_lock(&g_table.lock);
    for (peer_window *w = g_table.head; w && !rc; w = w->next)
        if (w->peer == dev && size && w->peer_addr >= addr && w->peer_addr - addr < size)
            rc = simpler_fail(SIMPLER_E_STATE, "simpler_gm_free: device %d's allocation 0x%" PRIx64 " has a peer "
                              "window open on it by device %d ([0x%" PRIx64 ", +%" PRIu64 ") at 0x%" PRIx64 " for "
                              "its kernels): close the window first", dev->device_id, addr, w->holder->device_id,
                              w->peer_addr, w->size, w->addr);
    pthread_mutex_unlock(&g_table.lock);
    return rc;
}

uint64_t peer_windows_held(simpler_device *dev)
{
    uint64_t n = 0;
    pthread_mutex_lock(&g_table.lock);
    for (peer_window *w = g_table.head; w; w = w->next)
        n += w->holder == dev;
    pthread_mutex_unlock(&g_table.lock);
    return n;
}

/* ------------------------------------------------------------------ */
/* windows */

int simpler_peer_window_open(simpler_device *dev, simpler_device *peer, uint64_t peer_addr, uint64_t size,
                             uint64_t *addr_out)
{
    static const char what[] = "simpler_peer_window_open";
    if (!dev || !peer || !addr_out)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "%s: %s is NULL", what,
                            !dev ? "dev" : !peer ? "peer" : "addr_out");
    if (dev == peer)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "%s: dev and peer are the same device (%d): its kernels "
                            "use its own addresses as they are", what, dev->device_id);
    if (!size)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "%s: size is 0", what);
    int rc = enter_pair(dev, peer, what);
    if (rc)
        return rc;
    if (!(rc = same_platform(dev, peer, what)) && (!dev->ops->peer_map || !dev->ops->peer_unmap))
        rc = simpler_fail(SIMPLER_E_UNSUPPORTED, "%s: platform '%s' has no peer windows", what, dev->platform);
    if (!rc)
        rc = worker_check_user_range(peer, peer_addr, size, what);
    peer_window *w = NULL;
    if (!rc && !(w = calloc(1, sizeof *w)))
        rc = simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "%s: out of host memory", what);
    if (rc)
        return leave_pair(dev, peer, rc);
    worker_quiesce(dev);    /* onboard maps through the launch link */
    uint64_t addr = 0;
    if ((rc = dev->ops->peer_map(dev->pdev, peer->pdev, peer_addr, size, &addr))) {
        free(w);
        rc = simpler_fail_prefix(rc, "%s: device %d onto device %d's [0x%" PRIx64 ", +%" PRIu64 ")", what,
                                 dev->device_id, peer->device_id, peer_addr, size);
        return leave_pair(dev, peer, rc);
    }
    *w = (peer_window){.holder = dev, .peer = peer, .peer_addr = peer_addr, .size = size, .addr = addr};
    pthread_mutex_lock(&g_table.lock);
    int closing = dev->peer_closing || peer->peer_closing;
    if (!closing) {
        w->next = g_table.head;
        g_table.head = w;
    }
    pthread_mutex_unlock(&g_table.lock);
    if (closing) {      /* a finalize began on another thread */
        dev->ops->peer_unmap(dev->pdev, addr);
        free(w);
        rc = simpler_fail(SIMPLER_E_STATE, "%s: device %d is being finalized", what,
                          dev->peer_closing ? dev->device_id : peer->device_id);
        return leave_pair(dev, peer, rc);
    }
    *addr_out = addr;
    return leave_pair(dev, peer, SIMPLER_OK);
}

int simpler_peer_window_close(simpler_device *dev, uint64_t addr)
{
    static const char what[] = "simpler_peer_window_close";
    int rc = worker_enter(dev, what);
    if (rc)
        return rc;
    pthread_mutex_lock(&g_table.lock);
    peer_window *w = g_table.head;
    while (w && !(w->holder == dev && w->addr == addr && !w->closing))
        w = w->next;
    if (w)
        w->closing = 1;
    pthread_mutex_unlock(&g_table.lock);
    if (!w)
        return worker_leave(dev, simpler_fail(SIMPLER_E_NOT_FOUND, "%s: device %d has no peer window open at "
                                              "0x%" PRIx64 " (closed already, or closed when its peer was "
                                              "finalized?)", what, dev->device_id, addr));
    worker_quiesce(dev);
    rc = dev->ops->peer_unmap(dev->pdev, addr);
    if (rc)
        rc = simpler_fail_prefix(rc, "%s: device %d's window 0x%" PRIx64 " onto device %d", what, dev->device_id,
                                 addr, w->peer->device_id);
    /* Gone from the table either way: a holder that could not unmap it
     * has lost its context, and the window with it. */
    pthread_mutex_lock(&g_table.lock);
    table_remove(w);
    pthread_mutex_unlock(&g_table.lock);
    free(w);
    return worker_leave(dev, rc);
}

/* Unmap a window marked closing, holding its holder's lock only. A holder
 * lost or finalized (its platform closed) has no mapping left to undo. */
static void unmap_closing(peer_window *w)
{
    simpler_device *h = w->holder;
    pthread_mutex_lock(&h->lock);
    worker_quiesce(h);
    if (h->state == DEVICE_READY && !h->host_lost && !h->ops->is_lost(h->pdev))
        h->ops->peer_unmap(h->pdev, w->addr);
    pthread_mutex_unlock(&h->lock);
}

void peer_close_all(simpler_device *dev)
{
    pthread_mutex_lock(&g_table.lock);
    dev->peer_closing = 1;
    for (;;) {
        peer_window *w = g_table.head, *busy = NULL;
        for (; w; w = w->next)
            if (w->holder == dev || w->peer == dev) {
                if (!w->closing)
                    break;
                busy = w;
            }
        if (!w && !busy)
            break;
        if (!w) {           /* another thread closes the rest: their devices are still ours to wait for */
            pthread_cond_wait(&g_table.changed, &g_table.lock);
            continue;
        }
        w->closing = 1;
        pthread_mutex_unlock(&g_table.lock);
        unmap_closing(w);
        pthread_mutex_lock(&g_table.lock);
        table_remove(w);
        free(w);
    }
    pthread_mutex_unlock(&g_table.lock);
}
