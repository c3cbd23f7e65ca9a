/* scalar[0] rounds of compute (bench/peers/work.h), the same kernel the
 * peer runtimes run. */
#include <simpler/kernel.h>

#include "../peers/work.h"

SIMPLER_KERNEL(kernel) { bench_work(args->scalars[0], args->block_idx + 1); }
