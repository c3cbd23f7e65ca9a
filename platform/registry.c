/*
 * The registry: every platform the host can reach, found by name. The
 * host names no platform itself; adding one is a line here.
 */

#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/platform_ops.h"

extern const platform_ops simpler_platform_sim;
extern const platform_ops simpler_platform_onboard;
extern const platform_ops simpler_platform_faulty;

static const platform_ops *const g_platforms[] = {
    &simpler_platform_sim,
    &simpler_platform_onboard,
    &simpler_platform_faulty,
};

#define NUM_PLATFORMS (sizeof g_platforms / sizeof *g_platforms)

/* A name ending in ':' is a family: it takes what follows the colon. */
static int matches(const platform_ops *p, const char *name)
{
    size_t n = strlen(p->name);
    if (n && p->name[n - 1] == ':')
        return strncmp(name, p->name, n) == 0 && name[n] != '\0';
    return strcmp(name, p->name) == 0;
}

const platform_ops *platform_find(const char *name)
{
    for (size_t i = 0; i < NUM_PLATFORMS; i++)
        if (matches(g_platforms[i], name))
            return g_platforms[i];
    char known[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < NUM_PLATFORMS && used < sizeof known; i++) {
        const char *p = g_platforms[i]->name;
        size_t n = strlen(p);
        int family = n && p[n - 1] == ':';
        int w = snprintf(known + used, sizeof known - used, "%s%s%s", i ? ", " : "", p, family ? "<platform>" : "");
        if (w > 0)
            used += (size_t)w;
    }
    simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "unknown platform '%s' (known: %s)", name, known);
    return NULL;
}
