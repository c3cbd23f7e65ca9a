/*
 * Answering the driver protocol (protocol.h) inside simpler-device.
 *
 * Every request is checked before it touches anything: its size against
 * its struct, the protocol version, HELLO first, and every GM address
 * against the allocations of the client that names it. A bad request gets
 * an error reply and the connection goes on; a stream that cannot be
 * framed any more (bad magic, oversized payload) is answered and closed.
 *
 * Locks: chip_lock (one launch at a time, and the cores' executor) is
 * taken before lock (the tables and counters); never the other way.
 */
#include "onboard/device/server.h"

#include <dlfcn.h>
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

#include "chip/chip.h"
#include "chip/kernel_set.h"
#include "common/addr_map.h"
#include "common/error.h"
#include "common/gm_heap.h"
#include "common/hash.h"
#include "common/so_load.h"
#include "onboard/paths.h"
#include "onboard/wire.h"

/* How long the chip waits beyond the scheduler watchdog before the op
 * times out; the host waits longer still (driver.c). */
#define DEV_OP_MARGIN_NS 5000000000ull
/* After a reply the next request usually follows at once. */
#define DEV_SPIN_NS 50000ull
/* A CANCEL that has begun to arrive is read whole within this. */
#define DEV_CANCEL_READ_NS 1000000000ull
/* Freed ranges this large go back to the system. */
#define DEV_PUNCH_BYTES (1u << 20)

/* An AICore executor, shared by every registration of the same bytes. */
typedef struct dev_executor {
    struct dev_executor *next;
    uint64_t id, hash, size;
    void *bytes;                    /* for the byte comparison on a hash hit */
    void *so;
    simpler_aicore_main_fn main;
    uint32_t refs;
} dev_executor;

/* An installed AICPU runtime, loaded on its first launch and kept. */
typedef struct dev_runtime {
    struct dev_runtime *next;
    uint64_t fingerprint;
    void *so;
    simpler_aicpu_main_fn main;
} dev_runtime;

struct devsrv {
    int32_t device_id;
    char name[40];
    char dir[4096], store[4200];
    uint64_t build, instance, start_ns;

    int gm_fd;
    uint8_t *gm;
    uint64_t gm_capacity;
    gm_heap heap;

    pthread_mutex_t chip_lock;
    chip chip;
    int chip_live;

    pthread_mutex_t lock;
    dev_executor *executors;
    dev_runtime *runtimes;
    uint64_t next_id;
    uint64_t binary_uploads, binary_installs, executor_registrations, executor_loads, launches;

    _Atomic uint32_t clients;
    _Atomic int exit_requested;
};

/* A registration handle and what it stands for. */
typedef struct dev_held {
    uint64_t id;
    void *obj;                      /* kernel_set or dev_executor */
} dev_held;

typedef struct dev_client {
    int fd;
    int hello;
    uint32_t pid;
    uint64_t quota;
    uint64_t committed, peak;
    addr_map allocs;                /* GM address -> size */
    dev_held *callables, *executors;
    uint32_t num_callables, num_executors;
    uint64_t loaded_objects;
    uint32_t seq;                   /* of the request being answered */
    int exit_after_reply;           /* SHUTDOWN accepted, or the chip lost */
    int close_after_reply;          /* the stream broke during a launch */
} dev_client;

/* A reply's result: a struct of the request's, or bytes of the heap. */
typedef struct dev_reply {
    uint8_t small[sizeof(onb_counters)];
    void *data;
    uint32_t size;
    int pass_fd;
    void *owned;                    /* freed after sending */
} dev_reply;

static void *reply_struct(dev_reply *r, uint32_t size)
{
    memset(r->small, 0, sizeof r->small);
    r->data = r->small;
    r->size = size;
    return r->small;
}

/* ------------------------------------------------------------------ */
/* growing arrays */

static int push(void **arr, uint32_t *n, size_t elem, const void *item)
{
    if (*n == 0 || (*n >= 4 && (*n & (*n - 1)) == 0)) {     /* full at 0, 4, 8, 16, ... */
        void *grown = realloc(*arr, (*n ? *n * 2 : 4) * elem);
        if (!grown)
            return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "device: out of host memory");
        *arr = grown;
    }
    memcpy((char *)*arr + (size_t)*n * elem, item, elem);
    (*n)++;
    return SIMPLER_OK;
}

