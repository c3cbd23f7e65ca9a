/*
 * The onboard platform: the host side of the driver protocol. The device
 * is a separate process, simpler-device (device/main.c), started here on
 * first use; this file turns each platform operation into requests.
 *
 * GM is the device's shared segment, mapped here too: copies are memcpy
 * into or out of that mapping at (address - the device's GM base), checked
 * against the allocations this process holds. No GM address is ever
 * dereferenced as a host pointer. (The mapping is of the whole segment:
 * the isolation between clients is their kernels', each running in a
 * device context that maps only its own client's blocks; a host process
 * is trusted as far as its user is.)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "common/hash.h"
#include "common/platform_ops.h"
#include "onboard/paths.h"
#include "onboard/wire.h"

extern char **environ;

#define ONB_OP_MARGIN_NS 5000000000ull      /* the device's (server.c) */
/* Beyond the op deadline, how long a context may say nothing during a
 * launch before the host calls it hung (the device's margin, server.c). */
#define ONB_CONTEXT_MARGIN_NS 2500000000ull
/* A context that stops reading its launch link must not block a send for
 * ever (as the device's own sends to it, context.h). */
#define ONB_LINK_SEND_LIMIT_S 5
/* Requests other than launches: the device answers at once. */
#define ONB_REQUEST_WAIT_NS request_wait_ns()
#define ONB_SPIN_NS 50000ull
#define ONB_START_WAIT_NS 10000000000ull
/* A device closes connections only as it exits: how long its last words
 * (the crash report) may take to follow. */
#define ONB_EXIT_GRACE_NS 2000000000ull

/* 30 s; SIMPLER_ONBOARD_REQUEST_WAIT_S (seconds) shortens it, for tests
 * of a hung device. Read at each request: tests set it in a process that
 * has made requests already. */
static uint64_t request_wait_ns(void)
{
    const char *env = getenv("SIMPLER_ONBOARD_REQUEST_WAIT_S");
    double s = env ? strtod(env, NULL) : 0.0;
    return s > 0.0 && s < 30.0 ? (uint64_t)(s * 1e9) : 30000000000ull;
}

/* A binary this process sends the device, read once. */
typedef struct onb_file {
    pthread_once_t once;
    const char *name;
    void *bytes;
    uint64_t size, fingerprint;
    int error;
    char message[4400];
} onb_file;

static onb_file g_aicpu = {.once = PTHREAD_ONCE_INIT, .name = "libsimpler_aicpu.so"};
static onb_file g_aicore = {.once = PTHREAD_ONCE_INIT, .name = "libsimpler_aicore.so"};
static onb_file g_device = {.once = PTHREAD_ONCE_INIT, .name = "simpler-device"};
static char g_lib_dir[4096];

/* The process-level cache of AICPU runtimes known installed, per device
 * process instance (a fresh device finds the store on disk; asking once
 * more is cheap). */
static pthread_mutex_t g_installed_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_installed[64][2];         /* (instance, fingerprint), a small ring */
static uint32_t g_installed_next;
static _Atomic uint64_t g_aicpu_uploads;

typedef struct onb_alloc {
    uint64_t addr, size;
} onb_alloc;

/*
 * A launch runs on its own link, so the other operations may go on
 * meanwhile from another thread (concurrent_launch): the worker still
 * calls them one at a time, and a launch's thread touches only the link,
 * its own sequence numbers, lost, and (when the link breaks) the
 * connection, under fd_lock as every request does.
 */
struct platform_dev {
    int32_t device_id;
    char dir[4096];
    int fd;
    pthread_mutex_t fd_lock;        /* one request at a time on the connection */
    uint32_t seq, link_seq;
    _Atomic int lost;
    uint32_t device_pid;
    pid_t peer_pid;                 /* the process listening, by SO_PEERCRED */
    onb_watch watch;                /* on it: its death ends any wait at once */
    uint64_t instance;
    uint8_t *gm_map;
    int gm_fd;                      /* the segment's memfd, kept for the peer windows other devices open on it */
    uint64_t gm_base, gm_capacity;
    onb_alloc *allocs;              /* this process's GM, sorted by address */
    uint32_t num_allocs, cap_allocs;
    uint64_t executor, executor_gm;
    uint64_t executor_registrations;
    char lost_why[600];             /* the error that lost it, for every call after (under fd_lock) */
    int link;                       /* the launch link, straight to this process's device context */
    onb_watch link_watch;           /* on the context: its death ends a launch's wait at once */
};

/* ------------------------------------------------------------------ */
/* files this process sends */

static void read_file(onb_file *f)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", g_lib_dir, f->name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0 || !(f->bytes = malloc((size_t)st.st_size))) {
        snprintf(f->message, sizeof f->message, "onboard: cannot read %s: %s", path, strerror(errno));
        f->error = SIMPLER_E_SYSTEM;
    } else {
        ssize_t n = 0, r;
        while (n < st.st_size && (r = pread(fd, (char *)f->bytes + n, (size_t)(st.st_size - n), n)) > 0)
            n += r;
        if (n != st.st_size) {
            snprintf(f->message, sizeof f->message, "onboard: short read of %s", path);
            f->error = SIMPLER_E_SYSTEM;
        }
        f->size = (uint64_t)st.st_size;
        f->fingerprint = simpler_fnv1a64(f->bytes, f->size);
    }
    if (fd >= 0)
        close(fd);
}

static void read_aicpu(void) { read_file(&g_aicpu); }
static void read_aicore(void) { read_file(&g_aicore); }
static void read_device(void) { read_file(&g_device); }

static int file_get(onb_file *f, void (*reader)(void))
{
    pthread_once(&f->once, reader);
    return f->error ? simpler_fail(f->error, "%s", f->message) : SIMPLER_OK;
}

/* ------------------------------------------------------------------ */
/* requests */

/* A file of the device directory, for reading; never through a link. */
static FILE *open_text(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (fd >= 0 && !f)
        close(fd);
    return f;
}

