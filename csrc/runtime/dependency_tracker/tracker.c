/*
 * The dependency tracker.
 *
 * Live regions are entries in one pool. To find the entries a new access
 * overlaps without scanning them all, each base address has a hierarchical
 * grid: an entry spanning s bytes lives at level L, the smallest with
 * s <= 2^L (at least 2^6), in the one or two 2^L-byte cells it touches. A
 * query at each level in use looks at the cells its own bytes touch, or
 * walks that level's entries when they are fewer than those cells. Any
 * entry sharing a byte with the query shares a cell with it, so nothing is
 * missed, and the work per access stays flat however many regions are
 * live when accesses are local (tiles, rows, slices). A cell's entries are
 * a list threaded through the entries themselves (one link per cell an
 * entry touches), so adding a region allocates nothing once the pool and
 * the table have grown: a runtime that resets one tracker from run to run
 * (dep_tracker_reset) keeps its memory warm, and a million disjoint rows
 * cost no more per access than a thousand.
 *
 * A write retires what it overwrites: an entry it covers goes, an entry it
 * overlaps in part is trimmed to the pieces outside the write (same
 * writer and readers), so readers of a buffer overwritten piece by piece
 * are retired with their last byte and no history piles up. Trimming
 * copies the entry's readers into at most DEP_REGION_MAX_PIECES pieces,
 * work of the order of the edges the write reports for them anyway. An
 * entry whose rest has no exact form (region.h) is kept whole: a needless
 * edge later, never a missed one.
 */
#include "runtime/dependency_tracker/tracker.h"

#include <stdlib.h>
#include <string.h>

#include "common/addr_map.h"
#include "common/array.h"
#include "common/error.h"
#include "common/hash.h"

#define MIN_LEVEL 6
#define NUM_LEVELS 64
#define NONE UINT32_MAX

typedef struct dep_entry {
    dep_region region;
    uint32_t writer;
    uint32_t num_readers;
    uint64_t cap_readers;
    uint32_t *readers;
    uint32_t bucket;
    uint32_t level;
    uint32_t prev, next;        /* in the bucket's list for its level */
    uint32_t cell_next[2];      /* in the lists of its first and last cell (links, below) */
    uint32_t seen;              /* query stamp, so one query visits it once */
    uint32_t live;
} dep_entry;

typedef struct dep_bucket {
    uint64_t base;
    uint64_t levels;            /* bit L: entries at level L exist */
    uint32_t head[NUM_LEVELS];
    uint32_t count[NUM_LEVELS];
} dep_bucket;

/* A grid cell: (bucket, level, index) -> the entries that touch it, as a
 * list of links: entry id << 1 | 0 through its cell_next[0] (its first
 * cell), | 1 through cell_next[1] (its last, when that is another). A
 * cell that empties is deleted, so the table follows the live regions. */
#define CELL_TOMB UINT64_MAX
typedef struct dep_cell {
    uint64_t key;               /* bucket << 8 | level; 0 = empty slot, CELL_TOMB = deleted */
    uint64_t index;
    uint32_t head;              /* first link, NONE: none (only while being deleted) */
} dep_cell;

/* Entry ids must leave a bit for the link's slot. */
#define MAX_ENTRIES (UINT32_MAX >> 1)

static uint32_t *link_next(dep_entry *entries, uint32_t link) { return &entries[link >> 1].cell_next[link & 1]; }

struct dep_tracker {
    dep_entry *entries;
    uint32_t num_entries, free_head;
    uint32_t num_init;          /* slots whose readers arrays are set (kept over a reset) */
    uint64_t cap_entries;
    uint64_t reader_bytes;      /* held by all readers arrays */
    dep_bucket *buckets;
    uint32_t num_buckets;
    uint64_t cap_buckets;
    uint32_t *free_buckets;     /* buckets of forgotten bases, for reuse */
    uint32_t num_free_buckets;
    uint64_t cap_free_buckets;
    addr_map bucket_of;         /* base -> bucket index (tag) */
    dep_cell *cells;            /* open addressing with deletion */
    uint64_t cell_cap, cells_used, cells_live, cells_peak;
    uint32_t stamp;
    uint64_t live;
    uint64_t visits;
    uint32_t *scratch;          /* entries a write covers, then those it overlaps in part */
    uint64_t scratch_cap;
    uint32_t sweep_cursor;
};

