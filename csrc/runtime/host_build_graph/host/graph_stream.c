#include "runtime/host_build_graph/host/graph_stream.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "runtime/host_build_graph/stream_image.h"
#include "simpler/simpler.h"

/* The segments are carved from the run block, kept from run to run, past
 * the header: a stream of the size of the last one faults in no fresh GM
 * (a segment of its own, gm_alloc'd, cost a run of 1e5 tasks 2-3x the
 * orchestrator's CPU in page faults). The block is reserved for what the
 * last stream used (the caller keeps it: other runs of the block forget
 * its layout); a stream that outgrows it gets the rest from gm_alloc, and
 * the next one a block that fits. */

struct hbg_stream_host {
    runtime_env env;
    uint64_t header_addr;
    uint8_t *block_host;        /* the run block where the host writes it */
    uint64_t block_used, block_size;
    uint64_t need;              /* bytes of header and segments so far */
    hbg_stream_header *hdr;     /* where the host writes it */
    _Atomic uint64_t *dir;
    uint32_t max_segments;
    uint32_t num_segments;
    uint32_t published;
    uint64_t edges_published;
    uint64_t *seg_addr;         /* [max_segments]: each segment's GM, as the device sees it */
    uint8_t *seg_own;           /* [max_segments]: 1 if gm_alloc'd, not carved from the block */
    uint8_t **seg_host;         /* and where the host writes it */
};

#define SEG_MASK (HBG_STREAM_SEG_TASKS - 1)

int hbg_stream_open(const runtime_env *env, uint32_t max_tasks, uint64_t expect, hbg_stream_host **out)
{
    *out = NULL;
    uint32_t segs = (uint32_t)(((uint64_t)max_tasks + SEG_MASK) >> HBG_STREAM_SEG_SHIFT);
    uint64_t dir_off = (sizeof(hbg_stream_header) + 63) & ~63ull, size = dir_off + segs * 8ull;
    hbg_stream_host *s = calloc(1, sizeof *s);
    if (s) {
        s->seg_addr = calloc(segs ? segs : 1, sizeof *s->seg_addr);
        s->seg_host = calloc(segs ? segs : 1, sizeof *s->seg_host);
        s->seg_own = calloc(segs ? segs : 1, 1);
    }
    if (!s || !s->seg_addr || !s->seg_host || !s->seg_own) {
        hbg_stream_free(s);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "host_build_graph: out of host memory for a stream");
    }
    s->env = *env;
    s->max_segments = segs;
    size = (size + 63) & ~63ull;
    uint64_t want = expect > size ? expect : size;
    run_block *rb;
    void *view = NULL;
    int rc = run_block_reserve(env, want, &rb);
    uint64_t usable = rc ? 0 : rb->size - RUN_BLOCK_REPORT_BYTES;
    if (!rc)
        rc = env->ops->gm_host_view(env->pdev, rb->addr, usable, &view);
    if (rc) {
        s->env.ops = NULL;      /* nothing to give back */
        hbg_stream_free(s);
        return rc;
    }
    memset(rb->layout, 0, sizeof rb->layout); /* what another runtime kept there is gone */
    memset(view, 0, size);
    s->block_host = view;
    s->block_used = s->need = size;
    s->block_size = usable;
    s->header_addr = rb->addr;
    s->hdr = view;
    s->hdr->magic = HBG_STREAM_MAGIC;
    s->hdr->seg_shift = HBG_STREAM_SEG_SHIFT;
    s->hdr->max_segments = segs;
    s->hdr->dir_off = dir_off;
    s->dir = (_Atomic uint64_t *)((uint8_t *)view + dir_off);
    *out = s;
    return SIMPLER_OK;
}

static hbg_stream_task *task_of(const hbg_stream_host *s, uint32_t i)
{
    return (hbg_stream_task *)s->seg_host[i >> HBG_STREAM_SEG_SHIFT] + (i & SEG_MASK);
}

static void push_ready(hbg_stream_host *s, uint32_t task, uint32_t type)
{
    uint64_t pos = atomic_fetch_add(&s->hdr->queue_tail[type], 1);
    _Atomic uint32_t *q = (_Atomic uint32_t *)(s->seg_host[pos >> HBG_STREAM_SEG_SHIFT] +
                                               hbg_stream_queue_off(HBG_STREAM_SEG_SHIFT, type));
    atomic_store(&q[pos & SEG_MASK], task + 1);
}

