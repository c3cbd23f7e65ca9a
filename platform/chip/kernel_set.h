/*
 * The kernels of one callable blob, loaded into the process that runs the
 * chip (the caller's for sim, simpler-device's for onboard).
 */
#ifndef SIMPLER_PLATFORM_KERNEL_SET_H
#define SIMPLER_PLATFORM_KERNEL_SET_H

#include <stdatomic.h>
#include <stdint.h>

#include "callable/callable.h"

typedef struct kernel_entry {
    void *handle;                   /* NULL when an earlier kernel's binary is this one's */
    uint64_t addr;                  /* the kernel's entry point */
    char name[CALLABLE_MAX_NAME + 1];
} kernel_entry;

typedef struct kernel_set {
    struct kernel_set *_Atomic next; /* the process's loaded sets (kernel_set_name) */
    void *orch_handle;              /* the orchestration, when it was asked for */
    uint64_t orch_addr;             /* its entry point */
    uint32_t count;
    uint32_t objects;               /* shared objects it holds open (kernels sharing a binary hold one) */
    kernel_entry kernels[];         /* in the blob's kernel order */
} kernel_set;

/* Parse and validate the blob and load each of its kernels, and with
 * with_orchestration its orchestration too. */
int kernel_set_load(const void *blob, uint64_t size, int with_orchestration, kernel_set **out);
/* Unload every kernel and free the set. Never call this while a core may
 * still run one of them (a lost chip): abandon the set instead. */
void kernel_set_unload(kernel_set *s);
/* Free the set but leave its kernels loaded. */
void kernel_set_abandon(kernel_set *s);

/* The name of the loaded kernel whose entry point is addr, or NULL. For a
 * crash report: it takes no lock (a dying process may be inside a load). */
const char *kernel_set_name(uint64_t addr);

#endif