#define MIN_CELLS 64 /* the table grows; a small start keeps a small run's create and destroy cheap */

int dep_tracker_create(dep_tracker **out)
{
    dep_tracker *t = calloc(1, sizeof *t);
    if (t) {
        t->free_head = NONE;
        t->cell_cap = MIN_CELLS;
        t->cells = calloc(t->cell_cap, sizeof *t->cells);
    }
    if (!t || !t->cells) {
        free(t);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "dependency tracker: out of host memory");
    }
    *out = t;
    return SIMPLER_OK;
}

/* The entry pool and every readers array in it. */
static void free_entries(dep_tracker *t)
{
    for (uint32_t i = 0; i < t->num_init; i++)
        free(t->entries[i].readers);
    free(t->entries);
    t->entries = NULL;
    t->cap_entries = 0;
    t->num_entries = t->num_init = 0;
    t->reader_bytes = 0;
}

void dep_tracker_destroy(dep_tracker *t)
{
    if (!t)
        return;
    free_entries(t);
    free(t->buckets);
    free(t->free_buckets);
    addr_map_free(&t->bucket_of);
    free(t->cells);
    free(t->scratch);
    free(t);
}

/* A pool or table more than this many times what the last use needed is
 * given back at a reset: memory follows the recent runs, not the largest
 * one ever. */
#define SHRINK_FACTOR 8

void dep_tracker_reset(dep_tracker *t)
{
    /* The pool's slots [0, num_entries) were all in use at some point;
     * that is the last use's high-water mark. */
    if (t->cap_entries > 1024 && (uint64_t)t->num_entries * SHRINK_FACTOR < t->cap_entries)
        free_entries(t);
    t->num_entries = 0;
    t->free_head = NONE;
    t->live = 0;
    t->sweep_cursor = 0;

    uint64_t cap = t->cell_cap;
    if (cap > MIN_CELLS && t->cells_peak * 4 * SHRINK_FACTOR < cap) {
        cap = MIN_CELLS;
        while ((t->cells_peak + 1) * 4 > cap)
            cap *= 2;
    }
    dep_cell *cells = cap < t->cell_cap ? calloc(cap, sizeof *cells) : NULL;
    if (cells) {
        free(t->cells);
        t->cells = cells;
        t->cell_cap = cap;
    } else if (t->cells_used) { /* the same size, or no memory for a smaller one */
        memset(t->cells, 0, t->cell_cap * sizeof *t->cells);
    }
    t->cells_used = t->cells_live = t->cells_peak = 0;

    /* One bucket per base: few, so they are simply dropped. */
    free(t->buckets);
    free(t->free_buckets);
    addr_map_free(&t->bucket_of);
    t->buckets = NULL;
    t->free_buckets = NULL;
    t->num_buckets = t->num_free_buckets = 0;
    t->cap_buckets = t->cap_free_buckets = 0;
}

uint64_t dep_tracker_bytes(const dep_tracker *t)
{
    return sizeof *t + t->cap_entries * sizeof *t->entries + t->reader_bytes + t->cell_cap * sizeof *t->cells +
           t->cap_buckets * sizeof *t->buckets + t->cap_free_buckets * sizeof *t->free_buckets +
           t->bucket_of.cap * sizeof(addr_entry) + t->scratch_cap * sizeof *t->scratch;
}

uint64_t dep_tracker_live_regions(const dep_tracker *t) { return t->live; }
uint64_t dep_tracker_visits(const dep_tracker *t) { return t->visits; }

/* ---- buckets: one per base address ---------------------------------- */

