#include "host/callable_buffer.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "common/error.h"
#include "common/hash.h"
#include "common/so_load.h"
#include "host/device.h"

static void buffer_free(simpler_device *dev, callable_buffer *b)
{
    if (b->device_handle)
        dev->ops->callable_release(dev->pdev, b->device_handle);
    /* A host orchestration that would not stop may still run in it. */
    if (b->host_orchestration && !dev->host_lost)
        so_unload(b->host_orchestration);
    if (b->gm_addr)
        dev->ops->gm_free(dev->pdev, b->gm_addr);
    callable_info_free(b->info);
    free(b->kernels);
    free(b->kernel_of_func);
    free(b->bytes);
    free(b);
}

/* Parse the copy, upload it, load its kernels, and its orchestration where
 * it runs: on the device (the platform opens it) or here. */
static int buffer_load(simpler_device *dev, callable_buffer *b)
{
    int rc = callable_parse(b->bytes, b->size, &b->info);
    if (rc)
        return rc;
    callable_info *info = b->info;
    for (uint32_t k = 0; k < info->num_kernels; k++)
        if (info->kernels[k].func_id > b->max_func_id)
            b->max_func_id = info->kernels[k].func_id;
    b->kernel_of_func = malloc((b->max_func_id + 1ull) * sizeof *b->kernel_of_func);
    b->kernels = calloc(info->num_kernels + 1ull, sizeof *b->kernels);
    if (!b->kernel_of_func || !b->kernels)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "register: out of host memory");
    memset(b->kernel_of_func, 0xff, (b->max_func_id + 1ull) * sizeof *b->kernel_of_func);
    for (uint32_t k = 0; k < info->num_kernels; k++)
        b->kernel_of_func[info->kernels[k].func_id] = (int32_t)k;
    if ((rc = dev->ops->gm_alloc(dev->pdev, b->size, &b->gm_addr))) {
        b->gm_addr = 0;
        return simpler_fail_prefix(rc, "register: uploading the callable (%" PRIu64 " bytes)", b->size);
    }
    if ((rc = dev->ops->copy_to_device(dev->pdev, b->gm_addr, b->bytes, b->size)))
        return rc;
    dev->callable_uploads++;
    uint32_t flags = dev->runtime->device_orchestration ? PLATFORM_LOAD_ORCHESTRATION : 0;
    if ((rc = dev->ops->callable_load(dev->pdev, b->bytes, b->size, b->gm_addr, flags, b->kernels, &b->orchestration,
                                      &b->device_handle)))
        return rc;
    if (!flags) {
        void *fn;
        if ((rc = so_load(info->orch, info->orch_size, "orchestration", &b->host_orchestration)) ||
            (rc = so_symbol(b->host_orchestration, info->orch_entry, "orchestration", &fn)))
            return rc;
        b->orchestration = (uint64_t)(uintptr_t)fn;
    }
    dev->orchestration_loads++;
    return SIMPLER_OK;
}

int callable_buffer_acquire(simpler_device *dev, const void *blob, uint64_t size, callable_buffer **out)
{
    uint64_t hash = simpler_fnv1a64(blob, size);
    for (uint32_t i = 0; i < dev->num_buffers; i++) {
        callable_buffer *b = dev->buffers[i];
        if (b->hash == hash && b->size == size && memcmp(b->bytes, blob, size) == 0) {
            b->refs++;
            *out = b;
            return SIMPLER_OK;
        }
    }
    if (array_reserve(&dev->buffers, &dev->cap_buffers, dev->num_buffers + 1ull, sizeof *dev->buffers))
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "register: out of host memory");
    callable_buffer *b = calloc(1, sizeof *b);
    if (b)
        b->bytes = malloc(size ? size : 1);
    if (!b || !b->bytes) {
        free(b);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "register: out of host memory");
    }
    memcpy(b->bytes, blob, size);
    b->hash = hash;
    b->size = size;
    b->refs = 1;
    int rc = buffer_load(dev, b);
    if (rc) {
        simpler_error_hold(rc);
        buffer_free(dev, b);
        simpler_error_release(rc);
        return rc;
    }
    dev->buffers[dev->num_buffers++] = b;
    *out = b;
    return SIMPLER_OK;
}

void callable_buffer_release(simpler_device *dev, callable_buffer *b)
{
    if (!b || --b->refs)
        return;
    for (uint32_t i = 0; i < dev->num_buffers; i++)
        if (dev->buffers[i] == b) {
            dev->buffers[i] = dev->buffers[--dev->num_buffers];
            break;
        }
    buffer_free(dev, b);
}
