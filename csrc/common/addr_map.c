#include "common/addr_map.h"

#include <stdlib.h>

#include "common/hash.h"

/* The slot of key, or (if absent) the first slot a put may take. */
static addr_entry *find(const addr_map *m, uint64_t key, int *found)
{
    addr_entry *reuse = NULL;
    for (uint64_t i = simpler_mix64(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        addr_entry *e = &m->slots[i];
        if (e->state == 0) {
            *found = 0;
            return reuse ? reuse : e;
        }
        if (e->state == 2) {
            if (!reuse)
                reuse = e;
        } else if (e->key == key) {
            *found = 1;
            return e;
        }
    }
}

static int rehash(addr_map *m, uint64_t cap)
{
    addr_entry *old = m->slots;
    uint64_t old_cap = m->cap;
    m->slots = calloc(cap, sizeof *m->slots);
    if (!m->slots) {
        m->slots = old;
        return -1;
    }
    m->cap = cap;
    m->used = m->live;
    for (uint64_t i = 0; i < old_cap; i++)
        if (old[i].state == 1) {
            int found;
            *find(m, old[i].key, &found) = old[i];
        }
    free(old);
    return 0;
}

int addr_map_put(addr_map *m, uint64_t key, uint64_t size, uint64_t tag, uint32_t aux)
{
    if ((m->used + 1) * 2 > m->cap) {
        /* Rehashing drops deleted slots; grow only if live entries need it. */
        uint64_t cap = m->cap ? m->cap : 64;
        while ((m->live + 1) * 2 > cap / 2)
            cap *= 2;
        if (rehash(m, cap))
            return -1;
    }
    int found;
    addr_entry *e = find(m, key, &found);
    if (!found) {
        if (e->state == 0)
            m->used++;
        m->live++;
    }
    *e = (addr_entry){key, size, tag, 1, aux};
    return 0;
}

addr_entry *addr_map_get(const addr_map *m, uint64_t key)
{
    if (!m->cap)
        return NULL;
    int found;
    addr_entry *e = find(m, key, &found);
    return found ? e : NULL;
}

void addr_map_remove(addr_map *m, uint64_t key)
{
    addr_entry *e = addr_map_get(m, key);
    if (e) {
        e->state = 2;
        m->live--;
    }
}

void addr_map_free(addr_map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->used = m->live = 0;
}
