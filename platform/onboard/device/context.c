/*
 * A device context (context.h): the process that runs one client's chip.
 *
 *   simpler-device --context --device-id N --gm-base ADDR --gm-capacity BYTES --store DIR
 *
 * exec'd by the server with its link on fd 3, a last-words pipe on fd 4,
 * the GM memfd on fd 5, its end of its host's launch link on fd 6, its
 * map ring on fd 7 and the device's turns on fd 8. It answers the
 * requests the server forwards (executors, callables, its counters,
 * UNMAP), and its host's launches, one at a time, taking in the map ring
 * before each; it exits when the server's link closes. What it can touch
 * of GM is only what the server told it to map.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chip/chip.h"
#include "chip/kernel_set.h"
#include "common/addr_map.h"
#include "common/array.h"
#include "common/error.h"
#include "common/hash.h"
#include "common/so_load.h"
#include "common/wait.h"
#include "onboard/device/context.h"

/* How long the chip waits beyond the scheduler watchdog before the op
 * times out; the server waits longer (server.c), the host longer still
 * (driver.c). */
#define CTX_OP_MARGIN_NS 5000000000ull
/* After a reply the next request usually follows at once. */
#define CTX_SPIN_NS 50000ull
/* While it waits for its turn, a context says it is busy for this long
 * at a time (it renews it each second). */
#define CTX_TURN_BUSY_NS 2000000000ull
/* A CANCEL that has begun to arrive is read whole within this. */
#define CTX_CANCEL_READ_NS 1000000000ull

/* An AICore executor, shared by every registration of the same bytes. */
typedef struct ctx_executor {
    uint64_t id, hash, size;
    void *bytes;                    /* for the byte comparison on a hash hit */
    void *so;
    simpler_aicore_main_fn main;
    uint32_t refs;
} ctx_executor;

/* An installed AICPU runtime, loaded on its first launch and kept. */
typedef struct ctx_runtime {
    struct ctx_runtime *next;
    uint64_t fingerprint;
    void *so;
    simpler_aicpu_main_fn main;
} ctx_runtime;

/* A registration handle and what it stands for. */
typedef struct ctx_held {
    uint64_t id;
    void *obj;                      /* kernel_set or ctx_executor */
} ctx_held;

typedef struct ctx {
    int32_t device_id;
    char name[48];
    char store[4200];
    uint8_t *gm;
    uint64_t gm_capacity;
    addr_map mapped;                /* the client's blocks: address -> size */
    addr_map windows;               /* other devices' GM mapped for the kernels: address -> length, tag its mapping */
    chip chip;
    ctx_held *callables, *executors;
    uint32_t num_callables, num_executors;
    uint64_t cap_callables, cap_executors;
    ctx_runtime *runtimes;
    uint64_t next_id, loaded_objects, executor_registrations, executor_loads;
    devctx_ring *ring;              /* the blocks the server announces */
    devctx_turns *turns;            /* the device's turns on the chip */
    int host_fd;                    /* the launch link, -1 once its host closed it */
    int req_fd;                     /* where the request being answered came from */
    uint32_t seq;                   /* of the request being answered */
    int close_after_reply;          /* the link broke during a launch */
} ctx;

/* One per process: the signal handler and the fork handler need it. */
static ctx g_ctx;

/* A reply's result: a struct, or bytes of the heap. */
typedef struct ctx_reply {
    uint8_t small[sizeof(onb_counters)];
    void *data;
    uint32_t size;
    void *owned;                    /* freed after sending */
} ctx_reply;

static void *reply_struct(ctx_reply *r, uint32_t size)
{
    memset(r->small, 0, sizeof r->small);
    r->data = r->small;
    r->size = size;
    return r->small;
}

/* ------------------------------------------------------------------ */
/* handles */

static int hold(ctx_held **arr, uint32_t *n, uint64_t *cap, void *obj, uint64_t *id_out)
{
    if (array_reserve(arr, cap, (uint64_t)*n + 1, sizeof **arr))
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "device context: out of host memory");
    (*arr)[*n] = (ctx_held){++g_ctx.next_id, obj};
    *id_out = (*arr)[(*n)++].id;
    return SIMPLER_OK;
}

static void *unhold(ctx_held *arr, uint32_t *n, uint64_t id)
{
    for (uint32_t i = 0; i < *n; i++)
        if (arr[i].id == id) {
            void *obj = arr[i].obj;
            memmove(&arr[i], &arr[i + 1], (*n - i - 1) * sizeof *arr);
            (*n)--;
            return obj;
        }
    return NULL;
}

