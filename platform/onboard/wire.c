#include "onboard/wire.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/error.h"
#include "common/wait.h"

int onb_send(int fd, uint16_t type, uint32_t seq, const void *a, uint32_t na, const void *b, uint32_t nb,
             int pass_fd)
{
    onb_header h = {ONB_MAGIC, ONB_VERSION, type, seq, na + nb};
    struct iovec iov[3] = {{&h, sizeof h}, {(void *)a, na}, {(void *)b, nb}};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 3};
    if (pass_fd >= 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof control.buf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
    }
    uint64_t left = sizeof h + (uint64_t)na + nb;
    while (left) {
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return ONB_WIRE_TIMED_OUT;  /* a send limit (SO_SNDTIMEO) ran out: the reader stopped */
            return errno == EPIPE || errno == ECONNRESET ? ONB_WIRE_CLOSED : ONB_WIRE_ERROR;
        }
        left -= (uint64_t)n;
        msg.msg_control = NULL;     /* the descriptor went with the first byte */
        msg.msg_controllen = 0;
        while (n > 0 && msg.msg_iovlen) {
            if ((size_t)n >= msg.msg_iov->iov_len) {
                n -= (ssize_t)msg.msg_iov->iov_len;
                msg.msg_iov++;
                msg.msg_iovlen--;
            } else {
                msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + n;
                msg.msg_iov->iov_len -= (size_t)n;
                n = 0;
            }
        }
    }
    return ONB_WIRE_OK;
}

/* ------------------------------------------------------------------ */
/* the peer's process */

int onb_pid_gone(pid_t pid)
{
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH;
    ssize_t n = read(fd, stat, sizeof stat - 1);
    close(fd);
    if (n <= 0)
        return 1;       /* it went while we looked */
    stat[n] = '\0';
    /* "pid (comm) S ...": the state follows the last parenthesis. */
    const char *paren = strrchr(stat, ')');
    return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

void onb_watch_open(onb_watch *w, pid_t pid)
{
    const char *no_pidfd = getenv("SIMPLER_ONBOARD_NO_PIDFD");
    w->pid = pid;
    w->pidfd = -1;
    /* ENOSYS (older kernels) or a refusal: /proc serves, a little later. */
    if (pid > 0 && !(no_pidfd && *no_pidfd))
        w->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);    /* close-on-exec by itself */
    if (w->pidfd < 0)
        w->pidfd = -1;
}

void onb_watch_close(onb_watch *w)
{
    if (w->pid > 0 && w->pidfd >= 0)
        close(w->pidfd);
    w->pid = 0;
    w->pidfd = -1;
}

int onb_watch_gone(const onb_watch *w)
{
    if (!w || w->pid <= 0)
        return 0;
    if (w->pidfd >= 0) {
        struct pollfd p = {w->pidfd, POLLIN, 0};
        return poll(&p, 1, 0) > 0;
    }
    return onb_pid_gone(w->pid);
}

int onb_watch_wait(const onb_watch *w, uint64_t timeout_ns)
{
    if (!w || w->pid <= 0)
        return 0;
    uint64_t deadline = simpler_now_ns() + timeout_ns;
    for (;;) {
        if (onb_watch_gone(w))
            return 1;
        uint64_t now = simpler_now_ns();
        if (now >= deadline)
            return 0;
        int ms = (int)((deadline - now) / 1000000) + 1;
        if (w->pidfd >= 0) {
            struct pollfd p = {w->pidfd, POLLIN, 0};
            poll(&p, 1, ms);
        } else {
            usleep((useconds_t)(ms < 10 ? ms : 10) * 1000);
        }
    }
}

/* ------------------------------------------------------------------ */
/* reading */

/* Wait until fd is readable or the deadline (0: none) passes; with a
 * watch, also until its process ends. What fd has to read comes first: a
 * peer's last reply before it exits is read, not lost. */