/* The bucket of base, created if new; NONE when out of memory. */
static uint32_t bucket_for(dep_tracker *t, uint64_t base)
{
    addr_entry *e = addr_map_get(&t->bucket_of, base);
    if (e)
        return (uint32_t)e->tag;
    uint32_t b;
    if (t->num_free_buckets) {
        b = t->free_buckets[t->num_free_buckets - 1];
    } else {
        if (array_reserve(&t->buckets, &t->cap_buckets, t->num_buckets + 1, sizeof *t->buckets))
            return NONE;
        b = t->num_buckets;
    }
    if (addr_map_put(&t->bucket_of, base, 0, b, 0))
        return NONE;
    if (t->num_free_buckets)
        t->num_free_buckets--;
    else
        t->num_buckets++;
    dep_bucket *bk = &t->buckets[b];
    memset(bk, 0, sizeof *bk);
    bk->base = base;
    for (int l = 0; l < NUM_LEVELS; l++)
        bk->head[l] = NONE;
    return b;
}

/* ---- cells ------------------------------------------------------------ */

/* The cell (key, index), or NULL; *insert_at (if asked) is where a new one
 * would go: the first deleted slot on the way, else the empty one. */
static dep_cell *cell_lookup(dep_cell *cells, uint64_t cap, uint64_t key, uint64_t index, dep_cell **insert_at)
{
    dep_cell *tomb = NULL;
    for (uint64_t i = simpler_mix64(key * 0x100000001b3ull ^ index) & (cap - 1);; i = (i + 1) & (cap - 1)) {
        dep_cell *c = &cells[i];
        if (c->key == 0) {
            if (insert_at)
                *insert_at = tomb ? tomb : c;
            return NULL;
        }
        if (c->key == CELL_TOMB) {
            if (!tomb)
                tomb = c;
        } else if (c->key == key && c->index == index) {
            return c;
        }
    }
}

static uint64_t cell_key(uint32_t bucket, uint32_t level) { return ((uint64_t)bucket + 1) << 8 | level; }

static dep_cell *cell_find(dep_tracker *t, uint64_t key, uint64_t index)
{
    return cell_lookup(t->cells, t->cell_cap, key, index, NULL);
}

/* Rebuild the table without its deleted slots, growing it if the live
 * cells need it. */
static int cell_rehash(dep_tracker *t)
{
    uint64_t cap = t->cell_cap;
    while ((t->cells_live + 1) * 4 > cap)
        cap *= 2;
    dep_cell *cells = calloc(cap, sizeof *cells);
    if (!cells)
        return -1;
    for (uint64_t i = 0; i < t->cell_cap; i++) {
        dep_cell *c = &t->cells[i];
        if (c->key && c->key != CELL_TOMB) {
            dep_cell *at;
            cell_lookup(cells, cap, c->key, c->index, &at);
            *at = *c;
        }
    }
    free(t->cells);
    t->cells = cells;
    t->cell_cap = cap;
    t->cells_used = t->cells_live;
    return 0;
}

/* Put link (an entry's slot) at the head of cell (key, index)'s list. */
static int cell_add(dep_tracker *t, uint64_t key, uint64_t index, uint32_t link)
{
    if ((t->cells_used + 1) * 2 > t->cell_cap && cell_rehash(t))
        return -1;
    dep_cell *at, *c = cell_lookup(t->cells, t->cell_cap, key, index, &at);
    if (!c) {
        c = at;
        if (c->key == 0)
            t->cells_used++;
        *c = (dep_cell){key, index, NONE};
        if (++t->cells_live > t->cells_peak)
            t->cells_peak = t->cells_live;
    }
    *link_next(t->entries, link) = c->head;
    c->head = link;
    return 0;
}

static void cell_remove(dep_tracker *t, uint64_t key, uint64_t index, uint32_t link)
{
    dep_cell *c = cell_find(t, key, index);
    if (!c)
        return;
    for (uint32_t *at = &c->head; *at != NONE; at = link_next(t->entries, *at))
        if (*at == link) {
            *at = *link_next(t->entries, link);
            break;
        }
    if (c->head == NONE) { /* delete the cell */
        *c = (dep_cell){CELL_TOMB, 0, 0};
        t->cells_live--;
    }
}

