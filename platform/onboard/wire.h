/*
 * Framing of the driver protocol (protocol.h) on a Unix stream socket, for
 * both ends: whole messages out, whole messages in, an optional
 * descriptor alongside, and a deadline on reads.
 */
#ifndef SIMPLER_ONBOARD_WIRE_H
#define SIMPLER_ONBOARD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "onboard/protocol.h"

enum onb_wire_status {
    ONB_WIRE_OK = 0,
    ONB_WIRE_CLOSED = 1,        /* the peer closed the connection (or died) */
    ONB_WIRE_TIMED_OUT = 2,
    ONB_WIRE_MALFORMED = 3,     /* bad magic or an oversized payload: stop reading this peer */
    ONB_WIRE_ERROR = 4          /* a system call failed; errno says why */
};

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

/* Read fd to its end (or size - 1 bytes) as a NUL-terminated string;
 * returns its length. For the start-up message pipe. */
size_t onb_read_text(int fd, char *buf, size_t size);

#endif