static void drop(void *arr, uint32_t *n, size_t elem, uint32_t i)
{
    (*n)--;
    memmove((char *)arr + i * elem, (char *)arr + (i + 1) * elem, (*n - i) * elem);
}

static int find_held(const dev_held *h, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (h[i].id == id)
            return (int)i;
    return -1;
}

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

/* A private copy of GM bytes: the client can still write the segment. */
static int copy_out(devsrv *s, uint64_t addr, uint64_t size, void **out)
{
    if (!(*out = malloc(size ? size : 1)))
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "device: out of host memory");
    memcpy(*out, (void *)(uintptr_t)addr, size);
    return SIMPLER_OK;
}

/* Free one of the client's allocations. A large one's pages go back to
 * the system first, while the range is still allocated: once the heap has
 * it back another client may be handed it and write it, and a punch then
 * would zero what that client wrote. */
static void gm_release(devsrv *s, dev_client *c, uint64_t addr, uint64_t *size_out)
{
    uint64_t size = gm_heap_size_of(&s->heap, addr);
    if (size >= DEV_PUNCH_BYTES) {
        uint64_t lo = (addr + 4095) & ~4095ull, hi = (addr + size) & ~4095ull;
        if (hi > lo)
            fallocate(s->gm_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      (off_t)(lo - (uint64_t)(uintptr_t)s->gm), (off_t)(hi - lo));
    }
    if (gm_heap_free(&s->heap, addr, &size) != SIMPLER_OK)
        return;
    c->committed -= size;
    addr_map_remove(&c->allocs, addr);
    if (size_out)
        *size_out = size;
}

static int do_gm_alloc(devsrv *s, dev_client *c, const onb_gm *in, dev_reply *r)
{
    if (in->size == 0)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "GM alloc: size is 0");
    if (in->size > c->quota || c->committed + in->size > c->quota)
        return simpler_fail(SIMPLER_E_OUT_OF_MEMORY,
                            "GM exhausted: %" PRIu64 " bytes requested, %" PRIu64 " of this client's %" PRIu64
                            " bytes in use", in->size, c->committed, c->quota);
    uint64_t addr;
    int rc = gm_heap_alloc(&s->heap, in->size, &addr);
    if (rc)
        return rc;
    uint64_t size = gm_heap_size_of(&s->heap, addr);
    if (addr_map_put(&c->allocs, addr, size, 0, 0) != 0) {
        gm_heap_free(&s->heap, addr, NULL);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "device: out of host memory");
    }
    c->committed += size;
    if (c->committed > c->peak)
        c->peak = c->committed;
    onb_gm *out = reply_struct(r, sizeof *out);
    out->addr = addr;
    out->size = size;
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

/* The runtime a launch names, loaded from the store on first use. Called
 * with lock held. */
static int runtime_get(devsrv *s, uint64_t fp, simpler_aicpu_main_fn *out)
{
    for (dev_runtime *rt = s->runtimes; rt; rt = rt->next)
        if (rt->fingerprint == fp) {
            *out = rt->main;
            return SIMPLER_OK;
        }
    char path[4300];
    store_path(s, path, sizeof path, fp);
    if (access(path, R_OK) != 0)
        return simpler_fail(SIMPLER_E_NOT_FOUND, "launch: no AICPU runtime %016" PRIx64 " is installed", fp);
    dev_runtime *rt = calloc(1, sizeof *rt);
    if (!rt)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "device: out of host memory");
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
    rt->next = s->runtimes;
    s->runtimes = rt;
    *out = rt->main;
    return SIMPLER_OK;
}

/* ------------------------------------------------------------------ */
/* executors and callables */

