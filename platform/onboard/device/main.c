/*
 * simpler-device: the process that owns one device.
 *
 *   simpler-device --device-id N [--gm-capacity BYTES] [--idle-timeout S] [--foreground]
 *
 * Without --foreground it detaches (a new session, output to its log) and
 * the starting command exits once the socket accepts connections, with
 * status 0, or 3 when a device process for N already runs, or 1 with the
 * reason on stderr. It exits by itself after --idle-timeout seconds with
 * no host process connected, on SHUTDOWN, on SIGTERM, and when its chip is
 * Kernels do not run here but in each host process's device context,
 *
 *   simpler-device --context ...       (context.c; only the device starts it)
 *
 * so a crashing or hanging kernel ends its context, not this process. A
 * fatal signal here (a bug of the device's own) writes device-N.crash
 * first, for the hosts to report, and so does an exit because the
 * listening socket is gone.
 *
 * The descriptors that are the device's are closed in any fork() child,
 * and the pid lock is a POSIX record lock, which no child inherits.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "chip/chip.h"
#include "common/error.h"
#include "common/hash.h"
#include "common/wait.h"
#include "onboard/device/context.h"
#include "onboard/device/server.h"
#include "onboard/paths.h"
#include "onboard/wire.h"

#define DEFAULT_GM_CAPACITY (16ull << 30)
#define DEFAULT_IDLE_S 120.0
#define EXIT_ALREADY_RUNNING 3
#define POLL_MS 100

static devsrv *g_server;
static int32_t g_device_id;
static char g_crash_path[ONB_PATH_MAX];
static volatile sig_atomic_t g_terminate;

/* The descriptors that are the device's: the listener, the pid lock, GM
 * and every connection, as fd + 1 (0: a free slot). */
#define OWNED_FDS_MAX 1024
static _Atomic int g_owned[OWNED_FDS_MAX];

static void own_fd(int fd)
{
    for (int i = 0; i < OWNED_FDS_MAX; i++) {
        int free_slot = 0;
        if (atomic_compare_exchange_strong(&g_owned[i], &free_slot, fd + 1))
            return;
    }
}

static void disown_fd(int fd)
{
    for (int i = 0; i < OWNED_FDS_MAX; i++) {
        int mine = fd + 1;
        if (atomic_compare_exchange_strong(&g_owned[i], &mine, 0))
            return;
    }
}

/* In a child a kernel forked: a copy of the listener or of a connection
 * would keep them open after the device died (hosts would wait on a dead
 * device, new ones connect to nobody), a copy of the pid file's
 * descriptor would hold it. Only close() here: the child of a threaded
 * process may call nothing that is not async-signal-safe. */
static void close_owned_in_child(void)
{
    for (int i = 0; i < OWNED_FDS_MAX; i++) {
        int v = atomic_load(&g_owned[i]);
        if (v)
            close(v - 1);
    }
}

/* Leave the hosts a line saying why this process ends, in device-N.crash
 * (a fresh file, never through a link left in its place) and the log.
 * Async-signal-safe. */
static void last_words(const char *line, size_t n)
{
    unlink(g_crash_path);
    int fd = open(g_crash_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        if (write(fd, line, n) < 0) {
        }
        close(fd);
    }
    if (write(2, line, n) < 0) {
    }
}