/* ---- entries ------------------------------------------------------------ */

static uint32_t level_of(const dep_region *r)
{
    uint64_t span = r->hi - r->lo;
    uint32_t l = MIN_LEVEL;
    while (l < NUM_LEVELS - 1 && (1ull << l) < span)
        l++;
    return l;
}

static uint32_t add_entry(dep_tracker *t, uint32_t bucket, const dep_region *r, uint32_t writer)
{
    uint32_t id;
    if (t->free_head != NONE) {
        id = t->free_head;
        t->free_head = t->entries[id].next;
    } else {
        if (t->num_entries >= MAX_ENTRIES ||
            array_reserve(&t->entries, &t->cap_entries, t->num_entries + 1, sizeof *t->entries))
            return NONE;
        id = t->num_entries++;
        if (id >= t->num_init) { /* a slot below num_init keeps its readers array from before a reset */
            t->entries[id].readers = NULL;
            t->entries[id].cap_readers = 0;
            t->num_init = id + 1;
        }
    }
    /* Every field but the readers array (kept for reuse) set one by one:
     * a memset of the entry was a rep stos on every submit's tensors. */
    dep_entry *e = &t->entries[id];
    e->region = *r;
    e->num_readers = 0;
    e->prev = e->next = 0;
    e->cell_next[0] = e->cell_next[1] = 0;
    e->writer = writer;
    e->bucket = bucket;
    e->level = level_of(r);
    e->live = 1;
    e->seen = t->stamp;

    uint64_t key = cell_key(bucket, e->level);
    uint64_t c0 = r->lo >> e->level, c1 = (r->hi - 1) >> e->level;
    if (cell_add(t, key, c0, id << 1) || (c1 != c0 && cell_add(t, key, c1, id << 1 | 1))) {
        cell_remove(t, key, c0, id << 1);
        e->live = 0;
        e->next = t->free_head;
        t->free_head = id;
        return NONE;
    }
    dep_bucket *b = &t->buckets[bucket];
    e->prev = NONE;
    e->next = b->head[e->level];
    if (e->next != NONE)
        t->entries[e->next].prev = id;
    b->head[e->level] = id;
    b->count[e->level]++;
    b->levels |= 1ull << e->level;
    t->live++;
    return id;
}

static void remove_entry(dep_tracker *t, uint32_t id)
{
    dep_entry *e = &t->entries[id];
    dep_bucket *b = &t->buckets[e->bucket];
    uint64_t key = cell_key(e->bucket, e->level);
    uint64_t c0 = e->region.lo >> e->level, c1 = (e->region.hi - 1) >> e->level;
    cell_remove(t, key, c0, id << 1);
    if (c1 != c0)
        cell_remove(t, key, c1, id << 1 | 1);
    if (e->prev != NONE)
        t->entries[e->prev].next = e->next;
    else
        b->head[e->level] = e->next;
    if (e->next != NONE)
        t->entries[e->next].prev = e->prev;
    if (--b->count[e->level] == 0)
        b->levels &= ~(1ull << e->level);
    e->live = 0;
    e->num_readers = 0;
    e->next = t->free_head;
    t->free_head = id;
    t->live--;
}

/* Room for need readers in e, counted in the tracker's bytes. */
static int reserve_readers(dep_tracker *t, dep_entry *e, uint64_t need)
{
    uint64_t before = e->cap_readers;
    if (array_reserve(&e->readers, &e->cap_readers, need, sizeof *e->readers))
        return -1;
    t->reader_bytes += (e->cap_readers - before) * sizeof *e->readers;
    return 0;
}

static int add_reader(dep_tracker *t, dep_entry *e, uint32_t task)
{
    if (e->num_readers && e->readers[e->num_readers - 1] == task)
        return 0;
    if (reserve_readers(t, e, e->num_readers + 1ull))
        return -1;
    e->readers[e->num_readers++] = task;
    return 0;
}