static void *held(const ctx_held *arr, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (arr[i].id == id)
            return arr[i].obj;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* GM */

/* [addr, addr + size) inside one block this context maps, starting at
 * addr. The server has checked it already; a context checks again so a
 * request it could not serve is an error, not a fault. */
static int mapped(ctx *c, uint64_t addr, uint64_t size, const char *what)
{
    addr_entry *e = addr_map_get(&c->mapped, addr);
    if (!e || e->size < size)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT,
                            "%s: 0x%" PRIx64 " (+%" PRIu64 ") is not an allocation of this client", what, addr,
                            size);
    return SIMPLER_OK;
}

static int in_segment(ctx *c, uint64_t addr, uint64_t size)
{
    uint64_t base = (uint64_t)(uintptr_t)c->gm;
    return (addr & 4095) == 0 && (size & 4095) == 0 && size && addr >= base && addr - base <= c->gm_capacity &&
           size <= c->gm_capacity - (addr - base);
}

/* Back to the reservation: inaccessible, and still ours, so no later
 * mapping (a kernel's library) lands inside the GM range. */
static int reserve(void *addr, uint64_t size, int flags)
{
    return mmap(addr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | flags, -1, 0) == addr ? 0 : -1;
}

static int do_map(ctx *c, const onb_gm *in)
{
    if (!in_segment(c, in->addr, in->size))
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "GM map: [0x%" PRIx64 ", +%" PRIu64 ") is not whole pages "
                            "of the segment", in->addr, in->size);
    void *want = (void *)(uintptr_t)in->addr;
    off_t off = (off_t)(in->addr - (uint64_t)(uintptr_t)c->gm);
    if (mmap(want, in->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_NORESERVE, DEVCTX_FD_GM, off) !=
        want)
        return simpler_fail(SIMPLER_E_SYSTEM, "GM map of %" PRIu64 " bytes: %s", in->size, strerror(errno));
    if (addr_map_put(&c->mapped, in->addr, in->size, 0, 0) != 0) {
        reserve(want, in->size, MAP_FIXED);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "device context: out of host memory");
    }
    return SIMPLER_OK;
}

static void die_saying(const char *why);

/* Map every block the server has posted since the last look. A block
 * that cannot be mapped ends the context (its kernels would fault). */
static void take_ring(ctx *c)
{
    devctx_ring *r = c->ring;
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (head - tail > DEVCTX_RING_ENTRIES)
        die_saying("its map ring is corrupt");
    for (; tail != head; tail++) {
        devctx_entry *e = &r->entries[tail % DEVCTX_RING_ENTRIES];
        uint32_t posted = DEVCTX_ENTRY_POSTED;
        if (!atomic_compare_exchange_strong(&e->state, &posted, DEVCTX_ENTRY_TAKEN))
            continue;           /* freed before we looked */
        onb_gm in = {e->addr, e->size};
        if (do_map(c, &in))
            die_saying(simpler_last_error());
    }
    atomic_store_explicit(&r->tail, head, memory_order_release);
}

static int do_unmap(ctx *c, const onb_gm *in)
{
    addr_entry *e = addr_map_get(&c->mapped, in->addr);
    if (!e || e->size != in->size)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "GM unmap: 0x%" PRIx64 " is not mapped", in->addr);
    if (reserve((void *)(uintptr_t)in->addr, in->size, MAP_FIXED) != 0)
        return simpler_fail(SIMPLER_E_SYSTEM, "GM unmap: %s", strerror(errno));
    addr_map_remove(&c->mapped, in->addr);
    return SIMPLER_OK;
}

/* A private copy of GM bytes: the host can still write the block. */
static int copy_out(uint64_t addr, uint64_t size, void **out)
{
    if (!(*out = malloc(size ? size : 1)))
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "device context: out of host memory");
    memcpy(*out, (void *)(uintptr_t)addr, size);
    return SIMPLER_OK;
}

/* ------------------------------------------------------------------ */
/* peer windows */

/* Another device's GM segment (fd, its memfd) at [offset, +size), mapped
 * where the kernel chooses: not in the GM range, which stays this
 * client's own blocks. The mapping keeps the segment alive; fd is the
 * caller's to close. */
