/*
 * Answering the driver protocol (protocol.h) inside simpler-device.
 *
 * Every request is checked before it touches anything: its size against
 * its struct, the protocol version, HELLO first, and every GM address
 * against the allocations of the client that names it. A bad request gets
 * an error reply and the connection goes on; a stream that cannot be
 * framed any more (bad magic, oversized payload) is answered and closed.
 *
 * Device code runs in each client's context (context.h), not here: this
 * process keeps the socket, the binary store, GM and its accounting, and
 * forwards the rest; launches go to the context straight from the host
 * (LAUNCH_LINK), and contexts take their turns on the chip themselves
 * (devctx_turns).
 */
#include "onboard/device/server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/addr_map.h"
#include "common/error.h"
#include "common/gm_heap.h"
#include "common/hash.h"
#include "common/wait.h"
#include "onboard/device/context.h"
#include "onboard/paths.h"
#include "onboard/wire.h"

/* Timeouts, in order: the scheduler watchdog, the context's op deadline
 * DEV_OP_MARGIN_NS later (context.c), then this margin for the context
 * to answer (else it is hung and killed), then the host's wait (driver.c,
 * 5 s beyond the op deadline). */
#define DEV_OP_MARGIN_NS 5000000000ull
#define DEV_CONTEXT_MARGIN_NS 2500000000ull
/* Requests other than launches: a context answers at once (the host waits
 * 30 s). */
#define DEV_CONTEXT_WAIT_NS 20000000000ull
/* After a reply the next request usually follows at once. */
#define DEV_SPIN_NS 50000ull
/* Freed ranges this large go back to the system. */
#define DEV_PUNCH_BYTES (1u << 20)
/* Every block is whole pages, so a context maps exactly its client's. */
#define DEV_PAGE 4096ull
/* Where GM goes in the address space: far from where the system puts
 * libraries, so a fresh context finds the same range free. */
static const uint64_t dev_gm_hints[] = {0x100000000000ull, 0x180000000000ull, 0x200000000000ull};

struct devsrv {
    int32_t device_id;
    char name[40];
    char dir[4096], store[4200];
    uint64_t build, instance, start_ns;

    int gm_fd;
    uint8_t *gm;
    uint64_t gm_capacity;
    gm_heap heap;

    const char *context_exe;

    int turns_fd;
    devctx_turns *turns;            /* the turns on the chip, shared with every context */
    pthread_mutex_t lock;
    uint64_t binary_uploads, binary_installs;

    _Atomic uint32_t clients;
    _Atomic uint64_t contexts_started;
    _Atomic uint64_t committed;     /* the clients' accounting, summed (the heap holds whole pages) */
    _Atomic int exit_requested;
};

typedef struct dev_client {
    int fd;
    int hello;
    uint32_t pid;
    uint64_t quota;
    uint64_t committed, peak;
    uint64_t held;                  /* whole pages its blocks take of the heap: what the quota bounds */
    addr_map allocs;                /* GM address -> size */
    devctx_link ctx;                /* where its device code runs */
    int ctx_lost;                   /* it died: no other for this connection */
    char ctx_lost_why[1400];        /* how, when it died between requests */
    uint32_t seq;                   /* of the request being answered */
    int exit_after_reply;           /* SHUTDOWN accepted */
    int close_after_reply;          /* the stream broke, or the context was lost */
} dev_client;

/* A reply's result: a struct of the request's, or bytes of the heap. */
typedef struct dev_reply {
    uint8_t small[sizeof(onb_counters)];
    void *data;
    uint32_t size;
    int pass_fd;
    int close_pass_fd;              /* pass_fd is handed over: closed after sending */
    int raw;                        /* data is a whole reply payload (a context's) */
    void *owned;                    /* freed after sending */
} dev_reply;

static void *reply_struct(dev_reply *r, uint32_t size)
{
    memset(r->small, 0, sizeof r->small);
    r->data = r->small;
    r->size = size;
    return r->small;
}

static void context_lost(dev_client *c);

/* ------------------------------------------------------------------ */
/* GM */

/* A whole allocation of this client's starting at addr, at least size
 * bytes long. */
static int owned(dev_client *c, uint64_t addr, uint64_t size, const char *what)
{
    addr_entry *e = addr_map_get(&c->allocs, addr);
    if (!e || e->size < size)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT,
                            "%s: 0x%" PRIx64 " (+%" PRIu64 ") is not an allocation of this client", what, addr,
                            size);
    return SIMPLER_OK;
}

