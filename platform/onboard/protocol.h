/*
 * The driver protocol between a host process (the onboard platform) and
 * simpler-device, the process that owns one device.
 *
 * A connection is a SOCK_STREAM Unix socket. Every message is a header and
 * a payload of header.size bytes; the host sends a request and waits for
 * its reply (same seq, type | ONB_REPLY); during a launch the device may
 * send ONB_PROGRESS messages before the reply. A reply's payload starts
 * with an onb_reply; on success the request's result struct follows, on
 * failure the device's error message (not NUL-terminated).
 *
 * GM is a shared-memory segment: the HELLO reply carries its descriptor
 * (SCM_RIGHTS), and the host copies into and out of its own mapping of it.
 * GM addresses on the wire are the device's; the host never dereferences
 * them, it only translates them to offsets into the segment.
 *
 * Launches go over a link of their own, straight to the client's device
 * context (device/context.h): LAUNCH_LINK hands the host its end
 * (SCM_RIGHTS). On it the host sends LAUNCH and CANCEL, and the context
 * answers as the device would on the connection (PROGRESS, then the
 * reply), and PEER_MAP and PEER_UNMAP; everything else stays on the
 * connection. A link that breaks or
 * goes silent ends the context: the host says so with CONTEXT_END on the
 * connection, whose reply (always DEVICE_LOST) says how the context ended.
 *
 * All integers are in the host's byte order (both ends share a machine).
 * A version change means any change to these structs or their meaning.
 */
#ifndef SIMPLER_ONBOARD_PROTOCOL_H
#define SIMPLER_ONBOARD_PROTOCOL_H

#include <stdint.h>

#include "common/device_abi.h"
#include "simpler/simpler.h"

#define ONB_MAGIC 0x4c504d53u           /* "SMPL" */
/* 6: a launch carries failure_addr, a heartbeat its counts, a lost launch's reply its report;
 * 7: PEER_MAP and PEER_UNMAP on the launch link, counters' peer_windows */
#define ONB_VERSION 7u
#define ONB_MAX_PAYLOAD (64u << 20)     /* the largest binary a host may install */
#define ONB_MAX_KERNELS 4096u

enum onb_type {
    ONB_HELLO = 1,              /* must come first */
    ONB_GM_ALLOC = 2,
    ONB_GM_FREE = 3,
    ONB_BINARY_QUERY = 4,       /* is the AICPU runtime with this fingerprint installed? */
    ONB_BINARY_INSTALL = 5,     /* install it: onb_binary + its bytes */
    ONB_EXECUTOR_REGISTER = 6,  /* load the AICore executor uploaded to GM */
    ONB_EXECUTOR_RELEASE = 7,
    ONB_CALLABLE_LOAD = 8,      /* load the kernels (and the orchestration) of a callable blob in GM */
    ONB_CALLABLE_RELEASE = 9,
    ONB_LAUNCH = 10,
    ONB_COUNTERS = 11,
    ONB_SHUTDOWN = 12,
    ONB_CANCEL = 13,            /* while this host's launch runs: stop it (the launch's reply answers) */
    ONB_LAUNCH_LINK = 14,       /* the launch link's host end, once per connection */
    ONB_CONTEXT_END = 15,       /* the launch link broke or went silent: end the context, say how it ended */
    ONB_PEER_MAP = 16,          /* launch link only: map another device's GM for this context's kernels */
    ONB_PEER_UNMAP = 17,        /* launch link only: unmap such a window */
    ONB_TYPE_END,
    ONB_PROGRESS = 0x4000,      /* device -> host while a launch runs */
    ONB_REPLY = 0x8000
};

typedef struct onb_header {
    uint32_t magic;
    uint16_t version;
    uint16_t type;
    uint32_t seq;
    uint32_t size;              /* payload bytes after the header */
} onb_header;

typedef struct onb_reply {
    int32_t status;             /* SIMPLER_OK or a simpler_error */
    /* A failed launch that lost its context: the message's length, and a
     * simpler_failure_report follows it. 0: the whole body is the message. */
    uint32_t reserved;
} onb_reply;

typedef struct onb_hello {
    uint64_t build;             /* fingerprint of the host's simpler-device binary */
    uint64_t gm_quota;          /* bytes this client may hold; 0: the device's capacity */
    uint32_t pid;
    uint32_t reserved;
} onb_hello;

