#include "chip/kernel_set.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "callable/callable.h"
#include "common/error.h"
#include "common/so_load.h"

/* Every loaded set, newest first. Writers take the lock; a crash report
 * reads without it. */
static pthread_mutex_t g_sets_lock = PTHREAD_MUTEX_INITIALIZER;
static kernel_set *_Atomic g_sets;

const char *kernel_set_name(uint64_t addr)
{
    for (kernel_set *s = atomic_load(&g_sets); s; s = s->next)
        for (uint32_t i = 0; i < s->count; i++)
            if (s->kernels[i].addr == addr)
                return s->kernels[i].name;
    return NULL;
}

static void forget(kernel_set *s)
{
    pthread_mutex_lock(&g_sets_lock);
    kernel_set *_Atomic *p = &g_sets;
    while (*p && *p != s)
        p = &(*p)->next;
    if (*p)
        atomic_store(p, s->next);
    pthread_mutex_unlock(&g_sets_lock);
}

void kernel_set_abandon(kernel_set *s)
{
    if (!s)
        return;
    forget(s);
    free(s);
}

void kernel_set_unload(kernel_set *s)
{
    if (!s)
        return;
    forget(s);
    for (uint32_t i = 0; i < s->count; i++)
        if (s->kernels[i].handle)
            so_unload(s->kernels[i].handle);
    if (s->orch_handle)
        so_unload(s->orch_handle);
    free(s);
}

/* The orchestration, read in place from the blob's bytes. */
static int load_orchestration(const callable_info *info, kernel_set *s)
{
    void *fn;
    int rc = so_load(info->orch, info->orch_size, "orchestration", &s->orch_handle);
    if (!rc && (rc = so_symbol(s->orch_handle, info->orch_entry, "orchestration", &fn)))
        return rc;
    if (!rc) {
        s->orch_addr = (uint64_t)(uintptr_t)fn;
        s->objects++;
    }
    return rc;
}

int kernel_set_load(const void *blob, uint64_t size, int with_orchestration, kernel_set **out)
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
        if (!handle && !(rc = so_load(kn->so, kn->so_size, what, &s->kernels[k].handle))) {
            handle = s->kernels[k].handle;
            s->objects++;
        }
        if (!rc)
            rc = so_symbol(handle, kn->entry, what, &fn);
        if (!rc)
            s->kernels[k].addr = (uint64_t)(uintptr_t)fn;
        snprintf(s->kernels[k].name, sizeof s->kernels[k].name, "%s", kn->name[0] ? kn->name : kn->entry);
    }
    if (!rc && with_orchestration)
        rc = load_orchestration(info, s);
    callable_info_free(info);
    if (rc) {
        kernel_set_unload(s);
        return rc;
    }
    pthread_mutex_lock(&g_sets_lock);
    s->next = atomic_load(&g_sets);
    atomic_store(&g_sets, s);
    pthread_mutex_unlock(&g_sets_lock);
    *out = s;
    return SIMPLER_OK;
}