/* A freed range that no context sees any more goes back to the heap. A
 * large one's pages go back to the system first, while the heap still has
 * the range: once it has it back another client may be handed it and
 * write it, and a punch then would zero what that client wrote. */
static void gm_return(void *arg, uint64_t addr, uint64_t size)
{
    devsrv *s = arg;
    if (size >= DEV_PUNCH_BYTES) {
        uint64_t lo = (addr + 4095) & ~4095ull, hi = (addr + size) & ~4095ull;
        if (hi > lo)
            fallocate(s->gm_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      (off_t)(lo - (uint64_t)(uintptr_t)s->gm), (off_t)(hi - lo));
    }
    gm_heap_free(&s->heap, addr, NULL);
}

/* Free one of the client's allocations: at once for the client and the
 * accounting; the heap gets the range back once the client's context
 * stops seeing it (gm_return). */
static void gm_release(devsrv *s, dev_client *c, uint64_t addr, uint64_t *size_out)
{
    addr_entry *e = addr_map_get(&c->allocs, addr);
    if (!e)
        return;
    uint64_t size = e->size, counted = e->tag;
    c->committed -= counted;
    c->held -= size;
    atomic_fetch_sub(&s->committed, counted);
    addr_map_remove(&c->allocs, addr);
    if (size_out)
        *size_out = counted;
    if (devctx_unmap(&c->ctx, addr, size) == SIMPLER_E_DEVICE_LOST)
        context_lost(c);
}

static int do_gm_alloc(devsrv *s, dev_client *c, const onb_gm *in, dev_reply *r)
{
    if (in->size == 0)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "GM alloc: size is 0");
    /* The quota bounds the pages a client's blocks take, slack included:
     * counted bytes alone would let 64-byte blocks hold 64 times the quota. */
    uint64_t pages = (in->size + DEV_PAGE - 1) & ~(DEV_PAGE - 1);
    if (pages < in->size || pages > c->quota || c->held + pages > c->quota)
        return simpler_fail(SIMPLER_E_OUT_OF_MEMORY,
                            "GM exhausted: %" PRIu64 " bytes requested (%" PRIu64 " in whole pages), %" PRIu64
                            " of this client's %" PRIu64 " bytes held", in->size, pages, c->held, c->quota);
    /* Whole pages: the heap's ranges then all start on a page, and no
     * two clients' blocks share one. The accounting counts what was asked
     * for, aligned as sim aligns it, so both platforms count alike; the
     * pages' slack (under 4 KiB a block) is the price of isolation. */
    uint64_t addr, want = pages;
    uint64_t counted = (in->size + SIMPLER_GM_ALIGN - 1) & ~(uint64_t)(SIMPLER_GM_ALIGN - 1);
    int rc = gm_heap_alloc(&s->heap, want, &addr);
    if (rc)
        return rc;
    uint64_t size = gm_heap_size_of(&s->heap, addr);
    if (addr_map_put(&c->allocs, addr, size, counted, 0) != 0) {
        gm_heap_free(&s->heap, addr, NULL);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "device: out of host memory");
    }
    if ((rc = devctx_map(&c->ctx, addr, size))) {     /* the context is gone: so are its mappings */
        context_lost(c);
        addr_map_remove(&c->allocs, addr);
        gm_heap_free(&s->heap, addr, NULL);
        return rc;
    }
    c->committed += counted;
    c->held += size;
    atomic_fetch_add(&s->committed, counted);
    if (c->committed > c->peak)
        c->peak = c->committed;
    onb_gm *out = reply_struct(r, sizeof *out);
    out->addr = addr;
    out->size = counted;
    return SIMPLER_OK;
}

static int do_gm_free(devsrv *s, dev_client *c, const onb_gm *in, dev_reply *r)
{
    int rc = owned(c, in->addr, 0, "GM free");
    if (rc)
        return rc;
    onb_gm *out = reply_struct(r, sizeof *out);
    out->addr = in->addr;
    gm_release(s, c, in->addr, &out->size);
    return SIMPLER_OK;
}

/* ------------------------------------------------------------------ */
/* the AICPU runtime store */

static void store_path(devsrv *s, char *out, size_t size, uint64_t fp)
{
    snprintf(out, size, "%s/aicpu-%016" PRIx64 ".so", s->store, fp);
}

