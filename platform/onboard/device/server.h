/*
 * The device side of the driver protocol: everything simpler-device owns
 * (GM, the installed AICPU runtimes, the turns on the chip) and what each
 * connected host process holds of it; each host process's device code
 * runs in a context of its own (context.h). The socket listener and the
 * process lifecycle are main.c's; this file answers messages.
 */
#ifndef SIMPLER_ONBOARD_DEVICE_SERVER_H
#define SIMPLER_ONBOARD_DEVICE_SERVER_H

#include <stddef.h>
#include <stdint.h>

typedef struct devsrv devsrv;

typedef struct devsrv_config {
    int32_t device_id;
    uint64_t gm_capacity;
    const char *dir;            /* the private directory; the store is under it */
    uint64_t build;             /* this binary's fingerprint, told to clients */
    const char *context_exe;    /* what runs a context (simpler-device); NULL: no contexts */
} devsrv_config;

int devsrv_create(const devsrv_config *cfg, devsrv **out);
/* Only once no connection is being served. */
void devsrv_destroy(devsrv *s);

/* Count a connection as a client from the moment it is accepted (before
 * its thread runs), so the device never exits idle under it. */
void devsrv_admit(devsrv *s);

/* Serve one admitted host process on fd until it disconnects, then free
 * everything it held, close fd and stop counting it. Connections are
 * served concurrently; launches take turns on the chip. */
void devsrv_serve(devsrv *s, int fd);

uint32_t devsrv_clients(devsrv *s);

/* The GM segment's descriptor (the device's own, not to be inherited). */
int devsrv_gm_fd(devsrv *s);

/* Non-zero once the process should exit: a SHUTDOWN was accepted. (A
 * lost chip ends only its context.) */
int devsrv_exit_requested(devsrv *s);

/* How many contexts were started, for the log. */
uint64_t devsrv_contexts_started(devsrv *s);

#endif
