/*
 * Device contexts: each client connection of simpler-device gets a
 * process of its own that runs that client's chip (AICPU and AICore
 * threads, its executor, kernels and orchestrations) and maps only that
 * client's GM. A kernel then cannot read or write another client's
 * memory, and a crash or hang ends only its own context.
 *
 * The server (server.c) keeps what is shared: the socket, the binary
 * store, the one GM allocator with its per-client accounting. It forwards
 * the requests that load device code (EXECUTOR_*, CALLABLE_*, and
 * COUNTERS for the context's own figures) to the context over a
 * socketpair, in the driver protocol's framing, and relays the reply.
 * Launches do not pass through it: a second socketpair, the launch link,
 * joins the context to its host directly (the server hands the host its
 * end, LAUNCH_LINK), as relaying a launch woke one more process on the
 * way out and one on the way back (measured: a one-task run 240 us
 * relayed). The turns on the chip are a robust process-shared mutex in a
 * page of the server's every context maps (devctx_turns): a context that
 * dies holding it hands it on.
 *
 * Why a fresh exec (`simpler-device --context`) and not a fork: the
 * server is multi-threaded, and a forked copy would inherit its locks in
 * whatever state, every other client's descriptors and the whole GM
 * mapping. The exec'd context starts with three descriptors and nothing
 * mapped but what it is told to map.
 *
 * GM: the context reserves the segment's whole address range PROT_NONE at
 * the base the server mapped it at (device addresses are the same in
 * both, as kernels and the host see them) and maps from the memfd, with
 * MAP_FIXED, only the blocks of its client. The server announces each
 * allocation in the context's map ring (devctx_ring, shared memory of
 * this context's alone) before it answers the GM_ALLOC, without waking
 * the context; the context takes in the ring before it serves any
 * request, from either link, so a block is mapped before any launch that
 * can name it. A block freed while its entry is still in the ring is
 * taken back there (the entry's state, compare-and-swapped by both
 * sides) and never reaches the context. One the context has taken is
 * unmapped by an UNMAP message: UNMAPs are queued and sent in a batch
 * (before the next request the server forwards, when the queue is long,
 * or when the client goes quiet), and a freed range goes back to the
 * allocator only once the context has acknowledged its UNMAP (or has
 * ended), so no one else is handed it while this context still sees it.
 * A ring that is full falls back to a MAP message, sent at once. Blocks
 * of the onboard allocator are whole pages, so two clients never share
 * one.
 */
#ifndef SIMPLER_ONBOARD_DEVICE_CONTEXT_H
#define SIMPLER_ONBOARD_DEVICE_CONTEXT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "onboard/protocol.h"
#include "onboard/wire.h"

/* Messages between the server and a context only (the server refuses
 * them from clients: they are past ONB_TYPE_END). Payload onb_gm. */
enum devctx_type {
    DEVCTX_READY = 0x100,       /* context -> server once it can serve: onb_reply, then its error text */
    DEVCTX_MAP = 0x101,         /* map [addr, addr + size) of the memfd (the ring was full); no reply */
    DEVCTX_UNMAP = 0x102,       /* make it inaccessible again; the reply (an onb_reply) acknowledges it */
};

/* How long a send to a context may block before the context counts as lost. */
#define DEVCTX_SEND_LIMIT_S 5

/* The descriptors a context is exec'd with. */
#define DEVCTX_FD_LINK 3        /* its end of the socketpair */
#define DEVCTX_FD_WORDS 4       /* a pipe for its last words: the crash line */
#define DEVCTX_FD_GM 5          /* the GM memfd */
#define DEVCTX_FD_HOST 6        /* its end of the launch link */
#define DEVCTX_FD_RING 7        /* its map ring (devctx_ring) */
#define DEVCTX_FD_TURNS 8       /* the device's turns (devctx_turns) */
#define DEVCTX_FD_LAST DEVCTX_FD_TURNS

/* The device's turns on the chip, in one shared page every context maps:
 * as on a device with one set of cores, launches take turns. */
typedef struct devctx_turns {
    pthread_mutex_t chip;       /* robust and process-shared */
    _Atomic uint64_t launches;  /* every context's */
    /* The context in its turn, and the CLOCK_MONOTONIC time its launch
     * must have ended by (its op deadline and a margin). One still in its
     * turn DEVCTX_HUNG_MARGIN_NS after that is hung: a context waiting
     * for the chip kills it, so that a hung context whose host does not
     * end it (a host stopped, or slow to notice) cannot keep the chip. */
    _Atomic int32_t holder_pid;
    _Atomic uint64_t holder_until_ns;
} devctx_turns;

#define DEVCTX_HUNG_MARGIN_NS 2500000000ull

/* A map ring entry's state. */
enum { DEVCTX_ENTRY_CANCELLED = 0, DEVCTX_ENTRY_POSTED = 1, DEVCTX_ENTRY_TAKEN = 2 };

typedef struct devctx_entry {
    _Atomic uint32_t state;
    uint32_t reserved;
    uint64_t addr, size;
} devctx_entry;