static int wait_readable(int fd, uint64_t deadline, uint64_t spin_until, const onb_watch *watch)
{
    int watching = watch && watch->pid > 0;
    int by_pidfd = watching && watch->pidfd >= 0;
    for (;;) {
        struct pollfd p[2] = {{fd, POLLIN, 0}, {by_pidfd ? watch->pidfd : -1, POLLIN, 0}};
        uint64_t now = simpler_now_ns();
        int ms = -1;
        if (now < spin_until)
            ms = 0;
        else if (deadline)
            ms = now >= deadline ? 0
                 : (deadline - now) / 1000000 >= INT32_MAX ? INT32_MAX
                 : (int)((deadline - now + 999999) / 1000000);
        int slice = watching && !by_pidfd && now >= spin_until && (ms < 0 || ms > ONB_WATCH_POLL_MS);
        int r = poll(p, by_pidfd ? 2 : 1, slice ? ONB_WATCH_POLL_MS : ms);
        if (r > 0 && p[0].revents)
            return ONB_WIRE_OK;
        if (r > 0 && p[1].revents)
            return ONB_WIRE_PEER_GONE;
        if (r < 0 && errno != EINTR)
            return ONB_WIRE_ERROR;
        if (r == 0 && slice && onb_pid_gone(watch->pid))
            return ONB_WIRE_PEER_GONE;
        if (r == 0 && now >= spin_until && deadline && simpler_now_ns() >= deadline)
            return ONB_WIRE_TIMED_OUT;
    }
}

/* Read exactly size bytes; the first read may carry a descriptor. */
static int read_full(int fd, void *buf, uint64_t size, int *fd_got, uint64_t deadline, uint64_t spin_until,
                     const onb_watch *watch)
{
    uint8_t *p = buf;
    while (size) {
        int rc = wait_readable(fd, deadline, spin_until, watch);
        if (rc)
            return rc;
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(sizeof(int) * 4)];
        } control;
        struct iovec iov = {p, size};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof control.buf};
        ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return errno == ECONNRESET ? ONB_WIRE_CLOSED : ONB_WIRE_ERROR;
        }
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                continue;
            int count = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < count; i++) {
                int got;
                memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof got);
                if (fd_got && *fd_got < 0)
                    *fd_got = got;
                else
                    close(got);
            }
        }
        if (n == 0)
            return ONB_WIRE_CLOSED;
        p += n;
        size -= (uint64_t)n;
    }
    return ONB_WIRE_OK;
}

int onb_recv(int fd, onb_header *h, void **payload, int *fd_out, int64_t timeout_ns, uint64_t spin_ns)
{
    return onb_recv_watched(fd, h, payload, fd_out, timeout_ns, spin_ns, NULL);
}

int onb_recv_watched(int fd, onb_header *h, void **payload, int *fd_out, int64_t timeout_ns, uint64_t spin_ns,
                     const onb_watch *watch)
{
    uint64_t now = simpler_now_ns();
    uint64_t deadline = timeout_ns < 0 ? 0 : now + (uint64_t)timeout_ns + (timeout_ns == 0);
    uint64_t spin_until = now + spin_ns;
    int got = -1;
    *payload = NULL;
    if (fd_out)
        *fd_out = -1;
    int rc = read_full(fd, h, sizeof *h, &got, deadline, spin_until, watch);
    if (!rc && (h->magic != ONB_MAGIC || h->size > ONB_MAX_PAYLOAD + 4096u))
        rc = ONB_WIRE_MALFORMED;
    if (!rc && h->size) {
        if (!(*payload = malloc(h->size)))
            rc = ONB_WIRE_ERROR;
        else if ((rc = read_full(fd, *payload, h->size, &got, deadline, 0, watch))) {
            free(*payload);
            *payload = NULL;
        }
    }
    if (got >= 0) {
        if (!rc && fd_out)
            *fd_out = got;
        else
            close(got);
    }
    return rc;
}

size_t onb_read_text(int fd, char *buf, size_t size)
{
    size_t n = 0;
    ssize_t r;
    while (n + 1 < size && ((r = read(fd, buf + n, size - 1 - n)) > 0 || (r < 0 && errno == EINTR)))
        if (r > 0)
            n += (size_t)r;
    buf[n] = '\0';
    return n;
}

int onb_report_check(const simpler_launch_params *p, uint64_t image_size)
{
    uint64_t at = p->failure_addr - p->image_addr;
    if (p->failure_addr >= p->image_addr && at <= image_size && image_size - at >= sizeof(simpler_failure_report))
        return SIMPLER_OK;
    return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "launch failure report: 0x%" PRIx64 " is not inside the launch "
                        "image's block", p->failure_addr);
}
