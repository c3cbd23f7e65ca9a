/*
 * The server's side of a device context (context.h): starting the
 * context process, telling it what to map, forwarding requests to it, and
 * ending it, whichever way it ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/array.h"
#include "common/error.h"
#include "common/wait.h"
#include "onboard/device/context.h"

extern char **environ;

/* A context is ready within this, or it is not coming. */
#define CTX_START_NS 10000000000ull
/* MAP/UNMAP are answered at once by an idle context. */
#define CTX_MAP_NS 5000000000ull
/* A message the context has begun to send is read whole within this. */
#define CTX_READ_NS 1000000000ull
/* How often a forwarded request's wait looks whether the context is
 * busy, and tells the host it still waits. */
#define CTX_HEARTBEAT_NS 1000000000ull
/* A context whose link closed gets this long to exit by itself. */
#define CTX_EXIT_GRACE_NS 1000000000ull
/* After a request the reply usually follows at once. */
#define CTX_SPIN_NS 50000ull
/* A client this long without a request has gone quiet: what is queued for
 * its context is sent. Well past a spin: on a loaded machine a busy host
 * often takes longer than that between requests, and waking the context
 * then would take CPU from it (measured: malloc + free 240 us, flushing
 * when the spin ended, under load). */
#define CTX_QUIET_NS 2000000ull

/* ------------------------------------------------------------------ */
/* ending */

/* Close the link, wait up to grace_ns for the process to end, kill what
 * is left of its process group and reap it. The group is killed before
 * the reaping, while the zombie still holds the group's id: a kernel's
 * children (a fork() that lingers) go with it, and the id cannot have
 * been reused. Returns the wait status, or -1 with no context. */
static int end_process(devctx_link *k, uint64_t grace_ns)
{
    if (k->pid <= 0)
        return -1;
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    if (k->host_end >= 0)
        close(k->host_end);
    k->host_end = -1;
    if (grace_ns)
        onb_watch_wait(&k->watch, grace_ns);
    kill(-k->pid, SIGKILL);
    kill(k->pid, SIGKILL);      /* should a kernel have moved it to another group */
    int status = 0;
    while (waitpid(k->pid, &status, 0) < 0 && errno == EINTR) {
    }
    onb_watch_close(&k->watch);
    k->pid = 0;
    /* Its mappings are gone with it: what it was unmapping, or was to be
     * told to unmap, is free. */
    for (uint32_t i = 0; i < k->num_unmapping; i++)
        k->release(k->release_arg, k->unmapping[i].addr, k->unmapping[i].size);
    k->num_unmapping = 0;
    for (uint32_t i = 0; i < k->num_queued; i++)
        if (k->queued[i].type == DEVCTX_UNMAP)
            k->release(k->release_arg, k->queued[i].addr, k->queued[i].size);
    k->num_queued = 0;
    return status;
}

void devctx_end(devctx_link *k)
{
    end_process(k, CTX_EXIT_GRACE_NS);
    if (k->ring)
        munmap(k->ring, sizeof *k->ring);
    k->ring = NULL;
    if (k->words >= 0)
        close(k->words);
    k->words = -1;
    free(k->unmapping);
    k->unmapping = NULL;
    k->cap_unmapping = 0;
    free(k->queued);
    k->queued = NULL;
    k->cap_queued = 0;
}

/* What the context left in its last-words pipe (its crash line), if
 * anything; the pipe may be held open by a kernel's child, so never
 * wait for its end. */
static void last_words(devctx_link *k, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    if (k->words < 0)
        return;
    for (;;) {
        ssize_t r = read(k->words, out + n, size - 1 - n);
        if (r > 0 && (n += (size_t)r) < size - 1)
            continue;
        if (r < 0 && errno == EINTR)
            continue;
        break;
    }
    out[n] = '\0';
    out[strcspn(out, "\n")] = '\0';
}

static int lost_error(const devctx_link *k, const char *what);