static int do_peer_map(ctx *c, const onb_peer_map *in, int fd, ctx_reply *r)
{
    if (fd < 0)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "PEER_MAP came without the peer's GM descriptor");
    struct stat st;
    if (fstat(fd, &st) != 0)
        return simpler_fail(SIMPLER_E_SYSTEM, "PEER_MAP: fstat: %s", strerror(errno));
    if (!in->size || in->offset > (uint64_t)st.st_size || in->size > (uint64_t)st.st_size - in->offset)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "PEER_MAP: [0x%" PRIx64 ", +%" PRIu64 ") is not inside the "
                            "peer's GM segment of %" PRIu64 " bytes", in->offset, in->size, (uint64_t)st.st_size);
    uint64_t lo = in->offset & ~4095ull, len = ((in->offset + in->size + 4095) & ~4095ull) - lo;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, (off_t)lo);
    if (m == MAP_FAILED)
        return simpler_fail(SIMPLER_E_SYSTEM, "PEER_MAP of %" PRIu64 " bytes: %s", len, strerror(errno));
    uint64_t addr = (uint64_t)(uintptr_t)m + (in->offset - lo);
    if (addr_map_put(&c->windows, addr, len, (uint64_t)(uintptr_t)m, 0) != 0) {
        munmap(m, len);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "device context: out of host memory");
    }
    ((onb_peer_window *)reply_struct(r, sizeof(onb_peer_window)))->addr = addr;
    return SIMPLER_OK;
}

static int do_peer_unmap(ctx *c, const onb_peer_window *in)
{
    addr_entry *e = addr_map_get(&c->windows, in->addr);
    if (!e)
        return simpler_fail(SIMPLER_E_NOT_FOUND, "PEER_UNMAP: 0x%" PRIx64 " is not a peer window of this context",
                            in->addr);
    munmap((void *)(uintptr_t)e->tag, e->size);
    addr_map_remove(&c->windows, in->addr);
    return SIMPLER_OK;
}

/* ------------------------------------------------------------------ */
/* executors, callables, runtimes */

static int do_executor_register(ctx *c, const onb_gm *in, ctx_reply *r)
{
    int rc = mapped(c, in->addr, in->size, "executor register");
    if (rc)
        return rc;
    if (in->size == 0)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "executor register: size is 0");
    void *bytes;
    if ((rc = copy_out(in->addr, in->size, &bytes)))
        return rc;
    uint64_t hash = simpler_fnv1a64(bytes, in->size);
    ctx_executor *e = NULL;
    for (uint32_t i = 0; i < c->num_executors && !e; i++) {
        ctx_executor *x = c->executors[i].obj;
        if (x->hash == hash && x->size == in->size && memcmp(x->bytes, bytes, in->size) == 0)
            e = x;
    }
    int fresh = !e;
    if (e) {
        free(bytes);
    } else if (!(e = calloc(1, sizeof *e))) {
        free(bytes);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "device context: out of host memory");
    } else {
        void *fn = NULL;
        e->hash = hash;
        e->size = in->size;
        e->bytes = bytes;
        rc = so_load(bytes, in->size, "AICore executor", &e->so);
        if (!rc && (rc = so_symbol(e->so, SIMPLER_AICORE_MAIN_SYMBOL, "AICore executor", &fn)))
            so_unload(e->so);
        if (rc) {
            free(bytes);
            free(e);
            return rc;
        }
        e->main = (simpler_aicore_main_fn)fn;
    }
    uint64_t id;
    if ((rc = hold(&c->executors, &c->num_executors, &c->cap_executors, e, &id))) {
        if (fresh) {
            so_unload(e->so);
            free(e->bytes);
            free(e);
        }
        return rc;
    }
    e->refs++;
    c->executor_loads += (uint64_t)fresh;
    c->executor_registrations++;
    ((onb_handle *)reply_struct(r, sizeof(onb_handle)))->handle = id;
    return SIMPLER_OK;
}

/* Drop one registration; the last one stops the cores running it and
 * unloads it (unless the chip is lost: a stuck core may still run it). */
static void executor_unref(ctx *c, ctx_executor *e)
{
    if (--e->refs)
        return;
    int lost = chip_is_lost(&c->chip);
    if (!lost && c->chip.aicore_main == e->main)
        chip_set_executor(&c->chip, NULL);
    if (!lost)
        so_unload(e->so);
    free(e->bytes);
    free(e);
}

static int do_executor_release(ctx *c, const onb_handle *in)
{
    ctx_executor *e = unhold(c->executors, &c->num_executors, in->handle);
    if (!e)
        return simpler_fail(SIMPLER_E_NOT_FOUND, "executor release: %" PRIu64 " is not registered by this client",
                            in->handle);
    executor_unref(c, e);
    return SIMPLER_OK;
}