int hbg_stream_publish(hbg_stream_host *s, const build_task *tasks, uint32_t num_tasks, const edge *edges,
                       uint64_t num_edges, const uint8_t *args, uint64_t args_end)
{
    uint32_t from = s->published, k = s->num_segments;
    if (from == num_tasks)
        return SIMPLER_OK;
    if (k >= s->max_segments) /* submit checks max_tasks first: not reached */
        return simpler_fail(SIMPLER_E_CAPACITY, "host_build_graph: the streamed graph outgrew its %u segments",
                            s->max_segments);
    uint64_t e0 = s->edges_published, ne = num_edges - e0;
    uint64_t args_start = tasks[from].args_off, nargs = args_end - args_start;
    uint64_t edges_off = hbg_stream_edges_off(HBG_STREAM_SEG_SHIFT);
    uint64_t args_off = (edges_off + ne * sizeof(hbg_stream_edge) + 63) & ~63ull, size = args_off + nargs;
    uint64_t addr;
    uint8_t *seg;
    size = (size + 63) & ~63ull;
    s->need += size;
    if (s->block_used + size <= s->block_size) {
        addr = s->header_addr + s->block_used;
        seg = s->block_host + s->block_used;
        s->block_used += size;
    } else {
        void *view;
        int rc = s->env.ops->gm_alloc(s->env.pdev, size, &addr);
        if (rc)
            return simpler_fail_prefix(rc, "host_build_graph: a %" PRIu64 "-byte segment of the streamed graph",
                                       size);
        if ((rc = s->env.ops->gm_host_view(s->env.pdev, addr, size, &view))) {
            s->env.ops->gm_free(s->env.pdev, addr);
            return rc;
        }
        seg = view;
        s->seg_own[k] = 1;
    }
    s->seg_addr[k] = addr;
    s->seg_host[k] = seg;
    s->num_segments++;
    /* Nothing of the segment is reachable until its address is in the
     * directory: plain writes. */
    memset(seg, 0, edges_off);
    memcpy(seg + args_off, args + args_start, nargs);
    hbg_stream_task *t = (hbg_stream_task *)seg;
    for (uint32_t i = from; i < num_tasks; i++, t++) {
        const build_task *bt = &tasks[i];
        t->kernel_addr = bt->kernel_addr;
        t->tensors_addr = addr + args_off + (bt->args_off - args_start);
        t->scalars_addr = t->tensors_addr + bt->num_tensors * sizeof(simpler_tensor);
        t->num_tensors = bt->num_tensors;
        t->num_scalars = bt->num_scalars;
        t->func_id = bt->func_id;
        t->core_type = bt->core_type;
        t->block_num = bt->block_num;
        atomic_init(&t->pending, bt->fanin + 1); /* + 1: the guard, off once its edges are added */
        atomic_init(&t->unposted, bt->fanin + 1);
    }
    atomic_store_explicit(&s->dir[k], addr, memory_order_release);
    hbg_stream_edge *node = (hbg_stream_edge *)(seg + edges_off);
    for (uint64_t e = 0; e < ne; e++, node++) {
        const edge *ed = &edges[e0 + e];
        node->consumer = ed->consumer;
        hbg_stream_add_edge(task_of(s, ed->producer), node, addr + edges_off + e * sizeof *node,
                            task_of(s, ed->consumer));
    }
    for (uint32_t i = from; i < num_tasks; i++)
        if (hbg_stream_release(task_of(s, i)))
            push_ready(s, i, tasks[i].core_type);
    s->published = num_tasks;
    s->edges_published = num_edges;
    atomic_store(&s->hdr->published, num_tasks);
    return SIMPLER_OK;
}

uint32_t hbg_stream_published(const hbg_stream_host *s) { return s->published; }

uint64_t hbg_stream_need(const hbg_stream_host *s) { return s->need; }

void hbg_stream_seal(hbg_stream_host *s) { atomic_store(&s->hdr->sealed, 1); }

void hbg_stream_fail(hbg_stream_host *s) { atomic_store(&s->hdr->failed, 1); }

int hbg_stream_failed(const hbg_stream_host *s) { return (int)atomic_load(&s->hdr->failed); }

uint64_t hbg_stream_addr(const hbg_stream_host *s) { return s->header_addr; }

void hbg_stream_free(hbg_stream_host *s)
{
    if (!s)
        return;
    for (uint32_t k = 0; s->env.ops && k < s->num_segments; k++)
        if (s->seg_own[k])
            s->env.ops->gm_free(s->env.pdev, s->seg_addr[k]);
    free(s->seg_addr);
    free(s->seg_host);
    free(s->seg_own);
    free(s);
}