/* The context is gone or must go: end it and say how it ended. */
static int lost(devctx_link *k, const char *what, int wire)
{
    pid_t pid = k->pid;
    int hung = wire == ONB_WIRE_TIMED_OUT;
    int status = end_process(k, hung ? 0 : CTX_EXIT_GRACE_NS);
    char words[1024], how[1200];
    last_words(k, words, sizeof words);
    if (hung)
        snprintf(how, sizeof how, "it said nothing for too long and was killed");
    else if (words[0])
        snprintf(how, sizeof how, "%s", words);
    else if (status >= 0 && WIFSIGNALED(status))
        snprintf(how, sizeof how, "it was killed by signal %d", WTERMSIG(status));
    else if (wire == ONB_WIRE_MALFORMED)
        snprintf(how, sizeof how, "it sent a malformed message and was killed");
    else
        snprintf(how, sizeof how, "it exited (status %d) without answering (did a kernel call exit(), or close "
                 "the context's descriptors?)", status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    k->lost_pid = pid;
    snprintf(k->lost_how, sizeof k->lost_how, "%s", how);
    return lost_error(k, what);
}

static int lost_error(const devctx_link *k, const char *what)
{
    return simpler_fail(SIMPLER_E_DEVICE_LOST,
                        "the device context of this host process (pid %d) ended during %s: %s; the device "
                        "goes on, create a new worker", (int)k->lost_pid, what, k->lost_how);
}

int devctx_end_for_host(devctx_link *k, int hung)
{
    if (k->pid > 0)
        return lost(k, "a launch", hung ? ONB_WIRE_TIMED_OUT : ONB_WIRE_CLOSED);
    if (k->lost_how[0])         /* seen to end already, between requests */
        return lost_error(k, "a launch");
    return simpler_fail(SIMPLER_E_DEVICE_LOST, "the device context of this host process is gone; create a new "
                        "worker");
}

/* ------------------------------------------------------------------ */
/* starting */

/* A descriptor numbered 10 or more: the spawn's dup2 onto 3..8 must not
 * overwrite a source it has still to copy, and a dup2 onto the same
 * number would leave close-on-exec set. */
static int high_fd(int fd)
{
    return fcntl(fd, F_DUPFD_CLOEXEC, 10);
}

#define CTX_NUM_FDS (DEVCTX_FD_LAST - DEVCTX_FD_LINK + 1)

/* fds[i] becomes descriptor DEVCTX_FD_LINK + i of the context. */
static int spawn(devctx_link *k, const devctx_config *cfg, const int fds[CTX_NUM_FDS])
{
    char id[16], base[32], cap[32];
    snprintf(id, sizeof id, "%d", (int)cfg->device_id);
    snprintf(base, sizeof base, "0x%" PRIx64, cfg->gm_base);
    snprintf(cap, sizeof cap, "%" PRIu64, cfg->gm_capacity);
    char *argv[] = {"simpler-device", "--context", "--device-id", id, "--gm-base", base, "--gm-capacity", cap,
                    "--store", (char *)cfg->store, NULL};
    int high[CTX_NUM_FDS], rc = SIMPLER_OK;
    for (int i = 0; i < CTX_NUM_FDS; i++)
        if ((high[i] = high_fd(fds[i])) < 0 && !rc)
            rc = simpler_fail(SIMPLER_E_SYSTEM, "device: cannot start a context: %s", strerror(errno));
    if (!rc) {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        posix_spawn_file_actions_init(&fa);
        for (int i = 0; i < CTX_NUM_FDS; i++)
            posix_spawn_file_actions_adddup2(&fa, high[i], DEVCTX_FD_LINK + i);
        posix_spawnattr_init(&attr);
        sigset_t none;
        sigemptyset(&none);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setpgroup(&attr, 0);   /* a group of its own: ended as one */
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
        int e = posix_spawn(&k->pid, cfg->exe, &fa, &attr, argv, environ);
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        if (e) {
            k->pid = 0;
            rc = simpler_fail(SIMPLER_E_SYSTEM, "device: cannot start a context (%s): %s", cfg->exe, strerror(e));
        }
    }
    for (int i = 0; i < CTX_NUM_FDS; i++)
        if (high[i] >= 0)
            close(high[i]);
    return rc;
}

/* A shared-memory file of size bytes, mapped read-write. */
static int shared_file(const char *name, uint64_t size, int *fd, void **map)
{
    *fd = memfd_create(name, MFD_CLOEXEC);
    if (*fd < 0 || ftruncate(*fd, (off_t)size) != 0 ||
        (*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0)) == MAP_FAILED) {
        int e = errno;
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        *map = NULL;
        return simpler_fail(SIMPLER_E_SYSTEM, "device: %s: %s", name, strerror(e));
    }
    return SIMPLER_OK;
}