static int do_binary_query(devsrv *s, const onb_binary *in, dev_reply *r)
{
    char path[4300];
    store_path(s, path, sizeof path, in->fingerprint);
    onb_binary_result *out = reply_struct(r, sizeof *out);
    out->present = access(path, R_OK) == 0;
    return SIMPLER_OK;
}

/* Write to a temporary name, then rename without replacing: a reader sees
 * no file or the whole file, and racing installers leave exactly one. */
static int do_binary_install(devsrv *s, const onb_binary *in, uint32_t n, dev_reply *r)
{
    const uint8_t *bytes = (const uint8_t *)(in + 1);
    if (in->size == 0 || in->size != n - sizeof *in)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "binary install: %" PRIu64 " bytes announced, %u sent",
                            in->size, (unsigned)(n - sizeof *in));
    if (simpler_fnv1a64(bytes, in->size) != in->fingerprint)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT,
                            "binary install: the bytes do not have fingerprint %016" PRIx64, in->fingerprint);
    pthread_mutex_lock(&s->lock);
    s->binary_uploads++;
    pthread_mutex_unlock(&s->lock);
    char path[4300], tmp[4400];
    store_path(s, path, sizeof path, in->fingerprint);
    snprintf(tmp, sizeof tmp, "%s/.aicpu-%016" PRIx64 ".XXXXXX", s->store, in->fingerprint);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return simpler_fail(SIMPLER_E_SYSTEM, "binary install: cannot create %s: %s", tmp, strerror(errno));
    int rc = SIMPLER_OK;
    for (uint64_t done = 0; done < in->size && !rc;) {
        ssize_t w = write(fd, bytes + done, in->size - done);
        if (w < 0 && errno != EINTR)
            rc = simpler_fail(SIMPLER_E_SYSTEM, "binary install: writing %s: %s", tmp, strerror(errno));
        else if (w > 0)
            done += (uint64_t)w;
    }
    if (!rc && fsync(fd) != 0)
        rc = simpler_fail(SIMPLER_E_SYSTEM, "binary install: syncing %s: %s", tmp, strerror(errno));
    close(fd);
    onb_binary_result *out = reply_struct(r, sizeof *out);
    if (!rc) {
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) {
            out->present = 1;
            pthread_mutex_lock(&s->lock);
            s->binary_installs++;
            pthread_mutex_unlock(&s->lock);
            return SIMPLER_OK;
        }
        if (errno != EEXIST)
            rc = simpler_fail(SIMPLER_E_SYSTEM, "binary install: renaming to %s: %s", path, strerror(errno));
    }
    unlink(tmp);
    return rc;
}

/* ------------------------------------------------------------------ */
/* the client's device context */

/* The client's context, started on the first request that needs one:
 * hosts that only ask after the device (status, stop) never cost one.
 * It is told of the blocks the client allocated before it existed. */
static int context_get(devsrv *s, dev_client *c)
{
    if (c->ctx.pid > 0)
        return SIMPLER_OK;
    if (c->ctx_lost)
        return simpler_fail(SIMPLER_E_DEVICE_LOST, "%s", c->ctx_lost_why[0] ? c->ctx_lost_why
                            : "the device context of this host process was lost; create a new worker");
    devctx_config cfg = {s->context_exe, s->device_id, s->store, s->gm_fd, s->turns_fd, (uint64_t)(uintptr_t)s->gm,
                         s->gm_capacity};
    int rc = devctx_start(&c->ctx, &cfg);
    for (uint64_t i = 0; !rc && i < c->allocs.cap; i++)
        if (c->allocs.slots[i].state == 1)
            rc = devctx_map(&c->ctx, c->allocs.slots[i].key, c->allocs.slots[i].size);
    if (rc)
        devctx_end(&c->ctx);
    else
        atomic_fetch_add(&s->contexts_started, 1);
    return rc;
}

/* The context is gone (or said its chip is lost): end it for good; the
 * connection closes after this reply, which frees the client's GM. */
static void context_lost(dev_client *c)
{
    devctx_end(&c->ctx);
    c->ctx_lost = 1;
    c->close_after_reply = 1;
}

