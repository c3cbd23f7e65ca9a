/* The hashes: FNV-1a 64, the content fingerprint of callables and of
 * binaries installed on a device (equal fingerprints are always confirmed
 * by comparing bytes), and the mix of hash tables' integer keys. */
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

/* Spread an integer key over all 64 bits (murmur3's finaliser step), for
 * tables indexed by its low bits: addresses differ mostly in the middle. */
static inline uint64_t simpler_mix64(uint64_t a)
{
    a ^= a >> 33;
    a *= 0xff51afd7ed558ccdull;
    a ^= a >> 33;
    return a;
}

#endif