int devctx_turns_create(int *fd, devctx_turns **out)
{
    void *map;
    int rc = shared_file("simpler-turns", sizeof **out, fd, &map);
    if (rc)
        return rc;
    devctx_turns *t = map;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    /* A context that dies holding the chip (a crash, a kill as hung)
     * hands it to the next, which sees EOWNERDEAD. */
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    int e = pthread_mutex_init(&t->chip, &a);
    pthread_mutexattr_destroy(&a);
    if (e) {
        devctx_turns_destroy(*fd, t);
        *fd = -1;
        return simpler_fail(SIMPLER_E_SYSTEM, "device: the chip's turns: %s", strerror(e));
    }
    *out = t;
    return SIMPLER_OK;
}

void devctx_turns_destroy(int fd, devctx_turns *t)
{
    if (t)
        munmap(t, sizeof *t);
    if (fd >= 0)
        close(fd);
}

int devctx_start(devctx_link *k, const devctx_config *cfg)
{
    k->pid = 0;
    k->fd = k->words = k->host_end = -1;
    k->lost_how[0] = '\0';
    if (!cfg->exe)
        return simpler_fail(SIMPLER_E_UNSUPPORTED, "device: this server runs no device contexts");
    int sv[2] = {-1, -1}, hv[2] = {-1, -1}, pw[2] = {-1, -1}, ring_fd = -1, rc = SIMPLER_OK;
    void *ring = NULL;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, hv) != 0)
        rc = simpler_fail(SIMPLER_E_SYSTEM, "device: socketpair: %s", strerror(errno));
    else if (pipe2(pw, O_CLOEXEC | O_NONBLOCK) != 0)
        rc = simpler_fail(SIMPLER_E_SYSTEM, "device: pipe: %s", strerror(errno));
    else
        rc = shared_file("simpler-map-ring", sizeof *k->ring, &ring_fd, &ring);
    if (!rc) {
        k->ring = ring;
        int fds[CTX_NUM_FDS] = {sv[1], pw[1], cfg->gm_fd, hv[1], ring_fd, cfg->turns_fd};
        rc = spawn(k, cfg, fds);
    }
    int theirs[] = {sv[1], hv[1], pw[1], ring_fd};
    for (size_t i = 0; i < sizeof theirs / sizeof *theirs; i++)
        if (theirs[i] >= 0)
            close(theirs[i]);
    k->fd = sv[0];
    k->host_end = hv[0];
    k->words = pw[0];
    /* A context that stops reading its link (stopped, or stuck with the
     * link full) must not block the client's thread for ever: a send that
     * cannot finish in this time fails, and the context is ended as
     * lost. */
    struct timeval send_limit = {DEVCTX_SEND_LIMIT_S, 0};
    if (k->fd >= 0)
        setsockopt(k->fd, SOL_SOCKET, SO_SNDTIMEO, &send_limit, sizeof send_limit);
    if (rc) {
        devctx_end(k);
        return rc;
    }
    onb_watch_open(&k->watch, k->pid);
    onb_header h;
    void *payload;
    int w = onb_recv_watched(k->fd, &h, &payload, NULL, (int64_t)CTX_START_NS, 0, &k->watch);
    if (w) {
        free(payload);
        rc = lost(k, "its start", w);
    } else if (h.type != DEVCTX_READY || h.size < sizeof(onb_reply)) {
        rc = simpler_fail(SIMPLER_E_SYSTEM, "device: a context started with message type %u", h.type);
    } else {
        onb_reply r;
        memcpy(&r, payload, sizeof r);
        if (r.status != SIMPLER_OK)
            rc = simpler_fail(r.status, "device: a context could not start: %.*s", (int)(h.size - sizeof r),
                              (const char *)payload + sizeof r);
    }
    free(payload);
    if (rc)
        devctx_end(k);
    return rc;
}

/* ------------------------------------------------------------------ */
/* requests */

/* Append r to a growing array. */
static int push_range(devctx_range **arr, uint32_t *n, uint64_t *cap, devctx_range r)
{
    if (array_reserve(arr, cap, (uint64_t)*n + 1, sizeof **arr))
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "device: out of host memory");
    (*arr)[(*n)++] = r;
    return SIMPLER_OK;
}