/* ---- reclaiming ------------------------------------------------------------ */

void dep_tracker_sweep(dep_tracker *t, uint32_t budget, dep_live_fn live, void *ctx)
{
    for (uint32_t n = 0; n < budget && t->num_entries; n++) {
        uint32_t id = t->sweep_cursor++ % t->num_entries;
        dep_entry *e = &t->entries[id];
        if (!e->live)
            continue;
        uint32_t kept = 0;
        for (uint32_t k = 0; k < e->num_readers; k++)
            if (live(ctx, e->readers[k]))
                e->readers[kept++] = e->readers[k];
        e->num_readers = kept;
        if (e->writer != DEP_NO_TASK && !live(ctx, e->writer))
            e->writer = DEP_NO_TASK;
        if (e->writer == DEP_NO_TASK && e->num_readers == 0)
            remove_entry(t, id);
    }
}

void dep_tracker_forget(dep_tracker *t, uint64_t base)
{
    addr_entry *e = addr_map_get(&t->bucket_of, base);
    if (!e)
        return;
    uint32_t b = (uint32_t)e->tag;
    dep_bucket *bk = &t->buckets[b];
    for (uint64_t levels = bk->levels; levels; levels &= levels - 1) {
        uint32_t l = (uint32_t)__builtin_ctzll(levels);
        while (bk->head[l] != NONE)
            remove_entry(t, bk->head[l]);
    }
    /* The bucket itself goes back for the next base. */
    if (!array_reserve(&t->free_buckets, &t->cap_free_buckets, t->num_free_buckets + 1,
                    sizeof *t->free_buckets)) {
        addr_map_remove(&t->bucket_of, base);
        t->free_buckets[t->num_free_buckets++] = b;
    }
}

/* ---- access -------------------------------------------------------------- */

typedef struct query {
    dep_tracker *t;
    const dep_region *r;
    uint32_t task;
    int writes;
    dep_emit_fn emit;
    void *ctx;
    uint32_t same;              /* an entry with exactly this region */
    uint32_t num_covered;       /* scratch[0, num_covered): covered entries */
    uint32_t num_trimmed;       /* scratch[cap - num_trimmed, cap): partly overlapped ones */
    int failed;
} query;

/* Remember an entry the write overwrites, wholly (covered) or in part:
 * covered ones from the front of scratch, partial ones from the back. */
static int note_overwritten(query *q, uint32_t id, int covered)
{
    dep_tracker *t = q->t;
    uint32_t used = q->num_covered + q->num_trimmed;
    if (used == t->scratch_cap) {
        uint64_t old_cap = t->scratch_cap;
        if (array_reserve(&t->scratch, &t->scratch_cap, used + 1, sizeof *t->scratch))
            return -1;
        /* the partial ones stay at the back */
        memmove(t->scratch + t->scratch_cap - q->num_trimmed, t->scratch + old_cap - q->num_trimmed,
                q->num_trimmed * sizeof *t->scratch);
    }
    if (covered)
        t->scratch[q->num_covered++] = id;
    else
        t->scratch[t->scratch_cap - ++q->num_trimmed] = id;
    return 0;
}

static void visit(query *q, uint32_t id)
{
    dep_tracker *t = q->t;
    dep_entry *e = &t->entries[id];
    if (e->seen == t->stamp || q->failed)
        return;
    e->seen = t->stamp;
    t->visits++;
    if (!dep_region_overlaps(&e->region, q->r))
        return;
    if (e->writer != DEP_NO_TASK && e->writer != q->task && q->emit(q->ctx, e->writer)) {
        q->failed = SIMPLER_E_ORCHESTRATION;
        return;
    }
    if (q->writes) {
        for (uint32_t k = 0; k < e->num_readers; k++)
            if (e->readers[k] != q->task && q->emit(q->ctx, e->readers[k])) {
                q->failed = SIMPLER_E_ORCHESTRATION;
                return;
            }
        if (note_overwritten(q, id, dep_region_covers(q->r, &e->region)))
            q->failed = simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "dependency tracker: out of host memory");
    } else if (q->same == NONE && dep_region_equal(&e->region, q->r)) {
        q->same = id;
    }
}

