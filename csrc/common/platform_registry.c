/*
 * The registry: every platform the host can reach, found by name. Each
 * platform registers its table (PLATFORM_REGISTER, platform_ops.h) and the
 * linker gathers them here; the order is the link order.
 */

#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/platform_ops.h"

extern const platform_ops *const __start_simpler_platforms[] __attribute__((visibility("hidden")));
extern const platform_ops *const __stop_simpler_platforms[] __attribute__((visibility("hidden")));

#define g_platforms __start_simpler_platforms
#define NUM_PLATFORMS ((size_t)(__stop_simpler_platforms - __start_simpler_platforms))

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
    /* Platforms, then families; each kind in the link order. */
    char known[256] = "";
    size_t used = 0;
    for (int families = 0; families < 2; families++)
        for (size_t i = 0; i < NUM_PLATFORMS && used < sizeof known; i++) {
            const char *p = g_platforms[i]->name;
            size_t n = strlen(p);
            if ((n && p[n - 1] == ':') != families)
                continue;
            int w = snprintf(known + used, sizeof known - used, "%s%s%s", used ? ", " : "", p,
                             families ? "<platform>" : "");
            if (w > 0)
                used += (size_t)w;
        }
    simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "unknown platform '%s' (known: %s)", name, known);
    return NULL;
}