int devctx_flush(devctx_link *k)
{
    uint32_t n = k->num_queued, i = 0;
    int rc = SIMPLER_OK;
    k->num_queued = 0;
    for (; i < n && k->pid > 0; i++) {
        devctx_range r = k->queued[i];
        if (r.type == DEVCTX_UNMAP &&
            push_range(&k->unmapping, &k->num_unmapping, &k->cap_unmapping, r) != SIMPLER_OK) {
            rc = lost(k, "a GM unmap", ONB_WIRE_ERROR);     /* cannot wait for its acknowledgement */
            break;
        }
        onb_gm in = {r.addr, r.size};
        int w = onb_send(k->fd, r.type, ++k->seq, &in, sizeof in, NULL, 0, -1);
        if (w) {
            rc = lost(k, r.type == DEVCTX_MAP ? "a GM map" : "a GM unmap", w);     /* released r, if an UNMAP */
            i++;
            break;
        }
    }
    /* What was not sent (the context is gone): those ranges are free. */
    for (; i < n; i++)
        if (k->queued[i].type == DEVCTX_UNMAP)
            k->release(k->release_arg, k->queued[i].addr, k->queued[i].size);
    return rc;
}

/* Long enough to save most wake-ups, short enough that freed ranges come
 * back soon in a busy loop. */
#define CTX_BATCH 64

static int queue_unmap(devctx_link *k, uint64_t addr, uint64_t size)
{
    devctx_range r = {addr, size, DEVCTX_UNMAP};
    int rc = push_range(&k->queued, &k->num_queued, &k->cap_queued, r);
    if (rc) {
        if ((rc = devctx_flush(k)) == SIMPLER_OK)       /* room by sending what is queued */
            rc = push_range(&k->queued, &k->num_queued, &k->cap_queued, r);
        if (rc) {
            rc = lost(k, "a GM unmap", ONB_WIRE_ERROR);
            k->release(k->release_arg, addr, size);
            return rc;
        }
    }
    return k->num_queued >= CTX_BATCH ? devctx_flush(k) : SIMPLER_OK;
}

/* Post a block in the ring: 0, or -1 when the ring is full. The entry is
 * written before head moves past it (release), so a context that sees
 * the new head (acquire) sees the entry. */
static int ring_post(devctx_ring *r, uint64_t addr, uint64_t size)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head - atomic_load_explicit(&r->tail, memory_order_acquire) >= DEVCTX_RING_ENTRIES)
        return -1;
    devctx_entry *e = &r->entries[head % DEVCTX_RING_ENTRIES];
    e->addr = addr;
    e->size = size;
    atomic_store_explicit(&e->state, DEVCTX_ENTRY_POSTED, memory_order_relaxed);
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    return 0;
}

/* Take a block's entry back if the context has not taken it: 1 if so.
 * The newest entry of addr is the block's own (an older one was of a
 * block freed before); entries the context has passed are not looked at,
 * and a race with the context taking it is settled by the swap. */
static int ring_cancel(devctx_ring *r, uint64_t addr)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    for (uint64_t i = head; i-- > tail;) {
        devctx_entry *e = &r->entries[i % DEVCTX_RING_ENTRIES];
        if (e->addr != addr)
            continue;
        uint32_t posted = DEVCTX_ENTRY_POSTED;
        return atomic_compare_exchange_strong(&e->state, &posted, DEVCTX_ENTRY_CANCELLED);
    }
    return 0;
}

int devctx_map(devctx_link *k, uint64_t addr, uint64_t size)
{
    if (k->pid <= 0)
        return SIMPLER_OK;      /* a context started later is told of the block then */
    if (ring_post(k->ring, addr, size) == 0)
        return SIMPLER_OK;
    /* The ring is full (thousands of blocks since the context last woke):
     * a MAP, sent at once, as a launch on the launch link may follow. */
    onb_gm in = {addr, size};
    int w = onb_send(k->fd, DEVCTX_MAP, ++k->seq, &in, sizeof in, NULL, 0, -1);
    return w ? lost(k, "a GM map", w) : SIMPLER_OK;
}

int devctx_unmap(devctx_link *k, uint64_t addr, uint64_t size)
{
    if (k->pid <= 0 || ring_cancel(k->ring, addr)) {
        k->release(k->release_arg, addr, size);     /* the context never saw it */
        return SIMPLER_OK;
    }
    return queue_unmap(k, addr, size);
}

/* An UNMAP acknowledged: its range (the oldest) goes back. One the
 * context could not unmap stays visible to it: the context is ended,
 * which releases it with the rest. */
