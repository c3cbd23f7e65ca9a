/*
 * Unit tests for the GM allocator (csrc/common/gm_heap.c). The heap never
 * touches the memory it manages, so it runs over a made-up address range;
 * a shadow model checks every answer it gives.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/error.h"
#include "common/gm_heap.h"
#include "simpler/simpler.h"

#define HEAP_BASE 0x10000000ull
#define HEAP_CAP (1ull << 20)
#define ALIGN SIMPLER_GM_ALIGN

static uint64_t aligned(uint64_t size) { return (size + ALIGN - 1) / ALIGN * ALIGN; }

static void test_init(void)
{
    gm_heap h;
    CHECK(gm_heap_init(&h, HEAP_BASE, HEAP_CAP) == SIMPLER_OK);
    CHECK(gm_heap_committed(&h) == 0 && gm_heap_peak(&h) == 0 && gm_heap_live_count(&h) == 0);
    gm_heap_destroy(&h);
    CHECK(gm_heap_init(&h, HEAP_BASE + 8, HEAP_CAP) == SIMPLER_E_INVALID_ARGUMENT);
    CHECK(strstr(simpler_last_error(), "bad range") != NULL);
    gm_heap_destroy(&h);
    CHECK(gm_heap_init(&h, HEAP_BASE, ALIGN - 1) == SIMPLER_E_INVALID_ARGUMENT);
    gm_heap_destroy(&h);
    CHECK(gm_heap_init(&h, HEAP_BASE, 0) == SIMPLER_E_INVALID_ARGUMENT);
    gm_heap_destroy(&h);
    /* A range that wraps past the top of the address space is malformed:
     * it would hand out address 0 after 0xFF..C0. */
    int rc = gm_heap_init(&h, UINT64_MAX - (ALIGN - 1), 2 * ALIGN);
    CHECKF(rc == SIMPLER_E_INVALID_ARGUMENT, "init over [2^64 - 64, 2^64 + 64) returned %d", rc);
    if (rc == SIMPLER_OK) {
        uint64_t a = 1, b = 1;
        gm_heap_alloc(&h, ALIGN, &a);
        if (gm_heap_alloc(&h, ALIGN, &b) == SIMPLER_OK)
            fprintf(stderr, "    ... and then allocated 0x%llx and 0x%llx\n", (unsigned long long)a,
                    (unsigned long long)b);
    }
    gm_heap_destroy(&h);

    /* A capacity that is not a multiple of the alignment is rounded down. */
    CHECK(gm_heap_init(&h, HEAP_BASE, 10 * ALIGN + 17) == SIMPLER_OK);
    uint64_t a;
    CHECK(gm_heap_alloc(&h, 10 * ALIGN, &a) == SIMPLER_OK && a == HEAP_BASE);
    CHECK(gm_heap_alloc(&h, 1, &a) == SIMPLER_E_OUT_OF_MEMORY);
    gm_heap_destroy(&h);
}

static void test_alignment_and_counters(void)
{
    gm_heap h;
    if (!CHECK(gm_heap_init(&h, HEAP_BASE, HEAP_CAP) == SIMPLER_OK))
        return;
    static const uint64_t sizes[] = {1, 63, 64, 65, 100, 127, 128, 129, 4095, 4096, 4097, 1000};
    const size_t n = sizeof sizes / sizeof *sizes;
    uint64_t addrs[sizeof sizes / sizeof *sizes], sum = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK(gm_heap_alloc(&h, sizes[i], &addrs[i]) == SIMPLER_OK);
        CHECKF(addrs[i] % ALIGN == 0, "size %llu at 0x%llx", (unsigned long long)sizes[i],
               (unsigned long long)addrs[i]);
        CHECK(addrs[i] >= HEAP_BASE && addrs[i] + aligned(sizes[i]) <= HEAP_BASE + HEAP_CAP);
        sum += aligned(sizes[i]);
        CHECK(gm_heap_committed(&h) == sum);
        CHECK(gm_heap_live_count(&h) == i + 1);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            CHECK(addrs[i] + aligned(sizes[i]) <= addrs[j] || addrs[j] + aligned(sizes[j]) <= addrs[i]);
    CHECK(gm_heap_peak(&h) == sum);
    uint64_t freed = 0;
    CHECK(gm_heap_free(&h, addrs[3], &freed) == SIMPLER_OK && freed == aligned(sizes[3]));
    CHECK(gm_heap_committed(&h) == sum - aligned(sizes[3]));
    CHECK(gm_heap_peak(&h) == sum);
    CHECK(gm_heap_live_count(&h) == n - 1);
    CHECK(gm_heap_free(&h, addrs[0], NULL) == SIMPLER_OK);
    /* Peak only moves up. */
    uint64_t big;
    CHECK(gm_heap_alloc(&h, 3 * 4096, &big) == SIMPLER_OK);
    uint64_t now = gm_heap_committed(&h);
    CHECK(gm_heap_peak(&h) == (now > sum ? now : sum));

    uint64_t untouched = 0xAAAA;
    CHECK(gm_heap_alloc(&h, 0, &untouched) == SIMPLER_E_INVALID_ARGUMENT);
    CHECK(gm_heap_alloc(&h, 64, NULL) == SIMPLER_E_INVALID_ARGUMENT);
    gm_heap_destroy(&h);
}