static int do_callable_load(ctx *c, const onb_callable_load *in, ctx_reply *r)
{
    if (in->flags & ~ONB_LOAD_ORCHESTRATION)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "callable load: unknown flags 0x%x", in->flags);
    int rc = mapped(c, in->addr, in->size, "callable load");
    void *blob;
    if (rc || (rc = copy_out(in->addr, in->size, &blob)))
        return rc;
    kernel_set *k;
    rc = kernel_set_load(blob, in->size, in->flags & ONB_LOAD_ORCHESTRATION, &k);
    free(blob);
    if (rc)
        return rc;
    uint32_t size = (uint32_t)(sizeof(onb_callable_result) + k->count * sizeof(uint64_t));
    onb_callable_result *out = calloc(1, size);
    uint64_t id = 0;
    if (!out || (rc = hold(&c->callables, &c->num_callables, &c->cap_callables, k, &id))) {
        free(out);
        kernel_set_unload(k);
        return rc ? rc : simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "device context: out of host memory");
    }
    out->handle = id;
    out->orchestration = k->orch_addr;
    out->num_kernels = k->count;
    for (uint32_t i = 0; i < k->count; i++)
        out->kernel_addrs[i] = k->kernels[i].addr;
    c->loaded_objects += k->objects;
    r->data = r->owned = out;
    r->size = size;
    return SIMPLER_OK;
}

static void callable_unload(ctx *c, kernel_set *k)
{
    c->loaded_objects -= k->objects;
    if (chip_is_lost(&c->chip))
        kernel_set_abandon(k);            /* a stuck core may still run it: keep it mapped */
    else
        kernel_set_unload(k);
}

static int do_callable_release(ctx *c, const onb_handle *in)
{
    kernel_set *k = unhold(c->callables, &c->num_callables, in->handle);
    if (!k)
        return simpler_fail(SIMPLER_E_NOT_FOUND, "callable release: %" PRIu64 " is not loaded by this client",
                            in->handle);
    callable_unload(c, k);
    return SIMPLER_OK;
}

/* The runtime a launch names, loaded from the store on first use. */
static int runtime_get(ctx *c, uint64_t fp, simpler_aicpu_main_fn *out)
{
    for (ctx_runtime *rt = c->runtimes; rt; rt = rt->next)
        if (rt->fingerprint == fp) {
            *out = rt->main;
            return SIMPLER_OK;
        }
    char path[4400];
    snprintf(path, sizeof path, "%s/aicpu-%016" PRIx64 ".so", c->store, fp);
    if (access(path, R_OK) != 0)
        return simpler_fail(SIMPLER_E_NOT_FOUND, "launch: no AICPU runtime %016" PRIx64 " is installed", fp);
    ctx_runtime *rt = calloc(1, sizeof *rt);
    if (!rt)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "device context: out of host memory");
    rt->fingerprint = fp;
    rt->so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!rt->so || !(rt->main = (simpler_aicpu_main_fn)dlsym(rt->so, SIMPLER_AICPU_MAIN_SYMBOL))) {
        int rc = simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "launch: AICPU runtime %s does not load: %s", path,
                              rt->so ? "no " SIMPLER_AICPU_MAIN_SYMBOL : dlerror());
        if (rt->so)
            dlclose(rt->so);
        free(rt);
        return rc;
    }
    rt->next = c->runtimes;
    c->runtimes = rt;
    *out = rt->main;
    return SIMPLER_OK;
}

/* ------------------------------------------------------------------ */
/* launches */

/* A heartbeat; with_counts: the running launch's counts (not while it
 * still waits for its turn: the chip's are the last launch's then). */
static void send_heartbeat(ctx *c, int with_counts)
{
    simpler_launch *L = &c->chip.launch;
    onb_progress p = {0};
    if (with_counts)
        p = (onb_progress){.blocks_completed = atomic_load(&L->blocks_completed),
                           .tasks_completed = atomic_load(&L->tasks_completed),
                           .tasks_submitted = atomic_load(&L->tasks_submitted), .has_counts = 1};
    onb_send(c->req_fd, ONB_PROGRESS, c->seq, &p, sizeof p, NULL, 0, -1);
}

static void send_progress(void *arg, int progressed)
{
    if (progressed)
        send_heartbeat(arg, 1);
}

/* While a launch runs only CANCEL may come; anything else, or a closed
 * link, stops it too. */
