/*
 * What a runtime's AICPU half gives the AICPU entry: the launch kind it
 * serves and what each AICPU thread of such a launch runs.
 *
 * A runtime declares its table with AICPU_RUNTIME; the linker gathers the
 * tables into one section and the entry (aicpu_main.c) looks the launch's
 * kind up there. So the entry names no runtime: the runtimes build on the
 * entry's layer (dispatch loop, launch status) and nothing points back.
 */
#ifndef SIMPLER_AICPU_AICPU_RUNTIME_H
#define SIMPLER_AICPU_AICPU_RUNTIME_H

#include <stdint.h>

#include "common/device_abi.h"

typedef struct aicpu_runtime {
    uint32_t kind;                  /* simpler_runtime_kind */
    const char *name;
    /* Run thread thread_idx of the launch (0 .. aicpu_thread_num +
     * extra_threads - 1); a failure is also recorded in the launch. */
    int (*thread_main)(simpler_launch *launch, uint32_t thread_idx);
} aicpu_runtime;

#define AICPU_RUNTIME(var)                                                                            \
    __attribute__((used, section("simpler_aicpu_runtimes"), aligned(__alignof__(aicpu_runtime))))  \
    const aicpu_runtime var

/* The runtime that serves kind, or NULL. */
const aicpu_runtime *aicpu_runtime_find(uint32_t kind);

#endif