static int do_executor_register(devsrv *s, dev_client *c, const onb_gm *in, dev_reply *r)
{
    int rc = owned(c, in->addr, in->size, "executor register");
    if (rc)
        return rc;
    if (in->size == 0)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "executor register: size is 0");
    void *bytes;
    if ((rc = copy_out(s, in->addr, in->size, &bytes)))
        return rc;
    uint64_t hash = simpler_fnv1a64(bytes, in->size);
    pthread_mutex_lock(&s->lock);
    dev_executor *e = s->executors;
    while (e && !(e->hash == hash && e->size == in->size && memcmp(e->bytes, bytes, in->size) == 0))
        e = e->next;
    if (e) {
        free(bytes);
    } else if (!(e = calloc(1, sizeof *e))) {
        free(bytes);
        rc = simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "device: out of host memory");
    } else {
        e->hash = hash;
        e->size = in->size;
        e->bytes = bytes;
        void *fn = NULL;
        rc = so_load(bytes, in->size, "AICore executor", &e->so);
        if (!rc && (rc = so_symbol(e->so, SIMPLER_AICORE_MAIN_SYMBOL, "AICore executor", &fn)))
            so_unload(e->so);
        if (rc) {
            free(bytes);
            free(e);
            e = NULL;
        } else {
            e->main = (simpler_aicore_main_fn)fn;
            e->id = ++s->next_id;
            e->next = s->executors;
            s->executors = e;
            s->executor_loads++;
        }
    }
    if (e) {
        dev_held h = {e->id, e};
        if (!(rc = push((void **)&c->executors, &c->num_executors, sizeof h, &h))) {
            e->refs++;
            s->executor_registrations++;
            ((onb_handle *)reply_struct(r, sizeof(onb_handle)))->handle = e->id;
        } else if (e->refs == 0) {  /* loaded just now for nobody: undo */
            s->executors = e->next;
            so_unload(e->so);
            free(e->bytes);
            free(e);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void send_progress(void *arg, int progressed);

/* Take the chip, which another client's launch may hold for long: the
 * waiting client hears a heartbeat each second, so its host does not take
 * a busy device for a hung one. */
static void chip_lock_wait(devsrv *s, dev_client *c)
{
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        if (pthread_mutex_timedlock(&s->chip_lock, &ts) == 0)
            return;
        if (c)
            send_progress(c, 1);
    }
}

/* Drop one reference; the last one stops cores running it and unloads it. */
static void executor_unref(devsrv *s, dev_client *c, dev_executor *e)
{
    chip_lock_wait(s, c);
    pthread_mutex_lock(&s->lock);
    if (--e->refs == 0) {
        dev_executor **p = &s->executors;
        while (*p != e)
            p = &(*p)->next;
        *p = e->next;
        int lost = chip_is_lost(&s->chip);
        if (!lost && s->chip.aicore_main == e->main)
            chip_set_executor(&s->chip, NULL);
        if (!lost)      /* a stuck core may still run it: keep it mapped */
            so_unload(e->so);
        free(e->bytes);
        free(e);
    }
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&s->chip_lock);
}

static int do_executor_release(devsrv *s, dev_client *c, const onb_handle *in)
{
    int i = find_held(c->executors, c->num_executors, in->handle);
    if (i < 0)
        return simpler_fail(SIMPLER_E_NOT_FOUND, "executor release: %" PRIu64 " is not registered by this client",
                            in->handle);
    dev_executor *e = c->executors[i].obj;
    drop(c->executors, &c->num_executors, sizeof *c->executors, (uint32_t)i);
    executor_unref(s, c, e);
    return SIMPLER_OK;
}

static int do_callable_load(devsrv *s, dev_client *c, const onb_callable_load *in, dev_reply *r)
{
    if (in->flags & ~ONB_LOAD_ORCHESTRATION)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "callable load: unknown flags 0x%x", in->flags);
    int rc = owned(c, in->addr, in->size, "callable load");
    void *blob;
    if (rc || (rc = copy_out(s, in->addr, in->size, &blob)))
        return rc;
    kernel_set *k;
    rc = kernel_set_load(blob, in->size, in->flags & ONB_LOAD_ORCHESTRATION, &k);
    free(blob);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->lock);
    dev_held h = {++s->next_id, k};
    pthread_mutex_unlock(&s->lock);
    onb_callable_result *out = NULL;
    uint32_t size = (uint32_t)(sizeof *out + k->count * sizeof(uint64_t));
    if (!(out = calloc(1, size)) || (rc = push((void **)&c->callables, &c->num_callables, sizeof h, &h))) {
        free(out);
        kernel_set_unload(k);
        return rc ? rc : simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "device: out of host memory");
    }
    out->handle = h.id;
    out->orchestration = k->orch_addr;
    out->num_kernels = k->count;
    for (uint32_t i = 0; i < k->count; i++)
        out->kernel_addrs[i] = k->kernels[i].addr;
    c->loaded_objects += k->objects;
    r->data = r->owned = out;
    r->size = size;
    return SIMPLER_OK;
}