static int link_cancels(void *arg)
{
    ctx *c = arg;
    struct pollfd p = {c->req_fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0)
        return 0;
    onb_header h;
    void *payload;
    int w = onb_recv(c->req_fd, &h, &payload, NULL, (int64_t)CTX_CANCEL_READ_NS, 0);
    free(payload);
    if (w != ONB_WIRE_OK || h.type != ONB_CANCEL || h.seq != c->seq)
        c->close_after_reply = 1;
    return 1;
}

/* Say how long the launch being served may keep this context from the
 * server's requests (context.h); 0: not at all. Only a launch of the
 * host's link counts: the server knows of its own. */
static void set_busy(ctx *c, uint64_t for_ns)
{
    if (c->req_fd == c->host_fd || !for_ns)
        atomic_store_explicit(&c->ring->busy_until_ns, for_ns ? simpler_now_ns() + for_ns : 0,
                              memory_order_relaxed);
}

/* The context in its turn is hung past its deadline: kill it (the turn
 * then comes to a waiter as EOWNERDEAD; the device reaps the context and
 * tells its host). */
static void end_hung_holder(ctx *c)
{
    pid_t holder = atomic_load(&c->turns->holder_pid);
    uint64_t until = atomic_load(&c->turns->holder_until_ns);
    if (holder > 0 && holder != getpid() && simpler_now_ns() > until + DEVCTX_HUNG_MARGIN_NS) {
        fprintf(stderr, "%s (pid %d): the context in its turn on the chip (pid %d) is hung; ending it\n", c->name,
                (int)getpid(), (int)holder);
        kill(holder, SIGKILL);
    }
}

/* Take the device's turn on the chip, which another context's launch may
 * hold for long: the host hears a heartbeat each second meanwhile (so it
 * does not take a busy device for a hung one), and may cancel. */
static int turn_take(ctx *c)
{
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        int e = pthread_mutex_timedlock(&c->turns->chip, &ts);
        if (e == 0)
            return SIMPLER_OK;
        if (e == EOWNERDEAD) {      /* its holder died in its turn: the chip is ours, and consistent */
            pthread_mutex_consistent(&c->turns->chip);
            return SIMPLER_OK;
        }
        if (e != ETIMEDOUT && e != EINTR)
            return simpler_fail(SIMPLER_E_SYSTEM, "launch: the chip's turns: %s", strerror(e));
        set_busy(c, CTX_TURN_BUSY_NS);
        send_heartbeat(c, 0);
        end_hung_holder(c);
        if (link_cancels(c))
            return simpler_fail(SIMPLER_E_INTERRUPTED, "launch: cancelled while waiting for the chip");
    }
}

static int do_launch(ctx *c, const onb_launch *in)
{
    const simpler_launch_params *p = &in->params;
    ctx_executor *e = held(c->executors, c->num_executors, in->executor);
    if (!e)
        return simpler_fail(SIMPLER_E_NOT_FOUND, "launch: executor %" PRIu64 " is not registered by this client",
                            in->executor);
    int rc = mapped(c, p->image_addr, 64, "launch image");
    if (!rc && p->trace_addr)
        rc = mapped(c, p->trace_addr, sizeof(simpler_trace), "launch trace");
    if (!rc && p->failure_addr)     /* the server checked it; the context trusts only what it mapped */
        rc = onb_report_check(p, addr_map_get(&c->mapped, p->image_addr)->size);
    simpler_aicpu_main_fn aicpu = NULL;
    if (!rc)
        rc = runtime_get(c, in->aicpu_fingerprint, &aicpu);
    if (!rc)
        rc = chip_set_executor(&c->chip, e->main);
    if (!rc && (rc = turn_take(c)))
        set_busy(c, 0);
    if (rc)
        return rc;
    atomic_fetch_add(&c->turns->launches, 1);
    uint64_t limit = (uint64_t)p->scheduler_timeout_ms * 1000000ull + CTX_OP_MARGIN_NS + CTX_TURN_BUSY_NS;
    set_busy(c, limit);
    atomic_store(&c->turns->holder_until_ns, simpler_now_ns() + limit);
    atomic_store(&c->turns->holder_pid, (int32_t)getpid());
    rc = chip_launch(&c->chip, aicpu, p, CTX_OP_MARGIN_NS,
                     &(chip_waiter){.progress = send_progress, .poll = link_cancels, .arg = c});
    atomic_store(&c->turns->holder_pid, 0);
    pthread_mutex_unlock(&c->turns->chip);
    set_busy(c, 0);
    return rc;
}

