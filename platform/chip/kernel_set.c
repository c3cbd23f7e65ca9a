#include "chip/kernel_set.h"

#include <stdio.h>
#include <stdlib.h>

#include "callable/callable.h"
#include "common/error.h"
#include "common/so_load.h"

void kernel_set_unload(kernel_set *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->count; i++)
        if (s->kernels[i].handle)
            so_unload(s->kernels[i].handle);
    free(s);
}

int kernel_set_load(const void *blob, uint64_t size, kernel_set **out)
{
    callable_info *info;
    int rc = callable_parse(blob, size, &info);
    if (rc)
        return rc;
    kernel_set *s = calloc(1, sizeof *s + info->num_kernels * sizeof(kernel_entry));
    if (!s) {
        callable_info_free(info);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "loading kernels: out of host memory");
    }
    s->count = info->num_kernels;
    for (uint32_t k = 0; k < info->num_kernels && !rc; k++) {
        callable_kernel *kn = &info->kernels[k];
        char what[320];
        snprintf(what, sizeof what, "kernel '%s' (func %u)", kn->name[0] ? kn->name : kn->entry, kn->func_id);
        void *fn, *handle = NULL;
        /* A binary several kernels share (the blob stores it once) is
         * loaded once; the first kernel holding it owns the handle. */
        for (uint32_t j = 0; j < k && !handle; j++)
            if (info->kernels[j].so == kn->so && info->kernels[j].so_size == kn->so_size)
                handle = s->kernels[j].handle;
        if (!handle && !(rc = so_load(kn->so, kn->so_size, what, &s->kernels[k].handle)))
            handle = s->kernels[k].handle;
        if (!rc)
            rc = so_symbol(handle, kn->entry, what, &fn);
        if (!rc)
            s->kernels[k].addr = (uint64_t)(uintptr_t)fn;
    }
    callable_info_free(info);
    if (rc) {
        kernel_set_unload(s);
        return rc;
    }
    *out = s;
    return SIMPLER_OK;
}