/* The process is dying: say why, then die of the same signal. */
static void on_fatal(int sig)
{
    char line[768];
    int n = snprintf(line, sizeof line, "simpler-device %d (pid %d) died of %s\n", (int)g_device_id,
                     (int)getpid(), chip_signal_name(sig));
    last_words(line, (size_t)n);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_terminate(int sig) { g_terminate = 1; }

static void install_signals(void)
{
    chip_catch_fatal_signals(on_fatal);
    struct sigaction term = {0};
    term.sa_handler = on_terminate;
    sigaction(SIGTERM, &term, NULL);
    sigaction(SIGINT, &term, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static uint64_t own_build(void)
{
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    struct stat st;
    uint64_t h = 0;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            h = simpler_fnv1a64(m, (size_t)st.st_size);
            munmap(m, (size_t)st.st_size);
        }
    }
    if (fd >= 0)
        close(fd);
    return h;
}

typedef struct serve_arg {
    devsrv *server;
    int fd;
} serve_arg;

static void *serve_thread(void *p)
{
    serve_arg a = *(serve_arg *)p;
    free(p);
    devsrv_serve(a.server, a.fd);
    disown_fd(a.fd);
    return NULL;
}

/* Only the user who runs the device may talk to it. */
static int peer_is_us(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == getuid();
}

/* A connection admitted but never served: serving it to its end at once
 * (it sees EOF on our side) undoes the admission. */
static void dev_dismiss(devsrv *server, int fd)
{
    shutdown(fd, SHUT_RDWR);
    devsrv_serve(server, fd);
}

/* Accept and serve one connection; -1 when the listener is gone (a
 * kernel closed it, or put something else in its place). */
static int accept_one(devsrv *server, int listener)
{
    int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return errno == EBADF || errno == ENOTSOCK || errno == EINVAL ? -1 : 0;
    if (!peer_is_us(fd)) {
        fprintf(stderr, "simpler-device: refused a connection from another user\n");
        close(fd);
        return 0;
    }
    own_fd(fd);
    serve_arg *a = malloc(sizeof *a);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    devsrv_admit(server);
    if (!a || (a->server = server, a->fd = fd, pthread_create(&t, &attr, serve_thread, a) != 0)) {
        free(a);
        dev_dismiss(server, fd);
        disown_fd(fd);
    }
    pthread_attr_destroy(&attr);
    return 0;
}

static int usage(const char *why)
{
    fprintf(stderr, "simpler-device: %s\nusage: simpler-device --device-id N [--gm-capacity BYTES] "
                    "[--idle-timeout SECONDS] [--foreground]\n", why);
    return 1;
}

/* Tell the starting command how it went: an empty message is success. */
static void report_start(int fd, const char *message)
{
    if (fd < 0)
        return;
    if (message && write(fd, message, strlen(message)) < 0) {
    }
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--context") == 0)
        return devctx_main(argc, argv);
    /* Inherit nothing from the host process that started us (an xdist
     * worker's pipes kept open here would never see EOF). */
    close_range(3, ~0u, 0);
    long device_id = -1;
    uint64_t gm_capacity = DEFAULT_GM_CAPACITY;
    double idle_s = DEFAULT_IDLE_S;
    int foreground = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (strcmp(a, "--foreground") == 0) {
            foreground = 1;
        } else if (strcmp(a, "--device-id") == 0 && v) {
            device_id = strtol(v, &end, 10);
            if (*end || device_id < 0 || device_id > 63)
                return usage("--device-id must be 0..63");
            i++;
        } else if (strcmp(a, "--gm-capacity") == 0 && v) {
            gm_capacity = strtoull(v, &end, 10);
            if (*end || gm_capacity < 4096)
                return usage("--gm-capacity must be a number of bytes, at least 4096");
            i++;
        } else if (strcmp(a, "--idle-timeout") == 0 && v) {
            idle_s = strtod(v, &end);
            if (*end || !(idle_s > 0))
                return usage("--idle-timeout must be a positive number of seconds");
            i++;
        } else {
            return usage(a[0] == '-' ? "unknown option or missing value" : "unexpected argument");
        }
    }
    if (device_id < 0)
        return usage("--device-id is required");
    g_device_id = (int32_t)device_id;

    char dir[4096], sock_path[ONB_PATH_MAX], pid_path[ONB_PATH_MAX], log_path[ONB_PATH_MAX];
    if (onb_dir(dir, sizeof dir) || onb_device_path(sock_path, dir, g_device_id, "sock") ||
        onb_device_path(pid_path, dir, g_device_id, "pid") || onb_device_path(log_path, dir, g_device_id, "log") ||
        onb_device_path(g_crash_path, dir, g_device_id, "crash")) {
        fprintf(stderr, "simpler-device: %s\n", simpler_last_error());
        return 1;
    }

    int ready = -1;
    if (!foreground) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) {
            perror("simpler-device: pipe");
            return 1;
        }
        pid_t child = fork();
        if (child < 0) {
            perror("simpler-device: fork");
            return 1;
        }
        if (child > 0) {
            close(p[1]);
            char msg[2048];
            size_t n = onb_read_text(p[0], msg, sizeof msg);
            if (n == 0)
                return 0;
            fprintf(stderr, "%s\n", msg);
            return strstr(msg, "already running") ? EXIT_ALREADY_RUNNING : 1;
        }
        close(p[0]);
        ready = p[1];
        setsid();
        if (chdir("/") != 0) {
        }
    }

    /* One device process per id: the pid file's lock says who it is. */
    umask(077);     /* everything this process creates is this user's alone */
    int pid_fd = open(pid_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (pid_fd < 0) {
        char m[512];
        snprintf(m, sizeof m, "simpler-device: cannot open %s: %s", pid_path, strerror(errno));
        report_start(ready, m);
        return 1;
    }
    struct flock whole = {.l_type = F_WRLCK, .l_whence = SEEK_SET};    /* a process's: no child inherits it */
    if (fcntl(pid_fd, F_SETLK, &whole) != 0) {
        char m[600], other[32] = "";
        ssize_t n = pread(pid_fd, other, sizeof other - 1, 0);
        other[n > 0 ? n : 0] = '\0';
        snprintf(m, sizeof m, "simpler-device %d is already running (pid %s)", g_device_id,
                 other[0] ? strtok(other, "\n") : "?");
        if (foreground)
            fprintf(stderr, "%s\n", m);
        report_start(ready, m);
        return EXIT_ALREADY_RUNNING;
    }
    own_fd(pid_fd);
    pthread_atfork(NULL, NULL, close_owned_in_child);
    char pid_text[32];
    int pid_len = snprintf(pid_text, sizeof pid_text, "%d\n", (int)getpid());
    if (ftruncate(pid_fd, 0) != 0 || pwrite(pid_fd, pid_text, (size_t)pid_len, 0) != pid_len) {
    }

    /* Contexts run this very binary, even once a reinstall replaced the
     * file: they must speak the launch ABI of this build. */
    devsrv_config cfg = {g_device_id, gm_capacity, dir, own_build(), "/proc/self/exe"};
    if (devsrv_create(&cfg, &g_server) != SIMPLER_OK) {
        char m[1200];
        snprintf(m, sizeof m, "simpler-device: %s", simpler_last_error());
        report_start(ready, m);
        return 1;
    }
    own_fd(devsrv_gm_fd(g_server));

    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_path);
    unlink(sock_path);      /* a dead device's socket: we hold the lock, so it is not live */
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 64) != 0) {
        char m[600];
        snprintf(m, sizeof m, "simpler-device: cannot listen on %s: %s", sock_path, strerror(errno));
        report_start(ready, m);
        return 1;
    }
    own_fd(listener);
    unlink(g_crash_path);

    if (!foreground) {
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        unlink(log_path);   /* a fresh log, never written through a link */
        int log = open(log_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (null >= 0)
            dup2(null, 0);
        /* fd 2 is still the starter's pipe: it must close, log or not. */
        int out = log >= 0 ? log : null;
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        if (null >= 0)
            close(null);
        if (log >= 0)
            close(log);
    }
    install_signals();
    fprintf(stderr, "simpler-device %d (pid %d) serving %s: %" PRIu64 " bytes of GM, idle timeout %.0f s\n",
            g_device_id, (int)getpid(), sock_path, gm_capacity, idle_s);
    fflush(stderr);
    report_start(ready, NULL);

    uint64_t idle_since = simpler_now_ns();
    const char *why = "idle";
    int listening = 1;
    for (;;) {
        struct pollfd p = {listener, POLLIN, 0};
        int r = poll(&p, 1, POLL_MS);
        /* A listener that is gone never comes back: nobody new can reach
         * this device, so it ends (and says so) rather than spin. */
        if ((r > 0 && (p.revents & (POLLNVAL | POLLERR | POLLHUP))) ||
            (r > 0 && accept_one(g_server, listener) < 0)) {
            listening = 0;
            why = "its listening socket was closed under it (did a kernel close the device's descriptors?)";
            char line[512];
            int n = snprintf(line, sizeof line, "simpler-device %d (pid %d) exited: %s\n", (int)g_device_id,
                             (int)getpid(), why);
            last_words(line, (size_t)n);
            break;
        }
        if (r > 0)
            idle_since = simpler_now_ns();
        if (g_terminate) {
            why = "terminated";
            break;
        }
        if (devsrv_exit_requested(g_server)) {
            why = "stopped";
            break;
        }
        if (devsrv_clients(g_server) > 0)
            idle_since = simpler_now_ns();
        else if (simpler_now_ns() - idle_since > (uint64_t)(idle_s * 1e9))
            break;
    }
    /* New hosts find no socket and start a fresh device; connected ones
     * see their connection close. A socket we no longer listen on may
     * already be a fresh device's: it stays. */
    if (listening) {
        unlink(sock_path);
        close(listener);
    }
    fprintf(stderr, "simpler-device %d (pid %d) exiting: %s (%" PRIu64 " device contexts served)\n", g_device_id,
            (int)getpid(), why, devsrv_contexts_started(g_server));
    fflush(stderr);
    if (devsrv_clients(g_server) == 0)
        devsrv_destroy(g_server);
    _exit(0);
}
