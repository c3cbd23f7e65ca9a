/*
 * A stand-in for libFuzzer's driver where clang's is not installed: runs
 * each file or directory given, then mutates them (bit flips, byte sets,
 * interesting integers, cuts, splices, duplication) for -max_total_time
 * seconds, calling the same LLVMFuzzerTestOneInput. Not coverage-guided,
 * but it exercises the same target under the same sanitizers. An input
 * that kills the process is written to -artifact_prefix<hash> first.
 *
 *   driver [-max_total_time=S] [-seed=N] [-artifact_prefix=P] FILE_OR_DIR...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* libFuzzer's hook for a target's own mutations; used when the target has it. */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
    __attribute__((weak));
void __sanitizer_set_death_callback(void (*callback)(void));

#define DRIVER_MAX_INPUT (1u << 16)

static uint8_t *g_corpus[4096];
static size_t g_sizes[4096], g_count;
static uint8_t g_current[DRIVER_MAX_INPUT];
static size_t g_current_size;
static char g_prefix[1024] = "crash-";
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static void save_current(void)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < g_current_size; i++)
        h = (h ^ g_current[i]) * 0x100000001b3ull;
    char path[1100];
    snprintf(path, sizeof path, "%s%016llx", g_prefix, (unsigned long long)h);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(g_current, 1, g_current_size, f);
        fclose(f);
        fprintf(stderr, "driver: the failing input is in %s\n", path);
    }
}

static void add_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f || g_count == sizeof g_corpus / sizeof *g_corpus) {
        if (f)
            fclose(f);
        return;
    }
    uint8_t *buf = malloc(DRIVER_MAX_INPUT);
    size_t n = fread(buf, 1, DRIVER_MAX_INPUT, f);
    fclose(f);
    g_corpus[g_count] = buf;
    g_sizes[g_count++] = n;
}

static void add_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        add_file(path);
        return;
    }
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char child[4096];
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        add_file(child);
    }
    if (d)
        closedir(d);
}

static void run_current(void)
{
    /* A heap copy of exactly the input's size, so overreads are caught. */
    uint8_t *copy = malloc(g_current_size ? g_current_size : 1);
    memcpy(copy, g_current, g_current_size);
    LLVMFuzzerTestOneInput(copy, g_current_size);
    free(copy);
}

/* Mutate buf[0..n) in place (room for max bytes); returns the new size. */
static size_t mutate(uint8_t *buf, size_t n, size_t max)
{
    int rounds = 1 + (int)(rnd() % 4);
    static const uint64_t interesting[] = {0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fffffff, 0xffffffff,
                                           0x100000000ull, UINT64_MAX, 64, 4096, 1u << 20};
    while (rounds--) {
        switch (rnd() % 7) {
        case 0:
            if (n)
                buf[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
            break;
        case 1:
            if (n)
                buf[rnd() % n] = (uint8_t)rnd();
            break;
        case 2:
            if (n >= 8) {
                uint64_t v = interesting[rnd() % (sizeof interesting / sizeof *interesting)];
                size_t w = (size_t)1 << (rnd() % 4), at = rnd() % (n - w + 1);
                memcpy(buf + at, &v, w);
            }
            break;
        case 3:
            if (n)
                n = rnd() % n;
            break;
        case 4: {   /* splice in part of another input */
            size_t o = rnd() % g_count, len = g_sizes[o] ? rnd() % g_sizes[o] : 0;
            size_t at = n ? rnd() % n : 0;
            if (at + len > max)
                len = max - at;
            memcpy(buf + at, g_corpus[o], len);
            if (at + len > n)
                n = at + len;
            break;
        }
        case 5:     /* repeat a chunk: more messages of the same kind */
            if (n && n * 2 <= max) {
                size_t from = rnd() % n;
                memcpy(buf + n, buf + from, n - from);
                n += n - from;
            }
            break;
        default:
            if (n < max)
                buf[n++] = (uint8_t)rnd();
        }
    }
    return n;
}

/* libFuzzer's default mutations, for a custom mutator to fall back on. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size)
{
    return mutate(data, size, max_size);
}

static void mutate_current(void)
{
    if (LLVMFuzzerCustomMutator && rnd() % 2)
        g_current_size = LLVMFuzzerCustomMutator(g_current, g_current_size, DRIVER_MAX_INPUT, (unsigned)rnd());
    else
        g_current_size = mutate(g_current, g_current_size, DRIVER_MAX_INPUT);
}


int main(int argc, char **argv)
{
    double max_time = 10;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "-max_total_time=", 16) == 0)
            max_time = atof(argv[i] + 16);
        else if (strncmp(argv[i], "-seed=", 6) == 0)
            g_rng = strtoull(argv[i] + 6, NULL, 10) | 1;
        else if (strncmp(argv[i], "-artifact_prefix=", 17) == 0)
            snprintf(g_prefix, sizeof g_prefix, "%s", argv[i] + 17);
        else if (argv[i][0] != '-')
            add_path(argv[i]);
    }
    __sanitizer_set_death_callback(save_current);
    if (g_count == 0) {
        g_corpus[0] = calloc(1, 1);
        g_sizes[0] = 0;
        g_count = 1;
    }
    for (size_t i = 0; i < g_count; i++) {
        memcpy(g_current, g_corpus[i], g_sizes[i]);
        g_current_size = g_sizes[i];
        run_current();
    }
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t runs = 0;
    do {
        size_t pick = rnd() % g_count;
        memcpy(g_current, g_corpus[pick], g_sizes[pick]);
        g_current_size = g_sizes[pick];
        mutate_current();
        run_current();
        runs++;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < max_time);
    fprintf(stderr, "Done %llu runs in %.0f second(s)\n", (unsigned long long)runs, max_time);
    return 0;
}