/* Forward a request to the context; its reply becomes ours, as it is. */
static int forward(devsrv *s, dev_client *c, const onb_header *h, const void *p, uint64_t silence_ns,
                   int watch_client, dev_reply *r)
{
    int rc = context_get(s, c);
    if (rc) {
        if (rc == SIMPLER_E_DEVICE_LOST)
            c->close_after_reply = 1;
        return rc;
    }
    void *reply;
    uint32_t size;
    int broke = 0;
    rc = devctx_forward(&c->ctx, c->fd, watch_client, h, p, silence_ns, &reply, &size, &broke);
    if (broke)
        c->close_after_reply = 1;
    if (rc) {
        context_lost(c);
        return rc;
    }
    onb_reply head;
    memcpy(&head, reply, sizeof head);
    if (head.status == SIMPLER_E_DEVICE_LOST)
        context_lost(c);
    r->data = r->owned = reply;
    r->size = size;
    r->raw = 1;
    return SIMPLER_OK;
}

static int do_executor_register(devsrv *s, dev_client *c, const onb_header *h, const onb_gm *in, dev_reply *r)
{
    int rc = owned(c, in->addr, in->size, "executor register");
    return rc ? rc : forward(s, c, h, in, DEV_CONTEXT_WAIT_NS, 0, r);
}

static int do_callable_load(devsrv *s, dev_client *c, const onb_header *h, const onb_callable_load *in,
                            dev_reply *r)
{
    if (in->flags & ~ONB_LOAD_ORCHESTRATION)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "callable load: unknown flags 0x%x", in->flags);
    int rc = owned(c, in->addr, in->size, "callable load");
    return rc ? rc : forward(s, c, h, in, DEV_CONTEXT_WAIT_NS, 0, r);
}

/* Releasing in a context that does not exist: nothing was registered. */
static int do_release(devsrv *s, dev_client *c, const onb_header *h, const onb_handle *in, dev_reply *r)
{
    if (c->ctx.pid <= 0 && !c->ctx_lost)
        return simpler_fail(SIMPLER_E_NOT_FOUND, "%s: %" PRIu64 " is not registered by this client",
                            h->type == ONB_EXECUTOR_RELEASE ? "executor release" : "callable release", in->handle);
    return forward(s, c, h, in, DEV_CONTEXT_WAIT_NS, 0, r);
}

/* A launch that lost its context: the client is closed after this reply
 * and its GM freed (a large block's pages punched), so the failure report
 * the chip left in GM goes into the reply, after the message (onb_reply's
 * reserved is the message's length then). */
static int reply_with_report(const simpler_launch_params *p, int status, const char *msg, uint32_t msg_len,
                             dev_reply *r)
{
    const simpler_failure_report *report = (const simpler_failure_report *)(uintptr_t)p->failure_addr;
    if (!p->failure_addr || report->magic != SIMPLER_REPORT_MAGIC)
        return 0;
    uint8_t *out = malloc(sizeof(onb_reply) + msg_len + sizeof *report);
    if (!out)
        return 0;
    onb_reply head = {status, msg_len};
    memcpy(out, &head, sizeof head);
    memcpy(out + sizeof head, msg, msg_len);
    memcpy(out + sizeof head + msg_len, report, sizeof *report);
    free(r->owned);
    r->data = r->owned = out;
    r->size = (uint32_t)(sizeof head + msg_len + sizeof *report);
    r->raw = 1;
    return 1;
}

static int lost_with_report(const simpler_launch_params *p, int rc, dev_reply *r)
{
    const char *msg = simpler_last_error();
    return rc == SIMPLER_E_DEVICE_LOST && reply_with_report(p, rc, msg, (uint32_t)strlen(msg), r) ? SIMPLER_OK : rc;
}

static int raw_lost_with_report(const simpler_launch_params *p, dev_reply *r)
{
    onb_reply head;
    memcpy(&head, r->data, sizeof head);
    if (head.status == SIMPLER_E_DEVICE_LOST && !head.reserved) {
        uint8_t *old = r->owned;
        r->owned = NULL;
        if (!reply_with_report(p, head.status, (const char *)old + sizeof head, r->size - (uint32_t)sizeof head, r))
            r->owned = old;
        else
            free(old);
    }
    return SIMPLER_OK;
}

/* A launch sent on the connection rather than the launch link: relayed
 * (the context takes its turn on the chip itself). It gets the op
 * deadline and a margin to answer; it sends a heartbeat while work
 * progresses or it waits for its turn. */
