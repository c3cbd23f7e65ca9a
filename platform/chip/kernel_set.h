/*
 * The kernels of one callable blob, loaded into the process that runs the
 * chip (the caller's for sim, simpler-device's for onboard).
 */
#ifndef SIMPLER_PLATFORM_KERNEL_SET_H
#define SIMPLER_PLATFORM_KERNEL_SET_H

#include <stdint.h>

typedef struct kernel_entry {
    void *handle;                   /* NULL when an earlier kernel's binary is this one's */
    uint64_t addr;                  /* the kernel's entry point */
} kernel_entry;

typedef struct kernel_set {
    uint32_t count;
    kernel_entry kernels[];         /* in the blob's kernel order */
} kernel_set;

/* Parse and validate the blob and load each of its kernels. */
int kernel_set_load(const void *blob, uint64_t size, kernel_set **out);
/* Unload every kernel and free the set. Never call this while a core may
 * still run one of them (a lost chip): free() the set instead. */
void kernel_set_unload(kernel_set *s);

#endif
