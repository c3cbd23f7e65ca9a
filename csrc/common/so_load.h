/*
 * Loading a shared object from bytes in memory: the bytes go to a private
 * temporary file (mode 0600, named simpler-so-<pid>-<random>), which is opened and removed at
 * once; the mapping keeps the contents alive.
 *
 * Not a memfd: dlopen recognises an already loaded object by its path, and
 * /proc/self/fd/N paths repeat as descriptors are reused, so a second load
 * could silently return the first object.
 */
#ifndef SIMPLER_COMMON_SO_LOAD_H
#define SIMPLER_COMMON_SO_LOAD_H

#include <stdint.h>

/* SIMPLER_E_INVALID_CALLABLE with the loader's message when dlopen fails. */
int so_load(const void *bytes, uint64_t size, const char *what, void **handle_out);
/* Look up a symbol; SIMPLER_E_INVALID_CALLABLE when it is missing. */
int so_symbol(void *handle, const char *name, const char *what, void **sym_out);
void so_unload(void *handle);

#endif
