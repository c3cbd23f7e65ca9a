/*
 * A streamed host_build_graph image: the graph as the host is still adding
 * to it, scheduled by the AICPU threads from its first segment on.
 *
 * The header (in the run block) holds a directory of segments; segment k
 * is a GM block of its own holding tasks [k << seg_shift, (k + 1) <<
 * seg_shift), both ready queues' slots of the same positions, the edge
 * nodes of its tasks' incoming edges and their arguments. Every reference
 * is a device address: a streamed image is never copied or moved.
 *
 *   segment: hbg_stream_task[1 << seg_shift] | uint32 queue slots, per core
 *            type [1 << seg_shift each] | hbg_stream_edge[edges] | arguments
 *
 * A producer's successors are a list of edge nodes headed by its fanout
 * word; the host pushes onto it while the schedulers run, so the edges a
 * late consumer adds may meet a producer that has finished already. The
 * protocol that makes this race-free (the host's and a scheduler's halves
 * are the functions below, both used by the real code and by the C test):
 *
 *   - A scheduler finishing a producer swaps HBG_STREAM_CLOSED into its
 *     fanout word and walks the list it took: each consumer on it gets
 *     its pending count decremented, and is queued by whoever takes it to
 *     0.
 *   - The host adds an edge by a CAS of the node onto the fanout word,
 *     which fails for good once the word is CLOSED: the producer is done
 *     and the edge is not counted. Every edge is thus either on the list
 *     its producer's finish walks, or seen CLOSED by the host; never both,
 *     never neither (the CAS and the swap are ordered on the one word).
 *   - A consumer's pending count starts at its edges + 1, before any of
 *     its nodes is on a list: the 1 (a guard) keeps a finish from taking
 *     it to 0 while the host still adds its edges, and a CLOSED producer's
 *     edge is taken off by the host. Once all its edges are added, the
 *     host takes the guard off; if that took it to 0 (every producer was
 *     done), the host queues it itself.
 * So each task is queued exactly once, after its last producer finished.
 * The release CAS publishes the consumer's task entry with its node, and a
 * scheduler's acquire swap sees both.
 *
 * Followers (dispatch_loop.c) ride on the same word. A consumer may
 * follow once every producer is posted and it knows where: its unposted
 * count starts at its edges + 1 like pending, and each edge is taken off
 * it once. A scheduler posting a producer stores where (posted_at) and
 * sets HBG_STREAM_POSTED in its fanout word; the nodes on the list at that
 * moment are its to note (the consumer's waits) and count off, and the
 * host, whose CAS then sees POSTED, notes and counts off the edges it adds
 * later itself. An edge to a CLOSED producer needs no wait: the host
 * counts it off. The host takes the unposted guard off last, after the
 * pending guard, so a consumer is claimed as a follower only with its
 * edges all added.
 */
#ifndef SIMPLER_HBG_STREAM_IMAGE_H
#define SIMPLER_HBG_STREAM_IMAGE_H

#include <stdatomic.h>
#include <stdint.h>

#define HBG_STREAM_MAGIC 0x32474248524c504dull /* "MPLRHBG2" */

/* In a fanout word: the producer finished; no edge may be added. */
#define HBG_STREAM_CLOSED 1ull
/* In a fanout word: the producer was posted to a core (posted_at). */
#define HBG_STREAM_POSTED 2ull
#define HBG_STREAM_FLAGS 15ull     /* edge nodes are 16-byte aligned */

/* A follower's waits, as a whole image's (graph_image.h). */
#define HBG_STREAM_WAITS 4

typedef struct hbg_stream_header {
    uint64_t magic;
    uint32_t seg_shift;         /* tasks per segment: 1 << seg_shift */
    uint32_t max_segments;      /* entries in the directory */
    uint64_t dir_off;           /* _Atomic uint64_t[max_segments] from the header: segment addresses, 0 until made */
    /* Tasks the host has published: their edges added, the ready ones
     * queued. Only grows. */
    _Atomic uint32_t published;
    /* 1: published is the whole graph. */
    _Atomic uint32_t sealed;
    /* 1: the host's orchestration failed; the schedulers stop the launch. */
    _Atomic uint32_t failed;
    uint32_t reserved;
    /* Ready queues as in graph_image.h (slots [head, tail) hold task
     * index + 1, 0 while being published); slot i lives in segment
     * i >> seg_shift, which exists by the time i is taken: each task is
     * pushed once, after it was published. */
    _Atomic uint64_t queue_head[2];
    _Atomic uint64_t queue_tail[2];
} hbg_stream_header;

