/*
 * A minimal test harness for the C unit tests: CHECK counts passes and
 * failures and names the failing expression; check_report() prints the
 * final "N passed, M failed" line and gives the exit status.
 */
#ifndef SIMPLER_TESTS_CHECK_H
#define SIMPLER_TESTS_CHECK_H

#include <stdio.h>

static unsigned long check_passed, check_failed;

/* Returns the condition so a test can stop before using a bad result. */
#define CHECK(expr) check_one(!!(expr), __FILE__, __LINE__, #expr)

/* CHECK with a printf-style note on failure (the values involved). */
#define CHECKF(expr, ...)                                \
    (check_one(!!(expr), __FILE__, __LINE__, #expr) ? 1 \
                                                    : (fprintf(stderr, "    "), fprintf(stderr, __VA_ARGS__), fputc('\n', stderr), 0))

static inline int check_one(int ok, const char *file, int line, const char *expr)
{
    if (ok) {
        check_passed++;
        return 1;
    }
    check_failed++;
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
    return 0;
}

static inline int check_report(void)
{
    printf("%lu passed, %lu failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

/* A small deterministic generator (splitmix64) so runs are reproducible. */
static inline unsigned long long check_rand(unsigned long long *state)
{
    unsigned long long z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#endif