static void test_exhaustion(void)
{
    gm_heap h;
    if (!CHECK(gm_heap_init(&h, HEAP_BASE, HEAP_CAP) == SIMPLER_OK))
        return;
    uint64_t a = 0xAAAA;
    simpler_clear_error();
    CHECK(gm_heap_alloc(&h, HEAP_CAP + 1, &a) == SIMPLER_E_OUT_OF_MEMORY);
    CHECKF(strstr(simpler_last_error(), "1048577") && strstr(simpler_last_error(), "capacity of 1048576"),
           "message: %s", simpler_last_error());
    CHECK(gm_heap_alloc(&h, UINT64_MAX, &a) == SIMPLER_E_OUT_OF_MEMORY);
    CHECK(gm_heap_alloc(&h, UINT64_MAX - ALIGN + 2, &a) == SIMPLER_E_OUT_OF_MEMORY); /* would round to 0 */
    CHECK(a == 0xAAAA);
    CHECK(gm_heap_committed(&h) == 0 && gm_heap_live_count(&h) == 0);

    /* Fill it exactly, then one byte more does not fit. */
    uint64_t half1, half2;
    CHECK(gm_heap_alloc(&h, HEAP_CAP / 2, &half1) == SIMPLER_OK);
    CHECK(gm_heap_alloc(&h, HEAP_CAP / 2 - 10, &half2) == SIMPLER_OK);
    CHECK(gm_heap_committed(&h) == HEAP_CAP);
    simpler_clear_error();
    CHECK(gm_heap_alloc(&h, 1, &a) == SIMPLER_E_OUT_OF_MEMORY);
    const char *msg = simpler_last_error();
    CHECKF(strstr(msg, "GM exhausted") && strstr(msg, "1048576"), "message: %s", msg);
    CHECK(gm_heap_committed(&h) == HEAP_CAP && gm_heap_live_count(&h) == 2);

    /* Fragmentation: free space is there but not in one piece. */
    CHECK(gm_heap_free(&h, half1, NULL) == SIMPLER_OK);
    uint64_t q[8];
    for (int i = 0; i < 8; i++)
        CHECK(gm_heap_alloc(&h, HEAP_CAP / 16, &q[i]) == SIMPLER_OK);
    for (int i = 0; i < 8; i += 2)
        CHECK(gm_heap_free(&h, q[i], NULL) == SIMPLER_OK);
    CHECK(gm_heap_committed(&h) == HEAP_CAP / 2 + HEAP_CAP / 4);
    CHECK(gm_heap_alloc(&h, HEAP_CAP / 8, &a) == SIMPLER_E_OUT_OF_MEMORY);
    CHECK(gm_heap_alloc(&h, HEAP_CAP / 16, &a) == SIMPLER_OK);
    gm_heap_destroy(&h);
}

