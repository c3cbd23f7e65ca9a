/*
 * Framing of the driver protocol (protocol.h) on a Unix stream socket, for
 * both ends: whole messages out, whole messages in, an optional
 * descriptor alongside, a deadline on reads, and a watch on the peer's
 * process that ends a read as soon as the peer is gone.
 */
#ifndef SIMPLER_ONBOARD_WIRE_H
#define SIMPLER_ONBOARD_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "onboard/protocol.h"

enum onb_wire_status {
    ONB_WIRE_OK = 0,
    ONB_WIRE_CLOSED = 1,        /* the peer closed the connection (or died) */
    ONB_WIRE_TIMED_OUT = 2,
    ONB_WIRE_MALFORMED = 3,     /* bad magic or an oversized payload: stop reading this peer */
    ONB_WIRE_ERROR = 4,         /* a system call failed; errno says why */
    ONB_WIRE_PEER_GONE = 5      /* the watched process ended, its socket still open */
};

/*
 * The process at the other end of a connection. Its socket alone may not
 * say when it dies: a child it forked (a kernel's) can hold the socket
 * open. pid 0 (a zeroed watch): no watch. pidfd: a pidfd_open descriptor,
 * polled beside the socket, or -1 where there is none (before Linux 5.3):
 * then /proc says, looked at every ONB_WATCH_POLL_MS while a read waits.
 */
typedef struct onb_watch {
    pid_t pid;
    int pidfd;
} onb_watch;

#define ONB_WATCH_POLL_MS 50

/* Watch pid (SIMPLER_ONBOARD_NO_PIDFD set: without a pidfd, for tests). */
void onb_watch_open(onb_watch *w, pid_t pid);
void onb_watch_close(onb_watch *w);
/* Non-zero once the process has ended (a zombie has ended too). */
int onb_watch_gone(const onb_watch *w);
/* Wait up to timeout_ns for it to end; non-zero if it did. */
int onb_watch_wait(const onb_watch *w, uint64_t timeout_ns);
/* Whether process pid has ended, by /proc (no watch needed). */
int onb_pid_gone(pid_t pid);

/* Send header + a[na] + b[nb] as one message; pass_fd >= 0 travels with it. */
int onb_send(int fd, uint16_t type, uint32_t seq, const void *a, uint32_t na, const void *b, uint32_t nb,
             int pass_fd);

/*
 * Receive one message: the header, then its payload into a malloc'd
 * buffer (*payload, NULL when empty; the caller frees it). A descriptor
 * that came with it lands in *fd_out (-1 if none; NULL closes any).
 * timeout_ns < 0 waits for ever. Before blocking, a reader polls for
 * spin_ns: a reply usually follows within microseconds, and waking a
 * sleeping thread costs tens of them.
 */
int onb_recv(int fd, onb_header *h, void **payload, int *fd_out, int64_t timeout_ns, uint64_t spin_ns);

/* onb_recv that also ends with ONB_WIRE_PEER_GONE when the watched process
 * ends with nothing left to read (watch NULL or zeroed: onb_recv). */
int onb_recv_watched(int fd, onb_header *h, void **payload, int *fd_out, int64_t timeout_ns, uint64_t spin_ns,
                     const onb_watch *watch);

/* Read fd to its end (or size - 1 bytes) as a NUL-terminated string;
 * returns its length. For the start-up message pipe. */
size_t onb_read_text(int fd, char *buf, size_t size);

#endif
