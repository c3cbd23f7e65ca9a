#include "common/so_load.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/elf_check.h"
#include "common/error.h"

/* Write all of bytes to fd. */
static int so_write_all(int fd, const void *bytes, uint64_t size)
{
    const char *p = bytes;
    while (size) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        size -= (uint64_t)n;
    }
    return 0;
}

/* A sealed memfd holding bytes. */
static int so_memfd(const void *bytes, uint64_t size, const char *what, int *fd_out)
{
    int fd = memfd_create("simpler-so", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return simpler_fail(SIMPLER_E_SYSTEM, "%s: memfd_create failed: %s", what, strerror(errno));
    if (so_write_all(fd, bytes, size) != 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
        int e = errno;
        close(fd);
        return simpler_fail(SIMPLER_E_SYSTEM, "%s: cannot fill a memory file: %s", what, strerror(e));
    }
    *fd_out = fd;
    return SIMPLER_OK;
}

/* Check the sealed copy, not the caller's bytes: those may change (GM
 * shared with a client) between the check and the load. */
static int so_check(int fd, uint64_t size, const char *what)
{
    if (size == 0)
        return simpler_fail(SIMPLER_E_INVALID_CALLABLE, "%s: empty shared object", what);
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        return simpler_fail(SIMPLER_E_SYSTEM, "%s: cannot map the memory file: %s", what, strerror(errno));
    char why[ELF_CHECK_WHY_MAX];
    int bad = elf_check(map, size, why, sizeof why);
    munmap(map, size);
    if (bad)
        return simpler_fail(SIMPLER_E_INVALID_CALLABLE, "%s: %s", what, why);
    return SIMPLER_OK;
}

/* Move *fd to a number whose /proc/<pid>/fd path names no loaded object
 * and give that path. On failure *fd is closed. A new memfd is a new
 * inode, so only the path could match an old object, and no other thread
 * can load an object under this path while we hold the descriptor. The
 * path names our pid, not "self": a debugger reads the object's symbols
 * through the path the loader recorded, and /proc/self there would be the
 * debugger's own descriptor (gdb blocked reading its own pipe). */
static int so_fresh_path(int *fd, char *path, size_t path_size, const char *what)
{
    for (;;) {
        snprintf(path, path_size, "/proc/%ld/fd/%d", (long)getpid(), *fd);
        void *old = dlopen(path, RTLD_NOLOAD | RTLD_LAZY);
        if (!old)
            return SIMPLER_OK;
        dlclose(old);
        int moved = fcntl(*fd, F_DUPFD_CLOEXEC, *fd + 1);
        int e = errno;
        close(*fd);
        *fd = moved;
        if (moved < 0)
            return simpler_fail(SIMPLER_E_SYSTEM, "%s: cannot move the memory file's descriptor: %s", what,
                                strerror(e));
    }
}

int so_load(const void *bytes, uint64_t size, const char *what, void **handle_out)
{
    if (!bytes || !handle_out)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "%s: no bytes or no handle to fill", what);
    int fd = -1;
    int rc = so_memfd(bytes, size, what, &fd);
    if (rc)
        return rc;
    if ((rc = so_check(fd, size, what))) {
        close(fd);
        return rc;
    }
    char path[64];
    if ((rc = so_fresh_path(&fd, path, sizeof path, what)))
        return rc;
    /* RTLD_LOCAL: kernels of different callables may share symbol names. */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    close(fd);
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