static void test_bad_free(void)
{
    gm_heap h;
    if (!CHECK(gm_heap_init(&h, HEAP_BASE, HEAP_CAP) == SIMPLER_OK))
        return;
    uint64_t a, b, sz = 77;
    CHECK(gm_heap_free(&h, HEAP_BASE, &sz) == SIMPLER_E_NOT_FOUND && sz == 77);
    CHECK(strstr(simpler_last_error(), "not the start of a live allocation") != NULL);
    CHECK(gm_heap_alloc(&h, 256, &a) == SIMPLER_OK);
    CHECK(gm_heap_alloc(&h, 256, &b) == SIMPLER_OK);
    CHECK(gm_heap_free(&h, a + 64, NULL) == SIMPLER_E_NOT_FOUND); /* inside, not the start */
    CHECK(gm_heap_free(&h, 0, NULL) == SIMPLER_E_NOT_FOUND);
    CHECK(gm_heap_free(&h, UINT64_MAX, NULL) == SIMPLER_E_NOT_FOUND);
    CHECK(gm_heap_free(&h, HEAP_BASE + HEAP_CAP, NULL) == SIMPLER_E_NOT_FOUND);
    CHECK(gm_heap_committed(&h) == 512 && gm_heap_live_count(&h) == 2);
    CHECK(gm_heap_free(&h, a, NULL) == SIMPLER_OK);
    CHECK(gm_heap_free(&h, a, NULL) == SIMPLER_E_NOT_FOUND); /* double free */
    CHECK(gm_heap_committed(&h) == 256 && gm_heap_live_count(&h) == 1);
    CHECK(gm_heap_free(&h, b, NULL) == SIMPLER_OK);
    CHECK(gm_heap_free(&h, b, NULL) == SIMPLER_E_NOT_FOUND);
    CHECK(gm_heap_committed(&h) == 0 && gm_heap_live_count(&h) == 0);
    /* Many double frees after heavy use (a table full of tombstones). */
    for (int round = 0; round < 2000; round++) {
        CHECK(gm_heap_alloc(&h, 64 * (1 + round % 7), &a) == SIMPLER_OK);
        CHECK(gm_heap_free(&h, a, NULL) == SIMPLER_OK);
        if (!CHECK(gm_heap_free(&h, a, NULL) == SIMPLER_E_NOT_FOUND))
            break;
    }
    CHECK(gm_heap_committed(&h) == 0);
    gm_heap_destroy(&h);
}