static int do_counters(ctx *c, ctx_reply *r)
{
    onb_counters *o = reply_struct(r, sizeof *o);
    o->live_allocations = c->mapped.live;
    o->loaded_objects = c->loaded_objects;
    o->core_threads = c->chip.num_core_threads;
    o->aicpu_threads = c->chip.num_aicpu_threads;
    o->core_resets = c->chip.core_resets;
    o->executor_registrations = c->executor_registrations;
    o->executor_loads = c->executor_loads;
    o->device_pid = (uint64_t)getpid();
    o->peer_windows = c->windows.live;
    return SIMPLER_OK;
}

/* The payload size each request must have. */
static int size_ok(uint16_t t, uint32_t n)
{
    switch (t) {
    case DEVCTX_MAP: case DEVCTX_UNMAP: case ONB_EXECUTOR_REGISTER: return n == sizeof(onb_gm);
    case ONB_EXECUTOR_RELEASE: case ONB_CALLABLE_RELEASE: return n == sizeof(onb_handle);
    case ONB_CALLABLE_LOAD: return n == sizeof(onb_callable_load);
    case ONB_LAUNCH: return n == sizeof(onb_launch);
    case ONB_COUNTERS: return n == 0;
    case ONB_PEER_MAP: return n == sizeof(onb_peer_map);
    case ONB_PEER_UNMAP: return n == sizeof(onb_peer_window);
    default: return 0;
    }
}

static int dispatch(ctx *c, const onb_header *h, const void *p, int fd, ctx_reply *r)
{
    if (!size_ok(h->type, h->size))
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "device context: message type %u with %u bytes", h->type,
                            h->size);
    switch (h->type) {
    case DEVCTX_MAP: return do_map(c, p);
    case DEVCTX_UNMAP: return do_unmap(c, p);
    case ONB_EXECUTOR_REGISTER: return do_executor_register(c, p, r);
    case ONB_EXECUTOR_RELEASE: return do_executor_release(c, p);
    case ONB_CALLABLE_LOAD: return do_callable_load(c, p, r);
    case ONB_CALLABLE_RELEASE: return do_callable_release(c, p);
    case ONB_LAUNCH: return do_launch(c, p);
    case ONB_COUNTERS: return do_counters(c, r);
    case ONB_PEER_MAP: return do_peer_map(c, p, fd, r);
    case ONB_PEER_UNMAP: return do_peer_unmap(c, p);
    }
    return SIMPLER_E_INVALID_ARGUMENT;      /* not reached: size_ok knows every type */
}

static int answer(uint16_t type, uint32_t seq, int rc, ctx_reply *r)
{
    onb_reply head = {rc, 0};
    const char *msg = simpler_last_error();
    int fd = g_ctx.req_fd;
    int w = rc == SIMPLER_OK ? onb_send(fd, type, seq, &head, sizeof head, r->data, r->size, -1)
                             : onb_send(fd, type, seq, &head, sizeof head, msg, (uint32_t)strlen(msg), -1);
    free(r->owned);
    return w;
}

/* ------------------------------------------------------------------ */
/* the process */

/* The context is dying: leave the server the line saying why (which
 * kernel), then die of the same signal. Async-signal-safe. */
