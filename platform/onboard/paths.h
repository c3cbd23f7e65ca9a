/*
 * Where a user's device processes live: one private directory holding, per
 * device id, the socket (device-N.sock), the start lock (device-N.lock),
 * the running device's pid lock (device-N.pid), its log (device-N.log) and
 * its last crash report (device-N.crash); and the store of installed AICPU
 * runtimes (store/aicpu-<fingerprint>.so), shared by all device ids.
 */
#ifndef SIMPLER_ONBOARD_PATHS_H
#define SIMPLER_ONBOARD_PATHS_H

#include <stddef.h>
#include <stdint.h>

#define ONB_PATH_MAX 108            /* a Unix socket path's limit, sun_path */

/*
 * The directory: $SIMPLER_DEVICE_DIR, else $XDG_RUNTIME_DIR/simpler, else
 * /tmp/simpler-<uid>, as its real path (out). Created with mode 0700 when
 * missing; refused unless it is a real directory owned by this user that
 * nobody else may open, below directories nobody but root and this user
 * may change (each owned by one of them, writable by no one else unless
 * sticky). Files in it are opened with O_NOFOLLOW.
 */
int onb_dir(char *out, size_t size);

/* <dir>/device-<id>.<suffix>; fails if it would not fit a socket address. */
int onb_device_path(char *out, const char *dir, int32_t device_id, const char *suffix);

/* <dir>/store, created like the directory. */
int onb_store_dir(char *out, size_t size, const char *dir);

#endif