/* poll(2) for at most timeout_ns, again after a signal. */
static int poll_fd(struct pollfd *p, uint64_t timeout_ns)
{
    uint64_t end = simpler_now_ns() + timeout_ns;
    for (;;) {
        uint64_t now = simpler_now_ns();
        int ms = now >= end ? 0 : (int)((end - now + 999999) / 1000000);
        int r = poll(p, 1, ms);
        if (r >= 0 || errno != EINTR)
            return r;
    }
}

/* The last words of a device process that died, if it left any. */
static void crash_note(platform_dev *d, char *out, size_t size)
{
    char path[ONB_PATH_MAX], pid[32];
    snprintf(out, size, "it left no crash report (killed?)");
    if (onb_device_path(path, d->dir, d->device_id, "crash"))
        return;
    FILE *f = open_text(path);
    char line[1024];
    snprintf(pid, sizeof pid, "(pid %u)", d->device_pid);
    if (f && fgets(line, sizeof line, f) && strstr(line, pid)) {
        line[strcspn(line, "\n")] = '\0';
        snprintf(out, size, "%s", line);
    }
    if (f)
        fclose(f);
}

static int lose(platform_dev *d, const char *what, int wire)
{
    d->lost = 1;
    if (wire == ONB_WIRE_TIMED_OUT) {
        /* The device sent nothing for longer than it may take to give up
         * by itself: it is hung. Resetting it means ending it. */
        if (d->device_pid)
            kill((pid_t)d->device_pid, SIGKILL);
        return simpler_fail(SIMPLER_E_DEVICE_LOST,
                            "host wait timeout: simpler-device %d (pid %u) did not answer %s in time and was "
                            "killed; the next worker starts a fresh device", d->device_id, d->device_pid, what);
    }
    char note[1100];
    if (wire == ONB_WIRE_PEER_GONE) {
        /* Its process ended while something else (a child a kernel
         * forked) still holds its end of the connection. */
        crash_note(d, note, sizeof note);
        return simpler_fail(SIMPLER_E_DEVICE_LOST,
                            "simpler-device %d (pid %u) ended during %s (its process is gone; another process "
                            "still holds its socket): %s; the next worker starts a fresh device",
                            d->device_id, d->device_pid, what, note);
    }
    if (wire == ONB_WIRE_CLOSED) {
        onb_watch_wait(&d->watch, ONB_EXIT_GRACE_NS);
        crash_note(d, note, sizeof note);
    } else {
        snprintf(note, sizeof note, "the connection failed: %s", strerror(errno));
    }
    return simpler_fail(SIMPLER_E_DEVICE_LOST,
                        "simpler-device %d (pid %u) ended during %s: %s; the next worker starts a fresh device",
                        d->device_id, d->device_pid, what, note);
}

/*
 * One request and its reply. On success the result (after the onb_reply)
 * is copied to out (exactly out_size bytes expected) or, with out_heap,
 * handed over as a malloc'd buffer. wait_ns bounds the silence between
 * messages from the device.
 */
/*
 * Wait until the device starts a message, at most wait_ns, calling poll
 * every PLATFORM_POLL_NS on the way; the first time it says stop, the
 * device is asked to cancel request seq (it answers the request itself).
 */
static int wait_for_device(int fd, const onb_watch *watch, uint64_t wait_ns, const platform_poll *poll,
                           uint32_t seq, int *cancelled)
{
    uint64_t deadline = simpler_now_ns() + wait_ns;
    if (poll->at_once && poll->fn(poll->ctx)) {
        *cancelled = 1;
        int w = onb_send(fd, ONB_CANCEL, seq, NULL, 0, NULL, 0, -1);
        if (w)
            return w;
    }
    for (;;) {
        uint64_t now = simpler_now_ns();
        if (now >= deadline)
            return ONB_WIRE_TIMED_OUT;
        uint64_t slice = deadline - now < PLATFORM_POLL_NS ? deadline - now : PLATFORM_POLL_NS;
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll_fd(&p, slice);
        if (r > 0)
            return ONB_WIRE_OK;
        if (r < 0)
            return ONB_WIRE_ERROR;
        if (onb_watch_gone(watch))     /* dead, though its socket is held open */
            return ONB_WIRE_PEER_GONE;
        if (!*cancelled && poll->fn(poll->ctx)) {
            *cancelled = 1;
            int w = onb_send(fd, ONB_CANCEL, seq, NULL, 0, NULL, 0, -1);
            if (w)
                return w;
        }
    }
}

/* One request and its reply on fd (the connection, or the launch link),
 * its peer watched by watch; pass_fd >= 0 goes with the request. A wire
 * failure is left to the caller (*wire); a reply out of turn loses the
 * device. */
