#include "onboard/paths.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"

/*
 * A directory above ours must not let anyone but root and this user
 * change what its entries name (as sshd's StrictModes): owned by one of
 * them, and writable by nobody else unless sticky (like /tmp, where others
 * may add entries but not rename or remove ours).
 */
static int trusted_ancestor(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return simpler_fail(SIMPLER_E_SYSTEM, "onboard: cannot stat %s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return simpler_fail(SIMPLER_E_SYSTEM, "onboard: %s, above the device directory, is not a directory", path);
    if (st.st_uid != 0 && st.st_uid != getuid())
        return simpler_fail(SIMPLER_E_SYSTEM, "onboard: %s, above the device directory, belongs to uid %u (neither "
                            "root nor this user, %u), who could swap the directory under it", path,
                            (unsigned)st.st_uid, (unsigned)getuid());
    if ((st.st_mode & 022) && !(st.st_mode & S_ISVTX))
        return simpler_fail(SIMPLER_E_SYSTEM, "onboard: %s, above the device directory, may be written by other "
                            "users (mode %03o, not sticky), who could swap the directory under it", path,
                            (unsigned)(st.st_mode & 0777));
    return SIMPLER_OK;
}

/* Every directory of an absolute, resolved path, from / down. */
static int trusted_ancestors(const char *resolved)
{
    char path[PATH_MAX];
    int rc = trusted_ancestor("/");
    for (const char *p = resolved + 1; !rc && *p; p++) {
        p = strchrnul(p, '/');
        snprintf(path, sizeof path, "%.*s", (int)(p - resolved), resolved);
        rc = trusted_ancestor(path);
        if (!*p)
            break;
    }
    return rc;
}

/*
 * Make dir the real path of a private directory: its parent resolved (no
 * symbolic link left to re-point later) and trusted up to /, then dir
 * created 0700 if missing and insisted on as ours and private.
 */
static int private_dir(char *dir, size_t size)
{
    char parent[PATH_MAX], resolved[PATH_MAX];
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        dir[--len] = '\0';
    const char *slash = strrchr(dir, '/');
    const char *name = slash ? slash + 1 : dir;
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "onboard: %s cannot be the device directory; name a "
                            "directory of its own", dir);
    snprintf(parent, sizeof parent, "%.*s", slash ? (int)(slash == dir ? 1 : slash - dir) : 1, slash ? dir : ".");
    if (!realpath(parent, resolved))
        return simpler_fail(SIMPLER_E_SYSTEM, "onboard: cannot resolve %s: %s", parent, strerror(errno));
    int rc = trusted_ancestors(resolved);
    if (rc)
        return rc;
    char full[PATH_MAX + 256];
    int n = snprintf(full, sizeof full, "%s/%s", strcmp(resolved, "/") ? resolved : "", name);
    if (n < 0 || (size_t)n >= size)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "onboard: the device directory's path is too long");
    memcpy(dir, full, (size_t)n + 1);
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
    return private_dir(out, size);
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
    return private_dir(out, size);
}