static void shuffle(uint64_t *v, size_t n, unsigned long long *rng)
{
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(check_rand(rng) % (i + 1));
        uint64_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

static void test_coalescing(void)
{
    gm_heap h;
    unsigned long long rng = 0xc0a1;
    if (!CHECK(gm_heap_init(&h, HEAP_BASE, HEAP_CAP) == SIMPLER_OK))
        return;
    const size_t n = HEAP_CAP / ALIGN; /* 16384 pieces */
    uint64_t *addrs = malloc(n * sizeof *addrs);
    for (int round = 0; round < 3; round++) {
        size_t got = 0;
        for (; got < n; got++)
            if (!CHECK(gm_heap_alloc(&h, round == 2 ? 1 : ALIGN, &addrs[got]) == SIMPLER_OK))
                break;
        CHECK(got == n);
        CHECK(gm_heap_committed(&h) == HEAP_CAP && gm_heap_live_count(&h) == n);
        uint64_t extra;
        CHECK(gm_heap_alloc(&h, 1, &extra) == SIMPLER_E_OUT_OF_MEMORY);
        shuffle(addrs, got, &rng);
        for (size_t i = 0; i < got; i++)
            CHECK(gm_heap_free(&h, addrs[i], NULL) == SIMPLER_OK);
        CHECK(gm_heap_committed(&h) == 0 && gm_heap_live_count(&h) == 0);
        /* Everything merged back into one range. */
        uint64_t all;
        CHECK(gm_heap_alloc(&h, HEAP_CAP, &all) == SIMPLER_OK && all == HEAP_BASE);
        CHECK(gm_heap_free(&h, all, NULL) == SIMPLER_OK);
    }
    /* Mixed sizes, freed in random order. */
    size_t got = 0;
    uint64_t a;
    while (got < n && gm_heap_alloc(&h, 1 + check_rand(&rng) % 1000, &a) == SIMPLER_OK)
        addrs[got++] = a;
    CHECK(got > 100);
    shuffle(addrs, got, &rng);
    for (size_t i = 0; i < got; i++)
        CHECK(gm_heap_free(&h, addrs[i], NULL) == SIMPLER_OK);
    CHECK(gm_heap_alloc(&h, HEAP_CAP, &a) == SIMPLER_OK && a == HEAP_BASE);
    free(addrs);
    gm_heap_destroy(&h);
}

/* Shadow model: live allocations by address; checked after every step. */
typedef struct shadow {
    uint64_t addr, size; /* size as aligned; 0 = free slot */
} shadow;

static int cmp_shadow(const void *a, const void *b)
{
    const shadow *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void test_churn(void)
{
    gm_heap h;
    unsigned long long rng = 0xc402;
    if (!CHECK(gm_heap_init(&h, HEAP_BASE, HEAP_CAP) == SIMPLER_OK))
        return;
    enum { MAX_LIVE = 4096 };
    static shadow live[MAX_LIVE], sorted[MAX_LIVE];
    size_t nlive = 0;
    uint64_t committed = 0, peak = 0;
    unsigned bad_range = 0, bad_overlap = 0, bad_count = 0, bad_oom = 0, bad_free = 0, ooms = 0;
    const int ops = 100000;
    for (int op = 0; op < ops; op++) {
        uint64_t r = check_rand(&rng);
        /* Drift between filling up and draining so both ends are hit. */
        int phase = (op / 5000) % 2;
        int do_alloc = nlive == 0 || (nlive < MAX_LIVE && (int)(r % 100) < (phase ? 70 : 35));
        if (do_alloc) {
            uint64_t size = (r >> 8) % 4 == 0 ? 1 + (r >> 16) % 65536 : 1 + (r >> 16) % 2048;
            uint64_t a;
            int rc = gm_heap_alloc(&h, size, &a);
            if (rc == SIMPLER_E_OUT_OF_MEMORY) {
                ooms++;
                /* Only legitimate if no free gap of that size exists. */
                memcpy(sorted, live, nlive * sizeof *live);
                qsort(sorted, nlive, sizeof *sorted, cmp_shadow);
                uint64_t prev_end = HEAP_BASE, need = aligned(size);
                for (size_t i = 0; i <= nlive; i++) {
                    uint64_t start = i < nlive ? sorted[i].addr : HEAP_BASE + HEAP_CAP;
                    if (start - prev_end >= need)
                        bad_oom++;
                    if (i < nlive)
                        prev_end = sorted[i].addr + sorted[i].size;
                }
                continue;
            }
            if (!CHECKF(rc == SIMPLER_OK, "op %d: alloc(%llu) rc %d", op, (unsigned long long)size, rc))
                break;
            uint64_t sz = aligned(size);
            if (a % ALIGN || a < HEAP_BASE || a + sz > HEAP_BASE + HEAP_CAP)
                bad_range++;
            for (size_t i = 0; i < nlive; i++)
                if (a < live[i].addr + live[i].size && live[i].addr < a + sz)
                    bad_overlap++;
            live[nlive++] = (shadow){a, sz};
            committed += sz;
            if (committed > peak)
                peak = committed;
        } else {
            size_t i = (size_t)((r >> 8) % nlive);
            uint64_t sz = 0;
            if (gm_heap_free(&h, live[i].addr, &sz) != SIMPLER_OK || sz != live[i].size)
                bad_free++;
            committed -= live[i].size;
            live[i] = live[--nlive];
            /* Now and then a stale or interior address. */
            if ((r >> 40) % 16 == 0 && nlive) {
                const shadow *s = &live[(r >> 20) % nlive];
                if (gm_heap_free(&h, s->addr + ALIGN / 2, NULL) != SIMPLER_E_NOT_FOUND)
                    bad_free++;
            }
        }
        if (gm_heap_committed(&h) != committed || gm_heap_live_count(&h) != nlive || gm_heap_peak(&h) != peak)
            if (bad_count++ < 3)
                fprintf(stderr, "    op %d: committed %llu/%llu live %llu/%zu peak %llu/%llu\n", op,
                        (unsigned long long)gm_heap_committed(&h), (unsigned long long)committed,
                        (unsigned long long)gm_heap_live_count(&h), nlive, (unsigned long long)gm_heap_peak(&h),
                        (unsigned long long)peak);
    }
    printf("churn: %d ops, %u out-of-memory answers, peak %llu bytes\n", ops, ooms, (unsigned long long)peak);
    CHECKF(bad_range == 0, "%u allocations outside the range or misaligned", bad_range);
    CHECKF(bad_overlap == 0, "%u allocations overlapping a live one", bad_overlap);
    CHECKF(bad_count == 0, "%u steps with committed/live/peak off the model", bad_count);
    CHECKF(bad_oom == 0, "%u out-of-memory answers while a big enough gap was free", bad_oom);
    CHECKF(bad_free == 0, "%u frees answered wrongly", bad_free);
    CHECKF(ooms > 0, "churn never reached exhaustion");
    /* Drain: everything merges back. */
    for (size_t i = 0; i < nlive; i++)
        CHECK(gm_heap_free(&h, live[i].addr, NULL) == SIMPLER_OK);
    uint64_t all;
    CHECK(gm_heap_committed(&h) == 0 && gm_heap_alloc(&h, HEAP_CAP, &all) == SIMPLER_OK);
    gm_heap_destroy(&h);
}

/* Threads allocating and freeing at once: the lock must keep every
 * allocation distinct and the counters exact. */
#define THREADS 4
#define THREAD_OPS 20000

typedef struct worker {
    gm_heap *h;
    unsigned long long rng;
    uint64_t addrs[64], sizes[64];
    unsigned errors;
} worker;

static void *churn_thread(void *arg)
{
    worker *w = arg;
    uint32_t n = 0;
    for (int op = 0; op < THREAD_OPS; op++) {
        uint64_t r = check_rand(&w->rng);
        if (n < 64 && (n == 0 || r % 2)) {
            uint64_t size = 1 + (r >> 8) % 1024;
            if (gm_heap_alloc(w->h, size, &w->addrs[n]) == SIMPLER_OK)
                w->sizes[n++] = aligned(size);
        } else {
            uint32_t i = (uint32_t)((r >> 8) % n);
            uint64_t sz = 0;
            if (gm_heap_free(w->h, w->addrs[i], &sz) != SIMPLER_OK || sz != w->sizes[i])
                w->errors++;
            w->addrs[i] = w->addrs[--n];
            w->sizes[i] = w->sizes[n];
        }
    }
    for (uint32_t i = 0; i < n; i++)
        if (gm_heap_free(w->h, w->addrs[i], NULL) != SIMPLER_OK)
            w->errors++;
    return NULL;
}

static void test_threads(void)
{
    gm_heap h;
    if (!CHECK(gm_heap_init(&h, HEAP_BASE, HEAP_CAP) == SIMPLER_OK))
        return;
    static worker w[THREADS];
    pthread_t tid[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.h = &h, .rng = 1000 + (unsigned long long)i};
        CHECK(pthread_create(&tid[i], NULL, churn_thread, &w[i]) == 0);
    }
    unsigned errors = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(tid[i], NULL);
        errors += w[i].errors;
    }
    CHECKF(errors == 0, "%u frees failed or returned the wrong size", errors);
    CHECK(gm_heap_committed(&h) == 0 && gm_heap_live_count(&h) == 0);
    uint64_t all;
    CHECK(gm_heap_alloc(&h, HEAP_CAP, &all) == SIMPLER_OK && all == HEAP_BASE);
    gm_heap_destroy(&h);
}