typedef struct onb_hello_result {
    uint64_t gm_base;           /* the segment's device address */
    uint64_t gm_capacity;
    uint64_t build;             /* the device's own build fingerprint */
    uint64_t instance;          /* differs between device process starts */
    uint32_t device_pid;
    uint32_t clients;           /* connected, this one included */
} onb_hello_result;

typedef struct onb_gm {
    uint64_t addr;
    uint64_t size;
} onb_gm;                       /* ALLOC: size in, addr out; FREE: addr in, size out */

typedef struct onb_binary {
    uint64_t fingerprint;       /* FNV-1a 64 of the bytes */
    uint64_t size;              /* INSTALL: the bytes follow; QUERY: 0 */
} onb_binary;

typedef struct onb_binary_result {
    uint32_t present;           /* QUERY: installed; INSTALL: this request wrote it */
    uint32_t reserved;
} onb_binary_result;

typedef struct onb_handle {
    uint64_t handle;
} onb_handle;                   /* EXECUTOR_REGISTER/CALLABLE_LOAD out, *_RELEASE in */

#define ONB_LOAD_ORCHESTRATION 1u   /* open the orchestration too */

typedef struct onb_callable_load {
    uint64_t addr;              /* the validated blob in GM */
    uint64_t size;
    uint32_t flags;             /* ONB_LOAD_* */
    uint32_t reserved;
} onb_callable_load;

typedef struct onb_callable_result {
    uint64_t handle;
    uint64_t orchestration;     /* its entry point, when ONB_LOAD_ORCHESTRATION asked for it */
    uint32_t num_kernels;
    uint32_t reserved;
    uint64_t kernel_addrs[];    /* [num_kernels], in the blob's kernel order */
} onb_callable_result;

typedef struct onb_launch {
    simpler_launch_params params;
    uint64_t aicpu_fingerprint; /* the installed AICPU runtime to run */
    uint64_t executor;          /* the registered AICore executor for the cores */
} onb_launch;

/* SIMPLER_OK if a launch's failure report lies inside its image's block
 * (of image_size bytes), as that block's tail does (run_block_report);
 * else SIMPLER_E_INVALID_ARGUMENT with the message set (wire.c). */
int onb_report_check(const simpler_launch_params *p, uint64_t image_size);

typedef struct onb_launch_link_result {
    uint64_t context_pid;       /* watched by the host while it waits on the link */
} onb_launch_link_result;

/* PEER_MAP: [offset, offset + size) of the GM segment of another device
 * (its memfd travels with the message, SCM_RIGHTS, as the host got it at
 * that device's HELLO), mapped by the context at an address of its own
 * choosing outside its GM range; the reply is an onb_peer_window, the
 * address of offset there. PEER_UNMAP takes that onb_peer_window back. */
typedef struct onb_peer_map {
    uint64_t offset;
    uint64_t size;
} onb_peer_map;

typedef struct onb_peer_window {
    uint64_t addr;
} onb_peer_window;

typedef struct onb_context_end {
    uint32_t hung;              /* 1: it said nothing for too long (kill it); 0: the link closed */
    uint32_t reserved;
} onb_context_end;

/* A heartbeat: from the device context while its launch progresses (with
 * the launch's counts, has_counts 1), or while the launch waits for its
 * turn on the chip (has_counts 0). */
typedef struct onb_progress {
    uint64_t blocks_completed;
    uint64_t tasks_completed;
    uint64_t tasks_submitted;
    uint32_t has_counts;
    uint32_t reserved;
} onb_progress;

typedef struct onb_counters {
    /* this client */
    uint64_t committed_bytes;
    uint64_t peak_committed_bytes;
    uint64_t live_allocations;
    uint64_t loaded_objects;
    /* the device */
    uint64_t gm_capacity;
    uint64_t device_committed_bytes;
    uint64_t clients;
    uint64_t core_threads;
    uint64_t aicpu_threads;
    uint64_t core_resets;
    uint64_t binary_uploads;    /* INSTALL requests */
    uint64_t binary_installs;   /* files renamed into the store */
    uint64_t executor_registrations;
    uint64_t executor_loads;    /* distinct executors loaded */
    uint64_t launches;
    uint64_t device_pid;
    uint64_t uptime_ms;
    uint64_t context_pid;       /* this client's device context, 0: none (yet) */
    uint64_t peer_windows;      /* windows its context has mapped (PEER_MAP) */
} onb_counters;

typedef struct onb_shutdown {
    uint32_t force;             /* stop even with other clients connected */
    uint32_t reserved;
} onb_shutdown;

#endif
