/* FNV-1a 64: the content fingerprint of callables (and, later, of binaries
 * installed on a device). Equal fingerprints are always confirmed by
 * comparing bytes. */
#ifndef SIMPLER_COMMON_HASH_H
#define SIMPLER_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t simpler_fnv1a64(const void *data, size_t size)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < size; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

#endif