/* Allocations announced to a context, one producer (the server's thread
 * of the client) and one consumer (the context's main thread). */
#define DEVCTX_RING_ENTRIES 4096u
typedef struct devctx_ring {
    _Atomic uint64_t head;      /* entries posted; the server's */
    _Atomic uint64_t tail;      /* entries taken in; the context's */
    /* While the context runs (or waits its turn for) a launch of its
     * host's, the CLOCK_MONOTONIC time it may take until, else 0: a
     * request the server forwards meanwhile waits that long, not as for a
     * hung context. */
    _Atomic uint64_t busy_until_ns;
    devctx_entry entries[DEVCTX_RING_ENTRIES];
} devctx_ring;

/* The context process: simpler-device --context ... (main.c hands over). */
int devctx_main(int argc, char **argv);

/* ------------------------------------------------------------------ */
/* the server's side */

typedef struct devctx_range {
    uint64_t addr, size;
    uint16_t type;              /* DEVCTX_MAP or DEVCTX_UNMAP, in the queue */
} devctx_range;

/* Called with each freed range the context no longer sees (its UNMAP was
 * acknowledged, or the context ended): the allocator may have it back. */
typedef void (*devctx_release_fn)(void *arg, uint64_t addr, uint64_t size);

typedef struct devctx_link {
    pid_t pid;                  /* 0: no context */
    int fd;                     /* the socketpair */
    int host_end;               /* the launch link's host end, until it is handed over */
    devctx_ring *ring;          /* the context's map ring (our mapping) */
    pid_t lost_pid;             /* once it has ended: its pid, and how it ended */
    char lost_how[1200];
    int words;                  /* read end of the last-words pipe */
    onb_watch watch;            /* on the process: its death ends any wait */
    uint32_t seq;
    devctx_range *queued;       /* MAPs and UNMAPs not sent yet, in order */
    uint32_t num_queued;
    uint64_t cap_queued;
    devctx_range *unmapping;    /* UNMAPs sent, not yet acknowledged, oldest first */
    uint32_t num_unmapping;
    uint64_t cap_unmapping;
    devctx_release_fn release;
    void *release_arg;
} devctx_link;

typedef struct devctx_config {
    const char *exe;            /* simpler-device */
    int32_t device_id;
    const char *store;
    int gm_fd;
    int turns_fd;
    uint64_t gm_base, gm_capacity;
} devctx_config;

/* Start a context and wait until it serves (or says why it cannot). */
int devctx_start(devctx_link *k, const devctx_config *cfg);

/* Announce a block of its client's (in the ring, or by a MAP when the
 * ring is full). SIMPLER_E_DEVICE_LOST (the context is then ended) when
 * the link is broken. */
int devctx_map(devctx_link *k, uint64_t addr, uint64_t size);
/* Queue an UNMAP of a freed block; the range goes to k->release once the
 * context no longer sees it (at once with no context, or when its ring
 * entry was not taken yet). */
int devctx_unmap(devctx_link *k, uint64_t addr, uint64_t size);
/* Send what is queued. */
int devctx_flush(devctx_link *k);
/* Wait until client_fd is readable, taking in acknowledgements meanwhile
 * (a context that ends meanwhile is ended and reaped at once, and
 * SIMPLER_E_DEVICE_LOST saying how is returned once client_fd is
 * readable). spin_ns: poll before blocking. */
int devctx_wait_client(devctx_link *k, int client_fd, uint64_t spin_ns);

/*
 * Forward a client's request (h, payload) and relay what the context
 * sends until its reply, which is handed back (*reply: malloc'd payload,
 * starting with the onb_reply). Meanwhile the context's PROGRESS goes to
 * client_fd (each second a heartbeat of our own while the context is busy
 * with a launch of the link's), and, when watch_client, the client's
 * CANCEL to the context; anything else from the client (or its closing)
 * cancels too and sets *client_broke. silence_ns bounds the time the
 * context may say nothing (beyond its busy time). A context that dies,
 * closes or stays silent is lost: SIMPLER_E_DEVICE_LOST saying how (its
 * crash line when it left one), and it is ended.
 */
int devctx_forward(devctx_link *k, int client_fd, int watch_client, const onb_header *h, const void *payload,
                   uint64_t silence_ns, void **reply, uint32_t *reply_size, int *client_broke);

/* The host says its launch link broke (hung 0) or went silent (hung 1):
 * end the context (at once when hung) and return SIMPLER_E_DEVICE_LOST
 * saying how it ended (how it had, if the server saw it end already). */
int devctx_end_for_host(devctx_link *k, int hung);

/* Set up and tear down the device's turns (server.c): a shared page, its
 * memfd in *fd. */
int devctx_turns_create(int *fd, devctx_turns **out);
void devctx_turns_destroy(int fd, devctx_turns *t);

/* End the context: close its link, give it a moment to exit, then kill
 * what is left of its process group (a kernel's children too) and reap
 * it; every range still being unmapped is released. Safe on a link with
 * no context. */
void devctx_end(devctx_link *k);

#endif
