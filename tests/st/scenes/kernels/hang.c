/* Never returns: for the watchdog tests. */
#include <simpler/kernel.h>

SIMPLER_KERNEL(kernel)
{
    for (volatile int forever = 1; forever;)
        ;
}
