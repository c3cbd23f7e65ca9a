
#include "common/so_load.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/error.h"

int so_load(const void *bytes, uint64_t size, const char *what, void **handle_out)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    /* The pid in the name tells whose file it is (and lets tests count
     * their own). */
    snprintf(path, sizeof path, "%s/simpler-so-%ld-XXXXXX", dir && *dir ? dir : "/tmp", (long)getpid());
    int fd = mkstemp(path);
    if (fd < 0)
        return simpler_fail(SIMPLER_E_SYSTEM, "%s: cannot create a temporary file in %s: %s", what,
                            dir && *dir ? dir : "/tmp", strerror(errno));
    const char *p = bytes;
    uint64_t left = size;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            close(fd);
            unlink(path);
            return simpler_fail(SIMPLER_E_SYSTEM, "%s: writing the shared object failed: %s", what,
                                strerror(e));
        }
        p += n;
        left -= (uint64_t)n;
    }
    close(fd);
    /* RTLD_LOCAL: kernels of different callables may share symbol names. */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    unlink(path);
    if (!h)
        return simpler_fail(SIMPLER_E_INVALID_CALLABLE, "%s: cannot load: %s", what, dlerror());
    *handle_out = h;
    return SIMPLER_OK;
}

int so_symbol(void *handle, const char *name, const char *what, void **sym_out)
{
    dlerror();
    void *sym = dlsym(handle, name);
    if (!sym)
        return simpler_fail(SIMPLER_E_INVALID_CALLABLE, "%s: no symbol '%s' (is it exported?)", what, name);
    *sym_out = sym;
    return SIMPLER_OK;
}

void so_unload(void *handle)
{
    if (handle)
        dlclose(handle);
}