/* size_of answers for allocation starts only; is_allocated for any range
 * made of allocated bytes, possibly spanning neighbours, and never for a
 * range touching a free byte or leaving the heap. */
static void test_lookups(void)
{
    gm_heap h;
    if (!CHECK(gm_heap_init(&h, HEAP_BASE, HEAP_CAP) == SIMPLER_OK))
        return;
    uint64_t a, b, c;
    CHECK(gm_heap_alloc(&h, 100, &a) == SIMPLER_OK); /* 128 bytes */
    CHECK(gm_heap_alloc(&h, 64, &b) == SIMPLER_OK);
    CHECK(gm_heap_alloc(&h, 64, &c) == SIMPLER_OK);
    CHECK(b == a + 128 && c == b + 64);
    CHECK(gm_heap_size_of(&h, a) == 128 && gm_heap_size_of(&h, b) == 64);
    CHECK(gm_heap_size_of(&h, a + 64) == 0 && gm_heap_size_of(&h, 12345) == 0);
    CHECK(gm_heap_is_allocated(&h, a, 128) && gm_heap_is_allocated(&h, a + 10, 50));
    CHECK(gm_heap_is_allocated(&h, a, 256));              /* spans a, b and c */
    CHECK(!gm_heap_is_allocated(&h, a, 257));             /* one byte past c */
    CHECK(gm_heap_is_allocated(&h, a, 0));
    CHECK(!gm_heap_is_allocated(&h, HEAP_BASE - 1, 1));
    CHECK(!gm_heap_is_allocated(&h, HEAP_BASE, UINT64_MAX));
    CHECK(gm_heap_free(&h, b, NULL) == SIMPLER_OK);
    CHECK(gm_heap_size_of(&h, b) == 0);
    CHECK(!gm_heap_is_allocated(&h, a, 256) && !gm_heap_is_allocated(&h, b + 63, 1));
    CHECK(gm_heap_is_allocated(&h, c, 64) && gm_heap_is_allocated(&h, a + 127, 1));
    gm_heap_destroy(&h);
}

int main(void)
{
    test_lookups();
    test_init();
    test_alignment_and_counters();
    test_exhaustion();
    test_bad_free();
    test_coalescing();
    test_churn();
    test_threads();
    return check_report();
}
