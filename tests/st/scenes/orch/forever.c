/* An orchestration that never returns (spins, or sleeps when scalar 0 is
 * 1): for the interrupt and timeout tests. */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "funcs.h"

SIMPLER_ORCHESTRATION(orchestrate)
{
    for (volatile int forever = 1; forever;)
        if (args->scalars[0])
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    return 0;
}