static void callable_unload(devsrv *s, dev_client *c, uint32_t i)
{
    kernel_set *k = c->callables[i].obj;
    c->loaded_objects -= k->objects;
    drop(c->callables, &c->num_callables, sizeof *c->callables, i);
    if (chip_is_lost(&s->chip))
        kernel_set_abandon(k);            /* a stuck core may still run it: keep it mapped */
    else
        kernel_set_unload(k);
}

static int do_callable_release(devsrv *s, dev_client *c, const onb_handle *in)
{
    int i = find_held(c->callables, c->num_callables, in->handle);
    if (i < 0)
        return simpler_fail(SIMPLER_E_NOT_FOUND, "callable release: %" PRIu64 " is not loaded by this client",
                            in->handle);
    callable_unload(s, c, (uint32_t)i);
    return SIMPLER_OK;
}

/* ------------------------------------------------------------------ */
/* launches */

static void send_progress(void *arg, int progressed)
{
    dev_client *c = arg;
    if (progressed) {
        onb_progress p = {0};
        onb_send(c->fd, ONB_PROGRESS, c->seq, &p, sizeof p, NULL, 0, -1);
    }
}

/* While its launch runs a client may send only CANCEL. Anything else, or
 * a closed connection, stops the launch too: nobody waits for it, or the
 * stream cannot be trusted any more. */
static int client_cancels(void *arg)
{
    dev_client *c = arg;
    struct pollfd p = {c->fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0)
        return 0;
    onb_header h;
    void *payload;
    int w = onb_recv(c->fd, &h, &payload, NULL, (int64_t)DEV_CANCEL_READ_NS, 0);
    free(payload);
    if (w != ONB_WIRE_OK || h.type != ONB_CANCEL || h.seq != c->seq)
        c->close_after_reply = 1;
    return 1;
}

static int launch(devsrv *s, dev_client *c, const onb_launch *in)
{
    const simpler_launch_params *p = &in->params;
    int i = find_held(c->executors, c->num_executors, in->executor);
    if (i < 0)
        return simpler_fail(SIMPLER_E_NOT_FOUND, "launch: executor %" PRIu64 " is not registered by this client",
                            in->executor);
    dev_executor *e = c->executors[i].obj;
    int rc = owned(c, p->image_addr, 64, "launch image");
    if (!rc && p->trace_addr)
        rc = owned(c, p->trace_addr, sizeof(simpler_trace), "launch trace");
    if (rc)
        return rc;
    simpler_aicpu_main_fn aicpu = NULL;
    chip_lock_wait(s, c);
    pthread_mutex_lock(&s->lock);
    rc = runtime_get(s, in->aicpu_fingerprint, &aicpu);
    s->launches++;
    pthread_mutex_unlock(&s->lock);
    if (!rc)
        rc = chip_set_executor(&s->chip, e->main);
    if (!rc)
        rc = chip_launch(&s->chip, aicpu, p, DEV_OP_MARGIN_NS,
                         &(chip_waiter){.progress = send_progress, .poll = client_cancels, .arg = c});
    if (chip_is_lost(&s->chip))
        c->exit_after_reply = 1;
    pthread_mutex_unlock(&s->chip_lock);
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

static int do_counters(devsrv *s, dev_client *c, dev_reply *r)
{
    onb_counters *o = reply_struct(r, sizeof *o);
    o->committed_bytes = c->committed;
    o->peak_committed_bytes = c->peak;
    o->live_allocations = c->allocs.live;
    o->loaded_objects = c->loaded_objects;
    o->gm_capacity = s->gm_capacity;
    o->device_committed_bytes = gm_heap_committed(&s->heap);
    o->clients = atomic_load(&s->clients);
    pthread_mutex_lock(&s->lock);
    o->core_threads = s->chip.num_core_threads;
    o->aicpu_threads = s->chip.num_aicpu_threads;
    o->core_resets = s->chip.core_resets;
    o->binary_uploads = s->binary_uploads;
    o->binary_installs = s->binary_installs;
    o->executor_registrations = s->executor_registrations;
    o->executor_loads = s->executor_loads;
    o->launches = s->launches;
    pthread_mutex_unlock(&s->lock);
    o->device_pid = (uint64_t)getpid();
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
    case ONB_COUNTERS: return 0;
    case ONB_SHUTDOWN: return sizeof(onb_shutdown);
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
    case ONB_EXECUTOR_REGISTER: return do_executor_register(s, c, p, r);
    case ONB_EXECUTOR_RELEASE: return do_executor_release(s, c, p);
    case ONB_CALLABLE_LOAD: return do_callable_load(s, c, p, r);
    case ONB_CALLABLE_RELEASE: return do_callable_release(s, c, p);
    case ONB_LAUNCH: return launch(s, c, p);
    case ONB_COUNTERS: return do_counters(s, c, r);
    case ONB_SHUTDOWN: return do_shutdown(s, c, p);
    }
    return SIMPLER_E_INVALID_ARGUMENT;      /* not reached: type_name knows every type */
}

