/*
 * Loading a shared object from bytes in memory. The bytes go into an
 * anonymous memory file (memfd), sealed against change, checked by
 * elf_check and opened through /proc/<pid>/fd/N (a path a debugger can
 * open too); the descriptor is closed
 * right after and the mapping keeps the contents alive. Nothing is ever
 * written to a directory, so a process that dies mid-load leaves no file.
 *
 * dlopen recognises an object it already holds by its path, and fd numbers
 * are reused: a path naming an object still loaded from an earlier
 * descriptor of that number would return the old object. so_load moves
 * the memfd to a number whose path is not taken before opening it.
 */
#ifndef SIMPLER_COMMON_SO_LOAD_H
#define SIMPLER_COMMON_SO_LOAD_H

#include <stdint.h>

/* SIMPLER_E_INVALID_CALLABLE naming what is wrong when the bytes are not a
 * sound shared object or dlopen fails (what names the object). */
int so_load(const void *bytes, uint64_t size, const char *what, void **handle_out);
/* Look up a symbol; SIMPLER_E_INVALID_CALLABLE when it is missing. */
int so_symbol(void *handle, const char *name, const char *what, void **sym_out);
void so_unload(void *handle);

#endif
