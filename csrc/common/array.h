/*
 * The one growable array: a pointer, a capacity in elements, doubling.
 * Callers keep their own count; array_reserve makes room for need
 * elements. Not thread-safe.
 */
#ifndef SIMPLER_COMMON_ARRAY_H
#define SIMPLER_COMMON_ARRAY_H

#include <stddef.h>
#include <stdint.h>

/* Room for need elements of elem bytes in *p (capacity *cap). Returns
 * SIMPLER_OK, or SIMPLER_E_NO_HOST_MEMORY with *p and *cap unchanged and
 * no message set: the caller says what it was doing. */
int array_reserve(void *p, uint64_t *cap, uint64_t need, size_t elem);

#endif