static void on_fatal(int sig)
{
    char what[512], line[768];
    if (atomic_load(&g_ctx.chip.running))   /* the host reads it from GM */
        chip_failure_report(&g_ctx.chip, SIMPLER_E_DEVICE_LOST);
    chip_running_report(&g_ctx.chip, what, sizeof what);
    int n = snprintf(line, sizeof line, "%s (pid %d) died of %s%s%s\n", g_ctx.name, (int)getpid(),
                     chip_signal_name(sig), what[0] ? "; " : "", what);
    if (n > 0 && write(DEVCTX_FD_WORDS, line, (size_t)n) < 0) {
    }
    if (n > 0 && write(2, line, (size_t)n) < 0) {
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* In a child a kernel forked: none of the context's descriptors, and no
 * GM (the reservation comes back over the client's blocks): a child that
 * outlives its context must not write blocks the allocator has since
 * given another client. Only system calls here: the child of a threaded
 * process may call nothing that is not async-signal-safe. */
static void forget_in_child(void)
{
    for (int fd = DEVCTX_FD_LINK; fd <= DEVCTX_FD_LAST; fd++)
        close(fd);
    if (g_ctx.gm)
        reserve(g_ctx.gm, g_ctx.gm_capacity, MAP_FIXED);
    for (uint64_t i = 0; i < g_ctx.windows.cap; i++)     /* other devices' GM: not the child's either */
        if (g_ctx.windows.slots[i].state == 1)
            munmap((void *)(uintptr_t)g_ctx.windows.slots[i].tag, g_ctx.windows.slots[i].size);
}

/* A block the client was given cannot be mapped: its kernels would
 * fault on it, so the context ends, saying why. */
static void die_saying(const char *why)
{
    char line[1400];
    int n = snprintf(line, sizeof line, "%s (pid %d) ended: %s\n", g_ctx.name, (int)getpid(), why);
    if (n > 0 && write(DEVCTX_FD_WORDS, line, (size_t)n) < 0) {
    }
    if (n > 0 && write(2, line, (size_t)n) < 0) {
    }
    _exit(1);
}

static void install_signals(void)
{
    chip_catch_fatal_signals(on_fatal);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN);        /* a terminal's Ctrl-C is the host's to handle */
}

static int parse(ctx *c, int argc, char **argv, uint64_t *base)
{
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        char *end;
        if (strcmp(a, "--device-id") == 0)
            c->device_id = (int32_t)strtol(v, &end, 10);
        else if (strcmp(a, "--gm-base") == 0)
            *base = strtoull(v, &end, 0);
        else if (strcmp(a, "--gm-capacity") == 0)
            c->gm_capacity = strtoull(v, &end, 10);
        else if (strcmp(a, "--store") == 0)
            snprintf(c->store, sizeof c->store, "%s", v);
        else
            return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "device context: unknown option %s", a);
    }
    if (!*base || !c->gm_capacity || !c->store[0])
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "device context: --gm-base, --gm-capacity and --store "
                            "are required");
    return SIMPLER_OK;
}

/* Everything but the process's own start: the GM range at the server's
 * address (taken before anything else can be mapped there), the chip. */
static int setup(ctx *c, int argc, char **argv)
{
    uint64_t base = 0;
    int rc = parse(c, argc, argv, &base);
    if (rc)
        return rc;
    snprintf(c->name, sizeof c->name, "simpler-device %d context", (int)c->device_id);
    void *want = (void *)(uintptr_t)base;
    if (reserve(want, c->gm_capacity, MAP_FIXED_NOREPLACE) != 0)
        return simpler_fail(SIMPLER_E_SYSTEM, "device context: cannot reserve GM at 0x%" PRIx64 " (+%" PRIu64 "): %s",
                            base, c->gm_capacity, errno ? strerror(errno) : "the address is taken");
    c->gm = want;
    void *ring = mmap(NULL, sizeof *c->ring, PROT_READ | PROT_WRITE, MAP_SHARED, DEVCTX_FD_RING, 0);
    void *turns = mmap(NULL, sizeof *c->turns, PROT_READ | PROT_WRITE, MAP_SHARED, DEVCTX_FD_TURNS, 0);
    if (ring == MAP_FAILED || turns == MAP_FAILED)
        return simpler_fail(SIMPLER_E_SYSTEM, "device context: cannot map its ring and turns: %s", strerror(errno));
    c->ring = ring;
    c->turns = turns;
    c->host_fd = DEVCTX_FD_HOST;
    c->req_fd = DEVCTX_FD_LINK;
    pthread_atfork(NULL, NULL, forget_in_child);
    return chip_init(&c->chip, c->name);
}

/* The link closed: free everything and go. A lost chip may have threads
 * in device code: then only the process's end reclaims it. */
static int finish(ctx *c)
{
    if (chip_is_lost(&c->chip))
        _exit(1);
    while (c->num_callables)
        callable_unload(c, unhold(c->callables, &c->num_callables, c->callables[c->num_callables - 1].id));
    while (c->num_executors)
        executor_unref(c, unhold(c->executors, &c->num_executors, c->executors[c->num_executors - 1].id));
    if (chip_close(&c->chip))
        _exit(1);
    fflush(NULL);
    _exit(0);
}

static void close_host_link(ctx *c)
{
    if (c->host_fd >= 0)
        close(c->host_fd);
    c->host_fd = -1;
}

/* The link the next request comes on: the server's first (what it sent
 * comes before anything its host sent after hearing back), then the
 * host's; -1 once the server's link has closed. Spun for spin_ns. */
