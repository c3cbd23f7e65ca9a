#include "onboard/paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"

/* Create dir 0700 if missing, then insist it is ours and private. */
static int private_dir(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return simpler_fail(SIMPLER_E_SYSTEM, "onboard: cannot create %s: %s", dir, strerror(errno));
    struct stat st;
    if (lstat(dir, &st) != 0)
        return simpler_fail(SIMPLER_E_SYSTEM, "onboard: cannot stat %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return simpler_fail(SIMPLER_E_SYSTEM, "onboard: %s is not a directory (a symbolic link?)", dir);
    if (st.st_uid != getuid())
        return simpler_fail(SIMPLER_E_SYSTEM, "onboard: %s belongs to uid %u, not to this user (%u)", dir,
                            (unsigned)st.st_uid, (unsigned)getuid());
    if (st.st_mode & 077)
        return simpler_fail(SIMPLER_E_SYSTEM, "onboard: %s is open to other users (mode %03o); it must be 0700",
                            dir, (unsigned)(st.st_mode & 0777));
    return SIMPLER_OK;
}

int onb_dir(char *out, size_t size)
{
    const char *env = getenv("SIMPLER_DEVICE_DIR");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;
    if (env && *env)
        n = snprintf(out, size, "%s", env);
    else if (xdg && *xdg && access(xdg, W_OK) == 0)
        n = snprintf(out, size, "%s/simpler", xdg);
    else
        n = snprintf(out, size, "/tmp/simpler-%u", (unsigned)getuid());
    if (n < 0 || (size_t)n >= size)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "onboard: the device directory's path is too long");
    return private_dir(out);
}

int onb_device_path(char *out, const char *dir, int32_t device_id, const char *suffix)
{
    int n = snprintf(out, ONB_PATH_MAX, "%s/device-%d.%s", dir, (int)device_id, suffix);
    if (n < 0 || n >= ONB_PATH_MAX)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT,
                            "onboard: %s/device-%d.%s is longer than a socket path may be (%d bytes); "
                            "set SIMPLER_DEVICE_DIR to a shorter directory", dir, (int)device_id, suffix,
                            ONB_PATH_MAX - 1);
    return SIMPLER_OK;
}

int onb_store_dir(char *out, size_t size, const char *dir)
{
    int n = snprintf(out, size, "%s/store", dir);
    if (n < 0 || (size_t)n >= size)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "onboard: the store's path is too long");
    return private_dir(out);
}