/* Visit every entry of the bucket that may overlap q->r. */
static void scan(query *q, uint32_t bucket)
{
    dep_tracker *t = q->t;
    if (++t->stamp == 0) { /* wrapped: forget old stamps */
        for (uint32_t i = 0; i < t->num_entries; i++)
            t->entries[i].seen = 0;
        t->stamp = 1;
    }
    dep_bucket *b = &t->buckets[bucket];
    for (uint64_t levels = b->levels; levels && !q->failed; levels &= levels - 1) {
        uint32_t l = (uint32_t)__builtin_ctzll(levels);
        uint64_t c0 = q->r->lo >> l, c1 = (q->r->hi - 1) >> l;
        if (c1 - c0 + 1 > b->count[l]) {
            for (uint32_t id = b->head[l]; id != NONE && !q->failed;) {
                uint32_t next = t->entries[id].next;
                visit(q, id);
                id = next;
            }
            continue;
        }
        uint64_t key = cell_key(bucket, l);
        for (uint64_t c = c0; c <= c1 && !q->failed; c++) {
            dep_cell *cell = cell_find(t, key, c);
            for (uint32_t link = cell ? cell->head : NONE; link != NONE && !q->failed;
                 link = *link_next(t->entries, link))
                visit(q, link >> 1);
        }
    }
}

/* Replace entry id by its pieces outside the written region w, each with
 * the entry's writer and readers; keep it whole if the rest has no exact
 * form. The pieces go in first: removing the entry frees its slot (and
 * readers array) for reuse. */
static int trim_entry(dep_tracker *t, uint32_t id, const dep_region *w)
{
    dep_region pieces[DEP_REGION_MAX_PIECES];
    int n = dep_region_subtract(&t->entries[id].region, w, pieces);
    if (n < 0)
        return 0;
    for (int i = 0; i < n; i++) {
        uint32_t p = add_entry(t, t->entries[id].bucket, &pieces[i], t->entries[id].writer);
        if (p == NONE)
            return -1;
        dep_entry *e = &t->entries[id], *pe = &t->entries[p]; /* add_entry may have moved the pool */
        if (reserve_readers(t, pe, e->num_readers))
            return -1;
        if (e->num_readers)
            memcpy(pe->readers, e->readers, e->num_readers * sizeof *pe->readers);
        pe->num_readers = e->num_readers;
    }
    remove_entry(t, id);
    return 0;
}

int dep_tracker_access(dep_tracker *t, uint32_t task, const dep_region *r, int reads, int writes,
                       dep_emit_fn emit, void *ctx)
{
    if (dep_region_empty(r) || (!reads && !writes))
        return SIMPLER_OK;
    uint32_t bucket = bucket_for(t, r->base);
    if (bucket == NONE)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "dependency tracker: out of host memory");

    query q = {t, r, task, writes, emit, ctx, NONE, 0, 0, 0};
    scan(&q, bucket);
    if (q.failed)
        return q.failed;

    if (!writes) {
        /* A read: remember the reader for later writers. */
        if (q.same == NONE && (q.same = add_entry(t, bucket, r, DEP_NO_TASK)) == NONE)
            return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "dependency tracker: out of host memory");
        if (add_reader(t, &t->entries[q.same], task))
            return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "dependency tracker: out of host memory");
        return SIMPLER_OK;
    }
    /* A write supersedes what it overwrites: the writers and readers there
     * are now this task's predecessors. */
    for (uint32_t i = 0; i < q.num_trimmed; i++)
        if (trim_entry(t, t->scratch[t->scratch_cap - 1 - i], r))
            return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "dependency tracker: out of host memory");
    for (uint32_t i = 0; i < q.num_covered; i++)
        remove_entry(t, t->scratch[i]);
    if (add_entry(t, bucket, r, task) == NONE)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "dependency tracker: out of host memory");
    return SIMPLER_OK;
}