static int launch(devsrv *s, dev_client *c, const onb_header *h, const onb_launch *in, dev_reply *r)
{
    const simpler_launch_params *p = &in->params;
    int rc = owned(c, p->image_addr, 64, "launch image");
    if (!rc && p->trace_addr)
        rc = owned(c, p->trace_addr, sizeof(simpler_trace), "launch trace");
    if (!rc && p->failure_addr)
        rc = onb_report_check(p, addr_map_get(&c->allocs, p->image_addr)->size);
    if (rc)
        return rc;
    uint64_t silence = (uint64_t)p->scheduler_timeout_ms * 1000000ull + DEV_OP_MARGIN_NS + DEV_CONTEXT_MARGIN_NS;
    rc = forward(s, c, h, in, silence, 1, r);
    return rc ? lost_with_report(p, rc, r) : r->raw ? raw_lost_with_report(p, r) : rc;
}

/* The host's end of the launch link, once: from then on its launches go
 * to its context directly. */
static int do_launch_link(devsrv *s, dev_client *c, dev_reply *r)
{
    int rc = context_get(s, c);
    if (rc) {
        if (rc == SIMPLER_E_DEVICE_LOST)
            c->close_after_reply = 1;
        return rc;
    }
    if (c->ctx.host_end < 0)
        return simpler_fail(SIMPLER_E_STATE, "LAUNCH_LINK: this connection's launch link was handed over already");
    onb_launch_link_result *o = reply_struct(r, sizeof *o);
    o->context_pid = (uint64_t)c->ctx.pid;
    r->pass_fd = c->ctx.host_end;
    r->close_pass_fd = 1;
    c->ctx.host_end = -1;
    return SIMPLER_OK;
}

/* The host's launch link broke or went silent: the context is ended (a
 * silent one at once), and the reply says how it ended. */
static int do_context_end(dev_client *c, const onb_context_end *in)
{
    if (in->hung > 1)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "CONTEXT_END: hung is 0 or 1, not %u", in->hung);
    int rc = c->ctx.pid > 0 || c->ctx_lost || c->ctx.lost_how[0]
                 ? devctx_end_for_host(&c->ctx, (int)in->hung)
                 : simpler_fail(SIMPLER_E_STATE, "CONTEXT_END: this connection has no device context");
    if (rc == SIMPLER_E_DEVICE_LOST)
        context_lost(c);
    return rc;
}

/* ------------------------------------------------------------------ */
/* the rest */

static int do_hello(devsrv *s, dev_client *c, const onb_hello *in, dev_reply *r)
{
    c->hello = 1;
    c->pid = in->pid;
    c->quota = in->gm_quota && in->gm_quota < s->gm_capacity ? in->gm_quota : s->gm_capacity;
    onb_hello_result *out = reply_struct(r, sizeof *out);
    out->gm_base = (uint64_t)(uintptr_t)s->gm;
    out->gm_capacity = s->gm_capacity;
    out->build = s->build;
    out->instance = s->instance;
    out->device_pid = (uint32_t)getpid();
    out->clients = atomic_load(&s->clients);
    r->pass_fd = s->gm_fd;
    return SIMPLER_OK;
}

/* The client's figures and the device's; those of the chip (threads,
 * resets, executors, loaded objects) are its context's, asked for when it
 * has one. */
static int do_counters(devsrv *s, dev_client *c, const onb_header *h, dev_reply *r)
{
    onb_counters ctx = {0};
    if (c->ctx_lost) {      /* it died between requests: the worker is lost, as its next run would say */
        c->close_after_reply = 1;
        return simpler_fail(SIMPLER_E_DEVICE_LOST, "%s", c->ctx_lost_why[0] ? c->ctx_lost_why
                            : "the device context of this host process was lost; create a new worker");
    }
    if (c->ctx.pid > 0) {
        dev_reply fwd = {0};
        int rc = forward(s, c, h, NULL, DEV_CONTEXT_WAIT_NS, 0, &fwd);
        if (rc)
            return rc;
        onb_reply head;
        memcpy(&head, fwd.data, sizeof head);
        if (head.status == SIMPLER_OK && fwd.size == sizeof head + sizeof ctx)
            memcpy(&ctx, (uint8_t *)fwd.data + sizeof head, sizeof ctx);
        free(fwd.owned);
    }
    onb_counters *o = reply_struct(r, sizeof *o);
    o->committed_bytes = c->committed;
    o->peak_committed_bytes = c->peak;
    o->live_allocations = c->allocs.live;
    o->loaded_objects = ctx.loaded_objects;
    o->gm_capacity = s->gm_capacity;
    o->device_committed_bytes = atomic_load(&s->committed);
    o->clients = atomic_load(&s->clients);
    o->core_threads = ctx.core_threads;
    o->aicpu_threads = ctx.aicpu_threads;
    o->core_resets = ctx.core_resets;
    o->executor_registrations = ctx.executor_registrations;
    o->executor_loads = ctx.executor_loads;
    pthread_mutex_lock(&s->lock);
    o->binary_uploads = s->binary_uploads;
    o->binary_installs = s->binary_installs;
    pthread_mutex_unlock(&s->lock);
    o->launches = atomic_load(&s->turns->launches);
    o->device_pid = (uint64_t)getpid();
    o->context_pid = (uint64_t)(c->ctx.pid > 0 ? c->ctx.pid : 0);
    o->peer_windows = ctx.peer_windows;
    o->uptime_ms = (simpler_now_ns() - s->start_ns) / 1000000ull;
    return SIMPLER_OK;
}