static int take_ack(devctx_link *k, const onb_header *h, const void *payload)
{
    onb_reply r = {SIMPLER_E_SYSTEM, 0};
    if (h->size >= sizeof r)
        memcpy(&r, payload, sizeof r);
    if (!k->num_unmapping || r.status != SIMPLER_OK)
        return lost(k, "a GM unmap", ONB_WIRE_MALFORMED);
    devctx_range done = k->unmapping[0];
    memmove(k->unmapping, k->unmapping + 1, --k->num_unmapping * sizeof *k->unmapping);
    k->release(k->release_arg, done.addr, done.size);
    return SIMPLER_OK;
}

/* Read one message the context has begun to send; acknowledgements are
 * taken in (*taken set), anything else is handed back. */
static int read_message(devctx_link *k, onb_header *h, void **payload, int *taken, const char *what)
{
    *taken = 0;
    int w = onb_recv_watched(k->fd, h, payload, NULL, (int64_t)CTX_READ_NS, 0, &k->watch);
    if (w)
        return lost(k, what, w);
    if (h->type != (DEVCTX_UNMAP | ONB_REPLY))
        return SIMPLER_OK;
    *taken = 1;
    int rc = take_ack(k, h, *payload);
    free(*payload);
    *payload = NULL;
    return rc;
}

/* Read what the context has sent unasked: acknowledgements, or its end
 * (what: for the message, should it have ended). */
static int drain(devctx_link *k, const char *what)
{
    while (k->pid > 0) {
        struct pollfd p = {k->fd, POLLIN, 0};
        if (poll(&p, 1, 0) <= 0)
            return SIMPLER_OK;
        onb_header h;
        void *payload;
        int taken, rc = read_message(k, &h, &payload, &taken, what);
        if (rc)
            return rc;
        if (!taken) {
            free(payload);
            return lost(k, what, ONB_WIRE_MALFORMED);  /* nothing else may come unasked */
        }
    }
    return SIMPLER_OK;
}

/* Wait for either descriptor (client_fd < 0: only the context's) or the
 * context's death, at most until deadline, spinning until spin_until.
 * Returns a mask: 1 the context spoke, 2 the client did, 4 the context is
 * gone; 0 at the deadline. */
static int wait_either(devctx_link *k, int client_fd, uint64_t deadline, uint64_t spin_until)
{
    int by_pidfd = k->watch.pidfd >= 0;
    for (;;) {
        struct pollfd p[3] = {{k->fd, POLLIN, 0}, {client_fd, POLLIN, 0}, {by_pidfd ? k->watch.pidfd : -1, POLLIN, 0}};
        uint64_t now = simpler_now_ns();
        if (now >= deadline)
            return 0;
        int ms = now < spin_until ? 0 : deadline == UINT64_MAX ? -1 : (int)((deadline - now + 999999) / 1000000);
        if (!by_pidfd && (ms < 0 || ms > ONB_WATCH_POLL_MS))
            ms = ONB_WATCH_POLL_MS;
        int r = poll(p, 3, ms);
        if (r < 0 && errno != EINTR)
            return 4;
        if (r > 0 && p[0].revents)
            return 1;       /* before a death: its last reply is read, not lost */
        if (r > 0 && p[1].revents)
            return 2;
        if ((r > 0 && p[2].revents) || (!by_pidfd && r == 0 && ms && onb_pid_gone(k->pid)))
            return 4;
    }
}

static const char *request_name(uint16_t type)
{
    switch (type) {
    case ONB_EXECUTOR_REGISTER: return "EXECUTOR_REGISTER";
    case ONB_EXECUTOR_RELEASE: return "EXECUTOR_RELEASE";
    case ONB_CALLABLE_LOAD: return "CALLABLE_LOAD";
    case ONB_CALLABLE_RELEASE: return "CALLABLE_RELEASE";
    case ONB_LAUNCH: return "a launch";
    case ONB_COUNTERS: return "COUNTERS";
    default: return "a request";
    }
}

/* The context is busy with a launch of its host's (context.h). */
static int busy(const devctx_link *k, uint64_t now)
{
    return k->ring && atomic_load_explicit(&k->ring->busy_until_ns, memory_order_relaxed) > now;
}

