/*
 * A map from addresses to small records, open addressing with deletion:
 * the runtimes' table of buffers a run may use (base -> size and where it
 * came from). Not thread-safe.
 */
#ifndef SIMPLER_COMMON_ADDR_MAP_H
#define SIMPLER_COMMON_ADDR_MAP_H

#include <stdint.h>

typedef struct addr_entry {
    uint64_t key;       /* 0: empty */
    uint64_t size;
    uint64_t tag;       /* the user's */
    uint32_t state;     /* 0 empty, 1 used, 2 deleted */
    uint32_t aux;       /* the user's */
} addr_entry;

typedef struct addr_map {
    addr_entry *slots;
    uint64_t cap, used, live;
} addr_map;

/* -1 when out of memory; an existing key is overwritten. */
int addr_map_put(addr_map *m, uint64_t key, uint64_t size, uint64_t tag, uint32_t aux);
addr_entry *addr_map_get(const addr_map *m, uint64_t key);
void addr_map_remove(addr_map *m, uint64_t key);
void addr_map_free(addr_map *m);

#endif
