#include "runtime/deps/tracker.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

typedef struct dep_entry {
    dep_region region;
    uint32_t writer;
    uint32_t num_readers, cap_readers;
    uint32_t *readers;
} dep_entry;

typedef struct dep_bucket {
    uint64_t base;
    uint32_t count, cap;
    dep_entry *entries;
} dep_bucket;

struct dep_tracker {
    dep_bucket *buckets;    /* open addressing by base; count == UINT32_MAX marks empty */
    uint64_t cap, used;
    uint64_t live;
};

#define EMPTY UINT32_MAX

static uint64_t mix(uint64_t a)
{
    a ^= a >> 31;
    a *= 0x9e3779b97f4a7c15ull;
    a ^= a >> 29;
    return a;
}

static dep_bucket *alloc_table(uint64_t cap)
{
    dep_bucket *b = malloc(cap * sizeof *b);
    if (b)
        for (uint64_t i = 0; i < cap; i++)
            b[i] = (dep_bucket){0, EMPTY, 0, NULL};
    return b;
}

int dep_tracker_create(dep_tracker **out)
{
    dep_tracker *t = calloc(1, sizeof *t);
    if (t) {
        t->cap = 64;
        t->buckets = alloc_table(t->cap);
    }
    if (!t || !t->buckets) {
        free(t);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "dependency tracker: out of host memory");
    }
    *out = t;
    return SIMPLER_OK;
}

void dep_tracker_destroy(dep_tracker *t)
{
    if (!t)
        return;
    for (uint64_t i = 0; i < t->cap; i++) {
        dep_bucket *b = &t->buckets[i];
        if (b->count == EMPTY)
            continue;
        for (uint32_t e = 0; e < b->count; e++)
            free(b->entries[e].readers);
        free(b->entries);
    }
    free(t->buckets);
    free(t);
}

static dep_bucket *find_slot(dep_bucket *tab, uint64_t cap, uint64_t base)
{
    for (uint64_t i = mix(base) & (cap - 1);; i = (i + 1) & (cap - 1))
        if (tab[i].count == EMPTY || tab[i].base == base)
            return &tab[i];
}

static dep_bucket *bucket_for(dep_tracker *t, uint64_t base)
{
    dep_bucket *b = find_slot(t->buckets, t->cap, base);
    if (b->count != EMPTY)
        return b;
    if ((t->used + 1) * 2 > t->cap) {
        uint64_t cap = t->cap * 2;
        dep_bucket *tab = alloc_table(cap);
        if (!tab)
            return NULL;
        for (uint64_t i = 0; i < t->cap; i++)
            if (t->buckets[i].count != EMPTY)
                *find_slot(tab, cap, t->buckets[i].base) = t->buckets[i];
        free(t->buckets);
        t->buckets = tab;
        t->cap = cap;
        b = find_slot(tab, cap, base);
    }
    *b = (dep_bucket){base, 0, 0, NULL};
    t->used++;
    return b;
}

static int add_reader(dep_entry *e, uint32_t task)
{
    if (e->num_readers && e->readers[e->num_readers - 1] == task)
        return 0;
    if (e->num_readers == e->cap_readers) {
        uint32_t cap = e->cap_readers ? e->cap_readers * 2 : 4;
        uint32_t *r = realloc(e->readers, cap * sizeof *r);
        if (!r)
            return -1;
        e->readers = r;
        e->cap_readers = cap;
    }
    e->readers[e->num_readers++] = task;
    return 0;
}

static dep_entry *add_entry(dep_tracker *t, dep_bucket *b, const dep_region *r, uint32_t writer)
{
    if (b->count == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 4;
        dep_entry *e = realloc(b->entries, cap * sizeof *e);
        if (!e)
            return NULL;
        b->entries = e;
        b->cap = cap;
    }
    dep_entry *e = &b->entries[b->count++];
    memset(e, 0, sizeof *e);
    e->region = *r;
    e->writer = writer;
    t->live++;
    return e;
}

int dep_tracker_access(dep_tracker *t, uint32_t task, const dep_region *r, int reads, int writes,
                       dep_emit_fn emit, void *ctx)
{
    if (dep_region_empty(r) || (!reads && !writes))
        return SIMPLER_OK;
    dep_bucket *b = bucket_for(t, r->base);
    if (!b)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "dependency tracker: out of host memory");

    dep_entry *same = NULL;
    for (uint32_t i = 0; i < b->count; i++) {
        dep_entry *e = &b->entries[i];
        if (!dep_region_overlaps(&e->region, r))
            continue;
        if (e->writer != DEP_NO_TASK && e->writer != task && emit(ctx, e->writer))
            return SIMPLER_E_ORCHESTRATION;
        if (writes)
            for (uint32_t k = 0; k < e->num_readers; k++)
                if (e->readers[k] != task && emit(ctx, e->readers[k]))
                    return SIMPLER_E_ORCHESTRATION;
        if (!same && dep_region_equal(&e->region, r))
            same = e;
    }

    if (!writes) {
        /* A read: remember the reader for later writers. */
        if (!same && !(same = add_entry(t, b, r, DEP_NO_TASK)))
            return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "dependency tracker: out of host memory");
        if (add_reader(same, task))
            return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "dependency tracker: out of host memory");
        return SIMPLER_OK;
    }

    /* A write: regions it covers are superseded (their writers and readers
     * are now this task's predecessors). */
    for (uint32_t i = 0; i < b->count;) {
        dep_entry *e = &b->entries[i];
        if (dep_region_covers(r, &e->region)) {
            free(e->readers);
            *e = b->entries[--b->count];
            t->live--;
        } else {
            i++;
        }
    }
    if (!add_entry(t, b, r, task))
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "dependency tracker: out of host memory");
    return SIMPLER_OK;
}

uint64_t dep_tracker_live_regions(const dep_tracker *t) { return t->live; }