static int do_shutdown(devsrv *s, dev_client *c, const onb_shutdown *in)
{
    uint32_t others = atomic_load(&s->clients) - 1;
    if (others && !in->force)
        return simpler_fail(SIMPLER_E_STATE, "%u other host process%s connected; stop with force to end %s anyway",
                            others, others == 1 ? " is" : "es are", others == 1 ? "it" : "them");
    c->exit_after_reply = 1;
    return SIMPLER_OK;
}

static const char *type_name(uint16_t t)
{
    static const char *names[ONB_TYPE_END] = {
        [ONB_HELLO] = "HELLO", [ONB_GM_ALLOC] = "GM_ALLOC", [ONB_GM_FREE] = "GM_FREE",
        [ONB_BINARY_QUERY] = "BINARY_QUERY", [ONB_BINARY_INSTALL] = "BINARY_INSTALL",
        [ONB_EXECUTOR_REGISTER] = "EXECUTOR_REGISTER", [ONB_EXECUTOR_RELEASE] = "EXECUTOR_RELEASE",
        [ONB_CALLABLE_LOAD] = "CALLABLE_LOAD", [ONB_CALLABLE_RELEASE] = "CALLABLE_RELEASE",
        [ONB_LAUNCH] = "LAUNCH", [ONB_COUNTERS] = "COUNTERS", [ONB_SHUTDOWN] = "SHUTDOWN",
        [ONB_LAUNCH_LINK] = "LAUNCH_LINK", [ONB_CONTEXT_END] = "CONTEXT_END",
        [ONB_PEER_MAP] = "PEER_MAP", [ONB_PEER_UNMAP] = "PEER_UNMAP",
    };
    return t < ONB_TYPE_END && names[t] ? names[t] : NULL;
}

/* The payload size each request must have; 0: variable (checked later). */
static uint32_t request_size(uint16_t t)
{
    switch (t) {
    case ONB_HELLO: return sizeof(onb_hello);
    case ONB_GM_ALLOC: case ONB_GM_FREE: case ONB_EXECUTOR_REGISTER:
        return sizeof(onb_gm);
    case ONB_CALLABLE_LOAD:
        return sizeof(onb_callable_load);
    case ONB_BINARY_QUERY: return sizeof(onb_binary);
    case ONB_EXECUTOR_RELEASE: case ONB_CALLABLE_RELEASE: return sizeof(onb_handle);
    case ONB_LAUNCH: return sizeof(onb_launch);
    case ONB_COUNTERS: case ONB_LAUNCH_LINK: return 0;
    case ONB_SHUTDOWN: return sizeof(onb_shutdown);
    case ONB_CONTEXT_END: return sizeof(onb_context_end);
    case ONB_PEER_MAP: return sizeof(onb_peer_map);
    case ONB_PEER_UNMAP: return sizeof(onb_peer_window);
    default: return 0;
    }
}