static int exchange(platform_dev *d, int fd, uint32_t *seqs, const onb_watch *watch, uint16_t type, const char *what,
                    const void *a, uint32_t na, const void *b, uint32_t nb, int pass_fd, void *out, uint32_t out_size,
                    void **out_heap, uint32_t *heap_size, uint64_t wait_ns, int *fd_out, const platform_poll *poll,
                    int *wire)
{
    uint32_t seq = ++*seqs;
    int w = onb_send(fd, type, seq, a, na, b, nb, pass_fd), cancelled = 0;
    *wire = w;
    if (w)
        return SIMPLER_E_DEVICE_LOST;
    for (;;) {
        onb_header h;
        void *payload;
        /* A short request's reply is spun for; a polled wait is sliced
         * until the reply starts, then read whole. */
        if (poll && poll->fn && (w = wait_for_device(fd, watch, wait_ns, poll, seq, &cancelled)))
            return *wire = w, SIMPLER_E_DEVICE_LOST;
        w = onb_recv_watched(fd, &h, &payload, fd_out, (int64_t)wait_ns, ONB_SPIN_NS, watch);
        if (w)
            return *wire = w, SIMPLER_E_DEVICE_LOST;
        if (h.type == ONB_PROGRESS && h.seq == seq) {
            onb_progress p;
            if (poll && poll->progress && h.size >= sizeof p) {
                memcpy(&p, payload, sizeof p);
                if (p.has_counts) {
                    atomic_store_explicit(&poll->progress->tasks_done, p.tasks_completed, memory_order_relaxed);
                    atomic_store_explicit(&poll->progress->tasks_submitted, p.tasks_submitted,
                                          memory_order_relaxed);
                }
            }
            free(payload);
            continue;
        }
        if (h.type != (type | ONB_REPLY) || h.seq != seq || h.size < sizeof(onb_reply)) {
            free(payload);
            if (fd_out && *fd_out >= 0)
                close(*fd_out);
            d->lost = 1;
            return simpler_fail(SIMPLER_E_DEVICE_LOST, "simpler-device %d answered %s out of turn (type %u, seq %u)",
                                d->device_id, what, h.type, h.seq);
        }
        onb_reply r;
        memcpy(&r, payload, sizeof r);
        const uint8_t *body = (const uint8_t *)payload + sizeof r;
        uint32_t body_size = h.size - (uint32_t)sizeof r;
        int rc = SIMPLER_OK;
        if (r.status != SIMPLER_OK) {
            if (r.reserved && r.reserved <= body_size) {    /* the message, then a failed launch's report */
                if (poll && poll->failure && body_size - r.reserved == sizeof *poll->failure)
                    memcpy(poll->failure, body + r.reserved, sizeof *poll->failure);
                body_size = r.reserved;
            }
            rc = simpler_fail(r.status, "%.*s", (int)body_size, (const char *)body);
            if (r.status == SIMPLER_E_DEVICE_LOST)
                d->lost = 1;
        } else if (out_heap) {
            *out_heap = malloc(body_size ? body_size : 1);
            if (!*out_heap)
                rc = simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "onboard: out of host memory");
            else
                memcpy(*out_heap, body, body_size);
            *heap_size = body_size;
        } else if (body_size != out_size) {
            rc = simpler_fail(SIMPLER_E_DEVICE_LOST, "simpler-device %d: %s reply of %u bytes, expected %u",
                              d->device_id, what, body_size, out_size);
        } else if (out_size) {
            memcpy(out, body, out_size);
        }
        free(payload);
        return rc;
    }
}

/* Every call after the loss says what lost it: the first error is the
 * cause (a free that timed out before the allocation that then failed). */
static int was_lost(platform_dev *d)
{
    pthread_mutex_lock(&d->fd_lock);
    int rc = d->lost_why[0] ? simpler_fail(SIMPLER_E_DEVICE_LOST, "simpler-device %d was lost (%s); create a new "
                                           "worker", d->device_id, d->lost_why)
                            : simpler_fail(SIMPLER_E_DEVICE_LOST, "simpler-device %d was lost; create a new worker",
                                           d->device_id);
    pthread_mutex_unlock(&d->fd_lock);
    return rc;
}

/* Under fd_lock, with the error that lost it set. */
static void note_loss(platform_dev *d)
{
    if (d->lost && !d->lost_why[0])
        snprintf(d->lost_why, sizeof d->lost_why, "%s", simpler_last_error());
}

static int request(platform_dev *d, uint16_t type, const char *what, const void *a, uint32_t na, const void *b,
                   uint32_t nb, void *out, uint32_t out_size, void **out_heap, uint32_t *heap_size,
                   uint64_t wait_ns, int *fd_out, const platform_poll *poll)
{
    if (d->lost)
        return was_lost(d);
    pthread_mutex_lock(&d->fd_lock);
    int wire, rc = exchange(d, d->fd, &d->seq, &d->watch, type, what, a, na, b, nb, -1, out, out_size, out_heap,
                            heap_size, wait_ns, fd_out, poll, &wire);
    if (wire)
        rc = lose(d, what, wire);
    if (rc)
        note_loss(d);
    pthread_mutex_unlock(&d->fd_lock);
    return rc;
}

#define REQUEST(d, type, what, in, out) \
    request(d, type, what, in, sizeof *(in), NULL, 0, out, sizeof *(out), NULL, NULL, ONB_REQUEST_WAIT_NS, NULL, NULL)

/* ------------------------------------------------------------------ */
/* finding or starting the device process */

/*
 * Connect to the socket at sock_path: the descriptor, or -1 when nothing
 * listens there (errno says why), or -2 (with the error set) when the
 * process listening is not this user's: nothing is sent to a process
 * that could be anyone's fake device. *peer_pid: the listening process.
 */
static int connect_to(const char *sock_path, pid_t *peer_pid)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_path);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    struct ucred peer;
    socklen_t len = sizeof peer;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) {
        simpler_fail(SIMPLER_E_SYSTEM, "onboard: cannot tell who serves %s: %s", sock_path, strerror(errno));
        close(fd);
        return -2;
    }
    if (peer.uid != getuid()) {
        simpler_fail(SIMPLER_E_SYSTEM, "onboard: %s is served by pid %d of uid %u, not by this user (%u); "
                     "refusing to talk to it", sock_path, (int)peer.pid, (unsigned)peer.uid, (unsigned)getuid());
        close(fd);
        return -2;
    }
    /* A dead device's listener that a child it left holds open: nobody
     * will ever answer there, so nobody listens. */
    if (peer.pid > 0 && onb_pid_gone(peer.pid)) {
        close(fd);
        errno = ECONNREFUSED;
        return -1;
    }
    if (peer_pid)
        *peer_pid = peer.pid;
    return fd;
}

