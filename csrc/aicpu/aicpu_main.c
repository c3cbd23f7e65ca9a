/*
 * The AICPU runtime's entry point (libsimpler_aicpu.so). The platform calls
 * simpler_aicpu_main on each of the launch's AICPU threads; the runtime
 * that serves the launch's kind decides what those threads do.
 */
#include "aicpu/aicpu_runtime.h"
#include "aicpu/launch_status.h"
#include "simpler/simpler.h"

/* The bounds of the section the runtimes' tables are gathered in (the
 * linker defines them for a section whose name is an identifier). */
extern const aicpu_runtime __start_simpler_aicpu_runtimes[] __attribute__((visibility("hidden")));
extern const aicpu_runtime __stop_simpler_aicpu_runtimes[] __attribute__((visibility("hidden")));

const aicpu_runtime *aicpu_runtime_find(uint32_t kind)
{
    for (const aicpu_runtime *r = __start_simpler_aicpu_runtimes; r < __stop_simpler_aicpu_runtimes; r++)
        if (r->kind == kind)
            return r;
    return NULL;
}

__attribute__((visibility("default"))) int simpler_aicpu_main(simpler_launch *launch,
                                                               uint32_t thread_idx)
{
    const aicpu_runtime *r = aicpu_runtime_find(launch->p.runtime);
    if (!r) {
        aicpu_launch_fail(launch, SIMPLER_E_UNSUPPORTED, "AICPU runtime: unknown runtime kind %u",
                          launch->p.runtime);
        return SIMPLER_E_UNSUPPORTED;
    }
    return r->thread_main(launch, thread_idx);
}
