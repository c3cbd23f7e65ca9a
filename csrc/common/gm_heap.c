#include "common/gm_heap.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "common/error.h"

int gm_heap_init(gm_heap *h, uint64_t base, uint64_t capacity)
{
    memset(h, 0, sizeof *h);
    if (capacity < SIMPLER_GM_ALIGN || base % SIMPLER_GM_ALIGN || base + capacity < base)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "GM heap: bad range (base 0x%" PRIx64
                            ", capacity %" PRIu64 ")", base, capacity);
    h->base = base;
    h->capacity = capacity - capacity % SIMPLER_GM_ALIGN;
    h->free_cap = 64;
    h->free_list = malloc(h->free_cap * sizeof *h->free_list);
    if (!h->free_list) {
        gm_heap_destroy(h);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "GM heap: out of host memory");
    }
    h->free_list[0] = (gm_range){base, h->capacity};
    h->free_count = 1;
    pthread_mutex_init(&h->lock, NULL);
    return SIMPLER_OK;
}

void gm_heap_destroy(gm_heap *h)
{
    if (h->free_list)
        pthread_mutex_destroy(&h->lock);
    free(h->free_list);
    addr_map_free(&h->live);
    memset(h, 0, sizeof *h);
}

static void free_list_remove(gm_heap *h, uint32_t i)
{
    memmove(&h->free_list[i], &h->free_list[i + 1], (h->free_count - i - 1) * sizeof *h->free_list);
    h->free_count--;
}

int gm_heap_alloc(gm_heap *h, uint64_t size, uint64_t *addr_out)
{
    if (!addr_out)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "GM alloc: addr_out is NULL");
    if (size == 0 || size > h->capacity)
        return size ? simpler_fail(SIMPLER_E_OUT_OF_MEMORY,
                                   "GM exhausted: cannot allocate %" PRIu64 " bytes, more than the GM capacity of %" PRIu64
                                   " bytes (raise gm_capacity)",
                                   size, h->capacity)
                    : simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "GM alloc: size is 0");
    uint64_t need = (size + SIMPLER_GM_ALIGN - 1) & ~(uint64_t)(SIMPLER_GM_ALIGN - 1);

    pthread_mutex_lock(&h->lock);
    uint32_t i = 0;
    while (i < h->free_count && h->free_list[i].size < need)
        i++;
    if (i == h->free_count) {
        uint64_t committed = h->committed;
        pthread_mutex_unlock(&h->lock);
        return simpler_fail(SIMPLER_E_OUT_OF_MEMORY,
                            "GM exhausted: cannot allocate %" PRIu64 " bytes; %" PRIu64 " of %" PRIu64
                            " bytes in use (raise gm_capacity or free buffers)",
                            size, committed, h->capacity);
    }
    uint64_t addr = h->free_list[i].addr;
    if (addr_map_put(&h->live, addr, need, 0, 0) != 0) {
        pthread_mutex_unlock(&h->lock);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "GM alloc: out of host memory");
    }
    h->free_list[i].addr += need;
    h->free_list[i].size -= need;
    if (h->free_list[i].size == 0)
        free_list_remove(h, i);

    h->committed += need;
    if (h->committed > h->peak)
        h->peak = h->committed;
    pthread_mutex_unlock(&h->lock);
    *addr_out = addr;
    return SIMPLER_OK;
}

/* Return [addr, addr + size) to the sorted free list, merging neighbours. */
static int free_list_insert(gm_heap *h, uint64_t addr, uint64_t size)
{
    uint32_t lo = 0, hi = h->free_count;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (h->free_list[mid].addr < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    int merge_prev = lo > 0 && h->free_list[lo - 1].addr + h->free_list[lo - 1].size == addr;
    int merge_next = lo < h->free_count && addr + size == h->free_list[lo].addr;
    if (merge_prev && merge_next) {
        h->free_list[lo - 1].size += size + h->free_list[lo].size;
        free_list_remove(h, lo);
    } else if (merge_prev) {
        h->free_list[lo - 1].size += size;
    } else if (merge_next) {
        h->free_list[lo].addr = addr;
        h->free_list[lo].size += size;
    } else {
        if (array_reserve(&h->free_list, &h->free_cap, h->free_count + 1ull, sizeof *h->free_list))
            return -1;
        memmove(&h->free_list[lo + 1], &h->free_list[lo], (h->free_count - lo) * sizeof *h->free_list);
        h->free_list[lo] = (gm_range){addr, size};
        h->free_count++;
    }
    return 0;
}

int gm_heap_free(gm_heap *h, uint64_t addr, uint64_t *size_out)
{
    pthread_mutex_lock(&h->lock);
    addr_entry *e = addr_map_get(&h->live, addr);
    if (!e) {
        pthread_mutex_unlock(&h->lock);
        return simpler_fail(SIMPLER_E_NOT_FOUND,
                            "GM free: 0x%" PRIx64 " is not the start of a live allocation "
                            "(freed twice, or never allocated?)", addr);
    }
    uint64_t size = e->size;
    if (free_list_insert(h, addr, size) != 0) {
        pthread_mutex_unlock(&h->lock);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "GM free: out of host memory");
    }
    addr_map_remove(&h->live, addr);
    h->committed -= size;
    pthread_mutex_unlock(&h->lock);
    if (size_out)
        *size_out = size;
    return SIMPLER_OK;
}

int gm_heap_is_allocated(gm_heap *h, uint64_t addr, uint64_t size)
{
    if (addr < h->base || addr > h->base + h->capacity || size > h->base + h->capacity - addr)
        return 0;
    if (size == 0)
        return 1;
    pthread_mutex_lock(&h->lock);
    /* The last free range starting before the end is the only one that can
     * reach into [addr, addr + size): free ranges are sorted and disjoint. */
    uint32_t lo = 0, hi = h->free_count;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (h->free_list[mid].addr < addr + size)
            lo = mid + 1;
        else
            hi = mid;
    }
    int ok = lo == 0 || h->free_list[lo - 1].addr + h->free_list[lo - 1].size <= addr;
    pthread_mutex_unlock(&h->lock);
    return ok;
}

uint64_t gm_heap_size_of(gm_heap *h, uint64_t addr)
{
    pthread_mutex_lock(&h->lock);
    addr_entry *e = addr_map_get(&h->live, addr);
    uint64_t size = e ? e->size : 0;
    pthread_mutex_unlock(&h->lock);
    return size;
}

#define LOCKED_READ(h, field)                 \
    do {                                      \
        pthread_mutex_lock(&(h)->lock);       \
        uint64_t v = (h)->field;              \
        pthread_mutex_unlock(&(h)->lock);     \
        return v;                             \
    } while (0)

uint64_t gm_heap_committed(gm_heap *h) { LOCKED_READ(h, committed); }
uint64_t gm_heap_peak(gm_heap *h) { LOCKED_READ(h, peak); }
uint64_t gm_heap_live_count(gm_heap *h) { LOCKED_READ(h, live.live); }
