/*
 * Callable buffers: a callable's blob in GM and its kernels loaded on the
 * device, shared by every registration of the same content. Uploaded once
 * per distinct content (FNV-1a 64 of the bytes, confirmed byte for byte),
 * reference-counted, freed with the last registration. The blob is
 * uploaded as it is: kernel addresses live in separate tables, so nothing
 * patches it and the orchestration inside it is usable in place. The
 * orchestration is loaded once per buffer too: registrations of the same
 * content share one instance of it (and its static variables), on either
 * runtime.
 */
#ifndef SIMPLER_HOST_CALLABLE_BUFFER_H
#define SIMPLER_HOST_CALLABLE_BUFFER_H

#include <stdint.h>

#include "callable/callable.h"
#include "common/platform_ops.h"

typedef struct callable_buffer {
    uint64_t hash;
    uint64_t size;
    uint8_t *bytes;                 /* host copy: the parsed view points into it */
    callable_info *info;
    uint64_t gm_addr;               /* the blob on the device */
    void *device_handle;            /* its kernels (and orchestration), loaded by the platform */
    uint64_t orchestration;         /* the orchestration's entry point where it runs (device or host) */
    void *host_orchestration;       /* loaded here, when the runtime runs it on the host */
    platform_kernel *kernels;       /* [info->num_kernels] */
    int32_t *kernel_of_func;        /* func_id -> kernel index or -1; [max_func_id + 1] */
    uint32_t max_func_id;
    uint32_t refs;
} callable_buffer;

struct simpler_device;

/* The buffer for this content: an existing one (one more reference) or a
 * new one, parsed, uploaded and with its kernels loaded. */
int callable_buffer_acquire(struct simpler_device *dev, const void *blob, uint64_t size, callable_buffer **out);
void callable_buffer_release(struct simpler_device *dev, callable_buffer *b);

#endif
