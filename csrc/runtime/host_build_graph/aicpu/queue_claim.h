/*
 * Claiming from a host_build_graph ready queue, whole image's or streamed
 * (graph_scheduler.c, stream_scheduler.c): the same queue discipline over
 * two layouts of task.
 */
#ifndef SIMPLER_HBG_QUEUE_CLAIM_H
#define SIMPLER_HBG_QUEUE_CLAIM_H

#include <stdatomic.h>
#include <stdint.h>

#include "aicpu/dispatch_loop.h"

/* Claim a block of the task found at head position h of a queue: its
 * index, or -1 to look again (another thread moved the head). A
 * single-block task is taken off the queue at once. One with several
 * blocks stays at the head until its last block is claimed, so every
 * scheduler thread's idle cores can take its blocks: whoever claims the
 * last (or finds them all claimed) moves the head on. head only grows, so
 * a stale h makes that CAS fail and the claim land past block_num. */
static inline int64_t hbg_claim_block(simpler_launch *launch, uint32_t thread_idx, _Atomic uint64_t *head,
                                      uint64_t h, uint32_t block_num, _Atomic uint32_t *next_block)
{
    if (block_num == 1)
        return atomic_compare_exchange_weak(head, &h, h + 1) ? 0 : -1;
    uint32_t b = atomic_fetch_add(next_block, 1);
    if (b + 1 >= block_num)
        atomic_compare_exchange_strong(head, &h, h + 1);
    if (b >= block_num)
        return -1;
    if (b + 1 < block_num)
        sched_wake_others(launch, thread_idx); /* more blocks for other idle cores */
    return b;
}

#endif