/* Run simpler-device, which detaches and returns once it listens. */
static int spawn_device(int32_t device_id, uint64_t gm_capacity, double idle_s)
{
    char exe[4200], id[16], cap[32], idle[32];
    snprintf(exe, sizeof exe, "%s/simpler-device", g_lib_dir);
    snprintf(id, sizeof id, "%d", (int)device_id);
    char *argv[10] = {exe, "--device-id", id};
    int argc = 3;
    if (gm_capacity) {
        snprintf(cap, sizeof cap, "%" PRIu64, gm_capacity);
        argv[argc++] = "--gm-capacity";
        argv[argc++] = cap;
    }
    const char *env_idle = getenv("SIMPLER_DEVICE_IDLE_TIMEOUT");
    if (idle_s > 0 || (env_idle && *env_idle)) {
        if (idle_s > 0)
            snprintf(idle, sizeof idle, "%g", idle_s);
        else
            snprintf(idle, sizeof idle, "%s", env_idle);
        argv[argc++] = "--idle-timeout";
        argv[argc++] = idle;
    }
    argv[argc] = NULL;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return simpler_fail(SIMPLER_E_SYSTEM, "onboard: pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    pid_t pid;
    int e = posix_spawn(&pid, exe, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (e) {
        close(p[0]);
        return simpler_fail(SIMPLER_E_SYSTEM, "onboard: cannot start %s: %s", exe, strerror(e));
    }
    char msg[2048];
    size_t n = onb_read_text(p[0], msg, sizeof msg);
    close(p[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    if (code != 0 && code != 3) {
        msg[strcspn(msg, "\n")] = '\0';
        return simpler_fail(SIMPLER_E_SYSTEM, "onboard: simpler-device %d did not start: %s", (int)device_id,
                            n ? msg : "no reason given");
    }
    return SIMPLER_OK;
}

/*
 * Connect to device_id's process, starting it when none runs. Racing
 * starters serialise on the start lock; whoever gets it first starts the
 * device, the rest find it running.
 */
static int connect_or_start(const char *dir, int32_t device_id, uint64_t gm_capacity, double idle_s, int start,
                            int *fd_out, pid_t *peer_pid)
{
    char sock_path[ONB_PATH_MAX], lock_path[ONB_PATH_MAX];
    int rc;
    if ((rc = onb_device_path(sock_path, dir, device_id, "sock")) ||
        (rc = onb_device_path(lock_path, dir, device_id, "lock")))
        return rc;
    if ((*fd_out = connect_to(sock_path, peer_pid)) >= 0)
        return SIMPLER_OK;
    if (*fd_out == -2)
        return SIMPLER_E_SYSTEM;
    if (!start)
        return simpler_fail(SIMPLER_E_NOT_FOUND, "simpler-device %d is not running", (int)device_id);
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) != 0) {
        rc = simpler_fail(SIMPLER_E_SYSTEM, "onboard: cannot lock %s: %s", lock_path, strerror(errno));
        if (lock >= 0)
            close(lock);
        return rc;
    }
    /* A device that is exiting (idle) holds its pid lock a moment after
     * its socket is gone, and a new one started then finds it "already
     * running": start again until one listens. */
    uint64_t deadline = simpler_now_ns() + ONB_START_WAIT_NS;
    while ((*fd_out = connect_to(sock_path, peer_pid)) == -1 && simpler_now_ns() < deadline) {
        if ((rc = spawn_device(device_id, gm_capacity, idle_s)))
            break;
        uint64_t settle = simpler_now_ns() + 200000000ull;
        while ((*fd_out = connect_to(sock_path, peer_pid)) == -1 && simpler_now_ns() < settle)
            usleep(2000);
        if (*fd_out != -1)
            break;
    }
    if (*fd_out == -2)
        rc = SIMPLER_E_SYSTEM;
    else if (*fd_out < 0 && !rc)
        rc = simpler_fail(SIMPLER_E_SYSTEM, "onboard: simpler-device %d started but %s does not accept: %s",
                          (int)device_id, sock_path, strerror(errno));
    if (*fd_out < 0)
        *fd_out = -1;
    close(lock);
    return rc;
}

/* Connect (starting the device if asked) and say HELLO. */
static int attach(platform_dev *d, uint64_t quota, int start, onb_hello_result *res, int *gm_fd)
{
    int rc = file_get(&g_device, read_device);
    if (rc)
        return rc;
    /* A device that closed between our connect and HELLO (its idle exit)
     * gets one retry. */
    for (int attempt = 0;; attempt++) {
        pid_t peer = 0;
        if ((rc = connect_or_start(d->dir, d->device_id, 0, 0, start, &d->fd, &peer)))
            return rc;
        d->peer_pid = peer;
        onb_hello hello = {.build = g_device.fingerprint, .gm_quota = quota, .pid = (uint32_t)getpid()};
        d->lost = 0;
        d->device_pid = 0;
        rc = request(d, ONB_HELLO, "HELLO", &hello, sizeof hello, NULL, 0, res, sizeof *res, NULL, NULL,
                     ONB_REQUEST_WAIT_NS, gm_fd, NULL);
        if (rc == SIMPLER_E_DEVICE_LOST && attempt == 0) {
            close(d->fd);
            d->fd = -1;
            continue;
        }
        if (rc)
            return rc;
        d->device_pid = res->device_pid;
        /* Asking after or stopping a device works across builds; running
         * on it needs ours (the launch ABI is the build's). */
        if (res->build == g_device.fingerprint || !start)
            return SIMPLER_OK;
        /* Another build of simpler-device (an older install) owns the id:
         * replace it when nobody else uses it. */
        /* Hosts racing to replace it see each other connected: step back
         * a random moment and look again, until one finds itself alone. */
        if (res->clients > 1 && attempt < 100) {
            if (*gm_fd >= 0)
                close(*gm_fd);
            *gm_fd = -1;
            close(d->fd);
            d->fd = -1;
            usleep(10000 + (useconds_t)(rand_r(&(unsigned){(unsigned)getpid() ^ (unsigned)attempt}) % 40000));
            continue;
        }
        if (res->clients > 1 || attempt >= 100) {
            if (*gm_fd >= 0)
                close(*gm_fd);
            return simpler_fail(SIMPLER_E_UNSUPPORTED,
                                "simpler-device %d (pid %u) runs another build of simpler with %u other host "
                                "process(es) connected; stop it with `python -m simpler device stop --force %d`",
                                d->device_id, res->device_pid, res->clients - 1, d->device_id);
        }
        onb_shutdown stop = {0};
        request(d, ONB_SHUTDOWN, "SHUTDOWN", &stop, sizeof stop, NULL, 0, NULL, 0, NULL, NULL,
                ONB_REQUEST_WAIT_NS, NULL, NULL);
        onb_header h;
        void *payload;
        onb_recv(d->fd, &h, &payload, NULL, (int64_t)ONB_START_WAIT_NS, 0);     /* until it closes */
        free(payload);
        close(d->fd);
        d->fd = -1;
        if (*gm_fd >= 0)
            close(*gm_fd);
        *gm_fd = -1;
    }
}

/* ------------------------------------------------------------------ */
/* GM */

/* Index of the first allocation at or after addr. */
static uint32_t alloc_index(platform_dev *d, uint64_t addr)
{
    uint32_t lo = 0, hi = d->num_allocs;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (d->allocs[mid].addr < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int drv_gm_alloc(platform_dev *d, uint64_t size, uint64_t *addr_out)
{
    if (d->num_allocs == d->cap_allocs) {
        uint32_t cap = d->cap_allocs ? d->cap_allocs * 2 : 64;
        onb_alloc *grown = realloc(d->allocs, cap * sizeof *grown);
        if (!grown)
            return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "onboard: out of host memory");
        d->allocs = grown;
        d->cap_allocs = cap;
    }
    onb_gm in = {0, size}, out;
    int rc = REQUEST(d, ONB_GM_ALLOC, "GM_ALLOC", &in, &out);
    if (rc)
        return rc;
    uint32_t i = alloc_index(d, out.addr);
    memmove(&d->allocs[i + 1], &d->allocs[i], (d->num_allocs - i) * sizeof *d->allocs);
    d->allocs[i] = (onb_alloc){out.addr, size};
    d->num_allocs++;
    *addr_out = out.addr;
    return SIMPLER_OK;
}

static int drv_gm_free(platform_dev *d, uint64_t addr)
{
    uint32_t i = alloc_index(d, addr);
    if (i == d->num_allocs || d->allocs[i].addr != addr)
        return simpler_fail(SIMPLER_E_NOT_FOUND, "GM free: 0x%" PRIx64 " is not the start of a live allocation "
                            "(freed twice, or never allocated?)", addr);
    onb_gm in = {addr, 0}, out;
    int rc = REQUEST(d, ONB_GM_FREE, "GM_FREE", &in, &out);
    /* Gone either way: the device frees a lost client's memory itself. */
    memmove(&d->allocs[i], &d->allocs[i + 1], (d->num_allocs - i - 1) * sizeof *d->allocs);
    d->num_allocs--;
    return rc;
}

static uint64_t drv_gm_size_of(platform_dev *d, uint64_t addr)
{
    uint32_t i = alloc_index(d, addr);
    return i < d->num_allocs && d->allocs[i].addr == addr ? d->allocs[i].size : 0;
}

/* The host mapping of [addr, addr + size), which must lie inside one of
 * this process's allocations. */
/* Where [addr, +size) of this process's GM is in its mapping. */
static int gm_mapped(platform_dev *d, uint64_t addr, uint64_t size, const char *what, uint8_t **out)
{
    uint32_t i = alloc_index(d, addr + 1);      /* first allocation starting after addr */
    if (i == 0 || addr + size < addr || addr + size > d->allocs[i - 1].addr + d->allocs[i - 1].size)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT,
                            "%s: [0x%" PRIx64 ", +%" PRIu64 ") is not allocated device memory of this device", what,
                            addr, size);
    *out = d->gm_map + (addr - d->gm_base);
    return SIMPLER_OK;
}

static int gm_host(platform_dev *d, uint64_t addr, uint64_t size, const char *what, uint8_t **out)
{
    if (d->lost)
        return was_lost(d);
    return gm_mapped(d, addr, size, what, out);
}

static int drv_copy_to_device(platform_dev *d, uint64_t dst, const void *src, uint64_t size)
{
    uint8_t *p;
    int rc = gm_host(d, dst, size, "copy to device", &p);
    if (!rc && size)
        memcpy(p, src, size);
    return rc;
}

static int drv_copy_from_device(platform_dev *d, void *dst, uint64_t src, uint64_t size)
{
    uint8_t *p;
    /* A lost device's GM stays mapped here, so what it left there (a
     * failed launch's report) can still be read; the worker refuses the
     * user's own calls on a lost device. */
    int rc = d->gm_map ? gm_mapped(d, src, size, "copy from device", &p)
                       : gm_host(d, src, size, "copy from device", &p);
    if (!rc && size)
        memcpy(dst, p, size);
    return rc;
}

/* ------------------------------------------------------------------ */
/* binaries, callables, launches */

static int deploy_aicpu(platform_dev *d)
{
    int rc = file_get(&g_aicpu, read_aicpu);
    if (rc)
        return rc;
    pthread_mutex_lock(&g_installed_lock);
    for (uint32_t i = 0; i < 64; i++)
        if (g_installed[i][0] == d->instance && g_installed[i][1] == g_aicpu.fingerprint) {
            pthread_mutex_unlock(&g_installed_lock);
            return SIMPLER_OK;
        }
    pthread_mutex_unlock(&g_installed_lock);
    onb_binary q = {g_aicpu.fingerprint, 0};
    onb_binary_result res;
    if ((rc = REQUEST(d, ONB_BINARY_QUERY, "BINARY_QUERY", &q, &res)))
        return rc;
    if (!res.present) {
        onb_binary in = {g_aicpu.fingerprint, g_aicpu.size};
        rc = request(d, ONB_BINARY_INSTALL, "BINARY_INSTALL", &in, sizeof in, g_aicpu.bytes,
                     (uint32_t)g_aicpu.size, &res, sizeof res, NULL, NULL, ONB_REQUEST_WAIT_NS, NULL, NULL);
        if (rc)
            return simpler_fail_prefix(rc, "onboard: installing the AICPU runtime");
        atomic_fetch_add(&g_aicpu_uploads, 1);
    }
    pthread_mutex_lock(&g_installed_lock);
    g_installed[g_installed_next % 64][0] = d->instance;
    g_installed[g_installed_next % 64][1] = g_aicpu.fingerprint;
    g_installed_next++;
    pthread_mutex_unlock(&g_installed_lock);
    return SIMPLER_OK;
}

/* The AICore executor goes to GM like any device binary and is
 * registered once for this context; the handle lives until close. */
static int register_executor(platform_dev *d)
{
    int rc = file_get(&g_aicore, read_aicore);
    if (rc || (rc = drv_gm_alloc(d, g_aicore.size, &d->executor_gm)) ||
        (rc = drv_copy_to_device(d, d->executor_gm, g_aicore.bytes, g_aicore.size)))
        return rc;
    onb_gm in = {d->executor_gm, g_aicore.size};
    onb_handle out;
    if ((rc = REQUEST(d, ONB_EXECUTOR_REGISTER, "EXECUTOR_REGISTER", &in, &out)))
        return rc;
    d->executor = out.handle;
    d->executor_registrations++;
    return SIMPLER_OK;
}

static int drv_callable_load(platform_dev *d, const void *blob, uint64_t size, uint64_t gm_addr, uint32_t flags,
                             platform_kernel *kernels, uint64_t *orchestration_out, void **handle_out)
{
    onb_callable_load in = {gm_addr, size, flags & PLATFORM_LOAD_ORCHESTRATION ? ONB_LOAD_ORCHESTRATION : 0, 0};
    onb_callable_result *res;
    uint32_t res_size;
    int rc = request(d, ONB_CALLABLE_LOAD, "CALLABLE_LOAD", &in, sizeof in, NULL, 0, NULL, 0, (void **)&res,
                     &res_size, ONB_REQUEST_WAIT_NS, NULL, NULL);
    if (rc)
        return rc;
    if (res_size < sizeof *res || res_size != sizeof *res + (uint64_t)res->num_kernels * sizeof(uint64_t)) {
        free(res);
        return simpler_fail(SIMPLER_E_DEVICE_LOST, "simpler-device %d: malformed CALLABLE_LOAD reply", d->device_id);
    }
    for (uint32_t i = 0; i < res->num_kernels; i++)
        kernels[i].addr = res->kernel_addrs[i];
    *orchestration_out = res->orchestration;
    *handle_out = (void *)(uintptr_t)res->handle;
    free(res);
    return SIMPLER_OK;
}

static void drv_callable_release(platform_dev *d, void *handle)
{
    onb_handle in = {(uint64_t)(uintptr_t)handle};
    if (handle && !d->lost)
        request(d, ONB_CALLABLE_RELEASE, "CALLABLE_RELEASE", &in, sizeof in, NULL, 0, NULL, 0, NULL, NULL,
                ONB_REQUEST_WAIT_NS, NULL, NULL);
}

static void close_link(platform_dev *d)
{
    if (d->link >= 0)
        close(d->link);
    d->link = -1;
    onb_watch_close(&d->link_watch);
}

/* The launch link, from the device (its context is started by then). */
static int open_link(platform_dev *d)
{
    onb_launch_link_result res;
    int fd = -1;
    int rc = request(d, ONB_LAUNCH_LINK, "LAUNCH_LINK", NULL, 0, NULL, 0, &res, sizeof res, NULL, NULL,
                     ONB_REQUEST_WAIT_NS, &fd, NULL);
    if (!rc && fd < 0) {
        d->lost = 1;
        rc = simpler_fail(SIMPLER_E_DEVICE_LOST, "simpler-device %d sent no launch link", d->device_id);
    }
    if (rc) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    struct timeval limit = {ONB_LINK_SEND_LIMIT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    d->link = fd;
    onb_watch_open(&d->link_watch, (pid_t)res.context_pid);
    return SIMPLER_OK;
}

/* The launch link broke (the context died, or closed it) or went silent
 * (hung): the device ends the context and says how it ended, and this
 * worker is lost. */
static int context_gone(platform_dev *d, int hung)
{
    close_link(d);
    onb_context_end in = {(uint32_t)hung, 0};
    /* Not request(): the worker may be lost already (the context said so
     * in its reply), and the device must still hear it. */
    pthread_mutex_lock(&d->fd_lock);
    int wire, rc = exchange(d, d->fd, &d->seq, &d->watch, ONB_CONTEXT_END, "a launch", &in, sizeof in, NULL, 0, -1, NULL,
                            0, NULL, NULL, ONB_REQUEST_WAIT_NS, NULL, NULL, &wire);
    if (wire)
        rc = lose(d, "a launch", wire);
    if (!rc)
        rc = simpler_fail(SIMPLER_E_DEVICE_LOST, "simpler-device %d: the device context of this host process ended "
                          "during a launch", d->device_id);
    d->lost = 1;
    note_loss(d);
    pthread_mutex_unlock(&d->fd_lock);
    return rc;
}

/* A lost context's failure report is in GM until the device frees this
 * client's blocks, which it does once it answers CONTEXT_END: copied out
 * first. */
static void keep_failure_report(platform_dev *d, const simpler_launch_params *p, const platform_poll *poll)
{
    uint8_t *report;
    if (poll && poll->failure && p->failure_addr &&
        !gm_mapped(d, p->failure_addr, sizeof *poll->failure, "failure report", &report))
        memcpy(poll->failure, report, sizeof *poll->failure);
}

static int drv_launch(platform_dev *d, const simpler_launch_params *p, const platform_poll *poll)
{
    if (d->lost || d->link < 0)
        return was_lost(d);
    onb_launch in = {*p, g_aicpu.fingerprint, d->executor};
    /* Timeouts in order: the scheduler's watchdog, then the context's op
     * deadline ONB_OP_MARGIN_NS later, then this wait for the context to
     * answer. It sends a heartbeat while work progresses (or it waits for
     * its turn on the chip), and each one restarts the wait. */
    uint64_t wait = (uint64_t)p->scheduler_timeout_ms * 1000000ull + ONB_OP_MARGIN_NS + ONB_CONTEXT_MARGIN_NS;
    int wire, rc = exchange(d, d->link, &d->link_seq, &d->link_watch, ONB_LAUNCH, "a launch", &in, sizeof in, NULL,
                            0, -1, NULL, 0, NULL, NULL, wait, NULL, poll, &wire);
    if (wire) {         /* the context died (a crashing kernel) or hung */
        keep_failure_report(d, p, poll);
        return context_gone(d, wire == ONB_WIRE_TIMED_OUT);
    }
    if (rc == SIMPLER_E_DEVICE_LOST) {
        /* The context lost its chip and ends itself after this reply: the
         * device ends and reaps it now, and frees this worker's GM, before
         * the worker reports the loss. The context's message stands. */
        pthread_mutex_lock(&d->fd_lock);
        note_loss(d);               /* the context's own message is the cause */
        pthread_mutex_unlock(&d->fd_lock);
        simpler_error_hold(rc);     /* neither the report's copy nor CONTEXT_END may replace it */
        keep_failure_report(d, p, poll);
        context_gone(d, 0);
        simpler_error_release(rc);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* peer memory */

/* Both devices' segments are mapped here: a peer copy is a memcpy
 * between the two mappings. */
static int drv_gm_host_view(platform_dev *d, uint64_t addr, uint64_t size, void **out)
{
    uint8_t *p;
    int rc = gm_host(d, addr, size, "peer copy", &p);
    if (!rc)
        *out = p;
    return rc;
}

/* One request on the launch link (no launch runs: the worker waits for
 * it first). A link that breaks ends the context as a launch's would. */
static int link_request(platform_dev *d, uint16_t type, const char *what, const void *in, uint32_t in_size,
                        int pass_fd, void *out, uint32_t out_size)
{
    if (d->lost || d->link < 0)
        return was_lost(d);
    int wire, rc = exchange(d, d->link, &d->link_seq, &d->link_watch, type, what, in, in_size, NULL, 0, pass_fd,
                            out, out_size, NULL, NULL, ONB_REQUEST_WAIT_NS, NULL, NULL, &wire);
    if (wire)
        return context_gone(d, wire == ONB_WIRE_TIMED_OUT);
    if (rc == SIMPLER_E_DEVICE_LOST) {
        pthread_mutex_lock(&d->fd_lock);
        note_loss(d);
        pthread_mutex_unlock(&d->fd_lock);
    }
    return rc;
}

/* The peer's segment goes to this device's context, which maps the range
 * for its kernels: the kernels of another device process reach it at the
 * address the context answers. */
static int drv_peer_map(platform_dev *d, platform_dev *peer, uint64_t peer_addr, uint64_t size, uint64_t *addr_out)
{
    uint8_t *p;
    int rc = gm_host(peer, peer_addr, size, "peer window", &p);
    if (rc)
        return rc;
    if (peer->gm_fd < 0)
        return simpler_fail(SIMPLER_E_STATE, "simpler-device %d's GM segment is not open here", peer->device_id);
    onb_peer_map in = {peer_addr - peer->gm_base, size};
    onb_peer_window out;
    if ((rc = link_request(d, ONB_PEER_MAP, "PEER_MAP", &in, sizeof in, peer->gm_fd, &out, sizeof out)))
        return rc;
    *addr_out = out.addr;
    return SIMPLER_OK;
}

static int drv_peer_unmap(platform_dev *d, uint64_t addr)
{
    onb_peer_window in = {addr};
    return link_request(d, ONB_PEER_UNMAP, "PEER_UNMAP", &in, sizeof in, -1, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* open and close */

static void drv_close(platform_dev *d)
{
    if (!d)
        return;
    if (d->fd >= 0 && !d->lost && d->executor) {
        onb_handle in = {d->executor};
        request(d, ONB_EXECUTOR_RELEASE, "EXECUTOR_RELEASE", &in, sizeof in, NULL, 0, NULL, 0, NULL, NULL,
                ONB_REQUEST_WAIT_NS, NULL, NULL);
    }
    if (d->executor_gm && !d->lost)
        drv_gm_free(d, d->executor_gm);
    /* Closing the connection frees anything else this process held. */
    close_link(d);
    if (d->fd >= 0)
        close(d->fd);
    if (d->gm_map)
        munmap(d->gm_map, d->gm_capacity);
    if (d->gm_fd >= 0)
        close(d->gm_fd);
    onb_watch_close(&d->watch);
    pthread_mutex_destroy(&d->fd_lock);
    free(d->allocs);
    free(d);
}

static int drv_open(const char *name, int32_t device_id, const simpler_device_options *options, const char *lib_dir,
                    platform_dev **out)
{
    snprintf(g_lib_dir, sizeof g_lib_dir, "%s", lib_dir);
    platform_dev *d = calloc(1, sizeof *d);
    if (!d)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "onboard: out of host memory");
    d->device_id = device_id;
    d->fd = d->link = d->gm_fd = -1;
    pthread_mutex_init(&d->fd_lock, NULL);
    int gm_fd = -1, rc = onb_dir(d->dir, sizeof d->dir);
    onb_hello_result hello;
    if (!rc)
        rc = attach(d, options ? options->gm_capacity : 0, 1, &hello, &gm_fd);
    if (!rc) {
        d->instance = hello.instance;
        d->gm_base = hello.gm_base;
        d->gm_capacity = hello.gm_capacity;
        if (gm_fd < 0) {
            rc = simpler_fail(SIMPLER_E_DEVICE_LOST, "simpler-device %d sent no GM segment", device_id);
        } else {
            d->gm_map = mmap(NULL, d->gm_capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, gm_fd, 0);
            if (d->gm_map == MAP_FAILED) {
                d->gm_map = NULL;
                rc = simpler_fail(SIMPLER_E_SYSTEM, "onboard: cannot map the device's GM: %s", strerror(errno));
            }
        }
    }
    if (!rc)
        d->gm_fd = gm_fd;
    else if (gm_fd >= 0)
        close(gm_fd);
    if (!rc)
        onb_watch_open(&d->watch, d->peer_pid);
    if (!rc && !(rc = deploy_aicpu(d)) && !(rc = register_executor(d)))
        rc = open_link(d);
    if (rc) {
        drv_close(d);
        return rc;
    }
    *out = d;
    return SIMPLER_OK;
}

static int drv_is_lost(platform_dev *d) { return d->lost; }

/* Read once lost, when lost_why no longer changes. */
static const char *drv_lost_why(platform_dev *d) { return d->lost ? d->lost_why : ""; }

static void drv_counters(platform_dev *d, platform_counters *out)
{
    onb_counters c;
    if (request(d, ONB_COUNTERS, "COUNTERS", NULL, 0, NULL, 0, &c, sizeof c, NULL, NULL, ONB_REQUEST_WAIT_NS, NULL, NULL) == SIMPLER_OK) {
        out->gm_capacity = c.gm_capacity;
        out->committed_bytes = c.committed_bytes;
        out->peak_committed_bytes = c.peak_committed_bytes;
        out->live_allocations = c.live_allocations;
        out->loaded_objects = c.loaded_objects;
        out->core_threads = c.core_threads;
        out->aicpu_threads = c.aicpu_threads;
        out->core_resets = c.core_resets;
        out->device_pid = c.device_pid;
        out->device_clients = c.clients;
        out->device_committed_bytes = c.device_committed_bytes;
        out->device_binary_installs = c.binary_installs;
        out->device_executor_loads = c.executor_loads;
        out->device_context_pid = c.context_pid;
        out->peer_windows = c.peer_windows;
    }
    out->aicpu_uploads = atomic_load(&g_aicpu_uploads);
    out->executor_registrations = d->executor_registrations;
}


/* ------------------------------------------------------------------ */
/* managing the device process by hand (the table's service operations) */

static int onboard_device_start(const char *lib_dir, int32_t device_id, uint64_t gm_capacity, double idle_s)
{
    snprintf(g_lib_dir, sizeof g_lib_dir, "%s", lib_dir);
    char dir[4096], sock_path[ONB_PATH_MAX];
    int rc = onb_dir(dir, sizeof dir);
    if (rc || (rc = onb_device_path(sock_path, dir, device_id, "sock")))
        return rc;
    int fd = connect_to(sock_path, NULL);
    if (fd == -2)
        return SIMPLER_E_SYSTEM;
    if (fd >= 0) {
        close(fd);
        return simpler_fail(SIMPLER_E_EXISTS, "simpler-device %d is already running", (int)device_id);
    }
    return spawn_device(device_id, gm_capacity, idle_s);
}

static int onboard_device_status(const char *lib_dir, int32_t device_id, simpler_onboard_info *out)
{
    snprintf(g_lib_dir, sizeof g_lib_dir, "%s", lib_dir);
    memset(out, 0, sizeof *out);
    platform_dev d = {.device_id = device_id, .fd = -1, .link = -1, .fd_lock = PTHREAD_MUTEX_INITIALIZER};
    int gm_fd = -1, rc = onb_dir(d.dir, sizeof d.dir);
    onb_hello_result hello;
    if (!rc && (rc = attach(&d, 0, 0, &hello, &gm_fd)) == SIMPLER_E_NOT_FOUND)
        rc = SIMPLER_OK;    /* not running */
    else if (!rc) {
        onb_counters c;
        rc = request(&d, ONB_COUNTERS, "COUNTERS", NULL, 0, NULL, 0, &c, sizeof c, NULL, NULL, ONB_REQUEST_WAIT_NS, NULL, NULL);
        if (!rc) {
            out->running = 1;
            out->pid = (uint32_t)c.device_pid;
            out->clients = (uint32_t)c.clients - 1;
            out->gm_capacity = c.gm_capacity;
            out->committed_bytes = c.device_committed_bytes;
            out->uptime_ms = c.uptime_ms;
            out->launches = c.launches;
            out->core_threads = (uint32_t)c.core_threads;
        }
    }
    if (gm_fd >= 0)
        close(gm_fd);
    if (d.fd >= 0)
        close(d.fd);
    return rc;
}

static int onboard_device_stop(const char *lib_dir, int32_t device_id, int force)
{
    snprintf(g_lib_dir, sizeof g_lib_dir, "%s", lib_dir);
    platform_dev d = {.device_id = device_id, .fd = -1, .link = -1, .fd_lock = PTHREAD_MUTEX_INITIALIZER};
    int gm_fd = -1, rc = onb_dir(d.dir, sizeof d.dir);
    onb_hello_result hello;
    if (!rc)
        rc = attach(&d, 0, 0, &hello, &gm_fd);
    if (gm_fd >= 0)
        close(gm_fd);
    if (!rc) {
        onb_shutdown in = {(uint32_t)(force != 0), 0};
        rc = request(&d, ONB_SHUTDOWN, "SHUTDOWN", &in, sizeof in, NULL, 0, NULL, 0, NULL, NULL,
                     ONB_REQUEST_WAIT_NS, NULL, NULL);
        if (!rc) {  /* it has stopped when it closes our connection */
            onb_header h;
            void *payload;
            onb_recv(d.fd, &h, &payload, NULL, (int64_t)ONB_START_WAIT_NS, 0);
            free(payload);
        }
    } else if (rc == SIMPLER_E_UNSUPPORTED && force) {
        /* Another build, or another protocol: end it by its pid file. */
        char pid_path[ONB_PATH_MAX], text[32] = "";
        if (!onb_device_path(pid_path, d.dir, device_id, "pid")) {
            FILE *f = open_text(pid_path);
            if (f && fgets(text, sizeof text, f) && atoi(text) > 0 && kill(atoi(text), SIGTERM) == 0)
                rc = SIMPLER_OK;
            if (f)
                fclose(f);
        }
    }
    if (d.fd >= 0)
        close(d.fd);
    return rc;
}

const platform_ops simpler_platform_onboard = {
    .name = "onboard",
    .open = drv_open,
    .close = drv_close,
    .gm_alloc = drv_gm_alloc,
    .gm_free = drv_gm_free,
    .gm_size_of = drv_gm_size_of,
    .copy_to_device = drv_copy_to_device,
    .copy_from_device = drv_copy_from_device,
    .gm_host_view = drv_gm_host_view,
    .peer_map = drv_peer_map,
    .peer_unmap = drv_peer_unmap,
    .callable_load = drv_callable_load,
    .callable_release = drv_callable_release,
    .launch = drv_launch,
    .concurrent_launch = 1,
    .is_lost = drv_is_lost,
    .lost_why = drv_lost_why,
    .counters = drv_counters,
    .service_start = onboard_device_start,
    .service_status = onboard_device_status,
    .service_stop = onboard_device_stop,
};

PLATFORM_REGISTER(simpler_platform_onboard);