static int dispatch(devsrv *s, dev_client *c, const onb_header *h, const void *p, dev_reply *r)
{
    const char *name = type_name(h->type);
    if (h->version != ONB_VERSION)
        return simpler_fail(SIMPLER_E_UNSUPPORTED,
                            "driver protocol version %u, but this simpler-device speaks version %u: stop it "
                            "(python -m simpler device stop --force) to start the installed one",
                            h->version, ONB_VERSION);
    if (!name)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "unknown message type %u", h->type);
    if (!c->hello && h->type != ONB_HELLO)
        return simpler_fail(SIMPLER_E_STATE, "%s before HELLO", name);
    if (c->hello && h->type == ONB_HELLO)
        return simpler_fail(SIMPLER_E_STATE, "a second HELLO");
    uint32_t want = request_size(h->type);
    int exact = h->type != ONB_BINARY_INSTALL;
    if (h->type == ONB_BINARY_INSTALL)
        want = sizeof(onb_binary);
    if (exact ? h->size != want : h->size < want)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "%s: payload of %u bytes, expected %s%u", name, h->size,
                            exact ? "" : "at least ", want);
    switch (h->type) {
    case ONB_HELLO: return do_hello(s, c, p, r);
    case ONB_GM_ALLOC: return do_gm_alloc(s, c, p, r);
    case ONB_GM_FREE: return do_gm_free(s, c, p, r);
    case ONB_BINARY_QUERY: return do_binary_query(s, p, r);
    case ONB_BINARY_INSTALL: return do_binary_install(s, p, h->size, r);
    case ONB_EXECUTOR_REGISTER: return do_executor_register(s, c, h, p, r);
    case ONB_EXECUTOR_RELEASE: case ONB_CALLABLE_RELEASE: return do_release(s, c, h, p, r);
    case ONB_CALLABLE_LOAD: return do_callable_load(s, c, h, p, r);
    case ONB_LAUNCH: return launch(s, c, h, p, r);
    case ONB_COUNTERS: return do_counters(s, c, h, r);
    case ONB_SHUTDOWN: return do_shutdown(s, c, p);
    case ONB_LAUNCH_LINK: return do_launch_link(s, c, r);
    case ONB_CONTEXT_END: return do_context_end(c, p);
    case ONB_PEER_MAP: case ONB_PEER_UNMAP:
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "%s goes on the launch link, to the device context", name);
    }
    return SIMPLER_E_INVALID_ARGUMENT;      /* not reached: type_name knows every type */
}

static int answer(dev_client *c, const onb_header *h, int rc, dev_reply *r)
{
    onb_reply head = {rc, 0};
    const char *msg = simpler_last_error();
    int w = rc == SIMPLER_OK && r->raw
                ? onb_send(c->fd, (uint16_t)(h->type | ONB_REPLY), h->seq, r->data, r->size, NULL, 0, -1)
            : rc == SIMPLER_OK
                ? onb_send(c->fd, (uint16_t)(h->type | ONB_REPLY), h->seq, &head, sizeof head, r->data, r->size,
                           r->pass_fd)
                : onb_send(c->fd, (uint16_t)(h->type | ONB_REPLY), h->seq, &head, sizeof head, msg,
                           (uint32_t)strlen(msg), -1);
    if (r->close_pass_fd && r->pass_fd >= 0)
        close(r->pass_fd);
    free(r->owned);
    return w;
}

/* Free everything the client held: its context first (its process, and
 * with it every mapping of the client's GM), then the GM. */
static void client_cleanup(devsrv *s, dev_client *c)
{
    devctx_end(&c->ctx);
    for (uint64_t i = 0; i < c->allocs.cap; i++)
        if (c->allocs.slots[i].state == 1)
            gm_release(s, c, c->allocs.slots[i].key, NULL);
    addr_map_free(&c->allocs);
}

void devsrv_admit(devsrv *s) { atomic_fetch_add(&s->clients, 1); }

void devsrv_serve(devsrv *s, int fd)
{
    dev_client c = {.fd = fd, .ctx = {.fd = -1, .words = -1, .host_end = -1, .release = gm_return,
                                      .release_arg = s}};
    for (;;) {
        onb_header h;
        void *payload;
        /* Between requests, the context's acknowledgements of freed
         * blocks are taken in, so the heap has them back at once. */
        if (devctx_wait_client(&c.ctx, fd, DEV_SPIN_NS) == SIMPLER_E_DEVICE_LOST) {
            c.ctx_lost = 1;
            snprintf(c.ctx_lost_why, sizeof c.ctx_lost_why, "%s", simpler_last_error());
        }
        int rc = onb_recv(fd, &h, &payload, NULL, -1, 0);
        if (rc == ONB_WIRE_MALFORMED) {
            dev_reply r = {0};
            simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "malformed message (bad magic or a payload over %u bytes); "
                         "closing the connection", ONB_MAX_PAYLOAD);
            answer(&c, &h, SIMPLER_E_INVALID_ARGUMENT, &r);
        }
        if (rc)
            break;
        if (h.type == ONB_CANCEL) { /* for a launch that has already ended: nothing to answer */
            free(payload);
            continue;
        }
        dev_reply r = {.pass_fd = -1};
        c.seq = h.seq;
        simpler_clear_error();
        rc = dispatch(s, &c, &h, payload, &r);
        free(payload);
        int sent = answer(&c, &h, rc, &r);
        if (c.exit_after_reply)     /* only now: the reply says why */
            atomic_store(&s->exit_requested, 1);
        if (sent != ONB_WIRE_OK || c.close_after_reply)
            break;
    }
    client_cleanup(s, &c);
    close(fd);
    atomic_fetch_sub(&s->clients, 1);
}

