/* A kernel that does nothing: the measured cost is the runtime's. */
#include <simpler/kernel.h>

SIMPLER_KERNEL(kernel) { (void)args; }