typedef struct hbg_stream_task {
    uint64_t kernel_addr;
    uint64_t tensors_addr;      /* simpler_tensor[num_tensors] */
    uint64_t scalars_addr;      /* uint64_t[num_scalars] */
    _Atomic uint64_t fanout;    /* first hbg_stream_edge's address, | HBG_STREAM_CLOSED */
    uint32_t num_tensors;
    uint32_t num_scalars;
    uint32_t func_id;
    uint32_t core_type;
    uint32_t block_num;
    _Atomic uint32_t pending;   /* producers not yet finished, + 1 until published */
    _Atomic uint32_t next_block; /* blocks claimed by schedulers (may pass block_num) */
    _Atomic uint32_t blocks_done;
    _Atomic uint32_t unposted;  /* producers not yet posted, + 1 until published */
    _Atomic uint32_t num_waits; /* entries written to waits (may pass HBG_STREAM_WAITS) */
    uint64_t posted_at;         /* where this task was posted, once HBG_STREAM_POSTED is set */
    uint64_t waits[HBG_STREAM_WAITS]; /* where the posted producers went: core << 32 | seq */
} hbg_stream_task;

typedef struct hbg_stream_edge {
    uint64_t next;              /* the next node's address, or 0 (never CLOSED) */
    uint32_t consumer;
    uint32_t reserved;
} hbg_stream_edge;

/* Bytes of segment k's fixed part and where its queue slots are. */
static inline uint64_t hbg_stream_queue_off(uint32_t seg_shift, uint32_t type)
{
    return ((uint64_t)sizeof(hbg_stream_task) << seg_shift) + ((uint64_t)type << seg_shift) * 4;
}

static inline uint64_t hbg_stream_edges_off(uint32_t seg_shift)
{
    return hbg_stream_queue_off(seg_shift, 2);
}

/* The host's half: add the edge whose node (at node_addr as the device
 * sees it, node where the host writes it) names its consumer, onto
 * producer's list. The consumer's pending count already counts it;
 * returns 0 and takes it off again when the producer has finished. */
static inline int hbg_stream_add_edge(hbg_stream_task *producer, hbg_stream_edge *node, uint64_t node_addr,
                                      hbg_stream_task *consumer)
{
    uint64_t head = atomic_load_explicit(&producer->fanout, memory_order_acquire);
    do {
        if (head & HBG_STREAM_CLOSED) {
            /* the guards hold both above 0 */
            atomic_fetch_sub_explicit(&consumer->pending, 1, memory_order_relaxed);
            atomic_fetch_sub_explicit(&consumer->unposted, 1, memory_order_relaxed);
            return 0;
        }
        node->next = head & ~HBG_STREAM_FLAGS;
    } while (!atomic_compare_exchange_weak_explicit(&producer->fanout, &head, node_addr | (head & HBG_STREAM_POSTED),
                                                    memory_order_acq_rel, memory_order_acquire));
    if (head & HBG_STREAM_POSTED) { /* posted before this edge: the host notes where */
        uint32_t w = atomic_fetch_add_explicit(&consumer->num_waits, 1, memory_order_relaxed);
        if (w < HBG_STREAM_WAITS)
            consumer->waits[w] = producer->posted_at;
        atomic_fetch_sub_explicit(&consumer->unposted, 1, memory_order_release);
    }
    return 1;
}

/* The host's half, last: take the guard off a consumer whose edges are all
 * added. Returns 1 when it is ready: the caller queues it. */
static inline int hbg_stream_release(hbg_stream_task *t)
{
    int ready = atomic_fetch_sub_explicit(&t->pending, 1, memory_order_acq_rel) == 1;
    atomic_fetch_sub_explicit(&t->unposted, 1, memory_order_release);
    return ready;
}

/* A scheduler's half: close a finished producer's list and return its
 * first node's address (0: no successors). */
static inline uint64_t hbg_stream_close(hbg_stream_task *t)
{
    return atomic_exchange_explicit(&t->fanout, HBG_STREAM_CLOSED, memory_order_acq_rel) & ~HBG_STREAM_FLAGS;
}

/* A scheduler's half of a post: mark t posted at (core << 32 | seq) and
 * return its list as it was then (flags off), whose consumers the caller
 * notes and counts off (the host does the later ones). */
static inline uint64_t hbg_stream_mark_posted(hbg_stream_task *t, uint64_t at)
{
    t->posted_at = at;
    return atomic_fetch_or_explicit(&t->fanout, HBG_STREAM_POSTED, memory_order_acq_rel) & ~HBG_STREAM_FLAGS;
}

/* A consumer on a closed list: 1 when this was its last producer, so it
 * is ready (the caller queues it). */
static inline int hbg_stream_producer_done(hbg_stream_task *consumer)
{
    return atomic_fetch_sub_explicit(&consumer->pending, 1, memory_order_acq_rel) == 1;
}

#endif