/* ------------------------------------------------------------------ */
/* the device */

/* The segment at one of the hinted addresses if it can (a context must
 * find the same range free in its own fresh address space), else where
 * the system puts it. */
static uint8_t *map_gm(int fd, uint64_t capacity)
{
    for (size_t i = 0; i < sizeof dev_gm_hints / sizeof *dev_gm_hints; i++) {
        void *want = (void *)(uintptr_t)dev_gm_hints[i];
        void *got = mmap(want, capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
                         fd, 0);
        if (got == want)
            return got;
        if (got != MAP_FAILED)          /* a kernel without MAP_FIXED_NOREPLACE took it as a hint */
            munmap(got, capacity);
    }
    void *got = mmap(NULL, capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    return got == MAP_FAILED ? NULL : got;
}

int devsrv_create(const devsrv_config *cfg, devsrv **out)
{
    devsrv *s = calloc(1, sizeof *s);
    if (!s)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "device: out of host memory");
    s->device_id = cfg->device_id;
    snprintf(s->name, sizeof s->name, "simpler-device %d", (int)cfg->device_id);
    snprintf(s->dir, sizeof s->dir, "%s", cfg->dir);
    s->build = cfg->build;
    s->context_exe = cfg->context_exe;
    s->start_ns = simpler_now_ns();
    s->instance = s->start_ns ^ ((uint64_t)getpid() << 40);
    s->gm_capacity = (cfg->gm_capacity + 4095) & ~4095ull;
    s->gm_fd = s->turns_fd = -1;
    pthread_mutex_init(&s->lock, NULL);
    int rc = onb_store_dir(s->store, sizeof s->store, s->dir);
    if (!rc)
        rc = devctx_turns_create(&s->turns_fd, &s->turns);
    if (rc)
        goto fail;
    char name[64];
    snprintf(name, sizeof name, "simpler-gm-%d", (int)cfg->device_id);
    s->gm_fd = memfd_create(name, MFD_CLOEXEC);
    if (s->gm_fd < 0 || ftruncate(s->gm_fd, (off_t)s->gm_capacity) != 0) {
        rc = simpler_fail(SIMPLER_E_SYSTEM, "device: cannot create %" PRIu64 " bytes of GM: %s", s->gm_capacity,
                          strerror(errno));
        goto fail;
    }
    if (!(s->gm = map_gm(s->gm_fd, s->gm_capacity))) {
        rc = simpler_fail(SIMPLER_E_SYSTEM, "device: cannot map GM: %s", strerror(errno));
        goto fail;
    }
    if ((rc = gm_heap_init(&s->heap, (uint64_t)(uintptr_t)s->gm, s->gm_capacity)))
        goto fail;
    *out = s;
    return SIMPLER_OK;
fail:
    devsrv_destroy(s);
    return rc;
}

void devsrv_destroy(devsrv *s)
{
    if (!s)
        return;
    if (s->heap.free_list)
        gm_heap_destroy(&s->heap);
    if (s->gm)
        munmap(s->gm, s->gm_capacity);
    if (s->gm_fd >= 0)
        close(s->gm_fd);
    devctx_turns_destroy(s->turns_fd, s->turns);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

uint32_t devsrv_clients(devsrv *s) { return atomic_load(&s->clients); }

int devsrv_gm_fd(devsrv *s) { return s->gm_fd; }

int devsrv_exit_requested(devsrv *s) { return atomic_load(&s->exit_requested); }

uint64_t devsrv_contexts_started(devsrv *s) { return atomic_load(&s->contexts_started); }