int devctx_forward(devctx_link *k, int client_fd, int watch_client, const onb_header *h, const void *payload,
                   uint64_t silence_ns, void **reply, uint32_t *reply_size, int *client_broke)
{
    const char *what = request_name(h->type);
    *reply = NULL;
    if (k->pid <= 0)
        return simpler_fail(SIMPLER_E_DEVICE_LOST, "the device context of this host process is gone; create a new "
                            "worker");
    int rc = devctx_flush(k);       /* the request may use blocks just allocated */
    if (rc)
        return rc;
    int w = onb_send(k->fd, h->type, h->seq, payload, h->size, NULL, 0, -1), cancelled = 0;
    if (w)
        return lost(k, what, w);
    /* The reply is spun for, a launch's too, for CTX_SPIN_NS: blocking at
     * once was measured slower (a one-task run 230 us against 180 us on 2
     * CPUs), and so was spinning 200 us (380 us: the spin takes the CPU
     * from the chip's threads). */
    uint64_t now = simpler_now_ns(), deadline = now + silence_ns, spin_until = now + CTX_SPIN_NS;
    for (;;) {
        /* Each second: is the context busy with its host's launch? */
        uint64_t until = deadline - now > CTX_HEARTBEAT_NS ? now + CTX_HEARTBEAT_NS : deadline;
        int ready = wait_either(k, watch_client && !*client_broke ? client_fd : -1, until, spin_until);
        now = simpler_now_ns();
        if (ready == 0 && busy(k, now)) {
            deadline = now + silence_ns;
            if (!*client_broke)
                onb_send(client_fd, ONB_PROGRESS, h->seq, &(onb_progress){0}, sizeof(onb_progress), NULL, 0, -1);
            continue;
        }
        if (ready == 0 && now < deadline)
            continue;
        if (ready == 0)
            return lost(k, what, ONB_WIRE_TIMED_OUT);
        if (ready == 4)
            return lost(k, what, ONB_WIRE_PEER_GONE);
        if (ready == 2) {
            /* Only a CANCEL of this request may come now; anything else,
             * or a closed connection, cancels too: nobody will read. */
            onb_header ch;
            void *cp;
            w = onb_recv(client_fd, &ch, &cp, NULL, (int64_t)CTX_READ_NS, 0);
            free(cp);
            if (w != ONB_WIRE_OK || ch.type != ONB_CANCEL || ch.seq != h->seq)
                *client_broke = 1;
            if (!cancelled && (w = onb_send(k->fd, ONB_CANCEL, h->seq, NULL, 0, NULL, 0, -1)))
                return lost(k, what, w);
            cancelled = 1;
            continue;
        }
        onb_header rh;
        void *rp;
        int taken;
        if ((rc = read_message(k, &rh, &rp, &taken, what)))
            return rc;
        if (taken)
            continue;
        if (rh.type == ONB_PROGRESS && rh.seq == h->seq) {
            if (!*client_broke)
                onb_send(client_fd, ONB_PROGRESS, h->seq, rp, rh.size, NULL, 0, -1);
            free(rp);
            deadline = simpler_now_ns() + silence_ns;
            continue;
        }
        if (rh.type != (h->type | ONB_REPLY) || rh.seq != h->seq || rh.size < sizeof(onb_reply)) {
            free(rp);
            return lost(k, what, ONB_WIRE_MALFORMED);
        }
        *reply = rp;
        *reply_size = rh.size;
        return SIMPLER_OK;
    }
}

/* The context is watched between requests too: one that dies meanwhile
 * (a thread a kernel left running crashes) is reaped at once, not at the
 * client's next request. */
int devctx_wait_client(devctx_link *k, int client_fd, uint64_t spin_ns)
{
    int rc = SIMPLER_OK;
    uint64_t now = simpler_now_ns(), spin_until = now + spin_ns, quiet_at = now + CTX_QUIET_NS;
    for (;;) {
        now = simpler_now_ns();
        int spinning = now < spin_until;
        /* The client has gone quiet: now the context may do its share. */
        if (now >= quiet_at && k->num_queued && !rc)
            rc = devctx_flush(k);
        if (k->pid <= 0) {
            /* No context: the client alone (spin, then block). */
            struct pollfd p = {client_fd, POLLIN, 0};
            int r = poll(&p, 1, spinning ? 0 : -1);
            if (r > 0 || (r < 0 && errno != EINTR))
                return rc;
            continue;
        }
        /* Only until the spin ends, or the flush above is due. */
        uint64_t until = spinning ? spin_until : k->num_queued && !rc ? quiet_at : UINT64_MAX;
        int ready = wait_either(k, client_fd, until, spin_until);
        if (ready == 2)
            return rc;
        if (ready == 4)
            rc = lost(k, "the wait for its host's next request", ONB_WIRE_PEER_GONE);
        else if (ready == 1 && !rc)
            rc = drain(k, "the wait for its host's next request");
    }
}
