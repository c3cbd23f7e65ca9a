/*
 * The GM allocator: hands out aligned ranges of one address range
 * [base, base + capacity) and keeps the byte accounting. It never touches
 * the memory itself, so a platform can put it over any mapping (host
 * memory for sim, a shared segment for a device process).
 *
 * Free ranges are kept sorted by address and merged on free; allocations
 * are found by address in an open-addressing table. Thread-safe.
 */
#ifndef SIMPLER_COMMON_GM_HEAP_H
#define SIMPLER_COMMON_GM_HEAP_H

#include <pthread.h>
#include <stdint.h>

#include "common/addr_map.h"

#define SIMPLER_GM_ALIGN 64u

typedef struct gm_range {
    uint64_t addr;
    uint64_t size;
} gm_range;

typedef struct gm_heap {
    pthread_mutex_t lock;
    uint64_t base;
    uint64_t capacity;
    gm_range *free_list;    /* sorted by addr, never adjacent */
    uint32_t free_count;
    uint64_t free_cap;
    addr_map live;          /* start of each live allocation -> its size */
    uint64_t committed;
    uint64_t peak;
} gm_heap;

int gm_heap_init(gm_heap *h, uint64_t base, uint64_t capacity);
void gm_heap_destroy(gm_heap *h);

/* SIMPLER_E_OUT_OF_MEMORY with a message giving the sizes when it does not fit. */
int gm_heap_alloc(gm_heap *h, uint64_t size, uint64_t *addr_out);
/* SIMPLER_E_NOT_FOUND for an address that is not a live allocation's start. */
int gm_heap_free(gm_heap *h, uint64_t addr, uint64_t *size_out);

/* True when every byte of [addr, addr + size) is allocated (it may span
 * adjacent allocations). */
int gm_heap_is_allocated(gm_heap *h, uint64_t addr, uint64_t size);

/* Size of the live allocation starting exactly at addr, or 0. */
uint64_t gm_heap_size_of(gm_heap *h, uint64_t addr);

uint64_t gm_heap_committed(gm_heap *h);
uint64_t gm_heap_peak(gm_heap *h);
uint64_t gm_heap_live_count(gm_heap *h);

#endif