static int answer(dev_client *c, const onb_header *h, int rc, dev_reply *r)
{
    onb_reply head = {rc, 0};
    const char *msg = simpler_last_error();
    int w = rc == SIMPLER_OK
                ? onb_send(c->fd, (uint16_t)(h->type | ONB_REPLY), h->seq, &head, sizeof head, r->data, r->size,
                           r->pass_fd)
                : onb_send(c->fd, (uint16_t)(h->type | ONB_REPLY), h->seq, &head, sizeof head, msg,
                           (uint32_t)strlen(msg), -1);
    free(r->owned);
    return w;
}

/* Free everything the client held. */
static void client_cleanup(devsrv *s, dev_client *c)
{
    while (c->num_callables)
        callable_unload(s, c, c->num_callables - 1);
    free(c->callables);
    while (c->num_executors) {
        dev_executor *e = c->executors[--c->num_executors].obj;
        executor_unref(s, NULL, e);
    }
    free(c->executors);
    for (uint64_t i = 0; i < c->allocs.cap; i++)
        if (c->allocs.slots[i].state == 1)
            gm_release(s, c, c->allocs.slots[i].key, NULL);
    addr_map_free(&c->allocs);
}

void devsrv_admit(devsrv *s) { atomic_fetch_add(&s->clients, 1); }

void devsrv_serve(devsrv *s, int fd)
{
    dev_client c = {.fd = fd};
    for (;;) {
        onb_header h;
        void *payload;
        int rc = onb_recv(fd, &h, &payload, NULL, -1, DEV_SPIN_NS);
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

int devsrv_create(const devsrv_config *cfg, devsrv **out)
{
    devsrv *s = calloc(1, sizeof *s);
    if (!s)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "device: out of host memory");
    s->device_id = cfg->device_id;
    snprintf(s->name, sizeof s->name, "simpler-device %d", (int)cfg->device_id);
    snprintf(s->dir, sizeof s->dir, "%s", cfg->dir);
    s->build = cfg->build;
    s->start_ns = simpler_now_ns();
    s->instance = s->start_ns ^ ((uint64_t)getpid() << 40);
    s->gm_capacity = (cfg->gm_capacity + 4095) & ~4095ull;
    s->gm_fd = -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->chip_lock, NULL);
    int rc = onb_store_dir(s->store, sizeof s->store, s->dir);
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
    s->gm = mmap(NULL, s->gm_capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, s->gm_fd, 0);
    if (s->gm == MAP_FAILED) {
        s->gm = NULL;
        rc = simpler_fail(SIMPLER_E_SYSTEM, "device: cannot map GM: %s", strerror(errno));
        goto fail;
    }
    if ((rc = gm_heap_init(&s->heap, (uint64_t)(uintptr_t)s->gm, s->gm_capacity)) ||
        (rc = chip_init(&s->chip, s->name)))
        goto fail;
    s->chip_live = 1;
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
    /* A chip that would not stop may still run code: the process is about
     * to exit, which is the only safe way to reclaim it. */
    if (s->chip_live && chip_close(&s->chip))
        return;
    while (s->runtimes) {
        dev_runtime *rt = s->runtimes;
        s->runtimes = rt->next;
        dlclose(rt->so);
        free(rt);
    }
    if (s->heap.free_list)
        gm_heap_destroy(&s->heap);
    if (s->gm)
        munmap(s->gm, s->gm_capacity);
    if (s->gm_fd >= 0)
        close(s->gm_fd);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->chip_lock);
    free(s);
}

uint32_t devsrv_clients(devsrv *s) { return atomic_load(&s->clients); }

int devsrv_gm_fd(devsrv *s) { return s->gm_fd; }

int devsrv_exit_requested(devsrv *s) { return atomic_load(&s->exit_requested); }

void devsrv_crash_report(devsrv *s, char *out, size_t size)
{
    out[0] = '\0';
    if (s)
        chip_running_report(&s->chip, out, size);
}