static int next_request(ctx *c, uint64_t spin_ns)
{
    uint64_t spin_until = simpler_now_ns() + spin_ns;
    for (;;) {
        struct pollfd p[2] = {{DEVCTX_FD_LINK, POLLIN, 0}, {c->host_fd, POLLIN, 0}};
        int r = poll(p, 2, simpler_now_ns() < spin_until ? 0 : -1);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r <= 0)
            continue;
        if (p[0].revents)
            return DEVCTX_FD_LINK;
        if (p[1].revents & POLLIN)
            return c->host_fd;
        if (p[1].revents)
            close_host_link(c);
    }
}

int devctx_main(int argc, char **argv)
{
    /* Nothing of the server's but the descriptors it gave (3..8). */
    close_range(DEVCTX_FD_LAST + 1, ~0u, 0);
    /* The spawn's dup2 cleared close-on-exec on them: set it again, so a
     * program a kernel starts (system, popen) inherits neither a link nor
     * the GM memfd. */
    for (int fd = DEVCTX_FD_LINK; fd <= DEVCTX_FD_LAST; fd++)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    /* A server that dies (killed as hung) takes its contexts with it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        _exit(1);
    ctx *c = &g_ctx;
    prctl(PR_SET_NAME, "simpler-context");  /* not "exe" (it runs as /proc/self/exe) in top and ps */
    install_signals();
    int rc = setup(c, argc, argv);
    onb_reply ready = {rc, 0};
    const char *msg = rc ? simpler_last_error() : "";
    if (onb_send(DEVCTX_FD_LINK, DEVCTX_READY, 0, &ready, sizeof ready, msg, (uint32_t)strlen(msg), -1) || rc)
        _exit(1);
    /* After a request the next one usually follows at once: it is spun
     * for. Not after an UNMAP: nobody waits for those, and on a machine
     * of few CPUs a third spinning process (beside the host and the
     * server, which do wait) would take the CPU from the ones that must
     * answer (measured: malloc + free 38 us without, 220 us with). */
    uint64_t spin = CTX_SPIN_NS;
    for (;;) {
        onb_header h;
        void *payload;
        int fd = -1;        /* a descriptor with the message: only a PEER_MAP's is kept (then closed) */
        int from = next_request(c, spin);
        if (from < 0)
            return finish(c);
        if (onb_recv(from, &h, &payload, from == c->host_fd ? &fd : NULL, (int64_t)CTX_CANCEL_READ_NS, 0) !=
            ONB_WIRE_OK) {
            if (from == DEVCTX_FD_LINK)
                return finish(c);
            close_host_link(c);     /* its host is gone or broke it: the server ends us soon */
            continue;
        }
        spin = h.type == DEVCTX_MAP || h.type == DEVCTX_UNMAP ? 0 : CTX_SPIN_NS;
        if (h.type == ONB_CANCEL) {     /* for a launch that has already ended */
            if (fd >= 0)
                close(fd);
            free(payload);
            continue;
        }
        take_ring(c);
        ctx_reply r = {0};
        c->seq = h.seq;
        c->req_fd = from;
        simpler_clear_error();
        /* The host may only launch and map its other devices' GM; the rest
         * is the server's to ask. */
        int hosts = h.type == ONB_LAUNCH || h.type == ONB_PEER_MAP || h.type == ONB_PEER_UNMAP;
        if (from == c->host_fd && !hosts)
            rc = simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "launch link: message type %u is not a LAUNCH, PEER_MAP "
                              "or PEER_UNMAP", h.type);
        else if (from != c->host_fd && hosts && h.type != ONB_LAUNCH)
            rc = simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "message type %u is the host's, on its launch link", h.type);
        else
            rc = dispatch(c, &h, payload, fd, &r);
        if (fd >= 0)
            close(fd);
        free(payload);
        if (h.type == DEVCTX_MAP && from == DEVCTX_FD_LINK) {   /* not answered: one that fails ends the context */
            if (rc)
                die_saying(simpler_last_error());
            continue;
        }
        int w = answer((uint16_t)(h.type | ONB_REPLY), h.seq, rc, &r);
        /* A lost chip is reset by ending the process: the host sees the
         * reply, then the exit. */
        if (chip_is_lost(&c->chip))
            _exit(1);
        if (from == DEVCTX_FD_LINK && (w != ONB_WIRE_OK || c->close_after_reply))
            return finish(c);
        if (from == c->host_fd && (w != ONB_WIRE_OK || c->close_after_reply))
            close_host_link(c);
        c->close_after_reply = 0;
    }
}
